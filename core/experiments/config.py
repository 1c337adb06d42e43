"""An experiment's settings: a base RunConfig plus what varies — a grid of factors (dotted config
paths to value lists, expanded to their product, optionally times explicit variants) or an Optuna
search space — with a JSON round trip like RunConfig's (unknown keys refused)."""
from __future__ import annotations

import copy
import itertools
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from core.config import DATASET_NAMES, DataConfig, ModelConfig, RunConfig, TrainConfig
from core.validation import ConfigError, problems, setting_problem, unused_layer_factor

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
OBJECTIVES = {"val_loss": "minimize", "test_mse": "minimize", "probe_accuracy": "maximize"}
OBJECTIVE_LABELS = {"val_loss": "validation loss (best epoch)", "test_mse": "test MSE",
                    "probe_accuracy": "probe accuracy"}
PARAM_KINDS = ("float", "int", "categorical")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_NAME = 60  # leaves room in a run name for the variant's index and label
MAX_VARIANTS = 200  # a grid larger than this is a typo (or a search's job)


# ---------------------------------------------------------------- dotted config paths

def _field_default(path: str):
    section, _, name = path.partition(".")
    kind = SECTIONS.get(section)
    known = {f.name: f for f in fields(kind)} if kind else {}
    if kind is None or name not in known:
        raise ValueError(f"'{path}' is not a setting; use section.name with a section of "
                         f"{', '.join(SECTIONS)}, e.g. model.latent or train.lr.")
    return getattr(kind(), name)


def check_path(path: str) -> str:
    _field_default(path)
    return path


def _word_problem(path: str, value: str) -> str | None:
    """A setting that takes one of a few words: a typo is said when typed, not when its run fails
    (core.validation's choices, plus the dataset and the families' presets)."""
    if path == "data.dataset":
        choices = DATASET_NAMES
    elif path == "model.preset":
        from core.models import FAMILIES

        choices = tuple(dict.fromkeys(p for family in FAMILIES.values() for p in family.presets))
    else:
        return setting_problem(path, value)
    return None if value in choices else f"'{value}' is not a choice; use one of {', '.join(choices)}."


def coerce(path: str, value: Any) -> Any:
    """`value` in the type of the setting at `path` (an int given for a float setting becomes a
    float), or ValueError with one sentence."""
    default = _field_default(path)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str) and (problem := _word_problem(path, value)):
            raise ConfigError(problem, f"{path}: {problem}", path)
        if isinstance(value, str):
            return value
    elif isinstance(default, list):
        if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return list(value)
    kind = {bool: "true or false", int: "a whole number", float: "a number", str: "a word",
            list: "a list of whole numbers"}[type(default)]
    raise ValueError(f"{value!r} is not a valid value for {path} (it takes {kind}).")


def set_path(cfg: RunConfig, path: str, value: Any) -> None:
    section, _, name = path.partition(".")
    setattr(getattr(cfg, section), name, coerce(path, value))


def get_path(cfg: RunConfig, path: str) -> Any:
    check_path(path)
    section, _, name = path.partition(".")
    return getattr(getattr(cfg, section), name)


# ---------------------------------------------------------------- search space

@dataclass
class ParamSpace:
    """One searched setting: a float or int range (log scale optional) or a list of choices."""

    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list = field(default_factory=list)

    def check(self, path: str) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"{path}: '{self.kind}' is not a kind of search range; use one of "
                             f"{', '.join(PARAM_KINDS)}.")
        if self.kind == "categorical":
            if not self.choices:
                raise ValueError(f"{path}: give at least one choice to search over.")
            for choice in self.choices:
                if problem := setting_problem(path, coerce(path, choice)):
                    raise ConfigError(problem, f"{path}: {problem}")
            return
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"{path}: a search range needs low < high (got {self.low} and {self.high}).")
        if self.log and self.low <= 0:
            raise ValueError(f"{path}: a log-scale range must start above 0 (got {self.low}).")
        if problem := setting_problem(path, coerce(path, int(self.low) if self.kind == "int" else float(self.low))):
            raise ConfigError(problem, f"{path}: {problem}")

    def describe(self) -> str:
        if self.kind == "categorical":
            return ", ".join(map(str, self.choices))
        return f"{self.low:g} to {self.high:g}" + (" (log scale)" if self.log else "")


