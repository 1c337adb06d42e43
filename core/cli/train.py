"""`train` and `resume`: one run trained in this process (or on Ray) and saved as the app saves it."""
from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from core.cli.options import DEVICE_CHOICES, add_data_location_options, add_limits_option, add_out_option
from core.cli.options import add_ray_option, add_run_options, config_from_args, set_if_given, work_limits
from core.cli.output import EXIT_NOTHING_SAVED, CliReporter, ProgressLine, UserError, load_data, make_runner
from core.cli.output import print_json
from core.config import finite_or_none


def register(commands) -> None:
    t = commands.add_parser("train", help="train an autoencoder and save it as a run",
                            description="Train an autoencoder and save it as a run (the app lists it too).")
    add_run_options(t, required=True)
    out = t.add_argument_group("output")
    add_out_option(out)
    out.add_argument("--name", help="run name (default: made from the dataset and model)")
    add_ray_option(t)
    add_limits_option(t)
    t.set_defaults(handler=cmd_train)

    rs = commands.add_parser("resume", help="train a saved run for more epochs",
                             description="Continue a stopped or finished run from its last weights and optimiser "
                                         "state; the run is saved again under its name, its curves continued.")
    rs.add_argument("run")
    rs.add_argument("--epochs", type=int, required=True, help="how many more epochs")
    add_out_option(rs)
    add_data_location_options(rs)
    rs.add_argument("--device", choices=DEVICE_CHOICES,
                    help="where to train (default: the run's own setting; e.g. cpu continues a run trained on a "
                         "GPU machine on a laptop)")
    add_ray_option(rs)
    add_limits_option(rs)
    rs.set_defaults(handler=cmd_resume)


def train_interruptibly(args: argparse.Namespace, cfg, dataset, reporter: CliReporter, stopping: str,
                        resume=None):
    """Train through the runner --ray chooses; the first Ctrl-C stops after the current batch
    (printing `stopping`) and the result is returned as usual, a second one quits at once."""
    stop_event = threading.Event()

    def on_interrupt(signum, frame):
        if stop_event.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: quit without waiting
        stop_event.set()
        reporter.progress.line(stopping)

    runner = make_runner(args)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main_thread else None
    try:
        result = runner.train(cfg, dataset, reporter, stop_event, resume=resume)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
        runner.shutdown()
    reporter.progress.clear()
    return result, runner.backend


def _prepare_train(args: argparse.Namespace, err: TextIO):
    """The checked config and its dataset: every limit and the name are checked before any
    training (the limits before any data is read or any layer allocated)."""
    from dataclasses import replace

    from core.checkpoints import check_name
    from core.data import fill_model_shape
    from core.models import build_model
    from core.serving.limits import WorkLimits, check_batch, check_model, check_run

    cfg = config_from_args(args)
    limits = work_limits(args)
    if args.epochs is None:  # fitted to the data below; until then only what the limit allows
        cfg.train.epochs = min(cfg.train.epochs, limits.max_epochs)
    check_run(cfg, limits)
    root = Path(args.out)
    if args.name:
        check_name(args.name)
        if (root / args.name).exists():
            raise UserError(f"A run named {args.name} already exists in {root}; choose another --name or delete it.")

    # The CLI reads any folder, of any size (its user has a shell anyway): the walk is not bounded.
    walk = replace(limits, max_images=WorkLimits.unlimited().max_images, max_walk_seconds=float("inf"),
                   max_walk_depth=WorkLimits.unlimited().max_walk_depth)
    dataset = load_data(cfg.data, err, walk)
    fit_training_defaults(args, cfg, len(dataset.splits["train"]), limits, ProgressLine(err))
    fill_model_shape(cfg.model, dataset)
    check_model(cfg.model, limits)
    check_batch(cfg.model, cfg.train.batch_size, limits)
    params = sum(p.numel() for p in build_model(cfg.model).parameters())  # also checks the settings early
    return cfg, dataset, params


def fit_training_defaults(args: argparse.Namespace, cfg, train_images: int, limits, progress: ProgressLine) -> None:
    """The batch size and epochs not given on the command line are fitted to the training split's
    size, as the Train page starts its form (core.defaults); the page's few-steps warning too."""
    from core.defaults import few_steps_warning, suggested_training

    suggestion = suggested_training(train_images)
    fitted = []
    if args.batch_size is None:
        cfg.train.batch_size = suggestion.batch_size
        fitted.append(f"batch {cfg.train.batch_size}")
    if args.epochs is None:
        cfg.train.epochs = min(suggestion.epochs, limits.max_epochs)
        fitted.append(f"{cfg.train.epochs} epochs")
    if fitted:
        progress.line(f"fitted to this dataset: {' and '.join(fitted)} (--batch-size, --epochs choose others). "
                      f"Suggested: batch {suggestion.batch_size}, {suggestion.epochs} epochs. {suggestion.reason}")
    warning = few_steps_warning(train_images, cfg.train.batch_size)
    if warning:
        progress.line(f"warning: {warning}")


