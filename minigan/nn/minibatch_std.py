"""Minibatch standard deviation (Karras et al., 2018, ProGAN): let D see a batch's variety.

A discriminator that judges each image on its own cannot see mode collapse: a
generator that draws the same good "7" a hundred times passes every single test.
This layer gives D one number about the whole group each image came in with: how
much the images of the group differ from one another. Appended to every image's
features, it lets D learn "a group this alike is fake", and G can only answer by
drawing varied images. It has no parameters.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, is_integer
from minigan.nn.module import Module


class MinibatchStdDev(Module):
    """Append, to each example, the mean standard deviation of its group, as one more feature.

    Shapes:
        x: (batch, C, ...): (batch, features) from a Linear, (batch, C, H, W) from a conv
        y: (batch, C + 1, ...): x, then one feature (a channel) filled with its group's s

    Forward, the batch cut into groups of ``group_size`` = G consecutive examples
    (batch = M G; group j holds examples jG ... jG + G - 1), K = C * H * W numbers
    per example, eps = 1e-8:

        mu   = mean over the group of x                 per group and feature
        d    = x - mu                                   per example
        v    = mean over the group of d^2               per group and feature
        sig  = sqrt(v + eps)                            the spread of each feature
        s    = mean over the K features of sig          one number per group
        y    = [x | s of the example's group]           along axis 1

    Groups keep D's batches apart: the vanilla GAN's D sees real and fake images
    stacked in one pass, so a group must never straddle the two halves
    (G divides each half's size). Karras et al. use G = 4.

    Backward, undoing the forward steps in reverse (g_j: dL/ds of group j, the sum
    of dL/dy over the appended slice of its G examples, every position included):

        ds          = g_j                               s feeds every appended entry
        d(sig)      = g_j / K                           s = mean of K sigs
        dv          = d(sig) / (2 sig)                  sig = sqrt(v + eps)
        dd          = dv * 2 d / G                      v = mean over G of d^2
        dx (via d)  = dd - mean over the group of dd    d = x - mu, mu = mean of x

    and the last mean vanishes: mean over the group of dd is dv * 2 / G times the
    mean of d, which is 0 by d's definition. With the direct path (x is copied
    into y), compactly:

        dL/dx = dL/dy[:, :C] + (g_j / K) * d / (G * sig)

    The cache is d and sig (what the compact form needs) and the group size.
    """

    EPS = 1e-8

    def __init__(self, group_size: int = 4):
        if not is_integer(group_size):
            raise ValueError(f"MinibatchStdDev: group_size must be an integer, got {group_size!r}")
        if group_size < 1:
            raise ValueError(f"MinibatchStdDev: group_size must be at least 1, got {group_size}")
        self.group_size = int(group_size)

    def __repr__(self) -> str:
        return f"MinibatchStdDev(group_size={self.group_size})"

    def forward(self, x: Any) -> Any:
        check_array(self, x)
        G = self.group_size
        if x.ndim < 2 or x.shape[0] % G:
            raise ValueError(
                f"{self!r}: expected input (batch, features, ...) with batch a multiple of "
                f"{G}, got {tuple(x.shape)}; choose a batch size that {G} divides"
            )
        xp = get_array_module(x)
        n, rest = x.shape[0], x.shape[1:]
        groups = x.reshape(n // G, G, *rest)  # (M, G, C, ...)
        d = groups - groups.mean(axis=1, keepdims=True)
        sig = xp.sqrt((d * d).mean(axis=1, keepdims=True) + x.dtype.type(self.EPS))  # (M, 1, ...)
        feature_axes = tuple(range(2, sig.ndim))
        s = sig.mean(axis=feature_axes, keepdims=True)  # (M, 1, 1, ...)
        # One slice along axis 1 per example, filled with its group's s.
        appended = (xp.ones((n // G, G, 1, *rest[1:]), dtype=x.dtype) * s).reshape(n, 1, *rest[1:])
        y = xp.concatenate([x, appended], axis=1)
        self.save_for_backward(d, sig, output_shape=y.shape)
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        d, sig = self.saved(grad_out)
        M, G = d.shape[0], self.group_size
        channels = d.shape[2]
        K = d[0, 0].size  # numbers per example
        grad_direct = grad_out[:, :channels]
        grad_appended = grad_out[:, channels:].reshape(M, G, -1)
        g = grad_appended.sum(axis=(1, 2)).reshape(M, 1, *([1] * (d.ndim - 2)))  # dL/ds
        grad_x = (g / K) * d / (G * sig)  # through the spread: the compact form above
        return grad_direct + grad_x.reshape(grad_direct.shape)
