"""The same training as the app, from a terminal (e.g. pre-training runs before class).

    python -m core.cli train --dataset mnist --model conv-small --latent 16 --epochs 5
    python -m core.cli list
    python -m core.cli eval mnist-conv-small-z16
    python -m core.cli resume mnist-conv-small-z16 --epochs 5
    python -m core.cli export run-a run-b --to lesson.zip
    python -m core.cli import lesson.zip
    python -m core.cli train --dataset digits --model conv-small --epochs 2 --ray local

`train` builds the same RunConfig the app builds, trains with core.train.train and saves with
core.checkpoints.save_run, so its runs appear in the app like any other. Progress goes to
stderr; the last line on stdout is one JSON object, easy to read from a script (grid searches);
its "backend" says where the training ran ("local": this process; "ray": a Ray cluster, --ray).
User errors print one line "error: <sentence>" on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

from core.config import ACTIVATIONS, DATASET_NAMES, LOSSES, OPTIMIZERS, OUTPUT_ACTIVATIONS, DataConfig, RunConfig
from core.config import finite_or_none as _finite

MODEL_CHOICES = ("dense", "conv-small", "conv-large")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
EXIT_USER_ERROR = 2
EXIT_NOTHING_SAVED = 1


class UserError(Exception):
    """A mistake in the command line that argparse cannot see (e.g. a run name already taken)."""


# ---------------------------------------------------------------- arguments

def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of whole numbers, e.g. 1000,500,250")
    if not values:
        raise argparse.ArgumentTypeError("give at least one size, e.g. 1000,500,250")
    return values


def _add_run_options(parser: argparse.ArgumentParser, required: bool) -> None:
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
    data.add_argument("--exclude-classes", type=_int_list,
                      help="class numbers left out of training and validation (the test split keeps all), e.g. 0,1")
    data.add_argument("--val-fraction", type=float)
    data.add_argument("--test-fraction", type=float)

    model = parser.add_argument_group("model")
    model.add_argument("--model", required=required, choices=MODEL_CHOICES)
    model.add_argument("--hidden", type=_int_list, help="dense hidden sizes, e.g. 1000,500,250")
    model.add_argument("--conv-channels", type=_int_list, help="conv channels instead of the preset's, e.g. 16,32")
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


def build_parser() -> argparse.ArgumentParser:
    from core.checkpoints import DEFAULT_ROOT

    parser = argparse.ArgumentParser(prog="python -m core.cli", description="Autoencoder Lab from the terminal.")
    commands = parser.add_subparsers(dest="command", metavar="{train,list,eval,resume,export,import,experiment,search,experiments}")

    t = commands.add_parser("train", help="train an autoencoder and save it as a run",
                            description="Train an autoencoder and save it as a run (the app lists it too).")
    _add_run_options(t, required=True)
    out = t.add_argument_group("output")
    out.add_argument("--out", default=DEFAULT_ROOT, help=f"checkpoints folder (default {DEFAULT_ROOT})")
    out.add_argument("--name", help="run name (default: made from the dataset and model)")
    _add_ray_option(t)
    out.add_argument("--no-limits", action="store_true",
                     help="lift the AE_LAB_MAX_* limits on model size, image size, latent size, epochs and "
                          "folder walks (they protect a shared server; your own machine may allow more)")

    ls = commands.add_parser("list", help="list the saved runs")
    ls.add_argument("--out", default=DEFAULT_ROOT, help=f"checkpoints folder (default {DEFAULT_ROOT})")

    ev = commands.add_parser("eval", help="evaluate a saved run on its test split")
    ev.add_argument("run")
    ev.add_argument("--out", default=DEFAULT_ROOT, help=f"checkpoints folder (default {DEFAULT_ROOT})")
    ev.add_argument("--data-root", help="where to find the run's torchvision dataset, if it moved")
    ev.add_argument("--folder", help="where to find the run's image folder, if it moved")
    ev.add_argument("--device", choices=DEVICE_CHOICES, default="auto")

    rs = commands.add_parser("resume", help="train a saved run for more epochs",
                             description="Continue a stopped or finished run from its last weights and optimiser "
                                         "state; the run is saved again under its name, its curves continued.")
    rs.add_argument("run")
    rs.add_argument("--epochs", type=int, required=True, help="how many more epochs")
    rs.add_argument("--out", default=DEFAULT_ROOT, help=f"checkpoints folder (default {DEFAULT_ROOT})")
    rs.add_argument("--data-root", help="where to find the run's torchvision dataset, if it moved")
    rs.add_argument("--folder", help="where to find the run's image folder, if it moved")
    _add_ray_option(rs)

    ex = commands.add_parser("export", help="write saved runs into one .zip bundle")
    ex.add_argument("runs", nargs="+", metavar="RUN")
    ex.add_argument("--to", required=True, metavar="FILE", help="the .zip to write")
    ex.add_argument("--out", default=DEFAULT_ROOT, help=f"checkpoints folder (default {DEFAULT_ROOT})")

    im = commands.add_parser("import", help="add the runs of a .zip bundle (checked like any run)")
    im.add_argument("file")
    im.add_argument("--out", default=DEFAULT_ROOT, help=f"checkpoints folder (default {DEFAULT_ROOT})")

    _add_experiment_commands(commands, DEFAULT_ROOT)
    return parser


def _add_ray_option(parser: argparse.ArgumentParser) -> None:
    """--ray for every subcommand that trains: where the training runs (this process by default)."""
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="train on a Ray cluster: 'local' starts one in this process, 'auto' joins the one "
                             "`ray start` runs here, host:port joins that head node")


def _add_experiment_commands(commands, default_root: str) -> None:
    from core.experiments import OBJECTIVES, PRESETS

    ex = commands.add_parser(
        "experiment", help="run a preset or a grid of runs as one experiment",
        description="Run every variant of a preset or a grid as background jobs (the app lists the experiment "
                    "and its runs); the options of train override the base settings.")
    what = ex.add_argument_group("experiment")
    what.add_argument("--preset", choices=list(PRESETS), help="a homework question's experiment")
    what.add_argument("--grid", action="append", default=[], metavar="PATH=VALUES",
                      help="a factor and its values, e.g. model.latent=2,4,6 (repeat for a product; with "
                           "--preset it replaces that factor's values); a list setting takes lists with '-' "
                           "between their numbers, e.g. model.hidden=1000-500-250,256-64 or "
                           "data.exclude_classes=1,7")
    _add_run_options(ex, required=False)
    _add_experiment_output(ex, default_root)
    _add_ray_option(ex)

    se = commands.add_parser(
        "search", help="an Optuna search over settings, run as one experiment",
        description="Search settings with Optuna: each trial is a run; poor trials are pruned by the median "
                    "rule on their per-epoch validation loss.")
    what = se.add_argument_group("search")
    what.add_argument("--space", action="append", default=[], metavar="PATH=RANGE",
                      help="e.g. train.lr=1e-4:1e-1:log, model.latent=2,4,8,16, model.dropout=0:0.5 "
                           "(default: the search preset's lr, latent, dropout and batch size)")
    what.add_argument("--trials", type=int, default=20, help="how many trials (default 20)")
    what.add_argument("--objective", choices=list(OBJECTIVES), default="val_loss")
    what.add_argument("--direction", choices=("minimize", "maximize"),
                      help="default: minimize a loss, maximize an accuracy")
    what.add_argument("--prune", action=argparse.BooleanOptionalAction, default=None,
                      help="stop trials whose validation loss trails the median (default: on, except for "
                           "probe_accuracy)")
    what.add_argument("--seed-sampler", type=int, default=0, help="the sampler's seed (default 0)")
    _add_run_options(se, required=False)
    _add_experiment_output(se, default_root)
    _add_ray_option(se)

    xs = commands.add_parser("experiments", help="list the saved experiments")
    xs.add_argument("--out", default=default_root, help=f"checkpoints folder (default {default_root})")


def _add_experiment_output(parser: argparse.ArgumentParser, default_root: str) -> None:
    out = parser.add_argument_group("output")
    out.add_argument("--out", default=default_root, help=f"checkpoints folder (default {default_root})")
    out.add_argument("--name", help="experiment name (default: the preset's, or grid / search)")
    out.add_argument("--jobs", type=int, default=1, help="runs trained at the same time (default 1)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the app would build from the same choices; unset options keep the defaults."""
    cfg = apply_run_options(RunConfig(), args)
    cfg.name = args.name or ""
    return cfg


