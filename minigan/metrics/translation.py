"""``TranslationJudge``: did an unpaired translation between plain and striped digits work?

CycleGAN's built-in task (``minigan.data.unpaired_mnist``) has two domains: A, plain
MNIST digits, and B, digits restyled as striped strokes on a textured background
(``minigan.data.stripe_digits``). A good pair of translators G_AB: A -> B and
G_BA: B -> A changes the style and keeps the digit. Each measure below asks one part of
that, through a classifier built and trained like the metrics' MNIST classifier
(``classifier``; same network, same recipe):

- **class preservation**, both ways: the digit classifier of the target domain reads
  the source's label off the translation. ``class_ab``: the share of G_AB(a) that the
  classifier of striped digits (``STRIPED``, trained on B's training half) gives a's
  label; ``class_ba``: the share of G_BA(b) that the MNIST classifier (the
  ``Evaluator``'s, never retrained here) gives b's label.
- **domain transfer**, both ways: a domain classifier (``DOMAINS``: the same network
  with 3 logits) says the translation happened. ``transfer_ab``: the share of G_AB(a)
  it calls B; ``transfer_ba``: of G_BA(b), A. It learns real A, real B, and a third
  class, "neither": digits given half of B's style (``half_styled``: solid strokes on
  B's texture, or B's stripes on black). Trained on A and B alone, it calls anything
  on a grey ground B and anything on black A, so a G_AB that only greys the ground
  would pass; with the third class, only a whole translation does.
- **cycle reconstruction error**, both ways: ``cycle_a = mean |G_BA(G_AB(a)) - a|`` and
  ``cycle_b = mean |G_AB(G_BA(b)) - b|``, pixels in [0, 1] (CycleGAN's L1 cycle loss).
- **FID in each domain**: ``fid_b``, the translations G_AB(a) against the real B test
  images in the striped classifier's features; ``fid_a``, G_BA(b) against the real A
  test images in the MNIST classifier's features.

The targets: class preservation and domain transfer >= 95% (``TARGET``) both ways. Two
rows frame any model's: ``identity_baseline`` (no translation: fake = reconstruction =
the input, which keeps everything and transfers nothing) and ``real`` (a perfect
translator, which this task can name: real images of the target domain in the
translations' place, the ceiling the classifiers allow).

    judge = TranslationJudge.load_or_train()    # the first time: trains 2 classifiers
    judge.scores(a, a_labels, fake_b, rec_a, b, b_labels, fake_a, rec_b)
    judge.identity_baseline(a, a_labels, b, b_labels), judge.real

The two new classifiers, the test images' feature statistics and the ``real`` row are
cached in one ``minigan.checkpoint`` file beside the MNIST classifier:
``$XDG_CACHE_HOME/minigan/translation_judge.npz``. A file that is damaged, of another
format version, trained with another recipe or beside another MNIST classifier is
replaced by training again, with a warning. Their accuracies and training time:
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_array_module, to_host
from minigan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minigan.data import load_mnist, stripe_digits, unpaired_mnist
from minigan.metrics.classifier import (
    EPOCHS,
    FEATURE_DIM,
    MNIST,
    ClassifierData,
    build_classifier,
    classify,
    train_classifier,
    unit_range,
)
from minigan.metrics.evaluator import Evaluator, check_samples, default_cache_dir, save_to_cache
from minigan.metrics.scores import feature_statistics, frechet_distance

# The classifiers' data. The pixel statistics are those of the training images they
# learn from (``unpaired_mnist("train", seed=DATA_SEED)``): B's half; A's, B's and
# A's again, half-styled (see ``TranslationJudge.train``).
STRIPED = ClassifierData(
    "striped", "striped-digit", 0.3408, 0.1679, tuple(str(k) for k in range(10))
)
DOMAINS = ClassifierData(
    "domains", "domain", 0.2305, 0.2649, ("A: plain", "B: striped", "neither: half-styled")
)
DOMAIN_A, DOMAIN_B, NEITHER = 0, 1, 2  # the domain classifier's labels

HALF = 30000  # training images per domain: half of MNIST's 60,000
DATA_SEED = 0  # the restyling of domain B that the classifiers train and test on
# The perfect translator's restyling of A's test digits (``real``): that of the test split
# of data seed 1, drawn independently of the B test images it is compared with.
ORACLE_SEED = 2 * (DATA_SEED + 1) + 1
HALF_STYLE_SEEDS = {"train": 100, "test": 101}  # the domain classifier's "neither" images
CACHE_FILE = "translation_judge.npz"
FORMAT_VERSION = 1  # raise it whenever the file's content or the classifiers change

# The recipes. The striped digits are read by the MNIST recipe (8 epochs). Telling
# plain, striped and half-styled digits apart is easy (ground and strokes differ
# everywhere): one epoch is plenty.
DOMAIN_EPOCHS = 1
TARGET = 0.95  # the target for class preservation and domain transfer
INFO_KEYS = ("test_accuracy", "train_seconds", "cpu_seconds", "epochs", "num_train", "seed")
REFERENCE_SHAPES = {
    "a_mean": (FEATURE_DIM,),
    "a_cov": (FEATURE_DIM, FEATURE_DIM),
    "b_mean": (FEATURE_DIM,),
    "b_cov": (FEATURE_DIM, FEATURE_DIM),
}
SCORE_KEYS = (
    "class_ab", "class_ba", "transfer_ab", "transfer_ba", "cycle_a", "cycle_b", "fid_b", "fid_a",
)  # fmt: skip


def _train(
    images: np.ndarray, labels: np.ndarray, data: ClassifierData, epochs: int, **kwargs: Any
) -> tuple[nn.Sequential, dict[str, Any]]:
    """``train_classifier``, timed: (model, info without its test accuracy)."""
    wall, cpu = time.perf_counter(), time.process_time()
    model = train_classifier(images, labels, epochs=epochs, data=data, **kwargs)
    info = {
        "train_seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "epochs": epochs,
        "num_train": len(images),
        "seed": kwargs.get("seed", 0),
    }
    return model, info


def half_styled(images: np.ndarray, seed: int) -> np.ndarray:
    """Digits given half of domain B's style: the domain classifier's "neither" class.

    Even-numbered images get B's texture under solid strokes (``ink=(1, 1)``),
    odd-numbered ones B's stripes on a black ground (``background=(0, 0)``): each
    shows one of the two changes a translation A -> B must make (or undo, B -> A).
    uint8 (N, 28, 28) in and out, like ``stripe_digits``.
    """
    out = np.empty_like(images)
    out[0::2] = stripe_digits(images[0::2], seed, ink=(1.0, 1.0))
    out[1::2] = stripe_digits(images[1::2], seed, background=(0.0, 0.0))
    return out


def _predicted(model: nn.Sequential, pixels: Any, data: ClassifierData) -> np.ndarray:
    return classify(model, pixels, data=data)[0].argmax(axis=1)


class TranslationJudge:
    """Scores translations between plain (A) and striped (B) digits: see the module docstring.

    Attributes:
        mnist: the MNIST ``Evaluator``: its classifier reads domain A.
        striped: the digit classifier of domain B (``nn.Sequential``, 10 logits).
        domains: the domain classifier (``nn.Sequential``, 3 logits: A, B, neither).
        a_mean, a_cov: MNIST-classifier features of the real A test images (5,000):
            the reference of ``fid_a``.
        b_mean, b_cov: striped-classifier features of the real B test images (5,000):
            the reference of ``fid_b``.
        info: ``{"striped": ..., "domains": ..., "mnist": ...}``, how each classifier
            was made (``test_accuracy``, ``train_seconds``, ``cpu_seconds``, ``epochs``,
            ``num_train``, ``seed``; the MNIST one as its ``Evaluator`` says).
        real: the scores of a perfect translator: real images of the target domain in
            the translations' place (see ``train``).
    """

    def __init__(
        self,
        mnist: Evaluator,
        striped: nn.Sequential,
        domains: nn.Sequential,
        references: dict[str, np.ndarray],
        info: dict[str, dict[str, Any]],
        real: dict[str, float],
    ):
        self.mnist = mnist
        self.striped = striped
        self.domains = domains
        self.a_mean, self.a_cov = references["a_mean"], references["a_cov"]
        self.b_mean, self.b_cov = references["b_mean"], references["b_cov"]
        self.info = info
        self.real = real

    def __repr__(self) -> str:
        accuracy = {name: f"{self.info[name]['test_accuracy']:.4f}" for name in self.info}
        return f"TranslationJudge(test_accuracy={accuracy})"

    # --- making one ----------------------------------------------------------------

    @classmethod
    def train(
        cls,
        mnist: Evaluator,
        data_dir: str | os.PathLike | None = None,
        backend: str | Backend = "numpy",
        *,
        epochs: int = EPOCHS,
        domain_epochs: int = DOMAIN_EPOCHS,
        num_train: int | None = None,
        progress: bool = True,
    ) -> TranslationJudge:
        """Train the striped-digit and the domain classifier, and measure the real row.

        The striped classifier learns B's training half (30,000 images; ``num_train``
        keeps the first that many), the domain classifier both halves and A's half
        again, ``half_styled`` (``num_train`` of each). Their test accuracies are
        measured on the test halves the same way (5,000 of each).

        ``real`` is the row of a perfect translator, which this task can name since it
        hid the pairs: G_AB(a) = a restyled (``stripe_digits``, with a seed of its
        own), G_BA(b) = the plain digit b was made from, exact reconstructions. Real
        images of the target domain in the translations' place, then: its class and
        domain figures are the ceiling the classifiers allow, and its FIDs the floor of
        5,000 real images against 5,000 others.
        """
        a, a_labels, b, b_labels = unpaired_mnist("train", data_dir, DATA_SEED)
        test_a, test_a_labels, test_b, test_b_labels = unpaired_mnist("test", data_dir, DATA_SEED)
        a, a_labels = a[:num_train], a_labels[:num_train]
        b, b_labels = b[:num_train], b_labels[:num_train]
        common = {"backend": backend, "progress": progress, "seed": 0}
        striped, striped_info = _train(b, b_labels, STRIPED, epochs, **common)
        neither = half_styled(a, HALF_STYLE_SEEDS["train"])
        every = np.concatenate([a, b, neither])
        sides = np.repeat(np.array([DOMAIN_A, DOMAIN_B, NEITHER]), [len(a), len(b), len(a)])
        domains, domains_info = _train(every, sides, DOMAINS, domain_epochs, **common)

        pixels_a, pixels_b = unit_range(test_a), unit_range(test_b)
        a_features = classify(mnist.model, pixels_a, data=mnist.data)[1]
        b_logits, b_features = classify(striped, pixels_b, data=STRIPED)
        a_mean, a_cov = feature_statistics(a_features)
        b_mean, b_cov = feature_statistics(b_features)
        on_a = _predicted(domains, pixels_a, DOMAINS) == DOMAIN_A
        on_b = _predicted(domains, pixels_b, DOMAINS) == DOMAIN_B
        test_neither = unit_range(half_styled(test_a, HALF_STYLE_SEEDS["test"]))
        on_neither = _predicted(domains, test_neither, DOMAINS) == NEITHER
        striped_info["test_accuracy"] = float((b_logits.argmax(axis=1) == test_b_labels).mean())
        domains_info["test_accuracy"] = float(np.concatenate([on_a, on_b, on_neither]).mean())
        info = {"striped": striped_info, "domains": domains_info, "mnist": dict(mnist.info)}
        references = {"a_mean": a_mean, "a_cov": a_cov, "b_mean": b_mean, "b_cov": b_cov}
        judge = cls(mnist, striped, domains, references, info, real={})
        # B's test images before restyling: the odd-numbered test digits (unpaired_mnist).
        plain_b = unit_range(load_mnist("test", data_dir)[0][1::2])
        striped_a = unit_range(stripe_digits(test_a, ORACLE_SEED))
        perfect = judge.scores(
            pixels_a, test_a_labels, striped_a, pixels_a, pixels_b, test_b_labels, plain_b, pixels_b
        )
        judge.real = {key: perfect[key] for key in SCORE_KEYS}
        return judge

    def save(self, path: str | os.PathLike) -> None:
        """Write the two new classifiers, the references and the info to ``path`` (a
        checkpoint .npz, written atomically); the MNIST classifier has its own file."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format_version": FORMAT_VERSION,
            "data_seed": DATA_SEED,
            "striped": self.striped.state_dict(),
            "domains": self.domains.state_dict(),
            "references": {
                "a_mean": self.a_mean,
                "a_cov": self.a_cov,
                "b_mean": self.b_mean,
                "b_cov": self.b_cov,
            },
            "info": self.info,
            "real": self.real,
        }
        save_checkpoint(path, state)

    @classmethod
    def load(
        cls, path: str | os.PathLike, mnist: Evaluator, backend: str | Backend = "numpy"
    ) -> TranslationJudge:
        """Read a file written by ``save``, checking everything in it, beside ``mnist``.

        Raises:
            CheckpointError: the file is missing, unreadable, damaged, of another format
                version, holds something else, or was made beside another MNIST
                classifier (its A reference would be another's features).
        """
        state = load_checkpoint(path)  # raises CheckpointError if it cannot be read
        version = state.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: format version {version}, this minigan reads {FORMAT_VERSION}"
            )
        striped, domains = (
            build_classifier(),
            build_classifier(num_classes=len(DOMAINS.class_names)),
        )
        try:
            striped.load_state_dict(state["striped"])
            domains.load_state_dict(state["domains"])
            references = {key: state["references"][key] for key in REFERENCE_SHAPES}
            info = {
                name: {key: state["info"][name][key] for key in INFO_KEYS}
                for name in ("striped", "domains")
            }
            info["mnist"] = dict(state["info"]["mnist"])
            real = {key: float(state["real"][key]) for key in SCORE_KEYS}
            data_seed = state["data_seed"]
        except (KeyError, ValueError, TypeError) as error:
            raise CheckpointError(
                f"{path}: not a translation judge of this minigan ({error})"
            ) from None
        if data_seed != DATA_SEED:
            raise CheckpointError(
                f"{path}: trained on domain B of seed {data_seed}, not {DATA_SEED}"
            )
        if info["mnist"] != mnist.info:
            raise CheckpointError(
                f"{path} was made beside another MNIST classifier ({info['mnist']}, not "
                f"{mnist.info})"
            )
        for name, shape in REFERENCE_SHAPES.items():
            if np.shape(references[name]) != shape:
                raise CheckpointError(
                    f"{path}: {name} of shape {np.shape(references[name])}, expected {shape}"
                )
        parameters = [p.data for model in (striped, domains) for p in model.parameters()]
        if not all(np.isfinite(a).all() for a in [*references.values(), *parameters]):
            raise CheckpointError(f"{path}: holds NaN or infinite values")
        striped, domains = striped.to(backend), domains.to(backend)
        return cls(mnist, striped, domains, references, info, real)

    @classmethod
    def load_or_train(
        cls,
        data_dir: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        backend: str | Backend = "numpy",
        *,
        epochs: int = EPOCHS,
        domain_epochs: int = DOMAIN_EPOCHS,
        num_train: int | None = None,
        progress: bool = True,
        mnist: Evaluator | None = None,
    ) -> TranslationJudge:
        """The cached judge, or a freshly trained one that is then cached.

        Args:
            data_dir: where MNIST is, for training (see ``minigan.data``).
            cache_dir: the folder of ``translation_judge.npz`` and of the MNIST
                classifier (default: ``default_cache_dir()``).
            backend: where the classifiers run (``"numpy"`` or ``"cupy"``).
            epochs, domain_epochs, num_train: the recipe (see ``train``), used only
                when there is no usable cache (the tests train a small one).
            progress: report training on stderr.
            mnist: the MNIST ``Evaluator`` to judge domain A with (default:
                ``Evaluator.load_or_train(cache_dir, data_dir, backend)``, the cached one).

        A damaged or stale cache file gives a ``UserWarning`` saying why, then retraining.
        """
        folder = Path(cache_dir if cache_dir is not None else default_cache_dir())
        if mnist is None:
            mnist = Evaluator.load_or_train(folder, data_dir, backend, progress=progress)
        if mnist.data != MNIST:
            raise ValueError(f"TranslationJudge: domain A is MNIST, not {mnist.data.title}")
        path = folder / CACHE_FILE
        per_domain = min(num_train or HALF, HALF)
        wanted = {
            "striped": {"epochs": epochs, "num_train": per_domain},
            "domains": {"epochs": domain_epochs, "num_train": 3 * per_domain},
        }
        if path.exists():
            try:
                cached = cls.load(path, mnist, backend)
            except CheckpointError as error:
                warnings.warn(f"{error}; training new translation classifiers", stacklevel=2)
            else:
                trained = {
                    name: {key: cached.info[name][key] for key in recipe}
                    for name, recipe in wanted.items()
                }
                if trained == wanted:
                    return cached
                warnings.warn(
                    f"{path} holds classifiers trained with {trained}, not {wanted}; "
                    f"training new ones",
                    stacklevel=2,
                )
        elif progress:
            print(
                f"minigan.metrics: no translation classifiers cached at {path}: training "
                f"two (once; a few CPU minutes)",
                file=sys.stderr,
            )
        judge = cls.train(
            mnist,
            data_dir,
            backend,
            epochs=epochs,
            domain_epochs=domain_epochs,
            num_train=num_train,
            progress=progress,
        )
        where = save_to_cache(judge, path, "the classifiers")
        if progress:
            print(
                f"minigan.metrics: test accuracy {judge.info['striped']['test_accuracy']:.2%} "
                f"(striped digits), {judge.info['domains']['test_accuracy']:.2%} (domains); "
                f"{where}",
                file=sys.stderr,
            )
        return judge

    # --- scoring -------------------------------------------------------------------

    def scores(
        self,
        a: Any,
        a_labels: Any,
        fake_b: Any,
        rec_a: Any,
        b: Any,
        b_labels: Any,
        fake_a: Any,
        rec_b: Any,
    ) -> dict[str, float]:
        """Every measure of a pair of translators, from their outputs on A and B images.

        Args:
            a, a_labels: real A images and their digits; fake_b = G_AB(a) and
                rec_a = G_BA(G_AB(a)), each image for the ``a`` of the same index.
            b, b_labels, fake_a = G_BA(b), rec_b = G_AB(G_BA(b)): the same from B.
            Images are floats in [0, 1], (N, 1, 28, 28), (N, 28, 28) or (N, 784), on
            either backend; labels (N,) integers.

        Returns:
            ``class_ab``, ``class_ba`` (shares of translations classified as their
            source's digit), ``transfer_ab``, ``transfer_ba`` (shares called the target
            domain), ``cycle_a``, ``cycle_b`` (mean absolute reconstruction error, in
            [0, 1]), ``fid_b``, ``fid_a`` (against the target domain's real test
            images), ``n_a``, ``n_b``: plain Python numbers, ready for ``json.dumps``.
        """
        a, fake_b, rec_a, a_labels = self._checked("a", a, a_labels, fake_b, rec_a)
        b, fake_a, rec_b, b_labels = self._checked("b", b, b_labels, fake_a, rec_b)
        b_logits, b_features = classify(self.striped, fake_b, data=STRIPED)
        a_logits, a_features = classify(self.mnist.model, fake_a, data=self.mnist.data)
        to_b = _predicted(self.domains, fake_b, DOMAINS) == DOMAIN_B
        to_a = _predicted(self.domains, fake_a, DOMAINS) == DOMAIN_A
        return {
            "class_ab": float((b_logits.argmax(axis=1) == a_labels).mean()),
            "class_ba": float((a_logits.argmax(axis=1) == b_labels).mean()),
            "transfer_ab": float(to_b.mean()),
            "transfer_ba": float(to_a.mean()),
            "cycle_a": _mean_abs_difference(rec_a, a),
            "cycle_b": _mean_abs_difference(rec_b, b),
            "fid_b": frechet_distance(*feature_statistics(b_features), self.b_mean, self.b_cov),
            "fid_a": frechet_distance(*feature_statistics(a_features), self.a_mean, self.a_cov),
            "n_a": len(a_labels),
            "n_b": len(b_labels),
        }

    def identity_baseline(self, a: Any, a_labels: Any, b: Any, b_labels: Any) -> dict[str, float]:
        """The scores of no translation at all: G_AB = G_BA = the identity, so every
        translation and every reconstruction is its input (``cycle_*`` are 0)."""
        return self.scores(a, a_labels, a, a, b, b_labels, b, b)

    @staticmethod
    def _checked(side: str, x: Any, labels: Any, fake: Any, rec: Any) -> tuple[Any, ...]:
        """(x, fake, rec) as (N, 784) after ``check_samples``, labels as a host array;
        a clear error when their numbers differ."""
        x, fake, rec = (check_samples(images) for images in (x, fake, rec))
        labels = np.asarray(labels if get_array_module(labels) is np else to_host(labels))
        if labels.ndim != 1:
            raise ValueError(f"TranslationJudge: expected {side}_labels (N,), got {labels.shape}")
        lengths = {
            "images": len(x),
            "labels": len(labels),
            "translations": len(fake),
            "reconstructions": len(rec),
        }
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"TranslationJudge: the {side} side's arrays differ in length: {lengths}"
            )
        return x, fake, rec, labels


def _mean_abs_difference(x: Any, y: Any) -> float:
    """``mean |x - y|`` of two arrays of one backend, read back as one float."""
    xp = get_array_module(x, y)
    return float(to_host(xp.abs(x - y).mean()))
