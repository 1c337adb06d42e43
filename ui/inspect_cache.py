"""Cached work of the Inspect pages: encoding the test set, projections, clusters, noise sweeps.

Each result is keyed by run name + checkpoint mtime + settings, so moving a slider never
redoes it, and a re-saved run is recomputed. The loaded model/run is unhashable: it is passed
as a leading-underscore parameter, which st.cache_data leaves out of the key.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import analysis
from ui.state import dataset_for

# Enough points for a readable scatter; t-SNE on more would keep a class waiting.
MAX_LATENT_POINTS = 5000
# The noise sweep is an average: a couple of thousand images make a smooth curve.
MAX_SWEEP_IMAGES = 2000


def test_split(run):
    """(uint8 images, int64 labels, dataset) of the run's test split."""
    dataset = dataset_for(run.config.data)
    images, labels = dataset.split("test")
    return images, labels, dataset


def model_labels(run, labels):
    """Labels only matter to a conditional model; others ignore them."""
    return labels if run.config.model.conditional else None


@st.cache_data(max_entries=8, show_spinner="Encoding the test set...")
def encoded_test_set(run_name: str, mtime: float, max_points: int, _run) -> dict:
    """Codes of the first `max_points` test images: {"codes", "labels", "total"}."""
    images, labels, _ = test_split(_run)
    total = len(labels)
    images, labels = images[:max_points], labels[:max_points]
    codes = analysis.encode(_run.model, images, model_labels(_run, labels))
    return {"codes": np.asarray(codes, dtype=np.float32), "labels": labels.numpy(),
            "total": int(total)}


@st.cache_data(max_entries=16, show_spinner=False)
def projected(run_name: str, mtime: float, max_points: int, method: str, seed: int,
              _codes: np.ndarray) -> np.ndarray:
    """The codes in 2-D ("raw", "pca" or "tsne"); the page shows its own spinner for t-SNE."""
    return np.asarray(analysis.project(_codes, method, seed=seed), dtype=np.float32)


@st.cache_data(max_entries=16, show_spinner=False)
def clusters(run_name: str, mtime: float, max_points: int, k: int, seed: int,
             _codes: np.ndarray) -> np.ndarray:
    return np.asarray(analysis.kmeans_labels(_codes, k, seed=seed))


@st.cache_data(max_entries=16, show_spinner="Sweeping the noise factor...")
def noise_sweep(run_name: str, mtime: float, max_images: int, _run) -> list[dict]:
    """Reconstruction error of the run at noise factors 0, 0.1, ..., 1 (same seed for every run)."""
    images, labels, _ = test_split(_run)
    images, labels = images[:max_images], labels[:max_images]
    return analysis.noise_sweep(_run.model, images, model_labels(_run, labels),
                                levels=np.linspace(0.0, 1.0, 11), seed=0)