def apply_run_options(cfg: RunConfig, args: argparse.Namespace) -> RunConfig:
    """Set on cfg (in place; returned) every data, model and training option given on the
    command line; options not given leave cfg as it is."""
    data, model, train = cfg.data, cfg.model, cfg.train
    _set(data, "dataset", args.dataset)
    _set(data, "data_root", args.data_root)
    _set(data, "folder", args.folder)
    _set(data, "image_size", args.image_size)
    _set(data, "channels", args.channels)
    _set(data, "limit", args.limit)
    _set(data, "exclude_classes", args.exclude_classes)
    _set(data, "val_fraction", args.val_fraction)
    _set(data, "test_fraction", args.test_fraction)
    _set(data, "seed", args.seed)
    _set(data, "download", args.download)
    _set(data, "balanced", args.balanced)

    if args.model == "dense":
        model.family = "dense"
    elif args.model:
        model.family, model.preset = "conv", args.model.split("-", 1)[1]
    _set(model, "hidden", args.hidden)
    _set(model, "channels", args.conv_channels)
    _set(model, "latent", args.latent)
    _set(model, "dropout", args.dropout)
    _set(model, "activation", args.activation)
    _set(model, "output_activation", args.output_activation)
    _set(model, "beta", args.beta)
    _set(model, "vae", args.vae)
    _set(model, "conditional", args.conditional)

    _set(train, "noise_factor", args.noise)
    _set(train, "optimizer", args.optimizer)
    _set(train, "lr", args.lr)
    _set(train, "batch_size", args.batch_size)
    _set(train, "epochs", args.epochs)
    _set(train, "weight_decay", args.weight_decay)
    _set(train, "loss", args.loss)
    _set(train, "patience", args.patience)
    _set(train, "seed", args.seed)
    _set(train, "device", args.device)
    return cfg


