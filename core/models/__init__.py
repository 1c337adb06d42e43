"""The model families, built from a ModelConfig by their registered name (config.json's model.family).

Every layer shape is derived from cfg.in_channels / image_size / num_classes, so the same code
serves 8×8 digits, 28×28 MNIST and 128×128 colour photos. A family is one class in one file
(core.models.base says what it shares and what it must say about itself) plus its line below.
"""
from __future__ import annotations

from core.config import ModelConfig
from core.models.base import (MIN_KL_VALUES, OUTPUT_MEAN_MAX, OUTPUT_MEAN_MIN, AEOutput, Autoencoder,
                              fit_output_bias, kl_divergence, reconstruction_loss)
from core.models.conv import ConvAutoencoder
from core.models.dense import DenseAutoencoder
from core.models.label_style import LabelStyle
from core.models.measure import activation_bytes_per_image, code_size_of, layer_table, parameter_count
from core.models.spatial import SpatialAutoencoder
from core.validation import check_model

# name -> family, in the order the forms offer them.
FAMILIES: dict[str, type[Autoencoder]] = {
    "conv": ConvAutoencoder,
    "spatial": SpatialAutoencoder,
    "dense": DenseAutoencoder,
}


def build_model(cfg: ModelConfig) -> Autoencoder:
    """The model cfg describes (checked first: a ConfigError, a ValueError, names what is wrong)."""
    check_model(cfg)
    return FAMILIES[cfg.family](cfg)


def architecture_name(cfg: ModelConfig) -> str:
    """How run names and lists name the layers: e.g. conv-small, conv-8-16, spatial-large, dense-512-256."""
    cls = FAMILIES[cfg.family]
    sizes = getattr(cfg, cls.layers_setting)
    if cls.reads_preset and not sizes:
        return f"{cfg.family}-{cfg.preset}"
    return f"{cfg.family}-" + "-".join(map(str, sizes))


validate_config = check_model  # the name tests and older callers use

__all__ = ["FAMILIES", "MIN_KL_VALUES", "OUTPUT_MEAN_MAX", "OUTPUT_MEAN_MIN", "AEOutput", "Autoencoder",
           "ConvAutoencoder", "DenseAutoencoder", "LabelStyle", "SpatialAutoencoder", "activation_bytes_per_image",
           "architecture_name", "build_model", "code_size_of", "fit_output_bias", "kl_divergence",
           "layer_table", "parameter_count", "reconstruction_loss", "validate_config"]
