"""What training reports and returns: epoch records, the reporter interface, the result, a run to
resume, and the one sentence that says how a run ended."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: a job's records are read by pages that need no PyTorch
    import torch

    from core.models import Autoencoder


@dataclass
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    train_recon: float
    train_kl: float
    val_recon: float
    val_kl: float  # the KL part of the loss (loss = recon + beta * kl, see Autoencoder.loss_parts); 0.0 for plain AEs
    seconds: float  # wall time of the whole epoch (training, validation and film frame)
    images_per_s: float  # training images per second of the training phase


class TrainReporter(Protocol):
    def on_start(self, total_epochs: int, batches_per_epoch: int, film_originals: torch.Tensor) -> None: ...

    def on_batch(self, epoch: int, batch: int, loss: float) -> None: ...

    def on_epoch(self, record: EpochRecord, film_frame: torch.Tensor) -> None: ...

    # Optional: after each epoch, `take()` returns a ResumeFrom of this moment (copies of the
    # weights, optimiser and generators), for a reporter that keeps crash checkpoints.
    # def on_checkpoint(self, epoch: int, take: Callable[[], ResumeFrom]) -> None: ...


@dataclass
class TrainResult:
    model: Autoencoder
    status: str  # "finished" | "stopped" | "early_stopped" | "diverged"
    message: str
    history: list[EpochRecord]
    batch_losses: list[float]
    film_originals: torch.Tensor
    film: list[torch.Tensor]
    test_metrics: dict[str, float]
    device: str
    best_epoch: int = 0  # the epoch whose weights were kept; 0 when none finished (initial weights)
    # What resuming needs beyond the best weights: the last epoch's weights, the optimiser's state
    # and the generators' states (plain tensors and numbers, so torch.save / weights_only load it).
    # None when no epoch finished or the run diverged (its last weights are not worth continuing).
    resume_state: dict | None = None
    step: str = "eager"  # how batches were trained: "cuda-graph" (captured, replayed) or "eager"
    step_reason: str = ""  # one sentence: why that path (e.g. why no graph)


@dataclass
class ResumeFrom:
    """A saved run to continue: train() starts at epoch len(history) + 1 and runs to cfg.train.epochs."""

    state: dict  # TrainResult.resume_state as saved: {"model", "optimizer", "shuffle_rng", "noise_rng"}
    best_state: dict  # the saved (best) weights
    history: list[EpochRecord]
    batch_losses: list[float]
    film: list[torch.Tensor]


def zero_learning_rate_note(lr: float) -> str | None:
    """A plain warning when the learning rate is 0 (training runs, but no weight ever moves)."""
    if lr == 0:
        return ("The learning rate is 0, so the weights never change and nothing will be learnt; "
                "set it above 0 (e.g. 0.002) to train.")
    return None


def nonfinite_name(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinite"


def ending_message(status, total_epochs, history, best_epoch, best_val, diverged_at, lr, patience) -> str:
    """One sentence for the user about how the training ended (saying so when lr 0 learnt nothing)."""
    text = _ending(status, total_epochs, history, best_epoch, best_val, diverged_at, lr, patience)
    if lr == 0 and status != "diverged" and history:
        text = (f"{text.rstrip('.')}, but the learning rate was 0, so the weights never changed and nothing was "
                "learnt; set it above 0 (e.g. 0.002).")
    return text


def _ending(status, total_epochs, history, best_epoch, best_val, diverged_at, lr, patience) -> str:
    best = f"the best weights (epoch {best_epoch}, validation loss {best_val:.4g}) are kept"
    if status == "finished":
        return f"Finished {len(history)} epoch{'s' if len(history) != 1 else ''}; {best}."
    if status == "early_stopped":
        return (
            f"Stopped early after epoch {len(history)} of {total_epochs} because the validation loss did not "
            f"improve for {patience} epoch{'s' if patience != 1 else ''}; {best}."
        )
    if status == "stopped":
        if not history:
            return "Stopped before the first epoch finished, so nothing was learned or saved."
        return f"Stopped after {len(history)} of {total_epochs} epochs; {best}."
    kept = f"; {best}, so" if history else ", before any epoch finished, so"
    suggestion = f"{min(lr / 10, 1e-3):g}" if lr > 0 else "0.001"
    return (
        f"Training stopped because {diverged_at or 'the loss became NaN'}{kept} "
        f"try a lower learning rate (e.g. {suggestion})."
    )
