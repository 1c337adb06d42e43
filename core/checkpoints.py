"""Save, load, list and delete runs under a checkpoints folder.

One folder per run, root/<name>/:
    config.json   RunConfig.to_json(); its model part has the data shape filled in, so it alone
                  rebuilds the exact model
    weights.pt    the model's state_dict (torch.save; read back with weights_only=True)
    metrics.json  {"history": [EpochRecord as dict], "batch_losses": [...], "test_metrics": {...}}
    film.pt       {"originals": uint8 N×C×H×W, "frames": uint8 F×N×C×H×W} (plain tensors only)
    info.json     status, message, device, created (ISO time), seconds, epochs_run, + extra info
    resume.pt     {"model": last weights, "optimizer": state_dict, "shuffle_rng", "noise_rng"}
                  (plain tensors and numbers); absent for a diverged run or an older save

A run is written into a hidden temporary folder inside root and renamed into place, with
info.json written last, so a crash or a full disk never leaves something that looks like a run:
a folder counts as a run only when its info.json exists.
"""
from __future__ import annotations

import errno
import io
import json
import math
import os
import pickle
import re
import secrets
import shutil
import warnings
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from core.config import ConfigError, RunConfig
from core.models import Autoencoder, build_model

DEFAULT_ROOT = "checkpoints"

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
METRICS_FILE = "metrics.json"
FILM_FILE = "film.pt"
INFO_FILE = "info.json"  # written last: its presence marks a complete run
RESUME_FILE = "resume.pt"  # the last epoch's weights, optimiser and generator states (for resuming)

_TMP_PREFIX = ".tmp-"  # folders being written
_OLD_PREFIX = ".old-"  # a run being replaced or deleted
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")  # always with fullmatch
_MAX_NAME = 100


class CheckpointError(Exception):
    """One plain sentence naming the run and the reason."""


@dataclass
class Run:
    name: str
    path: Path
    config: RunConfig
    model: Autoencoder  # eval mode, on the CPU
    history: list[dict] = field(default_factory=list)  # EpochRecord as dicts
    batch_losses: list[float] = field(default_factory=list)
    film_originals: torch.Tensor | None = None
    film: list[torch.Tensor] = field(default_factory=list)
    test_metrics: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # status, message, device, created, seconds, epochs_run


# ---------------------------------------------------------------- names

def check_name(name: str) -> str:
    """Return the name if it is a safe run folder name, else raise CheckpointError.

    Only letters, digits, '.', '_' and '-'; no leading dot (hidden and temporary folders start
    with one), so a name can never point outside root or at a half-written run."""
    if not isinstance(name, str) or not name:
        raise CheckpointError("A run needs a name; use letters, digits, '.', '_' or '-'.")
    # fullmatch: with match() and '$', a trailing newline slipped through
    if len(name) > _MAX_NAME or not _NAME_RE.fullmatch(name) or name.startswith("."):
        raise CheckpointError(
            f"'{name}' is not a valid run name; use up to {_MAX_NAME} letters, digits, '.', '_' or '-', "
            "not starting with a dot.")
    return name


def _slug(text: str) -> str:
    """Turn any text into a valid run name (invalid characters become '-')."""
    # no leading '.' (hidden) or '-' (read as an option by the CLI), no dangling separators
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    return slug[:_MAX_NAME - 4] or "run"  # leave room for a "-NNN" suffix


def default_run_name(cfg: RunConfig, defaults: RunConfig | None = None) -> str:
    """The run's name from its dataset, architecture and latent size, then every setting that differs
    from the defaults, so two runs that differ are told apart by name (Adam vs SGD were
    "...-z2" and "...-z2-2"): e.g. mnist-conv-small-z16, fashion-mnist-dense-1000-500-250-z2-vae,
    mnist-dense-1000-500-250-z2-sgd-lr0.01-b32. `defaults`: the dataset's own (batch size and epochs
    fitted to its size, core.defaults); without them the batch size and epochs are left out."""
    m, t = cfg.model, cfg.train
    base_model, base_train = RunConfig().model, RunConfig().train
    if m.family == "conv":
        arch = "conv-" + ("-".join(map(str, m.channels)) if m.channels else m.preset)
    elif m.family == "dense":
        arch = "dense-" + "-".join(map(str, m.hidden))
    else:  # a family of its own (e.g. a spatial code): its name and size preset
        arch = f"{m.family}-{m.preset}"
    parts = [cfg.data.dataset, arch, f"z{m.latent}"]
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
    return _slug("-".join(parts))


