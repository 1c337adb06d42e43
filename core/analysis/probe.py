"""A classifier probe on a model's encoder: a head trained on the frozen codes (or the encoder
fine-tuned with it), reported on the test split."""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.analysis.inference import encode, model_device
from core.data import Dataset
from core.train import SEED_LOCK, inference_batch_size, resolve_device, to_float
from core.validation import check_section

# At most this many of the most confidently wrong test predictions are reported by the probe.
MOST_CONFUSED = 16

@dataclass
class ProbeConfig:
    # A head on standardised codes learns fast: at 0.01, twenty epochs converge in seconds on the
    # teaching datasets (MNIST-10k, linear head on the frozen encoder: 92.6%; 10 epochs at 0.001: 87%).
    epochs: int = 20
    lr: float = 1e-2
    batch_size: int = 128
    fine_tune: bool = False  # False: train only a head on the frozen codes; True: encoder + head
    hidden: int = 0  # 0: a linear head; > 0: an MLP head with one hidden layer of this many units
    seed: int = 0
    device: str = "auto"  # where a fine-tuned encoder trains ("auto": CUDA, MPS, then CPU)


@dataclass
class ProbeResult:
    accuracy: float  # on the test split, with the weights of the best validation epoch
    confusion: np.ndarray  # num_classes × num_classes, rows = true class, columns = predicted
    class_names: list[str]
    per_class_accuracy: dict[str, float]  # class name -> test accuracy (NaN for a class with no test image)
    history: list[dict]  # {"epoch", "train_loss", "train_accuracy", "val_accuracy"} per finished epoch
    most_confused: list[dict]  # {"index": position in the test split, "true", "pred", "confidence"}
    best_epoch: int = 0  # the epoch whose weights were kept (0: stopped before the first epoch ended)
    stopped: bool = False  # stop_event ended the training early


