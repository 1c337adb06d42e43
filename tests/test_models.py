"""core.models: every family × variant × image shape trains (forward and backward) and gives
back exactly the input shape; layer tables, configs through JSON, and plain refusals."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from core.config import ACTIVATIONS, ModelConfig, RunConfig
from core.models import AEOutput, build_model, kl_divergence, layer_table, validate_config

FAMILIES = {
    "dense": dict(family="dense", hidden=[64, 32]),
    "dense-custom": dict(family="dense", hidden=[50, 30, 20]),
    "conv-small": dict(family="conv", preset="small"),
    "conv-large": dict(family="conv", preset="large"),
    "conv-custom": dict(family="conv", channels=[4, 8, 8, 6]),  # 4 stages, not monotone
}
VARIANTS = {
    "plain": dict(),
    "vae": dict(vae=True),
    "conditional": dict(conditional=True),
    "vae-conditional": dict(vae=True, conditional=True),
}
SHAPES = [(1, 8), (1, 28), (3, 32), (3, 64), (3, 128)]  # (channels, side)


def make(family: str, variant: str = "plain", in_channels: int = 1, side: int = 28, **extra) -> tuple:
    settings = {**FAMILIES[family], **VARIANTS[variant], "latent": 3, "num_classes": 4,
                "in_channels": in_channels, "image_size": side, **extra}
    if side >= 128 and family.startswith("conv") and "channels" not in extra:
        settings["channels"] = [4, 8, 8]  # keep the 128-px case quick on a CPU
    cfg = ModelConfig(**settings)
    torch.manual_seed(0)
    return cfg, build_model(cfg)


def batch(cfg: ModelConfig, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, cfg.in_channels, cfg.image_size, cfg.image_size, generator=g)
    y = torch.randint(0, cfg.num_classes, (n,), generator=g) if cfg.conditional else None
    return x, y


@pytest.mark.parametrize("channels, side", SHAPES, ids=[f"{c}x{s}x{s}" for c, s in SHAPES])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_forward_backward_keeps_the_input_shape(family, variant, channels, side):
    cfg, model = make(family, variant, channels, side)
    x, y = batch(cfg, 2 if side >= 64 else 4)
    model.train()
    out = model(x, y)
    assert isinstance(out, AEOutput)
    assert out.recon.shape == x.shape
    assert out.recon.min() >= 0 and out.recon.max() <= 1  # sigmoid output
    assert out.z.shape == (len(x), cfg.latent)
    if cfg.vae:
        assert out.mu.shape == out.logvar.shape == (len(x), cfg.latent)
        loss = nn.functional.mse_loss(out.recon, x) + 1e-3 * kl_divergence(out.mu, out.logvar)
    else:
        assert out.mu is None and out.logvar is None
        loss = nn.functional.mse_loss(out.recon, x)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(p.grad).all(), name
    first = next(m for m in model.encoder if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert first.weight.grad.abs().sum() > 0  # the loss reaches back to the first encoder layer
    # encode / decode agree with forward (eval mode: a VAE decodes its mean)
    model.eval()
    with torch.no_grad():
        code = model.encode(x, y)
        assert code.shape == (len(x), cfg.latent)
        assert torch.allclose(model.decode(code, y), model(x, y).recon, atol=1e-6)


@pytest.mark.parametrize("side", [9, 15, 33, 100])
@pytest.mark.parametrize("family", ["conv-small", "conv-large", "dense"])
def test_odd_and_uneven_sides_come_back_exactly(family, side):
    extra = {"channels": [4, 6, 8]} if family.startswith("conv") else {}
    cfg, model = make(family, "plain", 3, side, **extra)
    x, _ = batch(cfg, 2)
    assert model(x).recon.shape == x.shape


def test_vae_samples_in_training_and_decodes_its_mean_in_eval():
    cfg, model = make("conv-small", "vae")
    x, _ = batch(cfg, 4)
    model.train()
    out = model(x)
    assert not torch.allclose(out.z, out.mu)  # the reparameterised sample
    assert torch.allclose(model.encode(x), out.mu)  # encode is deterministic even in training mode
    model.eval()
    first, second = model(x), model(x)
    assert torch.equal(first.z, first.mu) and torch.equal(first.recon, second.recon)


def test_conditional_model_uses_the_label_in_encoder_and_decoder():
    cfg, model = make("conv-small", "conditional")
    model.eval()
    x, _ = batch(cfg, 3)
    zeros, ones = torch.zeros(3, dtype=torch.long), torch.ones(3, dtype=torch.long)
    with torch.no_grad():
        assert not torch.allclose(model.encode(x, zeros), model.encode(x, ones))
        code = model.encode(x, zeros)
        assert not torch.allclose(model.decode(code, zeros), model.decode(code, ones))  # "style transfer"
    with pytest.raises(ValueError, match="needs the class labels"):
        model(x)
    with pytest.raises(ValueError, match="between 0 and 3"):
        model(x, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="one per image"):
        model(x, torch.tensor([0, 1]))


def test_plain_model_ignores_labels():
    cfg, model = make("dense", "plain")
    model.eval()
    x, _ = batch(cfg, 3)
    with torch.no_grad():
        assert torch.equal(model(x).recon, model(x, torch.tensor([0, 1, 2])).recon)


def test_wrong_input_shape_and_code_shape_are_plain_errors():
    cfg, model = make("conv-small", "plain", 1, 28)
    with pytest.raises(ValueError, match="takes 1×28×28 images but got 3×32×32"):
        model(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="Codes must have shape N×3"):
        model.decode(torch.zeros(2, 5))


@pytest.mark.parametrize("family", ["dense", "conv-small"])
def test_dropout_is_active_in_training_only_and_listed(family):
    cfg, model = make(family, "plain", dropout=0.5)
    x, _ = batch(cfg, 4)
    model.train()
    torch.manual_seed(0)
    a = model(x).recon
    b = model(x).recon
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(x).recon, model(x).recon)
    rows, _ = layer_table(model)
    kind = "Dropout2d" if family.startswith("conv") else "Dropout"
    assert any(f"{kind} p=0.5" in r["layer"] for r in rows)
    _, plain = make(family, "plain", dropout=0.0)
    assert not any("Dropout" in r["layer"] for r in layer_table(plain)[0])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("family", ["dense", "conv-small"])
def test_every_activation_is_used_and_trains(family, activation):
    cfg, model = make(family, "plain", activation=activation)
    layer = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[activation]
    hidden = [m for m in list(model.encoder) + list(model.decoder)[:-2] if isinstance(m, layer)]
    assert len(hidden) >= 2
    x, _ = batch(cfg, 4)
    nn.functional.mse_loss(model(x).recon, x).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_output_activation_none_leaves_the_range_open():
    cfg, model = make("conv-small", "plain", output_activation="none")
    assert not isinstance(list(model.decoder)[-1], nn.Sigmoid)
    with torch.no_grad():
        model.decoder[-1].bias.fill_(5.0)  # an unbounded output can leave [0, 1]
        assert model(batch(cfg, 2)[0]).recon.max() > 1
    _, sigmoid_model = make("conv-small", "plain")
    assert isinstance(list(sigmoid_model.decoder)[-1], nn.Sigmoid)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_layer_table_counts_every_parameter_and_ends_at_the_image(family, variant):
    cfg, model = make(family, variant, 3, 32)
    rows, total = layer_table(model)
    assert total == sum(p.numel() for p in model.parameters())
    assert sum(r["params"] for r in rows) == total  # no parameter is left out of the rows
    assert rows[-1]["output_shape"] == "3×32×32"
    assert all(set(r) == {"layer", "output_shape", "params"} for r in rows)
    names = [r["layer"].split(" · ")[0] for r in rows]
    assert ("to_mu" in names and "to_logvar" in names) if cfg.vae else "to_latent" in names
    latent_row = next(r for r in rows if r["layer"].startswith(("to_mu", "to_latent")))
    assert latent_row["output_shape"] == str(cfg.latent)
    assert model.training  # the table is made in eval mode and the mode is restored


def _encoder_conv_shapes(model) -> list[str]:
    return [r["output_shape"] for r in layer_table(model)[0]
            if r["layer"].startswith("encoder") and "Conv2d" in r["layer"]]


def test_layer_table_shows_the_conv_shapes():
    _, model = make("conv-small", "plain", 1, 28)
    # each stage: a stride-2 conv, then a stride-1 conv at that size
    assert _encoder_conv_shapes(model) == ["16×14×14", "16×14×14", "32×7×7", "32×7×7"]
    _, tiny = make("conv-large", "plain", 1, 8)
    assert _encoder_conv_shapes(tiny)[::2] == ["32×4×4", "64×2×2", "128×2×2"]  # 2×2 keeps stride 1
    rows, _ = layer_table(model)
    assert any(r["layer"].endswith("BatchNorm2d 16") and r["params"] == 32 for r in rows)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_config_round_trips_through_json_and_rebuilds_the_same_model(family, variant):
    cfg, model = make(family, variant, 3, 32, dropout=0.25, activation="leaky_relu")
    run = RunConfig(model=cfg, name="x")
    again = RunConfig.from_json(run.to_json())
    assert again == run
    rebuilt = build_model(again.model)
    original_state = model.state_dict()
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in original_state.items()}
    rebuilt.load_state_dict(original_state)
    model.eval(), rebuilt.eval()
    x, y = batch(cfg, 2)
    with torch.no_grad():
        assert torch.equal(model(x, y).recon, rebuilt(x, y).recon)


def test_model_keeps_its_own_copy_of_the_config():
    cfg, model = make("dense", "plain")
    cfg.latent = 99
    assert model.cfg.latent == 3


@pytest.mark.parametrize("settings, words", [
    ({"family": "rnn"}, "Unknown model family 'rnn'"),
    ({"activation": "gelu"}, "Unknown activation 'gelu'"),
    ({"output_activation": "softmax"}, "Unknown output activation 'softmax'"),
    ({"latent": 0}, "latent size must be at least 1"),
    ({"dropout": 1.0}, "Dropout must be at least 0 and below 1"),
    ({"dropout": -0.1}, "Dropout must be at least 0 and below 1"),
    ({"vae": True, "beta": -1.0}, "beta must not be negative"),
    ({"in_channels": 0}, "is empty"),
    ({"conditional": True, "num_classes": 0}, "at least one class"),
    ({"family": "dense", "hidden": []}, "at least one hidden layer"),
    ({"family": "dense", "hidden": [32, 0]}, "at least 1"),
    ({"family": "conv", "preset": "huge"}, "Unknown conv preset 'huge'"),
    ({"family": "conv", "channels": [8, 0]}, "at least 1"),
])
def test_bad_configs_are_one_sentence_value_errors(settings, words):
    cfg = dataclasses.replace(ModelConfig(), **settings)
    with pytest.raises(ValueError) as info:
        validate_config(cfg)
    message = str(info.value)
    assert words in message and "\n" not in message and message.endswith((".", ")."))
    with pytest.raises(ValueError):
        build_model(cfg)


def test_kl_divergence_matches_the_closed_form():
    assert kl_divergence(torch.zeros(5, 3), torch.zeros(5, 3)).item() == pytest.approx(0.0)
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    assert kl_divergence(mu, logvar).item() == pytest.approx((0.5 + 2.0) / 2)  # 0.5·mu² summed, batch mean
    # sigma² = e: 0.5 · (e - 1 - 1) per dimension
    assert kl_divergence(torch.zeros(1, 1), torch.ones(1, 1)).item() == pytest.approx(0.5 * (torch.e - 2))
