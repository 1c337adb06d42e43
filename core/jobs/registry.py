"""The job registry: training runs and probe classifiers in daemon threads, held by one registry.

The registry is process-wide (the app keeps one in st.cache_resource), so a page reload or a
second browser tab finds the running jobs. The worker thread never touches the UI: it writes
into its job under a short lock, and readers take consistent copies with snapshot(), cheap
enough to poll twice a second from several tabs. At most `max_concurrent` jobs run at once;
the rest wait in a first-in, first-out queue.
"""
from __future__ import annotations

import copy
import hmac
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch

from core.checkpoints import (CheckpointError, DEFAULT_ROOT, default_run_name, load_resume, load_run, save_run,
                              taken_note, valid_run_name)
from core.config import DataConfig, RunConfig
from core.data import Dataset, DataError, fill_model_shape, load_dataset
from core.jobs import restart
from core.jobs.local import LocalRunner
from core.serving.limits import WorkLimits, check_batch, check_model, check_run, out_of_memory_message
from core.train import EpochRecord, resolve_device

MAX_JOBS_ENV = "AE_LAB_MAX_JOBS"
# On a CUDA GPU: at most this many jobs at once by default, each given this much GPU memory
# (a teaching model, its optimiser, the dataset's uint8 copy and a graph's activations for
# MNIST-sized data need well under 1 GiB; CIFAR-10 large conv about 1 GiB).
GPU_MAX_JOBS = 32
GPU_JOB_BYTES = 1 << 30
# A job keeps every batch loss up to this many; a longer run averages neighbouring pairs and
# doubles the stride, so memory and the cost of each snapshot stay bounded (a 60k-image
# dataset at batch 32 for 20 epochs would otherwise copy 37k floats per poll).
MAX_BATCH_LOSSES = 20_000



class JobPermissionError(PermissionError):
    """Someone other than a job's owner (or the teacher) asked to stop it; one sentence."""


class RunnerError(Exception):
    """A runner could not do a job's work (a cluster out of reach, a worker lost); one sentence."""


# Exceptions whose message is already one sentence for the user.
USER_ERRORS = (DataError, ValueError, CheckpointError, JobPermissionError, RunnerError)


@dataclass
class JobSnapshot:
    """A consistent copy of a job, safe to read from any thread (tensors are shared: do not modify)."""

    id: str
    name: str
    kind: str  # "train" | "probe"
    status: str  # queued | loading | running | finished | stopped | early_stopped | diverged | failed
    message: str
    config: RunConfig  # probe jobs: the probed run's config once loaded (a bare RunConfig before)
    epoch: int  # the epoch in progress (1-based; 0 before the first batch)
    total_epochs: int
    batch: int  # the last finished batch of that epoch
    batches_per_epoch: int  # 0 for probe jobs (they report per epoch only)
    progress: float  # 0..1
    history: list  # train: EpochRecord per finished epoch; probe: the probe's per-epoch dicts
    batch_losses: list[float]
    film_originals: torch.Tensor | None
    latest_frame: torch.Tensor | None
    run_name: str | None  # train: set once saved; probe: the run the probe is trained on
    queue_position: int | None  # 1-based while queued
    started_at: float | None  # time.time() when it left the queue
    finished_at: float | None
    result: object | None  # probe jobs: the ProbeResult
    # Each batch_losses value is the mean of this many consecutive batches (1 unless the run
    # has more than MAX_BATCH_LOSSES batches): plot batch_losses[i] at batch (i + 1) * stride.
    batch_loss_stride: int = 1
    owner: str | None = None  # who may stop it (start(owner=...)); None: anyone
    resume_from: str | None = None  # a resume job: the saved run it continues (and saves into)


