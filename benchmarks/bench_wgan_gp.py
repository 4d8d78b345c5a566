"""Benchmark one WGAN-GP critic step: minigan's hand-derived double backward against
PyTorch autograd's (``torch.autograd.grad(..., create_graph=True)``) on the same critic.

The critic step is the Wasserstein loss on [x; G(z)] plus lambda (||grad D(x^)|| - 1)^2 on
x^ = eps x + (1 - eps) G(z), and one Adam step: ``WGANGP.discriminator_step`` against
the same computation in PyTorch eager, float32, the model's default sizes (batch 64,
784 -> 512 -> 512 -> 1), from the same weights and the same batches. The two are timed
interleaved (ours, theirs, ours, ...) in one process and reported as medians and their
ratio (minigan / PyTorch; below 1.0 means minigan is faster). Asserts nothing.

    python benchmarks/bench_wgan_gp.py                 # default: 7 rounds of 20 steps
    python benchmarks/bench_wgan_gp.py --rounds 3 --steps 5      # a quick check

PyTorch gets as many threads as numpy's BLAS may use (OPENBLAS_NUM_THREADS, else all
cores), so ``OPENBLAS_NUM_THREADS=1`` compares the two single-threaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
from benchkit import busy_warning, cpu_model, loadavg  # benchmarks/benchkit.py

from minigan.models import WGANGP, WGANGPConfig
from minigan.testing.pytorch import to_torch


class FixedNoise:
    """The model's device RNG, replaced so that both sides see the same eps."""

    def __init__(self) -> None:
        self.eps = None

    def random(self, shape, dtype):
        return self.eps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    p.add_argument("--steps", type=int, default=20, help="critic steps per round (default 20)")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare against", file=sys.stderr)
        return 1
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", len(os.sched_getaffinity(0))))
    torch.set_num_threads(threads)

    load_before = loadavg()
    config = WGANGPConfig()
    model = WGANGP(config, seed=0, dtype=np.float32)
    noise = FixedNoise()
    model.noise_rng = noise
    critic = to_torch(model.discriminator)
    opt = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=config.betas)
    lam, n = config.gp_weight, config.batch_size

    rng = np.random.default_rng(0)
    batches = [
        tuple(a.astype(np.float32) for a in (
            rng.uniform(-1, 1, (n, config.image_size)),
            rng.uniform(-1, 1, (n, config.image_size)),
            rng.uniform(size=(n, 1)),
        ))
        for _ in range(args.steps)
    ]  # fmt: skip
    batches_t = [tuple(torch.from_numpy(a) for a in batch) for batch in batches]

    def ours() -> dict:
        for real, fake, eps in batches:
            noise.eps = eps
            stats = model.discriminator_step(real, fake)
        return stats

    def theirs() -> torch.Tensor:
        for real, fake, eps in batches_t:
            x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
            penalty = lam * ((g.norm(2, dim=1) - 1) ** 2).mean()
            loss = critic(fake).mean() - critic(real).mean() + penalty
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss

    # The first steps agree (same weights, same batches): the two compute the same thing.
    first_ours, first_theirs = float(ours()["d_loss"]), float(theirs().detach())
    times: dict[str, list[float]] = {"minigan": [], "pytorch": []}
    for _ in range(args.rounds):
        for name, run in (("minigan", ours), ("pytorch", theirs)):
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)

    mine, torch_ms = statistics.median(times["minigan"]), statistics.median(times["pytorch"])
    print(f"# WGAN-GP critic step, float32, batch {n}, 784 -> {config.hidden} -> "
          f"{config.hidden} -> 1")  # fmt: skip
    print(f"- machine: {cpu_model()}, {threads} BLAS/torch thread(s), torch {torch.__version__}")
    print(f"- load before: {load_before}{busy_warning(load_before)}; after: {loadavg()}")
    print(f"- command: python {' '.join(sys.argv)}")
    print(f"- critic loss after the first {args.steps} steps: minigan {first_ours:.6f}, "
          f"pytorch {first_theirs:.6f}")  # fmt: skip
    print(f"- median of {args.rounds} rounds x {args.steps} steps:")
    print(f"  - minigan (hand-derived double backward): {mine:.2f} ms/step")
    print(f"  - pytorch (autograd, create_graph=True):  {torch_ms:.2f} ms/step")
    print(f"  - ratio minigan / pytorch: {mine / torch_ms:.2f}x (target <= 1.0x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
