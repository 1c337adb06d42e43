"""A class presses Train together: N jobs (default 30) started at once through core's JobRegistry,
MNIST-10k conv-small z16 batch 128, a few epochs each — once with CUDA-graph steps and once eager,
in the same run — plus one job alone each way, and how fast a page can read a job meanwhile.

Figures (results.json keys): classroom_jobs, classroom_img_s_total (graphs), classroom_eager_img_s_total,
classroom_slowest_job_s, classroom_fastest_job_s (graphs), graph_img_s_1job, eager_img_s_1job,
snapshot_p99_ms (registry.snapshot() while the N graph jobs train), graph_val_loss_gap (final
validation loss of the same seeds, graph vs eager, relative, mean over the seeds; the largest in
graph_val_loss_gap_max, and eager_repeat_val_loss_gap for two eager runs of one seed). On a machine without CUDA only the
eager figures are measured, and the step says so.
"""
from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import torch

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import Dataset, load_dataset
from core.jobs import JobRegistry
from core.train import train

BATCH = 128


def classroom_data(mnist_root: Path) -> tuple[Dataset, str]:
    raw = Path(mnist_root) / "MNIST" / "raw"
    if raw.is_dir():
        cfg = DataConfig(dataset="mnist", data_root=str(mnist_root))
        return load_dataset(cfg), "mnist"
    return load_dataset(DataConfig(dataset="digits")), "digits (MNIST-10k not found)"


def job_config(dataset_name: str, mnist_root: Path, epochs: int, seed: int, graphs: bool, device: str) -> RunConfig:
    data = DataConfig(dataset="mnist", data_root=str(mnist_root)) if dataset_name == "mnist" else DataConfig()
    return RunConfig(data=data, model=ModelConfig(family="conv", preset="small", latent=16),
                     train=TrainConfig(epochs=epochs, batch_size=BATCH, seed=seed, device=device,
                                       cuda_graphs=graphs, film_images=8),
                     name=f"class-{'graph' if graphs else 'eager'}-{seed}")


def _steady_img_s(history) -> float:
    """Training images/s of the epochs after the first (the first holds warm-up and capture)."""
    later = history[1:] or history
    return statistics.fmean(r.images_per_s for r in later)


def one_job(dataset: Dataset, name: str, mnist_root: Path, epochs: int, graphs: bool, device: str):
    return train(job_config(name, mnist_root, epochs, 0, graphs, device), dataset)


