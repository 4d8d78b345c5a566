"""Losses: binary cross-entropy in two forms (the GAN loss), softmax cross-entropy, and the
losses of the GAN family: mean squared error (LSGAN), mean absolute error (CycleGAN's
cycle loss), the Wasserstein critic loss (WGAN) and the gradient penalty (WGAN-GP). The
semi-supervised GAN's own two losses are beside it, in ``minigan/models/sgan_losses.py``.

All average over examples (PyTorch's ``reduction="mean"``). ``forward`` returns a
0-d array on the input's backend, so a GPU loss stays on the GPU until someone
reads it; ``backward`` returns dL/dpred for the last forward call.

For the binary losses a target may be an array shaped like the prediction or a
single number in [0, 1] (1.0 for "real", 0.0 for "fake", 0.9 for a smoothed
"real"). ``CrossEntropyLoss`` takes integer class labels.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.activations import sigmoid
from minigan.nn.checks import check_array, check_label_range, require_forward
from minigan.nn.module import Module


class Loss(Module):
    """A module whose output is the scalar loss (as in PyTorch, a loss is a Module).

    ``forward(pred, target)`` saves what ``backward()`` needs with
    ``save_for_backward``; ``backward()`` takes no argument, since dL/dL = 1, and
    reads them back from ``saved_tensors``.
    """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __call__(self, pred: Any, target: Any) -> Any:
        return self.forward(pred, target)

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """What the last forward saved (PyTorch's ``ctx.saved_tensors``)."""
        return require_forward(self, self._saved)

    def check_binary_target(self, pred: Any, target: Any) -> Any:
        """A float prediction, and a target that is a number in [0, 1] or an array like it."""
        check_array(self, pred, name="pred")
        if isinstance(target, Real):
            if not 0 <= target <= 1:
                raise ValueError(f"{self!r}: a target number must lie in [0, 1], got {target}")
            return float(target)
        check_array(self, target, like=pred, shape=pred.shape, name="target")
        return target

    def difference(self, pred: Any, target: Any) -> Any:
        """``pred - target``: a float prediction, and a target that is a number or an
        array like it (the regression losses, MSE and L1)."""
        check_array(self, pred, name="pred")
        if not isinstance(target, Real):
            check_array(self, target, like=pred, shape=pred.shape, name="target")
        return pred - target


class BCELoss(Loss):
    """Binary cross-entropy on probabilities p in [0, 1] (e.g. after a Sigmoid):

        L = -mean( t log p + (1 - t) log(1 - p) )
        dL/dp = (p - t) / (p (1 - p)) / N          (N = number of elements)

    As in PyTorch, each log is clamped at -100, so p = 0 or 1 (a saturated sigmoid)
    gives a large but finite loss instead of inf, and the gradient's denominator
    is clamped at 1e-12 so it stays finite too.

    ``pred`` must be probabilities: values outside [0, 1] (logits passed here by
    mistake) would give NaN. NumPy predictions are checked and refused (a comparison
    in host memory, no sync); on CuPy the check would read back from the device in
    every call, so it is skipped there. NaN itself passes: it is what the training
    loop's NaN guard reports. For logits, use ``BCEWithLogitsLoss``.
    """

    # PyTorch stores this clamp in single precision (9.99999996e-13); so do we, so
    # that saturated gradients agree to the last digit in float64 too.
    GRAD_DENOMINATOR_MIN = np.float32(1e-12)

    def forward(self, pred: Any, target: Any) -> Any:
        p, t = pred, self.check_binary_target(pred, target)
        xp = get_array_module(p)
        if xp is np:  # host memory: the check costs no sync (on CuPy it is skipped)
            self.check_probabilities(p)
        self.save_for_backward(p, t)
        with np.errstate(divide="ignore"):  # log(0) = -inf is what the clamp is for
            log_p = xp.maximum(xp.log(p), -100)
            log_1mp = xp.maximum(xp.log(1 - p), -100)
        return xp.asarray(-(t * log_p + (1 - t) * log_1mp).mean())

    def check_probabilities(self, p: np.ndarray) -> None:
        """Refuse a NumPy ``p`` with values outside [0, 1] (NaN compares false: it passes)."""
        if ((p < 0) | (p > 1)).any():
            low, high = float(np.nanmin(p)), float(np.nanmax(p))
            raise ValueError(
                f"{self!r}: pred must be probabilities in [0, 1] (e.g. a Sigmoid's output), "
                f"got values from {low:.6g} to {high:.6g}; for logits use BCEWithLogitsLoss"
            )

    def backward(self) -> Any:
        p, t = self.saved_tensors
        xp = get_array_module(p)
        return (p - t) / xp.maximum(p * (1 - p), self.GRAD_DENOMINATOR_MIN) / p.size


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits x (p = sigmoid(x)), the form to train with.

        L = mean( max(x, 0) - x t + log(1 + exp(-|x|)) )
        dL/dx = (sigmoid(x) - t) / N

    Where both lines come from, one element at a time (s = sigmoid(x)):

        1. l = -[t log s + (1 - t) log(1 - s)]          BCE of the probability s
        2. log s = -log(1 + exp(-x)),  log(1 - s) = -x - log(1 + exp(-x))
        3. so l = x - x t + log(1 + exp(-x))            substitute and collect
        4. for x < 0 use x + log(1 + exp(-x)) = log(1 + exp(x)) = log(1 + exp(-|x|)),
           and for x >= 0 write x = max(x, 0): one formula, exp(-|x|) <= 1 always
        5. dl/dx = 1 - t - exp(-x) / (1 + exp(-x)) = 1 - t - (1 - s) = s - t

    Why this form: computing sigmoid first and then the log loses everything once
    |x| > ~17 (float32: sigmoid(x) rounds to exactly 1 and log(1 - p) = log 0),
    which clamps the loss and flattens the gradient exactly when the discriminator
    is confidently wrong, the case that must train. Here nothing overflows or
    rounds to log(0), and the gradient s - t is as clean as gradients get.
    """

    def forward(self, pred: Any, target: Any) -> Any:
        x, t = pred, self.check_binary_target(pred, target)
        self.save_for_backward(x, t)
        xp = get_array_module(x)
        return xp.asarray((xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))).mean())

    def backward(self) -> Any:
        x, t = self.saved_tensors
        return (sigmoid(x) - t) / x.size


def log_softmax(x: Any) -> Any:
    """``log softmax(x)`` along the last axis, for any logits, without overflow.

        log p[k] = x[k] - log sum_j exp(x[j])

    Subtracting the row's maximum m first changes nothing (m cancels between x[k]
    and the log-sum), but then every exponent is <= 0, so exp never overflows
    (float32 overflows above 88), and the largest term is exp(0) = 1, so the sum is
    >= 1 and its log never sees 0. Logits of 1e4 give exact log-probabilities.
    """
    xp = get_array_module(x)
    z = x - x.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))


class CrossEntropyLoss(Loss):
    """Cross-entropy of a softmax over C classes, on logits x (N, C) and labels y (N,).

        p = softmax(x):   p[n, k] = exp(x[n, k]) / sum_j exp(x[n, j])
        L = -mean_n log p[n, y[n]]
        dL/dx = (p - onehot(y)) / N

    The same as PyTorch's ``CrossEntropyLoss`` (log-softmax, then the negative
    log-likelihood of the right class) with ``reduction="mean"``. The gradient of one
    example's term L_n = -log p[y] (row n, with s = sum_j exp(x[j])), step by step:

        1. L_n = -log_p[y]               dL_n/dlog_p[k] = -[k == y]
        2. log_p[k] = x[k] - log s       dlog_p[k]/dx[i] = [k == i] - exp(x[i]) / s
                                                         = [k == i] - p[i]
        3. chain rule, summing over k:   dL_n/dx[i] = -([i == y] - p[i]) = p[i] - [i == y]

    and the mean divides each row by N. Compact: the softmax minus the one-hot label;
    the right class's logit is pushed up by 1 - p[y], every other one down by its p[i],
    and each row of the gradient sums to zero. The forward pass uses ``log_softmax``,
    so huge logits (1e4) give a finite loss and gradient.

    Labels are class indices (any integer dtype), not one-hot rows. They are checked
    (shape (N,), values in [0, C)) because a wrong index would otherwise fail
    silently on CuPy, which wraps out-of-range indices around; the check reads the
    labels' min and max, one device sync per call. ``check_range=False`` skips that
    read on CuPy, for a training step that must read nothing back and whose labels
    were checked once where they entered (``minigan.models.conditional.check_labels``)
    or were drawn in range (as ``Embedding``'s flag of the same name); NumPy labels
    are always checked, since on the host the check costs no sync.
    """

    def __init__(self, check_range: bool = True) -> None:
        self.check_range = check_range

    def forward(self, pred: Any, target: Any) -> Any:
        x, y = pred, target
        self.check_labels(x, y)
        xp = get_array_module(x)
        log_p = log_softmax(x)
        # Backward needs p; exp(log_p) is cheaper to keep than to recompute from x.
        self.save_for_backward(xp.exp(log_p), y)
        return xp.asarray(-log_p[xp.arange(x.shape[0]), y].mean())

    def backward(self) -> Any:
        p, y = self.saved_tensors
        xp = get_array_module(p)
        grad = p.copy()
        grad[xp.arange(y.shape[0]), y] -= 1  # p - onehot(y)
        grad /= grad.dtype.type(y.shape[0])  # a scalar of the logits' dtype: no upcast
        return grad

    def check_labels(self, x: Any, y: Any) -> None:
        """Logits (N, C) and integer labels (N,) in [0, C), on one backend."""
        check_array(self, x, shape=("batch", "classes"), name="logits")
        n, classes = x.shape
        if n == 0 or classes == 0:
            raise ValueError(
                f"{self!r}: expected logits (batch, classes) with at least one example "
                f"and one class, got {tuple(x.shape)}"
            )
        check_array(
            self, y, like=x, name="labels", integer=True,
            dtype_hint="convert with labels.astype('int64') (one-hot rows: labels.argmax(axis=1))",
        )  # fmt: skip
        if y.shape != (n,):
            raise ValueError(
                f"{self!r}: expected labels ({n},) for logits {tuple(x.shape)}, "
                f"got {tuple(y.shape)}"
            )
        if self.check_range or get_array_module(y) is np:  # on CuPy, one read (a GPU sync)
            check_label_range(self, y, classes, "classes")


class MSELoss(Loss):
    """Mean squared error, as PyTorch's ``MSELoss`` (``reduction="mean"``):

        L = mean( (p - t)^2 )          over all N elements
        dL/dp = 2 (p - t) / N

    (each element's term (p_i - t_i)^2 has derivative 2 (p_i - t_i) in p_i, and the
    mean divides by N). The target is an array shaped like ``pred`` or one number
    for every element (LSGAN's 1 for "real", 0 for "fake").
    """

    def forward(self, pred: Any, target: Any) -> Any:
        diff = self.difference(pred, target)
        self.save_for_backward(diff)
        return get_array_module(pred).asarray((diff * diff).mean())

    def backward(self) -> Any:
        (diff,) = self.saved_tensors
        return diff * (2 / diff.size)


class L1Loss(Loss):
    """Mean absolute error, as PyTorch's ``L1Loss`` (``reduction="mean"``):

        L = mean( |p - t| )            over all N elements
        dL/dp = sign(p - t) / N        sign(d) = [d > 0] - [d < 0]

    (each element's term |p_i - t_i| has slope +1 where p_i > t_i and -1 where p_i <
    t_i, and the mean divides by N). At a tie, p_i = t_i, |d| has a kink and no
    derivative; any slope in [-1, 1] is a subgradient there, and this takes 0, as
    PyTorch does (its sign(0) = 0): an element already on its target is left alone.
    The target is an array shaped like ``pred`` or one number for every element.

    CycleGAN's cycle and identity losses are this (Zhu et al. 2017: the L1 norm of
    an image minus its reconstruction). Its gradient is bounded (every pixel pulls
    with the same strength 1/N, however far off), so a few badly reconstructed pixels
    do not dominate, and pix2pix (Isola et al. 2017) found that L1 blurs less than L2.
    """

    def forward(self, pred: Any, target: Any) -> Any:
        diff = self.difference(pred, target)
        self.save_for_backward(diff)
        return get_array_module(pred).asarray(abs(diff).mean())

    def backward(self) -> Any:
        (diff,) = self.saved_tensors
        sign = (diff > 0).astype(diff.dtype) - (diff < 0).astype(diff.dtype)  # 0 at a tie
        return sign / diff.size


class WassersteinLoss(Loss):
    """The Wasserstein GAN's loss on critic scores (any real numbers, no sigmoid):

        L(s, t) = -t * mean(s)          t = +1: "score these high", t = -1: "score these low"
        dL/ds_i = -t / N

    The critic minimises  L(D(G(z)), -1) + L(D(x), +1) = mean D(G(z)) - mean D(x),
    the negative of its estimate of the Wasserstein distance between the data and
    G's distribution (Arjovsky et al., 2017); the generator minimises
    L(D(G(z)), +1) = -mean D(G(z)). The loss is linear in the scores, so its
    gradient is the same constant for every example: the critic's shape, not the
    loss, decides where G's gradient points.
    """

    def forward(self, pred: Any, target: Any) -> Any:
        check_array(self, pred, name="pred")
        if not isinstance(target, Real) or target not in (1, -1):
            raise ValueError(
                f"{self!r}: the target is +1 (score high: real) or -1 (score low: fake), "
                f"got {target!r}"
            )
        sign = float(target)
        self.save_for_backward(pred, sign)
        return get_array_module(pred).asarray(-sign * pred.mean())

    def backward(self) -> Any:
        pred, sign = self.saved_tensors
        return get_array_module(pred).full(pred.shape, -sign / pred.size, dtype=pred.dtype)


class GradientPenalty(Loss):
    """WGAN-GP's penalty on the critic's input gradient, per example (Gulrajani et al., 2017):

        P = mean_n ( ||g_n||_2 - t )^2        g: (N, D), one gradient dD/dx per row; t = 1
        dP/dg_n = 2 (||g_n|| - t) / N * g_n / ||g_n||

    Step by step, for one row (r = ||g_n|| = sqrt(sum_d g_nd^2)):

        1. P_n = (r - t)^2 / N             dP_n/dr = 2 (r - t) / N
        2. r = sqrt(sum_d g_nd^2)          dr/dg_nd = g_nd / r       (the unit vector of g_n)

    A row with g_n = 0 has no direction: its gradient is taken as 0 (PyTorch's
    choice for the norm at 0), by dividing by max(r, tiny) instead of r. The
    penalty's weight (lambda = 10 in the paper) is the model's business.
    """

    def forward(self, pred: Any, target: Any = 1.0) -> Any:
        check_array(self, pred, shape=("batch", "features"), name="gradient")
        xp = get_array_module(pred)
        norm = xp.sqrt((pred * pred).sum(axis=1, keepdims=True))  # (N, 1): ||g_n||
        gap = norm - float(target)
        self.save_for_backward(pred, norm, gap)
        return xp.asarray((gap * gap).mean())

    def backward(self) -> Any:
        g, norm, gap = self.saved_tensors
        xp = get_array_module(g)
        tiny = xp.finfo(g.dtype).tiny  # matters only where g_n = 0, and then g_n / tiny = 0
        return g * (gap * (2 / norm.size) / xp.maximum(norm, tiny))

    @property
    def norms(self) -> Any:
        """||g_n|| of the last forward, (N, 1): how far the critic is from 1-Lipschitz."""
        return self.saved_tensors[1]
