"""The training loop: optimiser, loss, noise, early stopping, metrics and the reconstruction film.

Speed comes from keeping the (small) uint8 split on the training device once and building every
batch by indexing it: no DataLoader, no per-item transforms. train() never touches the UI; it
talks to a TrainReporter (the background job) and returns a TrainResult.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from core import cuda_graph
from core.config import LOSSES, OPTIMIZERS, RunConfig
from core.data import Dataset, balanced_sample_weights, fill_model_shape
from core.models import Autoencoder, build_model, fit_output_bias, kl_divergence

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

# torch.manual_seed sets a process-wide generator; building the model under this lock keeps the
# initial weights reproducible even while another job is seeding at the same moment. Dropout masks
# and the VAE's samples also come from that generator, so two runs training at the same time
# (AE_LAB_MAX_JOBS > 1) are each sound but no longer bit-for-bit repeatable; one at a time they are.
_SEED_LOCK = threading.Lock()


@dataclass
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    train_recon: float
    train_kl: float
    val_recon: float
    val_kl: float  # the KL part of the loss (loss = recon + beta * kl, see _loss_parts); 0.0 for plain AEs
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


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple's MPS, then the CPU; a named device must be available."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"The device '{name}' is not available on this machine; choose 'auto' or 'cpu'.")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"The device '{name}' does not exist (this machine has {torch.cuda.device_count()} CUDA "
                "device(s)); choose 'cuda' or 'auto'."
            )
        return device
    if name == "mps":
        if not _mps_available():
            raise ValueError("The device 'mps' is not available on this machine; choose 'auto' or 'cpu'.")
        return torch.device("mps")
    raise ValueError(f"Unknown device '{name}'; choose one of auto, cpu, cuda or mps.")


def available_devices() -> list[str]:
    """The device names this machine can train on: "auto", "cpu", then the accelerators it has."""
    return ["auto", "cpu", *(["cuda"] if torch.cuda.is_available() else []),
            *(["mps"] if _mps_available() else [])]


def device_label(device: torch.device) -> str:
    """How to name a device to a user, e.g. "CUDA · NVIDIA H100", "MPS", "CPU"."""
    if device.type == "cuda":
        return f"CUDA · {torch.cuda.get_device_name(device)}"
    return device.type.upper()


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


class RpropWithWeightDecay(torch.optim.Rprop):
    """torch's Rprop takes no weight_decay; this adds the same coupled L2 term SGD and Adam use
    (grad += weight_decay * param) before each step, so the setting means the same everywhere."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, capturable: bool = False):
        super().__init__(params, lr=lr, capturable=capturable)
        for group in self.param_groups:
            group["weight_decay"] = weight_decay

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                decay = group.get("weight_decay", 0.0)
                if decay:
                    for param in group["params"]:
                        if param.grad is not None:
                            param.grad.add_(param, alpha=decay)
        super().step()
        return loss


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0,
                   capturable: bool = False) -> torch.optim.Optimizer:
    """One of OPTIMIZERS with the given learning rate and (coupled L2; AdamW: decoupled) weight decay.
    capturable=True (CUDA only) keeps the optimiser's step counters on the device, so that its step
    can be captured in a CUDA graph."""
    if lr < 0 or not math.isfinite(lr):
        raise ValueError(f"The learning rate must be a number of at least 0, not {lr}.")
    if weight_decay < 0 or not math.isfinite(weight_decay):
        raise ValueError(f"The weight decay must be a number of at least 0, not {weight_decay}.")
    params = list(params)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, capturable=capturable)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, capturable=capturable)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd_momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay, capturable=capturable)
    if name == "rprop":
        return RpropWithWeightDecay(params, lr=lr, weight_decay=weight_decay, capturable=capturable)
    raise ValueError(f"Unknown optimiser '{name}'; choose one of {', '.join(OPTIMIZERS)}.")


def to_float(images_uint8) -> torch.Tensor:
    """uint8 images -> float in [0, 1] (on the same device); float input is returned as float32."""
    images = torch.as_tensor(images_uint8)
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    return images.float()


