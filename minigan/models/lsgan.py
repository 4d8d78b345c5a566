"""LSGAN (Mao et al., 2017): the discriminator regresses, trained by squared error.

    D minimises   1/2 E_x[(D(x) - 1)^2] + 1/2 E_z[D(G(z))^2]
    G minimises   1/2 E_z[(D(G(z)) - 1)^2]

(the paper's a-b-c coding with a = 0 for fake, b = 1 for real, c = 1 for what G
wants D to believe).

What differs from the vanilla GAN, and why:

- D has no sigmoid: its score is a real number, pulled towards 1 on real images
  and 0 on fakes, as a least-squares fit.
- The losses are squared errors instead of cross-entropy. A sigmoid
  cross-entropy stops pushing a fake once D classifies it confidently, even if
  it lies far from the data (the loss saturates); the squared error keeps
  pulling every fake towards the decision boundary in proportion to how far it
  is from it (dL/dD = D(G(z)) - 1, never flat). Mao et al. show that minimising
  it minimises a Pearson chi-squared divergence between the data and
  G's distribution.

Everything else (Adam, the D-then-G step) is the vanilla GAN's.

The networks (``arch``): by default DCGAN-style convolutions, the pair of WGAN-GP's
MNIST code (``convnets.py``), with BatchNorm in G after the projection and each inner
transposed convolution, as DCGAN's and the LSGAN paper's generators have it (it holds G's
hidden maps at a steady scale while D learns fast), and none in D, so that one pass over [real; fake] stacked is the objective as written (see
``discriminator_step``); ``arch="mlp"`` gives the vanilla GAN's MLPs, ``arch="points"``
the 2-D benchmarks' G and maxout D (``points.py``). Departures from
the paper's recipe, each for the digits it drew in a few CPU minutes (measured:
benchmarks/RESULTS.md, "The family through the convolutional classifier" and its
two sequels):

- ``base_channels`` 16, a quarter of the DCGAN-style networks' 64: a cheaper step.
- ``lr`` 4e-4 for both players, twice the paper's 2e-4 (``--lr 2e-4``), and batches of
  64 instead of the MLP family's 100 (more, smaller steps in the same time): as for
  the vanilla GAN's default, the faster rate fits the training into a few minutes.
- ``ema`` 0.9995: samples come from a moving average of G's weights (``ema.py``),
  over about the last 2,000 of the run's 11,000 updates: the longer the average, the
  more of each step's wobble cancels, which shows as stray pixels at strokes' ends.
- ``pack`` 2: D scores pairs of images, as the vanilla default's D does (PacGAN,
  ``nn.Pack``; ``--pack 1`` judges one at a time, as the paper's). A G that draws some
  digits too often and others too rarely can fool D one image at a time, since each of
  its images may look real; two at a time, D sees how often alike ones come up, and
  G is pushed back towards the data's balance. D's rows halve, so a step costs less,
  and the same minutes buy more epochs.
- ``g_full_res_channels`` 8: G's last transposed convolution makes 8 maps of the
  image's size, and a 3x3 convolution draws the image from them, as DCGAN's default G
  does with 16 (``--g-full-res-channels 0``: the last transposed convolution draws the
  image). A stride-2 transposed convolution computes each pixel from a different
  subset of its kernel than its neighbours; the 3x3 convolution mixes every pixel with
  its neighbours, so that a stroke's faint end is drawn from the same maps as the stroke.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from minigan import nn
from minigan.backend import get_array_module
from minigan.losses import MSELoss
from minigan.models.base import check_adam, option, option_of
from minigan.models.convnets import ArchConfig, ArchModel
from minigan.optim import Adam


@dataclass
class LSGANConfig(ArchConfig):
    """An LSGAN: DCGAN-style networks and the LSGAN paper's Adam (see the module doc)."""

    hidden: int = option_of(ArchConfig, "hidden", 512)
    g_activation: str = option_of(ArchConfig, "g_activation", "leaky_relu")
    batch_size: int = option_of(ArchConfig, "batch_size", 64)
    ema: float = option_of(ArchConfig, "ema", 0.9995)
    pack: int = option_of(ArchConfig, "pack", 2)
    g_full_res_channels: int = option_of(ArchConfig, "g_full_res_channels", 8)
    lr: float = option(4e-4, "learning rate of both players (the paper's: 2e-4)")
    betas: tuple[float, float] = option((0.5, 0.999), "Adam's (beta1, beta2)", flag=False)
    d_steps: int = option(1, "discriminator updates per generator update")

    POSITIVE = (*ArchConfig.POSITIVE, "d_steps")

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        super().__post_init__()
        check_adam(self)


class LSGAN(ArchModel):
    """Least-squares GAN. Stats: ``d_loss``, ``g_loss`` (the two objectives above),
    ``d_real`` = mean D(x) and ``d_fake`` = mean D(G(z)), raw scores (targets 1 and 0)."""

    summary = "least squares: D's scores trained towards 1 and 0 by squared error"
    name = "lsgan"
    default_epochs = 12  # benchmarks/RESULTS.md, "The family through the convolutional classifier"
    g_batchnorm = True  # DCGAN's rule in G (convnets.py); D has none
    config_class = LSGANConfig
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "D loss: 1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2",
        "g_loss": "G loss: 1/2 (D(G(z)) - 1)^2",
        "d_real": "mean D(x), target 1",
        "d_fake": "mean D(G(z)), target 0",
    }

    def __init__(self, config: LSGANConfig, *args: Any, **kwargs: Any):
        super().__init__(config, *args, **kwargs)
        self.loss = MSELoss()

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    def d_steps_per_g_step(self) -> int:
        return self.config.d_steps

    def discriminator_step(self, real: Any, fake: Any) -> dict[str, Any]:
        """Fit D's scores to 1 on ``real`` and 0 on ``fake``, in one stacked pass.

        The mean of (D - target)^2 over the 2n stacked scores is
        (mean_real + mean_fake) / 2: exactly the objective's 1/2 + 1/2, so the one
        pass is the objective as written (no layer of D mixes examples). With ``pack``
        = m, D scores n/m packs of real images, then n/m of fake ones (no pack mixes
        the halves: n is a multiple of m).
        """
        xp = get_array_module(real)
        scores = self.discriminator.forward(xp.concatenate([real, fake]))
        n = scores.shape[0] // 2  # scores per half: one per image, or per pack
        targets = xp.zeros((2 * n, 1), dtype=self.dtype)  # [1] * n, then [0] * n
        targets[:n] = 1
        d_loss = self.loss.forward(scores, targets)
        self.update_discriminator(self.loss.backward())
        return {
            "d_loss": d_loss,
            "d_real": xp.asarray(scores[:n].mean()),
            "d_fake": xp.asarray(scores[n:].mean()),
        }

    def generator_step(self, fake: Any) -> Any:
        """Pull D(G(z)) towards 1: minimise 1/2 mean (D(G(z)) - 1)^2."""
        scores = self.discriminator.forward(fake)
        g_loss = get_array_module(fake).asarray(self.loss.forward(scores, 1.0) / 2)
        self.update_generator(self.loss.backward() / 2)
        return g_loss
