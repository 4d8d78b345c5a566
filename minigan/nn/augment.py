"""DiffAugment: random, differentiable changes to every image a discriminator sees.

With few training pictures (a few hundred), D soon tells them from G's by details G
cannot draw yet, its verdicts stop carrying information, and G collapses (measured:
benchmarks/RESULTS.md, "DCGAN, Fashion-MNIST and a folder of pictures"). Augmenting
only the real pictures is no answer: Zhao et al. show that G then learns to draw
augmented pictures. They (2020, "Differentiable Augmentation for Data-Efficient GAN
Training") augment *every* picture D sees, real and fake, in D's step and in G's, with
transformations simple enough to differentiate, so G's gradient flows back through
them. Their policy, which this layer follows (``DiffAugment_pytorch.py`` of their code),
in this order:

    color        y = x + b                        brightness, b ~ U[-0.5, 0.5)
                 y = s (y - mean_c y) + mean_c y  saturation, s ~ U[0, 2)
                 y = k (y - mean y) + mean y      contrast,   k ~ U[0.5, 1.5)
    translation  y[i, j] = x[i + di, j + dj], 0 outside the picture; di an integer in
                 [-round(H/8), round(H/8)], dj likewise for the width
    cutout       y = x * mask; the mask zeroes a square of half the picture's side,
                 centred anywhere in it and clipped at its edges (so on average less
                 than a quarter of the picture is cut)

each drawn anew for every picture (mean_c: over the channels of each pixel, so
saturation does nothing to a grey picture; mean: over all of a picture's values).

**Backward.** For fixed draws every step is affine in x, y = A x + c, so
dL/dx = A^T dL/dy, and each A^T is easy:

- brightness adds a constant: A = I, dL/dx = dL/dy.
- saturation and contrast are y = s x + (1 - s) P x, with P the averaging over the
  channels (or the whole picture) broadcast back; P is symmetric (every entry of the
  average gets weight 1/n, and hands it back with 1/n), so A^T = A: the backward pass
  is the forward map applied to g = dL/dy, dL/dx = s g + (1 - s) P g =
  ``mix(g, mean g, s)``.
- translation by d (zero fill) moves each pixel at most once: A is a partial
  permutation and A^T moves back, by -d, with zero fill. Row i of y reads row i + d
  of x; so row k of x receives from row k - d of y, when that row exists.
- cutout multiplies by a fixed 0/1 mask: A = diag(mask) = A^T.

Backward runs the steps in reverse order (cutout, translation, contrast, saturation,
brightness), each with its own draws, which forward saves.

Everything stays on the input's device: the draws come from the layer's generator as
arrays (the model hands it its noise stream, as for ``GaussianNoise``), the shifts
and the square become index arithmetic on arrays, never host integers, so a CuPy
step reads nothing back. In evaluation mode the layer is the identity.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.nn.checks import check_array
from minigan.nn.noise import _NoiseLayer

POLICIES = ("color", "translation", "cutout")


def mix(x: Any, mean: Any, s: Any) -> Any:
    """s (x - mean) + mean = s x + (1 - s) mean: saturation and contrast."""
    return s * (x - mean) + mean


def translate(x: Any, di: Any, dj: Any) -> Any:
    """y[n, :, i, j] = x[n, :, i + di[n], j + dj[n]], 0 where that is outside the picture.

    di, dj: integer arrays (N,). The transpose of a translation by d is the
    translation by -d (module docstring), so backward calls this with -di, -dj.
    """
    xp = get_array_module(x)
    n, _, h, w = x.shape
    rows = xp.arange(h)[None, :] + di[:, None]  # (N, H): the row each output row reads
    cols = xp.arange(w)[None, :] + dj[:, None]  # (N, W)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    picture = xp.arange(n)[:, None, None]
    # (N, H, W, C): each picture's pixels gathered from their rows and columns, those
    # that fall outside clipped to any row (and then zeroed by ``inside``)
    gathered = x.transpose(0, 2, 3, 1)[
        picture, xp.clip(rows, 0, h - 1)[:, :, None], xp.clip(cols, 0, w - 1)[:, None, :]
    ]
    return (gathered * inside[..., None].astype(x.dtype)).transpose(0, 3, 1, 2)


class DiffAugment(_NoiseLayer):
    """Differentiable augmentation of a batch of images (N, C, H, W), in training only.

    See the module docstring. As D's first layer it augments every picture D judges,
    and G's gradient passes back through it.

    Args:
        policy: which of ``POLICIES`` to apply ("color", "translation", "cutout"), as
            names or one comma-separated string, applied in that order whatever the
            order given.
        translation: the largest shift, as a fraction of the side (1/8).
        cutout: the square's side, as a fraction of the picture's side (1/2).
        rng: the generator for the draws (see ``minigan.nn.noise``).
    """

    def __init__(
        self,
        policy: tuple[str, ...] | list[str] = POLICIES,
        translation: float = 0.125,
        cutout: float = 0.5,
        *,
        rng: Any = None,
    ) -> None:
        if isinstance(policy, str):  # "color,translation,cutout", as Zhao et al. write it
            policy = [step.strip() for step in policy.split(",") if step.strip()]
        unknown = sorted(set(policy) - set(POLICIES))
        if unknown or not policy:
            raise ValueError(
                f"DiffAugment: policy must name one or more of {', '.join(POLICIES)}; "
                f"got {', '.join(map(repr, policy)) or 'none'}"
            )
        for name, value in (("translation", translation), ("cutout", cutout)):
            if not 0 <= value <= 1:
                raise ValueError(f"DiffAugment: {name} must lie in [0, 1], got {value}")
        super().__init__(rng)
        self.policy = tuple(p for p in POLICIES if p in policy)
        self.translation, self.cutout = float(translation), float(cutout)

    def __repr__(self) -> str:
        return (
            f"DiffAugment(policy={','.join(self.policy)!r}, translation={self.translation}, "
            f"cutout={self.cutout})"
        )

    def draw(self, x: Any) -> dict[str, Any]:
        """One set of random draws for the batch x: arrays on x's device."""
        xp, rng = get_array_module(x), self.generator(x)
        n, _, h, w = x.shape

        def uniform(low: float, high: float) -> Any:  # (N, 1, 1, 1) in [low, high)
            return low + (high - low) * rng.random((n, 1, 1, 1), dtype=x.dtype)

        # Integers from uniform floats: the layer uses only the generator methods NumPy's
        # and CuPy's share with every other random layer here (random, standard_normal).
        def integers(low: int, high: int) -> Any:  # (N,) in [low, high]
            u = rng.random(n, dtype=x.dtype).astype(xp.float64)
            return (low + xp.floor(u * (high - low + 1))).astype(xp.int64).clip(low, high)

        draws: dict[str, Any] = {}
        if "color" in self.policy:
            draws["brightness"] = uniform(-0.5, 0.5)
            draws["saturation"] = uniform(0.0, 2.0)
            draws["contrast"] = uniform(0.5, 1.5)
        if "translation" in self.policy:
            sh, sw = int(h * self.translation + 0.5), int(w * self.translation + 0.5)
            draws["shift"] = (integers(-sh, sh), integers(-sw, sw))
        if "cutout" in self.policy:
            ch, cw = int(h * self.cutout + 0.5), int(w * self.cutout + 0.5)
            # the square's centre anywhere in the picture (as Zhao et al.'s code draws
            # it), then its top-left corner; what sticks out of the picture is cut off
            top = integers(0, h - ch % 2) - ch // 2
            left = integers(0, w - cw % 2) - cw // 2
            rows = xp.arange(h)[None, :] - top[:, None]  # (N, H): 0 .. ch-1 inside
            cols = xp.arange(w)[None, :] - left[:, None]
            square = ((rows >= 0) & (rows < ch))[:, :, None] & ((cols >= 0) & (cols < cw))[
                :, None, :
            ]
            draws["mask"] = (~square)[:, None].astype(x.dtype)  # (N, 1, H, W): 0 in it
        return draws

    def forward(self, x: Any) -> Any:
        check_array(self, x, shape=("batch", "channels", "height", "width"))
        draws = self.draw(x) if self.training else None
        self.save_for_backward(x, draws)  # x only to check dL/dy against
        return x if draws is None else augment(x, draws)

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        _, draws = self.saved(grad_out)
        if not input_grad:
            return None
        return grad_out if draws is None else augment_transposed(grad_out, draws)


def augment(x: Any, draws: dict[str, Any]) -> Any:
    """The augmentation for fixed draws, the module docstring's list in order."""
    if "brightness" in draws:
        x = x + draws["brightness"]
        x = mix(x, x.mean(axis=1, keepdims=True), draws["saturation"])
        x = mix(x, x.mean(axis=(1, 2, 3), keepdims=True), draws["contrast"])
    if "shift" in draws:
        di, dj = draws["shift"]
        x = translate(x, di, dj)
    if "mask" in draws:
        x = x * draws["mask"]
    return x


def augment_transposed(g: Any, draws: dict[str, Any]) -> Any:
    """dL/dx from dL/dy: each step's transpose (module docstring), in reverse order."""
    if "mask" in draws:
        g = g * draws["mask"]  # diag(mask) is its own transpose
    if "shift" in draws:
        di, dj = draws["shift"]
        g = translate(g, -di, -dj)  # moved back
    if "brightness" in draws:
        g = mix(g, g.mean(axis=(1, 2, 3), keepdims=True), draws["contrast"])  # A^T = A
        g = mix(g, g.mean(axis=1, keepdims=True), draws["saturation"])
        # brightness: + b, whose transpose is the identity
    return g
