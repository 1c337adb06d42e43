"""The architecture and training widgets of the Train page; they fill one RunConfig.

Every widget has a visible label and a stable key (prefix "cfg_") so tests and the browser
walk can find it.
"""
from __future__ import annotations

import copy
import math

import streamlit as st

from core.config import (
    ACTIVATIONS,
    LOSSES,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from core.checkpoints import valid_run_name
from core.defaults import few_steps_warning, suggested_training
from core.models import FAMILIES
from core.serving.limits import WorkLimits, check_layers
from core.train import available_devices, resolve_device, zero_learning_rate_note
from core.validation import problems as config_problems
from ui.text import md_message, md_text

OPTIMIZER_LABELS = {
    "adam": "Adam",
    "adamw": "AdamW",
    "sgd": "SGD",
    "sgd_momentum": "SGD + momentum",
    "rmsprop": "RMSprop",
    "rprop": "Rprop",
}
LOSS_LABELS = {"mse": "MSE (mean squared error)", "mae": "MAE (mean absolute error)",
               "bce": "BCE (binary cross-entropy)"}
ACTIVATION_LABELS = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
FORM_PROBLEMS_KEY = "train_form_problems"
# The layer-size box's key (+ "_<preset>"): conv and dense kept the keys tests and saved links know.
SIZES_KEYS = {"conv": "cfg_channels", "dense": "cfg_hidden"}
# (lowest, highest) of each number widget; a value from the URL outside them is ignored.
RANGES = {"latent": (1, 1024), "dropout": (0.0, 0.9), "beta": (0.0, 100.0), "noise": (0.0, 1.0),
          "lr": (0.0, 1e6), "batch": (1, 100_000), "epochs": (1, 1000), "weight_decay": (0.0, 1.0),
          "patience": (0, 1000), "seed": (0, 2**31 - 1)}
# URL parameter -> (part of RunConfig, field): what a reload keeps of the form (ui.url_state).
# Not the run name: it starts empty after each Start. "conv_channels", not "channels": that is the Data page's.
FORM_PARAMS = {
    "family": ("model", "family"), "preset": ("model", "preset"), "conv_channels": ("model", "channels"),
    "hidden": ("model", "hidden"), "latent": ("model", "latent"), "dropout": ("model", "dropout"),
    "activation": ("model", "activation"), "output": ("model", "output_activation"), "vae": ("model", "vae"),
    "beta": ("model", "beta"), "conditional": ("model", "conditional"), "noise": ("train", "noise_factor"),
    "optimizer": ("train", "optimizer"), "lr": ("train", "lr"), "batch": ("train", "batch_size"),
    "epochs": ("train", "epochs"), "weight_decay": ("train", "weight_decay"), "loss": ("train", "loss"),
    "patience": ("train", "patience"), "seed": ("train", "seed"), "device": ("train", "device"),
}


def parse_sizes(text: str, family: str = "dense") -> list[int]:
    """'32, 64,128' -> [32, 64, 128]; ValueError with one plain sentence otherwise. More layers
    than the server allows are refused before anything is counted (12,000 typed sizes cost 47 s in
    the memory estimate; 20,000 in a link made a layer table of 80,005 rows)."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    check_layers(ModelConfig(family=family, hidden=parts, channels=parts), WorkLimits.from_env())
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        shown = text if len(text) <= 60 else text[:59] + "…"
        raise ValueError(f"'{shown}' is not a list of whole numbers; write sizes like 32, 64, 128.") from None
    if not sizes:
        raise ValueError("Give at least one layer size, like 32, 64.")
    if min(sizes) < 1:
        raise ValueError(f"Every layer size must be at least 1 (got {text}).")
    return sizes


def _sizes_text(sizes: list[int]) -> str:
    return ", ".join(str(s) for s in sizes)


def model_form(start: ModelConfig, noise_start: float) -> tuple[ModelConfig, float, list[str]]:
    """Model widgets, starting from `start` -> (ModelConfig without the data shape, denoising
    noise factor, problems). Each family shows the settings it reads (core.models.FAMILIES)."""
    problems: list[str] = []
    mc = ModelConfig()
    names = list(FAMILIES)
    mc.family = st.radio("Architecture", names, index=names.index(start.family) if start.family in names else 0,
                         horizontal=True, key="cfg_family", format_func=lambda name: FAMILIES[name].title)
    family = FAMILIES[mc.family]
    presets = list(family.presets)
    mc.preset = st.radio("Size preset", presets, index=presets.index(start.preset) if start.preset in presets else 0,
                         horizontal=True, key="cfg_preset", help="Fills the layer sizes below; edit them freely.")
    same_shape = start.family == mc.family and start.preset == mc.preset
    preset_sizes = family.presets[mc.preset]
    shown = family.layer_sizes(start) if same_shape else preset_sizes
    dense = family.layers_setting == "hidden"
    # One text box per family and preset, so switching either shows that preset's sizes.
    text = st.text_input("Hidden layer sizes (encoder, comma-separated)" if dense
                         else "Conv channels (encoder, comma-separated)", _sizes_text(shown),
                         key=f"{SIZES_KEYS.get(mc.family, f'cfg_{mc.family}_channels')}_{mc.preset}",
                         help="The decoder mirrors them; e.g. 1000, 500, 250 for the large one." if dense else
                         "Each number is one stage (a stride-2 convolution, or a convolution and a 2×2 pooling); "
                         "the decoder mirrors them.")
    try:
        sizes = parse_sizes(text, mc.family)
        setattr(mc, family.layers_setting, [] if family.reads_preset and sizes == preset_sizes else sizes)
    except ValueError as exc:
        problems.append(str(exc))
    mc.latent = int(st.number_input("Latent size", *RANGES["latent"], value=start.latent, step=1,
                                    key="cfg_latent"))
    if family.code_is_map:
        st.caption(f"This architecture's code is a feature map: {mc.latent} channels, each stage halving the "
                   f"side (three stages on a 64-pixel photo: {mc.latent}×8×8 = {mc.latent * 64:,} numbers; the "
                   "layer table shows it for this dataset).")
    mc.dropout = float(st.slider("Dropout", *RANGES["dropout"], float(start.dropout), 0.05, key="cfg_dropout"))
    mc.activation = st.selectbox("Activation", ACTIVATIONS, index=ACTIVATIONS.index(start.activation),
                                 key="cfg_activation", format_func=ACTIVATION_LABELS.get)
    mc.output_activation = st.selectbox("Output activation", OUTPUT_ACTIVATIONS,
                                        index=OUTPUT_ACTIVATIONS.index(start.output_activation),
                                        key="cfg_output_activation")
    if family.no_vae:
        st.caption(f"No VAE for this architecture: {family.no_vae}.")
    else:
        mc.vae = st.checkbox("Variational (VAE)", start.vae, key="cfg_vae",
                             help="The encoder outputs a mean and a variance; the loss adds beta × the KL part: "
                                  "the KL of an image per pixel value (per 784 at least, so that small images "
                                  "still learn codes).")
    if mc.vae:
        mc.beta = float(st.number_input("Beta (KL weight)", *RANGES["beta"],
                                        value=float(start.beta), step=0.1, key="cfg_beta"))
    if family.no_conditional:
        st.caption(f"No conditional variant for this architecture: {family.no_conditional}.")
    else:
        mc.conditional = st.checkbox("Conditional (the label goes into encoder and decoder)", start.conditional,
                                     key="cfg_conditional")
    if mc.conditional and mc.latent > 4:
        # The style-transfer lesson fails silently otherwise (see the Generate page).
        st.caption(f"A latent of {mc.latent} can hold the class itself, so the decoder may ignore the label; "
                   "for style transfer (one code, every label) use a latent of 2.")
    noise = float(st.slider("Denoising noise factor (0 = plain autoencoder)", *RANGES["noise"], float(noise_start),
                            0.05, key="cfg_noise",
                            help="Training inputs get noise × N(0, 1) added; the target stays clean."))
    return mc, noise, problems


def steps_note(train_images: int | None, batch_size: int) -> None:
    """Why the batch size and epochs start where they do, and a warning when an epoch would make
    fewer than core.defaults.FEW_STEPS_PER_EPOCH optimiser steps."""
    if not train_images:
        return
    suggestion = suggested_training(train_images)
    st.caption(f"Suggested for this dataset: batch {suggestion.batch_size}, {suggestion.epochs} epochs. "
               f"{suggestion.reason}")
    warning = few_steps_warning(train_images, batch_size)
    if warning:
        st.warning(warning, icon=":material/warning:")


def training_form(start: TrainConfig, noise: float, train_images: int | None = None) -> TrainConfig:
    tc = TrainConfig(noise_factor=noise)
    tc.optimizer = st.selectbox("Optimiser", OPTIMIZERS, index=OPTIMIZERS.index(start.optimizer),
                                key="cfg_optimizer", format_func=OPTIMIZER_LABELS.get)
    tc.lr = float(st.number_input("Learning rate", *RANGES["lr"], value=float(start.lr),
                                  step=1e-4, format="%g", key="cfg_lr"))
    if zero_learning_rate_note(tc.lr):  # allowed (a lesson may show it), but said plainly
        st.warning(zero_learning_rate_note(tc.lr), icon=":material/warning:")
    tc.batch_size = int(st.number_input("Batch size", *RANGES["batch"], value=start.batch_size,
                                        step=32, key="cfg_batch_size",
                                        help="Larger than the training set means full-batch training."))
    tc.epochs = int(st.number_input("Epochs", *RANGES["epochs"], value=start.epochs, step=1,
                                    key="cfg_epochs"))
    steps_note(train_images, tc.batch_size)
    tc.weight_decay = float(st.number_input("Weight decay (L2)", *RANGES["weight_decay"],
                                            value=float(start.weight_decay), step=1e-4, format="%g",
                                            key="cfg_weight_decay"))
    tc.loss = st.selectbox("Loss", LOSSES, index=LOSSES.index(start.loss), key="cfg_loss",
                           format_func=LOSS_LABELS.get)
    tc.patience = int(st.number_input("Early stopping patience (epochs, 0 = off)", *RANGES["patience"],
                                      value=start.patience, step=1, key="cfg_patience"))
    tc.seed = int(st.number_input("Seed", *RANGES["seed"], value=start.seed, step=1,
                                  key="cfg_seed"))
    devices = available_devices()
    auto = resolve_device("auto").type.upper()
    tc.device = st.selectbox("Device", devices, index=devices.index(start.device) if start.device in devices else 0,
                             key="cfg_device", format_func=lambda d: f"auto ({auto})" if d == "auto" else d,
                             help="auto picks CUDA, then MPS, then the CPU.")
    return tc


def model_and_training_form(data_cfg: DataConfig, start: RunConfig | None = None,
                            train_images: int | None = None) -> RunConfig:
    """All Train-page settings as one RunConfig, starting from `start` (the defaults when None).
    Sizes that cannot be parsed are reported with st.error where they are typed and leave the
    preset's sizes in the config; a setting that breaks a rule (core.validation) is said below."""
    start = start or RunConfig()
    architecture, training = st.columns(2, gap="medium")
    with architecture:
        st.subheader("Architecture")
        mc, noise, problems = model_form(start.model, start.train.noise_factor)
        for problem in problems:
            st.error(md_message(problem))
    with training:
        st.subheader("Training settings")
        tc = training_form(start.train, noise, train_images)
        # Starts empty, not with the last run's name (the page empties it after each Start).
        name = st.text_input("Run name (optional)", "", key="cfg_name",
                             help="Letters, digits, '.', '_' and '-'; empty picks a name from the settings.")
        if name.strip() and valid_run_name(name.strip()) != name.strip():  # say it before it happens
            st.caption(f"'{md_text(name.strip())}' is not a valid run name (letters, digits, '.', '_' and '-'); it "
                       f"will be saved as {md_text(valid_run_name(name.strip()))}.")
    cfg = RunConfig(data=data_cfg, model=mc, train=tc, name=name.strip())
    broken = config_problems(cfg, sections=("model", "train"))  # e.g. the BCE loss without a sigmoid output
    for problem in broken:
        st.error(md_message(problem))
    # The page reads this to keep Start disabled while a size cannot be parsed or a rule is broken.
    st.session_state[FORM_PROBLEMS_KEY] = problems + broken
    return cfg


# ---------------------------------------------------------------- the form in the URL

def _param_text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _param_value(param: str, text: str, like):
    """`text` as the value of the form's `param` (typed like `like`); ValueError when the widget
    could not show it."""
    if isinstance(like, bool):
        if text not in ("0", "1"):
            raise ValueError(text)
        return text == "1"
    if isinstance(like, list):
        return parse_sizes(text, "conv" if param == "conv_channels" else "dense")
    if isinstance(like, (int, float)):
        value = type(like)(text)
        low, high = RANGES[param]
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(text)
        return value
    choices = {"family": list(FAMILIES), "preset": sorted({p for f in FAMILIES.values() for p in f.presets}), "activation": ACTIVATIONS,
               "output": OUTPUT_ACTIVATIONS, "optimizer": OPTIMIZERS, "loss": LOSSES,
               "device": available_devices()}[param]
    if text not in choices:
        raise ValueError(text)
    return text


def form_params(cfg: RunConfig, defaults: RunConfig) -> dict[str, str | None]:
    """The form's URL parameters: the text of each setting that differs from `defaults`, None
    for the others (left out of the URL)."""
    params: dict[str, str | None] = {}
    for param, (part, field) in FORM_PARAMS.items():
        value = getattr(getattr(cfg, part), field)
        params[param] = None if value == getattr(getattr(defaults, part), field) else _param_text(value)
    return params


def form_from_params(params: dict[str, str], start: RunConfig) -> RunConfig:
    """`start` with the settings a URL gives (see form_params); a value the form could not show
    (not a number, out of range, not an option) is ignored."""
    cfg = copy.deepcopy(start)
    for param, (part, field) in FORM_PARAMS.items():
        if param in params:
            section = getattr(cfg, part)
            try:
                setattr(section, field, _param_value(param, str(params[param]), getattr(section, field)))
            except ValueError:
                pass
    return cfg
