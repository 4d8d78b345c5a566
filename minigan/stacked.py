"""Stacked MNIST in a run: ``--dataset stacked-mnist``, 1,000 modes to find.

Three MNIST digits drawn independently as the three channels of one image
(``minigan.data.stacked_mnist``), so an image's mode is its triple of digits, one of
10^3 = 1,000 (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018, Table 2;
Unrolled GAN, Metz et al. 2016). This module is the run's side:

- ``load_images``: the training set, ``TRAIN_IMAGES`` images (PacGAN's Table-2 setting)
  drawn once by the run's seed from MNIST's training split, float32 (N, 3, 28, 28) in
  [-1, 1];
- ``write_samples``: ``--sample N`` from a Stacked MNIST checkpoint, an (N, 3, 28, 28)
  float32 .npy file in [0, 1] (channels first, as ``stacked_mnist_modes`` reads them);
- ``ModeScorer`` (``--eval-every``) and ``real_figures`` (``examples/evaluate.py
  --stacked``): the papers' measures through the project's MNIST classifier
  (``minigan.metrics.modes.stacked_mnist_modes``): modes hit of 1,000, and the KL of
  the modes' histogram to uniform, on 26,000 samples.

Only the unconditional image models train on it: the labelled ones would need a label
per channel, and a translation or text-to-image model has no use for noise-drawn
triples.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from minigan.backend import to_host
from minigan.data import stacked_mnist, to_gan_range
from minigan.images import float32_npy_file, unit_images

DATASET = "stacked-mnist"
SHAPE = (3, 28, 28)
MODELS = ("gan", "dcgan", "lsgan", "wgan", "wgan-gp")  # unconditional, drawing images
# PacGAN's Table-2 (VEEGAN) setting: a fixed set of 25,600 training images, drawn once
# (github.com/fjxmlzn/PacGAN, stacked_MNIST_experiments/VEEGAN_experiment/model.py,
# ``num_training_sample=25600``; that folder's config.py passes 128,000 instead, which
# --train-size 128000 gives). Their draw takes the three digits from MNIST's 70,000
# training and test images together; here from the 60,000 training images only, so that
# the test split stays unseen by G and D.
TRAIN_IMAGES = 25_600
EVAL_SAMPLES = 26_000  # PacGAN's num_test_sample: the samples scored, and real ones beside
REAL_SEED = 0  # the real test-split images evaluate.py --stacked scores beside a file
CHUNK = 1000  # images generated at a time by --sample and --eval-every
# PacGAN's Table 2 (Lin et al. 2018): modes of 1,000 and KL to uniform, 26,000 samples.
PAPER_TABLE = {
    "DCGAN": ("99.0", "3.40"),
    "DCGAN (PacGAN's re-run)": ("78.9 +- 6.5", "4.50"),
    "Unrolled GAN": ("48.7", "4.32"),
    "VEEGAN": ("150.0", "2.95"),
    "PacDCGAN2": ("1000.0", "0.06"),
}


def refusal(name: str) -> str:
    """Why ``--model name`` cannot train on Stacked MNIST, in one line."""
    return (f"--dataset {DATASET} trains the unconditional image models ({', '.join(MODELS)}); "
            f"--model {name} cannot learn from it: choose one of those")  # fmt: skip


def load_images(n: int, seed: int, root: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training images drawn by ``seed``: float32 (n, 3, 28, 28) in [-1, 1], and the
    digit of each channel, int64 (n, 3)."""
    images, digits = stacked_mnist(n, seed, "train", root)
    channels = to_gan_range(images.reshape(-1, *SHAPE[1:]), flatten=False)  # each channel
    return channels.reshape(n, *SHAPE), digits


def real_images(n: int = EVAL_SAMPLES, seed: int = REAL_SEED, root: Any = None) -> np.ndarray:
    """``n`` real Stacked MNIST images of MNIST's test split, float32 in [0, 1]: the real
    data's own figures, through the same classifier."""
    images, _ = stacked_mnist(n, seed, "test", root)
    return images.astype(np.float32) / 255


