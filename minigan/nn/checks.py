"""Input validation shared by layers and losses.

Checks run at the public boundary (a layer's forward and backward, a loss) so a
mistake is reported in the layer's own words, e.g.
``Linear(784 -> 256): expected input (batch, 784), got (100, 28, 28)``,
instead of as a broadcasting error from deep inside NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigan.backend import get_array_module, to_host


def check_array(
    where: object,
    x: Any,
    *,
    like: Any = None,
    xp: Any = None,
    dtype: Any = None,
    shape: tuple[int | str, ...] | None = None,
    name: str = "input",
    integer: bool = False,
    dtype_hint: str = "convert it first, e.g. x.astype('float32')",
) -> None:
    """Raise unless ``x`` is an array of the right kind, fit to meet ``like``.

    Args:
        where: the layer or loss doing the check (its ``repr`` starts the message).
        x: the array to check.
        like: an array ``x`` must share its backend with (a parameter, the cached
            forward input), and, for floating-point ``x``, its dtype too: mixing
            them would make NumPy cast silently.
        xp, dtype: the same demands without an array to point at: the array
            module and the dtype ``x`` must have (``like=a`` means ``xp`` = a's
            module, ``dtype=a.dtype``).
        shape: the expected shape; string entries such as ``"batch"`` match any size.
        name: what ``x`` is, for the message ("input", "grad_out", "labels").
        integer: ``x`` holds integers (class labels, indices), not floats.
        dtype_hint: how to fix a wrong dtype, appended to that message.

    Raises:
        TypeError: not an array, the wrong kind of dtype, or another backend or dtype.
        ValueError: wrong shape.
    """
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        what = "array of class indices" if integer else "array"
        raise TypeError(
            f"{_name(where)}: {name} must be a NumPy or CuPy {what}, got {type(x).__name__}"
        )
    x_xp = get_array_module(x)
    kind, wanted = (
        (np.integer, "integer class indices")
        if integer
        else (np.floating, "a floating-point array")
    )
    if not np.issubdtype(x.dtype, kind):  # CuPy arrays carry NumPy dtypes too
        raise TypeError(
            f"{_name(where)}: {name} must be {wanted}, got dtype {x.dtype}; {dtype_hint}"
        )
    expected_xp = get_array_module(like) if like is not None else xp
    dtype = like.dtype if like is not None else dtype
    if expected_xp is not None and expected_xp is not x_xp:
        raise TypeError(
            f"{_name(where)}: {name} is a {x_xp.__name__} array but the layer works on "
            f"{expected_xp.__name__} arrays; move one of them with "
            f"minigan.backend (backend.asarray / model.to(...))"
        )
    if not integer and dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{_name(where)}: {name} has dtype {x.dtype} but the layer computes in "
            f"{np.dtype(dtype)}; minigan never casts silently: convert the {name} with "
            f".astype('{np.dtype(dtype)}') or the model with model.to(dtype='{x.dtype}')"
        )
    if shape is not None and not _shape_matches(x.shape, shape):
        expected = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{_name(where)}: expected {name} {expected}, got {tuple(x.shape)}")


def check_label_range(where: object, y: Any, count: int, what: str, name: str = "labels") -> None:
    """Raise unless every integer in ``y`` lies in [0, count); costs ONE explicit read.

    A label out of range must not pass silently: NumPy would raise an IndexError
    from deep inside the layer, and CuPy wraps an out-of-range index around (label
    12 of 10 picks row 2), giving wrong numbers with no error at all. The check
    reads the labels' min and max back together: one explicit transfer (on a GPU,
    one sync), counted by the CuPy stand-in. An empty ``y`` has nothing to check.

    Args:
        where: the layer or loss doing the check (its ``repr`` starts the message).
        y: integer labels of any shape, already checked by ``check_array(integer=True)``.
        count: how many valid values there are (classes, embeddings).
        what: what they are called in the message ("classes", "embeddings").
    """
    if y.size == 0:
        return
    low, high = (int(v) for v in to_host(get_array_module(y).stack([y.min(), y.max()])))
    if low < 0 or high >= count:
        raise ValueError(
            f"{_name(where)}: {name} must lie in [0, {count}) for {count} {what}, "
            f"got values from {low} to {high}"
        )


def is_integer(value: Any) -> bool:
    """A Python or NumPy integer: what a size or a count must be. Not a bool (``True``
    would pass for 1) and not a float, not even 3.0 (a size computed in floating point
    is a bug to report, not to round)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_size(where: object, name: str, value: Any, least: int = 1) -> int:
    """Return ``value`` as an int, or raise unless it is an integer >= ``least``.

    Layers check their sizes when they are built, so that ``Conv2d(3, 2.5, 4)`` is
    refused in the layer's words instead of failing later inside NumPy.
    """
    if not is_integer(value) or value < least:
        raise ValueError(f"{_name(where)}: {name} must be an integer >= {least}, got {value!r}")
    return int(value)


def check_sizes(where: object, shown: str, *sizes: Any) -> None:
    """Raise unless each of ``sizes`` is an integer >= 1; ``shown`` writes them for the
    message as the layer's repr does, e.g. ``(784 -> 256)``."""
    if not all(is_integer(size) for size in sizes):
        raise ValueError(f"{_name(where)}: sizes must be integers, got {shown}")
    if min(sizes) < 1:
        raise ValueError(f"{_name(where)}: sizes must be positive, got {shown}")


def _shape_matches(got: tuple[int, ...], expected: tuple[int | str, ...]) -> bool:
    if len(got) != len(expected):
        return False
    return all(isinstance(e, str) or e == g for g, e in zip(got, expected))


def _name(where: object) -> str:
    """How a message names its sender: a layer by its repr, a plain string as it is."""
    return where if isinstance(where, str) else repr(where)


def require_forward(where: object, cached: Any) -> Any:
    """Return what forward cached, or say that backward came first."""
    if cached is None:
        raise RuntimeError(
            f"{_name(where)}: backward() called before forward(); run forward on a batch "
            f"first, then backward with the gradient of the loss w.r.t. its output"
        )
    return cached
