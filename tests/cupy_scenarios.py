"""The CuPy code path, piece by piece, as scenarios that run on either backend.

Each scenario takes a backend name (``"numpy"`` or ``"cupy"``) and a scratch folder,
runs one part of minigan the way a user would, and returns what it computed as host
values. tests/test_cupy_path.py runs every scenario on NumPy and through the CuPy
stand-in and compares the two bit for bit; tests/test_cupy_api_surface.py runs them
all through the stand-in to record every CuPy name and keyword minigan uses.

Coverage grows by itself where minigan keeps a registry: every layer exported by
``minigan.nn``, every loss class in ``minigan.losses`` (and SGAN's, in
``minigan.models.sgan_losses``), every optimizer in ``minigan.optim`` (each needs an
entry in the tables below, or the scenario fails saying so) and every preset in
``minigan.gan.PRESETS``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from minigan import losses, nn, optim
from minigan.backend import backend_of, get_array_module, get_backend, to_host
from minigan.checkpoint import load_checkpoint, save_checkpoint
from minigan.data import BatchIterator, load_mnist, ring_mixture, to_gan_range
from minigan.gan import GAN, PRESETS
from minigan.metrics import Evaluator
from minigan.metrics.classifier import classify, train_classifier, unit_range
from minigan.models import DCGAN, MODELS, SGAN, CycleGAN, CycleGANConfig, DCGANConfig, sgan_losses
from minigan.models.stackgan import StackGAN, StackGANConfig

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_gan.py"

SCENARIOS: dict[str, Callable[[str, Path], dict[str, Any]]] = {}


def scenario(name: str):
    def register(fn):
        SCENARIOS[name] = fn
        return fn

    return register


def host(value: Any) -> Any:
    """A host copy of a device array; anything else as it is."""
    return value if value is None or isinstance(value, (int, float)) else to_host(value)


def public_subclasses(module: Any, base: type) -> list[type]:
    """The classes in ``module`` (its ``__all__``, else its namespace) deriving from ``base``."""
    names = getattr(module, "__all__", None) or list(vars(module))
    found = [getattr(module, n) for n in names if not n.startswith("_")]
    return [c for c in found if inspect.isclass(c) and issubclass(c, base) and c is not base]


def needs_example(kind: str, classes: list[type], table: dict[type, Any]) -> None:
    missing = [c.__name__ for c in classes if c not in table]
    if missing:
        raise AssertionError(
            f"{kind} {missing} ha{'s' if len(missing) == 1 else 've'} no example in "
            f"tests/cupy_scenarios.py: add one so the CuPy path covers it"
        )


# --- the backend -------------------------------------------------------------------------


@scenario("backend")
def backend_calls(backend: str, tmp_path: Path) -> dict[str, Any]:
    """The host/device crossings of minigan.backend, and its random generator."""
    be = get_backend(backend)
    x = be.asarray(np.arange(6.0).reshape(2, 3), dtype=np.float32)
    assert get_array_module(x) is be.xp and backend_of(x) == be
    be.synchronize()
    noise = be.default_rng(7).standard_normal((2, 3), dtype=np.float32)
    copy = to_host(x)
    copy[0, 0] = 99  # a copy shares nothing with the device array
    return {
        "x": to_host(x),
        "noise": to_host(noise),
        "numpy": host(get_backend("numpy").asarray(x)),
    }


# --- layers ------------------------------------------------------------------------------

# Each entry: (a small layer, the shape of an input it takes).
LAYER_EXAMPLES: dict[type, Callable[[np.random.Generator, Any], tuple[nn.Module, tuple]]] = {
    nn.Linear: lambda rng, dtype: (nn.Linear(6, 4, rng=rng, dtype=dtype), (3, 6)),
    nn.Maxout: lambda rng, dtype: (nn.Maxout(6, 4, 3, rng=rng, dtype=dtype), (3, 6)),
    nn.ReLU: lambda rng, dtype: (nn.ReLU(), (3, 6)),
    nn.LeakyReLU: lambda rng, dtype: (nn.LeakyReLU(0.1), (3, 6)),
    nn.Tanh: lambda rng, dtype: (nn.Tanh(), (3, 6)),
    nn.Sigmoid: lambda rng, dtype: (nn.Sigmoid(), (3, 6)),
    nn.Sequential: lambda rng, dtype: (
        nn.Sequential(
            nn.Linear(6, 5, rng=rng, dtype=dtype),
            nn.LeakyReLU(),
            nn.Linear(5, 4, rng=rng, dtype=dtype),
        ),
        (3, 6),
    ),
    nn.Conv2d: lambda rng, dtype: (
        nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng, dtype=dtype),
        (2, 2, 7, 6),
    ),
    nn.ConvTranspose2d: lambda rng, dtype: (
        nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1, output_padding=1, rng=rng, dtype=dtype),
        (2, 2, 5, 4),
    ),
    nn.BatchNorm1d: lambda rng, dtype: (nn.BatchNorm1d(6, dtype=dtype), (3, 6)),
    nn.BatchNorm2d: lambda rng, dtype: (nn.BatchNorm2d(2, dtype=dtype), (3, 2, 4, 5)),
    nn.Flatten: lambda rng, dtype: (nn.Flatten(), (3, 2, 4, 5)),
    nn.Unflatten: lambda rng, dtype: (nn.Unflatten(1, (2, 3)), (3, 6)),
    nn.Pack: lambda rng, dtype: (nn.Pack(2), (4, 3, 2, 2)),
    nn.Embedding: lambda rng, dtype: (nn.Embedding(5, 4, rng=rng, dtype=dtype), (3, 6)),
    nn.Concat: lambda rng, dtype: (nn.Concat(), (3, 6)),
    nn.Dropout: lambda rng, dtype: (nn.Dropout(0.3), (3, 6)),  # its rng: see RANDOM_SEED below
    nn.GaussianNoise: lambda rng, dtype: (nn.GaussianNoise(0.5), (3, 6)),
    nn.DiffAugment: lambda rng, dtype: (nn.DiffAugment(), (3, 3, 8, 7)),
    nn.WeightNormLinear: lambda rng, dtype: (
        nn.WeightNormLinear(6, 4, rng=rng, dtype=dtype),
        (3, 6),
    ),
    nn.MinibatchStdDev: lambda rng, dtype: (nn.MinibatchStdDev(2), (4, 2, 3, 2)),
    nn.InstanceNorm2d: lambda rng, dtype: (nn.InstanceNorm2d(2), (3, 2, 4, 5)),
    nn.ReflectionPad2d: lambda rng, dtype: (nn.ReflectionPad2d(2), (2, 2, 3, 5)),
    nn.Residual: lambda rng, dtype: (  # CycleGAN's block: pad, conv, norm, ReLU
        nn.Residual(
            nn.Sequential(
                nn.ReflectionPad2d(1),
                nn.Conv2d(2, 2, 3, rng=rng, dtype=dtype),
                nn.InstanceNorm2d(2),
                nn.ReLU(),
            )
        ),
        (2, 2, 5, 4),
    ),
    nn.Upsample: lambda rng, dtype: (nn.Upsample(3), (2, 2, 3, 2)),
    nn.ConditioningAugmentation: lambda rng, dtype: (  # its rng (eps): see RANDOM_SEED
        nn.ConditioningAugmentation(6, 3, init_rng=rng, dtype=dtype),
        (4, 6),
    ),
}

# Inputs for the layers that take something other than a float array of the shape above.
LAYER_INPUTS: dict[type, Callable[[np.random.Generator, Any], Any]] = {
    nn.Embedding: lambda rng, dtype: np.array([3, 0, 3, 4, 3, 1, 0]),  # repeats: a scatter-add
    nn.Concat: lambda rng, dtype: [
        rng.standard_normal((3, 2)).astype(dtype),
        rng.standard_normal((3, 4)).astype(dtype),
    ],
}

# Layers that draw random numbers (an ``rng`` attribute) get a generator of the
# backend under test, seeded alike: the stand-in then draws NumPy's stream.
RANDOM_SEED = 5


def flat(key: str, value: Any) -> dict[str, Any]:
    """``{key: host copy}``; a tuple (Concat's gradients) as ``key/0``, ``key/1``, ..."""
    if isinstance(value, tuple):
        return {f"{key}/{i}": host(v) for i, v in enumerate(value)}
    return {key: host(value)}


@scenario("layers")
def layers(backend: str, tmp_path: Path) -> dict[str, Any]:
    """Forward, backward (with and without the input gradient) of every layer."""
    be = get_backend(backend)
    classes = public_subclasses(nn, nn.Module)
    needs_example("layers", classes, LAYER_EXAMPLES)
    results = {}
    for cls in classes:
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            layer, shape = LAYER_EXAMPLES[cls](rng, dtype)
            layer.to(be)
            if hasattr(layer, "rng"):
                layer.rng = be.default_rng(RANDOM_SEED)
            if cls in LAYER_INPUTS:
                x = LAYER_INPUTS[cls](rng, dtype)
                x = [be.asarray(a) for a in x] if isinstance(x, list) else be.asarray(x)
            else:
                x = be.asarray(rng.standard_normal(shape).astype(dtype))
            y = layer(x)
            g = be.asarray(rng.standard_normal(y.shape).astype(dtype))
            key = f"{cls.__name__}/{np.dtype(dtype).name}"
            results[f"{key}/y"] = host(y)
            results |= flat(f"{key}/dx", layer.backward(g))
            results |= flat(f"{key}/dx-hint", layer.backward(g, input_grad=False))  # Linear: None
            for name, p in layer.named_parameters():
                results[f"{key}/grad/{name}"] = host(p.grad)
            layer.eval()  # BatchNorm: running statistics; Dropout, GaussianNoise: the identity
            results[f"{key}/eval/y"] = host(layer(x))
            results |= flat(f"{key}/eval/dx", layer.backward(g))
            if cls not in LAYER_INPUTS:
                results[f"{key}/sigmoid"] = host(nn.sigmoid(x * 40))
    return results


# --- losses ------------------------------------------------------------------------------


def _bce_inputs(rng: np.random.Generator, dtype: Any) -> list[tuple[Any, Any]]:
    p = rng.uniform(0.01, 0.99, (4, 1)).astype(dtype)
    p[0, 0], p[1, 0] = 0.0, 1.0  # the clamped ends
    return [(p, 1.0), (p, 0.0), (p, rng.uniform(0, 1, (4, 1)).astype(dtype))]


def _logit_inputs(rng: np.random.Generator, dtype: Any) -> list[tuple[Any, Any]]:
    x = (rng.standard_normal((4, 1)) * 30).astype(dtype)
    return [(x, 0.9), (x, rng.uniform(0, 1, (4, 1)).astype(dtype))]


def _class_inputs(rng: np.random.Generator, dtype: Any) -> list[tuple[Any, Any]]:
    return [((rng.standard_normal((5, 3)) * 5).astype(dtype), rng.integers(0, 3, 5))]


def _score_inputs(rng: np.random.Generator, dtype: Any) -> list[tuple[Any, Any]]:
    x = rng.standard_normal((4, 1)).astype(dtype)
    return [(x, rng.standard_normal((4, 1)).astype(dtype))]


def _l1_inputs(rng: np.random.Generator, dtype: Any) -> list[tuple[Any, Any]]:
    x = rng.standard_normal((4, 2)).astype(dtype)
    t = rng.standard_normal((4, 2)).astype(dtype)
    t[0] = x[0]  # ties: subgradient 0
    return [(x, t), (x, 0.5)]


def _critic_inputs(rng: np.random.Generator, dtype: Any) -> list[tuple[Any, Any]]:
    x = rng.standard_normal((4, 1)).astype(dtype)
    return [(x, 1), (x, -1)]


def _gradient_inputs(rng: np.random.Generator, dtype: Any) -> list[tuple[Any, Any]]:
    g = rng.standard_normal((4, 5)).astype(dtype)
    g[0] = 0  # a row without direction
    return [(g, 1.0)]


def _sgan_inputs(rng: np.random.Generator, dtype: Any) -> list[tuple[Any, Any]]:
    logits = (rng.standard_normal((4, 3)) * 30).astype(dtype)
    logits[0] = [1e4, -1e4, 0.0]  # overflow, if anything would
    return [(logits, 1.0), (logits, 0.0), (logits, rng.uniform(0, 1, 4).astype(dtype))]


def _feature_inputs(rng: np.random.Generator, dtype: Any) -> list[tuple[Any, Any]]:
    fake, real = rng.standard_normal((4, 3)), rng.standard_normal((6, 3))  # batches may differ
    return [(fake.astype(dtype), real.astype(dtype))]


LOSS_EXAMPLES: dict[type, Callable[[np.random.Generator, Any], list[tuple[Any, Any]]]] = {
    losses.BCELoss: _bce_inputs,
    losses.BCEWithLogitsLoss: _logit_inputs,
    losses.CrossEntropyLoss: _class_inputs,
    losses.MSELoss: _score_inputs,
    losses.L1Loss: _l1_inputs,
    losses.WassersteinLoss: _critic_inputs,
    losses.GradientPenalty: _gradient_inputs,
    sgan_losses.SGANUnsupervisedLoss: _sgan_inputs,
    sgan_losses.FeatureMatchingLoss: _feature_inputs,
}


@scenario("losses")
def all_losses(backend: str, tmp_path: Path) -> dict[str, Any]:
    """Forward and backward of every loss, with number, array and label targets."""
    be = get_backend(backend)
    classes = public_subclasses(losses, losses.Loss) + public_subclasses(sgan_losses, losses.Loss)
    needs_example("losses", classes, LOSS_EXAMPLES)
    results = {}
    for cls in classes:
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(1)
            for i, (pred, target) in enumerate(LOSS_EXAMPLES[cls](rng, dtype)):
                loss = cls()
                if isinstance(target, np.ndarray):
                    target = be.asarray(target)
                key = f"{cls.__name__}/{np.dtype(dtype).name}/{i}"
                results[f"{key}/loss"] = host(loss(be.asarray(pred), target))
                results[f"{key}/grad"] = host(loss.backward())
    for dtype in (np.float32, np.float64):
        logits = np.random.default_rng(6).standard_normal((4, 3)).astype(dtype) * 1e4
        results[f"log_softmax/{np.dtype(dtype).name}"] = host(
            losses.log_softmax(be.asarray(logits))
        )
        lse = sgan_losses.logsumexp(be.asarray(logits))
        results[f"logsumexp/{np.dtype(dtype).name}"] = host(lse)
    return results


# --- optimizers --------------------------------------------------------------------------

OPTIMIZER_EXAMPLES: dict[type, list[dict[str, Any]]] = {
    optim.SGD: [{"lr": 0.1}, {"lr": 0.1, "momentum": 0.9}],
    optim.Adam: [{"lr": 0.01}, {"lr": 0.01, "betas": (0.5, 0.99), "eps": 1e-6}],
    optim.RMSprop: [{"lr": 0.01}, {"lr": 0.01, "alpha": 0.9, "momentum": 0.5}],
}


@scenario("optimizers")
def optimizers(backend: str, tmp_path: Path) -> dict[str, Any]:
    """Three steps of every optimizer, then its state saved and loaded into a twin."""
    be = get_backend(backend)
    classes = public_subclasses(optim, optim.Optimizer)
    needs_example("optimizers", classes, OPTIMIZER_EXAMPLES)
    results = {}
    rng = np.random.default_rng(2)
    x = be.asarray(rng.standard_normal((8, 6)).astype(np.float32))
    t = be.asarray((rng.uniform(size=(8, 1)) > 0.5).astype(np.float32))

    def model_and_optimizer(cls: type, kwargs: dict[str, Any]):
        r = np.random.default_rng(3)
        model = nn.Sequential(nn.Linear(6, 5, rng=r), nn.Tanh(), nn.Linear(5, 1, rng=r)).to(be)
        return model, cls(model.parameters(), **kwargs)

    def step(model: nn.Module, optimizer: optim.Optimizer) -> None:
        loss = losses.BCEWithLogitsLoss()
        optimizer.zero_grad()
        loss(model(x), t)
        model.backward(loss.backward(), input_grad=False)
        optimizer.step()

    for cls in classes:
        for i, kwargs in enumerate(OPTIMIZER_EXAMPLES[cls]):
            model, optimizer = model_and_optimizer(cls, kwargs)
            for _ in range(3):
                step(model, optimizer)
            twin, twin_optimizer = model_and_optimizer(cls, kwargs)
            twin.load_state_dict(model.state_dict())
            twin_optimizer.load_state_dict(optimizer.state_dict())
            step(model, optimizer)
            step(twin, twin_optimizer)
            key = f"{cls.__name__}/{i}"
            for name, value in model.state_dict().items():
                results[f"{key}/{name}"] = value
                np.testing.assert_array_equal(twin.state_dict()[name], value)
            for name, value in optimizer.state_dict().items():
                results[f"{key}/state/{name}"] = value
    return results


# --- the GAN -----------------------------------------------------------------------------


def small(config: Any, **changes: Any) -> Any:
    """A preset shrunk to test size: the same recipe, tiny networks."""
    return dataclasses.replace(config, hidden=16, latent_dim=8, batch_size=10, **changes)


# Every preset, and the options no preset uses.
GAN_CONFIGS = {name: small(config) for name, config in PRESETS.items()} | {
    "classic+saturating": small(PRESETS["classic"], generator_loss="saturating"),
    "default+d_steps=2": small(PRESETS["default"], d_steps=2),
    "default+ema+d_lr": small(PRESETS["default"], ema=0.9, d_lr=4e-4),
    "default+minibatch_std": small(PRESETS["default"], minibatch_std=5),
    "default+pack=5": small(PRESETS["default"], pack=5),
    "default+d_dropout": small(PRESETS["default"], d_dropout=0.3),
}


def gan_data(backend: str, n: int = 10) -> Any:
    images = np.random.default_rng(4).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return get_backend(backend).asarray(to_gan_range(images))


def gan_results(gan: GAN, figures: list[dict[str, Any]]) -> dict[str, Any]:
    results = {f"step{i}/{k}": host(v) for i, f in enumerate(figures) for k, v in f.items()}
    state = gan.state_dict()
    for net in ("generator", "discriminator"):
        results |= {f"{net}/{k}": v for k, v in state[net].items()}
    for opt in ("g_optimizer", "d_optimizer"):
        results |= {f"{opt}/{k}": v for k, v in state[opt].items() if k in ("m", "v", "t")}
    if "generator_ema" in state:  # the averaged G, which draws the samples below
        ema = state["generator_ema"]
        results |= {f"generator_ema/{k}": v for k, v in ema["weights"].items()}
        results["generator_ema/updates"] = ema["updates"]
    gan.reseed_noise(9)
    if gan.translation:  # a translation model draws from no noise: it translates
        pair = pair_data(gan.backend.name, 5)
        results |= {"pools/A": host(gan.pools["A"].images), "pools/B": host(gan.pools["B"].images)}
        results["generated"] = host(gan.translate(pair[0], "AB"))
        results["generated_ba"] = host(gan.translate(pair[1], "BA"))
        return results
    z = gan.sample_noise(5)
    # A conditional model's generate checks the labels asked for: one explicit read.
    results["generated"] = host(
        gan.generate(z, gan.sample_labels(5)) if gan.conditional else gan.generate(z)
    )
    if isinstance(gan, SGAN):  # D in evaluation mode: the classifier
        results["classified"] = host(gan.classify(gan_data(gan.backend.name)))
    return results


def small_dcgan(backend: str, **changes: Any) -> DCGAN:
    config = DCGANConfig(latent_dim=8, base_channels=4, batch_size=10, **changes)
    return DCGAN(config, backend, seed=0)


def image_data(backend: str, n: int = 10) -> Any:
    images = np.random.default_rng(4).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return get_backend(backend).asarray(to_gan_range(images, flatten=False))


def labelled_data(backend: str, n: int = 10) -> tuple[Any, Any]:
    """A real batch and its labels (repeats included), for the conditional models."""
    labels = np.random.default_rng(8).integers(0, 10, n)
    return gan_data(backend, n), get_backend(backend).asarray(labels)


def small_sgan(backend: str) -> SGAN:
    """Salimans et al.'s recipe on tiny networks, its 20 labelled images chosen from 40."""
    config = dataclasses.replace(
        small(SGAN.default_config()), d_hidden=(12, 6), labels=20, batch_size=10
    )
    model = SGAN(config, backend, seed=0)
    images = gan_data(backend, 40)
    model.set_labelled(images, np.tile(np.arange(10), 4))  # 20 > batch 10: drawn each step
    return model


def small_cyclegan(backend: str) -> Any:
    """CycleGAN on tiny networks and 8x8 images, a pool of 3 (filled, then swapping, within
    the three steps), and the rate's fall planned: every part of its step runs."""
    config = CycleGANConfig(image_size=8, base_channels=2, residual_blocks=1, d_layers=1,
                            batch_size=2, pool_size=3)  # fmt: skip
    model = CycleGAN(config, backend, seed=0)
    model.plan_steps(4)
    return model


def pair_data(backend: str, n: int = 2) -> tuple[Any, Any]:
    """Unrelated batches of the two domains, (n, 1, 8, 8) each, for the translation model."""
    images = np.random.default_rng(5).uniform(-1, 1, (2, n, 1, 8, 8))
    xp = get_backend(backend)
    return xp.asarray(images[0], dtype=np.float32), xp.asarray(images[1], dtype=np.float32)


def point_data(backend: str, n: int = 10) -> Any:
    """Points of the 2-D ring, (n, 2), for the 2-D networks (arch 'points')."""
    return get_backend(backend).asarray(ring_mixture(n, 4)[0])


def small_points(name: str, backend: str) -> Any:
    """Model ``name`` on the 2-D benchmarks' networks (full size), packs of 2, points in 2-D."""
    cls = MODELS[name]
    config = small(cls.default_config(), arch="points", image_size=2, pack=2)
    return cls(config, backend, seed=0)


def small_stackgan(backend: str) -> StackGAN:
    """StackGAN on tiny networks with both moving averages, planned for 5 steps: two of
    Stage-I, then Stage-II (``train_steps`` takes 3; the zero-sync test 5)."""
    config = StackGANConfig(latent_dim=4, text_dim=6, c_dim=3, d_text_dim=3, g1_channels=4,
                            g2_channels=4, d_channels=2, residual_blocks=1, batch_size=4,
                            ema=0.9)  # fmt: skip
    model = StackGAN(config, backend, seed=0)
    model.plan_steps(5)
    return model


def caption_data(backend: str, n: int = 4) -> tuple[Any, Any]:
    """Real 28x28 images and their captions' embeddings, for the captioned model."""
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    text = rng.standard_normal((n, 6)).astype(np.float32)
    be = get_backend(backend)
    return be.asarray(to_gan_range(images, flatten=False)), be.asarray(text)


def stackgan_results(gan: StackGAN, figures: list[dict[str, Any]]) -> dict[str, Any]:
    """The stats, the state (four networks, four optimizers, both averages), and both
    stages' images for fixed noise and captions."""
    results = {f"step{i}/{k}": host(v) for i, f in enumerate(figures) for k, v in f.items()}
    state = gan.state_dict()
    for part in ("generator", "discriminator"):
        results |= {f"{part}/{k}": v for k, v in state[part].items()}
    for key in gan.optimizers:
        results |= {f"{key}/{k}": v for k, v in state[key].items() if k in ("m", "v", "t")}
    for stage, average in state["generator_ema"].items():
        results |= {f"ema/{stage}/{k}": v for k, v in average["weights"].items()}
    gan.reseed_noise(9)
    _, text = caption_data(gan.backend.name)
    sketch, image = gan.generate_stages(gan.sample_noise(4), text)
    results |= {"sketch": host(sketch), "generated": host(image)}
    return results


def take_step(gan: Any, batch: Any) -> dict[str, Any]:
    """``train_step(real)``, or ``train_step(real, labels)`` for a conditional model, or
    ``train_step(a, b)`` for a translation model, or ``train_step(real, text)`` for a
    captioned one."""
    several = gan.conditional or gan.translation or getattr(gan, "captioned", False)
    return gan.train_step(*batch) if several else gan.train_step(batch)


# Every model the CLI can train, as (build it on a backend, a batch for it: real images,
# with their labels for a conditional model): the scenarios below and the zero-sync tests
# cover each entry.
TRAINERS: dict[str, tuple[Callable[[str], Any], Callable[[str], Any]]] = {
    **{
        name: (lambda backend, c=config: GAN(c, backend, seed=0), gan_data)
        for name, config in GAN_CONFIGS.items()
    },
    **{
        name: (
            lambda backend, m=MODELS[name]: m(small(m.default_config()), backend, seed=0),
            labelled_data if MODELS[name].conditional else gan_data,
        )
        for name in MODELS
        if name not in ("gan", "dcgan", "sgan", "cyclegan", "stackgan")  # entries beside
    },
    "cgan+mlp": (  # the MLPs, CGAN's default until issue 26 (the default: "cgan")
        lambda backend: MODELS["cgan"](
            small(MODELS["cgan"].default_config(), arch="mlp"), backend, seed=0
        ),
        labelled_data,
    ),
    "cyclegan": (small_cyclegan, pair_data),
    "stackgan": (small_stackgan, caption_data),
    "dcgan": (small_dcgan, image_data),
    "dcgan+ema": (lambda backend: small_dcgan(backend, ema=0.9), image_data),
    "dcgan+pack": (lambda backend: small_dcgan(backend, pack=2), image_data),
    "dcgan+d_dropout": (lambda backend: small_dcgan(backend, d_dropout=0.3), image_data),
    "dcgan+d_noise": (lambda backend: small_dcgan(backend, d_noise=0.2), image_data),
    "dcgan+d_augment": (
        lambda backend: small_dcgan(backend, d_augment="color,translation,cutout"),
        image_data,
    ),
    "dcgan+d_batchnorm": (lambda backend: small_dcgan(backend, d_norm="batch"), image_data),
    "dcgan+paper_g": (lambda backend: small_dcgan(backend, g_full_res_channels=0), image_data),
    "dcgan+no_fc": (lambda backend: small_dcgan(backend, d_fc_width=0, g_fc_width=0), image_data),
    "sgan": (small_sgan, gan_data),
    "wgan+d_batchnorm": (  # the BatchNorm critic's two passes
        lambda backend: MODELS["wgan"](
            small(MODELS["wgan"].default_config(), arch="conv", d_norm="batch"), backend, seed=0
        ),
        gan_data,
    ),
    **{
        f"{name}+points": (lambda backend, n=name: small_points(n, backend), point_data)
        for name in ("gan", "lsgan", "wgan", "wgan-gp")
    },
}


def train_steps(name: str, backend: str, tmp_path: Path) -> dict[str, Any]:
    """Three training steps, the state, and generated images, for one model."""
    build, data = TRAINERS[name]
    gan, batch = build(backend), data(backend)
    results = stackgan_results if isinstance(gan, StackGAN) else gan_results
    return results(gan, [take_step(gan, batch) for _ in range(3)])


for _name in TRAINERS:

    def _train_steps(backend: str, tmp_path: Path, _name: str = _name) -> dict[str, Any]:
        return train_steps(_name, backend, tmp_path)

    SCENARIOS[f"train_step[{_name}]"] = _train_steps


@scenario("checkpoint_resume")
def checkpoint_resume(backend: str, tmp_path: Path) -> dict[str, Any]:
    """Save after 2 steps, load into a new GAN, 2 more: the same as 4 straight
    (the averaged generator included)."""
    config = GAN_CONFIGS["default+ema+d_lr"]
    real = gan_data(backend)
    straight = GAN(config, backend, seed=0)
    for _ in range(4):
        straight.train_step(real)
    first = GAN(config, backend, seed=0)
    for _ in range(2):
        first.train_step(real)
    path = tmp_path / f"{backend}.npz"
    save_checkpoint(path, {"gan": first.state_dict()})
    resumed = GAN(config, backend, seed=0)
    resumed.load_state_dict(load_checkpoint(path)["gan"])
    resumed.noise_rng = first.noise_rng  # the stream goes on where it was
    for _ in range(2):
        resumed.train_step(real)
    a, b = gan_results(straight, []), gan_results(resumed, [])
    for key, value in a.items():
        np.testing.assert_array_equal(b[key], value, err_msg=key)
    return b


@scenario("batch_iterator")
def batch_iterator(backend: str, tmp_path: Path) -> dict[str, Any]:
    """Two epochs of (images, labels) batches gathered on the device, and a replay."""
    be = get_backend(backend)
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 20)
    on_device = to_gan_range(be.asarray(images))  # scaling works on the device too
    loader = BatchIterator(on_device, be.asarray(labels), batch_size=6, seed=3, backend=be)
    results = {}
    state = loader.state_dict()
    for epoch in range(2):
        for i, (x, y) in enumerate(loader):
            results[f"{epoch}/{i}/x"], results[f"{epoch}/{i}/y"] = host(x), host(y)
    loader.load_state_dict(state)
    for i, (x, _) in enumerate(loader):
        np.testing.assert_array_equal(host(x), results[f"0/{i}/x"])
    return results


