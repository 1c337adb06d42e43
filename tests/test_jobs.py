"""core.jobs: background training jobs on the built-in digits, on the CPU, saved under tmp_path."""
from __future__ import annotations

import math
import threading
import time

import pytest
import torch

import core.jobs.local as jobs_module
import core.jobs.job as job_module
import core.train.setup as train_setup
from core.checkpoints import list_runs, load_run
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.jobs import JobRegistry
from core.models import Autoencoder

WAIT = 120  # seconds; only a hung job ever comes near it (the machine is shared, so be generous)


def config(epochs=2, limit=400, name="", **train_settings) -> RunConfig:
    """A dense AE on (a seeded slice of) digits: 320 train images at batch 64 = 5 batches an epoch."""
    settings = dict(epochs=epochs, batch_size=64, device="cpu", seed=0) | train_settings
    return RunConfig(
        data=DataConfig(dataset="digits", seed=0, limit=limit),
        model=ModelConfig(family="dense", hidden=[32], latent=4),
        train=TrainConfig(**settings),
        name=name,
    )


def long_config() -> RunConfig:
    """Far more epochs than any test waits for: these jobs always end by stop()."""
    return config(epochs=10_000)


@pytest.fixture
def registry(tmp_path):
    reg = JobRegistry(root=tmp_path / "runs", max_concurrent=1)
    yield reg
    for snap in reg.snapshots():  # leave no training thread behind for the next test
        reg.stop(snap.id)
    for snap in reg.snapshots():
        reg.wait(snap.id, WAIT)


def wait_until(predicate, timeout=WAIT, every=0.01):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the job did not get there in time"
        time.sleep(every)


def saved_names(root) -> list[str]:
    return sorted(row["name"] for row in list_runs(root))


def test_job_trains_and_saves_a_run(registry):
    job_id = registry.start(config(epochs=2))
    snap = registry.wait(job_id, WAIT)

    assert snap.status == "finished" and snap.kind == "train"
    assert snap.name == "digits-dense-32-z4" == snap.run_name
    assert snap.progress == 1.0 and snap.epoch == 2 and snap.total_epochs == 2
    assert snap.batches_per_epoch == 5 and snap.batch == 5
    assert len(snap.history) == 2 and len(snap.batch_losses) == 10
    assert snap.film_originals.shape == snap.latest_frame.shape == (8, 1, 8, 8)
    assert snap.started_at <= snap.finished_at and snap.queue_position is None
    assert snap.message.startswith("Finished 2 epochs")
    assert snap.config.model.in_channels == 1 and snap.config.model.image_size == 8  # filled from the data

    run = load_run(registry.root, snap.run_name)
    assert run.info["status"] == "finished"
    assert [r["val_loss"] for r in run.history] == [r.val_loss for r in snap.history]
    assert run.batch_losses == pytest.approx(snap.batch_losses)
    assert torch.equal(run.film[-1], snap.latest_frame)

    # The same settings again get a name of their own instead of overwriting the first run.
    again = registry.wait(registry.start(config(epochs=1)), WAIT)
    assert again.run_name == "digits-dense-32-z4-2"
    assert saved_names(registry.root) == ["digits-dense-32-z4", "digits-dense-32-z4-2"]


def test_the_given_name_is_used_and_the_config_is_copied(registry):
    cfg = config(epochs=1, name="my run")
    job_id = registry.start(cfg)
    cfg.train.epochs = 99  # a page editing its config afterwards must not change the job
    snap = registry.wait(job_id, WAIT)
    assert snap.name == snap.run_name == "my-run"  # made a valid folder name, shown as such
    assert snap.total_epochs == 1 and len(snap.history) == 1


