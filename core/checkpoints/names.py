"""Run names: what a run folder may be called, and reserving one atomically across processes.

A run's folder name is its name. Hidden folders (a leading dot) are never runs: they are a save's
staging folder (`.tmp-<name>-<hex>`), the run it replaces (`.old-<name>-<hex>`), a run being
deleted (`.deleting-<name>-<hex>`), an overwrite's new run (`.new-<name>-<hex>`) or a bundle being
imported (`.import-<hex>`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from core.atomic import reserve_folder
from core.config import RunConfig

DEFAULT_ROOT = "checkpoints"
CHECKPOINTS_ENV = "AE_LAB_CHECKPOINTS"


def checkpoints_root(environ=None) -> str:
    """Where the app saves and lists runs, and where the CLI does unless --out says otherwise:
    $AE_LAB_CHECKPOINTS, else checkpoints/ (one setting, so a run pre-trained in a terminal
    appears in the app started from the same environment)."""
    environ = os.environ if environ is None else environ
    return environ.get(CHECKPOINTS_ENV, "").strip() or DEFAULT_ROOT


CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
METRICS_FILE = "metrics.json"
FILM_FILE = "film.pt"
INFO_FILE = "info.json"  # written last: its presence marks a complete run
RESUME_FILE = "resume.pt"  # the last epoch's weights, optimiser and generator states (for resuming)
RUN_FILES = (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, FILM_FILE, INFO_FILE, RESUME_FILE)

TMP_PREFIX = ".tmp-"  # a save being written: complete once its info.json exists
NEW_PREFIX = ".new-"  # the same for an overwrite: it is meant to replace the run of its name
OLD_PREFIX = ".old-"  # the run an overwrite replaces, until the new one is in place
DELETING_PREFIX = ".deleting-"  # a run being deleted
IMPORT_PREFIX = ".import-"  # a bundle being unpacked and checked
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")  # always with fullmatch
# A hidden folder's run name: .tmp-<name>-<8 hex>, .new-<name>-<8 hex> and .old-<name>-<8 hex>.
_HIDDEN_RE = re.compile(r"\.(tmp|new|old)-(.+)-[0-9a-f]{8}")
MAX_NAME = 100


class CheckpointError(Exception):
    """One plain sentence naming the run and the reason."""


def check_name(name: str) -> str:
    """Return the name if it is a safe run folder name, else raise CheckpointError.

    Only letters, digits, '.', '_' and '-'; no leading dot (hidden and temporary folders start
    with one), so a name can never point outside root or at a half-written run."""
    if not isinstance(name, str) or not name:
        raise CheckpointError("A run needs a name; use letters, digits, '.', '_' or '-'.")
    # fullmatch: with match() and '$', a trailing newline slipped through
    if len(name) > MAX_NAME or not _NAME_RE.fullmatch(name) or name.startswith("."):
        raise CheckpointError(
            f"'{name}' is not a valid run name; use up to {MAX_NAME} letters, digits, '.', '_' or '-', "
            "not starting with a dot.")
    return name


def is_run_name(name: str) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME and bool(_NAME_RE.fullmatch(name)) \
        and not name.startswith(".")


def hidden_run_name(folder_name: str) -> tuple[str, str] | None:
    """("tmp" | "new" | "old", run name) of a save's staging or replaced folder; None for anything else."""
    match = _HIDDEN_RE.fullmatch(folder_name)
    if match is None or not is_run_name(match.group(2)):
        return None
    return match.group(1), match.group(2)


def slug(text: str) -> str:
    """Turn any text into a valid run name (invalid characters become '-')."""
    # no leading '.' (hidden) or '-' (read as an option by the CLI), no dangling separators
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    return name[:MAX_NAME - 4] or "run"  # leave room for a "-NNN" suffix


