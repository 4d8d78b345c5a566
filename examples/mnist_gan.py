"""Train a GAN on MNIST (or Fashion-MNIST, or a folder of pictures) and watch it learn.

    python examples/mnist_gan.py                      # the default recipe, on the CPU
    python examples/mnist_gan.py --backend cupy       # the same, on a GPU
    python examples/mnist_gan.py --preset classic --out runs/classic  # for comparison
    python examples/mnist_gan.py --model wgan-gp --out runs/wgan-gp   # another of the family
    python examples/mnist_gan.py --model dcgan --dataset fashion --out runs/fashion
    python examples/mnist_gan.py --model dcgan --dataset folder:my_pictures \\
        --d-augment color,translation,cutout --d-norm batch --g-full-res-channels 0 \\
        --d-fc-width 0 --g-fc-width 0 --out runs/mine  # the paper's networks, DiffAugment
    python examples/mnist_gan.py --resume             # continue the run in --out
    python examples/mnist_gan.py --sample 10000 --checkpoint runs/mnist/checkpoint.npz \\
        --output samples.npy                          # draw samples from a trained model

Each model (--model, see minigan.models) trains with its paper's defaults; flags left
out take them, and a flag the model has no use for is refused.

Everything goes into --out (default runs/mnist): a grid of 64 samples from a fixed
batch of noise after every epoch (samples_epoch_NNN.png), the real data once
(real.png), the loss curves (history.png, history.jsonl), and checkpoint.npz.
A new run never replaces another: an --out that holds a run is refused unless
--resume (continue it) or --overwrite (delete its files first) is given. Every option
is checked before any work starts; a run that fails then leaves nothing behind.

On a GPU, every read of a value back to the host waits for the device, so training
reads only these, each explicitly (tests/test_cupy_path.py counts them): one per
--log-every window (the averaged figures, also checked for NaN/inf there), and after
each epoch one for the sample grid, one per weight array (the averaged G's too) and
Adam moment for the checkpoint, and with --eval-every the samples and the classifier's outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # Read by OpenBLAS when NumPy loads, just below: its idle threads then sleep at
    # once instead of spinning for ~0.1 s on the cores minigan's threads use
    # (minigan/backend.py, "threads"). A value set in the shell wins.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np
from tqdm import tqdm

from minigan.backend import (
    BackendUnavailableError,
    get_backend,
    get_num_threads,
    set_num_threads,
    threads_worth_using,
    to_host,
)
from minigan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minigan.data import BatchIterator, DataError, load_fashion_mnist, load_mnist, to_gan_range
from minigan.files import atomic_write
from minigan.images import load_image_folder
from minigan.models import MODELS, PRESETS
from minigan.models.base import ACTIVATIONS, Model
from minigan.models.conditional import check_labels
from minigan.models.dcgan import D_NORMS
from minigan.models.gan import GENERATOR_LOSSES
from minigan.plotting import plot_history, save_image_grid

MNIST_TRAIN_IMAGES = 60000  # Fashion-MNIST has as many
DATASETS = ("mnist", "fashion")  # and folder:PATH
FOLDER_IMAGE_SIZE = 32  # --image-size's default for folder:PATH
SAMPLE_CHUNK = 1000  # --sample generates and writes this many images at a time
MNIST_SHAPE = (1, 28, 28)  # one image: (channels, height, width)

# The files a run writes into --out. Only these (and atomic_write's temporary files
# for them) are ever deleted, by --overwrite; a user's own files there are left alone.
RUN_FILES = ("checkpoint.npz", "history.jsonl", "history.png", "real.png")
SAMPLE_GRID = re.compile(r"samples_epoch_\d{3,}\.png")
# atomic_write writes "name" through a temporary ".name.<random>.tmp" beside it.
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]+\.tmp")


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what to do."""


class Diverged(TrainingError):
    """A logged figure became NaN or infinite."""


class Interrupted(Exception):
    """Ctrl-C; the message says what was kept and how to go on."""


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


def positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1): Adam's beta1, a label-smoothing amount."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def defaults(field: str, describe: Callable[[Any], Any] | None = None) -> str:
    """Help text naming each model's default, e.g. "(gan 512, classic 256, wgan 512)";
    models without the setting are left out (the flag is refused for them)."""
    configs = {"gan": PRESETS["default"], "classic": PRESETS["classic"]} | {
        name: cls.default_config() for name, cls in MODELS.items() if name != "gan"
    }
    describe = describe or (lambda c: getattr(c, field))
    values = [f"{name} {describe(c)}" for name, c in configs.items() if hasattr(c, field)]
    return f"(defaults: {', '.join(values)})"


