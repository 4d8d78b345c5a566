"""Elementwise activations: ReLU, LeakyReLU, Tanh, Sigmoid.

Each maps every element on its own, y_i = f(x_i), so its Jacobian is diagonal and
the backward pass is an elementwise product: dL/dx = dL/dy * f'(x). Every layer
saves whatever gives f' most cheaply: a mask, or the output itself.
Shapes: any input shape; the output and both gradients have the same shape.
``input_grad`` is accepted and ignored: dL/dx is one multiply, the whole backward.

Double backward (see ``minigan.nn.module``). Backward computed dx = dy * f'(x),
elementwise. Given gg = dL/d(dx), the product rule gives its two inputs' shares:

    gg_out = dL/d(dy) = gg * f'(x)            (dy's factor is f'(x))
    gx     = dL/dx    = gg * dy * f''(x)      (f'(x)'s factor is dy; d f'(x)/dx = f''(x))

ReLU and LeakyReLU are piecewise linear: f'' = 0 wherever it exists (everywhere
but x = 0, a set a continuous input never hits), so gx is None and they need
no dy. Tanh and Sigmoid are curved; written in their outputs, as backward is:

    Tanh:     f' = 1 - y^2          f'' = -2 y (1 - y^2)       (d/dx of 1 - y^2 = -2 y y')
    Sigmoid:  f' = s (1 - s)        f'' = s (1 - s)(1 - 2 s)   (d/dx of s - s^2 = s' - 2 s s')

so they keep backward's dy when asked (``backward(dy, create_graph=True)``).
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.nn.checks import check_array
from minigan.nn.module import Module


class ReLU(Module):
    """``y = max(x, 0)``;  ``dL/dx = dL/dy * [x > 0]``.

    The derivative at exactly 0 is taken as 0, as PyTorch does.
    """

    def __repr__(self) -> str:
        return "ReLU()"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        positive = (x > 0).astype(x.dtype)  # the mask [x > 0] as 0.0 / 1.0: f'(x)
        self.save_for_backward(positive)
        return x * positive  # max(x, 0), as a product with the mask backward needs anyway

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        positive = self.saved(grad_out)
        return grad_out * positive

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        positive = self.saved(grad_grad_in, "grad_grad_in")
        return grad_grad_in * positive, None  # dL/d(dy) = gg f'(x); f'' = 0


class LeakyReLU(Module):
    """``y = x`` for x > 0, ``y = a * x`` otherwise (a = ``negative_slope``).

    ``dL/dx = dL/dy * (a + (1 - a) [x > 0])``: the slope is 1 on the positive side
    and a elsewhere, 0 included (as in PyTorch). Unlike ReLU, a unit that went
    negative still passes a little gradient, so it can recover: why GAN
    discriminators use it.
    """

    def __init__(self, negative_slope: float = 0.2) -> None:
        self.negative_slope = float(negative_slope)

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        a = self.negative_slope
        slope = a + (1 - a) * (x > 0).astype(x.dtype)  # f'(x), elementwise: 1 or a
        self.save_for_backward(slope)
        # The layer is linear on each side of 0, so f(x) = f'(x) * x: one multiply by
        # the slope that backward needs anyway.
        return x * slope

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        slope = self.saved(grad_out)
        return grad_out * slope

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        slope = self.saved(grad_grad_in, "grad_grad_in")
        return grad_grad_in * slope, None  # dL/d(dy) = gg f'(x); f'' = 0


class Tanh(Module):
    """``y = tanh(x)``;  ``dL/dx = dL/dy * (1 - y**2)``.

    Caches the output, not the input: the derivative is cheapest written in y.
    A GAN generator ends in Tanh so its images land in [-1, 1], like the data.
    """

    def __repr__(self) -> str:
        return "Tanh()"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        y = get_array_module(x).tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        y = self.saved(grad_out)
        if create_graph:
            self.save_for_double_backward(grad_out)  # gx = gg * dy * f''(x) needs dy
        return grad_out * (1 - y * y)

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, Any]:
        gg = grad_grad_in
        y, dy = self.saved(gg, "grad_grad_in"), self.saved_grad_out(gg)
        slope = 1 - y * y  # f'(x)
        return gg * slope, gg * dy * (-2 * y * slope)  # f''(x) = -2 y (1 - y^2)


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

    def __repr__(self) -> str:
        return "Sigmoid()"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        y = sigmoid(x)
        self.save_for_backward(y)
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        y = self.saved(grad_out)
        if create_graph:
            self.save_for_double_backward(grad_out)  # gx = gg * dy * f''(x) needs dy
        return grad_out * y * (1 - y)

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, Any]:
        gg = grad_grad_in
        s, dy = self.saved(gg, "grad_grad_in"), self.saved_grad_out(gg)
        slope = s * (1 - s)  # f'(x)
        return gg * slope, gg * dy * (slope * (1 - 2 * s))  # f''(x) = s (1 - s)(1 - 2 s)
