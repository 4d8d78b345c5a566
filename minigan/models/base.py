"""What every model of the GAN family shares: its config fields, the step skeleton and state.

Each model file adds only its own math: a config, its networks, its losses,
``discriminator_step`` and ``generator_step``. Everything here is the same for all:

- ``option``: a config field declared with its one-line help (the command line's
  flags are built from these), and the checks the configs share;
- the noise z ~ N(0, I), drawn on the model's device from its own stream;
- the step skeleton (Goodfellow et al.'s Algorithm 1, which every later paper
  keeps): k updates of D, each on a fresh batch, then one of G;
- the generator's update: the gradient of G's loss, computed at D's output,
  crosses D (``frozen``: it only passes the gradient on) and then G;
- the checkpoint state, loaded all or nothing, and refused when it belongs to
  another model.

The MLPs most models are built from, and their sizes, are in ``mlp.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_backend
from minigan.ema import EMA
from minigan.nn.checks import check_array, is_integer


def option(default: Any, help: str, **extra: Any) -> Any:
    """A config field with its help text: ``lr: float = option(2e-4, "learning rate")``.

    ``extra`` goes into the field's metadata beside ``help``: ``choices`` (the allowed
    values), ``metavar`` (the value's name in ``--help``), ``flag=False`` (no
    command-line flag of its own). The range of a value is checked in the config's
    ``__post_init__``, which names the field in its ValueError.
    """
    return dataclasses.field(default=default, metadata={"help": help, **extra})


def option_of(config_class: type, name: str, default: Any) -> Any:
    """``config_class``'s field ``name`` with another default, its help kept:
    ``hidden: int = option_of(MLPConfig, "hidden", 512)`` in a config deriving from it."""
    field = {f.name: f for f in dataclasses.fields(config_class)}[name]
    return dataclasses.field(default=default, metadata=field.metadata)


def check_positive(config: Any, *names: str) -> None:
    """Each named field is an integer >= 1: else a ValueError naming the field."""
    for name in names:
        value = getattr(config, name)
        if not is_integer(value) or value < 1:
            shown = value if is_integer(value) else repr(value)
            raise ValueError(f"{name} must be a positive integer, got {shown}")


def check_adam(config: Any) -> None:
    """``lr`` a positive number, and each of ``betas`` in [0, 1)."""
    check_rate(config, "lr")
    if len(config.betas) != 2 or not all(0 <= beta < 1 for beta in config.betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {config.betas}")


def check_rate(config: Any, name: str) -> None:
    """A learning rate: a finite number > 0, else a ValueError naming the field."""
    value = getattr(config, name)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value}")


def check_discriminator_options(config: Any) -> None:
    """What GANConfig and DCGANConfig share: D's dropout and its packs must fit."""
    if not 0 <= config.d_dropout < 1:
        raise ValueError(f"d_dropout must lie in [0, 1) (0: none), got {config.d_dropout}")
    check_pack(config)


def check_pack(config: Any, judge: str = "D") -> None:
    """``batch_size`` a multiple of ``pack`` (PacGAN: ``judge`` scores packs of images)."""
    if config.batch_size % config.pack:
        raise ValueError(
            f"batch size {config.batch_size} is not a multiple of pack {config.pack} ({judge} "
            f"judges the batch in packs of {config.pack} images): choose a batch size "
            f"divisible by {config.pack}, or pack 1"
        )


def check_count(where: str, n: Any, what: str) -> None:
    """``n``, how many ``what`` to draw, is an integer >= 0 (0 draws an empty batch)."""
    if not is_integer(n) or n < 0:
        raise ValueError(f"{where}: n is how many {what} to draw, an integer >= 0; got {n!r}")


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """``with frozen(D): grad_fake = D.backward(grad_scores)``: the gradient crosses D,
    and D's parameters learn nothing from it (``requires_grad_(False)`` inside the
    block; switched back on when the block ends, however it ends)."""
    module.requires_grad_(False)
    try:
        yield module
    finally:
        module.requires_grad_(True)