def dataset_spec(text: str) -> str:
    """'mnist', 'fashion' or 'folder:PATH'."""
    if text in DATASETS or (text.startswith("folder:") and len(text) > len("folder:")):
        return text
    raise argparse.ArgumentTypeError(f"expected mnist, fashion or folder:PATH, got {text!r}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train a GAN on MNIST with minigan (or sample from a trained one). "
        "Flags left out take the model's default.",
    )
    add = p.add_argument
    add(
        "--model",
        choices=list(MODELS),
        help="which GAN: "
        + "; ".join(f"{name}: {cls.summary}" for name, cls in MODELS.items())
        + " (default: gan; on --resume, the run's own)",
    )
    add(
        "--preset",
        choices=list(PRESETS),
        help="with --model gan: 'default' (the best plain MLP GAN we found; the default), "
        "'ema' (the default before D judged pairs of images), 'label-smoothing' (the "
        "default before G's weights were averaged) or "
        "'classic' (the tutorial recipe), for comparison",
    )
    add(
        "--dataset",
        type=dataset_spec,
        help="mnist (the default), fashion (Fashion-MNIST) or folder:PATH (every PNG/JPEG "
        "under PATH, centre-cropped and resized to --image-size)",
    )
    add(
        "--image-size",
        type=positive_int,
        help=f"with --dataset folder:PATH: the side of the square images (default: "
        f"{FOLDER_IMAGE_SIZE}; --model dcgan takes 32 or 64)",
    )
    add("--backend", default="numpy", help="'numpy' (CPU, the default) or 'cupy' (GPU)")
    add(
        "--threads",
        type=positive_int,
        help="threads for NumPy's elementwise passes (default: as many as OpenBLAS has, when "
        "NumPy runs on OpenBLAS, which this script starts with OPENBLAS_THREAD_TIMEOUT=4 so "
        "that its idle threads sleep; else 1: see minigan/backend.py)",
    )
    add(
        "--epochs",
        type=positive_int,
        help=f"total epochs, counting those already done when resuming (default: "
        f"{Model.default_epochs}; "
        + ", ".join(
            f"{cls.default_epochs} for {name}"
            for name, cls in MODELS.items()
            if cls.default_epochs != Model.default_epochs
        )
        + ")",
    )
    add("--batch-size", type=positive_int, help=f"batch size {defaults('batch_size')}")
    add("--lr", type=positive_float, help=f"learning rate {defaults('lr')}")
    add(
        "--g-lr",
        type=positive_float,
        help=f"with --model dcgan: the generator's own learning rate (none: --lr) "
        f"{defaults('g_lr')}",
    )
    add(
        "--d-lr",
        type=positive_float,
        help="the discriminator's own learning rate, --lr staying G's (two time-scales, "
        "TTUR) " + defaults("d_lr", lambda c: "as --lr" if c.d_lr is None else c.d_lr),
    )
    add(
        "--ema",
        type=fraction,
        metavar="BETA",
        help="sample from a moving average of G's weights with decay BETA (0.999: about the "
        "last 1000 updates), saved in the checkpoint; 0 for none " + defaults("ema"),
    )
    add(
        "--minibatch-std",
        type=nonnegative_int,
        metavar="G",
        help="show D the spread of each group of G images (minibatch standard deviation, "
        "against mode collapse), or of the largest group below G that divides --batch-size "
        "/ --pack; "
        "0 for none " + defaults("minibatch_std"),
    )
    add(
        "--pack",
        type=positive_int,
        metavar="M",
        help="D judges M images at once, one score per pack (PacGAN, against mode "
        "collapse); --batch-size must be a multiple of M; 1 for one at a time " + defaults("pack"),
    )
    add(
        "--d-dropout",
        type=fraction,
        metavar="P",
        help="drop each of D's hidden units with probability P in training (Dropout); "
        "0 for none " + defaults("d_dropout"),
    )
    add(
        "--d-noise",
        type=nonnegative_float,
        metavar="STD",
        help="with --model dcgan: add N(0, STD^2) noise to every image D sees in training, "
        "real and fake (instance noise; it keeps D from winning outright on small folders); "
        "0 for none " + defaults("d_noise"),
    )
    add(
        "--d-augment",
        metavar="STEPS",
        help="with --model dcgan: DiffAugment every image D sees in training, real and fake: "
        "any of color,translation,cutout, comma-separated (for folders of a few hundred "
        "pictures); '' for none " + defaults("d_augment", lambda c: c.d_augment or "none"),
    )
    add(
        "--d-norm",
        choices=list(D_NORMS),
        help="with --model dcgan: what follows each of D's inner convolutions, 'batch' "
        "(BatchNorm, the paper's) or 'none' " + defaults("d_norm"),
    )
    add(
        "--d-fc-width",
        type=nonnegative_int,
        metavar="N",
        help="with --model dcgan: a fully connected hidden layer of N units before D's "
        "output (InfoGAN's D); 0 for none, the paper's D " + defaults("d_fc_width"),
    )
    add(
        "--g-fc-width",
        type=nonnegative_int,
        metavar="N",
        help="with --model dcgan: a fully connected hidden layer of N units (BatchNorm, "
        "ReLU) first in G, before z's projection (InfoGAN's G); 0 for none, the paper's G "
        + defaults("g_fc_width"),
    )
    add("--beta1", type=fraction, help=f"Adam beta1 {defaults('betas', lambda c: c.betas[0])}")
    add("--latent-dim", type=positive_int, help=f"size of z {defaults('latent_dim')}")
    add("--hidden", type=positive_int, help=f"hidden layer width {defaults('hidden')}")
    add(
        "--base-channels",
        type=positive_int,
        help=f"channels of D's first convolution and of the input of G's last up-sampling "
        f"block {defaults('base_channels')}",
    )
    add(
        "--g-full-res-channels",
        type=nonnegative_int,
        metavar="N",
        help="with --model dcgan: G's last transposed convolution makes N feature maps of "
        "the image's size, and a 3x3 convolution draws the image from them; 0: that last "
        "transposed convolution draws the image (the paper's G) " + defaults("g_full_res_channels"),
    )
    add(
        "--g-activation",
        choices=list(ACTIVATIONS),
        help=f"the generator's hidden activation {defaults('g_activation')}",
    )
    add(
        "--d-output",
        choices=["sigmoid", "logits"],
        help="D ends in Sigmoid and trains with BCELoss, or gives logits and trains with "
        "BCEWithLogitsLoss " + defaults("logits", lambda c: "logits" if c.logits else "sigmoid"),
    )
    add(
        "--generator-loss",
        choices=GENERATOR_LOSSES,
        help="'non_saturating': minimise -log D(G(z)); 'saturating': minimise "
        f"log(1 - D(G(z))) {defaults('generator_loss')}",
    )
    add(
        "--d-steps",
        type=positive_int,
        help=f"discriminator updates per generator update {defaults('d_steps')}",
    )
    add(
        "--n-critic",
        type=positive_int,
        help=f"critic updates per generator update {defaults('n_critic')}",
    )
    add("--clip", type=positive_float, help=f"WGAN's weight clipping bound {defaults('clip')}")
    add(
        "--gp-weight",
        type=positive_float,
        help=f"WGAN-GP's penalty weight lambda {defaults('gp_weight')}",
    )
    add(
        "--labels",
        type=positive_int,
        help=f"with --model sgan: how many labelled training images, 10 per digit, chosen by "
        f"the seed {defaults('labels')}",
    )
    add(
        "--label-smoothing",
        type=fraction,
        help="one-sided: train D towards 1 - S on real images, 0 for none "
        + defaults("real_label", lambda c: round(1 - c.real_label, 6)),
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
        "--overwrite",
        action="store_true",
        help="start a new run even though --out holds one, deleting that run's files first "
        "(only the files a run writes); with --sample: replace an existing --output/--grid",
    )
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
        "and class coverage (minigan.metrics; trains its MNIST or Fashion-MNIST classifier "
        "once, about 35 s on a 2-core CPU) and plot FID (default: 0, off)",
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
    add(
        "--label",
        type=int,
        choices=range(10),
        metavar="K",
        help="with --sample and a conditional model (cgan, acgan): draw only digit K "
        "(default: the digits 0-9 in turn, so the grid has one row per digit)",
    )
    add(
        "--output",
        help="with --sample: .npy file for float32 images in [0, 1], (N, H, W) grey or "
        "(N, H, W, 3) colour ((N, 28, 28) for MNIST)",
    )
    add("--grid", help="with --sample: also save the first 64 samples as this PNG")
    return p.parse_args(argv)