def reserve_run_name(root, name: str, on_taken: str = "refuse") -> str:
    """Reserve root/<name> for a save, atomically across threads and processes, by creating its
    (empty) folder: os.mkdir either makes it or fails because someone else did. on_taken:
    "refuse" raises CheckpointError when the name is taken, "next" takes name-2, name-3, ...
    Returns the reserved name; save_run then renames its finished temporary folder onto it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = check_name(name) if on_taken == "refuse" else _slug(name)
    candidate, n = base, 2
    while True:
        try:
            os.mkdir(root / candidate)
            return candidate
        except FileExistsError:
            if on_taken == "refuse":
                raise CheckpointError(f"A run named {name} already exists in {root}; choose another name or "
                                      "delete it first.") from None
        candidate, n = f"{base}-{n}", n + 1


def unique_run_name(root, base: str) -> str:
    """`base` if no run (or folder) of that name exists in root, else base-2, base-3, ...
    Characters not allowed in run names are replaced by '-'."""
    base = _slug(base)
    root = Path(root)
    if not (root / base).exists():
        return base
    n = 2
    while (root / f"{base}-{n}").exists():
        n += 1
    return f"{base}-{n}"


def describe_model(cfg: RunConfig) -> str:
    """Short human name of the architecture, e.g. 'conv-small, latent 16' or 'dense 512-256 VAE, latent 2'."""
    m = cfg.model
    if m.family == "conv":
        arch = "conv-" + "-".join(map(str, m.channels)) if m.channels else f"conv-{m.preset}"
    else:
        arch = "dense " + "-".join(map(str, m.hidden))
    if m.vae:
        arch += " VAE"
    if m.conditional:
        arch += " conditional"
    return f"{arch}, latent {m.latent}"


def _model_label(cfg: RunConfig) -> str:
    m = cfg.model
    if m.family == "conv":
        return "conv-" + "-".join(map(str, m.channels)) if m.channels else f"conv-{m.preset}"
    return "dense-" + "-".join(map(str, m.hidden))


# ---------------------------------------------------------------- save

def _json_safe(value: Any) -> Any:
    """NaN/inf (a diverged run) become None so the files stay standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_json(path: Path, obj: Any) -> None:
    _write_bytes(path, json.dumps(_json_safe(obj), indent=2, sort_keys=True).encode("utf-8"))


def _torch_bytes(obj: Any) -> bytes:
    # Serialise in memory first: disk errors then surface as plain OSErrors from our own write.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open folders; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_error(name: str, root: Path, exc: BaseException) -> CheckpointError:
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        reason = "the disk is full; free some space and train again."
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"there is no permission to write in {root}; choose a folder you can write to."
    else:
        text = str(exc).strip()
        detail = getattr(exc, "strerror", None) or (text.splitlines()[0] if text else type(exc).__name__)
        reason = f"{str(detail).rstrip('.')}; check the folder {root} and train again."
    return CheckpointError(f"Could not save run {name}: {reason}")


def _film_tensors(result) -> dict[str, torch.Tensor]:
    film: dict[str, torch.Tensor] = {}
    originals = getattr(result, "film_originals", None)
    if originals is not None:
        film["originals"] = originals.detach().to("cpu", torch.uint8).contiguous()
    frames = [f.detach().to("cpu", torch.uint8) for f in (getattr(result, "film", None) or [])]
    if frames:
        film["frames"] = torch.stack(frames).contiguous()
    return film


