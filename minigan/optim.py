"""Optimizers: SGD (with momentum), Adam and RMSprop, as in PyTorch.

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
``step()`` checks that every parameter still views the buffers and raises otherwise,
then runs ``update()``: the math of the class docstring, line for line. Adam's
update is the module-level function ``adam_update``, marked ``fast_kernel``
(``minigan/backend.py``), for which ``minigan.threads`` has an in-place, threaded
twin that computes the same numbers bit for bit.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np

from minigan.backend import fast_kernel, get_array_module, to_host
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
    """Holds the parameters, their flat buffers, ``zero_grad`` and ``step``.

    A subclass writes ``update()``: one step of its rule on the flat arrays.
    """

    def __init__(self, params: Iterable[Parameter], lr: float):
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
        self.data, self.grad = flatten_parameters(params, self)
        # The views handed out above; step() checks that each parameter still holds them.
        self.views = [(p.data, p.grad) for p in params]

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def step(self) -> None:
        """One update of every parameter, once they are checked to view the buffers."""
        self.check_attached()
        self.update()

    def update(self) -> None:
        raise NotImplementedError

    def check_attached(self) -> None:
        """Raise if a parameter no longer views this optimizer's buffers.

        An identity check per parameter: cheap, and it turns "the weights
        silently never change" into an error that names the fix.
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
    ):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must lie in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.buf = get_array_module(self.data).zeros_like(self.data)

    def update(self) -> None:
        """The update as the docstring writes it."""
        g = self.grad
        if self.momentum:
            self.buf[...] = self.momentum * self.buf + g
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
    ):
        super().__init__(params, lr)
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

    def update(self) -> None:
        self.t += 1
        adam_update(self.data, self.grad, self.m, self.v, self.t, self.lr, self.betas, self.eps)

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


@fast_kernel
def adam_update(
    p: Any, g: Any, m: Any, v: Any, t: int, lr: float, betas: tuple[float, float], eps: float
) -> None:
    """Adam's step t on flat arrays, in place: ``Adam``'s docstring, with PyTorch's names.

    Args:
        p, g: the parameters and their gradients; m, v: the running means of g and
            g^2 (all four one shape); t: the step count, from 1; lr, betas, eps: Adam's.
    """
    xp = get_array_module(p)
    b1, b2 = betas
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * (g * g)
    bias_correction1 = 1 - b1**t
    bias_correction2 = 1 - b2**t
    step_size = lr / bias_correction1
    denom = xp.sqrt(v) / math.sqrt(bias_correction2) + eps
    p -= step_size * (m / denom)


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
    ):
        super().__init__(params, lr)
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

    def update(self) -> None:
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
