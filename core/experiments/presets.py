"""One preset per homework question: the question it answers, the dataset it was asked on, and the
grid (or search) that answers it. `preset_experiment` turns one into an ExperimentConfig on a base
the caller chooses: in the app the student's own settings (`experiment_base`: the Train form's or a
saved run's, with batch size and epochs fitted to the data unless the student set them), in the
CLI its options."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from core.config import RunConfig
from core.defaults import suggested_training
from core.experiments.config import ExperimentConfig, ParamSpace, SearchConfig, get_path, set_path

DEFAULT_EPOCHS = 5
# Photos: a dense code of 16 numbers keeps only a photo's colour layout (brown blurs), so a preset's
# photo_base (e.g. the spatial-code model) replaces its base settings on these datasets.
PHOTO_DATASETS = ("folder", "cifar10")


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    question: str  # one sentence shown to students
    dataset: str  # the dataset the homework asked it on
    grid: dict[str, list] = field(default_factory=dict)
    variants: tuple[dict[str, Any], ...] = ()
    base: dict[str, Any] = field(default_factory=dict)  # dotted path -> value set on the base config
    photo_base: dict[str, Any] = field(default_factory=dict)  # ... and on PHOTO_DATASETS, these too
    search: SearchConfig | None = None
    views: tuple[str, ...] = ()  # the preset's own result views beyond the common ones


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("size-dropout", "Model size × dropout",
           "Does a larger convolutional model over-fit more, and does dropout 0.5 close the gap "
           "between training and validation loss?",
           "mnist", grid={"model.preset": ["small", "large"], "model.dropout": [0.0, 0.5]},
           # channels of their own would override the size preset: every variant the same model
           base={"model.family": "conv", "model.channels": []}, photo_base={"model.family": "spatial"}),
    Preset("optimisers", "Optimisers × batch size",
           "Which optimiser learns fastest at the same learning rate, and how does the batch size "
           "change the loss and the time per epoch?",
           "mnist", grid={"train.optimizer": ["adam", "sgd", "sgd_momentum", "rmsprop", "rprop"],
                          "train.batch_size": [32, 256]}),
    Preset("latent-sizes", "Latent sizes",
           "How does the reconstruction loss fall as the bottleneck (latent size) grows?",
           "fashion-mnist", grid={"model.latent": [2, 4, 8, 16, 32]}),
    Preset("activations", "Activations in a dense AE",
           "Does a dense 1000-500-250-2 autoencoder learn better with ReLU, sigmoid or tanh?",
           "mnist", grid={"model.activation": ["relu", "sigmoid", "tanh"]},
           base={"model.family": "dense", "model.hidden": [1000, 500, 250], "model.latent": 2}),
    Preset("denoising", "Denoising",
           "Does training on noisy inputs (noise factor 0.3 or 0.6) make the reconstructions of "
           "noisy images better than a plain autoencoder's?",
           "mnist", grid={"train.noise_factor": [0.0, 0.3, 0.6]}, views=("noise_sweep",)),
    Preset("ae-vs-vae", "AE vs VAE",
           "What does a VAE give up in reconstruction for what it gains in generation, and how does "
           "the KL weight β move that balance?",
           "fashion-mnist",
           variants=({"model.vae": False}, {"model.vae": True, "model.beta": 0.5},
                     {"model.vae": True, "model.beta": 1.0}, {"model.vae": True, "model.beta": 4.0}),
           base={"model.latent": 8}, views=("samples",)),
    Preset("conditional", "Plain vs conditional",
           "Does giving the decoder the label help reconstruction, and what does an image look like "
           "decoded with the wrong label?",
           "mnist", grid={"model.conditional": [False, True]}, base={"model.latent": 4},
           views=("wrong_label",)),
    Preset("anomaly", "Anomaly detection",
           "If a model never sees one class, can its reconstruction error pick out that class among "
           "all the others?",
           "mnist", grid={"data.exclude_classes": [[0], [4], [7]]}, base={"model.latent": 8},
           views=("anomaly",)),
    Preset("search", "Hyper-parameter search",
           "Which learning rate, latent size, dropout and batch size give the lowest validation loss?",
           "mnist", search=SearchConfig(space={
               "train.lr": ParamSpace("float", 1e-4, 1e-1, log=True),
               "model.latent": ParamSpace("categorical", choices=[2, 4, 8, 16, 32]),
               "model.dropout": ParamSpace("float", 0.0, 0.5),
               "train.batch_size": ParamSpace("categorical", choices=[32, 64, 128, 256]),
           }, trials=20), views=("search",)),
)}


def experiment_base(settings: RunConfig, train_images: int | None, keep_training: bool = False) -> RunConfig:
    """An experiment's base on the student's own settings (the Train form's, or a saved run's):
    a copy of `settings` without its run name, with the batch size and epochs core.defaults
    suggests for `train_images` training images unless `keep_training` (the student chose them;
    also when train_images is unknown). ~200 photos in batches of 128 make 2 optimiser steps an
    epoch: a preset's fixed batch and epochs rebuilt every photo as a flat brown square."""
    cfg = copy.deepcopy(settings)
    cfg.name = ""
    if not keep_training and train_images:
        suggestion = suggested_training(train_images)
        cfg.train.batch_size, cfg.train.epochs = suggestion.batch_size, suggestion.epochs
    return cfg


