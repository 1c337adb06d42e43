"""Process-wide state for the Streamlit app.

Jobs belong to the server, not to a browser session: the registry is a
`st.cache_resource`, so a reload or a second tab finds the running jobs.
"""
from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from typing import Callable

import streamlit as st

from core.checkpoints import DEFAULT_ROOT, list_runs, load_history, load_run
from core.config import DataConfig, RunConfig
from core.data import DataError, Dataset, load_dataset
from core.jobs import JobRegistry, runner_from_address
from core.jobs.ray_runner import RAY_ADDRESS_ENV  # a constant: this imports no Ray
from core.jobs.restart import install_shutdown_hook, restart_message
from core.serving.limits import WorkLimits, check_data
from core.serving.roots import hide_root_paths, served_data_config
from core.charts.palette import run_colors

# Session keys shared by the pages: which dataset config the Data page chose, which run is selected.
DATA_CONFIG_KEY = "data_config"  # a DataConfig
SELECTED_RUN_KEY = "selected_run"  # a run name (str)
# Job statuses that still change: the live views poll only while a job is in one of these.
ACTIVE_STATUSES = ("queued", "loading", "running")
# Loaded datasets kept in memory (each is at most a few hundred MB of uint8 tensors).
MAX_CACHED_DATASETS = 4


def checkpoints_root() -> str:
    # An environment variable lets tests and the e2e walk point the app at a scratch folder.
    return os.environ.get("AE_LAB_CHECKPOINTS", DEFAULT_ROOT)


RESTART_NOTE_SHOWN_KEY = "restart_note_dismissed"
RESTART_NOTE_FOR_S = 3600  # sessions opened this long after a restart are no longer told of it


@st.cache_resource
def get_registry() -> JobRegistry:
    # The store is looked up here, on the script thread: job threads have no Streamlit context.
    # A served app bounds every job's work (core.serving.limits; AE_LAB_MAX_* variables).
    registry = JobRegistry(root=checkpoints_root(), load_data=_dataset_store().get,
                           runner=get_runner()[0], limits=WorkLimits.from_env())
    # What the last server's shutdown saved and queued comes back; this server's shutdown
    # (SIGTERM/SIGINT, see core.jobs.restart) saves its running jobs and writes its queue.
    registry.restore()
    install_shutdown_hook(registry.shutdown)
    # The Train page checks every setting against the batch-memory limit, whose first estimate
    # imports PyTorch's meta-kernel machinery (about a second, once per process): do that now,
    # off the page's thread, so the first student to open Train does not wait for it.
    threading.Thread(target=_warm_batch_estimate, name="ae-lab-warm-estimate", daemon=True).start()
    return registry


def _warm_batch_estimate() -> None:
    from core.config import ModelConfig
    from core.models import activation_bytes_per_image

    try:
        activation_bytes_per_image(ModelConfig(in_channels=1, image_size=8))
    except Exception:  # only a warm-up: the page's own check reports any real problem
        pass


def restart_notice() -> None:
    """Say once, at the top of the page, what a server restart saved and restored (dismissable)."""
    import time

    note = get_registry().restart_note
    if not note or st.session_state.get(RESTART_NOTE_SHOWN_KEY) or time.time() - note["at"] > RESTART_NOTE_FOR_S:
        return
    with st.container(key="restart_note"):
        left, right = st.columns([6, 1], vertical_alignment="center")
        hint = " Continue them with Resume on the Runs page." if note["saved"] else ""
        left.info(restart_message(note) + hint, icon=":material/restart_alt:")
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
    """Snapshots of the jobs that are queued, loading or running, newest first."""
    return [job for job in get_registry().snapshots() if job.status in ACTIVE_STATUSES]


@st.cache_resource(max_entries=4, show_spinner="Loading the run...")
def get_run(name: str, mtime: float):
    """A loaded run (model, history, film); `mtime` keys the cache so a re-saved run reloads."""
    return load_run(checkpoints_root(), name)


def run_mtime(name: str) -> float:
    path = os.path.join(checkpoints_root(), name, "info.json")
    return os.path.getmtime(path) if os.path.exists(path) else 0.0


def saved_runs() -> list[dict]:
    return list_runs(checkpoints_root())


def run_color_map() -> dict[str, str]:
    """Every saved run's colour, the same on every page (core.charts.palette.run_colors: by age)."""
    return run_colors([r["name"] for r in reversed(saved_runs())])


class _DatasetStore:
    """The last few loaded datasets, shared by every session. Not an st.cache_resource on
    load_dataset itself: Streamlit would record the progress bar's updates inside the cached
    call and replay them on every later hit."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: OrderedDict[str, Dataset] = OrderedDict()

    def get(self, data_cfg: DataConfig, progress: Callable[[int, int], None] | None = None) -> Dataset:
        """The dataset for data_cfg; loaded once, then served from memory. A DataError (or a
        ValueError from the serving checks) is raised, not remembered, so fixing the folder and
        trying again works."""
        # A served app reads data only from its allowed folders, within its limits (core.serving).
        try:
            load_cfg = served_data_config(data_cfg)  # a CLI run's folder inside the roots is named by its root
            check_data(load_cfg, WorkLimits.from_env())
        except ValueError as exc:  # FolderError, LimitError: the pages show DataErrors
            raise DataError(str(exc)) from None
        key = RunConfig(data=data_cfg).to_json()
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        try:
            dataset = load_dataset(load_cfg, progress)
        except DataError as exc:  # a torchvision folder inside a root is named by the root, not its path
            raise DataError(hide_root_paths(str(exc))) from None
        dataset.source = hide_root_paths(dataset.source)
        with self.lock:
            self.items[key] = dataset
            while len(self.items) > MAX_CACHED_DATASETS:
                self.items.popitem(last=False)
        return dataset


    def forget_folder(self, folder_root: str, folder: str) -> None:
        """Drop every loaded copy of the folder dataset root/folder (it was deleted); jobs that
        are training on it keep their own reference."""
        with self.lock:
            for key in list(self.items):
                data = json.loads(key)["data"]
                if data.get("dataset") == "folder" and data.get("folder_root") == folder_root \
                        and str(data.get("folder", "")).strip("/") == folder.strip("/"):
                    del self.items[key]


@st.cache_resource
def _dataset_store() -> _DatasetStore:
    return _DatasetStore()


def dataset_for(data_cfg: DataConfig, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """The dataset for a DataConfig, from the store every session and job shares;
    `progress(done, total)` is called while loading."""
    return _dataset_store().get(data_cfg, progress)


def forget_folder_dataset(folder_root: str, folder: str) -> None:
    """A deleted folder dataset leaves the shared store, so no page serves it from memory."""
    _dataset_store().forget_folder(folder_root, folder)


def chosen_data_config() -> DataConfig:
    """The DataConfig the Data page chose in this session (the built-in digits until then)."""
    return st.session_state.get(DATA_CONFIG_KEY) or DataConfig(dataset="digits")


@st.cache_data(max_entries=256, show_spinner=False)
def run_history(name: str, mtime: float) -> list[dict]:
    """A saved run's per-epoch records, read without loading its weights (comparing many runs
    must not push the runs the Inspect pages use out of get_run's cache)."""
    return load_history(checkpoints_root(), name)