def save_run(root, name: str, config: RunConfig, result, extra_info: dict | None = None,
             overwrite: bool = False, on_taken: str = "refuse") -> Path:
    """Write a finished (or stopped) training result as root/name and return that path.

    Atomic: everything goes into a hidden temporary folder inside root first and is renamed
    into place at the end. Unless overwrite=True, the name is first reserved across processes
    (reserve_run_name): on_taken="refuse" raises CheckpointError when it is taken, "next" saves
    as name-2, name-3, ... (an unnamed run), "rename" does the same and says so in the run's
    message (a named run: its weights are kept under the new name). With overwrite=True an
    existing run is moved aside, the new one renamed in, and only then the old one deleted.
    Disk and permission errors become one-sentence CheckpointErrors and leave no temporary
    folder (and no reservation) behind. The returned path's name is the name saved under."""
    check_name(name) if on_taken == "refuse" or overwrite else _slug(name)
    root = Path(root)
    reserved, requested = None, name
    if not overwrite:
        try:
            reserved = reserve_run_name(root, name, "refuse" if on_taken == "refuse" else "next")
        except OSError as exc:
            raise _save_error(name, root, exc) from None
        name = reserved
    target = root / name
    model = result.model
    # The model's own config (its shape filled from the data) is what rebuilds it exactly.
    saved_config = replace(config, model=getattr(model, "cfg", config.model), name=name)
    history = [asdict(r) if not isinstance(r, dict) else dict(r) for r in result.history]
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
    if on_taken == "rename" and name != requested:
        info["message"] = f"{info['message']} {taken_note(requested, name)}".strip()
        info["requested_name"] = requested

    tmp: Path | None = None
    saved = False
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f"{_TMP_PREFIX}{name}-{secrets.token_hex(4)}"
        tmp.mkdir()
        state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
        _write_bytes(tmp / CONFIG_FILE, saved_config.to_json().encode("utf-8"))
        _write_bytes(tmp / WEIGHTS_FILE, _torch_bytes(state))
        _write_json(tmp / METRICS_FILE, {
            "history": history,
            "batch_losses": [float(x) for x in result.batch_losses],
            "test_metrics": {k: float(v) for k, v in (result.test_metrics or {}).items()},
        })
        _write_bytes(tmp / FILM_FILE, _torch_bytes(_film_tensors(result)))
        if getattr(result, "resume_state", None):
            _write_bytes(tmp / RESUME_FILE, _torch_bytes(result.resume_state))
        _write_json(tmp / INFO_FILE, info)  # last: marks the folder complete
        _fsync_dir(tmp)
        if reserved is not None:
            os.rename(tmp, target)  # onto our own empty reservation: atomic on POSIX
            tmp = None
            saved = True
        elif target.exists():
            old = root / f"{_OLD_PREFIX}{name}-{secrets.token_hex(4)}"
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)  # put the previous run back: nothing lost
                raise
            tmp = None
            saved = True
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
            tmp = None
            saved = True
        _fsync_dir(root)
    except (OSError, RuntimeError) as exc:
        raise _save_error(name, root, exc) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if reserved is not None and not saved:  # give the name back
            try:
                os.rmdir(target)
            except OSError:
                pass
    return target


def taken_note(requested: str, saved_as: str) -> str:
    """The sentence a named run's message gets when it was saved under another name: its name
    was not a valid run name (rewritten), or was taken by the time it was saved; "" when neither."""
    if saved_as == requested:
        return ""
    if _slug(requested) != requested:
        return (f"'{requested}' is not a valid run name (letters, digits, '.', '_' and '-'), so the run was "
                f"saved as {saved_as}.")
    return f"The name {requested} was taken, so the run was saved as {saved_as}."


def valid_run_name(name: str) -> str:
    """The name a run asked to be called `name` is saved under when that name is free: `name`
    itself when valid, else it rewritten into a valid one (what the UI shows before Start)."""
    try:
        return check_name(name)
    except CheckpointError:
        return _slug(name)