# --- the metrics -------------------------------------------------------------------------


def mnist_subset(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` MNIST training digits, or random blobs where MNIST is absent."""
    root = os.environ.get("MINIGAN_DATA")
    if root and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        images, labels = load_mnist("train")
        return images[:n], labels[:n]
    rng = np.random.default_rng(0)
    images = (rng.uniform(size=(n, 28, 28)) > 0.8).astype(np.uint8) * 255
    return images, rng.integers(0, 10, n).astype(np.uint8)


@scenario("classifier")
def classifier(backend: str, tmp_path: Path) -> dict[str, Any]:
    """Train the metrics' classifier briefly, classify, and score samples on the device."""
    be = get_backend(backend)
    images, labels = mnist_subset(600)
    model = train_classifier(
        images[:300], labels[:300], epochs=1, batch_size=50, backend=backend, progress=False
    )
    logits, features = classify(model, be.asarray(unit_range(images[:300])), batch_size=128)
    mean, cov = features.mean(axis=0), np.cov(features, rowvar=False)
    evaluator = Evaluator(model, mean, cov, {"test_accuracy": 0.0}, test_speckle=0.0)
    samples = be.asarray(unit_range(images[300:]).reshape(-1, 28, 28))  # others: FID > 0
    scores = evaluator.evaluate(samples)
    return {"logits": logits, "features": features, **{k: scores[k] for k in sorted(scores)}}


# --- the example script ------------------------------------------------------------------


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("mnist_gan_for_cupy_tests", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SMALL_RUN = ["--train-size", "300", "--batch-size", "50", "--hidden", "32", "--log-every", "2"]


@contextlib.contextmanager
def small_example_world(example: Any, tmp_path: Path) -> Iterator[None]:
    """MNIST or blobs, a private cache, and a quick classifier for --eval-every."""
    images, labels = mnist_subset(1000)
    small_evaluator = Evaluator.load_or_train.__func__

    def load_or_train(cls: type, **kwargs: Any) -> Evaluator:
        kwargs |= {"cache_dir": tmp_path / "cache", "epochs": 1, "num_train": 300}
        return small_evaluator(cls, **kwargs, progress=False)

    def fake_load_mnist(split: str, root: Any = None) -> tuple[np.ndarray, np.ndarray]:
        return images, labels

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("minigan.runs.load_mnist", fake_load_mnist))
        stack.enter_context(mock.patch("minigan.metrics.evaluator.load_mnist", fake_load_mnist))
        stack.enter_context(
            mock.patch.object(Evaluator, "load_or_train", classmethod(load_or_train))
        )
        yield


@scenario("mnist_gan_example")
def mnist_gan_example(backend: str, tmp_path: Path) -> dict[str, Any]:
    """examples/mnist_gan.py: 1 epoch with --eval-every, a resumed 2nd, then --sample."""
    example = load_example()
    out = tmp_path / backend
    with small_example_world(example, out):
        args = [*SMALL_RUN, "--backend", backend, "--out", str(out), "--eval-every", "1"]
        assert example.main([*args, "--epochs", "1", "--eval-samples", "300"]) == 0
        assert example.main([*args, "--epochs", "2", "--eval-samples", "300", "--resume"]) == 0
        samples = out / "samples.npy"
        code = example.main(
            ["--backend", backend, "--sample", "130", "--checkpoint", str(out / "checkpoint.npz"),
             "--output", str(samples)]
        )  # fmt: skip
        assert code == 0
    state = load_checkpoint(out / "checkpoint.npz")
    results = {"samples": np.load(samples), "history": state["history"]}
    for part in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        results |= {f"{part}/{k}": v for k, v in state["gan"][part].items()}
    return results
