"""The Parzen-window log-likelihood (minigan/metrics/parzen.py) against a naive formula,
its bandwidth choice, its chunking, its input checks, real MNIST, and
``examples/evaluate.py --parzen``.
"""

import importlib.util
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from minigan.data import DataError, load_mnist
from minigan.metrics import Evaluator
from minigan.metrics.parzen import (
    PAPER_TABLE,
    SIGMAS,
    log_likelihoods,
    log_likelihoods_per_sigma,
    parzen_log_likelihood,
    squared_distances,
    standard_error,
)

ROOT = Path(__file__).resolve().parents[1]

# The script's tests check the Parzen figures and the keys of its JSON line, not the
# classifier's scores, so a classifier trained for 1 epoch on 1,000 images does (about
# 70% test accuracy, a few CPU seconds, most of them scoring the test set once).
TINY_RECIPE = {"epochs": 1, "num_train": 1000}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Whatever a test does, nothing lands in the real ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def naive_log_likelihood(x, centres, sigma):
    """log p(x) for one image, term by term: a loop over centres and np.logaddexp.reduce."""
    d = len(x)
    exponents = [-sum((x - s) ** 2) / (2 * sigma**2) for s in centres]
    log_norm = math.log(len(centres)) + d / 2 * math.log(2 * math.pi * sigma**2)
    return np.logaddexp.reduce(exponents) - log_norm


# --- the formula ---------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.1, 0.3, 1.0])
def test_log_likelihoods_match_the_naive_formula(rng, sigma):
    x, centres = rng.uniform(0, 1, (7, 20)), rng.uniform(0, 1, (13, 20))
    expected = [naive_log_likelihood(xi, centres, sigma) for xi in x]
    np.testing.assert_allclose(log_likelihoods(x, centres, sigma), expected, rtol=1e-12)


def test_an_image_equal_to_a_centre_has_distance_exactly_zero(rng):
    centres = rng.uniform(0, 1, (5, 784))
    d2 = squared_distances(centres[:2], centres)
    assert d2[0, 0] == 0 and d2[1, 1] == 0 and d2.min() == 0  # no tiny negatives
    # far from every centre but one, log p is that one Gaussian's log density at its mean
    sigma = 0.01
    expected = -math.log(5) - 784 / 2 * math.log(2 * math.pi * sigma**2)
    assert log_likelihoods(centres[:1], centres, sigma)[0] == pytest.approx(expected, rel=1e-12)


def test_per_sigma_columns_equal_one_sigma_at_a_time(rng):
    x, centres = rng.uniform(0, 1, (9, 30)), rng.uniform(0, 1, (11, 30))
    table = log_likelihoods_per_sigma(x, centres, SIGMAS)
    assert table.shape == (9, 10)
    for k, sigma in enumerate(SIGMAS):
        np.testing.assert_array_equal(table[:, k], log_likelihoods(x, centres, sigma))


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_chunking_gives_the_same_numbers_as_one_chunk(rng, chunk_size):
    x, centres = rng.uniform(0, 1, (50, 784)), rng.uniform(0, 1, (40, 784))
    whole = log_likelihoods_per_sigma(x, centres, SIGMAS, chunk_size=50)
    chunked = log_likelihoods_per_sigma(x, centres, SIGMAS, chunk_size=chunk_size)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)


def test_the_grid_is_the_papers():
    # parzen_ll.py: numpy.logspace(--sigma_start -1, --sigma_end 0, num=--cross_val 10)
    np.testing.assert_array_equal(SIGMAS, np.logspace(-1, 0, 10))
    assert PAPER_TABLE["Adversarial nets"] == (225.0, 2.0)


def test_standard_error_is_the_1_over_n_std_over_sqrt_n():
    values = np.array([1.0, 2.0, 4.0, 9.0])
    mean = values.mean()
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 4)
    assert standard_error(values) == pytest.approx(std / 2, rel=1e-15)


# --- choosing sigma ------------------------------------------------------------------


