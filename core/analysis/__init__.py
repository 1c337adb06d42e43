"""Everything the Inspect pages compute from a trained model, as a small package: inference
(codes, reconstructions, errors, noise sweeps, decoding), embeddings (projections, clusters),
generation (grids, interpolations, samples), pictures (image grids, error maps) and the classifier
probe. Every name callers use is importable from here."""
from core.lazy import lazy_exports

# All of it needs PyTorch (and t-SNE scikit-learn or openTSNE): each part loads on first use (core.lazy),
# so a page may `from core import analysis` at the top without waiting seconds before it draws.
__getattr__, __dir__ = lazy_exports(__name__, {
    "core.analysis.embeddings": ("PROJECTIONS", "code_at", "kmeans_labels", "project"),
    "core.analysis.generation": ("COLLAPSED_SPREAD", "SPREAD_SAMPLES", "decode_with_every_label", "interpolate",
                                 "manifold_grid", "pixel_spread", "prior_spread_ratio", "sample", "sample_codes"),
    "core.analysis.inference": ("DEFAULT_NOISE_LEVELS", "decode", "encode", "noise_sweep", "per_image_errors",
                                "reconstruct"),
    "core.analysis.pictures": ("error_maps", "image_grid"),
    "core.analysis.probe": ("MOST_CONFUSED", "ProbeConfig", "ProbeResult", "train_probe"),
    "core.train": ("to_float",),  # part of this package's API too
})

__all__ = ["COLLAPSED_SPREAD", "DEFAULT_NOISE_LEVELS", "MOST_CONFUSED", "PROJECTIONS", "SPREAD_SAMPLES",
           "ProbeConfig", "ProbeResult", "code_at", "decode", "decode_with_every_label", "encode", "error_maps",
           "image_grid", "interpolate", "kmeans_labels", "manifold_grid", "noise_sweep", "per_image_errors",
           "pixel_spread", "prior_spread_ratio", "project", "reconstruct", "sample", "sample_codes", "to_float",
           "train_probe"]
