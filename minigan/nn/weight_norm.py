"""Weight normalisation (Salimans & Kingma 2016) for the fully connected layer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, check_sizes
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
    g = ||v|| per row, so that W = v at the start. ``init_from_data`` then offers
    Salimans & Kingma's data-dependent initialisation (see there).

    ``v_std``: draw v ~ N(0, v_std^2) instead. Why the scale of v matters, though W
    does not depend on it: an optimizer such as Adam moves each entry of v by about
    lr per step, whatever its gradient's scale, so the direction v^ turns by about
    lr / |v_entry| per step: the smaller v starts, the faster the direction moves.
    Salimans et al.'s code starts v at N(0, 0.1^2) with lr 0.003; ``Linear``'s init
    (entries within 1/sqrt(in_features), 0.036 for 784 inputs) turns it ~5 times faster.

    ``train_scale=False``: g is no parameter but a fixed buffer (still in
    ``state_dict``, under the same name), set once by ``init_from_data``; only v and
    b learn. Why: a layer followed by noise of a fixed std (``GaussianNoise``) could
    otherwise grow g until the noise no longer matters; with g fixed after the
    data-dependent init, its units keep about unit scale and the noise keeps its
    strength. Salimans et al.'s MNIST discriminator trains g in its last layer only.

    Args: as ``Linear``, and ``v_std``, ``train_scale`` (above).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
        v_std: float | None = None,
        train_scale: bool = True,
    ):
        shown = f"({in_features!r} -> {out_features!r})"
        check_sizes("WeightNormLinear", shown, in_features, out_features)
        plain = Linear(in_features, out_features, rng=rng, dtype=dtype)  # the same init
        self.in_features = in_features
        self.out_features = out_features
        v = plain.weight.data
        if v_std is not None:
            if not (math.isfinite(v_std) and v_std > 0):
                raise ValueError(f"WeightNormLinear: v_std must be a number > 0, got {v_std}")
            rng = np.random.default_rng() if rng is None else rng
            v = (v_std * rng.standard_normal(v.shape)).astype(dtype)
        g = np.sqrt((v * v).sum(axis=1))
        self.train_scale = bool(train_scale)
        if self.train_scale:
            self.weight_g = Parameter(g)
        else:  # a buffer: saved, loaded and moved with the layer, moved by no optimizer
            self.weight_g = g
            self.buffer_names = ("weight_g",)
        self.weight_v = Parameter(v)
        self.bias = plain.bias

    def __repr__(self) -> str:
        fixed = "" if self.train_scale else ", train_scale=False"
        return f"WeightNormLinear({self.in_features} -> {self.out_features}{fixed})"

    @property
    def scale(self) -> Any:
        """g, the rows' lengths (out_features,): the parameter's data or the fixed buffer."""
        return self.weight_g.data if self.train_scale else self.weight_g

    def forward(self, x: Any) -> Any:
        v, g, b = self.weight_v.data, self.scale, self.bias.data
        check_array(self, x, like=v, shape=("batch", self.in_features))
        norm = get_array_module(v).sqrt((v * v).sum(axis=1))  # ||v||, one per row
        v_hat = v / norm[:, None]
        W = g[:, None] * v_hat
        y = x @ W.T
        y += b
        self.save_for_backward(x, W, v_hat, norm, output_shape=y.shape)
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        x, W, v_hat, norm = self.saved(grad_out)
        v, b, dy = self.weight_v, self.bias, grad_out
        train_g = self.train_scale and self.weight_g.requires_grad
        if train_g or v.requires_grad:
            G = dy.T @ x  # dL/dW, as in Linear
            dg = (G * v_hat).sum(axis=1)  # dL/dg = G . v^, one per row
            if train_g:
                self.weight_g.grad += dg
            if v.requires_grad:
                v.grad += (self.scale / norm)[:, None] * (
                    G - dg[:, None] * v_hat
                )  # g/n (G - dg v^)
        if b.requires_grad:
            b.grad += dy.sum(axis=0)
        return dy @ W if input_grad else None  # dL/dx = dL/dy W

    def init_from_data(self, x: Any) -> Any:
        """Data-dependent initialisation (Salimans & Kingma 2016, section 3): set g and b so
        that each output unit has mean 0 and variance 1 over the batch ``x``; return it.

        With v kept (the direction), let t = x v^T / ||v|| be the unit-length
        pre-activations (one column per unit j), and mu_j, s_j their mean and
        standard deviation over the batch. Then

            g_j = 1 / s_j,   b_j = -mu_j / s_j    give    y = g t + b = (t - mu) / s,

        every unit of ``x``'s batch standardised, like a batch norm computed once and
        frozen into the weights. Why: each ReLU after it is then on for about half
        the batch (none dead, none always on), and the scale of the activations
        neither grows nor shrinks from layer to layer, whatever the initial v; run
        layer after layer (``data_dependent_init``), the whole network starts well
        scaled on real data. Salimans et al.'s semi-supervised GAN starts its
        discriminator this way.

        The variance is floored at 1e-12 (s >= 1e-6), so a unit constant over the
        batch gets a large but finite g instead of a division by zero. Nothing is
        read back to the host: the new g and b are computed where x lives.

        Args:
            x: a batch (batch, in_features), at least 2 rows; the layer's dtype.

        Returns:
            y: the layer's output on ``x`` with the new g and b, (batch, out_features).
        """
        v = self.weight_v.data
        check_array(self, x, like=v, shape=("batch", self.in_features))
        if x.shape[0] < 2:
            raise ValueError(
                f"{self!r}: init_from_data needs a batch of 2 or more to measure a "
                f"variance, got {x.shape[0]}"
            )
        xp = get_array_module(v)
        t = x @ (v / xp.sqrt((v * v).sum(axis=1))[:, None]).T  # unit-length rows: g = 1
        mu = t.mean(axis=0)
        s = xp.sqrt(xp.maximum(((t - mu) ** 2).mean(axis=0), 1e-12))
        self.scale[...] = 1 / s
        self.bias.data[...] = -mu / s
        return (t - mu) / s


def data_dependent_init(network: Any, x: Any) -> Any:
    """Run ``x`` through ``network`` (a ``Sequential``), initialising each
    ``WeightNormLinear`` from the batch that reaches it (``init_from_data``); every
    other layer runs its ``forward`` as in training (noise layers add their noise,
    as in Salimans et al.'s code). Returns the network's output on ``x``.

    Layer by layer, in order: each layer's statistics are measured on what the
    already initialised layers below it give, so the standardisation holds for
    the network as it will start training.
    """
    for layer in network:
        x = layer.init_from_data(x) if isinstance(layer, WeightNormLinear) else layer.forward(x)
    return x