def test_sigma_is_chosen_where_the_validation_likelihood_peaks(rng):
    # Validation images are centres moved by exactly +-tau in every pixel, |e|^2 = d tau^2,
    # and the centres lie far apart, so log p(v) ~ -d tau^2 / (2 s^2) - d log s + const,
    # whose maximum over s is at s = tau: the grid's fifth value.
    tau, d = SIGMAS[4], 200
    centres = rng.choice([0.3, 0.7], size=(100, d))
    validation = centres[:60] + tau * rng.choice([-1.0, 1.0], size=(60, d))
    test = centres[60:80] + 0.2 * rng.choice([-1.0, 1.0], size=(20, d))
    result = parzen_log_likelihood(centres, test, validation)
    assert result["sigma"] == SIGMAS[4]
    assert result["validation_means"][4] == max(result["validation_means"])
    assert result["sigmas"] == list(SIGMAS)
    test_ll = log_likelihoods(test, centres, SIGMAS[4])
    assert result["mean"] == pytest.approx(test_ll.mean(), rel=1e-12)
    assert result["standard_error"] == pytest.approx(standard_error(test_ll), rel=1e-12)


def test_a_custom_grid_is_searched_whole(rng):
    centres, data = rng.uniform(0, 1, (30, 16)), rng.uniform(0, 1, (10, 16))
    result = parzen_log_likelihood(centres, data, data, sigmas=[0.05, 0.2, 2.0])
    means = result["validation_means"]
    assert result["sigma"] == [0.05, 0.2, 2.0][int(np.argmax(means))]


# --- bad input: one line saying what was expected ------------------------------------


GOOD = np.full((4, 784), 0.5)


@pytest.mark.parametrize(
    "samples, test, error, message",
    [
        (GOOD[:1], GOOD, ValueError, r"samples: need at least 2 images, got 1"),
        (GOOD, GOOD[:, :100], ValueError, r"test has 100 pixels per image, samples 784"),
        (GOOD * np.nan, GOOD, ValueError, r"samples: contains NaN or infinite values"),
        (GOOD * 255, GOOD, ValueError, r"\[0, 255\]: use x / 255"),
        (GOOD * 2 - 1.5, GOOD, ValueError, r"from a Tanh, use \(x \+ 1\) / 2"),
        (GOOD.astype(np.uint8), GOOD, TypeError, r"uint8 images convert with"),
        (GOOD[0], GOOD, ValueError, r"expected images \(N, 784\) or \(N, 28, 28\)"),
        ([[0.5] * 784] * 4, GOOD, TypeError, r"expected an array of images, got list"),
    ],
    ids=["too-few", "pixels", "nan", "0-255", "tanh", "uint8", "1-d", "list"],
)
def test_bad_inputs_give_one_line_errors(samples, test, error, message):
    with pytest.raises(error, match=message) as caught:
        parzen_log_likelihood(samples, test, GOOD)
    assert len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize("sigmas", [[], [0.1, 0.0], [np.inf], [[0.1]]])
def test_bad_sigmas_are_refused(sigmas):
    with pytest.raises(ValueError, match=r"sigmas: expected positive finite bandwidths"):
        parzen_log_likelihood(GOOD, GOOD, GOOD, sigmas=sigmas)


def test_a_cupy_array_is_moved_to_the_host_once(fake_cupy, rng):
    x, centres = rng.uniform(0, 1, (6, 784)), rng.uniform(0, 1, (9, 784))
    on_device = fake_cupy.asarray(x)
    expected = log_likelihoods(x, centres, 0.3)
    np.testing.assert_array_equal(log_likelihoods(on_device, centres, 0.3), expected)
    assert len(fake_cupy.reads) == 1  # one explicit x.get(), no implicit reads


# --- real MNIST ----------------------------------------------------------------------


def data_or_skip(split):
    """MNIST's split from disk, or skip the test saying where it was looked for."""
    try:
        return load_mnist(split, download=False)
    except DataError as error:
        first_line = str(error).splitlines()[0]
        pytest.skip(f"MNIST not found ({first_line}); set MINIGAN_DATA=../shared/data")


