"""Pictures of images: grids for the pages, and error maps."""
from __future__ import annotations

import numpy as np
import torch

from core.train import to_float


def error_maps(originals, reconstructions) -> tuple[torch.Tensor, float]:
    """|x - x̂| averaged over the colour channels, in a black-red-yellow-white heat colour map
    scaled to the largest error shown (so small errors are still visible): (RGB images, float
    N×3×H×W, and that largest error)."""
    error = (to_float(originals) - to_float(reconstructions)).abs().mean(dim=1)
    brightest = float(error.max()) if error.numel() else 0.0
    t = error / max(brightest, 1e-8)
    heat = torch.stack([(3 * t).clamp(0, 1), (3 * t - 1).clamp(0, 1), (3 * t - 2).clamp(0, 1)], dim=1)
    return heat, brightest


def image_grid(images, nrow: int = 8, padding: int = 2, scale: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """A picture of the images in a grid, H×W×3 uint8 (torchvision.utils.make_grid; grey becomes 3
    equal channels). Images are float in [0, 1] or uint8, N×C×H×W (or one C×H×W image); each is
    enlarged by the integer `scale` with nearest-neighbour pixels (so 8×8 digits are visible) before
    the grid is laid out, so the padding stays `padding` pixels wide. pad_value: the padding's grey
    level in [0, 1] (white by default, which separates dark-background digits). A list of
    batches (e.g. originals, then their reconstructions) is laid out one after the other."""
    from torchvision.utils import make_grid

    if isinstance(images, (list, tuple)):
        images = torch.cat([to_float(batch).detach().cpu() for batch in images])
    images = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images).detach().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Images must be N×C×H×W with 1 or 3 channels, not shape {tuple(images.shape)}.")
    images = to_float(images).clamp(0, 1)
    scale = max(1, int(scale))
    if scale > 1:
        images = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    if len(images) == 0:
        return np.zeros((images.shape[2], images.shape[3], 3), dtype=np.uint8)
    grid = make_grid(images, nrow=max(1, int(nrow)), padding=int(padding), pad_value=pad_value)
    return grid.mul(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
