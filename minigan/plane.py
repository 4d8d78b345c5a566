"""The 2-D mode-collapse tasks in a run: ``--dataset 2d-ring`` and ``--dataset 2d-grid``.

VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018) train on points of the plane
drawn from a mixture of Gaussians (``minigan.data.ring_mixture``, ``grid_mixture``), with
the small networks of ``minigan.models.points`` and their recipe (``points.RECIPES``).
This module is the run's side:

- ``load_points``: the training set, ``POINTS_PER_EPOCH`` points (the papers' epoch),
  drawn once by the run's seed;
- ``write_points``: ``--sample N`` from a 2-D checkpoint, an (N, 2) float32 .npy file;
- ``scores`` and ``PointScorer``: the papers' measures (``minigan.metrics.modes``): modes
  captured, the share of high-quality points, the reverse KL of the captured modes'
  histogram to uniform, on 2,500 points (``--eval-every``, ``examples/evaluate.py
  --mixture``).

A frame of the plane after every epoch, and the frames as a GIF, are drawn by
``minigan.pictures`` with ``minigan.frames``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from minigan import frames
from minigan.backend import to_host
from minigan.data import grid_centres, grid_mixture, ring_centres, ring_mixture
from minigan.images import float32_npy_file
from minigan.metrics.modes import MIXTURE_SAMPLES, grid_scores, ring_scores

DATASETS = ("2d-ring", "2d-grid")
POINTS_PER_EPOCH = 100_000  # the papers' epoch (PacGAN's code: 100,000 points, drawn once)
DEFAULT_EPOCHS = 3  # a default run: about 2 CPU minutes (the papers: 400, bench_modes.py)
EVAL_POINTS = MIXTURE_SAMPLES  # --eval-every's points: the papers' 2,500
FRAME_POINTS = 1000  # G's points in a frame, and the real points beside them
CHUNK = 10_000  # points generated at a time by --sample


def load_points(dataset: str, n: int, seed: int) -> np.ndarray:
    """``n`` training points of ``dataset``, float32 (n, 2), drawn by ``seed``."""
    draw = ring_mixture if dataset == "2d-ring" else grid_mixture
    return draw(n, seed)[0]


def centres(dataset: str) -> np.ndarray:
    """The modes' centres (K, 2): 8 on the unit circle, or 25 at {-4, ..., 4}^2."""
    return ring_centres() if dataset == "2d-ring" else grid_centres()


def scores(dataset: str, points: Any) -> dict[str, Any]:
    """The papers' measures of ``points`` (N, 2) against ``dataset``'s modes."""
    return ring_scores(points) if dataset == "2d-ring" else grid_scores(points)


def summary(measures: dict[str, Any]) -> str:
    """One line: "7 of 8 modes, 96.1% high quality, reverse KL 0.081"."""
    kl = measures["reverse_kl"]
    kl = "undefined (no high-quality point)" if kl is None or math.isnan(kl) else f"{kl:.3f}"
    return (f"{measures['modes']} of {measures['n_modes']} modes, "
            f"{measures['high_quality']:.1%} high quality, reverse KL {kl}")  # fmt: skip


def write_points(gan: Any, n: int, path: str | os.PathLike) -> np.ndarray:
    """G's points for ``n`` fresh noise vectors, float32 (n, 2), to the .npy ``path``
    (atomically), ``CHUNK`` at a time; returns the first ``FRAME_POINTS``."""
    first = None
    with float32_npy_file(path, (n, 2)) as write:
        for start in range(0, n, CHUNK):
            points = to_host(gan.generate(gan.sample_noise(min(CHUNK, n - start))))
            write(points)
            first = points[:FRAME_POINTS] if first is None else first
    return first


def draw_points(gan: Any, dataset: str, points: np.ndarray, path: Any, title: str) -> None:
    """A frame of ``points`` (G's) over the real mixture and D's surface, as a PNG."""
    surface, label, limits = frames.d_surface(gan, frames.EXTENTS[dataset])
    real = load_points(dataset, FRAME_POINTS, seed=0)
    frames.draw_frame(path, real, points, frames.EXTENTS[dataset], title,
                      centres=centres(dataset), surface=surface, surface_label=label,
                      surface_limits=limits)  # fmt: skip


class PointScorer:
    """``--eval-every`` on a 2-D task: the measures of G's points for ``n`` noise vectors
    (the papers': 2,500) fixed by the run's seed."""

    def __init__(self, gan: Any, dataset: str, seed: int, n: int = EVAL_POINTS):
        noise = np.random.default_rng([seed, 2]).standard_normal((n, gan.config.latent_dim))
        self.dataset, self.z = dataset, gan.backend.asarray(noise, dtype=np.float32)

    def score(self, gan: Any, epoch: int, log: Callable[[str], Any] = print) -> dict[str, Any]:
        measures = scores(self.dataset, to_host(gan.generate(self.z)))  # one read
        log(f"epoch {epoch}: {summary(measures)}")
        kl = measures["reverse_kl"]
        return {"modes": measures["modes"], "high_quality": measures["high_quality"],
                "reverse_kl": None if math.isnan(kl) else kl, "counts": measures["counts"]}  # fmt: skip