# --- configuration and checkpoints ----------------------------------------------------


# Each flag that sets a config field: argparse's name -> (the field, how the flag's value
# becomes the field's, given the config it changes). A flag is refused for a model whose
# config has no such field: --n-critic means nothing to the vanilla GAN.
CONFIG_FLAGS: dict[str, tuple[str, Callable[[Any, Any], Any] | None]] = {
    "batch_size": ("batch_size", None),
    "lr": ("lr", None),
    "g_lr": ("g_lr", None),
    "d_lr": ("d_lr", None),
    "ema": ("ema", None),
    "minibatch_std": ("minibatch_std", None),
    "pack": ("pack", None),
    "d_dropout": ("d_dropout", None),
    "d_noise": ("d_noise", None),
    "d_augment": ("d_augment", None),
    "d_norm": ("d_norm", None),
    "d_fc_width": ("d_fc_width", None),
    "g_fc_width": ("g_fc_width", None),
    "latent_dim": ("latent_dim", None),
    "hidden": ("hidden", None),
    "base_channels": ("base_channels", None),
    "g_full_res_channels": ("g_full_res_channels", None),
    "g_activation": ("g_activation", None),
    "generator_loss": ("generator_loss", None),
    "d_steps": ("d_steps", None),
    "n_critic": ("n_critic", None),
    "clip": ("clip", None),
    "gp_weight": ("gp_weight", None),
    "labels": ("labels", None),
    "d_output": ("logits", lambda value, base: value == "logits"),
    "beta1": ("betas", lambda value, base: (value, base.betas[1])),
    "label_smoothing": ("real_label", lambda value, base: 1.0 - value),
}


