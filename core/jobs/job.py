"""One job's live state: what its worker thread writes (the TrainReporter calls) and what pages read.

Pages read copies: `summary()` (a JobSummary: status, progress, names; what lists and the sidebar
show, cheap enough for every tab to poll) or `snapshot()` (a JobSnapshot: the summary plus the
losses, history, pictures and config of the one job a page follows).
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # annotations only: pages read jobs without loading PyTorch
    import torch

from core.checkpoints import valid_run_name
from core.config import RunConfig
from core.jobs.status import JobStatus
from core.serving.access import may_change
from core.train import EpochRecord

logger = logging.getLogger(__name__)
EPOCH_LOG_EVERY = 10

# A job keeps every batch loss up to this many; a longer run averages neighbouring pairs and
# doubles the stride, so memory and the cost of each snapshot stay bounded (a 60k-image
# dataset at batch 32 for 20 epochs would otherwise copy 37k floats per poll).
MAX_BATCH_LOSSES = 20_000


@dataclass
class JobSummary:
    """What a list shows of a job: no losses, history, pictures or config (a copy, safe anywhere)."""

    id: str
    name: str
    kind: str  # "train" | "probe"
    status: JobStatus
    message: str
    epoch: int  # the epoch in progress (1-based; 0 before the first batch)
    total_epochs: int
    batch: int  # the last finished batch of that epoch
    batches_per_epoch: int  # 0 for probe jobs (they report per epoch only)
    progress: float  # 0..1
    run_name: str | None  # train: set once saved; probe: the run the probe is trained on
    queue_position: int | None  # 1-based while queued
    started_at: float | None  # time.time() when it left the queue
    finished_at: float | None
    owner_key: str | None  # core.serving.access.owner_key of who started it; None: the teacher or the CLI
    resume_from: str | None  # a resume job: the saved run it continues

    def may_change(self, by: str | None, teacher: bool = False) -> bool:
        """Whether the owner id `by` (None: this process; `teacher`: the teacher) may stop or save it."""
        return may_change(self.owner_key, by, teacher)


@dataclass
class JobSnapshot(JobSummary):
    """A consistent copy of a job, safe to read from any thread (tensors are shared: do not modify)."""

    config: RunConfig  # as queued; train jobs: the model's shape filled in once the data is known
    history: list  # train: EpochRecord per finished epoch; probe: the probe's per-epoch dicts
    batch_losses: list[float]
    film_originals: torch.Tensor | None
    latest_frame: torch.Tensor | None
    result: object | None  # probe jobs: the ProbeResult
    # Each batch_losses value is the mean of this many consecutive batches (1 unless the run
    # has more than MAX_BATCH_LOSSES batches): plot batch_losses[i] at batch (i + 1) * stride.
    batch_loss_stride: int = 1


_SUMMARY_FIELDS = tuple(f.name for f in fields(JobSummary))


@dataclass(eq=False)
class Job:
    """A job's live state. Its fields change only under `lock`; the worker implements the
    TrainReporter protocol on it, appending floats under that lock and nothing heavier.
    `config` is replaced, never changed in place, so a snapshot's config stays as it was."""

    name: str
    kind: str
    config: RunConfig
    total_epochs: int
    id: str = ""  # given by the registry
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop_event: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    status: JobStatus = JobStatus.QUEUED
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
    # Who started it: the raw id lives only in memory (save_run records its key); the key is
    # what the restart file keeps and what every check compares.
    owner: str | None = None
    owner_key: str | None = None
    info: dict = field(default_factory=dict)  # train: extra keys for the saved run's info.json
    # Where the result goes (core.jobs.saving): a resume job continues `resume_from` and saves
    # into it, unless it is a copy (`copy_to`: a new run of that name); `base_epochs` is what
    # the resumed run had, so only epochs beyond those count as new.
    resume_from: str | None = None
    copy_to: str | None = None
    base_epochs: int = 0
    # A resume into its run: the owner key the run had when the job was queued (a run deleted
    # and saved again by someone else since is never overwritten); False: not checked (restored).
    run_owner: str | None | bool = False
    probe_cfg: object | None = None  # probe jobs: the ProbeConfig
    stopped_by_shutdown: bool = False
    unsaved: object | None = None  # a TrainResult whose save failed: kept for Save again
    # Crash safety (core.jobs.restart): the registry sets `keep_checkpoint` when it persists its
    # jobs; a job restored after a crash starts from its checkpoint (`from_checkpoint`).
    keep_checkpoint: Callable[["Job", object], None] | None = None
    checkpoint_every: float = 120.0
    last_checkpoint: float = field(default_factory=time.monotonic)
    from_checkpoint: bool = False

    # -------------------------------------------------- TrainReporter

    def on_start(self, total_epochs: int, batches_per_epoch: int, film_originals: torch.Tensor) -> None:
        with self.lock:
            self.status = JobStatus.RUNNING
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
        # The first, every EPOCH_LOG_EVERY-th and the last epoch in the log (30 students' every epoch would drown it).
        shown = record.epoch in (1, self.total_epochs) or record.epoch % EPOCH_LOG_EVERY == 0
        logger.log(logging.INFO if shown else logging.DEBUG, "job %s epoch %d/%d: train loss %.4g, validation loss %.4g",
                   self.id, record.epoch, self.total_epochs, record.train_loss, record.val_loss)

    @property
    def checkpoint_due(self) -> bool:
        return self.keep_checkpoint is not None and time.monotonic() - self.last_checkpoint >= self.checkpoint_every

    def on_checkpoint(self, epoch: int, take: Callable[[], object]) -> None:
        """core.train calls this after each epoch: when a checkpoint is due, `take()` (a ResumeFrom
        of this very moment) is kept on disk. Not after the last epoch: the save follows at once."""
        if epoch < self.total_epochs and self.checkpoint_due:
            self.write_checkpoint(take())

    def write_checkpoint(self, resume) -> None:
        """Keep `resume` as this job's checkpoint (a runner that decided it was due: Ray's workers)."""
        if self.keep_checkpoint is not None:
            self.keep_checkpoint(self, resume)
            self.last_checkpoint = time.monotonic()

    # -------------------------------------------------- probe progress

    def on_probe_epoch(self, record: dict) -> None:
        with self.lock:
            self.history.append(record)
            self.epoch = record["epoch"]

    # -------------------------------------------------- status

    def set_status(self, status: JobStatus, message: str | None = None) -> None:
        with self.lock:
            self.status = status
            if message is not None:
                self.message = message

    def set_config(self, config: RunConfig) -> None:
        with self.lock:
            self.config = config

    def progress(self) -> float:
        # Nothing moves epoch, batch or history after finish(); a run that ended early on its own
        # terms (early stopping) is complete all the same.
        if self.status in (JobStatus.FINISHED, JobStatus.EARLY_STOPPED):
            return 1.0
        if self.kind == "train":
            if self.total_epochs < 1 or self.batches_per_epoch < 1:
                return 0.0
            done = max(self.epoch - 1, 0) * self.batches_per_epoch + self.batch
            return min(done / (self.total_epochs * self.batches_per_epoch), 1.0)
        return min(len(self.history) / self.total_epochs, 1.0) if self.total_epochs > 0 else 0.0

    def finish(self, status: JobStatus, message: str, run_name: str | None = None, result: object | None = None) -> None:
        with self.lock:
            self.status, self.message = JobStatus(status), message
            if run_name is not None:
                self.run_name = run_name
            self.result = result
            self.finished_at = time.time()

    @property
    def new_run_name(self) -> str | None:
        """The name a new run of this job is saved under when free (None: it saves into its run)."""
        if self.saves_into_run:
            return None
        return valid_run_name(self.copy_to or self.config.name or self.name)

    @property
    def saves_into_run(self) -> bool:
        """A resume that trains more epochs into its own run (not a copy)."""
        return self.resume_from is not None and self.copy_to is None

    @property
    def ended(self) -> bool:
        return not JobStatus(self.status).active

    # -------------------------------------------------- copies for readers

    def summary(self, queue_position: int | None) -> JobSummary:
        with self.lock:
            return self._summary_locked(queue_position)

    def _summary_locked(self, queue_position: int | None) -> JobSummary:
        return JobSummary(id=self.id, name=self.name, kind=self.kind, status=self.status, message=self.message,
                          epoch=self.epoch, total_epochs=self.total_epochs, batch=self.batch,
                          batches_per_epoch=self.batches_per_epoch, progress=self.progress(),
                          run_name=self.run_name, queue_position=queue_position, started_at=self.started_at,
                          finished_at=self.finished_at, owner_key=self.owner_key, resume_from=self.resume_from)

    def snapshot(self, queue_position: int | None) -> JobSnapshot:
        with self.lock:
            summary = self._summary_locked(queue_position)
            return JobSnapshot(**{name: getattr(summary, name) for name in _SUMMARY_FIELDS},
                               config=self.config, history=list(self.history),
                               batch_losses=list(self.batch_losses), film_originals=self.film_originals,
                               latest_frame=self.latest_frame, result=self.result,
                               batch_loss_stride=self.batch_loss_stride)

    def restart_entry(self) -> dict:
        """What the restart file keeps of a train job to queue it again (no raw owner id)."""
        return {"id": self.id, "name": self.name, "owner": self.owner_key, "resume_from": self.resume_from,
                "copy_to": self.copy_to, "base_epochs": self.base_epochs, "config": self.config.to_dict(),
                "info": copy.deepcopy(self.info)}
