"""The library against a hostile caller (issue 25, items 12 and 17): a wrong size, count,
label or probability is one ValueError in the library's words at the public boundary,
never a traceback from inside NumPy nor a silent NaN; and no check reads from a device.
"""

import dataclasses

import numpy as np
import pytest

from minigan import nn
from minigan.losses import BCELoss, CrossEntropyLoss
from minigan.models import ACGAN, CGAN, GAN, ACGANConfig, CGANConfig, GANConfig
from minigan.models.conditional import choose_labelled

TINY = {"latent_dim": 3, "hidden": 7, "image_size": 6, "batch_size": 4, "embed_dim": 3}


def weights(model) -> list[np.ndarray]:
    return [p.data.copy() for p in model.generator.parameters() + model.discriminator.parameters()]


# --- item 12: a label out of range in a training step ------------------------------------


@pytest.mark.parametrize("cls, config", [(CGAN, CGANConfig), (ACGAN, ACGANConfig)])
def test_a_conditional_step_with_label_11_is_one_clear_error_and_changes_nothing(cls, config):
    mlp = {"arch": "mlp"}  # 6-pixel images: the MLPs, not the convolutions
    model = cls(dataclasses.replace(config(), **TINY, **mlp), seed=0)
    real = np.zeros((4, 6), np.float32)
    before, noise = weights(model), model.noise_rng.bit_generator.state
    with pytest.raises(ValueError) as error:
        model.train_step(real, np.array([0, 3, 11, 9]))
    assert str(error.value) == (
        f"{cls.__name__}.train_step: labels must lie in [0, 10) for 10 classes (the digits "
        f"0-9), got values from 0 to 11"
    )
    for a, b in zip(before, weights(model)):
        np.testing.assert_array_equal(a, b)
    assert model.noise_rng.bit_generator.state == noise and model.steps == 0
    model.train_step(real, np.array([0, 3, 1, 9]))  # labels in range: the step runs


def test_unchecked_label_layers_still_check_numpy_labels_which_cost_no_sync():
    # check_range=False skips a device read; on the host a label -1 would silently pick
    # the last row of the table (NumPy wraps negative indices), 11 raise an IndexError.
    embed = nn.Embedding(10, 3, rng=np.random.default_rng(0), check_range=False)
    with pytest.raises(ValueError) as error:
        embed(np.array([2, -1]))
    assert str(error.value) == (
        "Embedding(10, 3): labels must lie in [0, 10) for 10 embeddings, got values from -1 to 2"
    )
    loss = CrossEntropyLoss(check_range=False)
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss\(\): labels must lie in \[0, 3\)"):
        loss(np.zeros((2, 3), np.float32), np.array([0, 3]))


def test_unchecked_label_layers_read_nothing_back_on_a_gpu(fake_cupy):
    from minigan.backend import get_backend

    be = get_backend("cupy")
    embed = nn.Embedding(10, 3, rng=np.random.default_rng(0), check_range=False).to(be)
    fake_cupy.reset()
    embed(be.asarray(np.array([2, 4])))
    CrossEntropyLoss(check_range=False)(
        be.asarray(np.zeros((2, 3), np.float32)), be.asarray(np.array([0, 2]))
    )
    assert fake_cupy.reads == []


# --- item 12: sizes and counts ------------------------------------------------------------


def test_a_layer_size_that_is_not_an_integer_of_at_least_one_is_refused_by_the_layer():
    cases = [
        (nn.Linear, (2.5, 3), "Linear: sizes must be integers, got (2.5 -> 3)"),
        (nn.Linear, (True, 3), "Linear: sizes must be integers, got (True -> 3)"),
        (nn.Linear, (784, 0), "Linear: sizes must be positive, got (784 -> 0)"),
        (nn.WeightNormLinear, (3.0, 2), "WeightNormLinear: sizes must be integers, got (3.0 -> 2)"),
        (nn.Embedding, (10, 2.5), "Embedding: sizes must be integers, got (10, 2.5)"),
        (nn.Conv2d, (1, 2.5, 3), "Conv2d: out_channels must be an integer >= 1, got 2.5"),
        (nn.ConvTranspose2d, (1, 2, True), ("ConvTranspose2d: kernel_size must be an integer >= "
         "1, got True")),
        (nn.BatchNorm1d, (2.5,), "BatchNorm1d: num_features must be an integer >= 1, got 2.5"),
        (nn.MinibatchStdDev, (2.5,), "MinibatchStdDev: group_size must be an integer, got 2.5"),
        (nn.Pack, (2.5,), "Pack: m must be a positive number of examples, got 2.5"),
        (nn.Unflatten, (1, (2.5, 2)), ("Unflatten: unflattened_size must be positive sizes "
         "(integers >= 1), got (2.5, 2)")),
        (nn.Flatten, (1.5,), ("Flatten: start_dim and end_dim must be integers (dimensions), "
         "got 1.5 and -1")),
    ]  # fmt: skip
    for layer, sizes, message in cases:
        with pytest.raises(ValueError) as error:
            layer(*sizes)
        assert str(error.value) == message
    # NumPy's integers are sizes too (a shape entry, np.prod of one).
    assert nn.Linear(np.int64(4), np.int32(2)).weight.data.shape == (2, 4)


