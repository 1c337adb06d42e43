"""The job registry: training runs and probe classifiers in daemon threads, held by one registry.

The registry is process-wide (the app keeps one in st.cache_resource), so a page reload or a
second browser tab finds the running jobs. It holds the queue and the slots; the parts it uses
each do one thing: core.jobs.scheduler (which queued job runs next: students in turn),
core.jobs.lifecycle (a job's life on its thread: data, limits, training, the save policy),
core.jobs.restart (the restart file and running jobs' checkpoints), core.jobs.access (who may
change what, and each student's share). Readers take copies: summaries() for lists (cheap enough
for every tab to poll), snapshot() for the one job a page follows. At most `max_concurrent` jobs
train at once; the registry keeps a bounded number of ended jobs (their runs are on disk).
"""
from __future__ import annotations

import copy
import logging
import os
import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from core.checkpoints import DEFAULT_ROOT, default_run_name, recorded_owner, valid_run_name
from core.config import DataConfig, RunConfig
from core.data import Dataset, load_dataset
from core.jobs import restart
from core.jobs.access import (JobPermissionError, check_job_room, check_may_resume_into, check_may_stop, key_of,
                              short_key)
from core.jobs.job import MAX_BATCH_LOSSES, Job, JobSnapshot, JobSummary
from core.jobs.lifecycle import USER_ERRORS, JobLife, RunnerError
from core.jobs.local import LocalRunner
from core.jobs.persistence import RestartPersistence
from core.jobs.saving import kept_info
from core.jobs.scheduler import FairQueue
from core.jobs.status import JobStatus
from core.serving.limits import LimitError, WorkLimits, check_resume, check_run

__all__ = ["JobPermissionError", "JobRegistry", "JobSnapshot", "JobSummary", "MAX_BATCH_LOSSES", "MAX_JOBS_ENV",
           "RunnerError", "USER_ERRORS"]

logger = logging.getLogger(__name__)

MAX_JOBS_ENV = "AE_LAB_MAX_JOBS"
# On a CUDA GPU: at most this many jobs at once by default, each given this much GPU memory
# (a teaching model, its optimiser, the dataset's uint8 copy and a graph's activations for
# MNIST-sized data need well under 1 GiB; CIFAR-10 large conv about 1 GiB).
GPU_MAX_JOBS = 32
GPU_JOB_BYTES = 1 << 30
# Ended jobs kept for the pages (their runs are on disk): the newest few of each owner, and at
# most this many in all. A job whose save failed is kept until it is saved.
KEEP_ENDED_PER_OWNER = 10
KEEP_ENDED = 200


