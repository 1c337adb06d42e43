"""The Optuna side of a search: the study (SQLite storage beside experiment.json, so it survives a
restart), one trial's settings from the search space, and what a finished study says (best
trial, pruned count, parameter importances)."""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from typing import Any

from core.experiments.config import ExperimentConfig, coerce
from core.experiments.store import STUDY_FILE, experiment_dir, study_url

# Importances need a few finished trials with different settings; fewer say so in one sentence.
MIN_TRIALS_FOR_IMPORTANCE = 3


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is ours to report
    return optuna


# One storage (one SQLAlchemy engine) per study database, shared by the page's reruns and the
# driver; past this many the least recently used is closed (its pooled connections).
MAX_OPEN_STORAGES = 8
_storages: OrderedDict[tuple[str, int | None], Any] = OrderedDict()
_storages_lock = threading.Lock()


def _inode(path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def study_storage(root, name: str):
    """The experiment's Optuna storage, opened once per database file (a deleted and re-made
    experiment of the same name has a new file, and gets a new storage)."""
    path = experiment_dir(root, name) / STUDY_FILE
    with _storages_lock:
        key = (str(path.resolve()), _inode(path))
        storage = _storages.get(key)
        if storage is None:
            storage = _optuna().storages.RDBStorage(study_url(root, name))
            key = (key[0], _inode(path))  # created with its tables: the file exists now
            _storages[key] = storage
            while len(_storages) > MAX_OPEN_STORAGES:
                _storages.popitem(last=False)[1].engine.dispose()
        _storages.move_to_end(key)
        return storage


def open_study(exp: ExperimentConfig, root):
    """The experiment's study, created on first use (same name as the experiment)."""
    optuna = _optuna()
    search = exp.search
    experiment_dir(root, exp.name).mkdir(parents=True, exist_ok=True)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=search.prune_startup_trials,
                                          n_warmup_steps=search.prune_warmup_epochs)
              if search.prune else optuna.pruners.NopPruner())
    study = optuna.create_study(storage=study_storage(root, exp.name), study_name=exp.name, load_if_exists=True,
                                direction=search.resolved_direction(), pruner=pruner,
                                sampler=optuna.samplers.TPESampler(seed=search.seed))
    if not study.get_trials(deepcopy=False):
        for params in search.first_trials:
            study.enqueue_trial(dict(params))
    return study


def load_study(root, name: str):
    """A saved search's study, read-only use (None when it has none)."""
    optuna = _optuna()
    if not (experiment_dir(root, name) / STUDY_FILE).is_file():
        return None
    try:
        return optuna.load_study(study_name=name, storage=study_storage(root, name))
    except KeyError:
        return None


def suggest(trial, exp: ExperimentConfig) -> dict[str, Any]:
    """One trial's settings (dotted path -> value) drawn from the search space."""
    params = {}
    for path, space in exp.search.space.items():
        if space.kind == "categorical":
            value = trial.suggest_categorical(path, list(space.choices))
        elif space.kind == "int":
            value = trial.suggest_int(path, int(space.low), int(space.high), log=space.log)
        else:
            value = trial.suggest_float(path, float(space.low), float(space.high), log=space.log)
        params[path] = coerce(path, value)
    return params


def trial_rows(study) -> list[dict]:
    """One row per trial: number, state, value, params (dotted path -> value), the epochs it
    reported (step -> validation loss) and its run (user attribute)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                     "params": dict(t.params), "run": t.user_attrs.get("run"),
                     "intermediate": {int(k): v for k, v in t.intermediate_values.items()}})
    return rows


def importances(study) -> tuple[dict[str, float], str]:
    """(setting -> importance, ""), or ({}, one sentence why there are none yet)."""
    optuna = _optuna()
    complete = [t for t in study.get_trials(deepcopy=False)
                if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}, (f"Parameter importances need at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials "
                    f"(this search has {len(complete)}); run more trials.")
    try:
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:  # e.g. every completed trial used the same settings
        return {}, f"Parameter importances could not be computed ({str(exc).splitlines()[0].rstrip('.')}); run more trials."
    return {k: float(v) for k, v in found.items()}, ""


def best_trial(study):
    """The best completed trial, or None."""
    try:
        return study.best_trial
    except ValueError:
        return None
