"""Flatten, Unflatten and Pack: layers that only reshape.

A reshape moves no value, so its backward pass reshapes the gradient back:
dL/dx = dL/dy.reshape(x.shape). A DCGAN's discriminator flattens its last feature
maps (N, 128, 7, 7) into (N, 6272) for a Linear; its generator unflattens a Linear's
(N, 6272) into (N, 128, 7, 7) for the transposed convolutions. PacGAN's discriminator
packs m images into one example, (N, 784) into (N/m, m*784).

Double backward (see ``minigan.nn.module``; a convolutional critic's gradient penalty
crosses these layers twice). Backward computed dx = R(dy), R the reshape back to x's
shape: linear in dy, with no parameters and no x in it. Its transpose is the reshape
the other way, so with gg = dL/d(dx),

    dL/d(dy) = gg.reshape(dy.shape)        dL/dx: none (x does not appear in dx)

The reshape moves each value to one place and back, so this is exact, and free.
"""

from __future__ import annotations

import math
from typing import Any

from minigan.nn.checks import check_array, is_integer
from minigan.nn.module import Module


class Flatten(Module):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one, as ``torch.nn.Flatten``.

    The default (1, -1) keeps the batch dimension: (N, C, H, W) -> (N, C*H*W).
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        if not (is_integer(start_dim) and is_integer(end_dim)):
            raise ValueError(
                f"Flatten: start_dim and end_dim must be integers (dimensions), got "
                f"{start_dim!r} and {end_dim!r}"
            )
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def __repr__(self) -> str:
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        start = self.start_dim + x.ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + x.ndim if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < x.ndim:
            raise ValueError(
                f"{self!r}: cannot flatten dimensions {self.start_dim}..{self.end_dim} of an "
                f"input of shape {tuple(x.shape)}"
            )
        shape = x.shape[:start] + (math.prod(x.shape[start : end + 1]),) + x.shape[end + 1 :]
        y = x.reshape(shape)
        self.save_for_backward(x.shape, output_shape=y.shape, like=x)  # the shape only
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        x_shape = self.saved(grad_out)
        if create_graph:
            self.save_for_double_backward(grad_out, input_shape=x_shape)  # for dy's shape
        return grad_out.reshape(x_shape)

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        dy = self.saved_grad_out(grad_grad_in)
        return grad_grad_in.reshape(dy.shape), None  # see the module docstring


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``, as ``torch.nn.Unflatten``.

    ``Unflatten(1, (128, 7, 7))`` maps (N, 6272) to (N, 128, 7, 7).
    """

    def __init__(self, dim: int, unflattened_size: tuple[int, ...]):
        if not is_integer(dim):
            raise ValueError(f"Unflatten: dim must be an integer (a dimension), got {dim!r}")
        self.dim = int(dim)
        sizes = tuple(unflattened_size)
        if not sizes or not all(is_integer(s) and s >= 1 for s in sizes):
            raise ValueError(
                f"Unflatten: unflattened_size must be positive sizes (integers >= 1), got "
                f"{unflattened_size!r}"
            )
        self.unflattened_size = tuple(int(s) for s in sizes)

    def __repr__(self) -> str:
        return f"Unflatten(dim={self.dim}, unflattened_size={self.unflattened_size})"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        dim = self.dim + x.ndim if self.dim < 0 else self.dim
        size = math.prod(self.unflattened_size)
        if not 0 <= dim < x.ndim or x.shape[dim] != size:
            raise ValueError(
                f"{self!r}: expected dimension {self.dim} of size {size}, got input of shape "
                f"{tuple(x.shape)}"
            )
        y = x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1 :])
        self.save_for_backward(x.shape, output_shape=y.shape, like=x)  # the shape only
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        x_shape = self.saved(grad_out)
        if create_graph:
            self.save_for_double_backward(grad_out, input_shape=x_shape)  # for dy's shape
        return grad_out.reshape(x_shape)

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        dy = self.saved_grad_out(grad_grad_in)
        return grad_grad_in.reshape(dy.shape), None  # see the module docstring


class Pack(Module):
    """Join every ``m`` consecutive examples into one (PacGAN: Lin et al., 2018).

        (N, d)        -> (N/m, m*d)           an MLP's input: m images side by side
        (N, C, H, W)  -> (N/m, m*C, H, W)     a CNN's input: m images as m*C channels

    Rows n*m .. n*m + m - 1 become row n: in C order that is a reshape, no copy. A
    discriminator that starts with ``Pack(m)`` judges m images at once, all real or
    all fake, and gives one score per pack. Why that fights mode collapse: a
    generator that draws some digits too often (or never) is hard to catch from one
    image, because every single image it draws may look real; m images drawn
    together show how often alike ones come up, so a lopsided G is told apart from
    the data more easily (PacGAN's analysis: the divergence between the m-fold
    products grows with m for exactly such "mode-dropping" distributions). It costs
    nothing: D's first layer gets m times the inputs and 1/m of the rows, the same
    multiply-adds.

    Backward: a reshape moves values without changing them, so dL/dx is dL/dy
    reshaped back, (N/m, m*d) -> (N, d): all it keeps from forward is x's shape.
    """

    def __init__(self, m: int):
        if not is_integer(m) or m < 1:
            raise ValueError(f"Pack: m must be a positive number of examples, got {m!r}")
        self.m = int(m)

    def __repr__(self) -> str:
        return f"Pack({self.m})"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        if x.ndim < 2 or x.shape[0] % self.m:
            raise ValueError(
                f"{self!r}: expected input (batch, features...) with batch a multiple of "
                f"{self.m}, got shape {tuple(x.shape)}; choose a batch size divisible by {self.m}"
            )
        y = x.reshape((x.shape[0] // self.m, self.m * x.shape[1]) + x.shape[2:])
        self.save_for_backward(x.shape, output_shape=y.shape, like=x)  # the shape only
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        x_shape = self.saved(grad_out)
        if create_graph:
            self.save_for_double_backward(grad_out, input_shape=x_shape)  # for dy's shape
        return grad_out.reshape(x_shape)

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        dy = self.saved_grad_out(grad_grad_in)
        return grad_grad_in.reshape(dy.shape), None  # see the module docstring
