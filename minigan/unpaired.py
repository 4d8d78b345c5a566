"""Two domains of images for a translation model (CycleGAN): loading, batches, grids, sampling.

A translation run names its two domains with two flags, ``--dataset`` (A) and
``--dataset-b`` (B), each ``mnist``, ``fashion`` or ``folder:PATH``: two flags, so no path
(which may hold ``,`` or ``:``) is ever split. The built-in task, the default, is
``--dataset mnist --dataset-b mnist-striped``: plain digits (A) and the same kind of digits
restyled as striped strokes on a textured background (B, ``minigan.data.stripe_digits``),
made from MNIST's two halves (``minigan.data.unpaired_mnist``), so no image of one domain
has its pair in the other.

Batches: ``UnpairedBatches`` shuffles each domain on its own, so an image of A meets a
different image of B every epoch; an epoch ends with the smaller domain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minigan.backend import to_host
from minigan.data import (
    BatchIterator,
    DataError,
    load_fashion_mnist,
    load_mnist,
    to_gan_range,
    unpaired_mnist,
)
from minigan.images import load_image_folder, unit_image_file, unit_images

BUILT_IN = ("mnist", "mnist-striped")  # --dataset, --dataset-b: the built-in task
STRIPED = "mnist-striped"  # a name for domain B only, with domain A mnist
GRID_IMAGES = 8  # images of each domain in the grid of every epoch
# --sample translates this many images at a time: a 7x7 convolution's columns take 49
# values per input value, so a CycleGAN's G needs about 3 MB per 28x28 image.
TRANSLATE_CHUNK = 100


@dataclass
class Domains:
    """The two domains' images, float32 (N, C, H, W) in [-1, 1], and their labels (int64;
    None for a folder of pictures)."""

    a: np.ndarray
    b: np.ndarray
    a_labels: np.ndarray | None
    b_labels: np.ndarray | None


def check_domain_names(dataset_a: str, dataset_b: str) -> None:
    """The pair the flags name makes sense (before anything is loaded), else a DataError."""
    if STRIPED in (dataset_a, dataset_b) and (dataset_a, dataset_b) != BUILT_IN:
        raise DataError(
            f"--dataset {dataset_a} --dataset-b {dataset_b}: {STRIPED} is the built-in task's "
            f"domain B, made from the half of MNIST that domain A does not use: give "
            f"--dataset mnist --dataset-b {STRIPED}"
        )
    if dataset_a == dataset_b:
        raise DataError(
            f"--dataset and --dataset-b both name {dataset_a}: a translation needs two "
            f"different domains"
        )
    for flag, name in (("--dataset", dataset_a), ("--dataset-b", dataset_b)):
        if name.startswith("folder:"):
            folder = Path(name.removeprefix("folder:")).expanduser()
            if not folder.is_dir():
                raise DataError(
                    f"{flag} {name}: no folder at {folder}; give a folder of PNG/JPEG images"
                )


def load_domain(name: str, split: str, data_dir: str | None, image_size: int) -> tuple[Any, Any]:
    """One domain that is not the built-in pair's: a dataset or a folder, whole."""
    if name in ("mnist", "fashion"):
        load = load_mnist if name == "mnist" else load_fashion_mnist
        images, labels = load(split, root=data_dir)
        return to_gan_range(images, flatten=False), labels.astype(np.int64)
    folder = Path(name.removeprefix("folder:")).expanduser()
    return load_image_folder(folder, image_size), None


def load_domains(
    dataset_a: str,
    dataset_b: str,
    split: str = "train",
    data_dir: str | None = None,
    image_size: int = 28,
    train_size: int | None = None,
) -> Domains:
    """The two domains' ``split`` images (a folder's pictures are all one split), the
    first ``train_size`` of each; a DataError when the two do not fit one model."""
    check_domain_names(dataset_a, dataset_b)
    if (dataset_a, dataset_b) == BUILT_IN:
        a, a_labels, b, b_labels = unpaired_mnist(split, root=data_dir)
        a, b = to_gan_range(a, flatten=False), to_gan_range(b, flatten=False)
        a_labels, b_labels = a_labels.astype(np.int64), b_labels.astype(np.int64)
    else:
        a, a_labels = load_domain(dataset_a, split, data_dir, image_size)
        b, b_labels = load_domain(dataset_b, split, data_dir, image_size)
    if a.shape[1:] != b.shape[1:]:
        (ca, ha, wa), (cb, hb, wb) = a.shape[1:], b.shape[1:]
        what = "grey" if ca == 1 else "colour"
        other = "grey" if cb == 1 else "colour"
        raise DataError(
            f"--dataset {dataset_a} holds {what} {ha}x{wa} images and --dataset-b {dataset_b} "
            f"{other} {hb}x{wb} ones: one model translates between images of one shape; give "
            f"two folders of the same kind (--image-size sets a folder's side; MNIST's is 28)"
        )
    n = train_size
    return Domains(
        a[:n], b[:n], None if a_labels is None else a_labels[:n],
        None if b_labels is None else b_labels[:n],
    )  # fmt: skip


