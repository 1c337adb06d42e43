"""What runs inside a Ray worker process for core.jobs.ray_runner: one job at a time, its progress
events kept in a buffer the server polls, and the environment settings of what a job asks for.

Imported by the runner (and, through the runtime_env's py_modules, by the workers); imports no Ray
at module level.
"""
from __future__ import annotations

import os
import socket
import threading
import time

from core.config import RunConfig
from core.data import Dataset
from core.jobs.lifecycle import RunnerError

RAY_ADDRESS_ENV = "AE_LAB_RAY_ADDRESS"  # "local" (an embedded cluster), "auto" or "host:port"
CPUS_ENV = "AE_LAB_RAY_CPUS_PER_JOB"
GPUS_ENV = "AE_LAB_RAY_GPUS_PER_JOB"
RESOURCES_ENV = "AE_LAB_RAY_RESOURCES"  # custom resources per job, "name=amount,name=amount"
CONNECT_TIMEOUT = 3.0


class JobWorker:
    """Jobs inside one Ray worker process, one at a time; a threaded actor, so poll() and stop() are
    answered while a job runs. Its events wait in a list that poll() hands over and empties. A worker
    is kept warm between jobs (see RayRunner): each job has a token, so a stop meant for one job
    can never reach the next."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple] = []
        self._job = ""
        self._stop = threading.Event()
        self._total_epochs = 0
        self._checkpoint_every: float | None = None
        self._last_checkpoint = 0.0

    def where(self) -> dict:
        """Where this worker runs: the server logs it and the tests check it."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "host": socket.gethostname(), "cwd": os.getcwd()}

    def _begin(self, job: str) -> threading.Event:
        with self._lock:
            self._job, self._stop, self._events = job, threading.Event(), []
            return self._stop

    def train(self, job: str, cfg: RunConfig, dataset: Dataset, resume=None, checkpoint_every: float | None = None):
        """core.train.train; with `checkpoint_every` (seconds), a checkpoint event that often."""
        from core.train import train

        stop = self._begin(job)
        self._checkpoint_every, self._last_checkpoint = checkpoint_every, time.monotonic()
        if resume is None:
            return train(cfg, dataset, reporter=self, stop_event=stop)
        return train(cfg, dataset, reporter=self, stop_event=stop, resume=resume)

    def train_probe(self, job: str, model, dataset: Dataset, probe_cfg):
        from core.analysis import train_probe

        stop = self._begin(job)
        return train_probe(model, dataset, probe_cfg, on_epoch=lambda row: self._push(("probe_epoch", row)),
                           stop_event=stop)

    def stop(self, job: str) -> None:
        with self._lock:
            if job == self._job:
                self._stop.set()

    def poll(self) -> list[tuple]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def _push(self, event: tuple) -> None:
        with self._lock:
            self._events.append(event)

    # core.train.TrainReporter
    def on_start(self, total_epochs, batches_per_epoch, film_originals) -> None:
        self._total_epochs = total_epochs
        self._push(("start", total_epochs, batches_per_epoch, film_originals))

    def on_batch(self, epoch, batch, loss) -> None:
        self._push(("batch", epoch, batch, loss))

    def on_epoch(self, record, film_frame) -> None:
        self._push(("epoch", record, film_frame))

    def on_checkpoint(self, epoch, take) -> None:
        """The server keeps the checkpoint (core.jobs.restart); taken here when due, sent as an event."""
        every = self._checkpoint_every
        if every is None or epoch >= self._total_epochs or time.monotonic() - self._last_checkpoint < every:
            return
        self._push(("checkpoint", take()))
        self._last_checkpoint = time.monotonic()


def number_from_env(name: str, default: float | None) -> float | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise RunnerError(f"{name}={text!r} is not a number; set it to e.g. 1 or 0.5.") from None
    if value < 0:
        raise RunnerError(f"{name} must be 0 or more, not {text}.")
    return value


def resources_from_env() -> dict[str, float]:
    text = os.environ.get(RESOURCES_ENV, "").strip()
    resources: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, amount = part.partition("=")
        try:
            resources[name.strip()] = float(amount) if amount.strip() else 1.0
        except ValueError:
            raise RunnerError(f"{RESOURCES_ENV} takes name=amount pairs separated by commas, e.g. "
                              f"'gpu_node=0.1'; '{part}' is not one.") from None
    return resources


def check_reachable(address: str) -> None:
    """A host:port nobody listens on would keep ray.init retrying for a minute; say so in seconds."""
    text = address.removeprefix("ray://")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise RunnerError(f"The Ray address '{address}' is not 'local', 'auto' or host:port; set "
                          f"{RAY_ADDRESS_ENV} to one of those.")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError:
        raise RunnerError(f"Could not reach the Ray cluster at {address}; start it there with `ray start --head` "
                          f"or fix {RAY_ADDRESS_ENV}.") from None
