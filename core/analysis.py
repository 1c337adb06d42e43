"""Everything the Inspect pages compute from a trained model: reconstructions, noise sweeps, codes
and their 2-D projections, clusters, decodings (manifold grid, interpolation, sampling, every
label), image grids, and a classifier probe on the encoder.

All inference runs batched on the model's own device, in eval mode under torch.inference_mode();
images come in as uint8 N×C×H×W (or floats already in [0, 1]) and results go back on the CPU.
"""
from __future__ import annotations

import contextlib
import copy
import math
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.data import Dataset
from core.train import _SEED_LOCK, add_noise, inference_batch_size, resolve_device, to_float  # to_float: part of this module's API too

# The number of levels the Noise page sweeps: 0, 0.1, ..., 1.
DEFAULT_NOISE_LEVELS = np.linspace(0.0, 1.0, 11)
PROJECTIONS = ("raw", "pca", "tsne")
# At most this many of the most confidently wrong test predictions are reported by the probe.
MOST_CONFUSED = 16


# ----------------------------------------------------------------------------- helpers


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextlib.contextmanager
def _inference(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout, a VAE decodes its mean) without autograd; the mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _model_labels(model: nn.Module, labels, count: int, device: torch.device) -> torch.Tensor | None:
    """Labels as int64 on the device for a conditional model (an int means that label for every
    item); None for other models, which ignore labels."""
    if not model.cfg.conditional:
        return None
    if labels is None:
        raise ValueError("This model is conditional, so it needs the class labels too; pass labels.")
    if isinstance(labels, (int, np.integer)):
        return torch.full((count,), int(labels), dtype=torch.long, device=device)
    return torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels,
                           dtype=torch.long).to(device)


