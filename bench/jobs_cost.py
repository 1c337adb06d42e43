"""Figures 2 and 3: what watching a background job costs it, and how soon its first batch loss
can be read. Both go through core.jobs.JobRegistry exactly as the Train page does."""
from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

from core.config import RunConfig

WATCH_INTERVAL_S = 0.5  # the Train page's fragment polls twice a second
FIRST_METRIC_POLL_S = 0.005
JOB_TIMEOUT_S = 600


def _watch(registry, job_id: str, stop: threading.Event, reads: list[int]) -> None:
    """What the Train page's fragment does when it first shows the job and then every half
    second: take a snapshot and read it."""
    while True:
        snapshot = registry.snapshot(job_id)
        reads.append(len(snapshot.batch_losses) + len(snapshot.history))
        if stop.wait(WATCH_INTERVAL_S):
            return


def job_images_per_s(registry, cfg: RunConfig, watched: bool) -> tuple[float, int]:
    """Training images/s of one job (over all its epochs), and how many times it was read."""
    job_id = registry.start(cfg)
    stop, reads = threading.Event(), []
    reader = threading.Thread(target=_watch, args=(registry, job_id, stop, reads), daemon=True) if watched else None
    if reader is not None:
        reader.start()
    try:
        snapshot = registry.wait(job_id, timeout=JOB_TIMEOUT_S)
    finally:
        stop.set()
        if reader is not None:
            reader.join()
    if snapshot.status != "finished":
        raise RuntimeError(f"The benchmark job ended as {snapshot.status}: {snapshot.message}")
    # Every epoch has the same number of images, so the overall rate is the harmonic mean.
    return statistics.harmonic_mean([record.images_per_s for record in snapshot.history]), len(reads)


def watch_slowdown(root: Path, cfg: RunConfig, rounds: int) -> tuple[float, list[float], list[float]]:
    """Fraction by which a watched job trains slower than an unwatched one (negative: faster).
    Jobs alternate unwatched, watched, watched, unwatched (ABBA) so a drift in the machine's
    load hits both sides alike; the figure compares the medians."""
    from core.jobs import JobRegistry

    registry = JobRegistry(root=str(root), max_concurrent=1)
    unwatched, watched = [], []
    for _ in range(rounds):
        for is_watched in (False, True, True, False):
            rate, reads = job_images_per_s(registry, cfg, is_watched)
            if is_watched and reads == 0:
                raise RuntimeError("The watched job ended before the reader read it once; train it for longer.")
            (watched if is_watched else unwatched).append(rate)
    return 1.0 - statistics.median(watched) / statistics.median(unwatched), unwatched, watched


def first_metric_seconds(root: Path, cfg: RunConfig, tries: int) -> list[float]:
    """Seconds from JobRegistry.start() to the first batch loss in a snapshot, per try; each job
    is stopped as soon as it has been read."""
    from core.jobs import JobRegistry

    registry = JobRegistry(root=str(root), max_concurrent=1)
    seconds = []
    for _ in range(tries):
        started = time.perf_counter()
        job_id = registry.start(cfg)
        while True:
            snapshot = registry.snapshot(job_id)
            if snapshot.batch_losses:
                seconds.append(time.perf_counter() - started)
                break
            if snapshot.status in ("failed", "finished", "stopped", "diverged"):
                raise RuntimeError(f"The job ended as {snapshot.status} before a batch loss was read: {snapshot.message}")
            if time.perf_counter() - started > JOB_TIMEOUT_S:
                raise RuntimeError(f"No batch loss within {JOB_TIMEOUT_S} s.")
            time.sleep(FIRST_METRIC_POLL_S)
        registry.stop(job_id)
        registry.wait(job_id, timeout=JOB_TIMEOUT_S)
    return seconds
