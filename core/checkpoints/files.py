"""Reading a run folder's files without trusting them: sizes are capped before parsing, every
field is type-checked (pages only ever see clean types), tensors load with weights_only=True.

A run folder may come from a bundle a student crafted, so each reader answers with either clean
values or a clause saying what is wrong ("its metrics.json is nested too deeply"), which the
listing shows as a damaged run and an import refuses.
"""
from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path
from typing import Any

from core.checkpoints.names import CONFIG_FILE, INFO_FILE, METRICS_FILE, CheckpointError, describe_model
from core.config import ConfigError, RunConfig
from core.safejson import JsonFileError, read_json
from core.serving.access import is_owner_key

# What a real run's files take: a config is a few KB; metrics.json holds one record per epoch and
# one loss per batch (a CLI run of 100 MNIST epochs at batch 32: 187,500 losses, about 5 MB).
MAX_CONFIG_BYTES = 256 << 10
MAX_INFO_BYTES = 256 << 10
MAX_METRICS_BYTES = 16 << 20
MAX_EPOCHS_RECORDED = 20_000
MAX_BATCH_LOSSES = 500_000
MAX_TEXT = 2_000  # characters of one free-text info field (a message, a note)

JSON_LIMITS = {CONFIG_FILE: MAX_CONFIG_BYTES, INFO_FILE: MAX_INFO_BYTES, METRICS_FILE: MAX_METRICS_BYTES}


class RunFileError(ValueError):
    """A run file that cannot be used; `reason` is a clause such as "its metrics.json is not valid JSON"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_run_json(folder: Path, file: str) -> Any:
    """The parsed JSON of folder/file, within that file's size cap. FileNotFoundError when missing;
    RunFileError ("its <file> is larger than 16 MB" ...) otherwise."""
    try:
        return read_json(folder / file, JSON_LIMITS[file])
    except JsonFileError as exc:
        raise RunFileError(f"its {file} {exc.reason}") from None


def is_number(value: Any, none_ok: bool = True) -> bool:
    """JSON numbers (NaN/inf were written as null, hence none_ok); bools are not numbers."""
    return (value is None and none_ok) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float)) or _is_text(value)


def _is_factor_value(value: Any) -> bool:
    """A factor's value: a setting (a number, a word) or a flat list of them (hidden sizes)."""
    return _is_scalar(value) or (isinstance(value, list) and len(value) <= 64 and all(map(_is_scalar, value)))


def _are_factors(value: Any) -> bool:
    return isinstance(value, dict) and len(value) <= 64 and all(
        isinstance(k, str) and len(k) <= 200 and _is_factor_value(v) for k, v in value.items())


def metrics_problem(metrics: Any) -> str | None:
    """What is wrong with a metrics.json's content (a clause), or None. Every field is checked,
    so nothing that reads a run later meets a string where it expects a number."""
    if not isinstance(metrics, dict):
        return "metrics.json is not a JSON object"
    history = metrics.get("history", [])
    if not isinstance(history, list):
        return "the history in metrics.json is not a list"
    if len(history) > MAX_EPOCHS_RECORDED:
        return f"metrics.json records more than {MAX_EPOCHS_RECORDED:,} epochs"
    for n, record in enumerate(history, start=1):
        if not isinstance(record, dict) or len(record) > 64:
            return f"entry {n} of the history in metrics.json is not an object"
        if not _is_whole(record.get("epoch")):
            return f"entry {n} of the history in metrics.json has no whole epoch number"
        bad = sorted(str(k) for k, v in record.items() if k != "epoch" and not is_number(v))
        if bad:
            return f"entry {n} of the history in metrics.json has a {bad[0][:40]} that is not a number"
    losses = metrics.get("batch_losses", [])
    if not isinstance(losses, list) or not all(is_number(x) for x in losses):
        return "the batch losses in metrics.json are not a list of numbers"
    if len(losses) > MAX_BATCH_LOSSES:
        return f"metrics.json records more than {MAX_BATCH_LOSSES:,} batch losses"
    tests = metrics.get("test_metrics", {})
    if not isinstance(tests, dict) or len(tests) > 64 or not all(is_number(v) for v in tests.values()):
        return "the test metrics in metrics.json are not numbers"
    return None


