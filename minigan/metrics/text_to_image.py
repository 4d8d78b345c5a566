"""StackGAN's measures: does each stage draw good images, and do they follow the caption?

``caption_scores`` draws one image per test image, from that test image's own full
caption ("a thick right-slanted seven", its label and measured bins), and measures:

- **class**: the share of Stage-II images the project's classifier reads as the
  caption's class (``label_accuracy``), overall and for the worst class;
- **thickness** (tone on Fashion-MNIST): the share of Stage-II images whose measured
  bin (``CaptionScheme.thickness_bin``, the function that wrote the captions) is the
  caption's, beside the same share for shuffled captions (the chance baseline, about
  1/3); **slant** the same (MNIST);
- **FID of each stage** against the test set: Stage-I's images enlarged to Stage-II's
  size by nearest neighbour (as Stage-II receives them), and Stage-II's; the ratio
  says what the second stage adds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigan.captioned import TEXT_SEED, both_stages
from minigan.captions import CaptionScheme, bin_agreement
from minigan.metrics.labels import label_accuracy

CHUNK = 1000  # images generated at a time


def generate_both_stages(
    model: Any, text: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(Stage-I enlarged, Stage-II) host images in [0, 1], (N, H, W), for the caption
    embeddings ``text`` (host, (N, text_dim)), noise from ``seed``."""
    model.reseed_noise(seed)
    lows, highs = [], []
    for start in range(0, len(text), CHUNK):
        part = model.backend.asarray(text[start : start + CHUNK])
        low, high = both_stages(model, model.sample_noise(len(part)), part)
        lows.append(low)
        highs.append(high)
    return np.concatenate(lows), np.concatenate(highs)


def caption_scores(
    model: Any,
    scheme: CaptionScheme,
    evaluator: Any,
    test_images: Any,
    test_labels: np.ndarray,
    seed: int = 0,
) -> dict[str, Any]:
    """The measures above, for the captions of ``test_images`` (floats in [-1, 1],
    (N, C, H, W)) and ``test_labels``; plain Python numbers, ready for ``json.dumps``."""
    bins = scheme.bins(test_images, gan_range=True)
    text = scheme.embed(test_labels, bins, model.config.text_dim, TEXT_SEED)
    low, high = generate_both_stages(model, text, seed)
    accuracy = label_accuracy(evaluator, high, test_labels)
    fid_low, fid_high = evaluator.fid(low), evaluator.fid(high)
    drawn = scheme.bins(high)
    scores = {
        "class_accuracy": round(float(np.nanmean(accuracy)), 4),
        "worst_class_accuracy": round(float(np.nanmin(accuracy)), 4),
        "class_accuracy_by_class": [round(float(a), 4) for a in accuracy],
    }
    for a, name in enumerate(scheme.attributes):
        agree, shuffled = bin_agreement(drawn[:, a], bins[:, a], seed)
        scores[f"{name}_agreement"] = round(agree, 4)
        scores[f"{name}_agreement_shuffled"] = round(shuffled, 4)
    scores.update(
        fid_stage1=round(fid_low, 3),
        fid_stage2=round(fid_high, 3),
        fid_ratio=round(fid_high / fid_low, 4),
        n_samples=len(high),
    )
    return scores
