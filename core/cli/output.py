"""What every command shares: its user errors and exit codes, progress on stderr, one JSON
object on stdout, the data loading and the runner the training goes through."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any, TextIO

from core.config import DataConfig
from core.config import finite_or_none

EXIT_USER_ERROR = 2
EXIT_NOTHING_SAVED = 1
EXIT_UNEXPECTED = 3  # a bug: one line on stderr, the traceback in the log file


class UserError(Exception):
    """A mistake in the command line that argparse cannot see (e.g. a run name already taken)."""


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


def progress_bar(fraction: float, width: int = 20) -> str:
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
        self.progress.draw(f"epoch {epoch}/{self.total_epochs} {progress_bar(fraction)} {fraction:4.0%} "
                           f"loss {loss:.4f}", force=batch == 1)

    def on_epoch(self, record, film_frame) -> None:
        self.progress.line(
            f"epoch {record.epoch}/{self.total_epochs}  train {record.train_loss:.4f}  val {record.val_loss:.4f}  "
            f"{record.seconds:.1f} s/epoch  {record.images_per_s:,.0f} img/s")


def print_json(obj: dict, out: TextIO) -> None:
    print(json.dumps(obj), file=out, flush=True)


def fmt_number(value: Any) -> str:
    number = finite_or_none(value)
    return "-" if number is None else f"{number:.4g}"


def _loading_progress(progress: ProgressLine, label: str):
    def report(done: int, total: int) -> None:
        if total:
            progress.draw(f"loading {label} {progress_bar(done / total)} {done}/{total}", force=done >= total)
        else:
            progress.draw(f"loading {label} {done}", force=False)
    return report


def load_data(cfg: DataConfig, err: TextIO, limits=None, for_app: bool = True):
    """The dataset cfg names, with a loading bar and a one-line summary on err. for_app: runs
    trained on it are saved for the app, so say when the app (started from this environment)
    could not read this data, and how the teacher allows it."""
    from core.data import load_dataset
    from core.serving.limits import WorkLimits
    from core.serving.roots import app_reach_warning

    progress = ProgressLine(err)
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
    warning = app_reach_warning(cfg) if for_app else None
    if warning:
        progress.line(f"warning: {warning}")
    return dataset


def make_runner(args: argparse.Namespace):
    """Where the training runs: this process, or the Ray cluster --ray names (an unreachable one
    is an error here, not a silent fallback: the command line asked for it)."""
    from core.jobs import LocalRunner

    if not getattr(args, "ray", None):
        return LocalRunner()
    from core.jobs.ray_runner import RayRunner

    return RayRunner(args.ray)