@pytest.fixture(scope="module")
def mnist_train():
    images, _ = data_or_skip("train")
    return images.astype(np.float64) / 255


@pytest.fixture(scope="module")
def mnist_test():
    """The MNIST test images as float32 (10000, 28, 28) in [0, 1], and their labels."""
    images, labels = data_or_skip("test")
    return images.astype(np.float32) / 255, labels


def test_real_digits_as_centres_beat_uniform_noise(mnist_train, mnist_test):
    test = mnist_test[0][:500]
    validation = mnist_train[50000:50500]
    real = parzen_log_likelihood(mnist_train[:1000], test, validation)
    noise = parzen_log_likelihood(
        np.random.default_rng(0).uniform(0, 1, (1000, 784)), test, validation
    )
    assert real["mean"] > 0 > noise["mean"]
    assert real["mean"] - 10 * real["standard_error"] > noise["mean"]
    assert real["sigma"] < noise["sigma"]  # sharp kernels fit digits, broad ones noise


# --- examples/evaluate.py --parzen ---------------------------------------------------


@pytest.fixture(scope="module")
def evaluate_script():
    spec = importlib.util.spec_from_file_location(
        "evaluate_example", ROOT / "examples" / "evaluate.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory, mnist_train):
    """A folder holding the tiny classifier (TINY_RECIPE), trained once for this module."""
    cache = tmp_path_factory.mktemp("tiny-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        Evaluator.load_or_train(cache, progress=False, **TINY_RECIPE)
    return cache


@pytest.fixture
def tiny_recipe(monkeypatch, tiny_cache):
    """The script's arguments to use the tiny classifier (and the script set to ask for it)."""
    load_or_train = Evaluator.load_or_train.__func__
    monkeypatch.setattr(
        Evaluator,
        "load_or_train",
        classmethod(lambda cls, *args, **kw: load_or_train(cls, *args, **kw, **TINY_RECIPE)),
    )
    return ["--cache-dir", str(tiny_cache)]


def test_evaluate_script_adds_parzen_to_its_json_line(
    evaluate_script, tiny_recipe, mnist_test, tmp_path, capsys
):
    samples = tmp_path / "samples.npy"
    np.save(samples, mnist_test[0][:300])
    assert evaluate_script.main([str(samples), "--parzen", *tiny_recipe]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1
    scores = json.loads(lines[0])
    assert set(scores["parzen"]) >= {"sigma", "mean", "standard_error"}
    assert scores["parzen"]["sigma"] in [round(float(s), 4) for s in SIGMAS]
    assert re.search(r"Parzen.* Adversarial nets 225 \+- 2", captured.err)


def test_evaluate_script_json_line_holds_speckle(
    evaluate_script, tiny_recipe, mnist_test, tmp_path, capsys
):
    samples = tmp_path / "samples.npy"
    np.save(samples, mnist_test[0][:300])
    assert evaluate_script.main([str(samples), *tiny_recipe]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert 0 <= scores["speckle"] <= 1 and 0 <= scores["real_speckle"] <= 1


def test_evaluate_script_parzen_reference_modes(evaluate_script, tiny_recipe, capsys):
    assert evaluate_script.main(["--real-train", "300", "--parzen", *tiny_recipe]) == 0
    assert evaluate_script.main(["--noise", "300", "--parzen", *tiny_recipe]) == 0
    real, noise = (json.loads(line)["parzen"] for line in capsys.readouterr().out.splitlines())
    assert real["mean"] > 0 > noise["mean"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--noise", "300", "--parzen", "--dataset", "fashion"], r"--parzen: .* MNIST only"),
        (["--real-train", "50001", "--parzen"], r"--real-train 50001 --parzen: at most 50000"),
    ],
    ids=["fashion", "into-validation"],
)
def test_evaluate_script_refuses_parzen_where_the_protocol_does_not_apply(
    evaluate_script, capsys, argv, message
):
    with pytest.raises(SystemExit):
        evaluate_script.parse_args(argv)
    err = capsys.readouterr().err
    assert re.search(message, err), err
