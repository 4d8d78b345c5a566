"""StackGAN's run side (minigan/captioned.py), its grid, and its measures on known cases."""

from __future__ import annotations

import types

import numpy as np
import pytest

from minigan import captioned, captions
from minigan.backend import get_backend
from minigan.data import DataError, load_mnist, to_gan_range
from minigan.metrics import Evaluator, label_accuracy
from minigan.metrics.text_to_image import caption_scores
from minigan.plotting import save_captioned_grid

DIM = 32


def mnist_or_skip(split):
    try:
        return load_mnist(split, download=False)
    except DataError as error:
        pytest.skip(f"MNIST not found ({str(error).splitlines()[0]}); set MINIGAN_DATA")


@pytest.fixture(scope="module")
def scheme_and_images():
    """The MNIST scheme fitted on 6,000 training images, and those images and labels."""
    images, labels = mnist_or_skip("train")
    x = to_gan_range(images[:6000], flatten=False)
    return captioned.scheme_for_run("mnist", x), x, labels[:6000].astype(np.int64)


def test_embedding_a_caption_with_a_word_left_out_is_encoding_the_shorter_caption():
    scheme = captions.CaptionScheme("mnist", captions.DIGIT_WORDS, ("thickness", "slant"),
                                    (captions.THICKNESS_WORDS, captions.SLANT_WORDS),
                                    ((1.0, 2.0), (-0.1, 0.1)))  # fmt: skip
    rows = [(7, 0, None), (7, None, 2), (3, None, None), (3, 2, 1)]
    got = captioned.embed_captions(scheme, rows, DIM)
    want = captions.encode([scheme.caption(*r) for r in rows], DIM, captioned.TEXT_SEED)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert [scheme.caption(*r) for r in rows[:3]] == ["a thin seven", "a right-slanted seven",
                                                      "a three"]  # fmt: skip


def test_training_text_drops_attribute_words_at_the_stated_rate_and_keeps_the_rest(
    scheme_and_images,
):
    scheme, x, labels = scheme_and_images
    text = captioned.training_text(scheme, x, labels, DIM, seed=4)
    assert text.shape == (len(x), DIM) and text.dtype == np.float32
    full = scheme.embed(labels, scheme.bins(x, gan_range=True), DIM, captioned.TEXT_SEED)
    same = np.all(np.isclose(text, full, atol=1e-7), axis=1)
    # Full when neither of two attributes is dropped: (1 - DROP)^2 of the captions.
    assert abs(same.mean() - (1 - captioned.DROP) ** 2) < 0.03
    again = captioned.training_text(scheme, x, labels, DIM, seed=4)
    np.testing.assert_array_equal(text, again)  # the data set's captions: fixed by the seed
    assert not np.array_equal(text, captioned.training_text(scheme, x, labels, DIM, seed=5))


def test_sample_captions_cycle_through_every_full_caption_or_repeat_the_one_asked_for(
    scheme_and_images,
):
    scheme = scheme_and_images[0]
    rows = captioned.sample_captions(scheme, 95, None)
    assert len(set(rows[:90])) == 90 and rows[90] == rows[0]
    assert all(r[1] is not None and r[2] is not None for r in rows)
    assert captioned.sample_captions(scheme, 3, "a thin seven") == [(7, 0, None)] * 3
    with pytest.raises(ValueError, match="unknown word 'purple'.*known words: a, an, thin"):
        captioned.sample_captions(scheme, 3, "a purple seven")
    with pytest.raises(ValueError, match="empty caption; known words"):
        captioned.sample_captions(scheme, 3, "  ")


def test_the_grid_captions_name_every_class_and_every_bin_of_each_attribute(scheme_and_images):
    scheme = scheme_and_images[0]
    rows = captioned.grid_captions(scheme)
    assert [r[0] for r in rows] == list(range(10))
    assert {r[1] for r in rows} == {0, 1, 2} and {r[2] for r in rows} == {0, 1, 2}


def test_save_captioned_grid_writes_a_png(tmp_path):
    from PIL import Image

    images = np.random.default_rng(0).random((16, 28, 28)).astype(np.float32)
    save_captioned_grid(images, ["a thin seven", "a thick one"], tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as picture:
        assert picture.format == "PNG" and picture.size[0] > picture.size[1] > 50


class PerfectModel:
    """Draws, for the i-th caption asked for, the i-th real image (Stage-II) and its 2x2
    average (Stage-I): a model that follows every caption exactly."""

    def __init__(self, images):
        self.images, self.next = images, 0
        self.backend = get_backend("numpy")
        self.config = types.SimpleNamespace(text_dim=DIM)

    def reseed_noise(self, seed):
        self.next = 0

    def sample_noise(self, n):
        return np.zeros((n, 4), np.float32)

    def generate_stages(self, z, text):
        high = self.images[self.next : self.next + len(z)]
        self.next += len(z)
        n, c, h, w = high.shape
        low = high.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
        return low, high


def test_caption_scores_of_a_model_that_draws_the_captioned_images_are_perfect(
    scheme_and_images, tmp_path
):
    scheme = scheme_and_images[0]
    images, labels = mnist_or_skip("test")
    test = to_gan_range(images[:2000], flatten=False)
    labels = labels[:2000].astype(np.int64)
    evaluator = Evaluator.load_or_train(tmp_path, epochs=1, num_train=2000, progress=False)
    scores = caption_scores(PerfectModel(test), scheme, evaluator, test, labels)
    assert scores["thickness_agreement"] == 1.0 and scores["slant_agreement"] == 1.0
    assert 0.25 < scores["thickness_agreement_shuffled"] < 0.42  # about 1/3: chance
    # The class read back is the classifier's own per-class accuracy on these real digits.
    own = label_accuracy(evaluator, (test + 1) / 2, labels)
    assert scores["class_accuracy_by_class"] == [round(float(a), 4) for a in own]
    assert scores["class_accuracy"] == round(float(own.mean()), 4)
    assert scores["fid_stage2"] < scores["fid_stage1"]  # the blurred half-size is worse
    assert scores["n_samples"] == 2000
