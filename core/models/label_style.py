"""A conditional decoder's per-label styling of its hidden layers (FiLM, Perez et al. 2018).

Given only at the decoder's input, the label lost to a 16-number code that held everything
itself: a default conditional model's six labels decoded the same image, 1% apart (issue 21, the
colour style-transfer lesson). Scaling and shifting every channel of each hidden layer per label
lets a wrong label repaint an image in that class's style. A family says which of its decoder's
layers are styled (Autoencoder.styled_layers); the base class builds and applies the styles.
"""
from __future__ import annotations

import torch
from torch import nn


class LabelStyle(nn.Module):
    """A per-class scale and shift of every channel of one decoder layer:
    h * (1 + scale[label]) + shift[label]. Starts at zero, so it begins as no change; a run saved
    before these layers existed loads with them at zero (neutral_label_style) and decodes exactly
    as it did."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(num_classes, 2 * channels))

    def forward(self, h: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        scale, shift = (one_hot @ self.table).chunk(2, dim=1)
        shape = (len(h), -1) + (1,) * (h.dim() - 2)
        return h * (1 + scale.view(shape)) + shift.view(shape)


STATE_PREFIX = "label_style."  # where the styles sit in a model's state dict


def label_styles(styled: dict[int, int], num_classes: int) -> nn.ModuleDict:
    """decoder index -> its LabelStyle, for the layers `styled` names (index -> channels)."""
    return nn.ModuleDict({str(i): LabelStyle(c, num_classes) for i, c in styled.items()})


def neutral_label_style(module: nn.Module, state_dict: dict, prefix: str, *_args) -> None:
    """A load_state_dict pre-hook: weights saved before the label-style layers existed load with
    them at zero (no change)."""
    for name, parameter in module.label_style.named_parameters(prefix=f"{prefix}label_style"):
        state_dict.setdefault(name, torch.zeros_like(parameter))