def _set(obj: Any, attr: str, value: Any) -> None:
    if value is not None:
        setattr(obj, attr, value)


# ---------------------------------------------------------------- progress

class ProgressLine:
    """One line on a terminal redrawn with \\r; on a pipe or a log file it is redrawn rarely."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = 0.1 if self.tty else 5.0
        self.last_draw = -math.inf
        self.width = 0

    def draw(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < self.interval:
            return
        self.last_draw = now
        if self.tty:
            pad = max(self.width - len(text), 0)
            self.stream.write("\r" + text + " " * pad)
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
        self.width = 0

    def line(self, text: str) -> None:
        """A permanent line (the progress line is cleared first)."""
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()


def _bar(fraction: float, width: int = 20) -> str:
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class CliReporter:
    """core.train.TrainReporter that draws a progress bar and one line per epoch on stderr."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.progress = ProgressLine(stream)
        self.total_epochs = 0
        self.batches_per_epoch = 1

    def on_start(self, total_epochs: int, batches_per_epoch: int, film_originals) -> None:
        self.total_epochs, self.batches_per_epoch = total_epochs, max(batches_per_epoch, 1)

    def on_batch(self, epoch: int, batch: int, loss: float) -> None:
        fraction = batch / self.batches_per_epoch
        self.progress.draw(f"epoch {epoch}/{self.total_epochs} {_bar(fraction)} {fraction:4.0%} loss {loss:.4f}",
                           force=batch == 1)

    def on_epoch(self, record, film_frame) -> None:
        self.progress.line(
            f"epoch {record.epoch}/{self.total_epochs}  train {record.train_loss:.4f}  val {record.val_loss:.4f}  "
            f"{record.seconds:.1f} s/epoch  {record.images_per_s:,.0f} img/s")


def _loading_progress(progress: ProgressLine, label: str):
    def report(done: int, total: int) -> None:
        if total:
            progress.draw(f"loading {label} {_bar(done / total)} {done}/{total}", force=done >= total)
        else:
            progress.draw(f"loading {label} {done}", force=False)
    return report


# ---------------------------------------------------------------- commands

def _print_json(obj: dict, out: TextIO) -> None:
    print(json.dumps(obj), file=out, flush=True)


