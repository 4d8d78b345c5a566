"""What every model of the GAN family shares: its networks, noise, step skeleton and state.

Each model file (``gan.py``, ``lsgan.py``, ``wgan.py``, ``wgan_gp.py``) adds only its own
math: a config, its losses, ``discriminator_step`` and ``generator_step``. Everything
here is the same for all of them:

- the MLPs: a generator z -> image in [-1, 1], and a discriminator (or critic)
  image -> one score, built from one seeded generator of initial weights;
- the noise z ~ N(0, I), drawn on the model's device from its own stream;
- the step skeleton (Goodfellow et al.'s Algorithm 1, which every later paper
  keeps): k updates of D, each on a fresh batch, then one of G;
- the generator's update: the gradient of G's loss, computed at D's output,
  crosses D (frozen) and then G;
- the checkpoint state, loaded all or nothing, and refused when it belongs to
  another model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_backend
from minigan.ema import EMA
from minigan.nn.checks import check_array

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2)}


@dataclass
class MLPConfig:
    """The architecture and batch size every model shares (each model's config adds its own).

    latent_dim: size of z; hidden: width of the two hidden layers of G and D;
    image_size: pixels per image (784 for MNIST); g_activation: G's hidden
    activation, ``"relu"`` or ``"leaky_relu"`` (D always uses LeakyReLU(0.2)).
    """

    latent_dim: int = 64
    hidden: int = 256
    image_size: int = 784
    g_activation: str = "relu"
    batch_size: int = 100

    POSITIVE: ClassVar[tuple[str, ...]] = ("latent_dim", "hidden", "image_size", "batch_size")

    def __post_init__(self) -> None:
        if self.g_activation not in ACTIVATIONS:
            raise ValueError(
                f"g_activation must be one of {tuple(ACTIVATIONS)}, got {self.g_activation!r}"
            )
        for name in self.POSITIVE:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_discriminator_options(config: Any) -> None:
    """What GANConfig and DCGANConfig share: D's dropout and its packs must fit."""
    if not 0 <= config.d_dropout < 1:
        raise ValueError(f"d_dropout must lie in [0, 1) (0: none), got {config.d_dropout}")
    if config.batch_size % config.pack:
        raise ValueError(
            f"batch size {config.batch_size} is not a multiple of pack {config.pack} (D judges "
            f"the batch in packs of {config.pack} images): choose a batch size divisible by "
            f"{config.pack}, or pack 1"
        )


def dropout_layers(p: float) -> list[nn.Module]:
    """[Dropout(p)] to put after a hidden layer of D, or [] for p = 0: a new layer at
    each call, since each keeps its own mask for backward."""
    return [nn.Dropout(p)] if p else []


def build_generator(config: MLPConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """z (batch, latent_dim) -> image (batch, image_size) in [-1, 1]."""
    h, act = config.hidden, ACTIVATIONS[config.g_activation]
    return nn.Sequential(
        nn.Linear(config.latent_dim, h, rng=rng, dtype=dtype), act(),
        nn.Linear(h, h, rng=rng, dtype=dtype), act(),
        nn.Linear(h, config.image_size, rng=rng, dtype=dtype), nn.Tanh(),
    )  # fmt: skip


def build_discriminator(
    config: MLPConfig,
    rng: np.random.Generator,
    dtype: Any,
    sigmoid: bool = False,
    outputs: int = 1,
    minibatch_std: int = 0,
    pack: int = 1,
    dropout: float = 0.0,
) -> nn.Sequential:
    """image (batch, image_size) -> one score per image: a real number, or (sigmoid) a probability.

    ``outputs`` > 1 gives several scores per image (ACGAN: real/fake and 10 classes).
    ``minibatch_std`` = G > 0 appends, before the last layer, the spread of each group
    of G images (``nn.MinibatchStdDev``), where Karras et al. put it: D's last layer
    then judges each image together with how alike its group is. ``pack`` = m > 1
    starts D with ``nn.Pack(m)``: it scores every m consecutive images together, one
    score per pack (PacGAN), so (batch, image_size) -> (batch / m, outputs).
    ``dropout`` = p > 0 adds ``nn.Dropout(p)`` after each hidden layer, as the original
    GAN's MNIST D had (its masks come from the model's noise stream: ``reseed_noise``).
    """
    h = config.hidden
    spread = [nn.MinibatchStdDev(minibatch_std)] if minibatch_std else []
    packing = [nn.Pack(pack)] if pack > 1 else []
    d_in = pack * config.image_size  # D's input: one image, or a pack of them side by side
    layers = [
        *packing,
        nn.Linear(d_in, h, rng=rng, dtype=dtype), nn.LeakyReLU(0.2), *dropout_layers(dropout),
        nn.Linear(h, h, rng=rng, dtype=dtype), nn.LeakyReLU(0.2), *dropout_layers(dropout),
        *spread, nn.Linear(h + len(spread), outputs, rng=rng, dtype=dtype),
    ]  # fmt: skip
    if sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


class Model:
    """A generator, a discriminator (or critic), their optimizers, and the step skeleton.

    Subclasses set ``name``, ``config_class``, ``stats`` and implement
    ``make_optimizer``, ``d_steps_per_g_step``, ``discriminator_step`` and
    ``generator_step`` (see ``minigan.models`` for the whole interface).

    Args:
        config: an instance of the model's ``config_class``.
        backend: ``"numpy"`` or ``"cupy"`` (or a ``Backend``).
        seed: seeds the initial weights and the noise stream.
        dtype: the dtype everything computes in.
    """

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for --help
    config_class: ClassVar[type[MLPConfig]]
    stats: ClassVar[dict[str, str]]  # what train_step reports: name -> what it means
    discriminator_sigmoid: ClassVar[bool] = False  # only the vanilla GAN's D may end in one
    labelled: ClassVar[bool] = False  # trained with digit labels (cgan, acgan, sgan)
    conditional: ClassVar[bool] = False  # G and D take labels: train_step(real, labels)
    default_epochs: ClassVar[int] = 30  # examples/mnist_gan.py's --epochs when not given

    def __init__(
        self,
        config: MLPConfig,
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
    def default_config(cls) -> MLPConfig:
        """The documented defaults (the paper's hyperparameters): a fresh copy."""
        return cls.config_class()

    @classmethod
    def config_for_images(cls, config: MLPConfig, shape: tuple[int, int, int]) -> MLPConfig:
        """``config`` sized for images of ``shape`` (channels, height, width): the MLPs
        see each image flattened, so their input is C*H*W numbers."""
        channels, height, width = shape
        return dataclasses.replace(config, image_size=channels * height * width)

    @classmethod
    def parameter_count(cls, config: MLPConfig) -> int:
        """Weights and biases of G and D, from the config alone (nothing is built)."""
        z, h, d = config.latent_dim, config.hidden, config.image_size
        generator = (z * h + h) + (h * h + h) + (h * d + d)
        discriminator = (d * h + h) + (h * h + h) + (h + 1)
        return generator + discriminator

    @classmethod
    def memory_bytes(cls, config: MLPConfig, rows: int) -> int:
        """About how much memory training needs, in bytes, before any is allocated.

        Each parameter with its gradient and the optimizer's two moments (4 float32
        arrays), plus the activations of ``rows`` examples through G and D (kept for
        backward, and as much again in temporaries), D seeing twice as many. Used to
        refuse sizes that cannot fit before spending minutes on them.
        """
        z, h, d = config.latent_dim, config.hidden, config.image_size
        activations = rows * (z + 4 * h + 2 * d) + 2 * rows * (d + 4 * h + 2)
        return 4 * (4 * cls.parameter_count(config) + 2 * activations)

    def build_networks(
        self, config: Any, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Sequential, nn.Sequential]:
        """(G, D), with initial weights drawn from ``rng``: the MLPs (DCGAN: convolutions)."""
        G = build_generator(config, rng, dtype)
        return G, build_discriminator(config, rng, dtype, self.discriminator_sigmoid)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one image as the networks see it: (image_size,) for the MLPs."""
        return (self.config.image_size,)

    # --- the model's own parts (each model file writes these) -----------------------

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
        """z ~ N(0, I), shape (n, latent_dim), on the model's backend and dtype."""
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
        D.requires_grad_(False)  # D must not learn from G's loss
        try:
            grad_fake = D.backward(grad_scores)  # dL/d(fake images): straight through D
        finally:
            D.requires_grad_(True)
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
        States saved before the GAN family existed carry no name; they are GANs'.
        Each part then checks its own entries before changing anything; should a
        later part fail, the parts already loaded are put back as they were.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{where}: expected a dict, got {type(state).__name__}")
        saved = state.get("model", "gan")
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
