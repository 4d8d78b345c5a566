"""An exponential moving average of a network's weights, kept for sampling.

A GAN's generator does not converge to a point: D and G chase each other, so G's
weights keep circling around a good solution, and the images of any one step
carry that step's wobble (blobs, specks, a digit drawn too often this minute).
Yazici et al. (2019, "The unusual effectiveness of averaging in GAN training")
sample from an *average* of G's recent weights instead: the circling cancels
out, and the average sits nearer the centre of the orbit. ProGAN, StyleGAN and
BigGAN all sample this way. Training is untouched: D and G learn exactly as
before; the average is a second copy of G that only follows.

With theta_t the weights after G's t-th update and decay beta (0.999: about
the last 1000 updates count), the exponential moving average is

    m_t = beta m_{t-1} + (1 - beta) theta_t,     m_0 = 0

and, as Adam does for its moments, it is divided by the total weight it has
given out so far, 1 - beta^t, so that the first steps are not pulled towards
zero (or towards G's random initial weights, had m started there):

    a_t = m_t / (1 - beta^t) = sum_i beta^(t-i) (1 - beta) theta_i / (1 - beta^t),

a weighted mean of theta_1 ... theta_t, weights decaying backwards in time.
It can be updated in place, without m: since beta (1 - beta^(t-1)) = (1 - beta^t) - (1 - beta),

    a_t = a_{t-1} + w_t (theta_t - a_{t-1}),     w_t = (1 - beta) / (1 - beta^t),

so a_1 = theta_1 (w_1 = 1), and w_t falls to 1 - beta as t grows.

Buffers (BatchNorm's running statistics) are copied from the live network, not
averaged: they describe the activations the live weights produce, and the
averaged weights produce nearly the same ones once training has settled
(StyleGAN does the same). The MLP generators have none.

Every update is whole-array arithmetic on the device with a weight computed on
the host from a Python counter: no value is ever read back.
"""

from __future__ import annotations

import copy
import numbers
from typing import Any

from minigan.nn.module import Module


class EMA:
    """The moving average ``averaged`` of ``module``'s weights; ``update()`` after each step.

    Args:
        module: the network to follow (G). Its weights are read, never changed.
        decay: beta in (0, 1); 0.999 averages over about the last 1000 updates.

    Attributes:
        averaged: a copy of ``module`` holding a_t (before any update: ``module``'s
            weights as they are now); run it like the module itself.
        updates: t, the number of updates so far.
    """

    def __init__(self, module: Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA: decay must lie in (0, 1), got {decay}")
        self.module = module
        self.decay = float(decay)
        self.updates = 0
        self.averaged = copy.deepcopy(module)
        for param in self.averaged.parameters():
            param.optimizer = None  # a copy, packed by no optimizer: only update() changes it
            param.requires_grad = False

    def update(self) -> None:
        """a_t = a_{t-1} + w_t (theta_t - a_{t-1}), w_t = (1 - beta) / (1 - beta^t); buffers copied."""
        self.updates += 1
        weight = (1 - self.decay) / (1 - self.decay**self.updates)  # a host float: no sync
        for average, live in zip(self.averaged.parameters(), self.module.parameters()):
            average.data += weight * (live.data - average.data)  # in place: a_t in a_{t-1}'s array
        for (_, average), (_, live) in zip(
            self.averaged.named_buffers(), self.module.named_buffers()
        ):
            average[...] = live

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights (host copies) and the update count t."""
        return {"weights": self.averaged.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a ``state_dict()``: all of it or, if anything does not fit, none of it."""
        where = "EMA.load_state_dict"
        if not isinstance(state, dict) or set(state) != {"weights", "updates"}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise KeyError(f"{where}: expected the keys ['updates', 'weights'], got {got}")
        updates = state["updates"]
        if isinstance(updates, bool) or not isinstance(updates, numbers.Integral) or updates < 0:
            raise ValueError(f"{where}: 'updates' must be a count (0 or more), got {updates!r}")
        self.averaged.load_state_dict(state["weights"])  # checks everything before changing
        self.updates = int(updates)
