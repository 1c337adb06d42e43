"""Dense and convolutional autoencoders, with VAE and conditional variants, built from a
ModelConfig. Every layer shape is derived from cfg.in_channels / image_size / num_classes,
so the same code serves 8×8 digits, 28×28 MNIST and 128×128 colour photos.

Layout of every model (the same for both families, so the variants are written once):
    encoder (Sequential) -> features  [+ one-hot label]  -> to_latent  (or to_mu + to_logvar)
    [z + one-hot label] -> decoder (Sequential) -> image N×C×H×W in the output range
A conditional decoder also scales and shifts the channels of each of its hidden layers per label
(label_style, FiLM): given only at its input, the label lost to a 16-d code that held everything
itself, and every label decoded to the same image (issue 21, the colour style-transfer lesson).
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch
from torch import nn

from core.config import ACTIVATIONS, CONV_PRESETS, MODEL_FAMILIES, OUTPUT_ACTIVATIONS, ModelConfig

_ACTIVATION_LAYERS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
# Leaf layers worth a row in the layer table (containers and the rest are left out).
_TABLE_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.LeakyReLU, nn.Sigmoid,
                 nn.Tanh, nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Unflatten)
# Starting bias of a sigmoid output layer: sigmoid(-2) ≈ 0.12, about the mean pixel of the teaching
# images (dark backgrounds: MNIST 0.13, digits and shapes darker still). From a zero bias (0.5
# everywhere) Adam, moving each weight by about lr per step, needs hundreds of steps just to darken
# the picture: the long flat start of the loss curve. Brighter data (CIFAR-10) corrects it quickly.
# core.train replaces it with the training set's own mean (fit_output_bias).
_SIGMOID_OUTPUT_BIAS = -2.0
# fit_output_bias keeps the starting mean inside these: sigmoid's slope at 0.02 is still ~1/50 of
# its best, so a pixel can still leave the background colour.
OUTPUT_MEAN_MIN, OUTPUT_MEAN_MAX = 0.02, 0.98


class LabelStyle(nn.Module):
    """A per-class scale and shift of every channel of one decoder layer (FiLM, Perez et al. 2018):
    h * (1 + scale[label]) + shift[label]. Starts at zero, so it begins as no change; a run saved
    before these layers existed loads with them at zero (Autoencoder._neutral_label_style) and
    decodes exactly as it did."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(num_classes, 2 * channels))

    def forward(self, h: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        scale, shift = (one_hot @ self.table).chunk(2, dim=1)
        shape = (len(h), -1) + (1,) * (h.dim() - 2)
        return h * (1 + scale.view(shape)) + shift.view(shape)


def _styled_layers(decoder: nn.Sequential) -> dict[int, int]:
    """decoder index -> channels of the layers a conditional decoder styles per label: each batch
    norm of a conv decoder, each hidden Linear after the first (which takes the label itself) of a
    dense one."""
    linears = [i for i, m in enumerate(decoder) if isinstance(m, nn.Linear)]
    styled = {i: m.num_features for i, m in enumerate(decoder) if isinstance(m, nn.BatchNorm2d)}
    if not styled:
        styled = {i: decoder[i].out_features for i in linears[1:-1]}
    return styled


@dataclass
class AEOutput:
    recon: torch.Tensor  # same shape as the input, after the output activation
    z: torch.Tensor  # the code used for decoding (VAE: the sample in train, mu in eval)
    mu: torch.Tensor | None = None  # VAE only
    logvar: torch.Tensor | None = None  # VAE only


def validate_config(cfg: ModelConfig) -> None:
    """Raise ValueError with one plain sentence for a config no model can be built from."""
    if cfg.family not in MODEL_FAMILIES:
        raise ValueError(f"Unknown model family '{cfg.family}'; choose one of {', '.join(MODEL_FAMILIES)}.")
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation '{cfg.activation}'; choose one of {', '.join(ACTIVATIONS)}.")
    if cfg.output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"Unknown output activation '{cfg.output_activation}'; "
                         f"choose one of {', '.join(OUTPUT_ACTIVATIONS)}.")
    if int(cfg.latent) < 1:
        raise ValueError(f"The latent size must be at least 1 (got {cfg.latent}); pick a size like 2 or 16.")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"Dropout must be at least 0 and below 1 (got {cfg.dropout}); try 0 or 0.5.")
    if cfg.vae and cfg.beta < 0:
        raise ValueError(f"The KL weight beta must not be negative (got {cfg.beta}); try 1.0.")
    if cfg.in_channels < 1 or cfg.image_size < 1:
        raise ValueError(f"The image shape {cfg.in_channels}×{cfg.image_size}×{cfg.image_size} is empty; "
                         "load a dataset before building the model.")
    if cfg.conditional and cfg.num_classes < 1:
        raise ValueError("A conditional model needs a dataset with at least one class; turn conditional off.")
    if cfg.family == "dense":
        if not cfg.hidden:
            raise ValueError("The dense model needs at least one hidden layer size; add one, e.g. 256.")
        if min(cfg.hidden) < 1:
            raise ValueError(f"Every hidden layer size must be at least 1 (got {list(cfg.hidden)}).")
    else:
        if not cfg.channels and cfg.preset not in CONV_PRESETS:
            raise ValueError(f"Unknown conv preset '{cfg.preset}'; choose one of {', '.join(CONV_PRESETS)} "
                             "or give the channels yourself.")
        if min(cfg.conv_channels()) < 1:
            raise ValueError(f"Every conv channel count must be at least 1 (got {cfg.conv_channels()}).")


