"""What the labelled models share: label checks, the labelled subset, and conditional networks.

``cgan.py`` and ``acgan.py`` feed the digit label into the generator, ``cgan.py``
into the discriminator too; ``sgan.py`` trains its discriminator on a few labelled
images. The pieces they have in common live here, once:

- ``check_labels``: integer labels in [0, 10), checked where they enter (one read);
- ``choose_labelled``: the labelled subset of a semi-supervised run, by seed;
- ``ConditionalConfig``: the recipe CGAN and ACGAN share, and the choice of networks
  (``arch``: convolutions or MLPs);
- ``ConditionalMLP``: an MLP whose input is ``[x | embed(labels)]`` (the MLP G; CGAN's
  "concat" D);
- ``ConditionalProduct``: a network fed ``z * embed(labels)`` (the convolutional G);
- ``conditional_generator``: G(z, y) of either ``arch``, built in this one place;
- ``conv_features``: the convolutions of D, from the image to the features its heads read;
- ``ProjectionDiscriminator``: D(x, y) = psi(phi(x)) + embed(y) . phi(x) (CGAN's D);
- ``ConditionalModel``: the step skeleton of a GAN whose G is told the label.

Why labels are checked once, at the door, and not in every step: a label outside
[0, 10) must not pass silently (CuPy wraps an out-of-range index around: label 12
picks row 2 of an embedding), but checking the range means reading the labels back
from the device, which a training step must never do. The range of a data set's
labels is the same in every batch, so it is checked once, when the data is loaded
(``check_labels(labels)`` on the whole array); inside ``train_step`` only what costs
no read is checked (an integer dtype, the backend, the shape; and the range of NumPy
labels, which sit in host memory), and the labels G is given are drawn in range
(``sample_labels``).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import get_array_module
from minigan.models import convnets
from minigan.models.base import check_adam, check_count, option, option_of
from minigan.models.gan import GANConfig
from minigan.models.mlp import (
    MLPConfig,
    MLPModel,
    build_discriminator,
    build_generator,
    dropout_layers,
)
from minigan.nn.checks import check_array, check_label_range

NUM_CLASSES = 10  # the digits 0-9 (MNIST, Fashion-MNIST's ten kinds of clothes)

LABEL_HINT = "convert with labels.astype('int64') (one-hot rows: labels.argmax(axis=1))"


def check_labels(where: str, labels: Any, *, xp: Any = None, shape: tuple | None = None) -> None:
    """Raise unless ``labels`` are integer class labels in [0, 10): ONE explicit read.

    Call it once where labels enter (the training set's labels at load time, the
    labels asked of ``generate``); ``shape`` defaults to ("n",): a 1-d array.
    """
    check_array(
        where, labels, xp=xp, name="labels", integer=True, shape=shape or ("n",),
        dtype_hint=LABEL_HINT,
    )  # fmt: skip
    check_label_range(where, labels, NUM_CLASSES, "classes (the digits 0-9)")


def choose_labelled(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of the ``n`` labelled examples of a semi-supervised run: n/10 of each digit.

    Chosen at random by ``seed`` (the same seed, the same subset), balanced as in
    Salimans et al. (2016): 100 labels are 10 of each digit. Returned sorted, as int64.

    Args:
        labels: the training set's labels, a NumPy integer array (N,) in [0, 10).
        n: how many labelled examples: a positive multiple of 10, at most N.
        seed: seeds the choice.

    Raises:
        TypeError: labels that are not a NumPy integer array.
        ValueError: n not a positive multiple of 10, larger than the training set,
            or asking more of a digit than the set has; labels of the wrong shape or range.
    """
    where = "choose_labelled"
    if not isinstance(labels, np.ndarray):
        raise TypeError(
            f"{where}: labels must be a NumPy array (the training labels, on the host), "
            f"got {type(labels).__name__}"
        )
    check_labels(where, labels)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 or n % NUM_CLASSES:
        raise ValueError(
            f"{where}: the number of labelled examples must be a positive multiple of "
            f"{NUM_CLASSES} (the same count of each digit), got {n!r}"
        )
    # The same count of each digit: the rarest digit of the training set sets the limit.
    per_class = n // NUM_CLASSES
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    rarest = int(counts.argmin())
    limit = int(counts[rarest]) * NUM_CLASSES
    why = (
        f"ask for at most {limit}: {NUM_CLASSES} times the count of the training set's "
        f"rarest digit ({rarest}: {counts[rarest]} images)"
    )
    if n > len(labels):
        raise ValueError(
            f"{where}: {n} labelled examples asked for, but the training set has only "
            f"{len(labels)}; {why}"
        )
    short = {k: int(c) for k, c in enumerate(counts) if c < per_class}
    if short:
        raise ValueError(
            f"{where}: {n} labelled examples need {per_class} of each digit, but the "
            f"training set has fewer of {short} (digit: count); {why}"
        )
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == k), per_class, replace=False)
        for k in range(NUM_CLASSES)
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


