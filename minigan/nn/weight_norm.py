"""Weight normalisation (Salimans & Kingma 2016) for the fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.checks import check_array
from minigan.nn.linear import Linear
from minigan.nn.module import Module, Parameter


class WeightNormLinear(Module):
    """``y = x @ W.T + b`` with each weight row written as length times direction.

        W[j] = g[j] * v[j] / ||v[j]||        (one row j per output unit)

    g (``weight_g``) is the row's length and v (``weight_v``) its direction, so the
    optimizer moves the two separately: a step on v turns the row without
    changing its length, which conditions the gradient better (Salimans & Kingma,
    "Weight Normalization", 2016); Salimans et al. (2016) use it in the
    semi-supervised GAN's discriminator.

    Shapes:
        x: (batch, in_features)    v: (out_features, in_features)    g, b: (out_features,)
        y: (batch, out_features)

    Backward. Let G = dL/dW = (dL/dy)^T @ x, exactly as in ``Linear``; also
    dL/db = sum_batch dL/dy and dL/dx = dL/dy @ W. What is new is the map
    (g, v) -> W, taken one row at a time (drop the index j; n = ||v||, v^ = v / n):

        1. W = g v^                             dL/dg = sum_i G_i v^_i = G . v^
        2. v^ = v / n, with dn/dv = v / n = v^  dv^_i/dv_k = [i == k] / n - v_i v_k / n^3
                                                           = ([i == k] - v^_i v^_k) / n
        3. dL/dv_k = sum_i G_i g dv^_i/dv_k = (g / n) (G_k - (G . v^) v^_k)

    Compact, for all rows at once (G . v^ is one number per row, dL/dg itself):

        dL/dg = sum_i G[:, i] v[:, i] / ||v||                      (out,)
        dL/dv = g / ||v|| * (G - dL/dg * v^)                        (out, in)

    The bracket is G with its component along v^ removed: the gradient on v is
    perpendicular to v, because scaling v changes nothing (W depends on v's
    direction only). A row with v = 0 has no direction: W is then NaN, as in
    PyTorch's weight_norm.

    Initialisation as ``torch.nn.utils.parametrizations.weight_norm`` applied to a
    new ``nn.Linear``: v and b as ``Linear``'s (U(-k, k), k = 1/sqrt(in_features)),
    g = ||v|| per row, so that W = v at the start.

    Args: as ``Linear``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ):
        plain = Linear(in_features, out_features, rng=rng, dtype=dtype)  # the same init
        self.in_features = in_features
        self.out_features = out_features
        v = plain.weight.data
        self.weight_g = Parameter(np.sqrt((v * v).sum(axis=1)))
        self.weight_v = Parameter(v)
        self.bias = plain.bias

    def __repr__(self) -> str:
        return f"WeightNormLinear({self.in_features} -> {self.out_features})"

    def forward(self, x: Any) -> Any:
        v, g, b = self.weight_v.data, self.weight_g.data, self.bias.data
        check_array(self, x, like=v, shape=("batch", self.in_features))
        norm = get_array_module(v).sqrt((v * v).sum(axis=1))  # ||v||, one per row
        v_hat = v / norm[:, None]
        W = g[:, None] * v_hat
        y = x @ W.T
        y += b
        self.save_for_backward(x, W, v_hat, norm, output_shape=y.shape)
        return y

    def backward(self, grad_out: Any, input_grad: bool = True) -> Any:
        x, W, v_hat, norm = self.saved(grad_out)
        g, v, b, dy = self.weight_g, self.weight_v, self.bias, grad_out
        if g.requires_grad or v.requires_grad:
            G = dy.T @ x  # dL/dW, as in Linear
            dg = (G * v_hat).sum(axis=1)  # dL/dg = G . v^, one per row
            if g.requires_grad:
                g.grad += dg
            if v.requires_grad:
                v.grad += (g.data / norm)[:, None] * (G - dg[:, None] * v_hat)  # g/n (G - dg v^)
        if b.requires_grad:
            b.grad += dy.sum(axis=0)
        return dy @ W if input_grad else None  # dL/dx = dL/dy W
