"""Nothing a student trains is lost (issue 16): a failed save keeps the result for Save again, the
shutdown waits for saves, a server killed with SIGKILL continues its queue and its running jobs
from their checkpoints, one resume of a run at a time, snapshots are copies, and the registry
keeps a bounded number of ended jobs with light summaries for the pages."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.checkpoints import list_runs, load_run
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.jobs import JobRegistry, JobStatus
from core.jobs.restart import STATE_FILE, restart_message
from core.serving.access import OwnerError, owner_key
from core.serving.limits import LimitError, WorkLimits

from test_lifecycle import registry, wait_until  # noqa: F401  (registry is a fixture)

WAIT = 120
REPO = Path(__file__).resolve().parents[1]


def config(epochs=2, name="", limit=400) -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits", seed=0, limit=limit),
                     model=ModelConfig(family="dense", hidden=[32], latent=4),
                     train=TrainConfig(epochs=epochs, batch_size=64, device="cpu", seed=0), name=name)


def failing_renames(monkeypatch, root: Path, failures: int, code=errno.ENOSPC, delay: float = 0.0):
    """The first `failures` renames onto a run folder in `root` fail with `code` (a full disk);
    each waits `delay` seconds first (a slow disk)."""
    real_rename, real_replace = os.rename, os.replace
    left = [failures]

    def guarded(real):
        def rename(src, dst, *args, **kwargs):
            dst_path = Path(dst)
            if dst_path.parent == root and not dst_path.name.startswith("."):
                time.sleep(delay)
                if left[0] > 0:
                    left[0] -= 1
                    raise OSError(code, os.strerror(code))
            return real(src, dst, *args, **kwargs)
        return rename

    monkeypatch.setattr(os, "rename", guarded(real_rename))
    monkeypatch.setattr(os, "replace", guarded(real_replace))


# ---------------------------------------------------------------- a failed save loses nothing

def test_a_failed_save_keeps_the_trained_model_and_save_again_saves_it(registry, monkeypatch):
    root = Path(registry.root)
    failing_renames(monkeypatch, root, failures=2)
    job = registry.start(config(epochs=3, name="kept"), owner="alice")
    snap = registry.wait(job, WAIT)
    assert snap.status == JobStatus.UNSAVED, snap.message
    assert snap.message == ("Could not save run kept (the server's disk is full), so the trained model is kept in "
                            "memory: ask the teacher to free some space, then press Save again.")
    assert str(root) not in snap.message and len(snap.history) == 3 and list_runs(root) == []
    with pytest.raises(PermissionError):
        registry.save_again(job, by="bob")  # only its owner or the teacher
    assert registry.save_again(job, by="alice").status == JobStatus.UNSAVED  # the disk is still full
    after = registry.save_again(job, by="alice")
    assert after.status == JobStatus.FINISHED and after.run_name == "kept"
    run = load_run(root, "kept")
    assert [r["epoch"] for r in run.history] == [1, 2, 3] and run.info["owner"] == owner_key("alice")


def test_the_shutdown_waits_for_a_slow_save(tmp_path, monkeypatch):
    """Stopping takes a batch; the save then takes as long as the disk needs, past `timeout`."""
    root = tmp_path / "runs"
    registry = JobRegistry(root=root, max_concurrent=1)
    job = registry.start(config(epochs=10_000, name="slow-disk"))
    wait_until(lambda: registry.snapshot(job).history)
    failing_renames(monkeypatch, root, failures=0, delay=2.0)
    state = registry.shutdown(timeout=0.3)
    assert [s["run"] for s in state["saved"]] == ["slow-disk"]
    assert load_run(root, "slow-disk").info["stopped_by"] == "server shutdown"


# ---------------------------------------------------------------- a killed server

KILLED_SERVER = """
import sys, time
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.jobs import JobRegistry

def cfg(name, epochs):
    return RunConfig(data=DataConfig(dataset="digits", seed=0, limit=400),
                     model=ModelConfig(family="dense", hidden=[32], latent=4),
                     train=TrainConfig(epochs=epochs, batch_size=64, device="cpu", seed=0), name=name)

registry = JobRegistry(root=sys.argv[1], max_concurrent=1)
registry.restore()  # a served app: its queue and its running jobs' checkpoints are written as they change
running = registry.start(cfg("alice-long", 400), owner="alice-owner-id-0123")
for i in range(3):
    registry.start(cfg(f"queued-{i}", 1), owner=f"student-{i}-owner-id")
while len(registry.snapshot(running).history) < 4:
    time.sleep(0.01)