@dataclass
class ConditionalConfig(MLPConfig):
    """CGAN's and ACGAN's base: the networks (convolutions or MLPs), G's label vector, the
    label-smoothing recipe, and G's average."""

    arch: str = option(
        "conv",
        "the networks: 'conv', the DCGAN kind (strided convolutions in D, transposed ones "
        "with BatchNorm in G, fed z times the digit's vector: minigan/models/conditional.py) "
        "or 'mlp' (two hidden layers each, G fed [z | the digit's vector]; their recipe "
        "until issue 26: --batch-size 100 --lr 2e-4 --epochs 30)",
        choices=convnets.ARCHS,
    )
    base_channels: int = option(
        16,
        "with arch 'conv': channels of D's first convolution and of G's last hidden "
        "maps, doubled twice inwards",
    )
    hidden: int = option_of(MLPConfig, "hidden", 512)
    g_activation: str = option_of(MLPConfig, "g_activation", "leaky_relu")
    embed_dim: int = option(
        50, "with arch 'mlp': length of G's learned vector for each digit", flag=False
    )
    # Batches of 32 at 4e-4 (DCGAN's here): an epoch of the convolutions makes three
    # times the steps of batches of 100, so that a few epochs on a CPU train G as far.
    batch_size: int = option_of(MLPConfig, "batch_size", 32)
    lr: float = option(4e-4, "learning rate of both players")
    betas: tuple[float, float] = option((0.5, 0.999), "Adam's (beta1, beta2)", flag=False)
    real_label: float = option(
        0.9, "D's target for real images (< 1: one-sided label smoothing)", flag=False
    )
    # Samples from a moving average of G's weights, as the vanilla GAN's default: see
    # acgan.py for why a labelled G's samples need it (CGAN's live G speckles too).
    ema: float = option_of(GANConfig, "ema", 0.999)  # its help: the vanilla GAN's

    # convnets.build_generator's option: G's last ConvT draws the image (their G's).
    g_full_res_channels: ClassVar[int] = 0

    POSITIVE = (*MLPConfig.POSITIVE, "embed_dim", "base_channels")

    def __post_init__(self) -> None:
        drawing_images = tuple(a for a in convnets.ARCHS if a != "points")  # not the 2-D nets
        if self.arch not in drawing_images:
            raise ValueError(f"arch must be one of {drawing_images}, got {self.arch!r}")
        self.betas = tuple(self.betas)
        super().__post_init__()
        check_adam(self)
        if not 0 < self.real_label <= 1:
            raise ValueError(f"real_label must lie in (0, 1], got {self.real_label}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must lie in [0, 1) (0: no average), got {self.ema}")
        if self.arch == "conv":
            convnets.image_geometry(self.image_size)  # a ValueError for a shape convs refuse


