"""Experiments on disk: root/experiments/<name>/experiment.json (its config, status and every
variant's job, run and results) and, for a search, study.db (Optuna's SQLite storage).

The runs themselves are ordinary runs in root (every Inspect page works on them); their info.json
names the experiment and their factor values. The folder sits beside the runs, so a restarted
server lists the experiment and its finished runs. experiment.json is replaced atomically.
"""
from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

EXPERIMENTS_DIR = "experiments"
RECORD_FILE = "experiment.json"
STUDY_FILE = "study.db"
# An experiment in one of these is still changing (or was, when its server stopped).
ACTIVE_STATUSES = ("queued", "running", "stopping")


class ExperimentError(Exception):
    """One plain sentence naming the experiment and what to do."""


def experiments_root(root) -> Path:
    return Path(root) / EXPERIMENTS_DIR


def experiment_dir(root, name: str) -> Path:
    return experiments_root(root) / name


def study_url(root, name: str) -> str:
    """Optuna's storage URL of the experiment's study (SQLite beside its experiment.json)."""
    return f"sqlite:///{(experiment_dir(root, name) / STUDY_FILE).resolve()}"


def unique_experiment_name(root, base: str) -> str:
    folder = experiments_root(root)
    if not (folder / base).exists():
        return base
    n = 2
    while (folder / f"{base}-{n}").exists():
        n += 1
    return f"{base}-{n}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def save_record(root, record: dict) -> None:
    """Write experiment.json atomically (a temporary file renamed over the old one)."""
    folder = experiment_dir(root, record["name"])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{RECORD_FILE}.{secrets.token_hex(4)}"
        with open(tmp, "w", encoding="utf-8") as f:
            # Not sorted: a grid's factors keep the order the student gave them (the result views
            # name and colour the factors in that order).
            json.dump(_json_safe(record), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / RECORD_FILE)
    except OSError as exc:
        raise ExperimentError(f"Could not save experiment {record['name']}: "
                              f"{exc.strerror or exc}; check the folder {folder}.") from None


def load_record(root, name: str) -> dict:
    path = experiment_dir(root, name) / RECORD_FILE
    if not path.is_file():
        raise ExperimentError(f"There is no experiment named {name}; pick one of the saved experiments.")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or "config" not in record:
            raise ValueError
    except (OSError, ValueError, UnicodeDecodeError):
        raise ExperimentError(f"Experiment {name} is damaged (its experiment.json cannot be read); "
                              "delete its folder and run it again.") from None
    return record


def list_records(root) -> list[dict]:
    """Every saved experiment's record, newest first; damaged ones are left out."""
    folder = experiments_root(root)
    if not folder.is_dir():
        return []
    records = []
    for entry in folder.iterdir():
        if entry.name.startswith(".") or not (entry / RECORD_FILE).is_file():
            continue
        try:
            records.append(load_record(root, entry.name))
        except ExperimentError:
            continue
    records.sort(key=lambda r: r.get("created") or "", reverse=True)
    return records
