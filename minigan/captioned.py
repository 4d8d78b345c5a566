"""Text to image in a run (``--model stackgan``): captions in, two stages of images out.

StackGAN learns from (image, caption) pairs; MNIST and Fashion-MNIST come with labels,
and ``minigan.captions`` writes each image's caption from its label and its measured
attributes ("a thick right-slanted seven"). This module is the run's side of that:

- ``training_text``: every training image's caption as a text embedding, the model's
  input beside the image. Each attribute word is left out of an image's caption with
  probability ``DROP`` (once per image, by the run's seed: the data set's captions), so
  that the model also learns captions that name less ("a thin seven", "a seven"), which
  ``--sample N --caption TEXT`` accepts;
- ``grid_captions`` / ``caption_grid``: the fixed captions of the grid saved after every
  epoch, each row a caption, Stage-I's image (enlarged) beside Stage-II's;
- ``sample_captions``: the captions ``--sample`` draws for: one caption parsed from
  ``--caption``, or every full caption in turn;
- ``write_captioned_samples``: Stage-II's images for those captions, to a .npy file.

The caption scheme (the attributes' cut points, fitted on the training images) is part
of the run: saved in its checkpoint, so a sample is binned as the model was trained.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from minigan.backend import to_host
from minigan.captions import CaptionScheme
from minigan.images import unit_image_file, unit_images

DROP = 0.25  # each attribute word of a training caption is left out with this probability
TEXT_SEED = 0  # the fixed word vectors' seed (captions.word_vectors): one encoder for all
GRID_PAIRS = 4  # noise draws per caption in a grid: Stage-I | Stage-II side by side
CHUNK = 1000  # images generated and written at a time


def scheme_for_run(dataset: str, images: Any) -> CaptionScheme:
    """The caption scheme of ``dataset`` (mnist or fashion), cut on its training
    ``images`` (floats in [-1, 1], as a run holds them)."""
    return CaptionScheme.fit(dataset, images, gan_range=True)


def training_text(
    scheme: CaptionScheme, images: Any, labels: np.ndarray, dim: int, seed: int
) -> np.ndarray:
    """Each training image's caption embedding, float32 (N, dim) on the host: its label,
    its measured bins, each attribute left out with probability ``DROP`` (by ``seed``)."""
    bins = scheme.bins(images, gan_range=True)
    dropped = np.random.default_rng([seed, 2]).random(bins.shape) < DROP
    return scheme.embed(labels, np.where(dropped, -1, bins), dim, TEXT_SEED)


def grid_captions(scheme: CaptionScheme) -> list[tuple[int, int, int | None]]:
    """The grid's captions as (label, first bin, second bin): one row per class, the
    attributes' bins taking every value down the rows."""
    second = len(scheme.attributes) > 1
    return [(k, k % 3, (k // 3) % 3 if second else None) for k in range(len(scheme.class_words))]


def embed_captions(
    scheme: CaptionScheme, captions: list[tuple[int, int | None, int | None]], dim: int
) -> np.ndarray:
    """(label, bin, bin) captions (None: not named) -> float32 (N, dim) embeddings."""
    labels = np.array([c[0] for c in captions], np.int64)
    bins = np.array([[-1 if b is None else b for b in c[1 : 1 + len(scheme.attributes)]]
                     for c in captions], np.int64)  # fmt: skip
    return scheme.embed(labels, bins, dim, TEXT_SEED)


def both_stages(model: Any, z: Any, text: Any) -> tuple[np.ndarray, np.ndarray]:
    """(Stage-I enlarged, Stage-II): host images in [0, 1] (``unit_images``' layout) for
    noise ``z`` and caption embeddings ``text`` on the device; Stage-I's sketch enlarged to
    Stage-II's size by nearest neighbour, as Stage-II sees it. One read of each."""
    low, high = (unit_images(to_host(x)) for x in model.generate_stages(z, text))
    scale = high.shape[1] // low.shape[1]
    return low.repeat(scale, axis=1).repeat(scale, axis=2), high


def side_by_side(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The two stages' images interleaved, I, II, I, II, ...: pairs in a grid's rows."""
    return np.stack([low, high], axis=1).reshape(-1, *high.shape[1:])


def caption_grid(model: Any, scheme: CaptionScheme, z: Any) -> tuple[np.ndarray, list[str]]:
    """The grid's images and row labels: for each of ``grid_captions``, ``GRID_PAIRS`` noise
    vectors of ``z`` (on the device), each as Stage-I's image (enlarged to Stage-II's size)
    beside Stage-II's. Host images in [0, 1] (``unit_images``' layout), rows of 2 * pairs."""
    captions = grid_captions(scheme)
    text = model.backend.asarray(np.repeat(embed_captions(scheme, captions, model.config.text_dim),
                                           GRID_PAIRS, axis=0))  # fmt: skip
    noise = model.backend.xp.concatenate([z[:GRID_PAIRS]] * len(captions))
    return side_by_side(*both_stages(model, noise, text)), [scheme.caption(*c) for c in captions]


def sample_captions(scheme: CaptionScheme, n: int, caption: str | None):
    """The captions of ``--sample n``: ``caption`` parsed (a ValueError naming the known
    words if it cannot be), else every full caption in turn (class fastest)."""
    if caption is not None:
        return [scheme.parse(caption)] * n
    sizes = [len(w) for w in scheme.words]
    classes = len(scheme.class_words)
    rows = []
    for i in range(n):
        label, rest = i % classes, i // classes
        bins = []
        for size in sizes:
            bins.append(rest % size)
            rest //= size
        rows.append((label, *bins, *[None] * (2 - len(bins))))
    return rows


def write_captioned_samples(
    model: Any, scheme: CaptionScheme, captions: list, path: str | os.PathLike
) -> np.ndarray:
    """Write Stage-II's images for ``captions`` (one each, fresh noise) to the .npy ``path``:
    float32 in [0, 1], (N, H, W). Returns the first 32 captions' (Stage-I enlarged,
    Stage-II) images interleaved, for a grid."""
    first = None
    with unit_image_file(path, len(captions), model.image_shape) as write:
        for start in range(0, len(captions), CHUNK):
            part = captions[start : start + CHUNK]
            text = model.backend.asarray(embed_captions(scheme, part, model.config.text_dim))
            low, high = both_stages(model, model.sample_noise(len(part)), text)
            write(high)
            first = side_by_side(low[:32], high[:32]) if first is None else first
    return first