class ConditionalMLP(nn.Module):
    """``y = net([x | embed(labels)])``: an MLP that is told the label.

    Shapes:
        x: (batch, in_features)    labels: (batch,) integers in [0, num_classes)
        embed(labels): (batch, embed_dim)
        y: net's output for the (batch, in_features + embed_dim) input

    The label enters as a learned vector (``Embedding``) joined to x (``Concat``):
    Mirza & Osindero (2014) join y to z in G and to the image in D. (A one-hot
    vector is the special case of a fixed identity table.)

    Backward, read from the top: net's backward gives dL/dh for the joined input
    h = [x | e]; Concat's backward splits it at the same offset,

        dL/dx = dL/dh[:, :in_features]        (returned: G's image, or D's input)
        dL/de = dL/dh[:, in_features:]        (into the embedding: a scatter-add
                                               into the rows the labels used)

    and dL/dlabels does not exist (integers). The embedding always needs its slice,
    so net's input gradient is computed even when ``input_grad=False`` says nobody
    needs dL/dx; only then is dL/dx dropped.

    The embedding does not check the labels' range on a GPU (``check_range=False``):
    that would read the labels back in every training step; they are checked where
    they enter (see the module docstring).
    """

    def __init__(self, embed: nn.Embedding, net: nn.Sequential):
        self.embed = embed
        self.concat = nn.Concat()
        self.net = net

    def __repr__(self) -> str:
        return f"ConditionalMLP({self.embed!r}, {self.net!r})"

    def __call__(self, x: Any, labels: Any) -> Any:
        return self.forward(x, labels)

    def forward(self, x: Any, labels: Any) -> Any:
        h = self.concat.forward([x, self.embed.forward(labels)])
        return self.net.forward(h)

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        dh = self.net.backward(grad_out)  # dL/dh, needed for the embedding's part
        dx, de = self.concat.backward(dh)  # split at the offset
        self.embed.backward(de)  # dL/dW_embed, a scatter-add
        return dx if input_grad else None

    def __getitem__(self, index: int) -> nn.Module:
        return self.net[index]


class ConditionalProduct(nn.Module):
    """``y = net(z * embed(labels))``: a generator told the label by scaling its noise.

    Shapes:
        z: (batch, latent_dim)    labels: (batch,) integers in [0, num_classes)
        e = embed(labels): (batch, latent_dim), one learned vector per digit, as long as z
        h = z * e: (batch, latent_dim), elementwise      y: net's output for h

    The label multiplies every number of z (ACGAN's reference code for MNIST, Keras's
    ``mnist_acgan.py``, and PyTorch-GAN's): G cannot set z aside and draw one image per digit,
    since each of its inputs is z_j scaled by the digit's e_j. Joined beside z instead,
    [z | e], G's first layer may weigh z down to nothing and still name the digit.

    Backward, with dL/dh from net's backward: h = z * e is a product, so

        dL/dz = dL/dh * e         (returned, as every layer's input gradient; z learns nothing)
        dL/de = dL/dh * z         (into the embedding: a scatter-add into the rows used)
    """

    def __init__(self, embed: nn.Embedding, net: nn.Sequential):
        self.embed = embed
        self.net = net

    def __repr__(self) -> str:
        return f"ConditionalProduct({self.embed!r}, {self.net!r})"

    def __call__(self, z: Any, labels: Any) -> Any:
        return self.forward(z, labels)

    def forward(self, z: Any, labels: Any) -> Any:
        e = self.embed.forward(labels)
        y = self.net.forward(z * e)
        self.save_for_backward(z, e, output_shape=y.shape)
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        z, e = self.saved(grad_out)
        dh = self.net.backward(grad_out)  # dL/dh: the embedding always needs it
        self.embed.backward(dh * z)  # dL/de = dL/dh * z
        return dh * e if input_grad else None

    def __getitem__(self, index: int) -> nn.Module:
        return self.net[index]


