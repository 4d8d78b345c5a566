"""Checkpoints: nested dicts of arrays and plain values in one ``.npz`` file.

A training state is a tree (``{"gan": {"generator": {"0.weight": array, ...}, ...},
"epoch": 3, ...}``). It is stored flat: every array under its path
(``"gan/generator/0.weight"``), and everything else (numbers, strings, RNG states,
the config) as one JSON document. No pickle, so loading a file cannot run code.
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


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by ``save_checkpoint``; raise ``CheckpointError`` if damaged."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(arrays.pop(_META_KEY).tobytes())
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as error:
        raise CheckpointError(
            f"{path} is not a readable minigan checkpoint ({type(error).__name__}: {error}); "
            f"the file is truncated or damaged: delete it, or point to an earlier one"
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    tree = meta["tree"]
    for key, value in arrays.items():
        *parents, leaf = key.split("/")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return tree
