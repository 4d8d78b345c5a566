"""Random regularisers, active in training only: Dropout and GaussianNoise.

Both draw their randomness from a generator the caller passes in (``rng=``), so a
seeded run is reproducible on either backend: ``numpy.random.default_rng(seed)``
for NumPy arrays, ``backend.default_rng(seed)`` (a ``cupy.random.Generator``) for
CuPy arrays. They use only methods both generators have (``random``,
``standard_normal``). Without one, a fresh unseeded generator of the input's
backend is made at the first call, as PyTorch draws from its unseeded global one.

Both have a training mode (the default) and an evaluation mode, in which they are
the identity: ``layer.eval()``, ``layer.train()``, or the ``training`` flag.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.checks import check_array
from minigan.nn.module import Module


class _NoiseLayer(Module):
    """What Dropout and GaussianNoise share: the generator (the modes are ``Module``'s)."""

    def __init__(self, rng: Any) -> None:
        if rng is not None and not all(hasattr(rng, m) for m in ("random", "standard_normal")):
            raise TypeError(
                f"{type(self).__name__}: rng must be a random generator such as "
                f"numpy.random.default_rng(seed) or backend.default_rng(seed), "
                f"got {type(rng).__name__}"
            )
        self.rng = rng

    def generator(self, x: Any) -> Any:
        """The layer's generator, checked to draw arrays of ``x``'s backend."""
        xp = get_array_module(x)
        if self.rng is None:
            self.rng = xp.random.default_rng()
        draws_numpy = isinstance(self.rng, np.random.Generator)
        if draws_numpy != (xp is np):
            rng_kind, x_kind = ("numpy", "cupy") if draws_numpy else ("cupy", "numpy")
            raise TypeError(
                f"{self!r}: rng draws {rng_kind} arrays but the input is a {x_kind} array; "
                f"pass rng=get_backend('{x_kind}').default_rng(seed)"
            )
        return self.rng


class Dropout(_NoiseLayer):
    """Inverted dropout: in training, zero each entry with probability p, scale the rest.

        m = [u >= p] / (1 - p)   with u ~ U[0, 1) drawn per entry: kept with
                                 probability 1 - p, and then scaled by 1 / (1 - p)
        y = x * m                (training)
        y = x                    (evaluation)

    Why the scaling ("inverted" dropout): E[m] = (1 - p) / (1 - p) = 1, so each
    unit's expected output in training equals its output in evaluation, and
    evaluation needs no rescaling at all. PyTorch's ``nn.Dropout`` does the same.
    p = 1 drops everything (y = 0, as in PyTorch); p = 0 keeps everything.

    Backward: for a fixed mask y is linear in x, elementwise, so

        dL/dx = dL/dy * m        (training: dropped entries get no gradient)
        dL/dx = dL/dy            (evaluation)

    The mask is drawn in forward and saved for backward (the same m both ways).

    Shapes: any; y and dL/dx have x's shape and dtype.

    Args:
        p: the probability of zeroing an entry, in [0, 1].
        rng: the generator for the masks (see the module docstring).
    """

    def __init__(self, p: float = 0.5, *, rng: Any = None) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p is a probability and must lie in [0, 1], got {p}")
        super().__init__(rng)
        self.p = float(p)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        if not self.training:
            self.save_for_backward(x, None)  # no mask; x only to check dL/dy against
            return x
        u = self.generator(x).random(x.shape, dtype=x.dtype)
        scale = 1 / (1 - self.p) if self.p < 1 else 0.0  # p = 1: everything dropped
        mask = (u >= self.p).astype(x.dtype) * scale  # m
        self.save_for_backward(x, mask)
        return x * mask

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        _, mask = self.saved(grad_out)
        return grad_out if mask is None else grad_out * mask  # dL/dx = dL/dy * m


class GaussianNoise(_NoiseLayer):
    """Additive Gaussian noise in training: ``y = x + std * n``, n ~ N(0, 1) per entry.

    In evaluation mode ``y = x``. Salimans et al. (2016) put such layers in their
    MLP discriminator (std 0.3 on the input, 0.5 after each hidden layer): the
    noise keeps D from resting on exact pixel values and fine features of the
    training set, which it would otherwise memorise from few labels.

    Backward: n is drawn independently of x, so dy/dx = I (the identity) and

        dL/dx = dL/dy            (both modes)

    The noise shifts where the layers after it are evaluated, which their own
    saved inputs already reflect; it does not change how y varies with x. So
    nothing is saved but what checks dL/dy, and backward returns dL/dy itself.

    Shapes: any; y and dL/dx have x's shape and dtype.

    Args:
        std: the noise's standard deviation, >= 0.
        rng: the generator for the noise (see the module docstring).
    """

    def __init__(self, std: float, *, rng: Any = None) -> None:
        if not (math.isfinite(std) and std >= 0):
            raise ValueError(f"GaussianNoise: std must be a finite number >= 0, got {std}")
        super().__init__(rng)
        self.std = float(std)

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std})"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        self.save_for_backward(x)  # only to check dL/dy against (backend, dtype, shape)
        if not self.training:
            return x
        noise = self.generator(x).standard_normal(x.shape, dtype=x.dtype)
        return x + self.std * noise

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        self.saved(grad_out)
        return grad_out  # dL/dx = dL/dy: the noise does not depend on x
