"""Writing, replacing and deleting runs so that a crash at any instant leaves the last good run.

A save writes every file into a hidden staging folder inside root, info.json last (so a staging
folder with an info.json is complete), and renames it onto the run's name: a fresh save stages in
`.tmp-<name>-<hex>` and renames onto its own reservation (core.checkpoints.names.reserve_run_name);
an overwrite stages in `.new-<name>-<hex>`, moves the previous run aside as `.old-<name>-<hex>`,
renames the new one in and only then deletes the old. A delete renames the run to
`.deleting-<name>-<hex>` first. recover_leftovers, run when a server starts, finishes what a kill
interrupted: a complete staging folder is put in place (an overwrite's replaces its run), a
replaced run whose successor never arrived is put back, everything else hidden is removed.

Owners: a run saved for a student records `owner_key(owner)` in its info.json; only that
student or the teacher may overwrite or delete it (core.serving.access). An overwrite keeps the
recorded owner (a teacher continuing a student's run does not take it over).
"""
from __future__ import annotations

import errno
import io
import logging
import os
import secrets
import shutil
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # PyTorch is imported where weights are written: deleting or listing runs needs none
    import torch

from core.atomic import fsync_dir, json_dumps, remove_folder, write_file
from core.checkpoints.files import RunFileError, read_run_json
from core.checkpoints.names import (CONFIG_FILE, DELETING_PREFIX, FILM_FILE, IMPORT_PREFIX, INFO_FILE, METRICS_FILE,
                                    NEW_PREFIX, OLD_PREFIX, RESUME_FILE, TMP_PREFIX, WEIGHTS_FILE, CheckpointError,
                                    check_name, hidden_run_name, release_name, reserve_run_name, slug, taken_note)
from core.config import RunConfig
from core.logs import short_owner
from core.serving.access import check_may_change, is_owner_key, owner_key

log = logging.getLogger(__name__)


def recorded_owner(folder: Path) -> str | None:
    """The owner key in a run folder's info.json; None when it has none or cannot be read (the
    run is then the teacher's: students may look, not change)."""
    try:
        info = read_run_json(folder, INFO_FILE)
    except (OSError, RunFileError):
        return None
    owner = info.get("owner") if isinstance(info, dict) else None
    return owner if is_owner_key(owner) else None


def _save_error(name: str, exc: BaseException) -> CheckpointError:
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        reason = "the disk is full; free some space and train again."
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "there is no permission to write in the checkpoints folder; choose a folder you can write to."
    else:
        text = str(exc).strip()
        detail = getattr(exc, "strerror", None) or (text.splitlines()[0] if text else type(exc).__name__)
        reason = f"{str(detail).rstrip('.')}; check the checkpoints folder and train again."
    return CheckpointError(f"Could not save run {name}: {reason}")


def _torch_bytes(obj: Any) -> bytes:
    import torch

    # Serialise in memory first: disk errors then surface as plain OSErrors from our own write.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _film_tensors(result) -> dict[str, torch.Tensor]:
    import torch

    film: dict[str, torch.Tensor] = {}
    originals = getattr(result, "film_originals", None)
    if originals is not None:
        film["originals"] = originals.detach().to("cpu", torch.uint8).contiguous()
    frames = [f.detach().to("cpu", torch.uint8) for f in (getattr(result, "film", None) or [])]
    if frames:
        film["frames"] = torch.stack(frames).contiguous()
    return film


def _info(result, history: list[dict], extra_info: dict | None, owner: str | None) -> dict:
    info = {
        "status": result.status,
        "message": result.message,
        "device": str(result.device),
        # Which training step ran (CUDA graph or eager) and why: older results lack these.
        "step": getattr(result, "step", "eager"),
        "step_reason": getattr(result, "step_reason", ""),
        "created": datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds"),
        "seconds": float(sum(r.get("seconds", 0.0) or 0.0 for r in history)),
        "epochs_run": len(history),
    }
    info.update(extra_info or {})
    info.pop("owner", None)  # only the owner argument says who owns a run
    if owner is not None:
        info["owner"] = owner
    return info


