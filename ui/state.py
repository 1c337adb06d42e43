"""Process-wide state for the Streamlit app.

Jobs belong to the server, not to a browser session: the registry is a
`st.cache_resource`, so a reload or a second tab finds the running jobs.
"""
from __future__ import annotations

import os
import threading
from typing import Callable

import streamlit as st

from core.checkpoints import checkpoints_root, list_runs
from core.config import DataConfig
from core.data import Dataset
from core.data_store import DatasetStore
from core.jobs import JobRegistry, runner_from_address
from core.jobs.access import max_jobs_per_student
from core.jobs.ray_worker import RAY_ADDRESS_ENV  # a constant: this imports no Ray
from core.jobs.restart import install_shutdown_hook, restart_message
from core.jobs.status import ACTIVE
from core.logs import setup_logging
from core.serving.limits import WorkLimits
from ui.text import md_message, plain_names

# Session keys shared by the pages: which dataset config the Data page chose, which run is selected.
DATA_CONFIG_KEY = "data_config"  # a DataConfig
SELECTED_RUN_KEY = "selected_run"  # a run name (str)
PAGE_DATA_KEY = "page_data_config"  # the DataConfig this run's page works on, when not the Data page's
# Job statuses that still change (core.jobs.status.ACTIVE): the live views poll only while a job is in one.
ACTIVE_STATUSES = ACTIVE


# The app's first page imports none of PyTorch, scikit-learn, Altair or pandas (seconds on a small machine);
# a background thread imports what the Train and Inspect pages need right after the server's first script
# run starts, so the next click does not wait either. AE_LAB_WARM_UP=0 turns it off (a test of what a page
# imports by itself). openTSNE, Optuna and Ray stay unloaded until a page uses them.
WARM_UP_ENV = "AE_LAB_WARM_UP"
WARM_UP_MODULES = ("torch", "core.train", "core.checkpoints.load", "core.analysis.inference",
                   "core.analysis.generation", "core.analysis.pictures", "core.analysis.embeddings",
                   "core.analysis.probe", "sklearn.datasets", "pandas", "altair", "core.charts.training",
                   "core.charts.inspect", "core.reports.figures")

RESTART_NOTE_SHOWN_KEY = "restart_note_dismissed"
RESTART_NOTE_FOR_S = 3600  # sessions opened this long after a restart are no longer told of it


@st.cache_resource
def get_registry() -> JobRegistry:
    # Each job's life, refusals and unexpected errors go to stderr and <checkpoints>/.logs (core.logs).
    setup_logging(checkpoints_root())
    # The store is looked up here, on the script thread: job threads have no Streamlit context.
    # A served app bounds every job's work (core.serving.limits; AE_LAB_MAX_* variables) and each
    # student's share (core.jobs.access: AE_LAB_MAX_JOBS_PER_STUDENT).
    registry = JobRegistry(root=checkpoints_root(), load_data=_dataset_store().get,
                           runner=get_runner()[0], limits=WorkLimits.from_env(),
                           max_jobs_per_owner=max_jobs_per_student())
    # What the last server left comes back (queued jobs; jobs it was running when killed continue
    # from their checkpoints); from now on the queue is written whenever it changes, and this
    # server's shutdown (SIGTERM/SIGINT, see core.jobs.restart) saves its running jobs.
    registry.restore()
    install_shutdown_hook(registry.shutdown)
    if os.environ.get(WARM_UP_ENV, "1").strip() != "0":
        threading.Thread(target=_warm_up, name="ae-lab-warm-up", daemon=True).start()
    return registry


def _warm_up() -> None:
    """Import WARM_UP_MODULES, then make the first batch-memory estimate: the Train page checks every
    setting against that limit, and its first estimate imports PyTorch's meta-kernel machinery (about a
    second, once per process). Off the pages' thread, once per server."""
    import importlib
    import logging

    try:
        for name in WARM_UP_MODULES:
            importlib.import_module(name)
        from core.config import ModelConfig
        from core.models import activation_bytes_per_image

        activation_bytes_per_image(ModelConfig(in_channels=1, image_size=8))
    except Exception:  # only a warm-up: the page that needs a module reports any real problem
        logging.getLogger(__name__).exception("warming up the app's modules failed")


