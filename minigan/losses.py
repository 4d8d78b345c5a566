"""Binary cross-entropy, the GAN loss, in two forms.

Both average over every element (PyTorch's ``reduction="mean"``). ``forward``
returns a 0-d array on the input's backend, so a GPU loss stays on the GPU until
someone reads it; ``backward`` returns dL/dpred for the last forward call.

A target may be an array shaped like the prediction or a single number in [0, 1]
(1.0 for "real", 0.0 for "fake", 0.9 for a smoothed "real").
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.activations import sigmoid
from minigan.nn.checks import check_array, require_forward


class Loss:
    """Shared bookkeeping: validate, remember the last (pred, target), reduce by mean."""

    def __init__(self) -> None:
        self.pred = None
        self.target = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __call__(self, pred: Any, target: Any) -> Any:
        return self.forward(pred, target)

    def _remember(self, pred: Any, target: Any) -> None:
        check_array(self, pred, name="pred")
        if isinstance(target, Real):
            if not 0 <= target <= 1:
                raise ValueError(
                    f"{self!r}: a target number must lie in [0, 1], got {target}"
                )
            target = float(target)
        else:
            check_array(self, target, like=pred, shape=pred.shape, name="target")
        self.pred, self.target = pred, target

    def _recall(self) -> tuple[Any, Any]:
        return require_forward(self, self.pred), self.target


class BCELoss(Loss):
    """Binary cross-entropy on probabilities p in [0, 1] (e.g. after a Sigmoid):

        L = -mean( t log p + (1 - t) log(1 - p) )
        dL/dp = (p - t) / (p (1 - p)) / N          (N = number of elements)

    As in PyTorch, each log is clamped at -100, so p = 0 or 1 (a saturated sigmoid)
    gives a large but finite loss instead of inf, and the gradient's denominator
    is clamped at 1e-12 so it stays finite too.
    """

    # PyTorch stores this clamp in single precision (9.99999996e-13); so do we, so
    # that saturated gradients agree to the last digit in float64 too.
    GRAD_DENOMINATOR_MIN = np.float32(1e-12)

    def forward(self, pred: Any, target: Any) -> Any:
        self._remember(pred, target)
        xp = get_array_module(pred)
        p, t = pred, self.target
        with np.errstate(divide="ignore"):  # log(0) = -inf is what the clamp is for
            log_p = xp.maximum(xp.log(p), -100)
            log_1mp = xp.maximum(xp.log(1 - p), -100)
        return xp.asarray(-(t * log_p + (1 - t) * log_1mp).mean())

    def backward(self) -> Any:
        p, t = self._recall()
        xp = get_array_module(p)
        return (p - t) / xp.maximum(p * (1 - p), self.GRAD_DENOMINATOR_MIN) / p.size


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits x (p = sigmoid(x)), the form to train with.

        L = mean( max(x, 0) - x t + log(1 + exp(-|x|)) )
        dL/dx = (sigmoid(x) - t) / N

    Why this form: it is -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] rewritten
    so that nothing overflows or rounds to log(0). Computing sigmoid first and
    then the log loses everything once |x| > ~17 (float32: sigmoid(x) rounds to
    exactly 1 and log(1 - p) = log 0), which clamps the loss and flattens the gradient
    exactly when the discriminator is confidently wrong, the case that must
    train. Here exp(-|x|) <= 1 always, and the gradient sigmoid(x) - t is as clean
    as gradients get.
    """

    def forward(self, pred: Any, target: Any) -> Any:
        self._remember(pred, target)
        xp = get_array_module(pred)
        x, t = pred, self.target
        return xp.asarray(
            (xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))).mean()
        )

    def backward(self) -> Any:
        x, t = self._recall()
        return (sigmoid(x) - t) / x.size
