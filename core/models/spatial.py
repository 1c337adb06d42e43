"""The fully convolutional autoencoder of the photo homework: its code is a feature map, not a vector.

Why: a conv model that squeezes a 64-px colour photo through 16 numbers can keep only the
photo's overall colour layout, and its reconstructions are brown blurs. Here every stage is a
3×3 conv (batch norm, activation), a 2×2 max-pool and dropout after the pool, as the homework
wrote it; the code is a 1×1 conv to `latent` channels at the pooled size (64 px, three stages:
latent × 8 × 8). The decoder upsamples back (nearest neighbour to the encoder's recorded sizes,
so odd sides come back exactly) with a 3×3 conv after each step.
"""
from __future__ import annotations

from torch import nn

from core.models.base import Autoencoder, output_block
from core.models.conv import conv_block


class SpatialAutoencoder(Autoencoder):
    family = "spatial"
    title = "Fully convolutional (spatial code)"
    presets = {"small": [16, 32, 32], "large": [32, 64, 128]}
    code_is_map = True
    no_vae = ("its code is a feature map of latent × h × w numbers, and a prior over all of them decodes to "
              "texture, not objects; use the conv or dense family for a VAE")
    no_conditional = ("its code keeps the whole picture, class included, so the decoder would ignore the label; "
                      "use the conv or dense family for a conditional model")

    @classmethod
    def head(cls, features, latent):
        return nn.Conv2d(features, latent, 1)

    @classmethod
    def parts(cls, cfg, labels):
        channels = [cfg.in_channels, *cls.layer_sizes(cfg)]
        sides = [cfg.image_size]
        encoder: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:]):
            encoder += conv_block(cfg, c_in, c_out, dropout=False)
            pooled = sides[-1] > 2  # a 2×2 map (an 8-px digit after two stages) is not pooled further
            encoder += [nn.MaxPool2d(2, ceil_mode=True)] if pooled else []
            encoder += [nn.Dropout(cfg.dropout)] if cfg.dropout > 0 else []
            sides.append((sides[-1] + 1) // 2 if pooled else sides[-1])

        decoder: list[nn.Module] = conv_block(cfg, cfg.latent + labels, channels[-1], dropout=False)
        for i in reversed(range(1, len(channels))):
            if sides[i - 1] != sides[i]:
                decoder.append(nn.Upsample(size=(sides[i - 1], sides[i - 1]), mode="nearest"))
            if i > 1:
                decoder += conv_block(cfg, channels[i], channels[i - 1], dropout=False)
            else:  # the image layer: its own bias, no norm, the output activation
                layer = nn.Conv2d(channels[1], channels[0], 3, padding=1)
                decoder += [layer, *output_block(cfg, layer)]
        return nn.Sequential(*encoder), channels[-1], nn.Sequential(*decoder), (cfg.latent, sides[-1], sides[-1])