def _max_jobs_from_env() -> int | None:
    """AE_LAB_MAX_JOBS, or None when it is not set (default_max_jobs decides)."""
    text = os.environ.get(MAX_JOBS_ENV, "").strip()
    if not text:
        return None
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
    import torch

    from core.train import resolve_device

    try:
        resolved = resolve_device(device)
    except ValueError:
        return 1
    if resolved.type != "cuda":
        return 1
    free, _total = torch.cuda.mem_get_info(resolved)
    return max(1, min(GPU_MAX_JOBS, int(free // GPU_JOB_BYTES)))


class JobRegistry(RestartPersistence):
    """Starts, queues, stops and reports jobs; every public method is safe from any thread.

    limits: bounds on each job's work (core.serving.limits), checked before anything is queued and
    again once the data's shape is known; None (a script, a test): no bounds. max_jobs_per_owner:
    how many jobs one student may have queued or running (the served app passes
    core.jobs.access.max_jobs_per_student()); None: no limit. The teacher and the CLI are exempt."""

    def __init__(self, root=DEFAULT_ROOT, max_concurrent: int | None = None,
                 load_data: Callable[[DataConfig], Dataset] = load_dataset, runner=None,
                 limits: WorkLimits | None = None, max_jobs_per_owner: int | None = None):
        self.root = root
        # Where the work happens (core.jobs.local.LocalRunner: this process); the queue, snapshots
        # and saving are the same whatever the runner. The app passes its shared dataset store as
        # load_data, so a job reuses the dataset its pages already loaded.
        self._life = JobLife(root, runner if runner is not None else LocalRunner(), load_data, limits)
        self._max_concurrent = _max_jobs_from_env() if max_concurrent is None else int(max_concurrent)
        if self._max_concurrent is None and hasattr(self.runner, "max_jobs"):
            self._max_concurrent = self.runner.max_jobs()  # a cluster's size, not this machine's device
        if self._max_concurrent is not None and self._max_concurrent < 1:
            raise ValueError(f"At most {self._max_concurrent} jobs at once would run nothing; allow 1 or more.")
        self.max_jobs_per_owner = max_jobs_per_owner
        self._lock = threading.Lock()  # guards _jobs, _queue, _running; taken before any job's lock
        self._jobs: dict[str, Job] = {}  # in creation order
        self._queue = FairQueue()
        self._running: set[str] = set()
        self._shutting_down = False
        self._init_restart()

    @property
    def max_concurrent(self) -> int:
        """How many jobs train at once. Left to this machine's device (default_max_jobs), it is asked
        when first needed: that imports PyTorch, which the app's first page must not wait for."""
        if self._max_concurrent is None:
            self._max_concurrent = default_max_jobs()
        return self._max_concurrent

    @max_concurrent.setter
    def max_concurrent(self, value: int) -> None:
        self._max_concurrent = value

    # What the jobs' lives use, set through the registry (a test may tighten the limits meanwhile).
    runner = property(lambda self: self._life.runner, lambda self, value: setattr(self._life, "runner", value))
    load_data = property(lambda self: self._life.load_data,
                         lambda self, value: setattr(self._life, "load_data", value))
    limits = property(lambda self: self._life.limits, lambda self, value: setattr(self._life, "limits", value))

    # -------------------------------------------------- starting

    def start(self, cfg: RunConfig, owner: str | None = None, info: dict | None = None, teacher: bool = False,
              owner_key: str | None = None) -> str:
        """Queue a training run of cfg (copied: later changes to cfg do not reach it); returns its id.
        `owner` (a browser's id): only that owner or the teacher can stop it, and it counts towards
        the owner's share unless `teacher`; or only its `owner_key`, where that is all that is known
        (an experiment continued after a restart). `info` (JSON values) is added to the saved run's
        info.json, e.g. the experiment it belongs to. LimitError (a ValueError, one sentence): nothing queued."""
        cfg = copy.deepcopy(cfg)
        key = owner_key or key_of(owner)
        self._check_limits(cfg, key)
        # The job carries the name its run will be saved under (a typed name cleaned, e.g.
        # '../../class 3/conv z2' -> class-3-conv-z2), so every list shows that name from the start;
        # cfg.name keeps what was typed, for the save's note that it was rewritten.
        name = valid_run_name(cfg.name) if cfg.name else default_run_name(cfg)
        return self._add(Job(name=name, kind="train", config=cfg, total_epochs=cfg.train.epochs, owner=owner,
                             owner_key=key, info=copy.deepcopy(info or {})), teacher=teacher)

    def resume(self, run_name: str, epochs: int, owner: str | None = None, as_name: str | None = None,
               teacher: bool = False) -> str:
        """Queue `epochs` more epochs of the saved run `run_name`, from its last weights and optimiser
        state; returns the job's id. Saved into the run itself (only its owner or the teacher may:
        OwnerError), or, with `as_name`, as a new run of that name owned by `owner` (anyone may).
        The total epochs go through the same limits as a new run."""
        from core.checkpoints import load_resume, load_run  # PyTorch: imported when a run is resumed

        run = load_run(self.root, run_name)  # checks the name and that the run loads
        done = len(load_resume(self.root, run_name).history)  # and that it can be continued
        if as_name is None:
            check_may_resume_into(run_name, run.info, owner, teacher)
        elif not as_name.strip():
            raise ValueError("Give the copy a name of your own, e.g. the run's name with yours.")
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"Resume for at least 1 more epoch, not {epochs}.")
        cfg = run.config
        cfg.train.epochs = done + epochs
        if self.limits is not None:
            try:
                check_resume(run_name, done, epochs, self.limits)
            except LimitError:
                logger.info("refused to resume %s for %s: %d epochs in all", run_name, short_key(key_of(owner)),
                            cfg.train.epochs)
                raise
        self._check_limits(cfg, key_of(owner))
        if as_name is None:  # it stays in its experiment, with its factor values, and with its owner
            info = kept_info(run.info)
            job = Job(name=run_name, kind="train", config=cfg, total_epochs=cfg.train.epochs, owner=owner,
                      owner_key=key_of(owner), resume_from=run_name, base_epochs=done, info=info,
                      run_owner=recorded_owner(Path(self.root) / run_name))
        else:
            cfg.name = as_name.strip()
            job = Job(name=valid_run_name(cfg.name), kind="train", config=cfg, total_epochs=cfg.train.epochs,
                      owner=owner, owner_key=key_of(owner), resume_from=run_name, copy_to=cfg.name,
                      base_epochs=done, info={"copied_from": run_name})
        return self._add(job, teacher=teacher)

    def start_probe(self, run_name: str, probe_cfg, owner: str | None = None, teacher: bool = False) -> str:
        """Queue a probe classifier (core.analysis.train_probe) on the saved run `run_name`; its
        epochs go through the same limit as a run's, and it counts towards the owner's share."""
        if self.limits is not None and int(probe_cfg.epochs) > self.limits.max_epochs:
            raise LimitError(f"{int(probe_cfg.epochs)} epochs are above this server's limit of "
                             f"{self.limits.max_epochs} per run; train the classifier for fewer epochs.")
        job = Job(name=f"{run_name} classifier", kind="probe", config=RunConfig(name=run_name),
                  total_epochs=int(probe_cfg.epochs), owner=owner, owner_key=key_of(owner),
                  probe_cfg=copy.deepcopy(probe_cfg))
        job.run_name = run_name
        return self._add(job, teacher=teacher)

    def _check_limits(self, cfg: RunConfig, key: str | None) -> None:
        if self.limits is None:
            return
        try:
            check_run(cfg, self.limits)  # LimitError (a ValueError): one sentence, nothing queued
        except ValueError as exc:
            logger.info("refused a job of %s: %s", short_key(key), exc)
            raise

    def room_for(self, owner: str | None, teacher: bool = False, owner_key: str | None = None) -> int | None:
        """How many more jobs `owner` (or the owner of `owner_key`) may queue now (None: no limit)."""
        key = owner_key or key_of(owner)
        if self.max_jobs_per_owner is None or key is None or teacher:
            return None
        with self._lock:
            return max(self.max_jobs_per_owner - self._active_count(key), 0)

    def _active_count(self, key: str | None) -> int:
        return sum(1 for job in self._jobs.values() if job.owner_key == key and not job.ended)

    def _add(self, job: Job, teacher: bool = False, job_id: str | None = None) -> str:
        """Queue `job` (a probe starts at once). The checks that depend on the other jobs (a run
        already being resumed, the owner's share) and the adding are one locked step."""
        with self._lock:
            if job.saves_into_run and any(other.saves_into_run and other.resume_from == job.resume_from
                                          and not other.done.is_set() for other in self._jobs.values()):
                logger.info("refused to resume %s twice at once", job.resume_from)
                raise ValueError(f"Run {job.resume_from} is already being resumed; wait for that job or stop it.")
            if job_id is None and job.owner_key is not None and not teacher:
                check_job_room(self._active_count(job.owner_key), self.max_jobs_per_owner, job.owner_key)
            # Random rather than counted: a page holding an id from a previous registry (its
            # cache cleared) must not find a different job under it. A job restored after a
            # restart keeps its id, so the tab that started it follows it again.
            job.id = job_id if job_id and job_id not in self._jobs else secrets.token_hex(4)
            while job.id in self._jobs:
                job.id = secrets.token_hex(4)
            job.checkpoint_every = self.checkpoint_every
            job.keep_checkpoint = self._keep_checkpoint if self._persisting and job.kind == "train" else None
            self._jobs[job.id] = job
            if job.kind == "probe":
                # A probe is a few seconds on a saved run: it neither waits behind training jobs
                # nor takes a training slot (_training_count leaves it out).
                self._launch(job)
            else:
                self._queue.push(job.id, job.owner_key)
                logger.info("job %s queued: %s of %s, %d epochs (%d waiting)", job.id, job.name,
                            short_key(job.owner_key), job.total_epochs, len(self._queue))
            self._start_waiting_jobs()
        if job_id is None:  # restore() writes once, after every job is back
            self._persist()
        return job.id

    def _start_waiting_jobs(self) -> None:
        """Start queued jobs while there is room; the caller holds self._lock."""
        while len(self._queue) and self._training_count() < self.max_concurrent and not self._shutting_down:
            self._launch(self._jobs[self._queue.pop()])

    def _training_count(self) -> int:
        return sum(1 for job_id in self._running if self._jobs[job_id].kind != "probe")

    def _launch(self, job: Job) -> None:
        """Run `job` now, in its own thread; the caller holds self._lock."""
        self._running.add(job.id)
        with job.lock:
            job.status = JobStatus.LOADING
            job.started_at = time.time()
        threading.Thread(target=self._life.run, args=(job, self._job_done), name=f"ae-lab-{job.kind}-{job.id}",
                         daemon=True).start()

    def _job_done(self, job: Job) -> None:
        with self._lock:
            self._running.discard(job.id)
            self._start_waiting_jobs()
            self._forget_ended_jobs()
        if self._persisting and job.status != JobStatus.UNSAVED:
            restart.remove_checkpoint(self.root, job.id)
        self._persist()
        job.done.set()  # last: once wait() returns, the next queued job has already left the queue

    def _forget_ended_jobs(self) -> None:
        """Keep the newest KEEP_ENDED_PER_OWNER ended jobs of each owner, KEEP_ENDED in all (not
        those whose save failed); the caller holds self._lock."""
        per_owner: Counter = Counter()
        kept = 0
        for job in reversed(list(self._jobs.values())):
            if (not job.done.is_set() or job.status == JobStatus.UNSAVED or job.id in self._running
                    or job.id in self._queue):
                continue
            per_owner[job.owner_key] += 1
            kept += 1
            if per_owner[job.owner_key] > KEEP_ENDED_PER_OWNER or kept > KEEP_ENDED:
                del self._jobs[job.id]
                kept -= 1

    # -------------------------------------------------- control

    def _job(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"There is no job {job_id}; it may belong to a server that has restarted.") from None

    def stop(self, job_id: str, by: str | None = None, teacher: bool = False) -> None:
        """A queued job leaves the queue at once; a running one stops after its current batch.
        `by`: who asks (an owner id); only the job's owner or the teacher may (JobPermissionError).
        No `by` means this process itself (the CLI, a teacher the app has checked, the server
        shutting down) and always may."""
        with self._lock:
            job = self._job(job_id)
            check_may_stop(job.name, job.owner_key, by, teacher)
            queued = self._queue.remove(job_id)
        if queued:
            logger.info("job %s stopped while queued", job_id)
            job.finish(JobStatus.STOPPED, "Stopped while waiting in the queue; nothing was trained or saved.")
            job.done.set()
            with self._lock:
                self._forget_ended_jobs()
            self._persist()
            return
        if not job.done.is_set():
            logger.info("job %s asked to stop by %s", job_id, "the teacher/cli" if by is None or teacher else
                        short_key(key_of(by)))
        job.stop_event.set()

    def stop_owner(self, owner_key: str | None) -> int:
        """Stop every job of one student (by the key summaries show); the teacher's action. Returns
        how many were queued or running."""
        return self._stop_where(lambda job: job.owner_key == owner_key)

    def stop_all(self) -> int:
        """Stop every job on the server; the teacher's action. Returns how many were queued or running."""
        return self._stop_where(lambda job: True)

    def _stop_where(self, chosen: Callable[[Job], bool]) -> int:
        with self._lock:
            ids = [job.id for job in self._jobs.values() if chosen(job) and not job.done.is_set()]
        for job_id in ids:
            self.stop(job_id)
        logger.info("the teacher stopped %d jobs", len(ids))
        return len(ids)

    def save_again(self, job_id: str, by: str | None = None, teacher: bool = False) -> JobSummary:
        """Try once more to save a job whose save failed (JobStatus.UNSAVED); returns its summary
        (saved, or still UNSAVED with the new reason). Its owner or the teacher may."""
        with self._lock:
            job = self._job(job_id)
        check_may_stop(job.name, job.owner_key, by, teacher, action="save")
        with job.lock:
            unsaved = job.status == JobStatus.UNSAVED
            if unsaved:  # a second click while the first one saves finds SAVING: nothing to do
                job.status = JobStatus.SAVING
        if not unsaved:
            return self._summary_of(job)
        self._life.save_again(job)
        if job.status != JobStatus.UNSAVED:
            restart.remove_checkpoint(self.root, job.id)
            self._persist()
        return self._summary_of(job)

    def _summary_of(self, job: Job) -> JobSummary:
        with self._lock:
            position = self._queue.positions().get(job.id)
        return job.summary(position)

    # -------------------------------------------------- reading

    def snapshot(self, job_id: str) -> JobSnapshot:
        """The full copy of one job (its losses, history and pictures): for the job a page shows."""
        with self._lock:
            job = self._job(job_id)
            position = self._queue.positions().get(job_id)
        return job.snapshot(position)

    def summaries(self) -> list[JobSummary]:
        """Every job this registry keeps (ended ones bounded), newest first, without losses, history
        or pictures: what lists and the sidebar show."""
        with self._lock:
            positions = self._queue.positions()
            jobs = list(reversed(self._jobs.values()))
        return [job.summary(positions.get(job.id)) for job in jobs]

    def snapshots(self) -> list[JobSnapshot]:
        """Full copies of every job kept, newest first (scripts and tests; pages use summaries())."""
        with self._lock:
            positions = self._queue.positions()
            jobs = list(reversed(self._jobs.values()))
        return [job.snapshot(positions.get(job.id)) for job in jobs]

    def wait(self, job_id: str, timeout: float | None = None) -> JobSnapshot:
        """Block until the job ends (or `timeout` seconds pass) and return its snapshot."""
        with self._lock:
            job = self._job(job_id)
        job.done.wait(timeout)
        with self._lock:
            position = self._queue.positions().get(job_id)
        return job.snapshot(position)
