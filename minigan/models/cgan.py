"""The conditional GAN (Mirza & Osindero, 2014): both players are told the digit.

The vanilla GAN learns p(x), the images of every digit mixed; nothing says which
digit comes out of which z. The conditional GAN learns p(x | y): the label y is one
more input of both networks,

    D(x, y) = psi(phi(x)) + embed_D(y) . phi(x)      (the projection discriminator)
    D step:  minimise  BCE(D(x, y), 1) + BCE(D(G(z, y'), y'), 0)
    G step:  minimise  BCE(D(G(z, y'), y'), 1)                    (non-saturating)

with (x, y) a real image and its label, and y' drawn uniformly from 0-9. D now
judges image AND label together: a perfect "3" passed off as a 7 is fake to it,
so G can only win by drawing the digit it was asked for. Afterwards, G(z, 7) is a
seven.

What differs from ``gan.py``, and why:

- **Labels in.** G is told the digit by a learned vector per digit (``Embedding``).
  The MLP G (``arch="mlp"``) takes [z | embed(y')], joined by ``Concat``
  (``conditional.py``'s ``ConditionalMLP``), as the paper joins y to z; the
  convolutional G (``arch="conv"``, the default) takes z * embed(y') (below).
- **D reads the label by projection** (Miyato & Koyama, 2018; ``conditional.py``'s
  ``ProjectionDiscriminator``): phi(x) is D's last hidden features, psi a linear head,
  and the label's term is the inner product of a learned vector per digit with
  phi(x). The paper's way, ``discriminator="concat"`` (MLPs only), joins embed(y) to
  the image at D's input instead, [x | embed(y)]; D can then learn to judge the 784
  pixels and all but ignore the 50 label numbers beside them, and G to draw some
  digits whatever it is asked for. A projection D cannot ignore the label, whose term
  is made of the very features that judge the image (measured: benchmarks/RESULTS.md,
  "The GAN family on MNIST").
- **D's backward has two branches**, the image's and the label's. In D's step
  the label's branch trains D's embedding (dL/de = g phi(x)); in G's step only
  dL/d(fake image) goes on, into G: y' is an integer, and D (frozen) does not
  learn. Inside G, the label's part of the gradient trains G's own embedding.
- The interface takes labels: ``train_step(real, labels)``, ``generate(z, labels)``.

The networks (``arch="conv"``, the default) are DCGAN's kind, as ACGAN's, and G is
ACGAN's G, built in one place (``conditional.conditional_generator``):

    G   z * embed(y') -> Linear -> 4DIM x 4 x 4, BatchNorm, ReLU
        -> ConvT 5x5/2 -> 2DIM x 7 x 7, BatchNorm, ReLU
        -> ConvT 5x5/2 -> DIM x 14 x 14, BatchNorm, ReLU
        -> ConvT 5x5/2 -> 1 x 28 x 28, Tanh
    D   x -> Conv 5x5/2 -> DIM x 14 x 14, LeakyReLU(0.2)
          -> Conv 5x5/2 -> 2DIM x 7 x 7, LeakyReLU(0.2)
          -> Conv 5x5/2 -> 4DIM x 4 x 4, LeakyReLU(0.2)   = phi(x), flattened
          -> psi(phi(x)) + embed_D(y) . phi(x)             (one logit)

with DIM = ``base_channels`` = 16 (``conditional.conv_features``: WGAN-GP's MNIST
critic, no BatchNorm, so that a score depends on its own image alone). Why
convolutions: a convolution's weights are shared over the image, so the gradient D
hands G is made of stroke-sized patterns rather than of single pixels, and G's
transposed convolutions draw strokes from neighbouring units; an MLP G learns each
pixel on its own and leaves isolated specks around its strokes.

Why z * embed(y') in the convolutional G, not [z | embed(y')]: every input of G is
then some z_j scaled by the digit's e_j, so G cannot weigh z down to nothing and draw
one image per digit (``conditional.ConditionalProduct``; acgan.py says more).

Why the projection in the convolutional D too, rather than the label as ten one-hot
maps joined to the image (the usual convolutional form of Mirza & Osindero's
concatenation): joined maps enter only D's first convolution, where each digit's
constant map, convolved, adds a fixed pattern to the first layer's pre-activations,
a per-digit bias deep under the features that judge the image; D can learn to give
it little weight, as the MLP D gave its 50 label numbers. The projection puts the
label where D's verdict is made, against the last features, at no cost to the
convolutions (ten more input channels would make the first convolution 11 times the
arithmetic), and the layer is the MLP's ``ProjectionDiscriminator``, unchanged: phi
is now the convolutions, and embed_D(y) is as long as phi(x), 4DIM*4*4 numbers.

The recipe is ACGAN's convolutional one (``ConditionalConfig``): batches of 32 and a
rate of 4e-4 for both players (DCGAN's here; the MLPs' was 100 and 2e-4), where the
papers train longer on larger batches, so that a few epochs on a CPU train G as far;
BCE on logits, Adam (betas (0.5, 0.999)), one D step per G step, one-sided label
smoothing (real_label 0.9) as in ``PRESETS["label-smoothing"]``, and samples from a
moving average of G's weights (acgan.py says why a labelled G's samples need it)
over about the last 500 updates (``ema`` = 0.998, where ACGAN's 0.999 averages over
1000): a quarter of an epoch of batches of 32, so that the samples follow G's latest
strokes while the step-to-step changes still cancel. What it draws: benchmarks/RESULTS.md, "The family through the
convolutional classifier, third round".

The MLPs (``arch="mlp"``: two hidden layers of ``hidden`` units each; G's label
vector has 50 numbers, ``embed_dim``, as many as the paper's D gives y, a 50-unit
layer; D's has as many as its hidden layer) were the default until issue 26; their
recipe: ``--arch mlp --batch-size 100 --lr 2e-4 --epochs 30``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import get_array_module
from minigan.losses import BCEWithLogitsLoss
from minigan.models.base import option, option_of
from minigan.models.conditional import (
    NUM_CLASSES,
    ConditionalConfig,
    ConditionalMLP,
    ConditionalModel,
    ConditionalProduct,
    ProjectionDiscriminator,
    conditional_discriminator,
    conditional_generator,
    conv_width,
    projection_discriminator,
)
from minigan.optim import Adam

DISCRIMINATORS = ("projection", "concat")


@dataclass
class CGANConfig(ConditionalConfig):
    """A CGAN: the conditional models' sizes and recipe, and how D is told the label."""

    discriminator: str = option(
        "projection",
        "how D is told the label: 'projection' (psi(phi(x)) + embed(y) . phi(x)) or "
        "'concat' (the 2014 paper's: D's input is [x | embed(y)])",
        choices=DISCRIMINATORS,
    )
    # A quarter of an epoch of batches of 32 (ACGAN's 0.999: half): see the module docstring.
    ema: float = option_of(ConditionalConfig, "ema", 0.998)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.discriminator not in DISCRIMINATORS:
            raise ValueError(
                f"discriminator must be one of {DISCRIMINATORS}, got {self.discriminator!r}"
            )
        if self.discriminator == "concat" and self.arch != "mlp":
            raise ValueError(
                f"discriminator 'concat' joins the label to an MLP's input: it needs arch "
                f"'mlp', got arch {self.arch!r} (the convolutional D reads it by projection)"
            )


