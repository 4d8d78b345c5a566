"""Training runs of ``examples/mnist_gan.py``: the run folder, the plan, resuming, sampling.

A run lives in one folder (``--out``): ``checkpoint.npz``, ``history.jsonl`` and
``history.png``, ``real.png`` and a grid per epoch, ``samples_epoch_NNN.png``
(``RUN_FILES``). The rules that keep a person from losing one:

- a run owns its folder (``own_folder``): a lock file, ``.minigan.lock``, held from
  before the first check to the last write, so a second run (new, ``--resume`` or
  ``--overwrite``) into the same folder is refused, naming the first;
- every option is checked before any work starts (``plan_training``): nothing is
  loaded or deleted before, so a refused run leaves nothing behind, not even an
  empty folder; sizes that cannot fit in memory are refused there too;
- a new run never replaces another: an ``--out`` holding a run is refused unless the
  run is resumed or ``--overwrite`` is given, which deletes only a run's own files
  (and the temporary files of a killed run; a person's own files stay);
- nothing but a regular file is ever written or deleted: a link, a FIFO or a device
  where a run's file goes is refused (``minigan.files.check_regular``);
- a resumed run is the same run: flags that would change it are refused
  (``refuse_changes``), and a checkpoint from an older minigan is upgraded first
  (``minigan.checkpoint.upgrade``);
- sampling never writes onto the checkpoint it reads, a run's files, nor, unasked,
  onto a file.

Every refusal is a ``RunError`` whose message says, in one line, what happened and
what to do.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import math
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minigan import captioned, cli, plane, stacked, unpaired
from minigan.backend import Backend, get_backend
from minigan.captions import CaptionScheme
from minigan.checkpoint import (
    CheckpointError,
    check_run_state,
    load_checkpoint,
    run_state_bytes,
    upgrade,
)
from minigan.data import (
    available_memory,
    check_data_folder,
    human_bytes,
    load_fashion_mnist,
    load_mnist,
    to_gan_range,
)
from minigan.files import WriteError, atomic_write, describe, stale_temporaries
from minigan.images import by_digit, file_layout, load_image_folder, write_samples
from minigan.models import MODELS, PRESETS, Model
from minigan.models.points import RECIPES
from minigan.plotting import plot_history, save_image_grid

MNIST_TRAIN_IMAGES = 60000  # Fashion-MNIST has as many
MNIST_SHAPE = (1, 28, 28)  # one image: (channels, height, width)
DATASETS = ("mnist", "fashion")  # and folder:PATH
FOLDER_IMAGE_SIZE = 32  # --image-size's default for folder:PATH
SAMPLE_CHUNK = 1000  # --sample generates and writes this many images at a time
EVAL_SAMPLES = 10000  # --eval-every's samples when not told (a 2-D task: the papers' 2,500)

# The files a run writes into --out. Only these (and atomic_write's temporary files
# of killed processes) are ever deleted, by --overwrite; a user's own files there are left alone.
RUN_FILES = ("checkpoint.npz", "history.jsonl", "history.png", "real.png", "frames.gif")
SAMPLE_GRID = re.compile(r"samples_epoch_\d{3,}\.png")
LOCK = ".minigan.lock"  # held by the run using the folder (own_folder); no run file
# A logged figure beyond this is an explosion (--lr 1e6 takes D's loss to 1e22): every
# figure a model logs is O(1) in a normal run, O(10) at most. Cross-entropies of
# probabilities, squared errors of targets 0 and 1 and D's outputs stay below a few units;
# WGAN's critic values have no bound, but the clip (WGAN) or the penalty (WGAN-GP) holds
# the critic's slope near 1 on images in [-1, 1], so its estimates stay in the tens.
# Four orders of magnitude above that, no healthy run comes near it.
EXPLODED = 1e6
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# What a resumed run reads from its checkpoint; what sampling reads.
RUN_KEYS = ("gan", "config", "loader", "history", "epoch")
MODEL_KEYS = ("gan", "config")


class RunError(RuntimeError):
    """A run cannot start or go on; the message says why and what to do."""


class Diverged(RunError):
    """A logged figure became NaN or infinite, or exploded (beyond ``EXPLODED``)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler's stop), raised as Ctrl-C is (``on_sigterm``)."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM; the message says what was kept and how to go on.

    ``code``: the exit status, 130 for Ctrl-C (SIGINT) and 143 for SIGTERM: 128 + the
    signal's number, as a shell reports a process the signal ended, so a script or a
    scheduler still sees which one stopped the run (it is said, cleanly, either way).
    """

    def __init__(self, message: str, stop: BaseException | None = None):
        super().__init__(message)
        self.sigterm = isinstance(stop, Terminated)
        self.code = 143 if self.sigterm else 130

    def line(self) -> str:
        return f"interrupted{' by SIGTERM' if self.sigterm else ''}: {self}"


@contextlib.contextmanager
def on_sigterm() -> Iterator[None]:
    """While inside, SIGTERM raises ``Terminated`` (a KeyboardInterrupt) in the main
    thread, so it stops a run as Ctrl-C does: every ``finally`` runs, the lock is
    released, and the script says what was kept. Elsewhere (another thread, or a
    SIGTERM that the parent process chose to ignore or handle) a no-op."""
    mine = threading.current_thread() is threading.main_thread()
    if not mine or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextlib.contextmanager
def one_line_warnings(prefix: str = "") -> Iterator[None]:
    """Warnings print as ``PREFIXwarning: message``, one line like the errors, instead of
    Python's "file:line: UserWarning: message" and the source line under it."""
    shown = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"{prefix}warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = shown


