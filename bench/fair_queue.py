"""Figure: one student floods the queue while 29 others press Train once — when does each of the 29 start?

A real JobRegistry (its queue, slots, threads and save policy) with one training slot, as on a CPU
server; each job's training is replaced by a fixed pause (a "job slot"), since what is measured is
the order the queue serves, not the training. Student 0 queues `--flood` jobs first; then the 29
others press Start once each, one after the other. A student's *turn* is the order they pressed in
(the first of the 29 should start as soon as the job running when they pressed ends); how late
each starts is counted in job slots: the jobs that started between their turn and their start.
The baseline, in the same run, is the first-come-first-served queue the registry had before
(core.jobs.scheduler.FairQueue with a plain FIFO pop).

    python -m bench.fair_queue [--flood 25] [--students 29] [--slot 0.05] [--out bench/results-fair.json]
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from collections import deque
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.jobs import JobRegistry
from core.jobs.scheduler import FairQueue
from core.train import TrainResult


class PausedRunner:
    """Each job 'trains' for `slot` seconds and saves nothing (no epoch finished)."""

    backend = "bench"

    def __init__(self, slot: float):
        self.slot = slot
        self.started: dict[str, float] = {}  # job id -> when its training began

    def train(self, cfg, dataset, reporter, stop_event: threading.Event, resume=None):
        self.started[reporter.id] = time.perf_counter()
        reporter.on_start(1, 1, torch.zeros(0, dtype=torch.uint8))
        stop_event.wait(self.slot)
        return TrainResult(model=None, status="finished", message="Done.", history=[], batch_losses=[],
                           film_originals=torch.zeros(0, dtype=torch.uint8), film=[], test_metrics={}, device="cpu")

    def shutdown(self) -> None:
        pass


class FirstComeQueue(FairQueue):
    """The queue before: one line, first in, first out, whoever queued."""

    def __init__(self) -> None:
        super().__init__()
        self._line: deque[str] = deque()

    def push(self, job_id: str, owner: str | None) -> None:
        super().push(job_id, None)
        self._line.append(job_id)

    def remove(self, job_id: str) -> bool:
        if job_id in self._line:
            self._line.remove(job_id)
        return super().remove(job_id)

    def pop(self) -> str | None:
        if not self._line:
            return None
        job_id = self._line.popleft()
        super().remove(job_id)
        return job_id

    def order(self) -> list[str]:
        return list(self._line)


def run(queue: str, flood: int, students: int, slot: float, dataset) -> dict:
    cfg = RunConfig(data=DataConfig(dataset="digits"), model=ModelConfig(family="dense", hidden=[8], latent=2),
                    train=TrainConfig(epochs=1, device="cpu"))
    with TemporaryDirectory(prefix="ae-lab-fair-") as root:
        runner = PausedRunner(slot)
        registry = JobRegistry(root=root, max_concurrent=1, load_data=lambda _cfg: dataset, runner=runner)
        if queue == "first-come":
            registry._queue = FirstComeQueue()
        flooded = [registry.start(cfg, owner="student-00-flooding") for _ in range(flood)]
        pressed = [registry.start(cfg, owner=f"student-{i:02d}") for i in range(1, students + 1)]
        while len(runner.started) < len(flooded + pressed) or any(j.status.active for j in registry.summaries()):
            time.sleep(slot)
        starts = runner.started
    launch_order = sorted(starts, key=starts.get)
    # Turn i (0-based) of the i-th student to press: right after the flood's running job, in press order.
    late = [launch_order.index(job_id) - (i + 1) for i, job_id in enumerate(pressed)]
    return {"queue": queue, "max_slots_late": max(late), "mean_slots_late": sum(late) / len(late),
            "last_of_the_29_starts_at_slot": max(launch_order.index(j) for j in pressed),
            "flood_jobs_before_the_last_of_the_29": sum(1 for j in flooded
                                                        if starts[j] < max(starts[p] for p in pressed))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=25)
    parser.add_argument("--students", type=int, default=29)
    parser.add_argument("--slot", type=float, default=0.05, help="seconds each job takes")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    dataset = load_dataset(DataConfig(dataset="digits", limit=200))
    started = time.perf_counter()
    results = [run(queue, args.flood, args.students, args.slot, dataset) for queue in ("first-come", "fair")]
    report = {"flood": args.flood, "students": args.students, "slot_s": args.slot, "results": results,
              "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
