"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

minigan never keeps a global "current device". Layer code asks the data which
library it belongs to (``xp = get_array_module(x)``), in the style of Chainer and
CuPy, so a NumPy model and a CuPy model can live side by side in one process.
Moving arrays between host and device happens here and nowhere else, and so does
splitting NumPy's elementwise passes over the CPU's cores (``set_num_threads``,
``parallel_slices``: the end of this file).

    >>> from minigan.backend import get_backend, to_host
    >>> be = get_backend("numpy")
    >>> x = be.asarray([[1.0, 2.0]], dtype="float32")   # host -> device (a no-op for NumPy)
    >>> to_host(x)                                        # device -> host, always a NumPy copy
    array([[1., 2.]], dtype=float32)
"""

from __future__ import annotations

import numbers
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
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


# --- threads for NumPy's elementwise passes -------------------------------------------
#
# NumPy runs its matrix products on all cores (through BLAS) but every elementwise
# pass (a copy, an add, a comparison) on one. In a convolutional GAN those passes
# (im2col, col2im, BatchNorm, the activations, Adam) take about half of a training
# step, so on a 2-core CPU one core idles for that half. NumPy releases the GIL inside
# its loops over large arrays, so plain Python threads, each given one slice of the
# work, run them on separate cores. Each slice computes exactly what the whole pass
# would compute for its elements, so the results are bit-identical for any number of
# threads. (Elementwise passes are; a sum along rows is too, as long as the rows are
# contiguous: NumPy orders a sum over strided rows by how many rows it is given, so
# callers split those only when they are contiguous, as BatchNorm does.)
#
# The catch: after each matrix product, OpenBLAS's worker threads keep spinning for
# about 0.1 s (2^28 cycles), waiting for the next one, on the very cores these
# threads need; then both crawl, and the step gets slower than with no threads.
# Started with OPENBLAS_THREAD_TIMEOUT=4 in the environment (read when NumPy loads),
# they go to sleep at once instead. So the default is one thread (no gain, no risk);
# ``set_num_threads`` opts in, and ``threads_worth_using`` says when it pays.
# ``examples/mnist_gan.py`` sets the variable before it imports NumPy, then opts in.

# Below this many elements a pass takes ~50 microseconds or less, and handing slices
# to the threads costs about as much as it saves.
PARALLEL_MIN_ELEMENTS = 1 << 17

_threads = 1  # set_num_threads's value
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (made in process, threads, pool)
_this_thread = threading.local()  # .in_slice: running a slice now, so never wait for the pool


def blas_threads_from_environment() -> int:
    """The threads OpenBLAS starts with: ``OPENBLAS_NUM_THREADS``, ``GOTO_NUM_THREADS`` or
    ``OMP_NUM_THREADS`` when set (how one limits them), else every core this process
    may use."""
    for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def numpy_uses_openblas() -> bool:
    """Whether NumPy's BLAS is OpenBLAS (the pip wheels' on Linux and Windows); False
    when NumPy cannot say (before 1.26)."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except (TypeError, KeyError):
        return False
    return "openblas" in str(blas).lower()


def threads_worth_using() -> int:
    """The thread count that speeds this process up: as many as OpenBLAS has when NumPy
    runs on OpenBLAS and ``OPENBLAS_THREAD_TIMEOUT`` is set (its idle threads then
    sleep: see above; the variable must be set before NumPy loads), else 1."""
    if not os.environ.get("OPENBLAS_THREAD_TIMEOUT") or not numpy_uses_openblas():
        return 1
    return blas_threads_from_environment()


def get_num_threads() -> int:
    """How many threads ``parallel_slices`` uses (1, the default: all on the calling thread)."""
    return _threads


def set_num_threads(threads: int) -> None:
    """Split large elementwise passes over ``threads`` threads (as ``torch.set_num_threads``).

    Pays only as ``threads_worth_using`` says: as many as OpenBLAS has, started with
    ``OPENBLAS_THREAD_TIMEOUT=4``; otherwise the threads slow training down.
    """
    global _threads
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"set_num_threads: threads must be an integer >= 1, got {threads!r}")
    _threads = int(threads)


def _run_slice(work: Callable[[slice], Any], part: slice) -> None:
    _this_thread.in_slice = True
    try:
        work(part)
    finally:
        _this_thread.in_slice = False


def parallel_slices(work: Callable[[slice], Any], length: int, elements: int, xp: Any) -> None:
    """Call ``work(part)`` for slices ``part`` that together cover ``range(length)``.

    ``work`` must touch only the entries its slice owns (e.g. its channels), so the
    slices can run at the same time. With NumPy, more than one thread and a pass over
    at least ``PARALLEL_MIN_ELEMENTS`` array elements (``elements``), the slices run in
    threads, one each; otherwise ``work(slice(0, length))`` runs here, once. CuPy: once,
    as the GPU already spreads each operation over its thousands of cores. Called from
    inside a slice, it runs once too (a slice waiting for the pool it occupies would
    wait forever).
    """
    global _pool
    count = get_num_threads()
    threads = min(count, length)
    if (
        xp is not np
        or threads < 2
        or elements < PARALLEL_MIN_ELEMENTS
        or getattr(_this_thread, "in_slice", False)
    ):
        work(slice(0, length))
        return
    if _pool is None or _pool[:2] != (os.getpid(), count):
        # (a child process inherits no running threads: it makes its own pool)
        _pool = (os.getpid(), count, ThreadPoolExecutor(count - 1))
    parts = [slice(length * t // threads, length * (t + 1) // threads) for t in range(threads)]
    # The calling thread does the first slice itself while the pool does the others.
    # Every slice finishes before this returns (or re-raises a slice's exception),
    # so no thread still writes into the arrays afterwards.
    others = [_pool[2].submit(_run_slice, work, part) for part in parts[1:]]
    try:
        _run_slice(work, parts[0])
    finally:
        wait(others)
    for other in others:
        other.result()


def parallel_elementwise(work: Callable[..., Any], *arrays: Any) -> None:
    """Call ``work(*pieces)`` on matching pieces of ``arrays`` (all of one shape), in threads.

    For elementwise passes that write their results into arrays given to them
    (``out=``): each piece is the same slice of every array, along the axis that is
    outermost in the first array's memory (of those longer than 1), so each thread
    walks its own contiguous block. See ``parallel_slices`` for when threads are used.
    """
    first = arrays[0]
    axes = (
        []
        if get_array_module(first) is not np
        else [a for a in range(first.ndim) if first.shape[a] > 1]
    )
    if not axes:
        work(*arrays)  # CuPy (one call: see parallel_slices), or nothing to split
        return
    axis = max(axes, key=lambda a: abs(first.strides[a]))

    def piece(part: slice) -> None:
        index = (slice(None),) * axis + (part,)
        work(*(a[index] for a in arrays))

    parallel_slices(piece, first.shape[axis], first.size, np)


def parallel_multiply(a: Any, b: Any) -> Any:
    """``a * b`` (same shape), as a new array laid out like ``a``, through
    ``parallel_elementwise``."""
    xp = get_array_module(a)
    product = xp.empty_like(a)
    parallel_elementwise(lambda a, b, out: xp.multiply(a, b, out=out), a, b, product)
    return product
