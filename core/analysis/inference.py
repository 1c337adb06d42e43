"""Inference on a trained model, batched on its own device in eval mode under torch.inference_mode():
codes, reconstructions, per-image errors, noise sweeps and decodings. Images come in as uint8
N×C×H×W (or floats already in [0, 1]); results go back on the CPU. A code is always returned
flat (N × code size), also when the model's code is a feature map, and decode() takes it back."""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
from torch import nn

from core.train import add_noise, inference_batch_size, to_float

# The number of levels the Noise page sweeps: 0, 0.1, ..., 1.
DEFAULT_NOISE_LEVELS = np.linspace(0.0, 1.0, 11)

# ----------------------------------------------------------------------------- helpers


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextlib.contextmanager
def _inference(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout, a VAE decodes its mean) without autograd; the mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _model_labels(model: nn.Module, labels, count: int, device: torch.device) -> torch.Tensor | None:
    """Labels as int64 on the device for a conditional model (an int means that label for every
    item); None for other models, which ignore labels."""
    if not model.cfg.conditional:
        return None
    if labels is None:
        raise ValueError("This model is conditional, so it needs the class labels too; pass labels.")
    if isinstance(labels, (int, np.integer)):
        return torch.full((count,), int(labels), dtype=torch.long, device=device)
    return torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels,
                           dtype=torch.long).to(device)


