"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

minigan never keeps a global "current device". Layer code asks the data which
library it belongs to (``xp = get_array_module(x)``), in the style of Chainer and
CuPy, so a NumPy model and a CuPy model can live side by side in one process.
Moving arrays between host and device happens here and nowhere else.

This file also holds the one door between the reading wing (the layers, losses and
optimizers, each body its formula) and the workshop (``minigan.threads``: in-place and
threaded kernels): ``fast_kernel``, at the end. A named formula marked with it (today
only Adam's update, ``minigan.optim.adam_update``) may be given a twin by the workshop,
which computes the same numbers bit for bit. Importing minigan installs none: every
formula then runs as written.

    >>> from minigan.backend import get_backend, to_host
    >>> be = get_backend("numpy")
    >>> x = be.asarray([[1.0, 2.0]], dtype="float32")   # host -> device (a no-op for NumPy)
    >>> to_host(x)                                        # device -> host, always a NumPy copy
    array([[1., 2.]], dtype=float32)
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

BACKEND_NAMES = ("numpy", "cupy")

CUPY_INSTALL_HINT = (
    'install CuPy for your CUDA version, e.g. pip install "minigan[cuda12]" '
    '(CUDA 12) or pip install "minigan[cuda13]" (CUDA 13)'
)


class BackendUnavailableError(RuntimeError):
    """The requested backend exists but cannot run on this machine."""


def get_array_module(*arrays: Any) -> ModuleType:
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``.

    CuPy is only consulted if something has already imported it: if it was never
    imported, no CuPy array can exist, and NumPy-only users never pay its import.
    """
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        return cupy.get_array_module(*arrays)
    return np


class Backend:
    """One array library plus the few operations that cross the host/device line.

    Attributes:
        name: ``"numpy"`` or ``"cupy"``.
        xp: the array module (``numpy`` or ``cupy``).
    """

    def __init__(self, name: str, xp: ModuleType):
        self.name = name
        self.xp = xp

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backend) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def asarray(self, array: Any, dtype: Any = None) -> Any:
        """Host -> device copy (NumPy: no copy when ``array`` already fits)."""
        if self.xp is np and get_array_module(array) is not np:
            array = array.get()  # a CuPy array brought back to the host
        return self.xp.asarray(array, dtype=dtype)

    def synchronize(self) -> None:
        """Wait until queued device work has finished (a no-op for NumPy).

        Needed only for timing: reading a value back with ``to_host`` already waits.
        """
        if self.xp is not np:
            self.xp.cuda.get_current_stream().synchronize()

    def default_rng(self, seed: int | None = None) -> Any:
        """A random generator that produces arrays on this backend.

        NumPy and CuPy give different streams for the same seed.
        """
        return self.xp.random.default_rng(seed)


def _import_cupy() -> ModuleType:
    try:
        import cupy
    except ImportError as error:
        raise BackendUnavailableError(
            f"the 'cupy' backend needs CuPy, which is not installed ({error}); "
            f"{CUPY_INSTALL_HINT}, or use backend 'numpy'"
        ) from None
    try:
        usable = cupy.cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken CUDA driver raises many kinds of error
        usable = False
    if not usable:
        raise BackendUnavailableError(
            "CuPy is installed but finds no usable CUDA GPU (cupy.cuda.is_available() "
            "is False): check the NVIDIA driver with nvidia-smi, or use backend 'numpy'"
        )
    return cupy


def get_backend(name: str | Backend = "numpy") -> Backend:
    """Return the backend called ``name`` (``"numpy"`` or ``"cupy"``).

    Raises:
        ValueError: ``name`` is not one of ``BACKEND_NAMES``.
        BackendUnavailableError: ``"cupy"`` without CuPy installed or without a GPU.
    """
    if isinstance(name, Backend):
        return name
    if name == "numpy":
        return Backend("numpy", np)
    if name == "cupy":
        return Backend("cupy", _import_cupy())
    valid = ", ".join(repr(n) for n in BACKEND_NAMES)
    raise ValueError(f"unknown backend {name!r}; valid backends are {valid}")


def to_host(array: Any) -> np.ndarray:
    """Device -> host: a NumPy copy of ``array`` that shares no memory with it.

    The one way minigan reads values back. On CuPy it is an explicit transfer that
    waits for the GPU (a sync), so training code calls it only at logging points.
    NumPy arrays are copied too, so a saved state never aliases live weights.
    """
    if get_array_module(array) is np:
        return np.array(array, copy=True)
    return array.get()


def backend_of(array: Any) -> Backend:
    """The backend an array lives on."""
    return get_backend("numpy" if get_array_module(array) is np else "cupy")


# --- the fast-kernel hook: the one door between the reading wing and the workshop -------

_twins: dict[Callable[..., Any], Callable[..., Any]] = {}  # formula -> its installed twin


def fast_kernel(formula: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``formula`` as a kernel the workshop may run faster: the one door between the wings.

    Layers call the marked function as they would call ``formula``. A call goes to the
    twin installed for this formula (``install_fast_kernel``) when there is one and the
    first argument (always an array) is a NumPy array; otherwise to ``formula`` itself.
    So CuPy arrays always run the formula (the GPU already spreads each operation over
    its cores), and so does every call until something installs a twin: importing
    minigan installs none. ``minigan.threads.set_num_threads`` installs in-place,
    threaded twins, each tested to return its formula's numbers bit for bit
    (tests/test_threads.py): which of the two runs changes the speed, never a result.
    The formula stays at hand as ``kernel.formula``.
    """

    @functools.wraps(formula)
    def kernel(*args: Any, **kwargs: Any) -> Any:
        twin = _twins.get(formula)  # with no twin installed, the hook's whole cost
        if twin is None or not isinstance(args[0], np.ndarray):  # CuPy: the formula
            return formula(*args, **kwargs)
        return twin(*args, **kwargs)

    kernel.formula = formula  # type: ignore[attr-defined]
    return kernel


def install_fast_kernel(kernel: Callable[..., Any], twin: Callable[..., Any]) -> None:
    """Run ``twin`` where ``kernel`` (a ``fast_kernel``) is called with NumPy arrays.

    ``twin`` takes the formula's arguments and must return its numbers bit for bit.
    """
    formula = getattr(kernel, "formula", None)
    if formula is None:
        raise TypeError(f"install_fast_kernel: {kernel!r} is not marked with @fast_kernel")
    _twins[formula] = twin


def remove_fast_kernels() -> None:
    """Every kernel runs its formula again."""
    _twins.clear()
