"""Logging for a teacher debugging a class: the standard library's `logging`, set up once.

Every module logs through `logging.getLogger(__name__)` (loggers under "core", "ui", "views").
`setup_logging(checkpoints_root)` (the app; the CLI without stderr) sends records to stderr and to a
rotating file `<checkpoints>/.logs/ae-lab.log` (5 files of 2 MB at most), so what happened to a
class survives the terminal: each job's life (queued, started, epochs, stopped, saved, failed with
its traceback), refused requests (limits, data roots, owners) and unexpected page errors with
tracebacks. Never logged: a student's data, a token, a raw owner id (log `short_owner(owner)`).
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path

LOG_DIR = ".logs"
LOG_FILE = "ae-lab.log"
LOG_LEVEL_ENV = "AE_LAB_LOG_LEVEL"
MAX_BYTES = 2 << 20
BACKUPS = 4
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
_LOGGERS = ("core", "ui", "views", "app")
_lock = threading.Lock()
_handlers: dict[str, logging.Handler] = {}  # "stderr" and "file": at most one of each per process


class _Stderr(logging.StreamHandler):
    """A handler on whatever sys.stderr is when a record comes (a test's captured stream, the
    terminal), not on the stream that was there when logging was set up."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def short_owner(owner: str | None) -> str:
    """How a log names an owner: the first characters of its key (enough to tell students apart,
    useless to act as one). None: "teacher/cli"."""
    if not owner:
        return "teacher/cli"
    from core.serving.access import owner_key

    return owner_key(owner)[:8]


def setup_logging(checkpoints_root=None, stderr: bool = True) -> Path | None:
    """Attach the stderr handler (unless stderr=False: the CLI, whose stderr is its progress and
    its one error line) and the rotating file under `checkpoints_root` to the project's loggers.
    Called again with another folder, the file moves there (one log file per process: tests and
    CLI calls in one process each write their own folder's). Returns the log file's path (None
    when no folder is given or it cannot be written: then stderr only)."""
    level = getattr(logging, os.environ.get(LOG_LEVEL_ENV, "INFO").strip().upper() or "INFO", logging.INFO)
    with _lock:
        if stderr and "stderr" not in _handlers:
            _attach("stderr", _Stderr())
        elif not stderr and "stderr" in _handlers:  # a CLI command in a process that served the app before
            _detach("stderr")
        path = None if checkpoints_root is None else log_file(checkpoints_root)
        current = _handlers.get("file")
        if path is not None and (current is None or current.baseFilename != str(path.resolve())):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                               encoding="utf-8", delay=True)
            except OSError:
                path = None
            else:
                _attach("file", handler)
        # Records still reach the root logger too (pytest's caplog, a host that configured logging);
        # `streamlit run` puts no handler there, so nothing is printed twice.
        for name in _LOGGERS:
            logging.getLogger(name).setLevel(level)
    return path


def _attach(kind: str, handler: logging.Handler) -> None:
    handler.setFormatter(logging.Formatter(FORMAT))
    old = _handlers.pop(kind, None)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if old is not None:
            logger.removeHandler(old)
        logger.addHandler(handler)
    if old is not None:
        old.close()
    _handlers[kind] = handler


def _detach(kind: str) -> None:
    handler = _handlers.pop(kind)
    for name in _LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def log_file(checkpoints_root) -> Path:
    """Where setup_logging(checkpoints_root) writes."""
    return Path(checkpoints_root) / LOG_DIR / LOG_FILE
