"""Shared fixtures: tiny runs trained once per test session on the built-in digits, and a
fresh checkpoints folder per test that the app (ui.state) reads through AE_LAB_CHECKPOINTS."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.checkpoints import save_run
from core.config import DataConfig
from core.data import load_dataset
from core.train import train
from tiny_runs import TINY_RUNS, tiny_config

@pytest.fixture(scope="session")
def digits():
    return load_dataset(DataConfig(dataset="digits", seed=0))


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, digits) -> Path:
    """A read-only folder holding every TINY_RUNS run. Copy it (see `app_runs`) before changing it."""
    root = tmp_path_factory.mktemp("trained_runs")
    for name in TINY_RUNS:
        cfg = tiny_config(name)
        save_run(root, name, cfg, train(cfg, digits))
    return root


@pytest.fixture
def app_runs(trained_runs, tmp_path, monkeypatch) -> Path:
    """A private copy of the tiny runs, which the app sees as its checkpoints folder."""
    root = tmp_path / "checkpoints"
    shutil.copytree(trained_runs, root)
    monkeypatch.setenv("AE_LAB_CHECKPOINTS", str(root))
    return root


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """The app's data folder (the allowed root named "data"), empty, in a scratch place."""
    root = tmp_path / "served" / "data"
    root.mkdir(parents=True)
    monkeypatch.setenv("AE_LAB_DATA_DIR", str(root))
    monkeypatch.delenv("AE_LAB_DATA_DIRS", raising=False)
    return root


@pytest.fixture
def no_runs(tmp_path, monkeypatch) -> Path:
    """An empty checkpoints folder for the app: the 'no run yet' state."""
    root = tmp_path / "empty-checkpoints"
    root.mkdir()
    monkeypatch.setenv("AE_LAB_CHECKPOINTS", str(root))
    return root


APP_JOB_TIMEOUT = 120


@pytest.fixture
def app_registry():
    """The app's job registry (ui.state.get_registry, made on first use: set the environment it
    reads first); every job still running at the end is stopped and waited for."""
    from ui.state import get_registry

    jobs = get_registry()
    yield jobs
    for job in jobs.snapshots():
        jobs.stop(job.id)
    for job in jobs.snapshots():
        jobs.wait(job.id, timeout=APP_JOB_TIMEOUT)


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches():
    """AppTest shares Streamlit's caches within a process; each test starts from empty ones so
    one test's runs, datasets or job registry never leak into the next."""
    try:
        import streamlit as st
    except ImportError:  # core-only environments
        yield
        return
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
