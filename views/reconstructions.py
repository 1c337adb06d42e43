"""Reconstructions: what a trained run makes of test images, where it fails, and how its
reconstructions of the same validation images improved epoch by epoch (the training film)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import analysis
from ui import inspect_cache
from core.charts.inspect import error_histogram
from ui.errors import error_text
from ui.state import run_mtime
from ui.url_state import url_widget
from ui.widgets import run_heading, run_picker, show_grid, side_by_side_runs, upscale_for
from ui.projector import show_chart
from ui.text import md_message, md_text

EXTREMES_SHOWN = 8
LOOK_FOR = ("**What to look for:** which details survive (outlines first, then strokes and texture), "
            "whether the errors sit on edges or everywhere, and how a smaller latent or a few more epochs "
            "changes that. Compare runs side by side on the same test images.")


def show_extremes(run, images, labels, class_names, indices, errors, title: str, scale: int) -> None:
    """Originals (top row) over their reconstructions (bottom row), with each image's error."""
    chosen = images[indices]
    _, recon = analysis.reconstruct(run.model, chosen, labels[indices])
    st.markdown(f"**{title}**")
    show_grid([chosen, recon], nrow=len(indices), scale=scale,
              caption="Top: test images; bottom: reconstructions")
    st.caption(" · ".join(f"#{i} ({md_text(class_names[int(labels[i])])}): {errors[i]:.4f}" for i in indices))


def side_by_side(run, others: list, shown, shown_labels, scale: int) -> None:
    """One column per run: the same test images (top) over each run's reconstructions, with its
    test MSE; all at one scale, so the columns compare pixel for pixel."""
    runs = [run, *others]
    per_row = 4 if len(runs) > 2 else 8
    with st.container(key="recon_side_by_side"):
        for column, each in zip(st.columns(len(runs)), runs):
            with column:
                run_heading(each.name)
                mse = (each.test_metrics or {}).get("mse")
                st.caption(f"Test MSE {mse:.4f}" if mse is not None else "Test MSE not recorded")
                _, recon = analysis.reconstruct(each.model, shown, shown_labels)
                show_grid(shown, nrow=per_row, scale=scale, caption="Test images")
                show_grid(recon, nrow=per_row, scale=scale, caption=f"Reconstructions by {md_text(each.name)}")


def main() -> None:
    st.title("Reconstructions")
    st.caption("Test images next to what the autoencoder makes of them, and where it goes wrong.")
    st.info(LOOK_FOR, icon=":material/visibility:")
    run = run_picker("Run", key="recon_run")
    if run is None:
        return
    for warning in run.info.get("load_warnings", []):
        st.warning(md_message(warning))
    try:
        images, labels, dataset = inspect_cache.test_split(run)
        errors = inspect_cache.test_errors(run.name, run_mtime(run.name), _run=run)
    except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
        st.error(error_text(exc))
        return
    scale = upscale_for(dataset.shape[-1])

    metrics = run.test_metrics or {}
    mse, mae, images_count = st.columns(3)
    # Without stored metrics (an old run) the MSE is the mean of the per-image errors.
    mse.metric("Test MSE", f"{metrics.get('mse', float(errors.mean())):.4f}")
    mae.metric("Test MAE", f"{metrics['mae']:.4f}" if "mae" in metrics else "—")
    images_count.metric("Test images", f"{len(labels):,}")

    st.subheader("Originals, reconstructions and errors")
    others = side_by_side_runs(run, "recon_with", "Other runs on the same dataset (e.g. latent 2 / 4 / 6, "
                                                  "plain vs denoising): the same test images, one column per run.")
    url_widget("recon_count", "count", 8, valid=lambda n: 4 <= n <= 32)
    count = st.slider("Images shown", 4, 32, step=4, key="recon_count")
    shown, shown_labels = images[:count], labels[:count]
    originals = analysis.to_float(shown)
    if others:
        side_by_side(run, others, shown, shown_labels, scale)
    else:
        _, recon = analysis.reconstruct(run.model, shown, shown_labels)
        heat, brightest = analysis.error_maps(originals, recon)
        show_grid(originals, caption="Test images", scale=scale)
        show_grid(recon, caption="Reconstructions", scale=scale)
        show_grid(heat, scale=scale,
                  caption=f"Error |x − x̂|: black is none, white is the largest here ({brightest:.3f})")

    st.subheader("Best and worst reconstructed test images")
    order = np.argsort(errors, kind="stable")
    k = min(EXTREMES_SHOWN, len(order))
    best, worst = st.columns(2)
    with best:
        show_extremes(run, images, labels, dataset.class_names, order[:k].tolist(), errors,
                      "Best (lowest MSE)", scale)
    with worst:
        show_extremes(run, images, labels, dataset.class_names, order[::-1][:k].tolist(), errors,
                      "Worst (highest MSE)", scale)
    show_chart(error_histogram(errors, float(errors.mean())), key="recon_error_histogram")
    st.caption("Per-image reconstruction MSE over the test set; the dashed line is the mean.")

    st.subheader("Training film")
    if not run.film or run.film_originals is None:
        st.info("This run has no training film, so there is nothing to replay.")
        return
    frames = len(run.film)
    epoch = (st.slider("Epoch", 1, frames, frames, key="film_epoch") if frames > 1 else 1)
    record = run.history[epoch - 1] if epoch <= len(run.history) else {}
    loss = f", validation loss {record['val_loss']:.4f}" if "val_loss" in record else ""
    originals_row = run.film_originals
    show_grid([originals_row, run.film[epoch - 1]], nrow=len(originals_row), scale=scale,
              caption=f"Top: fixed validation images; bottom: their reconstructions after epoch "
                      f"{epoch} of {frames}{loss}")


main()