def _hidden_block(cfg: ModelConfig, spatial: bool) -> list[nn.Module]:
    """Activation, then dropout if asked (Dropout2d drops whole feature maps of conv layers)."""
    layers: list[nn.Module] = [_ACTIVATION_LAYERS[cfg.activation]()]
    if cfg.dropout > 0:
        layers.append(nn.Dropout2d(cfg.dropout) if spatial else nn.Dropout(cfg.dropout))
    return layers


def _output_block(cfg: ModelConfig, last: nn.Module) -> list[nn.Module]:
    """The output activation after `last`, the layer that makes the image."""
    if cfg.output_activation != "sigmoid":
        return []
    nn.init.constant_(last.bias, _SIGMOID_OUTPUT_BIAS)
    return [nn.Sigmoid()]


def _dense_parts(cfg: ModelConfig, labels: int) -> tuple[nn.Sequential, int, nn.Sequential]:
    """Flatten -> hidden sizes; the decoder mirrors them back to C·H·W and unflattens."""
    shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
    sizes = [shape[0] * shape[1] * shape[2], *cfg.hidden]
    encoder: list[nn.Module] = [nn.Flatten()]
    for n_in, n_out in zip(sizes, sizes[1:]):
        encoder += [nn.Linear(n_in, n_out), *_hidden_block(cfg, spatial=False)]
    back = sizes[::-1]  # e.g. [256, 512, 784]
    decoder: list[nn.Module] = [nn.Linear(cfg.latent + labels, back[0]), *_hidden_block(cfg, spatial=False)]
    for i, (n_in, n_out) in enumerate(zip(back, back[1:])):
        layer = nn.Linear(n_in, n_out)
        last = i == len(back) - 2
        decoder += [layer, *(_output_block(cfg, layer) if last else _hidden_block(cfg, False))]
    decoder.append(nn.Unflatten(1, shape))
    return nn.Sequential(*encoder), sizes[-1], nn.Sequential(*decoder)


def _conv_block(cfg: ModelConfig, c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    """3×3 conv, batch norm, activation (and dropout). Batch norm keeps every stage's activations
    at unit scale, so the few hundred steps of a lesson-length run are enough to learn: with the
    second conv per stage and the output bias above, conv-small (latent 16, 5 epochs of 7,200
    MNIST images, Adam 1e-3, batch 128) reaches a test MSE of about 0.016 instead of 0.042.
    The conv's own bias would be cancelled by the norm's shift, hence bias=False."""
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            *_hidden_block(cfg, spatial=True)]


