"""Pictures of a 2-D GAN learning: one frame every N steps, and the frames as a GIF.

Mode collapse is easiest to believe when watched. On the 2-D ring and grid
(``minigan.data.ring_mixture``, ``grid_mixture``) a frame shows, on a fixed window of
the plane:

- D's output as a shaded surface: for each point x of a grid over the window, what D
  says of x (a probability for the GAN, a least-squares score for LSGAN, the critic's
  value for WGAN and WGAN-GP; the colour bar says which). A D that packs m points
  (PacGAN) scores a pack, and the surface shows its verdict on the pack (x, x, ..., x);
- the real mixture: its samples, and its modes' centres (crosses);
- G's samples (dots in another colour).

A collapsing G piles its points on one or two modes and the shading chases them
around; a healthy one covers every cross. ``d_surface`` evaluates D on the grid in
one pass on the model's device and reads the result back once (the picture needs it
on the host anyway); ``draw_frame`` draws a frame (a matplotlib ``Figure``, no
pyplot) and saves it as a PNG; ``write_gif`` strings saved frames into an animated
GIF with Pillow. Every file is written atomically (``minigan.files.atomic_write``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigan.backend import to_host
from minigan.files import atomic_write

# The window each 2-D dataset is drawn in, (x_min, x_max, y_min, y_max): fixed, so that
# frames compare at a glance; the ring has radius 1, the grid's modes lie at +-4.
EXTENTS: dict[str, tuple[float, float, float, float]] = {
    "2d-ring": (-1.5, 1.5, -1.5, 1.5),
    "2d-grid": (-5.5, 5.5, -5.5, 5.5),
}
RESOLUTION = 120  # grid points per side of the surface

# What D's surface means, by model: (colour bar label, value range or None: the frame's own).
SURFACES: dict[str, tuple[str, tuple[float, float] | None]] = {
    "gan": ("D(x): probability that x is real", (0.0, 1.0)),
    "lsgan": ("D(x): least-squares score (real 1, fake 0)", None),
    "wgan": ("critic value D(x) (higher: more real)", None),
    "wgan-gp": ("critic value D(x) (higher: more real)", None),
}


def plane_grid(extent: Sequence[float], resolution: int = RESOLUTION) -> np.ndarray:
    """The points of a ``resolution`` x ``resolution`` grid over ``extent``, float32
    (resolution^2, 2), row by row from the bottom: reshaped to (resolution, resolution)
    a value per point is an image for ``imshow(origin="lower")``."""
    x0, x1, y0, y1 = extent
    xs = np.linspace(x0, x1, resolution, dtype=np.float32)
    ys = np.linspace(y0, y1, resolution, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)  # gx[i, j] = xs[j], gy[i, j] = ys[i]
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def d_surface(
    model: Any, extent: Sequence[float], resolution: int = RESOLUTION
) -> tuple[np.ndarray, str, tuple[float, float] | None]:
    """D's output over the window: (values (resolution, resolution) on the host, the
    colour bar's label, the value range to draw or None).

    One forward pass of D over the grid on the model's device, in evaluation mode
    (D's caches from the pass are overwritten by the next training step), then ONE
    read back. A GAN's logits go through the sigmoid; a packed D scores each grid
    point as the pack of ``pack`` copies of it.
    """
    D, pack = model.discriminator, getattr(model.config, "pack", 1)
    grid = plane_grid(extent, resolution)
    x = model.backend.asarray(np.repeat(grid, pack, axis=0), dtype=model.dtype)  # (x, x, ..)
    D.eval()
    try:
        scores = D.forward(x)[:, 0]
    finally:
        D.train()
    label, limits = SURFACES.get(model.name, ("D(x)", None))
    if model.name == "gan" and getattr(model.config, "logits", False):
        xp = model.backend.xp
        scores = 1 / (1 + xp.exp(-scores))  # the probability D's logit stands for
    values = to_host(scores).astype(np.float64)  # the one read of the frame
    return values.reshape(resolution, resolution), label, limits


def frame_figure(
    real: np.ndarray,
    fake: np.ndarray,
    extent: Sequence[float],
    title: str,
    *,
    centres: np.ndarray | None = None,
    surface: np.ndarray | None = None,
    surface_label: str = "D(x)",
    surface_limits: tuple[float, float] | None = None,
) -> Any:
    """The frame as a matplotlib ``Figure``: the surface shaded (if given) under the
    real samples, the modes' centres and G's samples, on the fixed window ``extent``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 4.6), dpi=100)
    ax = fig.add_axes((0.12, 0.1, 0.64, 0.8))
    if surface is not None:
        low, high = surface_limits or (float(surface.min()), float(surface.max()))
        image = ax.imshow(
            surface, extent=tuple(extent), origin="lower", cmap="RdBu_r", vmin=low,
            vmax=high if high > low else low + 1e-6, alpha=0.8, interpolation="bilinear",
            aspect="auto",
        )  # fmt: skip
        bar = fig.colorbar(image, cax=fig.add_axes((0.8, 0.1, 0.03, 0.8)))
        bar.set_label(surface_label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    real, fake = np.asarray(real), np.asarray(fake)
    ax.scatter(real[:, 0], real[:, 1], s=4, c="0.25", alpha=0.5, lw=0, label="real samples")
    if centres is not None:
        ax.scatter(centres[:, 0], centres[:, 1], s=40, marker="x", c="k", lw=1.2,
                   label="real modes")  # fmt: skip
    ax.scatter(fake[:, 0], fake[:, 1], s=5, c="#f5a000", alpha=0.7, lw=0, label="G's samples")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.85, markerscale=1.5)
    return fig


