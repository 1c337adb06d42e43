"""What every data source shares: the Dataset (uint8 images N×C×H×W, int64 labels, class names,
index splits), DataError (one plain sentence for the user) and progress reporting."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # annotations: DataError and Dataset are wanted by pages that need no PyTorch
    import torch

from core.config import TORCHVISION_DATASETS  # noqa: F401  (re-exported: with an official test split)

Progress = Callable[[int, int], None]
OFFLINE_DATASETS = ("digits", "shapes", "styles")
SPLITS = ("train", "val", "test")


class DataError(Exception):
    """A dataset could not be loaded; the message is one sentence for the user."""


@dataclass
class Dataset:
    name: str
    images: torch.Tensor  # uint8 N×C×H×W, all images (train+val+test)
    labels: torch.Tensor  # int64 N
    class_names: list[str]
    splits: dict[str, torch.Tensor]  # "train" / "val" / "test" -> int64 indices into images
    factors: dict[str, np.ndarray] = field(default_factory=dict)  # shapes: per-image factors
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file path, reason)
    source: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        _, c, h, w = self.images.shape
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in self.splits:
            raise DataError(f"There is no '{name}' split; use one of {', '.join(self.splits)}.")
        index = self.splits[name]
        return self.images[index], self.labels[index]

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        labels = self.labels if split is None else self.split(split)[1]
        counts = labels.bincount(minlength=self.num_classes).tolist()
        return dict(zip(self.class_names, counts))


def report(progress: Progress | None, done: int, total: int) -> None:
    # ~100 updates at most: a UI progress bar does not need one message per file.
    if progress is not None and (done == total or done % max(1, math.ceil(total / 100)) == 0):
        progress(done, total)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]