class CGAN(ConditionalModel):
    """G(z, y) and D(x, y), trained as the vanilla GAN with the label beside every image.

    Stats: ``d_loss`` (mean BCE over the real and fake halves), ``g_loss``,
    ``d_real`` = mean D(x, y) and ``d_fake`` = mean D(G(z, y'), y'), as probabilities.
    """

    summary = "the conditional GAN: G and D both see the digit's label"
    name = "cgan"
    default_epochs = 6  # benchmarks/RESULTS.md, "The family ..., third round"
    config_class = CGANConfig
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "D loss: BCE, mean over real and fake",
        "g_loss": "G loss",
        "d_real": "mean D(x, y), a probability",
        "d_fake": "mean D(G(z, y'), y'), a probability",
    }

    def __init__(
        self, config: CGANConfig, backend: Any = "numpy", seed: int = 0, dtype: Any = np.float32
    ):
        super().__init__(config, backend, seed, dtype)
        self.loss = BCEWithLogitsLoss()

    def build_networks(
        self, config: CGANConfig, rng: np.random.Generator, dtype: Any
    ) -> tuple[ConditionalMLP | ConditionalProduct, ProjectionDiscriminator | ConditionalMLP]:
        G = conditional_generator(config, rng, dtype)  # conv: z * embed(y), BatchNorm
        if config.discriminator == "projection":
            return G, projection_discriminator(config, rng, dtype)
        return G, conditional_discriminator(config, rng, dtype)

    @classmethod
    def conv_head_parameters(cls, config: CGANConfig) -> int:
        """D's table of label vectors, one as long as phi(x) per digit."""
        return NUM_CLASSES * conv_width(config)

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    def discriminator_step(
        self, real: Any, labels: Any, fake: Any, fake_labels: Any
    ) -> dict[str, Any]:
        """Teach D to accept (x, y) (target real_label) and reject (G(z, y'), y') (target 0).

        One pass over both halves stacked, as ``GAN.discriminator_step_stacked`` (no layer
        mixes examples): the mean over 2n scores is half of L_real + L_fake.
        """
        xp = get_array_module(real)
        n = real.shape[0]
        scores = self.discriminator.forward(
            xp.concatenate([real, fake]), xp.concatenate([labels, fake_labels])
        )
        targets = xp.zeros((2 * n, 1), dtype=self.dtype)
        targets[:n] = self.config.real_label
        d_loss = self.loss.forward(scores, targets)
        self.update_discriminator(self.loss.backward())  # D's embedding learns, the data not
        probs = nn.sigmoid(scores)
        return {
            "d_loss": d_loss,
            "d_real": xp.asarray(probs[:n].mean()),
            "d_fake": xp.asarray(probs[n:].mean()),
        }

    def generator_step(self, fake: Any, fake_labels: Any) -> Any:
        """Change G so that D takes (G(z, y'), y') for a real pair: -log D(G(z, y'), y')."""
        scores = self.discriminator.forward(fake, fake_labels)  # D after its own update
        g_loss = self.loss.forward(scores, 1.0)
        # Through frozen D: its backward returns dL/d(fake image); the label's part
        # stops there (y' is an integer). Then through G and its embedding.
        self.update_generator(self.loss.backward())
        return g_loss

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """``Model.load_state_dict``, refusing first, by name, a D of the other kind."""
        saved = state.get("discriminator") if isinstance(state, dict) else None
        if isinstance(saved, dict) and state.get("model") == self.name:
            kind = "projection" if "head.weight" in saved else "concat"
            if kind != self.config.discriminator:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: this state holds a {kind!r} "
                    f"discriminator, this CGAN a {self.config.discriminator!r} one; build it "
                    f"with discriminator={kind!r} to load the state"
                )
        super().load_state_dict(state)
