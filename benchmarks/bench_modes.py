"""Mode collapse on the 2-D ring and grid, and on Stacked MNIST, as PacGAN measures it.

Trains the family's models on the papers' 2-D networks (``arch="points"``,
minigan/models/points.py) through the model API, with each paper's recipe
(``points.RECIPES``), then scores 2,500 of G's points with ``minigan.metrics.modes``:
modes captured, the share of high-quality points, and the reverse KL of the captured
modes' histogram to uniform. Prints one row per (task, model, pack), mean +- standard
error over the seeds, beside the published rows (PacGAN, Lin et al. 2018, Table 1:
mean +- s.e. over 10 trials).

The papers' schedule (PacGAN's code): 400 epochs of 100,000 packs, batches of 100
packs (1,000 steps an epoch, whatever the pack size), a fresh shuffle each epoch;
``--epochs`` and ``--samples`` shorten it (say so next to any figure).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_modes.py --task ring --model gan \\
        --pack 1 2 --seeds 0 1 2 --epochs 5 --frames 250 --out /tmp/modes

``--task stacked`` trains DCGAN (``--model dcgan``, its default recipe but for ``--pack``)
on Stacked MNIST through the command line a person uses, ``examples/mnist_gan.py
--dataset stacked-mnist`` (``--train-size`` images drawn once by the seed, 25,600 by
default: PacGAN's Table-2 setting), for ``--epochs`` epochs, then scores 26,000 samples
of its checkpoint as PacGAN's Table 2 does (``minigan.stacked``: modes of 1,000 and KL to
uniform through the project's MNIST classifier, cached by ``Evaluator.load_or_train``).
Its CPU minutes are the training process's own (user + sys), scoring left out:

    python benchmarks/bench_modes.py --task stacked --model dcgan --pack 1 2 --seeds 0 1 \\
        --epochs 1 --out /tmp/modes

``--frames N`` saves a frame every N steps (G's points over D's surface:
minigan/frames.py) into ``--out/RUN/``, and the frames as ``--out/RUN.gif``. Each run's
figures are appended to ``--out/results.jsonl``; ``--table`` prints the table from that
file without training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread, before NumPy loads

import numpy as np

from minigan import frames
from minigan.data import grid_mixture, ring_mixture
from minigan.metrics.modes import MIXTURE_SAMPLES, grid_scores, ring_scores
from minigan.models import MODELS
from minigan.models.points import RECIPES

TASKS = {
    "ring": (ring_mixture, ring_scores, "2d-ring"),
    "grid": (grid_mixture, grid_scores, "2d-grid"),
}
BATCH_PACKS = 100  # the papers' batch: 100 packs

# PacGAN's Table 1 (Lin et al. 2018), as issue 29 quotes it: modes (mean +- s.e. over
# 10 trials of 400 epochs), high-quality share (%) and reverse KL (means).
PUBLISHED = {
    ("ring", "gan", 1): ("6.3 +- 0.5", "98.2", "0.45"),
    ("ring", "gan", 2): ("7.9 +- 0.1", "95.6", "0.07"),
    ("grid", "gan", 1): ("17.3 +- 0.8", "94.8", "0.70"),
    ("grid", "gan", 2): ("23.8 +- 0.7", "91.3", "0.13"),
    ("grid", "gan", 4): ("24.8 +- 0.2", "93.6", "0.04"),
}
# PacGAN's Table 2 (Stacked MNIST, 26,000 samples, their classifier): modes, KL.
# DCGAN's 99 / 3.40 is VEEGAN's figure; PacGAN's own re-run of it (10 trials) beside it.
PUBLISHED_STACKED = {1: ("99.0 (re-run 78.9 +- 6.5)", "3.40 (4.50)"), 2: ("1000.0", "0.06")}
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_gan.py"


def build(name: str, pack: int, seed: int) -> Any:
    """Model ``name`` on the 2-D networks with its paper's recipe, D judging packs of
    ``pack`` points: batches of 100 packs, no average of G (the papers sample G itself)."""
    cls = MODELS[name]
    recipe = {**RECIPES[name], "batch_size": BATCH_PACKS * pack}
    config = dataclasses.replace(cls.default_config(), arch="points", ema=0.0, pack=pack, **recipe)
    return cls(cls.config_for_images(config, (2,)), seed=seed)


def train(args: argparse.Namespace, task: str, name: str, pack: int, seed: int) -> dict:
    """One run: train, score 2,500 points, optionally save frames and a GIF."""
    draw, score, dataset = TASKS[task]
    data = draw(args.samples * pack, seed)[0]  # the epoch's 100,000 packs, fixed
    real, centres = draw(1000, seed + 10_000)  # for the frames' background
    model = build(name, pack, seed)
    shuffle = np.random.default_rng(seed + 1)
    batch = BATCH_PACKS * pack
    steps_per_epoch = len(data) // batch
    run = f"{task}-{name}-pack{pack}-seed{seed}"
    folder = Path(args.out) / run if args.frames else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    # The frames' noise: their own stream, so that drawing frames changes no training step.
    frame_z = np.random.default_rng(seed + 20_000).standard_normal(
        (MIXTURE_SAMPLES, model.config.latent_dim)
    )
    frame_z = model.backend.asarray(frame_z, dtype=model.dtype)

    def shoot(step: int) -> None:
        s = score(model.generate(frame_z))
        title = (
            f"{name}, pack {pack}, on the {task} - step {step} (epoch {step / steps_per_epoch:.1f})"
            f"\n{s['modes']}/{s['n_modes']} modes, {s['high_quality']:.0%} high quality, "
            f"reverse KL {s['reverse_kl']:.2f}"
        )
        path = folder / f"frame_{step:07d}.png"
        frames.model_frame(path, model, real, frames.EXTENTS[dataset], title, centres=centres)
        shots.append(path)

    start = time.process_time()
    step = 0
    for _ in range(args.epochs):
        order = shuffle.permutation(len(data) // pack)  # whole packs of consecutive points
        packs = data.reshape(-1, pack, 2)[order].reshape(-1, 2)
        for i in range(steps_per_epoch):
            if folder and step % args.frames == 0:
                shoot(step)
            model.train_step(packs[i * batch : (i + 1) * batch])
            step += 1
    cpu = time.process_time() - start
    scores = score(model.generate(model.sample_noise(MIXTURE_SAMPLES)))
    if folder:
        shoot(step)
        frames.write_gif(shots, Path(args.out) / f"{run}.gif")
    result = {
        "task": task, "model": name, "pack": pack, "seed": seed, "epochs": args.epochs,
        "samples": args.samples, "steps": step, "cpu_seconds": round(cpu, 1),
        **{k: scores[k] for k in ("modes", "high_quality", "reverse_kl", "counts")},
    }  # fmt: skip
    print(
        f"{run}: {scores['modes']} modes, {scores['high_quality']:.1%} high quality, reverse "
        f"KL {scores['reverse_kl']:.3f}, {step} steps, {cpu / 60:.1f} CPU min",
        flush=True,
    )
    return result


def train_stacked(args: argparse.Namespace, name: str, pack: int, seed: int) -> dict:
    """One Stacked MNIST run through examples/mnist_gan.py, then 26,000 samples scored."""
    from minigan import runs, stacked
    from minigan.metrics.evaluator import Evaluator

    run = f"stacked-{name}-pack{pack}-seed{seed}"
    out = Path(args.out) / run
    command = [sys.executable, str(EXAMPLE), "--model", name, "--dataset", stacked.DATASET,
               "--pack", str(pack), "--seed", str(seed), "--epochs", str(args.epochs),
               "--train-size", str(args.train_size), "--threads", "1", "--log-every", "100",
               "--out", str(out), "--overwrite"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    path = out / "checkpoint.npz"
    state = runs.load_run(path)
    gan = MODELS[name](runs.config_from_checkpoint(state, path), seed=seed)
    runs.load_gan_state(gan, state, path)
    noise = np.random.default_rng([seed, 3]).standard_normal(
        (stacked.EVAL_SAMPLES, gan.config.latent_dim)
    )
    samples = stacked.generate(gan, gan.backend.asarray(noise, dtype=np.float32))
    scores = stacked.measures(samples, Evaluator.load_or_train())
    result = {
        "task": "stacked", "model": name, "pack": pack, "seed": seed, "epochs": args.epochs,
        "samples": args.train_size, "steps": gan.steps, "cpu_seconds": round(cpu, 1),
        "modes": scores["modes"], "high_quality": float("nan"), "reverse_kl": scores["kl"],
    }  # fmt: skip
    print(f"{run}: {stacked.summary(scores)}, {gan.steps} steps, {cpu / 60:.2f} CPU min",
          flush=True)  # fmt: skip
    return result


def mean_se(values: list[float]) -> str:
    """Mean +- standard error over the runs that have the figure (a run that captured no
    mode has no reverse KL): a mean over fewer runs than the row's seeds says so."""
    known = [v for v in values if not math.isnan(v)]
    if not known:
        return "n/a"
    mean = statistics.fmean(known)
    se = statistics.stdev(known) / math.sqrt(len(known)) if len(known) > 1 else float("nan")
    if len(known) < len(values):
        return f"{mean:.2f} +- {se:.2f} (of {len(known)} runs; the rest found no mode)"
    return f"{mean:.2f} +- {se:.2f}"