def exit_status(work: Callable[[], str], errors: tuple[type[BaseException], ...]) -> int:
    """Run a script's ``work`` and print how it ended; the process's exit status.

    Its result printed: 0. One of ``errors`` (a failure the message explains): the line
    ``error: ...``, 1. Ctrl-C or SIGTERM (which stops as Ctrl-C does, ``on_sigterm``):
    what was kept and how to go on, 130 or 143. Warnings print as one line meanwhile.
    """
    try:
        with on_sigterm(), one_line_warnings():
            print(work())
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as stop:  # the latter: before any work
        why = stop if isinstance(stop, Interrupted) else Interrupted("nothing was written", stop)
        print(why.line(), file=sys.stderr)
        return why.code  # 130 for Ctrl-C, 143 for SIGTERM
    return 0


# --- the run folder ------------------------------------------------------------------------


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
        raise RunError(f"cannot write to --out {out}: {problem}")


def is_run_file(name: str) -> bool:
    return name in RUN_FILES or SAMPLE_GRID.fullmatch(name) is not None


def run_files(out: Path) -> list[Path]:
    """The regular files in ``out`` that a run wrote (never any other file)."""
    if not out.is_dir():
        return []
    return sorted(
        Path(e.path)
        for e in os.scandir(out)
        if e.is_file(follow_symlinks=False) and is_run_file(e.name)
    )


def check_run_file_types(out: Path) -> None:
    """Refuse a run whose files would replace a link, a FIFO, a device or a folder: a
    run writes (and --overwrite deletes) regular files only."""
    if not out.is_dir():
        return
    for entry in sorted(os.scandir(out), key=lambda e: e.name):
        what = describe(entry.path) if is_run_file(entry.name) or entry.name == LOCK else None
        if what is not None:
            raise RunError(
                f"--out {out}: its {entry.name} is {what}, not a regular file, and a run "
                f"writes (or --overwrite deletes) regular files only: move it away, or "
                f"choose another --out"
            )


def stale_temporary_files(out: Path) -> list[Path]:
    """atomic_write's temporary files in ``out`` whose writer is gone (a killed run or
    --sample): only names that carry minigan's mark and a process id, never a person's."""
    return stale_temporaries(out)


def old_temporary_files(out: Path) -> list[Path]:
    """Files named like an older minigan's temporaries of a run's files
    (``.checkpoint.npz.XXXXXXXX.tmp``): such a name carries no mark, so a person's file
    can have it too; they are named to the user, never deleted."""
    everything = stale_temporaries(out, old_style_for=is_run_file)
    return [p for p in everything if p not in set(stale_temporaries(out))]


def temporaries_note(out: Path) -> str:
    """The temporary files a killed run left in ``out``, for messages ('' if none)."""
    left = stale_temporary_files(out)
    if not left:
        return ""
    size = sum(p.stat().st_size for p in left)
    return (f"; and {len(left)} temporary file{'s' if len(left) > 1 else ''} "
            f"({human_bytes(size)}: {left[0].name}{', ...' if len(left) > 1 else ''}) of a "
            f"write that was cut off")  # fmt: skip


def refuse_to_replace_a_run(out: Path) -> None:
    """A new run into an --out holding a run would replace its checkpoint and history."""
    files = run_files(out)
    marks = [p.name for p in files if p.name in ("checkpoint.npz", "history.jsonl")]
    grids = [p for p in files if SAMPLE_GRID.fullmatch(p.name)]
    if grids:
        marks.append(f"{len(grids)} samples_epoch_*.png")
    if marks and "checkpoint.npz" not in marks:  # stopped before its first checkpoint
        raise RunError(
            f"--out {out} holds a run that saved no checkpoint ({', '.join(marks)}"
            f"{temporaries_note(out)}): it stopped (killed, or the disk full) before its "
            f"first checkpoint was written, so there is nothing to resume. Pass --overwrite "
            f"to delete its files and start again, or a new --out"
        )
    if marks:
        raise RunError(
            f"--out {out} already holds a run ({', '.join(marks)}); a new run would replace "
            f"it. Pass --resume to continue that run, a new --out for a separate one, or "
            f"--overwrite to delete its files and start again"
        )


def check_resumable(out: Path) -> None:
    """--resume needs OUT/checkpoint.npz: say what is there instead, and what to do."""
    checkpoint = out / "checkpoint.npz"
    if os.path.lexists(checkpoint):
        return  # load_checkpoint judges it
    if any(p.name != "real.png" for p in run_files(out)):
        refuse_to_replace_a_run(out)  # a run that stopped before its first checkpoint
    raise RunError(
        f"--resume: no checkpoint at {checkpoint}, and no run was saved in --out {out}; "
        f"start a new run without --resume"
    )


def remove_files(paths: list[Path], what: str) -> None:
    """Delete ``paths`` and say so in one line ("removed 2 {what} (1.0 MB) from FOLDER")."""
    if not paths:
        return
    size = sum(p.lstat().st_size for p in paths)
    for path in paths:
        path.unlink()
    what = what.replace("files", "file", 1) if len(paths) == 1 else what
    print(f"removed {len(paths)} {what} ({size / 1e6:.1f} MB) from {paths[0].parent}")


