"""The semi-supervised GAN (Odena 2016; Salimans et al. 2016): a classifier that learns from fakes.

D is a digit classifier with K = 10 logits l(x), read as a classifier over K + 1
classes whose extra class, "fake", has its logit pinned at 0 (see
``sgan_losses.SGANUnsupervisedLoss``). Then p(real | x) = Z / (Z + 1), Z = sum_k exp(l_k),
and D is trained on three batches at once:

    L_sup   = CE(l(x_lab), y)                       the few labelled images (100 of 60000)
    L_unsup = -log p(real | x) - log p(fake | G(z))  every image, no labels needed
    D step:  minimise  L_sup + (L_unsup_real + L_unsup_fake) / 2

    G step:  minimise  || mean f(G(z)) - mean f(x) ||^2     feature matching

f is D's last hidden layer. The unlabelled images and the fakes teach D what
digits look like (their features must separate real from generated), which the
100 labels alone cannot teach (measured: benchmarks/RESULTS.md, "The GAN family on
MNIST").

What differs from ``gan.py``, and why:

- **D is the product.** The result is D's test error (``error_rate``), not G's
  samples; G exists to give D hard negatives. Salimans et al. found that feature
  matching makes the better classifier, though worse-looking samples, than the
  usual G loss: G then produces what D's features find typical of real data.
- **G's loss is taken inside D.** Its gradient enters D at the feature layer, goes
  down D's lower layers (frozen: ``update_generator(..., through=lower)``) into G.
- **D is Salimans et al.'s MLP**: Gaussian noise on the input and after every
  hidden layer (0.5), weight-normalised dense layers 784-1000-500-250-250-250 with
  ReLU, and 10 logits. The noise keeps D from memorising 100 labelled images.
  Their input noise is 0.3 on images in [0, 1]; ours are in [-1, 1], twice the
  range, so the same noise relative to the image is 0.6.
- **D starts from a data-dependent init** (``nn.weight_norm.data_dependent_init``,
  run by ``set_labelled`` on a fresh model, on ``init_batch`` = 500 training
  images chosen by the seed, noise on as in their code): each unit of each layer
  starts with mean 0 and std 1 on real digits. The direction v starts at
  N(0, 0.1^2) (``v_std``; it sets how fast Adam turns it, see ``WeightNormLinear``),
  and the hidden layers' lengths g stay where the init put them
  (``train_hidden_scale=False``): their units keep unit scale, so the 0.5 noise
  after them keeps its strength; only the logits' g learns.
- **G is their generator**: two hidden layers of 500 with batch norm, then a
  weight-normalised output layer; tanh for images in [-1, 1] (their sigmoid for
  [0, 1], the same map rescaled). Batch norm keeps G's samples varied, which
  feature matching (a match of batch means) needs. ``generate`` runs G in
  evaluation mode (running statistics), as DCGAN's.
- **The classifier is an average.** ``classify`` (and so ``error_rate``) uses an
  exponential moving average of D's weights over the steps (``average`` = 0.999,
  a memory of about 1000 steps), not the latest weights: D's weights jump from
  step to step with lr 0.003, and the average of the recent ones classifies
  better and more steadily. Their code averages too (Polyak averaging, rate
  0.0001 from zero over 300 epochs; ours is sized for a run of a few epochs).
- **Labels are a fixed subset.** ``set_labelled(images, labels)`` gives the model
  the training set; it keeps ``config.labels`` of them (10 of each digit, chosen
  by the seed: ``choose_labelled``), and only those labels are ever read. Their
  indices are in ``state_dict()``, so a resumed run uses the same ones.
- ``train_step(real)`` takes unlabelled batches, as every unconditional model. Each
  step's supervised batch is the whole labelled set when it holds at most
  ``batch_size`` images (100 labels, batch 100: as the paper's code), else
  ``batch_size`` of them drawn with replacement from the model's noise stream.
- Randomness: z, the noise layers and the labelled draws all come from the
  model's one noise stream (``reseed_noise``), so a resumed run that reseeds at the
  same point draws the same noise.

One pass of D over [labelled | unlabelled | fake] stacked: no layer of D mixes
examples, so that is the three passes' sum, in one set of matrix products.
Adam (lr 3e-3 as the paper, betas (0.5, 0.999)) for both players.

Where this still differs from their code (``train_mnist_feature_matching.py``), each
difference expected to matter little: z ~ N(0, I) (theirs uniform on
[0, 1)); G's hidden activation ReLU (theirs softplus) and its batch norm with a
scale (theirs a shift only); Adam's eps 1e-8 outside the square root (theirs
inside: about 1e-4 outside); G's step reuses the D step's real batch and z (theirs
draws fresh ones); the feature-matching loss sums over features (theirs averages:
a constant factor).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_array_module, to_host
from minigan.losses import CrossEntropyLoss
from minigan.models.base import check_adam, option, option_of
from minigan.models.conditional import NUM_CLASSES, accuracy, check_labels, choose_labelled
from minigan.models.mlp import MLPConfig, MLPModel
from minigan.models.sgan_losses import FeatureMatchingLoss, SGANUnsupervisedLoss, logsumexp
from minigan.nn.checks import check_array
from minigan.nn.weight_norm import data_dependent_init
from minigan.optim import Adam

# Which networks and training an SGAN state holds (``state_dict()["recipe"]``): 2 is
# D's data-dependent init, G's batch norm and the average of D's weights (see the
# module docstring). A state of another recipe does not fit.
RECIPE = 2


@dataclass
class SGANConfig(MLPConfig):
    """An SGAN: G's sizes (``MLPConfig``), D's widths and noise, the labels, Adam's recipe."""

    latent_dim: int = option_of(MLPConfig, "latent_dim", 100)
    hidden: int = option(
        500, "width of G's hidden layers only: D's widths are d_hidden (1000, 500, 250, 250, "
        "250), which has no flag",
    )  # fmt: skip
    labels: int = option(
        100, "how many labelled training images, the same count of each digit, chosen by the "
        "seed; at most 10 x the count of the training set's rarest digit (MNIST: 54210)",
    )  # fmt: skip
    d_hidden: tuple[int, ...] = option((1000, 500, 250, 250, 250), "D's hidden widths", flag=False)
    input_noise: float = option(0.6, "std of the Gaussian noise on D's input", flag=False)
    hidden_noise: float = option(
        0.5, "std of the Gaussian noise after each of D's hidden layers", flag=False
    )
    lr: float = option(3e-3, "learning rate of both players")
    betas: tuple[float, float] = option((0.5, 0.999), "Adam's (beta1, beta2)", flag=False)
    init_batch: int = option(
        500, "images for D's data-dependent init (0: none, the layers' own init)", flag=False
    )
    g_batch_norm: bool = option(
        True, "G with batch norm (False: the MLP generator of mlp.py)", flag=False
    )
    v_std: float | None = option(
        0.1, "D's weight directions start at N(0, v_std^2) (None: as Linear)", flag=False
    )
    train_hidden_scale: bool = option(False, "train g in D's hidden layers too", flag=False)
    average: float = option(
        0.999,
        "decay of the average of D's weights that classify uses (0: none, the latest weights)",
        flag=False,
    )

    POSITIVE = (*MLPConfig.POSITIVE, "labels")

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        self.d_hidden = tuple(int(w) for w in self.d_hidden)
        super().__post_init__()
        check_adam(self)
        if self.labels % NUM_CLASSES:
            raise ValueError(
                f"labels must be a multiple of {NUM_CLASSES} (the same count of each "
                f"digit), got {self.labels}"
            )
        if not self.d_hidden or min(self.d_hidden) < 1:
            raise ValueError(f"d_hidden must be positive widths, got {self.d_hidden}")
        for name in ("input_noise", "hidden_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.init_batch == 1 or not self.init_batch >= 0:
            raise ValueError(
                f"init_batch must be 0 (no data-dependent init) or at least 2 images, "
                f"got {self.init_batch}"
            )
        if self.v_std is not None and not self.v_std > 0:
            raise ValueError(f"v_std must be > 0 (or None), got {self.v_std}")
        if not 0 <= self.average < 1:
            raise ValueError(f"average must lie in [0, 1) (0: no averaging), got {self.average}")


def build_discriminator(config: SGANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """Salimans et al.'s MLP: image (batch, image_size) -> 10 class logits.

    GaussianNoise(input_noise), then per hidden width w: WeightNormLinear -> ReLU ->
    GaussianNoise(hidden_noise); then WeightNormLinear(-> 10). The features for
    feature matching are the last ReLU's output: ``layers[:-2]``. Directions v
    drawn from N(0, v_std^2); the hidden layers' g a fixed buffer unless
    ``train_hidden_scale`` (both set by the data-dependent init, ``SGAN.init_from_data``).
    """
    layers: list[nn.Module] = [nn.GaussianNoise(config.input_noise)]
    widths = (config.image_size, *config.d_hidden)
    for n_in, n_out in pairwise(widths):
        layers += [
            nn.WeightNormLinear(n_in, n_out, rng=rng, dtype=dtype, v_std=config.v_std,
                                train_scale=config.train_hidden_scale),
            nn.ReLU(),
            nn.GaussianNoise(config.hidden_noise),
        ]  # fmt: skip
    layers.append(
        nn.WeightNormLinear(widths[-1], NUM_CLASSES, rng=rng, dtype=dtype, v_std=config.v_std)
    )
    return nn.Sequential(*layers)


def build_generator(config: SGANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """Salimans et al.'s MLP generator: z (batch, latent_dim) -> image in [-1, 1].

    Linear -> BatchNorm1d -> ReLU, twice (width ``hidden``), then WeightNormLinear
    -> Tanh.
    """
    h = config.hidden
    return nn.Sequential(
        nn.Linear(config.latent_dim, h, rng=rng, dtype=dtype), nn.BatchNorm1d(h, dtype=dtype),
        nn.ReLU(),
        nn.Linear(h, h, rng=rng, dtype=dtype), nn.BatchNorm1d(h, dtype=dtype), nn.ReLU(),
        nn.WeightNormLinear(h, config.image_size, rng=rng, dtype=dtype), nn.Tanh(),
    )  # fmt: skip


class SGAN(MLPModel):
    """A K+1-class discriminator trained on few labels, a generator trained by feature matching.

    Before training: ``set_labelled(train_images, train_labels)``. Then
    ``train_step(real)`` on unlabelled batches; ``classify(images)`` gives D's
    logits, ``error_rate(images, labels)`` its error.

    Stats: ``d_loss``, ``g_loss`` (feature matching), ``sup_loss`` (CE on the
    labelled batch), ``d_real``, ``d_fake`` (mean p(real) of real and fake
    images), ``train_acc`` (accuracy on the labelled batch, noise on).
    """

    summary = "semi-supervised: D classifies MNIST from 100 labels, G trained by feature matching"
    name = "sgan"
    config_class = SGANConfig
    labelled: ClassVar[bool] = True
    default_epochs: ClassVar[int] = 10  # benchmarks/RESULTS.md, "The GAN family on MNIST"
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "D loss: CE on the labelled + (real + fake) / 2",
        "g_loss": "G loss: feature matching",
        "sup_loss": "CE on the labelled batch",
        "d_real": "mean p(real | x), unlabelled images",
        "d_fake": "mean p(real | G(z))",
        "train_acc": "accuracy on the labelled batch",
    }

    def __init__(
        self,
        config: SGANConfig,
        backend: str | Backend = "numpy",
        seed: int = 0,
        dtype: Any = np.float32,
    ):
        super().__init__(config, backend, seed, dtype)
        self.seed = seed  # chooses the labelled subset
        self.lower = nn.Sequential(*self.discriminator.layers[:-2])  # x -> f(x), shared layers
        # The running average of D's weights (all of them, in the optimizer's flat buffer).
        self.d_average = self.d_optimizer.data.copy()
        # Real labels come from the labelled set (checked in set_labelled): no read-back.
        self.sup_loss = CrossEntropyLoss(check_range=False)
        self.unsup_loss = SGANUnsupervisedLoss()
        self.fm_loss = FeatureMatchingLoss()
        self.initialised = False  # D's data-dependent init done (or weights loaded)
        self.labelled_indices: np.ndarray | None = None  # into the training set
        self._train_set: tuple[Any, np.ndarray] | None = None  # (images, labels) given
        self._labelled: tuple[Any, Any] | None = None  # (x, y) of the chosen, on the device

    def build_networks(
        self, config: SGANConfig, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Sequential, nn.Sequential]:
        if not config.g_batch_norm:
            G = super().build_networks(config, rng, dtype)[0]  # the base MLP generator
        else:
            G = build_generator(config, rng, dtype)
        return G, build_discriminator(config, rng, dtype)

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    def d_steps_per_g_step(self) -> int:
        return 1

    # --- the labelled set ---------------------------------------------------------

    def set_labelled(self, images: Any, labels: np.ndarray) -> None:
        """Give the training set; the model keeps ``config.labels`` of its labels.

        Args:
            images: the training images, (N, image_size) in [-1, 1], on the model's
                backend and dtype (the array the unlabelled batches come from).
            labels: their labels, a NumPy integer array (N,) in [0, 10), on the host.

        The subset is ``choose_labelled(labels, config.labels, seed)``, or, after
        ``load_state_dict``, the saved one; its labels are checked here, once. On a
        fresh model (no step taken, nothing loaded) this also runs D's
        data-dependent init on these images (``init_from_data``).
        """
        where = f"{type(self).__name__}.set_labelled"
        check_array(
            where, images, xp=self.backend.xp, dtype=self.dtype,
            shape=("N", self.config.image_size), name="images",
        )  # fmt: skip
        if not isinstance(labels, np.ndarray):
            raise TypeError(
                f"{where}: labels must be a NumPy array on the host, got {type(labels).__name__}"
            )
        check_labels(where, labels)
        if len(labels) != images.shape[0]:
            raise ValueError(
                f"{where}: {images.shape[0]} images but {len(labels)} labels; give the "
                f"training set's images and their labels"
            )
        indices = self.labelled_indices
        if indices is None:
            indices = choose_labelled(labels, self.config.labels, self.seed)
        else:
            self._check_indices(where, indices, len(labels))
        self._train_set = (images, labels)
        self._gather(indices)
        if not self.initialised and self.steps == 0 and self.config.init_batch:
            self.init_from_data(images)

    def init_from_data(self, images: Any) -> None:
        """D's data-dependent initialisation (``nn.weight_norm.data_dependent_init``) on
        ``config.init_batch`` training images chosen by the seed; ``set_labelled`` runs
        it on a fresh model (never after ``load_state_dict``). Nothing is read back."""
        n = min(self.config.init_batch, images.shape[0])
        pick = np.random.default_rng([self.seed, 3]).choice(images.shape[0], n, replace=False)
        data_dependent_init(self.discriminator, images[self.backend.asarray(pick)])
        self.d_average[...] = self.d_optimizer.data  # the average starts here too
        self.initialised = True

    def _check_indices(self, where: str, indices: Any, n: int | None) -> None:
        if not (isinstance(indices, np.ndarray) and np.issubdtype(indices.dtype, np.integer)):
            raise TypeError(f"{where}: labelled_indices must be an integer NumPy array")
        if indices.shape != (self.config.labels,):
            raise ValueError(
                f"{where}: labelled_indices has shape {indices.shape}, the config asks "
                f"for {self.config.labels} labelled images"
            )
        if n is not None and (indices.min() < 0 or indices.max() >= n):
            raise ValueError(
                f"{where}: the saved labelled set indexes images up to {indices.max()}, "
                f"but the training set has {n}: resume with the training set it was chosen from"
            )

    def _gather(self, indices: np.ndarray) -> None:
        images, labels = self._train_set
        self.labelled_indices = indices
        self._labelled = (
            images[self.backend.asarray(indices)],
            self.backend.asarray(labels[indices].astype(np.int64)),
        )

    def labelled_batch(self) -> tuple[Any, Any]:
        """This step's supervised batch: all labelled images, or batch_size drawn."""
        x, y = self._labelled
        n = self.config.batch_size
        if len(y) <= n:
            return x, y
        pick = self.noise_rng.integers(0, len(y), size=n, dtype=np.int64)
        return x[pick], y[pick]

    # --- training -----------------------------------------------------------------

    def train_step(self, real: Any) -> dict[str, Any]:
        """One D update on [labelled | real | fake], then one G update by feature matching.

        Args:
            real: a batch of unlabelled training images in [-1, 1], (batch, image_size).
        """
        self.check_real(real)
        if self._labelled is None:
            raise RuntimeError(
                f"{type(self).__name__}.train_step: no labelled set; call "
                f"model.set_labelled(train_images, train_labels) first (after "
                f"load_state_dict, when resuming)"
            )
        fake = self.generator.forward(self.sample_noise(real.shape[0]))
        stats = self.discriminator_step(real, fake)
        stats["g_loss"] = self.generator_step(real, fake)
        self.update_average()
        self.steps += 1
        return stats

    def update_average(self) -> None:
        """avg <- avg + (1 - decay) (D's weights - avg), decay = min(average, t / (10 + t)).

        An exponential moving average of D's weights after each step t = 0, 1, ...
        The decay grows from 0 to ``config.average``: at t = 0 the average becomes
        D's weights, and the first steps are not outweighed by where D started.
        All on the device: t is the host's step count.
        """
        t = self.steps
        decay = min(self.config.average, t / (10 + t))
        avg = self.d_average
        avg += (1 - decay) * (self.d_optimizer.data - avg)

    def discriminator_step(self, real: Any, fake: Any) -> dict[str, Any]:
        """minimise CE(l(x_lab), y) + (L_unsup(real, 1) + L_unsup(fake, 0)) / 2, one pass."""
        xp = get_array_module(real)
        x_lab, y_lab = self.labelled_batch()
        a, b = x_lab.shape[0], x_lab.shape[0] + real.shape[0]  # where each part starts
        logits = self.discriminator.forward(xp.concatenate([x_lab, real, fake]))
        sup = self.sup_loss.forward(logits[:a], y_lab)
        grad_sup = self.sup_loss.backward()
        unsup_real = self.unsup_loss.forward(logits[a:b], 1.0)
        grad_real = self.unsup_loss.backward()
        unsup_fake = self.unsup_loss.forward(logits[b:], 0.0)
        grad_fake = self.unsup_loss.backward()
        half = self.dtype.type(0.5)
        d_loss = sup + half * (unsup_real + unsup_fake)
        self.update_discriminator(xp.concatenate([grad_sup, half * grad_real, half * grad_fake]))
        p_real = nn.sigmoid(logsumexp(logits[a:]))  # p(real) = sigmoid(logsumexp(l))
        return {
            "d_loss": xp.asarray(d_loss),
            "sup_loss": sup,
            "d_real": xp.asarray(p_real[: b - a].mean()),
            "d_fake": xp.asarray(p_real[b - a :].mean()),
            "train_acc": accuracy(logits[:a], y_lab, self.dtype),
        }

    def generator_step(self, real: Any, fake: Any) -> Any:
        """minimise ||mean f(G(z)) - mean f(x)||^2, f = D's lower layers (frozen)."""
        real_features = self.lower.forward(real)  # the target: a constant for G
        fake_features = self.lower.forward(fake)  # last: its caches serve the backward
        g_loss = self.fm_loss.forward(fake_features, real_features)
        self.update_generator(self.fm_loss.backward(), through=self.lower)
        return g_loss

    def generate(self, z: Any) -> Any:
        """Images in [-1, 1], (n, image_size), for the noise ``z``: G in evaluation mode
        (batch norm with running statistics, as DCGAN's), so each image depends on its
        own z only."""
        self.generator.eval()
        try:
            return self.generator.forward(z)
        finally:
            self.generator.train()

    # --- the classifier ---------------------------------------------------------

    def classify(self, images: Any, batch_size: int = 1000) -> Any:
        """D's class logits (N, 10) for images (N, image_size) in [-1, 1], noise off,
        with the averaged weights (``config.average``; D's own are put back after)."""
        check_array(
            f"{type(self).__name__}.classify", images, xp=self.backend.xp, dtype=self.dtype,
            shape=("N", self.config.image_size), name="images",
        )  # fmt: skip
        xp = self.backend.xp
        weights = self.d_optimizer.data
        trained = weights.copy() if self.config.average else None
        if trained is not None:
            weights[...] = self.d_average  # classify with the averaged weights
        self.discriminator.eval()  # Gaussian noise off: the identity
        try:
            parts = [
                self.discriminator.forward(images[i : i + batch_size])
                for i in range(0, images.shape[0], batch_size)
            ]
        finally:
            self.discriminator.train()
            if trained is not None:
                weights[...] = trained
        return xp.concatenate(parts) if parts else xp.zeros((0, NUM_CLASSES), self.dtype)

    def error_rate(self, images: Any, labels: Any) -> float:
        """The share of ``images`` D classifies wrongly (one read): the SGAN's figure of merit."""
        where = f"{type(self).__name__}.error_rate"
        check_labels(where, labels, xp=self.backend.xp, shape=(images.shape[0],))
        wrong = self.classify(images).argmax(axis=1) != labels
        return float(to_host(wrong.mean()))

    # --- saving and loading -------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``Model``'s state, the average of D's weights, the labelled subset's indices
        (None before set_labelled) and the recipe's version (``RECIPE``)."""
        indices = self.labelled_indices
        return super().state_dict() | {
            "recipe": RECIPE,
            "d_average": to_host(self.d_average),
            "labelled_indices": None if indices is None else indices.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """``Model``'s loading (all or nothing), the average and the labelled subset."""
        where = f"{type(self).__name__}.load_state_dict"
        if isinstance(state, dict) and state.get("model") == self.name:
            if state.get("recipe") != RECIPE:  # a state with no number holds recipe 1
                raise ValueError(
                    f"{where}: this state holds an SGAN of recipe {state.get('recipe', 1)}, "
                    f"this SGAN is recipe {RECIPE}: other networks and training; it cannot "
                    f"be loaded: train a new run"
                )
            for key in ("labelled_indices", "d_average"):
                if key not in state:
                    raise KeyError(f"{where}: the state has no [{key!r}]")
            average = state["d_average"]
            if not (hasattr(average, "dtype") and np.issubdtype(average.dtype, np.floating)):
                raise TypeError(f"{where}: 'd_average' must be a float array")
            if np.shape(average) != self.d_average.shape:
                raise ValueError(
                    f"{where}: 'd_average' holds {np.shape(average)} values, D has "
                    f"{self.d_average.shape}: it was saved for a different model"
                )
            indices = state["labelled_indices"]
            if indices is not None:
                n = None if self._train_set is None else len(self._train_set[1])
                self._check_indices(where, indices, n)
        super().load_state_dict(state)
        self.d_average[...] = self.backend.asarray(state["d_average"])
        self.initialised = True
        indices = state["labelled_indices"]
        indices = None if indices is None else np.asarray(indices, dtype=np.int64)
        if indices is None or self._train_set is None:
            self.labelled_indices, self._labelled = indices, None  # set_labelled gathers
        else:
            self._gather(indices)
