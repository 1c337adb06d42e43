"""Bounds on the work one request may ask for, checked before anything is built or allocated.

The teacher sets them through environment variables (read when a WorkLimits is made):
    AE_LAB_MAX_PARAMS      model parameters per job        (default 20,000,000: 80 MB of weights)
    AE_LAB_MAX_IMAGE_SIZE  side of folder/shapes images    (default 128 pixels)
    AE_LAB_MAX_LATENT      latent size                     (default 1024)
    AE_LAB_MAX_EPOCHS      epochs per job                  (default 1000)
    AE_LAB_MAX_BATCH_MB    what one training batch keeps for its backward pass (default 2048 MB)
    AE_LAB_MAX_IMAGES      images in a folder/zip/shapes   (default 20,000)
    AE_LAB_MAX_WALK_SECONDS  time one folder walk may take (default 10)
    AE_LAB_MAX_PIXELS      pixels of one image file        (default 40,000,000)
    AE_LAB_MAX_UPLOAD_MB   size of one uploaded zip        (default 100)
    AE_LAB_MAX_UNZIPPED_MB what one zip may unpack to      (default 500)
    AE_LAB_MAX_UPLOADS_MB  all uploads together            (default 5000)
    AE_LAB_MAX_LAYERS      hidden layers (dense) or conv stages of one model (default 12)
    AE_LAB_MAX_GENERATED_MB  what a generated dataset (shapes) may hold in memory (default 256)
Parameters are counted arithmetically from the config (count_parameters), so a dense model of
30000,30000 hidden units is refused at once instead of after allocating gigabytes. A batch's
memory is the batch size times what one image keeps for the backward pass, measured on PyTorch's
meta device without allocating anything (core.models.activation_bytes_per_image): on one GPU
shared by a class, a student's batch of 60,000 would otherwise take the memory the other jobs use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

from core.config import CONV_PRESETS, RunConfig, ModelConfig, DataConfig

ENV_NAMES = {
    "max_params": "AE_LAB_MAX_PARAMS",
    "max_image_size": "AE_LAB_MAX_IMAGE_SIZE",
    "max_latent": "AE_LAB_MAX_LATENT",
    "max_epochs": "AE_LAB_MAX_EPOCHS",
    "max_batch_mb": "AE_LAB_MAX_BATCH_MB",
    "max_images": "AE_LAB_MAX_IMAGES",
    "max_walk_seconds": "AE_LAB_MAX_WALK_SECONDS",
    "max_image_pixels": "AE_LAB_MAX_PIXELS",
    "max_upload_mb": "AE_LAB_MAX_UPLOAD_MB",
    "max_unzipped_mb": "AE_LAB_MAX_UNZIPPED_MB",
    "max_uploads_mb": "AE_LAB_MAX_UPLOADS_MB",
    "max_layers": "AE_LAB_MAX_LAYERS",
    "max_generated_mb": "AE_LAB_MAX_GENERATED_MB",
}
# Image shapes of the fixed datasets (channels, side); folder and shapes follow their DataConfig.
_FIXED_SHAPES = {"digits": (1, 8), "mnist": (1, 28), "fashion-mnist": (1, 28), "cifar10": (3, 32)}


class LimitError(ValueError):
    """A request asks for more than the limits allow; one sentence naming the limit."""


@dataclass(frozen=True)
class WorkLimits:
    max_params: int = 20_000_000
    max_image_size: int = 128
    max_latent: int = 1024
    max_epochs: int = 1000
    # 2 GiB: the suggested batches (at most 128, core.defaults) of the large conv preset on the
    # largest allowed images (128 px, colour) keep about 1.5 GB; MNIST's batch of 128 keeps 30 MB.
    max_batch_mb: int = 2048
    max_images: int = 20_000
    max_walk_seconds: float = 10.0
    max_walk_depth: int = 6  # folders below a class folder (or below a data root when listing)
    max_image_pixels: int = 40_000_000  # below Pillow's own bomb warning (89 MP)
    max_upload_mb: int = 100
    max_unzipped_mb: int = 500
    max_uploads_mb: int = 5000  # everything in the uploads folder: a class cannot fill the disk
    max_zip_ratio: int = 100  # uncompressed / compressed size of one zip member (images barely compress)
    # Checked before any estimate runs: 12,000 typed hidden sizes cost 47 s of CPU in the memory
    # estimate alone. The homework's deepest model has 3 dense hidden layers or 3 conv stages.
    max_layers: int = 12
    # A generated dataset's uint8 images (shapes: count × 3 × side²): 20,000 shapes of 128 px held
    # 983 MB and took 9 s per seed; 256 MB still allows 20,000 shapes of 64 px or 5,400 of 128 px.
    max_generated_mb: int = 256

    @classmethod
    def from_env(cls, environ=None) -> "WorkLimits":
        """The defaults, overridden by the AE_LAB_MAX_* variables that are set."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            env = ENV_NAMES.get(f.name)
            text = environ.get(env, "").strip() if env else ""
            if not text:
                continue
            kind = float if f.name == "max_walk_seconds" else int
            try:
                value = kind(text.replace("_", "").replace(",", ""))
            except ValueError:
                raise LimitError(f"{env}={text!r} is not a number; set it to a positive number or unset it.") from None
            if value <= 0:
                raise LimitError(f"{env}={text!r} must be above 0; set a positive number or unset it.")
            values[f.name] = value
        return cls(**values)

    @classmethod
    def unlimited(cls) -> "WorkLimits":
        """For whoever has a shell on the machine (the CLI's --no-limits)."""
        big = 10**18
        return cls(max_params=big, max_image_size=big, max_latent=big, max_epochs=big, max_batch_mb=big, max_images=big,
                   max_walk_seconds=float("inf"), max_walk_depth=64, max_image_pixels=big, max_upload_mb=big,
                   max_unzipped_mb=big, max_zip_ratio=big, max_uploads_mb=big, max_layers=big, max_generated_mb=big)


