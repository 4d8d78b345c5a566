"""The small networks of the 2-D mode-collapse benchmarks: points in the plane, not images.

VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018) measure mode collapse on
mixtures of Gaussians in the plane (``minigan.data.ring_mixture``, ``grid_mixture``),
with one pair of networks, which PacGAN's released code (``2DRing_GAN&PacGAN``,
``2DGrid_GAN&PacGAN``: Blocks bricks) writes as

    G        z (N, 2), z ~ N(0, I)
             -> [Linear (-> 400), BatchNorm, ReLU] x 4        four hidden layers of 400
             -> Linear (400 -> 2)                            a point, NO Tanh
    D        x (N, 2): with packing m, the m points of a pack side by side, (N/m, 2m)
             -> Maxout (-> 200 units, 5 pieces) x 3          ``nn.Maxout``
             -> Linear (200 -> 1)                            one logit per pack

- **No Tanh at G's output.** An image's pixels live in [-1, 1]; a point does not: the
  grid's outer modes sit at +-4. G's last layer is linear, so its points can go anywhere.
- **BatchNorm in G** after each hidden Linear, before the ReLU. The paper's hidden
  Linears have no bias, since BatchNorm's mean subtraction cancels any bias before it
  (y = W x + b has batch mean W mu + b, so x^ = y - mean(y) holds no b): here each
  keeps one, initialised to 0, which the same subtraction makes inert (its gradient
  is the batch sum of BatchNorm's dx, zero by BatchNorm's compact backward). The
  running statistics follow the batch ones with weight 0.05 (their code's
  ``m * 0.05 + p * 0.95``), and G draws samples with them (evaluation mode).
- **A maxout D** (``nn.Maxout``): each unit keeps the largest of 5 affine pieces of its
  input, so it learns its own convex piecewise-linear activation; no BatchNorm, no
  dropout (their code builds the dropout graph and trains without it).
- **Weights from N(0, 0.02^2)**, biases 0, in every Linear and Maxout of both
  networks (``IsotropicGaussian(0.02)``, ``Constant(0.0)``); BatchNorm's scale 1 and
  shift 0.
- **Packing** (``nn.Pack``): D's first layer takes the m points of a pack
  concatenated, 2m numbers. With ``pack`` = m the batch is m times the papers'
  batch of packs: 100 packs are 100 m points.

Their training recipe (``RECIPES["gan"]``): Adam, lr 1e-4, beta1 0.8, batches of 100
(packs), z of 2 dimensions, 100,000 packs an epoch, 400 epochs; D's loss
softplus(-D(x)) + softplus(D(G(z))) (cross-entropy on logits), G's the
non-saturating -log sigmoid(D(G(z))). Two departures, both in how the step is
scheduled, not in what is minimised: their code updates D and G together from
gradients taken at the same parameters (``ali_algorithm``), minigan's skeleton
alternates (D, then G against the updated D: ``base.py``), as Goodfellow et al.'s
Algorithm 1; and their G draws each pack's m points in m separate calls (BatchNorm
statistics over 100 points each), minigan's in one call over the 100 m points.

PacGAN ran only the GAN on these networks. For the rest of the family the networks
are the same and each paper's own recipe is kept (``RECIPES``): LSGAN with the GAN's
Adam (the mixture benchmark has no LSGAN recipe of its own); WGAN with its RMSprop,
lr 5e-5, weights clipped to [-0.01, 0.01] after each of 5 critic steps per G step;
WGAN-GP with Adam lr 1e-4, betas (0.5, 0.9), lambda 10, 5 critic steps (their toy
experiments' settings). WGAN-GP's penalty differentiates the packed maxout critic's
input gradient once more: the double backward of ``Pack`` (a reshape: exact),
``Maxout`` (the winning pieces' rows, fixed away from ties) and ``Linear``, derived
in their docstrings (``nn/reshape.py``, ``nn/maxout.py``, ``nn/linear.py``); a critic
built only of piecewise-linear layers has no second-derivative terms at all.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from minigan import nn

G_HIDDEN, G_LAYERS = 400, 4  # G: four hidden layers of 400
D_UNITS, D_LAYERS, D_PIECES = 200, 3, 5  # D: three maxout layers of 200 units, 5 pieces
INIT_STD = 0.02  # every weight ~ N(0, 0.02^2); every bias 0
BN_MOMENTUM = 0.05  # BatchNorm's running statistics: 0.05 of each batch's

# The papers' recipes on these networks, as config field values of each model.
RECIPES: dict[str, dict[str, Any]] = {
    "gan": {"latent_dim": 2, "batch_size": 100, "lr": 1e-4, "betas": (0.8, 0.999)},
    "lsgan": {"latent_dim": 2, "batch_size": 100, "lr": 1e-4, "betas": (0.8, 0.999)},
    "wgan": {"latent_dim": 2, "batch_size": 100, "lr": 5e-5, "clip": 0.01, "n_critic": 5},
    "wgan-gp": {
        "latent_dim": 2, "batch_size": 100, "lr": 1e-4, "betas": (0.5, 0.9),
        "gp_weight": 10.0, "n_critic": 5,
    },
}  # fmt: skip


def gaussian_init(layer: nn.Linear | nn.Maxout, rng: np.random.Generator) -> None:
    """The papers' initial values, in place: W ~ N(0, INIT_STD^2), b = 0."""
    layer.weight.data[...] = rng.normal(0.0, INIT_STD, layer.weight.shape)
    layer.bias.data[...] = 0