def flag_name(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def requested_config(args: argparse.Namespace, name: str, base: Any) -> dict[str, Any]:
    """The config fields the command line sets: a named preset's, then each flag given."""
    if args.preset is not None and name != "gan":
        raise TrainingError(f"--preset names a recipe of --model gan, not of --model {name}")
    fields = PRESETS[args.preset].to_dict() if args.preset is not None else {}
    base = PRESETS[args.preset] if args.preset is not None else base
    settings = {field.name for field in dataclasses.fields(base)}
    for dest, (field, convert) in CONFIG_FLAGS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if field not in settings:
            usable = [flag_name(d) for d, (f, _) in CONFIG_FLAGS.items() if f in settings]
            raise TrainingError(
                f"{flag_name(dest)} does not apply to --model {name}; its settings are "
                f"{', '.join(usable)}"
            )
        fields[field] = convert(value, base) if convert else value
    return fields


def require_gan_run(state: dict[str, Any], path: Path, keys: tuple[str, ...]) -> None:
    """A minigan checkpoint of something else (the metrics' classifier, say) is refused."""
    missing = [key for key in keys if key not in state]
    if missing:
        raise CheckpointError(
            f"{path} is a minigan checkpoint, but not of a run of examples/mnist_gan.py "
            f"(it holds {', '.join(sorted(state)) or 'nothing'}; no {', '.join(missing)}); "
            f"expected a run's OUT/checkpoint.npz"
        )


def saved_model_name(state: dict[str, Any]) -> str:
    """The model a checkpoint holds; checkpoints from before the GAN family hold a GAN."""
    return state["gan"].get("model", "gan")


def saved_image_shape(state: dict[str, Any]) -> tuple[int, int, int]:
    """One image's (channels, height, width) in a run; runs before --dataset were MNIST's."""
    return tuple(int(n) for n in state.get("image_shape", MNIST_SHAPE))


def config_from_checkpoint(state: dict[str, Any], path: Path) -> Any:
    name = saved_model_name(state)
    if name not in MODELS:
        raise CheckpointError(
            f"{path} holds a {name!r} model, which this version of minigan does not know"
        )
    config_class = MODELS[name].config_class
    # A field added after a checkpoint was saved gets the value that checkpoint trained with.
    legacy = getattr(config_class, "LEGACY_VALUES", {})
    try:
        return config_class(**{**legacy, **state["config"]})
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its config is unreadable ({error})") from None


def load_gan_state(gan: Model, state: dict[str, Any], path: Path) -> None:
    try:
        gan.load_state_dict(state["gan"])
    except (KeyError, ValueError, TypeError) as error:
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


def check_out_dir(out: Path) -> None:
    """Fail now, not after an epoch of training, if ``out`` cannot be written.

    Nothing is created here: the folder is made only when the first file goes in,
    so a run refused or failed before then leaves no empty folder behind.
    """
    existing = next(p for p in (out, *out.parents) if p.exists())
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not writable"
    if problem is not None:
        raise TrainingError(f"cannot write to --out {out}: {problem}")


def is_run_file(name: str) -> bool:
    return name in RUN_FILES or SAMPLE_GRID.fullmatch(name) is not None


def run_files(out: Path) -> list[Path]:
    """The files in ``out`` that a run wrote (never any other file)."""
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if p.is_file() and is_run_file(p.name))


def stale_temporary_files(out: Path) -> list[Path]:
    """atomic_write's temporary files for a run's files, left by a killed run."""
    if not out.is_dir():
        return []
    return sorted(
        p
        for p in out.iterdir()
        if p.is_file() and (m := TEMPORARY.fullmatch(p.name)) and is_run_file(m["name"])
    )


def refuse_to_replace_a_run(out: Path) -> None:
    """A new run into an --out holding a run would replace its checkpoint and history."""
    marks = [p.name for p in run_files(out) if p.name in ("checkpoint.npz", "history.jsonl")]
    grids = [p for p in run_files(out) if SAMPLE_GRID.fullmatch(p.name)]
    if grids:
        marks.append(f"{len(grids)} samples_epoch_*.png")
    if marks:
        raise TrainingError(
            f"--out {out} already holds a run ({', '.join(marks)}); a new run would replace "
            f"it. Pass --resume to continue that run, a new --out for a separate one, or "
            f"--overwrite to delete its files and start again"
        )


def remove_files(paths: list[Path], what: str) -> None:
    """Delete ``paths`` and say so in one line."""
    if not paths:
        return
    size = sum(p.stat().st_size for p in paths)
    for path in paths:
        path.unlink()
    print(f"removed {len(paths)} {what} ({size / 1e6:.1f} MB) from {paths[0].parent}")


def human_bytes(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux); None elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(needed: int, what: str) -> None:
    """Refuse, before any work, what cannot fit in the memory this machine has free."""
    available = available_memory()
    if available is not None and needed > available:
        raise TrainingError(
            f"{what} needs about {human_bytes(needed)} of memory, and this machine has "
            f"{human_bytes(available)} available; choose smaller sizes"
        )


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name one file (links included), existing or not."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


