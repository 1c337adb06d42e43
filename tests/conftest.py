"""Shared fixtures: tiny runs trained once per test session on the built-in digits, and a
fresh checkpoints folder per test that the app (ui.state) reads through AE_LAB_CHECKPOINTS."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.checkpoints import save_run
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.train import train

# name -> model settings; all on digits (8×8 grey, 10 classes), 2 epochs, CPU: a second each.
TINY_RUNS = {
    "tiny-conv": ModelConfig(family="conv", preset="small", latent=2),
    "tiny-vae": ModelConfig(family="dense", hidden=[64, 32], latent=2, vae=True),
    "tiny-cond": ModelConfig(family="conv", preset="small", latent=4, conditional=True),
    "tiny-denoise": ModelConfig(family="conv", preset="small", latent=4),
}


def tiny_config(name: str) -> RunConfig:
    noise = 0.4 if name == "tiny-denoise" else 0.0
    return RunConfig(
        data=DataConfig(dataset="digits", seed=0),
        model=ModelConfig(**vars(TINY_RUNS[name])),
        train=TrainConfig(epochs=2, batch_size=64, device="cpu", seed=0, noise_factor=noise),
        name=name,
    )


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
