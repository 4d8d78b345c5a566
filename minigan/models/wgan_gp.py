"""WGAN-GP (Gulrajani et al., 2017): the Wasserstein critic, kept Lipschitz by a gradient penalty.

    critic minimises   E_z[D(G(z))] - E_x[D(x)] + lambda E_x^[(||grad_x D(x^)||_2 - 1)^2]
    G minimises        -E_z[D(G(z))]
    x^ = eps x + (1 - eps) G(z),   eps ~ U(0, 1) per example

The paper's Algorithm 1, as ``train_step`` runs it (one call: one critic iteration):

    for each G iteration:
        for t = 1 .. n_critic:
            x ~ data, z ~ N(0, I), eps ~ U(0, 1)
            x^ = eps x + (1 - eps) G(z)
            w <- Adam(grad_w [D(G(z)) - D(x) + lambda (||grad_x D(x^)|| - 1)^2])
        z ~ N(0, I)
        theta <- Adam(grad_theta [-D(G(z))])

What differs from WGAN (``wgan.py``), and why:

- No weight clipping. Clipping bounds the critic's Lipschitz constant only
  crudely: it pushes weights to +-c and makes the critic too simple, or its
  gradients explode or vanish. An optimal critic has gradient norm 1 almost
  everywhere between the two distributions, so WGAN-GP asks for exactly that,
  softly, on random points x^ on straight lines between real and fake images.
- Adam (betas (0.5, 0.9)) instead of RMSprop: with the penalty the critic trains
  stably with momentum. lambda = 10.
- No BatchNorm in the critic: the penalty is per example, the gradient of one
  image's score with respect to that image, and BatchNorm would make each score
  depend on the whole batch.

The networks (``arch``): by default the paper's MNIST pair, a critic of three 5x5
stride-2 convolutions and a G that mirrors it (``convnets.py``); ``arch="mlp"`` gives
the vanilla GAN's MLPs. The paper's hyperparameters and where the defaults depart
from them, each for the digits it drew in a few CPU minutes (measured:
benchmarks/RESULTS.md, "The family through the convolutional classifier"); the flag in brackets gives the paper's value back:

- ``base_channels`` 16, a quarter of the paper's DIM 64 (``--base-channels 64``): a
  convolution's work grows as DIM^2, so a critic step costs about a sixteenth.
- ``n_critic`` 1, not 5 (``--n-critic 5``): a critic step passes through the critic
  five times (forward and backward over real and fake, then the penalty's forward,
  backward and double backward), a G step through D and G once each, so one critic
  step per G step gives G several times the updates in the same time. The penalty
  still holds the critic near 1-Lipschitz (the run's ``grad_norm`` shows how near).
- ``lr`` 3e-4 for both players, not 1e-4 (``--lr 1e-4``): the paper trained 200,000
  G iterations, these runs a few thousand.
- ``ema`` 0.999: samples come from a moving average of G's weights (``ema.py``).
- batch 64, the paper's 50 (``--batch-size 50``).

``--pack M`` (PacGAN, ``nn.Pack``; 1, the paper's, by default) lets the critic score M
images at once. The Wasserstein estimate is then between the distributions of packs,
and the penalty holds the critic 1-Lipschitz in its input, the pack: x^ interpolates
whole packs (one eps per pack) and each norm is over a pack's M images together.

The penalty is a function of the critic's *input gradient*, so its gradient
with respect to the critic's weights needs a second-order pass: the double
backward of ``minigan.nn`` (each layer's ``double_backward``, derived in its
docstring), which ``gradient_penalty`` runs layer by layer for any critic. For the
MLP critic, all of it written out as matrix products; the convolutional critic's
follows after it, and the 2-D benchmarks' packed maxout critic (``arch="points"``,
``points.py``) after that.

The critic, for a batch x^ of n rows (a = 0.2; S_k = LeakyReLU slopes, 1 or a,
elementwise, fixed by the forward pass):

    u1 = x^ W1^T + b1      h1 = LeakyReLU(u1)       S1 = f'(u1)     (n, h)
    u2 = h1 W2^T + b2      h2 = LeakyReLU(u2)       S2 = f'(u2)     (n, h)
    s  = h2 W3^T + b3                                               (n, 1)

Backward with ds = 1 (one per row: row n of the result is grad D(x^_n), because
rows do not interact), ``D.backward(ones, create_graph=True)``:

    G3 = 1 W3          (n, h)     dL/dh2        Linear 3
    G2 = G3 * S2       (n, h)     dL/du2        LeakyReLU 2
    H2 = G2 W2         (n, h)     dL/dh1        Linear 2
    G1 = H2 * S1       (n, h)     dL/du1        LeakyReLU 1
    g  = G1 W1         (n, d)     grad D(x^)    Linear 1

so g = (((1 W3) * S2) W2 * S1) W1. The penalty and its gradient in g
(``GradientPenalty``, derived there), with r_n = ||g_n||:

    P = lambda/n sum_n (r_n - 1)^2          V = dP/dg = (2 lambda/n) (r_n - 1)/r_n g_n   (n, d)

Double backward, ``D.double_backward(V)``: the backward pass differentiated, layer
by layer in forward order, each Linear adding dy^T V_k to its weight (Linear: dx = dy W, so
dL/dW += dy^T gg and dL/d(dy) = gg W^T), each LeakyReLU multiplying by its
slopes (dx = dy * S, so dL/d(dy) = gg * S; S is constant: f'' = 0):

    dP/dW1 = G1^T V                    (h, d)     V1 = V W1^T          (n, h)
                                                  V1' = V1 * S1
    dP/dW2 = G2^T V1'                  (h, h)     V2 = V1' W2^T        (n, h)
                                                  V2' = V2 * S2
    dP/dW3 = 1^T V2'                   (1, h)
    dP/db1 = dP/db2 = dP/db3 = 0

In one line each, with V = (2 lambda/n) diag((r - 1)/r) G1 W1:

    dP/dW3 = 1^T ((V W1^T * S1) W2^T * S2)
    dP/dW2 = ((1 W3) * S2)^T (V W1^T * S1)
    dP/dW1 = (((1 W3) * S2) W2 * S1)^T V

The biases get nothing: g does not depend on them, since they only shift u1, u2,
and the slopes S1, S2 do not change under a small shift (with Tanh or Sigmoid
they would: the f'' terms, which ``Sequential.double_backward`` sends down an
ordinary backward pass). These products are what the double backward computes;
tests/test_models.py checks them against finite differences of P itself and
against PyTorch's ``autograd.grad(..., create_graph=True)``.

The convolutional critic runs the same chain: a Conv2d is linear in its input as a
Linear is (y = A x + b, with A built from W), so its double backward follows the same
two rules, dP/dW_k += (the weight gradient of dy_k with V_k in x's place) and
V_{k+1} = A_k V_k, the forward map without the bias; LeakyReLU multiplies by its fixed
slopes, and Flatten and Unflatten reshape (``nn/conv.py``, ``nn/reshape.py``).
tests/test_conv_family.py checks it against finite differences of P and PyTorch.

The packed maxout critic, Pack(m) -> Maxout x3 -> Linear, is piecewise linear as well.
With M_k the mask of each maxout layer's winning pieces (fixed by the forward pass, away
from ties) and W~_k the (n, out, in) stack of each row's winners, a maxout layer is, row
by row, a Linear with weights W~_k; Pack is a reshape R. So the chain is the MLP's above
with LeakyReLU's slopes folded into W~_k: g = R^T((((1 W4) W~3) W~2) W~1), and the
double backward sends V = dP/dg back in forward order, V1 = R(V) (Pack's reshape), each
maxout adding (its routed dy)^T V_k to its weight rows and passing on V_k W~_k^T read at
the winners (``Maxout.double_backward``), and the last Linear dy^T V_3. The biases get
nothing, as before. tests/test_points.py checks it against finite differences of P and
PyTorch.

The critic step adds two gradients into the critic's ``.grad`` before one Adam
step: the Wasserstein loss's (an ordinary backward over [x; G(z)]) and the
penalty's (the forward, backward and double backward over x^).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from minigan import nn
from minigan.backend import get_array_module
from minigan.losses import GradientPenalty
from minigan.models.base import check_adam, frozen, option, option_of
from minigan.models.convnets import ArchConfig
from minigan.models.wgan import WGAN, critic_stats
from minigan.optim import Adam


@dataclass
class WGANGPConfig(ArchConfig):
    """A WGAN-GP: the paper's networks and recipe, scaled to a CPU (see the module doc)."""

    hidden: int = option_of(ArchConfig, "hidden", 512)
    g_activation: str = option_of(ArchConfig, "g_activation", "leaky_relu")
    batch_size: int = option_of(ArchConfig, "batch_size", 64)
    ema: float = option_of(ArchConfig, "ema", 0.999)
    lr: float = option(3e-4, "learning rate of both players (the paper's: 1e-4)")
    betas: tuple[float, float] = option((0.5, 0.9), "Adam's (beta1, beta2)", flag=False)
    n_critic: int = option(1, "critic updates per generator update (the paper's: 5)")
    gp_weight: float = option(10.0, "WGAN-GP's penalty weight lambda")

    POSITIVE = (*ArchConfig.POSITIVE, "n_critic")

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        super().__post_init__()
        check_adam(self)
        if not (math.isfinite(self.gp_weight) and self.gp_weight > 0):
            raise ValueError(f"gp_weight must be > 0, got {self.gp_weight}")


