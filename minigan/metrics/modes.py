"""Mode collapse, counted as the papers count it: the 2-D ring and grid, and Stacked MNIST.

**2-D mixtures** (VEEGAN, Srivastava et al. 2017, section 5.1; PacGAN, Lin et al. 2018,
Table 1). Given generated points and the mixture's mode centres and standard deviation:

- each point belongs to its NEAREST mode; it is *high quality* when it lies within 3
  standard deviations of that mode's centre, ``|x - c| < 3 std`` (strictly: PacGAN's
  code, ``MetricLogger`` with ``dis_thre=3``, keeps ``min_dis < 3``, its distance being
  ``sqrt(sum((x - c)^2 / var))``, which is ``|x - c| / std`` for the papers' isotropic
  modes);
- a mode is *captured* when at least one high-quality point belongs to it (VEEGAN:
  "the number of mixture components whose mean is nearest to at least one high quality
  sample"; PacGAN's code counts the modes whose high-quality count is nonzero);
- ``high_quality`` is the share of ALL points that are high quality;
- ``reverse_kl`` is KL(P_gen || P_real) between the histogram of the high-quality
  points over the modes (the code's ``detail_of_coverage`` normalised to sum 1) and the
  real mixture's, uniform: ``sum_k p_k log(K p_k)``, empty modes adding 0 (0 log 0 = 0).
  "Reverse" because the generated distribution comes first: it punishes a generator
  for piling its points on few modes (one mode only gives log K: log 8 = 2.08, log 25 =
  3.22), and missing modes cost only through the extra weight on the others.
  (PacGAN's released 2-D code logs the Jensen-Shannon divergence of that histogram to
  uniform, not a KL; its paper's Table 1 reports a reverse KL, computed here from the
  same histogram, in the direction and with the 0 log 0 = 0 rule of its Stacked-MNIST
  code's ``KLD(p, q)``.) With no high-quality point at all the histogram is undefined
  and ``reverse_kl`` is NaN.

The papers score 2,500 generated points (PacGAN's ``num_log_figure_sample``).

**Stacked MNIST** (VEEGAN section 5.2; PacGAN Table 2; Unrolled GAN, Metz et al. 2016):
each of an image's three channels is classified by an MNIST classifier (here the
project's, ``Evaluator``: the papers used their own Keras CNN); the triple of digits
(d0, d1, d2) is the image's mode, one of 1,000. ``modes`` counts the modes hit by at
least one of the samples (26,000 in PacGAN's code), and ``kl`` is KL(histogram ||
uniform) over the 1,000 modes, empty modes adding 0: PacGAN's ``KLD(p, q)`` with p the
samples' histogram and q = 1/1000. A perfect generator's sample of N = 26,000 still
shows about (1000 - 1) / (2 N) = 0.02 of it, from sampling noise alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigan.backend import to_host
from minigan.data import GRID_STD, RING_STD, grid_centres, ring_centres
from minigan.metrics.classifier import classify
from minigan.metrics.scores import kl_to_uniform

HIGH_QUALITY_STDS = 3.0  # a point within 3 standard deviations of its mode is high quality
MIXTURE_SAMPLES = 2500  # the papers score 2,500 generated points per run
STACKED_SAMPLES = 26000  # PacGAN's Stacked MNIST evaluation: 26,000 samples
STACKED_MODES = 1000
RANGE_TOLERANCE = 1e-3  # as the Evaluator's: float rounding of (tanh + 1) / 2


def _points(where: str, points: Any) -> np.ndarray:
    x = np.asarray(to_host(points) if hasattr(points, "shape") else points)
    if x.ndim != 2 or x.shape[1] != 2 or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{where}: expected points (N, 2) with N >= 1, got shape {x.shape}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{where}: points contain NaN or infinite values")
    return x


def mixture_scores(
    points: Any, centres: Any, std: float, *, threshold: float = HIGH_QUALITY_STDS
) -> dict[str, Any]:
    """The 2-D measures of ``points`` against a mixture of isotropic Gaussians.

    Args:
        points: generated points (N, 2), any float dtype (NumPy or CuPy).
        centres: the modes' centres (K, 2).
        std: the modes' standard deviation per coordinate (> 0).
        threshold: how many standard deviations count as high quality (the papers': 3).

    Returns:
        ``modes`` (captured, of K), ``high_quality`` (a share of all points, 0 to 1),
        ``reverse_kl`` (see the module docstring; NaN with no high-quality point),
        ``counts`` (high-quality points per mode, a list of K ints), ``n_modes`` (K) and
        ``n_samples`` (N): plain Python numbers, ready for ``json.dumps``.
    """
    where = "mixture_scores"
    x = _points(where, points)
    c = np.asarray(centres, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2 or len(c) == 0:
        raise ValueError(f"{where}: expected centres (K, 2), got shape {c.shape}")
    if not std > 0:
        raise ValueError(f"{where}: std must be > 0, got {std!r}")
    # Squared distances (N, K) via |x|^2 - 2 x.c + |c|^2 would lose the small distances
    # that matter here (0.03 next to 4) to cancellation: take the differences instead.
    distance = np.sqrt(((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)) / std
    nearest = distance.argmin(axis=1)
    good = distance[np.arange(len(x)), nearest] < threshold
    counts = np.bincount(nearest[good], minlength=len(c))
    total = int(counts.sum())
    return {
        "modes": int((counts > 0).sum()),
        "high_quality": total / len(x),
        "reverse_kl": kl_to_uniform(counts / total) if total else float("nan"),
        "counts": counts.tolist(),
        "n_modes": len(c),
        "n_samples": len(x),
    }


def ring_scores(points: Any) -> dict[str, Any]:
    """``mixture_scores`` against the 2-D ring (8 modes on the unit circle, std 0.01)."""
    return mixture_scores(points, ring_centres(), RING_STD)


def grid_scores(points: Any) -> dict[str, Any]:
    """``mixture_scores`` against the 2-D grid (25 modes at {-4,..,4}^2, std 0.05)."""
    return mixture_scores(points, grid_centres(), GRID_STD)


def channel_digits(samples: Any, evaluator: Any) -> np.ndarray:
    """The digit the classifier reads in each channel: int64 (N, 3).

    Args:
        samples: Stacked MNIST images (N, 3, 28, 28), floats in [0, 1].
        evaluator: an ``Evaluator`` (its ``model`` and ``data`` classify).
    """
    where = "stacked_mnist_modes"
    x = to_host(samples) if hasattr(samples, "shape") else np.asarray(samples)
    if x.ndim != 4 or x.shape[1:] != (3, 28, 28) or len(x) == 0:
        raise ValueError(f"{where}: expected samples (N, 3, 28, 28), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{where}: expected floats in [0, 1], got {x.dtype}; uint8 images in [0, 255] "
            f"convert with images.astype('float32') / 255"
        )
    low, high = float(x.min()), float(x.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{where}: samples contain NaN or infinite values")
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(
            f"{where}: expected pixel values in [0, 1], got values from {low:.4g} to "
            f"{high:.4g}; a Tanh output in [-1, 1] converts with (x + 1) / 2"
        )
    n = len(x)
    digits = np.empty((n, 3), np.int64)
    for channel in range(3):
        pixels = np.ascontiguousarray(x[:, channel]).reshape(n, 784)
        logits, _ = classify(evaluator.model, pixels, data=evaluator.data)
        digits[:, channel] = logits.argmax(axis=1)
    return digits


def stacked_mnist_modes(samples: Any, evaluator: Any) -> dict[str, Any]:
    """Stacked MNIST's modes and KL, as PacGAN's Table 2 measures them.

    Args:
        samples: generated images (N, 3, 28, 28), floats in [0, 1] (the papers: 26,000).
        evaluator: an ``Evaluator``: each channel is classified by its MNIST classifier.

    Returns:
        ``modes`` (of 1,000, hit by at least one sample), ``kl`` (KL(histogram ||
        uniform) over the 1,000 modes; 0 is perfectly balanced, log 1000 = 6.91 one mode
        only), ``n_samples``: plain Python numbers.
    """
    digits = channel_digits(samples, evaluator)
    mode = digits @ np.array([100, 10, 1])
    counts = np.bincount(mode, minlength=STACKED_MODES)
    return {
        "modes": int((counts > 0).sum()),
        "kl": kl_to_uniform(counts / counts.sum()),
        "n_samples": len(digits),
    }
