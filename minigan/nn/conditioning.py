"""Conditioning Augmentation: StackGAN's text code c ~ N(mu(e), diag sigma(e)^2), and its KL term.

Zhang et al. (2017), "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
Generative Adversarial Networks", section 3.1. A text embedding e is one point per
caption; fed to the generator as it is, the few captions of a data set leave the
conditioning space sparse, and G sees the same vector for every image of a caption.
Conditioning Augmentation instead draws the code from a Gaussian whose mean and
diagonal covariance are functions of e,

    (mu, log sigma^2) = f(e)                  one fully connected layer
    c = mu + sigma * eps,  eps ~ N(0, I)      sigma = exp(log sigma^2 / 2)

a fresh draw at every use, so nearby codes all mean the caption (more training pairs,
robustness to small changes along the conditioning manifold), and adds to G's loss

    lambda * KL( N(mu, diag sigma^2) || N(0, I) )

which keeps the codes' distribution close to the standard normal (smooth, and without
sigma collapsing to 0, which would turn the sampling off). The paper uses lambda = 1;
its released code (hanzhanggit/StackGAN-Pytorch, ``cfg.TRAIN.COEFF.KL``) uses 2.0,
this layer's default. The draw of c is the reparameterisation trick of variational
auto-encoders (Kingma & Welling 2014): the randomness sits in eps, which does not
depend on e, so c is a differentiable function of mu and sigma.

**Following the paper's code** (its ``CA_NET`` and ``KL_loss``), in two places:

- f is ``ReLU(Linear(e))``: the code puts a ReLU after the fc layer, then splits its
  output into mu (the first c_dim columns) and log sigma^2 (the rest). So mu >= 0 and
  log sigma^2 >= 0, i.e. sigma >= 1: every code carries at least unit noise, and the
  KL's minimum (mu = 0, sigma = 1) is where a unit is switched off. ``relu=False`` drops
  the ReLU (f linear, as the paper's text writes it; its TensorFlow code uses a leaky
  ReLU of slope 0.2 instead).
- the KL's normalisation: the per-example KL of two diagonal Gaussians is

      KL_n = 1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)

  and the code averages the bracket over EVERY element, batch and code dimension:

      KL = 1/(2 M) sum_{n, j} (mu_nj^2 + sigma_nj^2 - log sigma_nj^2 - 1),   M = N c_dim

  i.e. the batch mean of KL_n divided by c_dim. This layer does the same (so the
  code's lambda = 2 means what it meant there).

**The API.** ``c = ca(e)`` draws the code (from ``rng``, the model's noise stream);
``ca.kl()`` is the last forward's KL, a 0-d array on e's backend (nothing read back);
``de = ca.backward(dc, kl_weight=...)`` returns dL/de for

    L = L_rest(c) + kl_weight * KL        dc = dL_rest/dc

and adds dL/dW and dL/db into the fc layer's gradients. The KL's gradient joins the path
from c at mu and log sigma^2, inside this backward, so a model need not handle mu and
sigma at all: it passes dc and the weight (the layer's own ``kl_weight`` when omitted,
which is what a ``Sequential`` around it uses). ``kl_weight=0`` is the code's path alone.

**Backward, step by step** (CS231n's way: each backward step sits beside the forward
line it undoes, so the backward column runs upwards, from step 1 at the bottom; v is
log sigma^2, s is sigma, g = dL_rest/dc, w the KL weight, and the KL is read as a
function of mu and v, s^2 = exp(v)):

    forward                                   backward (read upwards)
    1. h = e W^T + b                          6. de = dh W,  dW += dh^T e,  db += sum_n dh
    2. a = ReLU(h)                            5. dh = da * [h > 0]
    3. mu = a[:, :c_dim], v = a[:, c_dim:]    4. da = [dmu, dv] (side by side)
    4. s = exp(v / 2)                         3. dv = ds * s / 2 + w (s^2 - 1) / (2 M)
    5. c = mu + s * eps                       2. dmu = g + w mu / M,  ds = g * eps
    6. KL = mean(mu^2 + s^2 - v - 1) / 2      1. (the KL enters at steps 2 and 3)

So, the two paths into mu and v added:

    dc/dmu = 1                       dKL/dmu = mu / M
    dc/dv  = exp(v / 2) eps / 2      dKL/dv  = (exp(v) - 1) / (2 M)

    dL/dmu = g + w mu / M
    dL/dv  = g * exp(v / 2) * eps / 2 + w (exp(v) - 1) / (2 M)

eps is saved from forward (the same draw both ways), with s (so backward needs no exp).

**Evaluation mode samples too**, as the paper's code does at test time (its CA_NET has no
mode): ``eval()`` changes nothing here. A model that wants the mean code reads it with
``ca.mean(e)``.

Shapes: e (N, embed_dim) -> c (N, c_dim); dL/de (N, embed_dim). Parameters: ``fc.weight``
(2 c_dim, embed_dim) and ``fc.bias`` (2 c_dim), initialised as PyTorch's ``nn.Linear``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.activations import ReLU
from minigan.nn.checks import check_array, check_sizes, require_forward
from minigan.nn.linear import Linear
from minigan.nn.noise import _NoiseLayer


class ConditioningAugmentation(_NoiseLayer):
    """StackGAN's Conditioning Augmentation: ``c = mu(e) + exp(logvar(e) / 2) * eps``.

    Shapes: e (N, embed_dim) -> c (N, c_dim), e's dtype. ``kl()``: a 0-d array.

    Backward: ``backward(dc, kl_weight=w)`` returns dL/de for L = L_rest(c) + w * KL, the
    KL's gradients (mu / M and (exp(logvar) - 1) / (2 M), M = N c_dim) joining the
    reparameterised path (dc/dmu = 1, dc/dlogvar = exp(logvar / 2) eps / 2) at mu and
    logvar (module docstring: the derivation, step by step).

    Args:
        embed_dim: the text embedding's length.
        c_dim: the code's length (the fc layer has 2 c_dim outputs: mu and log sigma^2).
        rng: the generator eps is drawn from, on the input's backend (the model's noise
            stream, as ``GaussianNoise``'s; default: a fresh unseeded one).
        init_rng: a ``numpy.random.Generator`` for the fc layer's initial weights.
        dtype: the parameters' dtype, and so the output's (float32 by default).
        kl_weight: lambda, the KL's weight when ``backward`` is not given one (2.0: the
            paper code's ``COEFF.KL``; the paper's text uses 1).
        relu: the ReLU after the fc layer, as the paper's code (module docstring).
    """

    def __init__(
        self,
        embed_dim: int,
        c_dim: int,
        *,
        rng: Any = None,
        init_rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
        kl_weight: float = 2.0,
        relu: bool = True,
    ):
        check_sizes("ConditioningAugmentation", f"({embed_dim!r} -> {c_dim!r})", embed_dim, c_dim)
        super().__init__(rng)
        self.embed_dim, self.c_dim = embed_dim, c_dim
        self.fc = Linear(embed_dim, 2 * c_dim, rng=init_rng, dtype=dtype)
        self.relu = ReLU() if relu else None
        self.kl_weight = self._checked_weight(kl_weight)

    def __repr__(self) -> str:
        relu = "" if self.relu is not None else ", relu=False"
        return f"ConditioningAugmentation({self.embed_dim} -> {self.c_dim}{relu})"

    def _checked_weight(self, kl_weight: Any) -> float:
        if isinstance(kl_weight, bool) or not isinstance(kl_weight, (int, float)):
            raise TypeError(f"{self!r}: kl_weight must be a number, got {type(kl_weight).__name__}")
        if not (math.isfinite(kl_weight) and kl_weight >= 0):
            raise ValueError(f"{self!r}: kl_weight must be a finite number >= 0, got {kl_weight}")
        return float(kl_weight)

    def mean(self, e: Any) -> Any:
        """mu(e), the centre of the code's distribution, (N, c_dim): no draw, and no cache
        touched (a pending backward still reads the last forward's), for a sampler that
        wants the deterministic code."""
        check_array(self, e, like=self.fc.weight.data, shape=("batch", self.embed_dim))
        a = e @ self.fc.weight.data.T + self.fc.bias.data  # steps 1-3 of forward, on mu
        if self.relu is not None:
            a = a * (a > 0).astype(a.dtype)
        return a[:, : self.c_dim]

    def forward(self, e: Any) -> Any:
        check_array(self, e, like=self.fc.weight.data, shape=("batch", self.embed_dim))
        a = self.fc.forward(e)  # 1. h = e W^T + b
        if self.relu is not None:
            a = self.relu.forward(a)  # 2. a = ReLU(h)
        mu, logvar = a[:, : self.c_dim], a[:, self.c_dim :]  # 3. the two halves
        std = get_array_module(e).exp(0.5 * logvar)  # 4. sigma = exp(log sigma^2 / 2)
        eps = self.generator(e).standard_normal(mu.shape, dtype=mu.dtype)
        self.save_for_backward(mu, logvar, std, eps)
        return mu + std * eps  # 5. c = mu + sigma * eps

    def kl(self) -> Any:
        """KL(N(mu, sigma^2) || N(0, I)) of the last forward, averaged over every element as
        the paper's code does: mean(mu^2 + sigma^2 - log sigma^2 - 1) / 2, a 0-d array."""
        mu, logvar, std, _ = require_forward(self, self._saved)
        return 0.5 * (mu * mu + std * std - logvar - 1).mean()  # 6. (sigma^2 = std * std)

    def backward(
        self,
        grad_out: Any,
        input_grad: bool = True,
        create_graph: bool = False,
        kl_weight: float | None = None,
    ) -> Any:
        """dL/de for L = L_rest(c) + kl_weight * KL; ``grad_out`` = dL_rest/dc.

        ``kl_weight`` defaults to the layer's own; the fc layer's gradients are added.
        """
        self.first_order_only(create_graph)
        mu, _, std, eps = self.saved(grad_out)  # exp(logvar) = std * std
        w = self.kl_weight if kl_weight is None else self._checked_weight(kl_weight)
        m = mu.size  # M = N c_dim: the KL is a mean over every element
        dmu = grad_out + (w / m) * mu  # dc/dmu = 1;  dKL/dmu = mu / M
        dlogvar = grad_out * (0.5 * std * eps) + (w / (2 * m)) * (std * std - 1)
        da = get_array_module(mu).concatenate([dmu, dlogvar], axis=1)  # undo the split
        if self.relu is not None:
            da = self.relu.backward(da)  # dh = da * [h > 0]
        return self.fc.backward(da, input_grad=input_grad)  # de = dh W; dW, db added
