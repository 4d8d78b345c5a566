"""DCGAN (Radford, Metz & Chintala, 2016): the GAN of ``gan.py`` with convolutions.

The objective and the training step are the vanilla GAN's,

    D step:  minimise  BCE(D(x), 1) + BCE(D(G(z)), 0)
    G step:  minimise  BCE(D(G(z)), 1) = -log D(G(z))      (non-saturating)

with the networks replaced by the paper's architecture rules, which made GAN training
stable enough to scale to real images:

- G up-samples with strided transposed convolutions (no pooling, no fully connected
  hidden layers except the projection of z; by default here one more: ``g_fc_width``,
  below): z -> Linear -> 64x7x7 -> ConvT to 32x14x14
  -> ConvT to 1x28x28 for MNIST (``base_channels`` 32: see below; and by default here
  ConvT to 16x28x28, then a 3x3 convolution to 1x28x28: ``g_full_res_channels``);
- D down-samples with strided convolutions: 1x28x28 -> 32x14x14 -> 64x7x7 -> one logit
  (by default here through a fully connected hidden layer, against the rule above:
  ``d_fc_width``, below);
- BatchNorm in both networks, except at G's output and D's input (there it made the
  samples oscillate, the paper reports); by default here none in D (``d_norm``, below);
- ReLU in G with Tanh at the output (images in [-1, 1]); LeakyReLU(0.2) throughout D;
- Adam with lr 2e-4 and beta1 = 0.5 (0.9 made training oscillate); both rates are
  higher here (below);
- weights drawn from N(0, 0.02), BatchNorm's gamma from N(1, 0.02) (the paper's
  initialisation, as the PyTorch DCGAN example applies it to Conv and BatchNorm layers).

Two defaults differ from the paper, chosen so that 10 minutes of one CPU core train a
DCGAN that draws good digits (measured on MNIST, FID through ``minigan.metrics``'s
classifier from 5,000 samples after 100 CPU seconds, about 1,000 steps; the other
processes on the machine make steps 0.10-0.13 s):

- **``base_channels`` 32**, half the paper's 64 (which the issue's 128x7x7 -> 64x14x14
  sketch also has): a step costs 0.10 s instead of 0.28 s, so 10 minutes train 5 epochs
  instead of 2. The paper's width after 2 epochs (10 minutes): FID 164.
- **G learns faster than D: ``g_lr`` 2e-3, D's ``lr`` 2e-4.** With 2e-4 for both, G
  trails a discriminator that soon tells its samples apart; InfoGAN (Chen et al., 2016)
  trained its DCGAN-style MNIST networks with 1e-3 for G and 2e-4 for D. Measured after
  100 CPU seconds: 2e-4 for both 193 (after one epoch, 10,000 samples), 5e-4 for both
  182, batch 32 instead of 64 188, G 1e-3 115, G 2e-3 96.
  ``g_lr=None`` restores the paper's single rate.

With both, 5 epochs took 592 CPU seconds and reached FID 71.5 (epochs 1-5: 100, 85,
81, 78, 70 on the run's own 10,000 samples), against 164 for the paper's settings in
the same time. Faster convolutions then made an epoch about 60 CPU seconds, and

- **samples come from a moving average of G's weights** (``ema`` 0.999, as the MLP
  GAN's default; ``minigan/ema.py``), with the live G's BatchNorm statistics. The live
  G's FID swings from epoch to epoch; measured on one run (seed 0, 10,000 samples per
  epoch), epochs 4-8 scored 74.2, 80.4, 66.4, 73.4, 75.4 from the live G and 68.5, 66.3,
  65.8, 67.6, 66.8 from the average. Early on the average lags (epoch 1: 120 against 89).

D's target for real images stays the paper's 1 (``real_label``; ``--label-smoothing
0.1`` makes it 0.9, the MLP GAN's default). Measured on the same run with the average
(seed 0), it scored 117.7, 77.4, 72.1, 67.1, 66.4, 65.9, 65.7, 62.6 over epochs 1-8,
against 120.3, 78.9, 71.9, 68.5, 66.3, 65.8, 67.6, 66.8 without: within what one seed
tells apart, so the paper's recipe stays. Then, as for the MLP GAN's default:

- **D judges pairs of images** (``pack`` 2, PacGAN: ``nn.Pack``; the pair enters as a
  2-channel image), and **learns at 4e-4**. Measured (seed 0, 10,000 samples every
  second epoch): pairs alone 100.5, 83.7, 69.2, 65.0, 64.1 over epochs 2-10; with D's
  rate 4e-4 too 102.5, 68.2, 65.3, 61.0, 59.3, and the digits' balance from KL to
  uniform 0.051 to 0.029. One seed: a smaller gain than the MLP GAN's, where both
  changes took FID from about 58 to 15.

That recipe (10 epochs, 471 CPU seconds with an evaluation after every second epoch)
still drew worse digits than the MLP GAN (Inception Score 7.7 against 8.5: wobbly
strokes, broken loops). Two changes to the networks and one to the batch then, each
measured on MNIST (seed 0 unless said, 10 epochs, batch 64 unless said, FID from 10,000
samples at epochs 5 and 10, one thread). Runs that differ only in how G's last layer is
written start from different random weights, so "seed 0" below is not one starting
point:

- **No BatchNorm in D** (``d_norm="none"``; the convolutions get their biases back):
  80.5 and 49.0, against 65-66 and 59.3 with it. Slower at first, better by epoch 10
  (WGAN-GP's DCGAN-style critic has none either). ``d_norm="batch"`` is the paper's D.
- **G draws the image at full size** (``g_full_res_channels`` 16): its last transposed
  convolution makes 16 feature maps of the image's size (BatchNorm, ReLU), and a 3x3
  convolution draws the image from them, where the paper's last ConvT draws it
  directly, each pixel from the 2x2 positions of 32 maps that cover it. With BatchNorm in
  D: 53.0 and 34.8. With both changes, three starting points: 63.9 and 32.4 (seed 0,
  the 3x3 written as ``nn.Conv2d``), 79.6 and 48.6 (seed 1, the same), and 80.5 at
  epoch 4, 40.0 at 10 (seed 0, written as below; then 30.3, 25.9 and 24.8 at epochs 14,
  18 and 20): starting points differ this much. Inception Score 8.0-8.1 at epoch 10.
  What the block needs: 8 maps instead of 16 scored 88.4 and 57.7; a 1x1 convolution
  instead of the 3x3, 122.8 at epoch 5; 32 maps, 57.1 and 25.7, but a step costs 1.85
  times as much (the block's transposed convolution doubles), no better per CPU second
  than 16 maps trained longer. A wider G instead (``base_channels`` 64 in G only) scored
  65.1 and 56.0 at 1.8 times the CPU time. ``g_full_res_channels=0`` is the paper's G.
- **Batch 32** (the paper's is 128; 64 until then): an image costs the same CPU time
  in a batch of 32 as of 64 (measured, one thread: 1.17 and 1.13 ms; a step is
  elementwise passes and products that grow with the batch), so an epoch costs the same
  and makes twice as many steps of each player. From the last starting point above:
  52.2 and 32.4, against about 74 (80.5 at epoch 4, 67.9 at 6) and 40.0 with batch 64.
  At epoch 10 that is within the spread of the three batch-64 runs (32.4-48.6); the gain
  is clearest early, which is what 10 minutes (8 epochs) buy.

Tried with both network changes, no better at epoch 10: D's rate 8e-4 (51.5 and 37.5,
seed 0). On this 2-core machine, idle, 10 minutes of that recipe completed 8 epochs
(about 66 s each, both cores): FID 33.4, where the recipe before these three changes
scored 60.3 after 10 epochs.

Then D got stronger. All along its game with G had been close to even (at epoch 9, D
gave real images 0.53 and fakes 0.47 on average), and G learns only what D's gradient
tells it: two convolutions of 32 and 64 channels, 37,000 parameters, tell little.
Measured (batch 32, FID from 10,000 samples at epochs 4 and 8, one thread, two runs at
a time; seed 0 unless said), against 59.8 and 38.3 for the recipe above:

- **A fully connected hidden layer in D** (``d_fc_width`` 128): D's last feature maps,
  64x7x7, pass through Linear(3136 -> 128) and LeakyReLU(0.2) before the logit, as in
  InfoGAN's MNIST D (1024 units there, with BatchNorm), against the paper's rule of no
  fully connected hidden layers. 20.7 and 23.7 (epochs 2 and 6: 54.8 and 19.9); seed 1:
  25.4 and 17.3 (epoch 6: 16.8). Most of the gain comes by epoch 4; from epoch 6 to 8
  neither seed improved. 256 units: 22.6 and 16.1 (epoch 6: 20.9), seed 1: 28.8 and
  23.1, no better than 128 but dearer: a step with 128 units costs 36.8 ms, with 256
  50.0, without the layer 30.2 (both cores, batch 32, idle). Those weights (400,000 for
  128 units) are few FLOPs but many bytes: Adam's update (2.5 ms for 128 units, 4.3 for
  256, one thread) and the gradient sums pass over all of them every step. 512 units:
  26.1 and 20.1.
- Wider convolutions in D instead (48 or 64 channels in its first layer, twice that in
  its second): 52.4 and 35.6, 48.7 and 26.7, at 1.14 and 1.54 times the step.
- Tried with 256 hidden units, worse: both rates doubled (G 4e-3, D 8e-4: 33.5 and
  27.2; without the hidden layer, 53.9 and 33.2), G's rate halved (1e-3: 28.9 and
  27.7). Without the hidden layer, both rates decayed linearly to 0 over the 8 epochs:
  70.0 and 53.1 (that network was still learning fast at epoch 8, and smaller steps
  slowed it).

On this 2-core machine, idle, 10 minutes of training with D's hidden layer completed 8
epochs (about 70 s each, both cores): FID 23.7 and Inception Score 8.53 from 10,000
samples, against 33.4 and 8.10 without it. (That run and the one-thread seed-0 run
above both scored 23.7 after 8 epochs, 23.70 and 23.68: two runs, whose sums differ in
order with 1 and 2 BLAS threads.)

Then G got the same: **a fully connected hidden layer first in G** (``g_fc_width`` 256):
z passes through Linear(100 -> 256), BatchNorm and ReLU before the projection to G's
first feature maps, as in InfoGAN's MNIST G (1024 units there). With D's layer of 128
units, one run (seed 0, measured as above, stopped after epoch 4 to free the machine
for the 10-minute run below): 64.1 at epoch 2 and **11.6 at epoch 4** (Inception Score
8.89), against 54.8 and 20.7 without it, the MLP GAN's best being 14.6. A step costs
51.9 ms against 38.6 without it (both cores, batch 32, idle, timed one after the other):
G's first weights (the projection, and now the hidden layer and its BatchNorm) grow
from 317,000 to 832,000, more bytes for Adam and the moving average to pass over.
Two more seeds, run the same way to epoch 4: 15.9 (seed 1, against 25.4 with D's layer
alone) and 12.8 (seed 2, whose run without G's layer was not made): the gain holds
beyond one lucky start.

``examples/mnist_gan.py --model dcgan`` trains 6 epochs (``default_epochs``): on this
2-core machine, idle, 10 minutes of training with both hidden layers completed 6 epochs
(about 100 s each, both cores; 8 min 56 s for the six, to the same weights, since the
elementwise passes got threads: ``minigan/backend.py``): **FID 8.9** and Inception
Score 9.17 from 10,000 samples, every digit 8.5-11.6% of them (README, "Convolutions,
Fashion-MNIST and your own pictures"), where the MLP GAN's default, run the same way
for the same 10 minutes (33 epochs), scored 12.4 and 8.67 (with threads: 43 epochs,
12.2 and 8.78).

What differs from ``GAN`` in the code, and why:

- **D sees real and fake images in two separate passes.** ``GAN.discriminator_step``
  stacks both halves into one batch, which is exact only when no layer mixes examples.
  BatchNorm does: a stacked batch would normalise real and fake images with one shared
  mean and variance, so D's output on a real image would depend on the fakes beside it,
  and D could tell the halves apart from the mixture's statistics instead of from the
  images. DCGAN implementations (the paper's code, PyTorch's example) therefore pass
  each batch on its own, each normalised by its own statistics, and add the two
  gradients. (Without BatchNorm in D, the default here, one stacked pass would give the
  same update; the two passes stay, being the faster here: see ``discriminator_step``.)
  The G step is ``GAN.generator_step`` unchanged: D frozen, its input
  gradient sent into G, ``input_grad=False`` where nothing needs dL/dx.
- **``generate`` runs G in evaluation mode** (BatchNorm with running statistics), so a
  sample depends on its own z only, not on the rest of its batch, and drawing samples
  changes no state. Training always runs in training mode, as in the paper. (PyTorch's
  DCGAN example samples in training mode, each batch normalised by its own statistics.
  Early in training the running averages could lag G's batch statistics, but measured
  on a 2-epoch MNIST run, 10,000 samples from the same z score FID 161.2 in evaluation
  mode, 159.7 in training mode with batches of 500 or 64, and 159.7 with "standing"
  statistics averaged afresh over 100 batches: the running statistics are not what
  holds the samples back, so the simpler, batch-independent sampling stays.)
- Images keep their shape, (batch, channels, size, size), instead of being flattened.

Sizes: ``image_size`` 28 (MNIST, Fashion-MNIST) starts G at 7x7 and up-samples twice;
32 and 64 (folders of pictures) start at 4x4 and up-sample 3 and 4 times, doubling the
channels at every step down from the image (32, 64, 128, 256 with the default
``base_channels`` 32; the paper's 64x64 network has 128 to 1024).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_array_module
from minigan.models.base import check_discriminator_options, dropout_layers
from minigan.models.gan import GAN, GENERATOR_LOSSES
from minigan.optim import Adam

START_SIZE = {28: 7, 32: 4, 64: 4}  # image side -> G's first feature-map side
CHANNELS = (1, 3)  # grey or RGB
D_NORMS = ("none", "batch")  # what follows each of D's inner convolutions


@dataclass
class DCGANConfig:
    """Everything that defines a DCGAN and how it is trained.

    ``image_size`` is the side of the square images (28, 32 or 64), ``channels`` 1 (grey)
    or 3 (RGB); ``base_channels`` is the width of D's first layer and of the input of
    G's last up-sampling block, doubled at every further block. ``ema`` > 0 samples
    from a moving average of G's weights (0: the live G); ``real_label`` is D's target
    for real images (< 1: one-sided label smoothing). ``lr`` is D's learning rate, and
    G's too unless ``g_lr`` gives G its own. ``pack`` = m > 1 makes D judge every m images together,
    stacked as m*channels input channels (PacGAN: ``nn.Pack``; 1: one at a time);
    ``d_dropout`` = p > 0 drops each of D's feature-map values with probability p in
    training (``nn.Dropout`` after each LeakyReLU; 0: none); ``d_noise`` = s > 0 adds
    N(0, s^2) noise to every pixel D sees in training, real and fake alike ("instance
    noise": Arjovsky & Bottou 2017, Sonderby et al. 2017; ``nn.GaussianNoise``; 0: none).
    Both distributions blurred by the same noise overlap, so D cannot separate them
    perfectly on fine detail (on a few hundred flat-coloured pictures, the transposed
    convolutions' grain), and its gradient to G stays informative instead of
    vanishing as D wins. ``d_norm`` is what follows each of D's inner convolutions:
    "none" (the default) or "batch" (BatchNorm, the paper's D). ``g_full_res_channels``
    = c > 0 makes G's last transposed convolution give c feature maps of the image's
    size, from which a 3x3 convolution draws the image (0: the last transposed
    convolution draws the image, the paper's G). ``d_fc_width`` = h > 0 passes D's last
    feature maps through a fully connected layer of h units and LeakyReLU before its
    output (InfoGAN's D; 0: straight to the output, the paper's D). ``g_fc_width`` = h > 0
    starts G with a fully connected layer of h units (BatchNorm, ReLU) before the
    projection of z to the first feature maps (InfoGAN's G; 0: z is projected directly,
    the paper's G). ``d_augment`` names the DiffAugment steps applied to every picture D
    sees in training, real and fake, in D's step and G's: any of "color", "translation",
    "cutout", comma-separated (Zhao et al. 2020, for datasets of a few hundred pictures;
    ``nn.DiffAugment``; "": none).
    """

    latent_dim: int = 100
    image_size: int = 28
    channels: int = 1
    base_channels: int = 32
    lr: float = 4e-4
    g_lr: float | None = 2e-3
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = 32
    generator_loss: str = "non_saturating"
    ema: float = 0.999
    real_label: float = 1.0
    pack: int = 2
    d_dropout: float = 0.0
    d_noise: float = 0.0
    d_norm: str = "none"
    g_full_res_channels: int = 16
    d_fc_width: int = 128
    g_fc_width: int = 256
    d_augment: str = ""

    # Checkpoints saved before g_lr, ema, pack, d_norm, g_full_res_channels, d_fc_width and
    # g_fc_width existed trained G at D's rate, sampled the live G, scored one image at a
    # time, had BatchNorm in D, drew the image with G's last transposed convolution and
    # had no fully connected hidden layer in D or G (see cgan.py).
    LEGACY_VALUES: ClassVar[dict[str, Any]] = {
        "g_lr": None, "ema": 0.0, "pack": 1, "d_norm": "batch", "g_full_res_channels": 0,
        "d_fc_width": 0, "g_fc_width": 0,
    }  # fmt: skip

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.image_size not in START_SIZE:
            raise ValueError(
                f"image_size must be one of {tuple(START_SIZE)}, got {self.image_size!r}"
            )
        if self.channels not in CHANNELS:
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        if self.generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"generator_loss must be one of {GENERATOR_LOSSES}, got {self.generator_loss!r}"
            )
        if self.d_norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {D_NORMS}, got {self.d_norm!r}")
        if not 0 < self.real_label <= 1:
            raise ValueError(f"real_label must lie in (0, 1], got {self.real_label}")
        if not (math.isfinite(self.d_noise) and self.d_noise >= 0):
            raise ValueError(f"d_noise must be a number >= 0 (0: none), got {self.d_noise}")
        if any(step not in nn.augment.POLICIES for step in self.d_augment_steps):
            raise ValueError(
                f"d_augment must name DiffAugment steps, comma-separated, from "
                f"{', '.join(nn.augment.POLICIES)} ('': none), got {self.d_augment!r}"
            )
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must lie in [0, 1) (0: no average), got {self.ema}")
        if self.g_lr is not None and not self.g_lr > 0:
            raise ValueError(f"g_lr must be positive (or None: lr), got {self.g_lr!r}")
        for name in ("latent_dim", "base_channels", "batch_size", "pack"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("g_full_res_channels", "d_fc_width", "g_fc_width"):
            if int(getattr(self, name)) < 0:
                raise ValueError(
                    f"{name} must be an integer >= 0 (0: none), got {getattr(self, name)}"
                )
        check_discriminator_options(self)

    @property
    def d_augment_steps(self) -> list[str]:
        """``d_augment`` as a list of step names ("color,cutout" -> ["color", "cutout"])."""
        return [step.strip() for step in str(self.d_augment).split(",") if step.strip()]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, image_size, image_size): one image, as the networks see it."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def widths(self) -> list[int]:
        """Channels of the hidden feature maps, from the image inwards: [32, 64] for 28x28."""
        blocks = int(math.log2(self.image_size // START_SIZE[self.image_size]))
        return [self.base_channels * 2**i for i in range(blocks)]

    @property
    def logits(self) -> bool:
        """D always gives logits (trained with BCEWithLogitsLoss), as ``GANConfig(logits=True)``."""
        return True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_generator(config: DCGANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """z (batch, latent_dim) -> images (batch, channels, size, size) in [-1, 1]."""
    s, widths = START_SIZE[config.image_size], config.widths[::-1]  # widest first: [64, 32]
    h, layers = config.g_fc_width, []
    if h:  # a fully connected hidden layer first, as in InfoGAN's G
        layers += [
            nn.Linear(config.latent_dim, h, rng=rng, dtype=dtype),
            nn.BatchNorm1d(h, dtype=dtype),
            nn.ReLU(),
        ]
    layers += [
        nn.Linear(h or config.latent_dim, widths[0] * s * s, rng=rng, dtype=dtype),  # project
        nn.Unflatten(1, (widths[0], s, s)),
        nn.BatchNorm2d(widths[0], dtype=dtype),
        nn.ReLU(),
    ]
    for c_in, c_out in itertools.pairwise(widths):  # each block doubles the side
        layers += [
            nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False, rng=rng, dtype=dtype),
            nn.BatchNorm2d(c_out, dtype=dtype),  # (BatchNorm's beta makes a bias redundant)
            nn.ReLU(),
        ]
    c = config.g_full_res_channels
    if c:  # one more block, to c feature maps of the image's size; a 3x3 convolution draws it
        layers += [
            nn.ConvTranspose2d(widths[-1], c, 4, 2, 1, bias=False, rng=rng, dtype=dtype),
            nn.BatchNorm2d(c, dtype=dtype),
            nn.ReLU(),
            # The 3x3 convolution, written as the transposed convolution with stride 1
            # and padding 1: the same maps (a stride-1 ConvT is a convolution with its
            # kernel flipped; see minigan/nn/conv.py), computed from the output side,
            # whose col2im moves 9 rows per output channel where Conv2d's im2col moves
            # 9 per input channel, 16 times as many here. Measured (one thread, batch
            # 64): 5.6 ms a step against 58 ms for nn.Conv2d(c, channels, 3, 1, 1).
            nn.ConvTranspose2d(c, config.channels, 3, 1, 1, rng=rng, dtype=dtype),
        ]
    else:  # the paper's: the last transposed convolution draws the image
        layers += [nn.ConvTranspose2d(widths[-1], config.channels, 4, 2, 1, rng=rng, dtype=dtype)]
    return nn.Sequential(*layers, nn.Tanh())


def build_discriminator(config: DCGANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """images (batch, channels, size, size) -> one logit per image, (batch, 1), or per
    pack of ``config.pack`` images, (batch / pack, 1)."""
    s, widths, m = START_SIZE[config.image_size], config.widths, config.pack  # [32, 64]
    layers = [
        *([nn.DiffAugment(config.d_augment_steps)] if config.d_augment_steps else []),
        *([nn.GaussianNoise(config.d_noise)] if config.d_noise else []),  # instance noise
        *([nn.Pack(m)] if m > 1 else []),  # m images as m*channels channels (PacGAN)
        nn.Conv2d(m * config.channels, widths[0], 4, 2, 1, rng=rng, dtype=dtype),  # no BatchNorm
        nn.LeakyReLU(0.2),
        *dropout_layers(config.d_dropout),
    ]
    batchnorm = config.d_norm == "batch"
    for c_in, c_out in itertools.pairwise(widths):  # each block halves the side
        layers += [
            nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm, rng=rng, dtype=dtype),
            *([nn.BatchNorm2d(c_out, dtype=dtype)] if batchnorm else []),
            nn.LeakyReLU(0.2),
            *dropout_layers(config.d_dropout),
        ]
    features, h = widths[-1] * s * s, config.d_fc_width
    layers.append(nn.Flatten())
    if h:  # a fully connected hidden layer before the logit, as in InfoGAN's D
        layers += [
            nn.Linear(features, h, rng=rng, dtype=dtype),  # no BatchNorm: d_norm is the convs'
            nn.LeakyReLU(0.2),
            *dropout_layers(config.d_dropout),
        ]
    return nn.Sequential(*layers, nn.Linear(h or features, 1, rng=rng, dtype=dtype))


def dcgan_init(model: nn.Module, rng: np.random.Generator) -> nn.Module:
    """The paper's initialisation, in place: conv weights ~ N(0, 0.02), biases 0,
    BatchNorm gamma ~ N(1, 0.02) and beta 0. Linear layers keep PyTorch's default,
    as in PyTorch's DCGAN example."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.weight.data[...] = rng.normal(0.0, 0.02, module.weight.shape)
            if module.bias is not None:
                module.bias.data[...] = 0
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.weight.data[...] = rng.normal(1.0, 0.02, module.weight.shape)
            module.bias.data[...] = 0
    return model


class DCGAN(GAN):
    """A convolutional generator and discriminator; the rest is ``GAN``'s.

    The interface is every model's (see ``minigan.models``); images keep their shape,
    (batch, channels, size, size). From ``GAN`` it inherits the loss (BCE on
    logits), Adam for both players, the G step (through the frozen D) and the
    saving; its own are the networks, the two-pass D step and ``generate``. The
    state holds BatchNorm's running statistics too, loaded all or nothing.
    """

    summary = "the GAN with convolutions and BatchNorm"
    name = "dcgan"
    default_epochs = 6  # what 10 minutes on the 2-core machine trained (see the docstring)
    config_class = DCGANConfig

    def __init__(
        self,
        config: DCGANConfig,
        backend: str | Backend = "numpy",
        seed: int = 0,
        dtype: Any = np.float32,
    ):
        super().__init__(config, backend, seed, dtype)
        if config.g_lr is not None:  # G's own step size (see ``DCGANConfig``)
            self.g_optimizer = Adam(self.generator.parameters(), lr=config.g_lr, betas=config.betas)

    @classmethod
    def default_config(cls) -> DCGANConfig:
        return DCGANConfig()

    @classmethod
    def config_for_images(cls, config: DCGANConfig, shape: tuple[int, int, int]) -> DCGANConfig:
        """``config`` for square images of ``shape`` (channels, size, size)."""
        channels, height, width = shape
        if height != width:
            raise ValueError(f"DCGAN: images must be square, got {height}x{width}")
        return dataclasses.replace(config, channels=channels, image_size=height)

    @classmethod
    def parameter_count(cls, config: DCGANConfig) -> int:
        """Weights of G and D, from the config alone (see the builders; 4x4 kernels)."""
        s, widths, c = START_SIZE[config.image_size], config.widths, config.channels
        pairs = list(itertools.pairwise(widths))  # inner blocks: a 4x4 conv, BatchNorm or bias
        h, z = config.g_fc_width, config.latent_dim  # G's hidden layer: weights, bias, BN
        hidden = (z + 1) * h + 2 * h if h else 0
        projection = hidden + ((h or z) + 1) * widths[-1] * s * s + 2 * widths[-1]  # + BN
        f = config.g_full_res_channels  # the last block: to f maps then a 3x3 conv, or to c
        image = widths[0] * f * 16 + 2 * f + f * c * 9 + c if f else widths[0] * c * 16 + c
        generator = projection + sum(a * b * 16 + 2 * a for a, b in pairs) + image
        per_channel = 2 if config.d_norm == "batch" else 1  # BatchNorm's gamma, beta or a bias
        features, h = widths[-1] * s * s, config.d_fc_width
        hidden = (features + 1) * h  # the fully connected hidden layer's weights and biases
        discriminator = (
            config.pack * c * widths[0] * 16 + widths[0]
            + sum(a * b * 16 + per_channel * b for a, b in pairs) + hidden + (h or features) + 1
        )  # fmt: skip
        return generator + discriminator

    @classmethod
    def memory_bytes(cls, config: DCGANConfig, rows: int) -> int:
        """About how much memory training needs (see ``Model.memory_bytes``): the
        parameters' 4 arrays, and every feature map of G and D for ``rows`` images,
        times 3 for the im2col columns and temporaries, D seeing real and fake."""
        widths, size = config.widths, config.image_size
        maps = sum(w * (size // 2 ** (i + 1)) ** 2 for i, w in enumerate(widths))
        maps += config.g_full_res_channels * size * size + config.d_fc_width + config.g_fc_width
        per_image = maps + config.channels * size * size
        return 4 * (4 * cls.parameter_count(config) + 3 * rows * 3 * per_image)

    def build_networks(
        self, config: DCGANConfig, rng: np.random.Generator, dtype: Any
    ) -> tuple[nn.Sequential, nn.Sequential]:
        G = dcgan_init(build_generator(config, rng, dtype), rng)
        return G, dcgan_init(build_discriminator(config, rng, dtype), rng)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    def d_steps_per_g_step(self) -> int:
        return 1

    def generate(self, z: Any) -> Any:
        """Images in [-1, 1], shape (n, channels, size, size), for the noise ``z``.

        G runs in evaluation mode (running statistics): each image depends on its own
        z only, and no state changes.
        """
        G = self.sampler  # the moving average of G's weights, if the model keeps one
        G.eval()
        try:
            return G.forward(z)
        finally:
            G.train()

    def discriminator_step(self, real: Any, fake: Any) -> dict[str, Any]:
        """Teach D to tell ``real`` (target: real_label) from ``fake`` (target 0): two passes.

        ``GAN.discriminator_step_two_pass``, the textbook step: separate passes, so that
        BatchNorm (``d_norm="batch"``) normalises each batch with its own statistics
        (see the module docstring); their gradients add up in ``.grad``. Without
        BatchNorm one stacked pass (``GAN.discriminator_step``) would give the same
        update, but measured it is slower here: stacking copies both halves out of the
        rows-form memory the convolutions hand along (``minigan/nn/conv.py``), 41 ms
        (two passes) against 46 ms (one stacked pass) a step, one thread. ``d_loss``
        is reported as ``GAN.discriminator_step`` reports it, the mean over both halves.
        """
        stats = self.discriminator_step_two_pass(real, fake)
        return {**stats, "d_loss": get_array_module(real).asarray(stats["d_loss"] / 2)}