def classroom(dataset: Dataset, name: str, mnist_root: Path, jobs: int, epochs: int, graphs: bool,
              device: str, scratch: Path) -> dict:
    """Start `jobs` runs at once through a registry that runs them all; wall time from the first
    start to the last finish, per-job times, and snapshot() latency sampled meanwhile."""
    registry = JobRegistry(root=scratch / ("graph" if graphs else "eager"), max_concurrent=jobs,
                           load_data=lambda _cfg: dataset)
    latencies: list[float] = []
    done = threading.Event()
    ids: list[str] = []

    def poll() -> None:  # what 30 Train pages do, twice a second each: read a job's snapshot
        i = 0
        while not done.is_set():
            if ids:
                started = time.perf_counter()
                registry.snapshot(ids[i % len(ids)])
                latencies.append((time.perf_counter() - started) * 1000)
                i += 1
            time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    started = time.perf_counter()
    for seed in range(jobs):
        ids.append(registry.start(job_config(name, mnist_root, epochs, seed, graphs, device)))
    snaps = [registry.wait(job_id) for job_id in ids]
    wall = time.perf_counter() - started
    done.set()
    poller.join()
    failed = [s.message for s in snaps if s.status != "finished"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {jobs} classroom jobs did not finish: {failed[0]}")
    images = sum(len(s.history) for s in snaps) * len(dataset.splits["train"])
    job_seconds = [s.finished_at - s.started_at for s in snaps]
    # Where a job's time goes: its first epoch holds the warm-up and the capture; outside the
    # epochs are loading, building, the test evaluation and saving.
    first_epoch_extra = [s.history[0].seconds - statistics.fmean(r.seconds for r in s.history[1:])
                         for s in snaps if len(s.history) > 1]
    outside_epochs = [total - sum(r.seconds for r in s.history) for s, total in zip(snaps, job_seconds)]
    latencies.sort()
    return {
        "img_s_total": images / wall,
        "wall_s": wall,
        "slowest_job_s": max(job_seconds),
        "fastest_job_s": min(job_seconds),
        "snapshot_p99_ms": latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "snapshot_reads": len(latencies),
        # The training phase's rate of every job summed (epochs after the first, while the others ran too).
        "steady_img_s_total": sum(_steady_img_s(s.history) for s in snaps),
        "first_epoch_extra_s_max": max(first_epoch_extra) if first_epoch_extra else None,
        "outside_epochs_s_max": max(outside_epochs),
        "val_losses": [s.history[-1].val_loss for s in snaps],
    }


def measure(results, mnist_root: Path, scratch: Path, jobs: int = 30, epochs: int = 5, say=print) -> None:
    """Fill results with the classroom figures (see the module docstring)."""
    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    dataset, name = classroom_data(mnist_root)
    results.set("classroom_dataset", name)
    results.set("classroom_jobs", jobs)
    results.set("classroom_epochs", epochs)
    if not on_gpu:
        say("classroom: no CUDA GPU here, so only the eager path is measured (graphs need CUDA)")
    eager_one = one_job(dataset, name, mnist_root, epochs, False, device)
    results.set("eager_img_s_1job", _steady_img_s(eager_one.history))
    eager = classroom(dataset, name, mnist_root, jobs, epochs, False, device, scratch)
    results.set("classroom_eager_img_s_total", eager["img_s_total"])
    results.set("classroom_eager_wall_s", eager["wall_s"])
    if not on_gpu:
        results.set("classroom_slowest_job_s", eager["slowest_job_s"])
        results.set("classroom_fastest_job_s", eager["fastest_job_s"])
        results.set("snapshot_p99_ms", eager["snapshot_p99_ms"])
        results.set("classroom_note", "CPU: eager only (CUDA graphs need a CUDA GPU)")
        return
    graph_one = one_job(dataset, name, mnist_root, epochs, True, device)
    if graph_one.step != "cuda-graph":
        raise RuntimeError(f"The graph run fell back to eager steps: {graph_one.step_reason}")
    results.set("graph_img_s_1job", _steady_img_s(graph_one.history))
    results.set("graph_speedup_1job", results.get("graph_img_s_1job") / results.get("eager_img_s_1job"))
    graph = classroom(dataset, name, mnist_root, jobs, epochs, True, device, scratch)
    results.set("classroom_img_s_total", graph["img_s_total"])
    results.set("classroom_wall_s", graph["wall_s"])
    results.set("classroom_speedup", graph["img_s_total"] / eager["img_s_total"])
    results.set("classroom_slowest_job_s", graph["slowest_job_s"])
    results.set("classroom_fastest_job_s", graph["fastest_job_s"])
    results.set("classroom_job_spread", graph["slowest_job_s"] / graph["fastest_job_s"])
    results.set("classroom_steady_img_s_total", graph["steady_img_s_total"])
    results.set("classroom_eager_steady_img_s_total", eager["steady_img_s_total"])
    results.set("classroom_first_epoch_extra_s_max", graph["first_epoch_extra_s_max"])
    results.set("classroom_outside_epochs_s_max", graph["outside_epochs_s_max"])
    results.set("snapshot_p99_ms", graph["snapshot_p99_ms"])
    gaps = [abs(g - e) / e for g, e in zip(graph["val_losses"], eager["val_losses"])]
    gaps.append(abs(graph_one.history[-1].val_loss - eager_one.history[-1].val_loss) / eager_one.history[-1].val_loss)
    # The figure is the mean over the N + 1 seeds; the largest gap and the gap between two eager
    # runs of the same seed (cuDNN's backward kernels are not bit-for-bit repeatable, and small
    # differences grow over a few hundred steps) say how much of it is the GPU's own noise.
    results.set("graph_val_loss_gap", statistics.fmean(gaps))
    results.set("graph_val_loss_gap_max", max(gaps))
    eager_again = one_job(dataset, name, mnist_root, epochs, False, device)
    results.set("eager_repeat_val_loss_gap",
                abs(eager_again.history[-1].val_loss - eager_one.history[-1].val_loss) / eager_one.history[-1].val_loss)
    results.set("gpu", torch.cuda.get_device_name(0))
