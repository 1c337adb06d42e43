"""Noise: the same noisy test images through one or more runs, and a sweep of the error against
the noise factor, so a plain autoencoder and a denoising one can be compared."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core import analysis
from ui import inspect_cache
from ui.inspect_charts import noise_sweep_chart
from ui.state import SELECTED_RUN_KEY, get_run, run_mtime, saved_runs
from ui.widgets import need_a_run, show_grid, upscale_for

RUNS_KEY = "noise_runs"
NOISE_KEY = "noise_factor"
IMAGES_SHOWN = 8


def default_runs(runs: list[dict]) -> list[str]:
    """The selected run, plus one more to compare with: a run whose training noise differs
    (plain vs denoising) when there is one, otherwise the newest other run."""
    names = [r["name"] for r in runs]
    first = st.session_state.get(SELECTED_RUN_KEY)
    first = first if first in names else names[0]
    first_noise = next(r.get("noise", 0.0) for r in runs if r["name"] == first)
    others = [r for r in runs if r["name"] != first]
    contrast = [r for r in others if (r.get("noise", 0.0) or 0.0) != (first_noise or 0.0)]
    second = (contrast or others)[:1]
    return [first] + [r["name"] for r in second]


def describe(row: dict) -> str:
    noise = row.get("noise", 0.0) or 0.0
    kind = f"denoising AE, trained with noise {noise:g}" if noise > 0 else "plain AE (no training noise)"
    return f"{row.get('dataset', '?')}, {kind}"


def main() -> None:
    st.title("Noise")
    st.caption("Add Gaussian noise to test images (x + f·N(0, 1), clipped to [0, 1]) and see what "
               "each run makes of them. A denoising autoencoder was trained on noisy inputs and "
               "should hold up better as the noise factor grows.")
    runs = saved_runs()
    if not runs:
        need_a_run("the noise comparison")
        return
    rows = {r["name"]: r for r in runs}
    names = list(rows)
    # Keep the remembered choice valid when runs were deleted meanwhile.
    remembered = [n for n in st.session_state.get(RUNS_KEY, []) if n in rows]
    st.session_state[RUNS_KEY] = remembered or default_runs(runs)
    chosen = st.multiselect("Runs to compare", names, key=RUNS_KEY,
                            help="Tip: compare a plain run with one trained with a noise factor.")
    if not chosen:
        st.info("Pick at least one run to compare.")
        return
    factor = st.slider("Noise factor", 0.0, 1.0, 0.3, 0.05, key=NOISE_KEY)

    sweeps = []
    for name in chosen:
        st.markdown(f"**{name}** · {describe(rows[name])}")
        try:
            run = get_run(name, run_mtime(name))
            images, labels, dataset = inspect_cache.test_split(run)
            shown, shown_labels = images[:IMAGES_SHOWN], labels[:IMAGES_SHOWN]
            # Seed 0 for every run: the same images get the same noise, whichever run sees them.
            noisy, recon = analysis.reconstruct(run.model, shown,
                                                inspect_cache.model_labels(run, shown_labels),
                                                noise=factor, seed=0)
            sweep = inspect_cache.noise_sweep(name, run_mtime(name), inspect_cache.MAX_SWEEP_IMAGES,
                                              _run=run)
        except Exception as exc:  # core errors carry one plain sentence
            st.error(str(exc))
            continue
        mse = float(((recon - analysis.to_float(shown)) ** 2).mean())
        scale = upscale_for(dataset.shape[-1])
        left, right = st.columns(2)
        with left:
            show_grid(noisy, caption=f"Noisy input (noise factor {factor:.2f})", scale=scale)
        with right:
            show_grid(recon, caption=f"Reconstruction (MSE against the clean images {mse:.4f})",
                      scale=scale)
        sweeps += [{"run": name, **point} for point in sweep]

    if sweeps:
        st.subheader("Error against noise factor")
        st.altair_chart(noise_sweep_chart(pd.DataFrame(sweeps), factor), key="noise_sweep_chart")
        st.caption(f"Mean error of each run's reconstruction against the clean image, over up to "
                   f"{inspect_cache.MAX_SWEEP_IMAGES} test images; the dashed line is the slider. "
                   "Click a run in the legend to highlight it.")


main()
