"""Defaults fitted to the data: the batch size and epochs rule, the few-steps warning, and the
output layer starting at the training set's mean colour."""
from __future__ import annotations

import pytest
import torch

from bench.photo_folder import write_photo_folder
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import fill_model_shape, load_dataset
from core.defaults import (
    FEW_STEPS_PER_EPOCH,
    MAX_BATCH,
    MIN_BATCH,
    few_steps_warning,
    steps_per_epoch,
    suggested_training,
)
from core.models import build_model, fit_output_bias
from core.train import channel_means, evaluate, to_float, train


@pytest.mark.parametrize("count", [30, 240, 1437, 8000, 60000])
def test_suggested_training_makes_enough_steps(count):
    s = suggested_training(count)
    assert MIN_BATCH <= s.batch_size <= MAX_BATCH
    assert s.steps_per_epoch == steps_per_epoch(count, s.batch_size)
    if count >= MIN_BATCH * FEW_STEPS_PER_EPOCH:
        assert few_steps_warning(count, s.batch_size) is None
    assert f"batches of {s.batch_size}" in s.reason and f"{s.epochs} epochs" in s.reason


def test_a_few_hundred_photos_get_small_batches_and_more_epochs():
    # The case: ~200 training photos with batch 128 made 2 steps per epoch.
    old = few_steps_warning(200, 128)
    assert old is not None and "Only 2 optimiser steps" in old
    s = suggested_training(200)
    assert s.batch_size <= 16 and s.epochs > 10 and s.steps_per_epoch >= 10
    assert suggested_training(60000).batch_size == 128  # the homework's MNIST setting stays


@pytest.mark.parametrize("family", ["conv", "dense"])
def test_fit_output_bias_starts_at_the_mean_colour(family):
    mc = ModelConfig(family=family, hidden=[32], latent=4, in_channels=3, image_size=8, num_classes=2)
    model = build_model(mc).eval()
    means = torch.tensor([0.8, 0.5, 0.1])
    fit_output_bias(model, means)
    # Zero every weight: what is left is the bias, i.e. the starting picture's colour.
    with torch.no_grad():
        for name, p in model.decoder.named_parameters():
            if name.endswith("weight"):
                p.zero_()
        out = model.decode(torch.zeros(1, 4))
    assert torch.allclose(out[0].mean(dim=(1, 2)), means, atol=1e-4)


def test_fit_output_bias_clamps_black_backgrounds_and_checks_channels():
    model = build_model(ModelConfig(family="conv", latent=2, in_channels=1, image_size=8, num_classes=2))
    fit_output_bias(model, [0.0])
    bias = [m for m in model.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1].bias
    assert torch.isfinite(bias).all() and torch.sigmoid(bias).item() == pytest.approx(0.02, abs=1e-4)
    with pytest.raises(ValueError, match="one mean per image channel"):
        fit_output_bias(model, [0.1, 0.2, 0.3])


def test_defaults_beat_the_mean_image_on_a_small_colour_folder(tmp_path):
    """A small photo-like folder (16 px to stay quick): the data-fitted defaults reconstruct better
    than predicting the training set's mean image (bench/small_folder.py measures 64 px)."""
    folder = write_photo_folder(tmp_path / "photos", per_class=60, size=16)
    data = DataConfig(dataset="folder", folder=str(folder), image_size=16, channels=3)
    dataset = load_dataset(data)
    train_x, _ = dataset.split("train")
    test_x, test_y = dataset.split("test")
    assert torch.allclose(channel_means(train_x), to_float(train_x).mean(dim=(0, 2, 3)), atol=1e-5)
    mean_image_mse = float(((to_float(test_x) - to_float(train_x).mean(dim=0)) ** 2).mean())
    s = suggested_training(len(train_x))
    cfg = RunConfig(data=data, model=ModelConfig(family="conv", latent=16),
                    train=TrainConfig(batch_size=s.batch_size, epochs=min(s.epochs, 25), device="cpu"))
    fill_model_shape(cfg.model, dataset)
    result = train(cfg, dataset)
    mse = evaluate(result.model, test_x, test_y, torch.device("cpu"))["mse"]
    assert mse < 0.6 * mean_image_mse, (mse, mean_image_mse)
