"""Nearest-neighbour up-sampling: Upsample, as StackGAN's generators grow an image.

StackGAN (Zhang et al. 2017) enlarges its feature maps with "up-sampling blocks":
nearest-neighbour up-sampling by 2 followed by a 3x3 convolution (its code writes
``nn.Upsample(scale_factor=2, mode="nearest")``), where DCGAN uses a transposed
convolution. Copying each pixel into an s x s block and letting an ordinary convolution
smooth it avoids the checkerboard pattern that a strided transposed convolution prints
where its kernels overlap unevenly (Odena et al. 2016, "Deconvolution and Checkerboard
Artifacts").

**Forward.** With an integer factor s, an (H, W) map becomes (sH, sW), and output pixel
(i, j) copies input pixel (i // s, j // s):

    y[n, c, i, j] = x[n, c, i // s, j // s]

Written with the block made explicit, i = s a + k and j = s b + l (0 <= k, l < s):

    y[n, c, s a + k, s b + l] = x[n, c, a, b]        for every k, l

so viewing y as (N, C, H, s, W, s), y[n, c, a, :, b, :] is the s x s block filled with
x[n, c, a, b]: a broadcast of x[:, :, :, None, :, None], then a reshape.

**Backward.** Each x pixel is copied s^2 times and nothing else reads it, so by the chain
rule (the derivative of a copy is 1, and the copies' gradients add):

    dL/dx[n, c, a, b] = sum over k, l < s of g[n, c, s a + k, s b + l]        g = dL/dy

the sum of g over each s x s block: the same (N, C, H, s, W, s) view of g, summed over
axes 3 and 5. (Up-sampling is U x with U a 0/1 matrix, one 1 per row; backward is U^T g.)
With s = 1 both ways are the identity.

**Double backward** (see ``minigan.nn.module``). Backward computed dx = U^T dy: linear in
dy, with no x and no parameter in it. So, with gg = dL/d(dx),

    dL/d(dy) = U gg = the forward up-sampling of gg        dL/dx: none
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, check_size
from minigan.nn.module import Module


def upsample_nearest(x: Any, s: int) -> Any:
    """(N, C, H, W) -> (N, C, sH, sW): each pixel copied into an s x s block."""
    n, c, h, w = x.shape
    y = get_array_module(x).empty((n, c, h, s, w, s), dtype=x.dtype)
    y[...] = x[:, :, :, None, :, None]  # y[n, c, a, k, b, l] = x[n, c, a, b]
    return y.reshape(n, c, h * s, w * s)


def upsample_nearest_backward(g: Any, s: int) -> Any:
    """``upsample_nearest``'s adjoint: (N, C, sH, sW) -> (N, C, H, W), each block summed."""
    n, c, hs, ws = g.shape
    return g.reshape(n, c, hs // s, s, ws // s, s).sum(axis=(3, 5))


class Upsample(Module):
    """Nearest-neighbour up-sampling by an integer factor, as
    ``torch.nn.Upsample(scale_factor=scale, mode="nearest")``.

    Shapes:
        x: (N, C, H, W)
        y: (N, C, scale * H, scale * W), x's dtype

    Forward: ``y[..., i, j] = x[..., i // scale, j // scale]``. Backward: ``dx`` is the
    sum of ``dy`` over each scale x scale block (module docstring: the derivation).

    Args:
        scale: the factor s, an integer >= 1 (StackGAN's blocks use 2).
    """

    def __init__(self, scale: int):
        self.scale = check_size("Upsample", "scale", scale, least=1)

    def __repr__(self) -> str:
        return f"Upsample(scale={self.scale})"

    def forward(self, x: Any) -> Any:
        check_array(self, x, shape=("batch", "channels", "height", "width"))
        y = upsample_nearest(x, self.scale)
        self.save_for_backward(output_shape=y.shape, like=x)  # backward needs only the scale
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.saved(grad_out)
        dx = upsample_nearest_backward(grad_out, self.scale)  # dL/dx = U^T g: block sums
        if create_graph:
            self.save_for_double_backward(grad_out, input_shape=dx.shape)
        return dx

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, None]:
        """``(upsample(gg), None)``: the backward is linear in dy and free of x (module doc)."""
        self.saved_grad_out(grad_grad_in)
        return upsample_nearest(grad_grad_in, self.scale), None
