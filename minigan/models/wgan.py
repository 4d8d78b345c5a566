"""WGAN (Arjovsky, Chintala & Bottou, 2017): a critic estimates the Wasserstein distance.

    critic maximises   E_x[D(x)] - E_z[D(G(z))]      over K-Lipschitz D (weights clipped)
    G minimises        -E_z[D(G(z))]

By the Kantorovich-Rubinstein duality, the maximum over 1-Lipschitz functions of
E_data[D] - E_G[D] is the Wasserstein-1 ("earth mover's") distance between the
data and G's distribution; over K-Lipschitz ones, K times it. So the trained
critic's score gap is a distance G can descend, and it keeps a useful gradient
even when the two distributions do not overlap, where the vanilla GAN's
Jensen-Shannon divergence is flat.

The paper's Algorithm 1, and what differs from the vanilla GAN:

    for each G iteration:
        for t = 1 .. n_critic (5):                     D is trained 5 times as often,
            x ~ data, z ~ N(0, I)                      so it stays close to optimal
            w <- w - RMSprop(grad_w [mean D(G(z)) - mean D(x)])      lr 5e-5
            w <- clip(w, -c, c)                        c = 0.01: keeps D K-Lipschitz
        z ~ N(0, I)
        theta <- theta - RMSprop(grad_theta [-mean D(G(z))])

- D is a *critic*: no sigmoid, its score is any real number.
- The losses are linear in the scores (``WassersteinLoss``), not cross-entropy.
- Weight clipping after every critic step: a crude way to bound the Lipschitz
  constant (every layer's weights in [-c, c] bounds its gain).
- RMSprop, not Adam: the paper found momentum made the critic unstable.

One ``train_step`` call is one critic iteration on one batch, as in the loop
above; every ``n_critic``-th call also updates G (on the call's own fake batch).
Not included: the reference code's extra critic iterations (100 instead of 5 during
the first 25 G iterations, and every 500th); the paper's algorithm box does not have them.

The networks (``arch``): by default still the vanilla GAN's MLPs, with samples from
the live G. ``arch="conv"`` gives DCGAN-style convolutions, the pair of WGAN-GP's MNIST
code (``convnets.py``), with the BatchNorm that code's WGAN had in G, after the
projection and each inner transposed convolution. ``arch="points"``: the 2-D
benchmarks' G and maxout critic (``points.py``), clipped as above.

The critic's BatchNorm (``d_norm``, with ``arch="conv"``). ``"none"``: every critic
score depends on its own image only, as the Kantorovich-Rubinstein duality reads D, and
one pass over [real; fake] stacked is the loss as written. ``"batch"``: BatchNorm after
each inner convolution, as the paper's DCGAN critic and its code's MNIST critic had.
In training mode a score then depends on its batch B: D_B(x) = f(x; mu_B, sigma_B),
with mu_B, sigma_B each channel's mean and spread over B. The critic takes two passes,
as the reference code's netD(real) and netD(fake) (and ``dcgan.py``'s two passes):

    critic loss  =  mean_fake f(G(z); mu_F, sigma_F)  -  mean_real f(x; mu_R, sigma_R)

Each batch is drawn from one distribution, so its moments estimate that distribution's,
and the loss stays two expectations, one over the data and one over G. The fake term is
computed exactly as G's step computes it (a batch of G's images, normalised by its own
statistics), so G descends the very quantity the critic maximised, through the batch
statistics too. One stacked pass would normalise with the mixture's moments: the critic
could tell the halves apart by what they share, and G's step, which sees fake images
alone, would be scored by another function than the one trained.

Why it can matter under clipping: a channel's pre-activation is a sum of clipped
weights times its inputs plus a bias in [-c, c]. Once weights sit near +-c (clipping
drives them there), the pre-activations can be far larger than any bias can shift, and
a channel whose values all lie on one side of LeakyReLU's kink is linear: the critic
tends towards a fixed direction in image space, a poor estimate of the distance.
BatchNorm centres every channel over its batch, so the kink sits in the middle of the
values and the nonlinearity is used, whatever the weights' scale (its gamma and beta
are clipped too, as the reference code clips every critic parameter; gamma only scales
a channel, and LeakyReLU commutes with positive scaling). The cost: each inner layer's
per-channel mean and spread are normalised away within each batch, so those moments
alone do not tell real from fake there; the first convolution, before any BatchNorm,
sees the images as they are.

No recipe for the convolutions, with or without BatchNorm in the critic, has yet been
found that draws good digits in a few CPU minutes (benchmarks/RESULTS.md, "The family
through the convolutional classifier"), so they are not the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from minigan import nn
from minigan.backend import get_array_module
from minigan.losses import WassersteinLoss
from minigan.models.base import check_rate, option, option_of
from minigan.models.convnets import ArchConfig, ArchModel
from minigan.models.dcgan import D_NORMS
from minigan.optim import RMSprop, clip_weights


@dataclass
class WGANConfig(ArchConfig):
    """A WGAN: DCGAN-style networks and the paper's recipe (see the module doc)."""

    hidden: int = option_of(ArchConfig, "hidden", 512)
    g_activation: str = option_of(ArchConfig, "g_activation", "leaky_relu")
    batch_size: int = option_of(ArchConfig, "batch_size", 64)
    arch: str = option_of(ArchConfig, "arch", "mlp")
    lr: float = option(5e-5, "RMSprop's learning rate, for both players")
    n_critic: int = option(5, "critic updates per generator update")
    clip: float = option(0.01, "WGAN's weight clipping bound c: weights in [-c, c]")
    d_norm: str = option(
        "none",
        "with arch 'conv': what follows each of the critic's inner convolutions: 'batch' "
        "(BatchNorm, the paper's critic; real and fake then pass apart) or 'none'",
        choices=D_NORMS,
    )
    POSITIVE = (*ArchConfig.POSITIVE, "n_critic")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"clip must be > 0, got {self.clip}")
        check_rate(self, "lr")
        if self.d_norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {D_NORMS}, got {self.d_norm!r}")
        if self.d_norm != "none" and self.arch != "conv":
            raise ValueError(  # not "d_norm ...": the refusal is of two fields together
                f"a BatchNorm critic (d_norm {self.d_norm!r}) needs arch 'conv', got {self.arch!r}"
            )


