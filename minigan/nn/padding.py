"""Reflection padding: ReflectionPad2d, as CycleGAN's generators pad before each convolution.

Zero padding draws a dark frame that a generator must learn to hide; mirroring the image
at its border continues its content instead (Zhu et al. 2017 pad this way to reduce
artifacts at the edges). With padding p, an (H, W) map becomes (H + 2p, W + 2p):

    y[n, c, i, j] = x[n, c, r(i), s(j)]

where padded row i reads image row r(i), mirrored at the edge WITHOUT repeating it
(PyTorch's ``ReflectionPad2d``; NumPy's ``pad(mode="reflect")``):

    r(i) = |i - p|                  for i < p + H        (rows above: p, p-1, ..., 1)
    r(i) = 2 (H - 1) - (i - p)      for i >= p + H       (rows below: H-2, ..., H-1-p)

and s(j) likewise with W. Row H - 1 - p must exist, hence p < H (and p < W): a larger
padding would have to reflect twice, and the layer refuses it, as PyTorch does. A 1x4
row [a b c d] padded by 2 reads [c b | a b c d | c b].

**Forward in two steps.** Copy x into the middle, then mirror the rows (for the middle
columns), then mirror the columns over the whole height, reading the padded array
itself: the corners, which copy x[r(i), s(j)], come out of the second step from the
rows the first one made. So the corner pixels mirror along both axes.

**Backward.** Every y entry is a copy of one x pixel, so dL/dx collects, for each pixel,
the gradients of all its copies (the derivative of a copy is a sum):

    dx[n, c, a, b] = sum over (i, j) with r(i) = a and s(j) = b of g[n, c, i, j]

Padding is separable, so this is done one axis at a time, undoing the forward steps in
reverse order: fold the columns first (each padded column's gradient added onto the
column it copied: the left strip, reversed, onto columns 1..p; the right strip,
reversed, onto columns W-1-p..W-2; for every row, corner rows included), then fold the
rows of that result the same way, and keep the middle. A corner's gradient reaches its
pixel through both folds: first onto its row's column, then onto the row. Each fold adds
a strip onto a disjoint strip, so nothing is counted twice.

Double backward (see ``minigan.nn.module``). Backward computed dx = P^T dy, P the
padding map: linear in dy, with no x and no parameter in it. So, with gg = dL/d(dx),

    dL/d(dy) = P gg = the forward padding of gg        dL/dx: none
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, check_size
from minigan.nn.module import Module


def reflection_pad(x: Any, p: int) -> Any:
    """(N, C, H, W) -> (N, C, H + 2p, W + 2p), mirrored without repeating the edge."""
    n, c, h, w = x.shape
    y = get_array_module(x).empty((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype)
    y[:, :, p : p + h, p : p + w] = x
    # rows: padded row i < p reads padded row 2p - i; row p + H - 1 + k reads p + H - 1 - k
    y[:, :, :p, p : p + w] = y[:, :, p + 1 : 2 * p + 1, p : p + w][:, :, ::-1]
    y[:, :, p + h :, p : p + w] = y[:, :, h - 1 : p + h - 1, p : p + w][:, :, ::-1]
    # columns, over the whole padded height (the corners come from the rows just made)
    y[:, :, :, :p] = y[:, :, :, p + 1 : 2 * p + 1][:, :, :, ::-1]
    y[:, :, :, p + w :] = y[:, :, :, w - 1 : p + w - 1][:, :, :, ::-1]
    return y


def reflection_pad_backward(g: Any, p: int) -> Any:
    """``reflection_pad``'s adjoint: (N, C, H + 2p, W + 2p) -> (N, C, H, W), each padded
    entry added onto the pixel it copies (columns folded first, then rows)."""
    h, w = g.shape[2] - 2 * p, g.shape[3] - 2 * p
    cols = g[:, :, :, p : p + w].copy()  # the middle columns, every padded row
    cols[:, :, :, 1 : p + 1] += g[:, :, :, :p][:, :, :, ::-1]  # left strip onto 1..p
    cols[:, :, :, w - 1 - p : w - 1] += g[:, :, :, p + w :][:, :, :, ::-1]  # right strip
    dx = cols[:, :, p : p + h].copy()  # the middle rows
    dx[:, :, 1 : p + 1] += cols[:, :, :p][:, :, ::-1]  # top strip onto rows 1..p
    dx[:, :, h - 1 - p : h - 1] += cols[:, :, p + h :][:, :, ::-1]  # bottom strip
    return dx


class ReflectionPad2d(Module):
    """Pad each map by mirroring it at its edges, as ``torch.nn.ReflectionPad2d(padding)``.

    Shapes:
        x: (N, C, H, W) with padding < H and padding < W
        y: (N, C, H + 2*padding, W + 2*padding), x's dtype

    Forward: ``y[..., i, j] = x[..., r(i), s(j)]``, r and s mirror at the edge without
    repeating it. Backward: each pixel collects the gradients of all its copies (module
    docstring: the derivation, and how the corners fold back along both axes).

    Args:
        padding: p, the same on all four sides (an integer >= 0).
    """

    def __init__(self, padding: int):
        self.padding = check_size("ReflectionPad2d", "padding", padding, least=0)

    def __repr__(self) -> str:
        return f"ReflectionPad2d({self.padding})"

    def forward(self, x: Any) -> Any:
        check_array(self, x, shape=("batch", "channels", "height", "width"))
        p, (h, w) = self.padding, x.shape[2:]
        if p >= min(h, w):
            raise ValueError(
                f"{self!r}: padding must be smaller than the input's height and width "
                f"(a reflection does not repeat the edge pixel), got input {tuple(x.shape)}"
            )
        y = reflection_pad(x, p)
        self.save_for_backward(output_shape=y.shape, like=x)  # backward needs only p
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.saved(grad_out)
        dx = reflection_pad_backward(grad_out, self.padding)
        if create_graph:
            self.save_for_double_backward(grad_out, input_shape=dx.shape)
        return dx

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        """``(pad(gg), None)``: the backward is linear in dy and free of x (module doc)."""
        self.saved_grad_out(grad_grad_in)
        return reflection_pad(grad_grad_in, self.padding), None
