"""The convolutional networks of WGAN-GP's MNIST code, for wgan, wgan-gp and lsgan (``arch``).

(``arch`` chooses among three pairs: these convolutions, ``"mlp"``, the vanilla GAN's
MLPs (``mlp.py``), and ``"points"``, the small networks of the 2-D mode-collapse
benchmarks, for points in the plane (``points.py``).)

Gulrajani et al. (2017) trained every model of their MNIST experiment (``gan_mnist.py`` in
their code: WGAN, WGAN-GP and DCGAN) on one DCGAN-style pair, written for images entering
flat, (batch, 784), as minigan's MLPs take them; with DIM = ``base_channels``:

    critic   x (N, 784) -> (N, 1, 28, 28)
             -> Conv 5x5 stride 2 (1 -> DIM)      14x14   LeakyReLU(0.2)
             -> Conv 5x5 stride 2 (DIM -> 2DIM)    7x7    LeakyReLU(0.2)
             -> Conv 5x5 stride 2 (2DIM -> 4DIM)   4x4    LeakyReLU(0.2)
             -> Linear (4DIM*4*4 -> 1): a real-valued score, no sigmoid
    G        z -> Linear (4DIM*4*4) ReLU -> (N, 4DIM, 4, 4)
             -> ConvT 5x5 stride 2 (4DIM -> 2DIM)  7x7    ReLU
             -> ConvT 5x5 stride 2 (2DIM -> DIM)  14x14   ReLU
             -> ConvT 5x5 stride 2 (DIM -> 1)     28x28   Tanh -> (N, 784)

No pooling and no fully connected hidden layer (DCGAN's rules), padding 2 ("same"), and:

- ``pack`` = m > 1 (PacGAN, ``nn.Pack``): the critic scores m images at once, which
  enter as one image of m channels (m*C for colour), one score per pack; only its first
  convolution grows, and it sees 1/m of the rows.

- **No BatchNorm in the critic** by default, as their WGAN-GP's: BatchNorm would make
  each score depend on the whole batch, while the penalty asks for the gradient of one
  example's score with respect to that example alone; without it, one stacked pass over
  [real; fake] is the two passes of every model's loss as written. Their WGAN put
  BatchNorm in the critic, after its inner convolutions (not the first): a model may ask
  for that (``ArchModel.critic_batchnorm``; only WGAN does, ``d_norm="batch"``), and
  must then pass real and fake through the critic apart (why: ``wgan.py``).
- **BatchNorm in G** after the projection and each inner ConvT (DCGAN's rule, their
  WGAN's G) where a model asks for it (``ArchModel.g_batchnorm``); their WGAN-GP's G
  has none. G then draws samples in evaluation mode (running statistics).
- ``g_full_res_channels`` = c > 0 (0 by default; a model may set it): G's last ConvT
  makes c maps of the image's size instead of the image, and a 3x3 convolution draws
  the image from them, as DCGAN's default G in ``dcgan.py`` (not in their code).
- Images in [-1, 1] through Tanh, as every minigan model's, where their code used
  [0, 1] and a sigmoid.
- 4x4 -> 7x7: their G up-samples 4x4 to 8x8 and crops to 7x7; a transposed
  convolution with output_padding 0 makes 7x7 directly (side 2*4 - 1). In general each
  ConvT doubles the side and output_padding 1 or 0 keeps it even or odd, so that G's
  sides mirror the critic's, which round up at each stride: 28 -> 14 -> 7 -> 4.

The side and channels come from ``image_size`` = C*H*W (the number the MLPs take): a
square of a side (784 = 28^2) is one grey channel, three times a square (3072 = 3*32^2)
is RGB; no number is both, since sqrt(3) is irrational. Other shapes are refused.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.models import mlp, points
from minigan.models.base import check_pack, option
from minigan.models.mlp import MLPConfig, MLPModel
from minigan.nn.checks import is_integer

ARCHS = ("mlp", "conv", "points")
KERNEL, STRIDE, PADDING = 5, 2, 2  # every convolution of both networks


@dataclass
class ArchConfig(MLPConfig):
    """``MLPConfig``'s sizes and the choice of networks: the MLPs or the convolutions."""

    arch: str = option(
        "conv",
        "the networks: 'conv', WGAN-GP's DCGAN-style convolutions (minigan/models/"
        "convnets.py), 'mlp', the vanilla GAN's MLPs (hidden, g_activation), or "
        "'points', the 2-D benchmarks' G of 4x400 and maxout D (minigan/models/points.py)",
        choices=ARCHS,
    )
    base_channels: int = option(
        16,
        "with arch 'conv': channels of the critic's first convolution and of G's last "
        "hidden maps, doubled twice inwards (DIM in Gulrajani et al.'s code: 64)",
    )

    g_full_res_channels: int = option(
        0,
        "with arch 'conv': G's last transposed convolution makes N feature maps of the "
        "image's size, and a 3x3 convolution draws the image from them (as DCGAN's "
        "default G); 0: that last transposed convolution draws the image (their G)",
        metavar="N",
    )

    ema: float = option(
        0.0,
        "sample from a moving average of G's weights with decay BETA (0.999: about the "
        "last 1000 updates), saved in the checkpoint; 0 for none",
        metavar="BETA",
    )
    pack: int = option(
        1,
        "the critic judges M images at once, one score per pack (PacGAN, against mode "
        "collapse); the batch size must be a multiple of M; 1 for one at a time",
        metavar="M",
    )

    POSITIVE = (*MLPConfig.POSITIVE, "base_channels", "pack")

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        super().__post_init__()
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must lie in [0, 1) (0: no average), got {self.ema}")
        check_pack(self, "the critic")
        if not is_integer(self.g_full_res_channels) or self.g_full_res_channels < 0:
            raise ValueError(
                f"g_full_res_channels must be an integer >= 0 (0: none), "
                f"got {self.g_full_res_channels!r}"
            )
        if self.arch == "conv":
            image_geometry(self.image_size)  # a ValueError for a shape the convs cannot take


