"""Nothing finished is lost, jobs have owners (issue 9): resuming a saved run from its last weights
and optimiser state, owners on the registry's jobs, and the registry's shutdown and restore."""
from __future__ import annotations

import time

import pytest
import torch

from core.checkpoints import CheckpointError, list_runs, load_resume, load_run, save_run
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.jobs import JobPermissionError, JobRegistry
from core.serving.access import owner_key
from core.train import train

WAIT = 120


def config(epochs=2, name="", optimizer="adam", **model) -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits", seed=0, limit=400),
                     model=ModelConfig(family="dense", hidden=[32], latent=4, **model),
                     train=TrainConfig(epochs=epochs, batch_size=64, device="cpu", seed=0, optimizer=optimizer,
                                       noise_factor=0.2),
                     name=name)


@pytest.fixture(scope="module")
def data():
    return load_dataset(config().data)


@pytest.fixture
def registry(tmp_path):
    reg = JobRegistry(root=tmp_path / "runs", max_concurrent=1)
    yield reg
    for snap in reg.snapshots():
        reg.stop(snap.id)
    for snap in reg.snapshots():
        reg.wait(snap.id, WAIT)


def wait_until(predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the job did not get there in time"
        time.sleep(0.01)


# ---------------------------------------------------------------- resume

@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "rprop"])
def test_a_resumed_run_trains_exactly_like_an_unbroken_one(tmp_path, data, optimizer):
    """2 epochs, saved, resumed for 2 more == 4 epochs in one go: the last weights, the optimiser's
    state (Adam's moments, the momentum buffer, Rprop's step sizes) and the shuffling and noise
    generators all come back from the saved run. A fresh optimiser would give other losses."""
    whole = train(config(epochs=4, optimizer=optimizer), data)
    first = train(config(epochs=2, optimizer=optimizer), data)
    save_run(tmp_path, "half", config(epochs=2, optimizer=optimizer), first)
    resume = load_resume(tmp_path, "half")
    assert [r.epoch for r in resume.history] == [1, 2]
    rest = train(config(epochs=4, optimizer=optimizer), data, resume=resume)
    assert [r.epoch for r in rest.history] == [1, 2, 3, 4]
    assert [r.train_loss for r in rest.history] == pytest.approx([r.train_loss for r in whole.history], rel=1e-6)
    assert [r.val_loss for r in rest.history] == pytest.approx([r.val_loss for r in whole.history], rel=1e-6)
    assert len(rest.batch_losses) == len(whole.batch_losses)
    assert len(rest.film) == 4
    assert rest.best_epoch == whole.best_epoch


def test_resume_keeps_an_earlier_best_epoch_that_later_epochs_do_not_beat(tmp_path, data):
    first = train(config(epochs=2), data)
    save_run(tmp_path, "run", config(epochs=2), first)
    resume = load_resume(tmp_path, "run")
    # Pretend epoch 1 was unbeatable: its weights (the saved best) must stay the result's.
    resume.history[0].val_loss = 0.0
    rest = train(config(epochs=3), data, resume=resume)
    assert rest.best_epoch == 1
    for key, value in rest.model.state_dict().items():
        assert torch.equal(value, resume.best_state[key]), key
    assert "epoch 1" in rest.message


def test_resume_asks_for_more_epochs_than_the_run_has(tmp_path, data):
    save_run(tmp_path, "run", config(epochs=2), train(config(epochs=2), data))
    with pytest.raises(ValueError, match="already has 2 epochs"):
        train(config(epochs=2), data, resume=load_resume(tmp_path, "run"))


def test_a_run_without_optimiser_state_is_refused_in_one_sentence(tmp_path, data):
    save_run(tmp_path, "run", config(epochs=1), train(config(epochs=1), data))
    (tmp_path / "run" / "resume.pt").unlink()
    with pytest.raises(CheckpointError, match="cannot be resumed: it has no saved optimiser state"):
        load_resume(tmp_path, "run")


def test_resume_state_with_pickled_code_is_refused(tmp_path, data):
    save_run(tmp_path, "run", config(epochs=1), train(config(epochs=1), data))

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    torch.save({"model": {}, "optimizer": {}, "x": Evil()}, tmp_path / "run" / "resume.pt")
    with pytest.raises(CheckpointError, match="not plain weights"):
        load_resume(tmp_path, "run")


def test_registry_resume_continues_the_curves_and_saves_under_the_same_name(registry, data):
    first = registry.start(config(epochs=2, name="grow"), owner="alice")
    assert registry.wait(first, WAIT).status == "finished"
    job = registry.resume("grow", 2, owner="alice")
    snap = registry.snapshot(job)
    assert snap.resume_from == "grow" and snap.owner_key == owner_key("alice") and snap.total_epochs == 4
    done = registry.wait(job, WAIT)
    assert done.status == "finished", done.message
    assert [r.epoch for r in done.history] == [1, 2, 3, 4]
    assert done.run_name == "grow"
    assert [row["name"] for row in list_runs(registry.root)] == ["grow"]
    run = load_run(registry.root, "grow")
    assert [r["epoch"] for r in run.history] == [1, 2, 3, 4]
    assert run.info["epochs_run"] == 4 and len(run.film) == 4
    assert run.info["owner"] == owner_key("alice")  # a key on disk, never the id


def test_registry_refuses_to_resume_a_run_twice_at_once(registry):
    registry.wait(registry.start(config(epochs=1, name="once")), WAIT)
    registry.start(config(epochs=10_000, name="blocker"))  # keeps the resume job queued
    registry.resume("once", 5)
    with pytest.raises(ValueError, match="already being resumed"):
        registry.resume("once", 5)


# ---------------------------------------------------------------- owners

