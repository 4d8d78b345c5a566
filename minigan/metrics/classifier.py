"""The classifier whose eyes the scores look through (one for MNIST, one for Fashion-MNIST).

FID and the Inception Score need a network that has learned what digits look like.
This is a small convolutional network in the manner of LeNet (LeCun et al., 1998),
built from minigan's own layers and trained with minigan's Adam and
``CrossEntropyLoss``, so nothing in the scores comes from outside the library:

    image (1, 28, 28) in [0, 1] -> standardise
      -> Conv2d(1, 32, 5, stride 2, padding 2)  -> ReLU     32 maps of 14x14
      -> Conv2d(32, 64, 5, stride 2, padding 2) -> ReLU     64 maps of 7x7
      -> Flatten -> Linear(3136, 256)           -> ReLU     (features: 256 numbers)
      -> Linear(256, 10)                                    (logits: one per digit)

As in LeNet, convolutions find local strokes and the image shrinks twice before the
fully connected layers; here the shrinking is the convolutions' own stride of 2
rather than separate subsampling layers. A convolution applies the same 5x5 detector
at every position, so a stroke is recognised wherever it is, and what the network
learns is a digit's shape: a multi-layer perceptron on the 784 pixels can be fooled
by images that put roughly the right ink in roughly the right places, which is what
a generator's near-misses (5/6/8 hybrids, salt-and-pepper noise) do.

The features of an image are the last hidden layer's activations: the representation
the classifier has learned to separate digits with, where distances mean more than
they do between raw pixels. Training moves each image by up to two pixels each way
(``shifted``), and the learning rate falls along a cosine (``train_classifier``).
Its test accuracy and training time: benchmarks/RESULTS.md, "Measuring sample quality".

The same network, trained the same way on Fashion-MNIST (``FASHION``: ten kinds of
garment instead of ten digits, standardised with that dataset's own pixel statistics),
scores Fashion-MNIST GANs; a ``ClassifierData`` record holds all that differs.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from minigan import nn
from minigan.backend import Backend, backend_of, get_array_module, get_backend, to_host
from minigan.data import BatchIterator
from minigan.losses import CrossEntropyLoss
from minigan.optim import Adam

# The network (see the module docstring): two strided 5x5 convolutions, then two
# fully connected layers. Each convolution halves the image (stride 2, padding 2):
# 28x28 -> 14x14 -> 7x7.
CHANNELS = (1, 32, 64)  # input, first convolution, second convolution
KERNEL_SIZE = 5
IMAGE_SIZE = 28
FEATURE_DIM = 256  # the hidden fully connected layer: the features FID compares
NUM_CLASSES = 10
MAX_SHIFT = 2  # training images move by up to 2 pixels each way: see shifted


@dataclass(frozen=True)
class ClassifierData:
    """A dataset the classifier can learn, and what scoring against it needs.

    Attributes:
        name: its ``--dataset`` name, e.g. ``"fashion"``; also names the cache file.
        title: for messages, e.g. ``"Fashion-MNIST"``.
        pixel_mean, pixel_std: of all its training pixels scaled to [0, 1]: the
            classifier's inputs are standardised with them (mean 0, std 1), which
            suits the PyTorch-style initialisation of its layers.
        class_names: what each class shows (10 of them, but for a domain classifier's 2);
            the classifier has one logit per class.
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
BATCH_SIZE = 64
LR = 1e-3


def build_classifier(
    rng: np.random.Generator | None = None,
    dtype: Any = np.float32,
    *,
    channels: tuple[int, int, int] = CHANNELS,
    feature_dim: int = FEATURE_DIM,
    image_size: int = IMAGE_SIZE,
    num_classes: int = NUM_CLASSES,
) -> nn.Sequential:
    """A freshly initialised classifier (untrained): see the module docstring.

    ``channels``, ``feature_dim`` and ``image_size`` (a multiple of 4) shrink it for the
    gradient checks; the metrics always use the defaults. ``num_classes``: its logits
    (2 for the A-vs-B domain classifier of minigan.metrics.translation).
    """
    rng = rng if rng is not None else np.random.default_rng()
    k, pad = KERNEL_SIZE, KERNEL_SIZE // 2
    c_in, c_1, c_2 = channels
    side = image_size // 4  # two stride-2 convolutions
    return nn.Sequential(
        nn.Conv2d(c_in, c_1, k, stride=2, padding=pad, rng=rng, dtype=dtype),
        nn.ReLU(),
        nn.Conv2d(c_1, c_2, k, stride=2, padding=pad, rng=rng, dtype=dtype),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c_2 * side * side, feature_dim, rng=rng, dtype=dtype),
        nn.ReLU(),  # its output: the features
        nn.Linear(feature_dim, num_classes, rng=rng, dtype=dtype),  # the logits
    )


def unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) to float32 pixels (N, 784) in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255


def standardize(pixels: Any, data: ClassifierData = MNIST) -> Any:
    """Pixels in [0, 1], shape (N, 784), to the classifier's inputs: standardised with
    ``data``'s pixel statistics, as images (N, 1, 28, 28)."""
    mean, std = pixels.dtype.type(data.pixel_mean), pixels.dtype.type(data.pixel_std)
    return ((pixels - mean) / std).reshape(len(pixels), 1, IMAGE_SIZE, IMAGE_SIZE)


def shifted(pixels: Any, rng: np.random.Generator, most: int = MAX_SHIFT) -> Any:
    """Each image of ``pixels`` (N, 784) in [0, 1] moved by its own random whole-pixel
    offset of at most ``most`` pixels along each axis, the pixels moved in from
    outside black (0).

    Training on digits moved a little teaches the classifier that a digit is the
    same digit wherever it sits: it then judges shape, not position.
    """
    xp = get_array_module(pixels)
    n, size = len(pixels), IMAGE_SIZE
    framed = xp.zeros((n, size + 2 * most, size + 2 * most), pixels.dtype)
    framed[:, most : most + size, most : most + size] = pixels.reshape(n, size, size)
    # Image i is read from its frame at rows top[i] .. top[i] + 27, columns left[i] ..:
    # the offsets drawn on the host, the indices built on the pixels' device.
    top, left = (xp.asarray(rng.integers(0, 2 * most + 1, n)) for _ in range(2))
    rows = top[:, None, None] + xp.arange(size)[None, :, None]
    columns = left[:, None, None] + xp.arange(size)[None, None, :]
    return framed[xp.arange(n)[:, None, None], rows, columns].reshape(n, size * size)


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
    settle into a minimum instead of bouncing around it. Every batch is moved by
    ``shifted``. Same seed, same model.
    """
    backend = get_backend(backend)
    rng = np.random.default_rng(seed)
    model = build_classifier(rng, num_classes=len(data.class_names)).to(backend)
    optimizer = Adam(model.parameters(), lr=lr)  # after .to(): it keeps the arrays
    loss_fn = CrossEntropyLoss()
    loader = BatchIterator(
        unit_range(images), labels.astype(np.int64), batch_size=batch_size, seed=seed,
        backend=backend,
    )  # fmt: skip
    shifts = np.random.default_rng(seed + 1)  # the offsets of ``shifted``
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
            loss = loss_fn(model(standardize(shifted(xb, shifts), data)), yb)
            model.backward(loss_fn.backward())
            optimizer.step()
            step += 1
            bar.update()
        # One explicit read per epoch (on a GPU, a sync): the last batch's loss.
        bar.set_postfix(loss=f"{float(to_host(loss)):.4f}")
    bar.close()
    return model
