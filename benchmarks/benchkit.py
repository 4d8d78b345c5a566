"""What every benchmark here shares: machine facts, GEMM rates and interleaved timing.

- the machine: CPU model, load (``loadavg``, ``busy_warning``), numpy's BLAS and its
  thread count, PyTorch and CuPy when they are there;
- ``gemm_peak_numpy`` / ``gemm_peak_torch``: float32 GFLOP/s of one large matmul, the
  yardstick for "how close to the hardware";
- ``time_rounds``: ms/step of several contenders, interleaved in rotating order with the
  garbage collector paused, so that a busy moment hurts all of them alike; by the wall
  clock, or by the process's CPU time (``CLOCKS``), which other processes on a shared
  machine inflate far less (a fair yardstick when every contender runs one thread).

A contender is anything with ``.name``, ``.step()`` (one training step) and ``.sync()``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigan.backend import BackendUnavailableError, get_backend

# --- the machine -------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> str:
    """/proc/loadavg: 1, 5, 15-minute load averages, running/total tasks."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return "unavailable"


def busy_warning(load: str) -> str:
    """A warning when the 1-minute load average shows other work on the cores."""
    try:
        one_minute = float(load.split()[0])
    except (IndexError, ValueError):
        return ""
    cores = len(os.sched_getaffinity(0))
    if one_minute < 0.5:
        return ""
    return (
        f" (WARNING: load {one_minute:g} on {cores} cores before the start: the machine "
        "was busy, so these figures are not fit to compare)"
    )


def numpy_blas() -> str:
    """numpy's BLAS library, version and build configuration, from numpy.show_config."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # noqa: BLE001 - the layout of show_config differs across versions
        return "unknown"
    config = blas.get("openblas configuration", "")
    return f"{blas.get('name', '?')} {blas.get('version', '?')}" + (
        f" ({config})" if config else ""
    )


def _openblas_threads() -> int | None:
    """OpenBLAS's own thread count, asked through ctypes from the library numpy loaded."""
    try:
        with open("/proc/self/maps") as maps:
            libraries = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    symbols = (
        "scipy_openblas_get_num_threads64_",
        "scipy_openblas_get_num_threads",
        "openblas_get_num_threads64_",
        "openblas_get_num_threads",
    )
    for path in sorted(libraries, key=lambda p: "numpy" not in p):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in symbols:
            function = getattr(library, symbol, None)
            if function is not None:
                function.restype = ctypes.c_int
                return int(function())
    return None


def blas_threads() -> tuple[int, str]:
    """How many threads numpy's BLAS uses, and where that figure comes from."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        pools.sort(key=lambda p: "numpy" not in p.get("filepath", ""))
        if pools:
            return int(pools[0]["num_threads"]), f"threadpoolctl, {pools[0]['internal_api']}"
    threads = _openblas_threads()
    if threads:
        return threads, "threadpoolctl not installed; OpenBLAS's own count via ctypes"
    return os.cpu_count() or 1, "threadpoolctl not installed; os.cpu_count()"


def import_torch(disabled: bool) -> tuple[Any, str]:
    """(the torch module or None, why not)."""
    if disabled:
        return None, "--no-torch given"
    try:
        import torch
    except ImportError as error:
        return None, f"PyTorch is not importable ({error})"
    return torch, ""


def cupy_backend(disabled: bool) -> tuple[Any, str]:
    """(the CuPy backend or None, why not)."""
    if disabled:
        return None, "--no-cupy given"
    try:
        return get_backend("cupy"), ""
    except BackendUnavailableError as error:
        return None, str(error)


# --- GEMM rates ----------------------------------------------------------------------------


def gemm_rates(
    multiply: Callable[[], Any],
    size: int,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """GFLOP/s of ``repeats`` calls of ``multiply`` (one size x size product), after a warm-up."""
    multiply()
    rates = []
    for _ in range(repeats):
        start = clock()
        multiply()
        rates.append(2 * size**3 / (clock() - start) / 1e9)
    return rates


def gemm_peak_numpy(
    size: int, repeats: int, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """float32 np.matmul (OpenBLAS here), into a preallocated output."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    return gemm_rates(lambda: np.matmul(a, b, out=out), size, repeats, clock)


def gemm_peak_torch(torch: Any, size: int, repeats: int) -> list[float]:
    """The same for torch.mm (MKL), for reference."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    return gemm_rates(lambda: torch.mm(a, b, out=out), size, repeats)


# --- interleaved timing --------------------------------------------------------------------


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage-collection pass inside a timed round: it would land on one contender."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# "wall": elapsed time. "cpu": this process's CPU time (user + system, all its threads),
# which excludes the time other processes hold the cores; with several threads it also
# counts threads that busy-wait, so compare CPU times of single-threaded runs only.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def time_rounds(
    contenders: list[Any],
    rounds: int,
    steps: int,
    warmup: int,
    pause: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """ms/step of each contender in each round, the order rotating: A B C, B C A, ...

    ``clock`` is one of ``CLOCKS``' values (the wall clock unless given).
    """
    for c in contenders:
        for _ in range(warmup):
            c.step()
        c.sync()
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    for r in range(rounds):
        shift = r % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            # Let the other library's worker threads stop spinning (OpenBLAS and OpenMP
            # busy-wait a while after each call): on 2 cores they would steal a core.
            time.sleep(pause)
            with gc_paused():
                c.sync()
                start = clock()
                for _ in range(steps):
                    c.step()
                c.sync()
                times[c.name].append((clock() - start) / steps * 1e3)
    return times
