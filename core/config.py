"""One config object flows through everything: widgets fill it, the trainer, the
checkpoint and the CLI read it, and a run's config.json rebuilds the exact model."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from core.validation import ConfigError, check_run, parse_section, shown

DATASET_NAMES = ("digits", "shapes", "styles", "mnist", "fashion-mnist", "cifar10", "folder")
TORCHVISION_DATASETS = ("mnist", "fashion-mnist", "cifar10")  # with an official test split
ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh")
OUTPUT_ACTIVATIONS = ("sigmoid", "none")
OPTIMIZERS = ("adam", "adamw", "sgd", "sgd_momentum", "rmsprop", "rprop")
LOSSES = ("mse", "mae", "bce")


@dataclass
class DataConfig:
    dataset: str = "digits"
    data_root: str = "data"  # torchvision datasets: folder that holds (or will hold) e.g. MNIST/raw
    folder: str = ""  # dataset == "folder": a folder of class sub-folders
    # The served app names folders inside allowed data roots (core.serving.roots): folder_root is
    # a root's name and folder a path relative to it. Empty: folder is a path as given (the CLI).
    folder_root: str = ""
    image_size: int = 32  # folder / shapes: square side the images are resized (drawn) to
    channels: int = 3  # folder: 1 (grey) or 3 (colour); shapes is always 3
    download: bool = False  # torchvision datasets: allowed to download when missing
    val_fraction: float = 0.1
    test_fraction: float = 0.1  # only for datasets without an official test split
    limit: int = 0  # cap on the number of images used (0 = all), handy in class
    shapes_count: int = 3000  # shapes / styles: how many images are drawn
    balanced: bool = False  # class-balanced sampling of training batches
    seed: int = 0  # fixes the split (and the generated shapes)
    # Classes left out of the train and validation splits (the test split keeps every class):
    # a model that never saw a class reconstructs it worse, which is how anomalies are scored.
    exclude_classes: list[int] = field(default_factory=list)


@dataclass
class ModelConfig:
    family: str = "conv"  # a name in core.models.FAMILIES: conv | spatial | dense
    preset: str = "small"  # conv, spatial: the family's preset (small | large), used when channels is empty
    hidden: list[int] = field(default_factory=lambda: [512, 256])  # dense hidden sizes
    channels: list[int] = field(default_factory=list)  # conv, spatial: channels per stage; empty = the preset's
    # conv, dense: the length of the code vector; spatial: the channels of the code's feature map
    latent: int = 16
    dropout: float = 0.0
    activation: str = "relu"
    output_activation: str = "sigmoid"
    vae: bool = False  # conv, dense
    beta: float = 1.0  # weight of the KL term (VAE only)
    conditional: bool = False  # conv, dense
    # Filled from the data before the model is built: the models derive their shapes from these.
    in_channels: int = 1
    image_size: int = 28  # square images: H == W == image_size
    num_classes: int = 10


@dataclass
class TrainConfig:
    optimizer: str = "adam"
    lr: float = 2e-3  # measured: 5 epochs of the conv AE on 8k MNIST digits reach test MSE ~0.014 (1e-3: ~0.016)
    batch_size: int = 128
    epochs: int = 10
    weight_decay: float = 0.0
    loss: str = "mse"
    noise_factor: float = 0.0  # > 0 makes it a denoising AE: x + f * N(0, 1), clipped to [0, 1]
    patience: int = 0  # early stopping after this many epochs without improvement (0 = off)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    film_images: int = 8  # fixed validation images reconstructed after every epoch
    cuda_graphs: bool = True  # on CUDA, capture the training step in a graph and replay it (core.cuda_graph)


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = ""  # run folder name; empty = generated when the run starts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """Every field is type- and range-checked (core.validation; a config.json is a file anyone
        can edit): a wrong value is a ConfigError naming the setting, never a TypeError from deep
        inside training."""
        if not isinstance(d, dict):
            raise ConfigError("the settings are not a JSON object")
        unknown = sorted(set(d) - {"data", "model", "train", "name"})
        if unknown:
            raise ConfigError(f"unknown sections {unknown}")
        name = d.get("name", "")
        if not isinstance(name, str):
            raise ConfigError(f"the setting name must be text, not {shown(name)}")
        cfg = cls(
            data=parse_section(DataConfig, d.get("data", {}), "data"),
            model=parse_section(ModelConfig, d.get("model", {}), "model"),
            train=parse_section(TrainConfig, d.get("train", {}), "train"),
            name=name,
        )
        check_run(cfg)
        return cfg

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            d = json.loads(text)
        except ValueError:
            raise ConfigError("the file is not valid JSON") from None
        return cls.from_dict(d)


def finite_or_none(value: Any) -> float | None:
    """A number as run summaries and the CLI's JSON lines give it: a float, or None for NaN/inf and non-numbers."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
