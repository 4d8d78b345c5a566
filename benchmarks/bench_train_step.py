"""Benchmark GAN.train_step: minigan (NumPy, CuPy) against the same step in PyTorch eager.

What it measures, in one process, all of it printed as Markdown for benchmarks/RESULTS.md:

1. parity: minigan and PyTorch, given the same weights, batch and noise, give the same
   losses for the first steps (so the timings compare the same computation);
2. ms/step of ``GAN.train_step`` for minigan-numpy, minigan-cupy (when a GPU is there),
   PyTorch eager with the default Adam and with ``Adam(fused=True)``, interleaved
   (A B C, B C A, ...) and reported as the median of the rounds;
3. the GEMM-bound limit: the step's matrix-product FLOPs, counted from the layer shapes,
   divided by the machine's float32 GEMM peak (a large ``np.matmul``);
4. where minigan's step spends its time (a separate, instrumented pass);
5. peak memory (tracemalloc traces NumPy's allocations; ru_maxrss for the process);
6. one training epoch over the real MNIST training set, shuffling included.

Asserts nothing about timings. Run it from the repository root, on an idle machine (the
header records /proc/loadavg before and after)::

    MINIGAN_DATA=../shared/data python benchmarks/bench_train_step.py
    python benchmarks/bench_train_step.py --batch-sizes 64,100,256,512,1024 --preset default
    python benchmarks/bench_train_step.py --batch-sizes 64 --rounds 2 --steps 5 \\
        --epoch-steps 20 --gemm-size 512      # a quick check that everything runs

PyTorch and CuPy are optional: without them (or with --no-torch, --no-cupy) the script
times what is there and says what it skipped and why. PyTorch gets as many threads as
numpy's BLAS has, so ``OPENBLAS_NUM_THREADS=1`` compares the two single-threaded.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import re
import resource
import shlex
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from benchkit import (  # benchmarks/benchkit.py
    blas_threads,
    busy_warning,
    cpu_model,
    cupy_backend,
    gc_paused,
    gemm_peak_numpy,
    gemm_peak_torch,
    import_torch,
    loadavg,
    numpy_blas,
    time_rounds,
)

from minigan import nn
from minigan.data import BatchIterator, DataError, load_mnist, to_gan_range
from minigan.gan import GAN, PRESETS, GANConfig
from minigan.testing.pytorch import to_torch

MNIST_TRAIN_SIZE = 60000
MIB = 1024 * 1024

# ---------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# FLOPs of one step, from the layer shapes
# ---------------------------------------------------------------------------------------


def layer_sizes(config: GANConfig) -> tuple[list[int], list[int]]:
    """The feature sizes along G and along D, e.g. [64, 256, 256, 784] and [784, 256, 256, 1]
    (D's first layer takes ``pack`` images side by side: [1568, 512, 512, 1] for pairs)."""
    h = config.hidden
    return (
        [config.latent_dim, h, h, config.image_size],
        [config.pack * config.image_size, h, h, 1],
    )


def matmul_flops(rows: int, sizes: list[int], skip_first: bool = False) -> int:
    """2*m*n*k summed over the Linear layers of a chain, for ``rows`` examples.

    One product per layer: the forward x @ W.T, or the weight gradient g.T @ x, or the
    input gradient g @ W all cost 2 * rows * in * out. ``skip_first`` leaves out the
    first layer (its input gradient is not needed when the input is data or noise).
    """
    pairs = list(itertools.pairwise(sizes))
    if skip_first:
        pairs = pairs[1:]
    return sum(2 * rows * n_in * n_out for n_in, n_out in pairs)


def step_flops(config: GANConfig, batch: int) -> dict[str, int]:
    """The matrix-product FLOPs of one ``GAN.train_step`` (d_steps=1), item by item."""
    g, d = layer_sizes(config)
    b, p = batch, batch // config.pack  # D's rows: images, or packs of them
    return {
        "G forward (B rows)": matmul_flops(b, g),
        "D step: D forward (2B images)": matmul_flops(2 * p, d),
        "D step: D weight gradients (2B images)": matmul_flops(2 * p, d),
        "D step: D input gradients but layer 1 (2B images)": matmul_flops(
            2 * p, d, skip_first=True
        ),
        "G step: D forward (B images)": matmul_flops(p, d),
        "G step: D input gradients (B images)": matmul_flops(p, d),
        "G step: G weight gradients (B rows)": matmul_flops(b, g),
        "G step: G input gradients but layer 1 (B rows)": matmul_flops(b, g, skip_first=True),
    }


# ---------------------------------------------------------------------------------------
# The contenders: each has .name, .step() (one training step) and .sync()
# ---------------------------------------------------------------------------------------


class MiniganContender:
    """``GAN.train_step`` on a fixed real batch (noise drawn inside the step, as in training)."""

    def __init__(self, name: str, config: GANConfig, real: np.ndarray, backend: Any, seed: int):
        self.name = name
        self.gan = GAN(config, backend=backend, seed=seed)
        self.real = self.gan.backend.asarray(real)

    def step(self, real: Any = None) -> dict[str, Any]:
        return self.gan.train_step(self.real if real is None else real)

    def sync(self) -> None:
        self.gan.backend.synchronize()


class TextbookContender(MiniganContender):
    """The "before": the same layers and optimizers, driven as tutorials write the step.

    Two discriminator passes (real, then fake: the textbook ``GAN.discriminator_step``)
    instead of one stacked pass; a second generator forward for the G step; D's weight
    gradients computed in the G step and thrown away. Same math, more work: the gap to
    ``GAN.train_step`` is what those three choices in ``minigan/gan.py`` buy.
    """

    def step(self, real: Any = None) -> dict[str, Any]:
        gan = self.gan
        real = self.real if real is None else real
        D, G, loss = gan.discriminator, gan.generator, gan.loss
        n = real.shape[0]
        fake = G.forward(gan.sample_noise(n))
        gan.stacked_d_step = False  # this GAN takes the textbook step: two D passes
        stats = gan.discriminator_step(real, fake)
        fake = G.forward(gan.sample_noise(n))
        gan.g_optimizer.zero_grad()
        g_loss = loss.forward(D.forward(fake), 1.0)
        G.backward(D.backward(loss.backward()))  # D's weight gradients too, thrown away
        gan.g_optimizer.step()
        return {**stats, "g_loss": g_loss}


class TorchContender:
    """The same networks, weights and step in PyTorch eager.

    The step follows ``GAN.train_step`` line for line: noise; G forward once; D step on
    ``cat([real, fake.detach()])`` with targets [real_label]*B + [0]*B, backward, Adam;
    G step on D(fake) with target 1, D's parameters frozen (``requires_grad_(False)``,
    as minigan does, so no D weight gradients are computed), backward, G's Adam.
    """

    def __init__(
        self,
        name: str,
        torch: Any,
        config: GANConfig,
        gan: GAN,
        real: np.ndarray,
        fused: bool,
    ):
        if config.generator_loss != "non_saturating" or config.d_steps != 1:
            raise ValueError(
                "the PyTorch reference implements generator_loss='non_saturating' and "
                f"d_steps=1 only, got {config.generator_loss!r} and {config.d_steps}"
            )
        tnn = torch.nn
        self.name, self.torch = name, torch
        self.latent_dim = config.latent_dim
        self.G, self.D = to_torch(gan.generator), to_torch(gan.discriminator)
        adam = {"lr": config.lr, "betas": config.betas}
        if fused:
            adam["fused"] = True
        self.g_opt = torch.optim.Adam(self.G.parameters(), **adam)
        self.d_opt = torch.optim.Adam(self.D.parameters(), **adam)
        self.loss = tnn.BCEWithLogitsLoss() if config.logits else tnn.BCELoss()
        self.logits = config.logits
        self.real = torch.from_numpy(real)
        p = real.shape[0] // config.pack  # D's scores per half: one per image, or per pack
        self.targets = torch.cat([torch.full((p, 1), config.real_label), torch.zeros(p, 1)])
        self.ones = torch.ones(p, 1)

    def step(self, real: Any = None, z: Any = None) -> dict[str, Any]:
        torch = self.torch
        real = self.real if real is None else real
        b = real.shape[0]
        z = torch.randn(b, self.latent_dim) if z is None else z
        fake = self.G(z)

        scores = self.D(torch.cat([real, fake.detach()]))
        d_loss = self.loss(scores, self.targets)
        self.d_opt.zero_grad()
        d_loss.backward()
        self.d_opt.step()
        with torch.no_grad():
            probs = torch.sigmoid(scores) if self.logits else scores
            half = probs.shape[0] // 2
            d_real, d_fake = probs[:half].mean(), probs[half:].mean()

        self.D.requires_grad_(False)
        g_loss = self.loss(self.D(fake), self.ones)
        self.g_opt.zero_grad()
        g_loss.backward()
        self.D.requires_grad_(True)
        self.g_opt.step()
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": d_real,
            "d_fake": d_fake,
        }

    def sync(self) -> None:
        pass


