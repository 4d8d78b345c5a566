"""Pictures of training: sample grids and the loss / D-output curves."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from minigan.files import atomic_write


def image_grid(images: np.ndarray, ncols: int = 8, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W) images in [0, 1] into one (rows*(H+pad)+pad, ...) picture."""
    n, h, w = images.shape
    nrows = -(-n // ncols)
    grid = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad), dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def save_image_grid(images: np.ndarray, path: str | os.PathLike, ncols: int = 8) -> None:
    """Save (N, H, W) images in [0, 1] as one grayscale PNG (white digits on black)."""
    import matplotlib.image

    grid = image_grid(np.clip(images, 0.0, 1.0), ncols)
    with atomic_write(path) as f:
        matplotlib.image.imsave(f, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")


def history_figure(history: list[dict[str, Any]]) -> Any:
    """The figure ``plot_history`` saves: losses, mean D outputs and (if logged) FID."""
    # A bare Figure, not pyplot: no display needed, and no global backend switched.
    from matplotlib.figure import Figure

    step_rows = [row for row in history if "d_loss" in row]
    fid_rows = [row for row in history if "fid" in row]
    epochs = [row["epoch"] for row in step_rows]
    # A line needs two points: a series of one (an epoch shorter than --log-every, say)
    # is drawn as a marker, so no panel is ever empty.
    marker = "o" if len(step_rows) == 1 else None
    panels = 3 if fid_rows else 2
    fig = Figure(figsize=(4.2 * panels, 3.4), dpi=100)
    axes = fig.subplots(1, panels)
    for key, label in [("d_loss", "D loss"), ("g_loss", "G loss")]:
        values = [row.get(key, np.nan) for row in step_rows]
        axes[0].plot(epochs, values, label=label, lw=1, marker=marker)
    axes[0].set_title("losses")
    for key, label in [("d_real", "mean D(x)"), ("d_fake", "mean D(G(z))")]:
        axes[1].plot(epochs, [row[key] for row in step_rows], label=label, lw=1, marker=marker)
    axes[1].set_title("discriminator outputs")
    axes[1].set_ylim(0, 1)
    if fid_rows:
        axes[2].plot([r["epoch"] for r in fid_rows], [r["fid"] for r in fid_rows], "o-", lw=1)
        axes[2].set_title("FID vs MNIST test (lower is better)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[:2]:
        ax.legend()
    fig.tight_layout()
    return fig


def plot_history(history: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Plot losses, mean D outputs and (if logged) FID against the epoch, as a PNG."""
    fig = history_figure(history)
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