@dataclass(eq=False)
class _Job:
    """A job's live state. Its fields change only under `lock`; the worker implements the
    TrainReporter protocol on it, appending floats under that lock and nothing heavier."""

    name: str
    kind: str
    config: RunConfig
    total_epochs: int
    work: Callable[["_Job"], None]
    id: str = ""  # given by the registry
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop_event: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    status: str = "queued"
    message: str = ""
    epoch: int = 0
    batch: int = 0
    batches_per_epoch: int = 0
    history: list = field(default_factory=list)
    batch_losses: list[float] = field(default_factory=list)
    batch_loss_stride: int = 1
    pending_loss_sum: float = 0.0
    pending_loss_count: int = 0
    film_originals: torch.Tensor | None = None
    latest_frame: torch.Tensor | None = None
    run_name: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result: object | None = None
    owner: str | None = None
    resume_from: str | None = None
    stopped_by_shutdown: bool = False
    info: dict = field(default_factory=dict)  # train: extra keys for the saved run's info.json

    # -------------------------------------------------- TrainReporter

    def on_start(self, total_epochs: int, batches_per_epoch: int, film_originals: torch.Tensor) -> None:
        with self.lock:
            self.status = "running"
            self.total_epochs = total_epochs
            self.batches_per_epoch = batches_per_epoch
            self.film_originals = film_originals

    def on_batch(self, epoch: int, batch: int, loss: float) -> None:
        with self.lock:
            self.epoch, self.batch = epoch, batch
            self.pending_loss_sum += loss
            self.pending_loss_count += 1
            if self.pending_loss_count < self.batch_loss_stride:
                return
            self.batch_losses.append(self.pending_loss_sum / self.pending_loss_count)
            self.pending_loss_sum, self.pending_loss_count = 0.0, 0
            if len(self.batch_losses) >= MAX_BATCH_LOSSES:
                pairs = zip(self.batch_losses[0::2], self.batch_losses[1::2])
                self.batch_losses = [(a + b) / 2 for a, b in pairs]
                self.batch_loss_stride *= 2

    def on_epoch(self, record: EpochRecord, film_frame: torch.Tensor) -> None:
        with self.lock:
            self.epoch, self.batch = record.epoch, self.batches_per_epoch
            self.history.append(record)
            self.latest_frame = film_frame

    # -------------------------------------------------- probe progress

    def on_probe_epoch(self, record: dict) -> None:
        with self.lock:
            self.history.append(record)
            self.epoch = record["epoch"]

    # -------------------------------------------------- status

    def set_status(self, status: str) -> None:
        with self.lock:
            self.status = status

    def progress(self) -> float:
        # Nothing moves epoch, batch or history after finish(); a run that ended early on its own
        # terms (early stopping) is complete all the same.
        if self.status in ("finished", "early_stopped"):
            return 1.0
        if self.kind == "train":
            if self.total_epochs < 1 or self.batches_per_epoch < 1:
                return 0.0
            done = max(self.epoch - 1, 0) * self.batches_per_epoch + self.batch
            return min(done / (self.total_epochs * self.batches_per_epoch), 1.0)
        return min(len(self.history) / self.total_epochs, 1.0) if self.total_epochs > 0 else 0.0

    def finish(self, status: str, message: str, run_name: str | None = None, result: object | None = None) -> None:
        with self.lock:
            self.status, self.message = status, message
            if run_name is not None:
                self.run_name = run_name
            self.result = result
            self.finished_at = time.time()

    def snapshot(self, queue_position: int | None) -> JobSnapshot:
        with self.lock:
            return JobSnapshot(
                id=self.id,
                name=self.name,
                kind=self.kind,
                status=self.status,
                message=self.message,
                config=self.config,
                epoch=self.epoch,
                total_epochs=self.total_epochs,
                batch=self.batch,
                batches_per_epoch=self.batches_per_epoch,
                progress=self.progress(),
                history=list(self.history),
                batch_losses=list(self.batch_losses),
                film_originals=self.film_originals,
                latest_frame=self.latest_frame,
                run_name=self.run_name,
                queue_position=queue_position,
                started_at=self.started_at,
                finished_at=self.finished_at,
                result=self.result,
                batch_loss_stride=self.batch_loss_stride,
                owner=self.owner,
                resume_from=self.resume_from,
            )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _max_jobs_from_env() -> int:
    text = os.environ.get(MAX_JOBS_ENV, "").strip()
    if not text:
        return default_max_jobs()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{MAX_JOBS_ENV}={text!r} is not a whole number; set it to 1 or more.") from None


