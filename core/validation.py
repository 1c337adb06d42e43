"""Every type and range rule of the settings, in one place: the forms, the CLI, the run files
(RunConfig.from_dict), the experiment specs, the trainer, the data loader and the probe all ask
here, so each refuses the same value with the same sentence.

A violation is one plain sentence that names the setting in words and says what to use, e.g.
"Dropout must be at least 0 and below 1 (got 1.5); try 0 or 0.5." Sections are the config
dataclasses (RunConfig's data / model / train, and core.analysis.ProbeConfig as "probe").
This module imports no other part of core at load time: core.config parses through it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any, Callable, get_type_hints


class ConfigError(ValueError):
    """A config that cannot be used. str() is one sentence; `reason` is a clause callers can put
    into their own sentence (a run that cannot load names it); `setting` is where a broken rule
    sits (a dotted path, or its section: "model", ...), "" when the settings do not even parse."""

    def __init__(self, reason: str, sentence: str = "", setting: str = ""):
        self.reason = reason
        self.setting = setting
        super().__init__(sentence or f"The config cannot be used: {reason}; fix it or use the defaults.")


def _problem(sentence: str, setting: str = "") -> ConfigError:
    return ConfigError(sentence.rstrip("."), sentence, setting)


# ---------------------------------------------------------------- types (what a JSON file may hold)

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# annotation -> (check, what it must be); float fields also take whole numbers (JSON writes 1.0 as 1).
_FIELD_TYPES = {
    "str": (lambda v: isinstance(v, str), "text"),
    "int": (_is_whole, "a whole number"),
    "float": (_is_number, "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "list[int]": (lambda v: isinstance(v, list) and all(_is_whole(x) for x in v), "a list of whole numbers"),
}


def shown(value: Any) -> str:
    """A value as a sentence quotes it (JSON, at most 40 characters)."""
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, list, dict, type(None))) \
        else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def parse_section(kind, d: Any, section: str):
    """A config dataclass from a dict, refusing keys it does not know (a typo or a config from
    another version should be said, not silently dropped) and values of the wrong type."""
    if not isinstance(d, dict):
        raise ConfigError(f"the {section} settings must be a JSON object, not {shown(d)}")
    unknown = sorted(set(d) - {f.name for f in fields(kind)})
    if unknown:
        raise ConfigError(f"unknown {section} settings {unknown}")
    hints = get_type_hints(kind)
    values = {}
    for key, value in d.items():
        hint = hints[key]
        check, what = _FIELD_TYPES.get(hint.__name__ if isinstance(hint, type) else str(hint), (None, ""))
        if check is not None and not check(value):
            raise ConfigError(f"the setting {section}.{key} must be {what}, not {shown(value)}")
        values[key] = float(value) if what == "a number" else value
    return kind(**values)


# ---------------------------------------------------------------- ranges and choices

@dataclass(frozen=True)
class Rule:
    """One setting's rule: `ok(value)` or the sentence "<name> <must> (got <value>); <advice>."."""

    setting: str  # section.field
    name: str  # the setting in words, as a sentence starts with it
    ok: Callable[[Any], bool]
    must: str
    advice: str
    applies: Callable[[Any], bool] = lambda section: True  # e.g. beta only for a VAE

    def problem(self, section) -> str | None:
        if not self.applies(section):
            return None
        return self.value_problem(getattr(section, self.setting.split(".", 1)[1]))

    def value_problem(self, value: Any) -> str | None:
        return None if self.ok(value) else f"{self.name} {self.must} (got {shown(value)}); {self.advice}."


@dataclass(frozen=True)
class Choice:
    """A setting that takes one of a list of names (the list is read when checking: core.config's)."""

    setting: str
    what: str  # "activation", "model family"
    choices: Callable[[], tuple | list | dict]

    def problem(self, section) -> str | None:
        return self.value_problem(getattr(section, self.setting.split(".", 1)[1]))

    def value_problem(self, value: Any) -> str | None:
        choices = list(self.choices())
        return None if value in choices else f"Unknown {self.what} {_quoted(value)}; choose one of {', '.join(choices)}."


