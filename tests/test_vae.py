"""The VAE's loss (Autoencoder.loss_parts, training_loss): recon + β × KL / max(C·H·W, 784), and a
default VAE on digits that learns codes instead of collapsing to the prior (one grey blob)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import core.train.setup as train_setup
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import fill_model_shape
from core.defaults import suggested_training
from core.models import MIN_KL_VALUES, AEOutput, Autoencoder, build_model, kl_divergence
from core.train import to_float, train


def batch(seed=0, n=16, shape=(1, 8, 8), latent=3):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, *shape, generator=g)
    recon = (target + 0.2 * torch.randn(n, *shape, generator=g)).clamp(0.01, 0.99)
    mu, logvar = torch.randn(n, latent, generator=g), 0.3 * torch.randn(n, latent, generator=g)
    return AEOutput(recon, mu, mu, logvar), target


@pytest.mark.parametrize("side", [28, 8])
def test_the_kl_part_is_the_kl_per_pixel_value_but_at_least_per_784(side):
    """28×28: loss × C·H·W is the textbook β-VAE loss (summed squared error + β·KL: a Gaussian
    decoder with σ² = 1/2). 8×8: the KL is divided by 784, not 64, so it weighs 64/784 as much."""
    out, target = batch(shape=(1, side, side))
    beta, pixels = 0.7, side * side
    model = build_model(ModelConfig(family="dense", hidden=[4], latent=3, vae=True, beta=beta, image_size=side))
    loss, recon, kl = model.training_loss(out, target, "mse")
    kl_image = kl_divergence(out.mu, out.logvar)
    squared = (out.recon - target).pow(2).sum(dim=(1, 2, 3)).mean()
    assert float(loss) == pytest.approx(float(recon + beta * kl), rel=1e-6)
    assert float(kl) == pytest.approx(float(kl_image) / max(pixels, MIN_KL_VALUES), rel=1e-6)
    if pixels >= MIN_KL_VALUES:
        assert float(loss) * pixels == pytest.approx(float(squared + beta * kl_image), rel=1e-5)
    bce_loss, bce, _ = model.training_loss(out, target, "bce")
    assert float(bce) == pytest.approx(float(F.binary_cross_entropy(out.recon, target)), rel=1e-6)
    assert float(bce_loss) == pytest.approx(float(bce + beta * kl), rel=1e-6)


def prior_spread(model, samples=64) -> float:
    """Mean over pixels of the std across decoded codes z ~ N(0, I): ~0 when every sample is one blob."""
    z = torch.randn(samples, model.cfg.latent, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return float(model.eval().decode(z).std(dim=0).mean())


def kl_per_image(model, dataset) -> float:
    x, y = dataset.split("test")
    with torch.no_grad():
        out = model.eval()(to_float(x), y)
    return float(kl_divergence(out.mu, out.logvar))


@pytest.mark.parametrize("model", [
    {"family": "dense", "hidden": [256, 128], "latent": 2},  # the teacher's report: dense, small preset, latent 2
    {"family": "conv", "preset": "small", "latent": 16},  # the Train page's default model
])
def test_a_default_vae_on_digits_learns_codes_and_varied_samples(digits, model):
    """β = 1 with the Train page's suggested batch and epochs. Measured with the old KL part (KL/64):
    KL 0.23 and 0.00 nats per image, prior samples' spread 0.044 and 0.008 (one grey blob); see
    BENCHMARKS.md for today's figures (the plain AEs' spreads: 0.15 and 0.20)."""
    suggestion = suggested_training(len(digits.splits["train"]))
    cfg = RunConfig(data=DataConfig(dataset="digits", seed=0), model=ModelConfig(**model, vae=True, beta=1.0),
                    train=TrainConfig(batch_size=suggestion.batch_size, epochs=suggestion.epochs, device="cpu"))
    fill_model_shape(cfg.model, digits)
    result = train(cfg, digits)
    assert result.status == "finished"
    assert kl_per_image(result.model, digits) > 2.0
    assert prior_spread(result.model) > 0.1
    # The codes explain the digits: well below predicting the mean image (MSE ≈ the pixel variance, 0.073).
    assert result.test_metrics["mse"] < 0.05
    last = result.history[-1]
    assert last.val_kl > 1e-3
    assert last.val_loss == pytest.approx(last.val_recon + last.val_kl, rel=1e-6)


def test_the_eager_step_uses_the_shared_loss_definition(small_digits, monkeypatch):
    """The eager step and the CUDA graph's step both call the model's training_loss: one definition.
    (On a GPU, tests/test_cuda_graph.py checks the captured step calls it too.)"""
    calls = []
    real = Autoencoder.training_loss

    def spy(self, out, target, loss_name):
        calls.append((loss_name, self.cfg.vae, self.cfg.beta))
        return real(self, out, target, loss_name)

    monkeypatch.setattr(Autoencoder, "training_loss", spy)
    cfg = RunConfig(data=DataConfig(dataset="digits", seed=0),
                    model=ModelConfig(family="dense", hidden=[32], latent=2, vae=True, beta=2.0),
                    train=TrainConfig(batch_size=64, epochs=1, device="cpu", loss="mae"))
    result = train(cfg, small_digits)
    assert len(calls) == len(result.batch_losses) == 5
    assert set(calls) == {("mae", True, 2.0)}
    record = result.history[0]
    assert record.train_loss == pytest.approx(record.train_recon + 2.0 * record.train_kl, rel=1e-6)
    assert record.val_loss == pytest.approx(record.val_recon + 2.0 * record.val_kl, rel=1e-6)


def test_validation_kl_part_does_not_depend_on_the_evaluation_batch(small_digits, monkeypatch):
    """64 validation images in one evaluation batch (the CPU's 1,024) or in four of 16: the same numbers."""
    cfg = RunConfig(data=DataConfig(dataset="digits", seed=0),
                    model=ModelConfig(family="dense", hidden=[32], latent=2, vae=True),
                    train=TrainConfig(batch_size=16, epochs=1, device="cpu"))
    whole = train(cfg, small_digits).history[0]
    monkeypatch.setattr(train_setup, "inference_batch_size", lambda device, pixels: 1)  # -> the batch, 16
    pieces = train(cfg, small_digits).history[0]
    assert pieces.train_loss == whole.train_loss  # the same training: only the evaluation batches differ
    assert pieces.val_kl == pytest.approx(whole.val_kl, rel=1e-5)
    assert pieces.val_loss == pytest.approx(whole.val_loss, rel=1e-5)


@pytest.fixture(scope="module")
def small_digits(digits):
    from dataclasses import replace
    sizes = {"train": 320, "val": 64, "test": 64}
    return replace(digits, splits={name: digits.splits[name][:n] for name, n in sizes.items()})


def test_pixel_spread_is_zero_for_one_repeated_image_and_counts_uint8_as_unit_range():
    from core.analysis import pixel_spread

    same = torch.full((5, 1, 4, 4), 0.3)
    assert pixel_spread(same) == 0.0
    two = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 4, 4)
    assert pixel_spread(two) == pytest.approx(math.sqrt(0.5))  # the sample std of {0, 1}
    assert pixel_spread(same[:1]) == 0.0
