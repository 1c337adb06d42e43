"""Reports: a lesson's (or an experiment's, or a run's) questions, answers, figures and configs, as
one self-contained HTML file, as Markdown + PNG in a zip, or (a lesson) as a Jupyter notebook that
trains the runs again. Free of Streamlit; the Lessons page and `python -m core.cli report` use it.

figures.py   a step's figures (charts from core.charts, image grids), the same on the page
render.py    a figure as a PNG, offline (vl-convert for charts, Pillow for images)
report.py    what a report says: lesson_report, experiment_report, run_report
commands.py  the command line that trains a saved run again
html.py      the report as one HTML file;  markdown.py: as report.md + figures/*.png in a zip
notebook.py  a lesson as a notebook (nbformat)
"""
from __future__ import annotations

from pathlib import Path

FORMATS = {".html": "text/html", ".zip": "application/zip", ".ipynb": "application/x-ipynb+json"}


def render_pngs(report) -> dict[str, bytes]:
    """Every figure's PNG by its key (figures that are only a sentence have none)."""
    from core.reports.render import figure_png

    pngs = {}
    for step in report.steps:
        for figure in step.figures:
            png = figure_png(figure)
            if png:
                pngs[figure.key] = png
    return pngs


def report_bytes(report, suffix: str) -> bytes:
    """The report as .html or .zip bytes."""
    from core.reports.html import report_html
    from core.reports.markdown import report_zip

    pngs = render_pngs(report)
    if suffix == ".html":
        return report_html(report, pngs).encode("utf-8")
    if suffix == ".zip":
        return report_zip(report, pngs)
    raise ValueError(f"A report is .html or .zip, not {suffix}.")


def suffix_of(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{Path(path).name} ends in {suffix or 'nothing'}; write the report to a .html, .zip "
                         "or .ipynb file.")
    return suffix
