"""The training step: one interface, two implementations. EagerStep is the step of every
PyTorch tutorial; CudaGraphStep captures it once in a CUDA graph (core.cuda_graph) and replays it.
Both hand each batch's loss to a LossLog, which reads the losses on the host in batch order."""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Callable, Protocol

import torch

from core import cuda_graph
from core.config import RunConfig
from core.train.images import add_noise, to_float

if TYPE_CHECKING:
    from core.train.setup import Setup

# On an accelerator, turning each batch loss into a Python float forces a device sync; the
# losses are gathered and read every this many batches instead (on the CPU: every batch).
ACCELERATOR_SYNC_EVERY = 10
# With a CUDA graph, batch losses stay on the device and are read at most this often (and
# whenever the graph's loss log is full): the live chart still moves ten times a second. A NaN/inf
# loss is seen sooner, within cuda_graph.NONFINITE_WITHIN batches, through a flag the graph sets.
FLUSH_SECONDS = 0.1
# Optimisers whose step can be captured: torch's capturable=True keeps their step counters on
# the device (SGD has no host-side state at all).
CAPTURABLE_OPTIMIZERS = ("adam", "adamw", "sgd", "sgd_momentum", "rmsprop", "rprop")


class LossLog:
    """Batch losses on their way to the host: eager ones as device scalars, a graph's in its own
    log. read() takes them all in batch order and hands each to `record(number, value)`; at the
    first non-finite one it stops, keeps it in `bad` ((batch number, value)) and returns False."""

    def __init__(self, record: Callable[[int, float], None], sync_every: int):
        self.record, self.sync_every = record, sync_every
        self.pending: list[tuple[int, torch.Tensor]] = []
        self.graph: cuda_graph.GraphedStep | None = None  # set once a step is captured
        self.graph_numbers: list[int] = []  # batch numbers replayed since the last read, in order
        self.bad: tuple[int, float] | None = None
        self.last_read = time.perf_counter()

    def add(self, number: int, loss: torch.Tensor) -> bool:
        """An eager batch's loss; read with the others every `sync_every` (the CPU: right away)."""
        self.pending.append((number, loss))
        return len(self.pending) < self.sync_every or self.read()

    def read(self) -> bool:
        values = torch.stack([loss for _, loss in self.pending]).tolist() if self.pending else []
        numbers = [number for number, _ in self.pending]
        if self.graph is not None and self.graph_numbers:
            numbers += self.graph_numbers
            values += self.graph.read_log()
            self.graph_numbers.clear()
        self.pending.clear()
        self.last_read = time.perf_counter()
        for number, value in sorted(zip(numbers, values)):
            if not math.isfinite(value):
                self.bad = (number, value)
                return False
            self.record(number, value)
        return True


class Step(Protocol):
    """Trains the batch of training images at `idx` (positions in the split on the device)."""

    kind: str  # what TrainResult.step says: "eager" or "cuda-graph"
    reason: str  # one sentence: why this kind
    log: LossLog

    def begin_epoch(self) -> None: ...

    def __call__(self, number: int, idx: torch.Tensor) -> bool: ...  # False: a loss read so far was not finite

    def epoch_sums(self) -> tuple[torch.Tensor, int]: ...  # (loss, recon, kl) × images, and images