def draw_frame(path: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
    """Save ``frame_figure(*args, **kwargs)`` as a PNG at ``path`` (atomically)."""
    fig = frame_figure(*args, **kwargs)
    with atomic_write(path) as f:
        fig.savefig(f, format="png")


def model_frame(
    path: str | os.PathLike,
    model: Any,
    real: np.ndarray,
    extent: Sequence[float],
    title: str,
    *,
    centres: np.ndarray | None = None,
    samples: int = 1000,
    seed: int = 0,
) -> None:
    """A frame of ``model`` as it is now: ``samples`` of G's points (``model.generate``)
    and D's surface (``d_surface``), over ``real``'s samples; two reads, both here.

    G's noise comes from its own generator seeded with ``seed``, not the model's
    stream: the same z in every frame (each dot follows one z through the animation),
    and drawing frames leaves training's random numbers untouched.
    """
    noise = np.random.default_rng(seed).standard_normal((samples, model.config.latent_dim))
    z = model.backend.asarray(noise, dtype=model.dtype)
    fake = to_host(model.generate(z))
    surface, label, limits = d_surface(model, extent)
    draw_frame(
        path, real, fake, extent, title, centres=centres, surface=surface,
        surface_label=label, surface_limits=limits,
    )  # fmt: skip


def write_gif(
    frame_paths: Sequence[str | os.PathLike],
    gif_path: str | os.PathLike,
    *,
    duration_ms: int = 250,
    hold_last_ms: int = 1500,
    loop: int = 0,
) -> None:
    """String the PNG frames into an animated GIF (Pillow), each shown ``duration_ms``,
    the last held ``hold_last_ms`` so the final state can be read; ``loop`` 0 repeats
    forever. Written atomically."""
    from PIL import Image

    if not frame_paths:
        raise ValueError("write_gif: no frames given")
    frames = []
    for path in frame_paths:
        with Image.open(path) as image:
            frames.append(image.convert("RGB").quantize(colors=255, dither=Image.Dither.NONE))
    durations = [duration_ms] * (len(frames) - 1) + [max(duration_ms, hold_last_ms)]
    with atomic_write(gif_path) as f:
        frames[0].save(
            f, format="GIF", save_all=True, append_images=frames[1:], duration=durations,
            loop=loop, disposal=1,
        )  # fmt: skip