def test_stop_takes_effect_soon_and_keeps_the_finished_epochs(registry):
    job_id = registry.start(long_config())
    wait_until(lambda: len(registry.snapshot(job_id).history) >= 1)
    epochs_when_asked = len(registry.snapshot(job_id).history)
    registry.stop(job_id)
    snap = registry.wait(job_id, WAIT)

    assert snap.status == "stopped"
    # Checked per batch: the epoch under way when Stop came is the last one it could finish
    # (no wall-clock bound: the machine is shared).
    assert len(snap.history) <= epochs_when_asked + 1
    assert 0 < snap.progress < 1
    assert snap.message.startswith(f"Stopped after {len(snap.history)} of 10000 epochs")
    run = load_run(registry.root, snap.run_name)
    assert run.info["status"] == "stopped" and len(run.history) == len(snap.history)


def test_a_job_stopped_before_its_first_epoch_saves_nothing(registry, monkeypatch):
    real_train = jobs_module.train

    def train_stopped_after_batch_2(cfg, dataset, reporter, stop_event):
        """Calls stop() exactly after the second batch, which no polling test could promise."""

        class StopAfterBatch2:
            on_start, on_epoch = reporter.on_start, reporter.on_epoch

            def on_batch(self, epoch, batch, loss):
                reporter.on_batch(epoch, batch, loss)
                if batch == 2:
                    registry.stop(job_id)

        return real_train(cfg, dataset, StopAfterBatch2(), stop_event)

    monkeypatch.setattr(jobs_module, "train", train_stopped_after_batch_2)
    job_id = registry.start(config(epochs=3))
    snap = registry.wait(job_id, WAIT)
    assert len(snap.batch_losses) == 2
    assert snap.status == "stopped" and snap.history == []
    assert snap.run_name is None and saved_names(registry.root) == []


def test_queued_job_waits_its_turn(registry):
    first = registry.start(long_config())
    second = registry.start(config(epochs=1))
    third = registry.start(config(epochs=1))

    waiting = registry.snapshot(second)
    assert waiting.status == "queued" and waiting.queue_position == 1
    assert waiting.started_at is None and waiting.progress == 0.0
    assert registry.snapshot(third).queue_position == 2
    assert [s.id for s in registry.snapshots()] == [third, second, first]  # newest first

    # Stopping a queued job takes it out of the queue at once; the one behind moves up.
    registry.stop(third)
    gone = registry.snapshot(third)
    assert gone.status == "stopped" and gone.queue_position is None and "queue" in gone.message
    assert registry.wait(third, 0).finished_at is not None

    wait_until(lambda: registry.snapshot(first).history)
    assert registry.snapshot(second).status == "queued"  # still waiting while the first trains
    registry.stop(first)
    ended_first = registry.wait(first, WAIT)
    assert registry.snapshot(second).status != "queued"  # the next one leaves the queue as the first ends
    done = registry.wait(second, WAIT)
    assert done.status == "finished" and done.started_at >= ended_first.finished_at - 0.01
    assert registry.snapshot(third).started_at is None  # never ran
    assert sorted(saved_names(registry.root)) == sorted([ended_first.run_name, done.run_name])


