"""DCGAN (Radford, Metz & Chintala, 2016): the GAN of ``gan.py`` with convolutions.

The objective and the training step are the vanilla GAN's,

    D step:  minimise  BCE(D(x), 1) + BCE(D(G(z)), 0)
    G step:  minimise  BCE(D(G(z)), 1) = -log D(G(z))      (non-saturating)

with the networks replaced by the paper's architecture rules, which made GAN training
stable enough to scale to real images:

- G up-samples with strided transposed convolutions (z -> Linear -> 64x7x7 -> ConvT to
  32x14x14 -> ConvT to 1x28x28 for MNIST), D down-samples with strided convolutions
  (1x28x28 -> 32x14x14 -> 64x7x7 -> one logit): no pooling, no fully connected hidden
  layers but the projection of z;
- BatchNorm in both networks, except at G's output and D's input (there it made the
  samples oscillate, the paper reports);
- ReLU in G with Tanh at the output (images in [-1, 1]); LeakyReLU(0.2) throughout D;
- Adam with lr 2e-4 and beta1 = 0.5 (0.9 made training oscillate);
- weights from N(0, 0.02), BatchNorm's gamma from N(1, 0.02) (``dcgan_init``).

Departures from the paper, each kept for the digits it drew in a fixed CPU time (measured:
benchmarks/RESULTS.md, "DCGAN"); the other value of each field gives the paper's network:

- ``base_channels`` 32, half the paper's: a cheaper step, so the same time trains more epochs.
- ``g_lr`` 2e-3 for G, ``lr`` 4e-4 for D: at one rate G trails a D that soon tells its
  samples apart (InfoGAN, Chen et al. 2016: 1e-3 for G, 2e-4 for D); ``g_lr=None``: one.
- ``ema`` 0.9995: samples from a moving average of G's weights (``minigan/ema.py``), over
  about its last 2,000 updates (a tenth of a default MNIST run's 18,750).
- ``pack`` 2: D judges pairs of images (PacGAN, ``nn.Pack``), as the MLP GAN's default.
- ``d_norm="none"``: no BatchNorm in D (nor has WGAN-GP's DCGAN-style critic).
- ``g_full_res_channels`` 16: G's last ConvT makes 16 maps of the image's size and a 3x3
  convolution draws the image from them, each pixel from all 16 maps around it.
- ``d_fc_width`` 128, ``g_fc_width`` 256: a fully connected hidden layer in D before its
  logit and in G before the projection of z (InfoGAN's MNIST networks): a stronger D.
- ``batch_size`` 32 (the paper's 128): an epoch costs the same, and makes more steps.

What differs from ``GAN`` in the code, and why:

- D sees real and fake images in two passes (``stacked_d_step = False``): BatchNorm
  (``d_norm="batch"``) mixes examples, and a stacked batch would normalise real and fake
  with one shared mean and variance, so that D could tell the halves apart by the
  mixture's statistics instead of by the images. DCGAN's code and PyTorch's example pass
  each batch on its own and add the two gradients.
- ``generate`` runs G in evaluation mode (BatchNorm's running statistics): a sample
  depends on its own z only, and drawing it changes no state.
- Images keep their shape, (batch, channels, size, size), instead of being flattened.

Sizes: ``image_size`` 28 starts G at 7x7 and up-samples twice; 32 and 64 start at 4x4 and
up-sample 3 and 4 times, the channels doubling at every step from the image inwards.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_array_module
from minigan.models.base import (
    check_adam,
    check_discriminator_options,
    check_positive,
    option,
)
from minigan.models.gan import GAN, GENERATOR_LOSSES
from minigan.models.mlp import dropout_layers
from minigan.optim import Adam

START_SIZE = {28: 7, 32: 4, 64: 4}  # image side -> G's first feature-map side
CHANNELS = (1, 3)  # grey or RGB
D_NORMS = ("none", "batch")  # what follows each of D's inner convolutions


@dataclass
class DCGANConfig:
    """A DCGAN and how it is trained: image size, networks, and the GAN's recipe."""

    latent_dim: int = option(100, "size of z")
    image_size: int = option(28, "the side of the square images: 28, 32 or 64", flag=False)
    channels: int = option(1, "channels per image: 1 (grey) or 3 (RGB)", flag=False)
    base_channels: int = option(
        32,
        "channels of D's first convolution and of the input of G's last up-sampling "
        "block, doubled at every further block",
    )
    lr: float = option(4e-4, "D's learning rate (and G's, unless g_lr is set)")
    g_lr: float | None = option(2e-3, "the generator's own learning rate; None: lr")
    betas: tuple[float, float] = option((0.5, 0.999), "Adam's (beta1, beta2)", flag=False)
    batch_size: int = option(32, "batch size")
    generator_loss: str = option(
        "non_saturating",
        "'non_saturating': minimise -log D(G(z)); 'saturating': minimise log(1 - D(G(z)))",
        choices=GENERATOR_LOSSES,
    )
    ema: float = option(
        0.9995,
        "sample from a moving average of G's weights with decay BETA (0.9995: about the "
        "last 2000 updates), saved in the checkpoint; 0 for none",
        metavar="BETA",
    )
    real_label: float = option(
        1.0, "D's target for real images (< 1: one-sided label smoothing)", flag=False
    )
    pack: int = option(
        2,
        "D judges M images at once, stacked as M*channels input channels, one score per "
        "pack (PacGAN, against mode collapse); the batch size must be a multiple of M; 1 "
        "for one at a time",
        metavar="M",
    )
    d_dropout: float = option(
        0.0,
        "drop each of D's feature-map values with probability P in training (Dropout "
        "after each LeakyReLU); 0 for none",
        metavar="P",
    )
    d_noise: float = option(
        0.0,
        "add N(0, STD^2) noise to every image D sees in training, real and fake (instance "
        "noise: Arjovsky & Bottou 2017, Sonderby et al. 2017): the blurred distributions "
        "overlap, so D cannot win on fine detail alone and its gradient to G stays "
        "informative; 0 for none",
        metavar="STD",
    )
    d_norm: str = option(
        "none",
        "what follows each of D's inner convolutions: 'batch' (BatchNorm, the paper's) or 'none'",
        choices=D_NORMS,
    )
    g_full_res_channels: int = option(
        16,
        "G's last transposed convolution makes N feature maps of the image's size, and a "
        "3x3 convolution draws the image from them; 0: that last transposed convolution "
        "draws the image (the paper's G)",
        metavar="N",
    )
    d_fc_width: int = option(
        128,
        "a fully connected hidden layer of N units (LeakyReLU) before D's output "
        "(InfoGAN's D); 0 for none, the paper's D",
        metavar="N",
    )
    g_fc_width: int = option(
        256,
        "a fully connected hidden layer of N units (BatchNorm, ReLU) first in G, before "
        "z's projection (InfoGAN's G); 0 for none, the paper's G",
        metavar="N",
    )
    d_augment: str = option(
        "",
        "DiffAugment every image D sees in training, real and fake, in D's step and G's: "
        "any of color,translation,cutout, comma-separated (Zhao et al. 2020, for folders "
        "of a few hundred pictures); '' for none",
        metavar="STEPS",
    )

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.image_size not in START_SIZE:
            raise ValueError(
                f"image_size must be one of {tuple(START_SIZE)}, got {self.image_size!r}"
            )
        if self.channels not in CHANNELS:
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        if self.generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"generator_loss must be one of {GENERATOR_LOSSES}, got {self.generator_loss!r}"
            )
        if self.d_norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {D_NORMS}, got {self.d_norm!r}")
        if not 0 < self.real_label <= 1:
            raise ValueError(f"real_label must lie in (0, 1], got {self.real_label}")
        if not (math.isfinite(self.d_noise) and self.d_noise >= 0):
            raise ValueError(f"d_noise must be a number >= 0 (0: none), got {self.d_noise}")
        if any(step not in nn.augment.POLICIES for step in self.d_augment_steps):
            raise ValueError(
                f"d_augment must name DiffAugment steps, comma-separated, from "
                f"{', '.join(nn.augment.POLICIES)} ('': none), got {self.d_augment!r}"
            )
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must lie in [0, 1) (0: no average), got {self.ema}")
        if self.g_lr is not None and not (math.isfinite(self.g_lr) and self.g_lr > 0):
            raise ValueError(f"g_lr must be positive (or None: lr), got {self.g_lr!r}")
        check_positive(self, "latent_dim", "base_channels", "batch_size", "pack")
        for name in ("g_full_res_channels", "d_fc_width", "g_fc_width"):
            if int(getattr(self, name)) < 0:
                raise ValueError(
                    f"{name} must be an integer >= 0 (0: none), got {getattr(self, name)}"
                )
        check_adam(self)
        check_discriminator_options(self)

    @property
    def d_augment_steps(self) -> list[str]:
        """``d_augment`` as a list of step names ("color,cutout" -> ["color", "cutout"])."""
        return [step.strip() for step in str(self.d_augment).split(",") if step.strip()]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, image_size, image_size): one image, as the networks see it."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def widths(self) -> list[int]:
        """Channels of the hidden feature maps, from the image inwards: [32, 64] for 28x28."""
        blocks = int(math.log2(self.image_size // START_SIZE[self.image_size]))
        return [self.base_channels * 2**i for i in range(blocks)]

    @property
    def logits(self) -> bool:
        """D always gives logits (trained with BCEWithLogitsLoss), as ``GANConfig(logits=True)``."""
        return True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_generator(config: DCGANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """z (batch, latent_dim) -> images (batch, channels, size, size) in [-1, 1]."""
    s, widths = START_SIZE[config.image_size], config.widths[::-1]  # widest first: [64, 32]
    h, layers = config.g_fc_width, []
    if h:  # a fully connected hidden layer first, as in InfoGAN's G
        layers += [
            nn.Linear(config.latent_dim, h, rng=rng, dtype=dtype),
            nn.BatchNorm1d(h, dtype=dtype),
            nn.ReLU(),
        ]
    layers += [
        nn.Linear(h or config.latent_dim, widths[0] * s * s, rng=rng, dtype=dtype),  # project
        nn.Unflatten(1, (widths[0], s, s)),
        nn.BatchNorm2d(widths[0], dtype=dtype),
        nn.ReLU(),
    ]
    for c_in, c_out in itertools.pairwise(widths):  # each block doubles the side
        layers += [
            nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False, rng=rng, dtype=dtype),
            nn.BatchNorm2d(c_out, dtype=dtype),  # (BatchNorm's beta makes a bias redundant)
            nn.ReLU(),
        ]
    c = config.g_full_res_channels
    if c:  # one more block, to c feature maps of the image's size; a 3x3 convolution draws it
        layers += [
            nn.ConvTranspose2d(widths[-1], c, 4, 2, 1, bias=False, rng=rng, dtype=dtype),
            nn.BatchNorm2d(c, dtype=dtype),
            nn.ReLU(),
            # The 3x3 convolution, written as the transposed convolution with stride 1
            # and padding 1: the same maps (a stride-1 ConvT is a convolution with its
            # kernel flipped; see minigan/nn/conv.py), computed from the output side,
            # whose col2im moves 9 rows per output channel where Conv2d's im2col moves
            # 9 per input channel, 16 times as many here (timed: benchmarks/RESULTS.md).
            nn.ConvTranspose2d(c, config.channels, 3, 1, 1, rng=rng, dtype=dtype),
        ]
    else:  # the paper's: the last transposed convolution draws the image
        layers += [nn.ConvTranspose2d(widths[-1], config.channels, 4, 2, 1, rng=rng, dtype=dtype)]
    return nn.Sequential(*layers, nn.Tanh())


def build_discriminator(config: DCGANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """images (batch, channels, size, size) -> one logit per image, (batch, 1), or per
    pack of ``config.pack`` images, (batch / pack, 1)."""
    s, widths, m = START_SIZE[config.image_size], config.widths, config.pack  # [32, 64]
    layers = [
        *([nn.DiffAugment(config.d_augment_steps)] if config.d_augment_steps else []),
        *([nn.GaussianNoise(config.d_noise)] if config.d_noise else []),  # instance noise
        *([nn.Pack(m)] if m > 1 else []),  # m images as m*channels channels (PacGAN)
        nn.Conv2d(m * config.channels, widths[0], 4, 2, 1, rng=rng, dtype=dtype),  # no BatchNorm
        nn.LeakyReLU(0.2),
        *dropout_layers(config.d_dropout),
    ]
    batchnorm = config.d_norm == "batch"
    for c_in, c_out in itertools.pairwise(widths):  # each block halves the side
        layers += [
            nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm, rng=rng, dtype=dtype),
            *([nn.BatchNorm2d(c_out, dtype=dtype)] if batchnorm else []),
            nn.LeakyReLU(0.2),
            *dropout_layers(config.d_dropout),
        ]
    features, h = widths[-1] * s * s, config.d_fc_width
    layers.append(nn.Flatten())
    if h:  # a fully connected hidden layer before the logit, as in InfoGAN's D
        layers += [
            nn.Linear(features, h, rng=rng, dtype=dtype),  # no BatchNorm: d_norm is the convs'
            nn.LeakyReLU(0.2),
            *dropout_layers(config.d_dropout),
        ]
    return nn.Sequential(*layers, nn.Linear(h or features, 1, rng=rng, dtype=dtype))


def count_parameters(config: DCGANConfig) -> int:
    """Weights of ``build_generator``'s G and ``build_discriminator``'s D, from the config
    alone (4x4 kernels; each inner block a BatchNorm's gamma and beta, or a bias)."""
    s, widths, c = START_SIZE[config.image_size], config.widths, config.channels
    pairs = list(itertools.pairwise(widths))  # inner blocks: a 4x4 conv, BatchNorm or bias
    h, z = config.g_fc_width, config.latent_dim  # G's hidden layer: weights, bias, BN
    hidden = (z + 1) * h + 2 * h if h else 0
    projection = hidden + ((h or z) + 1) * widths[-1] * s * s + 2 * widths[-1]  # + BN
    f = config.g_full_res_channels  # the last block: to f maps then a 3x3 conv, or to c
    image = widths[0] * f * 16 + 2 * f + f * c * 9 + c if f else widths[0] * c * 16 + c
    generator = projection + sum(a * b * 16 + 2 * a for a, b in pairs) + image
    per_channel = 2 if config.d_norm == "batch" else 1  # BatchNorm's gamma, beta or a bias
    features, h = widths[-1] * s * s, config.d_fc_width
    hidden = (features + 1) * h  # the fully connected hidden layer's weights and biases
    discriminator = (
        config.pack * c * widths[0] * 16 + widths[0]
        + sum(a * b * 16 + per_channel * b for a, b in pairs) + hidden + (h or features) + 1
    )  # fmt: skip
    return generator + discriminator


def estimate_memory(config: DCGANConfig, rows: int) -> int:
    """About how many bytes training needs (see ``mlp.estimate_memory``): the
    parameters' 4 arrays, and every feature map of G and D for ``rows`` images,
    times 3 for the im2col columns and temporaries, D seeing real and fake."""
    widths, size = config.widths, config.image_size
    maps = sum(w * (size // 2 ** (i + 1)) ** 2 for i, w in enumerate(widths))
    maps += config.g_full_res_channels * size * size + config.d_fc_width + config.g_fc_width
    per_image = maps + config.channels * size * size
    return 4 * (4 * count_parameters(config) + 3 * rows * 3 * per_image)


def dcgan_init(model: nn.Module, rng: np.random.Generator) -> nn.Module:
    """The paper's initialisation, in place: conv weights ~ N(0, 0.02), biases 0,
    BatchNorm gamma ~ N(1, 0.02) and beta 0. Linear layers keep PyTorch's default,
    as in PyTorch's DCGAN example."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.weight.data[...] = rng.normal(0.0, 0.02, module.weight.shape)
            if module.bias is not None:
                module.bias.data[...] = 0
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.weight.data[...] = rng.normal(1.0, 0.02, module.weight.shape)
            module.bias.data[...] = 0
    return model


class DCGAN(GAN):
    """A convolutional generator and discriminator; the rest is ``GAN``'s.

    The interface is every model's (see ``minigan.models``); images keep their shape,
    (batch, channels, size, size). From ``GAN`` it inherits the loss (BCE on
    logits), Adam for both players, the textbook D step, the G step (through the
    frozen D) and the saving; its own are the networks, G's own learning rate and
    ``generate``. The state holds BatchNorm's running statistics too, loaded all or
    nothing.
    """

    summary = "the GAN with convolutions and BatchNorm"
    name = "dcgan"
    default_epochs = 10  # benchmarks/RESULTS.md, the family's third round (Parzen)
    config_class = DCGANConfig
    stacked_d_step: ClassVar[bool] = False  # BatchNorm sees each half on its own

    def __init__(
        self,
        config: DCGANConfig,
        backend: str | Backend = "numpy",
        seed: int = 0,
        dtype: Any = np.float32,
    ):
        super().__init__(config, backend, seed, dtype)
        if config.g_lr is not None:  # G's own step size (see ``DCGANConfig``)
            self.g_optimizer = Adam(self.generator.parameters(), lr=config.g_lr, betas=config.betas)

    @classmethod
    def default_config(cls) -> DCGANConfig:
        return DCGANConfig()

    @classmethod
    def config_for_images(cls, config: DCGANConfig, shape: tuple[int, int, int]) -> DCGANConfig:
        """``config`` for square images of ``shape`` (channels, size, size)."""
        channels, height, width = shape
        if height != width:
            raise ValueError(f"DCGAN: images must be square, got {height}x{width}")
        return dataclasses.replace(config, channels=channels, image_size=height)

    @classmethod
    def parameter_count(cls, config: DCGANConfig) -> int:
        """Weights of G and D, from the config alone (``count_parameters``)."""
        return count_parameters(config)

    @classmethod
    def memory_bytes(cls, config: DCGANConfig, rows: int) -> int:
        """About how much memory training needs, in bytes (``estimate_memory``)."""
        return estimate_memory(config, rows)

    def build_networks(
        self, config: DCGANConfig, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Sequential, nn.Sequential]:
        G = dcgan_init(build_generator(config, rng, dtype), rng)
        return G, dcgan_init(build_discriminator(config, rng, dtype), rng)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    def d_steps_per_g_step(self) -> int:
        return 1

    def generate(self, z: Any) -> Any:
        """Images in [-1, 1], shape (n, channels, size, size), for the noise ``z``.

        G runs in evaluation mode (running statistics): each image depends on its own
        z only, and no state changes.
        """
        G = self.sampler  # the moving average of G's weights, if the model keeps one
        G.eval()
        try:
            return G.forward(z)
        finally:
            G.train()

    def discriminator_step(self, real: Any, fake: Any) -> dict[str, Any]:
        """``GAN.discriminator_step``, the textbook step in two passes, so that BatchNorm
        (``d_norm="batch"``) normalises each half with its own statistics (see the module
        docstring); ``d_loss`` is reported as the GAN reports it, the mean of the halves'.

        Without BatchNorm in D (the default) one stacked pass would give the same update,
        but here it is the dearer one: stacking copies both halves out of the rows-form
        memory the convolutions hand along (``minigan/nn/conv.py``; timed:
        benchmarks/RESULTS.md, "DCGAN").
        """
        stats = super().discriminator_step(real, fake)
        return {**stats, "d_loss": get_array_module(real).asarray(stats["d_loss"] / 2)}
