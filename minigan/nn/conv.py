"""Convolutions: Conv2d and ConvTranspose2d, through im2col and one matrix product.

Images are NCHW: x[n, c, h, w] is example n, channel c, row h, column w.

**Convolution.** With kernel size k, stride s and padding p (p zeros around each image,
giving ``xpad``), a Conv2d from C to O channels computes (a cross-correlation, as in
every deep-learning library)

    y[n, o, a, b] = bias[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, c, s*a + i, s*b + j]

for output rows a < Ho = (H + 2p - k) // s + 1 (and columns b < Wo likewise).

**im2col: the convolution as one matrix product.** Copy, for every output pixel
(n, a, b), the k*k patch of every channel it reads into one column:

    cols[(c, i, j), (a, b, n)] = xpad[n, c, s*a + i, s*b + j]       (C*k*k, Ho*Wo*N)

Then the sum above is a matrix product with the weights flattened to rows,
``W_rows = W.reshape(O, C*k*k)``:

    y_rows = W_rows @ cols                                          (O, Ho*Wo*N)

which is one large GEMM, the fastest thing a CPU or GPU does. ``y_rows`` holds y
channel first and batch last, "rows" form: memory laid out as (O, Ho, Wo, N);
``from_rows`` views it as (N, O, Ho, Wo) without copying.

Why batch last: im2col and col2im move data one kernel offset at a time, through
slices strided by s along rows and columns. With the batch innermost, every such
slice is made of contiguous runs of N values (one per example), so the copies run
at memory speed; with the image's columns innermost (NCHW), the runs would be Wo
values long (7 in an MNIST DCGAN), and the per-run overhead would dominate.

The bookkeeping: ``cols`` is filled as an array of shape (C, k, k, Ho, Wo, N) by a
loop over the k*k kernel offsets (i, j). For one offset, output row a reads padded
row s*a + i, which is image row s*a + i - p: the rows a = 0..Ho-1 read the strided
slice ``x[:, i - p : i - p + s*Ho : s]`` of the image in rows form (C, H, W, N)
(the same for columns), so each offset is one whole-array copy: k*k copies per
layer, never a loop over pixels or examples. Where that slice runs into the padding
(s*a + i - p < 0 or >= H), the entries are the padding's zeros: ``cols`` starts as
zeros and each offset copies only the outputs that read real pixels (``kept``
computes which), so no padded copy of the image is ever made.

**Backward.** With g = dL/dy in the same rows form (O, Ho*Wo*N), the product rule for
``y_rows = W_rows @ cols`` gives (as for ``Linear``)

    dL/dW_rows = g_rows @ cols.T        (O, C*k*k)
    dL/dcols   = W_rows.T @ g_rows      (C*k*k, Ho*Wo*N)
    dL/dbias   = g_rows summed over its columns

and dL/dx comes from dL/dcols by ``col2im``, im2col's adjoint. im2col *copies* each
padded pixel into every column whose patch covers it; the derivative of a copy is a
sum, so each pixel collects the sum of the gradients of all its copies. col2im walks
the same k*k strided slices as im2col and *adds* instead of copying
(``dx[:, i - p : i - p + s*Ho : s, ...] += dcols[:, i, j]``, kept to real pixels:
the padding is no input, so what lands on it is dropped). Within one offset the
slice touches each pixel at most once, so the slice-add is exact; across offsets the
loop accumulates. (A scatter ``np.add.at`` would do it in one call, but it is slow,
and CuPy has no fast equivalent; slice-adds run on both.)

**Transposed convolution.** A convolution is linear in x: y = A x for a (huge, sparse)
matrix A built from W, and its input gradient is dL/dx = A^T g. ConvTranspose2d is the
map x -> A^T x, hence its name. So, with the same weight array W, of shape
(in_channels, out_channels, k, k), read as the weight of a Conv2d from out_channels to
in_channels (PyTorch's layout for ConvTranspose2d is exactly that):

    ConvTranspose2d.forward(x)     = the Conv2d's input gradient for g = x
                                   = col2im(W_rows.T @ x_rows)
    ConvTranspose2d.backward: dL/dx = (A^T)^T g = A g = the Conv2d's forward on g
                                   = W_rows @ im2col(g)
                              dL/dW = x_rows @ im2col(g).T   (the Conv2d's weight
                                      gradient, with g as the conv's input and x as
                                      the gradient at the conv's output)

The code says exactly this: ``conv2d``, ``conv2d_input_grad`` and ``conv2d_weight_grad``
are written once, and both layers call them. A ConvTranspose2d with stride 2 maps
Hin to Hout = (Hin - 1)*s - 2p + k + output_padding: the input size of the Conv2d that
maps back to Hin. With stride > 1, several sizes map to the same Hin (the conv's
division rounds down); output_padding (< stride) picks a larger one, adding rows at the
bottom and columns at the right that only the bias reaches, as in PyTorch.

**With stride 1 the transpose is a convolution again**: ConvTranspose2d(C, O, k, 1, p)
computes y[n, o, h, w] = sum_{c, i, j} W[c, o, i, j] * x[n, c, h + p - i, w + p - j],
which is Conv2d(C, O, k, 1, k - 1 - p) with the kernel flipped, W'[o, c, i, j] =
W[c, o, k-1-i, k-1-j]. The two layers then draw the same maps at different costs:
Conv2d's im2col copies C*k*k rows of columns, ConvTranspose2d's col2im adds O*k*k, so
the transposed form is the cheaper one when the outputs are few (DCGAN's G draws its
image with a 3x3 one: ``minigan/models/dcgan.py``).

Initialisation is PyTorch's (kaiming_uniform with a = sqrt(5)): weight and bias from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in = weight.shape[1] * k * k: C_in*k*k for
Conv2d, but out_channels*k*k for ConvTranspose2d, whose weight is (in, out, k, k).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, check_size, is_integer
from minigan.nn.module import Module, Parameter

# --- the shared arithmetic -----------------------------------------------------------


def output_size(size: int, k: int, stride: int, padding: int) -> int:
    """Rows (or columns) of a convolution's output: (size + 2p - k) // s + 1."""
    return (size + 2 * padding - k) // stride + 1


