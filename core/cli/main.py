"""The parser and the dispatch. A command group is a module with `register(commands)`, which adds
its sub-parsers and sets each one's `handler(args, out, err) -> exit code`; COMMANDS lists them."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence, TextIO

from core.cli import experiments, runs, train
from core.cli.output import EXIT_UNEXPECTED, EXIT_USER_ERROR, UserError
from core.logs import setup_logging
from core.lessons import cli as lessons  # lesson list / lesson run / report

COMMANDS = (train.register, runs.register, experiments.register, lessons.register)
log = logging.getLogger(__name__)


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
    # The log file beside the runs (core.logs), not stderr: stderr is the progress and one error line.
    log_path = setup_logging(getattr(args, "out", None), stderr=False)
    command = args.command
    log.info("cli %s started", command)
    try:
        code = _run_command(args, out, err)
    except _user_errors() as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        log.info("cli %s refused: %s", command, message)
        _say(f"error: {message}", err)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        log.info("cli %s interrupted", command)
        print("\nerror: interrupted; nothing was saved.", file=err)
        return 130
    except Exception as exc:  # a bug, not a mistake of the user's: its traceback goes to the log
        log.exception("cli %s failed unexpectedly", command)
        where = f"; its traceback is in {log_path}" if log_path else ""
        _say(f"error: something unexpected went wrong ({type(exc).__name__}){where}. "
             "Please report it with that file.", err)
        return EXIT_UNEXPECTED
    log.info("cli %s ended with exit code %d", command, code)
    return code


def _say(line: str, err: TextIO) -> None:
    print(f"\n{line}" if _progress_pending(err) else line, file=err)


def _progress_pending(stream: TextIO) -> bool:
    # A half-drawn progress line on a terminal would swallow the start of the error line.
    return bool(getattr(stream, "isatty", lambda: False)())
