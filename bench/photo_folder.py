"""A generated folder of photo-like colour images of two classes (no download): textured shapes
on coloured, shaded backgrounds, e.g. 150 per class at 64 px. The lesson's "few hundred photos"
case, for bench/small_folder.py and the tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("sunsets", "meadows")


def photo_like(rng: np.random.Generator, size: int, kind: int) -> np.ndarray:
    """One H×W×3 uint8 picture: class 0 a warm gradient with a bright disc, class 1 a cool/green
    gradient with a dark textured block; colours, positions, sizes and grain vary per image."""
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    if kind == 0:
        top = rng.uniform([0.7, 0.3, 0.1], [1.0, 0.6, 0.35])
        bottom = rng.uniform([0.3, 0.05, 0.2], [0.6, 0.25, 0.5])
    else:
        top = rng.uniform([0.3, 0.5, 0.7], [0.6, 0.8, 1.0])
        bottom = rng.uniform([0.1, 0.4, 0.05], [0.35, 0.7, 0.25])
    image = top[None, None] * (1 - yy[..., None]) + bottom[None, None] * yy[..., None]
    cx, cy = rng.uniform(0.25, 0.75, 2)
    radius = rng.uniform(0.12, 0.25)
    if kind == 0:
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < radius ** 2
        colour = rng.uniform([0.9, 0.75, 0.3], [1.0, 0.95, 0.6])
    else:
        mask = (np.abs(xx - cx) < radius) & (np.abs(yy - cy) < radius * rng.uniform(0.5, 1.5))
        colour = rng.uniform([0.05, 0.1, 0.05], [0.3, 0.3, 0.2])
    stripes = 0.08 * np.sin((xx * rng.uniform(10, 30) + yy * rng.uniform(0, 10)) * np.pi)
    image[mask] = colour + stripes[mask, None]
    image += rng.normal(0, 0.04, image.shape)  # film grain
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def write_photo_folder(root, per_class: int = 150, size: int = 64, seed: int = 0) -> Path:
    """root/<class>/<n>.png for both classes; returns root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            Image.fromarray(photo_like(rng, size, kind)).save(root / name / f"{n:04d}.png")
    return root
