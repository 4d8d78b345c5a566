"""The GAN (Goodfellow et al., 2014): a discriminator that classifies, trained by cross-entropy.

A generator G maps noise z ~ N(0, I) to images; a discriminator D maps an image to
a score for "real". They are trained in turns:

- D step: make D say 1 on real images and 0 on G's images,
      minimise  BCE(D(x), 1) + BCE(D(G(z)), 0);
- G step: change G so that D says 1 on G's images.

The G step is where backpropagation gets interesting: the loss is computed at D's
output, but the parameters to change are G's. So the gradient must travel
backwards through all of D (D's backward pass gives dL/d(image)) and then through
G, while D itself stays fixed: ``Model.update_generator`` (in ``base.py``, shared
by the whole family) is that, in ten lines.

Generator losses:

- ``"non_saturating"`` (default): minimise BCE(D(G(z)), 1) = -log D(G(z)).
- ``"saturating"``: minimise log(1 - D(G(z))) = -BCE(D(G(z)), 0), the original
  minimax objective. Early in training D rejects G's images easily, D(G(z)) ~ 0,
  where log(1 - D) is flat: G gets almost no gradient just when it needs one.
  -log D(G(z)) has the same goal but its steepest slope exactly there.

The networks (``arch``): the MLPs of ``mlp.py`` for images, or ``"points"``, the small
networks of the 2-D mode-collapse benchmarks (``points.py``: G without Tanh, a maxout
D), on which PacGAN's Table 1 trains this very GAN with its recipe
(``points.RECIPES["gan"]``: Adam lr 1e-4, beta1 0.8, batches of 100, z in 2-D).

The rest of the family changes exactly this file's two losses and what D is:
``lsgan.py`` (squared error), ``wgan.py`` (a critic and the Wasserstein distance),
``wgan_gp.py`` (the same with a gradient penalty).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_array_module
from minigan.losses import BCELoss, BCEWithLogitsLoss
from minigan.models import points
from minigan.models.base import check_adam, check_discriminator_options, option
from minigan.models.convnets import ARCHS
from minigan.models.mlp import (
    ACTIVATIONS,
    MLPConfig,
    MLPModel,
    build_discriminator,
    build_generator,
    count_parameters,
)
from minigan.optim import Adam

GENERATOR_LOSSES = ("non_saturating", "saturating")

__all__ = [
    "ACTIVATIONS",
    "GAN",
    "GENERATOR_LOSSES",
    "PRESETS",
    "GANConfig",
    "build_discriminator",
    "build_generator",
]


@dataclass
class GANConfig(MLPConfig):
    """An MLP GAN and how it is trained: ``MLPConfig``'s sizes and the vanilla GAN's recipe."""

    arch: str = option(
        "mlp",
        "the networks: 'mlp', the MLPs (hidden, g_activation), or 'points', the 2-D "
        "benchmarks' G of 4x400 and maxout D (minigan/models/points.py); 'conv' is "
        "--model dcgan",
        choices=ARCHS,
    )
    logits: bool = option(
        False,
        "D gives logits and trains with BCEWithLogitsLoss (stable); False: D ends in a "
        "Sigmoid and trains with BCELoss",
        flag=False,
    )
    lr: float = option(2e-4, "learning rate (G's, and D's unless d_lr is set)")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam's (beta1, beta2)", flag=False)
    generator_loss: str = option(
        "non_saturating",
        "'non_saturating': minimise -log D(G(z)); 'saturating': minimise log(1 - D(G(z)))",
        choices=GENERATOR_LOSSES,
    )
    d_steps: int = option(1, "discriminator updates per generator update")
    real_label: float = option(
        1.0, "D's target for real images (< 1: one-sided label smoothing)", flag=False
    )
    d_lr: float | None = option(
        None,
        "the discriminator's own learning rate, lr staying G's (two time-scales, TTUR: "
        "Heusel et al. 2017); None: lr",
    )
    ema: float = option(
        0.0,
        "sample from a moving average of G's weights with decay BETA (0.999: about the "
        "last 1000 updates), saved in the checkpoint; 0 for none",
        metavar="BETA",
    )
    minibatch_std: int = option(
        0,
        "show D the spread of each group of G images (minibatch standard deviation, "
        "against mode collapse), or of the largest group below G that divides "
        "batch_size / pack, so that no group mixes real and fake; 0 for none",
        metavar="G",
    )
    pack: int = option(
        1,
        "D judges M images at once, one score per pack (PacGAN, against mode collapse); "
        "the batch size must be a multiple of M; 1 for one at a time",
        metavar="M",
    )
    d_dropout: float = option(
        0.0,
        "drop each of D's hidden units with probability P in training (Dropout, as "
        "Goodfellow et al.'s MNIST D); 0 for none",
        metavar="P",
    )

    POSITIVE = (*MLPConfig.POSITIVE, "d_steps", "pack")

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"generator_loss must be one of {GENERATOR_LOSSES}, got {self.generator_loss!r}"
            )
        if self.arch not in ARCHS or self.arch == "conv":
            raise ValueError(
                f"arch must be 'mlp' or 'points' (the GAN with convolutions is dcgan), "
                f"got {self.arch!r}"
            )
        super().__post_init__()
        check_adam(self)
        if self.arch == "points" and (self.minibatch_std or self.d_dropout):
            raise ValueError(
                "arch 'points' is the papers' maxout D: minibatch_std and d_dropout must be 0"
            )
        if not 0 < self.real_label <= 1:
            raise ValueError(f"real_label must lie in (0, 1], got {self.real_label}")
        if self.d_lr is not None and not (math.isfinite(self.d_lr) and self.d_lr > 0):
            raise ValueError(f"d_lr must be a positive number (or None: lr), got {self.d_lr}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must lie in [0, 1) (0: no average), got {self.ema}")
        if self.minibatch_std < 0:
            raise ValueError(
                f"minibatch_std must be 0 (none) or a group size, got {self.minibatch_std}"
            )
        check_discriminator_options(self)


# Named bundles of field values (``--preset NAME``). Why the default is what it is, and
# what each scored: benchmarks/RESULTS.md, "Choosing the default recipe".
_LABEL_SMOOTHING = GANConfig(
    hidden=512, g_activation="leaky_relu", logits=True, betas=(0.5, 0.999), real_label=0.9
)
_EMA = dataclasses.replace(_LABEL_SMOOTHING, ema=0.999)
PRESETS: dict[str, GANConfig] = {
    # The tutorial recipe.
    "classic": GANConfig(),
    # The default: samples from the moving average of G's weights; D judges pairs of
    # images (PacGAN); both players learn at twice the label-smoothing recipe's rate.
    "default": dataclasses.replace(_EMA, pack=2, lr=4e-4),
    # The default without pairs ...
    "ema": _EMA,
    # ... and without the average of G either.
    "label-smoothing": _LABEL_SMOOTHING,
}


class GAN(MLPModel):
    """The vanilla GAN: D classifies real against fake; both players train with Adam.

    Stats: ``d_loss`` (mean BCE over the real and fake halves), ``g_loss`` (from the
    latest generator update), ``d_real`` = mean D(x) and ``d_fake`` = mean D(G(z)),
    as probabilities (with ``pack`` > 1, means over D's scores of packs).
    """

    summary = "the vanilla GAN: an MLP D trained by binary cross-entropy"
    name = "gan"
    default_epochs = 20  # the default recipe's (benchmarks/RESULTS.md)
    config_class = GANConfig
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "D loss: BCE, mean over real and fake",
        "g_loss": "G loss",
        "d_real": "mean D(x), a probability",
        "d_fake": "mean D(G(z)), a probability",
    }
    # D's step as one pass over real and fake stacked (``discriminator_step_stacked``):
    # the textbook step's update, but for Adam's eps (see there). DCGAN: two passes.
    stacked_d_step: ClassVar[bool] = True

    def __init__(
        self,
        config: GANConfig,
        backend: str | Backend = "numpy",
        seed: int = 0,
        dtype: Any = np.float32,
    ):
        super().__init__(config, backend, seed, dtype)
        self.loss = BCEWithLogitsLoss() if config.logits else BCELoss()

    @property
    def discriminator_sigmoid(self) -> bool:  # D ends in Sigmoid unless it gives logits
        return not self.config.logits

    @classmethod
    def default_config(cls) -> GANConfig:
        return dataclasses.replace(PRESETS["default"])

    @classmethod
    def parameter_count(cls, config: GANConfig) -> int:
        if config.arch == "points":
            return points.count_parameters(config, pack=config.pack)
        return count_parameters(config, pack=config.pack, minibatch_std=config.minibatch_std)

    @classmethod
    def memory_bytes(cls, config: GANConfig, rows: int) -> int:
        if config.arch == "points":
            return points.estimate_memory(config, rows, cls.parameter_count(config))
        return super().memory_bytes(config, rows)

    def build_networks(
        self, config: Any, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Sequential, nn.Sequential]:
        if config.arch == "points":
            G = points.build_generator(config, rng, dtype)
            D = points.build_discriminator(
                config, rng, dtype, self.discriminator_sigmoid, pack=config.pack
            )
            return G, D
        G = build_generator(config, rng, dtype)
        group = config.minibatch_std  # the largest size up to it that divides the batch
        while group and (config.batch_size // config.pack) % group:  # (D's rows: packs)
            group -= 1
        D = build_discriminator(
            config,
            rng,
            dtype,
            self.discriminator_sigmoid,
            minibatch_std=group,
            pack=config.pack,
            dropout=config.d_dropout,
        )
        return G, D

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    def make_discriminator_optimizer(self, params: list[nn.Parameter]) -> Adam:
        d_lr = getattr(self.config, "d_lr", None)  # DCGAN's config (a GAN too) has none
        return Adam(params, lr=self.config.lr if d_lr is None else d_lr, betas=self.config.betas)

    def d_steps_per_g_step(self) -> int:
        return self.config.d_steps

    def discriminator_step(self, real: Any, fake: Any) -> dict[str, Any]:
        """Teach D to tell ``real`` (target: real_label) from ``fake`` (target: 0).

        As the loss is written, L = BCE(D(x), real_label) + BCE(D(G(z)), 0): one
        forward and backward pass per half, each adding its gradient into D's
        ``.grad``, then one optimizer step on the sum. ``d_loss`` is L, the sum.

        A model with ``stacked_d_step`` (the GAN) takes the same step in one pass,
        ``discriminator_step_stacked``.
        """
        if self.stacked_d_step:
            return self.discriminator_step_stacked(real, fake)
        D, loss = self.discriminator, self.loss
        self.d_optimizer.zero_grad()
        real_scores = D.forward(real)
        d_loss_real = loss.forward(real_scores, self.config.real_label)
        D.backward(loss.backward(), input_grad=False)  # the data needs no gradient
        fake_scores = D.forward(fake)
        d_loss_fake = loss.forward(fake_scores, 0.0)
        D.backward(loss.backward(), input_grad=False)  # nor does G, in D's step
        self.d_optimizer.step()
        return {
            "d_loss": d_loss_real + d_loss_fake,
            "d_real": self.mean_probability(real_scores),
            "d_fake": self.mean_probability(fake_scores),
        }

    def discriminator_step_stacked(self, real: Any, fake: Any) -> dict[str, Any]:
        """``discriminator_step`` in one forward pass over [real; fake]: an optimisation.

        D treats every image on its own (no layer mixes examples), so one pass
        over the two halves stacked together computes exactly the two passes,
        with half the matrix products' overhead. The mean over 2n scores is
        (L_real + L_fake) / 2: half the loss, and half the gradient, of the
        textbook L_real + L_fake. Adam divides each step by the gradient's own
        running scale, so halving the gradient changes its update only through
        eps: with m and v the moments of the gradient g,

            (m/2) / (sqrt(v/4) + eps) = m / (sqrt(v) + 2 eps)

        so this is exactly the textbook update with eps doubled (2e-8 for 1e-8).
        ``d_loss`` is reported as that mean.

        With ``pack`` = m, D scores n/m packs of real images, then n/m of fake ones
        (no pack mixes the halves: n is a multiple of m).
        """
        xp = get_array_module(real)
        scores = self.discriminator.forward(xp.concatenate([real, fake]))
        n = scores.shape[0] // 2  # scores per half: one per image, or per pack
        targets = xp.zeros((2 * n, 1), dtype=self.dtype)  # [real_label] * n, then [0] * n
        targets[:n] = self.config.real_label
        d_loss = self.loss.forward(scores, targets)
        # Neither the data nor (here) G learns from D's input gradient: skipped.
        self.update_discriminator(self.loss.backward())

        return {
            "d_loss": d_loss,
            "d_real": self.mean_probability(scores[:n]),
            "d_fake": self.mean_probability(scores[n:]),
        }

    def mean_probability(self, scores: Any) -> Any:
        """D's mean probability of "real" over ``scores`` (logits or probabilities), 0-d."""
        probs = nn.sigmoid(scores) if self.config.logits else scores
        return get_array_module(scores).asarray(probs.mean())

    def generator_step(self, fake: Any) -> Any:
        """Change G so that D takes ``fake`` (= G(z), just computed) for real."""
        scores = self.discriminator.forward(fake)  # D as it is now, after its own update
        if self.config.generator_loss == "non_saturating":
            g_loss = self.loss.forward(scores, 1.0)  # minimise -log D(G(z))
            grad_scores = self.loss.backward()  # dL/d(scores)
        else:
            g_loss = -self.loss.forward(scores, 0.0)  # minimise log(1 - D(G(z)))
            grad_scores = -self.loss.backward()
        self.update_generator(grad_scores)
        return g_loss