def restart_notice() -> None:
    """Say once, at the top of the page, what a server restart saved and restored (dismissable)."""
    import time

    note = get_registry().restart_note
    if not note or st.session_state.get(RESTART_NOTE_SHOWN_KEY) or time.time() - note["at"] > RESTART_NOTE_FOR_S:
        return
    with st.container(key="restart_note"):
        left, right = st.columns([6, 1], vertical_alignment="center")
        hint = " Continue them with Resume on the Runs page." if note["saved"] else ""
        if note.get("continued") or note.get("restarted"):
            hint += " They carry on by themselves; the Train page follows them."
        left.info(md_message(restart_message(note)) + hint, icon=":material/restart_alt:")
        if right.button("Dismiss", key="dismiss_restart_note"):
            st.session_state[RESTART_NOTE_SHOWN_KEY] = True
            st.rerun()


@st.cache_resource(show_spinner="Connecting to the Ray cluster...")
def get_runner():
    """(runner, notice): where jobs run. AE_LAB_RAY_ADDRESS sends them to Ray (Ray is imported only
    then); a cluster out of reach leaves this machine's runner and one sentence for the sidebar."""
    return runner_from_address(os.environ.get(RAY_ADDRESS_ENV, ""))


@st.cache_resource
def get_experiments():
    """The experiments of this server (core.experiments.ExperimentManager over the registry).
    Made once per server (app.py asks for it on every page): an experiment the last server was
    running when it stopped continues here, following the jobs the restart queued again."""
    from core.experiments import ExperimentManager

    manager = ExperimentManager(get_registry(), root=checkpoints_root())
    manager.resume_interrupted()
    return manager


def active_jobs() -> list:
    """Summaries (core.jobs.JobSummary) of the jobs that are queued or at work, newest first."""
    return [job for job in get_registry().summaries() if job.status in ACTIVE_STATUSES]


@st.cache_resource(max_entries=4, show_spinner="Loading the run...")
def get_run(name: str, mtime: float):
    """A loaded run (model, history, film); `mtime` keys the cache so a re-saved run reloads."""
    from core.checkpoints import load_run  # PyTorch (warm_up loads it in the background)

    return load_run(checkpoints_root(), name)


def run_mtime(name: str) -> float:
    path = os.path.join(checkpoints_root(), name, "info.json")
    return os.path.getmtime(path) if os.path.exists(path) else 0.0


def saved_runs() -> list[dict]:
    return list_runs(checkpoints_root())


def run_color_map() -> dict[str, str]:
    """Every saved run's colour, the same on every page (core.charts.palette.run_colors: by age)."""
    from core.charts.palette import run_colors  # Altair: not needed by a page that draws no chart

    return run_colors([r["name"] for r in reversed(saved_runs())])


@st.cache_resource
def _dataset_store() -> DatasetStore:
    """One store for every session and job of this server (core.data_store: one load per dataset)."""
    # Class names are folder names: shown in charts and tables as they are, so without the
    # control and bidi characters that would make one read as another.
    return DatasetStore(shown_names=plain_names)


def dataset_for(data_cfg: DataConfig, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """The dataset for a DataConfig, from the store every session and job shares;
    `progress(done, total)` is called while loading."""
    return _dataset_store().get(data_cfg, progress)


def forget_folder_dataset(folder_root: str, folder: str) -> None:
    """A deleted folder dataset leaves the shared store, so no page serves it from memory."""
    _dataset_store().forget_folder(folder_root, folder)


def page_uses_data(cfg: DataConfig) -> None:
    """This page works on `cfg` (a lesson's dataset), not the Data page's choice: the sidebar says so.
    app.py forgets it before every page runs."""
    st.session_state[PAGE_DATA_KEY] = cfg


def chosen_data_config() -> DataConfig:
    """The DataConfig the Data page chose in this session (the built-in digits until then)."""
    return st.session_state.get(DATA_CONFIG_KEY) or DataConfig(dataset="digits")


@st.cache_data(max_entries=256, show_spinner=False)
def run_history(name: str, mtime: float) -> list[dict]:
    """A saved run's per-epoch records, read without loading its weights (comparing many runs
    must not push the runs the Inspect pages use out of get_run's cache)."""
    from core.checkpoints import load_history

    return load_history(checkpoints_root(), name)