def _conv_parts(cfg: ModelConfig, labels: int) -> tuple[nn.Sequential, int, nn.Sequential]:
    """Each stage: a 3×3 conv with stride 2 and padding 1, which maps a side s to ceil(s/2)
    (28->14->7, 7->4), then a 3×3 conv with stride 1 at that size; the decoder mirrors it.
    A stage whose input is already 2×2 or smaller keeps stride 1, so a small image (8×8) still
    fits the 3-stage large preset (8->4->2->2) instead of collapsing to 1×1 or failing.
    The decoder's ConvTranspose2d layers pick output_padding from the recorded encoder sides,
    which gives back exactly the input size (7->14->28, 4->7) with no cropping or resizing."""
    channels = [cfg.in_channels, *cfg.conv_channels()]
    sides, strides = [cfg.image_size], []
    for _ in channels[1:]:
        stride = 2 if sides[-1] > 2 else 1
        strides.append(stride)
        sides.append((sides[-1] - 1) // stride + 1)
    encoder: list[nn.Module] = []
    for c_in, c_out, stride in zip(channels, channels[1:], strides):
        encoder += _conv_block(cfg, c_in, c_out, stride) + _conv_block(cfg, c_out, c_out, 1)
    encoder.append(nn.Flatten())
    feature_shape = (channels[-1], sides[-1], sides[-1])
    features = feature_shape[0] * feature_shape[1] * feature_shape[2]

    decoder: list[nn.Module] = [nn.Linear(cfg.latent + labels, features), *_hidden_block(cfg, spatial=False),
                                nn.Unflatten(1, feature_shape)]
    for i in reversed(range(len(strides))):
        # ConvTranspose2d(k=3, p=1) gives (s-1)*stride + 1 + output_padding; add 1 when the
        # encoder's side was even (it halved exactly), 0 when it was odd or the stride was 1.
        output_padding = sides[i] - ((sides[i + 1] - 1) * strides[i] + 1)
        decoder += _conv_block(cfg, channels[i + 1], channels[i + 1], 1)
        if i == 0:  # the image layer: its own bias, no norm, the output activation
            layer = nn.ConvTranspose2d(channels[1], channels[0], 3, stride=strides[0], padding=1,
                                       output_padding=output_padding)
            decoder += [layer, *_output_block(cfg, layer)]
        else:
            decoder += [nn.ConvTranspose2d(channels[i + 1], channels[i], 3, stride=strides[i], padding=1,
                                           output_padding=output_padding, bias=False),
                        nn.BatchNorm2d(channels[i]), *_hidden_block(cfg, spatial=True)]
    return nn.Sequential(*encoder), features, nn.Sequential(*decoder)


class Autoencoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        validate_config(cfg)
        self.cfg = copy.deepcopy(cfg)  # later edits of the caller's config must not desync the model
        self.image_shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
        labels = cfg.num_classes if cfg.conditional else 0
        parts = _dense_parts if cfg.family == "dense" else _conv_parts
        self.encoder, features, self.decoder = parts(self.cfg, labels)
        if cfg.vae:
            self.to_mu = nn.Linear(features + labels, cfg.latent)
            self.to_logvar = nn.Linear(features + labels, cfg.latent)
        else:
            self.to_latent = nn.Linear(features + labels, cfg.latent)
        self.label_style = nn.ModuleDict({str(i): LabelStyle(c, labels) for i, c in _styled_layers(self.decoder).items()}
                                         if labels else {})
        self._register_load_state_dict_pre_hook(self._neutral_label_style)

    def _neutral_label_style(self, state_dict, prefix, *_args) -> None:
        """Weights saved before the label-style layers existed load with them at zero (no change)."""
        for name, parameter in self.label_style.named_parameters(prefix=f"{prefix}label_style"):
            state_dict.setdefault(name, torch.zeros_like(parameter))

    def _one_hot(self, y: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor:
        if y is None:
            raise ValueError("This model is conditional, so it needs the class labels along with the images.")
        if y.shape != (n,):
            raise ValueError(f"Expected {n} class labels, one per image, but got a tensor of shape {tuple(y.shape)}.")
        # The range check reads the labels on the host; while a CUDA graph is being captured no
        # host read is allowed (the training step's labels come from the dataset, always in range).
        capturing = like.is_cuda and torch.cuda.is_current_stream_capturing()
        if n and not capturing and (int(y.min()) < 0 or int(y.max()) >= self.cfg.num_classes):
            raise ValueError(f"Class labels must lie between 0 and {self.cfg.num_classes - 1} for this model.")
        # scatter_ rather than F.one_hot, which may check the labels on the host itself.
        hot = torch.zeros(n, self.cfg.num_classes, dtype=like.dtype, device=like.device)
        return hot.scatter_(1, y.long().view(n, 1), 1.0)

    def _features(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.image_shape:
            want, got = "×".join(map(str, self.image_shape)), "×".join(map(str, x.shape[1:]))
            raise ValueError(f"This model takes {want} images but got {got}; build a model for this dataset.")
        h = self.encoder(x)
        if self.cfg.conditional:
            h = torch.cat([h, self._one_hot(y, len(x), h)], dim=1)
        return h

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic code (VAE: mu), N×latent."""
        h = self._features(x, y)
        return self.to_mu(h) if self.cfg.vae else self.to_latent(h)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.cfg.latent:
            raise ValueError(f"Codes must have shape N×{self.cfg.latent} for this model, got {tuple(z.shape)}.")
        if not self.cfg.conditional:
            return self.decoder(z)
        one_hot = self._one_hot(y, len(z), z)
        h = torch.cat([z, one_hot], dim=1)
        for index, layer in enumerate(self.decoder):
            h = layer(h)
            if str(index) in self.label_style:
                h = self.label_style[str(index)](h, one_hot)
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


def build_model(cfg: ModelConfig) -> Autoencoder:
    return Autoencoder(cfg)


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
    layer = next(m for m in reversed(list(model.decoder.modules())) if isinstance(m, (nn.Linear, nn.ConvTranspose2d)))
    if model.cfg.output_activation == "sigmoid":
        means = means.clamp(OUTPUT_MEAN_MIN, OUTPUT_MEAN_MAX)
        means = torch.log(means / (1 - means))
    with torch.no_grad():
        if isinstance(layer, nn.ConvTranspose2d):
            layer.bias.copy_(means.to(layer.bias))
        else:  # a dense output of C·H·W values, channel-major (nn.Unflatten to C×H×W)
            layer.bias.copy_(means.repeat_interleave(layer.bias.numel() // channels).to(layer.bias))


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latent dims, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(dim=1).mean()


def _describe(module: nn.Module) -> str:
    if isinstance(module, LabelStyle):
        return f"LabelStyle: a scale and shift of {module.table.shape[1] // 2} channels per label"
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}→{module.out_features}"
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        k = "×".join(map(str, module.kernel_size))
        return (f"{type(module).__name__} {module.in_channels}→{module.out_channels}, {k}, "
                f"stride {module.stride[0]}")
    if isinstance(module, nn.BatchNorm2d):
        return f"BatchNorm2d {module.num_features}"
    if isinstance(module, (nn.Dropout, nn.Dropout2d)):
        return f"{type(module).__name__} p={module.p:g}"
    return type(module).__name__


def layer_table(model: Autoencoder) -> tuple[list[dict], int]:
    """One row per leaf layer in execution order, from forward hooks on a dummy batch of 2;
    and the total parameter count. Runs in eval mode so a VAE draws no random numbers."""
    rows: list[dict] = []

    def record(name: str):
        def hook(module, _inputs, output):
            rows.append({"layer": f"{name} · {_describe(module)}",
                         "output_shape": "×".join(str(d) for d in output.shape[1:]),
                         "params": sum(p.numel() for p in module.parameters(recurse=False))})
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
               if isinstance(m, (*_TABLE_LAYERS, LabelStyle))]
    first = next(model.parameters())
    x = torch.zeros(2, *model.image_shape, device=first.device, dtype=first.dtype)
    y = torch.zeros(2, dtype=torch.long, device=first.device) if model.cfg.conditional else None
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x, y)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows, sum(p.numel() for p in model.parameters())


def activation_bytes_per_image(cfg: ModelConfig) -> int:
    """The bytes one training image keeps alive for the backward pass (every tensor autograd saves
    in the forward pass and the loss), for a config whose data shape is filled in.

    Measured, not guessed: the model is built and run on PyTorch's meta device, which has shapes
    and dtypes but no storage, so nothing is allocated or computed (a model far over every limit
    costs the same few milliseconds) and the random generators are not touched. Batches of 2 and 3
    are run; their difference is one image's share (the rest, e.g. the saved weights, does not
    grow with the batch). Labels are left out: a conditional model's one-hot codes are a few bytes.
    Cached per config (a page checks the same model on every rerun)."""
    return _activation_bytes(cfg.family, cfg.preset, tuple(cfg.hidden), tuple(cfg.channels), cfg.latent,
                             cfg.dropout, cfg.activation, cfg.output_activation, cfg.vae,
                             cfg.in_channels, cfg.image_size)


@functools.lru_cache(maxsize=256)
def _activation_bytes(family, preset, hidden, channels, latent, dropout, activation, output_activation, vae,
                      in_channels, image_size) -> int:
    plain = ModelConfig(family=family, preset=preset, hidden=list(hidden), channels=list(channels), latent=latent,
                        dropout=dropout, activation=activation, output_activation=output_activation, vae=vae,
                        in_channels=in_channels, image_size=image_size)
    shape = in_channels, image_size, image_size

    def saved_bytes(batch: int) -> int:
        total = 0

        def count(tensor: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        with torch.device("meta"), torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
            model = build_model(plain).train()
            x = torch.zeros(batch, *shape)
            out = model(x)
            nn.functional.mse_loss(out.recon, x)
        return total

    return saved_bytes(3) - saved_bytes(2)
