"""Maxout: the largest of k affine pieces (Goodfellow, Warde-Farley, Mirza, Courville and
Bengio 2013, "Maxout Networks").

The discriminator of the 2-D mode-collapse benchmarks is three maxout layers of 200 units
with 5 pieces each, then a linear output (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et
al. 2018, whose code builds it from Blocks' ``LinearMaxout``). A maxout unit learns its
own convex, piecewise-linear activation: with K pieces it can be ReLU (pieces w.x + b
and 0), |w.x| (pieces w.x and -w.x), or any convex function approximated by k lines.

**Forward.** Unit j of the output has K affine pieces z_jk = x W_jk^T + b_jk (k = 0 ..
K - 1) and keeps the largest:

    y[n, j] = max_k z[n, j, k],     z[n, j, k] = sum_i x[n, i] W[j k, i] + b[j k]

The weights are stored as ONE Linear(in, out * K): W of shape (out * K, in), b of
shape (out * K,), and piece k of unit j is row ``j * K + k`` (the pieces of a unit
are neighbours). So z is the Linear's output (N, out * K) viewed as (N, out, K),
maxed over the last axis: the layout of Blocks' ``LinearMaxout`` (a Linear to
output_dim * num_pieces, then its ``Maxout`` brick, which reshapes the last axis to
(output_dim, num_pieces) and takes the max over pieces), and of the PyTorch twin
``F.linear(x, W, b).view(N, out, K).max(dim=2)``.

**Backward.** Away from ties, the max is locally the one winning piece: a small change
of x or of the weights does not change which piece wins, so y[n, j] = z[n, j, k*(n, j)]
there, and its derivative is that piece's. With m[n, j, k] = 1 for the winner
k* = argmax_k z[n, j, k] and 0 for the others, and g = dL/dy:

    dL/dz[n, j, k] = m[n, j, k] g[n, j]     (N, out, K): g routed to the winner only
    then, with dz = that array viewed as (N, out * K), Linear's backward:
    dL/dW = dz^T x     dL/db = sum_n dz     dL/dx = dz W

At a tie (two pieces equal and largest) the max has no derivative; like ``argmax`` (and
PyTorch's ``max(dim)`` in practice), the FIRST largest piece wins and takes all of g: a
subgradient. Ties have probability zero with real-valued weights; gradient checks keep
away from them, since a central difference across a kink measures neither side.

**Double backward** (see ``minigan.nn.module``; WGAN-GP's penalty on a maxout critic).
Backward computed dx = B(dy) = (m * dy[..., None]).view(N, out * K) @ W. The mask m is
piecewise constant in x and in the weights (it changes only at ties), so away from ties
B is linear in dy, linear in W, and does not depend on x or b at all. Written entry by
entry, dx[n, i] = sum_{j,k} m[n, j, k] dy[n, j] W[j k, i]; with gg = dL/d(dx), (N, in):

    dL/d(dy)[n, j] = sum_k m[n, j, k] sum_i gg[n, i] W[j k, i]
                   -> gg_out = ((gg @ W^T).view(N, out, K) * m).sum over k
                      the forward's linear map of gg (no bias), read at the winners
    dL/dW[j k, i] += sum_n m[n, j, k] dy[n, j] gg[n, i]  ->  dL/dW += dz^T gg
                      backward's dL/dW = dz^T x with gg in the place of x
    dL/db          : none, b is not in dx
    dL/dx          : none (returned as None): x enters dx only through m, which is
                     constant away from ties: a piecewise-linear layer has no f''

The same as Linear's double backward with W replaced by the winners' rows. What it
keeps: forward's x and m, and (with ``create_graph``) backward's dy.

Initialisation: as PyTorch's ``nn.Linear(in, out * K)`` (W and b from U(-s, s),
s = 1/sqrt(in)), since PyTorch has no Maxout of its own. The papers' 2-D networks
draw W from N(0, 0.02^2) and set b = 0 (PacGAN's code: ``IsotropicGaussian(0.02)``,
``Constant(0.0)``); a model that follows them re-initialises the layer's weights.

Args:
    in_features: size of x's last dimension.
    out_features: number of maxout units (y's last dimension).
    pieces: K, the affine pieces per unit (the papers' critic: 5); K = 1 is a Linear.
    rng: a ``numpy.random.Generator`` for the initial values (default: freshly seeded).
    dtype: the parameters' dtype (float32 by default, float64 for gradient checks).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, check_sizes
from minigan.nn.module import Module, Parameter


class Maxout(Module):
    """``y[n, j] = max_k (x W_jk^T + b_jk)``: the largest of ``pieces`` affine maps.

    Shapes:
        x: (batch, in_features)               W: (out_features * pieces, in_features)
        y: (batch, out_features)              b: (out_features * pieces,)

    Row ``j * pieces + k`` of W (and entry of b) is piece k of unit j. Backward sends
    dL/dy to the winning piece of each unit only (the first one at a tie); see the
    module docstring for the derivation and the double backward.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        pieces: int,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ):
        shown = f"({in_features!r} -> {out_features!r}, pieces={pieces!r})"
        check_sizes("Maxout", shown, in_features, out_features, pieces)
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1.0 / math.sqrt(in_features)
        rows = out_features * pieces
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        self.weight = Parameter(rng.uniform(-bound, bound, (rows, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, rows).astype(dtype))

    def __repr__(self) -> str:
        return f"Maxout({self.in_features} -> {self.out_features}, pieces={self.pieces})"

    def forward(self, x: Any) -> Any:
        check_array(self, x, like=self.weight.data, shape=("batch", self.in_features))
        xp = get_array_module(x)
        n, k = x.shape[0], self.pieces
        z = x @ self.weight.data.T
        z += self.bias.data
        z = z.reshape(n, self.out_features, k)  # z[n, j, k]: piece k of unit j
        winner = z.argmax(axis=2)  # (N, out): the first largest piece at a tie
        mask = (xp.arange(k) == winner[:, :, None]).astype(x.dtype)  # m[n, j, k]
        y = z.max(axis=2)
        self.save_for_backward(x, mask, output_shape=y.shape)  # dW needs x; all need m
        return y

    def _route(self, g: Any, mask: Any) -> Any:
        """dL/dz viewed as (N, out * k): ``g[n, j]`` at the winning piece, 0 elsewhere."""
        return (mask * g[:, :, None]).reshape(len(g), self.out_features * self.pieces)

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        x, mask = self.saved(grad_out)
        W, b = self.weight, self.bias
        if create_graph:
            self.save_for_double_backward(grad_out, input_shape=x.shape)  # dW will need dy
        dz = self._route(grad_out, mask)  # dL/dz = m * g
        if W.requires_grad:
            W.grad += dz.T @ x  # dL/dW = dz^T x
        if b.requires_grad:
            b.grad += dz.sum(axis=0)  # dL/db = sum over the batch of dz
        return dz @ W.data if input_grad else None  # dL/dx = dz W

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        dy, gg, W = self.saved_grad_out(grad_grad_in), grad_grad_in, self.weight
        _, mask = self._saved
        if W.requires_grad:
            W.grad += self._route(dy, mask).T @ gg  # dx = dz W, so dL/dW += dz^T gg
        n, k = len(gg), self.pieces
        pieces = (gg @ W.data.T).reshape(n, self.out_features, k)  # gg through every piece
        return (pieces * mask).sum(axis=2), None  # ... read at the winners; no x in dx
