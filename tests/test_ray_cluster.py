"""core.jobs.ray_runner on a two-node Ray cluster on this machine (ray.cluster_utils.Cluster, what
Ray's own tests use): the server joins it by host:port like a real one, a job pinned to the second
node through a custom resource runs there and is saved by the server, and a node lost mid-training
fails its job in one sentence."""
from __future__ import annotations

import os
import time

import pytest

from ci_requirements import require_module

require_module("ray")  # a requirement: skipped locally when missing, a failure under CI

from core.checkpoints import load_run  # noqa: E402
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from core.jobs import JobRegistry  # noqa: E402

WAIT = 180


def config(epochs=2, name="") -> RunConfig:
    return RunConfig(data=DataConfig(dataset="digits", seed=0, limit=400),
                     model=ModelConfig(family="dense", hidden=[32], latent=4),
                     train=TrainConfig(epochs=epochs, batch_size=64, device="cpu", seed=0), name=name)


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    second = nodes.add_node(num_cpus=1, resources={"second_node": 1})
    nodes.wait_for_nodes()
    yield nodes, second
    nodes.shutdown()
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture(scope="module")
def pinned_runner(cluster):
    from core.jobs.ray_runner import RayRunner

    nodes, _second = cluster
    runner = RayRunner(nodes.address, cpus=0.5, gpus=0, resources={"second_node": 0.5})
    yield runner
    runner.shutdown()


def test_a_job_pinned_to_the_second_node_runs_there_and_the_server_saves_it(cluster, pinned_runner, tmp_path):
    _nodes, second = cluster
    assert pinned_runner.describe() == "Ray: 2 nodes, 0 GPUs"
    registry = JobRegistry(root=tmp_path / "runs", max_concurrent=1, runner=pinned_runner)
    snap = registry.wait(registry.start(config(epochs=2, name="on-node-2")), WAIT)
    assert snap.status == "finished", snap.message
    assert pinned_runner.placements[-1]["node_id"] == second.node_id
    assert len(load_run(tmp_path / "runs", "on-node-2").history) == 2


def test_a_lost_node_fails_its_job_in_one_sentence(cluster, pinned_runner, tmp_path):
    nodes, second = cluster
    registry = JobRegistry(root=tmp_path / "runs", max_concurrent=1, runner=pinned_runner)
    job_id = registry.start(config(epochs=5000, name="node-lost"))
    deadline = time.monotonic() + WAIT
    while not registry.snapshot(job_id).history:
        assert time.monotonic() < deadline, "the job never finished an epoch"
        time.sleep(0.05)
    nodes.remove_node(second, allow_graceful=False)
    snap = registry.wait(job_id, WAIT)
    assert snap.status == "failed"
    assert snap.message.startswith("The Ray worker running this job died")
    # Once the cluster knows the node is gone, nothing can run the next pinned job: that is said
    # at once, not waited on.
    import ray

    while sum(bool(node["Alive"]) for node in ray.nodes()) > 1:
        assert time.monotonic() < deadline + WAIT, "the cluster never noticed the lost node"
        time.sleep(0.2)
    after = registry.wait(registry.start(config(epochs=1)), WAIT)
    assert after.status == "failed"
    assert after.message.startswith("No node of the Ray cluster has 0.5 CPU, 0.5 second_node for one job;")
