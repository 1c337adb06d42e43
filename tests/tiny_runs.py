"""The tiny runs the page tests share (trained once per session by conftest's trained_runs), in a
module of their own: test files import tiny_config from here, since `conftest` is ambiguous when
pytest collects tests/ and tests/e2e/ together."""
from __future__ import annotations

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

# name -> model settings; all on digits (8×8 grey, 10 classes), 2 epochs, CPU: a second each.
TINY_RUNS = {
    "tiny-conv": ModelConfig(family="conv", preset="small", latent=2),
    "tiny-vae": ModelConfig(family="dense", hidden=[64, 32], latent=2, vae=True),
    "tiny-cond": ModelConfig(family="conv", preset="small", latent=4, conditional=True),
    "tiny-denoise": ModelConfig(family="conv", preset="small", latent=4),
}


def tiny_config(name: str) -> RunConfig:
    noise = 0.4 if name == "tiny-denoise" else 0.0
    return RunConfig(
        data=DataConfig(dataset="digits", seed=0),
        model=ModelConfig(**vars(TINY_RUNS[name])),
        train=TrainConfig(epochs=2, batch_size=64, device="cpu", seed=0, noise_factor=noise),
        name=name,
    )
