"""What a model is made of, for the layer table and the server's limits: its layers with their
output shapes, its parameter count and the memory one training image keeps, all taken from the
model itself (the limits measure on PyTorch's meta device, so nothing is allocated)."""
from __future__ import annotations

import functools
from dataclasses import fields

import torch
from torch import nn

from core.config import ModelConfig
from core.models.label_style import LabelStyle
from core.validation import check_model

# Leaf layers worth a row in the layer table (containers and the rest are left out).
_TABLE_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.LeakyReLU, nn.Sigmoid,
                 nn.Tanh, nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Unflatten, nn.MaxPool2d, nn.Upsample)


def _describe(module: nn.Module) -> str:
    if isinstance(module, LabelStyle):
        return f"LabelStyle: a scale and shift of {module.table.shape[1] // 2} channels per label"
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}→{module.out_features}"
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        k = "×".join(map(str, module.kernel_size))
        return (f"{type(module).__name__} {module.in_channels}→{module.out_channels}, {k}, "
                f"stride {module.stride[0]}")
    if isinstance(module, nn.BatchNorm2d):
        return f"BatchNorm2d {module.num_features}"
    if isinstance(module, (nn.Dropout, nn.Dropout2d)):
        return f"{type(module).__name__} p={module.p:g}"
    if isinstance(module, nn.MaxPool2d):
        return f"MaxPool2d {module.kernel_size}×{module.kernel_size}"
    return type(module).__name__


def layer_table(model) -> tuple[list[dict], int]:
    """One row per leaf layer in execution order, from forward hooks on a dummy batch of 2;
    and the total parameter count. Runs in eval mode so a VAE draws no random numbers."""
    rows: list[dict] = []

    def record(name: str):
        def hook(module, _inputs, output):
            rows.append({"layer": f"{name} · {_describe(module)}",
                         "output_shape": "×".join(str(d) for d in output.shape[1:]),
                         "params": sum(p.numel() for p in module.parameters(recurse=False))})
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
               if isinstance(m, (*_TABLE_LAYERS, LabelStyle))]
    first = next(model.parameters())
    x = torch.zeros(2, *model.image_shape, device=first.device, dtype=first.dtype)
    y = torch.zeros(2, dtype=torch.long, device=first.device) if model.cfg.conditional else None
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x, y)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows, sum(p.numel() for p in model.parameters())


def _key(cfg: ModelConfig) -> tuple:
    """A hashable copy of the config, so the measurements below are cached per config (a page
    checks the same model on every rerun)."""
    return tuple((f.name, tuple(v) if isinstance(v := getattr(cfg, f.name), list) else v) for f in fields(cfg))


def _config(key: tuple) -> ModelConfig:
    return ModelConfig(**{name: list(v) if isinstance(v, tuple) else v for name, v in key})


def parameter_count(cfg: ModelConfig) -> int:
    """The number of parameters build_model(cfg) has, for a config whose data shape is filled in:
    the model is built on PyTorch's meta device (shapes, no storage), so a model far over every
    limit costs milliseconds and no memory, and the random generators are not touched."""
    return _measured(_key(cfg))[0]


def code_size_of(cfg: ModelConfig) -> int:
    """How many numbers one image's code holds in build_model(cfg) (measured as parameter_count is)."""
    return _measured(_key(cfg))[1]


def _on_meta(cfg: ModelConfig):
    """The model cfg describes, on the meta device (checked first: a ConfigError names what is wrong)."""
    from core.models import FAMILIES

    check_model(cfg)
    with torch.device("meta"):
        return FAMILIES[cfg.family](cfg)


@functools.lru_cache(maxsize=256)
def _measured(key: tuple) -> tuple[int, int]:
    model = _on_meta(_config(key))
    return sum(p.numel() for p in model.parameters()), model.code_size


def activation_bytes_per_image(cfg: ModelConfig) -> int:
    """The bytes one training image keeps alive for the backward pass (every tensor autograd saves
    in the forward pass and the loss), for a config whose data shape is filled in.

    Measured, not guessed, on the meta device (see parameter_count). Batches of 2 and 3 are run;
    their difference is one image's share (the rest, e.g. the saved weights, does not grow with
    the batch). Labels are left out: a conditional model's one-hot codes are a few bytes."""
    plain = ModelConfig(**{**vars(cfg), "conditional": False})
    return _activation_bytes(_key(plain))


@functools.lru_cache(maxsize=256)
def _activation_bytes(key: tuple) -> int:
    cfg = _config(key)
    shape = cfg.in_channels, cfg.image_size, cfg.image_size

    def saved_bytes(batch: int) -> int:
        total = 0

        def count(tensor: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        model = _on_meta(cfg).train()
        with torch.device("meta"), torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
            x = torch.zeros(batch, *shape)
            out = model(x)
            nn.functional.mse_loss(out.recon, x)
        return total

    return saved_bytes(3) - saved_bytes(2)