def unit_images(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> float32 in [0, 1], laid out as image files are:
    (N, H, W) for grey images, (N, H, W, 3) for colour."""
    unit = images.astype(np.float32)  # one copy, then in place: little memory per chunk
    unit += 1
    unit /= 2
    np.clip(unit, 0, 1, out=unit)
    return unit[:, 0] if unit.shape[1] == 1 else unit.transpose(0, 2, 3, 1)


def file_layout(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One image's shape as ``unit_images`` lays it out: (H, W), or (H, W, 3) in colour."""
    channels, height, width = shape
    return (height, width) if channels == 1 else (height, width, channels)


def generate_unit_images(
    gan: Model,
    z: Any,
    shape: tuple[int, ...] = MNIST_SHAPE,
    chunk: int = 1000,
    labels: Any = None,
) -> np.ndarray:
    """G(z) -> host float32 images in [0, 1] (see ``unit_images``), ``chunk`` at a time;
    ``shape`` is one image's (channels, height, width); a conditional model draws the
    digits ``labels`` (on the device)."""

    def images(i: int) -> Any:
        if labels is None:
            return gan.generate(z[i : i + chunk])
        return gan.generate(z[i : i + chunk], labels[i : i + chunk])

    batches = [to_host(images(i)) for i in range(0, len(z), chunk)]
    return unit_images(np.concatenate(batches).reshape(-1, *shape))


def digit_labels(backend: Any, n: int, label: int | None = None) -> Any:
    """The labels a conditional model is asked for: all ``label``, or 0-9 in turn."""
    labels = np.full(n, label) if label is not None else np.arange(n) % 10
    return backend.asarray(labels.astype(np.int64))


def by_digit(images: np.ndarray, per_digit: int = 8) -> np.ndarray:
    """The first ``per_digit`` images of each digit, when image i shows digit i % 10:
    reordered so that a grid of ``per_digit`` columns has one row per digit."""
    count = min(len(images), 10 * per_digit)
    order = np.argsort(np.arange(count) % 10, kind="stable")
    return images[order]


def save_history(history: list[dict[str, Any]], out: Path, labels: dict[str, str]) -> None:
    with atomic_write(out / "history.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in history)
    plot_history(history, out / "history.png", labels)


def write_samples(
    gan: Model,
    n: int,
    path: str | os.PathLike,
    shape: tuple[int, ...] = MNIST_SHAPE,
    chunk: int = SAMPLE_CHUNK,
    label: int | None = None,
) -> np.ndarray:
    """Write G's images for ``n`` fresh noise vectors to the .npy file ``path``.

    The file is float32 in [0, 1], (n, H, W) or (n, H, W, 3) (see ``unit_images``),
    written ``chunk`` images at a time after its .npy header, so any ``n`` needs the
    memory of one chunk; the noise is drawn chunk by chunk from one stream, which
    gives the same numbers as one draw. A conditional model draws digit ``label``,
    or sample i shows digit i % 10. Returns the first 64 images (80 for a conditional
    model: 8 of each digit), for --grid.
    """
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
              "fortran_order": False, "shape": (n, *file_layout(shape))}  # fmt: skip
    first = None
    with atomic_write(path) as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n, chunk):
            noise = gan.sample_noise(min(chunk, n - start))
            labels = None
            if gan.conditional:  # digit i % 10 (or --label) for sample i, whatever the chunk
                labels = digit_labels(gan.backend, len(noise), label)
                if label is None:
                    labels = (labels + start) % 10
            images = generate_unit_images(gan, noise, shape, chunk, labels)
            f.write(np.ascontiguousarray(images).tobytes())
            grid = 80 if gan.conditional else 64  # 8 of each digit, or 64 samples
            first = images[:grid] if first is None else first
    return first


# --- the two modes ---------------------------------------------------------------------


def check_sample_options(args: argparse.Namespace) -> None:
    """--sample's files: never write onto the checkpoint, each other or (unasked) a file."""
    if args.checkpoint is None or args.output is None:
        raise TrainingError("--sample needs --checkpoint PATH and --output FILE.npy")
    if args.resume:
        raise TrainingError("--resume continues training; --sample draws from --checkpoint")
    outputs = [("--output", args.output)] + ([("--grid", args.grid)] if args.grid else [])
    for flag, target in outputs:
        if same_file(target, args.checkpoint):
            raise TrainingError(
                f"{flag} {target} is the checkpoint being read (--checkpoint "
                f"{args.checkpoint}); writing it would destroy the model: choose another file"
            )
        if Path(target).exists() and not args.overwrite:
            raise TrainingError(
                f"{flag} {target} already exists; pass --overwrite to replace it, or "
                f"choose another file"
            )
        if not Path(target).parent.is_dir():
            raise TrainingError(
                f"cannot write {target}: the folder {Path(target).parent} does not exist"
            )
    if args.grid and same_file(args.output, args.grid):
        raise TrainingError(f"--output and --grid are one file ({args.output}); give two")


def sample(args: argparse.Namespace) -> str:
    check_sample_options(args)
    backend = get_backend(args.backend)
    path = Path(args.checkpoint)
    state = load_checkpoint(path)
    require_gan_run(state, path, ("gan", "config"))
    config = config_from_checkpoint(state, path)
    cls, shape = MODELS[saved_model_name(state)], saved_image_shape(state)
    check_memory(cls.memory_bytes(config, SAMPLE_CHUNK), f"sampling from {path}")
    size = args.sample * math.prod(shape) * 4  # float32
    free = shutil.disk_usage(Path(args.output).parent).free
    if size > free:
        raise TrainingError(
            f"--sample {args.sample} writes {human_bytes(size)} to {args.output}, and its "
            f"disk has {human_bytes(free)} free; ask for fewer samples or write elsewhere"
        )
    if args.model is not None and args.model != cls.name:
        raise TrainingError(
            f"{path} holds a {cls.name!r} model, not {args.model!r}: --sample draws from "
            f"the model a checkpoint holds; drop --model"
        )
    if args.label is not None and not cls.conditional:
        raise TrainingError(
            f"--label asks a conditional model (cgan, acgan) for a digit; {path} holds a "
            f"{cls.name!r} model, which draws whatever digit it likes"
        )
    gan = cls(config, backend, seed=args.seed or 0)
    load_gan_state(gan, state, path)
    written = []
    try:
        first = write_samples(gan, args.sample, args.output, shape, label=args.label)
        written.append(args.output)
        if args.grid:
            one_row_per_digit = cls.conditional and args.label is None
            save_image_grid(by_digit(first) if one_row_per_digit else first[:64], args.grid)
    except KeyboardInterrupt:
        raise Interrupted(
            f"{written[0]} was written, --grid was not" if written else "nothing was written"
        ) from None
    layout = (args.sample, *file_layout(shape))
    return f"wrote {args.sample} samples, float32 {layout} in [0, 1], to {args.output}"


def resume_command(args: argparse.Namespace, out: Path) -> str:
    """The command that continues this run, with the flags a checkpoint does not keep."""
    words = ["python", os.path.relpath(__file__), "--resume", "--out", str(out)]
    for flag in (
        "epochs",
        "backend",
        "threads",
        "data_dir",
        "log_every",
        "eval_every",
        "eval_samples",
    ):
        value = getattr(args, flag)
        if value is not None and value != PARSER_DEFAULTS.get(flag):
            words += [f"--{flag.replace('_', '-')}", str(value)]
    return shlex.join(words)


