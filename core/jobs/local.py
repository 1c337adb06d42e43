"""The default runner: a job's work runs in this process, on the job's own thread.

A runner is the seam between the registry (queue, limits, snapshots, saving) and the place a
job's computation happens. The registry calls `runner.train(...)` / `runner.train_probe(...)`
from the job's thread and gets back the same results core.train / core.analysis return; a runner
reports progress through the same TrainReporter / on_epoch callbacks, so the registry and
everything above it cannot tell where the work ran.
"""
from __future__ import annotations

import threading
from typing import Callable

from core.config import RunConfig
from core.data import Dataset
from core.lazy import lazy_exports
from core.train import ResumeFrom, TrainReporter, TrainResult

# core.train.train, as this module's `train` (tests replace it here), imported by the first job: the
# app's first page imports this module and must not wait for PyTorch.
__getattr__, __dir__ = lazy_exports(__name__, {"core.train": ("train",)})


class LocalRunner:
    """Runs training and probes in the calling thread (nothing to start, nothing to stop)."""

    backend = "local"

    def describe(self) -> str:
        """Where jobs run, for the sidebar."""
        return "this machine"

    def train(self, cfg: RunConfig, dataset: Dataset, reporter: TrainReporter,
              stop_event: threading.Event, resume: ResumeFrom | None = None) -> TrainResult:
        from core.jobs.local import train  # this module's own (see lazy_exports above)

        if resume is None:
            return train(cfg, dataset, reporter=reporter, stop_event=stop_event)
        return train(cfg, dataset, reporter=reporter, stop_event=stop_event, resume=resume)

    def train_probe(self, model, dataset: Dataset, probe_cfg, on_epoch: Callable[[dict], None],
                    stop_event: threading.Event):
        # Imported here so that the jobs package does not need the analysis module to import.
        from core.analysis import train_probe

        return train_probe(model, dataset, probe_cfg, on_epoch=on_epoch, stop_event=stop_event)

    def shutdown(self) -> None:
        pass