# info.json key -> (check, what it must be). Other keys (extra info) are kept only when they hold
# a plain value (text, a number, true/false): a page never meets a nested structure it did not ask for.
INFO_FIELDS = {
    "status": (_is_text, "text"),
    "message": (_is_text, "text"),
    "device": (lambda v: v is None or _is_text(v), "text"),
    "created": (_is_text, "text"),
    "seconds": (is_number, "a number"),
    "epochs_run": (_is_whole, "a whole number"),
    "step": (_is_text, "text"),
    "step_reason": (_is_text, "text"),
    "experiment": (lambda v: v is None or (isinstance(v, str) and len(v) <= 200), "a name"),
    "factors": (_are_factors, "a set of factor values"),
    "owner": (lambda v: v is None or is_owner_key(v), "an owner key"),
}


def info_problem(info: Any) -> str | None:
    if not isinstance(info, dict):
        return "info.json is not a JSON object"
    for key, (check, what) in INFO_FIELDS.items():
        if key in info and not check(info[key]):
            return f"the {key} in info.json is not {what}"
    return None


def clean_info(info: dict) -> dict:
    """An info.json that passed info_problem, without the extra keys that are not plain values."""
    return {k: v for k, v in info.items() if k in INFO_FIELDS or (isinstance(k, str) and _is_scalar(v))}


def read_info(folder: Path) -> dict:
    """A run folder's info.json, checked and cleaned; RunFileError (or FileNotFoundError)."""
    info = read_run_json(folder, INFO_FILE)
    problem = info_problem(info)
    if problem is not None:
        raise RunFileError(problem)
    return clean_info(info)


def read_metrics(folder: Path) -> dict:
    """A run folder's metrics.json, every field checked; RunFileError (or FileNotFoundError)."""
    metrics = read_run_json(folder, METRICS_FILE)
    problem = metrics_problem(metrics)
    if problem is not None:
        raise RunFileError(problem)
    return metrics


def read_config(folder: Path) -> RunConfig:
    """A run folder's config.json as a RunConfig; RunFileError (or FileNotFoundError)."""
    damaged = "its config.json is damaged or from another version"
    try:
        data = read_json(folder / CONFIG_FILE, MAX_CONFIG_BYTES)
        return RunConfig.from_dict(data)
    except JsonFileError as exc:
        raise RunFileError(f"{damaged}: it {exc.reason}") from None
    except ConfigError as exc:
        if exc.setting.startswith("model"):  # a broken rule of core.validation: no model can be built from it
            raise RunFileError(f"its config describes a model that cannot be built ({exc.reason})") from None
        raise RunFileError(f"{damaged}: {exc.reason}") from None
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError):
        raise RunFileError(damaged) from None


def load_tensors(path: Path, name: str) -> Any:
    """torch.load with weights_only=True, every failure turned into one sentence."""
    import torch  # here, not at the top: listing runs (every page's sidebar) needs no PyTorch

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


def _shape(t) -> str:
    return "×".join(map(str, t.shape)) or "scalar"


def check_fit(name: str, cfg: RunConfig, model, state: dict) -> None:
    """Say which layer does not fit, instead of PyTorch's multi-line load_state_dict error."""
    import torch

    from core.models.label_style import STATE_PREFIX as LABEL_STYLE_PREFIX

    prefix = f"Run {name} cannot be loaded: its weights do not fit its config ({describe_model(cfg)})"
    expected = model.state_dict()
    for key, want in expected.items():
        if key not in state and key.startswith(LABEL_STYLE_PREFIX):
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
        raise CheckpointError(f"{prefix}: the weights have a layer {str(extra[0])[:80]} the model does not have; "
                              "train it again or delete it.")


def finite_or_nan(values: list) -> list[float]:
    """Batch losses as floats (a diverged run's null is NaN)."""
    return [math.nan if x is None else float(x) for x in values]