def channel_means(images_uint8: torch.Tensor) -> torch.Tensor:
    """Mean intensity of each channel over N×C×H×W uint8 images, in [0, 1] (float32, C values)."""
    return (images_uint8.sum(dim=(0, 2, 3), dtype=torch.float64)
            / (255.0 * images_uint8[:, 0].numel())).float()


def add_noise(x: torch.Tensor, factor: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """clip(x + factor * N(0, 1), 0, 1); x is returned unchanged when factor is 0."""
    if factor <= 0:
        return x
    if generator is not None and generator.device != x.device:
        noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
    else:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + factor * noise).clamp_(0.0, 1.0)


@torch.no_grad()
def evaluate(model, images_uint8: torch.Tensor, labels, device, batch_size: int = 512) -> dict[str, float]:
    """Mean squared and mean absolute error over all pixel values in [0, 1] (eval mode)."""
    device = torch.device(device)
    model.to(device).eval()
    count = images_uint8.shape[0]
    if count == 0:
        return {"mse": float("nan"), "mae": float("nan")}
    squared = torch.zeros((), dtype=torch.float64, device=device)
    absolute = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, count, batch_size):
        x = to_float(images_uint8[start : start + batch_size].to(device))
        y = labels[start : start + batch_size].to(device) if labels is not None else None
        recon = model(x, y).recon
        diff = recon - x
        squared += diff.pow(2).sum(dtype=torch.float64)
        absolute += diff.abs().sum(dtype=torch.float64)
    values = images_uint8[0].numel() * count
    return {"mse": float(squared) / values, "mae": float(absolute) / values}


def _check_settings(cfg: RunConfig) -> None:
    tc, mc = cfg.train, cfg.model
    if tc.loss not in LOSSES:
        raise ValueError(f"Unknown loss '{tc.loss}'; choose one of {', '.join(LOSSES)}.")
    if tc.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimiser '{tc.optimizer}'; choose one of {', '.join(OPTIMIZERS)}.")
    if tc.loss == "bce" and mc.output_activation != "sigmoid":
        raise ValueError("The BCE loss needs outputs in [0, 1]; set the output activation to sigmoid or pick MSE or MAE.")
    if tc.epochs < 1:
        raise ValueError(f"Epochs must be at least 1, not {tc.epochs}.")
    if tc.batch_size < 1:
        raise ValueError(f"The batch size must be at least 1, not {tc.batch_size}.")
    if not 0 <= tc.noise_factor or not math.isfinite(tc.noise_factor):
        raise ValueError(f"The noise factor must be at least 0, not {tc.noise_factor}.")
    if tc.patience < 0:
        raise ValueError(f"The patience must be 0 (off) or more, not {tc.patience}.")
    if mc.vae and (mc.beta < 0 or not math.isfinite(mc.beta)):
        raise ValueError(f"The VAE beta must be at least 0, not {mc.beta}.")


