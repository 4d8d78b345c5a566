"""Elementwise activations: ReLU, LeakyReLU, Tanh, Sigmoid.

Each maps every element on its own, y_i = f(x_i), so its Jacobian is diagonal and
the backward pass is an elementwise product: dL/dx = dL/dy * f'(x). Every layer
caches whatever gives f' most cheaply: a mask, or the output itself.
Shapes: any input shape; the output and both gradients have the same shape.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, require_forward
from minigan.nn.module import Module


class ReLU(Module):
    """``y = max(x, 0)``;  ``dL/dx = dL/dy * [x > 0]``.

    The derivative at exactly 0 is taken as 0, as PyTorch does.
    """

    def __init__(self) -> None:
        self.positive = None  # the mask [x > 0], as 0.0 / 1.0 in x's dtype

    def __repr__(self) -> str:
        return "ReLU()"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        # A multiply by the mask is several times faster in NumPy than where().
        self.positive = (x > 0).astype(x.dtype)
        return x * self.positive

    def backward(self, grad_out: Any, input_grad: bool = True) -> Any:
        positive = require_forward(self, self.positive)
        check_array(self, grad_out, like=positive, shape=positive.shape, name="grad_out")
        return grad_out * positive if input_grad else None


class LeakyReLU(Module):
    """``y = x`` for x > 0, ``y = a * x`` otherwise (a = ``negative_slope``).

    ``dL/dx = dL/dy * (a + (1 - a) [x > 0])``: the slope is 1 on the positive side
    and a elsewhere, 0 included (as in PyTorch). Unlike ReLU, a unit that went
    negative still passes a little gradient, so it can recover: why GAN
    discriminators use it.
    """

    def __init__(self, negative_slope: float = 0.2) -> None:
        self.negative_slope = float(negative_slope)
        self.slope = None  # dy/dx, elementwise

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        a = self.negative_slope
        self.slope = (x > 0).astype(x.dtype) * (1 - a) + a
        return x * self.slope

    def backward(self, grad_out: Any, input_grad: bool = True) -> Any:
        slope = require_forward(self, self.slope)
        check_array(self, grad_out, like=slope, shape=slope.shape, name="grad_out")
        return grad_out * slope if input_grad else None


class Tanh(Module):
    """``y = tanh(x)``;  ``dL/dx = dL/dy * (1 - y**2)``.

    Caches the output, not the input: the derivative is cheapest written in y.
    A GAN generator ends in Tanh so its images land in [-1, 1], like the data.
    """

    def __init__(self) -> None:
        self.y = None

    def __repr__(self) -> str:
        return "Tanh()"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, grad_out: Any, input_grad: bool = True) -> Any:
        y = require_forward(self, self.y)
        check_array(self, grad_out, like=y, shape=y.shape, name="grad_out")
        return grad_out * (1 - y * y) if input_grad else None


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))``, computed without overflow for any x.

    exp(-x) overflows for x < -88 in float32. Writing e = exp(-|x|), which lies in
    (0, 1], the two mirror-image forms 1/(1 + e) (x >= 0) and e/(1 + e) (x < 0) are
    both exact and never overflow, and the small side keeps full relative precision
    (sigmoid(-40) = 4.2e-18, not 0), which a later log() needs.
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Module):
    """``y = 1 / (1 + exp(-x))``;  ``dL/dx = dL/dy * y * (1 - y)``.

    Caches the output, since the derivative is written in y. Saturates without
    overflow: see ``sigmoid``.
    """

    def __init__(self) -> None:
        self.y = None

    def __repr__(self) -> str:
        return "Sigmoid()"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        self.y = sigmoid(x)
        return self.y

    def backward(self, grad_out: Any, input_grad: bool = True) -> Any:
        y = require_forward(self, self.y)
        check_array(self, grad_out, like=y, shape=y.shape, name="grad_out")
        return grad_out * y * (1 - y) if input_grad else None