def default_max_jobs(device: str = "auto") -> int:
    """How many jobs run at once when AE_LAB_MAX_JOBS is not set: on a CUDA GPU a whole class
    (up to GPU_MAX_JOBS, fewer when the free GPU memory cannot hold that many jobs of
    GPU_JOB_BYTES each), since graph-captured steps of thirty small models share one GPU with
    little loss each; on the CPU (and Apple's MPS) 1, since parallel jobs there only split the
    same cores."""
    try:
        resolved = resolve_device(device)
    except ValueError:
        return 1
    if resolved.type != "cuda":
        return 1
    free, _total = torch.cuda.mem_get_info(resolved)
    return max(1, min(GPU_MAX_JOBS, int(free // GPU_JOB_BYTES)))


class JobRegistry:
    """Starts, queues, stops and reports jobs; every public method is safe from any thread."""

    def __init__(self, root=DEFAULT_ROOT, max_concurrent: int | None = None,
                 load_data: Callable[[DataConfig], Dataset] = load_dataset, runner=None,
                 limits: WorkLimits | None = None):
        self.root = root
        # Bounds on each job's work (parameters, image size, latent, epochs; core.serving.limits),
        # checked before anything is built: at start() from the config, again once the data shape
        # is known. None (a script, a test): no bounds. The served app passes WorkLimits.from_env().
        self.limits = limits
        # Where the work happens (core.jobs.local.LocalRunner: this process); the registry's
        # queue, snapshots and saving are the same whatever the runner.
        self.runner = runner if runner is not None else LocalRunner()
        # The app passes its shared dataset store, so a job reuses the dataset its pages already
        # loaded instead of parsing (or decoding, or generating) it again.
        self.load_data = load_data
        self.max_concurrent = _max_jobs_from_env() if max_concurrent is None else int(max_concurrent)
        if max_concurrent is None and not os.environ.get(MAX_JOBS_ENV, "").strip() and hasattr(self.runner, "max_jobs"):
            self.max_concurrent = self.runner.max_jobs()  # a cluster's size, not this machine's device
        if self.max_concurrent < 1:
            raise ValueError(f"At most {self.max_concurrent} jobs at once would run nothing; allow 1 or more.")
        self._lock = threading.Lock()  # guards _jobs, _queue, _running; taken before any job's lock
        self._jobs: dict[str, _Job] = {}  # in creation order
        self._queue: deque[str] = deque()
        self._running: set[str] = set()
        # New runs reserve their names atomically (checkpoints.reserve_run_name) and save in
        # parallel; only re-saving a resumed run over its old folder goes through this lock.
        self._save_lock = threading.Lock()
        self._shutting_down = False
        # Set by restore(): what the last server's shutdown saved and queued, for the page.
        self.restart_note: dict | None = None

    # -------------------------------------------------- starting

    def start(self, cfg: RunConfig, owner: str | None = None, info: dict | None = None) -> str:
        """Queue a training run of cfg (copied: later changes to cfg do not reach it); returns its id.
        `owner` (e.g. a browser's id): only that owner, or a stop without `by`, can stop it.
        `info` (JSON values) is added to the saved run's info.json, e.g. the experiment it belongs to."""
        cfg = copy.deepcopy(cfg)
        if self.limits is not None:
            check_run(cfg, self.limits)  # LimitError (a ValueError): one sentence, nothing queued
        # The job carries the name its run will be saved under (a typed name cleaned, e.g.
        # '../../class 3/conv z2' -> class-3-conv-z2), so every list shows that name from the start;
        # cfg.name keeps what was typed, for the save's note that it was rewritten.
        name = valid_run_name(cfg.name) if cfg.name else default_run_name(cfg)
        return self._add(_Job(name=name, kind="train", config=cfg, total_epochs=cfg.train.epochs,
                              work=self._train_job, owner=owner, info=copy.deepcopy(info or {})))

    def resume(self, run_name: str, epochs: int, owner: str | None = None) -> str:
        """Queue `epochs` more epochs of the saved run `run_name`, from its last weights and optimiser
        state; the curves continue and the run is saved again under its own name."""
        epochs = int(epochs)
        if epochs < 1:
            raise ValueError(f"Resume for at least 1 more epoch, not {epochs}.")
        run = load_run(self.root, run_name)  # checks the name and that the run loads
        cfg = run.config
        # A resumed run stays in its experiment, with its factor values.
        info = {key: run.info[key] for key in ("experiment", "factors") if key in run.info}
        done = len(load_resume(self.root, run_name).history)
        with self._lock:
            if any(job.resume_from == run_name and not job.done.is_set() for job in self._jobs.values()):
                raise ValueError(f"Run {run_name} is already being resumed; wait for that job or stop it.")
        cfg.train.epochs = done + epochs
        return self._add(_Job(name=run_name, kind="train", config=cfg, total_epochs=cfg.train.epochs,
                              work=self._train_job, owner=owner, resume_from=run_name, info=info))

    def start_probe(self, run_name: str, probe_cfg, owner: str | None = None) -> str:
        """Queue a probe classifier (core.analysis.train_probe) on the saved run `run_name`."""
        probe_cfg = copy.deepcopy(probe_cfg)

        def work(job: _Job) -> None:
            self._probe_job(job, run_name, probe_cfg)

        job = _Job(name=f"{run_name} classifier", kind="probe", config=RunConfig(name=run_name),
                   total_epochs=int(probe_cfg.epochs), work=work, owner=owner)
        job.run_name = run_name
        return self._add(job)

    def _add(self, job: _Job, job_id: str | None = None) -> str:
        with self._lock:
            # Random rather than counted: a page holding an id from a previous registry (its
            # cache cleared) must not find a different job under it. A queued job restored after
            # a restart keeps its id, so the tab that started it follows it again.
            job.id = job_id if job_id and job_id not in self._jobs else secrets.token_hex(4)
            while job.id in self._jobs:
                job.id = secrets.token_hex(4)
            self._jobs[job.id] = job
            if job.kind == "probe":
                # A probe is a few seconds on a saved run: it neither waits behind training jobs
                # nor takes a training slot (_training_count leaves it out).
                self._launch(job)
            else:
                self._queue.append(job.id)
            self._start_waiting_jobs()
        return job.id

    def _start_waiting_jobs(self) -> None:
        """Start queued jobs while there is room; the caller holds self._lock."""
        while self._queue and self._training_count() < self.max_concurrent and not self._shutting_down:
            self._launch(self._jobs[self._queue.popleft()])

    def _training_count(self) -> int:
        return sum(1 for job_id in self._running if self._jobs[job_id].kind != "probe")

    def _launch(self, job: _Job) -> None:
        """Run `job` now, in its own thread; the caller holds self._lock."""
        self._running.add(job.id)
        with job.lock:
            job.status = "loading"
            job.started_at = time.time()
        threading.Thread(target=self._run, args=(job,), name=f"ae-lab-{job.kind}-{job.id}", daemon=True).start()

    def _run(self, job: _Job) -> None:
        try:
            job.work(job)
        except USER_ERRORS as exc:
            job.finish("failed", _one_line(exc))
        except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            oom = out_of_memory_message(exc, job.config.train.device)
            what = "Training" if job.kind == "train" else "Training the classifier"
            job.finish("failed", oom or f"{what} failed: {_one_line(exc)}")
        except Exception as exc:  # the thread must end with a status the page can show, whatever happened
            what = "Training" if job.kind == "train" else "Training the classifier"
            job.finish("failed", f"{what} failed: {_one_line(exc)}")
        finally:
            with self._lock:
                self._running.discard(job.id)
                self._start_waiting_jobs()
            job.done.set()  # last: once wait() returns, the next queued job has already left the queue

    # -------------------------------------------------- the work

    def _train_job(self, job: _Job) -> None:
        cfg = job.config
        resume = None
        if job.resume_from is not None:
            resume = load_resume(self.root, job.resume_from)
            with job.lock:  # the live curves continue from the saved ones
                job.history = list(resume.history)
                job.batch_losses = list(resume.batch_losses)
                job.epoch = len(resume.history)
        dataset = self.load_data(cfg.data)
        if self.limits is not None:  # the exact data shape is known now
            model = fill_model_shape(copy.deepcopy(cfg.model), dataset)
            check_model(model, self.limits)
            check_batch(model, cfg.train.batch_size, self.limits)
        job.set_status("running")
        started = time.perf_counter()
        if resume is None:
            result = self.runner.train(cfg, dataset, job, job.stop_event)
        else:  # only runners that can resume are asked to
            result = self.runner.train(cfg, dataset, job, job.stop_event, resume=resume)
        seconds = time.perf_counter() - started
        run_name, message = None, result.message
        extra = {**job.info, "seconds": round(seconds, 3)}
        if job.stopped_by_shutdown:
            extra["stopped_by"] = "server shutdown"
        if resume is not None and len(result.history) > len(resume.history):
            # Saved again under its own name (atomically: the previous save stays until the new
            # one is complete), so its curves, film and best weights are one run.
            extra["seconds"] = round(sum(r.seconds for r in result.history), 3)
            with self._save_lock:
                run_name = job.resume_from
                save_run(self.root, run_name, cfg, result, extra_info=extra, overwrite=True)
        elif resume is not None:
            run_name = job.resume_from  # nothing new was trained: the saved run is unchanged
        elif result.history:  # a stopped or diverged run is saved too, with its best weights
            # The name is reserved atomically (across processes too): an unnamed run takes the next
            # free name, a named one whose name was taken meanwhile is kept under a new one, said.
            requested = cfg.name or job.name  # as typed: the note below says when it was rewritten
            path = save_run(self.root, requested, cfg, result, extra_info=extra,
                            on_taken="rename" if cfg.name else "next", owner=job.owner)
            run_name = path.name
            if cfg.name and run_name != requested:  # rewritten into a valid name, or taken: say so
                message = f"{message} {taken_note(requested, run_name)}"
        job.finish(result.status, message, run_name=run_name)

    def _probe_job(self, job: _Job, run_name: str, probe_cfg) -> None:
        run = load_run(self.root, run_name)
        with job.lock:
            job.config = run.config
        dataset = self.load_data(run.config.data)
        job.set_status("running")
        result = self.runner.train_probe(run.model, dataset, probe_cfg, job.on_probe_epoch, job.stop_event)
        epochs = len(result.history)
        accuracy = f"the classifier labels {result.accuracy:.1%} of the test images correctly"
        if job.stop_event.is_set() and epochs < job.total_epochs:
            job.finish("stopped", f"Stopped after {epochs} of {job.total_epochs} epochs; {accuracy}.", result=result)
        else:
            job.finish("finished", f"Trained for {epochs} epoch{'s' if epochs != 1 else ''}; {accuracy}.",
                       result=result)

    # -------------------------------------------------- control and reading

    def _job(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"There is no job {job_id}; it may belong to a server that has restarted.") from None

    def stop(self, job_id: str, by: str | None = None) -> None:
        """A queued job leaves the queue at once; a running one stops after its current batch.
        `by`: who asks (an owner id); a job with an owner refuses anyone else with a
        JobPermissionError. No `by` means this process itself (the CLI, a teacher the app has
        checked, the server shutting down) and always may."""
        with self._lock:
            job = self._job(job_id)
            if by is not None and job.owner is not None and not hmac.compare_digest(by.encode(), job.owner.encode()):
                raise JobPermissionError(f"Only the person who started {job.name} (or the teacher) can stop it.")
            if job_id in self._queue:
                self._queue.remove(job_id)
                job.finish("stopped", "Stopped while waiting in the queue; nothing was trained or saved.")
                job.done.set()
                return
        job.stop_event.set()

    def snapshot(self, job_id: str) -> JobSnapshot:
        with self._lock:
            job = self._job(job_id)
            position = self._queue.index(job_id) + 1 if job_id in self._queue else None
            return job.snapshot(position)

    def snapshots(self) -> list[JobSnapshot]:
        """Every job this registry knows, finished ones included, newest first."""
        with self._lock:
            positions = {job_id: i for i, job_id in enumerate(self._queue, 1)}
            return [job.snapshot(positions.get(job.id)) for job in reversed(self._jobs.values())]

    # -------------------------------------------------- restart (core.jobs.restart)

    def shutdown(self, timeout: float = 30.0) -> dict | None:
        """The server is stopping: write the queue to disk, stop the running jobs at the end of
        their current batch and wait (up to `timeout` s) until they have saved; the state file then
        also names the runs saved. Returns the state written (None when nothing ran or waited)."""
        with self._lock:
            if self._shutting_down:
                return None
            self._shutting_down = True
            queued = [self._jobs[job_id] for job_id in self._queue if self._jobs[job_id].kind == "train"]
            running = [self._jobs[job_id] for job_id in self._running if self._jobs[job_id].kind == "train"]
            for job in queued:
                self._queue.remove(job.id)
        if not queued and not running:
            return None
        entries = [{"id": job.id, "name": job.name, "owner": job.owner, "resume_from": job.resume_from,
                    "config": job.config.to_dict(), "info": job.info} for job in queued]
        state = {"written": time.time(), "queued": entries, "saved": [], "lost": len(running), "complete": False}
        restart.write_state(self.root, state)  # first: a second signal or a kill cannot lose the queue
        for job in queued:
            job.finish("stopped", "The server stopped; this job is queued again when it restarts.")
            job.done.set()
        for job in running:
            job.stopped_by_shutdown = True
            job.stop_event.set()
        deadline = time.monotonic() + timeout
        for job in running:
            job.done.wait(max(deadline - time.monotonic(), 0.0))
        saved = [{"run": job.run_name, "epoch": len(job.history), "owner": job.owner, "id": job.id}
                 for job in running if job.done.is_set() and job.run_name]
        state.update(saved=saved, lost=len(running) - len(saved), complete=True)
        restart.write_state(self.root, state)
        return state

    def restore(self) -> dict | None:
        """Once, when the app starts: queue again what the last server's shutdown wrote (same ids,
        owners and info, e.g. the experiment a job belongs to) and remove leftover temporary folders.
        Sets and returns restart_note ({"saved": [{"run", "epoch", "owner", "id"}], "lost": n,
        "restored": n, "at": time}: "id" is the job that was running when its run was saved) or None."""
        restart.clean_leftovers(self.root, restart.LEFTOVER_AGE_S)
        # A save killed just before this start left a folder too young to tell from a save in
        # progress in another process; look again once it is old enough.
        later = threading.Timer(restart.LEFTOVER_AGE_S + 5, restart.clean_leftovers,
                                args=(self.root, restart.LEFTOVER_AGE_S))
        later.daemon = True
        later.start()
        state = restart.take_state(self.root)
        if state is None:
            return None
        restored = 0
        for entry in state.get("queued") or []:
            try:
                cfg = RunConfig.from_dict(entry["config"])
                owner, resume_from = entry.get("owner"), entry.get("resume_from")
                if not all(v is None or isinstance(v, str) for v in (owner, resume_from, entry.get("id"))):
                    raise TypeError("owner, resume_from and id are strings")
                info = entry.get("info") or {}
                if not isinstance(info, dict):
                    raise TypeError("info is a dict")
                name = valid_run_name(str(entry.get("name") or cfg.name or default_run_name(cfg)))
                job = _Job(name=name, kind="train",
                           config=cfg, total_epochs=cfg.train.epochs, work=self._train_job, owner=owner,
                           resume_from=resume_from, info=info)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # a damaged entry: the others are still worth restoring
            self._add(job, job_id=entry.get("id"))
            restored += 1
        saved = [s for s in state.get("saved") or [] if isinstance(s, dict) and isinstance(s.get("run"), str)
                 and isinstance(s.get("epoch"), int)]
        lost = state.get("lost") if isinstance(state.get("lost"), int) else 0
        self.restart_note = {"saved": saved, "lost": lost, "restored": restored, "at": time.time()}
        return self.restart_note

    @property
    def shutting_down(self) -> bool:
        """True once shutdown() has begun: the server is stopping (experiment drivers then stop
        writing, so the next server finds their experiments still running and continues them)."""
        return self._shutting_down

    def saved_at_restart(self, job_id: str) -> dict | None:
        """For a job that was running when the last server stopped: what its run was saved as
        ({"run", "epoch", "owner", "id"}, from restart_note); None for any other job."""
        for entry in (self.restart_note or {}).get("saved", []):
            if entry.get("id") == job_id:
                return entry
        return None

    def known_from_restart(self, job_id: str) -> bool:
        """Whether a job id came back with the last server's restart: queued again here, or saved
        while it ran. An experiment's driver continues only jobs this server knows."""
        if self.saved_at_restart(job_id) is not None:
            return True
        with self._lock:
            return job_id in self._jobs

    def wait(self, job_id: str, timeout: float | None = None) -> JobSnapshot:
        """Block until the job ends (or `timeout` seconds pass) and return its snapshot."""
        with self._lock:
            job = self._job(job_id)
        job.done.wait(timeout)
        return self.snapshot(job_id)
