"""Noise: the same noisy test images through one or more runs, and a sweep of the error against
the noise factor, so a plain autoencoder and a denoising one can be compared."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import analysis
from core.checkpoints import CONFIG_FILE
from core.config import RunConfig
from ui import inspect_cache
from core.charts.inspect import noise_sweep_chart
from ui.errors import error_text
from ui.state import SELECTED_RUN_KEY, checkpoints_root, get_run, run_color_map, run_mtime, saved_runs
from ui.widgets import need_a_run, show_grid, upscale_for
from ui.projector import show_chart
from ui.text import md_text

RUNS_KEY = "noise_runs"
NOISE_KEY = "noise_factor"
IMAGES_SHOWN = 8
# The sweep measures every value the slider can take, so the number under a reconstruction is the
# chart's point at the dashed line (the same images, noise draws and metric), never a value between two.
NOISE_STEP = 0.05
SWEEP_LEVELS = tuple(round(i * NOISE_STEP, 2) for i in range(round(1 / NOISE_STEP) + 1))
DEFAULT_RUNS = 3


LOOK_FOR = ("**What to look for:** how fast each run's error grows with the noise factor; a denoising "
             "autoencoder's curve should stay low where a plain one's rises.")

def data_key(row: dict) -> tuple:
    """Runs are comparable when they saw the same dataset at the same image shape."""
    return (row.get("dataset"), row.get("folder"), row.get("image_shape"))


def with_shapes(runs: list[dict]) -> list[dict]:
    """The listed runs plus each one's data folder and image shape (C, H, W), read from its
    config.json (which holds the shape the model was built for) without loading the weights."""
    rows = []
    for row in runs:
        try:
            path = Path(checkpoints_root()) / row["name"] / CONFIG_FILE
            cfg = RunConfig.from_json(path.read_text(encoding="utf-8"))
            shape = (cfg.model.in_channels, cfg.model.image_size, cfg.model.image_size)
            folder = cfg.data.folder if cfg.data.dataset == "folder" else ""
        except (OSError, ValueError):  # an unloadable run says why when it is chosen
            shape, folder = None, ""
        rows.append({**row, "image_shape": shape, "folder": folder})
    return rows


def default_runs(runs: list[dict]) -> list[str]:
    """The selected run plus up to two more on the same data, preferring a mix of plain and
    denoising runs (the comparison this page exists for), then the newest."""
    names = [r["name"] for r in runs]
    first_name = st.session_state.get(SELECTED_RUN_KEY)
    first = runs[names.index(first_name)] if first_name in names else runs[0]
    same_data = [r for r in runs if r is not first and data_key(r) == data_key(first)]
    first_denoises = (first.get("noise") or 0.0) > 0
    contrast = [r for r in same_data if ((r.get("noise") or 0.0) > 0) != first_denoises]
    rest = [r for r in same_data if r not in contrast]
    return [first["name"]] + [r["name"] for r in (contrast + rest)[:DEFAULT_RUNS - 1]]


def describe(row: dict) -> str:
    """The dataset and the kind of model: plain, denoising, VAE, conditional (or a mix)."""
    noise = row.get("noise") or 0.0
    model = ("conditional " if row.get("conditional") else "") + ("VAE" if row.get("vae") else "AE")
    if noise > 0:
        kind = f"denoising {model}, trained with noise {noise:g}"
    else:
        kind = f"{'plain AE' if model == 'AE' else model} (no training noise)"
    return f"{row.get('dataset', '?')}, {kind}"


def sweep_point(sweep: list[dict], factor: float) -> dict:
    """The sweep's point at `factor`, one of its levels."""
    return next(point for point in sweep if point["noise"] == factor)


def shape_text(shape) -> str:
    return "×".join(str(s) for s in shape) if shape else "unknown shape"


def main() -> None:
    st.title("Noise")
    st.info(LOOK_FOR, icon=":material/visibility:")
    st.caption("Add Gaussian noise to test images (x + f·N(0, 1), clipped to [0, 1]) and see what "
               "each run makes of them. A denoising autoencoder was trained on noisy inputs and "
               "should hold up better as the noise factor grows.")
    runs = saved_runs()
    if not runs:
        need_a_run("the noise comparison")
        return
    runs = with_shapes(runs)
    rows = {r["name"]: r for r in runs}
    # Keep the remembered choice valid when runs were deleted meanwhile.
    remembered = [n for n in st.session_state.get(RUNS_KEY, []) if n in rows]
    st.session_state[RUNS_KEY] = remembered or default_runs(runs)
    chosen = st.multiselect("Runs to compare", list(rows), key=RUNS_KEY,
                            help="Tip: compare a plain run with one trained with a noise factor.")
    if not chosen:
        st.info("Pick at least one run to compare.")
        return
    reference = data_key(rows[chosen[0]])
    other_data = [n for n in chosen if data_key(rows[n]) != reference]
    if other_data:
        st.info(f"Only runs on the same dataset can be compared, so this page shows those on "
                f"{md_text(reference[0])} ({shape_text(reference[1])}) like {md_text(chosen[0])}; left out: "
                f"{md_text(', '.join(other_data))}.")
    compared = [n for n in chosen if n not in other_data]

    with st.container(key="noise_slider"):
        factor = st.slider("Noise factor", 0.0, 1.0, 0.3, NOISE_STEP, key=NOISE_KEY)
    factor = min(SWEEP_LEVELS, key=lambda level: abs(level - factor))  # 0.30000000000000004 -> 0.3

    sweeps = []
    with st.container(key="noise_images"):
        for name in compared:
            st.markdown(f"**{md_text(name)}** · {md_text(describe(rows[name]))}")
            try:
                run = get_run(name, run_mtime(name))
                images, labels, dataset = inspect_cache.test_split(run)
                shown, shown_labels = images[:IMAGES_SHOWN], labels[:IMAGES_SHOWN]
                # Seed 0 for every run: the same images get the same noise, whichever run sees them.
                noisy, recon = analysis.reconstruct(run.model, shown, shown_labels, noise=factor, seed=0)
                sweep = inspect_cache.noise_sweep(name, run_mtime(name), inspect_cache.MAX_SWEEP_IMAGES,
                                                  SWEEP_LEVELS, _run=run)
            except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
                st.error(error_text(exc))
                continue
            # The shown images are the first of the swept ones, with the same noise (seed 0).
            measured = min(len(images), inspect_cache.MAX_SWEEP_IMAGES)
            over = f"all {measured:,}" if measured == len(images) else f"the first {measured:,}"
            scale = upscale_for(dataset.shape[-1])
            left, right = st.columns(2)
            with left:
                show_grid(noisy, caption=f"Noisy input (noise factor {factor:.2f})", scale=scale)
            with right:
                show_grid(recon, caption=f"Reconstruction (MSE against the clean images "
                                         f"{sweep_point(sweep, factor)['mse']:.4f} over {over} test "
                                         "images, as in the chart)", scale=scale)
            sweeps += [{"run": name, **point} for point in sweep]

    if sweeps:
        st.subheader("Error against noise factor")
        show_chart(noise_sweep_chart(pd.DataFrame(sweeps), factor, run_color_map()), key="noise_sweep_chart")
        st.caption(f"Mean error of each run's reconstruction against the clean image, over up to "
                   f"{inspect_cache.MAX_SWEEP_IMAGES:,} test images at "
                   f"{len(SWEEP_LEVELS)} noise levels (every step of the slider); the dashed line is the "
                   "slider, and the MSE under each reconstruction is its run's point there. "
                   "Click a run in the legend to highlight it.")


main()
