"""One preset per homework question: the question it answers, the dataset it was asked on, and the
grid (or search) that answers it. `preset_experiment` turns one into an ExperimentConfig on a base
the caller chooses (the app's chosen dataset, the CLI's options)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from core.config import RunConfig
from core.experiments.config import ExperimentConfig, ParamSpace, SearchConfig

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
           base={"model.family": "conv"}, photo_base={"model.family": "spatial"}),
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


def preset_base(preset: Preset, base: RunConfig | None = None) -> RunConfig:
    """The preset's base settings on top of `base` (default: RunConfig() on the preset's dataset)."""
    from core.experiments.config import set_path

    cfg = copy.deepcopy(base) if base is not None else RunConfig()
    if base is None:
        cfg.data.dataset = preset.dataset
        cfg.train.epochs = DEFAULT_EPOCHS
    photo = preset.photo_base if cfg.data.dataset in PHOTO_DATASETS else {}
    for path, value in {**preset.base, **photo}.items():
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
