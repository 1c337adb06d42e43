"""The command line that trains a saved run again: `python -m core.cli train` with every option that
makes the run what it is (the inverse of core.cli's apply_run_options; a test parses the command
back with the CLI's own parser and compares the configs)."""
from __future__ import annotations

import shlex

from core.config import DataConfig, RunConfig
from core.serving.limits import GENERATED_DATASETS


def _number(value: float) -> str:
    return f"{value:g}"


def _ints(values) -> str:
    return ",".join(str(int(v)) for v in values)


def train_command(cfg: RunConfig, name: str = "") -> str:
    data, model, train = cfg.data, cfg.model, cfg.train
    default = DataConfig()
    words = ["--dataset", data.dataset]
    if data.dataset == "folder":
        words += ["--folder", f"{data.folder_root}/{data.folder}" if data.folder_root else data.folder]
    if data.dataset in ("mnist", "fashion-mnist", "cifar10") and data.data_root != default.data_root:
        words += ["--data-root", data.data_root]
    if data.dataset in ("folder", *GENERATED_DATASETS):
        words += ["--image-size", str(data.image_size)]
    if data.dataset == "folder":
        words += ["--channels", str(data.channels)]
    if data.limit:
        words += ["--limit", str(data.limit)]
    if data.exclude_classes:
        words += ["--exclude-classes", _ints(data.exclude_classes)]
    if data.balanced:
        words.append("--balanced")
    if data.val_fraction != default.val_fraction:
        words += ["--val-fraction", _number(data.val_fraction)]
    if data.test_fraction != default.test_fraction:
        words += ["--test-fraction", _number(data.test_fraction)]

    words += ["--model", "dense" if model.family == "dense" else f"conv-{model.preset}"]
    if model.family == "dense":
        words += ["--hidden", _ints(model.hidden)]
    elif model.channels:
        words += ["--conv-channels", _ints(model.channels)]
    words += ["--latent", str(model.latent), "--dropout", _number(model.dropout), "--activation", model.activation,
              "--output-activation", model.output_activation]
    if model.vae:
        words += ["--vae", "--beta", _number(model.beta)]
    if model.conditional:
        words.append("--conditional")

    words += ["--optimizer", train.optimizer, "--lr", _number(train.lr), "--batch-size", str(train.batch_size),
              "--epochs", str(train.epochs), "--loss", train.loss, "--seed", str(train.seed)]
    if train.weight_decay:
        words += ["--weight-decay", _number(train.weight_decay)]
    if train.noise_factor:
        words += ["--noise", _number(train.noise_factor)]
    if train.patience:
        words += ["--patience", str(train.patience)]
    if name:
        words += ["--name", name]
    return shlex.join(["python", "-m", "core.cli", "train", *words])