class EagerStep:
    """One batch the way pytorch/examples' vae/main.py trains it: forward, loss, zero_grad, backward,
    step. The loss is logged before the weights move: on the CPU the log reads it at once, so a
    NaN never reaches the weights."""

    kind = "eager"

    def __init__(self, run: "Setup", log: LossLog, reason: str):
        self.run, self.model, self.optimizer, self.log, self.reason = run, run.model, run.optimizer, log, reason
        self.loss_name, self.noise = run.cfg.train.loss, run.cfg.train.noise_factor
        # Once a CUDA graph is captured, the gradients live in the graph's memory: they are zeroed
        # in place (not None), so that a step of another batch size uses and keeps the same tensors.
        self.grads_to_none = True
        self.full_steps = 0  # full-size steps so far: a graph's warm-up
        self.begin_epoch()

    def begin_epoch(self) -> None:
        self.sums = torch.zeros(3, dtype=torch.float64, device=self.run.device)
        self.seen = 0

    def batch_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(clean images, loss, reconstruction part, KL part): the forward pass on the batch at idx,
        noisy for a denoising AE, and its loss against the clean images (Autoencoder.training_loss)."""
        x = to_float(self.run.train_x[idx])
        out = self.model(add_noise(x, self.noise, self.run.noise_generator), self.run.train_y[idx])
        return x, *self.model.training_loss(out, x, self.loss_name)

    def __call__(self, number: int, idx: torch.Tensor) -> bool:
        x, loss, recon, kl = self.batch_loss(idx)
        if not self.log.add(number, loss.detach()):
            return False
        self.optimizer.zero_grad(set_to_none=self.grads_to_none)
        loss.backward()
        self.optimizer.step()
        self.sums += torch.stack([loss.detach(), recon.detach(), kl.detach()]).double() * x.shape[0]
        self.seen += x.shape[0]
        self.full_steps += len(idx) == self.run.batch_size
        return True

    def epoch_sums(self) -> tuple[torch.Tensor, int]:
        return self.sums, self.seen


class CudaGraphStep:
    """Eager for a short warm-up (cuda_graph.WARMUP_STEPS full batches: the optimiser's state and
    cuDNN's kernels must exist before capture) and for batches of another size; then the whole
    step is captured once and every full batch replays it. A capture that fails leaves the run
    training eagerly, with the reason in `reason`."""

    def __init__(self, run: "Setup", log: LossLog, reason: str):
        self.run, self.log, self.reason = run, log, reason
        self.eager = EagerStep(run, log, reason)
        self.graphed: cuda_graph.GraphedStep | None = None
        self.capture_failed = False

    @property
    def kind(self) -> str:
        return "cuda-graph" if self.graphed is not None else "eager"

    def begin_epoch(self) -> None:
        self.eager.begin_epoch()

    def _captured(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The whole step for the batch at idx, as captured: the eager step's operations, without
        zero_grad (the graph's backward overwrites its own gradients on every replay)."""
        _, loss, recon, kl = self.eager.batch_loss(idx)
        loss.backward()
        self.run.optimizer.step()
        return loss.detach(), recon.detach(), kl.detach()

    def _capture(self) -> None:
        run = self.run
        noise = run.noise_generator is not None and run.cfg.train.noise_factor > 0
        try:
            self.graphed = cuda_graph.GraphedStep(self._captured, run.optimizer, run.batch_size, run.device,
                                                  torch.cuda.current_stream(run.device),
                                                  generators=(run.noise_generator,) if noise else ())
        except RuntimeError as exc:  # capture refused: keep training, eagerly, and say why
            self.capture_failed = True
            self.reason = f"Eager steps: capturing the step in a CUDA graph failed ({_first_line(exc)})."
            run.optimizer.zero_grad(set_to_none=True)
            return
        self.log.graph = self.graphed
        self.eager.grads_to_none = False

    def __call__(self, number: int, idx: torch.Tensor) -> bool:
        full = len(idx) == self.run.batch_size
        if self.graphed is None and not self.capture_failed and full \
                and self.eager.full_steps >= cuda_graph.WARMUP_STEPS:
            self._capture()
        if self.graphed is None or not full:
            return self.eager(number, idx)
        nonfinite = self.graphed.replay(idx)
        self.log.graph_numbers.append(number)
        self.eager.seen += len(idx)
        due = nonfinite or self.graphed.log_full or time.perf_counter() - self.log.last_read >= FLUSH_SECONDS
        return not due or self.log.read()

    def epoch_sums(self) -> tuple[torch.Tensor, int]:
        sums, seen = self.eager.epoch_sums()
        return (sums + self.graphed.take_sums() if self.graphed is not None else sums), seen


def graph_plan(cfg: RunConfig, device: torch.device, full_batches: int) -> tuple[bool, str]:
    """Whether to capture the training step in a CUDA graph, and one sentence saying why (not)."""
    if device.type != "cuda":
        return False, f"Eager steps: CUDA graphs need a CUDA device, and this run trains on {device.type.upper()}."
    if not cfg.train.cuda_graphs:
        return False, "Eager steps: CUDA graphs are turned off in the training settings."
    if cfg.train.optimizer not in CAPTURABLE_OPTIMIZERS:
        return False, f"Eager steps: the {cfg.train.optimizer} optimiser cannot be captured in a CUDA graph."
    if full_batches * cfg.train.epochs <= cuda_graph.WARMUP_STEPS + 1:
        return False, "Eager steps: the run has too few full batches for a CUDA graph to pay off."
    return True, "CUDA graph: each full batch replays one captured step (forward, backward, optimiser)."


def make_step(run: "Setup", log: LossLog) -> Step:
    return (CudaGraphStep if run.use_graph else EagerStep)(run, log, run.step_reason)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0].strip() if text else type(exc).__name__).rstrip(".")
