"""The parser and the dispatch. A command group is a module with `register(commands)`, which adds
its sub-parsers and sets each one's `handler(args, out, err) -> exit code`; COMMANDS lists them."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence, TextIO

from core.cli import experiments, runs, train
from core.cli.output import EXIT_USER_ERROR, UserError
from core.lessons import cli as lessons  # lesson list / lesson run / report

COMMANDS = (train.register, runs.register, experiments.register, lessons.register)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description="Autoencoder Lab from the terminal.")
    commands = parser.add_subparsers(dest="command")
    for register in COMMANDS:
        register(commands)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from core.bundles import BundleError
    from core.checkpoints import CheckpointError
    from core.data import DataError
    from core.experiments import ExperimentError
    from core.jobs import RunnerError

    return (UserError, CheckpointError, DataError, ExperimentError, ValueError, RunnerError, BundleError)


def _run_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The command's handler; running out of memory becomes the app's plain suggestion."""
    try:
        return args.handler(args, out, err)
    except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        from core.serving.limits import out_of_memory_message

        message = out_of_memory_message(exc, getattr(args, "device", "") or "")
        if message is None:
            raise
        raise UserError(message) from None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(err)
        return EXIT_USER_ERROR
    try:
        return _run_command(args, out, err)
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