# ---------------------------------------------------------------- load

def _run_dir(root, name: str) -> Path:
    check_name(name)
    path = Path(root) / name
    if not path.is_dir():
        raise CheckpointError(f"There is no run named {name} in {root}; pick one of the saved runs.")
    if not (path / INFO_FILE).is_file():
        raise CheckpointError(f"Run {name} is incomplete (its save never finished); delete it and train again.")
    return path


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _is_number(value: Any, none_ok: bool = True) -> bool:
    """JSON numbers (NaN/inf were written as null, hence none_ok); bools are not numbers."""
    return (value is None and none_ok) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _metrics_problem(metrics: Any) -> str | None:
    """What is wrong with a metrics.json's content (a clause), or None. Every field is checked,
    so nothing that reads a run later meets a string where it expects a number."""
    if not isinstance(metrics, dict):
        return "metrics.json is not a JSON object"
    history = metrics.get("history", [])
    if not isinstance(history, list):
        return "the history in metrics.json is not a list"
    for n, record in enumerate(history, start=1):
        if not isinstance(record, dict):
            return f"entry {n} of the history in metrics.json is not an object"
        if not isinstance(record.get("epoch"), int) or isinstance(record.get("epoch"), bool):
            return f"entry {n} of the history in metrics.json has no whole epoch number"
        bad = sorted(k for k, v in record.items() if k != "epoch" and not _is_number(v))
        if bad:
            return f"entry {n} of the history in metrics.json has a {bad[0]} that is not a number"
    losses = metrics.get("batch_losses", [])
    if not isinstance(losses, list) or not all(_is_number(x) for x in losses):
        return "the batch losses in metrics.json are not a list of numbers"
    tests = metrics.get("test_metrics", {})
    if not isinstance(tests, dict) or not all(_is_number(v) for v in tests.values()):
        return "the test metrics in metrics.json are not numbers"
    return None


# info.json key -> (check, what it must be); other keys (extra info) are free.
_INFO_FIELDS = {
    "status": (lambda v: isinstance(v, str), "text"),
    "message": (lambda v: isinstance(v, str), "text"),
    "device": (lambda v: v is None or isinstance(v, str), "text"),
    "created": (lambda v: isinstance(v, str), "text"),
    "seconds": (lambda v: _is_number(v), "a number"),
    "epochs_run": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
}


def _info_problem(info: Any) -> str | None:
    if not isinstance(info, dict):
        return "info.json is not a JSON object"
    for key, (check, what) in _INFO_FIELDS.items():
        if key in info and not check(info[key]):
            return f"the {key} in info.json is not {what}"
    return None


def _read_metrics(path: Path) -> dict | None:
    """A run folder's metrics.json as a dict; None when it is missing or damaged (any field of
    the wrong type counts as damaged)."""
    try:
        metrics = _read_json(path / METRICS_FILE)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return metrics if _metrics_problem(metrics) is None else None


