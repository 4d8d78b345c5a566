"""The GAN itself: two networks, two optimizers, one loss, and the training step.

A generator G maps noise z ~ N(0, I) to images; a discriminator D maps an image to
a score for "real". They are trained in turns (Goodfellow et al., 2014):

- D step: make D say 1 on real images and 0 on G's images,
      minimise  BCE(D(x), 1) + BCE(D(G(z)), 0);
- G step: change G so that D says 1 on G's images.

The G step is where backpropagation gets interesting: the loss is computed at D's
output, but the parameters to change are G's. So the gradient must travel
backwards through all of D (D's backward pass gives dL/d(image)) and then through
G, while D itself stays fixed. ``GAN.generator_step`` is that, in fifteen lines.

Generator losses:

- ``"non_saturating"`` (default): minimise BCE(D(G(z)), 1) = -log D(G(z)).
- ``"saturating"``: minimise log(1 - D(G(z))) = -BCE(D(G(z)), 0), the original
  minimax objective. Early in training D rejects G's images easily, D(G(z)) ~ 0,
  where log(1 - D) is flat: G gets almost no gradient just when it needs one.
  -log D(G(z)) has the same goal but its steepest slope exactly there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_array_module, get_backend
from minigan.losses import BCELoss, BCEWithLogitsLoss
from minigan.nn.checks import check_array
from minigan.optim import Adam

GENERATOR_LOSSES = ("non_saturating", "saturating")
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2)}


@dataclass
class GANConfig:
    """Everything that defines an MLP GAN and how it is trained.

    ``logits=True`` means D ends without a Sigmoid and the loss is
    BCEWithLogitsLoss (stable); ``False`` means D ends in Sigmoid and BCELoss.
    """

    latent_dim: int = 64
    hidden: int = 256
    image_size: int = 784
    g_activation: str = "relu"
    logits: bool = False
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 100
    generator_loss: str = "non_saturating"
    d_steps: int = 1
    real_label: float = 1.0

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"generator_loss must be one of {GENERATOR_LOSSES}, got {self.generator_loss!r}"
            )
        if self.g_activation not in ACTIVATIONS:
            raise ValueError(
                f"g_activation must be one of {tuple(ACTIVATIONS)}, got {self.g_activation!r}"
            )
        for name in ("latent_dim", "hidden", "image_size", "batch_size", "d_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not 0 < self.real_label <= 1:
            raise ValueError(f"real_label must lie in (0, 1], got {self.real_label}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS = {
    # The tutorial recipe, kept for comparison.
    "classic": GANConfig(),
    # The default: chosen by measurement; see README, "Choosing the default recipe".
    "default": GANConfig(
        hidden=512, g_activation="leaky_relu", logits=True, betas=(0.5, 0.999), real_label=0.9
    ),
}


def build_generator(config: GANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """z (batch, latent_dim) -> image (batch, image_size) in [-1, 1]."""
    h, act = config.hidden, ACTIVATIONS[config.g_activation]
    return nn.Sequential(
        nn.Linear(config.latent_dim, h, rng=rng, dtype=dtype), act(),
        nn.Linear(h, h, rng=rng, dtype=dtype), act(),
        nn.Linear(h, config.image_size, rng=rng, dtype=dtype), nn.Tanh(),
    )  # fmt: skip


def build_discriminator(config: GANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """image (batch, image_size) -> one score per image: a logit, or a probability."""
    h = config.hidden
    layers = [
        nn.Linear(config.image_size, h, rng=rng, dtype=dtype), nn.LeakyReLU(0.2),
        nn.Linear(h, h, rng=rng, dtype=dtype), nn.LeakyReLU(0.2),
        nn.Linear(h, 1, rng=rng, dtype=dtype),
    ]  # fmt: skip
    if not config.logits:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


class GAN:
    """A generator, a discriminator, their Adam optimizers, and the loss.

    Args:
        config: the architecture and training hyperparameters.
        backend: ``"numpy"`` or ``"cupy"`` (or a ``Backend``).
        seed: seeds the initial weights and the noise generator.
        dtype: the dtype everything computes in.
    """

    def __init__(
        self,
        config: GANConfig,
        backend: str | Backend = "numpy",
        seed: int = 0,
        dtype: Any = np.float32,
    ):
        self.config = config
        self.backend = get_backend(backend)
        self.dtype = np.dtype(dtype)
        init_rng = np.random.default_rng(seed)
        self.generator = build_generator(config, init_rng, dtype).to(self.backend)
        self.discriminator = build_discriminator(config, init_rng, dtype).to(self.backend)
        adam = {"lr": config.lr, "betas": config.betas}
        self.g_optimizer = Adam(self.generator.parameters(), **adam)
        self.d_optimizer = Adam(self.discriminator.parameters(), **adam)
        self.loss = BCEWithLogitsLoss() if config.logits else BCELoss()
        self.noise_rng = self.backend.default_rng(seed)
        self.steps = 0
        self._g_loss = None  # the latest generator loss, reported until the next G update

    # --- noise and sampling -------------------------------------------------------

    def reseed_noise(self, seed: int) -> None:
        """Restart the noise stream (the training loop does this every epoch)."""
        self.noise_rng = self.backend.default_rng(seed)

    def sample_noise(self, n: int) -> Any:
        """z ~ N(0, I), shape (n, latent_dim), on the GAN's backend and dtype."""
        return self.noise_rng.standard_normal((n, self.config.latent_dim), dtype=self.dtype)

    def generate(self, z: Any) -> Any:
        """Images in [-1, 1], shape (n, image_size), for the noise ``z``."""
        return self.generator.forward(z)

    # --- training -----------------------------------------------------------------

    def train_step(self, real: Any) -> dict[str, Any]:
        """One discriminator update; every ``config.d_steps``-th call, a generator update.

        Args:
            real: a batch of real images in [-1, 1], shape (batch, image_size).

        Returns:
            stats: ``d_loss`` (mean BCE over the real and fake halves), ``g_loss``
            (from the latest generator update), ``d_real`` = mean D(x) and
            ``d_fake`` = mean D(G(z)) as probabilities: 0-d arrays on the backend,
            so reading them is the caller's choice (on a GPU, reading means waiting).
        """
        check_array(
            "GAN.train_step",
            real,
            xp=self.backend.xp,
            dtype=self.dtype,
            shape=("batch", self.config.image_size),
            name="real batch",
        )
        z = self.sample_noise(real.shape[0])
        fake = self.generator.forward(z)
        stats = self.discriminator_step(real, fake)
        self.steps += 1
        if self.steps % self.config.d_steps == 0:
            # G's forward caches for `fake` are still valid (G has not changed),
            # so the G step reuses them instead of generating a second batch.
            self._g_loss = self.generator_step(fake)
        stats["g_loss"] = self._g_loss
        return stats

    def discriminator_step(self, real: Any, fake: Any) -> dict[str, Any]:
        """Teach D to tell ``real`` (target: real_label) from ``fake`` (target: 0).

        One forward pass over the two halves stacked together: D treats every
        image on its own (no layer mixes examples), so this is exactly the sum of
        two passes, with half the matrix products' overhead. The mean over 2n
        scores is (L_real + L_fake) / 2: half the loss, and half the gradient, of
        the usual L_real + L_fake. Adam divides each step by the gradient's own
        running scale, so halving the gradient changes its update only through
        eps: it is exactly the sum's update with eps doubled (2e-8 for 1e-8).
        """
        xp = get_array_module(real)
        n = real.shape[0]
        scores = self.discriminator.forward(xp.concatenate([real, fake]))
        targets = xp.zeros((2 * n, 1), dtype=self.dtype)  # [real_label] * n, then [0] * n
        targets[:n] = self.config.real_label
        d_loss = self.loss.forward(scores, targets)
        self.d_optimizer.zero_grad()
        # Neither the data nor (here) G learns from D's input gradient: skip it.
        self.discriminator.backward(self.loss.backward(), input_grad=False)
        self.d_optimizer.step()

        probs = nn.sigmoid(scores) if self.config.logits else scores
        return {
            "d_loss": d_loss,
            "d_real": xp.asarray(probs[:n].mean()),
            "d_fake": xp.asarray(probs[n:].mean()),
        }

    def discriminator_step_two_pass(self, real: Any, fake: Any) -> dict[str, Any]:
        """The textbook D step, kept as the reference ``discriminator_step`` is tested against.

        Two passes, as the loss is written: L = BCE(D(x), real_label) + BCE(D(G(z)), 0),
        each half's gradient added into D's ``.grad`` by its own backward pass. Its
        update equals ``discriminator_step``'s with D's Adam eps doubled (see there),
        to rounding; it costs a second pass's overhead.
        """
        D, loss = self.discriminator, self.loss
        self.d_optimizer.zero_grad()
        real_scores = D.forward(real)
        d_loss_real = loss.forward(real_scores, self.config.real_label)
        D.backward(loss.backward(), input_grad=False)
        fake_scores = D.forward(fake)
        d_loss_fake = loss.forward(fake_scores, 0.0)
        D.backward(loss.backward(), input_grad=False)
        self.d_optimizer.step()
        return {"d_loss": d_loss_real + d_loss_fake}

    def generator_step(self, fake: Any) -> Any:
        """Change G so that D takes ``fake`` (= G(z), just computed) for real.

        This is the heart of GAN training. The loss lives at D's output, the
        parameters to change are G's; the gradient crosses D on the way.
        """
        D, G = self.discriminator, self.generator
        scores = D.forward(fake)  # D as it is now, after its own update
        if self.config.generator_loss == "non_saturating":
            g_loss = self.loss.forward(scores, 1.0)  # minimise -log D(G(z))
            grad_scores = self.loss.backward()  # dL/d(scores)
        else:
            g_loss = -self.loss.forward(scores, 0.0)  # minimise log(1 - D(G(z)))
            grad_scores = -self.loss.backward()
        D.requires_grad_(False)  # D is only a critic here: it must not learn from G's loss
        try:
            grad_fake = D.backward(grad_scores)  # dL/d(fake images): straight through D
        finally:
            D.requires_grad_(True)
        self.g_optimizer.zero_grad()
        G.backward(grad_fake, input_grad=False)  # dL/d(G's parameters), into .grad
        self.g_optimizer.step()  # only G moves
        return g_loss

    # --- saving and loading -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Weights and optimizer states of both players, plus the step count."""
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a ``state_dict()``: all of it, or, if any part does not fit, none of it.

        Each part checks its own entries before changing anything; should a later
        part fail, the parts already loaded are put back as they were.
        """
        parts = [
            (self.generator, "generator"),
            (self.discriminator, "discriminator"),
            (self.g_optimizer, "g_optimizer"),
            (self.d_optimizer, "d_optimizer"),
        ]
        missing = [key for _, key in parts if key not in state] + (
            [] if "steps" in state else ["steps"]
        )
        if missing:
            raise KeyError(f"GAN.load_state_dict: the state has no {missing}")
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