def _write_staging(tmp: Path, config: RunConfig, result, history: list[dict], info: dict) -> None:
    tmp.mkdir()
    state = {k: v.detach().to("cpu") for k, v in result.model.state_dict().items()}
    write_file(tmp / CONFIG_FILE, config.to_json().encode("utf-8"))
    write_file(tmp / WEIGHTS_FILE, _torch_bytes(state))
    write_file(tmp / METRICS_FILE, json_dumps({
        "history": history,
        "batch_losses": [float(x) for x in result.batch_losses],
        "test_metrics": {k: float(v) for k, v in (result.test_metrics or {}).items()},
    }).encode("utf-8"))
    write_file(tmp / FILM_FILE, _torch_bytes(_film_tensors(result)))
    if getattr(result, "resume_state", None):
        write_file(tmp / RESUME_FILE, _torch_bytes(result.resume_state))
    write_file(tmp / INFO_FILE, json_dumps(info).encode("utf-8"))  # last: marks the folder complete
    fsync_dir(tmp)


def _replace(root: Path, tmp: Path, name: str) -> None:
    """Put the complete staging folder `tmp` in place of root/name, the previous run (if any)
    moved aside first and deleted only once the new one is in place. A kill at any point leaves
    complete folders that recover_leftovers finishes the job with."""
    target = root / name
    old = None
    if target.exists():
        old = root / f"{OLD_PREFIX}{name}-{secrets.token_hex(4)}"
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)  # put the previous run back: nothing lost
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def save_run(root, name: str, config: RunConfig, result, extra_info: dict | None = None,
             overwrite: bool = False, on_taken: str = "refuse", owner: str | None = None,
             teacher: bool = False, owner_recorded: str | None = None) -> Path:
    """Write a finished (or stopped) training result as root/name and return that path.

    Atomic (see the module notes). Unless overwrite=True, the name is first reserved across
    processes: on_taken="refuse" raises CheckpointError when it is taken, "next" saves as
    name-2, name-3, ... (an unnamed run), "rename" does the same and says so in the run's message
    (a named run: its weights are kept under the new name). owner: the student it is saved for
    (None: the teacher or the CLI); recorded as owner_key(owner). With overwrite=True an existing
    run is replaced only when `owner` may change it (its owner, `teacher`, or None: this process),
    else OwnerError; it keeps its recorded owner. Disk and permission errors become one-sentence
    CheckpointErrors and leave no staging folder (and no reservation) behind."""
    check_name(name) if on_taken == "refuse" or overwrite else slug(name)
    root = Path(root)
    # owner_recorded: the owner's key when only the key is known (a job restored after a restart).
    recorded = owner_key(owner) if owner else owner_recorded
    if overwrite and (root / name).is_dir():
        previous = recorded_owner(root / name)
        try:
            check_may_change(previous, owner, teacher, f"run {name}", "overwrite")
        except PermissionError:
            log.warning("overwrite of run %s refused for %s", name, short_owner(owner))
            raise
        recorded = previous
    reserved, requested = None, name
    if not overwrite:
        try:
            reserved = reserve_run_name(root, name, "refuse" if on_taken == "refuse" else "next")
        except OSError as exc:
            log.error("could not reserve a name for run %s: %s", name, exc)
            raise _save_error(name, exc) from None
        name = reserved
    # The model's own config (its shape filled from the data) is what rebuilds it exactly.
    saved_config = replace(config, model=getattr(result.model, "cfg", config.model), name=name)
    history = [asdict(r) if not isinstance(r, dict) else dict(r) for r in result.history]
    info = _info(result, history, extra_info, recorded)
    if on_taken == "rename" and name != requested:
        info["message"] = f"{info['message']} {taken_note(requested, name)}".strip()
        info["requested_name"] = requested

    tmp = root / f"{NEW_PREFIX if overwrite else TMP_PREFIX}{name}-{secrets.token_hex(4)}"
    placed = False
    try:
        root.mkdir(parents=True, exist_ok=True)
        _write_staging(tmp, saved_config, result, history, info)
        if reserved is not None:
            os.rename(tmp, root / name)  # onto our own empty reservation: atomic on POSIX
        else:
            _replace(root, tmp, name)
        placed = True
        fsync_dir(root)
    except (OSError, RuntimeError) as exc:
        log.error("could not save run %s: %s", name, exc)
        raise _save_error(name, exc) from None
    finally:
        if not placed:
            shutil.rmtree(tmp, ignore_errors=True)
            if reserved is not None:
                release_name(root, reserved)
    log.info("saved run %s (%s, %d epochs) for %s", name, info["status"], info["epochs_run"],
             recorded[:8] if recorded else "teacher/cli")
    return root / name


