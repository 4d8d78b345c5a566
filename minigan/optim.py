"""Optimizers: SGD (with momentum) and Adam, matching PyTorch's update rules.

An optimizer packs all its parameters into one flat array (and their gradients
into another): each ``Parameter.data`` and ``.grad`` becomes a reshaped view into
those buffers. The update then runs as a handful of whole-array operations, not
one Python loop iteration per parameter tensor, and the same code serves every
model. Consequences worth knowing:

- create the optimizer after ``model.to(...)`` (moving a model swaps its arrays);
- all parameters of one optimizer share a dtype and a backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from minigan.backend import get_array_module, to_host
from minigan.nn.module import Parameter


def flatten_parameters(params: list[Parameter]) -> tuple[Any, Any]:
    """Move the values and gradients of ``params`` into two flat arrays.

    Afterwards each ``param.data`` / ``param.grad`` is a view of a slice of the
    returned ``(data, grad)`` arrays, holding the same values as before.
    """
    xp = get_array_module(params[0].data)
    dtype = params[0].dtype
    total = sum(p.data.size for p in params)
    flat_data = xp.empty(total, dtype=dtype)
    flat_grad = xp.empty(total, dtype=dtype)
    offset = 0
    for p in params:
        size = p.data.size
        data_view = flat_data[offset : offset + size].reshape(p.shape)
        grad_view = flat_grad[offset : offset + size].reshape(p.shape)
        data_view[...] = p.data
        grad_view[...] = p.grad
        p.data, p.grad = data_view, grad_view
        offset += size
    return flat_data, flat_grad


class Optimizer:
    """Holds the parameters, their flat buffers and ``zero_grad``."""

    def __init__(self, params: Iterable[Parameter], lr: float):
        params = list(params)
        name = type(self).__name__
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: expected Parameter objects, got {type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears more than once")
        first = params[0].data
        for p in params:
            if get_array_module(p.data) is not get_array_module(first) or p.dtype != first.dtype:
                raise TypeError(
                    f"{name}: all parameters must share one backend and dtype; found "
                    f"{get_array_module(first).__name__} {first.dtype} and "
                    f"{get_array_module(p.data).__name__} {p.dtype}"
                )
        if not lr >= 0:
            raise ValueError(f"{name}: learning rate must be >= 0, got {lr}")
        self.params = params
        self.lr = float(lr)
        self.data, self.grad = flatten_parameters(params)

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def _load_buffers(self, state: dict[str, Any], buffers: dict[str, Any]) -> None:
        """Copy ``state[key]`` into each ``buffers[key]``, checking all of them first."""
        name = f"{type(self).__name__}.load_state_dict"
        for key, target in buffers.items():
            if key not in state:
                raise KeyError(
                    f"{name}: the state has no '{key}'; it is not a {type(self).__name__} state"
                )
            if np.shape(state[key]) != target.shape:
                raise ValueError(
                    f"{name}: '{key}' holds {np.shape(state[key])} values but this "
                    f"optimizer has {target.shape[0]} parameters: it was saved for a "
                    f"different model"
                )
        for key, target in buffers.items():
            target[...] = get_array_module(target).asarray(state[key])


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (heavy-ball) momentum.

        buf <- momentum * buf + g
        p   <- p - lr * buf

    With momentum 0 this is plain ``p <- p - lr * g``. Same rule as
    ``torch.optim.SGD`` (dampening 0, no Nesterov).
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must lie in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.buf = get_array_module(self.data).zeros_like(self.data)

    def step(self) -> None:
        if self.momentum:
            self.buf *= self.momentum
            self.buf += self.grad
            self.data -= self.lr * self.buf
        else:
            self.data -= self.lr * self.grad

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "buf": to_host(self.buf)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_buffers(state, {"buf": self.buf})
        self.lr, self.momentum = float(state["lr"]), float(state["momentum"])


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), step for step as ``torch.optim.Adam``.

    With g the gradient and t the step count (starting at 1):

        m <- b1 m + (1 - b1) g           running mean of g
        v <- b2 v + (1 - b2) g^2         running mean of g^2
        p <- p - lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps)

    m and v start at zero, so early on they are biased towards zero; dividing
    by 1 - b^t removes exactly that bias. The result: each parameter moves by
    about lr per step, whatever the scale of its gradient.
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        if not eps >= 0:
            raise ValueError(f"Adam: eps must be >= 0, got {eps}")
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)
        self.t = 0
        xp = get_array_module(self.data)
        self.m = xp.zeros_like(self.data)
        self.v = xp.zeros_like(self.data)
        self._scratch = xp.empty_like(self.data)  # reused each step: no temporaries

    def step(self) -> None:
        # Each line does one of the three formulas above, in place on the flat
        # buffers (out= everywhere), in PyTorch's order of operations.
        xp = get_array_module(self.data)
        b1, b2 = self.betas
        m, v, g, tmp = self.m, self.v, self.grad, self._scratch
        self.t += 1

        m *= b1  # m <- b1 m + (1 - b1) g
        m += xp.multiply(g, 1 - b1, out=tmp)

        v *= b2  # v <- b2 v + (1 - b2) g^2
        xp.multiply(g, g, out=tmp)
        v += xp.multiply(tmp, 1 - b2, out=tmp)

        step_size = self.lr / (1 - b1**self.t)  # p <- p - step_size * m / denom
        denom = xp.sqrt(v, out=tmp)
        denom /= math.sqrt(1 - b2**self.t)
        denom += self.eps
        self.data -= xp.multiply(xp.divide(m, denom, out=tmp), step_size, out=tmp)

    def state_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "t": self.t,
            "m": to_host(self.m),
            "v": to_host(self.v),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_buffers(state, {"m": self.m, "v": self.v})
        self.lr, self.eps, self.t = (
            float(state["lr"]),
            float(state["eps"]),
            int(state["t"]),
        )
        self.betas = (float(state["betas"][0]), float(state["betas"][1]))
