"""Image tensors as training uses them: uint8 in memory, float in [0, 1] per batch, noise for a
denoising AE, and the index batches of one epoch."""
from __future__ import annotations

import torch


def to_float(images_uint8) -> torch.Tensor:
    """uint8 images -> float in [0, 1] (on the same device); float input is returned as float32."""
    images = torch.as_tensor(images_uint8)
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    return images.float()


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] -> uint8 on the CPU (the film's frames)."""
    return x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


def channel_means(images_uint8: torch.Tensor) -> torch.Tensor:
    """Mean intensity of each channel over N×C×H×W uint8 images, in [0, 1] (float32, C values)."""
    return (images_uint8.sum(dim=(0, 2, 3), dtype=torch.float64)
            / (255.0 * images_uint8[:, 0].numel())).float()


def add_noise(x: torch.Tensor, factor: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """clip(x + factor * N(0, 1), 0, 1); x is returned unchanged when factor is 0."""
    if factor <= 0:
        return x
    if generator is not None and generator.device != x.device:
        noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
    else:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + factor * noise).clamp_(0.0, 1.0)


def epoch_batches(count, batch_size, weights, generator, device=None) -> list[torch.Tensor]:
    """Index batches of one epoch: a fresh permutation, or a class-balanced draw with replacement.
    The draw uses a CPU generator (the same on every device); the indices then move in one copy."""
    if weights is None:
        order = torch.randperm(count, generator=generator)
    else:
        order = torch.multinomial(weights, count, replacement=True, generator=generator)
    batches = list(torch.split(order.to(device) if device is not None else order, batch_size))
    # A lone last image would make batch-norm layers fail in training mode; fold it into the batch before.
    if len(batches) > 1 and batches[-1].numel() == 1:
        batches[-2] = torch.cat([batches[-2], batches[-1]])
        batches.pop()
    return batches
