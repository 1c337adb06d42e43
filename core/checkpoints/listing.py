"""The list of saved runs: one flat row per run, for tables, pickers and comparisons.

Every Runs, Inspect and Experiments view lists the runs, and a class opens them at once, so a
row is read from a run's files only when they changed: rows are cached by each file's (path,
modification time, size, inode). A run whose files are damaged, oversized or nested too deeply is
listed with status "damaged" and one sentence, so it can be seen and deleted, and breaks nothing.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.checkpoints.files import RunFileError, read_config, read_info, read_metrics
from core.checkpoints.names import run_dir
from core.checkpoints.names import CONFIG_FILE, INFO_FILE, METRICS_FILE, is_run_name, model_label

_CACHE_SIZE = 4096
_cache: OrderedDict[tuple, dict] = OrderedDict()
_cache_lock = threading.Lock()


def _best_record(history: list[dict]) -> dict | None:
    """The epoch with the lowest finite validation loss: its weights are the ones saved."""
    finite = [r for r in history if isinstance(r.get("val_loss"), (int, float)) and math.isfinite(r["val_loss"])]
    return min(finite, key=lambda r: r["val_loss"]) if finite else None


def _empty_row(path: Path, info_mtime: float) -> dict[str, Any]:
    return {
        "name": path.name, "path": str(path), "dataset": None, "family": None, "preset": None,
        "model": None, "latent": None, "vae": None, "conditional": None, "dropout": None, "noise": None,
        "optimizer": None, "lr": None, "batch_size": None, "epochs_run": 0, "best_epoch": None,
        "train_loss": None, "val_loss": None, "test_mse": None, "test_mae": None,
        "status": "damaged", "message": "", "device": None, "seconds": None,
        "experiment": None, "factors": {}, "owner": None,
        "created": datetime.fromtimestamp(info_mtime, timezone.utc).astimezone().isoformat(timespec="seconds"),
    }


def _read_row(path: Path, info_mtime: float) -> dict:
    from core.models import FAMILIES  # PyTorch: loaded by the first run listed, not by importing this module

    row = _empty_row(path, info_mtime)
    try:
        info = read_info(path)
        config = read_config(path)
        metrics = read_metrics(path)
    except RunFileError as exc:
        row["message"] = f"Run {path.name} is damaged ({exc.reason}); delete it."
        return row
    except FileNotFoundError as exc:
        row["message"] = f"Run {path.name} is damaged (its {Path(exc.filename or '').name or 'files'} is missing); " \
                         "delete it."
        return row
    history = list(metrics.get("history") or [])
    best = _best_record(history)
    tests = metrics.get("test_metrics") or {}
    row.update({
        "dataset": config.data.dataset, "family": config.model.family,
        "preset": config.model.preset if FAMILIES[config.model.family].reads_preset else None,
        "model": model_label(config), "latent": config.model.latent, "vae": config.model.vae,
        "conditional": config.model.conditional, "dropout": config.model.dropout,
        "noise": config.train.noise_factor, "optimizer": config.train.optimizer, "lr": config.train.lr,
        "batch_size": config.train.batch_size, "epochs_run": info.get("epochs_run", len(history)),
        "best_epoch": best.get("epoch") if best else None,
        "train_loss": best.get("train_loss") if best else None,
        "val_loss": best.get("val_loss") if best else None,
        "test_mse": tests.get("mse"), "test_mae": tests.get("mae"),
        "status": info.get("status", "unknown"), "message": info.get("message", ""),
        "device": info.get("device"), "seconds": info.get("seconds"),
        "experiment": info.get("experiment"), "factors": info.get("factors") or {}, "owner": info.get("owner"),
        "created": info.get("created") or row["created"],
    })
    return row


def _stamp(path: Path) -> tuple:
    """What changes when a run's files do: each file's modification time, size and inode."""
    stamp = []
    for file in (INFO_FILE, CONFIG_FILE, METRICS_FILE):
        try:
            st = os.stat(path / file)
            stamp.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except FileNotFoundError:
            stamp.append(None)
    return tuple(stamp)


def _run_summary(path: Path) -> dict:
    stamp = _stamp(path)
    if stamp[0] is None:
        raise FileNotFoundError(path / INFO_FILE)
    key = (str(path.resolve()), stamp)
    with _cache_lock:
        row = _cache.get(key)
        if row is not None:
            _cache.move_to_end(key)
    if row is None:
        row = _read_row(path, stamp[0][0] / 1e9)
        with _cache_lock:
            _cache[key] = row
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return {**row, "factors": dict(row["factors"])}  # callers may change their copy


def run_summary(root, name: str) -> dict:
    """The list_runs row of one run (without listing the whole folder)."""
    return _run_summary(run_dir(root, name))


def list_runs(root) -> list[dict]:
    """One flat dict per complete run in root, newest first.

    Keys: name, path, dataset, family, preset, model, latent, vae, conditional, dropout, noise,
    optimizer, lr, batch_size, epochs_run, best_epoch, train_loss, val_loss (both of the best
    epoch, whose weights were saved), test_mse, test_mae, status, message, device, seconds,
    experiment (the experiment the run belongs to, or None), factors (its factor values, dotted
    config path -> value; {} outside an experiment), owner (the recorded owner key, or None: the
    teacher's), created. Every value has a plain type (text, a number, a bool, None).
    Temporary and incomplete folders (no info.json) are skipped; a complete folder whose files
    cannot be read is listed with status "damaged" so it can still be seen and deleted."""
    root = Path(root)
    if not root.is_dir():
        return []
    rows = []
    for entry in root.iterdir():
        if not is_run_name(entry.name) or not entry.is_dir():
            continue
        try:
            rows.append(_run_summary(entry))
        except FileNotFoundError:  # incomplete, or deleted while listing
            continue
    rows.sort(key=lambda r: r["name"])
    rows.sort(key=lambda r: _created_key(r["created"]), reverse=True)
    return rows


def _created_key(created: str) -> float:
    try:
        return datetime.fromisoformat(created).timestamp()
    except (TypeError, ValueError):
        return 0.0
