"""Sample quality for MNIST GANs: FID, Inception Score and class coverage.

"Do the digits look good?" gets numbers here, measured through the eyes of an MNIST
classifier built and trained with minigan itself. Read in this order:

- ``scores``: the statistics (matrix square root, FID, Inception Score, class
  histogram), as pure float64 functions;
- ``classifier``: the MLP whose features and softmax the scores use, and its training;
- ``evaluator``: ``Evaluator``, which caches the trained classifier and scores samples;
- ``labels``: ``label_accuracy``, per digit, of a conditional GAN's samples;
- ``parzen``: the GAN paper's Parzen-window log-likelihood of the test set, which
  needs no classifier (``parzen_log_likelihood``);
- ``modes``: mode collapse as the papers count it: the 2-D ring's and grid's modes,
  high-quality share and reverse KL, and Stacked MNIST's 1,000 modes and KL;
- ``translation``: ``TranslationJudge``, the measures of an unpaired translation
  between plain and striped digits (CycleGAN's built-in task).

    >>> from minigan.metrics import Evaluator
    >>> evaluator = Evaluator.load_or_train()     # doctest: +SKIP
    >>> evaluator.evaluate(samples)               # doctest: +SKIP
    {'fid': ..., 'inception_score': ..., 'classes_covered': 10, ...}
"""

from minigan.metrics.evaluator import Evaluator, check_samples
from minigan.metrics.labels import label_accuracy, per_class_accuracy
from minigan.metrics.modes import (
    grid_scores,
    mixture_scores,
    ring_scores,
    stacked_mnist_modes,
)
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
from minigan.metrics.translation import TranslationJudge

__all__ = [
    "COVERAGE_THRESHOLD",
    "Evaluator",
    "TranslationJudge",
    "check_samples",
    "class_histogram",
    "classes_covered",
    "feature_statistics",
    "frechet_distance",
    "grid_scores",
    "inception_score",
    "kl_to_uniform",
    "label_accuracy",
    "mixture_scores",
    "parzen_log_likelihood",
    "per_class_accuracy",
    "ring_scores",
    "speckle_share",
    "sqrtm_psd",
    "stacked_mnist_modes",
    "trace_sqrt_product",
]