# ---------------------------------------------------------------- parameter count

def _linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _conv_sides(image_size: int, stages: int) -> tuple[list[int], list[int]]:
    """The encoder's sides and strides, as core.models._conv_parts computes them."""
    sides, strides = [image_size], []
    for _ in range(stages):
        stride = 2 if sides[-1] > 2 else 1
        strides.append(stride)
        sides.append((sides[-1] - 1) // stride + 1)
    return sides, strides


def count_parameters(cfg: ModelConfig) -> int:
    """The number of parameters core.models.build_model(cfg) would have, computed without
    building anything (integer arithmetic; a test holds it equal to the real count)."""
    labels = cfg.num_classes if cfg.conditional else 0
    c, s = int(cfg.in_channels), int(cfg.image_size)
    if cfg.family == "dense":
        sizes = [c * s * s, *map(int, cfg.hidden)]
        total = sum(_linear(a, b) for a, b in zip(sizes, sizes[1:]))
        back = sizes[::-1]
        total += _linear(cfg.latent + labels, back[0])
        total += sum(_linear(a, b) for a, b in zip(back, back[1:]))
        features = sizes[-1]
    else:
        channels = [c, *(list(cfg.channels) if cfg.channels else CONV_PRESETS.get(cfg.preset, []))]
        sides, strides = _conv_sides(s, len(channels) - 1)
        total = 0
        for c_in, c_out in zip(channels, channels[1:]):  # conv (no bias) + norm, twice per stage
            total += 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out
        features = channels[-1] * sides[-1] * sides[-1]
        total += _linear(cfg.latent + labels, features)
        for i in reversed(range(len(strides))):
            total += 9 * channels[i + 1] ** 2 + 2 * channels[i + 1]  # the stride-1 block
            if i == 0:
                total += 9 * channels[1] * channels[0] + channels[0]  # image layer, with bias
            else:
                total += 9 * channels[i + 1] * channels[i] + 2 * channels[i]  # no bias + norm
    heads = 2 if cfg.vae else 1
    return total + heads * _linear(features + labels, cfg.latent) + _label_style_parameters(cfg, labels)


def _label_style_parameters(cfg: ModelConfig, labels: int) -> int:
    """A conditional decoder's per-label scale and shift of its hidden layers (core.models.LabelStyle)."""
    if not labels:
        return 0
    if cfg.family == "dense":
        styled = list(map(int, cfg.hidden))[::-1][1:]  # the hidden Linears after the first, back to the image
    else:
        channels = list(cfg.channels) if cfg.channels else CONV_PRESETS.get(cfg.preset, [])
        styled = [c for i in reversed(range(len(channels))) for c in ([channels[i]] + ([channels[i - 1]] if i else []))]
    return sum(2 * labels * c for c in styled)


# Datasets drawn on the fly (core.data.shapes, core.data.styles): colour, of the size and count asked for.
GENERATED_DATASETS = ("shapes", "styles")


def image_shape(data: DataConfig) -> tuple[int, int]:
    """(channels, side) of the images a DataConfig will give, known before loading it."""
    if data.dataset in _FIXED_SHAPES:
        return _FIXED_SHAPES[data.dataset]
    if data.dataset in GENERATED_DATASETS:
        return 3, int(data.image_size)
    return int(data.channels), int(data.image_size)


# ---------------------------------------------------------------- checks

def check_data(data: DataConfig, limits: WorkLimits) -> None:
    """Image size and image count of the datasets whose size the student chooses."""
    if data.dataset in ("folder", *GENERATED_DATASETS) and data.image_size > limits.max_image_size:
        raise LimitError(f"Image size {data.image_size} is above this server's limit of {limits.max_image_size} "
                         f"pixels ({ENV_NAMES['max_image_size']}); pick {limits.max_image_size} or less.")
    if data.dataset in GENERATED_DATASETS and data.shapes_count > limits.max_images:
        what = "shapes" if data.dataset == "shapes" else "generated images"
        raise LimitError(f"{data.shapes_count:,} {what} are above this server's limit of {limits.max_images:,} "
                         f"images ({ENV_NAMES['max_images']}); generate fewer.")
    if data.dataset in GENERATED_DATASETS:
        check_generated(data.shapes_count, 3, data.image_size, limits)


def check_generated(count: int, channels: int, side: int, limits: WorkLimits) -> None:
    """What a generated dataset would hold in memory (uint8), before anything is drawn."""
    size = int(count) * int(channels) * int(side) ** 2
    allowed = limits.max_generated_mb * 2**20
    if size <= allowed:
        return
    most = max(allowed // max(int(channels) * int(side) ** 2, 1), 0)
    raise LimitError(f"{int(count):,} generated images of {int(side)} pixels would take {_megabytes(size)}, above "
                     f"this server's limit of {limits.max_generated_mb:,} MB ({ENV_NAMES['max_generated_mb']}); "
                     f"generate at most {most:,} at that size, or smaller images.")


def check_layers(model: ModelConfig, limits: WorkLimits) -> None:
    """The number of layers a student typed, before anything counts or builds them."""
    for what, values in (("hidden layers", model.hidden if model.family == "dense" else []),
                         ("conv stages", model.channels if model.family != "dense" else [])):
        if len(values) > limits.max_layers:
            raise LimitError(f"{len(values):,} {what} are above this server's limit of {limits.max_layers} "
                             f"({ENV_NAMES['max_layers']}); use at most {limits.max_layers}.")


def check_model(model: ModelConfig, limits: WorkLimits) -> int:
    """Latent size and parameter count of a model whose data shape is filled in; returns the count."""
    check_layers(model, limits)
    if model.latent > limits.max_latent:
        raise LimitError(f"Latent size {model.latent} is above this server's limit of {limits.max_latent} "
                         f"({ENV_NAMES['max_latent']}); pick a smaller latent size.")
    params = count_parameters(model)
    if params > limits.max_params:
        raise LimitError(f"This model would have {params:,} parameters, above this server's limit of "
                         f"{limits.max_params:,} ({ENV_NAMES['max_params']}); use fewer or smaller layers.")
    return params


def _megabytes(count: int) -> str:
    return f"{count / 2**30:,.1f} GB" if count >= 2**30 else f"{count / 2**20:,.0f} MB"


def check_batch(model: ModelConfig, batch_size: int, limits: WorkLimits) -> None:
    """The memory one training batch keeps for its backward pass, for a model whose data shape is
    filled in (call check_model first: the estimate builds the model, on the meta device)."""
    if limits.max_batch_mb >= WorkLimits.unlimited().max_batch_mb:
        return
    from core.models import activation_bytes_per_image

    per_image = activation_bytes_per_image(model)
    allowed = limits.max_batch_mb * 2**20
    if per_image * batch_size <= allowed:
        return
    env = ENV_NAMES["max_batch_mb"]
    most = allowed // max(per_image, 1)
    if most < 1:
        raise LimitError(f"One image keeps about {_megabytes(per_image)} in this model for its backward pass, above "
                         f"this server's limit of {limits.max_batch_mb:,} MB per batch ({env}); use fewer or "
                         f"narrower layers, or smaller images.")
    raise LimitError(f"A batch of {batch_size:,} images keeps about {_megabytes(per_image * batch_size)} in this "
                     f"model for its backward pass, above this server's limit of {limits.max_batch_mb:,} MB per "
                     f"batch ({env}); use a batch of at most {most:,} or a smaller model.")


def check_run(cfg: RunConfig, limits: WorkLimits) -> int:
    """Every limit a training job is held to, from its config alone (the data shape is taken from
    the DataConfig when the model's is not filled in yet); returns the parameter count."""
    if cfg.train.epochs > limits.max_epochs:
        raise LimitError(f"{cfg.train.epochs} epochs are above this server's limit of {limits.max_epochs} per run "
                         f"({ENV_NAMES['max_epochs']}); train for fewer epochs.")
    check_data(cfg.data, limits)
    model = ModelConfig(**vars(cfg.model))
    model.in_channels, model.image_size = image_shape(cfg.data)
    params = check_model(model, limits)
    check_batch(model, cfg.train.batch_size, limits)
    return params


# ---------------------------------------------------------------- out of memory

OUT_OF_MEMORY_MESSAGE = ("Training ran out of memory on the {where}; try a smaller batch size or a smaller "
                         "model (fewer or narrower layers, smaller images).")


def out_of_memory_message(exc: BaseException, device: str = "") -> str | None:
    """One sentence when exc is an out-of-memory error (CPU MemoryError, torch.OutOfMemoryError,
    or a RuntimeError saying "out of memory"), else None. Frees the GPU's cached blocks."""
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None)
    is_oom = isinstance(exc, MemoryError) or (oom_type is not None and isinstance(exc, oom_type)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())
    if not is_oom:
        return None
    text = f"{device} {exc}".lower()
    gpu = "cuda" in text or "gpu" in text or "mps" in text
    if gpu and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return OUT_OF_MEMORY_MESSAGE.format(where="GPU" if gpu else "CPU")