class _Probe(nn.Module):
    """Encoder codes -> standardised with the training codes' statistics (fixed, so the head's
    learning rate does not depend on the scale of the codes) -> a linear or one-hidden-layer head.
    With an encoder (fine-tuning) the images go through it first; without, the input is codes."""

    def __init__(self, encoder: nn.Module | None, mean: torch.Tensor, std: torch.Tensor,
                 num_classes: int, hidden: int):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        latent = len(mean)
        self.head = (nn.Linear(latent, num_classes) if hidden <= 0 else
                     nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        codes = x if self.encoder is None else self.encoder.encode(x, y).flatten(1)
        return self.head((codes - self.mean) / self.std)


def _check_probe(cfg: ProbeConfig, dataset: Dataset) -> None:
    check_section(cfg, "probe")  # epochs, batch size, learning rate (core.validation)
    if dataset.num_classes < 2:
        raise ValueError("A classifier needs a dataset with at least two classes.")
    for split in ("train", "val", "test"):
        if len(dataset.splits.get(split, ())) == 0:
            raise ValueError(f"The {split} split is empty, so the classifier cannot be trained and checked; "
                             "use more images.")


def _probe_and_inputs(model, dataset: Dataset, cfg: ProbeConfig, no_hint):
    """(device, the probe, each split's inputs and targets on the device). Frozen: the inputs are
    the codes, encoded once; fine_tune: the uint8 images (made float per batch) and a copy of the
    model as the probe's encoder. The head's standardisation comes from the training codes."""
    splits = {name: dataset.split(name) for name in ("train", "val", "test")}
    train_codes = torch.from_numpy(encode(model, splits["train"][0], no_hint))
    mean, std = train_codes.mean(0), train_codes.std(0).clamp_min(1e-6)
    if cfg.fine_tune:
        device = resolve_device(cfg.device)
        encoder = copy.deepcopy(model).to(device)
        inputs = {name: x for name, (x, _) in splits.items()}
    else:
        device = model_device(model)
        encoder = None
        inputs = {"train": train_codes, **{name: torch.from_numpy(encode(model, splits[name][0], no_hint))
                                           for name in ("val", "test")}}
    with SEED_LOCK:  # the head's initial weights come from the process-wide generator
        torch.manual_seed(cfg.seed)
        probe = _Probe(encoder, mean, std, dataset.num_classes, cfg.hidden).to(device)
    return (device, probe, {name: x.to(device) for name, x in inputs.items()},
            {name: y.to(device) for name, (_, y) in splits.items()})


def train_probe(model, dataset: Dataset, cfg: ProbeConfig,
                on_epoch: Callable[[dict], None] | None = None,
                stop_event: threading.Event | None = None) -> ProbeResult:
    """A classifier on the model's encoder: trained on the "train" split, the epoch with the best
    "val" accuracy kept, reported on "test". Frozen (default): the images are encoded once and only
    the head trains on the codes, which takes a second. fine_tune: a copy of the encoder trains with
    the head (the model passed in is never modified). on_epoch gets each history row as it ends;
    stop_event ends the training within a batch. Same seed + same data + same device: same result."""
    _check_probe(cfg, dataset)
    # A conditional encoder also takes the label; giving it the true label would hand the answer
    # to the classifier. Every image is encoded with label 0 instead, the same for all classes.
    no_hint = 0 if model.cfg.conditional else None
    is_stopped = stop_event.is_set if stop_event is not None else (lambda: False)
    device, probe, inputs, targets = _probe_and_inputs(model, dataset, cfg, no_hint)
    train_y, val_y, test_y = (dataset.split(name)[1] for name in ("train", "val", "test"))
    optimizer = torch.optim.Adam([p for p in probe.parameters() if p.requires_grad], lr=cfg.lr)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    hints = torch.zeros(max(len(train_y), len(val_y), len(test_y)), dtype=torch.long, device=device) \
        if no_hint is not None else None

    def batch_input(split: str, idx) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = inputs[split][idx]
        return (to_float(x) if cfg.fine_tune else x), (None if hints is None else hints[: len(x)])

    def predict(split: str) -> torch.Tensor:
        """Class probabilities of a whole split (eval mode), N×num_classes on the device."""
        probe.eval()
        count = len(targets[split])
        step = max(cfg.batch_size, inference_batch_size(device, int(np.prod(inputs[split].shape[1:])) or 1))
        with torch.inference_mode():
            return torch.cat([F.softmax(probe(*batch_input(split, slice(s, s + step))), dim=1)
                              for s in range(0, count, step)])

    history: list[dict] = []
    best_state = copy.deepcopy(probe.state_dict())
    best_val, best_epoch, stopped = -1.0, 0, False
    for epoch in range(1, cfg.epochs + 1):
        probe.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for idx in torch.randperm(len(train_y), generator=shuffle).to(device).split(cfg.batch_size):
            if is_stopped():
                stopped = True
                break
            logits = probe(*batch_input("train", idx))
            loss = F.cross_entropy(logits, targets["train"][idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.detach().argmax(1) == targets["train"][idx]).sum())
            seen += len(idx)
        if stopped:
            break
        val_accuracy = float((predict("val").argmax(1) == targets["val"]).float().mean())
        row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
               "val_accuracy": val_accuracy}
        history.append(row)
        if val_accuracy > best_val:
            best_val, best_epoch = val_accuracy, epoch
            best_state = copy.deepcopy(probe.state_dict())
        if on_epoch is not None:
            on_epoch(dict(row))

    probe.load_state_dict(best_state)
    return _probe_report(predict("test").cpu(), test_y, dataset.class_names, history, best_epoch, stopped)


def _probe_report(probabilities: torch.Tensor, test_y: torch.Tensor, class_names: list[str],
                  history: list[dict], best_epoch: int, stopped: bool) -> ProbeResult:
    from sklearn.metrics import confusion_matrix

    confidence, predicted = probabilities.max(1)
    true, pred = test_y.numpy(), predicted.numpy()
    confusion = confusion_matrix(true, pred, labels=range(len(class_names)))
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else float("nan"))
                 for i, name in enumerate(class_names)}
    wrong = np.flatnonzero(true != pred)
    wrong = wrong[np.argsort(-confidence.numpy()[wrong], kind="stable")][:MOST_CONFUSED]
    most_confused = [{"index": int(i), "true": class_names[true[i]], "pred": class_names[pred[i]],
                      "confidence": float(confidence[i])} for i in wrong]
    return ProbeResult(accuracy=float((true == pred).mean()), confusion=confusion, class_names=list(class_names),
                       per_class_accuracy=per_class, history=history, most_confused=most_confused,
                       best_epoch=best_epoch, stopped=stopped)
