"""Batch normalisation: BatchNorm1d (N, C) and BatchNorm2d (N, C, H, W), as in PyTorch.

For each channel, over the m values it has in the batch (m = N for BatchNorm1d,
N*H*W for BatchNorm2d: every pixel of every image is a sample of its channel):

    mu    = mean(x)                        1. the batch mean
    xc    = x - mu                         2. centre
    var   = mean(xc**2)                    3. the (biased) batch variance
    std   = sqrt(var + eps)                4.
    inv   = 1 / std                        5.
    xhat  = xc * inv                       6. normalised: mean 0, variance ~1
    y     = gamma * xhat + beta            7. scale and shift, both learned

Why: each layer's input keeps the same scale whatever the layers before it learn, so
larger learning rates work and, in a GAN, the generator does not collapse as easily
(Radford et al. 2016 put it in every layer but G's output and D's input).

**Backward, one step at a time** (CS231n style: walk the forward list in reverse; each
line undoes the numbered forward line; sums run over the m values of a channel; a
variable used twice collects both gradients):

    7. dbeta  = sum(g)        dgamma = sum(g * xhat)        dxhat = g * gamma
    6. dxc    = dxhat * inv                       (xc's first use)
       dinv   = sum(dxhat * xc)
    5. dstd   = -dinv / std**2
    4. dvar   = dstd / (2 * std)
    3. dxc   += dvar * 2 * xc / m                 (xc's second use, through var)
    2. dx     = dxc           dmu = -sum(dxc)
    1. dx    += dmu / m                           (every x_i moved the mean by 1/m)

``batchnorm_backward_staged`` runs exactly these lines (it is tested against the
compact form below).

**The compact form.** Put the steps together. From 5-4: dvar = -dinv * inv**3 / 2.
Since sum(xc) = 0, step 2's dmu only sees step 6's part: dmu = -inv * sum(dxhat). With
xc = xhat * std and sum(dxhat * xc) = std * sum(dxhat * xhat):

    dx = inv * dxhat  -  inv * xhat * sum(dxhat * xhat) / m  -  inv * sum(dxhat) / m

       = inv / m * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))

Read it as: the gradient dxhat, minus its mean (mu removed any shift), minus its
component along xhat (the variance removed any rescaling), times inv. Since
dxhat = gamma * g with gamma constant over a channel, its two sums are gamma * sum(g)
and gamma * sum(g * xhat): exactly dbeta and dgamma. So

    dx = gamma * inv / m * (m * g - dbeta - xhat * dgamma)

``channel_gradients`` (what ``backward`` calls) uses this: two sums serve all three
gradients, and dx takes four elementwise passes instead of a dozen.

**Layout.** The layer works on each channel's values as one row of a (C, m) array
(``to_rows`` for BatchNorm2d, the transpose for BatchNorm1d), so every sum above is
a reduction along contiguous memory and every per-channel number broadcasts as a
(C, 1) column. The output is handed back as a view in the input's shape. For a
convolution's output, whose memory already is in rows form, the round trip costs
nothing; any other input is copied once. Both passes are module-level functions on
these rows, ``normalise`` (steps 1-7) and ``channel_gradients`` (the compact backward).

**Evaluation mode** (``.eval()``) normalises with the running statistics instead, so an
example's output no longer depends on the rest of its batch; then xhat is an affine
map of x and dx = g * gamma * inv, with inv from the running variance.

Running statistics, as PyTorch updates them in training mode (momentum 0.1):

    running_mean <- (1 - momentum) * running_mean + momentum * mu
    running_var  <- (1 - momentum) * running_var  + momentum * var * m / (m - 1)

(the unbiased variance for the running estimate, the biased one to normalise). With a
single value per channel (batch 1 in BatchNorm1d) the variance is undefined: training
mode raises, as PyTorch does; evaluation mode works.

Parameters ``weight`` (gamma, ones) and ``bias`` (beta, zeros), buffers
``running_mean``, ``running_var`` and ``num_batches_tracked``: PyTorch's names, so a
state_dict moves between the two.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, check_size
from minigan.nn.conv import from_rows, to_rows
from minigan.nn.module import Module, Parameter


def row_dots(a: Any, b: Any) -> Any:
    """(C, m), (C, m) -> (C, 1): each row's sum(a * b), i.e. ``(a * b).sum(axis=1, keepdims=True)``.

    Fast path: one batched dot product, (C, 1, m) @ (C, m, 1), which reads a and b once
    and makes no (C, m) temporary for a * b.
    """
    return get_array_module(a).matmul(a[:, None, :], b[:, :, None])[:, :, 0]


def normalise(
    x_rows: Any, eps: float, gamma: Any = None, beta: Any = None, running: Any = None
) -> tuple[Any, Any, Any, Any, Any]:
    """Steps 1-7 of the module docstring on channel rows: (y, xhat, inv, mu, var).

    Args:
        x_rows: (C, m), each channel's m values in one row.
        eps: added to the variance.
        gamma, beta: (C,) scale and shift, or None (no step 7: y is xhat).
        running: None to normalise with the batch's statistics (training), or the
            pair (running_mean, running_var), (C,) each (evaluation; mu, var: None).

    Returns:
        y and xhat (C, m); inv, mu, var (C, 1): what backward and the running
        statistics need.
    """
    xp = get_array_module(x_rows)
    if running is None:
        mu = x_rows.mean(axis=1, keepdims=True)  # 1.
        xc = x_rows - mu  # 2.
        var = row_dots(xc, xc) / x_rows.shape[1]  # 3. mean(xc**2)
        inv = 1 / xp.sqrt(var + eps)  # 4. and 5.
        xhat = xc * inv  # 6.
    else:
        mu = var = None
        running_mean, running_var = running
        inv = 1 / xp.sqrt(running_var[:, None] + eps)
        xhat = (x_rows - running_mean[:, None]) * inv
    y = xhat if gamma is None else xhat * gamma[:, None] + beta[:, None]  # 7.
    return y, xhat, inv, mu, var


def channel_gradients(
    g: Any, xhat: Any, inv: Any, gamma: Any, training: bool, input_grad: bool
) -> tuple[Any, Any, Any]:
    """The compact backward on channel rows: (dx or None, dbeta, dgamma).

    Args:
        g: dL/dy as rows (C, m); xhat, inv: what ``normalise`` returned.
        gamma: (C,), or None (no scale); training: whether xhat came from the batch's
            statistics; input_grad: False to skip dx.

    Returns:
        dx (C, m) (None unless ``input_grad``), sum(g) and sum(g * xhat) per row, (C, 1).
    """
    m = g.shape[1]
    sum_g = g.sum(axis=1, keepdims=True)  # dbeta
    sum_g_xhat = row_dots(g, xhat)  # dgamma
    if not input_grad:
        return None, sum_g, sum_g_xhat
    scale = inv if gamma is None else gamma[:, None] * inv  # gamma * inv
    if not training:  # xhat = (x - running_mean) * inv: an affine map of x
        return g * scale, sum_g, sum_g_xhat
    # dx = gamma * inv / m * (m * g - sum(g) - xhat * sum(g * xhat))
    dx = (g - xhat * (sum_g_xhat / m) - sum_g / m) * scale
    return dx, sum_g, sum_g_xhat


class _BatchNorm(Module):
    """The shared code; subclasses say how each channel's values become one row (C, m)."""

    axes: tuple[int, ...] = ()  # the input axes of a channel's values (batchnorm_backward_staged)
    dims: tuple[str, ...] = ()  # the expected input shape, for messages
    buffer_names = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        *,
        dtype: Any = np.float32,
    ):
        name = type(self).__name__
        self.num_features = check_size(name, "num_features", num_features)
        if not eps > 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must lie in [0, 1], got {momentum}")
        self.eps, self.momentum = float(eps), float(momentum)
        c = self.num_features
        self.weight = Parameter(np.ones(c, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(c, dtype=dtype)) if affine else None
        self.running_mean = np.zeros(c, dtype=dtype)
        self.running_var = np.ones(c, dtype=dtype)
        self.num_batches_tracked = np.zeros((), dtype=np.int64)

    def __repr__(self) -> str:
        extra = "" if self.weight is not None else ", affine=False"
        return f"{type(self).__name__}({self.num_features}{extra})"

    def to_channel_rows(self, a: Any) -> Any:
        """An input-shaped array -> (C, m): each channel's m values in one row."""
        raise NotImplementedError

    def from_channel_rows(self, rows: Any, shape: tuple[int, ...]) -> Any:
        """``to_channel_rows``'s inverse, as a view: (C, m) -> ``shape``."""
        raise NotImplementedError

    def forward(self, x: Any) -> Any:
        check_array(
            self, x, like=self.running_mean, shape=("batch", self.num_features, *self.dims[2:])
        )
        x_rows = self.to_channel_rows(x)
        m = x_rows.shape[1]  # values per channel
        if self.training and m < 2:
            raise ValueError(
                f"{self!r}: expected more than 1 value per channel when training, got "
                f"input {tuple(x.shape)}; use a batch of 2 or more, or call .eval() to "
                f"normalise with the running statistics"
            )
        gamma, beta = (None, None) if self.weight is None else (self.weight.data, self.bias.data)
        running = None if self.training else (self.running_mean, self.running_var)
        y, xhat, inv, mu, var = normalise(x_rows, self.eps, gamma, beta, running)
        if self.training:
            self._update_running_stats(mu.ravel(), var.ravel(), m)
        # Backward needs xhat and inv (not x): both forms of dx are written in them.
        self.save_for_backward(xhat, inv, self.training, output_shape=x.shape)
        return self.from_channel_rows(y, x.shape)

    def _update_running_stats(self, mu: Any, var: Any, m: int) -> None:
        """PyTorch's exponential moving averages, the variance unbiased (m / (m - 1))."""
        a = self.momentum
        self.running_mean *= 1 - a
        self.running_mean += a * mu
        self.running_var *= 1 - a
        self.running_var += (a * m / (m - 1)) * var
        self.num_batches_tracked += 1

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        (xhat, inv, training), gamma, beta = self.saved(grad_out), self.weight, self.bias
        g = self.to_channel_rows(grad_out)
        weight = None if gamma is None else gamma.data
        dx, sum_g, sum_g_xhat = channel_gradients(g, xhat, inv, weight, training, input_grad)
        if beta is not None and beta.requires_grad:
            beta.grad += sum_g.ravel()  # dbeta
        if gamma is not None and gamma.requires_grad:
            gamma.grad += sum_g_xhat.ravel()  # dgamma
        return None if dx is None else self.from_channel_rows(dx, grad_out.shape)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of features: input (N, C), statistics over the batch.

    See the module docstring for the math. As ``torch.nn.BatchNorm1d`` on 2-D input.
    """

    axes = (0,)
    dims = ("batch", "num_features")

    def to_channel_rows(self, a: Any) -> Any:
        return a.T  # (N, C) -> (C, N), a view

    def from_channel_rows(self, rows: Any, shape: tuple[int, ...]) -> Any:
        return rows.T


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of channels: input (N, C, H, W), statistics over N, H and W.

    See the module docstring for the math. As ``torch.nn.BatchNorm2d``.
    """

    axes = (0, 2, 3)
    dims = ("batch", "num_features", "height", "width")

    def to_channel_rows(self, a: Any) -> Any:
        return to_rows(a)  # (N, C, H, W) -> (C, H*W*N), the convolutions' layout

    def from_channel_rows(self, rows: Any, shape: tuple[int, ...]) -> Any:
        n, _, h, w = shape
        return from_rows(rows, n, h, w)


def batchnorm_backward_staged(
    g: Any, x: Any, gamma: Any, eps: float, axes: tuple[int, ...]
) -> tuple[Any, Any, Any]:
    """The training-mode backward pass step by step, as the module docstring lists it.

    For learning and for testing ``backward``'s compact form; ``gamma`` is already
    shaped to broadcast. Returns (dx, dgamma, dbeta).
    """
    xp = get_array_module(x)
    m = x.size // gamma.size
    # forward, keeping every intermediate
    mu = x.mean(axis=axes, keepdims=True)  # 1.
    xc = x - mu  # 2.
    var = (xc**2).mean(axis=axes, keepdims=True)  # 3.
    std = xp.sqrt(var + eps)  # 4.
    inv = 1 / std  # 5.
    xhat = xc * inv  # 6.
    # backward, in reverse
    dbeta = g.sum(axis=axes)  # 7.
    dgamma = (g * xhat).sum(axis=axes)
    dxhat = g * gamma
    dxc = dxhat * inv  # 6.
    dinv = (dxhat * xc).sum(axis=axes, keepdims=True)
    dstd = -dinv / std**2  # 5.
    dvar = dstd / (2 * std)  # 4.
    dxc = dxc + dvar * 2 * xc / m  # 3.
    dx = dxc  # 2.
    dmu = -dxc.sum(axis=axes, keepdims=True)
    dx = dx + dmu / m  # 1.
    return dx, dgamma, dbeta
