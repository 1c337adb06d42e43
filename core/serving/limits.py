"""Bounds on the work one request may ask for, checked before anything is built or allocated.

The teacher sets them through environment variables (read when a WorkLimits is made):
    AE_LAB_MAX_PARAMS      model parameters per job        (default 20,000,000: 80 MB of weights)
    AE_LAB_MAX_IMAGE_SIZE  side of folder/shapes images    (default 128 pixels)
    AE_LAB_MAX_LATENT      latent size                     (default 1024)
    AE_LAB_MAX_CODE        numbers in one image's code     (default 4096: a feature-map code grows with the image)
    AE_LAB_MAX_EPOCHS      epochs per job                  (default 1000)
    AE_LAB_MAX_BATCH_MB    what one training batch keeps for its backward pass (default 2048 MB)
    AE_LAB_MAX_IMAGES      images in a folder/zip/shapes   (default 20,000)
    AE_LAB_MAX_WALK_SECONDS  time one folder walk may take (default 10)
    AE_LAB_MAX_PIXELS      pixels of one image file        (default 40,000,000)
    AE_LAB_MAX_UPLOAD_MB   size of one uploaded zip        (default 100)
    AE_LAB_MAX_UNZIPPED_MB what one zip may unpack to      (default 500)
    AE_LAB_MAX_UPLOADS_MB  all uploads together            (default 5000)
    AE_LAB_MAX_STUDENT_UPLOADS_MB  one student's uploads together (default 300)
    AE_LAB_MAX_LAYERS      hidden layers (dense) or conv stages of one model (default 12)
    AE_LAB_MAX_GENERATED_MB  what a generated dataset (shapes) may hold in memory (default 256)
    AE_LAB_MAX_DECODE_MP   megapixels one folder load may decode (default 1000; core.imagecache)
The model's parameters and the memory one image keeps for its backward pass are measured on the
model itself, built on PyTorch's meta device, which has shapes but no storage
(core.models.parameter_count, activation_bytes_per_image): a dense model of 30000,30000 hidden
units is refused at once instead of after allocating gigabytes, and on one GPU shared by a class a
student's batch of 60,000 cannot take the memory the other jobs use. The number of layers is
checked before anything is built (check_layers): building 20,000 layers is itself the work.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

from core.config import RunConfig, ModelConfig, DataConfig
from core.validation import check_run as check_settings

ENV_NAMES = {
    "max_params": "AE_LAB_MAX_PARAMS",
    "max_image_size": "AE_LAB_MAX_IMAGE_SIZE",
    "max_latent": "AE_LAB_MAX_LATENT",
    "max_code": "AE_LAB_MAX_CODE",
    "max_epochs": "AE_LAB_MAX_EPOCHS",
    "max_batch_mb": "AE_LAB_MAX_BATCH_MB",
    "max_images": "AE_LAB_MAX_IMAGES",
    "max_walk_seconds": "AE_LAB_MAX_WALK_SECONDS",
    "max_image_pixels": "AE_LAB_MAX_PIXELS",
    "max_upload_mb": "AE_LAB_MAX_UPLOAD_MB",
    "max_unzipped_mb": "AE_LAB_MAX_UNZIPPED_MB",
    "max_uploads_mb": "AE_LAB_MAX_UPLOADS_MB",
    "max_student_uploads_mb": "AE_LAB_MAX_STUDENT_UPLOADS_MB",
    "max_layers": "AE_LAB_MAX_LAYERS",
    "max_generated_mb": "AE_LAB_MAX_GENERATED_MB",
    "max_decode_mp": "AE_LAB_MAX_DECODE_MP",
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
    # A spatial code is latent × h × w numbers (16 × 8 × 8 = 1,024 for a 64-px photo); the Inspect
    # pages hold the codes of up to 10,000 test images and project them: 4,096 numbers is 160 MB.
    max_code: int = 4096
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
    # One student's uploads, every file counted (unreadable ones too), so one student cannot take
    # the class's space: 480 MB of zeros in a 547 KB zip once took a tenth of it for one student.
    max_student_uploads_mb: int = 300
    max_zip_ratio: int = 100  # uncompressed / compressed size of each zip member and of the whole zip
    # Checked before any estimate runs: 12,000 typed hidden sizes cost 47 s of CPU in the memory
    # estimate alone. The homework's deepest model has 3 dense hidden layers or 3 conv stages.
    max_layers: int = 12
    # A generated dataset's uint8 images (shapes: count × 3 × side²): 20,000 shapes of 128 px held
    # 983 MB and took 9 s per seed; 256 MB still allows 20,000 shapes of 64 px or 5,400 of 128 px.
    max_generated_mb: int = 256
    # What one load of a folder may decode; large images are decoded once and kept (core.imagecache),
    # and those cost nothing again. 30 black 6000×6000 PNGs (a 16 KB zip) are 1,080 megapixels:
    # 11-15 s of CPU for every new ?size= before. A photo (JPEG) decodes at 1/8 scale: 2,000 12-MP
    # photos are about 400.
    max_decode_mp: int = 1000

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
        return cls(max_params=big, max_image_size=big, max_latent=big, max_code=big, max_epochs=big, max_batch_mb=big, max_images=big,
                   max_walk_seconds=float("inf"), max_walk_depth=64, max_image_pixels=big, max_upload_mb=big,
                   max_unzipped_mb=big, max_zip_ratio=big, max_uploads_mb=big, max_student_uploads_mb=big,
                   max_layers=big, max_generated_mb=big, max_decode_mp=big)


# ---------------------------------------------------------------- shapes

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
    from core.models import FAMILIES

    family = FAMILIES.get(model.family)
    values = getattr(model, family.layers_setting) if family is not None else []
    what = "hidden layers" if family is not None and family.layers_setting == "hidden" else "conv stages"
    if len(values) > limits.max_layers:
        raise LimitError(f"{len(values):,} {what} are above this server's limit of {limits.max_layers} "
                         f"({ENV_NAMES['max_layers']}); use at most {limits.max_layers}.")


def check_model(model: ModelConfig, limits: WorkLimits) -> int:
    """Latent size and parameter count of a model whose data shape is filled in; returns the count.
    A config no model can be built from is a ConfigError (core.validation), also a ValueError."""
    from core.models import code_size_of, parameter_count

    check_layers(model, limits)
    if model.latent > limits.max_latent:
        raise LimitError(f"Latent size {model.latent} is above this server's limit of {limits.max_latent} "
                         f"({ENV_NAMES['max_latent']}); pick a smaller latent size.")
    params = parameter_count(model)
    if params > limits.max_params:
        raise LimitError(f"This model would have {params:,} parameters, above this server's limit of "
                         f"{limits.max_params:,} ({ENV_NAMES['max_params']}); use fewer or smaller layers.")
    if (code := code_size_of(model)) > limits.max_code:
        raise LimitError(f"This model's code would hold {code:,} numbers per image, above this server's limit of "
                         f"{limits.max_code:,} ({ENV_NAMES['max_code']}); pick a smaller latent size.")
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
    the DataConfig when the model's is not filled in yet); returns the parameter count. A config
    that breaks a rule of core.validation is refused first, with its ConfigError (a ValueError)."""
    check_settings(cfg)
    if cfg.train.epochs > limits.max_epochs:
        raise LimitError(f"{cfg.train.epochs} epochs are above this server's limit of {limits.max_epochs} per run "
                         f"({ENV_NAMES['max_epochs']}); train for fewer epochs.")
    check_data(cfg.data, limits)
    model = ModelConfig(**vars(cfg.model))
    model.in_channels, model.image_size = image_shape(cfg.data)
    params = check_model(model, limits)
    check_batch(model, cfg.train.batch_size, limits)
    return params


def check_resume(run_name: str, done: int, more: int, limits: WorkLimits) -> None:
    """A resume's total epochs (those done and `more`) go through the per-run limit, as a new run's
    do, with how many more are allowed: the app's Resume and the CLI's resume say the same."""
    if done + more > limits.max_epochs:
        raise LimitError(f"Run {run_name} has {done} epochs; {more} more would make {done + more}, above "
                         f"this server's limit of {limits.max_epochs} per run; resume for at most "
                         f"{max(limits.max_epochs - done, 0)} more.")


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