def conditional_generator(
    config: ConditionalConfig, rng: np.random.Generator, dtype: Any
) -> ConditionalMLP | ConditionalProduct:
    """G(z, y) -> image, of ``config.arch``: CGAN's and ACGAN's, built here only.

    - ``"conv"``: ``convnets.build_generator``'s G with BatchNorm (DCGAN's rule), fed
      z * embed(y), embed(y) as long as z (``ConditionalProduct``; why a product: there).
    - ``"mlp"``: ``mlp.build_generator``'s MLP fed [z | embed(y)], embed(y) of
      ``embed_dim`` numbers (``ConditionalMLP``; Mirza & Osindero join y to z).
    """
    if config.arch == "conv":
        embed = nn.Embedding(
            NUM_CLASSES, config.latent_dim, rng=rng, dtype=dtype, check_range=False
        )
        return ConditionalProduct(
            embed, convnets.build_generator(config, rng, dtype, batchnorm=True)
        )
    e = config.embed_dim
    wide = dataclasses.replace(config, latent_dim=config.latent_dim + e)
    embed = nn.Embedding(NUM_CLASSES, e, rng=rng, dtype=dtype, check_range=False)
    return ConditionalMLP(embed, build_generator(wide, rng, dtype))


def conv_features(
    config: ConditionalConfig, rng: np.random.Generator, dtype: Any, dropout: float = 0.0
) -> list[nn.Module]:
    """D's convolutions: images (batch, image_size) -> features (batch, ``conv_width``).

    ``convnets.py``'s critic without its head: three 5x5 stride-2 convolutions of DIM,
    2DIM, 4DIM maps, each followed by LeakyReLU(0.2) and, for ``dropout`` > 0, Dropout;
    no BatchNorm, so that each image's score depends on that image alone. A list of
    layers, for the caller to put its head(s) after.
    """
    channels, side = convnets.image_geometry(config.image_size)
    dim = config.base_channels
    widths = [channels, dim, 2 * dim, 4 * dim]
    k, stride, pad = convnets.KERNEL, convnets.STRIDE, convnets.PADDING
    layers: list[nn.Module] = [nn.Unflatten(1, (channels, side, side))]
    for c_in, c_out in itertools.pairwise(widths):
        layers += [
            nn.Conv2d(c_in, c_out, k, stride, pad, rng=rng, dtype=dtype),
            nn.LeakyReLU(0.2),
            *dropout_layers(dropout),
        ]
    return [*layers, nn.Flatten()]


def conv_width(config: ConditionalConfig) -> int:
    """How many features ``conv_features`` gives an image: 4DIM maps of the last side."""
    side = convnets.image_geometry(config.image_size)[1]
    return 4 * config.base_channels * convnets.sides(side)[-1] ** 2


def conditional_discriminator(config: Any, rng: np.random.Generator, dtype: Any) -> ConditionalMLP:
    """D(x, y) -> one logit: ``mlp.build_discriminator``'s MLP fed [x | embed(y)]."""
    e = config.embed_dim
    wide = dataclasses.replace(config, image_size=config.image_size + e)
    embed = nn.Embedding(NUM_CLASSES, e, rng=rng, dtype=dtype, check_range=False)
    return ConditionalMLP(embed, build_discriminator(wide, rng, dtype))


