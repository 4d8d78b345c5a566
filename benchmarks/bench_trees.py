"""The same training step in two source trees, alternated: did a change make it slower?

A refactor should leave the step's speed alone. This script times a model's ``train_step``
in two checkouts of minigan (say, the commit before a change in a ``git worktree``, and the
working tree), each in its own fresh process, alternating A B A B ..., so that a busy moment
or a thermal drift hurts both alike. Each process builds the model (seed 0, float32),
warms up, times ``--steps`` steps on one fixed batch and prints the median ms/step; this
script prints every round, the medians over rounds, and the ratio B / A. Asserts nothing.

    git worktree add /tmp/before HEAD~1
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_trees.py /tmp/before . --model gan
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_trees.py /tmp/before . --model dcgan
    OPENBLAS_NUM_THREADS=2 python benchmarks/bench_trees.py /tmp/before . --model dcgan \\
        --threads 2

``--threads N`` asks each tree for N threads of minigan's fast kernels
(``minigan.threads.set_num_threads``, or ``minigan.backend.set_num_threads`` in trees from
before the threads moved out); BLAS takes its threads from the environment, the same for
both. The model is the registry's default config (``MODELS[name].default_config()``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import cpu_model, loadavg

# Run inside each tree's own process: prints one number, the median ms per step.
CHILD = r"""
import gc, statistics, sys, time
import numpy as np
model_name, threads, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
try:
    from minigan.threads import set_num_threads
except ImportError:
    from minigan.backend import set_num_threads
set_num_threads(threads)
from minigan.models import MODELS
cls = MODELS[model_name]
model = cls(cls.default_config(), seed=0)
rng = np.random.default_rng(0)
batch = model.config.batch_size
real = rng.uniform(-1, 1, (batch, *model.image_shape)).astype(np.float32)
args = (real, model.sample_labels(batch)) if model.conditional else (real,)
if getattr(model, "labelled", False) and not model.conditional:
    images = rng.uniform(-1, 1, (1000, *model.image_shape)).astype(np.float32)
    model.set_labelled(images, np.arange(1000) % 10)
for _ in range(warmup):
    model.train_step(*args)
gc.disable()
times = []
for _ in range(steps):
    start = time.perf_counter()
    model.train_step(*args)
    times.append(time.perf_counter() - start)
print(1000 * statistics.median(times))
"""


def time_tree(tree: str, model: str, threads: int, steps: int, warmup: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, str(threads), str(steps), str(warmup)],
        check=False,
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench_trees: the step failed in {tree}:\n{out.stderr[-2000:]}")
    return float(out.stdout.split()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tree_a", help="the tree to compare against (e.g. a worktree of the old commit)")
    p.add_argument("tree_b", help="the tree under test")
    p.add_argument("--model", default="gan", help="a name in minigan.models.MODELS (default: gan)")
    p.add_argument("--threads", type=int, default=1, help="minigan's kernel threads (default 1)")
    p.add_argument("--rounds", type=int, default=3, help="A B rounds (default 3)")
    p.add_argument("--steps", type=int, default=100, help="timed steps per process (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    a = p.parse_args()
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(f"machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; load {loadavg()}")
    print(f"model {a.model}, minigan threads {a.threads}, OPENBLAS_NUM_THREADS={blas}")
    times: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(a.rounds):
        for label, tree in (("A", a.tree_a), ("B", a.tree_b)):
            times[label].append(time_tree(tree, a.model, a.threads, a.steps, a.warmup))
        print(f"round {r + 1}: A {times['A'][-1]:.2f} ms  B {times['B'][-1]:.2f} ms", flush=True)
    med_a, med_b = statistics.median(times["A"]), statistics.median(times["B"])
    print(
        f"median over rounds: A {med_a:.2f} ms/step, B {med_b:.2f} ms/step, B/A {med_b / med_a:.3f}"
    )
    print(f"load after: {loadavg()}")


if __name__ == "__main__":
    main()
