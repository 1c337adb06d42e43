"""Datasets drawn on the fly, seeded: coloured shapes with known generating factors (position,
size, rotation, hue) for colouring latent plots."""
from __future__ import annotations

import colorsys
import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from core.config import DataConfig
from core.data.base import DataError, Dataset, Progress, report

SHAPE_NAMES = ("circle", "square", "triangle", "star", "cross")


def _shape_polygon(kind: str, cx: float, cy: float, r: float, degrees: float) -> list[tuple[float, float]]:
    """Vertices (x right, y down) of a shape whose circumscribed circle has radius r."""
    if kind == "square":
        local = [(r * math.cos(math.radians(45 + 90 * k)), r * math.sin(math.radians(45 + 90 * k))) for k in range(4)]
    elif kind == "triangle":
        local = [(r * math.cos(math.radians(90 + 120 * k)), r * math.sin(math.radians(90 + 120 * k))) for k in range(3)]
    elif kind == "star":
        local = [((r if k % 2 == 0 else 0.45 * r) * math.cos(math.radians(90 + 36 * k)),
                  (r if k % 2 == 0 else 0.45 * r) * math.sin(math.radians(90 + 36 * k))) for k in range(10)]
    else:  # cross: a plus sign whose arm tips touch the circle
        a = 0.3 * r
        tip = math.sqrt(r * r - a * a)
        local = [(a, tip), (a, a), (tip, a), (tip, -a), (a, -a), (a, -tip),
                 (-a, -tip), (-a, -a), (-tip, -a), (-tip, a), (-a, a), (-a, tip)]
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    # counter-clockwise on screen: y grows downwards, hence the minus signs
    return [(cx + c * px - s * py, cy - (s * px + c * py)) for px, py in local]


_SYMMETRY_DEGREES = {"circle": 0.0, "square": 90.0, "triangle": 120.0, "star": 72.0, "cross": 90.0}


def shape_mask(kind: str, x: float, y: float, extent: float, rotation: float, size: int,
               outline: float = 0.0) -> np.ndarray:
    """The shape's coverage of each pixel (size×size floats in [0, 1], anti-aliased: drawn at 2-4×
    and box-downscaled); x, y the centre and extent the circumscribed diameter, as fractions of the
    side. outline > 0: only a stroke of that width (a fraction of the side) along the edge."""
    supersample = 4 if size <= 48 else 2
    canvas = size * supersample
    mask = Image.new("L", (canvas, canvas), 0)
    cx, cy, r = x * canvas, y * canvas, extent * canvas / 2
    stroke = {"outline": 255, "width": max(1, round(outline * canvas))} if outline > 0 else {}
    fill = None if outline > 0 else 255
    if kind == "circle":
        ImageDraw.Draw(mask).ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, **stroke)
    else:
        ImageDraw.Draw(mask).polygon(_shape_polygon(kind, cx, cy, r, rotation), fill=fill, **stroke)
    return np.asarray(mask.resize((size, size), Image.Resampling.BOX), np.float32) / 255.0


def make_shapes(cfg: DataConfig, progress: Progress | None) -> Dataset:
    """Coloured shapes on a dark background. Factors: x, y (centre, fraction of the side, x to the
    right, y down), size (circumscribed diameter, fraction of the side), rotation (degrees within
    the shape's symmetry period, 0 for circles, so it is what the eye sees) and hue (0..1)."""
    size, count = cfg.image_size, cfg.shapes_count
    if not 8 <= size <= 512:
        raise DataError(f"Image size {size} is not supported for shapes; pick a size between 8 and 512 pixels.")
    if count < 10:
        raise DataError(f"{count} shapes are too few to train on; generate at least 10.")
    rng = np.random.default_rng(cfg.seed)
    shape = rng.integers(0, len(SHAPE_NAMES), count).astype(np.int64)
    extent = rng.uniform(0.35, 0.8, count)
    x = rng.uniform(extent / 2, 1 - extent / 2)
    y = rng.uniform(extent / 2, 1 - extent / 2)
    rotation = rng.uniform(0, 1, count) * np.array([_SYMMETRY_DEGREES[SHAPE_NAMES[s]] for s in shape])
    hue = rng.uniform(0, 1, count)
    background = np.full((3, 1, 1), 16.0, np.float32)
    images = np.empty((count, 3, size, size), np.uint8)
    for i in range(count):
        alpha = shape_mask(SHAPE_NAMES[shape[i]], x[i], y[i], extent[i], rotation[i], size)[None]
        colour = np.array(colorsys.hsv_to_rgb(hue[i], 0.85, 1.0), np.float32).reshape(3, 1, 1) * 255.0
        images[i] = np.rint(background * (1 - alpha) + colour * alpha).astype(np.uint8)
        report(progress, i + 1, count)
    factors = {"shape": shape, "x": x.astype(np.float32), "y": y.astype(np.float32),
               "size": extent.astype(np.float32), "rotation": rotation.astype(np.float32),
               "hue": hue.astype(np.float32)}
    return Dataset("shapes", torch.from_numpy(images), torch.from_numpy(shape.copy()), list(SHAPE_NAMES),
                   {}, factors, source=f"generated: {count} shapes at {size}×{size}, seed {cfg.seed}")