def image_geometry(image_size: int) -> tuple[int, int]:
    """(channels, side) of square images of ``image_size`` = C*side^2 numbers, C 1 or 3."""
    for channels in (1, 3):
        side = math.isqrt(image_size // channels)
        if image_size % channels == 0 and channels * side * side == image_size:
            return channels, side
    raise ValueError(
        f"arch 'conv' takes square grey or RGB images (image_size = side^2 or 3*side^2), "
        f"got image_size {image_size}; use arch 'mlp' for other shapes"
    )


def sides(side: int) -> list[int]:
    """The critic's feature-map sides, after each stride-2 convolution: [14, 7, 4] for 28."""
    out = []
    for _ in range(3):
        side = (side + 2 * PADDING - KERNEL) // STRIDE + 1
        out.append(side)
    return out


def build_generator(
    config: ArchConfig, rng: np.random.Generator, dtype: Any, batchnorm: bool = False
) -> nn.Sequential:
    """z (batch, latent_dim) -> images (batch, image_size) in [-1, 1], flat like the MLPs'.

    ``batchnorm``: BatchNorm after the projection and each inner ConvT (DCGAN's rule,
    their WGAN's G); none for their WGAN-GP's G.

    ``config.g_full_res_channels`` = c > 0: the last ConvT makes c maps of the image's
    size (BatchNorm if ``batchnorm``, ReLU), and a 3x3 convolution draws the image from
    them, each pixel from all c maps around it, as ``dcgan.build_generator``'s default G.
    Without it, each output pixel of the last ConvT is a sum of at most 9 of the 25
    kernel taps over the half-size maps (stride 2), a different subset for each of the four
    pixel parities, so neighbouring pixels come from different weights; the 3x3
    convolution then mixes each pixel with its neighbours.
    """

    def norm(c: int, layer: type = nn.BatchNorm2d) -> list[nn.Module]:
        return [layer(c, dtype=dtype)] if batchnorm else []

    channels, side = image_geometry(config.image_size)
    dim, maps = config.base_channels, [side, *sides(side)]  # [28, 14, 7, 4]
    full = config.g_full_res_channels
    widths = [4 * dim, 2 * dim, dim, full or channels]  # from 4x4 outwards

    layers = [
        nn.Linear(config.latent_dim, widths[0] * maps[3] ** 2, rng=rng, dtype=dtype),
        *norm(widths[0] * maps[3] ** 2, nn.BatchNorm1d),
        nn.ReLU(),
        nn.Unflatten(1, (widths[0], maps[3], maps[3])),
    ]
    for i in range(3):  # 4 -> 7 -> 14 -> 28: each ConvT doubles the side, minus one if odd
        c_in, c_out, side_in, side_out = widths[i], widths[i + 1], maps[3 - i], maps[2 - i]
        extra = side_out - (2 * side_in - 1)  # output_padding: 1 for an even side, 0 odd
        layers.append(
            nn.ConvTranspose2d(c_in, c_out, KERNEL, STRIDE, PADDING, extra, rng=rng, dtype=dtype)
        )
        if i < 2 or full:
            layers += [*norm(c_out), nn.ReLU()]
    if full:  # the 3x3 convolution, as a stride-1 ConvT (why: dcgan.build_generator)
        layers.append(nn.ConvTranspose2d(full, channels, 3, 1, 1, rng=rng, dtype=dtype))
    return nn.Sequential(*layers, nn.Tanh(), nn.Flatten())


def build_critic(
    config: ArchConfig,
    rng: np.random.Generator,
    dtype: Any,
    pack: int = 1,
    batchnorm: bool = False,
) -> nn.Sequential:
    """images (batch, image_size) -> one real score per image, (batch, 1).

    ``pack`` = m > 1: the critic scores every m consecutive images together (PacGAN,
    ``nn.Pack``), entering as one image of m*channels channels: (batch / m, 1).

    ``batchnorm``: BatchNorm after each inner convolution, none after the first (at
    the critic's input, as DCGAN's D and their WGAN's critic); those convolutions then
    have no bias (BatchNorm's beta is one). Each score then depends on its whole batch.
    """
    channels, side = image_geometry(config.image_size)
    dim, last = config.base_channels, sides(side)[-1]
    widths = [pack * channels, dim, 2 * dim, 4 * dim]
    layers: list[nn.Module] = [
        *([nn.Pack(pack)] if pack > 1 else []),
        nn.Unflatten(1, (widths[0], side, side)),
    ]
    for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
        norm = batchnorm and i > 0  # an inner convolution
        layers += [
            nn.Conv2d(c_in, c_out, KERNEL, STRIDE, PADDING, bias=not norm, rng=rng, dtype=dtype),
            *([nn.BatchNorm2d(c_out, dtype=dtype)] if norm else []),
            nn.LeakyReLU(0.2),
        ]
    layers += [nn.Flatten(), nn.Linear(widths[-1] * last * last, 1, rng=rng, dtype=dtype)]
    return nn.Sequential(*layers)


def count_parameters(
    config: ArchConfig, batchnorm: bool = False, pack: int = 1, critic_batchnorm: bool = False
) -> int:
    """Weights and biases of ``build_generator``'s G and ``build_critic``'s critic
    (``batchnorm``: G's, ``critic_batchnorm``: the critic's)."""
    channels, side = image_geometry(config.image_size)
    dim, last, k2 = config.base_channels, sides(side)[-1], KERNEL * KERNEL
    projection = 4 * dim * last * last
    generator = (config.latent_dim + 1) * projection  # the projection of z
    generator += (4 * dim * 2 * dim + 2 * dim * dim) * k2 + 3 * dim  # inner ConvTs
    full = config.g_full_res_channels  # the last ConvT: to full maps then a 3x3 conv, or to C
    if full:
        generator += dim * full * k2 + full + full * channels * 9 + channels
    else:
        generator += dim * channels * k2 + channels  # the ConvT that draws the image
    if batchnorm:  # gamma and beta after the projection and the inner ConvTs
        generator += 2 * (projection + 2 * dim + dim + full)
    critic = (pack * channels * dim + dim * 2 * dim + 2 * dim * 4 * dim) * k2 + 7 * dim
    critic += 4 * dim * last * last + 1
    if critic_batchnorm:  # gamma and beta where the inner convolutions' biases were
        critic += 2 * dim + 4 * dim
    return generator + critic


def estimate_memory(config: ArchConfig, rows: int, parameters: int) -> int:
    """About how many bytes training needs (see ``mlp.estimate_memory``): each parameter's
    4 arrays, and every feature map of G and the critic for ``rows`` images, times 3 for
    the im2col columns (25 per output pixel, a quarter of the pixels: about 6x a map)
    and temporaries, the critic seeing real, fake and the penalty's x^."""
    channels, side = image_geometry(config.image_size)
    dim, (a, b, c) = config.base_channels, sides(side)
    maps = channels * side * side + dim * a * a + 2 * dim * b * b + 4 * dim * c * c
    maps += config.g_full_res_channels * side * side
    return 4 * (4 * parameters + 3 * rows * 8 * maps)


class ArchModel(MLPModel):
    """A ``Model`` built from the MLPs (``arch="mlp"``) or the convolutions above.

    Either way images enter flat, (batch, image_size), and G draws them flat: the rest
    of the model, its loss and its step, does not know which networks it has.
    """

    g_batchnorm: ClassVar[bool] = False  # BatchNorm in the convolutional G (the model's choice)

    @classmethod
    def critic_batchnorm(cls, config: ArchConfig) -> bool:
        """BatchNorm in the convolutional critic (``build_critic``): none unless the model
        asks for it, and then it must pass real and fake through the critic apart."""
        return False

    def build_networks(
        self, config: ArchConfig, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Sequential, nn.Sequential]:
        if config.arch == "mlp":
            G = mlp.build_generator(config, rng, dtype)
            D = mlp.build_discriminator(
                config, rng, dtype, self.discriminator_sigmoid, pack=config.pack
            )
            return G, D
        if config.arch == "points":  # G has BatchNorm whatever g_batchnorm says: the paper's
            G = points.build_generator(config, rng, dtype)
            D = points.build_discriminator(
                config, rng, dtype, self.discriminator_sigmoid, pack=config.pack
            )
            return G, D
        G = build_generator(config, rng, dtype, batchnorm=self.g_batchnorm)
        norm = self.critic_batchnorm(config)
        return G, build_critic(config, rng, dtype, pack=config.pack, batchnorm=norm)

    @classmethod
    def parameter_count(cls, config: ArchConfig) -> int:
        if config.arch == "mlp":
            return mlp.count_parameters(config, pack=config.pack)
        if config.arch == "points":
            return points.count_parameters(config, pack=config.pack)
        return count_parameters(
            config, cls.g_batchnorm, config.pack, critic_batchnorm=cls.critic_batchnorm(config)
        )

    @classmethod
    def memory_bytes(cls, config: ArchConfig, rows: int) -> int:
        if config.arch == "mlp":
            return super().memory_bytes(config, rows)
        if config.arch == "points":
            return points.estimate_memory(config, rows, cls.parameter_count(config))
        return estimate_memory(config, rows, cls.parameter_count(config))

    @classmethod
    def config_for_images(cls, config: ArchConfig, shape: tuple[int, ...]) -> ArchConfig:
        """``config`` for images of ``shape`` (channels, height, width) or points of
        ``shape`` (dimensions,); the convolutions take square images only."""
        if config.arch == "conv" and len(shape) != 3:
            raise ValueError(
                f"arch 'conv' takes images (channels, height, width), got examples of shape "
                f"{tuple(shape)}; use arch 'points' for points in the plane"
            )
        if config.arch == "conv":
            channels, height, width = shape
            if height != width or channels not in (1, 3):
                raise ValueError(
                    f"arch 'conv' takes square grey or RGB images, got "
                    f"{channels}x{height}x{width}; use arch 'mlp' for other shapes"
                )
        return dataclasses.replace(config, image_size=math.prod(shape))