def default_run_name(cfg: RunConfig, defaults: RunConfig | None = None) -> str:
    """The run's name from its dataset, architecture and latent size, then every setting that differs
    from the defaults, so two runs that differ are told apart by name (Adam vs SGD were
    "...-z2" and "...-z2-2"): e.g. mnist-conv-small-z16, fashion-mnist-dense-1000-500-250-z2-vae,
    mnist-dense-1000-500-250-z2-sgd-lr0.01-b32. `defaults`: the dataset's own (batch size and epochs
    fitted to its size, core.defaults); without them the batch size and epochs are left out."""
    from core.models import architecture_name  # PyTorch: loaded when a run is named, not on import

    m, t = cfg.model, cfg.train
    base_model, base_train = RunConfig().model, RunConfig().train
    parts = [cfg.data.dataset, architecture_name(m), f"z{m.latent}"]
    if m.vae:
        parts.append("vae" + (f"-beta{m.beta:g}" if m.beta != base_model.beta else ""))
    if m.conditional:
        parts.append("cond")
    if t.noise_factor > 0:
        parts.append(f"noise{t.noise_factor:g}")
    for value, default, text in (
            (m.dropout, base_model.dropout, f"do{m.dropout:g}"),
            (m.activation, base_model.activation, m.activation.replace("_", "")),
            (m.output_activation, base_model.output_activation, f"out-{m.output_activation}"),
            (t.optimizer, base_train.optimizer, t.optimizer.replace("_", "")),
            (t.lr, base_train.lr, f"lr{t.lr:g}"),
            (t.loss, base_train.loss, t.loss),
            (t.weight_decay, base_train.weight_decay, f"wd{t.weight_decay:g}"),
            (t.patience, base_train.patience, f"es{t.patience}"),
            (t.seed, base_train.seed, f"seed{t.seed}"),
            (cfg.data.balanced, False, "balanced")):
        if value != default:
            parts.append(text)
    if defaults is not None:
        if t.batch_size != defaults.train.batch_size:
            parts.append(f"b{t.batch_size}")
        if t.epochs != defaults.train.epochs:
            parts.append(f"e{t.epochs}")
    return slug("-".join(parts))


def reserve_run_name(root, name: str, on_taken: str = "refuse") -> str:
    """Reserve root/<name> for a save or an import, atomically across threads and processes, by
    creating its (empty) folder: os.mkdir either makes it or fails because someone else did.
    on_taken: "refuse" raises CheckpointError when the name is taken, "next" takes name-2,
    name-3, ... Returns the reserved name; the caller renames its finished folder onto it (a
    rename onto an empty folder succeeds on POSIX, so only the holder of a reservation may)."""
    base = check_name(name) if on_taken == "refuse" else slug(name)
    try:
        return reserve_folder(root, base, take_next=on_taken != "refuse")
    except FileExistsError:
        raise CheckpointError(f"A run named {name} already exists; choose another name or "
                              "delete that run first.") from None


def release_name(root, name: str) -> None:
    """Give back a reservation that was not filled (removes the folder only while it is empty)."""
    try:
        os.rmdir(Path(root) / name)
    except OSError:
        pass


def taken_note(requested: str, saved_as: str) -> str:
    """The sentence a named run's message gets when it was saved under another name: its name
    was not a valid run name (rewritten), or was taken by the time it was saved; "" when neither."""
    if saved_as == requested:
        return ""
    if slug(requested) != requested:
        return (f"'{requested}' is not a valid run name (letters, digits, '.', '_' and '-'), so the run was "
                f"saved as {saved_as}.")
    return f"The name {requested} was taken, so the run was saved as {saved_as}."


def valid_run_name(name: str) -> str:
    """The name a run asked to be called `name` is saved under when that name is free: `name`
    itself when valid, else it rewritten into a valid one (what the UI shows before Start)."""
    try:
        return check_name(name)
    except CheckpointError:
        return slug(name)


def model_label(cfg: RunConfig) -> str:
    """The architecture in a few characters, e.g. 'conv-small', 'dense-512-256', 'spatial-small'."""
    from core.models import architecture_name  # PyTorch: loaded by the first run listed, not on import

    return architecture_name(cfg.model)


def describe_model(cfg: RunConfig) -> str:
    """Short human name of the architecture, e.g. 'conv-small, latent 16' or 'dense-512-256 VAE, latent 2'."""
    arch = model_label(cfg)
    if cfg.model.vae:
        arch += " VAE"
    if cfg.model.conditional:
        arch += " conditional"
    return f"{arch}, latent {cfg.model.latent}"


def run_dir(root, name: str) -> Path:
    """The folder of the saved run `name` under root (its name checked, its save finished)."""
    check_name(name)
    path = Path(root) / name
    if not path.is_dir():
        raise CheckpointError(f"There is no run named {name}; pick one of the saved runs.")
    if not (path / INFO_FILE).is_file():
        raise CheckpointError(f"Run {name} is incomplete (its save never finished); delete it and train again.")
    return path
