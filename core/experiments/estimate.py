"""How long an experiment will take here: this machine's training speed for the base model, measured
with a few real optimiser steps, times the images every variant trains on."""
from __future__ import annotations

import copy
import time

import torch

from core.config import RunConfig
from core.data import Dataset, fill_model_shape
from core.experiments.config import ExperimentConfig, variant_count

# Validation, the film frame and the test evaluation add roughly this much to the training phase
# (measured on MNIST-10k: 5 epochs take 4.9 s of which training ~4.3 s).
OVERHEAD = 1.15
MEASURED_STEPS = 6


def measure_images_per_s(cfg: RunConfig, dataset: Dataset, steps: int = MEASURED_STEPS) -> float:
    """Training images per second of cfg's model and batch size on this machine (one warm-up
    step, then `steps` timed forward/backward/update steps on real training images)."""
    from core.models import build_model
    from core.train import make_optimizer, resolve_device, to_float

    device = resolve_device(cfg.train.device)
    model_cfg = fill_model_shape(copy.deepcopy(cfg.model), dataset)
    model = build_model(model_cfg).to(device).train()
    optimizer = make_optimizer(cfg.train.optimizer, model.parameters(), cfg.train.lr)
    index = dataset.splits["train"]
    batch = min(int(cfg.train.batch_size), len(index))
    x = to_float(dataset.images[index[:batch]].to(device))
    y = dataset.labels[index[:batch]].to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x, y).recon, x).backward()
        optimizer.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / max(time.perf_counter() - started, 1e-9)


def estimate_seconds(exp: ExperimentConfig, train_images: int, images_per_s: float) -> float:
    """Seconds to train every variant one after the other (a search: every trial, none pruned)."""
    images = variant_count(exp) * exp.base.train.epochs * train_images
    return OVERHEAD * images / max(images_per_s, 1e-9)