print("epochs", len(registry.snapshot(running).history), flush=True)
time.sleep(600)
"""


def test_a_server_killed_mid_training_continues_its_jobs_from_their_checkpoints(tmp_path):
    root = tmp_path / "runs"
    env = {**os.environ, "AE_LAB_CHECKPOINT_SECONDS": "0", "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-c", KILLED_SERVER, str(root)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("epochs"), server.stderr.read()[-2000:]
    finally:
        server.send_signal(signal.SIGKILL)  # the out-of-memory killer: no atexit, no handler
        server.wait(timeout=60)
    state = json.loads((root / STATE_FILE).read_text())
    assert "alice-owner-id" not in json.dumps(state)  # owners on disk are keys

    registry = JobRegistry(root=root, max_concurrent=1)
    note = registry.restore()
    (continued,) = note["continued"]
    assert continued["name"] == "alice-long" and continued["epoch"] >= 3 and note["restored"] == 3
    assert restart_message(note).startswith(f"The server restarted: 1 running job continues from its checkpoint "
                                            f"at epoch {continued['epoch']}, 3 queued runs were restored")
    job = registry.snapshot(continued["id"])
    assert job.owner_key == owner_key("alice-owner-id-0123") and job.status in ("queued", "loading", "running")
    wait_until(lambda: len(registry.snapshot(continued["id"]).history) > continued["epoch"])
    registry.stop(continued["id"], by="alice-owner-id-0123")
    done = registry.wait(continued["id"], WAIT)
    assert done.status == "stopped" and done.run_name == "alice-long"
    run = load_run(root, "alice-long")
    assert [r["epoch"] for r in run.history] == list(range(1, len(run.history) + 1))
    assert len(run.history) > continued["epoch"]  # the epochs before the kill are in it, and more
    for summary in registry.summaries():
        if summary.name.startswith("queued-"):
            assert registry.wait(summary.id, WAIT).status == "finished"
    assert not list((root / ".jobs").glob("*.pt"))  # checkpoints go when their jobs end


# ---------------------------------------------------------------- resuming

def test_two_resumes_of_one_run_at_once_are_one_job(registry, monkeypatch):
    """The check that the run is not already being resumed and the adding of the job are one step:
    a double click while the first call is still adding its job starts one resume, not two."""
    registry.wait(registry.start(config(epochs=1, name="once")), WAIT)
    registry.start(config(epochs=10_000, name="blocker"))  # keeps the resume job queued
    real_add = JobRegistry._add

    def slow_add(self, job, *args, **kwargs):
        time.sleep(0.3)  # what a loaded machine does between any two steps
        return real_add(self, job, *args, **kwargs)

    monkeypatch.setattr(JobRegistry, "_add", slow_add)
    outcomes = []

    def click():
        try:
            outcomes.append(registry.resume("once", 5))
        except ValueError as exc:
            outcomes.append(str(exc))

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(WAIT)
    assert sorted(outcomes, key=len)[1] == "Run once is already being resumed; wait for that job or stop it."
    assert sum(1 for job in registry.summaries() if job.resume_from == "once") == 1


def test_resume_and_probes_go_through_the_epoch_limit(tmp_path):
    registry = JobRegistry(root=tmp_path, max_concurrent=1, limits=WorkLimits(max_epochs=10))
    registry.wait(registry.start(config(epochs=2, name="short")), WAIT)
    with pytest.raises(LimitError) as refused:
        registry.resume("short", 10_000)
    assert str(refused.value) == ("Run short has 2 epochs; 10000 more would make 10002, above this server's limit of "
                                  "10 per run; resume for at most 8 more.")
    assert registry.summaries()[0].name == "short"  # nothing queued
    from core.analysis import ProbeConfig

    with pytest.raises(LimitError, match="above this server's limit of 10 per run"):
        registry.start_probe("short", ProbeConfig(epochs=50))  # a probe too


def test_only_the_owner_or_the_teacher_resumes_into_a_run_and_anyone_resumes_a_copy(registry):
    root = Path(registry.root)
    registry.wait(registry.start(config(epochs=1, name="alices"), owner="alice"), WAIT)
    with pytest.raises(OwnerError, match="resume a copy under a new name"):
        registry.resume("alices", 1, owner="bob")
    copy = registry.wait(registry.resume("alices", 1, owner="bob", as_name="bobs copy"), WAIT)
    assert copy.status == "finished" and copy.run_name == "bobs-copy"
    assert load_run(root, "bobs-copy").info["owner"] == owner_key("bob")
    assert len(load_run(root, "bobs-copy").history) == 2 and len(load_run(root, "alices").history) == 1
    into = registry.wait(registry.resume("alices", 1, owner="teacher-id", teacher=True), WAIT)
    assert into.status == "finished"
    assert len(load_run(root, "alices").history) == 2
    assert load_run(root, "alices").info["owner"] == owner_key("alice")  # still hers


def test_a_resume_never_overwrites_a_run_that_another_student_saved_under_its_name_since(registry):
    """A student could queue a resume of her own run, delete the run, and let the resume overwrite
    the run another student saved under the freed name (an unnamed run takes the next free name)."""
    import shutil

    from core.checkpoints import delete_run

    root = Path(registry.root)
    for name, owner in (("shared-name", "alice"), ("alices-2", "alice"), ("bobs", "bob")):
        registry.wait(registry.start(config(epochs=1, name=name), owner=owner), WAIT)
    blocker = registry.start(config(epochs=10_000, name="blocker"), owner="carol")
    wait_until(lambda: registry.snapshot(blocker).status == "running")
    late = registry.resume("shared-name", 1, owner="alice")  # queued behind the blocker
    delete_run(root, "shared-name", by="alice")
    shutil.copytree(root / "bobs", root / "shared-name")  # bob's run takes the freed name
    registry.stop(blocker)
    failed = registry.wait(late, WAIT)
    assert (failed.status, failed.message) == ("failed", "Run shared-name was deleted or replaced since this job was "
                                               "queued, so it was not trained further; resume it again if it is "
                                               "still the run you meant.")
    assert load_run(root, "shared-name").info["owner"] == owner_key("bob")
    # Replaced while it trained: the resume's epochs become a new run of alice's; bob's run stays.
    running = registry.resume("alices-2", 10_000, owner="alice")
    wait_until(lambda: registry.snapshot(running).epoch >= 1)
    delete_run(root, "alices-2", by="alice")
    shutil.copytree(root / "bobs", root / "alices-2")
    registry.stop(running)
    kept = registry.wait(running, WAIT)
    assert kept.status == "stopped" and kept.run_name == "alices-2-2", kept.message
    assert load_run(root, "alices-2-2").info["owner"] == owner_key("alice")
    assert load_run(root, "alices-2").info["owner"] == owner_key("bob")
    assert len(load_run(root, "alices-2").history) == 1


def test_two_cli_resumes_of_one_run_at_once_one_is_refused(tmp_path):
    """Two terminals resume the same run: the second one is told so at once and saves nothing,
    the first keeps every epoch it trained."""
    root = tmp_path / "runs"
    registry = JobRegistry(root=root, max_concurrent=1)
    registry.wait(registry.start(config(epochs=1, name="shared")), WAIT)
    command = [sys.executable, "-m", "core.cli", "resume", "shared", "--epochs", "5000", "--no-limits",
               "--out", str(root)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [first.stderr.readline() for _ in range(2)]  # the data line, then "resuming ..."
        assert "resuming shared" in lines[-1], lines  # it holds the run now
        second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=WAIT)
        assert second.returncode == 2, second.stderr[-2000:]
        assert second.stderr.strip().endswith("error: Run shared is being trained further right now (by another job "
                                              "or command); wait until that finishes, then resume it.")
        time.sleep(1.0)
    finally:
        first.send_signal(signal.SIGINT)  # Ctrl-C: stops after the batch and saves
        out, _ = first.communicate(timeout=WAIT)
    assert first.returncode == 0
    new_epochs = json.loads(out.strip().splitlines()[-1])["new_epochs"]
    assert new_epochs >= 1 and len(load_run(root, "shared").history) == 1 + new_epochs


# ---------------------------------------------------------------- what pages read

def test_a_snapshot_keeps_the_config_it_was_taken_with(registry):
    job = registry.start(config(epochs=1))
    before = registry.snapshot(job)
    shape = (before.config.model.in_channels, before.config.model.image_size)
    after = registry.wait(job, WAIT)
    assert (after.config.model.in_channels, after.config.model.image_size) == (1, 8)  # filled from the data
    assert (before.config.model.in_channels, before.config.model.image_size) == shape == (1, 28)


def test_ended_jobs_are_bounded_and_summaries_carry_no_losses(registry):
    from core.jobs.registry import KEEP_ENDED_PER_OWNER

    running = registry.start(config(epochs=10_000, name="long"), owner="alice")
    wait_until(lambda: registry.snapshot(running).batch_losses)
    for i in range(KEEP_ENDED_PER_OWNER + 15):
        registry.stop(registry.start(config(epochs=1, name=f"q{i}"), owner="bob"))
    summaries = registry.summaries()
    assert len(summaries) == KEEP_ENDED_PER_OWNER + 1  # bob's newest ended jobs, and the running one
    assert summaries[0].name == f"q{KEEP_ENDED_PER_OWNER + 14}" and summaries[-1].id == running
    assert not hasattr(summaries[-1], "batch_losses") and not hasattr(summaries[-1], "history")
    assert registry.snapshot(running).batch_losses  # the one job a page follows: in full
