"""Atomic file writes, the one place the project writes a file that must never be half-written,
and folders reserved (a name taken once across processes) and removed (never seen half deleted).

A reader (another process, the next server after a kill) sees either the old content or the new
one: the bytes go into a temporary file in the same folder, are flushed to disk, renamed over the
target (atomic on POSIX and Windows), and the folder itself is flushed so the rename survives a
power cut. A failed write leaves the target as it was and no temporary file behind.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".part"  # temporary files are hidden: .<name>.<random>.part


def json_safe(value: Any) -> Any:
    """NaN/inf (a diverged run's losses) become None so the file stays standard JSON; keys become text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def fsync_dir(path) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_file(path, data: bytes) -> None:
    """Write `data` to a file in a folder that nobody else can see yet (a run's staging folder):
    flushed to disk, but not renamed; the caller renames the whole folder into place."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_bytes(path, data: bytes) -> Path:
    """Replace the file at `path` with `data` atomically; OSError (disk full, no permission) leaves it as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    try:
        write_file(tmp, data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)
    return path


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj: Any, indent: int | None = 2, sort_keys: bool = True) -> Path:
    """`obj` as standard JSON (NaN/inf as null), replaced atomically."""
    return write_bytes(path, json_dumps(obj, indent=indent, sort_keys=sort_keys).encode("utf-8"))


def json_dumps(obj: Any, indent: int | None = 2, sort_keys: bool = True) -> str:
    return json.dumps(json_safe(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)


# ---------------------------------------------------------------- folders

def reserve_folder(parent, base: str, take_next: bool = True) -> str:
    """Create parent/<base> (or, with take_next, the first free of base-2, base-3, ...) as an empty
    folder and return its name: os.mkdir either makes it or fails because another thread or process
    did, so a name is never given twice. FileExistsError when base is taken and not take_next."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    candidate, n = base, 2
    while True:
        try:
            os.mkdir(parent / candidate)
            return candidate
        except FileExistsError:
            if not take_next:
                raise
        candidate, n = f"{base}-{n}", n + 1


def remove_folder(path, hidden_prefix: str = ".deleting-") -> None:
    """Delete a folder so that nobody ever sees it half deleted: it is first renamed (atomically)
    to a hidden <prefix><name>-<hex> beside it, then removed. OSError when the rename fails
    (FileNotFoundError: it is gone already); the removal itself is best effort."""
    path = Path(path)
    aside = path.with_name(f"{hidden_prefix}{path.name}-{secrets.token_hex(4)}")
    os.rename(path, aside)
    shutil.rmtree(aside, ignore_errors=True)
