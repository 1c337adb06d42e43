"""How well a model reconstructs: the validation loss after each epoch, the film's frame, and the
test metrics at the end."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from core.train.devices import device_generator
from core.train.images import add_noise, to_float, to_uint8

if TYPE_CHECKING:
    from core.train.setup import Setup


@torch.no_grad()
def evaluate(model, images_uint8: torch.Tensor, labels, device, batch_size: int = 512) -> dict[str, float]:
    """Mean squared and mean absolute error over all pixel values in [0, 1] (eval mode)."""
    device = torch.device(device)
    model.to(device).eval()
    count = images_uint8.shape[0]
    if count == 0:
        return {"mse": float("nan"), "mae": float("nan")}
    squared = torch.zeros((), dtype=torch.float64, device=device)
    absolute = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, count, batch_size):
        x = to_float(images_uint8[start : start + batch_size].to(device))
        y = labels[start : start + batch_size].to(device) if labels is not None else None
        recon = model(x, y).recon
        diff = recon - x
        squared += diff.pow(2).sum(dtype=torch.float64)
        absolute += diff.abs().sum(dtype=torch.float64)
    values = images_uint8[0].numel() * count
    return {"mse": float(squared) / values, "mae": float(absolute) / values}


@torch.no_grad()
def validate(run: "Setup") -> tuple[float, float, float]:
    """(loss, reconstruction part, KL part) on the validation split, in eval mode, with the same
    denoising noise every epoch (so a denoising AE's validation curve is not jittery)."""
    model, tc = run.model, run.cfg.train
    model.eval()
    noise = device_generator(run.device, tc.seed + 2)
    sums = torch.zeros(2, dtype=torch.float64, device=run.device)
    for start in range(0, run.val_x.shape[0], run.eval_batch):
        x = to_float(run.val_x[start : start + run.eval_batch])
        out = model(add_noise(x, tc.noise_factor, noise), run.val_y[start : start + run.eval_batch])
        recon, kl = model.loss_parts(out, x, tc.loss)
        sums += torch.stack([recon, kl]).double() * x.shape[0]
    val_recon, val_kl = (sums / run.val_x.shape[0]).tolist()
    return val_recon + (model.cfg.beta * val_kl if model.cfg.vae else 0.0), val_recon, val_kl


@torch.no_grad()
def film_frame(run: "Setup") -> torch.Tensor:
    """The fixed validation images' reconstructions as uint8 (the model is in eval mode after validate)."""
    return to_uint8(run.model(run.film_x.float().div(255), run.film_y).recon)