def prepare_folder(out: Path, overwrite: bool) -> None:
    """Just before a run writes into ``out``: with ``overwrite``, delete the earlier run's
    files; and the temporary files a killed process left (``stale_temporary_files``)."""
    left, old = stale_temporary_files(out), old_temporary_files(out)
    if overwrite:
        remove_files(run_files(out), "files of the earlier run (--overwrite)")
    remove_files(left, "temporary files left by an interrupted run")
    if old:
        names = ", ".join(p.name for p in old[:3]) + (", ..." if len(old) > 3 else "")
        print(f"note: {len(old)} file{'s' if len(old) > 1 else ''} in {out} named like an "
              f"older minigan's temporary files ({names}) left alone: delete them if they "
              f"are not yours")  # fmt: skip


# --- the lock: one run per folder ------------------------------------------------------------


def _holder(fd: int) -> dict[str, Any] | None:
    """What a lock file says of the run that took it (pid, started, command); None if empty."""
    try:
        text = os.pread(fd, 4096, 0).decode()
        if not text.strip():
            return None
        holder = json.loads(text)
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _who(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "a process that has not said which yet"
    return f"pid {holder.get('pid')}, started {holder.get('started')}: {holder.get('command')}"


def _take_lock(out: Path) -> int:
    """Lock ``out``'s lock file (flock: the system lets go when the process ends, however
    it ends, so a lock can never be left held by a dead run); its open descriptor."""
    import fcntl  # POSIX only; own_folder does without it elsewhere

    path = out / LOCK
    for _ in range(10):  # the file can vanish as its holder lets go: then look again
        what = describe(path)
        if what is not None:
            raise RunError(f"--out {out}: {path}, minigan's lock file, is {what}; remove it")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunError(
                f"--out {out} is in use by a run still going ({_who(holder)}); wait for it "
                f"to end or stop it, or choose another --out"
            ) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:  # we locked a file its last holder had just removed
            os.close(fd)
            continue
        left = _holder(fd)
        if left is not None:  # written by a run that could not remove it: it was killed
            print(f"note: the run that last used {out} ({_who(left)}) was killed without "
                  f"letting go of its lock, {path}; taking it over")  # fmt: skip
        command = shlex.join([Path(sys.executable).name, *sys.argv])
        mine = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": command}  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(mine) + "\n").encode(), 0)
        return fd
    raise RunError(f"--out {out}: could not take its lock file {path}; try again")


@contextlib.contextmanager
def own_folder(out: Path) -> Iterator[None]:
    """Hold the run folder ``out`` while inside: no other run may use it meanwhile.

    Its lock file, ``out/.minigan.lock``, is taken before any check or write and let go
    on every way out (return, error, Ctrl-C, SIGTERM through ``on_sigterm``): removed
    while still locked, then unlocked, so a run waiting for it never holds a removed
    file. A run killed outright (SIGKILL) leaves the file but not the lock (the system
    lets go of an flock when its process dies); the next run says so and takes it.
    A folder made here and left empty (a refused run) is removed again. Without
    ``fcntl`` (Windows) there is no lock.
    """
    check_out_dir(out)
    made = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    fd = None
    try:
        try:
            fd = _take_lock(out)
        except ImportError:
            pass
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(out / LOCK)
            os.close(fd)
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # not empty: the run wrote into it
                break


def save_history(history: list[dict[str, Any]], out: Path, labels: dict[str, str]) -> None:
    """history.jsonl (one row per line) and its plot, history.png."""
    with atomic_write(out / "history.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in history)
    plot_history(history, out / "history.png", labels)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name one file (links included), existing or not."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


# --- memory ----------------------------------------------------------------------------------


def check_memory(needed: int, what: str) -> None:
    """Refuse, before any work, what cannot fit in the memory this machine has free."""
    available = available_memory()
    if available is not None and needed > available:
        raise RunError(
            f"{what} needs about {human_bytes(needed)} of memory, and this machine has "
            f"{human_bytes(available)} available; choose smaller sizes"
        )


def size_setting(config: Any) -> str:
    """The flag that sets the networks' size, with its value: for messages."""
    for field in ("hidden", "base_channels", "g2_channels"):  # MLPs; convolutions; StackGAN's
        if hasattr(config, field):
            return f"--{field.replace('_', '-')} {getattr(config, field)}"
    raise AttributeError(f"{type(config).__name__} names no size field")


def sizes_given(args: argparse.Namespace, cls: type[Model], config: Any) -> list[str]:
    """The size flags the command line gave that the memory estimate depends on
    ("--latent-dim 100000000"): each given integer setting whose doubling raises
    ``cls.memory_bytes``. For the memory message, which names what a person chose."""
    named = []
    for flag, value in cli.given(args, cli.family_flags()):
        current = getattr(config, flag.field, None)
        if flag.convert is not None or isinstance(current, bool) or not isinstance(current, int):
            continue
        try:
            bigger = dataclasses.replace(config, **{flag.field: 2 * current})
            grows = cls.memory_bytes(bigger, bigger.batch_size) > cls.memory_bytes(
                config, config.batch_size
            )
        except (ValueError, TypeError):  # a size the config refuses: name it, to be safe
            grows = True
        if grows:
            named.append(f"{flag.name} {value}")
    return named


# --- checkpoints of runs ---------------------------------------------------------------------


def load_run(path: Path, keys: tuple[str, ...] = RUN_KEYS) -> dict[str, Any]:
    """A run's checkpoint, upgraded to today's layout (``minigan.checkpoint.upgrade``);
    a minigan checkpoint of something else (the metrics' classifier, say) is refused."""
    state = load_checkpoint(path, max_bytes=run_state_bytes)
    missing = [key for key in keys if key not in state]
    if missing:
        raise CheckpointError(
            f"{path} is a minigan checkpoint, but not of a run of examples/mnist_gan.py "
            f"(it holds {', '.join(sorted(state)) or 'nothing'}; no {', '.join(missing)}); "
            f"expected a run's OUT/checkpoint.npz"
        )
    return check_run_state(upgrade(state), path, keys)


def config_from_checkpoint(state: dict[str, Any], path: Path) -> Any:
    """The config an (upgraded) run state was trained with."""
    name = state["gan"]["model"]
    if name not in MODELS:
        raise CheckpointError(
            f"{path} holds a {name!r} model, which this version of minigan does not know"
        )
    try:
        return MODELS[name].config_class(**state["config"])
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


def load_loader_state(loader: Any, state: dict[str, Any], path: Path) -> None:
    """The data order of a resumed run (``BatchIterator.load_state_dict``), its failure
    named with the checkpoint and the field."""
    try:
        loader.load_state_dict(state["loader"])
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(
            f"{path}: loader ({error}): it was changed or damaged; start a new run"
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


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a training run will do, settled from the flags (and a resumed checkpoint)
    before any work starts.

    model: a key of MODELS; config: the model's config; dataset: mnist, fashion,
    folder:PATH (a translation model's domain A), 2d-ring, 2d-grid or stacked-mnist;
    dataset_b: a translation model's domain B (minigan/unpaired.py; None for the other models); image_shape: one image's (channels, height, width); train_size: the
    first N images (None: all of a folder's); out: the run's folder; state: the resumed
    run's checkpoint (None: a new run), which finished epoch ``start_epoch``;
    eval_samples: how many samples --eval-every scores (0: none).
    """

    model: str
    config: Any
    dataset: str
    image_shape: tuple[int, ...]
    seed: int
    epochs: int
    train_size: int | None
    out: Path
    state: dict[str, Any] | None = None
    start_epoch: int = 0
    backend: Backend | None = None
    eval_samples: int = 0
    dataset_b: str | None = None

    @property
    def model_class(self) -> type[Model]:
        return MODELS[self.model]

    @property
    def checkpoint(self) -> Path:
        return self.out / "checkpoint.npz"


def chosen_epochs(args: argparse.Namespace, cls: type[Model], dataset: str = "mnist") -> int:
    """--epochs, or the model's own default (DCGAN's steps cost more than an MLP's); a
    2-D task's: a short run (the papers' 400 epochs are the benchmark's)."""
    if args.epochs is not None:
        return args.epochs
    return plane.DEFAULT_EPOCHS if dataset in plane.DATASETS else cls.default_epochs


def requested_config(args: argparse.Namespace, name: str, base: Any) -> dict[str, Any]:
    """The config fields the command line sets: a named preset's, then each flag given."""
    if args.preset is not None and name != "gan":
        raise RunError(f"--preset names a recipe of --model gan, not of --model {name}")
    preset = PRESETS[args.preset] if args.preset is not None else None
    return cli.requested_config(args, cli.family_flags(), name, base, preset)


def check_second_domain(cls: type[Model], dataset: str, dataset_b: str | None) -> str | None:
    """--dataset-b: domain B of a translation model (its default: the built-in task's),
    refused for the other models; the pair checked before anything loads."""
    if not cls.translation:
        if dataset_b is not None:
            raise RunError(
                f"--dataset-b names the second domain of a translation model (--model "
                f"cyclegan); --model {cls.name} trains on --dataset alone: drop --dataset-b"
            )
        return None
    dataset_b = dataset_b or unpaired.BUILT_IN[1]
    unpaired.check_domain_names(dataset, dataset_b)
    return dataset_b


def plan_new_run(args: argparse.Namespace) -> Plan:
    name, dataset = args.model or "gan", args.dataset or "mnist"
    cls = MODELS[name]
    if dataset == stacked.DATASET and name not in stacked.MODELS:
        raise RunError(stacked.refusal(name))
    dataset_b = check_second_domain(cls, dataset, getattr(args, "dataset_b", None))
    epochs = chosen_epochs(args, cls, dataset)
    base = cls.default_config()
    if dataset in plane.DATASETS:  # the papers' small networks and recipe (models/points.py)
        if name not in RECIPES:
            raise RunError(f"--dataset {dataset} trains {', '.join(RECIPES)} on points of the "
                           f"plane; --model {name} draws images: choose one of those")  # fmt: skip
        base = dataclasses.replace(base, arch="points", **RECIPES[name])
    config = dataclasses.replace(base, **requested_config(args, name, base))
    if getattr(config, "arch", None) == "points" and dataset not in plane.DATASETS:
        raise RunError(f"--arch points is the 2-D benchmarks' networks (no Tanh: points, not "
                       f"pixels); --dataset {dataset} holds images: drop --arch points")  # fmt: skip
    if (cls.labelled or cls.captioned) and dataset not in DATASETS:
        learns = "captions written from labels" if cls.captioned else "digit labels"
        raise RunError(
            f"--model {name} learns from {learns}, and {dataset} has none: "
            f"use --dataset mnist or fashion"
        )
    if dataset in plane.DATASETS:
        if args.image_size is not None:
            raise RunError(f"--image-size resizes the pictures of --dataset folder:PATH; "
                           f"{dataset} holds points of the plane: drop it")  # fmt: skip
        shape, train_size = (2,), args.train_size or plane.POINTS_PER_EPOCH
    elif dataset in (*DATASETS, stacked.DATASET):
        if args.image_size not in (None, 28):
            raise RunError(
                f"--image-size {args.image_size}: {dataset} images are 28x28; --image-size "
                f"resizes the pictures of --dataset folder:PATH"
            )
        if dataset == stacked.DATASET:  # drawn, not read: any number of triples
            shape, train_size = stacked.SHAPE, args.train_size or stacked.TRAIN_IMAGES
        else:
            shape = MNIST_SHAPE
            train_size = min(args.train_size or MNIST_TRAIN_IMAGES, MNIST_TRAIN_IMAGES)
    else:
        folder = Path(dataset.removeprefix("folder:")).expanduser()
        if not folder.is_dir():
            raise RunError(
                f"--dataset {dataset}: no folder at {folder}; give a folder of PNG/JPEG images"
            )
        size = args.image_size or FOLDER_IMAGE_SIZE
        shape = (3, size, size)  # until the pictures are read: grey ones give 1 channel
        train_size = args.train_size
    try:
        config = cls.config_for_images(config, shape)
    except ValueError as error:
        raise RunError(f"--model {name} cannot train on {dataset}: {error}") from None
    seed = args.seed if args.seed is not None else 0
    plan = Plan(name, config, dataset, shape, seed, epochs, train_size, Path(args.out))
    plan.dataset_b = dataset_b
    return plan


def plan_resumed_run(args: argparse.Namespace, state: dict[str, Any], path: Path) -> Plan:
    """The run ``state`` (upgraded) holds, after checking that no flag asks to change it."""
    config = config_from_checkpoint(state, path)
    name, dataset = state["gan"]["model"], state["dataset"]
    epochs = chosen_epochs(args, MODELS[name], dataset)
    dataset_b = state.get("dataset_b")
    saved = {**config.to_dict(), "seed": state.get("seed"), "model": name, "dataset": dataset,
             "dataset_b": dataset_b}  # fmt: skip
    requested = requested_config(args, name, config)
    for key in ("seed", "model", "dataset", "dataset_b"):
        if getattr(args, key, None) is not None:
            requested[key] = getattr(args, key)
    refuse_changes(saved, requested, path)
    shape = tuple(int(n) for n in state["image_shape"])
    if args.image_size not in (None, shape[-1]):
        raise RunError(
            f"{path} was trained on {shape[1]}x{shape[2]} images, --image-size "
            f"{args.image_size} asks for another size; --resume continues that run unchanged"
        )
    trained_on = int(state["loader"]["num_examples"])
    if args.train_size is not None and args.train_size != trained_on:
        raise RunError(
            f"{path} was trained on {trained_on} images, --train-size "
            f"{args.train_size} asks for another number; --resume continues that run "
            f"unchanged: drop --train-size"
        )
    done = int(state["epoch"])
    if done > epochs:
        raise RunError(
            f"{path} is already past epoch {epochs}: it finished epoch {done}; nothing was "
            f"done. --epochs counts every epoch, those done included: pass --epochs "
            f"{done + 1} or more to train on"
        )
    seed = int(state["seed"])
    out = Path(args.out)
    plan = Plan(name, config, dataset, shape, seed, epochs, trained_on, out, state, done)
    plan.dataset_b = dataset_b
    return plan


def load_images(plan: Plan, data_dir: str | None, split: str = "train") -> tuple[Any, Any]:
    """The run's images, float32 (N, C, H, W) in [-1, 1] on the host, and their labels
    (int64 (N,); None for a folder of pictures)."""
    if plan.dataset in plane.DATASETS:  # the training points: drawn once, by the run's seed
        return plane.load_points(plan.dataset, plan.train_size, plan.seed), None
    if plan.dataset == stacked.DATASET:  # the training triples: drawn once, by the run's seed
        return stacked.load_images(plan.train_size, plan.seed, data_dir)
    if plan.dataset in DATASETS:
        load = load_mnist if plan.dataset == "mnist" else load_fashion_mnist
        images, labels = load(split, root=data_dir)
        n = plan.train_size if split == "train" else None
        return to_gan_range(images[:n], flatten=False), labels[:n].astype(np.int64)
    folder = Path(plan.dataset.removeprefix("folder:")).expanduser()
    return load_image_folder(folder, plan.image_shape[1])[: plan.train_size], None


def check_batch_fits(config: Any, train_size: int, folder: str | None = None) -> None:
    """One full batch at least; ``folder``: the images are all a folder holds (not
    --train-size's first N), so the folder is named instead."""
    if config.batch_size <= train_size:
        return
    if folder is not None:
        raise RunError(
            f"--dataset folder:{folder} holds {train_size} usable image"
            f"{'s' if train_size != 1 else ''}, fewer than one batch of --batch-size "
            f"{config.batch_size}; add pictures to the folder or lower --batch-size"
        )
    raise RunError(
        f"--batch-size {config.batch_size} is more than the {train_size} training images "
        f"(--train-size): not one full batch; lower --batch-size or raise --train-size"
    )


def check_data_fits(plan: Plan, count: int) -> None:
    """Once the ``count`` images are loaded: one full batch at least. A folder that holds
    fewer than --train-size asks for is named, and not --train-size."""
    folder = None
    drawn = (*DATASETS, stacked.DATASET)  # not a folder's pictures
    if plan.dataset not in drawn and (plan.train_size is None or plan.train_size > count):
        folder = plan.dataset.removeprefix("folder:")
    check_batch_fits(plan.config, count, folder)


def check_evaluation(args: argparse.Namespace, dataset: str) -> int:
    """How many samples --eval-every scores (0: none), once it is known to work."""
    if args.eval_every == 0:
        return 0
    from minigan.metrics.evaluator import MIN_SAMPLES  # the metrics load only when asked for

    if MODELS[args.model or "gan"].translation:
        raise RunError(
            "--eval-every scores samples drawn from noise; a translation model's measures "
            "come from examples/evaluate.py --translation OUT/checkpoint.npz"
        )
    if MODELS[args.model or "gan"].captioned:
        raise RunError(
            "--eval-every scores samples drawn from noise alone; a text-to-image model's "
            "measures come from examples/evaluate.py --captions OUT/checkpoint.npz"
        )
    if dataset in plane.DATASETS:  # the papers' measures, on 2,500 points unless told
        return args.eval_samples or plane.EVAL_POINTS
    if dataset == stacked.DATASET:  # modes and KL, on the papers' 26,000 unless told
        return args.eval_samples or stacked.EVAL_SAMPLES
    if dataset not in DATASETS:
        raise RunError(
            f"--eval-every scores samples through a classifier of MNIST or Fashion-MNIST "
            f"(FID, Inception Score, classes covered): it has no classifier for {dataset}, "
            f"so it works with --dataset mnist or fashion only"
        )
    if args.eval_samples is None:
        return EVAL_SAMPLES
    if args.eval_samples < MIN_SAMPLES:
        raise RunError(
            f"--eval-samples {args.eval_samples}: the scores need at least {MIN_SAMPLES} "
            f"samples, and FID is reliable from about 256 (10000 is the usual number)"
        )
    return args.eval_samples


def plan_training(args: argparse.Namespace) -> Plan:
    """Check every option of a training run and settle what it will do.

    Nothing is loaded (but the checkpoint a resumed run continues), created or deleted.
    """
    out = Path(args.out)
    if args.checkpoint or args.output or args.grid or args.direction or args.input or args.caption:
        raise RunError(
            "--checkpoint, --output, --grid, --direction, --input and --caption go with --sample N"
        )
    if args.resume and args.overwrite:
        raise RunError(
            "--resume continues the run in --out, --overwrite deletes it: give one of them"
        )
    check_out_dir(out)
    check_run_file_types(out)
    backend = get_backend(args.backend)
    if args.resume:
        path = out / "checkpoint.npz"
        check_resumable(out)
        plan = plan_resumed_run(args, load_run(path), path)
    else:
        if not args.overwrite:
            refuse_to_replace_a_run(out)
        plan = plan_new_run(args)
    plan.backend = backend
    if plan.train_size is not None:
        check_batch_fits(plan.config, plan.train_size)
    plan.eval_samples = check_evaluation(args, plan.dataset)
    # An explicit --data-dir must serve every split the run reads: the test split too for
    # SGAN's test error and for the metrics' classifier.
    tested = plan.model == "sgan" or bool(plan.eval_samples)
    for dataset in (plan.dataset, plan.dataset_b):  # domain B: "mnist-striped" is MNIST
        dataset = "mnist" if dataset in (unpaired.BUILT_IN[1], stacked.DATASET) else dataset
        if dataset in plane.DATASETS:  # points, drawn: no files
            continue
        check_data_folder(
            dataset, args.data_dir, splits=("train", "test") if tested else ("train",)
        )
    if backend.name == "numpy":  # a GPU's memory is its own
        image_bytes = math.prod(plan.image_shape) * 4  # float32
        # A folder's pictures are counted when it is read (images.load_image_folder checks
        # their memory before decoding any); the model's is checked here, before anything.
        known = plan.train_size if plan.train_size is not None else 0
        data_bytes = MNIST_TRAIN_IMAGES * 28 * 28 + known * image_bytes
        config, evaluated = plan.config, plan.eval_samples
        named = sizes_given(args, plan.model_class, config) or [
            size_setting(config), f"--batch-size {config.batch_size}"  # the defaults' sizes
        ]  # fmt: skip
        named += [f"--train-size {args.train_size}"] if args.train_size is not None else []
        image_size = getattr(args, "image_size", None)  # a folder's pictures: their side
        named += [f"--image-size {image_size}"] if image_size is not None else []
        named += [f"--eval-samples {evaluated}"] if evaluated else []
        check_memory(
            plan.model_class.memory_bytes(config, config.batch_size)
            + data_bytes
            + 2 * evaluated * image_bytes,
            f"training ({', '.join(named)})",
        )
    return plan


# --- a stopped run ---------------------------------------------------------------------------


def kept(checkpoint: Path, epoch: int | None) -> str:
    """What a stopped run leaves: the sentence every failure message ends with."""
    if epoch is None:
        return "No epoch finished, so no checkpoint was saved"
    return f"The checkpoint from epoch {epoch} ({checkpoint}) is kept"


def divergence_advice(config: Any) -> str:
    if getattr(config, "logits", True):
        return "lower --lr"
    return (
        "lower --lr, or train D on logits with BCEWithLogitsLoss (--d-output logits, as "
        "the default preset does)"
    )


def stopped(
    stop: BaseException, checkpoint: Path, epoch: int | None, resume: str, config: Any
) -> Exception:
    """The exception that ends a run stopped by ``stop`` (Ctrl-C or SIGTERM, ``Diverged``,
    a failed write), saying what was kept (``epoch``: the checkpoint's, None: none) and
    what to do: ``resume``, the command that continues the run."""
    left = kept(checkpoint, epoch)
    if isinstance(stop, Diverged):
        return RunError(f"{stop}. {left}: {divergence_advice(config)}")
    if isinstance(stop, WriteError):
        fix = "make room on the disk" if stop.errno in DISK_FULL else "fix that"
        then = f"continue with: {resume}" if epoch is not None else "start again with --overwrite"
        return RunError(f"{stop}. {left}; {fix}, then {then}")
    return Interrupted(left + (f"; continue with: {resume}" if epoch is not None else ""), stop)


def figures_diverged(row: dict[str, float]) -> str | None:
    """What went wrong with a logged row of figures, or None: a NaN or an infinity, or
    an explosion (``EXPLODED``). Host numbers only: reading them back was the caller's."""
    bad = [k for k, v in row.items() if not math.isfinite(v)]
    if bad:
        return f"{' and '.join(bad)} became {row[bad[0]]}"
    huge = [k for k, v in row.items() if abs(v) > EXPLODED]
    if huge:
        reached = ", ".join(f"{k} reached {row[k]:.3g}" for k in huge)
        return (f"the losses exploded: {reached} (beyond ±{EXPLODED:,.0f}, which no figure "
                f"nears in a normal run)")  # fmt: skip
    return None


# The flags a checkpoint does not keep: a resumed run needs them again.
NOT_IN_CHECKPOINT = (
    "epochs", "backend", "threads", "data_dir", "log_every", "eval_every", "eval_samples",
)  # fmt: skip


def resume_command(
    script: str | os.PathLike, args: argparse.Namespace, defaults: dict[str, Any]
) -> str:
    """The command that continues this run: ``script`` with --resume and the flags a
    checkpoint does not keep, where they differ from ``defaults`` (the parser's).

    It names the interpreter that ran (``sys.executable``; plain ``python`` when that is
    the one ``python`` finds on PATH) and the script's absolute path, so it works as
    given, whichever environment was active and wherever the script lies.
    """
    on_path = shutil.which("python")
    python = "python" if on_path and os.path.abspath(on_path) == sys.executable else sys.executable
    words = [python, os.path.abspath(script), "--resume", "--out", str(args.out)]
    for flag in NOT_IN_CHECKPOINT:
        value = getattr(args, flag)
        if value is not None and value != defaults.get(flag):
            words += [f"--{flag.replace('_', '-')}", str(value)]
    return shlex.join(words)


# --- sampling from a run ---------------------------------------------------------------------


def check_sample_files(
    checkpoint: str | None, output: str | None, grid: str | None, overwrite: bool
) -> None:
    """Never write onto the checkpoint, each other, a run's files, anything but a regular
    file, or (unasked) an existing file."""
    if checkpoint is None or output is None:
        raise RunError("--sample needs --checkpoint PATH and --output FILE.npy")
    outputs = [("--output", output)] + ([("--grid", grid)] if grid else [])
    for flag, target in outputs:
        if same_file(target, checkpoint):
            raise RunError(
                f"{flag} {target} is the checkpoint being read (--checkpoint "
                f"{checkpoint}); writing it would destroy the model: choose another file"
            )
        what, folder, name = describe(target), Path(target).parent, Path(target).name
        if what == "a folder":
            example = Path(target) / ("samples.npy" if flag == "--output" else "samples.png")
            raise RunError(f"{flag} {target} is a folder; give a file, such as {example}")
        if what is not None:
            raise RunError(
                f"{flag} {target} is {what}, not a regular file: minigan writes only onto "
                f"regular files (or new paths); choose another file"
            )
        if (is_run_file(name) or name == LOCK) and (run_files(folder) or (folder / LOCK).exists()):
            raise RunError(
                f"{flag} {target} is a file of the run in {folder} (its {name}); writing "
                f"it would damage that run: choose another name or folder"
            )
        if Path(target).exists() and not overwrite:
            raise RunError(
                f"{flag} {target} already exists; pass --overwrite to replace it, or "
                f"choose another file"
            )
        if not Path(target).parent.is_dir():
            raise RunError(
                f"cannot write {target}: the folder {Path(target).parent} does not exist"
            )
    if grid and same_file(output, grid):
        raise RunError(f"--output and --grid are one file ({output}); give two")
    if grid and Path(grid).suffix.lower() != ".png":
        raise RunError(f"--grid {grid}: the grid is a PNG picture; give a name ending in .png")


def sample_run(
    checkpoint: str | None,
    n: int,
    output: str | None,
    grid: str | None = None,
    label: int | None = None,
    seed: int = 0,
    backend: str = "numpy",
    overwrite: bool = False,
    model: str | None = None,
    direction: str | None = None,
    data_dir: str | None = None,
    pictures: str | None = None,
    caption: str | None = None,
) -> str:
    """Write ``n`` samples of the model in a run's ``checkpoint`` to the .npy ``output``
    (float32 in [0, 1]; see ``minigan.images.write_samples``), the first 64 also as the
    PNG ``grid``; every check first. Returns the line that says what was written.

    ``label``: the digit a conditional model draws (None: 0-9 in turn); ``seed``: the
    noise's; ``model``: the model the caller expects (None: any). A translation model
    (cyclegan) translates instead the first ``n`` test images of its run's domain A
    (``direction`` "AB", the default) or B ("BA"; a folder's: its pictures), from
    ``data_dir`` (None: where MNIST is found), or the first ``n`` pictures under the
    folder ``pictures``. A text-to-image model (stackgan) draws for ``caption`` ("a thin
    seven"; None: every full caption in turn), with Stage-I beside Stage-II in the grid.
    """
    check_sample_files(checkpoint, output, grid, overwrite)
    device = get_backend(backend)
    path = Path(checkpoint)
    state = load_run(path, MODEL_KEYS)
    config = config_from_checkpoint(state, path)
    cls, shape = MODELS[state["gan"]["model"]], tuple(state["image_shape"])
    chunk = unpaired.TRANSLATE_CHUNK if cls.translation else SAMPLE_CHUNK
    check_memory(cls.memory_bytes(config, chunk), f"sampling from {path}")
    if model is not None and model != cls.name:
        raise RunError(
            f"{path} holds a {cls.name!r} model, not {model!r}: --sample draws from the "
            f"model a checkpoint holds; drop --model"
        )
    if pictures is not None and not cls.translation:
        raise RunError(f"--input FOLDER gives pictures to a translation model (cyclegan) to "
                       f"translate; {path} holds a {cls.name!r} model: drop --input")  # fmt: skip
    if direction is not None and not cls.translation:
        raise RunError(
            f"--direction AB|BA says which way a translation model (cyclegan) translates; "
            f"{path} holds a {cls.name!r} model, which draws from noise: drop --direction"
        )
    if caption is not None and not cls.captioned:
        raise RunError(f"--caption TEXT asks a text-to-image model (stackgan) for an image; "
                       f"{path} holds a {cls.name!r} model: drop --caption")  # fmt: skip
    if cls.captioned and not isinstance(state.get("captions"), dict):
        raise RunError(f"{path} holds a {cls.name!r} model but not its captions' scheme (a "
                       f"run's checkpoint.npz has it): give the run's own checkpoint")  # fmt: skip
    scheme = CaptionScheme.from_dict(state["captions"]) if cls.captioned else None
    captions = captioned.sample_captions(scheme, n, caption) if scheme is not None else None
    if label is not None and cls.captioned:
        raise RunError(f"--label asks a conditional model for a digit; {path} holds a "
                       f"{cls.name!r} model: name the digit in --caption (\"a seven\")")  # fmt: skip
    if label is not None and not cls.conditional:
        raise RunError(
            f"--label asks a conditional model (cgan, acgan) for a digit; {path} holds a "
            f"{cls.name!r} model, which draws whatever digit it likes"
        )
    # A --sample killed mid-write (SIGKILL) left its temporary file (maybe GBs) beside its
    # --output: minigan's, by name, and its process is gone. Removed before counting space.
    for folder in dict.fromkeys(Path(t).parent for t in (output, grid) if t):
        remove_files(stale_temporaries(folder), "temporary files left by a killed --sample or run")
    size = n * math.prod(shape) * 4  # float32
    free = shutil.disk_usage(Path(output).parent).free
    if size > free:
        raise RunError(
            f"--sample {n} writes {human_bytes(size)} to {output}, and its disk has "
            f"{human_bytes(free)} free; ask for fewer samples or write elsewhere"
        )
    gan = cls(config, device, seed=seed)
    load_gan_state(gan, state, path)
    if cls.translation:  # its inputs: the run's own domain, the test split
        direction = direction or "AB"
        if pictures is not None:
            inputs, where = unpaired.load_pictures(pictures, shape), f"--input {pictures} holds"
        else:
            domains = unpaired.load_domains(state["dataset"], state["dataset_b"], "test",
                                            data_dir, shape[1])  # fmt: skip
            inputs = domains.a if direction == "AB" else domains.b
            where = f"domain {direction[0]} has"
        if n > len(inputs):
            raise RunError(
                f"--sample {n}: {where} {len(inputs)} images to translate; ask for "
                f"{len(inputs)} or fewer"
            )
    written = []
    try:
        if cls.translation:
            first = unpaired.write_translations(gan, inputs[:n], output, direction)
        elif scheme is not None:
            first = captioned.write_captioned_samples(gan, scheme, captions, output)
        elif state["dataset"] in plane.DATASETS:  # points of the plane, (n, 2)
            first = plane.write_points(gan, n, output)
        elif state["dataset"] == stacked.DATASET:  # channels first: (n, 3, 28, 28)
            first = stacked.write_samples(gan, n, output)
        else:
            first = write_samples(gan, n, output, shape, label=label)
        written.append(output)
        if grid and state["dataset"] in plane.DATASETS:  # a frame: the points, D's surface
            plane.draw_points(gan, state["dataset"], first, grid, f"{cls.name}, {n} points")
        elif grid:
            one_row_per_digit = cls.conditional and label is None
            save_image_grid(by_digit(first) if one_row_per_digit else first[:64], grid)
    except KeyboardInterrupt as stop:
        raise Interrupted(
            f"{written[0]} was written, --grid was not" if written else "nothing was written",
            stop,
        ) from None
    if state["dataset"] in plane.DATASETS:
        return f"wrote {n} points, float32 ({n}, 2), to {output}"
    what = f"translations {direction[0]} -> {direction[1]}" if cls.translation else "samples"
    layout = shape if state["dataset"] == stacked.DATASET else file_layout(shape)
    return f"wrote {n} {what}, float32 {(n, *layout)} in [0, 1], to {output}"
