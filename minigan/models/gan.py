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

The rest of the family changes exactly this file's two losses and what D is:
``lsgan.py`` (squared error), ``wgan.py`` (a critic and the Wasserstein distance),
``wgan_gp.py`` (the same with a gradient penalty).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_array_module
from minigan.losses import BCELoss, BCEWithLogitsLoss
from minigan.models.base import (
    ACTIVATIONS,
    MLPConfig,
    Model,
    build_discriminator,
    build_generator,
    check_discriminator_options,
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
    """Everything that defines an MLP GAN and how it is trained (with ``MLPConfig``'s sizes).

    ``logits=True`` means D ends without a Sigmoid and the loss is
    BCEWithLogitsLoss (stable); ``False`` means D ends in Sigmoid and BCELoss.
    Adam (``lr``, ``betas``) for both players, except that ``d_lr``, when set, is
    D's own learning rate (two time-scales, TTUR: Heusel et al., 2017, prove
    convergence when D's steps are the larger); ``d_steps`` D updates per G update;
    ``real_label`` < 1 is one-sided label smoothing; ``ema`` > 0 keeps a moving
    average of G's weights with that decay, which draws every sample
    (``minigan/ema.py``; 0: none); ``minibatch_std`` = G > 0 shows D the spread of
    each group of G images (``nn.MinibatchStdDev``, against mode collapse; 0: none),
    or of the largest group size below G that divides D's rows per half,
    ``batch_size / pack`` (batch 50, G 4: groups of 2), so that no group mixes D's real
    and fake halves; ``pack`` = m > 1
    makes D judge every m images together (PacGAN: ``nn.Pack``, against mode
    collapse; 1: one at a time), so ``batch_size`` must be a multiple of m;
    ``d_dropout`` = p > 0 drops each of D's hidden units with probability p in
    training (``nn.Dropout``; Goodfellow et al.'s MNIST D had it; 0: none).
    """

    logits: bool = False
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    generator_loss: str = "non_saturating"
    d_steps: int = 1
    real_label: float = 1.0
    d_lr: float | None = None
    ema: float = 0.0
    minibatch_std: int = 0
    pack: int = 1
    d_dropout: float = 0.0

    POSITIVE = (*MLPConfig.POSITIVE, "d_steps", "pack")

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"generator_loss must be one of {GENERATOR_LOSSES}, got {self.generator_loss!r}"
            )
        super().__post_init__()
        if not 0 < self.real_label <= 1:
            raise ValueError(f"real_label must lie in (0, 1], got {self.real_label}")
        if self.d_lr is not None and not self.d_lr > 0:
            raise ValueError(f"d_lr must be a positive number (or None: lr), got {self.d_lr}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must lie in [0, 1) (0: no average), got {self.ema}")
        if self.minibatch_std < 0:
            raise ValueError(
                f"minibatch_std must be 0 (none) or a group size, got {self.minibatch_std}"
            )
        check_discriminator_options(self)


_LABEL_SMOOTHING = GANConfig(
    hidden=512, g_activation="leaky_relu", logits=True, betas=(0.5, 0.999), real_label=0.9
)
_EMA = dataclasses.replace(_LABEL_SMOOTHING, ema=0.999)
PRESETS = {
    # The tutorial recipe, kept for comparison.
    "classic": GANConfig(),
    # The default: chosen by measurement; see README, "Choosing the default recipe".
    # Samples come from the moving average of G's weights; D judges pairs of images
    # (PacGAN), which balances the digits; both players learn twice as fast, so that
    # 20 epochs (5 minutes) are enough.
    "default": dataclasses.replace(_EMA, pack=2, lr=4e-4),
    # The earlier defaults, rows of the README's tables: with the average of G ...
    "ema": _EMA,
    # ... and before it.
    "label-smoothing": _LABEL_SMOOTHING,
}


class GAN(Model):
    """The vanilla GAN: D classifies real against fake; both players train with Adam.

    Stats: ``d_loss`` (mean BCE over the real and fake halves), ``g_loss`` (from the
    latest generator update), ``d_real`` = mean D(x) and ``d_fake`` = mean D(G(z)),
    as probabilities (with ``pack`` > 1, means over D's scores of packs).
    """

    summary = "the vanilla GAN: an MLP D trained by binary cross-entropy"
    name = "gan"
    default_epochs = 20  # the default recipe's 5 minutes (README: "What the default run gives")
    config_class = GANConfig
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "D loss: BCE, mean over real and fake",
        "g_loss": "G loss",
        "d_real": "mean D(x), a probability",
        "d_fake": "mean D(G(z)), a probability",
    }

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
        extra = 1 if config.minibatch_std else 0  # the last layer's weight for the spread
        packed = (config.pack - 1) * config.image_size * config.hidden  # D's wider first layer
        return super().parameter_count(config) + extra + packed

    def build_networks(
        self, config: Any, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Sequential, nn.Sequential]:
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

        One forward pass over the two halves stacked together: D treats every
        image on its own (no layer mixes examples), so this is exactly the sum of
        two passes, with half the matrix products' overhead. The mean over 2n
        scores is (L_real + L_fake) / 2: half the loss, and half the gradient, of
        the usual L_real + L_fake. Adam divides each step by the gradient's own
        running scale, so halving the gradient changes its update only through
        eps: it is exactly the sum's update with eps doubled (2e-8 for 1e-8).

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

    def discriminator_step_two_pass(self, real: Any, fake: Any) -> dict[str, Any]:
        """The textbook D step, kept as the reference ``discriminator_step`` is tested against.

        Two passes, as the loss is written: L = BCE(D(x), real_label) + BCE(D(G(z)), 0),
        each half's gradient added into D's ``.grad`` by its own backward pass. Its
        update equals ``discriminator_step``'s with D's Adam eps doubled (see there),
        to rounding; it costs a second pass's overhead. It is DCGAN's D step, whose
        BatchNorm must see each half on its own.
        """
        D, loss = self.discriminator, self.loss
        self.d_optimizer.zero_grad()
        real_scores = D.forward(real)
        d_loss_real = loss.forward(real_scores, self.config.real_label)
        D.backward(loss.backward(), input_grad=False)
        fake_scores = D.forward(fake)
        d_loss_fake = loss.forward(fake_scores, 0.0)
        D.backward(loss.backward(), input_grad=False)
        self.d_optimizer.step()
        return {
            "d_loss": d_loss_real + d_loss_fake,
            "d_real": self.mean_probability(real_scores),
            "d_fake": self.mean_probability(fake_scores),
        }

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
