"""The sidebar every page shares: the training device, the chosen dataset, the current run and
the jobs the server is running or has queued."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.data import DATASETS
from core.serving.roots import folder_value
from ui.projector import projector_toggle
from ui.login import account_box
from ui.owners import teacher_sign_in
from ui.state import PAGE_DATA_KEY, SELECTED_RUN_KEY, active_jobs, chosen_data_config, get_runner, saved_runs
from ui.text import md_text

SIDEBAR_POLL_SECONDS = 2
SIDEBAR_POLLING_KEY = "sidebar_jobs_polling"
DATASET_LABELS = {
    "digits": "Digits (8×8, built in)",
    "shapes": "Shapes (generated)",
    "styles": "Styles (generated, colour)",
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "folder": "Image folder",
}


@st.cache_resource
def auto_device_label() -> str:
    """What `auto` trains on here, e.g. "CUDA · NVIDIA H100" or "CPU"."""
    from core.train import device_label, resolve_device  # PyTorch: drawn after the page, warmed up meanwhile

    return device_label(resolve_device("auto"))


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, DATASETS.get(name, name))


def dataset_markdown(name: str) -> str:
    """dataset_label as Markdown: a name that is none of ours (a run imported from elsewhere) as text."""
    return dataset_label(name) if name in DATASETS else md_text(name)


def describe_data(cfg) -> str:
    """The dataset of a DataConfig in a few words, as Markdown (the folder's name shown as text)."""
    label = dataset_markdown(cfg.dataset)
    if cfg.dataset == "folder" and (cfg.folder or cfg.folder_root):
        # root name + relative path in the served app: never a server path
        # A run trained by the CLI holds the folder's server path: only its last part is shown.
        folder = folder_value(cfg.folder_root, cfg.folder) if cfg.folder_root else Path(cfg.folder).name
        label += f" · {md_text(folder)}"
    if cfg.limit:
        label += f" · first {cfg.limit:,} images"
    return label


def jobs_status() -> None:
    """The server's running and queued jobs; a fragment that polls only while there are any
    (when the last one ends, a full rerun redraws it without polling)."""
    jobs = active_jobs()
    if not jobs:
        if st.session_state.get(SIDEBAR_POLLING_KEY):
            st.session_state[SIDEBAR_POLLING_KEY] = False
            st.rerun()
        st.caption("No training job running.")
        return
    running = [j for j in jobs if j.status != "queued"]
    queued = sorted((j for j in jobs if j.status == "queued"), key=lambda j: j.queue_position or 0)
    for job in running:
        where = f", epoch {job.epoch}/{job.total_epochs}" if job.status == "running" else ""
        st.caption(f":material/play_circle: {md_text(job.name)}: {job.status}{where}")
    for job in queued:
        st.caption(f":material/schedule: {md_text(job.name)}: queued, position {job.queue_position}")


def render_sidebar(container) -> None:
    """Fill `container` (a slot in st.sidebar); app.py calls this after the page ran, so a
    dataset or run chosen on this very run is already shown."""
    with container:
        projector_toggle()
        st.markdown(f"**Device:** {auto_device_label()}")
        runner, notice = get_runner()
        st.markdown(f"**Jobs run on:** {runner.describe()}")
        if notice:
            st.warning(notice, icon=":material/cloud_off:")  # the teacher's own address
        page_data = st.session_state.get(PAGE_DATA_KEY)  # e.g. a lesson's own dataset
        st.markdown(f"**Dataset:** {describe_data(page_data or chosen_data_config())}"
                    + (" (this page's)" if page_data else ""))
        run = st.session_state.get(SELECTED_RUN_KEY)
        st.markdown(f"**Current run:** {md_text(run)}" if run else "**Current run:** none yet")
        run_row = next((r for r in saved_runs() if r["name"] == run), None) if run else None
        if run_row and run_row.get("dataset"):
            # The Inspect pages show the run's own data, which may not be the Data page's choice.
            st.caption(f"Trained on {dataset_markdown(str(run_row['dataset']))}")
        polling = bool(active_jobs())
        st.session_state[SIDEBAR_POLLING_KEY] = polling
        st.fragment(jobs_status, run_every=SIDEBAR_POLL_SECONDS if polling else None)()
        account_box()
        teacher_sign_in()
