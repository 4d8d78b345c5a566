"""The fully connected layer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigan.nn.checks import check_array, check_sizes
from minigan.nn.module import Module, Parameter


class Linear(Module):
    """An affine map: ``y = x @ W.T + b``.

    Shapes:
        x: (batch, in_features)    W: (out_features, in_features)
        y: (batch, out_features)   b: (out_features,)

    Backward, with g = dL/dy of shape (batch, out_features):

        dL/dW = g.T @ x       (out, in): each weight W[j, i] meets x[:, i] on its way
                                to y[:, j], once per example, so the example terms add up
        dL/db = sum_batch g   (out,): b is added to every row of y
        dL/dx = g @ W         (batch, in): x[:, i] feeds every output j through W[j, i]

    Double backward (see ``minigan.nn.module``), with gg = dL/d(dx) of shape
    (batch, in_features): backward computed dx = dy W, a function of dy and W
    only, linear in each. Entry by entry, dx[n, i] = sum_j dy[n, j] W[j, i], so

        dL/d(dy)[n, j] = sum_i gg[n, i] W[j, i]    ->  gg_out = gg @ W.T   (batch, out)
        dL/dW[j, i]   += sum_n dy[n, j] gg[n, i]   ->  dL/dW += dy.T @ gg  (out, in)
        dL/db          : none, b does not appear in dx = dy W
        dL/dx          : none, x does not appear in it either (returned as None)

    gg_out is the forward map without the bias (gg is a batch of "inputs"), and
    the W term is backward's dL/dW = g.T @ x with the roles of g and x taken by dy
    and gg. Needs backward's dy: ``backward(dy, create_graph=True)`` keeps it.

    Initialisation follows PyTorch's ``nn.Linear``: W and b are drawn from
    U(-k, k) with k = 1/sqrt(in_features), which keeps the output's variance close
    to the input's when a network is stacked.

    Args:
        in_features, out_features: sizes of x's and y's last dimension.
        rng: a ``numpy.random.Generator`` for the initial values; pass a seeded one
            for reproducible models (default: a freshly seeded one).
        dtype: the parameters' dtype; the layer computes in it (float32 by default,
            float64 for gradient checks).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ):
        check_sizes("Linear", f"({in_features!r} -> {out_features!r})", in_features, out_features)
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1.0 / math.sqrt(in_features)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(
            rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        )
        self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(dtype))

    def __repr__(self) -> str:
        return f"Linear({self.in_features} -> {self.out_features})"

    def forward(self, x: Any) -> Any:
        check_array(self, x, like=self.weight.data, shape=("batch", self.in_features))
        y = x @ self.weight.data.T
        y += self.bias.data  # in place: one (batch, out) array instead of two
        self.save_for_backward(x, output_shape=y.shape)  # dL/dW needs x
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        x, W, b, g = self.saved(grad_out), self.weight, self.bias, grad_out
        if create_graph:
            self.save_for_double_backward(g, input_shape=x.shape)  # dL/dW will need dy
        if W.requires_grad:
            W.grad += g.T @ x  # dL/dW = g^T x
        if b.requires_grad:
            b.grad += g.sum(axis=0)  # dL/db = sum over the batch of g
        return g @ W.data if input_grad else None  # dL/dx = g W

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        dy, W, gg = self.saved_grad_out(grad_grad_in), self.weight, grad_grad_in
        if W.requires_grad:
            W.grad += dy.T @ gg  # dx = dy W, so dL/dW += dy^T gg
        return gg @ W.data.T, None  # dL/d(dy) = gg W^T; x is not in dx = dy W
