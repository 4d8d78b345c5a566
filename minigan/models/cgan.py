"""The conditional GAN (Mirza & Osindero, 2014): both players are told the digit.

The vanilla GAN learns p(x), the images of every digit mixed; nothing says which
digit comes out of which z. The conditional GAN learns p(x | y): the label y is one
more input of both networks,

    D step:  minimise  BCE(D(x, y), 1) + BCE(D(G(z, y'), y'), 0)
    G step:  minimise  BCE(D(G(z, y'), y'), 1)                    (non-saturating)

with (x, y) a real image and its label, and y' drawn uniformly from 0-9. D now
judges image AND label together: a perfect "3" passed off as a 7 is fake to it,
so G can only win by drawing the digit it was asked for. Afterwards, G(z, 7) is a
seven.

What differs from ``gan.py``, and why:

- **Labels in.** G's input is [z | embed(y')] and D's is [x | embed(y)]: a learned
  vector per digit (``Embedding``), joined by ``Concat`` (``conditional.py``'s
  ``ConditionalMLP``). The paper joins y to z in G and to the image in D the same
  way, through a hidden layer each; an embedding is that layer's first step.
- **D's backward has two branches.** Concat splits D's input gradient in two:
  the image part and the label part. In D's step the label part trains D's
  embedding; in G's step the image part is dL/d(fake image) and goes on into G,
  while the label part is dropped: y' is an integer, and D (frozen) does not learn.
  Inside G the same split happens again, and G's own label part trains G's embedding.
- The interface takes labels: ``train_step(real, labels)``, ``generate(z, labels)``.

The label's vector has 50 numbers (``embed_dim``), as many as the paper's D gives
y (a 50-unit layer): measured on MNIST (hidden 256, seed 0), with 10 numbers D
hardly used the label (784 pixels beside 10 label inputs): label accuracy stayed
near chance (0.07-0.20) after 1500 steps; with 50 it was 0.9 after 1000 to 1500.

The rest is the vanilla GAN's: BCE on logits, Adam (2e-4, betas (0.5, 0.999)), one
D step per G step, one-sided label smoothing (real_label 0.9) as in
``PRESETS["default"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import get_array_module
from minigan.losses import BCEWithLogitsLoss
from minigan.models.base import MLPConfig
from minigan.models.conditional import (
    ConditionalMLP,
    ConditionalModel,
    conditional_discriminator,
    conditional_generator,
)
from minigan.optim import Adam


@dataclass
class CGANConfig(MLPConfig):
    """The sizes of ``MLPConfig``, the label's vector (``embed_dim``) and the GAN's recipe."""

    hidden: int = 512
    g_activation: str = "leaky_relu"
    embed_dim: int = 50
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_label: float = 0.9

    POSITIVE = (*MLPConfig.POSITIVE, "embed_dim")

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        super().__post_init__()
        if not 0 < self.real_label <= 1:
            raise ValueError(f"real_label must lie in (0, 1], got {self.real_label}")


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
    ) -> tuple[ConditionalMLP, ConditionalMLP]:
        G = conditional_generator(config, rng, dtype)
        return G, conditional_discriminator(config, rng, dtype)

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    def discriminator_step(
        self, real: Any, labels: Any, fake: Any, fake_labels: Any
    ) -> dict[str, Any]:
        """Teach D to accept (x, y) (target real_label) and reject (G(z, y'), y') (target 0).

        One pass over both halves stacked, as ``GAN.discriminator_step`` (no layer
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
        # Through frozen D: its backward returns the image part of dL/d[x | e]; the
        # label part stops there (y' is an integer). Then through G and its embedding.
        self.update_generator(self.loss.backward())
        return g_loss