def critic_stats(scores: Any, n: int, d_loss: Any) -> dict[str, Any]:
    """The critic's figures from its scores on [real; fake]: loss and Wasserstein estimate."""
    xp = get_array_module(scores)
    return {
        "d_loss": d_loss,
        "wasserstein": xp.asarray(scores[:n].mean() - scores[n:].mean()),
    }


class WGAN(ArchModel):
    """Wasserstein GAN with weight clipping. Stats: ``d_loss`` = mean D(G(z)) - mean D(x),
    ``g_loss`` = -mean D(G(z)), ``wasserstein`` = mean D(x) - mean D(G(z)) (the critic's
    estimate of K times the Wasserstein distance; it should fall as G improves)."""

    summary = "a critic estimating the Wasserstein distance, weight clipping, RMSprop"
    name = "wgan"
    g_batchnorm = True  # the paper's code's G (convnets.py); the critic's: ``d_norm``
    config_class = WGANConfig
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "critic loss: mean D(G(z)) - mean D(x)",
        "g_loss": "G loss: -mean D(G(z))",
        "wasserstein": "Wasserstein estimate: mean D(x) - mean D(G(z))",
    }

    def __init__(self, config: WGANConfig, *args: Any, **kwargs: Any):
        super().__init__(config, *args, **kwargs)
        self.loss = WassersteinLoss()

    @classmethod
    def critic_batchnorm(cls, config: Any) -> bool:
        """``d_norm="batch"`` with the convolutions; WGAN-GP's config has no ``d_norm``
        (its penalty needs each score to depend on its own image alone)."""
        return isinstance(config, WGANConfig) and config.arch == "conv" and config.d_norm == "batch"

    def make_optimizer(self, params: list[nn.Parameter]) -> RMSprop:
        return RMSprop(params, lr=self.config.lr)

    def d_steps_per_g_step(self) -> int:
        return self.config.n_critic

    def critic_loss_gradient(self, scores: Any, n: int) -> tuple[Any, Any]:
        """The critic loss mean D(fake) - mean D(real) on stacked scores, and its gradient."""
        xp = get_array_module(scores)
        loss_real = self.loss.forward(scores[:n], 1)  # -mean D(x)
        grad_real = self.loss.backward()  # -1/n each
        loss_fake = self.loss.forward(scores[n:], -1)  # +mean D(G(z))
        grad_fake = self.loss.backward()  # +1/n each
        return xp.asarray(loss_real + loss_fake), xp.concatenate([grad_real, grad_fake])

    def discriminator_step(self, real: Any, fake: Any) -> dict[str, Any]:
        """One RMSprop step on the critic loss, then clip every critic weight to [-c, c].

        With BatchNorm in the critic, real and fake pass apart, each adding its
        gradient into ``.grad`` before the one step (``two_pass_scores``).
        """
        xp = get_array_module(real)
        if self.critic_batchnorm(self.config):
            scores, d_loss = self.two_pass_scores(real, fake)
        else:
            scores = self.discriminator.forward(xp.concatenate([real, fake]))
            d_loss, grad_scores = self.critic_loss_gradient(scores, scores.shape[0] // 2)
            self.update_discriminator(grad_scores)
        clip_weights(self.discriminator.parameters(), self.config.clip)
        return critic_stats(scores, scores.shape[0] // 2, d_loss)

    def two_pass_scores(self, real: Any, fake: Any) -> tuple[Any, Any]:
        """The critic's update in two passes, real then fake, so that BatchNorm normalises
        each batch with its own statistics (the module docstring); returns the scores
        stacked as [real; fake], as one pass would give them, and the loss."""
        D, loss, xp = self.discriminator, self.loss, get_array_module(real)
        self.d_optimizer.zero_grad()
        real_scores = D.forward(real)
        loss_real = loss.forward(real_scores, 1)  # -mean D(x)
        D.backward(loss.backward(), input_grad=False)  # the data needs no gradient
        fake_scores = D.forward(fake)
        loss_fake = loss.forward(fake_scores, -1)  # +mean D(G(z))
        D.backward(loss.backward(), input_grad=False)  # nor does G, in the critic's step
        self.d_optimizer.step()
        return xp.concatenate([real_scores, fake_scores]), xp.asarray(loss_real + loss_fake)

    def generator_step(self, fake: Any) -> Any:
        """Raise the critic's score of G's images: minimise -mean D(G(z))."""
        scores = self.discriminator.forward(fake)
        g_loss = self.loss.forward(scores, 1)
        self.update_generator(self.loss.backward())
        return g_loss
