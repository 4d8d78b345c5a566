"""Concatenation: joining a label's vector to z or to an image, and splitting the gradient back."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from minigan.backend import get_array_module
from minigan.nn.checks import check_array
from minigan.nn.module import Module


class Concat(Module):
    """``y = [x_1 | x_2 | ... | x_m]``: the inputs side by side along axis 1.

    Shapes:
        inputs: a list or tuple of m arrays (batch, k_i, ...), equal except in axis 1
        y: (batch, k_1 + ... + k_m, ...)

    Axis 1 holds the features of a (batch, features) array and the channels of a
    (batch, channels, height, width) image, so one layer serves both ways a
    conditional GAN feeds a label in: ``Concat()([z, embed(labels)])`` for the
    generator's input, ``Concat()([images, embed(labels)])`` for a flat image in
    the discriminator. (PyTorch: ``torch.cat(inputs, dim=1)``.)

    Backward: y is a copy of the inputs' entries, each moved to a new place, so
    each entry of y depends on exactly one input entry, with derivative 1. With
    offsets o_i = k_1 + ... + k_(i-1):

        y[:, o_i + j] = x_i[:, j]    =>    dL/dx_i[:, j] = dL/dy[:, o_i + j]

    so dL/dx_i is the slice of dL/dy that x_i filled: backward splits the
    gradient at the same offsets and returns one piece per input, in order. The
    pieces are views of dL/dy (no copy), which no layer changes in place.

    Why a layer taking a list, not two functions ``concat``/``split``: forward
    and backward sit on one page like every other layer, the offsets are kept
    by ``save_for_backward`` like any cache, and a model calls it the way it
    calls the rest (``h = self.concat([z, e])`` ... ``dz, de = self.concat.backward(dh)``).
    It has no parameters.
    """

    def __repr__(self) -> str:
        return "Concat()"

    def forward(self, inputs: Sequence[Any]) -> Any:
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(
                f"{self!r}: expected a list or tuple of arrays, e.g. [z, embedding], "
                f"got {type(inputs).__name__}"
            )
        if not inputs:
            raise ValueError(f"{self!r}: expected at least one array, got an empty list")
        first = inputs[0]
        check_array(self, first, name="input 0")
        if first.ndim < 2:
            raise ValueError(
                f"{self!r}: inputs must be (batch, features, ...), got input 0 of shape "
                f"{tuple(first.shape)}"
            )
        rest = tuple(first.shape[2:])
        for i, x in enumerate(inputs[1:], start=1):
            shape = (first.shape[0], "k", *rest)
            check_array(self, x, like=first, shape=shape, name=f"input {i}")
        widths = [x.shape[1] for x in inputs]
        offsets = [sum(widths[:i]) for i in range(len(widths) + 1)]  # 0, k_1, k_1 + k_2, ...
        y = get_array_module(first).concatenate(inputs, axis=1)
        # Backward needs only the offsets; input 0 is kept for what it is (backend,
        # dtype), against which dL/dy is checked. It is alive anyway: the caller has it.
        self.save_for_backward(first, offsets, output_shape=y.shape)
        return y

    def backward(
        self, grad_out: Any, input_grad: bool = True, create_graph: bool = False
    ) -> tuple[Any, ...]:
        self.first_order_only(create_graph)
        _, offsets = self.saved(grad_out)
        g = grad_out
        return tuple(g[:, a:b] for a, b in pairwise(offsets))  # split at o_i
