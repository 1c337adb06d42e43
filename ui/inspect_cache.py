"""Cached work of the Inspect pages: encoding the test set, per-image errors, projections,
clusters, noise sweeps.

Each result is keyed by run name + checkpoint mtime + settings, so moving a slider never
redoes it, and a re-saved run is recomputed. The loaded run is unhashable: it is passed as a
leading-underscore parameter, which st.cache_data leaves out of the key.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import analysis
from ui.state import dataset_for

# Points in the latent scatter: t-SNE on a few thousand keeps a class waiting seconds, not
# minutes; the page lets a user go up to MAX_LATENT_POINTS.
DEFAULT_LATENT_POINTS = 3000
MAX_LATENT_POINTS = 10_000
LATENT_POINT_CHOICES = (500, 1000, 2000, 3000, 5000, 10_000)
# The noise sweep is an average: a couple of thousand images make a smooth curve.
MAX_SWEEP_IMAGES = 2000


def test_split(run):
    """(uint8 images, int64 labels, dataset) of the run's test split."""
    dataset = dataset_for(run.config.data)
    images, labels = dataset.split("test")
    return images, labels, dataset


@st.cache_data(max_entries=8, show_spinner="Encoding the test set...")
def encoded_test_set(run_name: str, mtime: float, _run) -> dict:
    """Codes of every test image: {"codes": N×latent float32, "labels": int64 N}."""
    images, labels, _ = test_split(_run)
    codes = analysis.encode(_run.model, images, labels)
    return {"codes": np.asarray(codes, dtype=np.float32), "labels": labels.numpy()}


@st.cache_data(max_entries=16, show_spinner=False)
def prior_spread_ratio(run_name: str, mtime: float, _run, _dataset) -> float:
    """core.analysis.prior_spread_ratio of the run's VAE against its test images (64 decoded codes)."""
    return analysis.prior_spread_ratio(_run.model, _dataset.split("test")[0])


LABEL_SPREAD_IMAGES = 32  # test images whose decodings with every label are compared


@st.cache_data(max_entries=16, show_spinner="Measuring what the label changes...")
def label_spread_ratio(run_name: str, mtime: float, _run, _dataset) -> float:
    """How much a conditional model's decodings of one code differ from label to label, over how much
    the test images differ from each other (core.analysis.pixel_spread of each), averaged over the
    first LABEL_SPREAD_IMAGES test images: near 0 when the decoder ignores the label (every label
    draws the same image), about 0.5 or more when each label draws something of its own."""
    images, labels = _dataset.split("test")
    images, labels = images[:LABEL_SPREAD_IMAGES], labels[:LABEL_SPREAD_IMAGES]
    real = analysis.pixel_spread(images)
    if real == 0.0 or len(images) == 0:
        return 1.0
    codes = analysis.encode(_run.model, images, labels)
    spreads = [analysis.pixel_spread(analysis.decode_with_every_label(_run.model, code)) for code in codes]
    return float(np.mean(spreads)) / real


# Training images a small test set's scatter adds.
TRAINING_POINTS = 1500


@st.cache_data(max_entries=8, show_spinner="Encoding training images...")
def encoded_training_images(run_name: str, mtime: float, _run) -> dict:
    """Codes of the first TRAINING_POINTS training images: {"codes", "labels"}."""
    images, labels = dataset_for(_run.config.data).split("train")
    images, labels = images[:TRAINING_POINTS], labels[:TRAINING_POINTS]
    codes = analysis.encode(_run.model, images, labels)
    return {"codes": np.asarray(codes, dtype=np.float32), "labels": labels.numpy()}


@st.cache_data(max_entries=16, show_spinner=False)
def projected_with_training(run_name: str, mtime: float, points: int, method: str, seed: int,
                            _codes: np.ndarray, _train_codes: np.ndarray) -> np.ndarray:
    """The first `points` test codes, then the training codes, projected together (one PCA or
    t-SNE for both, so they share the axes)."""
    both = np.concatenate([_codes[:points], _train_codes])
    return np.asarray(analysis.project(both, method, seed=seed), dtype=np.float32)


@st.cache_data(max_entries=8, show_spinner="Measuring the error of every test image...")
def test_errors(run_name: str, mtime: float, _run) -> np.ndarray:
    """Reconstruction MSE of every test image, in test-split order."""
    images, labels, _ = test_split(_run)
    return np.asarray(analysis.per_image_errors(_run.model, images, labels))


@st.cache_data(max_entries=16, show_spinner=False)
def projected(run_name: str, mtime: float, points: int, method: str, seed: int,
              _codes: np.ndarray) -> np.ndarray:
    """The first `points` codes in 2-D ("raw", "pca" or "tsne"); the page shows its own spinner
    for t-SNE, which is the slow one."""
    return np.asarray(analysis.project(_codes[:points], method, seed=seed), dtype=np.float32)


@st.cache_data(max_entries=16, show_spinner=False)
def pca_explained(run_name: str, mtime: float, points: int, _codes: np.ndarray) -> tuple[float, float, float]:
    """(PC 1, PC 2, both): the share of the first `points` codes' variance the latent plot's two PCA
    axes hold (the same fit as analysis.project's); (1, 0, 1) for a code of two or fewer dimensions."""
    codes = np.asarray(_codes[:points], dtype=np.float64)
    if codes.ndim != 2 or codes.shape[1] <= 2 or len(codes) < 3:
        return 1.0, 0.0, 1.0
    from sklearn.decomposition import PCA

    ratios = PCA(n_components=2, random_state=0).fit(codes).explained_variance_ratio_
    return float(ratios[0]), float(ratios[1]), float(ratios.sum())


@st.cache_data(max_entries=16, show_spinner="Clustering the codes...")
def clusters(run_name: str, mtime: float, points: int, k: int, seed: int,
             _codes: np.ndarray) -> np.ndarray:
    """k-means cluster of each of the first `points` codes."""
    return np.asarray(analysis.kmeans_labels(_codes[:points], k, seed=seed))


@st.cache_data(max_entries=16, show_spinner="Sweeping the noise factor...")
def noise_sweep(run_name: str, mtime: float, max_images: int, levels: tuple[float, ...], _run) -> list[dict]:
    """Reconstruction error of the run's first max_images test images at each noise factor in
    `levels` (seed 0 for every run)."""
    images, labels, _ = test_split(_run)
    images, labels = images[:max_images], labels[:max_images]
    return analysis.noise_sweep(_run.model, images, labels, levels=list(levels), seed=0)
