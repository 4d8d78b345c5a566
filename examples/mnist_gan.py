"""Train a GAN on MNIST and watch digits appear.

    python examples/mnist_gan.py                      # the default recipe, on the CPU
    python examples/mnist_gan.py --backend cupy       # the same, on a GPU
    python examples/mnist_gan.py --preset classic     # the tutorial recipe, for comparison
    python examples/mnist_gan.py --resume             # continue the run in --out
    python examples/mnist_gan.py --sample 10000 --checkpoint runs/mnist/checkpoint.npz \\
        --output samples.npy                          # draw samples from a trained model

Everything goes into --out (default runs/mnist): a grid of 64 samples from a fixed
batch of noise after every epoch (samples_epoch_NNN.png), the real data once
(real.png), the loss curves (history.png, history.jsonl), and checkpoint.npz.

On a GPU, every read of a value back to the host waits for the device, so training
reads only these, each explicitly (tests/test_cupy_path.py counts them): one per
--log-every window (the averaged figures, also checked for NaN/inf there), and after
each epoch one for the sample grid, one per weight array and Adam moment for the
checkpoint, and with --eval-every the samples and the classifier's outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from minigan.backend import BackendUnavailableError, get_backend, to_host
from minigan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minigan.data import BatchIterator, DataError, load_mnist, to_gan_range
from minigan.files import atomic_write
from minigan.gan import ACTIVATIONS, GAN, GENERATOR_LOSSES, PRESETS, GANConfig
from minigan.plotting import plot_history, save_image_grid

DEFAULT_EPOCHS = 30


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what to do."""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def from_preset(describe: Callable[[GANConfig], Any]) -> str:
    """Help text naming each preset's value, e.g. "preset's: default 512, classic 256"."""
    values = ", ".join(f"{name} {describe(config)}" for name, config in PRESETS.items())
    return f"(preset's: {values})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train a GAN on MNIST with minigan (or sample from a trained one). "
        "Flags left out take the preset's value.",
    )
    add = p.add_argument
    add(
        "--preset",
        choices=list(PRESETS),
        help="recipe: 'default' (the best plain MLP GAN we found; the default) or "
        "'classic' (the tutorial recipe, for comparison)",
    )
    add("--backend", default="numpy", help="'numpy' (CPU, the default) or 'cupy' (GPU)")
    add(
        "--epochs",
        type=positive_int,
        help=f"total epochs, counting those already done when resuming (default: {DEFAULT_EPOCHS})",
    )
    add("--batch-size", type=positive_int, help=f"batch size {from_preset(lambda c: c.batch_size)}")
    add("--lr", type=float, help=f"Adam learning rate {from_preset(lambda c: c.lr)}")
    add("--beta1", type=float, help=f"Adam beta1 {from_preset(lambda c: c.betas[0])}")
    add("--latent-dim", type=positive_int, help=f"size of z {from_preset(lambda c: c.latent_dim)}")
    add("--hidden", type=positive_int, help=f"hidden layer width {from_preset(lambda c: c.hidden)}")
    add(
        "--g-activation",
        choices=list(ACTIVATIONS),
        help=f"the generator's hidden activation {from_preset(lambda c: c.g_activation)}",
    )
    add(
        "--d-output",
        choices=["sigmoid", "logits"],
        help="D ends in Sigmoid and trains with BCELoss, or gives logits and trains with "
        "BCEWithLogitsLoss " + from_preset(lambda c: "logits" if c.logits else "sigmoid"),
    )
    add(
        "--generator-loss",
        choices=GENERATOR_LOSSES,
        help="'non_saturating': minimise -log D(G(z)); 'saturating': minimise "
        f"log(1 - D(G(z))) {from_preset(lambda c: c.generator_loss)}",
    )
    add(
        "--d-steps",
        type=positive_int,
        help=f"discriminator updates per generator update {from_preset(lambda c: c.d_steps)}",
    )
    add(
        "--label-smoothing",
        type=float,
        help="one-sided: train D towards 1 - S on real images, 0 for none "
        + from_preset(lambda c: round(1 - c.real_label, 6)),
    )
    add(
        "--seed",
        type=nonnegative_int,
        help="seed for weights, noise and shuffling (default: 0; on --resume, the run's own)",
    )
    add("--out", default="runs/mnist", help="folder for every output (default: runs/mnist)")
    add(
        "--data-dir",
        help="folder holding the MNIST files (default: $MINIGAN_DATA/mnist, "
        "then ~/.cache/minigan/mnist, downloading if needed)",
    )
    add(
        "--train-size",
        type=positive_int,
        help="train on the first N images only (quick experiments)",
    )
    add("--resume", action="store_true", help="continue from OUT/checkpoint.npz up to --epochs")
    add(
        "--log-every",
        type=positive_int,
        default=20,
        help="log the figures averaged over N steps; reading them back is a GPU sync (default: 20)",
    )
    add(
        "--eval-every",
        type=nonnegative_int,
        default=0,
        metavar="K",
        help="every K epochs (and after the last), score samples with FID, Inception Score "
        "and class coverage (minigan.metrics; trains its MNIST classifier once, about "
        "a minute) and plot FID (default: 0, off)",
    )
    add(
        "--eval-samples",
        type=positive_int,
        default=10000,
        metavar="N",
        help="samples scored by --eval-every (default: 10000)",
    )
    add(
        "--sample",
        type=positive_int,
        metavar="N",
        help="instead of training: write N samples from --checkpoint to --output",
    )
    add("--checkpoint", help="with --sample: the checkpoint.npz to sample from")
    add("--output", help="with --sample: .npy file for float32 (N, 28, 28) images in [0, 1]")
    add("--grid", help="with --sample: also save the first 64 samples as this PNG")
    return p.parse_args(argv)