class ProjectionDiscriminator(nn.Module):
    """``D(x, y) = psi(phi(x)) + embed(y) . phi(x)``: the projection discriminator.

    Miyato & Koyama (2018), "cGANs with projection discriminator". Shapes:

        x: (batch, image_size)       labels y: (batch,) integers in [0, num_classes)
        f = phi(x): (batch, h)       D's hidden layers (the MLP's two, or its convolutions)
        e = embed(y): (batch, h)     one learned vector per class, as long as f
        s = psi(f) + sum_j e[:, j] f[:, j]:  (batch, 1)     psi = Linear(h, 1)

    The label meets the image at the end, as an inner product with D's features,
    instead of at the start, as 50 more inputs beside 784 pixels: D cannot judge
    the image without judging it against the label, because the label's term is
    built from the very features that judge the image. (Miyato & Koyama derive the
    form: for a log-linear p(y | x), the optimal logit log p(x, y) / q(x, y) splits
    into psi(phi(x)) + embed(y) . phi(x).)

    Backward, with g = dL/ds (batch, 1), walking the forward line by line in reverse:

        s = psi(f) + r,  r = sum_j e_j f_j          dL/dr = g,  dL/d psi(f) = g
        psi's backward (a Linear):                  dL/df += g w^T,  dL/dw, dL/db
        r = sum_j e_j f_j  (a row-wise dot):        dL/df += g * e   (broadcast over j)
                                                    dL/de  = g * f
        e = embed(y):                               dL/dW_embed[k] += sum_{n: y_n = k} dL/de[n]
        f = phi(x):                                 dL/dx = phi's backward of dL/df

    so, compact: dL/df = g (w^T + e). The embedding starts small, N(0, 1/h), so
    that e . f has the scale of psi(f) (whose weights are U(-1/sqrt(h), 1/sqrt(h))).
    """

    def __init__(self, features: nn.Sequential, head: nn.Linear, embed: nn.Embedding):
        self.features = features  # phi
        self.head = head  # psi
        self.embed = embed

    def __repr__(self) -> str:
        return f"ProjectionDiscriminator({self.features!r}, {self.head!r}, {self.embed!r})"

    def __call__(self, x: Any, labels: Any) -> Any:
        return self.forward(x, labels)

    def forward(self, x: Any, labels: Any) -> Any:
        f = self.features.forward(x)
        e = self.embed.forward(labels)
        s = self.head.forward(f) + (e * f).sum(axis=1, keepdims=True)
        self.save_for_backward(f, e, output_shape=s.shape)
        return s

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        f, e = self.saved(grad_out)
        g = grad_out
        df = self.head.backward(g) + g * e  # dL/df = g w^T + g e
        self.embed.backward(g * f)  # dL/de = g f: a scatter-add into the rows used
        return self.features.backward(df, input_grad=input_grad)


def projection_discriminator(
    config: ConditionalConfig, rng: np.random.Generator, dtype: Any
) -> ProjectionDiscriminator:
    """D(x, y) = psi(phi(x)) + embed(y) . phi(x), of ``config.arch``: phi is
    ``conv_features``' convolutions ("conv") or ``build_discriminator``'s two hidden
    layers ("mlp"), psi a Linear to one logit, embed(y) as long as phi(x)."""
    if config.arch == "conv":
        features = nn.Sequential(*conv_features(config, rng, dtype))
        h = conv_width(config)
        head = nn.Linear(h, 1, rng=rng, dtype=dtype)
    else:
        h = config.hidden
        net = build_discriminator(config, rng, dtype)
        features, head = nn.Sequential(*net.layers[:4]), net[4]  # Linear, LeakyReLU, twice
    embed = nn.Embedding(NUM_CLASSES, h, rng=rng, dtype=dtype, check_range=False)
    embed.weight.data = (embed.weight.data / np.sqrt(h)).astype(dtype)
    return ProjectionDiscriminator(features, head, embed)


