"""The architecture and training widgets of the Train page; they fill one RunConfig.

Every widget has a visible label and a stable key (prefix "cfg_") so tests and the browser
walk can find it.
"""
from __future__ import annotations

import streamlit as st

from core.config import (
    ACTIVATIONS,
    CONV_PRESETS,
    LOSSES,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)

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
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
FORM_PROBLEMS_KEY = "train_form_problems"
DENSE_PRESETS = {"small": [256, 128], "large": [1000, 500, 250]}


def parse_sizes(text: str) -> list[int]:
    """'32, 64,128' -> [32, 64, 128]; ValueError with one plain sentence otherwise."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"'{text}' is not a list of whole numbers; write sizes like 32, 64, 128.") from None
    if not sizes:
        raise ValueError("Give at least one layer size, like 32, 64.")
    if min(sizes) < 1:
        raise ValueError(f"Every layer size must be at least 1 (got {text}).")
    return sizes


def _sizes_text(sizes: list[int]) -> str:
    return ", ".join(str(s) for s in sizes)


def model_form() -> tuple[ModelConfig, float, list[str]]:
    """Model widgets -> (ModelConfig without the data shape, denoising noise factor, problems)."""
    problems: list[str] = []
    mc = ModelConfig()
    mc.family = st.radio("Architecture", ["conv", "dense"], horizontal=True, key="cfg_family",
                         format_func={"conv": "Convolutional", "dense": "Dense (fully connected)"}.get)
    mc.preset = st.radio("Size preset", list(CONV_PRESETS), horizontal=True, key="cfg_preset",
                         help="Fills the layer sizes below; edit them freely.")
    if mc.family == "conv":
        preset_sizes = CONV_PRESETS[mc.preset]
        # One text box per preset, so switching preset shows that preset's channels.
        text = st.text_input("Conv channels (encoder, comma-separated)", _sizes_text(preset_sizes),
                             key=f"cfg_channels_{mc.preset}",
                             help="Each number is one stride-2 convolution; the decoder mirrors them.")
        try:
            sizes = parse_sizes(text)
            mc.channels = [] if sizes == preset_sizes else sizes
        except ValueError as exc:
            problems.append(str(exc))
    else:
        preset_sizes = DENSE_PRESETS[mc.preset]
        text = st.text_input("Hidden layer sizes (encoder, comma-separated)", _sizes_text(preset_sizes),
                             key=f"cfg_hidden_{mc.preset}",
                             help="The decoder mirrors them; e.g. 1000, 500, 250 for the large one.")
        try:
            mc.hidden = parse_sizes(text)
        except ValueError as exc:
            problems.append(str(exc))
    c1, c2 = st.columns(2)
    mc.latent = int(c1.number_input("Latent size", min_value=1, max_value=1024, value=16, step=1,
                                    key="cfg_latent"))
    mc.dropout = float(c2.slider("Dropout", 0.0, 0.9, 0.0, 0.05, key="cfg_dropout"))
    c1, c2 = st.columns(2)
    mc.activation = c1.selectbox("Activation", ACTIVATIONS, key="cfg_activation",
                                 format_func=ACTIVATION_LABELS.get)
    mc.output_activation = c2.selectbox("Output activation", OUTPUT_ACTIVATIONS, key="cfg_output_activation")
    c1, c2 = st.columns(2)
    mc.vae = c1.checkbox("Variational (VAE)", key="cfg_vae",
                         help="The encoder outputs a mean and a variance; the loss adds beta × KL.")
    if mc.vae:
        mc.beta = float(c2.number_input("Beta (KL weight)", min_value=0.0, max_value=100.0, value=1.0,
                                        step=0.1, key="cfg_beta"))
    mc.conditional = st.checkbox("Conditional (the label goes into encoder and decoder)",
                                 key="cfg_conditional")
    noise = float(st.slider("Denoising noise factor (0 = plain autoencoder)", 0.0, 1.0, 0.0, 0.05,
                            key="cfg_noise",
                            help="Training inputs get noise × N(0, 1) added; the target stays clean."))
    return mc, noise, problems


def training_form(noise: float) -> TrainConfig:
    tc = TrainConfig(noise_factor=noise)
    c1, c2 = st.columns(2)
    tc.optimizer = c1.selectbox("Optimiser", OPTIMIZERS, key="cfg_optimizer", format_func=OPTIMIZER_LABELS.get)
    tc.lr = float(c2.number_input("Learning rate", min_value=1e-6, max_value=10.0, value=1e-3, step=1e-4,
                                  format="%g", key="cfg_lr"))
    c1, c2 = st.columns(2)
    tc.batch_size = int(c1.number_input("Batch size", min_value=1, max_value=100_000, value=128, step=32,
                                        key="cfg_batch_size"))
    tc.epochs = int(c2.number_input("Epochs", min_value=1, max_value=1000, value=10, step=1, key="cfg_epochs"))
    c1, c2 = st.columns(2)
    tc.weight_decay = float(c1.number_input("Weight decay (L2)", min_value=0.0, max_value=1.0, value=0.0,
                                            step=1e-4, format="%g", key="cfg_weight_decay"))
    tc.loss = c2.selectbox("Loss", LOSSES, key="cfg_loss", format_func=LOSS_LABELS.get)
    c1, c2 = st.columns(2)
    tc.patience = int(c1.number_input("Early stopping patience (epochs, 0 = off)", min_value=0,
                                      max_value=1000, value=0, step=1, key="cfg_patience"))
    tc.seed = int(c2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="cfg_seed"))
    tc.device = st.selectbox("Device", DEVICE_CHOICES, key="cfg_device",
                             help="auto picks CUDA, then MPS, then the CPU.")
    return tc


def model_and_training_form(data_cfg: DataConfig) -> RunConfig:
    """All Train-page settings as one RunConfig. Sizes that cannot be parsed are reported with
    st.error where they are typed and leave the preset's sizes in the config."""
    st.subheader("Architecture")
    mc, noise, problems = model_form()
    for problem in problems:
        st.error(problem)
    # The page reads this to keep Start disabled while a size cannot be parsed.
    st.session_state[FORM_PROBLEMS_KEY] = problems
    st.subheader("Training")
    tc = training_form(noise)
    name = st.text_input("Run name (optional)", "", key="cfg_name",
                         help="Letters, digits, '.', '_' and '-'; empty picks a name from the settings.")
    return RunConfig(data=data_cfg, model=mc, train=tc, name=name.strip())