def preset_changes(name: str, base: RunConfig) -> dict[str, Any]:
    """The settings preset `name` sets on the base that differ from the base's own (dotted path ->
    the preset's value), e.g. {"model.family": "dense", "model.hidden": [1000, 500, 250]}: what the
    page says the preset changes of the student's settings."""
    settings = preset_settings(PRESETS[name], base.data.dataset)
    return {path: value for path, value in settings.items() if get_path(base, path) != value}


def preset_settings(preset: Preset, dataset: str) -> dict[str, Any]:
    """The settings the preset sets on its base for `dataset` (its photo_base too on photos)."""
    return {**preset.base, **(preset.photo_base if dataset in PHOTO_DATASETS else {})}


def check_variants(exp: ExperimentConfig, shape: tuple[int, int, int], num_classes: int, limits=None) -> None:
    """ValueError with one sentence naming the first variant that no run could train: a model that
    cannot be built, or (with `limits`, core.serving.limits.WorkLimits) one above the server's
    limits; checked from the settings, nothing built. The page says it before Start."""
    from core.experiments.config import describe_factors, expand_grid, variant_configs
    from core.models import validate_config
    from core.serving.limits import check_run

    labels = [describe_factors(f) for f in expand_grid(exp)] if exp.search is None else []
    for i, cfg in enumerate(variant_configs(exp)):
        cfg.model.in_channels, cfg.model.image_size, cfg.model.num_classes = shape[0], shape[1], num_classes
        try:
            validate_config(cfg.model)
            if cfg.train.batch_size < 1 or cfg.train.epochs < 1:
                raise ValueError("the batch size and the epochs must be at least 1.")
            if limits is not None:
                check_run(cfg, limits)
        except ValueError as exc:
            where = f"The variant {labels[i]}" if i < len(labels) else "The base settings"
            raise ValueError(f"{where} cannot run: {exc}") from None


def preset_base(preset: Preset, base: RunConfig | None = None) -> RunConfig:
    """The preset's base settings on top of `base` (default: RunConfig() on the preset's dataset)."""
    cfg = copy.deepcopy(base) if base is not None else RunConfig()
    if base is None:
        cfg.data.dataset = preset.dataset
        cfg.train.epochs = DEFAULT_EPOCHS
    for path, value in preset_settings(preset, cfg.data.dataset).items():
        set_path(cfg, path, value)
    return cfg


def preset_experiment(name: str, base: RunConfig | None = None, experiment_name: str = "") -> ExperimentConfig:
    """The ExperimentConfig of preset `name` on `base` (see preset_base); ValueError for an unknown one."""
    if name not in PRESETS:
        raise ValueError(f"There is no preset '{name}'; choose one of {', '.join(PRESETS)}.")
    preset = PRESETS[name]
    return ExperimentConfig(
        name=experiment_name or name,
        base=preset_base(preset, base),
        question=preset.question,
        preset=name,
        grid=copy.deepcopy(preset.grid),
        variants=[dict(v) for v in preset.variants],
        search=copy.deepcopy(preset.search),
    ).check()
