"""The latent space in 2-D: projections (raw, PCA, t-SNE) of the codes, their inverse where one
exists, and clusters."""
from __future__ import annotations

import numpy as np

PROJECTIONS = ("raw", "pca", "tsne")


def project(codes, method: str = "pca", seed: int = 0, n_jobs: int = -1) -> np.ndarray:
    """The codes in 2-D, float32 N×2: "raw" (the first two coordinates; a 1-d code gets a zero
    second axis), "pca" (scikit-learn PCA) or "tsne" (see _tsne for the method and why).

    The caller chooses how many codes to project (the Latent page takes the first N, so the
    points line up with its labels and clusters). n_jobs: CPU threads for t-SNE (-1: all cores)."""
    if method not in PROJECTIONS:
        raise ValueError(f"Unknown projection '{method}'; choose one of {', '.join(PROJECTIONS)}.")
    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 2 or codes.shape[1] < 1:
        raise ValueError(f"Codes must be a table of shape N×latent, not {codes.shape}.")
    if not np.isfinite(codes).all():
        raise ValueError("Some codes are NaN or infinite, so they cannot be projected; retrain the model.")
    if method == "raw" or codes.shape[1] == 1 or len(codes) < 3:
        # Nothing to reduce (a 1-d or 2-d code) or too few points for PCA/t-SNE: show the code itself.
        flat = np.zeros((len(codes), 2), dtype=np.float32)
        width = min(2, codes.shape[1])
        flat[:, :width] = codes[:, :width]
        return flat
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(codes).astype(np.float32)
    return _tsne(codes, seed, n_jobs)


# t-SNE settings, measured on 10,000 16-d codes of real MNIST digits (a conv AE trained with
# core.train) on the 2-core CPU while other jobs shared it, so the CPU seconds are the steadier
# figure; trustworthiness is sklearn's (10 neighbours, against the codes):
#   scikit-learn TSNE, defaults (1,000 iterations)       ~35 s on a quiet machine (the baseline)
#   scikit-learn TSNE, init="pca", max_iter=350          60 CPU-s under load,  trust 0.995
#   openTSNE defaults (250 + 500 iterations), 1 thread    54 CPU-s,             trust 0.998
#   openTSNE 125 + 250 iterations, annoy neighbours       24 CPU-s,             trust 0.998
#   openTSNE 125 + 150, exact neighbours, ints_in_interval=2:
#       neighbours 0.7 CPU-s + optimisation 7.0 CPU-s,   trust 0.998
# openTSNE wins: its FFT-interpolated gradient is far cheaper than Barnes-Hut, exact neighbours
# (a ball tree) beat annoy by 6x for codes this small, and most of the cost sits in the late
# iterations, when the picture is spread out (the FFT grid grows with it) but the neighbourhoods,
# and so the trustworthiness, no longer change: 150 iterations after the 125 of early
# exaggeration score as well as 500. Coarser FFT intervals (ints_in_interval=2) cut a third more
# at the same score. Without openTSNE, scikit-learn with a PCA start and 350 iterations (its
# minimum is 250 of early exaggeration) keeps the score at about a third of the default's time.
TSNE_EARLY_ITERATIONS = 125
TSNE_ITERATIONS = 150
TSNE_EXACT_NEIGHBOURS_UP_TO = 20_000  # beyond this, openTSNE's approximate neighbours are faster
SKLEARN_TSNE_ITERATIONS = 350


def _tsne(codes: np.ndarray, seed: int, n_jobs: int) -> np.ndarray:
    """t-SNE of the codes, float32 N×2, with openTSNE when it is installed (see the figures above)."""
    perplexity = float(min(30.0, (len(codes) - 1) / 3))
    try:
        from openTSNE import TSNE as OpenTSNE
    except ImportError:
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=SKLEARN_TSNE_ITERATIONS,
                    random_state=seed, n_jobs=n_jobs).fit_transform(codes).astype(np.float32)
    neighbors = "exact" if len(codes) <= TSNE_EXACT_NEIGHBOURS_UP_TO else "auto"
    embedding = OpenTSNE(n_components=2, perplexity=perplexity, neighbors=neighbors,
                         early_exaggeration_iter=TSNE_EARLY_ITERATIONS, n_iter=TSNE_ITERATIONS,
                         ints_in_interval=2, n_jobs=n_jobs, random_state=seed).fit(codes)
    return np.asarray(embedding, dtype=np.float32)


def kmeans_labels(codes, k: int, seed: int = 0) -> np.ndarray:
    """The k-means cluster (0..k-1) of every code."""
    from sklearn.cluster import KMeans

    codes = np.asarray(codes, dtype=np.float32)
    if not 1 <= k <= len(codes):
        raise ValueError(f"Cannot make {k} clusters out of {len(codes)} codes; pick between 1 and {len(codes)}.")
    return KMeans(n_clusters=int(k), n_init="auto", random_state=seed).fit_predict(codes)


def code_at(codes, method: str, point, seed: int = 0) -> np.ndarray:
    """The latent code behind a point (x, y) of project(codes, method): the inverse of the
    projection. "raw": the point's two coordinates, the other dimensions at the codes' mean;
    "pca": PCA's inverse_transform (the same fit as project's). t-SNE has no inverse map: a
    ValueError says to pick an existing point instead."""
    codes = np.asarray(codes, dtype=np.float32)
    x, y = (float(v) for v in point)
    if method == "tsne":
        raise ValueError("t-SNE has no inverse map, so only its points can be decoded; pick one of its points, "
                         "or use the raw or PCA projection to decode any spot.")
    if method == "raw" or codes.shape[1] == 1 or len(codes) < 3:
        code = codes.mean(axis=0)
        code[: min(2, codes.shape[1])] = [x, y][: min(2, codes.shape[1])]
        return code.astype(np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(codes)
        return pca.inverse_transform(np.array([[x, y]], dtype=np.float32))[0].astype(np.float32)
    raise ValueError(f"Unknown projection '{method}'; choose one of {', '.join(PROJECTIONS)}.")