def _recon_loss(name: str, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if name == "mse":
        return F.mse_loss(recon, target)
    if name == "mae":
        return F.l1_loss(recon, target)
    # F.binary_cross_entropy refuses a NaN input with an error (on CUDA a device-side assert that
    # breaks the CUDA context); a diverged model must give a NaN loss instead, so the run stops
    # with status "diverged" like it does with the other losses.
    has_nan = recon.isnan().any()
    loss = F.binary_cross_entropy(recon.nan_to_num(nan=0.5), target)
    return torch.where(has_nan, torch.full_like(loss, math.nan), loss)


# The KL of one image is divided by its number of pixel values, but by at least this many (a 28×28
# grey image). Why: with loss = recon + beta * KL / (C·H·W), MSE's loss is the ELBO of a Gaussian
# decoder with noise σ² = 1/2 divided by C·H·W; how many nats a code can save in reconstruction grows
# with the pixel count, what it costs in KL does not. 784 values (MNIST) and more learn at β = 1
# (MNIST, 32-px shapes and colour folders: codes of 8-16 nats and data-like prior samples), but an
# 8×8 digit (64 values) can save only a few nats, so every code collapsed onto the prior: one grey
# blob for every sample, a KL near 0 (bench/vae.py, BENCHMARKS.md "VAE: the KL part"). A decoder
# noise fitted to the reconstruction error (σ² = the batch's MSE) fixed digits but weighed the KL
# so little on 28×28 and larger images that their prior samples fell apart into broken strokes.
MIN_KL_VALUES = 784


def _loss_parts(out, target: torch.Tensor, loss_name: str, vae: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction loss per pixel value, KL part): the batch's mean reconstruction loss, and the
    KL of one image (summed over the latent dims, averaged over the batch) divided by
    max(C·H·W, MIN_KL_VALUES). loss = recon + beta * KL part: for images of 784 values or more, the
    β-VAE's negative ELBO divided by C·H·W (BCE: Bernoulli decoder; MSE: Gaussian with σ² = 1/2)."""
    recon = _recon_loss(loss_name, out.recon, target)
    if vae:
        kl = kl_divergence(out.mu, out.logvar) / max(target[0].numel(), MIN_KL_VALUES)
    else:
        kl = torch.zeros((), device=target.device)
    return recon, kl


def _training_loss(out, target: torch.Tensor, loss_name: str, vae: bool, beta: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, reconstruction part, KL part) of one batch: the one definition the eager step and the
    CUDA graph's step share (validation sums the same parts)."""
    recon, kl = _loss_parts(out, target, loss_name, vae)
    return (recon + beta * kl if vae else recon), recon, kl


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _device_generator(device: torch.device, seed: int) -> torch.Generator | None:
    try:
        return torch.Generator(device=device).manual_seed(seed)
    except RuntimeError:  # a backend without its own generators: fall back to the seeded global one
        return None


def _epoch_batches(count, batch_size, weights, generator, device=None) -> list[torch.Tensor]:
    """Index batches of one epoch: a fresh permutation, or a class-balanced draw with replacement.
    The draw uses a CPU generator (the same on every device); the indices then move in one copy."""
    if weights is None:
        order = torch.randperm(count, generator=generator)
    else:
        order = torch.multinomial(weights, count, replacement=True, generator=generator)
    batches = list(torch.split(order.to(device) if device is not None else order, batch_size))
    # A lone last image would make batch-norm layers fail in training mode; fold it into the batch before.
    if len(batches) > 1 and batches[-1].numel() == 1:
        batches[-2] = torch.cat([batches[-2], batches[-1]])
        batches.pop()
    return batches


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


def _fmt(value: float) -> str:
    return f"{value:.4g}"


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
    _check_settings(cfg)
    device = resolve_device(cfg.train.device)
    if device.type != "cuda":
        return _train(cfg, dataset, reporter, stop_event, device, resume)
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        return _train(cfg, dataset, reporter, stop_event, device, resume)


def _graph_plan(cfg: RunConfig, device: torch.device, full_batches: int) -> tuple[bool, str]:
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


def _train(cfg: RunConfig, dataset: Dataset, reporter: TrainReporter | None,
           stop_event: threading.Event | None, device: torch.device, resume: ResumeFrom | None) -> TrainResult:
    tc, mc = cfg.train, cfg.model
    fill_model_shape(mc, dataset)

    train_x, train_y = dataset.split("train")
    val_x, val_y = dataset.split("val")
    if train_x.shape[0] == 0:
        raise ValueError("The training split is empty; use more images or a smaller validation/test fraction.")
    if val_x.shape[0] == 0:
        raise ValueError("The validation split is empty; raise the validation fraction or use more images.")

    with _SEED_LOCK:
        torch.manual_seed(tc.seed)
        model = build_model(mc)
    fit_output_bias(model, channel_means(train_x))
    model.to(device)
    count = train_x.shape[0]
    batch_size = min(tc.batch_size, count)
    use_graph, step_reason = _graph_plan(cfg, device, count // batch_size)
    optimizer = make_optimizer(tc.optimizer, model.parameters(), tc.lr, tc.weight_decay, capturable=use_graph)
    shuffle_generator = torch.Generator().manual_seed(tc.seed)
    noise_generator = _device_generator(device, tc.seed + 1)
    first_epoch = 1
    if resume is not None:
        first_epoch = _resume_setup(resume, tc.epochs, model, optimizer, shuffle_generator, noise_generator)

    sample_weights = balanced_sample_weights(train_y).float().cpu() if cfg.data.balanced else None
    # The uint8 splits are small: one copy on the device, batches are made by indexing it.
    train_x, train_y = train_x.to(device), train_y.to(device)
    val_x, val_y = val_x.to(device), val_y.to(device)
    film_x, film_y = val_x[: max(tc.film_images, 0)], val_y[: max(tc.film_images, 0)]
    film_originals = film_x.cpu()

    batches_per_epoch = len(_epoch_batches(count, batch_size, None, torch.Generator().manual_seed(0)))
    pixels = train_x[0].numel()
    eval_batch = max(batch_size, inference_batch_size(device, pixels))
    sync_every = 1 if device.type == "cpu" else ACCELERATOR_SYNC_EVERY
    is_stopped = stop_event.is_set if stop_event is not None else (lambda: False)

    if reporter is not None:
        reporter.on_start(tc.epochs, batches_per_epoch, film_originals)

    history: list[EpochRecord] = list(resume.history) if resume else []
    batch_losses: list[float] = list(resume.batch_losses) if resume else []
    film: list[torch.Tensor] = list(resume.film) if resume else []
    best_state = dict(resume.best_state) if resume else _cpu_state(model)
    graphed: cuda_graph.GraphedStep | None = None
    eager_full_steps = 0  # full-size eager steps so far: the warm-up before capture
    last_flush = time.perf_counter()
    best_val = math.inf
    best_epoch = 0
    for record in history:  # a resumed run keeps its best epoch unless a new one beats it
        if math.isfinite(record.val_loss) and record.val_loss < best_val:
            best_val, best_epoch = record.val_loss, record.epoch
    epochs_without_improvement = 0
    status = "finished"
    diverged_at = ""  # what went non-finite and where, for the message

    def validate() -> tuple[float, float, float]:
        model.eval()
        # The same noise every epoch, so the validation curve of a denoising AE is not jittery.
        val_noise = _device_generator(device, tc.seed + 2)
        sums = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for start in range(0, val_x.shape[0], eval_batch):
                x = to_float(val_x[start : start + eval_batch])
                y = val_y[start : start + eval_batch]
                out = model(add_noise(x, tc.noise_factor, val_noise), y)
                recon, kl = _loss_parts(out, x, tc.loss, mc.vae)
                sums += torch.stack([recon, kl]).double() * x.shape[0]
        val_recon, val_kl = (sums / val_x.shape[0]).tolist()
        return val_recon + (mc.beta * val_kl if mc.vae else 0.0), val_recon, val_kl

    def film_frame() -> torch.Tensor:
        with torch.no_grad():
            return _to_uint8(model(film_x.float().div(255), film_y).recon)

    def graph_step(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The whole step for the batch at idx, as captured: the same operations as the eager step."""
        x = to_float(train_x[idx])
        out = model(add_noise(x, tc.noise_factor, noise_generator), train_y[idx])
        loss, recon, kl = _training_loss(out, x, tc.loss, mc.vae, mc.beta)
        loss.backward()
        optimizer.step()
        return loss.detach(), recon.detach(), kl.detach()

    for epoch in range(first_epoch, tc.epochs + 1):
        if is_stopped():
            status = "stopped"
            break
        started = time.perf_counter()
        model.train()
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        pending: list[tuple[int, torch.Tensor]] = []
        seen = 0

        graph_numbers: list[int] = []  # batch numbers replayed since the last flush, in order

        def flush() -> bool:
            """Read the pending batch losses (eager ones and the graph's log, in batch order);
            False when one of them is not finite."""
            nonlocal diverged_at, last_flush
            values = torch.stack([loss for _, loss in pending]).tolist() if pending else []
            numbers = [number for number, _ in pending]
            if graphed is not None and graph_numbers:
                numbers += graph_numbers
                values += graphed.read_log()
                graph_numbers.clear()
            pending.clear()
            last_flush = time.perf_counter()
            for number, value in sorted(zip(numbers, values)):
                if not math.isfinite(value):
                    diverged_at = f"the loss became {_nonfinite(value)} at epoch {epoch}, batch {number}"
                    return False
                batch_losses.append(value)
                if reporter is not None:
                    reporter.on_batch(epoch, number, value)
            return True

        batches = _epoch_batches(count, batch_size, sample_weights, shuffle_generator, device)
        for number, idx in enumerate(batches, 1):
            if is_stopped():
                status = "stopped"
                break
            if use_graph and graphed is None and eager_full_steps >= cuda_graph.WARMUP_STEPS \
                    and len(idx) == batch_size:
                try:
                    graphed = cuda_graph.GraphedStep(
                        graph_step, optimizer, batch_size, device, torch.cuda.current_stream(device),
                        generators=(noise_generator,) if noise_generator is not None and tc.noise_factor > 0 else ())
                except RuntimeError as exc:  # capture refused: keep training, eagerly, and say why
                    use_graph = False
                    step_reason = f"Eager steps: capturing the step in a CUDA graph failed ({_first_line(exc)})."
                    optimizer.zero_grad(set_to_none=True)
            if graphed is not None and len(idx) == batch_size:
                nonfinite = graphed.replay(idx)
                graph_numbers.append(number)
                seen += batch_size
                if (nonfinite or graphed.log_full or time.perf_counter() - last_flush >= FLUSH_SECONDS) \
                        and not flush():
                    status = "diverged"
                    break
                continue
            x = to_float(train_x[idx])
            out = model(add_noise(x, tc.noise_factor, noise_generator), train_y[idx])
            loss, recon, kl = _training_loss(out, x, tc.loss, mc.vae, mc.beta)
            pending.append((number, loss.detach()))
            # On the CPU this reads the loss before the step, so a NaN never reaches the weights.
            if len(pending) >= sync_every and not flush():
                status = "diverged"
                break
            # Once a graph is captured, its gradients live in the graph's memory: zero them in place
            # (not None) so that an eager step of another batch size uses and keeps the same tensors.
            optimizer.zero_grad(set_to_none=graphed is None)
            loss.backward()
            optimizer.step()
            sums += torch.stack([loss.detach(), recon.detach(), kl.detach()]).double() * x.shape[0]
            seen += x.shape[0]
            eager_full_steps += len(idx) == batch_size
        if (pending or graph_numbers) and not flush():
            status = "diverged"
        if graphed is not None:
            sums += graphed.take_sums()
        if status != "finished":
            break
        train_loss, train_recon, train_kl = (sums / max(seen, 1)).tolist()
        train_seconds = time.perf_counter() - started

        val_loss, val_recon, val_kl = validate()
        if not math.isfinite(val_loss) or not math.isfinite(train_loss):
            bad = val_loss if not math.isfinite(val_loss) else train_loss
            diverged_at = f"the validation loss became {_nonfinite(bad)} after epoch {epoch}"
            status = "diverged"
            break
        frame = film_frame()
        record = EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            train_recon=train_recon,
            train_kl=train_kl,
            val_recon=val_recon,
            val_kl=val_kl,
            seconds=time.perf_counter() - started,
            images_per_s=seen / max(train_seconds, 1e-9),
        )
        history.append(record)
        film.append(frame)
        if val_loss < best_val:
            best_val, best_epoch = val_loss, epoch
            best_state = _cpu_state(model)
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
        if reporter is not None:
            reporter.on_epoch(record, frame)
        if hasattr(reporter, "on_checkpoint"):  # a server that may be killed keeps where this run is
            reporter.on_checkpoint(epoch, lambda: ResumeFrom(
                state=_resume_state(model, optimizer, shuffle_generator, noise_generator),
                best_state=dict(best_state), history=list(history), batch_losses=list(batch_losses), film=list(film)))
        if tc.patience > 0 and epochs_without_improvement >= tc.patience and epoch < tc.epochs:
            status = "early_stopped"
            break

    resume_state = None
    if history and status != "diverged":
        resume_state = _resume_state(model, optimizer, shuffle_generator, noise_generator)
    model.load_state_dict(best_state)
    test_metrics: dict[str, float] = {}
    test_x, test_y = dataset.split("test")
    if history and test_x.shape[0] > 0:
        test_metrics = evaluate(model, test_x, test_y, device, batch_size=eval_batch)
    model.to("cpu").eval()

    return TrainResult(
        model=model,
        status=status,
        message=_message(status, tc.epochs, history, best_epoch, best_val, diverged_at, tc.lr, tc.patience),
        history=history,
        batch_losses=batch_losses,
        film_originals=film_originals,
        film=film,
        test_metrics=test_metrics,
        device=str(device),
        best_epoch=best_epoch,
        resume_state=resume_state,
        step="cuda-graph" if graphed is not None else "eager",
        step_reason=step_reason,
    )


def _resume_state(model, optimizer, shuffle_generator, noise_generator) -> dict:
    """What continuing needs beyond the best weights (TrainResult.resume_state), on the CPU."""
    return {"model": _cpu_state(model), "optimizer": _cpu_tree(optimizer.state_dict()),
            "shuffle_rng": shuffle_generator.get_state(),
            **({"noise_rng": noise_generator.get_state().cpu()} if noise_generator is not None else {})}


def _cpu_tree(value):
    """A copy of an optimiser's state_dict with every tensor on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_tree(v) for v in value)
    return value


def _resume_setup(resume: ResumeFrom, epochs: int, model, optimizer, shuffle_generator, noise_generator) -> int:
    """Load a saved run's last weights and optimiser and generator states; the first epoch to train."""
    first_epoch = len(resume.history) + 1
    if epochs < first_epoch:
        raise ValueError(f"The run already has {first_epoch - 1} epochs; ask for more than that to resume it.")
    try:
        model.load_state_dict(resume.state["model"])
        optimizer.load_state_dict(resume.state["optimizer"])  # moves its tensors to the model's device
    except (KeyError, ValueError, RuntimeError, TypeError):
        raise ValueError("The run's saved optimiser state does not fit its model or optimiser; "
                         "train it again instead of resuming it.") from None
    try:
        shuffle_generator.set_state(resume.state["shuffle_rng"])
        if noise_generator is not None and "noise_rng" in resume.state:
            noise_generator.set_state(resume.state["noise_rng"])
    except (KeyError, RuntimeError, TypeError):
        pass  # another device's generator: the batches differ from an unbroken run, nothing else
    return first_epoch


def inference_batch_size(device: torch.device, pixels: int) -> int:
    """Images per batch for evaluation, encoding and sweeps: large on a GPU (few launches, and the
    memory is there), bounded on the CPU (cache-sized batches are faster there)."""
    values = (1 << 25) if torch.device(device).type == "cuda" else (1 << 21)
    cap = 16384 if torch.device(device).type == "cuda" else 1024
    return max(1, min(cap, values // max(int(pixels), 1)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0].strip() if text else type(exc).__name__).rstrip(".")


def _nonfinite(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinite"


def zero_learning_rate_note(lr: float) -> str | None:
    """A plain warning when the learning rate is 0 (training runs, but no weight ever moves)."""
    if lr == 0:
        return ("The learning rate is 0, so the weights never change and nothing will be learnt; "
                "set it above 0 (e.g. 0.002) to train.")
    return None


def _message(status, total_epochs, history, best_epoch, best_val, diverged_at, lr, patience) -> str:
    """One sentence for the user about how the training ended (saying so when lr 0 learnt nothing)."""
    text = _ending(status, total_epochs, history, best_epoch, best_val, diverged_at, lr, patience)
    if lr == 0 and status != "diverged" and history:
        text = (f"{text.rstrip('.')}, but the learning rate was 0, so the weights never changed and nothing was "
                "learnt; set it above 0 (e.g. 0.002).")
    return text


def _ending(status, total_epochs, history, best_epoch, best_val, diverged_at, lr, patience) -> str:
    best = f"the best weights (epoch {best_epoch}, validation loss {_fmt(best_val)}) are kept"
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