def _quoted(value: Any) -> str:
    return shown(value).replace('"', "'")


def _config(name: str):
    from core import config

    return lambda: getattr(config, name)


def _families():
    from core.models import FAMILIES

    return FAMILIES


def unused_layer_factor(factors: dict, family: str) -> str | None:
    """The sentence when a grid varies the layer sizes a model of `family` does not read (dense
    hidden sizes on a convolutional model: every variant would be the same model), else None."""
    cls = _families().get(family)
    for path in ("model.hidden", "model.channels"):
        if cls is not None and path in factors and cls.layers_setting != path.split(".")[1]:
            what = "Dense hidden sizes" if path == "model.hidden" else "Conv channels"
            return (f"{what} do not change a {cls.title.lower()} model, so every variant would be the same; "
                    f"choose a model that has them on the Train page (or vary {cls.layers_setting} instead).")
    return None


def _at_least(low):
    return lambda v: _is_number(v) and v >= low


def _fraction(v) -> bool:
    return _is_number(v) and 0 <= v < 1


RULES: dict[str, list] = {
    "model": [
        Choice("model.family", "model family", _families),
        Choice("model.activation", "activation", _config("ACTIVATIONS")),
        Choice("model.output_activation", "output activation", _config("OUTPUT_ACTIVATIONS")),
        Rule("model.latent", "The latent size", _at_least(1), "must be at least 1", "pick a size like 2 or 16"),
        Rule("model.dropout", "Dropout", _fraction, "must be at least 0 and below 1", "try 0 or 0.5"),
        Rule("model.beta", "The KL weight beta", _at_least(0), "must not be negative", "try 1.0",
             applies=lambda m: m.vae),
    ],
    "train": [
        Choice("train.loss", "loss", _config("LOSSES")),
        Choice("train.optimizer", "optimiser", _config("OPTIMIZERS")),
        Rule("train.epochs", "Epochs", _at_least(1), "must be at least 1", "train for 1 epoch or more"),
        Rule("train.batch_size", "The batch size", _at_least(1), "must be at least 1", "try 64 or 128"),
        Rule("train.lr", "The learning rate", _at_least(0), "must be a number of at least 0", "try 0.002"),
        Rule("train.weight_decay", "The weight decay", _at_least(0), "must be a number of at least 0",
             "use 0 (off) or e.g. 0.0001"),
        Rule("train.noise_factor", "The noise factor", _at_least(0), "must be at least 0",
             "use 0 (plain) or e.g. 0.3 (denoising)"),
        Rule("train.patience", "The patience", _at_least(0), "must be 0 (off) or more", "try 0 or 3"),
    ],
    "data": [
        Rule("data.val_fraction", "The validation fraction", _fraction, "must be between 0 and 1 (1 excluded)",
             "pick a smaller value like 0.1"),
        Rule("data.test_fraction", "The test fraction", _fraction, "must be between 0 and 1 (1 excluded)",
             "pick a smaller value like 0.1"),
        Rule("data.limit", "The image limit", _at_least(0), "cannot be negative", "use 0 for all images"),
    ],
    "probe": [
        Rule("probe.epochs", "The classifier's epochs", _at_least(1), "must be at least 1", "try 20"),
        Rule("probe.batch_size", "The classifier's batch size", _at_least(1), "must be at least 1", "try 128"),
        Rule("probe.lr", "The classifier's learning rate", lambda v: _is_number(v) and v > 0, "must be above 0",
             "try 0.01"),
    ],
}


