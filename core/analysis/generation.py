"""New images from a decoder: manifold grids, interpolations, samples (a VAE's prior, or a Gaussian
fitted to a plain autoencoder's codes) and one code decoded with every label."""
from __future__ import annotations

import numpy as np
import torch

from core.analysis.inference import as_codes, decode, encode


def manifold_grid(model, base_code, dim_x: int, dim_y: int, span: float, steps: int,
                  label=None) -> torch.Tensor:
    """steps² decodings of base_code with latent dims dim_x and dim_y moved by -span..+span, in
    row-major order for image_grid(nrow=steps): columns go along dim_x (left = -span), rows along
    dim_y (top = +span, like a plot's y axis). For a VAE span is in units of the prior's standard
    deviation (base_code=None starts from the prior's mean, 0); for a plain AE pick a span that
    fits its codes, e.g. two standard deviations of dim_x. dim_x may equal dim_y (a diagonal walk).
    The dimensions are those of the flat code (encode()'s columns)."""
    latent = model.code_size
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


# Above this many numbers per code (a feature-map code: 16×8×8 = 1,024) the fitted Gaussian is
# drawn without forming its covariance: code size² numbers and an eigen-decomposition of that size
# (4,096-number codes: 130 MB and tens of seconds) for a covariance whose rank is at most the
# number of codes fitted.
FULL_COVARIANCE_UP_TO = 512


def sample_codes(model, n: int, codes_for_fit=None, seed: int = 0, prior: bool = False) -> np.ndarray:
    """n random codes, float32 n × code size: a VAE's prior N(0, I); for a plain AE, a Gaussian with
    the mean and full covariance of codes_for_fit (its codes of real images), drawn by a numpy
    Generator seeded with `seed`. prior=True draws from N(0, I) for any model (what sampling a
    plain AE as if it were a VAE gives)."""
    if n < 1:
        raise ValueError(f"Ask for at least one sample, not {n}.")
    rng = np.random.default_rng(seed)
    latent = model.code_size
    if model.cfg.vae or prior:
        return rng.standard_normal((n, latent)).astype(np.float32)
    if codes_for_fit is None or len(codes_for_fit) < 2:
        raise ValueError("A plain autoencoder has no prior to sample from; pass the codes of at least two "
                         "images to fit a Gaussian to.")
    fit = np.asarray(codes_for_fit, dtype=np.float64).reshape(len(codes_for_fit), -1)
    if fit.shape[1] != latent:
        raise ValueError(f"The codes to fit must have {latent} numbers each for this model, not {fit.shape[1]}.")
    if latent > FULL_COVARIANCE_UP_TO:
        # The same Gaussian: with the centred codes C (m × d), mean + g·C / sqrt(m - 1), g ~ N(0, I_m),
        # has covariance CᵀC / (m - 1), the codes' own.
        centred = fit - fit.mean(axis=0)
        g = rng.standard_normal((n, len(fit)))
        return (fit.mean(axis=0) + g @ centred / np.sqrt(len(fit) - 1)).astype(np.float32)
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
    z = as_codes(code, model)
    if len(z) != 1:
        raise ValueError(f"Pass one code to decode with every label, not {len(z)}.")
    return decode(model, z.expand(num_classes, *z.shape[1:]), np.arange(num_classes))
