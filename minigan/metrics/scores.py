"""The statistics behind the scores: FID, Inception Score, class coverage.

Everything here is plain float64 NumPy on the host: pure functions of a classifier's
outputs (features, log-probabilities, predicted classes), with no model in sight, so
each can be checked by hand or against SciPy.

Frechet Inception Distance (Heusel et al., 2017). Fit a Gaussian to the features of
each set of images (mean mu, covariance S) and measure the Frechet (2-Wasserstein)
distance between the two Gaussians:

    FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)

0 means the two feature clouds have the same mean and covariance; it grows both when
samples look wrong (the mean moves) and when they lack variety (the covariance
shrinks). The original uses an ImageNet Inception network; here the features come
from an MNIST classifier, so the numbers are on their own scale and comparable only
with each other, at the same number of samples (FID is biased upwards for small sets).

Inception Score (Salimans et al., 2016), with p(y|x) the classifier's softmax and
p(y) = mean_x p(y|x):

    IS = exp( mean_x KL(p(y|x) || p(y)) )

High when every sample is classified confidently (p(y|x) peaked) and the classes are
used evenly (p(y) flat): between 1 (every sample gets the same distribution) and the
number of classes, 10. Computed over all samples at once (no splits).
"""

from __future__ import annotations

import numpy as np

# A class is "covered" when it gets at least this fraction of the samples. A
# balanced set gives each MNIST class 10%; 1% is a tenth of that fair share, low
# enough that an unlucky but present class counts, high enough that a handful of
# misclassified stragglers do not.
COVERAGE_THRESHOLD = 0.01

# Eigenvalues below -PSD_TOLERANCE * (largest |eigenvalue|) mean the matrix is not
# positive semi-definite; anything above is rounding, and is clipped to 0.
PSD_TOLERANCE = 1e-10


def _check_symmetric(name: str, matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {matrix.shape}")
    scale = np.abs(matrix).max(initial=0.0)
    if np.abs(matrix - matrix.T).max(initial=0.0) > 1e-8 * scale:
        raise ValueError(
            f"{name}: expected a symmetric matrix (a covariance), but it differs from "
            f"its transpose by up to {np.abs(matrix - matrix.T).max():.3g}"
        )
    return (matrix + matrix.T) / 2  # remove the rounding-level asymmetry


def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root R of a symmetric PSD matrix S: R @ R = S.

    With the eigendecomposition S = V diag(w) V.T (V orthogonal, w >= 0), take
    R = V diag(sqrt(w)) V.T: then R @ R = V diag(w) V.T = S, since V.T V = I.
    Rounding can leave eigenvalues of a singular covariance at -1e-17 instead of 0;
    those are clipped to 0 before the square root.

    Raises:
        ValueError: ``matrix`` is not square and symmetric, or has an eigenvalue
            clearly below zero (it is not a covariance).
    """
    s = _check_symmetric("sqrtm_psd", matrix)
    w, v = np.linalg.eigh(s)
    scale = max(np.abs(w).max(initial=0.0), np.finfo(np.float64).tiny)
    if w.min(initial=0.0) < -PSD_TOLERANCE * scale:
        raise ValueError(
            f"sqrtm_psd: the matrix is not positive semi-definite (eigenvalue "
            f"{w.min():.3g}, largest {scale:.3g}); a covariance matrix never is"
        )
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # V diag(sqrt w) V.T


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """``tr sqrt(S1 S2)`` for symmetric PSD S1, S2: the cross term of the FID.

    S1 S2 is not symmetric, so its square root would need a general (Schur-based)
    algorithm. But with R = sqrt(S1), the products S1 S2 = R (R S2) and
    M = (R S2) R = R S2 R have the same eigenvalues (AB and BA always do), and M is
    symmetric PSD. So tr sqrt(S1 S2) = sum of sqrt(eigenvalues of M): two symmetric
    eigendecompositions, fast and accurate.
    """
    r = sqrtm_psd(cov1)
    m = r @ _check_symmetric("trace_sqrt_product", cov2) @ r
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), in float64.

    The covariance divides by N - 1 (unbiased), as the reference FID code does.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"feature_statistics: expected features (N, D) with N >= 2, got {f.shape}")
    mean = f.mean(axis=0)
    centered = f - mean
    return mean, centered.T @ centered / (f.shape[0] - 1)


def frechet_distance(
    mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray
) -> float:
    """``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)``: the FID of two Gaussians.

    A squared distance, so >= 0; rounding can leave about -1e-13 for identical
    statistics, which is returned as 0.
    """
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    d = mean1.shape[0] if mean1.ndim == 1 else -1
    square = (d, d)
    if mean1.shape != mean2.shape or not np.shape(cov1) == np.shape(cov2) == square:
        raise ValueError(
            f"frechet_distance: expected means (D,) and covariances (D, D), got means "
            f"{mean1.shape} and {mean2.shape}, covariances {np.shape(cov1)} and "
            f"{np.shape(cov2)}"
        )
    diff = mean1 - mean2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt_product(cov1, cov2)
    return max(float(value), 0.0)


def inception_score(log_probs: np.ndarray) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` from log-probabilities (N, C) (a log-softmax).

    KL(p(y|x) || p(y)) = sum_y p(y|x) (log p(y|x) - log p(y)), p(y) = mean_x p(y|x).
    Taking log-probabilities, not probabilities, keeps log p(y|x) exact for confident
    predictions (log 1e-30 = -69, where a probability rounds to 0 in float32).
    """
    log_p = np.asarray(log_probs, dtype=np.float64)
    p = np.exp(log_p)
    # p(y) is 0 only if every p(y|x) underflowed to 0; those terms are 0 * finite.
    log_marginal = np.log(np.maximum(p.mean(axis=0), np.finfo(np.float64).tiny))
    kl = (p * (log_p - log_marginal)).sum(axis=1)
    return float(np.exp(kl.mean()))


