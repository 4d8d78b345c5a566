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

- **Labels in.** G's input is [z | embed(y')]: a learned vector per digit
  (``Embedding``), joined by ``Concat`` (``conditional.py``'s ``ConditionalMLP``),
  as the paper joins y to z.
- **D reads the label by projection** (Miyato & Koyama, 2018; ``conditional.py``'s
  ``ProjectionDiscriminator``): phi(x) is D's last hidden layer, psi a linear head,
  and the label's term is the inner product of a learned vector per digit with
  phi(x). The paper's way, ``discriminator="concat"``, joins embed(y) to the image
  at D's input instead, [x | embed(y)]; D can then learn to judge the 784 pixels
  and all but ignore the 50 label numbers beside them, and G to draw some digits
  whatever it is asked for. A projection D cannot ignore the label, whose term is
  made of the very features that judge the image (measured: benchmarks/RESULTS.md,
  "The GAN family on MNIST").
- **D's backward has two branches**, the image's and the label's. In D's step
  the label's branch trains D's embedding (dL/de = g phi(x)); in G's step only
  dL/d(fake image) goes on, into G: y' is an integer, and D (frozen) does not
  learn. Inside G, Concat splits the gradient again, and G's own label part
  trains G's embedding.
- The interface takes labels: ``train_step(real, labels)``, ``generate(z, labels)``.

G's label vector has 50 numbers (``embed_dim``), as many as the paper's D gives
y (a 50-unit layer); D's has as many as its hidden layer (it meets phi(x)).

The rest is the vanilla GAN's: BCE on logits, Adam (2e-4, betas (0.5, 0.999)), one
D step per G step, one-sided label smoothing (real_label 0.9) as in
``PRESETS["label-smoothing"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import get_array_module
from minigan.losses import BCEWithLogitsLoss
from minigan.models.base import option
from minigan.models.conditional import (
    ConditionalConfig,
    ConditionalMLP,
    ConditionalModel,
    ProjectionDiscriminator,
    conditional_discriminator,
    conditional_generator,
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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.discriminator not in DISCRIMINATORS:
            raise ValueError(
                f"discriminator must be one of {DISCRIMINATORS}, got {self.discriminator!r}"
            )


class CGAN(ConditionalModel):
    """G(z, y) and D(x, y), trained as the vanilla GAN with the label beside every image.

    Stats: ``d_loss`` (mean BCE over the real and fake halves), ``g_loss``,
    ``d_real`` = mean D(x, y) and ``d_fake`` = mean D(G(z, y'), y'), as probabilities.
    """

    summary = "the conditional GAN: G and D both see the digit's label"
    name = "cgan"
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
    ) -> tuple[ConditionalMLP, ProjectionDiscriminator | ConditionalMLP]:
        G = conditional_generator(config, rng, dtype)
        if config.discriminator == "projection":
            return G, projection_discriminator(config, rng, dtype)
        return G, conditional_discriminator(config, rng, dtype)

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
