"""Pictures of training: sample grids and the loss / D-output curves."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from minigan.files import atomic_write


def image_grid(images: np.ndarray, ncols: int = 8, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W) grey or (N, H, W, 3) colour images in [0, 1] into one picture,
    (rows*(H+pad)+pad, ncols*(W+pad)+pad[, 3]), on a white background."""
    n, h, w = images.shape[:3]
    nrows = -(-n // ncols)
    grid = np.ones(
        (nrows * (h + pad) + pad, ncols * (w + pad) + pad, *images.shape[3:]), dtype=np.float32
    )
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def save_image_grid(images: np.ndarray, path: str | os.PathLike, ncols: int = 8) -> None:
    """Save (N, H, W) grey images (white digits on black) or (N, H, W, 3) colour images,
    values in [0, 1], as one PNG."""
    import matplotlib.image

    grid = image_grid(np.clip(images, 0.0, 1.0), ncols)
    with atomic_write(path) as f:
        matplotlib.image.imsave(f, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")


def history_figure(history: list[dict[str, Any]], labels: dict[str, str] | None = None) -> Any:
    """The figure ``plot_history`` saves: the losses, the model's other figures
    (D's outputs, a critic's Wasserstein estimate, ...) and, if logged, FID, and the
    mode-collapse measures (``mode_panels``).

    ``labels`` names the figures (a model's ``stats``); by default those of the
    vanilla GAN.
    """
    # A bare Figure, not pyplot: no display needed, and no global backend switched.
    from matplotlib.figure import Figure

    labels = labels or {
        "d_loss": "D loss",
        "g_loss": "G loss",
        "d_real": "mean D(x)",
        "d_fake": "mean D(G(z))",
    }
    step_rows = [row for row in history if "d_loss" in row]
    # Scores taken after some epochs: FID (--eval-every), or SGAN's test error.
    score = "fid" if any("fid" in row for row in history) else "test_error"
    fid_rows = [row for row in history if score in row]
    mode_rows = [row for row in history if "modes" in row]  # 2-D tasks, Stacked MNIST
    epochs = [row["epoch"] for row in step_rows]
    losses = [key for key in labels if key.endswith("_loss")]
    others = [key for key in labels if not key.endswith("_loss")]
    # A line needs two points: a series of one (an epoch shorter than --log-every, say)
    # is drawn as a marker, so no panel is ever empty.
    marker = "o" if len(step_rows) == 1 else None
    extra = mode_panels(mode_rows)
    panels = 1 + bool(others) + bool(fid_rows) + len(extra)
    fig = Figure(figsize=(4.2 * panels, 3.4), dpi=100)
    axes = list(np.atleast_1d(fig.subplots(1, panels)))
    for ax, keys, title in [
        (axes[0], losses, "losses"),
        (axes[1], others, "what D (or the critic) reports"),
    ][: 1 + bool(others)]:
        for key in keys:
            values = [row.get(key, np.nan) for row in step_rows]
            ax.plot(epochs, values, label=labels[key], lw=1, marker=marker)
        ax.set_title(title)
        ax.legend(fontsize="small")
    if others and set(others) <= {"d_real", "d_fake"}:  # probabilities
        axes[1].set_title("discriminator outputs")
        axes[1].set_ylim(0, 1)
    if fid_rows:
        ax = axes[1 + bool(others)]
        ax.plot([r["epoch"] for r in fid_rows], [r[score] for r in fid_rows], "o-", lw=1)
        ax.set_title(
            "FID vs MNIST test (lower is better)"
            if score == "fid"
            else "D's test error as a classifier"
        )
    for ax, draw in zip(axes[len(axes) - len(extra) :], extra):
        draw(ax)
        if step_rows:  # the same epochs as the losses' panel: scored epochs line up
            ax.set_xlim(axes[0].get_xlim())
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def mode_panels(rows: list[dict[str, Any]]) -> list[Any]:
    """How to draw ``--eval-every``'s mode-collapse measures, one function per panel
    (each takes its axes); none without such rows.

    The 2-D tasks (rows with ``high_quality``, and ``counts``: high-quality points per
    mode, whose length is the number of modes) get modes captured with the reverse KL on
    a twin axis, and the share of high-quality points; Stacked MNIST gets modes of 1,000
    with the KL of their histogram to uniform on a twin axis (``minigan.metrics.modes``).
    """
    if not rows:
        return []
    epochs = [row["epoch"] for row in rows]
    planar = "high_quality" in rows[-1]
    total = (len(rows[-1].get("counts") or ()) or None) if planar else 1000
    kl_key, kl_label = ("reverse_kl", "reverse KL") if planar else ("kl", "KL to uniform")

    def number(value: Any) -> float:
        return np.nan if value is None else value  # no high-quality point: no KL

    def modes(ax: Any) -> None:
        ax.plot(epochs, [row["modes"] for row in rows], "o-", lw=1, ms=4, label="modes")
        if total:
            ax.axhline(total, color="grey", ls="--", lw=1, label=f"all {total}")
            ax.set_ylim(0, total * 1.05)
        ax.set_ylabel(f"modes{f' of {total}' if total else ''} (higher is better)")
        twin = ax.twinx()
        kl = [number(row.get(kl_key)) for row in rows]
        twin.plot(epochs, kl, "s-", color="tab:red", lw=1, ms=4, label=kl_label)
        twin.set_ylim(bottom=0)
        twin.set_ylabel(f"{kl_label} (lower is better)", color="tab:red")
        twin.tick_params(axis="y", colors="tab:red")
        lines = ax.get_lines() + twin.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], fontsize="small", loc="center right")
        ax.set_title(f"modes captured, and {kl_label}" if planar else "Stacked MNIST: modes, KL")

    def high_quality(ax: Any) -> None:
        share = [100 * row["high_quality"] for row in rows]
        ax.plot(epochs, share, "o-", lw=1, ms=4, color="tab:green")
        ax.set_ylim(0, 105)
        ax.set_ylabel("% of points, < 3 std from a mode")
        ax.set_title("high-quality points")

    return [modes, high_quality] if planar else [modes]


def plot_history(
    history: list[dict[str, Any]], path: str | os.PathLike, labels: dict[str, str] | None = None
) -> None:
    """Plot the logged figures (and FID or the mode-collapse measures, if logged)
    against the epoch, as a PNG."""
    fig = history_figure(history, labels)
    with atomic_write(path) as f:
        fig.savefig(f, format="png")


def save_captioned_grid(
    images: np.ndarray, captions: list[str], path: str | os.PathLike, ncols: int = 8
) -> None:
    """Save (N, H, W) grey images in [0, 1] as rows of ``ncols``, each row headed by its
    caption (``captions[r]`` for row r), and the columns marked Stage-I / Stage-II in
    turn (``minigan.captioned.caption_grid``'s layout), as one PNG."""
    from matplotlib.figure import Figure

    grid = image_grid(np.clip(images, 0.0, 1.0), ncols)
    rows, side = len(captions), images.shape[1] + 2
    fig = Figure(figsize=(2.2 + ncols * 0.55, 0.4 + rows * 0.55), dpi=100)
    ax = fig.add_axes((0.32, 0.02, 0.66, 0.92))
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_yticks([2 + side * (r + 0.5) for r in range(rows)], captions, fontsize=9)
    ax.set_xticks([2 + side * (c + 0.5) for c in range(ncols)],
                  ["I", "II"] * (ncols // 2), fontsize=8)  # fmt: skip
    ax.tick_params(length=0)
    ax.set_title("Stage-I (enlarged) | Stage-II, per caption", fontsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