def kept(checkpoint_path: Path, epoch: int | None) -> str:
    """What a stopped run leaves: the sentence every failure message ends with."""
    if epoch is None:
        return "No epoch finished, so no checkpoint was saved"
    return f"The checkpoint from epoch {epoch} ({checkpoint_path}) is kept"


class Plan:
    """What a training run will do, settled from the flags (and a resumed checkpoint)
    before any work starts.

    model: a key of MODELS; config: the model's config; dataset: mnist, fashion or
    folder:PATH; image_shape: one image's (channels, height, width); train_size: the
    first N images (None: all of a folder's).
    """

    def __init__(
        self,
        model: str,
        config: Any,
        dataset: str,
        image_shape: tuple[int, int, int],
        seed: int,
        epochs: int,
        train_size: int | None,
    ):
        self.model, self.config, self.dataset = model, config, dataset
        self.image_shape, self.seed, self.epochs = image_shape, seed, epochs
        self.train_size = train_size

    @property
    def model_class(self) -> type[Model]:
        return MODELS[self.model]


def chosen_epochs(args: argparse.Namespace, cls: type[Model]) -> int:
    """--epochs, or the model's own default (DCGAN's steps cost more than an MLP's)."""
    return args.epochs if args.epochs is not None else cls.default_epochs


def plan_new_run(args: argparse.Namespace) -> Plan:
    name, dataset = args.model or "gan", args.dataset or "mnist"
    cls = MODELS[name]
    epochs = chosen_epochs(args, cls)
    base = cls.default_config()
    config = dataclasses.replace(base, **requested_config(args, name, base))
    if cls.labelled and dataset not in DATASETS:
        raise TrainingError(
            f"--model {name} learns from digit labels, and {dataset} has none: "
            f"use --dataset mnist or fashion"
        )
    if dataset in DATASETS:
        if args.image_size not in (None, 28):
            raise TrainingError(
                f"--image-size {args.image_size}: {dataset} images are 28x28; --image-size "
                f"resizes the pictures of --dataset folder:PATH"
            )
        shape = MNIST_SHAPE
        train_size = min(args.train_size or MNIST_TRAIN_IMAGES, MNIST_TRAIN_IMAGES)
    else:
        folder = Path(dataset.removeprefix("folder:")).expanduser()
        if not folder.is_dir():
            raise TrainingError(
                f"--dataset {dataset}: no folder at {folder}; give a folder of PNG/JPEG images"
            )
        size = args.image_size or FOLDER_IMAGE_SIZE
        shape = (3, size, size)  # until the pictures are read: grey ones give 1 channel
        train_size = args.train_size
    try:
        config = cls.config_for_images(config, shape)
    except ValueError as error:
        raise TrainingError(f"--model {name} cannot train on {dataset}: {error}") from None
    seed = args.seed if args.seed is not None else 0
    return Plan(name, config, dataset, shape, seed, epochs, train_size)


def plan_resumed_run(args: argparse.Namespace, state: dict[str, Any], path: Path) -> Plan:
    """The run ``state`` holds, after checking that no flag asks to change it."""
    config = config_from_checkpoint(state, path)
    name, dataset = saved_model_name(state), state.get("dataset", "mnist")
    epochs = chosen_epochs(args, MODELS[name])
    saved = {**config.to_dict(), "seed": state.get("seed"), "model": name, "dataset": dataset}
    requested = requested_config(args, name, config)
    for key in ("seed", "model", "dataset"):
        if getattr(args, key) is not None:
            requested[key] = getattr(args, key)
    refuse_changes(saved, requested, path)
    shape = saved_image_shape(state)
    if args.image_size not in (None, shape[1]):
        raise TrainingError(
            f"{path} was trained on {shape[1]}x{shape[2]} images, --image-size "
            f"{args.image_size} asks for another size; --resume continues that run unchanged"
        )
    trained_on = int(state["loader"]["num_examples"])
    if args.train_size is not None and args.train_size != trained_on:
        raise TrainingError(
            f"{path} was trained on {trained_on} images, --train-size "
            f"{args.train_size} asks for another number; --resume continues that run "
            f"unchanged: drop --train-size"
        )
    return Plan(name, config, dataset, shape, int(saved["seed"]), epochs, trained_on)


