"""core.jobs.ray_runner on an embedded Ray cluster ("local"), started once for this module.

The workers run in other processes with another working directory (a runtime_env working_dir),
so a run that lands in the server's checkpoints folder got there through the result, not a
shared folder."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ci_requirements import require_module

require_module("ray")  # a requirement: skipped locally when missing, a failure under CI

from core.analysis import ProbeConfig, train_probe  # noqa: E402
from core.checkpoints import list_runs, load_run  # noqa: E402
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.jobs import JobRegistry, LocalRunner, runner_from_address  # noqa: E402
from core.train import train  # noqa: E402


REPO = Path(__file__).resolve().parent.parent
WAIT = 180  # seconds; only a hung job comes near it (a shared 2-core machine starts workers slowly)


def config(epochs=2, limit=400, name="", **train_settings) -> RunConfig:
    """A dense AE on a seeded slice of digits: 320 train images at batch 64 = 5 batches an epoch."""
    settings = dict(epochs=epochs, batch_size=64, device="cpu", seed=0) | train_settings
    return RunConfig(data=DataConfig(dataset="digits", seed=0, limit=limit),
                     model=ModelConfig(family="dense", hidden=[32], latent=4),
                     train=TrainConfig(**settings), name=name)


@pytest.fixture(scope="module")
def ray_runner(tmp_path_factory):
    from core.jobs.ray_runner import RayRunner

    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token file written into the home folder
    elsewhere = tmp_path_factory.mktemp("worker-cwd")
    (elsewhere / "NOT-THE-SERVER.txt").write_text("the workers' working directory\n")
    # Made on a thread that ends at once, as the app makes it on a Streamlit script thread: Ray's
    # processes must outlive the thread that started them.
    made: dict = {}
    maker = threading.Thread(target=lambda: made.update(runner=RayRunner(
        "local", cpus=0.5, gpus=0, runtime_env={"working_dir": str(elsewhere)}, init_args={"num_cpus": 2})))
    maker.start()
    maker.join()
    runner = made["runner"]
    yield runner
    runner.shutdown()
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture
def registry(ray_runner, tmp_path):
    reg = JobRegistry(root=tmp_path / "runs", max_concurrent=2, runner=ray_runner)
    yield reg
    for snap in reg.snapshots():
        reg.stop(snap.id)
    for snap in reg.snapshots():
        reg.wait(snap.id, WAIT)


def wait_until(predicate, timeout=WAIT, every=0.05):
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the job did not get there in time"
        time.sleep(every)


def test_the_app_and_core_import_without_ray():
    code = "import sys, core.jobs, core.jobs.ray_runner, core.cli, ui.state; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_an_unreachable_cluster_falls_back_to_this_machine():
    runner, notice = runner_from_address("127.0.0.1:9")  # the discard port: nobody listens
    assert isinstance(runner, LocalRunner)
    assert "Could not reach the Ray cluster at 127.0.0.1:9" in notice
    assert notice.endswith("training on this machine instead.") and "\n" not in notice
    runner, notice = runner_from_address("")
    assert isinstance(runner, LocalRunner) and notice is None


def test_losses_on_ray_equal_the_in_process_run(registry, tmp_path):
    cfg = config(epochs=3, name="on-ray")
    local = train(cfg, load_dataset(cfg.data))
    snap = registry.wait(registry.start(cfg), WAIT)
    assert snap.status == "finished", snap.message
    saved = load_run(tmp_path / "runs", snap.run_name)
    assert [r["train_loss"] for r in saved.history] == [r.train_loss for r in local.history]
    assert [r["val_loss"] for r in saved.history] == [r.val_loss for r in local.history]
    assert snap.batch_losses == local.batch_losses  # every batch came back, in order, bit for bit
    assert len(snap.history) == 3 and snap.latest_frame is not None and snap.film_originals is not None
    assert registry.runner.describe() == "Ray: 1 node, 0 GPUs"
    assert registry.runner.max_jobs() == 4  # 2 CPUs, half a CPU per job


def test_a_cluster_that_stops_answering_does_not_hold_up_the_sidebar(ray_runner, monkeypatch):
    import ray

    release = threading.Event()

    class Hanging:  # ray, except that asking for the nodes hangs like a lost head node
        def __getattr__(self, name):
            return getattr(ray, name)

        def nodes(self):
            release.wait(WAIT)
            return ray.nodes()

    monkeypatch.setattr(ray_runner, "_ray", Hanging())
    monkeypatch.setattr(ray_runner, "_described_at", float("-inf"))  # due for a refresh
    assert ray_runner.describe() == "Ray: the cluster does not answer"
    assert ray_runner.describe() == "Ray: the cluster does not answer"  # no second refresh piles up
    release.set()
    wait_until(lambda: ray_runner.describe() == "Ray: 1 node, 0 GPUs")


def test_the_registry_runs_as_many_jobs_as_the_cluster_holds(ray_runner, monkeypatch, tmp_path):
    monkeypatch.delenv("AE_LAB_MAX_JOBS", raising=False)
    assert JobRegistry(root=tmp_path, runner=ray_runner).max_concurrent == 4
    monkeypatch.setenv("AE_LAB_MAX_JOBS", "3")
    assert JobRegistry(root=tmp_path, runner=ray_runner).max_concurrent == 3


def test_a_saved_run_resumes_on_ray_exactly_like_an_unbroken_run(registry, tmp_path):
    assert registry.wait(registry.start(config(epochs=2, name="resumed")), WAIT).status == "finished"
    snap = registry.wait(registry.resume("resumed", 1), WAIT)
    assert snap.status == "finished", snap.message
    unbroken = train(config(epochs=3), load_dataset(config().data))
    saved = load_run(tmp_path / "runs", "resumed")
    assert [r["train_loss"] for r in saved.history] == [r.train_loss for r in unbroken.history]


def test_an_experiment_grid_runs_on_ray_through_the_registry(registry, ray_runner, tmp_path):
    from core.experiments import ExperimentConfig, ExperimentManager

    manager = ExperimentManager(registry, poll_seconds=0.05)
    placed = len(ray_runner.placements)
    name = manager.start(ExperimentConfig(name="latents-on-ray", base=config(epochs=1), grid={"model.latent": [2, 4]}))
    record = manager.wait(name, timeout=WAIT)
    assert record["status"] == "finished", record["message"]
    assert all(v["run"] and v["val_loss"] is not None for v in record["variants"])
    assert len(ray_runner.placements) - placed == 2  # both variants ran on Ray workers
    assert {load_run(tmp_path / "runs", v["run"]).model.cfg.latent for v in record["variants"]} == {2, 4}


def test_epochs_arrive_live_and_stop_reaches_the_worker(registry, tmp_path):
    job_id = registry.start(config(epochs=5000, name="stopped-on-ray"))
    # Two finished epochs seen while the job is still running: the events stream, they are not
    # delivered with the result.
    wait_until(lambda: len(registry.snapshot(job_id).history) >= 2 and registry.snapshot(job_id).status == "running")
    registry.stop(job_id)
    snap = registry.wait(job_id, WAIT)
    assert snap.status == "stopped", snap.message
    assert 2 <= len(snap.history) < 5000
    assert snap.run_name in [row["name"] for row in list_runs(tmp_path / "runs")]


def test_the_run_lands_in_the_servers_folder_not_the_workers(ray_runner, tmp_path, monkeypatch):
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    monkeypatch.chdir(server_dir)
    registry = JobRegistry(root="checkpoints", max_concurrent=1, runner=ray_runner)  # relative to the server's cwd
    snap = registry.wait(registry.start(config(epochs=1, name="relative-root")), WAIT)
    assert snap.status == "finished", snap.message
    worker_cwd = Path(ray_runner.placements[-1]["cwd"])
    assert worker_cwd.resolve() != server_dir.resolve() and (worker_cwd / "NOT-THE-SERVER.txt").exists()
    assert (server_dir / "checkpoints" / snap.run_name / "config.json").exists()
    assert not (worker_cwd / "checkpoints").exists()
    assert ray_runner.placements[-1]["pid"] != os.getpid()


def test_a_probe_job_runs_on_ray_like_in_process(registry, tmp_path):
    cfg = config(epochs=2, name="probed")
    assert registry.wait(registry.start(cfg), WAIT).status == "finished"
    probe_cfg = ProbeConfig(epochs=3, device="cpu")
    snap = registry.wait(registry.start_probe("probed", probe_cfg), WAIT)
    assert snap.status == "finished", snap.message
    run = load_run(tmp_path / "runs", "probed")
    local = train_probe(run.model, load_dataset(run.config.data), probe_cfg)
    assert snap.result.accuracy == pytest.approx(local.accuracy)
    assert [row["epoch"] for row in snap.history] == [1, 2, 3]


def test_a_finished_jobs_worker_stays_warm_for_the_next_job(registry, ray_runner, monkeypatch):
    for name in ("warm-1", "warm-2"):
        assert registry.wait(registry.start(config(epochs=1, name=name)), WAIT).status == "finished"
    first, second = ray_runner.placements[-2:]
    assert first["pid"] == second["pid"]  # no new process (and torch import) for the second job
    monkeypatch.setattr(ray_runner, "idle_seconds", 0.0)  # AE_LAB_RAY_IDLE_SECONDS=0: never kept
    for name in ("cold-1", "cold-2"):
        assert registry.wait(registry.start(config(epochs=1, name=name)), WAIT).status == "finished"
    assert ray_runner.placements[-1]["pid"] != ray_runner.placements[-2]["pid"]


def test_a_server_shutdown_saves_the_job_running_on_ray(ray_runner, tmp_path):
    registry = JobRegistry(root=tmp_path / "runs", max_concurrent=1, runner=ray_runner)
    job_id = registry.start(config(epochs=5000, name="saved-at-shutdown"))
    wait_until(lambda: len(registry.snapshot(job_id).history) >= 1)
    state = registry.shutdown(timeout=WAIT)
    assert state["complete"] and not state["jobs"]  # nothing left for the next server to continue
    assert registry.snapshot(job_id).status == "stopped"
    assert load_run(tmp_path / "runs", "saved-at-shutdown").info["stopped_by"] == "server shutdown"


def test_a_killed_worker_fails_its_job_and_the_next_job_runs(registry, ray_runner):
    placed = threading.Event()
    pids: list[int] = []
    ray_runner.on_placed = lambda where: (pids.append(where["pid"]), placed.set())
    try:
        job_id = registry.start(config(epochs=5000, name="killed"))
        assert placed.wait(WAIT)
        wait_until(lambda: registry.snapshot(job_id).history)
        os.kill(pids[0], signal.SIGKILL)
        snap = registry.wait(job_id, WAIT)
    finally:
        ray_runner.on_placed = None
    assert snap.status == "failed"
    assert snap.message == ("The Ray worker running this job died (its process was killed or its node was lost); "
                            "start the job again.")
    after = registry.wait(registry.start(config(epochs=1, name="after-the-kill")), WAIT)
    assert after.status == "finished", after.message


def test_resources_no_node_has_are_refused_at_once(ray_runner, tmp_path):
    from core.jobs.ray_runner import RayRunner

    greedy = RayRunner("local", cpus=64, gpus=0)  # the module's cluster has 2 CPUs
    registry = JobRegistry(root=tmp_path / "runs", max_concurrent=1, runner=greedy)
    snap = registry.wait(registry.start(config(epochs=1)), WAIT)
    assert snap.status == "failed"
    assert snap.message.startswith("No node of the Ray cluster has 64 CPU for one job;")


def test_the_train_page_runs_its_job_on_ray_with_the_same_live_view(ray_runner, no_runs, monkeypatch):
    from apptest_helpers import chart_frames, open_app_page
    from ui.state import get_registry, get_runner

    monkeypatch.setenv("AE_LAB_RAY_ADDRESS", "local")  # joins the module's embedded cluster
    at = open_app_page("views/train.py", {"cfg_epochs": 2, "cfg_batch_size": 256, "cfg_name": "ui-on-ray"})
    assert "**Jobs run on:** Ray: 1 node, 0 GPUs" in at.sidebar.markdown.values
    at.button(key="start_job").click().run()
    job_id = at.query_params["job"]
    job_id = job_id[0] if isinstance(job_id, list) else job_id
    done = get_registry().wait(job_id, WAIT)
    assert done.status == "finished", done.message
    at.run()
    assert not at.exception
    assert [s.value for s in at.success] == [done.message]
    assert (no_runs / "ui-on-ray" / "info.json").is_file()
    epochs = next(f for f in chart_frames(at) if "epoch" in f.columns)
    assert sorted(set(epochs["epoch"])) == [1, 2]
    assert get_runner()[0].placements[-1]["pid"] != os.getpid()


def test_the_cli_trains_on_ray_and_says_so(tmp_path):
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    command = [sys.executable, "-m", "core.cli", "train", "--dataset", "digits", "--model", "conv-small",
               "--epochs", "2", "--ray", "local", "--out", str(tmp_path / "runs")]
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["backend"] == "ray" and summary["status"] == "finished" and summary["epochs"] == 2
    assert (tmp_path / "runs" / summary["run"] / "config.json").exists()


def test_the_cli_resumes_a_run_on_ray(ray_runner, tmp_path):
    import io

    from core.cli import main

    root = str(tmp_path / "runs")
    out = io.StringIO()
    assert main(["train", "--dataset", "digits", "--model", "dense", "--hidden", "32", "--epochs", "1",
                 "--device", "cpu", "--name", "cli-resumed", "--out", root, "--ray", "local"], out, io.StringIO()) == 0
    assert main(["resume", "cli-resumed", "--epochs", "1", "--out", root, "--ray", "local"], out, io.StringIO()) == 0
    first, resumed = (json.loads(line) for line in out.getvalue().strip().splitlines())
    assert first["backend"] == resumed["backend"] == "ray"
    assert resumed["epochs"] == 2 and resumed["new_epochs"] == 1
    assert len(load_run(root, "cli-resumed").history) == 2