def test_a_config_size_that_is_not_an_integer_is_refused_naming_the_field():
    with pytest.raises(ValueError) as error:
        GANConfig(hidden=2.5)
    assert str(error.value) == "hidden must be a positive integer, got 2.5"
    with pytest.raises(ValueError, match="^latent_dim must be a positive integer, got True$"):
        GANConfig(latent_dim=True)


@pytest.mark.parametrize("n", [-1, 2.5, True, None])
def test_sample_noise_refuses_a_count_that_is_no_integer_of_at_least_zero(n):
    gan = GAN(dataclasses.replace(GANConfig(), latent_dim=3, hidden=5), seed=0)
    with pytest.raises(ValueError) as error:
        gan.sample_noise(n)
    assert str(error.value) == (
        f"GAN.sample_noise: n is how many noise vectors to draw, an integer >= 0; got {n!r}"
    )
    assert gan.sample_noise(0).shape == (0, 3)  # an empty batch is a batch
    cgan = CGAN(dataclasses.replace(CGANConfig(), **TINY, arch="mlp"), seed=0)
    with pytest.raises(ValueError, match=r"^CGAN.sample_labels: n is how many labels to draw"):
        cgan.sample_labels(n)


# --- item 12: BCELoss on something that is no probability ----------------------------------


def test_bce_refuses_numpy_probabilities_outside_0_1_instead_of_returning_nan():
    loss = BCELoss()
    with pytest.raises(ValueError) as error:
        loss(np.array([[0.5], [1.5]], np.float32), 1.0)
    assert str(error.value) == (
        "BCELoss(): pred must be probabilities in [0, 1] (e.g. a Sigmoid's output), got "
        "values from 0.5 to 1.5; for logits use BCEWithLogitsLoss"
    )
    with pytest.raises(ValueError, match=r"got values from -0.25 to 0.5;"):
        loss(np.array([-0.25, 0.5]), np.array([1.0, 0.0]))
    # Probabilities at the ends are fine (a saturated Sigmoid); NaN is the NaN guard's.
    assert np.isfinite(loss(np.array([0.0, 1.0], np.float32), 1.0))
    with np.errstate(invalid="ignore"):
        assert np.isnan(loss(np.array([np.nan, 0.5]), 1.0))


def test_bce_skips_the_probability_check_on_a_gpu_so_nothing_is_read_back(fake_cupy):
    from minigan.backend import get_backend

    be = get_backend("cupy")
    p = be.asarray(np.array([0.25, 0.75], np.float32))
    fake_cupy.reset()
    BCELoss()(p, 1.0)
    assert fake_cupy.reads == []


# --- item 17: the limit of labelled examples is the true one -------------------------------


def test_choose_labelled_names_the_true_limit_the_rarest_digit():
    labels = np.repeat(np.arange(10), 100)
    labels[:13] = 1  # 87 zeros: the rarest digit
    for n in (100_000, 1000):
        with pytest.raises(ValueError) as error:
            choose_labelled(labels, n, seed=0)
        assert str(error.value).endswith(
            "ask for at most 870: 10 times the count of the training set's rarest digit "
            "(0: 87 images)"
        )
    assert str(error.value).startswith("choose_labelled: 1000 labelled examples need 100 of")
    assert len(choose_labelled(labels, 870, seed=0)) == 870  # the limit said is reachable
