"""Sample quality for MNIST GANs: FID, Inception Score and class coverage.

"Do the digits look good?" gets numbers here, measured through the eyes of an MNIST
classifier built and trained with minigan itself. Read in this order:

- ``scores``: the statistics (matrix square root, FID, Inception Score, class
  histogram), as pure float64 functions;
- ``classifier``: the MLP whose features and softmax the scores use, and its training;
- ``evaluator``: ``Evaluator``, which caches the trained classifier and scores samples;
- ``labels``: ``label_accuracy``, per digit, of a conditional GAN's samples;
- ``parzen``: the GAN paper's Parzen-window log-likelihood of the test set, which
  needs no classifier (``parzen_log_likelihood``).

    >>> from minigan.metrics import Evaluator
    >>> evaluator = Evaluator.load_or_train()     # doctest: +SKIP
    >>> evaluator.evaluate(samples)               # doctest: +SKIP
    {'fid': ..., 'inception_score': ..., 'classes_covered': 10, ...}
"""

from minigan.metrics.evaluator import Evaluator, check_samples
from minigan.metrics.labels import label_accuracy, per_class_accuracy
from minigan.metrics.parzen import parzen_log_likelihood
from minigan.metrics.scores import (
    COVERAGE_THRESHOLD,
    class_histogram,
    classes_covered,
    feature_statistics,
    frechet_distance,
    inception_score,
    kl_to_uniform,
    speckle_share,
    sqrtm_psd,
    trace_sqrt_product,
)

__all__ = [
    "COVERAGE_THRESHOLD",
    "Evaluator",
    "check_samples",
    "class_histogram",
    "classes_covered",
    "feature_statistics",
    "frechet_distance",
    "inception_score",
    "kl_to_uniform",
    "label_accuracy",
    "parzen_log_likelihood",
    "per_class_accuracy",
    "speckle_share",
    "sqrtm_psd",
    "trace_sqrt_product",
]
