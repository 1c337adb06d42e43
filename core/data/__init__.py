"""Datasets by name -> one in-memory Dataset: uint8 images N×C×H×W, int64 labels, class names
and seeded train/val/test index splits. No Streamlit here; errors are DataError with one
plain sentence the UI can show as is.

One module per source: builtin (scikit-learn digits), shapes (generated shapes), styles (the
shapes drawn in six styles: the class is the style), torchvision_sets
(MNIST, Fashion-MNIST, CIFAR-10), folder (an image folder); base (Dataset, DataError), splits.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from core.config import DataConfig, ModelConfig
from core.data.base import OFFLINE_DATASETS, SPLITS, TORCHVISION_DATASETS, DataError, Dataset, Progress
from core.lazy import lazy_exports
from core.serving.limits import WorkLimits

if TYPE_CHECKING:
    import torch

# Every source makes tensors (PyTorch, seconds to import): its module loads on first use (core.lazy), so
# the app's first page may import DataError, Dataset and DATASETS without waiting for it.
__getattr__, __dir__ = lazy_exports(__name__, {
    "core.data.builtin": ("load_digits",),
    "core.data.folder": ("load_folder",),
    "core.data.shapes": ("SHAPE_NAMES", "make_shapes"),
    "core.data.styles": ("STYLE_NAMES", "make_styles"),
    "core.data.splits": ("apply_splits", "check_fractions"),
    "core.data.torchvision_sets": ("_download_address", "_network_reachable", "load_torchvision"),
})

DATASETS: dict[str, str] = {
    "digits": "scikit-learn digits: 1,797 handwritten digits, 8×8 grey, 10 classes (built in, offline)",
    "shapes": "Generated shapes: circles, squares, triangles, stars and crosses in colour, with known "
    "position, size, rotation and hue (offline)",
    "styles": "Generated styles: the same shapes drawn in six styles (ink on paper, neon outline, stripes, "
    "chalk, red on checks, purple dots); the class is the style, for the colour style-transfer lesson (offline)",
    "mnist": "MNIST: 70,000 handwritten digits, 28×28 grey, 10 classes (torchvision)",
    "fashion-mnist": "Fashion-MNIST: 70,000 clothing images, 28×28 grey, 10 classes (torchvision)",
    "cifar10": "CIFAR-10: 60,000 small photos, 32×32 colour, 10 classes (torchvision)",
    "folder": "Your own image folder: one sub-folder per class, any image format, resized to a square",
}

__all__ = ["DATASETS", "OFFLINE_DATASETS", "SHAPE_NAMES", "SPLITS", "STYLE_NAMES", "DataError", "Dataset", "Progress",
           "balanced_sample_weights", "fill_model_shape", "load_dataset", "_download_address", "_network_reachable"]


def load_dataset(cfg: DataConfig, progress: Progress | None = None, limits: WorkLimits | None = None) -> Dataset:
    """`limits` bound an image folder's walk (depth, files, time, pixels per image); by default
    those of the environment (core.serving.limits.WorkLimits.from_env)."""
    # This package's own names (lazy, and a test may replace one): see lazy_exports above.
    from core.data import (apply_splits, check_fractions, load_digits, load_folder, load_torchvision, make_shapes,
                           make_styles)

    check_fractions(cfg)
    if cfg.dataset == "digits":
        ds, given = load_digits(), None
    elif cfg.dataset == "shapes":
        ds, given = make_shapes(cfg, progress), None
    elif cfg.dataset == "styles":
        ds, given = make_styles(cfg, progress), None
    elif cfg.dataset in TORCHVISION_DATASETS:
        ds, given = load_torchvision(cfg, progress)  # the official test set
    elif cfg.dataset == "folder":
        ds, given = load_folder(cfg, progress, limits or WorkLimits.from_env())  # a split of its own, if any
    else:
        raise DataError(f"Unknown dataset '{cfg.dataset}'; choose one of {', '.join(DATASETS)}.")
    return apply_splits(ds, given, cfg)


def fill_model_shape(model_cfg: ModelConfig, dataset: Dataset) -> ModelConfig:
    model_cfg.in_channels, model_cfg.image_size, _ = dataset.shape
    model_cfg.num_classes = dataset.num_classes
    return model_cfg


def balanced_sample_weights(labels: torch.Tensor) -> torch.Tensor:
    """1 / (count of the item's class): every class gets the same total weight."""
    import torch

    labels = labels.long()
    if labels.numel() == 0:
        return torch.zeros(0)
    counts = torch.bincount(labels).float()
    return 1.0 / counts[labels]
