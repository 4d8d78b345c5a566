"""``Evaluator``: FID, Inception Score and class coverage of generated MNIST digits
(or Fashion-MNIST garments).

    evaluator = Evaluator.load_or_train()     # the first time: trains (a few minutes)
    scores = evaluator.evaluate(samples)      # samples: float (N, 28, 28) in [0, 1]
    scores["fid"], scores["inception_score"], scores["classes_covered"], scores["speckle"]

    Evaluator.load_or_train(dataset="fashion")  # the same, against Fashion-MNIST

The classifier (see ``classifier``) is trained once per dataset and cached, with the
mean and covariance of its features on the dataset's 10,000 test images, in one file:
``$XDG_CACHE_HOME/minigan/mnist_classifier.npz`` (``fashion_classifier.npz`` for
Fashion-MNIST; ``~/.cache/minigan/...`` when the variable is unset), a
``minigan.checkpoint`` file. Once cached, evaluating needs neither the dataset nor
training. A file that is missing, damaged or of another format version is replaced by
training again; delete it to force that. FIDs against different datasets, or through
different classifiers, are different scales: compare a run only with runs scored the
same way.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from minigan import nn
from minigan.backend import Backend, backend_of, get_array_module, to_host
from minigan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minigan.data import MNIST as MNIST_FILES
from minigan.data import cache_folder, load_fashion_mnist, load_mnist
from minigan.losses import log_softmax
from minigan.metrics.classifier import (
    CLASSIFIER_DATA,
    EPOCHS,
    FEATURE_DIM,
    MNIST,
    NUM_CLASSES,
    ClassifierData,
    build_classifier,
    classify,
    train_classifier,
    unit_range,
)
from minigan.metrics.scores import (
    class_histogram,
    classes_covered,
    feature_statistics,
    frechet_distance,
    inception_score,
    kl_to_uniform,
    speckle_share,
)
from minigan.nn.checks import check_array

CACHE_FILE = "mnist_classifier.npz"  # and "fashion_classifier.npz": see cache_file
# Raise it whenever the file's content or the classifier changes. 2: the convolutional
# classifier, and the real test images' speckle share.
FORMAT_VERSION = 2

# How far outside [0, 1] a sample may stray (float rounding of e.g. (tanh + 1) / 2).
RANGE_TOLERANCE = 1e-3

MIN_SAMPLES = 2  # the fewest samples the scores take: a covariance needs two
TRAIN_SIZE = 60000  # num_train=None trains on all the training images (MNIST and Fashion)
INFO_KEYS = ("test_accuracy", "train_seconds", "epochs", "num_train", "seed")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/minigan`` (or ``~/.cache/minigan``), beside the MNIST download."""
    return cache_folder(MNIST_FILES).parent


def save_to_cache(trained: Any, path: Path, what: str) -> str:
    """``trained.save(path)``, saying where it went ("cached at PATH"); a cache that cannot
    be written (read-only, full) gives a warning and "not cached": what was just trained
    is still used. ``what`` names it in the warning ("the classifier")."""
    try:
        trained.save(path)
    except OSError as error:
        warnings.warn(f"cannot cache {what} at {path}: {error}", stacklevel=3)
        return "not cached"
    return f"cached at {path}"


def classifier_data(dataset: str) -> ClassifierData:
    """The ``ClassifierData`` of ``dataset`` ("mnist" or "fashion"); a clear error otherwise."""
    if dataset not in CLASSIFIER_DATA:
        raise ValueError(
            f"the metrics have a classifier for {' and '.join(CLASSIFIER_DATA)} only, "
            f"not {dataset!r}: FID and the other scores are not available for it"
        )
    return CLASSIFIER_DATA[dataset]


def cache_file(dataset: str = "mnist") -> str:
    """The name of ``dataset``'s cached classifier: ``mnist_classifier.npz``, ..."""
    return f"{classifier_data(dataset).name}_classifier.npz"


