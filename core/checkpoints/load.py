"""Loading a saved run back: config -> model -> weights (weights_only, mapped to the CPU), and
what resuming it needs. Every refusal is one sentence naming the run."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.checkpoints.files import (RunFileError, check_fit, finite_or_nan, load_tensors, read_config, read_info,
                                    read_metrics)
from core.checkpoints.names import FILM_FILE, RESUME_FILE, WEIGHTS_FILE, CheckpointError, describe_model, run_dir
from core.config import RunConfig
from core.models import Autoencoder, build_model


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
    info: dict = field(default_factory=dict)  # status, message, device, created, seconds, epochs_run, owner


def load_config(path: Path, name: str) -> RunConfig:
    """The run's config; CheckpointError (one sentence) when it is missing or damaged."""
    try:
        return read_config(path)
    except FileNotFoundError:
        raise CheckpointError(f"Run {name} cannot be loaded: its config.json is missing; "
                              "delete the run and train again.") from None
    except RunFileError as exc:
        raise CheckpointError(f"Run {name} cannot be loaded: {exc.reason}; delete the run and train again.") from None


def _build(config: RunConfig, name: str) -> Autoencoder:
    try:
        return build_model(config.model)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0].rstrip(".") if str(exc) else "it is not valid"
        raise CheckpointError(f"Run {name} cannot be loaded: its config describes a model that cannot be "
                              f"built ({reason}).") from None


def _load_weights(path: Path, name: str, config: RunConfig, model: Autoencoder) -> None:
    state = load_tensors(path / WEIGHTS_FILE, name)
    if not isinstance(state, dict):
        raise CheckpointError(f"Run {name} cannot be loaded: its weights.pt does not hold a model's weights; "
                              "delete the run and train again.")
    check_fit(name, config, model, state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise CheckpointError(f"Run {name} cannot be loaded: its weights do not fit its config "
                              f"({describe_model(config)}); train it again or delete it.") from None
    model.eval()


def _load_film(path: Path, name: str, warnings_: list[str]) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
    try:
        film_data = load_tensors(path / FILM_FILE, name)
    except CheckpointError as exc:
        if "for safety" in str(exc):
            raise  # code hidden in the film is as dangerous as code in the weights
        warnings_.append("film.pt is missing or damaged, so the run has no reconstruction film")
        return None, []
    if not isinstance(film_data, dict):
        return None, []
    originals = film_data.get("originals")
    frames = film_data.get("frames")
    return (originals if isinstance(originals, torch.Tensor) and originals.dim() == 4 else None,
            list(frames.unbind(0)) if isinstance(frames, torch.Tensor) and frames.dim() == 5 else [])


def load_run(root, name: str) -> Run:
    """Rebuild a saved run: config -> model -> weights (weights_only, mapped to the CPU).

    Refuses, with one sentence naming the run: a missing or incomplete run, a missing or damaged
    config.json, weights holding pickled code or objects, truncated or foreign weight files and
    weights that do not fit the config. A damaged (or oversized) info.json, metrics.json or
    film.pt does not block the model: the run loads without them and info["load_warnings"]
    says why."""
    path = run_dir(root, name)
    config = load_config(path, name)
    model = _build(config, name)
    _load_weights(path, name, config, model)

    warnings_: list[str] = []
    try:
        info = read_info(path)
    except (OSError, RunFileError):
        info = {}
        warnings_.append("info.json is damaged")
    try:
        metrics = read_metrics(path)
    except (OSError, RunFileError):
        metrics = {}
        warnings_.append("metrics.json is missing or damaged, so the run has no loss history")
    film_originals, film = _load_film(path, name, warnings_)
    if warnings_:
        info["load_warnings"] = warnings_
    return Run(name=name, path=path, config=config, model=model,
               history=list(metrics.get("history") or []),
               batch_losses=finite_or_nan(metrics.get("batch_losses") or []),
               film_originals=film_originals, film=film,
               test_metrics=dict(metrics.get("test_metrics") or {}), info=info)


def load_history(root, name: str) -> list[dict]:
    """A run's per-epoch records (EpochRecord dicts) from its metrics.json alone: comparing runs
    needs no weights or film."""
    try:
        metrics = read_metrics(run_dir(root, name))
    except (OSError, RunFileError):
        raise CheckpointError(f"Run {name} has no loss history: its metrics.json is missing or damaged; "
                              "delete the run or train it again.") from None
    return [dict(r) for r in metrics.get("history") or []]


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
    state = load_tensors(path, name)
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) \
            or not isinstance(state.get("optimizer"), dict):
        raise CheckpointError(f"Run {name} cannot be resumed: its {RESUME_FILE} is damaged; "
                              "train a new run instead.")
    check_fit(name, run.config, run.model, state["model"])
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
