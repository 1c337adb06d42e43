"""The options the commands share, and the RunConfig they describe.

A new model choice is one entry in MODEL_CHOICES: "family-preset" (or a bare family) sets
ModelConfig.family and .preset, as the Train page's model select does."""
from __future__ import annotations

import argparse
from typing import Any

from core.config import ACTIVATIONS, DATASET_NAMES, LOSSES, OPTIMIZERS, OUTPUT_ACTIVATIONS, RunConfig

MODEL_CHOICES = ("dense", "conv-small", "conv-large", "spatial-small", "spatial-large")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of whole numbers, e.g. 1000,500,250")
    if not values:
        raise argparse.ArgumentTypeError("give at least one size, e.g. 1000,500,250")
    return values


def add_out_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--out: the checkpoints folder every command reads or writes; by default the app's."""
    from core.checkpoints import CHECKPOINTS_ENV, checkpoints_root

    parser.add_argument("--out", default=checkpoints_root(),
                        help=f"checkpoints folder (default: ${CHECKPOINTS_ENV}, as the app, else checkpoints; "
                             f"now {checkpoints_root()})".replace("%", "%%"))


def add_ray_option(parser: argparse.ArgumentParser) -> None:
    """--ray for every command that trains: where the training runs (this process by default)."""
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="train on a Ray cluster: 'local' starts one in this process, 'auto' joins the one "
                             "`ray start` runs here, host:port joins that head node")


def add_limits_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--no-limits for every command that trains (see work_limits)."""
    parser.add_argument("--no-limits", action="store_true",
                        help="lift the AE_LAB_MAX_* limits on parameters, layers, batch memory, image size, latent "
                             "size, epochs and generated images (they protect a shared server; your own machine may "
                             "allow more). Image folders of any size are read either way.")


def work_limits(args: argparse.Namespace):
    """The bounds on each run's work: a served app's (AE_LAB_MAX_*), or none with --no-limits."""
    from core.serving.limits import WorkLimits

    return WorkLimits.unlimited() if args.no_limits else WorkLimits.from_env()


def add_data_location_options(parser: argparse.ArgumentParser) -> None:
    """For commands on a saved run (eval, resume): where its data is now, if it moved."""
    parser.add_argument("--data-root", help="where to find the run's torchvision dataset, if it moved")
    parser.add_argument("--folder", help="where to find the run's image folder, if it moved")


def add_run_options(parser: argparse.ArgumentParser, required: bool) -> None:
    """The data, model and training options of `train`; an experiment's base takes the same ones
    (none required there: what is not given keeps the preset's or the default's value)."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", required=required, choices=DATASET_NAMES)
    data.add_argument("--data-root", help="folder holding (or to hold) torchvision datasets, e.g. MNIST/raw")
    data.add_argument("--folder", help="--dataset folder: a folder with one sub-folder of images per class")
    data.add_argument("--image-size", type=int, help="folder/shapes: side the images are resized (drawn) to")
    data.add_argument("--channels", type=int, choices=(1, 3), help="folder: 1 (grey) or 3 (colour)")
    data.add_argument("--download", action="store_true", default=None,
                      help="allow downloading a missing torchvision dataset")
    data.add_argument("--balanced", action="store_true", default=None,
                      help="class-balanced sampling of training batches")
    data.add_argument("--limit", type=int, help="use at most this many images (0 = all)")
    data.add_argument("--exclude-classes", type=int_list,
                      help="class numbers left out of training and validation (the test split keeps all), e.g. 0,1")
    data.add_argument("--val-fraction", type=float)
    data.add_argument("--test-fraction", type=float)

    model = parser.add_argument_group("model")
    model.add_argument("--model", required=required, choices=MODEL_CHOICES)
    model.add_argument("--hidden", type=int_list, help="dense hidden sizes, e.g. 1000,500,250")
    model.add_argument("--conv-channels", type=int_list, help="conv channels instead of the preset's, e.g. 16,32")
    model.add_argument("--latent", type=int)
    model.add_argument("--dropout", type=float)
    model.add_argument("--activation", choices=ACTIVATIONS)
    model.add_argument("--output-activation", choices=OUTPUT_ACTIVATIONS)
    model.add_argument("--vae", action="store_true", default=None,
                       help="variational autoencoder (KL term weighted by --beta)")
    model.add_argument("--beta", type=float)
    model.add_argument("--conditional", action="store_true", default=None,
                       help="feed the class label to encoder and decoder")

    train = parser.add_argument_group("training")
    train.add_argument("--noise", type=float, help="denoising: noise factor added to the inputs")
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--lr", type=float)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--loss", choices=LOSSES)
    train.add_argument("--patience", type=int, help="early stopping after this many epochs without improvement")
    train.add_argument("--seed", type=int, help="fixes the data split and the training (default 0)")
    train.add_argument("--device", choices=DEVICE_CHOICES)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the app would build from the same choices; unset options keep the defaults."""
    cfg = apply_run_options(RunConfig(), args)
    cfg.name = args.name or ""
    return cfg


def apply_run_options(cfg: RunConfig, args: argparse.Namespace) -> RunConfig:
    """Set on cfg (in place; returned) every data, model and training option given on the
    command line; options not given leave cfg as it is."""
    data, model, train = cfg.data, cfg.model, cfg.train
    set_if_given(data, "dataset", args.dataset)
    set_if_given(data, "data_root", args.data_root)
    set_if_given(data, "folder", args.folder)
    set_if_given(data, "image_size", args.image_size)
    set_if_given(data, "channels", args.channels)
    set_if_given(data, "limit", args.limit)
    set_if_given(data, "exclude_classes", args.exclude_classes)
    set_if_given(data, "val_fraction", args.val_fraction)
    set_if_given(data, "test_fraction", args.test_fraction)
    set_if_given(data, "seed", args.seed)
    set_if_given(data, "download", args.download)
    set_if_given(data, "balanced", args.balanced)

    if args.model:
        family, _, preset = args.model.partition("-")  # "conv-small" -> conv, small; "dense" -> dense
        model.family = family
        set_if_given(model, "preset", preset or None)
    set_if_given(model, "hidden", args.hidden)
    set_if_given(model, "channels", args.conv_channels)
    set_if_given(model, "latent", args.latent)
    set_if_given(model, "dropout", args.dropout)
    set_if_given(model, "activation", args.activation)
    set_if_given(model, "output_activation", args.output_activation)
    set_if_given(model, "beta", args.beta)
    set_if_given(model, "vae", args.vae)
    set_if_given(model, "conditional", args.conditional)

    set_if_given(train, "noise_factor", args.noise)
    set_if_given(train, "optimizer", args.optimizer)
    set_if_given(train, "lr", args.lr)
    set_if_given(train, "batch_size", args.batch_size)
    set_if_given(train, "epochs", args.epochs)
    set_if_given(train, "weight_decay", args.weight_decay)
    set_if_given(train, "loss", args.loss)
    set_if_given(train, "patience", args.patience)
    set_if_given(train, "seed", args.seed)
    set_if_given(train, "device", args.device)
    return cfg


def set_if_given(obj: Any, attr: str, value: Any) -> None:
    if value is not None:
        setattr(obj, attr, value)
