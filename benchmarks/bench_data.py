"""Benchmark minigan.data: load + verify MNIST, scale it for a GAN, iterate one epoch.

Prints the machine, the date and the median of a few runs of each step; asserts nothing.
Run it from the repository root (or with minigan installed)::

    MINIGAN_DATA=../shared/data python benchmarks/bench_data.py
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from benchkit import busy_warning, cpu_model, loadavg  # benchmarks/benchkit.py

from minigan.data import BatchIterator, DataError, load_mnist, to_gan_range


def median_time(step: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Median wall time of ``repeats`` calls, all the times, and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def one_epoch(loader: BatchIterator) -> int:
    count = 0
    for _ in loader:
        count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", default=None, help="folder holding the MNIST files (default: the usual search)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement")
    parser.add_argument("--batch-size", type=int, default=100, help="batch size of the epoch")
    parser.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading missing files"
    )
    args = parser.parse_args()

    print(f"date:    {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, {platform.system()}")
    load = loadavg()
    print(f"/proc/loadavg before: {load}{busy_warning(load)}")
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"command: {' '.join(sys.orig_argv)}")
    print()

    try:
        load, load_times, (images, _) = median_time(
            lambda: load_mnist("train", root=args.root, download=not args.no_download), args.repeats
        )
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    scale, scale_times, x = median_time(lambda: to_gan_range(images), args.repeats)
    loader = BatchIterator(x, batch_size=args.batch_size)
    epoch, epoch_times, batches = median_time(lambda: one_epoch(loader), args.repeats)

    def show(label: str, median: float, times: list[float]) -> None:
        runs = ", ".join(f"{t * 1e3:.0f}" for t in times)
        print(f"{label:<44} {median * 1e3:8.1f} ms   (runs: {runs} ms)")

    print(f"median of {args.repeats} runs; MNIST train set, {images.shape[0]} images")
    show("load_mnist('train') (read + gunzip + SHA-256)", load, load_times)
    show(f"to_gan_range -> {x.dtype} {x.shape}", scale, scale_times)
    show("load + scale", load + scale, [a + b for a, b in zip(load_times, scale_times)])
    show(f"one epoch, batch {args.batch_size} ({batches} batches, numpy)", epoch, epoch_times)
    print(f"per batch: {epoch / batches * 1e6:.1f} us; scale is {scale / load:.2f}x the load time")
    print(f"/proc/loadavg after: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
