"""Logging for a teacher debugging a class: the standard library's `logging`, set up once.

Every module logs through `logging.getLogger(__name__)` (loggers under "core", "ui", "views").
`setup_logging(checkpoints_root)` (the app and the CLI call it once) sends records to stderr and to a
rotating file `<checkpoints>/.logs/ae-lab.log` (5 files of 2 MB at most), so what happened to a
class survives the terminal: each job's life (queued, started, epochs, stopped, saved, failed with
its traceback), refused requests (limits, data roots, owners) and unexpected page errors with
tracebacks. Never logged: a student's data, a token, a raw owner id (log `short_owner(owner)`).
"""
from __future__ import annotations

import logging
import logging.handlers
import os
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
_configured: set[str] = set()


def short_owner(owner: str | None) -> str:
    """How a log names an owner: the first characters of its key (enough to tell students apart,
    useless to act as one). None: "teacher/cli"."""
    if not owner:
        return "teacher/cli"
    from core.serving.access import owner_key

    return owner_key(owner)[:8]


def setup_logging(checkpoints_root=None, stderr: bool = True) -> Path | None:
    """Attach the stderr and rotating-file handlers to the project's loggers (once per process and
    folder); returns the log file's path (None when the folder cannot be written: stderr only)."""
    level = getattr(logging, os.environ.get(LOG_LEVEL_ENV, "INFO").strip().upper() or "INFO", logging.INFO)
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = []
    path = None
    with _lock:
        if stderr and "stderr" not in _configured:
            handler = logging.StreamHandler()
            handler.setFormatter(formatter)
            handlers.append(handler)
            _configured.add("stderr")
        if checkpoints_root is not None:
            folder = Path(checkpoints_root) / LOG_DIR
            path = folder / LOG_FILE
            key = str(path.resolve())
            if key not in _configured:
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                                   encoding="utf-8", delay=True)
                except OSError:
                    path = None
                else:
                    handler.setFormatter(formatter)
                    handlers.append(handler)
                    _configured.add(key)
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = False  # Streamlit's root handler would print every record twice
            for handler in handlers:
                logger.addHandler(handler)
    return path
