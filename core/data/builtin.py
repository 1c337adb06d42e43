"""The built-in scikit-learn digits: 1,797 handwritten digits, 8×8 grey, bundled (no network)."""
from __future__ import annotations

import numpy as np
import torch

from core.data.base import Dataset


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no network

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    return Dataset("digits", torch.from_numpy(images).unsqueeze(1),
                   torch.from_numpy(bunch.target.astype(np.int64)), [str(d) for d in range(10)],
                   {}, source="built-in: scikit-learn digits")

