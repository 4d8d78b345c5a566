"""The residual block: y = x + f(x), as in ResNet (He et al. 2016) and CycleGAN's generators.

The body f (any Module, usually a small Sequential of convolutions) learns only what to
change; the identity path carries x through unchanged. A CycleGAN generator is mostly a
stack of these (nine at 256x256 in Zhu et al. 2017): translating a horse into a zebra
keeps most of the picture, and a block that does nothing is simply f = 0.

**Backward.** x reaches y along two paths, the identity and the body, and the chain
rule adds the gradients of the paths (x is used twice, so its gradient has two terms):

    dL/dx = dL/dy * dy/dx = g * (I + J_f) = g + f.backward(g)        g = dL/dy

The body's backward also adds its parameters' gradients, as in any backward pass. Even
where f's gradient vanishes, g reaches x whole: why very deep stacks of such blocks
still train.

**Double backward** (see ``minigan.nn.module``). Backward computed B(dy, x) = dy +
B_f(dy, x): the identity part is linear in dy and free of x and of the parameters, so
with gg = dL/d(dx), the body's ``double_backward(gg)`` gives (gg_f, gx_f) and adds its
parameter terms, and

    dL/d(dy) = gg + gg_f        dL/dx = gx_f (None when the body's is)

Parameters, buffers, ``train``/``eval`` and ``to`` are the body's: it is this module's
one child, ``body``, so its parameters are named ``body.<name>`` (``body.1.weight``).
"""

from __future__ import annotations

from typing import Any

from minigan.nn.checks import check_array
from minigan.nn.module import Module


class Residual(Module):
    """``y = x + body(x)``; the body must give back an array of x's shape and dtype.

    Shapes: x and y alike, any shape the body accepts and returns unchanged.
    Backward: ``dx = g + body.backward(g)`` (module docstring).

    Args:
        body: the module f.
    """

    def __init__(self, body: Module):
        if not isinstance(body, Module):
            raise TypeError(f"Residual: body must be a Module, got {type(body).__name__}")
        self.body = body

    def __repr__(self) -> str:
        return f"Residual({self.body!r})"

    def forward(self, x: Any) -> Any:
        check_array("Residual", x)  # named plainly: the repr holds the whole body
        fx = self.body.forward(x)
        if tuple(fx.shape) != tuple(x.shape):
            raise ValueError(
                f"Residual: y = x + body(x) needs the body to keep the input's shape; it "
                f"maps {tuple(x.shape)} to {tuple(fx.shape)}"
            )
        check_array("Residual", fx, like=x, name="body output")
        self.save_for_backward(like=x)  # nothing to keep: the body keeps its own cache
        return x + fx

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.saved(grad_out)
        dfx = self.body.backward(grad_out, input_grad=input_grad, create_graph=create_graph)
        if not input_grad:
            return None
        return grad_out + dfx  # the identity path plus the body's

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, Any]:
        """``(gg + gg_body, gx_body)``: the identity path is linear and free of x (module doc)."""
        gg_body, gx_body = self.body.double_backward(grad_grad_in)
        return grad_grad_in + gg_body, gx_body