def _load_tensors(path: Path, name: str) -> Any:
    """torch.load with weights_only=True, every failure turned into one sentence."""
    what = f"Run {name} cannot be loaded: its {path.name}"
    if not path.is_file():
        raise CheckpointError(f"{what} is missing; delete the run and train again.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. pickle-protocol notes; the outcome is what matters
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler names every class or function it refuses as a GLOBAL.
        if "GLOBAL" in str(exc) or "GLOBAL" in str(exc.__context__ or ""):
            raise CheckpointError(f"{what} contains code or objects that are not plain weights; "
                                  "it was not loaded for safety.") from None
        raise CheckpointError(f"{what} is not a PyTorch weights file (it may come from another program "
                              "or be damaged); delete the run and train again.") from None
    except Exception:
        with open(path, "rb") as f:
            head = f.read(4)
        if head.startswith(b"PK"):
            reason = "is truncated or damaged"
        elif not head:
            reason = "is empty"
        else:
            reason = "is not a PyTorch weights file (it may come from another program or be damaged)"
        raise CheckpointError(f"{what} {reason}; delete the run and train again.") from None


def _shape(t: torch.Tensor) -> str:
    return "×".join(map(str, t.shape)) or "scalar"


def _check_fit(name: str, cfg: RunConfig, model: Autoencoder, state: dict) -> None:
    """Say which layer does not fit, instead of PyTorch's multi-line load_state_dict error."""
    prefix = f"Run {name} cannot be loaded: its weights do not fit its config ({describe_model(cfg)})"
    expected = model.state_dict()
    for key, want in expected.items():
        if key not in state and key.startswith("label_style."):
            continue  # saved before conditional decoders styled their layers: they load as no change
        if key not in state:
            raise CheckpointError(f"{prefix}: layer {key} is missing from the weights; train it again or delete it.")
        got = state[key]
        if not isinstance(got, torch.Tensor):
            raise CheckpointError(f"{prefix}: layer {key} is not a tensor; train it again or delete it.")
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(f"{prefix}: layer {key} has shape {_shape(got)} but the model expects "
                                  f"{_shape(want)}; train it again or delete it.")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(f"{prefix}: the weights have a layer {extra[0]} the model does not have; "
                              "train it again or delete it.")


def load_run(root, name: str) -> Run:
    """Rebuild a saved run: config -> model -> weights (weights_only, mapped to the CPU).

    Refuses, with one sentence naming the run: a missing or incomplete run, a missing or damaged
    config.json, weights holding pickled code or objects, truncated or foreign weight files and
    weights that do not fit the config. A damaged metrics.json or film.pt does not block the
    model: the run loads without history or film and info["load_warnings"] says why."""
    path = _run_dir(root, name)
    try:
        config = RunConfig.from_json((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"Run {name} cannot be loaded: its config.json is missing; "
                              "delete the run and train again.") from None
    except ConfigError as exc:
        raise CheckpointError(f"Run {name} cannot be loaded: its config.json is damaged or from another "
                              f"version ({exc.reason}); delete the run and train again.") from None
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError):
        raise CheckpointError(f"Run {name} cannot be loaded: its config.json is damaged or from another "
                              "version; delete the run and train again.") from None
    try:
        model = build_model(config.model)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0].rstrip(".") if str(exc) else "it is not valid"
        raise CheckpointError(f"Run {name} cannot be loaded: its config describes a model that cannot be "
                              f"built ({reason}).") from None

    state = _load_tensors(path / WEIGHTS_FILE, name)
    if not isinstance(state, dict):
        raise CheckpointError(f"Run {name} cannot be loaded: its weights.pt does not hold a model's weights; "
                              "delete the run and train again.")
    _check_fit(name, config, model, state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise CheckpointError(f"Run {name} cannot be loaded: its weights do not fit its config "
                              f"({describe_model(config)}); train it again or delete it.") from None
    model.eval()

    warnings_: list[str] = []
    try:
        info = _read_json(path / INFO_FILE)
        if _info_problem(info):
            raise ValueError
    except (OSError, ValueError, UnicodeDecodeError):
        info = {}
        warnings_.append("info.json is damaged")
    metrics = _read_metrics(path)
    if metrics is None:
        metrics = {}
        warnings_.append("metrics.json is missing or damaged, so the run has no loss history")

    film_originals, film = None, []
    try:
        film_data = _load_tensors(path / FILM_FILE, name)
    except CheckpointError as exc:
        if "for safety" in str(exc):
            raise  # code hidden in the film is as dangerous as code in the weights
        warnings_.append("film.pt is missing or damaged, so the run has no reconstruction film")
    else:
        if isinstance(film_data, dict):
            originals = film_data.get("originals")
            film_originals = originals if isinstance(originals, torch.Tensor) and originals.dim() == 4 else None
            frames = film_data.get("frames")
            film = list(frames.unbind(0)) if isinstance(frames, torch.Tensor) and frames.dim() == 5 else []
    if warnings_:
        info["load_warnings"] = warnings_

    return Run(
        name=name,
        path=path,
        config=config,
        model=model,
        history=list(metrics.get("history") or []),
        batch_losses=[float("nan") if x is None else float(x) for x in metrics.get("batch_losses") or []],
        film_originals=film_originals,
        film=film,
        test_metrics=dict(metrics.get("test_metrics") or {}),
        info=info,
    )


def load_history(root, name: str) -> list[dict]:
    """A run's per-epoch records (EpochRecord dicts) from its metrics.json alone: comparing runs
    needs no weights or film."""
    metrics = _read_metrics(_run_dir(root, name))
    if metrics is None:
        raise CheckpointError(f"Run {name} has no loss history: its metrics.json is missing or damaged; "
                              "delete the run or train it again.")
    return [dict(r) for r in metrics.get("history") or [] if isinstance(r, dict)]


def load_resume(root, name: str):
    """What core.train.train(resume=...) needs to continue run `name`: its last weights and
    optimiser state (resume.pt, weights_only), its best weights, history, batch losses and film.
    CheckpointError when the run cannot be continued (diverged, saved before resume.pt existed,
    damaged)."""
    from core.train import EpochRecord, ResumeFrom  # core.train imports nothing from here

    run = load_run(root, name)
    path = run.path / RESUME_FILE
    if not path.is_file():
        raise CheckpointError(f"Run {name} cannot be resumed: it has no saved optimiser state (it diverged "
                              "or was saved by an older version); train a new run instead.")
    state = _load_tensors(path, name)
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) \
            or not isinstance(state.get("optimizer"), dict):
        raise CheckpointError(f"Run {name} cannot be resumed: its {RESUME_FILE} is damaged; "
                              "train a new run instead.")
    _check_fit(name, run.config, run.model, state["model"])
    fields = set(EpochRecord.__dataclass_fields__)
    try:
        history = [EpochRecord(**{k: (math.nan if r.get(k) is None and k != "epoch" else r[k]) for k in fields})
                   for r in run.history]
    except (KeyError, TypeError, AttributeError):
        raise CheckpointError(f"Run {name} cannot be resumed: its metrics.json is damaged; "
                              "train a new run instead.") from None
    if [r.epoch for r in history] != list(range(1, len(history) + 1)):
        raise CheckpointError(f"Run {name} cannot be resumed: its epochs are not numbered 1, 2, 3...; "
                              "train a new run instead.")
    best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    return ResumeFrom(state=state, best_state=best_state, history=history,
                      batch_losses=list(run.batch_losses), film=list(run.film))