def _slice(labels: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    return None if labels is None else labels[start:stop]


def as_codes(codes, model: nn.Module) -> torch.Tensor:
    """Codes as the model's decoder takes them, float32 on its device: N × code_shape, from flat
    N × code size (one flat code becomes a batch of one)."""
    z = torch.as_tensor(np.asarray(codes) if not torch.is_tensor(codes) else codes, dtype=torch.float32)
    if z.dim() == 1:
        z = z.unsqueeze(0)
    if z.dim() == 2 and len(model.code_shape) > 1 and z.shape[1] == model.code_size:
        z = z.reshape(len(z), *model.code_shape)  # a feature map, flattened by encode()
    return z.to(model_device(model))


def _batches(count: int, batch_size: int) -> range:
    return range(0, count, max(1, int(batch_size)))


def _batch_size(model: nn.Module, batch_size: int | None, values_per_item: int) -> int:
    """The caller's batch size, or (None) core.train.inference_batch_size for the model's device:
    thousands of images per batch on a GPU, cache-sized batches on the CPU."""
    if batch_size is not None:
        return max(1, int(batch_size))
    return inference_batch_size(model_device(model), values_per_item)


def _pixels(images) -> int:
    return int(np.prod(tuple(images.shape[1:]))) if len(images.shape) > 1 else 1


# ----------------------------------------------------------------------------- encoding and reconstruction


def _float_batches(model, images_uint8, labels, batch_size: int):
    """(float images on the model's device, their labels or None), one batch at a time."""
    device = model_device(model)
    count = len(images_uint8)
    batch_size = _batch_size(model, batch_size, _pixels(images_uint8))
    y = _model_labels(model, labels, count, device)
    for start in _batches(count, batch_size):
        yield to_float(images_uint8[start : start + batch_size].to(device)), _slice(y, start, start + batch_size)


def encode(model, images_uint8, labels=None, batch_size: int | None = None) -> np.ndarray:
    """The deterministic code of every image (a VAE's mean), N × code size float32 (a feature map
    flattened, channel by channel)."""
    with _inference(model):
        parts = [model.encode(x, y).flatten(1).float().cpu()
                 for x, y in _float_batches(model, images_uint8, labels, batch_size)]
    if not parts:
        return np.zeros((0, model.code_size), dtype=np.float32)
    return torch.cat(parts).numpy()


def _reconstruct_batches(model, x: torch.Tensor, y: torch.Tensor | None, batch_size: int) -> torch.Tensor:
    """Reconstructions of float images already on the model's device (call under _inference)."""
    return torch.cat([model(x[s : s + batch_size], _slice(y, s, s + batch_size)).recon
                      for s in _batches(len(x), batch_size)])


def reconstruct(model, images_uint8, labels=None, noise: float = 0.0, seed: int = 0,
                batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's input: the images with noise added, the reconstruction), both float CPU tensors.

    The noise is core.train.add_noise from a CPU generator seeded with `seed`, drawn for the whole
    batch at once: the same images, noise factor and seed always give the same picture, on any
    device and for any batch_size."""
    device = model_device(model)
    y = _model_labels(model, labels, len(images_uint8), device)
    x = to_float(torch.as_tensor(images_uint8).to(device))
    noisy = add_noise(x, float(noise), torch.Generator().manual_seed(int(seed)))
    batch_size = _batch_size(model, batch_size, _pixels(x))
    with _inference(model):
        recon = _reconstruct_batches(model, noisy, y, batch_size) if len(x) else torch.zeros_like(x)
    return noisy.cpu(), recon.float().cpu()



def per_image_errors(model, images_uint8, labels=None, batch_size: int | None = None) -> np.ndarray:
    """Mean squared error of each image's reconstruction (N floats), to find the best and worst."""
    with _inference(model):
        errors = [(model(x, y).recon - x).pow(2).flatten(1).mean(1).float().cpu()
                  for x, y in _float_batches(model, images_uint8, labels, batch_size)]
    return torch.cat(errors).numpy() if errors else np.zeros(0, dtype=np.float32)


def noise_sweep(model, images_uint8, labels=None, levels=DEFAULT_NOISE_LEVELS, seed: int = 0,
                batch_size: int | None = None) -> list[dict]:
    """Reconstruction error against the CLEAN images at each noise factor:
    [{"noise": f, "mse": ..., "mae": ...}, ...] in the order of `levels`.

    Each level re-seeds the noise with `seed`, so one point of the sweep is exactly what
    reconstruct(noise=f, seed=seed) shows. Speed: the clean images go to the device once, and each
    level is one pass of batches with the sums kept on the device until the end. batch_size None:
    256 on the CPU (measured: the activations of 256 images stay in cache, 1,024 are ~30% slower),
    core.train.inference_batch_size on an accelerator (thousands of images per batch)."""
    device = model_device(model)
    batch_size = batch_size or (256 if device.type == "cpu" else _batch_size(model, None, _pixels(images_uint8)))
    levels = [float(level) for level in np.atleast_1d(np.asarray(levels, dtype=float))]
    if len(images_uint8) == 0:
        return [{"noise": level, "mse": float("nan"), "mae": float("nan")} for level in levels]
    y = _model_labels(model, labels, len(images_uint8), device)
    clean = to_float(torch.as_tensor(images_uint8).to(device))
    values = clean.numel()
    sums = torch.zeros(len(levels), 2, dtype=torch.float64, device=device)
    with _inference(model):
        for i, level in enumerate(levels):
            noisy = add_noise(clean, level, torch.Generator().manual_seed(int(seed)))
            for start in _batches(len(clean), batch_size):
                stop = start + batch_size
                diff = model(noisy[start:stop], _slice(y, start, stop)).recon - clean[start:stop]
                sums[i, 0] += diff.pow(2).sum(dtype=torch.float64)
                sums[i, 1] += diff.abs().sum(dtype=torch.float64)
    means = (sums / values).tolist()
    return [{"noise": level, "mse": mse, "mae": mae} for level, (mse, mae) in zip(levels, means)]


def decode(model, codes, labels=None, batch_size: int | None = None) -> torch.Tensor:
    """Images decoded from codes (N × code size as encode() gives them, or one code), float N×C×H×W
    on the CPU. A conditional model needs labels: one int for all, or one per code."""
    z = as_codes(codes, model)
    y = _model_labels(model, labels, len(z), z.device)
    batch_size = _batch_size(model, batch_size, model.cfg.in_channels * model.cfg.image_size ** 2)
    with _inference(model):
        parts = [model.decode(z[s : s + batch_size], _slice(y, s, s + batch_size)).float().cpu()
                 for s in _batches(len(z), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, *model.image_shape)