def _slice(labels: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    return None if labels is None else labels[start:stop]


def _as_codes(codes, model: nn.Module) -> torch.Tensor:
    """N×latent float32 on the model's device (a single code becomes a batch of one)."""
    z = torch.as_tensor(np.asarray(codes) if not torch.is_tensor(codes) else codes, dtype=torch.float32)
    if z.dim() == 1:
        z = z.unsqueeze(0)
    return z.to(_device(model))


def _batches(count: int, batch_size: int) -> range:
    return range(0, count, max(1, int(batch_size)))


def _batch_size(model: nn.Module, batch_size: int | None, values_per_item: int) -> int:
    """The caller's batch size, or (None) core.train.inference_batch_size for the model's device:
    thousands of images per batch on a GPU, cache-sized batches on the CPU."""
    if batch_size is not None:
        return max(1, int(batch_size))
    return inference_batch_size(_device(model), values_per_item)


def _pixels(images) -> int:
    return int(np.prod(tuple(images.shape[1:]))) if len(images.shape) > 1 else 1


# ----------------------------------------------------------------------------- encoding and reconstruction


def _float_batches(model, images_uint8, labels, batch_size: int):
    """(float images on the model's device, their labels or None), one batch at a time."""
    device = _device(model)
    count = len(images_uint8)
    batch_size = _batch_size(model, batch_size, _pixels(images_uint8))
    y = _model_labels(model, labels, count, device)
    for start in _batches(count, batch_size):
        yield to_float(images_uint8[start : start + batch_size].to(device)), _slice(y, start, start + batch_size)


def encode(model, images_uint8, labels=None, batch_size: int | None = None) -> np.ndarray:
    """The deterministic code of every image (a VAE's mean), N×latent float32."""
    with _inference(model):
        parts = [model.encode(x, y).float().cpu() for x, y in _float_batches(model, images_uint8, labels, batch_size)]
    if not parts:
        return np.zeros((0, model.cfg.latent), dtype=np.float32)
    return torch.cat(parts).numpy()


def _reconstruct_batches(model, x: torch.Tensor, y: torch.Tensor | None, batch_size: int) -> torch.Tensor:
    """Reconstructions of float images already on the model's device (call under _inference)."""
    return torch.cat([model(x[s : s + batch_size], _slice(y, s, s + batch_size)).recon
                      for s in _batches(len(x), batch_size)])


def reconstruct(model, images_uint8, labels=None, noise: float = 0.0, seed: int = 0,
                batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's input: the images with noise added, the reconstruction), both float CPU tensors.

    The noise is core.train.add_noise from a CPU generator seeded with `seed`, drawn for the whole
    batch at once: the same images, noise factor and seed always give the same picture, on any
    device and for any batch_size."""
    device = _device(model)
    y = _model_labels(model, labels, len(images_uint8), device)
    x = to_float(torch.as_tensor(images_uint8).to(device))
    noisy = add_noise(x, float(noise), torch.Generator().manual_seed(int(seed)))
    batch_size = _batch_size(model, batch_size, _pixels(x))
    with _inference(model):
        recon = _reconstruct_batches(model, noisy, y, batch_size) if len(x) else torch.zeros_like(x)
    return noisy.cpu(), recon.float().cpu()


def error_maps(originals, reconstructions) -> tuple[torch.Tensor, float]:
    """|x - x̂| averaged over the colour channels, in a black-red-yellow-white heat colour map
    scaled to the largest error shown (so small errors are still visible): (RGB images, float
    N×3×H×W, and that largest error)."""
    error = (to_float(originals) - to_float(reconstructions)).abs().mean(dim=1)
    brightest = float(error.max()) if error.numel() else 0.0
    t = error / max(brightest, 1e-8)
    heat = torch.stack([(3 * t).clamp(0, 1), (3 * t - 1).clamp(0, 1), (3 * t - 2).clamp(0, 1)], dim=1)
    return heat, brightest


def per_image_errors(model, images_uint8, labels=None, batch_size: int | None = None) -> np.ndarray:
    """Mean squared error of each image's reconstruction (N floats), to find the best and worst."""
    with _inference(model):
        errors = [(model(x, y).recon - x).pow(2).flatten(1).mean(1).float().cpu()
                  for x, y in _float_batches(model, images_uint8, labels, batch_size)]
    return torch.cat(errors).numpy() if errors else np.zeros(0, dtype=np.float32)


def noise_sweep(model, images_uint8, labels=None, levels=DEFAULT_NOISE_LEVELS, seed: int = 0,
                batch_size: int | None = None) -> list[dict]:
    """Reconstruction error against the CLEAN images at each noise factor:
    [{"noise": f, "mse": ..., "mae": ...}, ...] in the order of `levels`.

    Each level re-seeds the noise with `seed`, so one point of the sweep is exactly what
    reconstruct(noise=f, seed=seed) shows. Speed: the clean images go to the device once, and each
    level is one pass of batches with the sums kept on the device until the end. batch_size None:
    256 on the CPU (measured: the activations of 256 images stay in cache, 1,024 are ~30% slower),
    core.train.inference_batch_size on an accelerator (thousands of images per batch)."""
    device = _device(model)
    batch_size = batch_size or (256 if device.type == "cpu" else _batch_size(model, None, _pixels(images_uint8)))
    levels = [float(level) for level in np.atleast_1d(np.asarray(levels, dtype=float))]
    if len(images_uint8) == 0:
        return [{"noise": level, "mse": float("nan"), "mae": float("nan")} for level in levels]
    y = _model_labels(model, labels, len(images_uint8), device)
    clean = to_float(torch.as_tensor(images_uint8).to(device))
    values = clean.numel()
    sums = torch.zeros(len(levels), 2, dtype=torch.float64, device=device)
    with _inference(model):
        for i, level in enumerate(levels):
            noisy = add_noise(clean, level, torch.Generator().manual_seed(int(seed)))
            for start in _batches(len(clean), batch_size):
                stop = start + batch_size
                diff = model(noisy[start:stop], _slice(y, start, stop)).recon - clean[start:stop]
                sums[i, 0] += diff.pow(2).sum(dtype=torch.float64)
                sums[i, 1] += diff.abs().sum(dtype=torch.float64)
    means = (sums / values).tolist()
    return [{"noise": level, "mse": mse, "mae": mae} for level, (mse, mae) in zip(levels, means)]


# ----------------------------------------------------------------------------- the latent space


def project(codes, method: str = "pca", seed: int = 0, n_jobs: int = -1) -> np.ndarray:
    """The codes in 2-D, float32 N×2: "raw" (the first two coordinates; a 1-d code gets a zero
    second axis), "pca" (scikit-learn PCA) or "tsne" (see _tsne for the method and why).

    The caller chooses how many codes to project (the Latent page takes the first N, so the
    points line up with its labels and clusters). n_jobs: CPU threads for t-SNE (-1: all cores)."""
    if method not in PROJECTIONS:
        raise ValueError(f"Unknown projection '{method}'; choose one of {', '.join(PROJECTIONS)}.")
    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 2 or codes.shape[1] < 1:
        raise ValueError(f"Codes must be a table of shape N×latent, not {codes.shape}.")
    if not np.isfinite(codes).all():
        raise ValueError("Some codes are NaN or infinite, so they cannot be projected; retrain the model.")
    if method == "raw" or codes.shape[1] == 1 or len(codes) < 3:
        # Nothing to reduce (a 1-d or 2-d code) or too few points for PCA/t-SNE: show the code itself.
        flat = np.zeros((len(codes), 2), dtype=np.float32)
        width = min(2, codes.shape[1])
        flat[:, :width] = codes[:, :width]
        return flat
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(codes).astype(np.float32)
    return _tsne(codes, seed, n_jobs)


# t-SNE settings, measured on 10,000 16-d codes of real MNIST digits (a conv AE trained with
# core.train) on the 2-core CPU while other jobs shared it, so the CPU seconds are the steadier
# figure; trustworthiness is sklearn's (10 neighbours, against the codes):
#   scikit-learn TSNE, defaults (1,000 iterations)       ~35 s on a quiet machine (the baseline)
#   scikit-learn TSNE, init="pca", max_iter=350          60 CPU-s under load,  trust 0.995
#   openTSNE defaults (250 + 500 iterations), 1 thread    54 CPU-s,             trust 0.998
#   openTSNE 125 + 250 iterations, annoy neighbours       24 CPU-s,             trust 0.998
#   openTSNE 125 + 150, exact neighbours, ints_in_interval=2:
#       neighbours 0.7 CPU-s + optimisation 7.0 CPU-s,   trust 0.998
# openTSNE wins: its FFT-interpolated gradient is far cheaper than Barnes-Hut, exact neighbours
# (a ball tree) beat annoy by 6x for codes this small, and most of the cost sits in the late
# iterations, when the picture is spread out (the FFT grid grows with it) but the neighbourhoods,
# and so the trustworthiness, no longer change: 150 iterations after the 125 of early
# exaggeration score as well as 500. Coarser FFT intervals (ints_in_interval=2) cut a third more
# at the same score. Without openTSNE, scikit-learn with a PCA start and 350 iterations (its
# minimum is 250 of early exaggeration) keeps the score at about a third of the default's time.
TSNE_EARLY_ITERATIONS = 125
TSNE_ITERATIONS = 150
TSNE_EXACT_NEIGHBOURS_UP_TO = 20_000  # beyond this, openTSNE's approximate neighbours are faster
SKLEARN_TSNE_ITERATIONS = 350


def _tsne(codes: np.ndarray, seed: int, n_jobs: int) -> np.ndarray:
    """t-SNE of the codes, float32 N×2, with openTSNE when it is installed (see the figures above)."""
    perplexity = float(min(30.0, (len(codes) - 1) / 3))
    try:
        from openTSNE import TSNE as OpenTSNE
    except ImportError:
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=SKLEARN_TSNE_ITERATIONS,
                    random_state=seed, n_jobs=n_jobs).fit_transform(codes).astype(np.float32)
    neighbors = "exact" if len(codes) <= TSNE_EXACT_NEIGHBOURS_UP_TO else "auto"
    embedding = OpenTSNE(n_components=2, perplexity=perplexity, neighbors=neighbors,
                         early_exaggeration_iter=TSNE_EARLY_ITERATIONS, n_iter=TSNE_ITERATIONS,
                         ints_in_interval=2, n_jobs=n_jobs, random_state=seed).fit(codes)
    return np.asarray(embedding, dtype=np.float32)


def kmeans_labels(codes, k: int, seed: int = 0) -> np.ndarray:
    """The k-means cluster (0..k-1) of every code."""
    from sklearn.cluster import KMeans

    codes = np.asarray(codes, dtype=np.float32)
    if not 1 <= k <= len(codes):
        raise ValueError(f"Cannot make {k} clusters out of {len(codes)} codes; pick between 1 and {len(codes)}.")
    return KMeans(n_clusters=int(k), n_init="auto", random_state=seed).fit_predict(codes)


# ----------------------------------------------------------------------------- decoding and generation


def code_at(codes, method: str, point, seed: int = 0) -> np.ndarray:
    """The latent code behind a point (x, y) of project(codes, method): the inverse of the
    projection. "raw": the point's two coordinates, the other dimensions at the codes' mean;
    "pca": PCA's inverse_transform (the same fit as project's). t-SNE has no inverse map: a
    ValueError says to pick an existing point instead."""
    codes = np.asarray(codes, dtype=np.float32)
    x, y = (float(v) for v in point)
    if method == "tsne":
        raise ValueError("t-SNE has no inverse map, so only its points can be decoded; click a point, "
                         "or switch to Raw 2-D or PCA to decode any spot.")
    if method == "raw" or codes.shape[1] == 1 or len(codes) < 3:
        code = codes.mean(axis=0)
        code[: min(2, codes.shape[1])] = [x, y][: min(2, codes.shape[1])]
        return code.astype(np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(codes)
        return pca.inverse_transform(np.array([[x, y]], dtype=np.float32))[0].astype(np.float32)
    raise ValueError(f"Unknown projection '{method}'; choose one of {', '.join(PROJECTIONS)}.")


def decode(model, codes, labels=None, batch_size: int | None = None) -> torch.Tensor:
    """Images decoded from codes (N×latent, or one code), float N×C×H×W on the CPU.
    A conditional model needs labels: one int for all, or one per code."""
    z = _as_codes(codes, model)
    y = _model_labels(model, labels, len(z), z.device)
    batch_size = _batch_size(model, batch_size, model.cfg.in_channels * model.cfg.image_size ** 2)
    with _inference(model):
        parts = [model.decode(z[s : s + batch_size], _slice(y, s, s + batch_size)).float().cpu()
                 for s in _batches(len(z), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, *model.image_shape)


def manifold_grid(model, base_code, dim_x: int, dim_y: int, span: float, steps: int,
                  label=None) -> torch.Tensor:
    """steps² decodings of base_code with latent dims dim_x and dim_y moved by -span..+span, in
    row-major order for image_grid(nrow=steps): columns go along dim_x (left = -span), rows along
    dim_y (top = +span, like a plot's y axis). For a VAE span is in units of the prior's standard
    deviation (base_code=None starts from the prior's mean, 0); for a plain AE pick a span that
    fits its codes, e.g. two standard deviations of dim_x. dim_x may equal dim_y (a diagonal walk)."""
    latent = model.cfg.latent
    for dim in (dim_x, dim_y):
        if not 0 <= dim < latent:
            raise ValueError(f"Latent dimension {dim} does not exist; this model has dimensions 0 to {latent - 1}.")
    if steps < 1:
        raise ValueError(f"The grid needs at least 1 step per side, not {steps}.")
    base = np.zeros(latent, dtype=np.float32) if base_code is None else np.asarray(base_code, dtype=np.float32)
    if base.shape != (latent,):
        raise ValueError(f"The base code must have {latent} numbers for this model, not shape {base.shape}.")
    offsets = np.linspace(-span, span, steps, dtype=np.float32)
    codes = np.repeat(base[None], steps * steps, axis=0)
    rows, cols = np.meshgrid(offsets[::-1], offsets, indexing="ij")
    codes[:, dim_x] += cols.ravel()
    codes[:, dim_y] += rows.ravel()
    return decode(model, codes, label)


def interpolate(model, image_a, image_b, steps: int, label_a=None, label_b=None) -> torch.Tensor:
    """Decodings of `steps` codes evenly spaced on the line from image_a's code to image_b's
    (both ends included), float steps×C×H×W. A conditional model encodes each image with its own
    label and decodes the first half with label_a, the second half with label_b (default label_a)."""
    if steps < 2:
        raise ValueError(f"An interpolation needs at least 2 steps (the two ends), not {steps}.")
    pair = torch.stack([torch.as_tensor(image_a).reshape(model.image_shape),
                        torch.as_tensor(image_b).reshape(model.image_shape)])
    label_b = label_a if label_b is None else label_b
    pair_labels = None if label_a is None else [int(label_a), int(label_b)]
    code_a, code_b = encode(model, pair, pair_labels)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    codes = (1 - t) * code_a + t * code_b
    labels = None if pair_labels is None else np.where(t[:, 0] < 0.5, pair_labels[0], pair_labels[1])
    return decode(model, codes, labels)


def sample_codes(model, n: int, codes_for_fit=None, seed: int = 0, prior: bool = False) -> np.ndarray:
    """n random codes, float32 n×latent: a VAE's prior N(0, I); for a plain AE, a Gaussian with the
    mean and full covariance of codes_for_fit (its codes of real images), drawn by a numpy
    Generator seeded with `seed`. prior=True draws from N(0, I) for any model (what sampling a
    plain AE as if it were a VAE gives)."""
    if n < 1:
        raise ValueError(f"Ask for at least one sample, not {n}.")
    rng = np.random.default_rng(seed)
    latent = model.cfg.latent
    if model.cfg.vae or prior:
        return rng.standard_normal((n, latent)).astype(np.float32)
    if codes_for_fit is None or len(codes_for_fit) < 2:
        raise ValueError("A plain autoencoder has no prior to sample from; pass the codes of at least two "
                         "images to fit a Gaussian to.")
    fit = np.asarray(codes_for_fit, dtype=np.float64).reshape(len(codes_for_fit), -1)
    if fit.shape[1] != latent:
        raise ValueError(f"The codes to fit must have {latent} numbers each for this model, not {fit.shape[1]}.")
    covariance = np.atleast_2d(np.cov(fit, rowvar=False))
    # eigh, not the default SVD: it copes with the singular covariance of codes that collapsed.
    return rng.multivariate_normal(fit.mean(axis=0), covariance, size=n, method="eigh").astype(np.float32)


def sample(model, n: int, codes_for_fit=None, labels=None, seed: int = 0, prior: bool = False) -> torch.Tensor:
    """n generated images, float n×C×H×W, decoded from sample_codes(model, n, codes_for_fit, seed, prior):
    the VAE prior, or for a plain AE a Gaussian fitted to its codes, which shows why its samples
    look worse (its codes do not fill a Gaussian). A conditional model uses `labels` (one int, or
    one per sample) or, when None, cycles through the classes 0, 1, 2, ..."""
    codes = sample_codes(model, n, codes_for_fit, seed, prior)
    if model.cfg.conditional and labels is None:
        labels = np.arange(n) % model.cfg.num_classes
    return decode(model, codes, labels)


# A VAE whose prior samples vary less than this fraction of how much real images vary (the mean
# per-pixel std across images) has collapsed onto its prior. Measured (bench/vae.py, digits): a
# collapsed dense z2 VAE 0.19, a collapsed conv z16 0.04; VAEs that learn 0.6-0.7, and the plain
# AE's samples 0.65; on MNIST-10k a dense z2 VAE 0.48.
COLLAPSED_SPREAD = 0.25
SPREAD_SAMPLES = 64


def pixel_spread(images) -> float:
    """How much images differ from each other: the std across the images of each pixel value,
    averaged over the pixel values (uint8 images are read as [0, 1]); 0 when all are one image."""
    x = torch.as_tensor(images)
    x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
    return float(x.std(dim=0).mean()) if len(x) > 1 else 0.0


def prior_spread_ratio(model, real_images, seed: int = 0) -> float:
    """pixel_spread of SPREAD_SAMPLES decoded prior samples over that of `real_images` (e.g. the test
    split): about 0.5 or more when a VAE's codes carry the images, near 0 when the codes collapsed
    onto N(0, I) and every sample decodes to the same average image (below COLLAPSED_SPREAD)."""
    real = pixel_spread(real_images)
    if real == 0.0:
        return 1.0  # identical real images: nothing to compare with
    return pixel_spread(sample(model, SPREAD_SAMPLES, seed=seed, prior=True)) / real


def decode_with_every_label(model, code, num_classes: int | None = None) -> torch.Tensor:
    """One code decoded with each label 0..num_classes-1 (the "wrong label" style transfer of a
    conditional model), float num_classes×C×H×W."""
    if not model.cfg.conditional:
        raise ValueError("Only a conditional model takes a label when decoding; train one with conditional on.")
    num_classes = model.cfg.num_classes if num_classes is None else int(num_classes)
    if not 1 <= num_classes <= model.cfg.num_classes:
        raise ValueError(f"This model knows {model.cfg.num_classes} classes, so it cannot decode with {num_classes}.")
    z = _as_codes(code, model)
    if len(z) != 1:
        raise ValueError(f"Pass one code to decode with every label, not {len(z)}.")
    return decode(model, z.expand(num_classes, -1), np.arange(num_classes))


def image_grid(images, nrow: int = 8, padding: int = 2, scale: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """A picture of the images in a grid, H×W×3 uint8 (torchvision.utils.make_grid; grey becomes 3
    equal channels). Images are float in [0, 1] or uint8, N×C×H×W (or one C×H×W image); each is
    enlarged by the integer `scale` with nearest-neighbour pixels (so 8×8 digits are visible) before
    the grid is laid out, so the padding stays `padding` pixels wide. pad_value: the padding's grey
    level in [0, 1] (white by default, which separates dark-background digits). A list of
    batches (e.g. originals, then their reconstructions) is laid out one after the other."""
    from torchvision.utils import make_grid

    if isinstance(images, (list, tuple)):
        images = torch.cat([to_float(batch).detach().cpu() for batch in images])
    images = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images).detach().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Images must be N×C×H×W with 1 or 3 channels, not shape {tuple(images.shape)}.")
    images = to_float(images).clamp(0, 1)
    scale = max(1, int(scale))
    if scale > 1:
        images = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    if len(images) == 0:
        return np.zeros((images.shape[2], images.shape[3], 3), dtype=np.uint8)
    grid = make_grid(images, nrow=max(1, int(nrow)), padding=int(padding), pad_value=pad_value)
    return grid.mul(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


# ----------------------------------------------------------------------------- classifier probe


@dataclass
class ProbeConfig:
    # A head on standardised codes learns fast: at 0.01, twenty epochs converge in seconds on the
    # teaching datasets (MNIST-10k, linear head on the frozen encoder: 92.6%; 10 epochs at 0.001: 87%).
    epochs: int = 20
    lr: float = 1e-2
    batch_size: int = 128
    fine_tune: bool = False  # False: train only a head on the frozen codes; True: encoder + head
    hidden: int = 0  # 0: a linear head; > 0: an MLP head with one hidden layer of this many units
    seed: int = 0
    device: str = "auto"  # where a fine-tuned encoder trains ("auto": CUDA, MPS, then CPU)


@dataclass
class ProbeResult:
    accuracy: float  # on the test split, with the weights of the best validation epoch
    confusion: np.ndarray  # num_classes × num_classes, rows = true class, columns = predicted
    class_names: list[str]
    per_class_accuracy: dict[str, float]  # class name -> test accuracy (NaN for a class with no test image)
    history: list[dict]  # {"epoch", "train_loss", "train_accuracy", "val_accuracy"} per finished epoch
    most_confused: list[dict]  # {"index": position in the test split, "true", "pred", "confidence"}
    best_epoch: int = 0  # the epoch whose weights were kept (0: stopped before the first epoch ended)
    stopped: bool = False  # stop_event ended the training early


class _Probe(nn.Module):
    """Encoder codes -> standardised with the training codes' statistics (fixed, so the head's
    learning rate does not depend on the scale of the codes) -> a linear or one-hidden-layer head.
    With an encoder (fine-tuning) the images go through it first; without, the input is codes."""

    def __init__(self, encoder: nn.Module | None, mean: torch.Tensor, std: torch.Tensor,
                 num_classes: int, hidden: int):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        latent = len(mean)
        self.head = (nn.Linear(latent, num_classes) if hidden <= 0 else
                     nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        codes = x if self.encoder is None else self.encoder.encode(x, y)
        return self.head((codes - self.mean) / self.std)


def _check_probe(cfg: ProbeConfig, dataset: Dataset) -> None:
    if cfg.epochs < 1:
        raise ValueError(f"The classifier needs at least 1 epoch, not {cfg.epochs}.")
    if cfg.batch_size < 1:
        raise ValueError(f"The batch size must be at least 1, not {cfg.batch_size}.")
    if not cfg.lr > 0 or not math.isfinite(cfg.lr):
        raise ValueError(f"The learning rate must be a number above 0, not {cfg.lr}.")
    if dataset.num_classes < 2:
        raise ValueError("A classifier needs a dataset with at least two classes.")
    for split in ("train", "val", "test"):
        if len(dataset.splits.get(split, ())) == 0:
            raise ValueError(f"The {split} split is empty, so the classifier cannot be trained and checked; "
                             "use more images.")


def train_probe(model, dataset: Dataset, cfg: ProbeConfig,
                on_epoch: Callable[[dict], None] | None = None,
                stop_event: threading.Event | None = None) -> ProbeResult:
    """A classifier on the model's encoder: trained on the "train" split, the epoch with the best
    "val" accuracy kept, reported on "test". Frozen (default): the images are encoded once and only
    the head trains on the codes, which takes a second. fine_tune: a copy of the encoder trains with
    the head (the model passed in is never modified). on_epoch gets each history row as it ends;
    stop_event ends the training within a batch. Same seed + same data + same device: same result."""
    _check_probe(cfg, dataset)
    num_classes = dataset.num_classes
    # A conditional encoder also takes the label; giving it the true label would hand the answer
    # to the classifier. Every image is encoded with label 0 instead, the same for all classes.
    no_hint = 0 if model.cfg.conditional else None
    is_stopped = stop_event.is_set if stop_event is not None else (lambda: False)

    train_x, train_y = dataset.split("train")
    val_x, val_y = dataset.split("val")
    test_x, test_y = dataset.split("test")
    train_codes = torch.from_numpy(encode(model, train_x, no_hint))
    mean, std = train_codes.mean(0), train_codes.std(0).clamp_min(1e-6)

    if cfg.fine_tune:
        device = resolve_device(cfg.device)
        encoder = copy.deepcopy(model).to(device)
        inputs = {"train": train_x, "val": val_x, "test": test_x}  # uint8, made float per batch
    else:
        device = _device(model)
        encoder = None
        inputs = {"train": train_codes, "val": torch.from_numpy(encode(model, val_x, no_hint)),
                  "test": torch.from_numpy(encode(model, test_x, no_hint))}
    inputs = {name: tensor.to(device) for name, tensor in inputs.items()}
    targets = {"train": train_y.to(device), "val": val_y.to(device), "test": test_y.to(device)}
    with _SEED_LOCK:  # the head's initial weights come from the process-wide generator
        torch.manual_seed(cfg.seed)
        probe = _Probe(encoder, mean, std, num_classes, cfg.hidden).to(device)
    optimizer = torch.optim.Adam([p for p in probe.parameters() if p.requires_grad], lr=cfg.lr)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    hints = torch.zeros(max(len(train_y), len(val_y), len(test_y)), dtype=torch.long, device=device) \
        if no_hint is not None else None

    def batch_input(split: str, idx) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = inputs[split][idx]
        return (to_float(x) if cfg.fine_tune else x), (None if hints is None else hints[: len(x)])

    def predict(split: str) -> torch.Tensor:
        """Class probabilities of a whole split (eval mode), N×num_classes on the device."""
        probe.eval()
        count = len(targets[split])
        step = max(cfg.batch_size, inference_batch_size(device, int(np.prod(inputs[split].shape[1:])) or 1))
        with torch.inference_mode():
            return torch.cat([F.softmax(probe(*batch_input(split, slice(s, s + step))), dim=1)
                              for s in range(0, count, step)])

    history: list[dict] = []
    best_state = copy.deepcopy(probe.state_dict())
    best_val, best_epoch, stopped = -1.0, 0, False
    for epoch in range(1, cfg.epochs + 1):
        probe.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for idx in torch.randperm(len(train_y), generator=shuffle).to(device).split(cfg.batch_size):
            if is_stopped():
                stopped = True
                break
            logits = probe(*batch_input("train", idx))
            loss = F.cross_entropy(logits, targets["train"][idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.detach().argmax(1) == targets["train"][idx]).sum())
            seen += len(idx)
        if stopped:
            break
        val_accuracy = float((predict("val").argmax(1) == targets["val"]).float().mean())
        row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
               "val_accuracy": val_accuracy}
        history.append(row)
        if val_accuracy > best_val:
            best_val, best_epoch = val_accuracy, epoch
            best_state = copy.deepcopy(probe.state_dict())
        if on_epoch is not None:
            on_epoch(dict(row))

    probe.load_state_dict(best_state)
    return _probe_report(predict("test").cpu(), test_y, dataset.class_names, history, best_epoch, stopped)


def _probe_report(probabilities: torch.Tensor, test_y: torch.Tensor, class_names: list[str],
                  history: list[dict], best_epoch: int, stopped: bool) -> ProbeResult:
    from sklearn.metrics import confusion_matrix

    confidence, predicted = probabilities.max(1)
    true, pred = test_y.numpy(), predicted.numpy()
    confusion = confusion_matrix(true, pred, labels=range(len(class_names)))
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else float("nan"))
                 for i, name in enumerate(class_names)}
    wrong = np.flatnonzero(true != pred)
    wrong = wrong[np.argsort(-confidence.numpy()[wrong], kind="stable")][:MOST_CONFUSED]
    most_confused = [{"index": int(i), "true": class_names[true[i]], "pred": class_names[pred[i]],
                      "confidence": float(confidence[i])} for i in wrong]
    return ProbeResult(accuracy=float((true == pred).mean()), confusion=confusion, class_names=list(class_names),
                       per_class_accuracy=per_class, history=history, most_confused=most_confused,
                       best_epoch=best_epoch, stopped=stopped)
