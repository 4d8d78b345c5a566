"""The classifier whose eyes the scores look through (one for MNIST, one for Fashion-MNIST).

FID and the Inception Score need a network that has learned what digits look like.
This is a plain MLP, built from minigan's own layers and trained with minigan's Adam
and ``CrossEntropyLoss``, so nothing in the scores comes from outside the library:

    image in [0, 1] -> standardise -> Linear(784, 512) -> ReLU
                                    -> Linear(512, 256) -> ReLU   (features: 256 numbers)
                                    -> Linear(256, 10)            (logits: one per digit)

The features of an image are the last hidden layer's activations: the representation
the classifier has learned to separate digits with, where distances mean more than
they do between raw pixels. Trained with the default recipe it reaches 98.6% test
accuracy in 8 epochs: 22 s measured on a 2-core CPU, but several times longer while
other processes compete for the cores (OpenBLAS's two threads then wait on each other).

The same network, trained the same way on Fashion-MNIST (``FASHION``: ten kinds of
garment instead of ten digits, standardised with that dataset's own pixel statistics),
scores Fashion-MNIST GANs; a ``ClassifierData`` record holds all that differs.
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from minigan import nn
from minigan.backend import Backend, backend_of, get_backend, to_host
from minigan.data import BatchIterator
from minigan.losses import CrossEntropyLoss
from minigan.optim import Adam

LAYER_SIZES = (784, 512, 256, 10)  # input, hidden, hidden (the features), classes
NUM_CLASSES = LAYER_SIZES[-1]
FEATURE_DIM = LAYER_SIZES[-2]


@dataclass(frozen=True)
class ClassifierData:
    """A dataset the classifier can learn, and what scoring against it needs.

    Attributes:
        name: its ``--dataset`` name, e.g. ``"fashion"``; also names the cache file.
        title: for messages, e.g. ``"Fashion-MNIST"``.
        pixel_mean, pixel_std: of all its training pixels scaled to [0, 1]: the
            classifier's inputs are standardised with them (mean 0, std 1), which
            suits the PyTorch-style initialisation of Linear (MNIST: 98.6% test
            accuracy with the default recipe, 98.3% on raw [0, 1] pixels).
        class_names: what each of the 10 classes shows.
    """

    name: str
    title: str
    pixel_mean: float
    pixel_std: float
    class_names: tuple[str, ...]


MNIST = ClassifierData("mnist", "MNIST", 0.1307, 0.3081, tuple(str(k) for k in range(10)))
FASHION = ClassifierData(
    "fashion",
    "Fashion-MNIST",
    0.2860,
    0.3530,
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)  # fmt: skip
CLASSIFIER_DATA = {data.name: data for data in (MNIST, FASHION)}

# The default recipe: Adam whose learning rate falls from LR to 0 along a cosine.
EPOCHS = 8
BATCH_SIZE = 128
LR = 1e-3


def build_classifier(
    rng: np.random.Generator | None = None, dtype: Any = np.float32
) -> nn.Sequential:
    """A freshly initialised MLP with ``LAYER_SIZES`` (untrained)."""
    rng = rng if rng is not None else np.random.default_rng()
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(LAYER_SIZES):
        layers += [nn.Linear(n_in, n_out, rng=rng, dtype=dtype), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no ReLU after the logits


def unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) to float32 pixels (N, 784) in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255


def standardize(pixels: Any, data: ClassifierData = MNIST) -> Any:
    """Pixels in [0, 1], shape (N, 784), to the standardised inputs the MLP trained on
    ``data`` expects."""
    mean, std = pixels.dtype.type(data.pixel_mean), pixels.dtype.type(data.pixel_std)
    return (pixels - mean) / std


def classify(
    model: nn.Sequential, pixels: Any, batch_size: int = 2500, data: ClassifierData = MNIST
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, 10) and features (N, 256) of images in [0, 1], as float64 host arrays.

    ``pixels`` (N, 784) may live on either backend; it is moved to the model's and
    processed in chunks of ``batch_size``, so memory stays small for any N. The
    features are the input of the last layer, read off on the way through. ``data``
    is the dataset ``model`` was trained on (its pixel statistics standardise).
    """
    backend = backend_of(model.parameters()[0].data)
    dtype = model.parameters()[0].dtype
    logits, features = [], []
    for start in range(0, pixels.shape[0], batch_size):
        x = standardize(backend.asarray(pixels[start : start + batch_size], dtype), data)
        for layer in model.layers[:-1]:
            x = layer(x)
        features.append(to_host(x).astype(np.float64))
        logits.append(to_host(model.layers[-1](x)).astype(np.float64))
    return np.concatenate(logits), np.concatenate(features)


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    seed: int = 0,
    backend: str | Backend = "numpy",
    progress: bool = True,
    data: ClassifierData = MNIST,
) -> nn.Sequential:
    """Train a classifier on uint8 images (N, 28, 28) of ``data`` and their labels (N,).

    Adam with a cosine learning-rate schedule: at step t of T the rate is
    lr (1 + cos(pi t / T)) / 2, falling smoothly from lr to 0, so the last epochs
    settle into a minimum instead of bouncing around it (measured, seed 0: 98.6% test
    accuracy after 8 epochs, against 98.1% with a constant rate). Same seed, same model.
    """
    backend = get_backend(backend)
    model = build_classifier(np.random.default_rng(seed)).to(backend)
    optimizer = Adam(model.parameters(), lr=lr)  # after .to(): it keeps the arrays
    loss_fn = CrossEntropyLoss()
    x = standardize(unit_range(images), data)
    loader = BatchIterator(
        x, labels.astype(np.int64), batch_size=batch_size, seed=seed, backend=backend
    )
    total_steps = epochs * len(loader)
    bar = tqdm(
        total=total_steps,
        desc=f"training the {data.title} classifier",
        unit="step",
        disable=not progress,
        file=sys.stderr,
    )
    step = 0
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.lr = lr * (1 + math.cos(math.pi * step / total_steps)) / 2
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            model.backward(loss_fn.backward())
            optimizer.step()
            step += 1
            bar.update()
        # One explicit read per epoch (on a GPU, a sync): the last batch's loss.
        bar.set_postfix(loss=f"{float(to_host(loss)):.4f}")
    bar.close()
    return model
