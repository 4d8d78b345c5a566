"""Checkpoints: nested dicts of arrays and plain values in one ``.npz`` file.

A training state is a tree (``{"gan": {"generator": {"0.weight": array, ...}, ...},
"epoch": 3, ...}``). It is stored flat: every array under its path
(``"gan/generator/0.weight"``), and everything else (numbers, strings, RNG states,
the config) as one JSON document. No pickle, so loading a file cannot run code.

``upgrade(state)`` turns a run's checkpoint written by an older minigan into today's
layout: the history of the layout lives there, and nowhere else (models and configs
know only today's).
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import numpy as np

from minigan.files import atomic_write

FORMAT = "minigan-checkpoint-1"
_META_KEY = "__meta__"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, damaged, or does not fit the model."""


def _split(tree: dict[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Move the arrays out of ``tree`` into ``arrays``; return what is left."""
    rest: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            rest[key] = _split(value, path + "/", arrays)
        elif isinstance(value, np.ndarray):
            arrays[path] = value
        else:
            rest[key] = value
    return rest


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (nested dicts of NumPy arrays and JSON values) atomically."""
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "tree": _split(state, "", arrays)}
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **arrays)


# What a file holds, from its first bytes, for messages about files that are not checkpoints.
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members; an empty zip
_NPY_MAGIC = b"\x93NUMPY"
_PICKLE_MAGIC = b"\x80"  # pickle protocols 2 and later start with PROTO (0x80)
_EXPECTED = "expected a .npz written by minigan's save_checkpoint (a run's OUT/checkpoint.npz)"


def _not_a_checkpoint(path: str | os.PathLike, head: bytes) -> str | None:
    """Why a file whose first bytes are ``head`` is no checkpoint; None if it may be one."""
    if not head:
        return (
            f"{path} is not a readable minigan checkpoint: the file is empty; it was "
            f"truncated or damaged: delete it, or point to an earlier one"
        )
    if head.startswith(_ZIP_MAGICS):
        return None
    if head.startswith(_NPY_MAGIC):
        return f"{path} is a NumPy .npy array, not a minigan checkpoint; {_EXPECTED}"
    if head.startswith(_PICKLE_MAGIC):
        return (
            f"{path} is a Python pickle, not a minigan checkpoint; {_EXPECTED}. minigan "
            f"never loads pickles: loading one can run any code"
        )
    return (
        f"{path} is not a readable minigan checkpoint: it starts with the bytes "
        f"{head[:4].hex(' ')}, where a checkpoint (a zip archive) starts with 50 4b 03 04; "
        f"the file is truncated or damaged, or something else: {_EXPECTED}"
    )


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by ``save_checkpoint``.

    Raises ``CheckpointError``, in one line saying what the file is, for a missing,
    damaged or empty file, a ``.npy`` array, a pickle, a ``.npz`` archive that minigan
    did not write, or a file of another checkpoint format. Nothing is ever unpickled.
    """
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; {_EXPECTED}")
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    problem = _not_a_checkpoint(path, head)
    if problem is not None:
        raise CheckpointError(problem)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _META_KEY not in npz.files:
                names = ", ".join(npz.files[:5]) + (", ..." if len(npz.files) > 5 else "")
                raise CheckpointError(
                    f"{path} is a .npz archive of arrays ({names or 'none'}) without "
                    f"minigan's metadata, not a minigan checkpoint; {_EXPECTED}"
                )
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(arrays.pop(_META_KEY).tobytes())
    except ValueError as error:
        if "allow_pickle" in str(error):  # NumPy's advice would be to load it unsafely
            raise CheckpointError(
                f"{path} holds pickled Python objects, not a minigan checkpoint; "
                f"{_EXPECTED}. minigan never loads pickles: loading one can run any code"
            ) from None
        raise _damaged(path, error) from None
    except (zipfile.BadZipFile, OSError, KeyError, EOFError) as error:
        raise _damaged(path, error) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "tree" not in meta:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(
            f"{path}: unknown checkpoint format {found!r}, this minigan reads {FORMAT!r}"
        )
    tree = meta["tree"]
    for key, value in arrays.items():
        *parents, leaf = key.split("/")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return tree


def _damaged(path: str | os.PathLike, error: Exception) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a readable minigan checkpoint ({type(error).__name__}: {error}); "
        f"the file is truncated or damaged: delete it, or point to an earlier one"
    )


# --- older checkpoints ---------------------------------------------------------------------

# Config fields added after runs had been saved with that model, and the value those runs
# trained with (the code before the field existed did just that):
ADDED_FIELDS: dict[str, dict[str, Any]] = {
    # Before TTUR, the average of G, minibatch spread, PacGAN and dropout: one learning
    # rate, samples from the live G, each image judged alone, no dropout.
    "gan": {"d_lr": None, "ema": 0.0, "minibatch_std": 0, "pack": 1, "d_dropout": 0.0},
    # G at D's learning rate, the live G, no label smoothing, one image at a time, no
    # dropout, noise or DiffAugment, BatchNorm in D (the paper's), G's last transposed
    # convolution drawing the image, no fully connected hidden layer in D or G.
    "dcgan": {
        "g_lr": None,
        "ema": 0.0,
        "real_label": 1.0,
        "pack": 1,
        "d_dropout": 0.0,
        "d_noise": 0.0,
        "d_norm": "batch",
        "g_full_res_channels": 0,
        "d_fc_width": 0,
        "g_fc_width": 0,
        "d_augment": "",
    },
    # Before the projection discriminator: labels concatenated to D's input.
    "cgan": {"discriminator": "concat"},
    # Before the twin classifier, the paper's ACGAN; the first twin runs (before
    # twin_weight) subtracted the twin's whole cross-entropy in G's loss.
    "acgan": {"classifier": "paper", "twin_weight": 1.0},
}
MNIST_SHAPE = [1, 28, 28]  # one image, (channels, height, width): runs before --dataset


def upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """A run's checkpoint (as ``load_checkpoint`` returns it) in today's layout.

    - ``state["gan"]["model"]``: states saved before the GAN family existed carry no
      model name; they are GANs';
    - ``"dataset"`` and ``"image_shape"``: runs from before ``--dataset`` trained on
      MNIST's 28x28 grey digits;
    - ``"config"``: a field added after the checkpoint was saved gets the value that
      checkpoint trained with (``ADDED_FIELDS``).

    Only what is there is upgraded (a part a state lacks stays missing), and the input is
    left unchanged: the result is a new dict sharing its arrays.
    """
    state = dict(state)
    if isinstance(state.get("gan"), dict):
        state["gan"] = {"model": "gan", **state["gan"]}
        model = state["gan"]["model"]
        if isinstance(state.get("config"), dict):
            state["config"] = {**ADDED_FIELDS.get(model, {}), **state["config"]}
    if "gan" in state and "config" in state:  # a run of examples/mnist_gan.py
        state.setdefault("dataset", "mnist")
        state.setdefault("image_shape", list(MNIST_SHAPE))
    return state
