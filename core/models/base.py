"""What every model family shares: the layout, the VAE and conditional variants, and the loss.

Layout of every model (written once here, so a family only says how its layers are stacked):
    encoder (Sequential) -> features  [+ one-hot label]  -> to_latent  (or to_mu + to_logvar)
    [code + one-hot label] -> decoder (Sequential) -> image N×C×H×W in the output range
A family's code is a vector (N×latent) or a feature map (N×latent×h×w); a label joins a feature
map as one constant plane per class. A conditional decoder also scales and shifts the channels of
the hidden layers its family names per label (core.models.label_style, FiLM).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from core.config import ModelConfig
from core.models.label_style import label_styles, neutral_label_style
from core.validation import check_model

_ACTIVATION_LAYERS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
# Starting bias of a sigmoid output layer: sigmoid(-2) ≈ 0.12, about the mean pixel of the teaching
# images (dark backgrounds: MNIST 0.13, digits and shapes darker still). From a zero bias (0.5
# everywhere) Adam, moving each weight by about lr per step, needs hundreds of steps just to darken
# the picture: the long flat start of the loss curve. Brighter data (CIFAR-10) corrects it quickly.
# core.train replaces it with the training set's own mean (fit_output_bias).
_SIGMOID_OUTPUT_BIAS = -2.0

# The KL of one image is divided by its number of pixel values, but by at least this many (a 28×28
# grey image). Why: with loss = recon + beta * KL / (C·H·W), MSE's loss is the ELBO of a Gaussian
# decoder with noise σ² = 1/2 divided by C·H·W; how many nats a code can save in reconstruction grows
# with the pixel count, what it costs in KL does not. 784 values (MNIST) and more learn at β = 1
# (MNIST, 32-px shapes and colour folders: codes of 8-16 nats and data-like prior samples), but an
# 8×8 digit (64 values) can save only a few nats, so every code collapsed onto the prior: one grey
# blob for every sample, a KL near 0 (bench/vae.py, BENCHMARKS.md "VAE: the KL part"). A decoder
# noise fitted to the reconstruction error (σ² = the batch's MSE) fixed digits but weighed the KL
# so little on 28×28 and larger images that their prior samples fell apart into broken strokes.
MIN_KL_VALUES = 784


@dataclass
class AEOutput:
    recon: torch.Tensor  # same shape as the input, after the output activation
    z: torch.Tensor  # the code used for decoding (VAE: the sample in train, mu in eval)
    mu: torch.Tensor | None = None  # VAE only
    logvar: torch.Tensor | None = None  # VAE only


def hidden_block(cfg: ModelConfig, spatial: bool) -> list[nn.Module]:
    """Activation, then dropout if asked (Dropout2d drops whole feature maps of conv layers)."""
    layers: list[nn.Module] = [_ACTIVATION_LAYERS[cfg.activation]()]
    if cfg.dropout > 0:
        layers.append(nn.Dropout2d(cfg.dropout) if spatial else nn.Dropout(cfg.dropout))
    return layers


def output_block(cfg: ModelConfig, last: nn.Module) -> list[nn.Module]:
    """The output activation after `last`, the layer that makes the image."""
    if cfg.output_activation != "sigmoid":
        return []
    nn.init.constant_(last.bias, _SIGMOID_OUTPUT_BIAS)
    return [nn.Sigmoid()]


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the code's values, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).flatten(1).sum(dim=1).mean()


def reconstruction_loss(name: str, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The batch's mean reconstruction loss per pixel value: "mse", "mae" or "bce"."""
    if name == "mse":
        return F.mse_loss(recon, target)
    if name == "mae":
        return F.l1_loss(recon, target)
    # F.binary_cross_entropy refuses a NaN input with an error (on CUDA a device-side assert that
    # breaks the CUDA context); a diverged model must give a NaN loss instead, so the run stops
    # with status "diverged" like it does with the other losses.
    has_nan = recon.isnan().any()
    loss = F.binary_cross_entropy(recon.nan_to_num(nan=0.5), target)
    return torch.where(has_nan, torch.full_like(loss, math.nan), loss)


