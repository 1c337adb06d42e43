"""train(): the setup, the epochs (train the batches, validate, keep the best weights, stop early),
and the finish (best weights back, test metrics, what resuming needs). It never touches the UI:
it talks to a TrainReporter (the background job) and returns a TrainResult."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import torch

from core.config import RunConfig
from core.data import Dataset
from core.train.devices import resolve_device
from core.train.images import epoch_batches
from core.train.metrics import evaluate, film_frame, validate
from core.train.results import (EpochRecord, ResumeFrom, TrainReporter, TrainResult, ending_message,
                                nonfinite_name)
from core.train.setup import Setup, build_setup, cpu_copy, resume_state
from core.train.step import ACCELERATOR_SYNC_EVERY, LossLog, Step, make_step
from core.validation import check_run


@dataclass
class Progress:
    """What the epochs so far have left: their records, batch losses and film, and the best epoch."""

    history: list[EpochRecord]
    batch_losses: list[float]
    film: list[torch.Tensor]
    best_state: dict
    best_val: float = math.inf
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the validation loss last improved
    status: str = "finished"
    diverged_at: str = ""  # what went non-finite and where, for the message

    @classmethod
    def start(cls, model, resume: ResumeFrom | None) -> "Progress":
        if resume is None:
            return cls([], [], [], cpu_copy(model.state_dict()))
        progress = cls(list(resume.history), list(resume.batch_losses), list(resume.film), dict(resume.best_state))
        for record in progress.history:  # a resumed run keeps its best epoch unless a new one beats it
            if math.isfinite(record.val_loss) and record.val_loss < progress.best_val:
                progress.best_val, progress.best_epoch = record.val_loss, record.epoch
        return progress

    def add_epoch(self, record: EpochRecord, frame: torch.Tensor, model) -> None:
        self.history.append(record)
        self.film.append(frame)
        if record.val_loss < self.best_val:
            self.best_val, self.best_epoch = record.val_loss, record.epoch
            self.best_state = cpu_copy(model.state_dict())
            self.stale_epochs = 0
        else:
            self.stale_epochs += 1


def train(
    cfg: RunConfig,
    dataset: Dataset,
    reporter: TrainReporter | None = None,
    stop_event: threading.Event | None = None,
    resume: ResumeFrom | None = None,
) -> TrainResult:
    """Train the autoencoder cfg describes on dataset; see docs/core-api.md for the guarantees.
    With `resume`, training continues a saved run: its last weights, optimiser and generator
    states, and its history, film and best weights, up to cfg.train.epochs epochs in all.

    On CUDA every job trains on a stream of its own, so that the jobs of a class overlap on the
    GPU instead of queueing behind each other on the default stream."""
    check_run(cfg, sections=("model", "train"))  # the data settings were checked when the data loaded
    device = resolve_device(cfg.train.device)
    if device.type != "cuda":
        return _train(cfg, dataset, reporter, stop_event, device, resume)
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        return _train(cfg, dataset, reporter, stop_event, device, resume)


def _train(cfg: RunConfig, dataset: Dataset, reporter: TrainReporter | None,
           stop_event: threading.Event | None, device: torch.device, resume: ResumeFrom | None) -> TrainResult:
    run = build_setup(cfg, dataset, device, resume)
    progress = Progress.start(run.model, resume)
    epoch = run.first_epoch

    def on_loss(number: int, value: float) -> None:  # each batch's loss, read in batch order
        progress.batch_losses.append(value)
        if reporter is not None:
            reporter.on_batch(epoch, number, value)

    step = make_step(run, LossLog(on_loss, 1 if device.type == "cpu" else ACCELERATOR_SYNC_EVERY))
    if reporter is not None:
        batches = len(epoch_batches(len(run.train_x), run.batch_size, None, torch.Generator().manual_seed(0)))
        reporter.on_start(cfg.train.epochs, batches, run.film_x.cpu())
    is_stopped = stop_event.is_set if stop_event is not None else (lambda: False)
    for epoch in range(run.first_epoch, cfg.train.epochs + 1):
        if is_stopped():
            progress.status = "stopped"
            break
        record = run_epoch(run, step, epoch, progress, is_stopped)
        if record is None:
            break
        if reporter is not None:
            reporter.on_epoch(record, progress.film[-1])
        if hasattr(reporter, "on_checkpoint"):  # a server that may be killed keeps where this run is
            reporter.on_checkpoint(epoch, lambda: ResumeFrom(
                state=resume_state(run), best_state=dict(progress.best_state), history=list(progress.history),
                batch_losses=list(progress.batch_losses), film=list(progress.film)))
        if 0 < cfg.train.patience <= progress.stale_epochs and epoch < cfg.train.epochs:
            progress.status = "early_stopped"
            break
    return finish(run, progress, dataset, step)


def run_epoch(run: Setup, step: Step, epoch: int, progress: Progress, is_stopped) -> EpochRecord | None:
    """Train one epoch's batches, then validate and film; the epoch's record, or None when the run
    stopped or diverged (progress.status says which)."""
    started = time.perf_counter()
    run.model.train()
    step.begin_epoch()
    batches = epoch_batches(len(run.train_x), run.batch_size, run.sample_weights, run.shuffle_generator, run.device)
    for number, idx in enumerate(batches, 1):
        if is_stopped():
            progress.status = "stopped"
            break
        if not step(number, idx):
            progress.status = "diverged"
            break
    if not step.log.read():
        progress.status = "diverged"
    if step.log.bad is not None:
        number, value = step.log.bad
        progress.diverged_at = f"the loss became {nonfinite_name(value)} at epoch {epoch}, batch {number}"
    if progress.status != "finished":
        return None
    sums, seen = step.epoch_sums()
    train_loss, train_recon, train_kl = (sums / max(seen, 1)).tolist()
    train_seconds = time.perf_counter() - started

    val_loss, val_recon, val_kl = validate(run)
    if not math.isfinite(val_loss) or not math.isfinite(train_loss):
        bad = val_loss if not math.isfinite(val_loss) else train_loss
        progress.diverged_at = f"the validation loss became {nonfinite_name(bad)} after epoch {epoch}"
        progress.status = "diverged"
        return None
    frame = film_frame(run)
    record = EpochRecord(epoch=epoch, train_loss=train_loss, val_loss=val_loss, train_recon=train_recon,
                         train_kl=train_kl, val_recon=val_recon, val_kl=val_kl,
                         seconds=time.perf_counter() - started, images_per_s=seen / max(train_seconds, 1e-9))
    progress.add_epoch(record, frame, run.model)
    return record


def finish(run: Setup, progress: Progress, dataset: Dataset, step: Step) -> TrainResult:
    """The best weights back in the model (on the CPU, eval mode), their test metrics, and what
    resuming needs (none after a divergence: its last weights are not worth continuing)."""
    tc, model = run.cfg.train, run.model
    resumable = resume_state(run) if progress.history and progress.status != "diverged" else None
    model.load_state_dict(progress.best_state)
    test_metrics: dict[str, float] = {}
    test_x, test_y = dataset.split("test")
    if progress.history and test_x.shape[0] > 0:
        test_metrics = evaluate(model, test_x, test_y, run.device, batch_size=run.eval_batch)
    model.to("cpu").eval()
    return TrainResult(
        model=model, status=progress.status,
        message=ending_message(progress.status, tc.epochs, progress.history, progress.best_epoch, progress.best_val,
                               progress.diverged_at, tc.lr, tc.patience),
        history=progress.history, batch_losses=progress.batch_losses, film_originals=run.film_x.cpu(),
        film=progress.film, test_metrics=test_metrics, device=str(run.device), best_epoch=progress.best_epoch,
        resume_state=resumable, step=step.kind, step_reason=step.reason)
