"""ACGAN (Odena, Olah & Shlens, 2017): the discriminator also names the digit.

G is the conditional GAN's, G(z, y'). D is not told the label; instead it answers
two questions about every image, from one network with two heads:

    D(x) -> (s, c):  s = logit of "real",  c = 10 class logits       (Linear(h, 11), split)

    L_S = BCE(s(x), 1) + BCE(s(G(z, y')), 0)           the source: real or fake?
    L_C = CE(c(x), y)  + CE(c(G(z, y')), y')           the class: which digit?

    D step:  minimise  L_S + L_C      (tell real from fake, and classify BOTH)
    G step:  minimise  BCE(s(G(z, y')), 1) + CE(c(G(z, y')), y')
                       (look real, and look like the digit asked for)

In the paper's words D maximises L_S + L_C and G maximises L_C - L_S, written with
log-likelihoods; as losses to minimise, with the non-saturating G loss for the
source, they are the lines above.

What differs from ``cgan.py``, and why:

- **D classifies instead of being told.** A CGAN's D can learn to judge the image
  alone and ignore the label input; an ACGAN's D must predict the label, so its
  features are made to separate digits, and G gets a direct gradient saying "make
  this more of a 7": CE(c(G(z, 7)), 7). The paper found this steadier and its
  samples more recognisably of their class.
- **D learns to classify fakes too** (the CE on G's images): with a good G, that
  is extra labelled data; early on it rewards D for reading the class even in
  poor fakes, which is the signal G needs.
- **One linear head of 11 outputs**, split: column 0 is s, columns 1-10 are c.
  Backward joins the two heads' gradients side by side into one (n, 11) array, and
  one backward pass through D carries both.

Both halves (real, fake) go through D stacked in one pass, as in ``gan.py``: the
means over 2n rows are half of the sums above. BCE on logits, Adam (2e-4, (0.5,
0.999)), real_label 0.9 (one-sided smoothing, as the project's GAN default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import get_array_module
from minigan.losses import BCEWithLogitsLoss, CrossEntropyLoss
from minigan.models.base import build_discriminator
from minigan.models.cgan import CGANConfig
from minigan.models.conditional import (
    NUM_CLASSES,
    ConditionalMLP,
    ConditionalModel,
    accuracy,
    conditional_generator,
)
from minigan.optim import Adam


@dataclass
class ACGANConfig(CGANConfig):
    """CGAN's sizes and recipe (D has no embedding: ``embed_dim`` is G's alone)."""


class ACGAN(ConditionalModel):
    """G(z, y) and a D with a real/fake head and a 10-class head.

    Stats: ``d_loss`` (D's mean BCE + mean CE over real and fake), ``g_loss``,
    ``d_real``, ``d_fake`` (mean probability of "real"), ``d_class_acc`` (D's
    accuracy on the real images' labels).
    """

    summary = "D also classifies the digit, real and fake alike"
    name = "acgan"
    config_class = ACGANConfig
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "D loss: BCE (source) + CE (class), means over real and fake",
        "g_loss": "G loss: BCE (look real) + CE (look like the asked digit)",
        "d_real": "mean D(x) of the source head, a probability",
        "d_fake": "mean D(G(z, y')) of the source head, a probability",
        "d_class_acc": "D's class accuracy on the real batch",
    }

    def __init__(
        self, config: ACGANConfig, backend: Any = "numpy", seed: int = 0, dtype: Any = np.float32
    ):
        super().__init__(config, backend, seed, dtype)
        self.source_loss = BCEWithLogitsLoss()
        # Real labels were range-checked where they were loaded, fake ones drawn in
        # range: no read-back in the step (see conditional.py).
        self.class_loss = CrossEntropyLoss(check_range=False)

    def build_networks(
        self, config: ACGANConfig, rng: np.random.Generator, dtype: Any
    ) -> tuple[ConditionalMLP, nn.Sequential]:
        G = conditional_generator(config, rng, dtype)
        return G, build_discriminator(config, rng, dtype, outputs=1 + NUM_CLASSES)

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    def heads(self, outputs: Any, source_target: Any, labels: Any) -> tuple[Any, Any]:
        """BCE on column 0 plus CE on columns 1-10: the loss, and its gradient (n, 11)."""
        xp = get_array_module(outputs)
        source, classes = outputs[:, :1], outputs[:, 1:]  # s (n, 1), c (n, 10)
        loss = self.source_loss.forward(source, source_target)
        loss = loss + self.class_loss.forward(classes, labels)
        grad = xp.concatenate([self.source_loss.backward(), self.class_loss.backward()], axis=1)
        return xp.asarray(loss), grad  # dL/d(outputs): each head's gradient in its own columns

    def discriminator_step(
        self, real: Any, labels: Any, fake: Any, fake_labels: Any
    ) -> dict[str, Any]:
        """minimise L_S + L_C on the real and fake halves, stacked in one pass."""
        xp = get_array_module(real)
        n = real.shape[0]
        outputs = self.discriminator.forward(xp.concatenate([real, fake]))
        targets = xp.zeros((2 * n, 1), dtype=self.dtype)
        targets[:n] = self.config.real_label
        d_loss, grad = self.heads(outputs, targets, xp.concatenate([labels, fake_labels]))
        self.update_discriminator(grad)
        probs = nn.sigmoid(outputs[:, 0])
        return {
            "d_loss": d_loss,
            "d_real": xp.asarray(probs[:n].mean()),
            "d_fake": xp.asarray(probs[n:].mean()),
            "d_class_acc": accuracy(outputs[:n, 1:], labels, self.dtype),
        }

    def generator_step(self, fake: Any, fake_labels: Any) -> Any:
        """minimise BCE(s(G(z, y')), 1) + CE(c(G(z, y')), y'), through the frozen D."""
        outputs = self.discriminator.forward(fake)  # D after its own update
        g_loss, grad = self.heads(outputs, 1.0, fake_labels)
        self.update_generator(grad)
        return g_loss