def _load_data(cfg: DataConfig, err: TextIO, limits=None):
    from core.data import load_dataset

    progress = ProgressLine(err)
    from core.serving.limits import WorkLimits

    # limits: the folder walk's bounds; none by default (the CLI reads any folder it is given)
    dataset = load_dataset(cfg, progress=_loading_progress(progress, cfg.dataset),
                           limits=limits or WorkLimits.unlimited())
    progress.clear()
    sizes = " / ".join(f"{split} {int(dataset.splits[split].numel())}" for split in ("train", "val", "test")
                       if split in dataset.splits)
    shape = "×".join(map(str, dataset.shape))
    progress.line(f"data {dataset.name}: {len(dataset.images)} images of {shape}, {sizes} ({dataset.source})")
    if dataset.skipped:
        progress.line(f"skipped {len(dataset.skipped)} unreadable file(s), e.g. {dataset.skipped[0][0]}: "
                      f"{dataset.skipped[0][1]}")
    return dataset


def cmd_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.checkpoints import check_name, default_run_name, save_run, taken_note
    from core.data import fill_model_shape
    from core.models import build_model
    from dataclasses import replace

    from core.serving.limits import WorkLimits, check_batch, check_model, check_run

    cfg = config_from_args(args)
    limits = WorkLimits.unlimited() if args.no_limits else WorkLimits.from_env()
    check_run(cfg, limits)  # before any data is read or any layer allocated
    root = Path(args.out)
    if args.name:
        check_name(args.name)
        if (root / args.name).exists():
            raise UserError(f"A run named {args.name} already exists in {root}; choose another --name or delete it.")

    # The CLI reads any folder, of any size (its user has a shell anyway): the walk is not bounded.
    walk = replace(limits, max_images=WorkLimits.unlimited().max_images, max_walk_seconds=float("inf"),
                   max_walk_depth=WorkLimits.unlimited().max_walk_depth)
    dataset = _load_data(cfg.data, err, walk)
    fill_model_shape(cfg.model, dataset)
    check_model(cfg.model, limits)
    check_batch(cfg.model, cfg.train.batch_size, limits)
    params = sum(p.numel() for p in build_model(cfg.model).parameters())  # also checks the settings early
    reporter = CliReporter(err)
    reporter.progress.line(f"model {default_run_name(cfg)}: {params:,} parameters; training for "
                           f"{cfg.train.epochs} epochs (Ctrl-C stops and saves)")

    stop_event = threading.Event()

    def on_interrupt(signum, frame):
        if stop_event.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: quit without waiting
        stop_event.set()
        reporter.progress.line("stopping after the current batch; the best weights so far will be saved "
                               "(Ctrl-C again quits without saving)")

    runner = _runner(args)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main_thread else None
    started = time.perf_counter()
    try:
        result = runner.train(cfg, dataset, reporter, stop_event)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
        runner.shutdown()
    seconds = time.perf_counter() - started
    reporter.progress.clear()

    summary: dict[str, Any] = {
        "run": None, "path": None, "status": result.status, "message": result.message,
        "epochs": len(result.history), "best_epoch": getattr(result, "best_epoch", None),
        "train_loss": None, "val_loss": None,
        "test_mse": _finite(result.test_metrics.get("mse")), "test_mae": _finite(result.test_metrics.get("mae")),
        "seconds": round(seconds, 3), "device": result.device, "dataset": cfg.data.dataset,
        "model": default_run_name(cfg), "backend": runner.backend,
        "step": getattr(result, "step", "eager"),  # "cuda-graph" or "eager"; the run's info says why
    }
    if result.history:
        best = min(result.history, key=lambda r: r.val_loss if math.isfinite(r.val_loss) else math.inf)
        summary.update(train_loss=_finite(best.train_loss), val_loss=_finite(best.val_loss), best_epoch=best.epoch)
        # The name is reserved atomically: another process saving at the same moment never makes
        # this one lose its weights (an unnamed run takes the next free name; a named one that was
        # taken meanwhile is kept under a new name, and the message says so).
        path = save_run(root, args.name or default_run_name(cfg), cfg, result,
                        extra_info={"seconds": round(seconds, 3), "source": "cli"},
                        on_taken="rename" if args.name else "next")
        name = path.name
        renamed = f" {taken_note(args.name, name)}" if args.name and name != args.name else ""
        summary.update(run=name, path=str(path))
        if renamed:
            summary["message"] = result.message + renamed
        reporter.progress.line(f"{result.message}{renamed} Saved as {name} in {root}.")
    else:
        reporter.progress.line(f"{result.message} Nothing was saved.")
    _print_json(summary, out)
    return 0 if result.history else EXIT_NOTHING_SAVED