def cmd_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.checkpoints import default_run_name

    cfg, dataset, params = _prepare_train(args, err)
    reporter = CliReporter(err)
    reporter.progress.line(f"model {default_run_name(cfg)}: {params:,} parameters; training for "
                           f"{cfg.train.epochs} epochs (Ctrl-C stops and saves)")
    started = time.perf_counter()
    result, backend = train_interruptibly(
        args, cfg, dataset, reporter, "stopping after the current batch; the best weights so far will be saved "
                                      "(Ctrl-C again quits without saving)")
    seconds = time.perf_counter() - started
    summary = _train_summary(cfg, result, seconds, backend)
    saved = bool(result.history) and _save_trained(args, cfg, result, seconds, summary, reporter, err)
    if not result.history:
        reporter.progress.line(f"{result.message} Nothing was saved.")
    print_json(summary, out)
    return 0 if saved else EXIT_NOTHING_SAVED


def _train_summary(cfg, result, seconds: float, backend: str) -> dict[str, Any]:
    from core.checkpoints import default_run_name

    summary: dict[str, Any] = {
        "run": None, "path": None, "status": result.status, "message": result.message,
        "epochs": len(result.history), "best_epoch": getattr(result, "best_epoch", None),
        "train_loss": None, "val_loss": None,
        "test_mse": finite_or_none(result.test_metrics.get("mse")),
        "test_mae": finite_or_none(result.test_metrics.get("mae")),
        "seconds": round(seconds, 3), "device": result.device, "dataset": cfg.data.dataset,
        "model": default_run_name(cfg), "backend": backend,
        "step": getattr(result, "step", "eager"),  # "cuda-graph" or "eager"; the run's info says why
    }
    if result.history:
        best = min(result.history, key=lambda r: r.val_loss if math.isfinite(r.val_loss) else math.inf)
        summary.update(train_loss=finite_or_none(best.train_loss), val_loss=finite_or_none(best.val_loss),
                       best_epoch=best.epoch)
    return summary


def _save_trained(args: argparse.Namespace, cfg, result, seconds: float, summary: dict, reporter: CliReporter,
                  err: TextIO) -> bool:
    """Save a trained run through the app's save policy (core.jobs.saving): the name is reserved
    atomically (an unnamed run takes the next free name; a named one that was taken meanwhile is
    kept under a new name, and the message says so); a failed save asks at a terminal whether to
    try again (the model is still in memory). False, with the sentence said, when it was not saved."""
    from core.checkpoints import CheckpointError, default_run_name
    from core.jobs.saving import ask_on_terminal, save_result, save_retrying

    root = Path(args.out)
    try:
        saved = save_retrying(lambda: save_result(root, cfg, result, name=args.name or default_run_name(cfg),
                                                  named=bool(args.name),
                                                  info={"seconds": round(seconds, 3), "source": "cli"}),
                              ask_on_terminal(sys.stdin, err))
    except CheckpointError as exc:
        summary["message"] = str(exc)
        reporter.progress.line(f"error: {exc}")
        return False
    summary.update(run=saved.name, path=str(root / saved.name), message=saved.message)
    reporter.progress.line(f"{saved.message} Saved as {saved.name} in {root}.")
    return True


def cmd_resume(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.jobs.saving import run_lock

    if args.epochs < 1:
        raise UserError(f"Resume for at least 1 more epoch, not {args.epochs}.")
    # Held from loading the run to saving it: a second resume of it (here or in the app) is refused.
    with run_lock(Path(args.out), args.run):
        return _resume(args, out, err)


def _resume(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from core.checkpoints import CheckpointError, load_resume, load_run
    from core.jobs.saving import ask_on_terminal, kept_info, save_result, save_retrying
    from core.serving.limits import check_resume, check_run

    root = Path(args.out)
    run = load_run(root, args.run)
    cfg = run.config
    set_if_given(cfg.train, "device", args.device)
    set_if_given(cfg.data, "data_root", args.data_root)
    set_if_given(cfg.data, "folder", args.folder)
    resume = load_resume(root, args.run)
    done = len(resume.history)
    cfg.train.epochs = done + args.epochs
    limits = work_limits(args)  # the app's rule: the run's epochs in all, then the rest as for a new run
    check_resume(args.run, done, args.epochs, limits)
    check_run(cfg, limits)
    dataset = load_data(cfg.data, err)
    reporter = CliReporter(err)
    reporter.progress.line(f"resuming {args.run} at epoch {done + 1} for {args.epochs} more epoch(s) "
                           "(Ctrl-C stops and saves)")
    result, backend = train_interruptibly(args, cfg, dataset, reporter,
                                          "stopping after the current batch; the run will be saved", resume=resume)
    trained = len(result.history) - done
    summary = {"run": args.run, "status": result.status, "message": result.message, "epochs": len(result.history),
               "new_epochs": trained, "best_epoch": result.best_epoch,
               "test_mse": finite_or_none(result.test_metrics.get("mse")), "backend": backend}
    try:  # the app's save policy: into the run itself (keeping its owner and experiment), if anything is new
        saved = save_retrying(lambda: save_result(root, cfg, result, name=args.run, overwrite=True, base_epochs=done,
                                                  info={**kept_info(run.info), "source": "cli"}),
                              ask_on_terminal(sys.stdin, err))
    except CheckpointError as exc:
        reporter.progress.line(f"error: {exc}")
        print_json({**summary, "message": str(exc), "new_epochs": 0}, out)
        return EXIT_NOTHING_SAVED
    reporter.progress.line(saved.message + (f" Saved {args.run} again in {root}." if trained > 0 else ""))
    print_json(summary, out)
    return 0 if trained > 0 else EXIT_NOTHING_SAVED
