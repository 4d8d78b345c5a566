"""The GAN paper's own score: a Parzen-window estimate of the test set's log-likelihood.

Goodfellow et al. (2014), "Generative Adversarial Nets", Section 5: a GAN gives no
likelihood, so fit a Gaussian kernel density to samples s_1..s_N of G and ask how
likely the real test digits are under it (a procedure the paper takes from Breuleux et
al., 2011). With d = 784 pixels in [0, 1] and one
bandwidth sigma for every kernel,

    p(x) = 1/N sum_i  N(x; s_i, sigma^2 I)
    log p(x) = logsumexp_i( -|x - s_i|^2 / (2 sigma^2) ) - log N - (d/2) log(2 pi sigma^2)

in nats per image. The score is the mean of log p(x) over the 10,000 MNIST test digits,
with its standard error std / sqrt(n). Higher is better.

The protocol, as the paper's code does it (``parzen_ll.py`` in github.com/goodfeli/adversarial,
"the script used to estimate the log likelihood of the model using the Parzen density
technique", its README says; its functions credit Yann N. Dauphin):

- images as 784-vectors in [0, 1] (pylearn2's MNIST divides the bytes by 255);
- N = 10,000 samples of G (its ``--num_samples`` default);
- sigma from ``numpy.logspace(-1, 0, 10)``, ten values from 0.1 to 1 (``--sigma_start -1``,
  ``--sigma_end 0``, ``--cross_val 10``): the one whose kernel density gives the highest
  mean log-likelihood to a validation split, MNIST training images 50,000-60,000
  (``get_valid``: ``MNIST('train', start=50000, stop=60000)``; the GAN itself trained on
  images 0-50,000, ``mnist.yaml``). The script's ``--limit_size`` default keeps only the
  first 1,000 of them; here, as the issue that brought this in asks, all 10,000 are used
  by ``examples/evaluate.py --parzen`` (the function takes whatever split it is given);
- the test set's mean log-likelihood at that sigma, and ``ll.std() / sqrt(n)`` (NumPy's
  ``std``: the 1/n variance) as its standard error.

The paper's Table 1 (MNIST, mean log-likelihood +- standard error, nats):

    DBN 138 +- 2 · Stacked CAE 121 +- 1.6 · Deep GSN 214 +- 1.1 · Adversarial nets 225 +- 2

Read these with care: in 784 dimensions a Parzen estimate from 10,000 points is far from
the true log-likelihood and can rank models in ways that match neither likelihood nor
sample quality (Theis, van den Oord and Bethge, 2016, "A note on the evaluation of
generative models"). It is here so that a learner can put minigan's number
beside the paper's, not as a judge of sample quality.

Computation. Everything is float64 NumPy on the host (a CuPy array is copied over once,
explicitly). The squared distances come from |x - s|^2 = |x|^2 + |s|^2 - 2 x.s, so the
work is one matrix product (BLAS), taken ``chunk_size`` test images at a time so that
memory stays bounded (10,000 x 10,000 distances in float64 would be 800 MB); rounding can
leave an exact 0 as a tiny negative number, clipped back to 0. The distances do not
depend on sigma, so the validation split's are computed once and reused for all ten.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigan.backend import get_array_module, to_host

SIGMAS = np.logspace(-1, 0, 10)  # parzen_ll.py: numpy.logspace(-1, 0, num=10)

# Rows of x per block: a block of distances to 10,000 centres is 256 x 10,000 float64,
# 20 MB, and each sigma's exponentials take one more such block. Large enough for the
# matrix product to run at full BLAS speed, small enough that the C allocator recycles
# the blocks instead of asking the system for fresh pages each time (which showed as
# system time with 40 MB blocks).
CHUNK_SIZE = 256

# How far outside [0, 1] a pixel may stray: float rounding of e.g. (tanh + 1) / 2.
RANGE_TOLERANCE = 1e-3

# Goodfellow et al. (2014), Table 1, MNIST column: (mean, standard error) in nats.
PAPER_TABLE = {
    "DBN": (138.0, 2.0),
    "Stacked CAE": (121.0, 1.6),
    "Deep GSN": (214.0, 1.1),
    "Adversarial nets": (225.0, 2.0),
}


def as_vectors(name: str, images: Any, min_count: int = 2) -> np.ndarray:
    """``images`` (N, 784), (N, 28, 28) or (N, 1, 28, 28), checked, as float64 (N, d) on the host.

    Raises one-line errors: TypeError for a non-array or integer images, ValueError for a
    wrong shape, fewer than ``min_count`` images, NaN/inf, or pixels outside [0, 1].
    """
    if get_array_module(images) is not np:
        images = to_host(images)  # the one transfer from a GPU
    if not isinstance(images, np.ndarray):
        raise TypeError(f"parzen: {name}: expected an array of images, got {type(images).__name__}")
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(
            f"parzen: {name}: expected float pixels in [0, 1], got dtype {images.dtype}; "
            f"uint8 images convert with images.astype('float64') / 255"
        )
    if images.ndim < 2:
        raise ValueError(
            f"parzen: {name}: expected images (N, 784) or (N, 28, 28), got {images.shape}"
        )
    n = images.shape[0]
    if images.size == 0 and n > 0:
        raise ValueError(f"parzen: {name}: images of shape {images.shape} hold no pixels")
    if n < min_count:
        raise ValueError(f"parzen: {name}: need at least {min_count} images, got {n}")
    x = images.reshape(n, -1).astype(np.float64, copy=False)
    low, high = float(x.min()), float(x.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"parzen: {name}: contains NaN or infinite values")
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        hint = "from a Tanh, use (x + 1) / 2" if low >= -1 - RANGE_TOLERANCE else "rescale"
        if low >= -RANGE_TOLERANCE and high <= 255 + RANGE_TOLERANCE:
            hint = "this looks like [0, 255]: use x / 255"
        raise ValueError(
            f"parzen: {name}: expected pixels in [0, 1], got {low:.4g} to {high:.4g}; {hint}"
        )
    return x


def check_sigmas(sigmas: Any) -> np.ndarray:
    """``sigmas`` as a 1-D float64 array of positive, finite bandwidths."""
    s = np.asarray(sigmas, dtype=np.float64)
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"parzen: sigmas: expected positive finite bandwidths, got {sigmas!r}")
    return s


# --- the formula, in two steps ---------------------------------------------------------


def squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """|x_i - s_j|^2 for every pair: x (n, d), centres (m, d) -> (n, m), float64.

    Expands |x - s|^2 = |x|^2 + |s|^2 - 2 x.s: one matrix product instead of an
    (n, m, d) array of differences. Its rounding error is about 1e-16 (|x|^2 + |s|^2),
    around 1e-14 for MNIST digits, whose squared distances are typically above 1; but it can
    leave a true 0 (x equal to a centre) a tiny negative number, which is clipped to 0.
    """
    d2 = -2.0 * (x @ centres.T)
    d2 += (x * x).sum(axis=1)[:, None]
    d2 += (centres * centres).sum(axis=1)[None, :]
    return np.maximum(d2, 0.0, out=d2)


def log_density_from_distances(sq_dist: np.ndarray, sigma: float, dim: int) -> np.ndarray:
    """log p(x_i) of the Gaussian kernel density, from row i of squared distances (n, m) -> (n,).

        log p = logsumexp_j(a_ij) - log m - (dim/2) log(2 pi sigma^2),  a_ij = -|x_i - s_j|^2 / (2 sigma^2)

    logsumexp is taken stably: with t_i = max_j a_ij, logsumexp = t_i + log sum_j exp(a_ij - t_i),
    where every exponent is <= 0 and the largest is exp(0) = 1, so nothing overflows and
    the sum never underflows to 0. ``sq_dist`` is left untouched.
    """
    a = sq_dist * (-0.5 / sigma**2)
    top = a.max(axis=1)
    a -= top[:, None]
    np.exp(a, out=a)  # in place: a is the one new block of this step
    log_sum = top + np.log(a.sum(axis=1))
    return log_sum - math.log(sq_dist.shape[1]) - 0.5 * dim * math.log(2 * math.pi * sigma**2)


# --- chunked over the images scored ----------------------------------------------------


def log_likelihoods_per_sigma(
    x: Any, centres: Any, sigmas: Any, chunk_size: int = CHUNK_SIZE
) -> np.ndarray:
    """log p(x_i) under the kernel density on ``centres``, for each sigma: (n, len(sigmas)).

    The distances of a block of ``chunk_size`` rows of x are computed once and reused for
    every sigma; memory holds two (chunk_size, m) blocks at a time (the distances, and
    one sigma's exponentials).
    """
    x = as_vectors("x", x, min_count=1)
    centres = as_vectors("centres", centres, min_count=1)
    sigmas = check_sigmas(sigmas)
    if x.shape[1] != centres.shape[1]:
        raise ValueError(f"parzen: x has {x.shape[1]} pixels per image, centres {centres.shape[1]}")
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"parzen: chunk_size: expected a positive integer, got {chunk_size!r}")
    out = np.empty((len(x), len(sigmas)))
    for start in range(0, len(x), chunk_size):
        block = squared_distances(x[start : start + chunk_size], centres)
        for k, sigma in enumerate(sigmas):
            out[start : start + chunk_size, k] = log_density_from_distances(
                block, float(sigma), x.shape[1]
            )
    return out


def log_likelihoods(x: Any, centres: Any, sigma: float, chunk_size: int = CHUNK_SIZE) -> np.ndarray:
    """log p(x_i) under the kernel density of bandwidth ``sigma`` on ``centres``: (n,)."""
    return log_likelihoods_per_sigma(x, centres, [sigma], chunk_size)[:, 0]


def standard_error(values: np.ndarray) -> float:
    """std / sqrt(n), with NumPy's default (1/n) std, as parzen_ll.py computes it."""
    return float(np.std(values) / math.sqrt(len(values)))


def parzen_log_likelihood(
    samples: Any,
    test: Any,
    validation: Any,
    sigmas: Any = SIGMAS,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, Any]:
    """Goodfellow et al.'s Parzen-window estimate of ``test``'s log-likelihood under ``samples``.

    Args:
        samples: G's samples, the kernels' centres: (N, 784) or (N, 28, 28) floats in [0, 1]
            (the paper: N = 10,000).
        test: the images scored: MNIST's 10,000 test digits, same layout.
        validation: the images sigma is chosen on: MNIST training images 50,000-60,000.
        sigmas: the bandwidths tried (default: ``SIGMAS``, numpy.logspace(-1, 0, 10)).
        chunk_size: rows scored per block of distances (memory only; the result is the same).

    Returns:
        ``sigma``: the chosen bandwidth; ``mean`` and ``standard_error``: of the test
        log-likelihoods (nats per image); ``sigmas`` and ``validation_means``: each
        bandwidth and the validation split's mean log-likelihood under it.
    """
    samples = as_vectors("samples", samples)
    test = as_vectors("test", test)
    validation = as_vectors("validation", validation, min_count=1)
    for name, images in (("test", test), ("validation", validation)):
        if images.shape[1] != samples.shape[1]:
            raise ValueError(
                f"parzen: {name} has {images.shape[1]} pixels per image, samples {samples.shape[1]}"
            )
    sigmas = check_sigmas(sigmas)
    validation_means = log_likelihoods_per_sigma(validation, samples, sigmas, chunk_size).mean(0)
    best = int(np.argmax(validation_means))
    test_ll = log_likelihoods(test, samples, float(sigmas[best]), chunk_size)
    return {
        "sigma": float(sigmas[best]),
        "mean": float(test_ll.mean()),
        "standard_error": standard_error(test_ll),
        "sigmas": [float(s) for s in sigmas],
        "validation_means": [float(v) for v in validation_means],
    }