# ---------------------------------------------------------------- list / delete

def _best_record(history: list[dict]) -> dict | None:
    """The epoch with the lowest finite validation loss: its weights are the ones saved."""
    finite = [r for r in history if isinstance(r.get("val_loss"), (int, float)) and math.isfinite(r["val_loss"])]
    return min(finite, key=lambda r: r["val_loss"]) if finite else None


def _run_summary(path: Path) -> dict:
    info_path = path / INFO_FILE
    row: dict[str, Any] = {
        "name": path.name, "path": str(path), "dataset": None, "family": None, "preset": None,
        "model": None, "latent": None, "vae": None, "conditional": None, "dropout": None, "noise": None,
        "optimizer": None, "lr": None, "batch_size": None, "epochs_run": 0, "best_epoch": None,
        "train_loss": None, "val_loss": None, "test_mse": None, "test_mae": None,
        "status": "damaged", "message": "", "device": None, "seconds": None,
        "experiment": None, "factors": {},
        "created": datetime.fromtimestamp(info_path.stat().st_mtime, timezone.utc).astimezone().isoformat(
            timespec="seconds"),
    }
    try:
        problem = None
        info = _read_json(info_path)
        problem = _info_problem(info)
        if problem is None:
            config = RunConfig.from_json((path / CONFIG_FILE).read_text(encoding="utf-8"))
            metrics = _read_json(path / METRICS_FILE)
            problem = _metrics_problem(metrics)
    except ConfigError as exc:
        problem = f"its config.json is damaged: {exc.reason}"
    except FileNotFoundError as exc:
        problem = f"its {Path(exc.filename or '').name or 'files'} is missing"
    except (OSError, ValueError, TypeError, AttributeError, UnicodeDecodeError):
        problem = "a file is unreadable or not valid JSON"
    if problem is not None:
        row["message"] = f"Run {path.name} is damaged ({problem}); delete it."
        return row
    history = list(metrics.get("history") or [])
    best = _best_record(history)
    tests = metrics.get("test_metrics") or {}
    row.update({
        "dataset": config.data.dataset, "family": config.model.family,
        "preset": config.model.preset if config.model.family == "conv" else None,
        "model": _model_label(config), "latent": config.model.latent, "vae": config.model.vae,
        "conditional": config.model.conditional, "dropout": config.model.dropout,
        "noise": config.train.noise_factor, "optimizer": config.train.optimizer, "lr": config.train.lr,
        "batch_size": config.train.batch_size, "epochs_run": info.get("epochs_run", len(history)),
        "best_epoch": best.get("epoch") if best else None,
        "train_loss": best.get("train_loss") if best else None,
        "val_loss": best.get("val_loss") if best else None,
        "test_mse": tests.get("mse"), "test_mae": tests.get("mae"),
        "status": info.get("status", "unknown"), "message": info.get("message", ""),
        "device": info.get("device"), "seconds": info.get("seconds"),
        "experiment": info.get("experiment"),
        "factors": info.get("factors") if isinstance(info.get("factors"), dict) else {},
        "created": info.get("created") or row["created"],
    })
    return row


