"""Styles: the colour style-transfer lesson's dataset. The class is a *style* — a way of drawing —
and the content is shared by every class: the same five shapes at any position, size and rotation,
drawn as ink on paper, a neon outline, stripes, chalk on a board, red on a checkerboard, or purple
with white dots. A conditional decoder given the label draws the style, so its code is left to hold
the content; decoding one image's code with every label repaints that shape in every style (the
wrong-label "style transfer"). Seeded and generated like Shapes; the content factors (shape, x, y,
size, rotation) are kept for colouring the latent plot and for checking that a repainted image kept
its content.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from core.config import DataConfig
from core.data.base import DataError, Dataset, Progress, report
from core.data.shapes import _SYMMETRY_DEGREES, SHAPE_NAMES, shape_mask

Texture = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]  # (x, y, rng) -> 3×H×W


def _flat(rgb: tuple[int, int, int]) -> Texture:
    colour = np.array(rgb, np.float32).reshape(3, 1, 1)
    return lambda x, y, rng: np.broadcast_to(colour, (3, *x.shape))


def _stripes(a: tuple, b: tuple, period: float) -> Texture:
    """Diagonal stripes, `period` a fraction of the side."""
    ca, cb = (np.array(c, np.float32).reshape(3, 1, 1) for c in (a, b))
    return lambda x, y, rng: np.where(((x + y) / period) % 1.0 < 0.5, ca, cb)


def _checks(a: tuple, b: tuple, period: float) -> Texture:
    ca, cb = (np.array(c, np.float32).reshape(3, 1, 1) for c in (a, b))
    return lambda x, y, rng: np.where((np.floor(x / period) + np.floor(y / period)) % 2 == 0, ca, cb)


def _dots(ground: tuple, dot: tuple, period: float) -> Texture:
    cg, cd = (np.array(c, np.float32).reshape(3, 1, 1) for c in (ground, dot))

    def texture(x, y, rng):
        dx, dy = (x / period) % 1.0 - 0.5, (y / period) % 1.0 - 0.5
        return np.where(dx * dx + dy * dy < 0.09, cd, cg)
    return texture


def _grain(rgb: tuple, amount: float) -> Texture:
    """A colour with chalky grain (different in every image: the style, not a fixed picture)."""
    colour = np.array(rgb, np.float32).reshape(3, 1, 1)
    return lambda x, y, rng: colour + rng.normal(0.0, amount, (1, *x.shape)).astype(np.float32)


@dataclass(frozen=True)
class Style:
    name: str
    background: Texture
    ink: Texture
    outline: float = 0.0  # > 0: only the shape's edge is drawn, this wide (a fraction of the side)


STYLES = (
    Style("ink on paper", _flat((240, 232, 210)), _flat((28, 28, 40))),
    Style("neon outline", _flat((12, 14, 34)), _flat((60, 235, 255)), outline=0.09),
    Style("stripes", _flat((24, 44, 120)), _stripes((250, 205, 45), (235, 95, 25), 0.25)),
    Style("chalk", _grain((34, 88, 56), 10.0), _grain((232, 232, 222), 14.0)),
    Style("red on checks", _checks((200, 200, 206), (250, 250, 252), 0.25), _flat((205, 30, 40))),
    Style("purple dots", _flat((205, 188, 232)), _dots((108, 38, 150), (250, 250, 250), 0.2)),
)
STYLE_NAMES = tuple(style.name for style in STYLES)


def make_styles(cfg: DataConfig, progress: Progress | None) -> Dataset:
    """`cfg.shapes_count` images of `cfg.image_size` px, styles drawn equally often (the label),
    each a random shape at a random position, size and rotation (the content, kept as factors)."""
    size, count = cfg.image_size, cfg.shapes_count
    if not 8 <= size <= 512:
        raise DataError(f"Image size {size} is not supported for styles; pick a size between 8 and 512 pixels.")
    if count < 10:
        raise DataError(f"{count} images are too few to train on; generate at least 10.")
    rng = np.random.default_rng(cfg.seed)
    style = np.arange(count, dtype=np.int64) % len(STYLES)
    rng.shuffle(style)
    shape = rng.integers(0, len(SHAPE_NAMES), count).astype(np.int64)
    extent = rng.uniform(0.45, 0.85, count)
    x = rng.uniform(extent / 2, 1 - extent / 2)
    y = rng.uniform(extent / 2, 1 - extent / 2)
    rotation = rng.uniform(0, 1, count) * np.array([_SYMMETRY_DEGREES[SHAPE_NAMES[s]] for s in shape])
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    gx, gy = np.meshgrid(grid, grid)
    images = np.empty((count, 3, size, size), np.uint8)
    for i in range(count):
        drawn = STYLES[style[i]]
        alpha = shape_mask(SHAPE_NAMES[shape[i]], x[i], y[i], extent[i], rotation[i], size,
                           outline=drawn.outline)[None]
        picture = drawn.background(gx, gy, rng) * (1 - alpha) + drawn.ink(gx, gy, rng) * alpha
        images[i] = np.clip(np.rint(picture), 0, 255).astype(np.uint8)
        report(progress, i + 1, count)
    factors = {"shape": shape, "x": x.astype(np.float32), "y": y.astype(np.float32),
               "size": extent.astype(np.float32), "rotation": rotation.astype(np.float32)}
    return Dataset("styles", torch.from_numpy(images), torch.from_numpy(style), list(STYLE_NAMES), {}, factors,
                   source=f"generated: {count} shapes in {len(STYLES)} styles at {size}×{size}, seed {cfg.seed}")