class Autoencoder(nn.Module):
    """The base of every family. A family sets the class attributes below and writes `parts`."""

    family: ClassVar[str] = ""  # its name in core.models.FAMILIES (and config.json's model.family)
    title: ClassVar[str] = ""  # how the forms name it
    layers_setting: ClassVar[str] = "channels"  # the ModelConfig list of layer sizes it reads
    presets: ClassVar[dict[str, list[int]]] = {}  # preset name -> layer sizes
    reads_preset: ClassVar[bool] = True  # an empty layer list means the preset's sizes
    code_is_map: ClassVar[bool] = False  # the code is a feature map (latent × h × w), not a vector
    # One sentence saying why the family has no VAE / conditional variant; "" when it has one.
    no_vae: ClassVar[str] = ""
    no_conditional: ClassVar[str] = ""

    @classmethod
    def layer_sizes(cls, cfg: ModelConfig) -> list[int]:
        """The layer sizes the model is built with: the typed ones, else the preset's."""
        sizes = list(getattr(cfg, cls.layers_setting))
        return sizes if sizes or not cls.reads_preset else list(cls.presets.get(cfg.preset, []))

    @classmethod
    def parts(cls, cfg: ModelConfig, labels: int) -> tuple[nn.Sequential, int, nn.Sequential, tuple[int, ...]]:
        """(encoder, features: its output width (channels of a feature map), decoder, code shape)."""
        raise NotImplementedError

    @classmethod
    def styled_layers(cls, decoder: nn.Sequential) -> dict[int, int]:
        """decoder index -> channels of the layers a conditional decoder styles per label (a family
        with a conditional variant names them; none by default)."""
        return {}

    @classmethod
    def head(cls, features: int, latent: int) -> nn.Module:
        """The layer from the encoder's features to the code (a vector code: a linear layer)."""
        return nn.Linear(features, latent)

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        check_model(cfg)
        self.cfg = copy.deepcopy(cfg)  # later edits of the caller's config must not desync the model
        self.image_shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
        labels = cfg.num_classes if cfg.conditional else 0
        self.encoder, features, self.decoder, self.code_shape = self.parts(self.cfg, labels)
        if cfg.vae:
            self.to_mu = self.head(features + labels, cfg.latent)
            self.to_logvar = self.head(features + labels, cfg.latent)
        else:
            self.to_latent = self.head(features + labels, cfg.latent)
        self.label_style = label_styles(self.styled_layers(self.decoder) if labels else {}, labels)
        self._register_load_state_dict_pre_hook(neutral_label_style, with_module=True)

    @property
    def code_size(self) -> int:
        """How many numbers one image's code holds (latent, or latent × h × w for a feature map)."""
        return math.prod(self.code_shape)

    def _with_label(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """h with the one-hot label appended (to a feature map: one constant plane per class)."""
        hot = self._one_hot(h, y)
        if h.dim() > 2:
            hot = hot[:, :, None, None].expand(-1, -1, *h.shape[2:])
        return torch.cat([h, hot], dim=1)

    def _one_hot(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The labels of h's N items, one-hot (N × classes), checked."""
        n = len(h)
        if y is None:
            raise ValueError("This model is conditional, so it needs the class labels along with the images.")
        if y.shape != (n,):
            raise ValueError(f"Expected {n} class labels, one per image, but got a tensor of shape {tuple(y.shape)}.")
        # The range check reads the labels on the host; while a CUDA graph is being captured no
        # host read is allowed (the training step's labels come from the dataset, always in range).
        capturing = h.is_cuda and torch.cuda.is_current_stream_capturing()
        if n and not capturing and (int(y.min()) < 0 or int(y.max()) >= self.cfg.num_classes):
            raise ValueError(f"Class labels must lie between 0 and {self.cfg.num_classes - 1} for this model.")
        # scatter_ rather than F.one_hot, which may check the labels on the host itself.
        hot = torch.zeros(n, self.cfg.num_classes, dtype=h.dtype, device=h.device)
        return hot.scatter_(1, y.long().view(n, 1), 1.0)

    def _features(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.image_shape:
            want, got = "×".join(map(str, self.image_shape)), "×".join(map(str, x.shape[1:]))
            raise ValueError(f"This model takes {want} images but got {got}; build a model for this dataset.")
        h = self.encoder(x)
        return self._with_label(h, y) if self.cfg.conditional else h

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic code (VAE: mu), N × code_shape."""
        h = self._features(x, y)
        return self.to_mu(h) if self.cfg.vae else self.to_latent(h)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != len(self.code_shape) + 1 or tuple(z.shape[1:]) != self.code_shape:
            want = "×".join(map(str, self.code_shape))
            raise ValueError(f"Codes must have shape N×{want} for this model, got {tuple(z.shape)}.")
        if not self.cfg.conditional:
            return self.decoder(z)
        h = self._with_label(z, y)
        if not len(self.label_style):
            return self.decoder(h)
        hot = self._one_hot(z, y)
        for index, layer in enumerate(self.decoder):
            h = layer(h)
            if str(index) in self.label_style:
                h = self.label_style[str(index)](h, hot)
        return h

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        h = self._features(x, y)
        if not self.cfg.vae:
            z = self.to_latent(h)
            return AEOutput(self.decode(z, y), z)
        mu, logvar = self.to_mu(h), self.to_logvar(h)
        # Reparameterisation keeps the sample differentiable in mu and logvar; eval decodes the mean
        # so reconstructions and plots do not flicker.
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return AEOutput(self.decode(z, y), z, mu, logvar)

    def loss_parts(self, out: AEOutput, target: torch.Tensor, loss_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction loss per pixel value, KL part): the batch's mean reconstruction loss, and
        (VAE) the KL of one image (summed over the code, averaged over the batch) divided by
        max(C·H·W, MIN_KL_VALUES); 0 for a plain AE. loss = recon + beta * KL part: for images of
        784 values or more, the β-VAE's negative ELBO divided by C·H·W (BCE: Bernoulli decoder;
        MSE: Gaussian with σ² = 1/2)."""
        recon = reconstruction_loss(loss_name, out.recon, target)
        if self.cfg.vae:
            kl = kl_divergence(out.mu, out.logvar) / max(target[0].numel(), MIN_KL_VALUES)
        else:
            kl = torch.zeros((), device=target.device)
        return recon, kl

    def training_loss(self, out: AEOutput, target: torch.Tensor, loss_name: str
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, reconstruction part, KL part) of one batch: the one definition the eager step and
        the CUDA graph's step share (validation sums the same parts)."""
        recon, kl = self.loss_parts(out, target, loss_name)
        return (recon + self.cfg.beta * kl if self.cfg.vae else recon), recon, kl


# fit_output_bias keeps the starting mean inside these: sigmoid's slope at 0.02 is still ~1/50 of
# its best, so a pixel can still leave the background colour.
OUTPUT_MEAN_MIN, OUTPUT_MEAN_MAX = 0.02, 0.98


def fit_output_bias(model: Autoencoder, channel_means) -> None:
    """Start the image layer at the data's mean intensity per channel: its bias becomes
    logit(mean) under a sigmoid output (clamped to [OUTPUT_MEAN_MIN, OUTPUT_MEAN_MAX], so a
    black-background set does not get a bias of -inf), the mean itself without an output activation.
    The untrained model then already draws the mean colour, and the first optimiser steps go to
    shapes, not to finding the background: the fixed -2 suits MNIST's black but leaves a folder
    of bright photos black for many epochs. `channel_means`: one float in [0, 1] per channel."""
    means = torch.as_tensor(channel_means, dtype=torch.float32).flatten()
    channels = model.cfg.in_channels
    if means.numel() != channels:
        raise ValueError(f"Expected one mean per image channel ({channels}), not {means.numel()}.")
    # The image layer: the decoder's last layer with weights (its conv blocks before it have no bias).
    layer = next(m for m in reversed(list(model.decoder.modules()))
                 if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)))
    if model.cfg.output_activation == "sigmoid":
        means = means.clamp(OUTPUT_MEAN_MIN, OUTPUT_MEAN_MAX)
        means = torch.log(means / (1 - means))
    with torch.no_grad():
        if isinstance(layer, nn.Linear):  # a dense output of C·H·W values, channel-major (nn.Unflatten to C×H×W)
            layer.bias.copy_(means.repeat_interleave(layer.bias.numel() // channels).to(layer.bias))
        else:
            layer.bias.copy_(means.to(layer.bias))