class Model:
    """A generator, a discriminator (or critic), their optimizers, and the step skeleton.

    Subclasses set ``name``, ``summary``, ``config_class``, ``stats`` and write
    ``build_networks``, ``make_optimizer``, ``d_steps_per_g_step``,
    ``discriminator_step`` and ``generator_step`` (``mlp.MLPModel`` writes the
    networks for the MLP models; see ``minigan.models`` for the whole interface).

    Args:
        config: an instance of the model's ``config_class``.
        backend: ``"numpy"`` or ``"cupy"`` (or a ``Backend``).
        seed: seeds the initial weights and the noise stream.
        dtype: the dtype everything computes in.
    """

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for --help
    config_class: ClassVar[type]
    stats: ClassVar[dict[str, str]]  # what train_step reports: name -> what it means
    labelled: ClassVar[bool] = False  # trained with digit labels (cgan, acgan, sgan)
    conditional: ClassVar[bool] = False  # G and D take labels: train_step(real, labels)
    translation: ClassVar[bool] = False  # two domains, no noise: train_step(a, b) (cyclegan)
    captioned: ClassVar[bool] = False  # text to image: train_step(real, text) (stackgan)
    default_epochs: ClassVar[int] = 30  # examples/mnist_gan.py's --epochs when not given

    def __init__(
        self,
        config: Any,
        backend: str | Backend = "numpy",
        seed: int = 0,
        dtype: Any = np.float32,
    ):
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got a {type(config).__name__}"
            )
        self.config = config
        self.backend = get_backend(backend)
        self.dtype = np.dtype(dtype)
        G, D = self.build_networks(config, np.random.default_rng(seed), self.dtype)
        self.generator, self.discriminator = G.to(self.backend), D.to(self.backend)
        self.g_optimizer = self.make_optimizer(self.generator.parameters())
        self.d_optimizer = self.make_discriminator_optimizer(self.discriminator.parameters())
        # Configs with an ``ema`` decay (GANConfig) may keep a moving average of G's
        # weights, which then draws every sample (see minigan/ema.py); 0: none.
        decay = getattr(config, "ema", 0.0)
        self.generator_ema = EMA(self.generator, decay) if decay else None
        self.reseed_noise(seed)  # z, and D's random layers (Dropout, GaussianNoise)
        self.steps = 0
        self._g_loss = None  # the latest generator loss, reported until the next G update

    @classmethod
    def default_config(cls) -> Any:
        """The documented defaults (the paper's hyperparameters): a fresh copy."""
        return cls.config_class()

    # --- the model's own parts (each model file writes these) -----------------------

    def build_networks(
        self, config: Any, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Module, nn.Module]:
        """(G, D), with initial weights drawn from ``rng``."""
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one image as the networks see it."""
        raise NotImplementedError

    def make_optimizer(self, params: list[nn.Parameter]) -> Any:
        raise NotImplementedError

    def make_discriminator_optimizer(self, params: list[nn.Parameter]) -> Any:
        """D's optimizer: ``make_optimizer``'s, unless the model gives D its own (TTUR)."""
        return self.make_optimizer(params)

    def d_steps_per_g_step(self) -> int:
        raise NotImplementedError

    def discriminator_step(self, real: Any, fake: Any) -> dict[str, Any]:
        raise NotImplementedError

    def generator_step(self, fake: Any) -> Any:
        raise NotImplementedError

    # --- noise and sampling -------------------------------------------------------

    def reseed_noise(self, seed: int) -> None:
        """Restart the noise stream (the training loop does this every epoch).

        The model's random layers (D's Dropout, GaussianNoise, DiffAugment) draw from it, so
        one seed fixes every random number of a step, and a run resumed at an epoch
        boundary draws exactly what the uninterrupted run drew.
        """
        self.noise_rng = self.backend.default_rng(seed)
        for layer in self.discriminator.modules():
            if isinstance(layer, (nn.Dropout, nn.GaussianNoise, nn.DiffAugment)):
                layer.rng = self.noise_rng

    def sample_noise(self, n: int) -> Any:
        """z ~ N(0, I), shape (n, latent_dim), on the model's backend and dtype (n >= 0)."""
        check_count(f"{type(self).__name__}.sample_noise", n, "noise vectors")
        return self.noise_rng.standard_normal((n, self.config.latent_dim), dtype=self.dtype)

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws samples: the moving average of G's weights when
        the model keeps one (``ema`` > 0), else G itself. Training always uses G."""
        return self.generator_ema.averaged if self.generator_ema is not None else self.generator

    def generate(self, z: Any) -> Any:
        """Images in [-1, 1], shape (n, *image_shape), for the noise ``z`` (from ``sampler``)."""
        return self.sampler.forward(z)

    # --- training -----------------------------------------------------------------

    def train_step(self, real: Any) -> dict[str, Any]:
        """One update of D on ``real``; every ``d_steps_per_g_step()``-th call, one of G.

        Args:
            real: a batch of real images in [-1, 1], shape (batch, *image_shape).

        Returns:
            stats: the model's ``stats``, as 0-d arrays on the backend, so reading
            them is the caller's choice (on a GPU, reading means waiting).
            ``g_loss`` comes from the latest G update: None before the first.
        """
        self.check_real(real)
        z = self.sample_noise(real.shape[0])
        fake = self.generator.forward(z)
        stats = self.discriminator_step(real, fake)
        self.steps += 1
        if self.steps % self.d_steps_per_g_step() == 0:
            # G's forward caches for `fake` are still valid (G has not changed),
            # so the G step reuses them instead of generating a second batch.
            self._g_loss = self.generator_step(fake)
        stats["g_loss"] = self._g_loss
        return stats

    def check_real(self, real: Any) -> None:
        """A batch of real images on the model's backend, in its dtype and image shape."""
        where = f"{type(self).__name__}.train_step"
        check_array(
            where, real, xp=self.backend.xp, dtype=self.dtype,
            shape=("batch", *self.image_shape), name="real batch",
        )  # fmt: skip
        pack = getattr(self.config, "pack", 1)  # D scores packs of this many images
        if real.shape[0] % pack:
            raise ValueError(
                f"{where}: a real batch of {real.shape[0]} images is not a multiple of pack "
                f"{pack} (D judges packs of {pack} images); give a batch divisible by {pack}"
            )

    def update_discriminator(self, grad_scores: Any) -> None:
        """D's update from dL/d(scores) of its last forward pass (data: no input gradient)."""
        self.d_optimizer.zero_grad()
        self.discriminator.backward(grad_scores, input_grad=False)
        self.d_optimizer.step()

    def update_generator(self, grad_scores: Any, through: nn.Module | None = None) -> None:
        """G's update from dL/d(scores), scores = D(fake) just computed: the heart of GAN training.

        The loss lives at D's output, the parameters to change are G's: the
        gradient crosses D on the way (D's backward pass gives dL/d(fake images)),
        then G. D stays fixed: here it only passes the gradient on.

        ``through``: the part of D the scores came out of, when G's loss is taken
        at an inner layer (SGAN's feature matching: D's lower layers); default all of D.
        """
        D, G = through if through is not None else self.discriminator, self.generator
        with frozen(D):  # D must not learn from G's loss
            grad_fake = D.backward(grad_scores)  # dL/d(fake images): straight through D
        self.g_optimizer.zero_grad()
        G.backward(grad_fake, input_grad=False)  # dL/d(G's parameters), into .grad
        self.g_optimizer.step()  # only G moves
        if self.generator_ema is not None:
            self.generator_ema.update()  # the average follows

    # --- saving and loading -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The model's name, weights and optimizer states of both players, the step count,
        and the averaged generator (``generator_ema``) when the model keeps one."""
        state = {
            "model": self.name,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "steps": self.steps,
        }
        if self.generator_ema is not None:
            state["generator_ema"] = self.generator_ema.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a ``state_dict()``: all of it, or, if any part does not fit, none of it.

        A state saved by another model is refused first, by name: a WGAN-GP and a
        GAN have the same networks and optimizers, so nothing else would notice.
        Each part then checks its own entries before changing anything; should a
        later part fail, the parts already loaded are put back as they were.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{where}: expected a dict, got {type(state).__name__}")
        if "model" not in state:
            raise KeyError(f"{where}: the state has no ['model']")
        saved = state["model"]
        if saved != self.name:
            raise ValueError(
                f"{where}: this state was saved by a {saved!r} model, not {self.name!r}; "
                f"load it into a {saved!r} model (the model it was trained as)"
            )
        parts = [
            (self.generator, "generator"),
            (self.discriminator, "discriminator"),
            (self.g_optimizer, "g_optimizer"),
            (self.d_optimizer, "d_optimizer"),
        ]
        if self.generator_ema is not None:
            parts.append((self.generator_ema, "generator_ema"))
        elif "generator_ema" in state:
            raise ValueError(
                f"{where}: this state holds an averaged generator, and this model keeps "
                f"none (its config has ema=0); load it into a model built with the "
                f"config it was saved with"
            )
        missing = [key for _, key in parts if key not in state] + (
            [] if "steps" in state else ["steps"]
        )
        if missing:
            raise KeyError(f"{where}: the state has no {missing}")
        steps = int(state["steps"])
        backups = []
        try:
            for part, key in parts:
                backup = part.state_dict()
                part.load_state_dict(state[key])
                backups.append((part, backup))
        except Exception:
            for part, backup in backups:
                part.load_state_dict(backup)
            raise
        self.steps = steps
