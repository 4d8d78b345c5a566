"""Threads and the in-place twin of Adam's update (the workshop; NumPy only).

The reading wing writes each pass as its formula. One formula is marked ``fast_kernel``
(``minigan/backend.py``, the one door between the wings): ``adam_update``
(``minigan/optim.py``). This module holds its twin: the same arithmetic in the same
order, so the same numbers bit for bit (tests/test_threads.py), written into one work
buffer kept per array (no temporaries) and split over threads. ``set_num_threads(n)``
installs the twin (n = 1: in place, on the calling thread; n > 1: split over n
threads); ``use_formulas()`` takes it out again, and ``with using(n):`` installs it for
a block, then restores what it found. Importing minigan installs nothing. CuPy arrays
always run the formula (the hook sees to that).

Why only Adam: a twin stays only where a benchmark in one process shows it pays
(benchmarks/bench_kernels.py, figures in benchmarks/RESULTS.md). Adam's update over a
whole network's flat buffers is the one pass where a twin paid: writing in place (no
temporaries the size of the network) for every network measured, and splitting over
two threads on top of it for the largest buffer. In-place or threaded twins of im2col,
col2im and BatchNorm's passes did not pay (their arrays are smaller, and the formulas
already run as whole-array operations), so the layers run their formulas.

Why threads at all: NumPy runs its matrix products on all cores (through BLAS) but
every elementwise pass on one. NumPy releases the GIL inside its loops over large
arrays, so plain Python threads, each given one slice of the work, run them on separate
cores. Each slice computes exactly what the whole pass would compute for its elements,
so the results are bit-identical for any number of threads.

The catch: after each matrix product, OpenBLAS's worker threads keep spinning, for
2^28 cycles by default, waiting for the next one, on the very cores these threads
need; then both crawl. Started with ``OPENBLAS_THREAD_TIMEOUT=4`` in the environment
(read when NumPy loads), they go to sleep at once instead; ``threads_worth_using``
reads that.

And on a shared machine threads collapse: when another process holds the other cores,
every split pass waits for its slowest slice, and BLAS's spinning threads and ours
take turns on the same cores. So the example script's default is one thread
everywhere (BLAS's and ours); threads are an opt-in for an idle machine
(benchmarks/bench_shared.py; figures in benchmarks/RESULTS.md, "Sharing the machine").
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from minigan.backend import install_fast_kernel, remove_fast_kernels
from minigan.optim import adam_update

# Below this many elements, handing slices to the threads costs about as much as it
# saves, so a pass this small runs in one piece (bench_kernels.py shows where).
PARALLEL_MIN_ELEMENTS = 1 << 17

_threads = 1  # set_num_threads's value
_installed = False  # whether set_num_threads installed the twins (use_formulas: not)
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (made in process, threads, pool)
_this_thread = threading.local()  # .in_slice: running a slice now, so never wait for the pool


# --- how many threads ---------------------------------------------------------------------


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
    """The thread count that can speed this process up on an idle machine: as many as
    OpenBLAS has when NumPy runs on OpenBLAS and ``OPENBLAS_THREAD_TIMEOUT`` is set (its
    idle threads then sleep: see the module docstring; the variable must be set before
    NumPy loads), else 1. On a shared machine, 1 (the module docstring)."""
    if not os.environ.get("OPENBLAS_THREAD_TIMEOUT") or not numpy_uses_openblas():
        return 1
    return blas_threads_from_environment()


def get_num_threads() -> int:
    """How many threads ``parallel_slices`` uses (1, the default: all on the calling thread)."""
    return _threads


def set_num_threads(threads: int) -> None:
    """Install the fast twins, split over ``threads`` threads (as ``torch.set_num_threads``).

    ``threads`` = 1 runs the twins in place on the calling thread. More pays only as
    ``threads_worth_using`` says, on an idle machine. ``use_formulas()`` undoes this.
    """
    global _threads, _installed
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"set_num_threads: threads must be an integer >= 1, got {threads!r}")
    _threads, _installed = int(threads), True
    for kernel, twin in TWINS.items():
        install_fast_kernel(kernel, twin)


def use_formulas() -> None:
    """Every kernel runs its formula again (the state after ``import minigan``); one thread."""
    global _threads, _installed
    remove_fast_kernels()
    _threads, _installed = 1, False


@contextlib.contextmanager
def using(threads: int) -> Iterator[None]:
    """``set_num_threads(threads)`` for the length of a ``with`` block; afterwards the
    state before it comes back (the twins and their thread count, or the formulas), so a
    script's ``main()`` called from other code leaves that code's kernels as it found them.
    """
    before = _threads if _installed else None
    set_num_threads(threads)
    try:
        yield
    finally:
        use_formulas() if before is None else set_num_threads(before)


# --- the pool -----------------------------------------------------------------------------


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


_scratch: dict[int, np.ndarray] = {}  # id(array) -> its work buffer


def scratch_like(a: np.ndarray) -> np.ndarray:
    """A work buffer of ``a``'s shape and dtype, made at the first call for ``a`` and
    reused for it after (dropped when ``a`` is): so a twin's step allocates nothing."""
    buffer = _scratch.get(id(a))
    if buffer is None or buffer.shape != a.shape or buffer.dtype != a.dtype:
        buffer = _scratch[id(a)] = np.empty_like(a)
        weakref.finalize(a, _scratch.pop, id(a), None)
    return buffer


# --- the twins: each its formula's arithmetic, in place, split over the threads -----------
#
# Each takes its formula's arguments (the hook hands them on unchanged, NumPy arrays
# only) and returns what the formula returns, bit for bit.


def adam_update_threaded(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    lr: float,
    betas: tuple[float, float],
    eps: float,
) -> None:
    """``minigan.optim.adam_update`` line for line, in one work buffer (no temporaries),
    slices of the flat arrays in separate threads (each entry's update is its own)."""
    b1, b2 = betas
    step_size = lr / (1 - b1**t)
    bias_correction2_sqrt = math.sqrt(1 - b2**t)
    scratch = scratch_like(p)

    def update(part: slice) -> None:
        g_, m_, v_, tmp = g[part], m[part], v[part], scratch[part]
        m_ *= b1
        m_ += np.multiply(g_, 1 - b1, out=tmp)
        v_ *= b2
        v_ += np.multiply(np.multiply(g_, g_, out=tmp), 1 - b2, out=tmp)
        denom = np.sqrt(v_, out=tmp)
        denom /= bias_correction2_sqrt
        denom += eps
        p[part] -= np.multiply(np.divide(m_, denom, out=tmp), step_size, out=tmp)

    parallel_slices(update, p.size, p.size, np)


TWINS: dict[Callable[..., Any], Callable[..., Any]] = {  # kernel -> its twin
    adam_update: adam_update_threaded,
}