def class_histogram(predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """The fraction of samples predicted as each class: float64 (num_classes,), sums to 1."""
    counts = np.bincount(np.asarray(predicted).ravel(), minlength=num_classes)
    return counts / counts.sum()


def classes_covered(histogram: np.ndarray, threshold: float = COVERAGE_THRESHOLD) -> int:
    """How many classes get at least ``threshold`` of the samples (default 1%)."""
    return int((np.asarray(histogram) >= threshold).sum())


def kl_to_uniform(histogram: np.ndarray) -> float:
    """``KL(h || uniform) = sum_k h_k log(C h_k)``, with 0 log 0 = 0.

    0 for perfectly balanced classes; log C (2.303 for 10 classes) when every sample
    lands in one class: a direct measure of mode collapse.
    """
    h = np.asarray(histogram, dtype=np.float64)
    present = h[h > 0]
    return max(float((present * np.log(h.size * present)).sum()), 0.0)


# A pixel is bright above this, dark below it: the middle of [0, 1].
BRIGHT = 0.5


def speckle_share(images: np.ndarray) -> float:
    """The share of isolated bright pixels ("salt") among all pixels of ``images``.

    A pixel is isolated and bright when it is above ``BRIGHT`` and all 8 of its
    neighbours are below it (a neighbour outside the image counts as dark, 0). A pen
    stroke is never one pixel wide alone, so real digits have few such pixels; a
    generator that sprinkles salt-and-pepper noise around its strokes has many. The
    measure is meant side by side with the same share of real digits (``Evaluator``
    reports both).

    Args:
        images: (N, H, W) pixels in [0, 1] (any float dtype; NumPy).
    """
    x = np.asarray(images)
    if x.ndim != 3 or x.size == 0:
        raise ValueError(f"speckle_share: expected images (N, H, W), got shape {x.shape}")
    h, w = x.shape[1:]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))  # zeros: dark outside the image
    neighbours = [
        padded[:, 1 + di : 1 + di + h, 1 + dj : 1 + dj + w]
        for di in (-1, 0, 1)
        for dj in (-1, 0, 1)
        if (di, dj) != (0, 0)
    ]
    brightest_neighbour = np.maximum.reduce(neighbours)
    isolated = (x > BRIGHT) & (brightest_neighbour < BRIGHT)
    return float(isolated.mean())
