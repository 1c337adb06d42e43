"""A runner that sends jobs to a Ray cluster: the registry, its snapshots and the live view stay the same.

Each job runs on a Ray actor (`_JobWorker`) that asks for configurable resources (CPUs, a fraction
of a GPU, custom resources that pin jobs to nodes), runs core's own train() / train_probe() and
keeps the progress events in a buffer; a finished job's actor stays warm for the next job a while,
since a new one is a new process that imports torch. The job's thread on the server polls that buffer a few times a
second (one call returns every event since the last, so a fast run's batches travel together) and
replays the events into the registry's reporter, so the charts move as they do locally. Stop is a
call that sets the worker's threading.Event. The finished TrainResult (CPU tensors) comes back as
the call's value and the registry saves it in the server's own checkpoints folder, so no shared
filesystem is assumed; the data goes into Ray's object store once per dataset (ray.put), so the
workers need no copy of the data folder, and core itself travels as a runtime_env py_module.

The worker itself and the settings a job asks for are in core.jobs.ray_worker. A registry that
keeps crash checkpoints gets them from the worker as events, as often as it asks.

Ray is imported only when a RayRunner is made: importing this module costs nothing.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from core.config import RunConfig
from core.data import Dataset
from core.jobs.lifecycle import RunnerError
from core.jobs.ray_worker import (CPUS_ENV, GPUS_ENV, RAY_ADDRESS_ENV, RESOURCES_ENV, JobWorker, check_reachable,
                                  number_from_env, resources_from_env)

START_TIMEOUT_ENV = "AE_LAB_RAY_START_TIMEOUT"  # seconds a job may wait for a node with room
IDLE_ENV = "AE_LAB_RAY_IDLE_SECONDS"  # how long a finished job's worker is kept for the next job

DEFAULT_CPUS_PER_JOB = 1.0
# With GPUs in the cluster and no setting: four jobs share one GPU (the teaching models are small).
DEFAULT_GPU_SHARE = 0.25
DEFAULT_START_TIMEOUT = 300.0
POLL_SECONDS = 0.25  # how often the server reads a job's events (and how late Stop can reach it)
FIRST_POLL_SECONDS = 0.02  # until the first event: a job's start shows at once
# A new worker is a new process that imports torch (seconds); a finished job's worker waits this
# long for the next job, holding its resources, and is ended after that.
DEFAULT_IDLE_SECONDS = 120.0
MAX_IDLE_WORKERS = 8
DESCRIBE_EVERY_S = 10.0
DESCRIBE_WAIT_S = 2.0
NOT_ANSWERING = "Ray: the cluster does not answer"
MAX_PLACEMENTS = 1000  # the most recent jobs' placements kept
MAX_DEFAULT_JOBS = 64  # the registry's default limit on a cluster: what its nodes hold, at most this
ANSWER_TIMEOUT = 60.0  # a worker that does not answer a poll for this long is treated as lost
MAX_CACHED_DATASETS = 4
CORE_DIR = Path(__file__).resolve().parent.parent


def _plural(count: float, word: str) -> str:
    shown = f"{count:g}"
    return f"{shown} {word}" + ("" if shown == "1" else "s")


class RayRunner:
    """Runs each job as a Ray actor on the cluster at `address` (see the module docstring).

    address: "local" starts an embedded cluster in this process; "auto" joins the cluster
    `ray start` runs on this machine; "host:port" joins that head node. cpus / gpus / resources
    are what each job asks for (default from AE_LAB_RAY_CPUS_PER_JOB, AE_LAB_RAY_GPUS_PER_JOB,
    AE_LAB_RAY_RESOURCES; GPUs default to a quarter per job when the cluster has any, else none).
    runtime_env is merged into the one that ships core to the workers (e.g. a working_dir).
    A finished job's worker is kept `idle_seconds` (AE_LAB_RAY_IDLE_SECONDS, default 120; 0: never)
    for the next job, which then starts without a new process.
    Raises RunnerError (one sentence) when the cluster cannot be reached."""

    backend = "ray"

    def __init__(self, address: str = "local", cpus: float | None = None, gpus: float | None = None,
                 resources: dict[str, float] | None = None, start_timeout: float | None = None,
                 runtime_env: dict | None = None, init_args: dict | None = None,
                 idle_seconds: float | None = None):
        try:
            import ray
        except ImportError:
            raise RunnerError("Ray is not installed here; install it with `pip install 'ray[default]'` or unset "
                              f"{RAY_ADDRESS_ENV} to train on this machine.") from None
        self._ray = ray
        self.address = (address or "local").strip()
        env = {"py_modules": [str(CORE_DIR)]} | dict(runtime_env or {})
        self._started_cluster = False
        if self.address not in ("local", "auto"):
            check_reachable(self.address)
        # One process holds one Ray connection: a second runner (e.g. after the app's cache was
        # cleared) uses the connection the first one made.
        if not ray.is_initialized():
            kwargs: dict[str, Any] = dict(runtime_env=env, logging_level="WARNING", log_to_driver=False)
            # "local" always starts a new cluster (Ray's own "local"), never one a `ray start` left behind.
            kwargs.update(address=self.address)
            if self.address == "local":
                kwargs.update(include_dashboard=False)
            kwargs.update(init_args or {})
            try:
                self._init_on_keeper_thread(kwargs)
            except Exception as exc:  # refused, timed out, a token or version mismatch: one sentence either way
                where = "on this machine (is `ray start --head` running?)" if self.address == "auto" \
                    else f"at {self.address}"
                raise RunnerError(f"Could not connect to a Ray cluster {where}; start one or unset "
                                  f"{RAY_ADDRESS_ENV} to train on this machine.") from exc
            self._started_cluster = True
        self._worker_class = ray.remote(JobWorker)
        self.cpus = number_from_env(CPUS_ENV, DEFAULT_CPUS_PER_JOB) if cpus is None else float(cpus)
        gpus = number_from_env(GPUS_ENV, None) if gpus is None else float(gpus)
        if gpus is None:
            gpus = DEFAULT_GPU_SHARE if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        self.gpus = gpus
        self.resources = resources_from_env() if resources is None else dict(resources)
        self.start_timeout = (number_from_env(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT)
                              if start_timeout is None else float(start_timeout))
        self._data_lock = threading.Lock()
        self._data_refs: OrderedDict[str, tuple[Dataset, Any]] = OrderedDict()
        self.idle_seconds = (number_from_env(IDLE_ENV, DEFAULT_IDLE_SECONDS)
                             if idle_seconds is None else float(idle_seconds))
        self._workers_lock = threading.Lock()
        self._workers: set = set()  # every worker alive, busy or idle
        self._idle: list[tuple[float, Any]] = []  # (idle since, worker), the most recent last
        # Where each job's worker ran, in start order: {"node_id", "pid", "host", "cwd"}.
        self.placements: list[dict] = []
        # on_placed(where) is called from the job's thread once its worker runs (tests use it to find the pid).
        self.on_placed: Callable[[dict], None] | None = None
        self._describe_lock = threading.Lock()
        self._description = ""
        self._described_at = -math.inf
        self._describing: float | None = None  # when the refresh in flight started
        self._described = threading.Event()  # set when the refresh in flight ends

    def _init_on_keeper_thread(self, kwargs: dict) -> None:
        """ray.init on a thread that lives until shutdown(). Ray starts its cluster processes with
        PR_SET_PDEATHSIG, which kills them when the *thread* that started them ends; the app makes
        its runner on a Streamlit script thread, which ends after every run of the page."""
        outcome: dict[str, BaseException] = {}
        ready = threading.Event()

        def keep() -> None:
            try:
                self._ray.init(**kwargs)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc
                ready.set()
                return
            ready.set()
            self._keeper_done.wait()

        self._keeper_done = threading.Event()
        threading.Thread(target=keep, name="ae-lab-ray-keeper", daemon=True).start()
        ready.wait()
        if "error" in outcome:
            raise outcome["error"]

    # -------------------------------------------------- what the sidebar shows

    def describe(self) -> str:
        """E.g. "Ray: 3 nodes, 2 GPUs", read from the cluster at most every 10 s on a thread of its
        own: a cluster that stopped answering must not hold up the page that asks (it waits 2 s
        at most, then reads "Ray: the cluster does not answer")."""
        with self._describe_lock:
            now = time.monotonic()
            if now - self._described_at >= DESCRIBE_EVERY_S and self._describing is None:
                self._describing = now
                threading.Thread(target=self._refresh_description, name="ae-lab-ray-describe", daemon=True).start()
            since, refreshed = self._describing, self._described
        if since is not None:
            refreshed.wait(max(DESCRIBE_WAIT_S - (time.monotonic() - since), 0.0))
            with self._describe_lock:
                if self._describing is not None and time.monotonic() - self._describing >= DESCRIBE_WAIT_S:
                    return NOT_ANSWERING
        return self._description or NOT_ANSWERING

    def _refresh_description(self) -> None:
        try:
            nodes = [n for n in self._ray.nodes() if n.get("Alive")]
            gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)
            text = f"Ray: {_plural(len(nodes), 'node')}, {_plural(gpus, 'GPU')}"
        except Exception:  # a lost connection must not break the sidebar
            text = NOT_ANSWERING
        with self._workers_lock:  # the sidebar polls: a good moment to end workers idle too long
            expired = self._expired_locked()
        self._kill(expired)
        with self._describe_lock:
            self._description, self._described_at, self._describing = text, time.monotonic(), None
            self._described.set()
            self._described = threading.Event()

    def request(self) -> dict[str, float]:
        """What one job asks the cluster for."""
        wanted = {"CPU": self.cpus, "GPU": self.gpus} | self.resources
        return {name: amount for name, amount in wanted.items() if amount > 0}

    def max_jobs(self) -> int:
        """How many jobs the cluster's alive nodes can run at once (the registry's default limit
        when AE_LAB_MAX_JOBS is not set), at most MAX_DEFAULT_JOBS."""
        wanted = self.request()
        total = 0
        for node in self._ray.nodes():
            have = node.get("Resources", {}) if node.get("Alive") else {}
            fits = [int(have.get(name, 0) // amount) for name, amount in wanted.items()]
            total += min(fits) if fits else 0
        return max(1, min(total, MAX_DEFAULT_JOBS))

    def _describe_request(self) -> str:
        parts = [f"{amount:g} {name}" for name, amount in self.request().items()]
        return ", ".join(parts) or "no resources"

    def _check_feasible(self) -> None:
        """Refuse at once what no node of the cluster could ever give (waiting would be forever)."""
        wanted = self.request()
        for node in self._ray.nodes():
            have = node.get("Resources", {}) if node.get("Alive") else {}
            if all(have.get(name, 0) >= amount for name, amount in wanted.items()):
                return
        raise RunnerError(f"No node of the Ray cluster has {self._describe_request()} for one job; add such a node "
                          f"or ask for less with {CPUS_ENV}, {GPUS_ENV} or {RESOURCES_ENV}.")

    # -------------------------------------------------- data

    def _dataset_ref(self, dataset: Dataset):
        """The dataset's object in Ray's store, put there once per dataset: a job on the same data
        (the same loaded object, or one loaded again with equal tensors) reuses it."""
        key = f"{dataset.name}|{dataset.source}|{tuple(dataset.images.shape)}"
        with self._data_lock:
            held = self._data_refs.get(key)
            if held is not None and (held[0] is dataset or _same_data(held[0], dataset)):
                self._data_refs.move_to_end(key)
                return held[1]
            ref = self._ray.put(dataset)
            self._data_refs[key] = (dataset, ref)
            while len(self._data_refs) > MAX_CACHED_DATASETS:
                self._data_refs.popitem(last=False)
            return ref

    # -------------------------------------------------- the runner protocol

    def train(self, cfg: RunConfig, dataset: Dataset, reporter, stop_event: threading.Event, resume=None):
        """core.train.train on a worker; `resume` (a ResumeFrom: the saved run's states, read by the
        server) travels with the call, so a resumed run needs no shared folder either."""
        if self.gpus <= 0 and cfg.train.device.strip().lower().startswith("cuda"):
            raise RunnerError(f"This job asks for CUDA but the Ray jobs get no GPU; set {GPUS_ENV} (e.g. 0.25) or "
                              "choose the device auto or cpu.")
        data_ref = self._dataset_ref(dataset)

        def feed(event: tuple) -> None:
            kind = event[0]
            if kind == "batch":
                reporter.on_batch(*event[1:])
            elif kind == "epoch":
                reporter.on_epoch(*event[1:])
            elif kind == "start":
                reporter.on_start(*event[1:])
            elif kind == "checkpoint":
                reporter.write_checkpoint(event[1])

        # A registry that keeps crash checkpoints (core.jobs.restart) gets them from the worker.
        every = reporter.checkpoint_every if getattr(reporter, "keep_checkpoint", None) else None
        result = self._run(lambda worker, job: worker.train.remote(job, cfg, data_ref, resume, every), feed,
                           stop_event)
        return result if result is not None else _stopped_while_waiting(cfg)

    def train_probe(self, model, dataset: Dataset, probe_cfg, on_epoch: Callable[[dict], None],
                    stop_event: threading.Event):
        data_ref = self._dataset_ref(dataset)
        result = self._run(lambda worker, job: worker.train_probe.remote(job, model, data_ref, probe_cfg),
                           lambda event: on_epoch(event[1]), stop_event)
        if result is None:
            raise RunnerError("Stopped while waiting for a Ray worker; nothing was trained.")
        return result

    def shutdown(self) -> None:
        """Ends the jobs' workers; an embedded cluster this runner started is shut down too."""
        with self._workers_lock:
            workers, self._workers, self._idle = list(self._workers), set(), []
        for worker in workers:
            try:
                self._ray.kill(worker)
            except Exception:
                pass
        if self._started_cluster and self._ray.is_initialized():
            self._ray.shutdown()
            self._started_cluster = False
            self._keeper_done.set()

    # -------------------------------------------------- one job on one worker

    def _run(self, start: Callable, feed: Callable[[tuple], None], stop_event: threading.Event):
        """Take a warm worker or start one, run `start(worker, job_token)` on it and replay its events
        until it ends; returns the call's value, or None when stopped before a worker was free."""
        ray = self._ray
        self._check_feasible()
        worker, where = self._take_idle_worker(), None
        if worker is not None:
            try:  # a warm worker whose process or node died meanwhile is replaced, not blamed
                where = ray.get(worker.where.remote(), timeout=ANSWER_TIMEOUT)
            except ray.exceptions.RayError:
                self._release(worker, keep=False)
                worker = None
        if worker is None:
            worker = self._new_worker()
        job = os.urandom(8).hex()
        keep = False
        try:
            if where is None:
                where = self._wait_for_worker(worker, stop_event)
            if where is None:
                return None
            self.placements.append(where)
            del self.placements[:-MAX_PLACEMENTS]
            if self.on_placed is not None:
                self.on_placed(where)
            work = start(worker, job)
            stop_sent = started = False
            while True:
                done, _ = ray.wait([work], timeout=POLL_SECONDS if started else FIRST_POLL_SECONDS)
                if stop_event.is_set() and not stop_sent:
                    worker.stop.remote(job)
                    stop_sent = True
                # Polled after the wait: once the work is done, this poll holds its last events.
                events = ray.get(worker.poll.remote(), timeout=ANSWER_TIMEOUT)
                started = started or bool(events)
                for event in events:
                    feed(event)
                if done:
                    value = ray.get(work)
                    keep = True
                    return value
        except ray.exceptions.RayTaskError as exc:
            # The job's own error (bad settings, a diverging probe...): raised as it would be locally;
            # the worker itself is fine and stays warm.
            keep = True
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise RunnerError(f"The job failed on its Ray worker: {_first_line(exc)}.") from None
        except ray.exceptions.GetTimeoutError:
            raise RunnerError(f"The Ray worker running this job stopped answering for {ANSWER_TIMEOUT:g} s; "
                              "start the job again.") from None
        except ray.exceptions.OutOfMemoryError:
            raise RunnerError("The Ray worker running this job ran out of memory; use a smaller model or batch, "
                              "or a node with more memory.") from None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.ObjectLostError):
            raise RunnerError("The Ray worker running this job died (its process was killed or its node was lost); "
                              "start the job again.") from None
        except ray.exceptions.RayError as exc:
            raise RunnerError(f"Ray could not run this job ({type(exc).__name__}); start it again.") from None
        finally:
            self._release(worker, keep)

    def _new_worker(self):
        options: dict[str, Any] = dict(num_cpus=self.cpus, max_concurrency=3, max_restarts=0)
        if self.gpus > 0:
            options["num_gpus"] = self.gpus
        if self.resources:
            options["resources"] = self.resources
        worker = self._worker_class.options(**options).remote()
        with self._workers_lock:
            self._workers.add(worker)
        return worker

    def _take_idle_worker(self):
        """The most recently used warm worker, if any; the ones idle too long are ended first."""
        with self._workers_lock:
            expired = self._expired_locked()
            worker = self._idle.pop()[1] if self._idle else None
        self._kill(expired)
        return worker

    def _release(self, worker, keep: bool) -> None:
        """After a job: keep its worker warm for the next one, or end it (frees its resources)."""
        with self._workers_lock:
            if keep and self.idle_seconds > 0 and worker in self._workers:
                self._idle.append((time.monotonic(), worker))
                ended = self._idle[:-MAX_IDLE_WORKERS] if len(self._idle) > MAX_IDLE_WORKERS else []
                del self._idle[:len(ended)]
                ended = [w for _, w in ended] + self._expired_locked()
            else:
                ended = [worker]
            self._workers.difference_update(ended)
        self._kill(ended)

    def _expired_locked(self) -> list:
        """Remove and return the idle workers past idle_seconds; the caller holds _workers_lock."""
        limit = time.monotonic() - self.idle_seconds
        expired = [w for since, w in self._idle if since < limit]
        self._idle = [(since, w) for since, w in self._idle if since >= limit]
        self._workers.difference_update(expired)
        return expired

    def _kill(self, workers) -> None:
        for worker in workers:
            try:
                self._ray.kill(worker)
            except Exception:  # already gone
                pass

    def _wait_for_worker(self, worker, stop_event: threading.Event) -> dict | None:
        """Wait until the cluster has room and the worker answers; None if stopped meanwhile."""
        ray = self._ray
        answer = worker.where.remote()
        deadline = time.monotonic() + self.start_timeout
        next_check = time.monotonic() + 5
        while True:
            done, _ = ray.wait([answer], timeout=POLL_SECONDS)
            if done:
                return ray.get(answer)
            if stop_event.is_set():
                return None
            now = time.monotonic()
            if now >= next_check:  # a node may have left since the job was submitted
                self._check_feasible()
                next_check = now + 5
            if now >= deadline:
                raise RunnerError(f"No Ray node had {self._describe_request()} free for {self.start_timeout:g} s; "
                                  f"free some, add a node or raise {START_TIMEOUT_ENV}.")


