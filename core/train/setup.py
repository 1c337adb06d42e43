"""Everything a run trains with, made once before the first epoch: the seeded model, its
optimiser (one of the six a lesson compares, each taking the same learning rate and weight
decay), the generators, and the splits as uint8 copies on the training device.

Speed comes from keeping the (small) uint8 split on the training device once and building every
batch by indexing it: no DataLoader, no per-item transforms.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from core.config import RunConfig
from core.data import Dataset, balanced_sample_weights, fill_model_shape
from core.models import Autoencoder, build_model, fit_output_bias
from core.train.devices import device_generator, inference_batch_size
from core.train.images import channel_means
from core.train.results import ResumeFrom
from core.train.step import graph_plan
from core.validation import check_setting

# torch.manual_seed sets a process-wide generator; building the model under this lock keeps the
# initial weights reproducible even while another job is seeding at the same moment. Dropout masks
# and the VAE's samples also come from that generator, so two runs training at the same time
# (AE_LAB_MAX_JOBS > 1) are each sound but no longer bit-for-bit repeatable; one at a time they are.
SEED_LOCK = threading.Lock()


@dataclass
class Setup:
    cfg: RunConfig
    device: torch.device
    model: Autoencoder
    optimizer: torch.optim.Optimizer
    shuffle_generator: torch.Generator  # on the CPU: the same batches on every device
    noise_generator: torch.Generator | None  # on the device: the denoising noise
    train_x: torch.Tensor  # uint8 splits and labels, on the device
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    sample_weights: torch.Tensor | None  # class-balanced sampling: each training image's weight
    batch_size: int  # at most the training split
    eval_batch: int  # validation and test batches (core.train.devices.inference_batch_size)
    first_epoch: int  # 1, or the next epoch of a resumed run
    use_graph: bool  # capture the step in a CUDA graph (core.train.step.graph_plan)
    step_reason: str

    @property
    def film_x(self) -> torch.Tensor:
        """The fixed validation images reconstructed after every epoch."""
        return self.val_x[: max(self.cfg.train.film_images, 0)]

    @property
    def film_y(self) -> torch.Tensor:
        return self.val_y[: max(self.cfg.train.film_images, 0)]


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
    """One of core.config.OPTIMIZERS with the given learning rate and (coupled L2; AdamW: decoupled)
    weight decay. capturable=True (CUDA only) keeps the optimiser's step counters on the device, so
    that its step can be captured in a CUDA graph. ConfigError (core.validation) for a bad setting."""
    check_setting("train.optimizer", name)
    check_setting("train.lr", lr)
    check_setting("train.weight_decay", weight_decay)
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
    return RpropWithWeightDecay(params, lr=lr, weight_decay=weight_decay, capturable=capturable)


def build_setup(cfg: RunConfig, dataset: Dataset, device: torch.device, resume: ResumeFrom | None) -> Setup:
    tc = cfg.train
    fill_model_shape(cfg.model, dataset)
    train_x, train_y = dataset.split("train")
    val_x, val_y = dataset.split("val")
    if train_x.shape[0] == 0:
        raise ValueError("The training split is empty; use more images or a smaller validation/test fraction.")
    if val_x.shape[0] == 0:
        raise ValueError("The validation split is empty; raise the validation fraction or use more images.")

    with SEED_LOCK:
        torch.manual_seed(tc.seed)
        model = build_model(cfg.model)
    fit_output_bias(model, channel_means(train_x))
    model.to(device)
    count = train_x.shape[0]
    batch_size = min(tc.batch_size, count)
    use_graph, step_reason = graph_plan(cfg, device, count // batch_size)
    optimizer = make_optimizer(tc.optimizer, model.parameters(), tc.lr, tc.weight_decay, capturable=use_graph)
    shuffle_generator = torch.Generator().manual_seed(tc.seed)
    noise_generator = device_generator(device, tc.seed + 1)
    first_epoch = 1
    if resume is not None:
        first_epoch = _load_resume(resume, tc.epochs, model, optimizer, shuffle_generator, noise_generator)
    return Setup(
        cfg=cfg, device=device, model=model, optimizer=optimizer, shuffle_generator=shuffle_generator,
        noise_generator=noise_generator, train_x=train_x.to(device), train_y=train_y.to(device),
        val_x=val_x.to(device), val_y=val_y.to(device),
        sample_weights=balanced_sample_weights(train_y).float().cpu() if cfg.data.balanced else None,
        batch_size=batch_size, eval_batch=max(batch_size, inference_batch_size(device, train_x[0].numel())),
        first_epoch=first_epoch, use_graph=use_graph, step_reason=step_reason)


def _load_resume(resume: ResumeFrom, epochs: int, model, optimizer, shuffle_generator, noise_generator) -> int:
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


def cpu_copy(value):
    """A copy of a state_dict (a model's or an optimiser's) with every tensor on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(cpu_copy(v) for v in value)
    return value


def resume_state(run: Setup) -> dict:
    """What resuming needs beyond the best weights: the last weights, the optimiser's state and the
    generators' states (plain tensors, so torch.save / weights_only load it)."""
    return {"model": cpu_copy(run.model.state_dict()), "optimizer": cpu_copy(run.optimizer.state_dict()),
            "shuffle_rng": run.shuffle_generator.get_state(),
            **({"noise_rng": run.noise_generator.get_state().cpu()} if run.noise_generator is not None else {})}