def run_summary(root, name: str) -> dict:
    """The list_runs row of one run (without listing the whole folder)."""
    return _run_summary(_run_dir(root, name))


def list_runs(root) -> list[dict]:
    """One flat dict per complete run in root, newest first.

    Keys: name, path, dataset, family, preset, model, latent, vae, conditional, dropout, noise,
    optimizer, lr, batch_size, epochs_run, best_epoch, train_loss, val_loss (both of the best
    epoch, whose weights were saved), test_mse, test_mae, status, message, device, seconds,
    experiment (the experiment the run belongs to, or None), factors (its factor values, dotted
    config path -> value; {} outside an experiment), created.
    Temporary and incomplete folders (no info.json) are skipped; a complete folder whose files
    cannot be read is listed with status "damaged" so it can still be seen and deleted."""
    root = Path(root)
    if not root.is_dir():
        return []
    rows = []
    for entry in root.iterdir():
        if entry.name.startswith(".") or not entry.is_dir() or not _NAME_RE.fullmatch(entry.name):
            continue
        if not (entry / INFO_FILE).is_file():
            continue
        try:
            rows.append(_run_summary(entry))
        except FileNotFoundError:  # deleted while listing
            continue
    rows.sort(key=lambda r: r["name"])
    rows.sort(key=lambda r: _created_key(r["created"]), reverse=True)
    return rows


def _created_key(created: str) -> float:
    try:
        return datetime.fromisoformat(created).timestamp()
    except (TypeError, ValueError):
        return 0.0


def delete_run(root, name: str) -> None:
    """Delete root/name. The folder is first renamed aside, so a half-deleted run never looks complete."""
    check_name(name)
    root = Path(root)
    path = root / name
    if not path.is_dir():
        raise CheckpointError(f"There is no run named {name} in {root} to delete.")
    aside = root / f"{_OLD_PREFIX}{name}-{secrets.token_hex(4)}"
    try:
        os.rename(path, aside)
    except OSError as exc:
        raise CheckpointError(f"Could not delete run {name}: {exc.strerror or exc}; check the folder's "
                              "permissions.") from None
    shutil.rmtree(aside, ignore_errors=True)