def _family_problems(m) -> list[str]:
    """What the model's family itself asks: its layer sizes (or preset), and whether it has the
    VAE and conditional variants (core.models.base.Autoencoder's class attributes)."""
    family = _families().get(m.family)
    if family is None:
        return []
    problems = []
    sizes = list(getattr(m, family.layers_setting))
    what = "hidden layer size" if family.layers_setting == "hidden" else f"{m.family} channel count"
    if not sizes and family.reads_preset and m.preset not in family.presets:
        problems.append(f"Unknown {m.family} preset {_quoted(m.preset)}; choose one of "
                        f"{', '.join(family.presets)} or give the channels yourself.")
    elif not sizes and not family.reads_preset:
        problems.append(f"The {m.family} model needs at least one {what}; add one, e.g. 256.")
    elif sizes and min(sizes) < 1:
        problems.append(f"Every {what} must be at least 1 (got {sizes}); use sizes like 16, 32.")
    for variant, on, why in (("VAE", m.vae, family.no_vae), ("conditional variant", m.conditional,
                                                             family.no_conditional)):
        if on and why:
            problems.append(f"The {m.family} family has no {variant}: {why}.")
    return problems


def _shape_problems(m) -> list[str]:
    problems = []
    if m.in_channels < 1 or m.image_size < 1:
        problems.append(f"The image shape {m.in_channels}×{m.image_size}×{m.image_size} is empty; "
                        "load a dataset before building the model.")
    if m.conditional and m.num_classes < 1:
        problems.append("A conditional model needs a dataset with at least one class; turn conditional off.")
    return problems


def _run_problems(cfg) -> list[str]:
    """Rules across sections."""
    if cfg.train.loss == "bce" and cfg.model.output_activation != "sigmoid":
        return ["The BCE loss needs outputs in [0, 1]; set the output activation to sigmoid or pick MSE or MAE."]
    return []


def _split_problems(data) -> list[str]:
    """The validation and test fractions together (a dataset with an official test split takes
    its validation images from its training part only)."""
    from core.config import TORCHVISION_DATASETS

    if (data.dataset not in TORCHVISION_DATASETS and _fraction(data.val_fraction) and _fraction(data.test_fraction)
            and data.val_fraction + data.test_fraction >= 1):
        return [f"The validation and test fractions add up to 1 or more ({data.val_fraction:g} + "
                f"{data.test_fraction:g}), leaving nothing to train on; lower them."]
    return []


def section_problems(section, name: str) -> list[str]:
    """Every rule of one section (a DataConfig as "data", a ModelConfig as "model", ...) it breaks."""
    problems = [p for rule in RULES[name] if (p := rule.problem(section))]
    if name == "model":
        problems += _shape_problems(section) + _family_problems(section)
    elif name == "data":
        problems += _split_problems(section)
    return problems


def problems(cfg, sections=("data", "model", "train")) -> list[str]:
    """Every rule a RunConfig breaks, one sentence each (the forms show them all)."""
    found = [p for name in sections for p in section_problems(getattr(cfg, name), name)]
    return found + (_run_problems(cfg) if {"model", "train"} <= set(sections) else [])


def check_run(cfg, sections=("data", "model", "train")) -> None:
    """Raise ConfigError (one sentence; .setting the section) for the first rule the RunConfig breaks."""
    for name in sections:
        check_section(getattr(cfg, name), name)
    if {"model", "train"} <= set(sections) and (across := _run_problems(cfg)):
        raise _problem(across[0], "train")


def check_section(section, name: str) -> None:
    if found := section_problems(section, name):
        raise _problem(found[0], name)


def check_model(cfg) -> None:
    """Raise ConfigError (one sentence) for a ModelConfig no model can be built from."""
    check_section(cfg, "model")


def setting_problem(setting: str, value: Any) -> str | None:
    """The sentence for one value of one setting (a URL parameter, a grid value, an optimiser's
    rate), by that setting's own rule; None when it is fine or has no rule of its own."""
    section = setting.split(".", 1)[0]
    rule = next((r for r in RULES.get(section, []) if r.setting == setting), None)
    return None if rule is None else rule.value_problem(value)


def check_setting(setting: str, value: Any) -> None:
    problem = setting_problem(setting, value)
    if problem:
        raise _problem(problem, setting)