def torch_adam_kind(torch: Any, params: list[Any]) -> str:
    """Which implementation torch.optim.Adam picks by default for these tensors."""
    try:
        from torch.optim.optimizer import _default_to_fused_or_foreach

        fused, foreach = _default_to_fused_or_foreach(params, differentiable=False)
    except Exception:  # noqa: BLE001 - a private helper; its signature may change
        return "unknown"
    return "fused" if fused else "foreach" if foreach else "for-loop (single tensor)"


# ---------------------------------------------------------------------------------------
# Parity: same weights, batch and noise give the same losses
# ---------------------------------------------------------------------------------------


def parity_check(torch: Any, config: GANConfig, real: np.ndarray, seed: int, steps: int) -> None:
    gan = GAN(config, seed=seed)
    reference = TorchContender("torch", torch, config, gan, real, fused=False)
    print(f"### Parity (batch {real.shape[0]}, same weights, batch and noise)\n")
    print("| step | d_loss: minigan, PyTorch | g_loss: minigan, PyTorch | max rel. diff. |")
    print("| ---: | ---: | ---: | ---: |")
    worst = 0.0
    for step in range(1, steps + 1):
        z = gan.sample_noise(real.shape[0])
        gan.sample_noise = lambda n, z=z: z  # the step draws exactly this z
        ours = gan.train_step(real)
        del gan.sample_noise
        theirs = reference.step(z=torch.from_numpy(z))
        pairs = {key: (float(ours[key]), float(theirs[key])) for key in ours}
        rel = max(abs(a - b) / max(abs(a), abs(b), 1e-30) for a, b in pairs.values())
        worst = max(worst, rel)
        (d_ours, d_theirs), (g_ours, g_theirs) = pairs["d_loss"], pairs["g_loss"]
        print(
            f"| {step} | {d_ours:.7f}, {d_theirs:.7f} | {g_ours:.7f}, {g_theirs:.7f} | {rel:.1e} |"
        )
    print("\n(max rel. diff.: over d_loss, g_loss, d_real and d_fake)")
    ours_params = {
        f"{who}.{name}": value
        for who, model in (("G", gan.generator), ("D", gan.discriminator))
        for name, value in model.state_dict().items()
    }
    theirs_params = {
        f"{who}.{name}": value.detach().numpy()
        for who, model in (("G", reference.G), ("D", reference.D))
        for name, value in model.state_dict().items()
    }
    param_diff = max(float(np.max(np.abs(ours_params[k] - theirs_params[k]))) for k in ours_params)
    verdict = (
        "OK" if worst < 1e-4 else "WARNING: the two steps differ; timings compare different work"
    )
    print(
        f"\nmax relative difference of the figures over {steps} steps: {worst:.1e} ({verdict}); "
        f"max |weight difference| after them: {param_diff:.1e} (lr = {config.lr:g})\n"
    )