@dataclass
class SearchConfig:
    space: dict[str, ParamSpace] = field(default_factory=dict)
    trials: int = 20
    objective: str = "val_loss"  # val_loss | test_mse | probe_accuracy
    direction: str = ""  # minimize | maximize; empty = the objective's natural direction
    prune: bool = True  # stop trials whose per-epoch validation loss trails the median (MedianPruner)
    prune_startup_trials: int = 5  # MedianPruner's n_startup_trials: no pruning before this many finished
    prune_warmup_epochs: int = 0  # MedianPruner's n_warmup_steps: epochs a trial always gets
    seed: int = 0  # the sampler's seed (TPE)
    # Settings tried first, before the sampler chooses (Optuna's enqueue_trial), e.g. the
    # homework's own choice as a baseline: dotted path -> value per trial.
    first_trials: list[dict[str, Any]] = field(default_factory=list)

    def resolved_direction(self) -> str:
        return self.direction or OBJECTIVES.get(self.objective, "minimize")


# ---------------------------------------------------------------- the experiment

@dataclass
class ExperimentConfig:
    name: str
    base: RunConfig = field(default_factory=RunConfig)
    question: str = ""  # one sentence shown to students
    preset: str = ""  # the preset it came from ("" for a custom grid): chooses the result views
    grid: dict[str, list] = field(default_factory=dict)  # dotted path -> values (their product runs)
    # Explicit variants (dotted path -> value each), multiplied with the grid: for comparisons that
    # are not a product, e.g. a plain AE and VAEs with three betas.
    variants: list[dict[str, Any]] = field(default_factory=list)
    search: SearchConfig | None = None
    objective: str = "val_loss"  # what "best" means for a grid

    def check(self) -> "ExperimentConfig":
        """Raise ValueError (one sentence) for an unusable experiment; returns self."""
        if not self.name or len(self.name) > MAX_NAME or not _NAME_RE.match(self.name) or self.name[0] in ".-":
            raise ValueError(f"'{self.name}' is not a valid experiment name; use up to {MAX_NAME} letters, "
                             "digits, '.', '_' or '-'.")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"'{self.objective}' is not an objective; use one of {', '.join(OBJECTIVES)}.")
        if self.search is not None:
            if self.grid or self.variants:
                raise ValueError("An experiment is either a grid or a search, not both; drop one of them.")
            search = self.search
            if search.objective not in OBJECTIVES:
                raise ValueError(f"'{search.objective}' is not an objective; use one of {', '.join(OBJECTIVES)}.")
            if search.resolved_direction() not in ("minimize", "maximize"):
                raise ValueError(f"'{search.direction}' is not a direction; use minimize or maximize.")
            if not search.space:
                raise ValueError("A search needs at least one setting to search over.")
            if search.trials < 1:
                raise ValueError("A search needs at least one trial.")
            if search.prune and search.objective == "probe_accuracy":
                raise ValueError("Pruning follows the validation loss, so it cannot be used with the probe "
                                 "accuracy objective; turn pruning off.")
            for path, space in search.space.items():
                check_path(path)
                space.check(path)
            for params in search.first_trials:
                unknown = sorted(set(params) - set(search.space))
                if unknown:
                    raise ValueError(f"A first trial sets {unknown[0]}, which the search space does not have; "
                                     "add it to the space or drop it.")
            return self
        for path, values in self.grid.items():
            check_path(path)
            if not isinstance(values, list) or not values:
                raise ValueError(f"The factor {path} needs a list of at least one value.")
            for value in values:
                coerce(path, value)
        for variant in self.variants:
            for path, value in variant.items():
                coerce(path, value)
        count = variant_count(self)
        if count > MAX_VARIANTS:
            raise ValueError(f"This grid has {count} variants, more than {MAX_VARIANTS}; vary fewer settings "
                             "or use a search.")
        for index, factors in enumerate(expand_grid(self)):  # every rule of core.validation, per variant
            cfg = variant_config(self, factors, index)
            if problem := next(iter(problems(cfg)), None) or unused_layer_factor(factors, cfg.model.family):
                raise ConfigError(problem, f"Variant {index + 1} ({describe_factors(factors)}): {problem}")
        return self

    # JSON round trip
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentConfig":
        d = dict(d)
        _refuse_unknown(cls, d)
        search = d.get("search")
        if search is not None:
            search = dict(search)
            _refuse_unknown(SearchConfig, search)
            space = {}
            for path, spec in (search.get("space") or {}).items():
                _refuse_unknown(ParamSpace, spec)
                space[path] = ParamSpace(**spec)
            search["space"] = space
            search = SearchConfig(**search)
        return cls(
            name=d.get("name", ""),
            base=RunConfig.from_dict(d.get("base") or {}),
            question=d.get("question", ""),
            preset=d.get("preset", ""),
            grid={k: list(v) for k, v in (d.get("grid") or {}).items()},
            variants=[dict(v) for v in d.get("variants") or []],
            search=search,
            objective=d.get("objective", "val_loss"),
        )

    @classmethod
    def from_json(cls, text: str) -> "ExperimentConfig":
        return cls.from_dict(json.loads(text))


