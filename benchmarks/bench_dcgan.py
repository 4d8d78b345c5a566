"""One DCGAN training step (MNIST-sized, batch 64, float32): minigan against PyTorch eager.

Both sides run the same model from the same weights (``minigan.testing.pytorch.to_torch``), with the
same number of threads, interleaved in one process (A B A B ...), so that a busy
machine slows both alike. Prints:

1. the median step times and their ratio (target: minigan <= 1.5x PyTorch);
2. the step's matrix-product FLOPs (counted from the layer shapes) as a rate, against
   the machine's float32 GEMM rate (a large ``np.matmul``);
3. where minigan's step spends its time: the convolutions' GEMMs, im2col, col2im, the
   rest of the convolution and Linear layers, BatchNorm, Adam, everything else (the
   median of each over the profiled steps).

    python benchmarks/bench_dcgan.py            # ~1 minute on 2 cores
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_dcgan.py --threads 1 --clock cpu

``--threads`` sets PyTorch's threads and minigan's (``set_num_threads``: its
elementwise passes); numpy's BLAS takes its count from the environment
(``OPENBLAS_NUM_THREADS``) when Python starts, so set both alike (the header says if
they differ). The script starts OpenBLAS with ``OPENBLAS_THREAD_TIMEOUT=4``, so that its
idle threads leave the cores to minigan's (``minigan/backend.py``). On a machine
shared with other work, ``--clock cpu`` with one thread measures each side's own CPU
time, which the other work inflates far less than the wall clock.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import os
import statistics
from collections import defaultdict
from collections.abc import Callable
from typing import Any

# Before NumPy loads: OpenBLAS's idle threads then sleep instead of spinning on the
# cores minigan's elementwise threads use (minigan/backend.py, "threads").
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np
from benchkit import (  # benchmarks/benchkit.py
    CLOCKS,
    blas_threads,
    busy_warning,
    cpu_model,
    gemm_peak_numpy,
    loadavg,
    numpy_blas,
    time_rounds,
)

from minigan import nn
from minigan.models import DCGAN, DCGANConfig
from minigan.nn import batchnorm, conv
from minigan.optim import Adam
from minigan.testing.pytorch import to_torch
from minigan.threads import set_num_threads


def gemm_flops(
    model: nn.Sequential, x_shape: tuple[int, ...], convs_only: bool = False
) -> tuple[list[int], int]:
    """Forward GEMM FLOPs of each Conv/ConvT/Linear layer of ``model``, and the output size.

    A layer's forward is one (rows x inner) @ (inner x cols) product, 2*rows*inner*cols
    FLOPs; each backward product (weights, input) costs the same. ``convs_only``: count
    the Linear layers as 0.
    """
    flops, shape = [], x_shape
    for layer in model:
        out = layer.forward(np.zeros(shape, np.float32)).shape
        if isinstance(layer, nn.Linear):
            flops.append(0 if convs_only else 2 * shape[0] * layer.in_features * layer.out_features)
        elif isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            pixels = (
                out[0] * out[2] * out[3]
                if isinstance(layer, nn.Conv2d)
                else np.prod(shape) // shape[1]
            )
            flops.append(
                2 * int(pixels) * layer.in_channels * layer.out_channels * layer.kernel_size**2
            )
        shape = out
    return flops, shape


def step_flops(gan: DCGAN, batch: int, convs_only: bool = False) -> int:
    """The GEMM FLOPs one ``DCGAN.train_step`` performs (what the code does, not autograd's)."""
    c = gan.config
    # on copies: a forward pass in training mode moves BatchNorm's running statistics
    g, _ = gemm_flops(copy.deepcopy(gan.generator), (batch, c.latent_dim), convs_only)
    d, _ = gemm_flops(copy.deepcopy(gan.discriminator), (batch, *c.image_shape), convs_only)
    total = 3 * sum(g)  # G: forward, weight gradients, input gradients ...
    total -= g[0]  # ... except dL/dz, which nobody needs
    total += 3 * sum(d)  # D: forward on real, on fake, and again in the G step
    total += 2 * (2 * sum(d) - d[0])  # D step, twice: weight + input gradients, no dL/dimages
    total += sum(d)  # G step: D's input gradients only (D frozen)
    return total


def _timed(f: Callable[[], Any], clock: Callable[[], float]) -> float:
    start = clock()
    f()
    return clock() - start


class Contender:
    """A named training step on a fixed batch, for ``benchkit.time_rounds``."""

    def __init__(self, name: str, step: Callable[[], Any]):
        self.name, self.step = name, step

    def sync(self) -> None:  # both run on the CPU: nothing is queued
        pass


class TorchStep:
    """PyTorch's DCGAN example step on the twin networks (default Adam, eager)."""

    def __init__(self, gan: DCGAN, torch: Any):
        self.torch, self.latent = torch, gan.config.latent_dim
        self.G, self.D = to_torch(gan.generator), to_torch(gan.discriminator)
        adam = {"lr": gan.config.lr, "betas": gan.config.betas}
        self.opt_g = torch.optim.Adam(self.G.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **adam)
        self.bce = torch.nn.functional.binary_cross_entropy_with_logits

    def __call__(self, real: Any) -> None:
        torch, n = self.torch, real.shape[0]
        ones, zeros = torch.ones(n, 1), torch.zeros(n, 1)
        fake = self.G(torch.randn(n, self.latent))
        self.opt_d.zero_grad()
        self.bce(self.D(real), ones).backward()
        self.bce(self.D(fake.detach()), zeros).backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        self.bce(self.D(fake), ones).backward()
        self.opt_g.step()


def profile_phases(
    gan: DCGAN, real: np.ndarray, steps: int, clock: Callable[[], float]
) -> dict[str, float]:
    """Seconds per step in each phase (the median over ``steps`` steps), by wrapping the
    functions that do the work."""
    spent: dict[str, float] = defaultdict(float)
    active: list[str] = []  # nested phases: time goes to the innermost one

    def timed(phase: str, f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            active.append(phase)
            try:
                return f(*args, **kwargs)
            finally:
                active.pop()
                took = clock() - start
                spent[phase] += took
                if active:
                    spent[active[-1]] -= took

        return wrapper

    gemm, layers = "conv GEMMs", "Linear layers; conv layout, bias"
    patches = [
        (conv, "im2col", "im2col"),
        (conv, "col2im", "col2im"),
        (conv, "conv2d", gemm),  # W_rows @ cols (im2col inside is counted apart)
        (conv, "conv2d_input_grad", gemm),  # W_rows.T @ g_rows (and col2im, apart)
        (conv, "conv2d_weight_grad", gemm),  # g_rows @ cols.T
        (conv.Conv2d, "forward", layers),
        (conv.Conv2d, "backward", layers),
        (conv.ConvTranspose2d, "forward", layers),
        (conv.ConvTranspose2d, "backward", layers),
        (nn.Linear, "forward", layers),
        (nn.Linear, "backward", layers),
        (batchnorm._BatchNorm, "forward", "BatchNorm"),
        (batchnorm._BatchNorm, "backward", "BatchNorm"),
        (Adam, "step", "Adam"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, phase in patches:
        setattr(owner, name, timed(phase, getattr(owner, name)))
    per_step: dict[str, list[float]] = defaultdict(list)
    try:
        for _ in range(steps):
            spent.clear()
            total = _timed(lambda: gan.train_step(real), clock)
            spent["other (activations, loss, noise, Python)"] = total - sum(spent.values())
            for phase, seconds in spent.items():
                per_step[phase].append(seconds)
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    return {phase: statistics.median(seconds) for phase, seconds in per_step.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64, help="images per step")
    p.add_argument("--rounds", type=int, default=10, help="timed A/B rounds (after 2 warm-ups)")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="PyTorch's and minigan's threads (match numpy's BLAS)",
    )
    p.add_argument(
        "--base-channels",
        type=int,
        default=64,
        help="D's first and G's last width: 64 is the paper's (RESULTS.md's figures), 32 "
        "examples/mnist_gan.py's default",
    )
    p.add_argument(
        "--architecture",
        choices=["paper", "default"],
        default="paper",
        help="paper: BatchNorm in D, G's last ConvT draws the image, no fully connected "
        "hidden layers (RESULTS.md's figures); default: DCGANConfig's networks (no "
        "BatchNorm in D, G's full-size block, fully connected hidden layers in D and G)",
    )
    p.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: elapsed time; cpu: the process's CPU time, which a machine busy with "
        "other work inflates far less (fair with --threads 1 and a 1-thread BLAS only)",
    )
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)  # minigan's elementwise passes
    load = loadavg()
    threads, source = blas_threads()
    print(
        f"CPU: {cpu_model()}; torch {torch.__version__} with {args.threads} threads; numpy "
        f"{np.__version__}, {numpy_blas()}, {threads} BLAS threads ({source}); {args.clock} clock"
    )
    if threads != args.threads:
        print(
            f"WARNING: numpy's BLAS runs {threads} threads, PyTorch {args.threads}: set "
            f"OPENBLAS_NUM_THREADS={args.threads} for a like-for-like comparison"
        )
    print(f"/proc/loadavg before: {load}{busy_warning(load)}\n")

    # No moving average of G: PyTorch's step keeps none, and the two must do the same work.
    # One image per D score, as the paper's D and the figures in RESULTS.md (pack 1); the
    # paper's networks (BatchNorm in D, G's last ConvT draws the image, no fully connected
    # hidden layers) unless asked.
    config = DCGANConfig(batch_size=args.batch, base_channels=args.base_channels, ema=0, pack=1)
    if args.architecture == "paper":
        paper = {"d_norm": "batch", "g_full_res_channels": 0, "d_fc_width": 0, "g_fc_width": 0}
        config = dataclasses.replace(config, **paper)
    gan = DCGAN(config, seed=0)
    real = np.random.default_rng(0).uniform(-1, 1, (args.batch, *gan.config.image_shape))
    real = real.astype(np.float32)
    torch_step, real_t = TorchStep(gan, torch), torch.from_numpy(real)
    contenders = [
        Contender("minigan", lambda: gan.train_step(real)),
        Contender("pytorch", lambda: torch_step(real_t)),
    ]
    clock = CLOCKS[args.clock]
    times = time_rounds(contenders, args.rounds, steps=1, warmup=2, pause=0.2, clock=clock)
    t_ours = statistics.median(times["minigan"]) / 1e3
    t_torch = statistics.median(times["pytorch"]) / 1e3
    print(f"| DCGAN step, batch {args.batch}, float32 | median ms ({args.clock} clock) |")
    print("| --- | --- |")
    print(f"| minigan (NumPy) | {t_ours * 1e3:.1f} |")
    print(f"| PyTorch eager | {t_torch * 1e3:.1f} |")
    print(f"| ratio minigan / PyTorch | {t_ours / t_torch:.2f}x (target <= 1.5x) |\n")

    flops, peak = step_flops(gan, args.batch), max(gemm_peak_numpy(1024, 10, clock))
    rate = flops / t_ours / 1e9
    print(f"GEMM FLOPs per step: {flops / 1e9:.2f} GFLOP -> minigan {rate:.0f} GFLOP/s, PyTorch "
          f"{flops / t_torch / 1e9:.0f} GFLOP/s; machine's float32 GEMM (1024^3 matmul): "
          f"{peak:.0f} GFLOP/s (minigan at {rate / peak:.0%} of it)\n")  # fmt: skip

    phases = profile_phases(gan, real, steps=max(3, args.rounds // 2), clock=clock)
    total = sum(phases.values())
    print("| where minigan's step goes | ms | share |")
    print("| --- | --- | --- |")
    for phase, seconds in sorted(phases.items(), key=lambda item: -item[1]):
        print(f"| {phase} | {seconds * 1e3:.1f} | {seconds / total:.0%} |")
    conv_rate = step_flops(gan, args.batch, convs_only=True) / phases["conv GEMMs"] / 1e9
    print(f"\nThe convolutions' GEMMs ran at {conv_rate:.0f} GFLOP/s inside the step "
          f"({conv_rate / peak:.0%} of the 1024^3 matmul's rate).")  # fmt: skip
    print(f"\n/proc/loadavg after: {loadavg()}")


if __name__ == "__main__":
    main()
