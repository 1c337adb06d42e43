"""core.train on the built-in digits (8×8 grey), on the CPU, with tiny models and 1-3 epochs."""
from __future__ import annotations

import math
import threading
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import core.train as train_module
from core.config import LOSSES, OPTIMIZERS, DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import balanced_sample_weights, fill_model_shape
from core.models import Autoencoder, build_model, fit_output_bias
from core.train import (EpochRecord, add_noise, available_devices, device_label, evaluate, make_optimizer,
                        resolve_device, train)


def config(epochs=1, family="dense", **train_settings) -> RunConfig:
    model = ModelConfig(family=family, hidden=[32], latent=4)
    settings = dict(epochs=epochs, batch_size=64, device="cpu", seed=0) | train_settings
    return RunConfig(data=DataConfig(dataset="digits", seed=0), model=model, train=TrainConfig(**settings))


@pytest.fixture(scope="module")
def small(digits):
    """A slice of digits (320 train, 64 val, 64 test images) for tests that need no real learning."""
    sizes = {"train": 320, "val": 64, "test": 64}
    return replace(digits, splits={name: digits.splits[name][:n] for name, n in sizes.items()})


def initial_state(cfg: RunConfig, dataset) -> dict[str, torch.Tensor]:
    """The weights train() starts from: the model built right after seeding with the run's seed,
    its output layer started at the training images' mean (core.models.fit_output_bias)."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(fill_model_shape(replace(cfg.model), dataset))
    fit_output_bias(model, train_module.channel_means(dataset.split("train")[0]))
    return model.state_dict()


def all_finite(model) -> bool:
    return all(torch.isfinite(p).all() for p in model.state_dict().values())


class Recorder:
    """A TrainReporter that keeps every call; `on_batch_hook(epoch, batch)` runs after each batch."""

    def __init__(self, on_batch_hook=None, on_epoch_hook=None):
        self.start = None
        self.batches: list[tuple[int, int, float]] = []
        self.epochs: list[EpochRecord] = []
        self.frames: list[torch.Tensor] = []
        self.on_batch_hook, self.on_epoch_hook = on_batch_hook, on_epoch_hook

    def on_start(self, total_epochs, batches_per_epoch, film_originals):
        self.start = (total_epochs, batches_per_epoch, film_originals)

    def on_batch(self, epoch, batch, loss):
        self.batches.append((epoch, batch, loss))
        if self.on_batch_hook:
            self.on_batch_hook(epoch, batch)

    def on_epoch(self, record, film_frame):
        self.epochs.append(record)
        self.frames.append(film_frame)
        if self.on_epoch_hook:
            self.on_epoch_hook(record)


def test_short_run_learns_and_reports_everything(digits):
    cfg = config(epochs=3, lr=3e-3)
    recorder = Recorder()
    result = train(cfg, digits, reporter=recorder)

    assert result.status == "finished"
    assert result.device == "cpu"
    assert [r.epoch for r in result.history] == [1, 2, 3]
    assert result.history[-1].val_loss < result.history[0].val_loss
    assert result.history[-1].train_loss < result.history[0].train_loss

    n_train = len(digits.splits["train"])
    total_epochs, batches_per_epoch, _ = recorder.start
    assert (total_epochs, batches_per_epoch) == (3, math.ceil(n_train / 64))
    assert len(result.batch_losses) == len(recorder.batches) == 3 * batches_per_epoch
    assert [loss for _, _, loss in recorder.batches] == result.batch_losses
    assert recorder.epochs == result.history
    assert all(r.seconds > 0 and r.images_per_s > 0 for r in result.history)

    # The kept weights are those of the best validation epoch, and the test metrics are theirs.
    best = min(result.history, key=lambda r: r.val_loss)
    assert result.best_epoch == best.epoch
    val_x, val_y = digits.split("val")
    assert evaluate(result.model, val_x, val_y, "cpu")["mse"] == pytest.approx(best.val_loss, rel=1e-4)
    test_x, test_y = digits.split("test")
    assert result.test_metrics == pytest.approx(evaluate(result.model, test_x, test_y, "cpu"))
    assert not result.model.training and next(result.model.parameters()).device.type == "cpu"
    assert f"epoch {best.epoch}" in result.message


def test_same_seed_gives_identical_losses_and_another_seed_does_not(small):
    cfg = config(epochs=2)
    cfg.model.dropout = 0.2  # dropout draws random masks: the seed must cover them too
    first, second = train(cfg, small), train(cfg, small)
    assert first.batch_losses == second.batch_losses
    assert [r.val_loss for r in first.history] == [r.val_loss for r in second.history]

    cfg.train.seed = 1
    other = train(cfg, small)
    assert other.batch_losses != first.batch_losses


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimiser_changes_the_weights(small, optimizer):
    cfg = config(optimizer=optimizer, weight_decay=1e-4)
    before = initial_state(cfg, small)
    result = train(cfg, small)
    assert result.status == "finished"
    assert math.isfinite(result.history[0].train_loss)
    after = result.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_is_the_one_reported(small, loss):
    cfg = config(loss=loss)
    result = train(cfg, small)
    assert result.status == "finished"
    val_x, val_y = small.split("val")
    with torch.no_grad():
        x = val_x.float() / 255
        recon = result.model(x, val_y).recon
    expected = {"mse": F.mse_loss, "mae": F.l1_loss, "bce": F.binary_cross_entropy}[loss](recon, x)
    assert result.history[0].val_loss == pytest.approx(float(expected), rel=1e-4)


def test_vae_reports_kl_and_reconstruction_parts(small):
    cfg = config(epochs=2)
    cfg.model.vae, cfg.model.beta = True, 0.5
    result = train(cfg, small)
    assert result.status == "finished"
    for r in result.history:
        assert r.train_kl > 0 and r.val_kl > 0
        assert r.train_recon > 0 and r.val_recon > 0
        assert r.train_loss == pytest.approx(r.train_recon + 0.5 * r.train_kl, rel=1e-5)
        assert r.val_loss == pytest.approx(r.val_recon + 0.5 * r.val_kl, rel=1e-5)


def test_plain_autoencoder_reports_zero_kl(small):
    record = train(config(), small).history[0]
    assert record.train_kl == record.val_kl == 0.0
    assert record.train_loss == pytest.approx(record.train_recon)


def test_denoising_run_trains_on_noisy_inputs(small):
    plain = train(config(), small)
    denoising = train(config(noise_factor=0.5), small)
    again = train(config(noise_factor=0.5), small)
    assert denoising.status == "finished"
    assert denoising.batch_losses != plain.batch_losses  # the noise reaches the model
    assert denoising.batch_losses == again.batch_losses  # and is seeded
    # Validation scores noisy inputs against the clean images, with the same seeded noise every epoch.
    val_x, val_y = small.split("val")
    x = val_x.float() / 255
    with torch.no_grad():
        recon = denoising.model(add_noise(x, 0.5, torch.Generator().manual_seed(0 + 2)), val_y).recon
    assert denoising.history[0].val_loss == pytest.approx(float(F.mse_loss(recon, x)), rel=1e-4)
    assert denoising.history[0].val_loss != pytest.approx(evaluate(denoising.model, val_x, val_y, "cpu")["mse"])


def test_add_noise_is_clipped_seeded_and_off_at_zero():
    x = torch.rand(4, 1, 8, 8)
    assert add_noise(x, 0.0) is x
    noisy = add_noise(x, 0.8, torch.Generator().manual_seed(3))
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, x)
    assert torch.equal(noisy, add_noise(x, 0.8, torch.Generator().manual_seed(3)))


def test_early_stopping_stops_when_nothing_improves(small):
    # lr=0 leaves the weights as they are, so the validation loss never improves after epoch 1.
    result = train(config(epochs=10, lr=0.0, patience=2), small)
    assert result.status == "early_stopped"
    assert len(result.history) == 3
    assert result.best_epoch == 1
    assert "did not improve for 2 epochs" in result.message


def test_no_early_stop_without_patience(small):
    result = train(config(epochs=3, lr=0.0, patience=0), small)
    assert result.status == "finished" and len(result.history) == 3


def test_diverging_run_stops_at_once_and_keeps_finite_weights(small):
    cfg = config(epochs=5, family="conv", optimizer="sgd", lr=1e3)
    cfg.model.output_activation = "none"  # nothing saturates: the loss explodes within a few batches
    result = train(cfg, small)
    assert result.status == "diverged"
    assert result.history == [] and result.film == [] and result.test_metrics == {}
    assert len(result.batch_losses) < 10 and all(math.isfinite(v) for v in result.batch_losses)
    assert "lower learning rate" in result.message
    assert "\n" not in result.message and result.message.endswith(".")
    # On the CPU a non-finite loss is caught before the step: the weights are the initial ones.
    assert all_finite(result.model)
    initial = initial_state(cfg, small)
    assert all(torch.equal(initial[k], v) for k, v in result.model.state_dict().items())


def test_divergence_after_an_epoch_keeps_the_best_epoch(small, monkeypatch):
    """A NaN injected into the second epoch's first batch: epoch 1's weights must survive."""
    first_epoch_done = threading.Event()
    real_loss_parts = Autoencoder.loss_parts

    def loss_parts(self, out, target, loss_name):
        recon, kl = real_loss_parts(self, out, target, loss_name)
        if first_epoch_done.is_set() and torch.is_grad_enabled():
            recon = recon * math.nan
        return recon, kl

    monkeypatch.setattr(Autoencoder, "loss_parts", loss_parts)
    result = train(config(epochs=3), small, reporter=Recorder(on_epoch_hook=lambda r: first_epoch_done.set()))
    assert result.status == "diverged"
    assert len(result.history) == 1 and result.best_epoch == 1
    assert "NaN at epoch 2, batch 1" in result.message and "best weights (epoch 1" in result.message
    assert all_finite(result.model)
    val_x, val_y = small.split("val")
    assert evaluate(result.model, val_x, val_y, "cpu")["mse"] == pytest.approx(result.history[0].val_loss, rel=1e-4)
    assert set(result.test_metrics) == {"mse", "mae"}


def test_bce_divergence_is_reported_not_raised(small):
    # A NaN output used to make F.binary_cross_entropy raise instead of stopping the run.
    cfg = config(family="conv", optimizer="adam", lr=1e8, loss="bce")
    result = train(cfg, small)
    assert result.status == "diverged"
    assert all_finite(result.model)


def test_class_balanced_sampling_draws_every_class_equally(digits, small):
    # An imbalanced training split: every image of digits 0 and 1, five of each other digit.
    train_index = digits.splits["train"]
    labels = digits.labels[train_index]
    keep = torch.cat([train_index[labels <= 1]] + [train_index[labels == c][:5] for c in range(2, 10)])
    imbalanced = replace(small, splits={**small.splits, "train": keep})

    weights = balanced_sample_weights(digits.labels[keep]).float()
    draws = torch.cat(train_module.epoch_batches(len(keep), 32, weights, torch.Generator().manual_seed(0)))
    counts = torch.bincount(digits.labels[keep][draws], minlength=10).float()
    assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.5 * counts.mean()

    cfg = config(epochs=2)
    balanced_cfg = config(epochs=2)
    balanced_cfg.data.balanced = True
    plain, balanced = train(cfg, imbalanced), train(balanced_cfg, imbalanced)
    assert balanced.status == "finished" and len(balanced.history) == 2
    assert balanced.batch_losses != plain.batch_losses


def test_film_has_one_frame_per_epoch_of_the_fixed_images(small):
    recorder = Recorder()
    result = train(config(epochs=2, film_images=5), small, reporter=recorder)
    val_x, _ = small.split("val")
    assert torch.equal(result.film_originals, val_x[:5])
    assert torch.equal(recorder.start[2], val_x[:5])
    assert len(result.film) == 2
    for frame in result.film:
        assert frame.dtype == torch.uint8 and frame.shape == (5, 1, 8, 8)
    assert not torch.equal(result.film[0], result.film[1])  # the model changed between epochs
    assert all(torch.equal(a, b) for a, b in zip(recorder.frames, result.film))


def test_stop_event_stops_within_the_epoch(small):
    stop = threading.Event()
    recorder = Recorder(on_batch_hook=lambda epoch, batch: stop.set() if batch == 3 else None)
    result = train(config(epochs=3), small, reporter=recorder, stop_event=stop)
    assert result.status == "stopped"
    assert len(result.batch_losses) == 3  # checked before every batch
    assert result.history == [] and "nothing was learned" in result.message


def test_stop_after_an_epoch_keeps_it(small):
    stop = threading.Event()
    result = train(config(epochs=4), small, reporter=Recorder(on_epoch_hook=lambda r: stop.set()), stop_event=stop)
    assert result.status == "stopped"
    assert len(result.history) == 1 and len(result.film) == 1
    assert result.message.startswith("Stopped after 1 of 4 epochs")


def test_bad_settings_are_refused_with_one_sentence(small):
    cfg = config(loss="bce")
    cfg.model.output_activation = "none"
    with pytest.raises(ValueError, match="output activation to sigmoid"):
        train(cfg, small)
    with pytest.raises(ValueError, match="Unknown optimiser 'lbfgs'"):
        make_optimizer("lbfgs", [torch.zeros(1, requires_grad=True)], 0.1)
    with pytest.raises(ValueError, match="learning rate"):
        make_optimizer("adam", [torch.zeros(1, requires_grad=True)], -1.0)
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        resolve_device("tpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_available_devices_are_the_ones_resolve_device_accepts():
    devices = available_devices()
    assert devices[:2] == ["auto", "cpu"]
    for name in devices:
        resolve_device(name)  # raises for a device this machine does not have
    assert ("cuda" in devices) == torch.cuda.is_available()
    assert device_label(torch.device("cpu")) == "CPU"


def test_a_learning_rate_of_0_says_nothing_was_learnt(small):
    from core.train import zero_learning_rate_note

    result = train(config(epochs=2, lr=0.0), small)
    assert result.status == "finished"
    assert "learning rate was 0" in result.message and "nothing was learnt" in result.message
    assert "\n" not in result.message and result.message.endswith(".")
    assert "nothing will be learnt" in zero_learning_rate_note(0.0) and zero_learning_rate_note(1e-3) is None
    assert "learning rate" not in train(config(epochs=1, lr=1e-3), small).message
