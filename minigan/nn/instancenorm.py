"""Instance normalisation: InstanceNorm2d, (N, C, H, W), as CycleGAN's generators use it.

Each image's each channel, map (n, c), is normalised over its own m = H*W pixels:

    mu    = mean_hw(x)                      1. the map's mean              (N, C, 1, 1)
    xc    = x - mu                          2. centre
    var   = mean_hw(xc**2)                  3. the (biased) variance of the map
    inv   = 1 / sqrt(var + eps)             4.
    y     = xhat = xc * inv                 5. mean 0, variance ~1 in every map

These are BatchNorm's steps 1-6 (``minigan/nn/batchnorm.py``) with the statistics taken
over H, W for each (n, c) instead of over N, H, W for each c: the same formula with
another grouping of the values. No scale and shift, no running statistics: CycleGAN's
reference code builds its norm layers as ``nn.InstanceNorm2d(affine=False,
track_running_stats=False)``, so this layer has no parameters and no buffers, and
computes the same thing in training and in evaluation (an image's output never depends
on the rest of its batch, which is why style-transfer networks use it: Ulyanov et al.
2016 found that removing each image's contrast this way helps the generator; Zhu et
al. 2017 took it over for CycleGAN).

**Backward.** Within one map this is BatchNorm's backward without gamma, with m = H*W
and every sum over the map's pixels; BatchNorm's docstring walks it step by step and
arrives at the compact form, which reads here (g = dL/dy, means over H, W of one map):

    dx = inv * (g - mean_hw(g) - xhat * mean_hw(g * xhat))

In words: the gradient, minus its mean (the map's mean was removed: shifting every
pixel of a map by the same amount changes nothing), minus its component along xhat
(the map's scale was removed: stretching a map changes nothing), times inv. Maps do
not interact: each (n, c)'s dx depends on that map's g and x only. Backward needs
xhat and inv, which forward keeps (not x).

A map of one pixel (H = W = 1) has no variance to divide by (every output would be 0
whatever x is); like PyTorch, the layer refuses it.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, check_size
from minigan.nn.module import Module

HW = (2, 3)  # the axes of a map's pixels


class InstanceNorm2d(Module):
    """Normalise each (example, channel) map over its pixels, as ``torch.nn.InstanceNorm2d``
    with its defaults (affine=False, track_running_stats=False).

    Shapes:
        x, y, dL/dx: (N, num_features, H, W), H*W >= 2, in x's dtype.

    Forward: ``y = (x - mean_hw(x)) / sqrt(var_hw(x) + eps)`` per (n, c).
    Backward: ``dx = inv * (g - mean_hw(g) - xhat * mean_hw(g * xhat))`` (module docstring).

    Args:
        num_features: C, the channels (checked against the input, as in BatchNorm2d).
        eps: added to each map's variance.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        name = type(self).__name__
        self.num_features = check_size(name, "num_features", num_features)
        if not eps > 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps}")
        self.eps = float(eps)

    def __repr__(self) -> str:
        return f"InstanceNorm2d({self.num_features})"

    def forward(self, x: Any) -> Any:
        check_array(self, x, shape=("batch", self.num_features, "height", "width"))
        if x.shape[2] * x.shape[3] < 2:
            raise ValueError(
                f"{self!r}: expected more than 1 pixel per map, got input {tuple(x.shape)}: "
                f"a single pixel has no variance to normalise by"
            )
        xp = get_array_module(x)
        mu = x.mean(axis=HW, keepdims=True)  # 1.
        xc = x - mu  # 2.
        var = (xc * xc).mean(axis=HW, keepdims=True)  # 3.
        inv = 1 / xp.sqrt(var + self.eps)  # 4.
        xhat = xc * inv  # 5.
        self.save_for_backward(xhat, inv)
        return xhat

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        xhat, inv = self.saved(grad_out)
        g = grad_out
        mean_g = g.mean(axis=HW, keepdims=True)  # (N, C, 1, 1), as mu
        mean_g_xhat = (g * xhat).mean(axis=HW, keepdims=True)
        return (g - mean_g - xhat * mean_g_xhat) * inv