def build_generator(config: Any, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """z (batch, latent_dim) -> points (batch, image_size), unbounded (no Tanh)."""
    widths = [config.latent_dim] + [G_HIDDEN] * G_LAYERS
    layers: list[nn.Module] = []
    for width_in, width_out in itertools.pairwise(widths):
        layers += [
            nn.Linear(width_in, width_out, rng=rng, dtype=dtype),
            nn.BatchNorm1d(width_out, momentum=BN_MOMENTUM, dtype=dtype),
            nn.ReLU(),
        ]
    layers.append(nn.Linear(G_HIDDEN, config.image_size, rng=rng, dtype=dtype))
    G = nn.Sequential(*layers)
    for layer in G.modules():
        if isinstance(layer, nn.Linear):
            gaussian_init(layer, rng)
    return G


def build_discriminator(
    config: Any, rng: np.random.Generator, dtype: Any, sigmoid: bool = False, pack: int = 1
) -> nn.Sequential:
    """points (batch, image_size) -> one score per pack of ``pack`` points, (batch / pack, 1).

    A real number (a logit, or a critic's value), or with ``sigmoid`` a probability.
    """
    widths = [pack * config.image_size] + [D_UNITS] * D_LAYERS
    layers: list[nn.Module] = [nn.Pack(pack)] if pack > 1 else []
    for width_in, width_out in itertools.pairwise(widths):
        layers.append(nn.Maxout(width_in, width_out, D_PIECES, rng=rng, dtype=dtype))
    layers.append(nn.Linear(D_UNITS, 1, rng=rng, dtype=dtype))
    for layer in layers:
        if isinstance(layer, (nn.Linear, nn.Maxout)):
            gaussian_init(layer, rng)
    if sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def count_parameters(config: Any, pack: int = 1) -> int:
    """Weights and biases of ``build_generator``'s G (BatchNorm's scale and shift
    included) and ``build_discriminator``'s D, from the config alone."""
    z, h, d = config.latent_dim, G_HIDDEN, config.image_size
    generator = (z * h + h) + (G_LAYERS - 1) * (h * h + h) + G_LAYERS * 2 * h + (h * d + d)
    rows = D_UNITS * D_PIECES  # one row of W per piece of each unit
    discriminator = (pack * d * rows + rows) + (D_LAYERS - 1) * (D_UNITS * rows + rows)
    return generator + discriminator + D_UNITS + 1


def estimate_memory(config: Any, rows: int, parameters: int) -> int:
    """About how many bytes training needs (see ``mlp.estimate_memory``): each
    parameter's 4 float32 arrays, and the activations of ``rows`` points through G
    (three arrays per hidden layer) and D (the pieces, their mask and the winners),
    D seeing real, fake and the penalty's x^, all twice for temporaries."""
    g = config.latent_dim + 3 * G_LAYERS * G_HIDDEN + config.image_size
    d = config.image_size + D_LAYERS * (2 * D_UNITS * D_PIECES + D_UNITS) + 1
    return 4 * (4 * parameters + 2 * rows * (g + 3 * d))
