"""The dense (fully connected) autoencoder of the homework's 784-1000-500-250-2 question."""
from __future__ import annotations

from torch import nn

from core.models.base import Autoencoder, hidden_block, output_block


class DenseAutoencoder(Autoencoder):
    """Flatten -> the hidden sizes -> a code of `latent` numbers; the decoder mirrors the sizes back
    to C·H·W and unflattens."""

    family = "dense"
    title = "Dense (fully connected)"
    layers_setting = "hidden"
    # The presets fill the form's sizes; the model reads only `hidden`.
    presets = {"small": [256, 128], "large": [1000, 500, 250]}
    reads_preset = False

    @classmethod
    def styled_layers(cls, decoder):
        """Each hidden Linear after the first (which takes the label itself), the image layer not."""
        linears = [i for i, m in enumerate(decoder) if isinstance(m, nn.Linear)]
        return {i: decoder[i].out_features for i in linears[1:-1]}

    @classmethod
    def parts(cls, cfg, labels):
        shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
        sizes = [shape[0] * shape[1] * shape[2], *cfg.hidden]
        encoder: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes, sizes[1:]):
            encoder += [nn.Linear(n_in, n_out), *hidden_block(cfg, spatial=False)]
        back = sizes[::-1]  # e.g. [256, 512, 784]
        decoder: list[nn.Module] = [nn.Linear(cfg.latent + labels, back[0]), *hidden_block(cfg, spatial=False)]
        for i, (n_in, n_out) in enumerate(zip(back, back[1:])):
            layer = nn.Linear(n_in, n_out)
            last = i == len(back) - 2
            decoder += [layer, *(output_block(cfg, layer) if last else hidden_block(cfg, False))]
        decoder.append(nn.Unflatten(1, shape))
        return nn.Sequential(*encoder), sizes[-1], nn.Sequential(*decoder), (cfg.latent,)