def train(args: argparse.Namespace) -> str:
    # Every option is checked first: nothing is loaded, created or deleted before.
    out = Path(args.out)
    if args.checkpoint or args.output or args.grid:
        raise TrainingError("--checkpoint, --output and --grid go with --sample N")
    if args.resume and args.overwrite:
        raise TrainingError(
            "--resume continues the run in --out, --overwrite deletes it: give one of them"
        )
    check_out_dir(out)
    backend = get_backend(args.backend)
    checkpoint_path = out / "checkpoint.npz"
    state = None
    if args.resume:
        state = load_checkpoint(checkpoint_path)
        require_gan_run(state, checkpoint_path, ("gan", "config", "loader", "history", "epoch"))
        plan = plan_resumed_run(args, state, checkpoint_path)
        epochs, done = plan.epochs, int(state["epoch"])
        if done > epochs:
            raise TrainingError(
                f"{checkpoint_path} is already past epoch {epochs}: it finished epoch {done}; "
                f"nothing was done. --epochs counts every epoch, those done included: pass "
                f"--epochs {done + 1} or more to train on"
            )
        if done == epochs:
            return (
                f"nothing to do: {checkpoint_path} already finished epoch {done} of {epochs}; "
                f"pass a larger --epochs to train on"
            )
    else:
        if not args.overwrite:
            refuse_to_replace_a_run(out)
        plan = plan_new_run(args)
    config = plan.config
    if plan.train_size is not None:
        check_batch_fits(config, plan.train_size)
    eval_samples = 0
    if args.eval_every > 0:
        from minigan.metrics.evaluator import MIN_SAMPLES

        if plan.dataset not in DATASETS:
            raise TrainingError(
                f"--eval-every scores samples through a classifier of MNIST or "
                f"Fashion-MNIST (FID, Inception Score, classes covered): it has no "
                f"classifier for {plan.dataset}, so it works with --dataset mnist or "
                f"fashion only"
            )
        if args.eval_samples < MIN_SAMPLES:
            raise TrainingError(
                f"--eval-samples {args.eval_samples}: the scores need at least {MIN_SAMPLES} "
                f"samples, and FID is reliable from about 256 (10000 is the usual number)"
            )
        eval_samples = args.eval_samples
    if backend.name == "numpy" and plan.train_size is not None:  # a GPU's memory is its own
        image_bytes = math.prod(plan.image_shape) * 4  # float32
        data_bytes = MNIST_TRAIN_IMAGES * 28 * 28 + plan.train_size * image_bytes
        check_memory(
            plan.model_class.memory_bytes(config, config.batch_size)
            + data_bytes
            + 2 * eval_samples * image_bytes,
            f"training ({size_setting(config)}, --batch-size {config.batch_size}, "
            f"--train-size {plan.train_size}, --eval-samples {eval_samples})",
        )

    saved = Saved(int(state["epoch"]) if state is not None else None)
    try:
        return train_checked(args, out, backend, plan, state, saved)
    except KeyboardInterrupt:
        how = f"; continue with: {resume_command(args, out)}" if saved.epoch else ""
        raise Interrupted(f"{kept(checkpoint_path, saved.epoch)}{how}") from None
    except Diverged as error:
        advice = (
            "lower --lr"
            if getattr(config, "logits", True)
            else (
                "lower --lr, or train D on logits with BCEWithLogitsLoss (--d-output logits, "
                "as the default preset does)"
            )
        )
        raise TrainingError(f"{error}. {kept(checkpoint_path, saved.epoch)}: {advice}") from None


def size_setting(config: Any) -> str:
    """The flag that sets the networks' size, with its value: for messages."""
    if hasattr(config, "hidden"):
        return f"--hidden {config.hidden}"
    return f"--base-channels {config.base_channels}"


def check_batch_fits(config: Any, train_size: int) -> None:
    if config.batch_size > train_size:
        raise TrainingError(
            f"--batch-size {config.batch_size} is more than the {train_size} training images "
            f"(--train-size): not one full batch; lower --batch-size or raise --train-size"
        )


class Saved:
    """The epoch whose checkpoint --out holds (None: none yet), for a stopped run's message."""

    def __init__(self, epoch: int | None):
        self.epoch = epoch


def load_training_images(
    plan: Plan, data_dir: str | None, split: str = "train"
) -> tuple[np.ndarray, np.ndarray | None]:
    """The run's images, float32 (N, C, H, W) in [-1, 1] on the host, and their labels
    (int64 (N,); None for a folder of pictures)."""
    if plan.dataset in DATASETS:
        load = load_mnist if plan.dataset == "mnist" else load_fashion_mnist
        images, labels = load(split, root=data_dir)
        n = plan.train_size if split == "train" else None
        return to_gan_range(images[:n], flatten=False), labels[:n].astype(np.int64)
    folder = Path(plan.dataset.removeprefix("folder:")).expanduser()
    return load_image_folder(folder, plan.image_shape[1])[: plan.train_size], None