def check_samples(samples: Any, where: str) -> None:
    """Refuse, before any classifier loads, what is not Stacked MNIST images (N, 3, 28, 28)
    of floats in [0, 1]; ``where`` names the source in the message."""
    shape = getattr(samples, "shape", ())
    if len(shape) != 4 or tuple(shape[1:]) != SHAPE or shape[0] == 0:
        hint = " (channels last? np.moveaxis(x, -1, 1) puts them first)" if (
            len(shape) == 4 and tuple(shape[1:]) == (28, 28, 3)) else ""  # fmt: skip
        raise ValueError(f"{where}: expected Stacked MNIST images (N, 3, 28, 28), as "
                         f"--sample N writes from a --dataset {DATASET} run; got shape "
                         f"{tuple(shape)}{hint}")  # fmt: skip
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"{where}: expected floats in [0, 1], got {samples.dtype}")
    low, high = float(samples.min()), float(samples.max())
    if not (np.isfinite(low) and np.isfinite(high)) or low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"{where}: expected pixel values in [0, 1], got {low:.4g} to {high:.4g}")


def measures(samples: Any, evaluator: Any) -> dict[str, Any]:
    """Modes of 1,000 and KL to uniform of ``samples`` (N, 3, 28, 28) in [0, 1]."""
    from minigan.metrics.modes import stacked_mnist_modes  # the metrics load when asked for

    return stacked_mnist_modes(samples, evaluator)


def summary(scores: dict[str, Any]) -> str:
    """One line: "812 of 1000 modes, KL 0.412 (26000 samples)"."""
    return f"{scores['modes']} of 1000 modes, KL {scores['kl']:.3f} ({scores['n_samples']} samples)"


def paper_lines() -> list[str]:
    """PacGAN's Table 2, a line per row, to print beside a measure."""
    return [f"  {name:24} {modes:>12} modes, KL {kl}" for name, (modes, kl) in PAPER_TABLE.items()]


def generate(gan: Any, z: Any) -> np.ndarray:
    """G's images for the noise ``z``, float32 (len(z), 3, 28, 28) in [0, 1] on the host,
    ``CHUNK`` at a time (one read from the device each)."""
    parts = []
    for start in range(0, len(z), CHUNK):
        images = to_host(gan.generate(z[start : start + CHUNK])).reshape(-1, *SHAPE)
        parts.append(unit_images(images).transpose(0, 3, 1, 2))  # (N, H, W, 3) -> channels first
    return np.ascontiguousarray(np.concatenate(parts))


def write_samples(gan: Any, n: int, path: str | os.PathLike) -> np.ndarray:
    """G's images for ``n`` fresh noise vectors, float32 (n, 3, 28, 28) in [0, 1], to the
    .npy ``path`` (atomically), ``CHUNK`` at a time; returns the first 64 laid out for a
    picture, (64, 28, 28, 3)."""
    first = None
    with float32_npy_file(path, (n, *SHAPE)) as write:
        for start in range(0, n, CHUNK):
            images = generate(gan, gan.sample_noise(min(CHUNK, n - start)))
            write(images)
            first = images[:64].transpose(0, 2, 3, 1) if first is None else first
    return first


class ModeScorer:
    """``--eval-every`` on Stacked MNIST: modes and KL of G's images for ``n`` noise
    vectors (the papers': 26,000) fixed by the run's seed, through the cached MNIST
    classifier (trained first if there is none), on the run's backend.

    Reads from the device, after the epoch and never inside a step: one per ``CHUNK``
    images (``generate``), and the classifier's, two per 2,500 images and channel
    (``classify``'s logits and features); tests/test_stacked_run.py counts them."""

    def __init__(self, gan: Any, seed: int, n: int = EVAL_SAMPLES, data_root: Any = None):
        from minigan.metrics.evaluator import Evaluator  # it may train its classifier

        self.evaluator = Evaluator.load_or_train(data_root=data_root, backend=gan.backend)
        noise = np.random.default_rng([seed, 2]).standard_normal((n, gan.config.latent_dim))
        self.z = gan.backend.asarray(noise, dtype=np.float32)

    def score(self, gan: Any, epoch: int, log: Callable[[str], Any] = print) -> dict[str, Any]:
        scores = measures(generate(gan, self.z), self.evaluator)
        log(f"epoch {epoch}: {summary(scores)}")
        return {"modes": scores["modes"], "kl": scores["kl"]}