# ---------------------------------------------------------------------------------------
# Interleaved timing
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# Where minigan's step spends its time (instrumented; not the timed pass)
# ---------------------------------------------------------------------------------------


class _MatmulTimer(np.ndarray):
    """An ndarray view that times every matrix product it takes part in.

    Profiling views each Linear's weight and input as this class (same memory), so the
    products inside ``Linear.forward`` / ``backward`` are timed where they run, and their
    results come back as plain arrays: nothing else in the step changes.
    """

    seconds = 0.0

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(x.view(np.ndarray) if isinstance(x, _MatmulTimer) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(
                x.view(np.ndarray) if isinstance(x, _MatmulTimer) else x for x in kwargs["out"]
            )
        if ufunc is not np.matmul:
            return getattr(ufunc, method)(*inputs, **kwargs)
        start = time.perf_counter()
        result = getattr(ufunc, method)(*inputs, **kwargs)
        _MatmulTimer.seconds += time.perf_counter() - start
        return result


PHASES = (
    "GEMM (matmul in Linear)",
    "Linear: bias, grad accumulate, checks",
    "elementwise (activations)",
    "loss (forward + backward)",
    "optimizer (Adam.step, zero_grad)",
    "noise sampling",
    "rest (concatenate, d_real/d_fake, Python)",
)


def profile_phases(
    config: GANConfig, real: np.ndarray, seed: int, warmup: int, steps: int
) -> tuple[dict[str, float], float]:
    """(ms/step per phase, total ms/step) of minigan-numpy, from wrapped methods."""
    gan = GAN(config, seed=seed)
    for _ in range(warmup):
        gan.train_step(real)
    seconds: dict[str, float] = defaultdict(float)

    def timed(phase: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                seconds[phase] += time.perf_counter() - start

        return wrapper

    linear_phase = "Linear (all)"
    for layer in [*gan.generator, *gan.discriminator]:
        if isinstance(layer, nn.Linear):
            forward = layer.forward
            layer.forward = timed(linear_phase, lambda x, f=forward: f(x.view(_MatmulTimer)))
            layer.backward = timed(linear_phase, layer.backward)
            layer.weight.data = layer.weight.data.view(_MatmulTimer)
        else:
            layer.forward = timed(PHASES[2], layer.forward)
            layer.backward = timed(PHASES[2], layer.backward)
    for opt in (gan.g_optimizer, gan.d_optimizer):  # the same memory, seen as timer views:
        opt.views = [(p.data, p.grad) for p in opt.params]  # what step() checks it still has
    gan.loss.forward = timed(PHASES[3], gan.loss.forward)
    gan.loss.backward = timed(PHASES[3], gan.loss.backward)
    for opt in (gan.g_optimizer, gan.d_optimizer):
        opt.step = timed(PHASES[4], opt.step)
        opt.zero_grad = timed(PHASES[4], opt.zero_grad)
    gan.sample_noise = timed(PHASES[5], gan.sample_noise)

    _MatmulTimer.seconds = 0.0
    total = 0.0
    with gc_paused():
        for _ in range(steps):
            start = time.perf_counter()
            gan.train_step(real)
            total += time.perf_counter() - start
    seconds[PHASES[0]] = _MatmulTimer.seconds
    seconds[PHASES[1]] = seconds.pop(linear_phase) - _MatmulTimer.seconds
    seconds[PHASES[6]] = total - sum(seconds[p] for p in PHASES[:6])
    return {p: seconds[p] / steps * 1e3 for p in PHASES}, total / steps * 1e3


# ---------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------


def measure_memory(config: GANConfig, real: np.ndarray, seed: int, steps: int) -> dict[str, float]:
    """MiB traced by tracemalloc: after building the GAN and 2 steps, and the peak of ``steps``."""
    tracemalloc.start()
    try:
        gan = GAN(config, seed=seed)
        built = tracemalloc.get_traced_memory()[0]
        for _ in range(2):  # caches and lazily made targets exist after the first steps
            gan.train_step(real)
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(steps):
            gan.train_step(real)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    state = sum(o.data.nbytes * 5 for o in (gan.g_optimizer, gan.d_optimizer))
    return {
        "state": state / MIB,
        "built": built / MIB,
        "baseline": baseline / MIB,
        "peak": peak / MIB,
        "transient": (peak - baseline) / MIB,
    }


# ---------------------------------------------------------------------------------------
# One epoch over MNIST
# ---------------------------------------------------------------------------------------


def epoch_minigan(contender: MiniganContender, loader: BatchIterator, steps: int) -> None:
    for index, batch in enumerate(loader):  # iter() draws this epoch's permutation
        if index == steps:
            break
        contender.step(batch)
    contender.sync()


def epoch_torch(contender: TorchContender, images: Any, batch: int, steps: int) -> None:
    torch = contender.torch
    order = torch.randperm(images.shape[0])
    for index in range(steps):
        contender.step(images[order[index * batch : (index + 1) * batch]])


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------


def parse_batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got {text!r}")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time GAN.train_step of minigan (NumPy, CuPy) against the same step in "
        "PyTorch eager; print Markdown for benchmarks/RESULTS.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="classic",
        help="the model: 'classic' (hidden 256, BCE on a Sigmoid; the one the "
        "targets are stated for) or 'default' (hidden 512, logits)",
    )
    p.add_argument(
        "--batch-sizes",
        type=parse_batch_sizes,
        default=[100, 512],
        metavar="B1,B2,...",
        help="batch sizes to time, comma-separated",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=7,
        help="timed rounds per contender (interleaved); the median is reported",
    )
    p.add_argument("--steps", type=int, default=50, help="train steps per round")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per contender first")
    p.add_argument(
        "--pause",
        type=float,
        default=0.2,
        help="seconds of sleep before each round, so that the previous "
        "contender's spinning BLAS/OpenMP threads go idle",
    )
    p.add_argument(
        "--parity-steps",
        type=int,
        default=3,
        help="steps of the minigan/PyTorch parity check",
    )
    p.add_argument(
        "--profile-steps",
        type=int,
        default=30,
        help="steps of the instrumented per-phase pass",
    )
    p.add_argument(
        "--memory-steps",
        type=int,
        default=3,
        help="steps traced by tracemalloc for the peak memory",
    )
    p.add_argument(
        "--gemm-size",
        type=int,
        default=2048,
        help="n of the n x n float32 matmul that measures the GEMM peak",
    )
    p.add_argument("--gemm-repeats", type=int, default=5, help="repetitions of that matmul")
    p.add_argument(
        "--epoch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time one full training epoch over MNIST",
    )
    p.add_argument(
        "--epoch-steps",
        type=int,
        default=None,
        help="cut the epoch to this many steps (default: the whole epoch, "
        f"{MNIST_TRAIN_SIZE} // batch_size)",
    )
    p.add_argument(
        "--epoch-rounds",
        type=int,
        default=3,
        help="epochs per contender (interleaved); the median is reported",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the MNIST files (default: $MINIGAN_DATA/mnist, ...); never downloads",
    )
    p.add_argument(
        "--no-torch",
        action="store_true",
        help="leave PyTorch out, as if it were not installed",
    )
    p.add_argument("--no-cupy", action="store_true", help="leave the GPU out")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, noise, shuffling")
    args = p.parse_args(argv)
    for name in (
        "rounds",
        "steps",
        "gemm_size",
        "gemm_repeats",
        "epoch_rounds",
        "profile_steps",
        "memory_steps",
    ):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.epoch_steps is not None and args.epoch_steps < 1:
        p.error("--epoch-steps must be >= 1")
    return args


def print_header(args: argparse.Namespace, config: GANConfig, env: dict[str, Any]) -> None:
    torch, cupy = env["torch"], env["cupy"]
    now = datetime.datetime.now().astimezone()
    print(f"## GAN.train_step, preset '{args.preset}', {now:%Y-%m-%d %H:%M %Z}\n")
    print(f"- command: `{shlex.join(sys.orig_argv)}`")
    print(
        f"- machine: {cpu_model()}; {os.cpu_count()} logical cores "
        f"({len(os.sched_getaffinity(0))} usable); {platform.system()} {platform.release()}"
    )
    load = env["load_before"]
    print(f"- /proc/loadavg before: {load}{busy_warning(load)}")
    print(f"- python {platform.python_version()}; numpy {np.__version__}, BLAS: {numpy_blas()}")
    print(f"- numpy BLAS threads: {env['threads']} ({env['threads_source']})")
    if torch is not None:
        blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        print(
            f"- torch {torch.__version__} (BLAS: {blas.group(1) if blas else '?'}); threads "
            f"set to {torch.get_num_threads()} (its default: {env['torch_default_threads']})"
        )
    else:
        print(f"- PyTorch: comparison skipped: {env['torch_reason']}")
    if cupy is not None:
        print(f"- minigan-cupy: on {gpu_name(cupy)}")
    else:
        print(f"- minigan-cupy: skipped: {env['cupy_reason']}")
    print(f"- model: {config}")
    print(
        f"- timing: {args.rounds} rounds x {args.steps} steps per contender, interleaved in "
        f"rotating order, after {args.warmup} warm-up steps; {args.pause} s pause before "
        "each round; gc off inside rounds; the median round is reported"
    )
    sys.stdout.flush()


def gpu_name(cupy: Any) -> str:
    try:
        return cupy.xp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:  # noqa: BLE001 - only a label
        return "a CUDA GPU"


def timed_contenders(
    args: argparse.Namespace, config: GANConfig, env: dict[str, Any], real: np.ndarray
) -> list[Any]:
    """minigan-numpy (and its textbook step), [minigan-cupy], [torch Adam, fused]: same weights."""
    torch, cupy = env["torch"], env["cupy"]
    contenders: list[Any] = [
        MiniganContender("minigan-numpy", config, real, "numpy", args.seed),
        TextbookContender("minigan-numpy, textbook step", config, real, "numpy", args.seed),
    ]
    if cupy is not None:
        contenders.append(MiniganContender("minigan-cupy", config, real, cupy, args.seed))
    if torch is None:
        return contenders
    gan = contenders[0].gan  # not trained yet: the initial weights
    for fused in (False, True):
        name = "torch eager, Adam(fused=True)" if fused else "torch eager, Adam"
        try:
            contender = TorchContender(name, torch, config, gan, real, fused=fused)
            contender.step()  # fails here if the fused kernel is not built for the CPU
        except (RuntimeError, TypeError, ValueError) as error:
            print(f"- {name} skipped: {error}")
            continue
        contenders.append(contender)
    return contenders


def report_timings(
    results: dict[int, dict[str, list[float]]],
    args: argparse.Namespace,
    env: dict[str, Any],
) -> None:
    print(f"\n### train_step, ms/step (median of {args.rounds} rounds x {args.steps} steps)\n")
    if env["torch"] is not None:
        print(
            f"torch.optim.Adam's default implementation here: {env.get('adam_kind', 'unknown')}.\n"
        )
    print("| batch | contender | ms/step | min-max ms | steps/s | minigan-numpy / this |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for b, times in results.items():
        mini = statistics.median(times["minigan-numpy"])
        for name, t in times.items():
            med = statistics.median(t)
            ratio = "" if name == "minigan-numpy" else f"{mini / med:.2f}x"
            print(
                f"| {b} | {name} | {med:.2f} | {min(t):.2f}-{max(t):.2f} "
                f"| {1e3 / med:.0f} | {ratio} |"
            )
    if env["torch"] is None:
        print(f"\nPyTorch comparison skipped: {env['torch_reason']}.")
    else:
        print("\n(minigan-numpy / this < 1: minigan is faster.)")
    print()


def report_limit(
    results: dict[int, dict[str, list[float]]], config: GANConfig, peak: float
) -> None:
    print(f"### GEMM-bound limit (step FLOPs / {peak:.0f} GFLOP/s, the numpy GEMM peak)\n")
    print(
        "| batch | MFLOP/step | limit ms/step | minigan-numpy ms/step | limit / minigan "
        "| minigan GFLOP/s |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for b, times in results.items():
        flops = sum(step_flops(config, b).values())
        limit = flops / (peak * 1e9) * 1e3
        mini = statistics.median(times["minigan-numpy"])
        print(
            f"| {b} | {flops / 1e6:.1f} | {limit:.2f} | {mini:.2f} | {limit / mini:.0%} "
            f"| {flops / mini / 1e6:.0f} |"
        )
    b = next(iter(results))
    items = step_flops(config, b)
    print(f"\nFLOPs at batch {b}, matrix products only ({sum(items.values()) / 1e6:.1f} MFLOP):")
    for item, flops in items.items():
        print(f"- {item}: {flops / 1e6:.1f} MFLOP")
    print()


def report_profile(profiles: dict[int, tuple[dict[str, float], float]], steps: int) -> None:
    print(f"### Where minigan-numpy's step goes (instrumented pass, {steps} steps)\n")
    print("| phase | " + " | ".join(f"batch {b}: ms (%)" for b in profiles) + " |")
    print("| --- | " + " | ".join("---:" for _ in profiles) + " |")
    for phase in PHASES:
        cells = [f"{ms[phase]:.2f} ({ms[phase] / total:.0%})" for ms, total in profiles.values()]
        print(f"| {phase} | " + " | ".join(cells) + " |")
    totals = " | ".join(f"{total:.2f}" for _, total in profiles.values())
    print(f"| total (instrumented) | {totals} |")
    print(
        "\nThe wrappers add a little overhead (mostly to 'Linear' and 'rest'): compare the "
        "instrumented total with the timed ms/step above.\n"
    )


def report_memory(args: argparse.Namespace, config: GANConfig, real_batch: Any) -> None:
    print(f"### Memory of minigan-numpy (tracemalloc, {args.memory_steps} steps)\n")
    print(
        "| batch | params+grads+Adam (MiB) | after build (MiB) | after 2 steps (MiB) "
        "| peak in steps (MiB) | peak - before (MiB) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for b in args.batch_sizes:
        m = measure_memory(config, real_batch(b), args.seed, args.memory_steps)
        print(
            f"| {b} | {m['state']:.1f} | {m['built']:.1f} | {m['baseline']:.1f} "
            f"| {m['peak']:.1f} | {m['transient']:.1f} |"
        )
    print()


def run_epochs(
    args: argparse.Namespace, config: GANConfig, env: dict[str, Any], images: np.ndarray
) -> None:
    """One epoch (or --epoch-steps of it) per contender, interleaved; print the table."""
    torch, cupy, b = env["torch"], env["cupy"], config.batch_size
    loader = BatchIterator(images, batch_size=b, seed=args.seed)
    full = len(loader)
    steps = min(args.epoch_steps or full, full)
    warm = np.ascontiguousarray(images[:b])
    mini = MiniganContender("minigan-numpy", config, warm, "numpy", args.seed)
    runs: list[tuple[Any, Callable[[], None]]] = [
        (mini, lambda: epoch_minigan(mini, loader, steps))
    ]
    if cupy is not None:
        gpu = MiniganContender("minigan-cupy", config, warm, cupy, args.seed)
        gpu_loader = BatchIterator(images, batch_size=b, seed=args.seed, backend=cupy)
        runs.append((gpu, lambda: epoch_minigan(gpu, gpu_loader, steps)))
    if torch is not None:
        images_t = torch.from_numpy(images)
        for fused in (False, True):
            name = "torch eager, Adam(fused=True)" if fused else "torch eager, Adam"
            try:
                c = TorchContender(name, torch, config, mini.gan, warm, fused=fused)
                c.step()
            except (RuntimeError, TypeError, ValueError) as error:
                print(f"- epoch: {name} skipped: {error}")
                continue
            runs.append((c, lambda c=c: epoch_torch(c, images_t, b, steps)))
    for c, _ in runs:
        for _ in range(args.warmup):
            c.step()
        c.sync()
    walls: dict[str, list[float]] = {c.name: [] for c, _ in runs}
    for r in range(args.epoch_rounds):
        shift = r % len(runs)
        for c, run in runs[shift:] + runs[:shift]:
            time.sleep(args.pause)
            with gc_paused():
                start = time.perf_counter()
                run()
                walls[c.name].append(time.perf_counter() - start)

    kind = "one full epoch" if steps == full else f"{steps} of the epoch's {full} steps"
    print(
        f"### Epoch: {kind}, batch {b}, MNIST training set, shuffled "
        f"(median of {args.epoch_rounds}, interleaved)\n"
    )
    print("| contender | wall s | ms/step | minigan-numpy / this |")
    print("| --- | ---: | ---: | ---: |")
    mini_wall = statistics.median(walls["minigan-numpy"])
    for name, w in walls.items():
        med = statistics.median(w)
        ratio = "" if name == "minigan-numpy" else f"{mini_wall / med:.2f}x"
        print(f"| {name} | {med:.2f} | {med / steps * 1e3:.2f} | {ratio} |")
    print()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env: dict[str, Any] = {"load_before": loadavg()}
    env["torch"], env["torch_reason"] = import_torch(args.no_torch)
    env["cupy"], env["cupy_reason"] = cupy_backend(args.no_cupy)
    env["threads"], env["threads_source"] = blas_threads()
    torch = env["torch"]
    if torch is not None:  # the same number of threads as numpy's BLAS
        env["torch_default_threads"] = torch.get_num_threads()
        torch.set_num_threads(env["threads"])
        torch.manual_seed(args.seed)
    config = PRESETS[args.preset]
    print_header(args, config, env)

    # The data: MNIST when it is there (the same batch for every contender), else noise.
    images = None
    try:
        images = to_gan_range(load_mnist("train", root=args.data_dir, download=False)[0])
        data_note = f"MNIST training images ({images.shape[0]})"
    except DataError as error:
        data_note = (
            f"MNIST not found ({type(error).__name__}: set MINIGAN_DATA or --data-dir); "
            "uniform noise in [-1, 1]"
        )
    print(f"- real batches: {data_note}\n")

    def real_batch(b: int) -> np.ndarray:
        if images is not None and b <= images.shape[0]:
            return np.ascontiguousarray(images[:b])
        rng = np.random.default_rng(args.seed)
        return rng.uniform(-1, 1, (b, config.image_size)).astype(np.float32)

    if torch is not None:
        real = real_batch(args.batch_sizes[0])
        parity_check(torch, config, real, args.seed, args.parity_steps)

    rates = gemm_peak_numpy(args.gemm_size, args.gemm_repeats)
    peak = max(rates)
    n = args.gemm_size
    print(f"### GEMM peak (float32 {n}x{n} matmul, best of {args.gemm_repeats})\n")
    print(f"- numpy: {peak:.0f} GFLOP/s (runs: {', '.join(f'{r:.0f}' for r in rates)})")
    if torch is not None:
        rates = gemm_peak_torch(torch, n, args.gemm_repeats)
        print(f"- torch: {max(rates):.0f} GFLOP/s (runs: {', '.join(f'{r:.0f}' for r in rates)})")
    print()
    sys.stdout.flush()

    results: dict[int, dict[str, list[float]]] = {}
    for b in args.batch_sizes:
        contenders = timed_contenders(args, config, env, real_batch(b))
        for c in contenders:
            if isinstance(c, TorchContender):
                env["adam_kind"] = torch_adam_kind(torch, list(c.G.parameters()))
        results[b] = time_rounds(contenders, args.rounds, args.steps, args.warmup, args.pause)
        medians = "; ".join(
            f"{name} {statistics.median(t):.2f} ms" for name, t in results[b].items()
        )
        print(f"- batch {b}: {medians}")
        sys.stdout.flush()
    report_timings(results, args, env)
    report_limit(results, config, peak)
    sys.stdout.flush()

    profiles = {
        b: profile_phases(config, real_batch(b), args.seed, args.warmup, args.profile_steps)
        for b in args.batch_sizes
    }
    report_profile(profiles, args.profile_steps)
    report_memory(args, config, real_batch)
    sys.stdout.flush()

    if not args.epoch:
        print("### Epoch: skipped (--no-epoch)\n")
    elif images is None:
        print(f"### Epoch: skipped: {data_note}\n")
    else:
        run_epochs(args, config, env, images)

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"- ru_maxrss: {maxrss:.0f} MiB (the whole process: data, all contenders and batches)")
    print(f"- /proc/loadavg after: {loadavg()} (this run's own threads count in it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