def load_for_run(plan: Any, data_dir: str | None) -> Domains:
    """A training run's two domains (``runs.Plan``): its first ``train_size`` images of
    each, folders resized to domain A's side; each domain must fill one batch."""
    domains = load_domains(plan.dataset, plan.dataset_b, "train", data_dir,
                           plan.image_shape[1], plan.train_size)  # fmt: skip
    for flag, name, images in (("--dataset", plan.dataset, domains.a),
                               ("--dataset-b", plan.dataset_b, domains.b)):  # fmt: skip
        if len(images) < plan.config.batch_size:
            raise DataError(
                f"{flag} {name} gives {len(images)} image{'s' if len(images) != 1 else ''}, "
                f"fewer than one batch of --batch-size {plan.config.batch_size}: add images "
                f"or lower --batch-size"
            )
    return domains


def load_pictures(folder: str, shape: tuple[int, ...]) -> np.ndarray:
    """The pictures under ``folder`` as a model of image ``shape`` (C, H, W) takes them:
    resized to its side, in its channels (colour pictures made grey, or grey ones RGB)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise DataError(f"--input {folder}: no folder there; give a folder of PNG/JPEG images")
    return load_image_folder(path, shape[1], channels=shape[0])


class UnpairedBatches:
    """Batches (a, b) of two unrelated image sets, each reshuffled every epoch on its own
    (two ``BatchIterator``s, seeded apart); an epoch is as long as the smaller set allows."""

    def __init__(self, a: Any, b: Any, batch_size: int, seed: int, backend: Any):
        self.a = BatchIterator(a, batch_size=batch_size, seed=seed, backend=backend)
        self.b = BatchIterator(b, batch_size=batch_size, seed=[seed, 1], backend=backend)

    def __len__(self) -> int:
        return min(len(self.a), len(self.b))

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return zip(iter(self.a), iter(self.b))  # each draws its epoch's order now

    def state_dict(self) -> dict[str, Any]:
        """Both shufflers' states; ``num_examples`` is domain A's count (a run's size)."""
        return {"num_examples": self.a.num_examples, "a": self.a.state_dict(),
                "b": self.b.state_dict()}  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not all(isinstance(state.get(key), Mapping) for key in ("a", "b")):
            raise ValueError("UnpairedBatches: the state has no shuffler states 'a' and 'b'")
        backup = self.a.state_dict()
        self.a.load_state_dict(state["a"])
        try:
            self.b.load_state_dict(state["b"])
        except ValueError:
            self.a.load_state_dict(backup)
            raise


def translation_grid(model: Any, a: Any, b: Any) -> np.ndarray:
    """Rows of a, G_AB(a), G_BA(G_AB(a)), then b, G_BA(b), G_AB(G_BA(b)), as host images
    in [0, 1] (``unit_images``' layout); ``a`` and ``b`` on the model's device."""
    fake_b = model.translate(a, "AB")
    fake_a = model.translate(b, "BA")
    rows = [a, fake_b, model.translate(fake_b, "BA"), b, fake_a, model.translate(fake_a, "AB")]
    return unit_images(to_host(model.backend.xp.concatenate(rows)))


def write_translations(
    model: Any, images: np.ndarray, path: Any, direction: str, chunk: int = TRANSLATE_CHUNK
) -> np.ndarray:
    """Write G_AB(images) (``direction`` "AB") or G_BA(images) ("BA") to the .npy ``path``.

    ``images``: host float32 (n, C, H, W) in [-1, 1]. The file is float32 in [0, 1], (n, H,
    W) or (n, H, W, 3) (``unit_images``), written ``chunk`` images at a time. Returns a
    grid's images: 4 rows of 8 inputs, each above its 8 translations.
    """
    n = len(images)
    first = None
    with unit_image_file(path, n, images.shape[1:]) as write:
        for start in range(0, n, chunk):
            batch = model.backend.asarray(images[start : start + chunk])
            translated = unit_images(to_host(model.translate(batch, direction)))
            write(translated)
            if first is None:
                inputs, k = unit_images(images[:32]), min(32, n)
                rows = [
                    x for i in range(0, k, 8) for x in (inputs[i : i + 8], translated[i : i + 8])
                ]
                first = np.concatenate(rows)
    return first


def translate_and_back(
    model: Any, images: np.ndarray, direction: str, chunk: int = TRANSLATE_CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """(translations, reconstructions) of host ``images`` (n, C, H, W) in [-1, 1]: G_AB(x)
    and G_BA(G_AB(x)) for ``direction`` "AB" (G_BA first for "BA"), as host float32
    images in [0, 1] (``unit_images``), ``chunk`` at a time."""
    back = direction[::-1]
    fakes, recs = [], []
    for start in range(0, len(images), chunk):
        fake = model.translate(model.backend.asarray(images[start : start + chunk]), direction)
        fakes.append(unit_images(to_host(fake)))
        recs.append(unit_images(to_host(model.translate(fake, back))))
    return np.concatenate(fakes), np.concatenate(recs)