def test_only_the_owner_stops_a_job_and_a_stop_without_by_always_may(registry):
    alice = registry.start(config(epochs=10_000, name="alice"), owner="owner-a")
    bob = registry.start(config(epochs=10_000, name="bob"), owner="owner-b")  # queued
    assert registry.snapshot(alice).owner_key == owner_key("owner-a")
    with pytest.raises(JobPermissionError) as error:
        registry.stop(alice, by="owner-b")
    assert str(error.value) == "Only the person who started alice (or the teacher) can stop it."
    with pytest.raises(JobPermissionError):
        registry.stop(bob, by="owner-a")  # queued jobs too
    assert registry.snapshot(alice).status in ("loading", "running")
    assert registry.snapshot(bob).status == "queued"
    registry.stop(bob, by="owner-b")
    assert registry.snapshot(bob).status == "stopped"
    registry.stop(alice)  # the process itself (CLI, teacher checked by the app, shutdown)
    assert registry.wait(alice, WAIT).status == "stopped"


# ---------------------------------------------------------------- shutdown and restart

def test_shutdown_saves_the_running_job_and_a_new_registry_restores_the_queue(tmp_path):
    from core.jobs.restart import STATE_FILE, restart_message

    root = tmp_path / "runs"
    old = JobRegistry(root=root, max_concurrent=1)
    running = old.start(config(epochs=10_000, name="alice"), owner="owner-a")
    queued = old.start(config(epochs=3, name="bob"), owner="owner-b")
    wait_until(lambda: len(old.snapshot(running).history) >= 2)
    state = old.shutdown(timeout=WAIT)
    assert state["complete"]
    assert old.snapshot(running).status == "stopped" and old.snapshot(queued).status == "stopped"
    (saved,) = state["saved"]
    assert saved["run"] == "alice" and saved["epoch"] >= 2
    assert [row["name"] for row in list_runs(root)] == ["alice"]
    assert load_run(root, "alice").info["stopped_by"] == "server shutdown"
    assert (root / STATE_FILE).is_file()
    assert "owner-b" not in (root / STATE_FILE).read_text()  # owners are kept as keys
    assert old.start(config(epochs=1, name="late")) and old.snapshots()[0].status == "queued"  # nothing starts

    new = JobRegistry(root=root, max_concurrent=1)
    note = new.restore()
    assert note["restored"] == 1 and note["saved"][0]["run"] == "alice" and not note["continued"]
    back = new.snapshot(queued)  # the same id: the tab that queued it follows it again
    assert back.name == "bob" and back.owner_key == owner_key("owner-b") and back.config.train.epochs == 3
    with pytest.raises(JobPermissionError):
        new.stop(queued, by="owner-a")  # its owner came back with it
    assert new.wait(queued, WAIT).status == "finished"
    assert restart_message(note) == (f"The server restarted: 1 run was saved at epoch {saved['epoch']}, "
                                     "1 queued run was restored.")
    assert JobRegistry(root=root).restore() is None  # a second start has nothing to restore


def test_restart_message_reads_like_the_issue_asks():
    from core.jobs.restart import restart_message

    note = {"saved": [{"run": "a", "epoch": 12}, {"run": "b", "epoch": 12}], "lost": 0, "restored": 3}
    assert restart_message(note) == "The server restarted: 2 runs were saved at epoch 12, 3 queued runs were restored."
    note = {"saved": [{"run": "a", "epoch": 12}, {"run": "b", "epoch": 3}], "lost": 1, "restored": 0}
    assert restart_message(note) == ("The server restarted: 2 runs were saved (a at epoch 12, b at epoch 3), "
                                     "1 running job was stopped before its first epoch, so nothing of it was kept.")


def test_a_damaged_state_file_is_set_aside_and_damaged_entries_skipped(tmp_path):
    from core.jobs.restart import STATE_FILE, write_state

    root = tmp_path / "runs"
    root.mkdir()
    (root / STATE_FILE).write_text("{not json")
    assert JobRegistry(root=root).restore() is None
    assert (root / (STATE_FILE + ".damaged")).is_file()
    write_state(root, {"queued": [{"id": "x", "config": "nonsense"},
                                  {"id": "y", "owner": 5, "config": config().to_dict()},
                                  {"id": "z", "name": "ok", "config": config(epochs=1).to_dict()}],
                       "saved": [{"run": 3, "epoch": "x"}], "lost": 0})
    reg = JobRegistry(root=root)
    note = reg.restore()
    assert note == {"saved": [], "lost": 0, "restored": 1, "continued": [], "restarted": 0, "at": note["at"]}
    assert [s.id for s in reg.snapshots()] == ["z"]
    reg.wait("z", WAIT)


def test_leftover_temp_folders_of_a_killed_save_are_removed_on_start(tmp_path):
    import os

    root = tmp_path / "runs"
    old = root / ".tmp-alice-1234abcd"
    young = root / ".tmp-bob-5678abcd"  # another process may be saving into it right now
    for folder in (old, young):
        folder.mkdir(parents=True)
        (folder / "weights.pt").write_bytes(b"half")
    long_ago = time.time() - 3600
    os.utime(old / "weights.pt", (long_ago, long_ago))
    os.utime(old, (long_ago, long_ago))
    JobRegistry(root=root).restore()
    assert not old.exists() and young.exists()


def test_a_temp_folder_too_young_at_start_is_removed_once_it_is_old_enough(tmp_path, monkeypatch):
    import core.jobs.restart as restart

    monkeypatch.setattr(restart, "LEFTOVER_AGE_S", 0.5)
    root = tmp_path / "runs"
    killed = root / ".tmp-alice-0badf00d"  # killed a moment before this start
    killed.mkdir(parents=True)
    JobRegistry(root=root).restore()
    assert killed.exists()  # it might be another process's save in progress
    wait_until(lambda: not killed.exists(), timeout=30)
