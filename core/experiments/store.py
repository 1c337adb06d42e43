"""Experiments on disk: root/experiments/<name>/experiment.json (its config, status and every
variant's job, run and results) and, for a search, study.db (Optuna's SQLite storage).

The runs themselves are ordinary runs in root (every view of a run works on them); their info.json
names the experiment and their factor values. The folder sits beside the runs, so a restarted
server lists the experiment and its finished runs. A name is reserved by creating its folder
(os.mkdir: atomic across threads and processes, so the app and a CLI on the same folder never
share one experiment's folder or study); experiment.json is replaced atomically (core.atomic) and
read size-capped (core.safejson). The record keeps its owner as `owner_key(owner)`: only that
student or the teacher may delete the experiment.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from core.atomic import remove_folder, reserve_folder, write_json
from core.logs import short_owner
from core.safejson import JsonFileError, read_json
from core.serving.access import check_may_change, is_owner_key, owner_key

log = logging.getLogger(__name__)

EXPERIMENTS_DIR = "experiments"
RECORD_FILE = "experiment.json"
STUDY_FILE = "study.db"
MAX_RECORD_BYTES = 16 << 20  # a record of 500 variants with their results is well under 1 MB
# An experiment in one of these is still changing (or was, when its server stopped).
ACTIVE_STATUSES = ("queued", "running", "stopping")
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")  # no leading dot or dash, as ExperimentConfig
# A record's top-level fields that pages read, and the type each must have.
_RECORD_TYPES = {"name": str, "config": dict, "status": str, "message": str, "created": str, "variants": list}


class ExperimentError(Exception):
    """One plain sentence naming the experiment and what to do."""


def experiments_root(root) -> Path:
    return Path(root) / EXPERIMENTS_DIR


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ExperimentError(f"'{str(name)[:100]}' is not a valid experiment name; use up to 100 letters, digits, "
                              "'.', '_' or '-', not starting with '.' or '-'.")
    return name


def experiment_dir(root, name: str) -> Path:
    return experiments_root(root) / _check_name(name)


def study_url(root, name: str) -> str:
    """Optuna's storage URL of the experiment's study (SQLite beside its experiment.json)."""
    return f"sqlite:///{(experiment_dir(root, name) / STUDY_FILE).resolve()}"


def reserve_experiment_name(root, base: str) -> str:
    """`base`, or base-2, base-3, ... when taken: its folder is created here (atomically), so no
    other thread or process can take the same name; save_record then fills it."""
    _check_name(base)
    try:
        return reserve_folder(experiments_root(root), base)
    except OSError as exc:
        raise ExperimentError(f"Could not save experiment {base}: {exc.strerror or 'disk error'}; ask the teacher "
                              "to check the checkpoints folder.") from None


def save_record(root, record: dict) -> None:
    """Write experiment.json atomically. Its "owner" is written as an owner key (a raw owner id
    given by the driver is hashed: the disk never holds ids that act as a student)."""
    folder = experiment_dir(root, record["name"])
    owner = record.get("owner")
    stored = {**record, "owner": owner if owner is None or is_owner_key(owner) else owner_key(owner)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Not sorted: a grid's factors keep the order the student gave them (the result views
        # name and colour the factors in that order).
        write_json(folder / RECORD_FILE, stored, sort_keys=False)
    except OSError as exc:
        raise ExperimentError(f"Could not save experiment {record['name']}: "
                              f"{exc.strerror or 'disk error'}; ask the teacher to check the checkpoints folder.") \
            from None


def _record_problem(record) -> str | None:
    if not isinstance(record, dict):
        return "it is not a JSON object"
    for key, kind in _RECORD_TYPES.items():
        if key in record and not isinstance(record[key], kind):
            return f"its {key} is not a {kind.__name__}"
    if "config" not in record:
        return "it has no config"
    if not all(isinstance(v, dict) for v in record.get("variants", [])):
        return "a variant is not an object"
    if not (record.get("owner") is None or is_owner_key(record["owner"])):
        return "its owner is not an owner key"
    return None


def load_record(root, name: str) -> dict:
    path = experiment_dir(root, name) / RECORD_FILE
    if not path.is_file():
        raise ExperimentError(f"There is no experiment named {name}; pick one of the saved experiments.")
    try:
        record = read_json(path, MAX_RECORD_BYTES)
        problem = _record_problem(record)
    except (OSError, JsonFileError) as exc:
        problem = f"its experiment.json {getattr(exc, 'reason', 'cannot be read')}"
    if problem is not None:
        raise ExperimentError(f"Experiment {name} is damaged ({problem}); delete it and run it again.")
    return record


def list_records(root) -> list[dict]:
    """Every saved experiment's record, newest first; damaged ones are left out."""
    folder = experiments_root(root)
    if not folder.is_dir():
        return []
    records = []
    for entry in folder.iterdir():
        if not _NAME_RE.fullmatch(entry.name) or not (entry / RECORD_FILE).is_file():
            continue
        try:
            records.append(load_record(root, entry.name))
        except ExperimentError:
            continue
    records.sort(key=lambda r: r.get("created") or "", reverse=True)
    return records


def delete_experiment(root, name: str, by: str | None = None, teacher: bool = False) -> None:
    """Delete the experiment's record and study (its runs stay: they are runs like any other,
    deleted one by one). by: the owner id asking (None: this process, i.e. the CLI or a checked
    teacher); a student may delete only an experiment recorded as theirs (OwnerError otherwise)."""
    folder = experiment_dir(root, name)
    if not folder.is_dir():
        raise ExperimentError(f"There is no experiment named {name} to delete; it may have been deleted already.")
    try:
        owner = load_record(root, name).get("owner")
    except ExperimentError:
        owner = None  # a damaged record is the teacher's to delete
    try:
        check_may_change(owner, by, teacher, f"experiment {name}", "delete")
    except PermissionError:
        log.warning("delete of experiment %s refused for %s", name, short_owner(by))
        raise
    try:
        remove_folder(folder)
    except OSError as exc:
        raise ExperimentError(f"Could not delete experiment {name}: {exc.strerror or 'disk error'}; ask the teacher "
                              "to check the checkpoints folder.") from None
    log.info("deleted experiment %s by %s", name, "teacher" if teacher else short_owner(by))