def delete_run(root, name: str, by: str | None = None, teacher: bool = False) -> None:
    """Delete root/name for everyone. by: the owner id asking (None: this process, i.e. the CLI
    or a teacher the app has checked); a student may delete only a run recorded as theirs
    (OwnerError otherwise). The folder is first renamed aside, so a half-deleted run never
    looks complete."""
    check_name(name)
    root = Path(root)
    path = root / name
    if not path.is_dir():
        raise CheckpointError(f"There is no run named {name} to delete; it may have been deleted already.")
    try:
        check_may_change(recorded_owner(path), by, teacher, f"run {name}", "delete")
    except PermissionError:
        log.warning("delete of run %s refused for %s", name, short_owner(by))
        raise
    try:
        remove_folder(path, DELETING_PREFIX)
    except FileNotFoundError:
        raise CheckpointError(f"There is no run named {name} to delete; it may have been deleted already.") from None
    except OSError as exc:
        raise CheckpointError(f"Could not delete run {name}: {exc.strerror or 'disk error'}; ask the teacher to "
                              "check the checkpoints folder.") from None
    log.info("deleted run %s by %s", name, "teacher" if teacher else short_owner(by))


# ---------------------------------------------------------------- after a kill

def _age(entry: Path, now: float) -> float:
    """Seconds since anything in `entry` (a folder and its files) last changed."""
    return now - max([entry.stat().st_mtime] + [p.stat().st_mtime for p in entry.iterdir()])


def _put_back(root: Path, folder: Path, name: str, older_than: float) -> str:
    """Rename a complete hidden run folder to `name` when that is free (or an empty reservation
    left as long as the folder: the killed save's own), else to the next free name; returns the
    name it now has."""
    target = root / name
    try:
        if target.is_dir() and not any(target.iterdir()) and _age(target, time.time()) >= older_than:
            release_name(root, name)
        if not target.exists():
            os.rename(folder, target)
            return name
    except OSError:
        pass
    other = reserve_run_name(root, name, "next")
    os.rename(folder, root / other)
    return other


def _recover(root: Path, entry: Path, older_than: float) -> None:
    """One hidden folder old enough to be a killed process's: finish it, put it back or remove it."""
    kind_name = hidden_run_name(entry.name)
    if kind_name and (entry / INFO_FILE).is_file():
        kind, name = kind_name
        in_place = (root / name / INFO_FILE).is_file()
        replaced = any(hidden_run_name(e.name) == ("old", name) for e in root.iterdir())
        if kind == "new" and in_place and not replaced:
            _replace(root, entry, name)  # killed before its first rename: the overwrite, done now
            log.warning("after a kill: finished replacing run %s (from %s)", name, entry.name)
            return
        # A complete new run is always kept (under the next free name when its name was taken
        # meanwhile); a replaced one only when nothing replaced it.
        if kind != "old" or not in_place:
            placed = _put_back(root, entry, name, older_than)
            log.warning("after a kill: %s run %s (from %s)",
                        "put back the previous" if kind == "old" else "finished saving", placed, entry.name)
            return
    shutil.rmtree(entry, ignore_errors=True)
    log.info("after a kill: removed %s", entry.name)


def recover_leftovers(root, older_than: float) -> list[str]:
    """What a killed save, overwrite, delete or import left in root, untouched for `older_than`
    seconds (younger ones may belong to another process still at work): a complete `.new-`
    folder replaces its run and a complete `.tmp-` folder becomes its run (each under the next
    free name when another run took the name meanwhile); an `.old-` run is put back when its
    successor is not in place, else removed; everything else hidden (incomplete staging,
    `.deleting-`, `.import-`) is removed, and so is an empty run
    folder (a name reserved by a save that never finished). Returns the folders acted on."""
    root = Path(root)
    if not root.is_dir():
        return []
    now = time.time()
    hidden, empty = [], []
    for entry in sorted(root.iterdir()):
        try:
            if not entry.is_dir() or entry.is_symlink() or _age(entry, now) < older_than:
                continue
        except OSError:  # removed meanwhile
            continue
        if entry.name.startswith((TMP_PREFIX, NEW_PREFIX, OLD_PREFIX, DELETING_PREFIX, IMPORT_PREFIX)):
            hidden.append(entry)
        elif not entry.name.startswith(".") and not any(entry.iterdir()):
            empty.append(entry)
    # New runs first: a replaced run is put back only when no complete successor was.
    hidden.sort(key=lambda e: e.name.startswith(OLD_PREFIX))
    for entry in hidden:
        try:
            _recover(root, entry, older_than)
        except OSError as exc:
            log.error("after a kill: could not recover %s: %s", entry.name, exc)
    busy = {kind_name[1] for e in root.iterdir() if (kind_name := hidden_run_name(e.name))}
    for entry in empty:
        if entry.name not in busy:  # a save still writing its staging folder keeps its reservation
            release_name(root, entry.name)
    return [e.name for e in hidden] + [e.name for e in empty if not e.exists()]
