"""Does a training run keep its speed when the machine is shared? Alone, beside a busy loop,
and beside a second copy of itself, for several thread settings.

Users run two experiments at once. On a 2-core machine the ideal is that each of two runs
side by side takes 2x its time alone (each gets one core); threads that spin or wait at a
barrier on an oversubscribed core make it far worse. This script times whole training
processes (``examples/mnist_gan.py``, by default one DCGAN epoch on 9,600 images), so every
cost a user sees is in the figure: BLAS threads, minigan's threads, start-up.

    python benchmarks/bench_shared.py                         # the script's own defaults
    python benchmarks/bench_shared.py --setting default --setting "blas=1 threads=1" \\
        --setting "blas=2 threads=1" --repeats 2
    python benchmarks/bench_shared.py --script /tmp/old/examples/mnist_gan.py   # another tree
    python benchmarks/bench_shared.py --args "--epochs 1 --train-size 20000"    # the MLP default

A setting is ``default`` (the script's defaults: no thread variable or flag given) or any of
``blas=N`` (``OPENBLAS_NUM_THREADS=N``) and ``threads=N`` (``--threads N``). Prints seconds
per process and the ratios to the same setting alone; never asserts.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import cpu_model, loadavg

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARGS = "--model dcgan --epochs 1 --train-size 9600"
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS")


def command_and_env(script: str, args: str, setting: str, out: str) -> tuple[list, dict]:
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    env.setdefault("MPLBACKEND", "Agg")
    # The script's own tree first: an editable install of another checkout would win over
    # the script's folder (which is examples/, not the tree's root).
    env["PYTHONPATH"] = str(Path(script).resolve().parents[1])
    argv = [sys.executable, script, *shlex.split(args), "--out", out]
    for item in setting.split():
        if item == "default":
            continue
        name, _, value = item.partition("=")
        if name == "blas":
            env["OPENBLAS_NUM_THREADS"] = value
        elif name == "threads":
            argv += ["--threads", value]
        else:
            raise SystemExit(f"bench_shared: unknown setting {item!r} (default, blas=N, threads=N)")
    return argv, env


def run_together(count: int, script: str, args: str, setting: str, busy: bool) -> list[float]:
    """Start ``count`` copies of the run at once (and a busy loop if asked); their seconds."""
    loop = None
    if busy:
        loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
    try:
        with tempfile.TemporaryDirectory() as folder:
            started, processes = [], []
            for i in range(count):
                argv, env = command_and_env(script, args, setting, f"{folder}/run{i}")
                started.append(time.perf_counter())
                processes.append(
                    subprocess.Popen(
                        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                    )
                )
            seconds = []
            for start, process in zip(started, processes):
                _, err = process.communicate()
                seconds.append(time.perf_counter() - start)
                if process.returncode != 0:
                    raise SystemExit(f"bench_shared: the run failed:\n{err.decode()[-2000:]}")
            return seconds
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--script", default=str(ROOT / "examples" / "mnist_gan.py"))
    p.add_argument(
        "--args", default=DEFAULT_ARGS, help=f"the run's flags (default: {DEFAULT_ARGS})"
    )
    p.add_argument(
        "--setting", action="append", help="thread setting (repeatable; default: default)"
    )
    p.add_argument("--repeats", type=int, default=1, help="rounds of every measurement")
    a = p.parse_args()
    settings = a.setting or ["default"]
    print(f"machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; load {loadavg()}")
    print(f"run: {Path(a.script).name} {a.args}\n")
    print(
        f"{'setting':<22} {'alone s':>8} {'+busy s':>8} {'pair s':>8} {'busy/alone':>10} {'pair/alone':>10}"
    )
    for _ in range(a.repeats):
        for setting in settings:
            alone = run_together(1, a.script, a.args, setting, busy=False)[0]
            busy = run_together(1, a.script, a.args, setting, busy=True)[0]
            pair = max(run_together(2, a.script, a.args, setting, busy=False))
            print(
                f"{setting:<22} {alone:8.1f} {busy:8.1f} {pair:8.1f} "
                f"{busy / alone:10.2f} {pair / alone:10.2f}",
                flush=True,
            )
    print(f"\nload after: {loadavg()}")


if __name__ == "__main__":
    main()