def train_checked(
    args: argparse.Namespace,
    out: Path,
    backend: Any,
    plan: Plan,
    state: dict[str, Any] | None,
    saved: Saved,
) -> str:
    """Train, the options being checked: load the data, then write only into ``out``."""
    checkpoint_path = out / "checkpoint.npz"
    images, labels = load_training_images(plan, args.data_dir)
    if images.shape[1:] != plan.image_shape:  # a folder of grey pictures: one channel
        plan.image_shape = images.shape[1:]
        plan.config = plan.model_class.config_for_images(plan.config, plan.image_shape)
    config, seed, epochs = plan.config, plan.seed, plan.epochs
    check_batch_fits(config, len(images))
    gan = plan.model_class(config, backend, seed=seed)
    x = images.reshape(len(images), *gan.image_shape)  # flat rows for the MLPs
    # A conditional model trains on (images, labels) batches; SGAN keeps its few labels.
    data = (x, labels) if gan.conditional else (x,)
    loader = BatchIterator(*data, batch_size=config.batch_size, seed=seed, backend=backend)
    if gan.labelled:
        check_labels("the training labels", labels)  # once, here: never inside a step
    if gan.labelled and not gan.conditional:  # SGAN: choose its few labelled images (a
        gan.set_labelled(backend.asarray(x), labels)  # resumed run loads its own choice)
    test_set = None
    if plan.model_class.name == "sgan":  # it is a classifier too: report its test error
        test_images, test_labels = load_training_images(plan, args.data_dir, "test")
        test_set = (backend.asarray(test_images.reshape(len(test_images), -1)), test_labels)
    # The same noise every epoch, so the sample grids show one model changing; a
    # conditional model draws 8 of each digit (one grid row per digit, one z per column).
    fixed_z = backend.asarray(
        np.random.default_rng([seed, 1]).standard_normal((64, config.latent_dim)),
        dtype=np.float32,
    )
    fixed_labels = None
    if gan.conditional:
        fixed_z = backend.xp.concatenate([fixed_z[:8]] * 10)
        fixed_labels = backend.asarray(by_digit(np.arange(80) % 10))  # 0 x 8, 1 x 8, ...

    evaluator, eval_z, eval_labels = None, None, None
    if args.eval_every > 0:
        # Imported only when asked for: it may train its classifier first.
        from minigan.metrics import Evaluator, label_accuracy

        evaluator = Evaluator.load_or_train(
            data_root=args.data_dir, backend=backend, dataset=plan.dataset
        )
        # Fixed noise again: scores at different epochs measure one model changing.
        eval_z = backend.asarray(
            np.random.default_rng([seed, 2]).standard_normal(
                (args.eval_samples, config.latent_dim)
            ),
            dtype=np.float32,
        )
        if gan.conditional:
            eval_labels = digit_labels(backend, args.eval_samples)  # 0-9 in turn

    # Only now is anything written, deleted or created in --out.
    if args.overwrite:
        remove_files(run_files(out), "files of the earlier run (--overwrite)")
    remove_files(stale_temporary_files(out), "temporary files left by an interrupted run")
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if state is not None:
        load_gan_state(gan, state, checkpoint_path)
        loader.load_state_dict(state["loader"])
        history, start_epoch = state["history"], int(state["epoch"])
        print(f"resuming {checkpoint_path} after epoch {start_epoch}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        save_image_grid(unit_images(images[:64]), out / "real.png")

    def save() -> None:
        save_history(history, out, plan.model_class.stats)
        save_checkpoint(checkpoint_path, {
            "gan": gan.state_dict(), "loader": loader.state_dict(), "history": history,
            "epoch": epoch + 1, "config": config.to_dict(), "seed": seed,
            "dataset": plan.dataset, "image_shape": list(plan.image_shape),
        })  # fmt: skip
        saved.epoch = epoch + 1

    started = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        gan.reseed_noise(seed * 1_000_003 + epoch)  # resumable at any epoch boundary
        history += train_epoch(gan, loader, epoch, epochs, args.log_every)
        grid = generate_unit_images(gan, fixed_z, plan.image_shape, labels=fixed_labels)
        save_image_grid(grid, out / f"samples_epoch_{epoch + 1:03d}.png")
        if test_set is not None:
            error = gan.error_rate(*test_set)
            history.append({"epoch": epoch + 1, "test_error": error})
            tqdm.write(f"epoch {epoch + 1}: test error of D as a classifier {error:.2%}")
        save()  # before evaluating: a failed evaluation never costs the epoch
        if evaluator is not None and ((epoch + 1) % args.eval_every == 0 or epoch + 1 == epochs):
            samples = generate_unit_images(gan, eval_z, plan.image_shape, labels=eval_labels)
            scores = evaluator.evaluate(samples)
            if gan.conditional:  # did it draw the digit it was asked for?
                accuracy = label_accuracy(evaluator, samples, to_host(eval_labels))
                scores["label_accuracy"] = [round(float(a), 4) for a in accuracy]
                tqdm.write(f"epoch {epoch + 1}: label accuracy per digit {accuracy.round(3)}")
            history.append({"epoch": epoch + 1, **scores})
            tqdm.write(
                f"epoch {epoch + 1}: FID {scores['fid']:.1f}, Inception Score "
                f"{scores['inception_score']:.2f}, {scores['classes_covered']}/10 classes"
            )
            save()
    minutes, seconds = divmod(round(time.perf_counter() - started), 60)
    return (
        f"done: epoch {epochs} of {epochs} ({minutes} min {seconds} s this run); samples, "
        f"history.png and checkpoint.npz are in {out}"
    )


def train_epoch(gan: Model, loader: BatchIterator, epoch: int, epochs: int, log_every: int):
    """Train one epoch; return its logged rows. Raises TrainingError on NaN/inf."""
    rows = []
    steps = len(loader)
    totals: dict[str, Any] = {}  # figures summed on the device since the last log line
    counts: dict[str, int] = {}
    bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{epochs}", leave=True)
    for step, batch in enumerate(bar):
        batch = batch if isinstance(batch, tuple) else (batch,)  # (images, labels): cgan
        for key, value in gan.train_step(*batch).items():
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
                raise Diverged(
                    f"{' and '.join(bad)} became {row[bad[0]]} at epoch {epoch + 1}, step "
                    f"{first + 1}-{step + 1} of {steps} (global step {gan.steps - step + first}"
                    f"-{gan.steps}); training stopped"
                )
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()}, refresh=False)
            rows.append({"epoch": epoch + (step + 1) / steps, **row})
    return rows


PARSER_DEFAULTS = vars(parse_args([]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads_before = get_num_threads()  # a process-wide setting: restored on the way out
    set_num_threads(args.threads or threads_worth_using())
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
    except Interrupted as why:
        print(f"interrupted: {why}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # while the options were being checked
        print("interrupted before anything was written", file=sys.stderr)
        return 130
    finally:
        set_num_threads(threads_before)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
