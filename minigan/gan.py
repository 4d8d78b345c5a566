"""The vanilla GAN, kept importable here; it lives in ``minigan.models.gan`` with its family."""

from minigan.models.gan import (
    ACTIVATIONS,
    GAN,
    GENERATOR_LOSSES,
    PRESETS,
    GANConfig,
    build_discriminator,
    build_generator,
)

__all__ = [
    "ACTIVATIONS",
    "GAN",
    "GENERATOR_LOSSES",
    "PRESETS",
    "GANConfig",
    "build_discriminator",
    "build_generator",
]