def _runner(args: argparse.Namespace):
    """Where `train` runs: this process, or the Ray cluster --ray names (an unreachable one is an
    error here, not a silent fallback: the command line asked for it)."""
    from core.jobs import LocalRunner

    if not getattr(args, "ray", None):
        return LocalRunner()
    from core.jobs.ray_runner import RayRunner

    return RayRunner(args.ray)


def _fmt_number(value: Any) -> str:
    number = _finite(value)
    return "-" if number is None else f"{number:.4g}"


def format_table(rows: list[dict]) -> str:
    columns = [("name", "name"), ("dataset", "dataset"), ("model", "model"), ("latent", "latent"),
               ("epochs", "epochs_run"), ("val loss", "val_loss"), ("test MSE", "test_mse"), ("status", "status")]
    numeric = {"val_loss", "test_mse"}
    cells = [[_fmt_number(r.get(key)) if key in numeric else ("-" if r.get(key) is None else str(r.get(key)))
              for _, key in columns] for r in rows]
    widths = [max([len(title)] + [len(row[i]) for row in cells]) for i, (title, _) in enumerate(columns)]
    right = {i for i, (_, key) in enumerate(columns) if key in numeric | {"latent", "epochs_run"}}

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))

    lines = [fmt([title for title, _ in columns]), fmt(["-" * w for w in widths])]
    lines += [fmt(row) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.checkpoints import list_runs

    rows = list_runs(args.out)
    if not rows:
        print(f"No saved runs in {args.out}.", file=out)
        return 0
    print(format_table(rows), file=out)
    for row in rows:  # why a run is damaged (the table only says that it is)
        if row.get("status") == "damaged" and row.get("message"):
            print(row["message"], file=err)
    return 0


def cmd_eval(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.checkpoints import load_run
    from core.train import evaluate, resolve_device

    run = load_run(args.out, args.run)
    cfg = run.config.data
    _set(cfg, "data_root", args.data_root)
    _set(cfg, "folder", args.folder)
    dataset = _load_data(cfg, err)
    model_cfg = run.model.cfg
    want = (model_cfg.in_channels, model_cfg.image_size, model_cfg.image_size)
    if tuple(dataset.shape) != want:
        raise UserError(f"Run {run.name} takes {'×'.join(map(str, want))} images but the dataset now gives "
                        f"{'×'.join(map(str, dataset.shape))}; point --data-root or --folder at the data it was "
                        "trained on.")
    images, labels = dataset.split("test")
    if len(images) == 0:
        raise UserError(f"The test split of run {run.name}'s dataset is empty, so there is nothing to evaluate.")
    metrics = evaluate(run.model, images, labels, resolve_device(args.device))
    _print_json({"run": run.name, "test_mse": _finite(metrics["mse"]), "test_mae": _finite(metrics["mae"]),
                 "images": int(len(images)), "saved_test_mse": _finite(run.test_metrics.get("mse"))}, out)
    return 0


# ---------------------------------------------------------------- experiments

def _experiment_from_args(args: argparse.Namespace):
    from core.experiments import PRESETS, ExperimentConfig, SearchConfig, parse_space, parse_values, preset_experiment
    from core.experiments.presets import DEFAULT_EPOCHS

    def split(option: str, text: str) -> tuple[str, str]:
        path, sep, values = text.partition("=")
        if not sep or not path.strip() or not values.strip():
            raise UserError(f"--{option} {text!r} needs the form path=values, e.g. model.latent=2,4,6.")
        return path.strip(), values.strip()

    if args.command == "experiment":
        if not args.preset and not args.grid:
            raise UserError("Give --preset NAME or one or more --grid path=values (with a preset, --grid "
                            "replaces the values of that factor).")
        if args.preset:
            exp = preset_experiment(args.preset)
        else:
            base = RunConfig()
            base.train.epochs = DEFAULT_EPOCHS
            exp = ExperimentConfig(name="grid", base=base)
        for text in args.grid:
            path, values = split("grid", text)
            exp.grid[path] = parse_values(values, path)
    else:
        preset = PRESETS["search"]
        exp = preset_experiment("search")
        if args.space:
            exp.search = SearchConfig(space={})
            for text in args.space:
                path, values = split("space", text)
                exp.search.space[path] = parse_space(path, values)
        prune = args.prune if args.prune is not None else args.objective != "probe_accuracy"
        exp.search.trials, exp.search.objective, exp.search.prune = args.trials, args.objective, prune
        exp.search.direction, exp.search.seed = args.direction or "", args.seed_sampler
        exp.question = preset.question if not args.space else ""
        exp.preset = "search"
    apply_run_options(exp.base, args)
    exp.name = args.name or exp.name
    if args.jobs < 1:
        raise UserError("--jobs must be 1 or more.")
    return exp.check()


def _shared_loader(err: TextIO):
    """load_data for the registry: each dataset is read once and shared by every variant."""
    lock = threading.Lock()
    loaded: dict[str, Any] = {}

    def load(cfg: DataConfig):
        key = RunConfig(data=cfg).to_json()
        with lock:
            if key not in loaded:
                loaded[key] = _load_data(cfg, err)
            return loaded[key]
    return load


def _variant_line(total: int, v: dict) -> str:
    text = f"[{v['index'] + 1}/{total}] {v['label']}: {v['status']}"
    if v["status"] == "running" and v["epoch"]:
        text += f" epoch {v['epoch']}/{v['total_epochs']}"
    if v.get("val_loss") is not None:
        text += f"  val {v['val_loss']:.4f}"
    if v.get("test_mse") is not None:
        text += f"  test MSE {v['test_mse']:.4f}"
    if v.get("trial_state") in ("pruned", "failed"):
        text += f" ({v['trial_state']})"
    return text


def cmd_experiment(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.jobs import JobRegistry

    exp = _experiment_from_args(args)
    load = _shared_loader(err)
    registry = JobRegistry(root=args.out, max_concurrent=args.jobs, load_data=load, runner=_runner(args))
    try:
        return _drive_experiment(exp, registry, load, args, out, err)
    finally:
        registry.runner.shutdown()


def _drive_experiment(exp, registry, load, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.experiments import ExperimentManager, experiment_summary, variant_count

    manager = ExperimentManager(registry, poll_seconds=0.2)
    progress = ProgressLine(err)
    count = variant_count(exp)
    kind = f"{count} trials" if exp.search else f"{count} runs"
    progress.line(f"experiment {exp.name}: {kind}, {args.jobs} at a time (Ctrl-C stops it; finished runs are kept)")
    if exp.question:
        progress.line(exp.question)
    name = manager.start(exp)
    shown: dict[int, str] = {}
    interrupted = False
    while True:
        try:
            record = manager.wait(name, timeout=1.0)
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            manager.stop(name)
            progress.line("stopping the experiment: queued runs are dropped, running ones saved")
            continue
        total = max(count, len(record["variants"]))
        for v in record["variants"]:
            line = _variant_line(total, v)
            if v["status"] not in ("queued", "loading") and shown.get(v["index"]) != line:
                shown[v["index"]] = line
                if v["status"] == "running":
                    progress.draw(line)
                else:
                    progress.line(line)
        if not manager.is_running(name):
            break
    summary = experiment_summary(record, args.out, load_data=load)
    progress.line(f"{record['message']} Experiment {name} in {args.out}.")
    _print_json(summary, out)
    return 0 if any(r["run"] for r in summary["runs"]) else EXIT_NOTHING_SAVED


def cmd_experiments(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.experiments import list_records

    records = list_records(args.out)
    if not records:
        print(f"No saved experiments in {args.out}.", file=out)
        return 0
    rows = []
    for r in records:
        saved = sum(1 for v in r.get("variants", []) if v.get("run"))
        best = r.get("best") or {}
        rows.append({"name": r["name"], "preset": r["config"].get("preset") or "grid", "status": r.get("status"),
                     "runs": f"{saved}/{len(r.get('variants', []))}", "best": best.get("run") or "-",
                     "value": _fmt_number(best.get("value")), "created": (r.get("created") or "")[:19]})
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(row[c])) for row in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip(), file=out)
    print("  ".join("-" * widths[c] for c in columns), file=out)
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip(), file=out)
    return 0


def cmd_resume(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.checkpoints import load_resume, load_run, save_run

    if args.epochs < 1:
        raise UserError(f"Resume for at least 1 more epoch, not {args.epochs}.")
    root = Path(args.out)
    cfg = load_run(root, args.run).config
    resume = load_resume(root, args.run)
    done = len(resume.history)
    cfg.train.epochs = done + args.epochs
    _set(cfg.data, "data_root", args.data_root)
    _set(cfg.data, "folder", args.folder)
    dataset = _load_data(cfg.data, err)
    reporter = CliReporter(err)
    reporter.progress.line(f"resuming {args.run} at epoch {done + 1} for {args.epochs} more epoch(s) "
                           "(Ctrl-C stops and saves)")
    stop_event = threading.Event()

    def on_interrupt(signum, frame):
        if stop_event.is_set():
            raise KeyboardInterrupt
        stop_event.set()
        reporter.progress.line("stopping after the current batch; the run will be saved")

    runner = _runner(args)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main_thread else None
    try:
        result = runner.train(cfg, dataset, reporter, stop_event, resume=resume)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
        runner.shutdown()
    reporter.progress.clear()
    trained = len(result.history) - done
    if trained > 0:
        save_run(root, args.run, cfg, result, overwrite=True,
                 extra_info={"seconds": round(sum(r.seconds for r in result.history), 3), "source": "cli"})
        reporter.progress.line(f"{result.message} Saved {args.run} again in {root}.")
    else:
        reporter.progress.line(f"{result.message} Nothing new was trained, so {args.run} is unchanged.")
    _print_json({"run": args.run, "status": result.status, "message": result.message, "epochs": len(result.history),
                 "new_epochs": trained, "best_epoch": result.best_epoch,
                 "test_mse": _finite(result.test_metrics.get("mse")), "backend": runner.backend}, out)
    return 0 if trained > 0 else EXIT_NOTHING_SAVED


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.bundles import export_runs

    target = Path(args.to)
    if target.exists():
        raise UserError(f"{target} already exists; choose another --to or delete it first.")
    partial = target.with_name(f".{target.name}.part")
    try:
        export_runs(args.out, args.runs, partial)
        os.replace(partial, target)
    except OSError as exc:
        raise UserError(f"Could not write {target}: {exc.strerror or exc}.") from None
    finally:
        if partial.exists():
            partial.unlink()
    _print_json({"bundle": str(target), "runs": list(dict.fromkeys(args.runs)), "bytes": target.stat().st_size}, out)
    return 0


def cmd_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.bundles import import_runs

    if not Path(args.file).is_file():
        raise UserError(f"There is no file {args.file}; give the path of a .zip made by export.")
    imported = import_runs(args.out, args.file)
    for run in imported:
        print(run.sentence(), file=err)
    _print_json({"imported": [{"from": r.name_in_bundle, "run": r.name, "renamed": r.renamed} for r in imported]},
                out)
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    from core.bundles import BundleError
    from core.checkpoints import CheckpointError
    from core.data import DataError
    from core.experiments import ExperimentError
    from core.jobs import RunnerError

    return (UserError, CheckpointError, DataError, ExperimentError, ValueError, RunnerError, BundleError)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"train": cmd_train, "list": cmd_list, "eval": cmd_eval, "resume": cmd_resume,
                "export": cmd_export, "import": cmd_import, "experiment": cmd_experiment,
                "search": cmd_experiment, "experiments": cmd_experiments}
    if args.command not in commands:
        parser.print_help(err)
        return EXIT_USER_ERROR
    try:
        try:
            return commands[args.command](args, out, err)
        except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            from core.serving.limits import out_of_memory_message

            message = out_of_memory_message(exc, getattr(args, "device", "") or "")
            if message is None:
                raise
            raise UserError(message) from None
    except _user_errors() as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"\nerror: {message}" if _progress_pending(err) else f"error: {message}", file=err)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\nerror: interrupted; nothing was saved.", file=err)
        return 130


def _progress_pending(stream: TextIO) -> bool:
    # A half-drawn progress line on a terminal would swallow the start of the error line.
    return bool(getattr(stream, "isatty", lambda: False)())


if __name__ == "__main__":
    sys.exit(main())