class WGANGP(WGAN):
    """WGAN with a gradient penalty. Stats: WGAN's, plus ``penalty`` = lambda mean (||g|| - 1)^2
    and ``grad_norm`` = mean ||grad_x D(x^)|| (1 for an ideal critic); ``d_loss`` includes
    the penalty."""

    summary = "WGAN with a gradient penalty instead of clipping (a double backward)"
    name = "wgan-gp"
    default_epochs = 9  # benchmarks/RESULTS.md, "The family through the convolutional classifier"
    g_batchnorm = False  # the paper's WGAN-GP G has none (its WGAN's has: ``WGAN``)
    config_class = WGANGPConfig
    stats: ClassVar[dict[str, str]] = {
        **WGAN.stats,
        "d_loss": "critic loss: mean D(G(z)) - mean D(x) + penalty",
        "penalty": "gradient penalty: lambda mean (||grad D(x^)|| - 1)^2",
        "grad_norm": "mean ||grad D(x^)||, 1 for an ideal critic",
    }

    def __init__(self, config: WGANGPConfig, *args: Any, **kwargs: Any):
        super().__init__(config, *args, **kwargs)
        self.penalty = GradientPenalty()

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    def interpolate(self, real: Any, fake: Any) -> Any:
        """x^ = eps x + (1 - eps) G(z), eps ~ U(0, 1) per example, from the model's device RNG.

        With ``pack`` = m, one eps per pack, shared by its m images: x^'s pack lies
        on the straight line between the real pack and the fake one, where the
        critic's input is the pack.
        """
        packs = (real.shape[0] // self.config.pack, self.config.pack, -1)  # (n/m, m, d)
        eps = self.noise_rng.random((packs[0], 1), dtype=self.dtype)[:, :, None]  # (n/m, 1, 1)
        return (eps * real.reshape(packs) + (1 - eps) * fake.reshape(packs)).reshape(real.shape)

    def gradient_penalty(self, x_hat: Any) -> tuple[Any, Any]:
        """lambda mean (||grad D(x^)|| - 1)^2; adds its gradient into the critic's ``.grad``.

        Returns the penalty and the mean gradient norm (0-d arrays).
        """
        D, xp = self.discriminator, get_array_module(x_hat)
        scores = D.forward(x_hat)
        with frozen(D):  # this backward computes g = grad D(x^) only: no dL/dw
            g = D.backward(xp.ones_like(scores), create_graph=True)  # keep each dy
        lam = self.config.gp_weight
        # One row per score: a pack's m images are one input of the critic, and its
        # gradient norm is over all m of them (a reshape: rows of g are packed in order).
        penalty = xp.asarray(lam * self.penalty.forward(g.reshape(scores.shape[0], -1), 1.0))
        grad_g = (self.penalty.backward() * lam).reshape(g.shape)  # V = dP/dg
        D.double_backward(grad_g, input_grad=False)  # dP/dw, into .grad; x^ is data
        return penalty, xp.asarray(self.penalty.norms.mean())

    def discriminator_step(self, real: Any, fake: Any) -> dict[str, Any]:
        """One Adam step on  mean D(G(z)) - mean D(x) + penalty(x^)."""
        xp = get_array_module(real)
        D = self.discriminator
        scores = D.forward(xp.concatenate([real, fake]))
        n = scores.shape[0] // 2  # scores per half: one per image, or per pack
        w_loss, grad_scores = self.critic_loss_gradient(scores, n)
        self.d_optimizer.zero_grad()
        D.backward(grad_scores, input_grad=False)  # the Wasserstein part's gradient
        penalty, grad_norm = self.gradient_penalty(self.interpolate(real, fake))  # added to it
        self.d_optimizer.step()
        stats = critic_stats(scores, n, xp.asarray(w_loss + penalty))
        stats.update(penalty=penalty, grad_norm=grad_norm)
        return stats