def _refuse_unknown(kind, d: dict) -> None:
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"Unknown {kind.__name__} settings {unknown}; known ones are {sorted(known)}.")


# ---------------------------------------------------------------- grid expansion

def variant_count(exp: ExperimentConfig) -> int:
    if exp.search is not None:
        return exp.search.trials
    return math.prod(len(v) for v in exp.grid.values()) * max(len(exp.variants), 1)


def expand_grid(exp: ExperimentConfig) -> list[dict[str, Any]]:
    """Every variant's factor values (dotted path -> value), the explicit variants outermost and
    the grid's factors in their given order, the last one changing fastest."""
    paths = list(exp.grid)
    product = [dict(zip(paths, values)) for values in itertools.product(*(exp.grid[p] for p in paths))]
    if not exp.variants:
        return [{p: coerce(p, v) for p, v in combo.items()} for combo in product]
    return [{p: coerce(p, v) for p, v in {**variant, **combo}.items()}
            for variant in exp.variants for combo in product]


def variant_config(exp: ExperimentConfig, factors: dict[str, Any], index: int) -> RunConfig:
    """The base config with the factors applied, named <experiment>-<NN>-<factor values>."""
    cfg = copy.deepcopy(exp.base)
    for path, value in factors.items():
        set_path(cfg, path, value)
    cfg.name = f"{exp.name}-{index + 1:02d}" + (f"-{factor_slug(factors)}" if factors else "")
    return cfg


def variant_configs(exp: ExperimentConfig) -> list[RunConfig]:
    """Every run the experiment will train, in order (a search: its base, once per trial)."""
    if exp.search is not None:
        return [copy.deepcopy(exp.base) for _ in range(variant_count(exp))]
    return [variant_config(exp, factors, i) for i, factors in enumerate(expand_grid(exp))]


def factor_label(path: str) -> str:
    """model.latent -> latent, train.noise_factor -> noise factor."""
    return path.partition(".")[2].replace("_", " ")


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):  # as parse_values reads it back: 1000-500-250
        return "-".join(map(str, value)) or "none"
    return str(value)


def describe_factors(factors: dict[str, Any]) -> str:
    """'latent 4 · dropout 0.5' (one variant's values, as the views label it)."""
    return " · ".join(f"{factor_label(p)} {format_value(v)}" for p, v in factors.items()) or "base"


def factor_slug(factors: dict[str, Any]) -> str:
    text = "-".join(f"{p.partition('.')[2]}{format_value(v)}" for p, v in factors.items())
    return re.sub(r"[^A-Za-z0-9._-]+", "", text.replace(",", "_"))[:40]


def _is_list_setting(path: str | None) -> bool:
    return path is not None and isinstance(_field_default(path), list)


