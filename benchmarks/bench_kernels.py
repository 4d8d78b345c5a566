"""Each fast kernel's formula against its twin (minigan.threads), at 1 and 2 threads.

The kernels marked ``fast_kernel`` (today only ``adam_update``; im2col, col2im and
BatchNorm's two passes had twins until this script showed they did not pay, see
benchmarks/RESULTS.md) are timed on the arguments they really get: one
training step of the default DCGAN (``DCGANConfig()``: batch 32, 28x28, 32 and 64
channels) and of the default MLP GAN (``GANConfig()``: its Adam sizes) is run with a
recorder in the hook, and every distinct call (kernel and argument shapes) is kept.
For each, three contenders run interleaved in this one process (A B C, B C A, ...,
garbage collector paused; ``benchkit.time_rounds``): the formula, the twin on one thread
(in place), the twin split over two threads. Prints ms per call, the calls per training
step, and each twin's time as a ratio of the formula's; asserts nothing (figures go to
benchmarks/RESULTS.md, with the machine, date and command).

    python benchmarks/bench_kernels.py                  # a few minutes on 2 cores
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_kernels.py --clock cpu --threads 1

``--threads`` lists the twins' thread counts (1 2 by default); ``--clock cpu`` measures
the process's CPU time (fair only for one thread). The last lines time the hook itself:
a call through ``fast_kernel`` with and without a twin installed, against a plain call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

# Before NumPy loads: OpenBLAS's idle threads then sleep instead of spinning on the
# cores the twins' threads use (see minigan/threads.py).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np
from benchkit import CLOCKS, blas_threads, busy_warning, cpu_model, loadavg, numpy_blas, time_rounds

from minigan import threads as workshop
from minigan.backend import fast_kernel, install_fast_kernel, remove_fast_kernels
from minigan.models import DCGAN, GAN, DCGANConfig, GANConfig


class Contender:
    """One way to run one recorded call, for ``benchkit.time_rounds``."""

    def __init__(self, name: str, run: Callable[[], Any], threads: int = 1):
        self.name, self.run, self.threads = name, run, threads

    def step(self) -> None:
        workshop._threads = self.threads  # the twins read the count at each call
        self.run()

    def sync(self) -> None:  # NumPy: nothing is queued
        pass


def describe(value: Any) -> str:
    """An argument as the table shows it: an array's shape (and layout), else its value."""
    if isinstance(value, np.ndarray):
        layout = "" if value.flags.c_contiguous or value.ndim < 2 else " strided"
        return f"{value.shape}{layout}"
    if isinstance(value, tuple) and value and isinstance(value[0], np.ndarray):
        return "(" + ", ".join(describe(v) for v in value) + ")"
    return repr(value) if not isinstance(value, float) else f"{value:g}"


def record_calls(model: Any, batch: np.ndarray, source: str) -> tuple[dict, Counter]:
    """Run one training step with a recorder as every kernel's twin: the distinct calls
    (by kernel and arguments' shapes) with a copy of their arguments, and their counts."""
    calls: dict[tuple[str, str], tuple[Callable, tuple]] = {}
    counts: Counter = Counter()

    def recorder(kernel: Callable) -> Callable:
        def record(*args: Any) -> Any:
            key = (f"{source}: {kernel.__name__}", ", ".join(describe(a) for a in args))
            counts[key] += 1
            if key not in calls:
                copies = tuple(
                    a.copy(order="K") if isinstance(a, np.ndarray) else _copy_pair(a) for a in args
                )
                calls[key] = (kernel, copies)
            return kernel.formula(*args)

        return record

    for kernel in workshop.TWINS:
        install_fast_kernel(kernel, recorder(kernel))
    try:
        model.train_step(batch)
    finally:
        remove_fast_kernels()
    return calls, counts


def _copy_pair(value: Any) -> Any:
    """BatchNorm's running statistics arrive as a pair of arrays: copy both."""
    if isinstance(value, tuple) and value and isinstance(value[0], np.ndarray):
        return tuple(v.copy() for v in value)
    return value


