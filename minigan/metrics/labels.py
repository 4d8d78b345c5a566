"""Label accuracy: does a conditional GAN draw the digit it was asked for?

A CGAN or ACGAN asked for a 7 should draw a 7. The project's classifier (the
``Evaluator``'s) is the judge: for each digit k, the share of the samples asked
to be k that the classifier calls k,

    accuracy[k] = #{i : asked[i] = k and predicted[i] = k} / #{i : asked[i] = k}

Chance is 10%; the issue's target is 90% for every digit. A digit never asked
for has no accuracy: NaN, so a missing digit cannot pass for a perfect one.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from minigan.backend import to_host
from minigan.metrics.classifier import NUM_CLASSES, classify
from minigan.metrics.evaluator import check_samples
from minigan.nn.checks import check_array, check_label_range


def per_class_accuracy(predicted: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """accuracy[k] for k = 0..9, float64 (10,); NaN where no sample was asked to be k.

    Args:
        predicted, asked: integer NumPy arrays (N,) of digits in [0, 10).
    """
    where = "per_class_accuracy"
    for name, y in (("predicted", predicted), ("asked", asked)):
        check_array(where, y, xp=np, name=f"{name} labels", integer=True, shape=("N",))
        check_label_range(where, y, NUM_CLASSES, "classes (the digits 0-9)", name=name)
    if predicted.shape != asked.shape:
        raise ValueError(f"{where}: {len(predicted)} predictions for {len(asked)} asked-for labels")
    asked_count = np.bincount(asked, minlength=NUM_CLASSES).astype(np.float64)
    right = np.bincount(asked[predicted == asked], minlength=NUM_CLASSES)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(asked_count > 0, right / asked_count, np.nan)


def label_accuracy(evaluator: Any, samples: Any, labels: Any) -> np.ndarray:
    """Per-digit label accuracy (10,) of ``samples`` generated for ``labels``.

    Args:
        evaluator: a ``minigan.metrics.Evaluator`` (its classifier judges).
        samples: float images (N, 28, 28) or (N, 784) in [0, 1], either backend
            (a generator's [-1, 1] output becomes (x + 1) / 2).
        labels: the digits asked for, integers (N,), either backend.

    Returns:
        float64 (10,): accuracy[k], NaN for a digit not asked for.
    """
    check_array("label_accuracy", labels, name="labels", integer=True, shape=("N",))
    with warnings.catch_warnings():  # its warning is about the FID, not computed here
        warnings.filterwarnings("ignore", message=".*FID from", category=UserWarning)
        pixels = check_samples(samples)  # the Evaluator's own checks: shape, [0, 1]
    if pixels.shape[0] != labels.shape[0]:
        raise ValueError(
            f"label_accuracy: {pixels.shape[0]} samples but {labels.shape[0]} labels; "
            f"give the label each sample was generated for"
        )
    logits, _ = classify(evaluator.model, pixels, data=evaluator.data)
    return per_class_accuracy(logits.argmax(axis=1), to_host(labels).astype(np.int64))