class Evaluator:
    """Scores images by how a classifier sees them, against its dataset's test set.

    Attributes:
        model: the classifier (``nn.Sequential``), on ``backend``.
        backend: where the classifier runs; the statistics are always float64 NumPy.
        test_mean, test_cov: mean (256,) and covariance (256, 256) of the test images'
            features: the reference every FID is measured against.
        test_speckle: the share of isolated bright pixels in the test images
            (``speckle_share``): the reference for a sample's.
        info: how the classifier was made: ``test_accuracy`` (a fraction),
            ``train_seconds``, ``epochs``, ``num_train``, ``seed``.
        data: the dataset it was trained on (a ``ClassifierData``: MNIST or FASHION),
            whose pixel statistics standardise its inputs and whose classes it names.
    """

    def __init__(
        self,
        model: nn.Sequential,
        test_mean: np.ndarray,
        test_cov: np.ndarray,
        info: dict[str, float],
        *,
        test_speckle: float,
        dataset: str = "mnist",
    ):
        self.model = model
        self.backend = backend_of(model.parameters()[0].data)
        self.test_mean = test_mean
        self.test_cov = test_cov
        self.test_speckle = test_speckle
        self.info = info
        self.data = classifier_data(dataset)

    def __repr__(self) -> str:
        return (
            f"Evaluator(dataset={self.data.name!r}, "
            f"test_accuracy={self.info['test_accuracy']:.4f}, backend={self.backend.name!r})"
        )

    # --- making one ----------------------------------------------------------------

    @classmethod
    def train(
        cls,
        data_root: str | os.PathLike | None = None,
        backend: str | Backend = "numpy",
        *,
        epochs: int = EPOCHS,
        num_train: int | None = None,
        seed: int = 0,
        progress: bool = True,
        dataset: str = "mnist",
    ) -> Evaluator:
        """Train a classifier on ``dataset`` ("mnist" or "fashion") and measure it on its
        test set (no cache involved).

        ``num_train`` keeps only the first that many training images (both datasets'
        order is already mixed): tests use a few thousand for a quick, weaker classifier.
        """
        data = classifier_data(dataset)
        load = load_mnist if data is MNIST else load_fashion_mnist
        images, labels = load("train", root=data_root)
        test_images, test_labels = load("test", root=data_root)
        images, labels = images[:num_train], labels[:num_train]
        start = time.perf_counter()
        model = train_classifier(
            images,
            labels,
            epochs=epochs,
            seed=seed,
            backend=backend,
            progress=progress,
            data=data,
        )
        seconds = time.perf_counter() - start
        logits, features = classify(model, unit_range(test_images), data=data)
        test_mean, test_cov = feature_statistics(features)
        info = {
            "test_accuracy": float((logits.argmax(axis=1) == test_labels).mean()),
            "train_seconds": seconds,
            "epochs": epochs,
            "num_train": len(images),
            "seed": seed,
        }
        return cls(
            model,
            test_mean,
            test_cov,
            info,
            test_speckle=speckle_share(test_images / 255),
            dataset=data.name,
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the classifier and the test statistics to ``path``, a checkpoint .npz.

        ``save_checkpoint`` writes atomically: a crash never leaves half a file.
        """
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format_version": FORMAT_VERSION,
            "dataset": self.data.name,
            "classifier": self.model.state_dict(),
            "test_mean": self.test_mean,
            "test_cov": self.test_cov,
            "test_speckle": self.test_speckle,
            "info": self.info,
        }
        save_checkpoint(path, state)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        backend: str | Backend = "numpy",
        dataset: str | None = None,
    ) -> Evaluator:
        """Read a file written by ``save``, checking everything in it; ``dataset``, when
        given, is the one the classifier must have been trained on.

        Raises:
            CheckpointError: the file is missing, unreadable, damaged, of another
                format version, holds something else, or a classifier of another dataset.
        """
        state = load_checkpoint(path)  # raises CheckpointError if it cannot be read
        version = state.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: format version {version}, this minigan reads {FORMAT_VERSION}"
            )
        # Files written before Fashion-MNIST had a classifier say nothing: they are MNIST's.
        saved = state.get("dataset", "mnist")
        if saved not in CLASSIFIER_DATA:
            raise CheckpointError(f"{path}: a classifier of an unknown dataset {saved!r}")
        if dataset is not None and saved != dataset:
            raise CheckpointError(
                f"{path} holds a classifier of {CLASSIFIER_DATA[saved].title}, not of "
                f"{classifier_data(dataset).title}"
            )
        model = build_classifier()
        try:
            model.load_state_dict(state["classifier"])
            test_mean, test_cov = state["test_mean"], state["test_cov"]
            test_speckle = float(state["test_speckle"])
            info = {key: state["info"][key] for key in INFO_KEYS}
        except (KeyError, ValueError, TypeError) as error:
            raise CheckpointError(f"{path}: not a classifier of this minigan ({error})") from None
        d = FEATURE_DIM
        if np.shape(test_mean) != (d,) or np.shape(test_cov) != (d, d):
            raise CheckpointError(
                f"{path}: test statistics of shapes {np.shape(test_mean)} and "
                f"{np.shape(test_cov)}, expected ({d},) and ({d}, {d})"
            )
        arrays = [test_mean, test_cov, test_speckle, *(p.data for p in model.parameters())]
        if not all(np.isfinite(a).all() for a in arrays):
            raise CheckpointError(f"{path}: holds NaN or infinite values")
        return cls(
            model.to(backend), test_mean, test_cov, info, test_speckle=test_speckle, dataset=saved
        )

    @classmethod
    def load_or_train(
        cls,
        cache_dir: str | os.PathLike | None = None,
        data_root: str | os.PathLike | None = None,
        backend: str | Backend = "numpy",
        *,
        epochs: int = EPOCHS,
        num_train: int | None = None,
        progress: bool = True,
        dataset: str = "mnist",
    ) -> Evaluator:
        """The cached evaluator, or a freshly trained one that is then cached.

        Args:
            cache_dir: the folder of ``mnist_classifier.npz`` and
                ``fashion_classifier.npz`` (default: ``default_cache_dir()``).
            data_root: where the dataset is, for training (see ``minigan.data``).
            backend: where the classifier runs (``"numpy"`` or ``"cupy"``).
            epochs, num_train: the training recipe, used only when there is no usable
                cache (the tests train a small one).
            progress: report training on stderr (a message and a progress bar).
            dataset: "mnist" (the default) or "fashion": which classifier, and which
                test set the FID is measured against.

        A damaged cache file gives a ``UserWarning`` saying why, then retraining.
        """
        path = Path(cache_dir if cache_dir is not None else default_cache_dir())
        path = path / cache_file(dataset)
        if path.exists():
            try:
                cached = cls.load(path, backend, dataset)
            except CheckpointError as error:
                warnings.warn(f"{error}; training a new classifier", stacklevel=2)
            else:
                wanted = {"epochs": epochs, "num_train": num_train or TRAIN_SIZE}
                trained = {key: cached.info[key] for key in wanted}
                if trained == wanted:
                    return cached
                # Scores are comparable only through the same classifier: never reuse
                # one trained with another recipe (a quick test one, say) silently.
                warnings.warn(
                    f"{path} holds a classifier trained with {trained}, not {wanted}; "
                    f"training a new one",
                    stacklevel=2,
                )
        elif progress:
            print(
                f"minigan.metrics: no classifier cached at {path}: training one "
                f"(once; about 3 CPU minutes)",
                file=sys.stderr,
            )
        evaluator = cls.train(
            data_root,
            backend,
            epochs=epochs,
            num_train=num_train,
            progress=progress,
            dataset=dataset,
        )
        where = save_to_cache(evaluator, path, "the classifier")
        if progress:
            print(
                f"minigan.metrics: classifier test accuracy "
                f"{evaluator.info['test_accuracy']:.2%}, trained in "
                f"{evaluator.info['train_seconds']:.0f} s, {where}",
                file=sys.stderr,
            )
        return evaluator

    # --- scoring -------------------------------------------------------------------

    def evaluate(self, samples: Any) -> dict[str, Any]:
        """All the scores of ``samples``: float images (N, 28, 28) or (N, 784) in [0, 1].

        Returns:
            ``fid`` (0 = the test set's feature statistics; lower is better),
            ``inception_score`` (1 to 10; higher is better), ``class_histogram`` (the
            fraction of samples classified as each class: the digits 0-9, or
            ``data.class_names`` in turn), ``classes_covered`` (classes with at least
            1% of the samples), ``kl_to_uniform`` (0 = balanced, log 10 = 2.30 = one
            class only), ``speckle`` (the share of isolated bright pixels,
            ``speckle_share``) beside ``real_speckle`` (the test images' share),
            ``n_samples``. Plain Python numbers, ready for ``json.dumps``.
        """
        pixels = check_samples(samples)
        logits, features = classify(self.model, pixels, data=self.data)
        histogram = class_histogram(logits.argmax(axis=1), NUM_CLASSES)
        return {
            "fid": self._fid(features),
            "inception_score": inception_score(log_softmax(logits)),
            "classes_covered": classes_covered(histogram),
            "class_histogram": histogram.tolist(),
            "kl_to_uniform": kl_to_uniform(histogram),
            "speckle": speckle_share(to_host(pixels).reshape(-1, 28, 28)),
            "real_speckle": self.test_speckle,
            "n_samples": len(features),
        }

    def fid(self, samples: Any) -> float:
        """The FID alone of ``samples`` (same input as ``evaluate``)."""
        return self._fid(self._classify(samples)[1])

    def _fid(self, features: np.ndarray) -> float:
        mean, cov = feature_statistics(features)
        return frechet_distance(mean, cov, self.test_mean, self.test_cov)

    def _classify(self, samples: Any) -> tuple[np.ndarray, np.ndarray]:
        return classify(self.model, check_samples(samples), data=self.data)


def check_samples(samples: Any) -> Any:
    """Return ``samples`` as (N, 784) after checking shape, dtype and range [0, 1].

    Raises:
        TypeError: not an array, or not floating point.
        ValueError: a wrong shape, fewer than 2 samples, NaN/inf, or values outside
            [0, 1] (the message says how to convert the usual other ranges).

    Warns (UserWarning) when there are fewer samples than features (256): the
    feature covariance is then singular and the FID unreliable.
    """
    where = "Evaluator"
    check_array(
        where, samples, name="samples",
        dtype_hint="uint8 images in [0, 255] convert with images.astype('float32') / 255",
    )  # fmt: skip
    xp = get_array_module(samples)
    shape = tuple(samples.shape)
    if len(shape) < 2 or shape[1:] not in ((784,), (28, 28), (1, 28, 28)):
        raise ValueError(f"{where}: expected samples (N, 28, 28) or (N, 784), got {shape}")
    n = shape[0]
    if n < MIN_SAMPLES:
        raise ValueError(f"{where}: need at least {MIN_SAMPLES} samples for a covariance, got {n}")
    # One explicit read of the extremes (on a GPU, one sync): min and max are NaN if
    # any value is, and +-inf if any value is infinite, so they also tell finiteness.
    low, high = (float(v) for v in to_host(xp.stack([samples.min(), samples.max()])))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{where}: samples contain NaN or infinite values")
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        if low >= -1 - RANGE_TOLERANCE and high <= 1 + RANGE_TOLERANCE:
            hint = "this looks like [-1, 1] (a Tanh output): use (x + 1) / 2"
        elif low >= -RANGE_TOLERANCE and high <= 255 + RANGE_TOLERANCE:
            hint = "this looks like [0, 255]: use x / 255"
        else:
            hint = "rescale them into [0, 1]"
        raise ValueError(
            f"{where}: expected pixel values in [0, 1], got values from {low:.4g} to "
            f"{high:.4g}; {hint}"
        )
    if n < FEATURE_DIM:
        warnings.warn(
            f"{where}: FID from {n} samples is unreliable: the covariance of "
            f"{FEATURE_DIM} features needs more than {FEATURE_DIM} samples to be "
            f"full rank (10000 is the usual number)",
            UserWarning,
            stacklevel=4,
        )
    return samples.reshape(n, 784)