def test_max_concurrent_lets_that_many_run(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_JOBS", "2")
    reg = JobRegistry(root=tmp_path)
    assert reg.max_concurrent == 2
    ids = [reg.start(long_config()) for _ in range(3)]
    try:
        statuses = [reg.snapshot(i).status for i in ids]
        assert statuses[2] == "queued" and "queued" not in statuses[:2]
    finally:
        for job_id in reversed(ids):
            reg.stop(job_id)
        for job_id in ids:
            reg.wait(job_id, WAIT)


def test_bad_job_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_JOBS", "many")
    with pytest.raises(ValueError, match="AE_LAB_MAX_JOBS"):
        JobRegistry(root=tmp_path)
    with pytest.raises(ValueError, match="allow 1 or more"):
        JobRegistry(root=tmp_path, max_concurrent=0)


def one_sentence(text: str) -> bool:
    return bool(text) and "\n" not in text and "Traceback" not in text and text.endswith(".")


def test_missing_folder_fails_with_one_sentence(registry, tmp_path):
    cfg = config()
    cfg.data = DataConfig(dataset="folder", folder=str(tmp_path / "no-such-folder"))
    snap = registry.wait(registry.start(cfg), WAIT)
    assert snap.status == "failed"
    assert one_sentence(snap.message) and "does not exist" in snap.message
    assert snap.run_name is None and saved_names(registry.root) == []
    assert snap.finished_at is not None


def test_bad_settings_fail_with_the_trainers_sentence(registry):
    cfg = config(loss="bce")
    cfg.model.output_activation = "none"
    snap = registry.wait(registry.start(cfg), WAIT)
    assert snap.status == "failed" and one_sentence(snap.message) and "sigmoid" in snap.message


def test_unexpected_error_fails_in_one_line(registry, monkeypatch):
    def broken_train(*args, **kwargs):
        raise RuntimeError("out of cheese\n  (a second line that must not reach the page)")

    monkeypatch.setattr(jobs_module, "train", broken_train)
    first = registry.start(config())
    second = registry.start(config())
    snap = registry.wait(first, WAIT)
    assert snap.status == "failed" and snap.message == "Training failed: out of cheese"
    assert registry.wait(second, WAIT).status == "failed"  # the queue moved on after the failure


def test_diverging_job_without_a_finished_epoch_saves_nothing(registry):
    cfg = RunConfig(data=DataConfig(dataset="digits", limit=400),
                    model=ModelConfig(family="conv", latent=4, output_activation="none"),
                    train=TrainConfig(optimizer="sgd", lr=1e3, epochs=5, batch_size=64, device="cpu"))
    snap = registry.wait(registry.start(cfg), WAIT)
    assert snap.status == "diverged" and "lower learning rate" in snap.message
    assert snap.history == [] and snap.run_name is None
    assert saved_names(registry.root) == []


def test_diverging_job_after_an_epoch_saves_the_best_weights(registry, monkeypatch):
    """A NaN injected after the first epoch's 5 training batches."""
    real_loss_parts = Autoencoder.loss_parts
    training_batches = 0

    def loss_parts(self, out, target, loss_name):
        nonlocal training_batches
        recon, kl = real_loss_parts(self, out, target, loss_name)
        if torch.is_grad_enabled():
            training_batches += 1
            if training_batches > 5:
                recon = recon * math.nan
        return recon, kl

    monkeypatch.setattr(Autoencoder, "loss_parts", loss_parts)
    snap = registry.wait(registry.start(config(epochs=4)), WAIT)
    assert snap.status == "diverged" and len(snap.history) == 1
    run = load_run(registry.root, snap.run_name)
    assert run.info["status"] == "diverged" and len(run.history) == 1
    assert all(torch.isfinite(w).all() for w in run.model.state_dict().values())


def test_snapshots_are_consistent_copies_while_training(registry):
    job_id = registry.start(config(epochs=8, limit=800))  # 640 training images: 10 batches an epoch
    seen = []

    def poll():
        while True:
            snap = registry.snapshot(job_id)
            seen.append(snap)
            if snap.finished_at is not None:
                return
            time.sleep(0.005)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    reader.join(WAIT)
    assert not reader.is_alive()

    assert seen[-1].status == "finished" and len(seen[-1].history) == 8
    assert any(s.status == "running" and 0 < s.progress < 1 for s in seen)  # read mid-training
    for before, after in zip(seen, seen[1:]):
        assert len(after.history) >= len(before.history)
        assert len(after.batch_losses) >= len(before.batch_losses)
        assert after.progress >= before.progress
    for snap in seen:
        # An epoch's record is added after its batches: never more records than whole epochs of batches.
        assert len(snap.batch_losses) >= len(snap.history) * snap.batches_per_epoch
        assert 0.0 <= snap.progress <= 1.0

    # A snapshot is a copy: changing it does not change the job.
    seen[-1].history.clear()
    seen[-1].batch_losses.clear()
    assert len(registry.snapshot(job_id).history) == 8


def test_long_runs_keep_a_bounded_batch_curve(registry, monkeypatch):
    monkeypatch.setattr(job_module, "MAX_BATCH_LOSSES", 8)
    snap = registry.wait(registry.start(config(epochs=4)), WAIT)  # 4 × 5 = 20 batches
    assert snap.status == "finished"
    stride = snap.batch_loss_stride
    assert stride == 4 and len(snap.batch_losses) == 20 // stride
    full = load_run(registry.root, snap.run_name).batch_losses  # the saved run keeps every batch
    assert len(full) == 20
    means = [sum(full[i * stride:(i + 1) * stride]) / stride for i in range(len(snap.batch_losses))]
    assert snap.batch_losses == pytest.approx(means, rel=1e-6)


def test_unknown_job_id_is_a_key_error(registry):
    with pytest.raises(KeyError, match="no job"):
        registry.snapshot("nope")
    with pytest.raises(KeyError):
        registry.stop("nope")


def saved_run(registry) -> str:
    snap = registry.wait(registry.start(config(epochs=1)), WAIT)
    assert snap.status == "finished"
    return snap.run_name


def test_probe_job_trains_a_classifier_on_a_saved_run(registry):
    from core.analysis import ProbeConfig

    run_name = saved_run(registry)
    job_id = registry.start_probe(run_name, ProbeConfig(epochs=10, batch_size=64))
    snap = registry.wait(job_id, WAIT)

    assert snap.kind == "probe" and snap.status == "finished", snap.message
    assert snap.run_name == run_name and snap.config.data.dataset == "digits"
    result = snap.result
    assert result.confusion.shape == (10, 10)
    assert result.accuracy >= 0.25  # ten classes: chance is 0.1 (measured: 0.375 on 40 test images)
    assert snap.history == result.history and [row["epoch"] for row in snap.history] == list(range(1, 11))
    assert snap.epoch == 10 and snap.total_epochs == 10 and snap.progress == 1.0
    assert f"{result.accuracy:.1%}" in snap.message and one_sentence(snap.message)
    assert saved_names(registry.root) == [run_name]  # a probe saves no run


def test_probe_job_can_be_stopped_and_fails_plainly_on_a_missing_run(registry):
    from core.analysis import ProbeConfig

    run_name = saved_run(registry)
    job_id = registry.start_probe(run_name, ProbeConfig(epochs=100_000, batch_size=64))
    wait_until(lambda: registry.snapshot(job_id).history)
    registry.stop(job_id)
    snap = registry.wait(job_id, WAIT)
    assert snap.status == "stopped" and snap.result is not None
    assert snap.message.startswith(f"Stopped after {len(snap.history)} of 100000 epochs")

    missing = registry.wait(registry.start_probe("no-such-run", ProbeConfig(epochs=1)), WAIT)
    assert missing.status == "failed" and one_sentence(missing.message) and "no-such-run" in missing.message


def test_jobs_load_their_data_through_the_registrys_loader(tmp_path, digits):
    """The app hands the registry its shared dataset store, so a job reuses a loaded dataset."""
    asked = []

    def load_data(data_cfg):
        asked.append(data_cfg)
        return digits

    registry = JobRegistry(root=tmp_path, max_concurrent=1, load_data=load_data)
    cfg = config(epochs=1)
    snap = registry.wait(registry.start(cfg), WAIT)
    assert snap.status == "finished" and asked == [cfg.data]
    from core.analysis import ProbeConfig

    probe = registry.wait(registry.start_probe(snap.run_name, ProbeConfig(epochs=1)), WAIT)
    assert probe.status == "finished" and len(asked) == 2


# ---------------------------------------------------------------- issue 9: limits, OOM, taken names

def test_a_served_registry_refuses_work_over_its_limits_before_queueing(tmp_path, monkeypatch):
    from core.serving.limits import LimitError, WorkLimits

    built = []
    monkeypatch.setattr(train_setup, "build_model", lambda cfg: built.append(cfg))
    registry = JobRegistry(root=tmp_path, max_concurrent=1, limits=WorkLimits(max_epochs=50))
    huge = config(epochs=1)
    huge.model.hidden = [30000, 30000]
    with pytest.raises(LimitError, match="parameters"):
        registry.start(huge)
    with pytest.raises(LimitError, match="60 epochs"):
        registry.start(config(epochs=60))
    assert registry.snapshots() == [] and built == []


def test_a_model_over_the_limit_once_the_data_shape_is_known_fails_the_job_plainly(tmp_path):
    from core.serving.limits import WorkLimits

    from core.data import load_dataset

    def load_and_tighten(data_cfg):  # the limit changes between start()'s check and the job's
        registry.limits = WorkLimits(max_params=100)
        return load_dataset(data_cfg)

    registry = JobRegistry(root=tmp_path, max_concurrent=1, limits=WorkLimits(), load_data=load_and_tighten)
    snap = registry.wait(registry.start(config(epochs=1)), WAIT)
    assert snap.status == "failed" and "above this server's limit" in snap.message
    assert one_sentence(snap.message)


@pytest.mark.parametrize("error", [
    lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    lambda: MemoryError(),
    lambda: RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 1 bytes (out of memory)"),
])
def test_out_of_memory_ends_the_job_with_a_plain_suggestion(registry, monkeypatch, error):
    def out_of_memory(*args, **kwargs):
        raise error()

    monkeypatch.setattr(jobs_module, "train", out_of_memory)
    snap = registry.wait(registry.start(config(epochs=1)), WAIT)
    assert snap.status == "failed" and "ran out of memory" in snap.message
    assert "smaller batch size" in snap.message and "GiB" not in snap.message and one_sentence(snap.message)


def test_a_named_run_whose_name_is_taken_is_kept_and_says_so(registry):
    first = registry.wait(registry.start(config(epochs=1, name="mine")), WAIT)
    second = registry.wait(registry.start(config(epochs=1, name="mine")), WAIT)
    assert (first.run_name, second.run_name) == ("mine", "mine-2")
    assert second.message.endswith("The name mine was taken, so the run was saved as mine-2.")
    assert "was taken" not in first.message
    rewritten = registry.wait(registry.start(config(epochs=1, name="my run")), WAIT)
    assert rewritten.run_name == "my-run" and "'my run' is not a valid run name" in rewritten.message
    assert sorted(r["name"] for r in list_runs(registry.root)) == ["mine", "mine-2", "my-run"]


def test_a_probe_does_not_wait_behind_training_jobs(registry):
    """Issue 8: the Classifier page's probe starts at once, even while training fills every slot
    and more training waits in the queue; and it takes no training slot."""
    from core.analysis import ProbeConfig

    run_name = saved_run(registry)  # max_concurrent=1
    running = registry.start(long_config())
    queued = registry.start(long_config())
    wait_until(lambda: registry.snapshot(running).status == "running")
    probe = registry.start_probe(run_name, ProbeConfig(epochs=2, batch_size=64))
    assert registry.snapshot(probe).queue_position is None
    assert registry.wait(probe, WAIT).status == "finished"
    assert registry.snapshot(queued).status == "queued"  # the probe did not let it jump in
    registry.stop(queued)
    registry.stop(running)
    registry.wait(running, WAIT)


def test_a_job_carries_the_cleaned_name_it_is_saved_under_from_the_start(registry):
    """A run typed as '../../class 3/conv z2' is saved as class-3-conv-z2: the job (and so the live
    heading, the job list and the sidebar) shows that name from the start, not the raw text."""
    job_id = registry.start(config(epochs=1, name="../../class 3/conv z2"))
    assert registry.snapshot(job_id).name == "class-3-conv-z2"
    done = registry.wait(job_id, WAIT)
    assert (done.name, done.run_name) == ("class-3-conv-z2", "class-3-conv-z2")
    assert "'../../class 3/conv z2' is not a valid run name" in done.message  # still said, once
    assert done.message.count("saved as class-3-conv-z2") == 1
    assert saved_names(registry.root) == ["class-3-conv-z2"]