def hook_overhead(clock: Callable[[], float], calls: int = 200_000) -> dict[str, float]:
    """Nanoseconds per call of a trivial function: plain, marked with no twin, marked with
    a twin installed (the twin itself as trivial)."""

    def identity(x: Any) -> Any:
        return x

    marked = fast_kernel(identity)
    x = np.zeros(1)
    results = {}
    for name, f in (("plain call", identity), ("fast_kernel, no twin", marked)):
        start = clock()
        for _ in range(calls):
            f(x)
        results[name] = (clock() - start) / calls * 1e9
    install_fast_kernel(marked, identity)
    try:
        start = clock()
        for _ in range(calls):
            marked(x)
        results["fast_kernel, twin installed"] = (clock() - start) / calls * 1e9
    finally:
        remove_fast_kernels()
    return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="timed rounds per call (after warm-up)")
    p.add_argument("--repeats", type=int, default=20, help="calls per contender per round")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="the twins' threads")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall or cpu time")
    p.add_argument(
        "--min-elements",
        type=int,
        default=workshop.PARALLEL_MIN_ELEMENTS,
        help="passes smaller than this run in one piece (minigan.threads.PARALLEL_MIN_ELEMENTS)",
    )
    args = p.parse_args(argv)
    workshop.PARALLEL_MIN_ELEMENTS = args.min_elements
    clock = CLOCKS[args.clock]
    load = loadavg()
    blas, source = blas_threads()
    print(
        f"CPU: {cpu_model()}; numpy {np.__version__}, {numpy_blas()}, {blas} BLAS threads "
        f"({source}); OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}; "
        f"{args.clock} clock; passes split from {args.min_elements} elements"
    )
    print(f"/proc/loadavg before: {load}{busy_warning(load)}\n")

    rng = np.random.default_rng(0)
    dcgan = DCGAN(DCGANConfig(), seed=0)
    mlp = GAN(GANConfig(), seed=0)
    real = rng.uniform(-1, 1, (dcgan.config.batch_size, *dcgan.config.image_shape))
    digits = rng.uniform(-1, 1, (mlp.config.batch_size, 784))
    calls, counts = record_calls(dcgan, real.astype(np.float32), "DCGAN")
    mlp_calls, mlp_counts = record_calls(mlp, digits.astype(np.float32), "MLP GAN")
    calls.update((key, value) for key, value in mlp_calls.items() if "adam" in key[0])
    counts.update({key: n for key, n in mlp_counts.items() if "adam" in key[0]})

    header = ["kernel", "arguments", "calls/step", "formula ms"]
    header += [f"twin {t}T ms" for t in args.threads] + [
        f"twin {t}T / formula" for t in args.threads
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    saved = {t: {"DCGAN": 0.0, "MLP GAN": 0.0} for t in args.threads}
    for (name, shapes), (kernel, arguments) in calls.items():
        twin = workshop.TWINS[kernel]
        contenders = [Contender("formula", lambda k=kernel, a=arguments: k.formula(*a))]
        contenders += [
            Contender(f"{t}", lambda tw=twin, a=arguments: tw(*a), threads=t) for t in args.threads
        ]
        times = time_rounds(
            contenders, args.rounds, steps=args.repeats, warmup=2, pause=0.02, clock=clock
        )
        ms = {c.name: statistics.median(times[c.name]) for c in contenders}
        n = counts[(name, shapes)]
        for t in args.threads:
            saved[t][name.split(":")[0]] += n * (ms["formula"] - ms[f"{t}"])
        cells = [name, shapes, str(n), f"{ms['formula']:.3f}"]
        cells += [f"{ms[f'{t}']:.3f}" for t in args.threads]
        cells += [f"{ms[f'{t}'] / ms['formula']:.2f}" for t in args.threads]
        print("| " + " | ".join(cells) + " |")
    workshop._threads = 1

    print("\nms per training step the twins save (formula - twin, times the calls per step):")
    for t in args.threads:
        print(f"  {t} thread(s): " + ", ".join(f"{m} {v:+.2f}" for m, v in saved[t].items()))
    print("\nthe hook, per call of a trivial function (perf_counter):")
    for name, ns in hook_overhead(time.perf_counter).items():
        print(f"  {name}: {ns:.0f} ns")
    print(f"\n/proc/loadavg after: {loadavg()}")


if __name__ == "__main__":
    main()
