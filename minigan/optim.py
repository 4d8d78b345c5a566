"""Optimizers: SGD (with momentum), Adam, RMSprop and their in-place fast paths, as in PyTorch.

An optimizer packs all its parameters into one flat array (and their gradients
into another): each ``Parameter.data`` and ``.grad`` becomes a reshaped view into
those buffers. The update then runs as a handful of whole-array operations, not
one Python loop iteration per parameter tensor, and the same code serves every
model. Consequences worth knowing:

- create the optimizer after ``model.to(...)`` (moving a model swaps its arrays);
- one optimizer per parameter: a second one over the same parameters takes them over;
- change values in place (``p.data[...] = v``, ``p.grad += g``), never by assigning
  ``p.data = v`` or ``p.grad = g``, which would cut the parameter loose from the buffer.

Each of these mistakes would leave the weights unchanged forever without a word, so
``step()`` checks that every parameter still views the buffers and raises otherwise.

Each update is written twice, side by side: ``formula_step`` reads exactly like the
math in the class docstring; ``in_place_step`` is the same arithmetic in the same
order, done in preallocated buffers (no temporaries), and gives bit-identical
results (tested). ``step()`` runs the fast path unless ``in_place=False``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np

from minigan.backend import get_array_module, parallel_slices, to_host
from minigan.nn.module import Parameter


def flatten_parameters(params: list[Parameter], owner: Any) -> tuple[Any, Any]:
    """Move the values and gradients of ``params`` into two flat arrays.

    Afterwards each ``param.data`` / ``param.grad`` is a view of a slice of the
    returned ``(data, grad)`` arrays, holding the same values as before, and the
    parameter remembers ``owner`` (weakly), so a detached one can say who took it.
    """
    xp = get_array_module(params[0].data)
    dtype = params[0].dtype
    total = sum(p.data.size for p in params)
    flat_data = xp.empty(total, dtype=dtype)
    flat_grad = xp.empty(total, dtype=dtype)
    offset = 0
    for p in params:
        size = p.data.size
        data_view = flat_data[offset : offset + size].reshape(p.shape)
        grad_view = flat_grad[offset : offset + size].reshape(p.shape)
        data_view[...] = p.data
        grad_view[...] = p.grad
        p.data, p.grad = data_view, grad_view
        p.optimizer = weakref.ref(owner)
        offset += size
    return flat_data, flat_grad


class Optimizer:
    """Holds the parameters, their flat buffers and ``zero_grad``."""

    def __init__(self, params: Iterable[Parameter], lr: float, in_place: bool = True):
        params = list(params)
        name = type(self).__name__
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: expected Parameter objects, got {type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears more than once")
        first = params[0].data
        for p in params:
            if get_array_module(p.data) is not get_array_module(first) or p.dtype != first.dtype:
                raise TypeError(
                    f"{name}: all parameters must share one backend and dtype; found "
                    f"{get_array_module(first).__name__} {first.dtype} and "
                    f"{get_array_module(p.data).__name__} {p.dtype}"
                )
        if not lr >= 0:
            raise ValueError(f"{name}: learning rate must be >= 0, got {lr}")
        self.params = params
        self.lr = float(lr)
        self.in_place = bool(in_place)
        self.data, self.grad = flatten_parameters(params, self)
        # The views handed out above; step() checks that each parameter still holds them.
        self.views = [(p.data, p.grad) for p in params]

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def step(self) -> None:
        """One update of every parameter: the fast path, or the formula as written."""
        self.check_attached()
        self.in_place_step() if self.in_place else self.formula_step()

    def formula_step(self) -> None:
        raise NotImplementedError

    def in_place_step(self) -> None:
        raise NotImplementedError

    def check_attached(self) -> None:
        """Raise if a parameter no longer views this optimizer's buffers.

        An identity check per parameter: a few microseconds, and it turns "the
        weights silently never change" into an error that names the fix.
        """
        name = type(self).__name__
        for index, (p, (data, grad)) in enumerate(zip(self.params, self.views)):
            what = f"{name}: parameter {index} (shape {p.shape})"
            owner = p.optimizer() if p.optimizer is not None else None
            if owner is not self and owner is not None:
                raise RuntimeError(
                    f"{what} was taken over by another optimizer created over the same "
                    f"parameters; use one optimizer per parameter (drop this one, or build "
                    f"it once)"
                )
            if p.data is not data:
                raise RuntimeError(
                    f"{what} no longer views this optimizer's buffer: its .data was "
                    f"replaced (by model.to(...) after the optimizer was created, or by "
                    f"code assigning p.data = ...); create the optimizer after model.to(...) "
                    f"and change values in place (p.data[...] = new_values)"
                )
            if p.grad is not grad:
                raise RuntimeError(
                    f"{what} no longer views this optimizer's gradient buffer: its .grad "
                    f"was replaced, e.g. by a backward pass assigning p.grad = g; backward "
                    f"passes must add into it (p.grad += g)"
                )

    def _read_numbers(self, state: dict[str, Any], *keys: str) -> list[Any]:
        """``state[key]`` as floats (a pair of floats for a sequence), checked, for each key."""
        name = f"{type(self).__name__}.load_state_dict"
        values = []
        for key in keys:
            if key not in state:
                raise KeyError(
                    f"{name}: the state has no '{key}'; it is not a {type(self).__name__} state"
                )
            value = state[key]
            try:
                if isinstance(value, (list, tuple, np.ndarray)):
                    values.append(tuple(float(v) for v in value))
                else:
                    values.append(float(value))
            except (TypeError, ValueError):
                raise TypeError(f"{name}: '{key}' must be a number, got {value!r}") from None
        return values

    def _check_buffers(self, state: dict[str, Any], buffers: dict[str, Any]) -> dict[str, Any]:
        """Check that ``state[key]`` fits each ``buffers[key]``; return those values.

        Callers check everything first and copy (``_copy_buffers``) only then, so a
        failed load changes nothing.
        """
        name = f"{type(self).__name__}.load_state_dict"
        for key, target in buffers.items():
            if key not in state:
                raise KeyError(
                    f"{name}: the state has no '{key}'; it is not a {type(self).__name__} state"
                )
            value = state[key]
            if not (hasattr(value, "dtype") and np.issubdtype(value.dtype, np.number)):
                raise TypeError(f"{name}: '{key}' must be a numeric array, got {value!r:.60}")
            if np.shape(value) != target.shape:
                raise ValueError(
                    f"{name}: '{key}' holds {np.shape(state[key])} values but this "
                    f"optimizer has {target.shape[0]} parameters: it was saved for a "
                    f"different model"
                )
        return {key: state[key] for key in buffers}

    @staticmethod
    def _copy_buffers(values: dict[str, Any], buffers: dict[str, Any]) -> None:
        for key, target in buffers.items():
            target[...] = get_array_module(target).asarray(values[key])


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (heavy-ball) momentum.

        buf <- momentum * buf + g
        p   <- p - lr * buf

    With momentum 0 this is plain ``p <- p - lr * g``. Same rule as
    ``torch.optim.SGD`` (dampening 0, no Nesterov).
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float = 0.0,
        in_place: bool = True,
    ):
        super().__init__(params, lr, in_place)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must lie in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.buf = get_array_module(self.data).zeros_like(self.data)

    def formula_step(self) -> None:
        g = self.grad
        if self.momentum:
            self.buf[...] = self.momentum * self.buf + g
            g = self.buf
        self.data -= self.lr * g

    def in_place_step(self) -> None:  # fast path: the same arithmetic, fewer temporaries
        g = self.grad
        if self.momentum:
            self.buf *= self.momentum
            self.buf += g
            g = self.buf
        self.data -= self.lr * g

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "buf": to_host(self.buf)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        buffers = {"buf": self.buf}
        values = self._check_buffers(state, buffers)
        lr, momentum = self._read_numbers(state, "lr", "momentum")
        self._copy_buffers(values, buffers)
        self.lr, self.momentum = lr, momentum


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), step for step as ``torch.optim.Adam``.

    With g the gradient and t the step count (starting at 1):

        m <- b1 m + (1 - b1) g           running mean of g
        v <- b2 v + (1 - b2) g^2         running mean of g^2
        p <- p - lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps)

    m and v start at zero, so early on they are biased towards zero; dividing
    by 1 - b^t removes exactly that bias. The result: each parameter moves by
    about lr per step, whatever the scale of its gradient.
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        in_place: bool = True,
    ):
        super().__init__(params, lr, in_place)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        if not eps >= 0:
            raise ValueError(f"Adam: eps must be >= 0, got {eps}")
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)
        self.t = 0
        xp = get_array_module(self.data)
        self.m = xp.zeros_like(self.data)
        self.v = xp.zeros_like(self.data)
        self._scratch = xp.empty_like(self.data)  # the fast path's one work buffer

    def formula_step(self) -> None:
        """The update as the docstring writes it, with PyTorch's names."""
        xp = get_array_module(self.data)
        b1, b2 = self.betas
        g, m, v = self.grad, self.m, self.v
        self.t += 1
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * (g * g)
        bias_correction1 = 1 - b1**self.t
        bias_correction2 = 1 - b2**self.t
        step_size = self.lr / bias_correction1
        denom = xp.sqrt(v) / math.sqrt(bias_correction2) + self.eps
        self.data -= step_size * (m / denom)

    def in_place_step(self) -> None:
        """Fast path: ``formula_step`` line for line, in place (``out=``) in one scratch
        buffer, so no (n,)-sized temporary is allocated; bit-identical results. Each
        entry's update is its own, so slices of the buffer run on separate cores."""
        xp = get_array_module(self.data)
        b1, b2 = self.betas
        self.t += 1
        step_size = self.lr / (1 - b1**self.t)
        bias_correction2_sqrt = math.sqrt(1 - b2**self.t)

        def update(part: slice) -> None:
            g, m, v, tmp = self.grad[part], self.m[part], self.v[part], self._scratch[part]
            m *= b1
            m += xp.multiply(g, 1 - b1, out=tmp)
            v *= b2
            v += xp.multiply(xp.multiply(g, g, out=tmp), 1 - b2, out=tmp)
            denom = xp.sqrt(v, out=tmp)
            denom /= bias_correction2_sqrt
            denom += self.eps
            self.data[part] -= xp.multiply(xp.divide(m, denom, out=tmp), step_size, out=tmp)

        parallel_slices(update, self.data.size, self.data.size, xp)

    def state_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "t": self.t,
            "m": to_host(self.m),
            "v": to_host(self.v),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        buffers = {"m": self.m, "v": self.v}
        values = self._check_buffers(state, buffers)
        lr, eps, t, betas = self._read_numbers(state, "lr", "eps", "t", "betas")
        if not (isinstance(betas, tuple) and len(betas) == 2):
            raise ValueError(f"Adam.load_state_dict: 'betas' must be two numbers, got {betas}")
        self._copy_buffers(values, buffers)
        self.lr, self.eps, self.t, self.betas = lr, eps, int(t), betas


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton, 2012), step for step as ``torch.optim.RMSprop``.

    With g the gradient:

        v   <- alpha v + (1 - alpha) g^2        running mean of g^2 (starts at 0)
        p   <- p - lr * g / (sqrt(v) + eps)     momentum = 0
        buf <- momentum buf + g / (sqrt(v) + eps),   p <- p - lr * buf    otherwise

    Each parameter's step is its gradient divided by the gradient's own recent
    size, as in Adam, but with no running mean of g itself and no bias
    correction (so the first steps are large: v starts at (1 - alpha) g^2). WGAN
    uses it because momentum-based steps (Adam) made its critic unstable
    (Arjovsky et al., 2017, section 4). Not implemented: ``centered``, weight decay.
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        in_place: bool = True,
    ):
        super().__init__(params, lr, in_place)
        if not 0 <= alpha <= 1:
            raise ValueError(f"RMSprop: alpha must lie in [0, 1], got {alpha}")
        if not eps >= 0:
            raise ValueError(f"RMSprop: eps must be >= 0, got {eps}")
        if not 0 <= momentum < 1:
            raise ValueError(f"RMSprop: momentum must lie in [0, 1), got {momentum}")
        self.alpha, self.eps, self.momentum = float(alpha), float(eps), float(momentum)
        xp = get_array_module(self.data)
        self.v = xp.zeros_like(self.data)  # PyTorch's square_avg
        self.buf = xp.zeros_like(self.data)  # PyTorch's momentum_buffer
        self._scratch = xp.empty_like(self.data)  # the fast path's one work buffer

    def formula_step(self) -> None:
        """The update as the docstring writes it."""
        xp = get_array_module(self.data)
        g, v, alpha = self.grad, self.v, self.alpha
        v[...] = alpha * v + (1 - alpha) * (g * g)
        denom = xp.sqrt(v) + self.eps
        if self.momentum:
            self.buf[...] = self.momentum * self.buf + g / denom
            self.data -= self.lr * self.buf
        else:
            self.data -= self.lr * (g / denom)

    def in_place_step(self) -> None:
        """Fast path: ``formula_step`` line for line, in one scratch buffer; bit-identical."""
        xp = get_array_module(self.data)
        g, v, tmp = self.grad, self.v, self._scratch
        v *= self.alpha
        v += xp.multiply(xp.multiply(g, g, out=tmp), 1 - self.alpha, out=tmp)
        denom = xp.sqrt(v, out=tmp)
        denom += self.eps
        if self.momentum:
            self.buf *= self.momentum
            self.buf += xp.divide(g, denom, out=tmp)
            self.data -= xp.multiply(self.buf, self.lr, out=tmp)
        else:
            self.data -= xp.multiply(xp.divide(g, denom, out=tmp), self.lr, out=tmp)

    def state_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "alpha": self.alpha,
            "eps": self.eps,
            "momentum": self.momentum,
            "v": to_host(self.v),
            "buf": to_host(self.buf),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        buffers = {"v": self.v, "buf": self.buf}
        values = self._check_buffers(state, buffers)
        lr, alpha, eps, momentum = self._read_numbers(state, "lr", "alpha", "eps", "momentum")
        self._copy_buffers(values, buffers)
        self.lr, self.alpha, self.eps, self.momentum = lr, alpha, eps, momentum


def clip_weights(params: Iterable[Parameter], limit: float) -> None:
    """Clip every value to [-limit, limit], in place: WGAN's crude Lipschitz constraint.

    The critic must be K-Lipschitz for its score gap to estimate the Wasserstein
    distance; the WGAN paper gets a bound K by keeping every weight in a small
    box, [-0.01, 0.01], after each critic update (a projection, not part of any
    gradient). In place (``out=``), so parameters keep viewing the optimizer's
    flat buffer.
    """
    if not limit > 0:
        raise ValueError(f"clip_weights: the limit must be > 0, got {limit}")
    for p in params:
        get_array_module(p.data).clip(p.data, -limit, limit, out=p.data)
