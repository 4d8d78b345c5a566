"""The MLPs most of the family is built from: their sizes, their builders, and their cost.

G maps z ~ N(0, I) to an image in [-1, 1], D (or a critic) maps an image to one
score, each through two hidden layers of ``hidden`` units; images enter flattened,
(batch, image_size). ``MLPModel`` is a ``Model`` built from them (every model but
DCGAN, whose networks are convolutions: ``dcgan.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.models.base import Model, check_positive, option

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2)}


@dataclass
class MLPConfig:
    """The sizes every MLP model shares (each model's config adds its recipe)."""

    latent_dim: int = option(64, "size of z")
    hidden: int = option(256, "width of the hidden layers of G and D")
    image_size: int = option(784, "numbers per image, C*H*W (784 for MNIST)", flag=False)
    g_activation: str = option(
        "relu",
        "the generator's hidden activation (D's is LeakyReLU(0.2))",
        choices=tuple(ACTIVATIONS),
    )
    batch_size: int = option(100, "batch size")

    POSITIVE: ClassVar[tuple[str, ...]] = ("latent_dim", "hidden", "image_size", "batch_size")

    def __post_init__(self) -> None:
        if self.g_activation not in ACTIVATIONS:
            raise ValueError(
                f"g_activation must be one of {tuple(ACTIVATIONS)}, got {self.g_activation!r}"
            )
        check_positive(self, *self.POSITIVE)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def dropout_layers(p: float) -> list[nn.Module]:
    """[Dropout(p)] to put after a hidden layer of D, or [] for p = 0: a new layer at
    each call, since each keeps its own mask for backward."""
    return [nn.Dropout(p)] if p else []


def build_generator(config: MLPConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """z (batch, latent_dim) -> image (batch, image_size) in [-1, 1]."""
    h, act = config.hidden, ACTIVATIONS[config.g_activation]
    return nn.Sequential(
        nn.Linear(config.latent_dim, h, rng=rng, dtype=dtype), act(),
        nn.Linear(h, h, rng=rng, dtype=dtype), act(),
        nn.Linear(h, config.image_size, rng=rng, dtype=dtype), nn.Tanh(),
    )  # fmt: skip


def build_discriminator(
    config: MLPConfig,
    rng: np.random.Generator,
    dtype: Any,
    sigmoid: bool = False,
    outputs: int = 1,
    minibatch_std: int = 0,
    pack: int = 1,
    dropout: float = 0.0,
) -> nn.Sequential:
    """image (batch, image_size) -> one score per image: a real number, or (sigmoid) a probability.

    ``outputs`` > 1 gives several scores per image (ACGAN: real/fake and 10 classes).
    ``minibatch_std`` = G > 0 appends, before the last layer, the spread of each group
    of G images (``nn.MinibatchStdDev``), where Karras et al. put it: D's last layer
    then judges each image together with how alike its group is. ``pack`` = m > 1
    starts D with ``nn.Pack(m)``: it scores every m consecutive images together, one
    score per pack (PacGAN), so (batch, image_size) -> (batch / m, outputs).
    ``dropout`` = p > 0 adds ``nn.Dropout(p)`` after each hidden layer, as the original
    GAN's MNIST D had (its masks come from the model's noise stream: ``reseed_noise``).
    """
    h = config.hidden
    spread = [nn.MinibatchStdDev(minibatch_std)] if minibatch_std else []
    packing = [nn.Pack(pack)] if pack > 1 else []
    d_in = pack * config.image_size  # D's input: one image, or a pack of them side by side
    layers = [
        *packing,
        nn.Linear(d_in, h, rng=rng, dtype=dtype), nn.LeakyReLU(0.2), *dropout_layers(dropout),
        nn.Linear(h, h, rng=rng, dtype=dtype), nn.LeakyReLU(0.2), *dropout_layers(dropout),
        *spread, nn.Linear(h + len(spread), outputs, rng=rng, dtype=dtype),
    ]  # fmt: skip
    if sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def count_parameters(config: MLPConfig, pack: int = 1, minibatch_std: int = 0) -> int:
    """Weights and biases of ``build_generator``'s G and ``build_discriminator``'s D (one
    output; ``pack`` and ``minibatch_std`` as there), from the config alone."""
    z, h, d = config.latent_dim, config.hidden, config.image_size
    generator = (z * h + h) + (h * h + h) + (h * d + d)
    spread = 1 if minibatch_std else 0  # the last layer's weight for the spread
    discriminator = (pack * d * h + h) + (h * h + h) + (h + spread + 1)
    return generator + discriminator


def estimate_memory(config: MLPConfig, rows: int, parameters: int) -> int:
    """About how many bytes training needs, before any is allocated.

    Each of the ``parameters`` with its gradient and the optimizer's two moments (4
    float32 arrays), plus the activations of ``rows`` examples through G and D (kept
    for backward, and as much again in temporaries), D seeing twice as many. A
    training script refuses sizes that cannot fit before spending time on them.
    """
    z, h, d = config.latent_dim, config.hidden, config.image_size
    activations = rows * (z + 4 * h + 2 * d) + 2 * rows * (d + 4 * h + 2)
    return 4 * (4 * parameters + 2 * activations)


class MLPModel(Model):
    """A ``Model`` whose G and D are the MLPs above; images enter flattened."""

    discriminator_sigmoid: ClassVar[bool] = False  # only the vanilla GAN's D may end in one

    @classmethod
    def config_for_images(cls, config: MLPConfig, shape: tuple[int, ...]) -> MLPConfig:
        """``config`` sized for images of ``shape`` (channels, height, width), or for
        points of ``shape`` (dimensions,), (2,) in the plane: the MLPs see each example
        flattened, so their input is C*H*W numbers, or 2."""
        return dataclasses.replace(config, image_size=math.prod(shape))

    @classmethod
    def parameter_count(cls, config: MLPConfig) -> int:
        """Weights and biases of G and D, from the config alone (nothing is built)."""
        return count_parameters(config)

    @classmethod
    def memory_bytes(cls, config: MLPConfig, rows: int) -> int:
        """About how much memory training needs, in bytes (``estimate_memory``)."""
        return estimate_memory(config, rows, cls.parameter_count(config))

    def build_networks(
        self, config: Any, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Sequential, nn.Sequential]:
        """(G, D), with initial weights drawn from ``rng``: the MLPs."""
        G = build_generator(config, rng, dtype)
        return G, build_discriminator(config, rng, dtype, self.discriminator_sigmoid)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one image as the networks see it: (image_size,)."""
        return (self.config.image_size,)

    def generate(self, z: Any) -> Any:
        """Images in [-1, 1] (points, from the 2-D networks), (n, image_size), for the
        noise ``z``: G in evaluation mode (BatchNorm's running statistics, when G has
        it), so that no state changes."""
        G = self.sampler
        G.eval()
        try:
            return G.forward(z)
        finally:
            G.train()