class ConditionalModel(MLPModel):
    """A GAN whose generator is told the label: G(z, y). The step skeleton of CGAN and ACGAN.

    One D update, then one G update, per call (both papers' schedule):

        y' = sample_labels(n)                the labels G is asked for, uniform over 0-9
        fake = G(z, y')
        D step on (real, labels) and (fake, y')       (the model's discriminator_step)
        G step on (fake, y')                          (the model's generator_step)

    Interface beyond ``Model``'s: ``train_step(real, labels)``, ``sample_labels(n)``,
    ``generate(z, labels)``. Subclasses write ``discriminator_step(real, labels,
    fake, fake_labels)`` and ``generator_step(fake, fake_labels)``.
    """

    labelled: ClassVar[bool] = True
    conditional: ClassVar[bool] = True

    def d_steps_per_g_step(self) -> int:
        return 1

    @classmethod
    def config_for_images(
        cls, config: ConditionalConfig, shape: tuple[int, ...]
    ) -> ConditionalConfig:
        """``config`` for images of ``shape``; the convolutions take square ones only."""
        if config.arch == "conv" and (
            len(shape) != 3 or shape[1] != shape[2] or shape[0] not in (1, 3)
        ):
            raise ValueError(
                f"arch 'conv' takes square grey or RGB images, got {'x'.join(map(str, shape))}; "
                f"use arch 'mlp' for other shapes"
            )
        return super().config_for_images(config, shape)

    @classmethod
    def parameter_count(cls, config: ConditionalConfig) -> int:
        if config.arch == "mlp":
            return super().parameter_count(config)
        labels = NUM_CLASSES * config.latent_dim  # G's table of label vectors
        extra = cls.conv_head_parameters(config)
        return convnets.count_parameters(config, batchnorm=True) + labels + extra

    @classmethod
    def conv_head_parameters(cls, config: ConditionalConfig) -> int:
        """The weights of D's (arch 'conv') beyond a critic's one linear score."""
        raise NotImplementedError(f"{cls.__name__} must say what its convolutional D adds")

    @classmethod
    def memory_bytes(cls, config: ConditionalConfig, rows: int) -> int:
        if config.arch == "mlp":
            return super().memory_bytes(config, rows)
        return convnets.estimate_memory(config, rows, cls.parameter_count(config))

    def sample_labels(self, n: int) -> Any:
        """n labels drawn uniformly from 0-9, int64 on the model's backend (the noise stream)."""
        check_count(f"{type(self).__name__}.sample_labels", n, "labels")
        return self.noise_rng.integers(0, NUM_CLASSES, size=n, dtype=np.int64)

    def generate(self, z: Any, labels: Any) -> Any:
        """Images in [-1, 1], shape (n, image_size): digit ``labels[i]`` from noise ``z[i]``.

        ``labels`` are checked (integers in [0, 10), one per z): one explicit read.
        """
        check_labels(
            f"{type(self).__name__}.generate", labels, xp=self.backend.xp, shape=(z.shape[0],)
        )
        G = self.sampler  # G's average (ema), or G itself
        G.eval()  # BatchNorm, where G has it, on its running statistics: no state changes
        try:
            return G.forward(z, labels)
        finally:
            G.train()

    def train_step(self, real: Any, labels: Any) -> dict[str, Any]:
        """One update of D, then one of G.

        Args:
            real: real images in [-1, 1], (batch, image_size).
            labels: their digits, integers (batch,) on the model's backend, checked
                in range once where they were loaded (``check_labels``): this step
                reads nothing back from a device, so on CuPy it checks only their
                dtype, backend and shape; NumPy labels are in host memory, where the
                range check costs no sync, so they are checked here too.

        Returns:
            the model's ``stats``, 0-d arrays on the backend.
        """
        self.check_real(real)
        n = real.shape[0]
        check_array(
            f"{type(self).__name__}.train_step", labels, xp=self.backend.xp, shape=(n,),
            name="labels", integer=True, dtype_hint=LABEL_HINT,
        )  # fmt: skip
        if self.backend.xp is np:  # host memory: no sync (label 11 would be an IndexError)
            check_labels(f"{type(self).__name__}.train_step", labels)
        z, fake_labels = self.sample_noise(n), self.sample_labels(n)
        fake = self.generator.forward(z, fake_labels)
        stats = self.discriminator_step(real, labels, fake, fake_labels)
        # G's forward caches for `fake` are still valid: the G step reuses them.
        stats["g_loss"] = self.generator_step(fake, fake_labels)
        self.steps += 1
        return stats


def accuracy(logits: Any, labels: Any, dtype: Any) -> Any:
    """The share of rows whose largest logit is at the label: a 0-d array on the backend."""
    return get_array_module(logits).asarray((logits.argmax(axis=1) == labels).astype(dtype).mean())
