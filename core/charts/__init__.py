"""Altair chart builders: plain data in, a chart out, no Streamlit. The pages show them
(ui.projector.show_chart), the lesson reports render them to PNG (core.reports) and a lesson's
notebook draws them, so a figure looks the same in all three.

palette.py      the one categorical palette and each run's stable colour
style.py        the palette and font sizes as a chart's top-level config (screen or projector)
training.py     loss curves, batch losses, class counts, runs compared, final metrics
inspect.py      reconstruction errors, the noise sweep, the latent scatter
probe.py        the classifier's confusion matrix, per-class accuracy, training curves
experiments.py  an experiment's small multiples, metric against factor, gap, sweep, ROC, search
"""
