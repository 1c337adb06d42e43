"""Process-wide state for the Streamlit app.

Jobs belong to the server, not to a browser session: the registry is a
`st.cache_resource`, so a reload or a second tab finds the running jobs.
"""
from __future__ import annotations

import os

import streamlit as st

from core.config import DataConfig, RunConfig
from core.checkpoints import DEFAULT_ROOT, list_runs, load_run
from core.data import load_dataset
from core.jobs import JobRegistry


def checkpoints_root() -> str:
    # An environment variable lets tests and the e2e walk point the app at a scratch folder.
    return os.environ.get("AE_LAB_CHECKPOINTS", DEFAULT_ROOT)


@st.cache_resource
def get_registry() -> JobRegistry:
    return JobRegistry(root=checkpoints_root())


@st.cache_resource(max_entries=4, show_spinner="Loading the run...")
def get_run(name: str, mtime: float):
    """A loaded run (model, history, film); `mtime` keys the cache so a re-saved run reloads."""
    return load_run(checkpoints_root(), name)


def run_mtime(name: str) -> float:
    path = os.path.join(checkpoints_root(), name, "info.json")
    return os.path.getmtime(path) if os.path.exists(path) else 0.0


def saved_runs() -> list[dict]:
    return list_runs(checkpoints_root())


@st.cache_resource(max_entries=4, show_spinner="Loading the dataset...")
def get_dataset(data_cfg_json: str):
    """The dataset for a DataConfig (passed as JSON so the cache key is plain text)."""
    cfg = RunConfig.from_json(data_cfg_json).data
    return load_dataset(cfg)


def dataset_for(data_cfg: DataConfig):
    return get_dataset(RunConfig(data=data_cfg).to_json())


# Session keys shared by the pages: which dataset config the Data page chose, which run is selected.
DATA_CONFIG_KEY = "data_config"  # a DataConfig
SELECTED_RUN_KEY = "selected_run"  # a run name (str)