def table(results: list[dict]) -> str:
    """Markdown rows, mean +- s.e. over seeds, with the published row under each."""
    lines = [
        "| task | model | pack | schedule | seeds | modes | high quality (%) | reverse KL | "
        + "CPU min/run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["task"], r["model"], r["pack"], r["epochs"], r["samples"]), []).append(
            r
        )
    for (task, name, pack, epochs, samples), rows in sorted(groups.items()):
        schedule = f"{epochs} x {samples:,} packs ({rows[0]['steps']:,} steps)"
        cpu = statistics.fmean(r["cpu_seconds"] for r in rows) / 60
        lines.append(
            f"| {task} | {name} | {pack} | {schedule} | {len(rows)} "
            f"| {mean_se([r['modes'] for r in rows])} "
            f"| {mean_se([100 * r['high_quality'] for r in rows])} "
            f"| {mean_se([r['reverse_kl'] for r in rows])} | {cpu:.1f} |"
        )
        if task == "stacked":  # images per epoch, not packs; KL to uniform, not reverse
            lines[-1] = lines[-1].replace(" packs (", " images (")
        published = PUBLISHED.get((task, name, pack))
        if task == "stacked" and name == "dcgan" and pack in PUBLISHED_STACKED:
            modes, kl = PUBLISHED_STACKED[pack]
            lines.append(f"| stacked | dcgan (PacGAN Table 2) | {pack} | their code: 50 x "
                         f"128,000 images | | {modes} | | {kl} (KL to uniform) | |")  # fmt: skip
        elif published:
            cells = " | ".join(published)
            lines.append(f"| {task} | {name} (PacGAN Table 1) | {pack} | 400 x 100,000 | 10 "
                         f"| {cells} | |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", nargs="+", choices=(*TASKS, "stacked"), default=["ring"])
    parser.add_argument(
        "--model",
        nargs="+",
        choices=(*RECIPES, "dcgan"),
        default=["gan"],
        help="gan, lsgan, wgan, wgan-gp on the 2-D tasks; dcgan on stacked",
    )
    parser.add_argument(
        "--train-size",
        type=int,
        default=25_600,
        help="--task stacked: training images (PacGAN's Table-2 setting: 25,600)",
    )
    parser.add_argument("--pack", nargs="+", type=int, default=[1, 2], choices=(1, 2, 3, 4))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=400, help="the papers': 400")
    parser.add_argument(
        "--samples", type=int, default=100_000, help="packs per epoch (the papers': 100,000)"
    )
    parser.add_argument("--frames", type=int, default=0, help="a frame every N steps (0: none)")
    parser.add_argument("--out", default="bench_modes_out", help="frames, GIFs, results.jsonl")
    parser.add_argument("--table", action="store_true", help="print the table, train nothing")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "results.jsonl"
    if not args.table:
        for task in args.task:
            for name in args.model:
                for pack in args.pack:
                    if (task == "stacked") != (name == "dcgan"):
                        parser.error(f"--task {task} does not train --model {name}: dcgan "
                                     f"trains on stacked, the others on ring and grid")  # fmt: skip
                    for seed in args.seeds:
                        if task == "stacked":
                            result = train_stacked(args, name, pack, seed)
                        else:
                            result = train(args, task, name, pack, seed)
                        with open(log, "a") as f:
                            f.write(json.dumps(result) + "\n")
    results = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    print(table(results))
    print(f"results: {log}")


if __name__ == "__main__":
    main()
