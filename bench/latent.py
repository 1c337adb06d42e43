"""Figures 4 and 5: the Latent page's projections of 10,000 codes (PCA, t-SNE) with the t-SNE's
quality, scikit-learn's default TSNE as the baseline, and the Noise page's sweep."""
from __future__ import annotations

import statistics
import time

import numpy as np
from sklearn.manifold import TSNE, trustworthiness

TRUST_NEIGHBOURS = 10


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def page_projection(codes: np.ndarray, method: str, seed: int = 0) -> tuple[np.ndarray, float]:
    """core.analysis.project exactly as the Latent page calls it (its own defaults), timed."""
    from core.analysis import project

    embedding, seconds = timed(project, codes, method, seed=seed)
    if len(embedding) != len(codes):
        raise RuntimeError(f"project() returned {len(embedding)} points for {len(codes)} codes; "
                           "the benchmark cannot tell which codes they belong to.")
    return np.asarray(embedding), seconds


def quality(codes: np.ndarray, embedding: np.ndarray) -> float:
    return float(trustworthiness(codes, embedding, n_neighbors=TRUST_NEIGHBOURS))


def sklearn_default_tsne(codes: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """The baseline a notebook would run: TSNE with every setting at scikit-learn's default."""
    return timed(TSNE(n_components=2, random_state=seed).fit_transform, codes)


def pca_seconds(codes: np.ndarray, tries: int) -> float:
    """Median of a few calls: one PCA is a few milliseconds, so one call is mostly noise."""
    return statistics.median(page_projection(codes, "pca")[1] for _ in range(tries))


def noise_sweep_seconds(model, images_uint8, tries: int) -> tuple[float, list[dict]]:
    """core.analysis.noise_sweep over its default levels (DEFAULT_NOISE_LEVELS: 0, 0.1, ..., 1),
    median of tries."""
    from core.analysis import noise_sweep

    times, sweep = [], []
    for _ in range(tries):
        sweep, seconds = timed(noise_sweep, model, images_uint8)
        times.append(seconds)
    return statistics.median(times), sweep
