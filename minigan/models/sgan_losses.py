"""The semi-supervised GAN's losses (Salimans et al. 2016), beside ``sgan.py``.

D is a classifier over K digits plus "fake", whose fake logit is pinned at 0: its
real/fake loss is a binary cross-entropy on logsumexp of the K class logits
(``SGANUnsupervisedLoss``); G matches the mean of D's inner features on real data
(``FeatureMatchingLoss``). Both are ``minigan.losses.Loss`` modules, used as every
other loss: ``forward(pred, target)`` returns the 0-d loss, ``backward()`` dL/dpred.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module
from minigan.losses import BCEWithLogitsLoss, Loss
from minigan.nn.checks import check_array

__all__ = ["FeatureMatchingLoss", "SGANUnsupervisedLoss", "logsumexp"]


def logsumexp(x: Any) -> Any:
    """``log sum_k exp(x[..., k])`` along the last axis, for any logits, without overflow.

    The same shift as ``log_softmax``: with m the row's maximum,
    lse = m + log sum_k exp(x[k] - m), where every exponent is <= 0 and the sum is
    >= 1. Logits of 1e4 give 1e4 (+ log of the count of maxima), not inf.
    """
    xp = get_array_module(x)
    m = x.max(axis=-1, keepdims=True)
    return (m + xp.log(xp.exp(x - m).sum(axis=-1, keepdims=True)))[..., 0]


class SGANUnsupervisedLoss(Loss):
    """The semi-supervised GAN's real/fake loss, on K class logits l (N, K).

    The discriminator is a classifier over K + 1 classes: the K digits and
    "fake". Its K + 1-th logit is fixed at 0 (softmax is unchanged when every
    logit moves together, so one logit can be pinned and nothing is lost). With
    Z = sum_k exp(l_k), the probability that x is real (any of the K digits) is

        D(x) = Z / (Z + exp(0)) = Z / (Z + 1) = sigmoid(lse),    lse = log Z = logsumexp(l)

    so lse is the logit of "real", and the loss is binary cross-entropy on it,
    with target t = 1 for real (unlabelled) images and t = 0 for generated ones:

        real:  -log D(x)            = -log sigmoid(lse)     = softplus(lse) - lse
        fake:  -log(1 - D(G(z)))    = -log sigmoid(-lse)    = softplus(lse)
        both:  L = mean_n [ softplus(lse_n) - t_n lse_n ]  = BCEWithLogitsLoss(lse, t)

    Backward, step by step for one row (s = sigmoid, p = softmax(l)):

        1. L_n = softplus(lse) - t lse        dL_n/dlse = s(lse) - t   (BCEWithLogitsLoss)
        2. lse = log sum_k exp(l_k)           dlse/dl_k = exp(l_k) / Z = p_k
        3. chain rule:                        dL_n/dl_k = (s(lse) - t) p_k

    and the mean divides by N. Compact: dL/dl = (sigmoid(lse) - t)[:, None] * softmax(l) / N.
    For a real image (t = 1) that is -(1 - D(x)) p: every class logit is pushed up,
    each in proportion to its probability, by as much as D still doubts the
    image; for a fake (t = 0) it is +D(G(z)) p: pushed down by D's belief.

    Stable for huge logits: lse is computed with the max shift (``logsumexp``),
    the binary cross-entropy in BCEWithLogitsLoss's overflow-free form, and
    softmax as exp(l - lse), whose exponents are all <= 0.

    The supervised half of the SGAN loss is ``CrossEntropyLoss`` over the K
    logits of the labelled images, -log p(y | x, real). (Over K + 1 classes,
    -log p_{K+1}(y | x) with the 0 logit appended, is that plus this loss at
    t = 1: the tests check the identity.)

    Target: a number in [0, 1] (1.0 real, 0.0 fake) or an array (N,) of them.
    """

    def __init__(self) -> None:
        self.bce = BCEWithLogitsLoss()  # step 1: BCE on the logit lse, derived there

    def forward(self, pred: Any, target: Any) -> Any:
        logits = pred  # l in the derivation
        check_array(self, logits, shape=("batch", "classes"), name="logits")
        if logits.shape[0] == 0 or logits.shape[1] == 0:
            raise ValueError(
                f"{self!r}: expected logits (batch, classes) with at least one example "
                f"and one class, got {tuple(logits.shape)}"
            )
        lse = logsumexp(logits)  # (N,): the logit of "real"
        t = self.check_binary_target(lse, target)
        xp = get_array_module(logits)
        self.save_for_backward(xp.exp(logits - lse[:, None]))  # softmax(l), for step 2
        return self.bce.forward(lse, t)

    def backward(self) -> Any:
        (p,) = self.saved_tensors
        dlse = self.bce.backward()  # (sigmoid(lse) - t) / N, shape (N,)
        return dlse[:, None] * p  # dL/dl = dL/dlse * dlse/dl = dL/dlse * softmax(l)


class FeatureMatchingLoss(Loss):
    """Feature matching for the generator (Salimans et al. 2016):

        L = || mean_n f(G(z_n)) - mean_m f(x_m) ||^2 = sum_j d_j^2,
        d = mean_n fake[n] - mean_m real[m]            (one entry per feature j)

    pred = fake features f(G(z)) (N, F), target = real features f(x) (M, F), from
    an intermediate layer of the discriminator. Instead of fooling D's final
    output, G matches the statistics D finds useful on real data: a target
    that does not move as fast as D's verdict, which steadies training.

    Backward, for the fake features only (the real ones are a constant target):

        1. L = sum_j d_j^2                         dL/dd_j = 2 d_j
        2. d_j = (1/N) sum_n fake[n, j] - const    dd_j/dfake[n, j] = 1/N
        3. dL/dfake[n, j] = 2 d_j / N              the same row for every example n

    The squared L2 norm (a sum over features) is the paper's; their code takes the
    mean over the F features instead, which only scales L by 1/F.
    """

    def forward(self, pred: Any, target: Any) -> Any:
        fake, real = pred, target
        check_array(self, fake, shape=("batch", "features"), name="fake features")
        if fake.shape[0] == 0:
            raise ValueError(f"{self!r}: expected at least one fake example, got 0")
        check_array(self, real, like=fake, shape=("batch", fake.shape[1]), name="real features")
        if real.shape[0] == 0:
            raise ValueError(f"{self!r}: expected at least one real example, got 0")
        d = fake.mean(axis=0) - real.mean(axis=0)
        self.save_for_backward(fake, d)
        return get_array_module(fake).asarray((d * d).sum())

    def backward(self) -> Any:
        fake, d = self.saved_tensors
        xp = get_array_module(fake)
        return xp.zeros_like(fake) + d * (2 / fake.shape[0])  # 2 d / N in every row