def _size_list(text: str, whole: str) -> list[int]:
    """'1000-500-250' (or '1000 500 250', '1000,500,250', '[1000,500,250]') -> [1000, 500, 250];
    'none' or '[]' -> []."""
    part = text.strip()
    if part.startswith("[") and part.endswith("]"):
        part = part[1:-1]
    if part.lower() in ("", "none"):
        return []
    try:
        return [int(p) for p in re.split(r"[\s,\-]+", part.strip()) if p]
    except ValueError:
        raise ValueError(f"'{whole}' is not a list of whole numbers: write each list with '-' between its "
                         "numbers and ',' between lists, e.g. 1000-500-250,256-64.") from None


def parse_values(text: str, path: str | None = None) -> list:
    """A factor's values as typed (the page and the CLI's --grid share this): '2,4,6' -> [2, 4, 6];
    'false,true' -> [False, True]; 'adam,sgd' -> ['adam', 'sgd'] (JSON values where they parse,
    text otherwise). A setting whose value is a list (model.hidden, model.channels,
    data.exclude_classes; give `path`) takes lists: '-' between a list's numbers and ',' between
    the lists ('1000-500-250,256-64' -> [[1000, 500, 250], [256, 64]]), or ';' between the lists
    ('1000,500,250; 256,64'), or JSON ('[0],[1,2]'); 'none' is the empty list."""
    text = text.strip()
    if _is_list_setting(path):
        if ";" in text:
            parts = text.split(";")
        elif "[" in text:
            parts = re.findall(r"\[[^\]]*\]", text)
            if re.sub(r"\[[^\]]*\]|[\s,]", "", text):
                raise ValueError(f"'{text}' mixes lists in brackets with other text; write e.g. [1000,500,250],[256,64].")
        else:
            parts = text.split(",")
        values = [_size_list(p, text) for p in parts if p.strip()]
    else:
        try:
            values = json.loads(f"[{text}]")
        except ValueError:
            values = []
            for part in text.split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    values.append(json.loads(part))
                except ValueError:
                    values.append(part)
    if not values:
        example = "1000-500-250,256-64" if _is_list_setting(path) else "2,4,6"
        raise ValueError(f"'{text}' gives no values; list them separated by commas, e.g. {example}.")
    return values


def parse_factor(text: str) -> tuple[str, list]:
    """'model.latent=2,4,6' -> ('model.latent', [2, 4, 6]): a whole factor as the CLI's --grid takes
    it (values as parse_values reads them for that setting, each checked against its type)."""
    path, sep, values = text.partition("=")
    path, values = path.strip(), values.strip()
    if not sep or not path or not values:
        raise ValueError(f"'{text}' needs the form setting=values, e.g. model.latent=2,4,6.")
    check_path(path)
    parsed = parse_values(values, path)
    return path, [coerce(path, v) for v in parsed]


def parse_space(path: str, text: str) -> ParamSpace:
    """The search range for the setting at `path`: '1e-4:1e-1:log' -> a log-scale float range;
    '2:32' -> an int range for a whole-number setting (a float range for a float one);
    '0:0.5' -> a float range; '2,4,8,16' -> categorical."""
    if ":" in text:
        parts = text.split(":")
        log = len(parts) == 3 and parts[2].strip().lower() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise ValueError(f"'{text}' is not a range; write low:high or low:high:log, e.g. 1e-4:1e-1:log.")
        try:
            low, high = (json.loads(p.strip()) for p in parts[:2])
        except ValueError:
            raise ValueError(f"'{text}' is not a range of numbers; write e.g. 1e-4:1e-1:log.") from None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise ValueError(f"'{text}' is not a range of numbers; write e.g. 1e-4:1e-1:log.")
        whole = isinstance(_field_default(path), int) and not isinstance(_field_default(path), bool)
        kind = "int" if whole and isinstance(low, int) and isinstance(high, int) else "float"
        space = ParamSpace(kind=kind, low=low, high=high, log=log)
    else:
        space = ParamSpace(kind="categorical", choices=[coerce(path, v) for v in parse_values(text, path)])
    space.check(path)
    return space
