"""The one save policy for trained results, used by the registry's jobs and the CLI alike.

- A new run takes its name atomically (core.checkpoints.reserve_run_name): an unnamed run the next
  free default name, a named one whose name was taken (or was not a valid run name) a new name,
  and its message says so.
- A resumed run is saved into its own folder (the previous save stays until the new one is
  complete) when it trained beyond `base_epochs`; otherwise it is left unchanged. A copy is a new
  run under the name its student gave.
- A failed save raises CheckpointError (one sentence) and leaves the result with the caller, who
  keeps it for Save again (the registry) or asks at the terminal (the CLI).
- `run_lock` keeps two processes from resuming one run at once (an epoch would be lost).
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from core.checkpoints import CheckpointError, check_name, save_run, taken_note

logger = logging.getLogger(__name__)

LOCK_DIR = ".locks"


@dataclass
class SavedRun:
    name: str | None  # None: nothing was saved (no epoch, or nothing new)
    message: str  # the result's message with what the save adds (a new name, nothing saved)


def save_result(root, cfg, result, *, name: str, named: bool = True, overwrite: bool = False,
                base_epochs: int = 0, info: dict | None = None, owner: str | None = None,
                owner_key: str | None = None) -> SavedRun:
    """Save `result` (a TrainResult) of `cfg` under `name` as the policy above says.

    named: the name was chosen by someone (kept under a new name, said, when taken) rather than
    made from the settings (the next free one, quietly). overwrite: save into the existing run
    `name` (a resume; the caller checked who may), which keeps its owner. `owner` (a raw id), or
    only its `owner_key` (a job restored after a restart): whose new run it is."""
    if len(result.history) <= base_epochs:
        if overwrite:
            return SavedRun(name, f"{result.message} Nothing new was trained, so {name} is unchanged.".strip())
        return SavedRun(None, result.message)
    extra = dict(info or {})
    if overwrite:  # the run keeps its recorded owner
        extra["seconds"] = round(sum(r.seconds for r in result.history), 3)
        path = save_run(root, name, cfg, result, extra_info=extra, overwrite=True)
        return SavedRun(path.name, result.message)
    path = save_run(root, name, cfg, result, extra_info=extra, on_taken="rename" if named else "next", owner=owner,
                    owner_recorded=owner_key)
    note = taken_note(name, path.name) if named else ""
    return SavedRun(path.name, f"{result.message} {note}".strip())


def kept_info(info: dict) -> dict:
    """What a run's info.json keeps when it is trained further (its owner is kept by save_run itself)."""
    return {key: info[key] for key in ("experiment", "factors") if key in info}


def save_retrying(save: Callable[[], SavedRun], ask: Callable[[str], bool] | None) -> SavedRun:
    """save(); when it fails, `ask(sentence)` whether to try again (the trained result is still in
    memory: a person at a terminal can free some space first). Without `ask`, or declined, the
    CheckpointError is raised."""
    while True:
        try:
            return save()
        except CheckpointError as exc:
            logger.warning("save failed: %s", exc)
            if ask is None or not ask(str(exc)):
                raise


def ask_on_terminal(stdin, err) -> Callable[[str], bool] | None:
    """An `ask` for save_retrying that asks at the terminal; None when stdin is not one (a script)."""
    if not getattr(stdin, "isatty", lambda: False)():
        return None

    def ask(sentence: str) -> bool:
        print(f"{sentence}\nThe trained model is still in memory. Save again? [Y/n] ", end="", file=err, flush=True)
        answer = stdin.readline()
        return bool(answer) and answer.strip().lower() in ("", "y", "yes")

    return ask


class RunBusy(CheckpointError):
    """Another job or process is resuming the run right now; one sentence."""


@contextmanager
def run_lock(root, name: str) -> Iterator[None]:
    """Hold the run `name` for a resume, across threads and processes (fcntl.flock on
    <root>/.locks/<name>.lock, outside the run's folder, which a save replaces). The lock ends
    with the process, so a crash leaves nothing stale; RunBusy when someone else holds it."""
    check_name(name)
    folder = Path(root) / LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise RunBusy(f"Run {name} is being trained further right now (by another job or command); "
                          "wait until that finishes, then resume it.") from None
        yield
    finally:
        os.close(fd)  # releases the lock