# --- configuration and checkpoints ----------------------------------------------------


def requested_config(args: argparse.Namespace, base: GANConfig) -> dict[str, Any]:
    """The config fields the command line sets: a named preset's, then each flag given."""
    fields = PRESETS[args.preset].to_dict() if args.preset is not None else {}
    base = PRESETS[args.preset] if args.preset is not None else base
    flags = {
        "batch_size": args.batch_size,
        "lr": args.lr,
        "latent_dim": args.latent_dim,
        "hidden": args.hidden,
        "generator_loss": args.generator_loss,
        "d_steps": args.d_steps,
        "g_activation": args.g_activation,
        "logits": None if args.d_output is None else args.d_output == "logits",
        "betas": None if args.beta1 is None else (args.beta1, base.betas[1]),
        "real_label": None if args.label_smoothing is None else 1.0 - args.label_smoothing,
    }
    fields.update({name: value for name, value in flags.items() if value is not None})
    return fields


def config_from_checkpoint(state: dict[str, Any], path: Path) -> GANConfig:
    try:
        return GANConfig(**state["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its config is unreadable ({error})") from None


def load_gan_state(gan: GAN, state: dict[str, Any], path: Path) -> None:
    try:
        gan.load_state_dict(state["gan"])
    except (KeyError, ValueError) as error:
        raise CheckpointError(
            f"{path} does not fit this model ({error}); it was saved by a different "
            f"architecture or version"
        ) from None


def refuse_changes(saved: dict[str, Any], requested: dict[str, Any], path: Path) -> None:
    """A resumed run is the same run: flags may not change what it was trained with."""
    differences = [
        f"{name}={saved[name]!r} there, {value!r} here"
        for name, value in requested.items()
        if saved[name] != value
    ]
    if differences:
        raise CheckpointError(
            f"{path} was trained with other settings ({'; '.join(differences)}); --resume "
            f"continues that run unchanged: drop those flags, or start a new run in another --out"
        )


# --- outputs ----------------------------------------------------------------------------


def prepare_out_dir(out: Path) -> None:
    """Fail now, not after an epoch of training, if ``out`` cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / ".write-test") as f:
            f.write(b"ok")
        (out / ".write-test").unlink()
    except OSError as error:
        raise TrainingError(f"cannot write to --out {out}: {error.strerror or error}") from None


def generate_unit_images(gan: GAN, z: Any, chunk: int = 1000) -> np.ndarray:
    """G(z) in [-1, 1] -> host float32 (n, 28, 28) in [0, 1], ``chunk`` rows at a time."""
    images = np.concatenate(
        [to_host(gan.generate(z[i : i + chunk])) for i in range(0, len(z), chunk)]
    )
    return np.clip((images.reshape(-1, 28, 28).astype(np.float32) + 1) / 2, 0, 1)


def save_history(history: list[dict[str, Any]], out: Path) -> None:
    with atomic_write(out / "history.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in history)
    plot_history(history, out / "history.png")


# --- the two modes ---------------------------------------------------------------------


def sample(args: argparse.Namespace) -> str:
    if args.checkpoint is None or args.output is None:
        raise TrainingError("--sample needs --checkpoint PATH and --output FILE.npy")
    path = Path(args.checkpoint)
    state = load_checkpoint(path)
    gan = GAN(config_from_checkpoint(state, path), args.backend, seed=args.seed or 0)
    load_gan_state(gan, state, path)
    images = generate_unit_images(gan, gan.sample_noise(args.sample))
    with atomic_write(args.output) as f:
        np.save(f, images)
    if args.grid:
        save_image_grid(images[:64], args.grid)
    return f"wrote {len(images)} samples, float32 (N, 28, 28) in [0, 1], to {args.output}"


def train(args: argparse.Namespace) -> str:
    out = Path(args.out)
    prepare_out_dir(out)
    backend = get_backend(args.backend)
    checkpoint_path = out / "checkpoint.npz"
    state = None
    if args.resume:
        state = load_checkpoint(checkpoint_path)
        config = config_from_checkpoint(state, checkpoint_path)
        saved = {**config.to_dict(), "seed": state.get("seed")}
        requested = requested_config(args, config)
        if args.seed is not None:
            requested["seed"] = args.seed
        refuse_changes(saved, requested, checkpoint_path)
        seed = int(saved["seed"])
    else:
        default = PRESETS["default"]
        config = dataclasses.replace(default, **requested_config(args, default))
        seed = args.seed if args.seed is not None else 0
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS

    images, _ = load_mnist("train", root=args.data_dir)
    if args.train_size is not None:
        images = images[: args.train_size]
    x = to_gan_range(images, dtype=np.float32)
    loader = BatchIterator(x, batch_size=config.batch_size, seed=seed, backend=backend)
    gan = GAN(config, backend, seed=seed)
    # The same 64 noise vectors every epoch, so the sample grids show one model changing.
    fixed_z = backend.asarray(
        np.random.default_rng([seed, 1]).standard_normal((64, config.latent_dim)),
        dtype=np.float32,
    )

    evaluator, eval_z = None, None
    if args.eval_every > 0:
        # Imported only when asked for: it may train its classifier first.
        from minigan.metrics import Evaluator

        evaluator = Evaluator.load_or_train(data_root=args.data_dir, backend=backend)
        # Fixed noise again: scores at different epochs measure one model changing.
        eval_z = backend.asarray(
            np.random.default_rng([seed, 2]).standard_normal(
                (args.eval_samples, config.latent_dim)
            ),
            dtype=np.float32,
        )

    history: list[dict[str, Any]] = []
    start_epoch = 0
    if state is not None:
        load_gan_state(gan, state, checkpoint_path)
        loader.load_state_dict(state["loader"])
        history, start_epoch = state["history"], int(state["epoch"])
        print(f"resuming {checkpoint_path} after epoch {start_epoch}")
    else:
        save_image_grid((images[:64] / 255).astype(np.float32), out / "real.png")

    started = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        gan.reseed_noise(seed * 1_000_003 + epoch)  # resumable at any epoch boundary
        history += train_epoch(gan, loader, epoch, epochs, args.log_every)
        save_image_grid(
            generate_unit_images(gan, fixed_z), out / f"samples_epoch_{epoch + 1:03d}.png"
        )
        if evaluator is not None and ((epoch + 1) % args.eval_every == 0 or epoch + 1 == epochs):
            scores = evaluator.evaluate(generate_unit_images(gan, eval_z))
            history.append({"epoch": epoch + 1, **scores})
            tqdm.write(
                f"epoch {epoch + 1}: FID {scores['fid']:.1f}, Inception Score "
                f"{scores['inception_score']:.2f}, {scores['classes_covered']}/10 digits"
            )
        save_history(history, out)
        save_checkpoint(checkpoint_path, {
            "gan": gan.state_dict(), "loader": loader.state_dict(), "history": history,
            "epoch": epoch + 1, "config": config.to_dict(), "seed": seed,
        })  # fmt: skip
    minutes, seconds = divmod(round(time.perf_counter() - started), 60)
    return (
        f"done: epoch {epochs} of {epochs} ({minutes} min {seconds} s this run); samples, "
        f"history.png and checkpoint.npz are in {out}"
    )


def train_epoch(gan: GAN, loader: BatchIterator, epoch: int, epochs: int, log_every: int):
    """Train one epoch; return its logged rows. Raises TrainingError on NaN/inf."""
    rows = []
    steps = len(loader)
    totals: dict[str, Any] = {}  # figures summed on the device since the last log line
    counts: dict[str, int] = {}
    bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{epochs}", leave=True)
    for step, batch in enumerate(bar):
        for key, value in gan.train_step(batch).items():
            if value is not None:  # g_loss is None until G's first update (--d-steps)
                totals[key] = totals.get(key, 0) + value
                counts[key] = counts.get(key, 0) + 1
        if step % log_every == log_every - 1 or step == steps - 1:
            # Reading values back waits for the GPU: one read per log line, all figures at once.
            keys = list(totals)
            sums = to_host(gan.backend.xp.stack([totals[k] for k in keys]))
            row = {k: float(total) / counts[k] for k, total in zip(keys, sums)}
            totals, counts = {}, {}
            bad = [k for k, v in row.items() if not math.isfinite(v)]
            if bad:
                bar.close()
                first = step - step % log_every  # the window these figures average over
                raise TrainingError(
                    f"{' and '.join(bad)} became {row[bad[0]]} at epoch {epoch + 1}, step "
                    f"{first + 1}-{step + 1} of {steps} (global step {gan.steps - step + first}"
                    f"-{gan.steps}); training stopped. The checkpoint "
                    f"from the last finished epoch was kept: lower --lr, or use the default "
                    f"preset's BCEWithLogits loss"
                )
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()}, refresh=False)
            rows.append({"epoch": epoch + (step + 1) / steps, **row})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(sample(args) if args.sample is not None else train(args))
    except (
        DataError,
        CheckpointError,
        TrainingError,
        BackendUnavailableError,
        ValueError,
        OSError,  # a file that cannot be written or read: the message names it
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the checkpoint from the last finished epoch is kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
