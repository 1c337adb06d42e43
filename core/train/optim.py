"""The optimisers a lesson compares, each taking the same learning rate and weight decay."""
from __future__ import annotations

import torch

from core.validation import check_setting


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
