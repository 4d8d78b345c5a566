"""Numerical gradient checks: the proof that a backward pass is right.

A derivative is a limit, so it can be estimated by nudging one number at a time:

    dL/dx_i  ~  (L(x + h e_i) - L(x - h e_i)) / (2 h)

This central difference has error O(h^2); in float64 with h = 1e-5 it agrees with
a correct analytic gradient to about 1e-9 relative, while a wrong backward pass
is off by O(1). That is why checks run in float64: in float32 the rounding of
L itself (~1e-7) swamps the difference.

Choosing h, per check: two errors pull opposite ways. The truncation error of the
central difference is h**2 f'''(x) / 6, large where the function curves sharply; the
rounding error is about 1e-16 |L| / h, large for a tiny h. The default h = 1e-5 suits
smooth layers on inputs of order 1. Where a function curves on a smaller scale, keep h
well below it: -log p curves on the scale of p itself (relative truncation error
h**2 / (3 p**2)), so BCELoss on probabilities near 1e-3 (or 1 - 1e-3) needs h ~ 1e-7;
with h = 1e-5 a correct backward shows an error of ~1e-5 and looks wrong.

    >>> import numpy as np
    >>> from minigan import nn
    >>> from minigan.gradcheck import check_module
    >>> layer = nn.Linear(3, 2, rng=np.random.default_rng(0), dtype=np.float64)
    >>> errors = check_module(layer, np.random.default_rng(1).normal(size=(4, 3)))
    >>> max(errors.values()) < 1e-8
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigan.backend import get_array_module, to_host


def numerical_gradient(
    f: Callable[[], Any],
    x: Any,
    h: float = 1e-5,
    num_checks: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Central-difference estimate of d f() / d x, nudging ``x`` in place.

    Args:
        f: computes a scalar from the current contents of ``x`` (and anything else).
        x: the array to differentiate with respect to; restored exactly afterwards.
        h: the nudge.
        num_checks: estimate only this many randomly chosen entries (the rest stay
            NaN), for arrays too big to nudge one entry at a time.

    Returns:
        A float64 NumPy array shaped like ``x``.
    """
    grad = np.full(x.shape, np.nan)
    indices = list(np.ndindex(x.shape))
    if num_checks is not None and num_checks < len(indices):
        chosen = np.random.default_rng(seed).choice(len(indices), num_checks, replace=False)
        indices = [indices[i] for i in sorted(chosen)]
    for index in indices:
        original = x[index].copy()
        x[index] = original + h
        f_plus = float(f())
        x[index] = original - h
        f_minus = float(f())
        x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(analytic: Any, numeric: np.ndarray) -> float:
    """``max |a - n| / max(max |a|, max |n|)`` over the entries ``numeric`` holds.

    Scaled by the gradient's largest entry, not entry by entry, so tiny entries
    whose rounding noise is large relative to themselves do not raise false alarms.
    Returns 0.0 when both gradients are exactly zero.
    """
    a = to_host(analytic).astype(np.float64)
    checked = ~np.isnan(numeric)
    a, n = a[checked], numeric[checked]
    scale = max(np.abs(a).max(initial=0.0), np.abs(n).max(initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.abs(a - n).max() / scale)


def _require_float64(what: str, array: Any) -> None:
    if array.dtype != np.float64:
        raise TypeError(
            f"gradient checks need float64 ({what} is {array.dtype}): in float32 rounding "
            f"swamps the finite differences; use model.to(dtype='float64') and "
            f"x.astype('float64')"
        )


def check_module(
    module: Any,
    x: Any,
    loss: Any = None,
    target: Any = None,
    h: float = 1e-5,
    num_checks: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Compare ``module.backward`` with finite differences, for its input and parameters.

    The scalar being differentiated is ``loss(module(x), target)`` when a loss is
    given, else ``sum(module(x) * r)`` for a fixed random r, which weighs every
    output entry differently so that no error can cancel out.

    Also raises ``ValueError`` when the module breaks the layer contract in a way
    finite differences cannot see: when forward or backward changes ``x`` in place,
    or when backward assigns ``param.grad`` instead of adding to it.

    Returns:
        ``{"input": err, "<param name>": err, ...}``: the ``relative_error`` of each
        gradient (parameters with ``requires_grad=False`` are skipped).
    """
    _require_float64("the input", x)
    params = {name: p for name, p in module.named_parameters() if p.requires_grad}
    for name, p in params.items():
        _require_float64(f"parameter '{name}'", p.data)
    xp = get_array_module(x)

    if loss is None:
        y = module.forward(x)
        r = xp.asarray(np.random.default_rng(seed).standard_normal(y.shape))

        def objective() -> Any:
            return (module.forward(x) * r).sum()

        def output_gradient() -> Any:
            return r
    else:

        def objective() -> Any:
            return loss.forward(module.forward(x), target)

        def output_gradient() -> Any:
            return loss.backward()

    x_before = x.copy()
    module.zero_grad()
    objective()
    analytic = {"input": module.backward(output_gradient())}
    if not bool((x == x_before).all()):
        raise ValueError(
            f"{type(module).__name__} changed its input x in place during forward or "
            f"backward: a layer may keep x for its backward pass (Linear does, for dL/dW), "
            f"so an input must stay unchanged until backward; compute into a new array"
        )
    analytic.update({name: p.grad.copy() for name, p in params.items()})
    _check_backward_adds(module, params, objective, output_gradient, seed)

    arrays = {"input": x, **{name: p.data for name, p in params.items()}}
    return {
        name: relative_error(
            analytic[name], numerical_gradient(objective, array, h, num_checks, seed)
        )
        for name, array in arrays.items()
    }


def _check_backward_adds(
    module: Any, params: dict[str, Any], objective: Callable, output_gradient: Callable, seed: int
) -> None:
    """Raise if ``module.backward`` replaces ``param.grad`` instead of adding to it.

    Start each .grad at a known nonzero value s, run forward and backward again: a
    correct backward leaves s + g. One that assigns (``p.grad[...] = g``) leaves g,
    and matches the finite differences all the same after a ``zero_grad``, yet it
    silently drops every gradient but the last when two passes add up (as in a GAN).
    """
    grads = {name: p.grad.copy() for name, p in params.items()}
    rng = np.random.default_rng([seed, 1])
    for p in params.values():
        p.grad[...] = get_array_module(p.grad).asarray(rng.standard_normal(p.grad.shape))
    starts = {name: p.grad.copy() for name, p in params.items()}
    objective()
    module.backward(output_gradient())
    xp = get_array_module(*grads.values()) if grads else np
    for name, p in params.items():
        expected = starts[name] + grads[name]
        if not bool(xp.allclose(p.grad, expected, rtol=1e-10, atol=1e-12)):
            raise ValueError(
                f"{type(module).__name__}.backward replaced the gradient of parameter "
                f"'{name}' instead of adding to it: the contract is param.grad += dL/dparam, "
                f"so that gradients of several backward passes add up until zero_grad()"
            )
        p.grad[...] = grads[name]  # leave .grad as one plain backward pass does


def check_loss(loss: Any, pred: Any, target: Any, h: float = 1e-5) -> float:
    """Relative error of ``loss.backward()`` against finite differences in ``pred``."""
    _require_float64("pred", pred)
    loss.forward(pred, target)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: loss.forward(pred, target), pred, h)
    return relative_error(analytic, numeric)


def check_double_backward(module: Any, x: Any, h: float = 1e-5, seed: int = 0) -> dict[str, float]:
    """Compare ``module.double_backward`` with finite differences of the backward pass.

    The scalar is ``S = sum(c * dx)`` with ``dx = module.backward(dy)`` after a
    forward pass on ``x``, for fixed random ``dy`` (shaped like the output) and
    ``c`` (shaped like ``x``): a function of the backward pass's output whose
    gradient with respect to dx is exactly ``c``. ``double_backward(c)`` must then
    return dS/d(dy) and dS/dx and add dS/dθ into each parameter's ``.grad``.

    Returns:
        ``{"grad_out": err, "input": err, "<param name>": err, ...}``: the
        ``relative_error`` of dS/d(dy), dS/dx and each dS/dθ (a gradient returned
        as None counts as zeros).
    """
    _require_float64("the input", x)
    params = {name: p for name, p in module.named_parameters() if p.requires_grad}
    for name, p in params.items():
        _require_float64(f"parameter '{name}'", p.data)
    xp = get_array_module(x)
    rng = np.random.default_rng(seed)
    dy = xp.asarray(rng.standard_normal(module.forward(x).shape))
    c = xp.asarray(rng.standard_normal(x.shape))

    def objective() -> Any:
        module.forward(x)
        return (module.backward(dy) * c).sum()

    module.forward(x)
    module.backward(dy, create_graph=True)
    module.zero_grad()  # keep only what double_backward adds
    grad_dy, grad_x = module.double_backward(c)
    analytic = {
        "grad_out": grad_dy,
        "input": xp.zeros_like(x) if grad_x is None else grad_x,
        **{name: p.grad.copy() for name, p in params.items()},
    }
    arrays = {"grad_out": dy, "input": x, **{name: p.data for name, p in params.items()}}
    return {
        name: relative_error(analytic[name], numerical_gradient(objective, array, h))
        for name, array in arrays.items()
    }
