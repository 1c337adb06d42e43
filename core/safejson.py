"""JSON from files nobody vouches for (a run folder, an imported bundle, an experiment record).

`json.loads` on such a file can cost minutes (a 60 MB metrics.json re-read on every page view) or
raise a RecursionError (100,000 nested brackets) that no caller expects. Every reader of a run,
experiment or bundle file goes through here: the size is checked before a byte is parsed, and
every way the text can fail becomes one JsonFileError whose `reason` is a clause ("is not valid
JSON", "is larger than 16 MB", "is nested too deeply") for the caller's sentence. What the parsed
value must look like is the caller's business (core.checkpoints.files checks each field's type).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class JsonFileError(ValueError):
    """A JSON file that cannot be used; `reason` is a clause such as "is not valid JSON"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def megabytes(count: int) -> str:
    """e.g. "58 MB", "1.5 MB", "256 KB"."""
    if count >= 10 << 20:
        return f"{count / (1 << 20):,.0f} MB"
    return f"{count / (1 << 20):.1f}".rstrip("0").rstrip(".") + " MB" if count >= 1 << 20 else f"{count / 1024:,.0f} KB"


def parse_json(data: bytes, max_bytes: int) -> Any:
    """The value held by `data` (UTF-8 JSON of at most `max_bytes` bytes); JsonFileError otherwise."""
    if len(data) > max_bytes:
        raise JsonFileError(f"is larger than {megabytes(max_bytes)}")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:  # the C decoder stops at the interpreter's recursion limit
        raise JsonFileError("is nested too deeply") from None
    except (UnicodeDecodeError, ValueError):
        raise JsonFileError("is not valid JSON") from None


def read_json(path, max_bytes: int) -> Any:
    """The value in the JSON file at `path`, read only when it is at most `max_bytes` bytes.
    FileNotFoundError when it is missing (callers say "missing" rather than "damaged");
    JsonFileError for a file too large, unreadable, not UTF-8 JSON or nested too deeply."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise JsonFileError(f"is larger than {megabytes(max_bytes)}")
            data = f.read(max_bytes + 1)  # a file that grew since fstat is still cut off
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise JsonFileError("is a folder, not a file") from None
    except OSError as exc:
        raise JsonFileError(f"cannot be read ({exc.strerror or 'disk error'})") from None
    return parse_json(data, max_bytes)