def _same_data(a: Dataset, b: Dataset) -> bool:
    import torch

    return (a.class_names == b.class_names and a.splits.keys() == b.splits.keys()
            and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
            and all(torch.equal(a.splits[name], b.splits[name]) for name in a.splits))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0].strip() if text else type(exc).__name__).rstrip(".")


def _stopped_while_waiting(cfg: RunConfig):
    """The TrainResult of a run stopped before any worker took it (nothing trained, nothing saved)."""
    import torch

    from core.train import TrainResult

    return TrainResult(model=None, status="stopped",
                       message="Stopped before the first epoch finished, so nothing was learned or saved.",
                       history=[], batch_losses=[], film_originals=torch.zeros(0, dtype=torch.uint8), film=[],
                       test_metrics={}, device="ray")


def runner_from_address(address: str | None):
    """The runner for an AE_LAB_RAY_ADDRESS / --ray value, and a sentence when it fell back.

    Empty: (LocalRunner(), None). Otherwise a RayRunner; when the cluster cannot be reached, the
    local runner and the sentence saying so (the app keeps working on this machine)."""
    from core.jobs.local import LocalRunner

    address = (address or "").strip()
    if not address:
        return LocalRunner(), None
    try:
        return RayRunner(address), None
    except RunnerError as exc:
        return LocalRunner(), f"{str(exc).rstrip('.')}; training on this machine instead."