def to_rows(a: Any) -> Any:
    """(N, C, H, W) -> (C, H*W*N): channel first, batch last, the layout the GEMMs use.

    Free (a reshape of a view) when ``a``'s memory is already in rows form, as for
    the outputs of ``from_rows`` and, in NumPy, of elementwise operations on them
    (NumPy keeps an input's memory order; CuPy does not promise to, and may hand
    back NCHW order); one copy otherwise, so the result is right either way.
    """
    return a.transpose(1, 2, 3, 0).reshape(a.shape[1], -1)


def from_rows(rows: Any, n: int, h: int, w: int) -> Any:
    """(C, H*W*N) -> (N, C, H, W), as a transposed view: no copy.

    The result is NCHW by its shape and strides; its memory stays in rows form, which
    is what the next layer's ``to_rows`` wants. Every NumPy / CuPy operation accepts it.
    """
    return rows.reshape(rows.shape[0], h, w, n).transpose(3, 0, 1, 2)


def kept(i: int, size: int, out_size: int, stride: int, padding: int) -> tuple[slice, slice]:
    """Kernel offset i along one axis: the outputs that read a real pixel, and those pixels.

    Output a reads image row s*a + i - p, which exists when 0 <= s*a + i - p < size.
    Returns (outputs, rows): the slice of those a (a range, possibly empty) and the
    strided slice of the image rows they read, in the same order.
    """
    s, p = stride, padding
    first = max(0, -((i - p) // s))  # the smallest a with s*a + i - p >= 0
    end = max(first, min(out_size, (size - 1 + p - i) // s + 1))  # past the last one
    row = s * first + i - p
    return slice(first, end), slice(row, row + s * (end - first), s)


def im2col(x: Any, k: int, stride: int, padding: int) -> Any:
    """(N, C, H, W) -> cols (C*k*k, Ho*Wo*N): each column one output pixel's patches.

    cols[(c, i, j), (a, b, n)] = xpad[n, c, s*a + i, s*b + j], filled one kernel
    offset (i, j) at a time; entries that read the padding keep their zeros.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    s, p = stride, padding
    ho, wo = output_size(h, k, s, p), output_size(w, k, s, p)
    xr = x.transpose(1, 2, 3, 0)  # (C, H, W, N) view: each slice below is (C, rows, cols, N)
    cols = xp.zeros((c, k, k, ho, wo, n), dtype=x.dtype)  # the padding's zeros stay
    for i in range(k):
        out_rows, rows = kept(i, h, ho, s, p)
        for j in range(k):
            out_cols, columns = kept(j, w, wo, s, p)
            cols[:, i, j, out_rows, out_cols] = xr[:, rows, columns]
    return cols.reshape(c * k * k, ho * wo * n)


def col2im(cols: Any, shape: tuple[int, ...], k: int, stride: int, padding: int) -> Any:
    """im2col's adjoint: add each column entry back onto the pixel it was copied from.

    Args:
        cols: (C*k*k, Ho*Wo*N), e.g. dL/dcols.
        shape: (N, C, H, W), the image shape im2col started from.

    Returns:
        (N, C, H, W), memory in rows form: for each pixel, the sum of the entries of
        its copies (entries im2col took from the padding are dropped).
    """
    xp = get_array_module(cols)
    n, c, h, w = shape
    s, p = stride, padding
    ho, wo = output_size(h, k, s, p), output_size(w, k, s, p)
    cols = cols.reshape(c, k, k, ho, wo, n)
    x = xp.zeros((c, h, w, n), dtype=cols.dtype)
    for i in range(k):
        out_rows, rows = kept(i, h, ho, s, p)
        for j in range(k):
            out_cols, columns = kept(j, w, wo, s, p)
            x[:, rows, columns] += cols[:, i, j, out_rows, out_cols]
    return x.transpose(3, 0, 1, 2)  # NCHW view, no copy


def conv2d(x: Any, weight: Any, stride: int, padding: int) -> tuple[Any, Any]:
    """A convolution without bias: returns (y_rows (O, Ho*Wo*N), cols) for x (N, C, H, W)."""
    cols = im2col(x, weight.shape[-1], stride, padding)
    return weight.reshape(weight.shape[0], -1) @ cols, cols


def conv2d_input_grad(
    g_rows: Any, weight: Any, x_shape: tuple[int, ...], stride: int, padding: int
) -> Any:
    """dL/dx (N, C, H, W) of ``conv2d`` from g_rows = dL/dy_rows (O, Ho*Wo*N)."""
    dcols = weight.reshape(weight.shape[0], -1).T @ g_rows
    return col2im(dcols, x_shape, weight.shape[-1], stride, padding)


def conv2d_weight_grad(g_rows: Any, cols: Any, weight_shape: tuple[int, ...]) -> Any:
    """dL/dW of ``conv2d``: g_rows (O, Ho*Wo*N) @ cols.T, shaped like the weight."""
    return (g_rows @ cols.T).reshape(weight_shape)


# --- the layers ------------------------------------------------------------------------


class _ConvBase(Module):
    """Hyperparameters, PyTorch's initialisation and the input checks both layers share."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        padding: int,
        bias: bool,
        weight_shape: tuple[int, ...],
        rng: np.random.Generator | None,
        dtype: Any,
    ):
        name = type(self).__name__
        self.in_channels = check_size(name, "in_channels", in_channels)
        self.out_channels = check_size(name, "out_channels", out_channels)
        self.kernel_size = check_size(name, "kernel_size", kernel_size)
        self.stride = check_size(name, "stride", stride)
        self.padding = check_size(name, "padding", padding, least=0)
        rng = rng if rng is not None else np.random.default_rng()
        fan_in = weight_shape[1] * kernel_size * kernel_size
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = Parameter(rng.uniform(-bound, bound, weight_shape).astype(dtype))
        self.bias = (
            Parameter(rng.uniform(-bound, bound, out_channels).astype(dtype)) if bias else None
        )

    def _settings(self) -> str:
        text = (
            f"{self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        return text + ("" if self.bias is not None else ", bias=False")

    def check_input(self, x: Any) -> None:
        """A 4-D array with the right channels, whose padded size fits the kernel."""
        check_array(
            self, x, like=self.weight.data, shape=("batch", self.in_channels, "height", "width")
        )
        k, p = self.kernel_size, self.padding
        if min(x.shape[2:]) + 2 * p < k:
            h, w = x.shape[2:]
            raise ValueError(
                f"{self!r}: kernel {k}x{k} is larger than the padded input "
                f"{h + 2 * p}x{w + 2 * p} (input {h}x{w} plus padding {p} on each side); "
                f"use larger images, more padding or a smaller kernel"
            )


class Conv2d(_ConvBase):
    """A 2-D convolution (cross-correlation), NCHW, as ``torch.nn.Conv2d``.

    Shapes:
        x: (N, in_channels, H, W)     W: (out_channels, in_channels, k, k)
        y: (N, out_channels, Ho, Wo)  b: (out_channels,)
        Ho = (H + 2*padding - k) // stride + 1, and Wo likewise.

    Forward: ``y_rows = W_rows @ im2col(x) + b``. Backward, with g = dL/dy:

        dL/dW = g_rows @ cols.T       every weight meets the patch entries it multiplied
        dL/db = g summed over N, Ho, Wo
        dL/dx = col2im(W_rows.T @ g_rows)

    (derivation and index bookkeeping: the module docstring). Saves ``cols`` for dL/dW.

    Double backward (see ``minigan.nn.module``; WGAN-GP's convolutional critic needs it),
    with gg = dL/d(dx) of x's shape. The convolution is linear in x, y = A x + b with A
    built from W, so backward computed dx = A^T dy = col2im(W_rows.T @ dy_rows): a
    function of dy and W only, linear in each, exactly as Linear's dx = dy W. Then

        dL/d(dy) = A gg = W_rows @ im2col(gg)       the forward map on gg, without the bias
        dL/dW   += dy_rows @ im2col(gg).T           backward's dL/dW, gg in x's place
        dL/db, dL/dx : none (b and x do not appear in dx)

    Why, in two lines: dL = <gg, d(dx)>. Nudging dy, d(dx) = A^T d(dy), so dL =
    <A gg, d(dy)>. Nudging W, d(dx) = col2im(dW_rows.T @ dy_rows), and col2im is
    im2col's adjoint, so dL = <im2col(gg), dW_rows.T @ dy_rows> = <dy_rows @
    im2col(gg).T, dW_rows> (the trace identity <M, B.T C> = <C M.T, B>). The first is
    ``conv2d(gg, W)``, the second ``conv2d_weight_grad(dy_rows, im2col(gg))``: the
    forward and weight-gradient formulas again, with (dy, gg) where backward has (g, x).
    Needs backward's dy: ``backward(dy, create_graph=True)`` keeps it, in rows form.

    Args:
        in_channels, out_channels, kernel_size (square), stride, padding (zeros on every
            side), bias: as in PyTorch.
        rng, dtype: as for ``Linear``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ):
        weight_shape = (out_channels, in_channels, kernel_size, kernel_size)
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, bias, weight_shape, rng, dtype
        )

    def __repr__(self) -> str:
        return f"Conv2d({self._settings()})"

    def forward(self, x: Any) -> Any:
        self.check_input(x)
        n, _, h, w = x.shape
        s, p, k = self.stride, self.padding, self.kernel_size
        y_rows, cols = conv2d(x, self.weight.data, s, p)
        if self.bias is not None:
            y_rows += self.bias.data[:, None]
        y = from_rows(y_rows, n, output_size(h, k, s, p), output_size(w, k, s, p))
        self.save_for_backward(cols, x.shape, output_shape=y.shape)
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        (cols, x_shape), W, b = self.saved(grad_out), self.weight, self.bias
        g_rows = to_rows(grad_out)
        if create_graph:
            self.save_for_double_backward(g_rows, input_shape=x_shape)  # dL/dW will need dy
        if W.requires_grad:
            W.grad += conv2d_weight_grad(g_rows, cols, W.shape)
        if b is not None and b.requires_grad:
            b.grad += g_rows.sum(axis=1)
        if not input_grad:
            return None
        return conv2d_input_grad(g_rows, W.data, x_shape, self.stride, self.padding)

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        dy_rows, W, gg = self.saved_grad_out(grad_grad_in), self.weight, grad_grad_in
        gg_out_rows, gg_cols = conv2d(gg, W.data, self.stride, self.padding)  # A gg, no bias
        if W.requires_grad:
            W.grad += conv2d_weight_grad(dy_rows, gg_cols, W.shape)  # dL/dW += dy_rows gg_cols^T
        n, _, h, w = gg.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        return from_rows(gg_out_rows, n, output_size(h, k, s, p), output_size(w, k, s, p)), None


class ConvTranspose2d(_ConvBase):
    """The transposed convolution, NCHW, as ``torch.nn.ConvTranspose2d``: x -> A^T x.

    Shapes:
        x: (N, in_channels, Hin, Win)   W: (in_channels, out_channels, k, k)
        y: (N, out_channels, H, W)      b: (out_channels,)
        H = (Hin - 1)*stride - 2*padding + k + output_padding, and W likewise.

    With A the matrix of the Conv2d (out_channels -> in_channels, same W, stride,
    padding) that maps an (H, W) image to (Hin, Win):

        forward   y     = A^T x + b = the Conv2d's input gradient, for g = x
        backward  dL/dx = A g       = the Conv2d's forward on g
                  dL/dW = x_rows @ im2col(g).T
                  dL/db = g summed over N, H, W

    (derivation: the module docstring). A stride-2 ConvTranspose2d doubles the image
    size, the up-sampling step of a DCGAN generator. Saves x in rows form for dL/dW.

    Args:
        output_padding: extra rows / columns at the bottom / right, < stride.
        The rest as for ``Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        output_padding: int = 0,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ):
        weight_shape = (in_channels, out_channels, kernel_size, kernel_size)
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, bias, weight_shape, rng, dtype
        )
        if not is_integer(output_padding) or not 0 <= output_padding < stride:
            raise ValueError(
                f"ConvTranspose2d: output_padding must be an integer in [0, stride) = "
                f"[0, {stride}), got {output_padding!r}"
            )
        self.output_padding = int(output_padding)

    def __repr__(self) -> str:
        extra = f", output_padding={self.output_padding}" if self.output_padding else ""
        return f"ConvTranspose2d({self._settings()}{extra})"

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(N, out_channels, H, W) for an input of shape ``x_shape``."""
        s, p, k, op = self.stride, self.padding, self.kernel_size, self.output_padding
        n, _, h, w = x_shape
        return n, self.out_channels, (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op

    def forward(self, x: Any) -> Any:
        check_array(
            self, x, like=self.weight.data, shape=("batch", self.in_channels, "height", "width")
        )
        shape = self.output_shape(x.shape)
        if min(shape[2:]) < 1:
            raise ValueError(
                f"{self!r}: input {x.shape[2]}x{x.shape[3]} is too small: the output would "
                f"be {shape[2]}x{shape[3]}; use larger inputs or less padding"
            )
        x_rows = to_rows(x)
        y = conv2d_input_grad(x_rows, self.weight.data, shape, self.stride, self.padding)
        if self.bias is not None:
            y += self.bias.data[:, None, None]
        self.save_for_backward(x_rows, x.shape, output_shape=shape)
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        (x_rows, x_shape), W, b = self.saved(grad_out), self.weight, self.bias
        s, p = self.stride, self.padding
        if input_grad:
            dx_rows, cols = conv2d(grad_out, W.data, s, p)  # the Conv2d's forward on g
        else:
            cols = im2col(grad_out, self.kernel_size, s, p)  # dL/dW still needs im2col(g)
        if W.requires_grad:
            W.grad += conv2d_weight_grad(x_rows, cols, W.shape)
        if b is not None and b.requires_grad:
            b.grad += grad_out.sum(axis=(0, 2, 3))
        if not input_grad:
            return None
        n, _, h, w = x_shape
        return from_rows(dx_rows, n, h, w)
