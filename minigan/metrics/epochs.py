"""Scores during training: one fixed batch of noise, scored every few epochs.

The same noise each time, so that the scores of different epochs measure one model
changing, not a new draw (``examples/mnist_gan.py --eval-every K``). The samples come
back to the host once per scoring, through ``minigan.images.generate_unit_images``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigan.backend import to_host
from minigan.images import digit_labels, generate_unit_images
from minigan.metrics.evaluator import Evaluator
from minigan.metrics.labels import label_accuracy


class EpochScorer:
    """Scores ``n`` samples of a model from noise fixed by the run's seed.

    A conditional model is asked for the digits 0-9 in turn, and its label accuracy
    per digit is scored too.
    """

    def __init__(self, evaluator: Any, z: Any, labels: Any, image_shape: tuple[int, ...]):
        self.evaluator, self.z, self.labels, self.image_shape = evaluator, z, labels, image_shape

    @classmethod
    def for_run(
        cls,
        gan: Any,
        n: int,
        seed: int,
        image_shape: tuple[int, ...],
        data_root: Any = None,
        dataset: str = "mnist",
    ) -> EpochScorer:
        """The scorer of a run of ``gan``: the dataset's cached classifier (trained first
        if there is none), and noise drawn from the seed ``[seed, 2]`` on ``gan``'s device."""
        evaluator = Evaluator.load_or_train(
            data_root=data_root, backend=gan.backend, dataset=dataset
        )
        noise = np.random.default_rng([seed, 2]).standard_normal((n, gan.config.latent_dim))
        z = gan.backend.asarray(noise, dtype=np.float32)
        labels = digit_labels(gan.backend, n) if gan.conditional else None  # 0-9 in turn
        return cls(evaluator, z, labels, image_shape)

    def score(self, gan: Any, epoch: int, log: Callable[[str], Any] = print) -> dict[str, Any]:
        """The scores of ``gan``'s samples now (``Evaluator.evaluate``'s, and
        ``label_accuracy`` for a conditional model), each said in a line through ``log``."""
        samples = generate_unit_images(gan, self.z, self.image_shape, labels=self.labels)
        scores = self.evaluator.evaluate(samples)
        if self.labels is not None:  # did it draw the digit it was asked for?
            accuracy = label_accuracy(self.evaluator, samples, to_host(self.labels))
            scores["label_accuracy"] = [round(float(a), 4) for a in accuracy]
            log(f"epoch {epoch}: label accuracy per digit {accuracy.round(3)}")
        log(
            f"epoch {epoch}: FID {scores['fid']:.1f}, Inception Score "
            f"{scores['inception_score']:.2f}, {scores['classes_covered']}/10 classes, "
            f"speckle {scores['speckle']:.2e} (real digits {scores['real_speckle']:.2e})"
        )
        return scores
