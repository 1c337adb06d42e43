"""`python -m bench --ray`: training jobs on Ray (core.jobs.ray_runner) against the same jobs in
this process, in the same run and through the same JobRegistry the app uses.

- start latency: registry.start() -> the job's first batch loss readable in a snapshot. On Ray
  that includes an actor call and the first event poll; the first Ray job also starts a worker
  process (which imports torch) and puts the data in the object store, so it is reported apart
  (cold); later ones reuse the worker the previous job left warm.
- throughput: 8 jobs started together (the registry's limit at 8), training images per second
  of all of them together, from the first start() to the last job's end; on Ray twice, first
  with new workers (cold: 8 processes start and import torch), then with the 8 kept warm.

The cluster is an embedded one ("local", what AE_LAB_RAY_ADDRESS=local starts) unless --ray-address
names another; its start time is reported too. Results go to a table on stdout and to JSON
(bench/results-ray.json by default).
"""
from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

POLL_S = 0.005
JOB_TIMEOUT_S = 1200
CONCURRENT_JOBS = 8


def say(text: str) -> None:
    print(f"[bench ray {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def first_batch_seconds(registry, cfg: RunConfig) -> float:
    """start() -> first batch loss in a snapshot; the job is stopped right after."""
    started = time.perf_counter()
    job_id = registry.start(cfg)
    while not registry.snapshot(job_id).batch_losses:
        snap = registry.snapshot(job_id)
        if snap.status not in ("queued", "loading", "running"):
            raise RuntimeError(f"The latency job ended as {snap.status}: {snap.message}")
        time.sleep(POLL_S)
    seconds = time.perf_counter() - started
    registry.stop(job_id)
    registry.wait(job_id, JOB_TIMEOUT_S)
    return seconds


def concurrent_images_per_s(registry, cfg: RunConfig, train_images: int, jobs: int) -> tuple[float, float]:
    """(images/s of all jobs together, wall seconds) for `jobs` copies of cfg started together."""
    started = time.perf_counter()
    ids = []
    for number in range(jobs):
        job_cfg = copy.deepcopy(cfg)
        job_cfg.name = f"{cfg.name}-{number}"
        job_cfg.train.seed = number
        ids.append(registry.start(job_cfg))
    for job_id in ids:
        snap = registry.wait(job_id, JOB_TIMEOUT_S)
        if snap.status != "finished":
            raise RuntimeError(f"A throughput job ended as {snap.status}: {snap.message}")
    seconds = time.perf_counter() - started
    return jobs * train_images * cfg.train.epochs / seconds, seconds


def measure(quick: bool, mnist_root: Path, address: str, cpus_per_job: float | None, tries: int,
            scratch: Path) -> dict:
    from bench.training import mnist_available
    from core.data import load_dataset
    from core.jobs import JobRegistry, LocalRunner
    from core.jobs.ray_runner import RayRunner

    if not quick and mnist_available(mnist_root):
        data_cfg = DataConfig(dataset="mnist", data_root=str(mnist_root), limit=4000)
    else:
        data_cfg = DataConfig(dataset="digits")
    dataset = load_dataset(data_cfg)
    train_images = len(dataset.splits["train"])
    epochs = 1 if quick else 2
    cfg = RunConfig(data=data_cfg, model=ModelConfig(family="conv", preset="small", latent=16),
                    train=TrainConfig(epochs=epochs, device="cpu", seed=0), name="bench-ray")
    latency_cfg = copy.deepcopy(cfg)
    latency_cfg.train.epochs = 1000  # stopped after its first batch
    results: dict = {"mode": "quick" if quick else "full", "dataset": data_cfg.dataset, "train_images": train_images,
                     "epochs_per_job": epochs, "concurrent_jobs": CONCURRENT_JOBS, "cpu_count": os.cpu_count(),
                     "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    say(f"data {data_cfg.dataset}: {train_images} training images; {CONCURRENT_JOBS} jobs x {epochs} epochs")

    def loader(_cfg):
        return dataset  # the app's store: loading is not what is measured

    local = JobRegistry(root=str(scratch / "local"), max_concurrent=CONCURRENT_JOBS, load_data=loader,
                        runner=LocalRunner())
    first_batch_seconds(local, latency_cfg)  # warm-up: imports, allocator, thread pools
    results["local_first_batch_s"] = [round(first_batch_seconds(local, latency_cfg), 4) for _ in range(tries)]
    say(f"in-process start -> first batch: {results['local_first_batch_s']} s")

    cpus = cpus_per_job if cpus_per_job is not None else (os.cpu_count() or 1) / CONCURRENT_JOBS
    started = time.perf_counter()
    runner = RayRunner(address, cpus=cpus, gpus=0)
    results["ray_connect_s"] = round(time.perf_counter() - started, 3)
    results["ray_backend"] = runner.describe()
    results["ray_cpus_per_job"] = cpus
    say(f"Ray ({address}): {runner.describe()}, connected in {results['ray_connect_s']} s; {cpus:g} CPU per job")
    try:
        remote = JobRegistry(root=str(scratch / "ray"), max_concurrent=CONCURRENT_JOBS, load_data=loader,
                             runner=runner)
        results["ray_first_batch_cold_s"] = round(first_batch_seconds(remote, latency_cfg), 4)
        results["ray_first_batch_s"] = [round(first_batch_seconds(remote, latency_cfg), 4) for _ in range(tries)]
        say(f"Ray start -> first batch: cold {results['ray_first_batch_cold_s']} s, then {results['ray_first_batch_s']} s")
        results["ray_latency_ratio"] = (statistics.median(results["ray_first_batch_s"])
                                        / statistics.median(results["local_first_batch_s"]))

        # Throughput: in-process, Ray (the first round starts most of its 8 workers: cold), Ray again
        # (all 8 warm), in-process again (drift hits both sides).
        rates_local, rates_ray = [], []
        for side, registry, rates in (("in-process", local, rates_local), ("Ray, cold workers", remote, rates_ray),
                                      ("Ray, warm workers", remote, rates_ray), ("in-process", local, rates_local)):
            rate, seconds = concurrent_images_per_s(registry, cfg, train_images, CONCURRENT_JOBS)
            rates.append(rate)
            say(f"{CONCURRENT_JOBS} concurrent jobs {side}: {rate:.0f} img/s ({seconds:.1f} s)")
        results["local_concurrent_images_per_s"] = [round(r, 1) for r in rates_local]
        results["ray_concurrent_images_per_s"] = [round(r, 1) for r in rates_ray]  # cold, warm
        results["ray_throughput_ratio"] = rates_ray[1] / statistics.mean(rates_local)
        results["ray_cold_throughput_ratio"] = rates_ray[0] / statistics.mean(rates_local)
    finally:
        runner.shutdown()
    return results


def table(results: dict) -> str:
    local = statistics.median(results["local_first_batch_s"])
    ray = statistics.median(results["ray_first_batch_s"])
    rows = [
        ("start -> first batch loss, in-process (median)", f"{local:.3f} s"),
        ("start -> first batch loss, Ray (median; cold first job apart)",
         f"{ray:.3f} s (cold {results['ray_first_batch_cold_s']:.3f} s)"),
        ("  Ray / in-process", f"{results['ray_latency_ratio']:.1f}x"),
        (f"{results['concurrent_jobs']} concurrent jobs, in-process (before, after)",
         " / ".join(f"{r:.0f}" for r in results["local_concurrent_images_per_s"]) + " img/s"),
        (f"{results['concurrent_jobs']} concurrent jobs, Ray (cold, warm workers)",
         " / ".join(f"{r:.0f}" for r in results["ray_concurrent_images_per_s"]) + " img/s"),
        ("  Ray warm / in-process (mean of before and after)", f"{results['ray_throughput_ratio']:.2f}x"),
        ("  Ray cold / in-process", f"{results['ray_cold_throughput_ratio']:.2f}x"),
        ("Ray connect / embedded cluster start", f"{results['ray_connect_s']:.1f} s"),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def main(quick: bool, mnist_root: Path, out: Path, address: str = "local", cpus_per_job: float | None = None,
         json_only: bool = False) -> int:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # an embedded bench cluster needs no token
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ae-lab-bench-ray-") as scratch:
        results = measure(quick, mnist_root, address, cpus_per_job, tries=3 if quick else 5, scratch=Path(scratch))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2) if json_only else table(results))
    print(f"results: {out}")
    return 0
