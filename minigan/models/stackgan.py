"""StackGAN (Zhang et al. 2017): text to image in two stages.

"StackGAN: Text to Photo-realistic Image Synthesis with Stacked Generative Adversarial
Networks". A caption's embedding e (here: the mean of fixed random word vectors,
``minigan.captions``) conditions two GANs stacked one on the other:

    Stage-I:   c0 ~ CA_0(e),  s0 = G_0(z, c0)          a low-resolution sketch (14x14)
               D_0(x, e): is x a real 14x14 image, and does it match e?
    Stage-II:  c  ~ CA(e),    s = G(s0, c)             the sketch redrawn at 28x28
               D(x, e): is x a real 28x28 image, and does it match e?

CA is Conditioning Augmentation (``nn.ConditioningAugmentation``): the code is drawn,
c = mu(e) + sigma(e) * eps, with a KL term to N(0, I) in G's loss. Each stage has its
own CA (the paper's code: ``STAGE2_G`` builds a ``CA_NET`` of its own); z enters Stage-I
only ("the randomness is preserved by c", the paper says of Stage-II).

**The objectives** (the paper's eq. 3-6, as its code computes them; BCE on logits):

    L_D = BCE(D(x, e), 1) + 1/2 [ BCE(D(x, e'), 0) + BCE(D(G(.), e), 0) ]
    L_G = BCE(D(G(.), e), 1) + lambda KL(N(mu(e), sigma(e)^2) || N(0, I))

e' is a *wrong* caption: the matching-aware discriminator (Reed et al. 2016) sees real
images with captions that are not theirs, labelled fake, so that it must read the
caption, and G must draw what the caption says, not merely a real-looking image. The
wrong caption of image i is the caption of image i + 1 of the batch (the batch's
captions rolled by one, as the paper's code pairs ``real_features[:-1]`` with
``cond[1:]``). lambda = ``kl_weight``: 2.0 in the code (``COEFF.KL``), 1 in the text (here: below).
Each stage trains on these with its own G and D; Stage-I on the real images averaged
down 2x2 to 14x14.

**Training: the algorithm box.** Stage-I for the first ``stage1_share`` of the run's
steps (``plan_steps``), then Stage-II with Stage-I frozen, as the paper trains them
(600 epochs each at the code's defaults; here 70% and 30% of a CPU budget). One
``train_step(real, text)`` of the stage being trained:

    1. z ~ N(0, I);  fake = G_0(z, CA_0(e))                 (Stage-I)
       or s0 = G_0(z, CA_0(e)) frozen, fake = G(s0, CA(e))   (Stage-II)
    2. update D on L_D: one encoder pass over [real; fake], the logits' head over
       (real, e), (real, e'), (fake, e): the real images' features serve two pairs
    3. update G (and its CA) on L_G through the frozen D, which has just been updated

Stage-I, frozen, runs in evaluation mode in Stage-II (BatchNorm's running statistics,
the moving average of its weights when ``ema`` > 0): Stage-II learns to redraw exactly
the sketches that sampling will hand it, and its gradient stops at s0 (the code's
``stage1_img.detach()``).

**The networks**: the paper code's ``STAGE1_G``, ``STAGE1_D``, ``STAGE2_G`` and
``STAGE2_D`` (hanzhanggit/StackGAN-Pytorch, ``code/model.py``) scaled from 64x64 and
256x256 to 14x14 and 28x28 (side S = ``image_size``, q = S / 4; widths: ``g1_channels``
= g1, ``g2_channels`` = g2, ``d_channels`` = d, ``c_dim``, ``d_text_dim`` = n_d):

    G_0   [z | c0] -> Linear -> BN -> ReLU -> (g1, q, q)                     7x7
          up-block g1 -> g1/2: Upsample(2), conv 3x3, BN, ReLU              14x14
          conv 3x3 -> C, Tanh                                               14x14
    G     s0 -> conv 3x3 (C -> g2), ReLU; conv 4x4/2 (-> 2 g2), BN, ReLU      7x7
          [h | c replicated 7x7] -> conv 3x3 (-> 2 g2), BN, ReLU            (joint)
          R residual blocks: y = ReLU(x + BN(conv(ReLU(BN(conv(x))))))       7x7
          up-blocks 2 g2 -> g2 -> g2/2                                 14x14, 28x28
          conv 3x3 -> C (y), Tanh: s = tanh(y + a(s0)) (``sketch_skip``)    28x28
    D_0   conv 4x4/2 (C -> d), LReLU; conv 3x3/2 (-> 2 d), LReLU            7x7, 4x4
    D     conv 4x4/2 (C -> d), LReLU; conv 4x4/2 (-> 2 d), LReLU;
          conv 3x3/2 (-> 4 d), LReLU                                  14, 7, 4x4
    head  (both D's; the code's D_GET_LOGITS) the text compressed, LReLU(Linear(e))
          (n_d), replicated 4x4 and joined to the features; conv 3x3, LReLU;
          conv 4x4/4 -> one logit; plus (``d_projection``) v(e) . mean_ij f, v linear

The paper's: z 100 (``latent_dim``), c 128, ngf 1024 at 4x4 for G_0 (halved at each of
its four up-blocks), 4 residual blocks, Adam with lr 2e-4 and betas (0.5, 0.999) for
all four networks, lambda 2 (its code), batch 64, weights N(0, 0.02) and BatchNorm's
gamma N(1, 0.02). Where this file departs from it, and why:

- **D's text code is its own**: the paper's text compresses e with a fully connected
  layer inside D (the TensorFlow code: to 64 numbers, then a leaky ReLU); its PyTorch
  code hands D G's CA mean mu(e), detached. Here D reads e itself, so each player
  owns everything it learns from, and D's gradient never reaches G's CA.
- **D's logit adds a projection term** (``d_projection``; Miyato & Koyama 2018, the
  form CGAN's D takes here, ``conditional.py``): logit = head(f, e) + v(e) . mean(f),
  v linear in e (``TextProjection``). The paper's head joins the caption to D's 4x4
  features and lets two convolutions decide how much to use it; the projection term
  is built from the very features that judge the image, so D cannot score an image
  without scoring it against the caption's words, and the class word, one of about
  four in the caption's mean, gets a learned vector of its own (the CGAN literature's
  class conditioning, which a caption's class word is). The paper's head stays beside
  it: the projection is an addition, not a replacement.
- **CA without the ReLU** (``ca_relu=False``; the paper's text, where f is linear): the
  code's ReLU after CA's fully connected layer makes mu = log sigma^2 = 0 the KL's minimum
  AND the ReLU's kink. In the first steps, before D has learnt to read the caption, the
  KL's gradient is all G's loss says about CA's layer, and it drives every
  pre-activation down to 0 and past it, where the ReLU's gradient is 0 for good: every
  unit dead, c = eps pure noise, and G never sees the caption (what happened here:
  benchmarks/RESULTS.md, "StackGAN"). Linear, the KL pulls mu towards 0 while the
  caption's gradient can always push it back.
- **No BatchNorm in D** (the code has it after each inner convolution), and so **D keeps
  its layers' own initial weights** (PyTorch's, U(-1/sqrt(fan_in), 1/sqrt(fan_in))) where
  the paper draws N(0, 0.02): BatchNorm rescales each layer's output, and without it five
  layers of N(0, 0.02) weights (fan-ins of 16 to 1300) multiply D's signal by about
  0.02 sqrt(fan_in) < 1 each, so that its scores start ~1e-5 from 0 and its gradients
  vanish. Without BatchNorm the
  scores of a pair depend on that pair alone, so the real images' features are
  computed once for the matching and the mismatched pair and every pair is scored in
  one stacked pass; with BatchNorm the three kinds of pair would be normalised by each
  other's statistics (the reason ``dcgan.py`` gives). Stage-II's D in the code adds an
  unconditional logit beside the conditional one; here both D's have the conditional
  one only (L_D above).
- **Stage-II redraws the sketch plus a learnt correction** (``sketch_skip``):
  s = tanh(y + a(s0)), y the paper's G's last convolution (before its Tanh) and
  a(s0) = atanh(s0 enlarged 2x by nearest neighbour, clipped to +-0.999), the
  pre-activation whose tanh is the sketch itself (``sketch_logits``). The paper's
  Stage-II "corrects defects in the low-resolution image and completes details"; its G
  draws the whole image anew from the sketch's encoding, which here is 7x7 maps of 2 g2
  channels, and at its first step draws an almost uniform grey (its last layer's weights
  are N(0, 0.02)): the sketch's shape, and with it the caption's digit, must then be
  learnt again from D's gradient alone, and D, one logit for a whole 28x28 image and its
  caption, rewards any real-looking digit that matches the caption's words well enough,
  so G may settle on another digit's shape (a four closed into a nine). With the skip,
  y = 0 draws the sketch exactly, Stage-II starts where Stage-I ended, and what it
  learns is the correction: the super-resolution networks' residual
  learning (VDSR, Kim, Lee and Lee 2016: a network predicts the difference between the
  interpolated low-resolution image and the high-resolution one). Adding in the
  pre-activation keeps s in (-1, 1) as the data; the clip keeps a finite where Stage-I's
  Tanh rounds to +-1 (atanh(0.999) = 3.8). Backward: ds/dy = 1 - s^2 (the Tanh's), and
  a(s0) is a constant: the sketch is frozen (the code's ``detach``), so nothing
  differentiates a. Off: s = tanh(y), the paper's G.
- **Sizes**: widths for a CPU; the image encoder of G goes down 2x (14 -> 7) where the
  paper's goes 4x (64 -> 16), since the whole way from 7x7 to 28x28 is only two
  up-blocks; ``residual_blocks`` 2 (the paper's 4).
- **A moving average of each stage's G** (``ema`` 0.995: about the last 200 updates, as
  ``dcgan.py``'s average) draws the samples and, for Stage-I, Stage-II's sketches.
- **The recipe, for a run of minutes instead of 600 epochs a stage**: G learns 5x faster
  than D (``g_lr`` 1e-3, ``lr`` 2e-4: as ``dcgan.py``, after InfoGAN), z has 32 numbers
  (``latent_dim``; the caption's code c then makes a third of G's input, not a seventh),
  the KL weighs 0.01 (``kl_weight``; the paper's text: 1, its code: 2), and Stage-I,
  whose networks work on maps a quarter the size of Stage-II's, gets 70% of the steps
  (``stage1_share``): the caption reaches the image through Stage-I's sketch, so the
  sketch's class must be right. Each field's other value gives the paper's; the
  figures: benchmarks/RESULTS.md, "StackGAN".
- **Why so light a KL**: the KL pulls each caption's mean mu(e) towards 0 and its spread
  towards 1, so that c ~ N(mu, sigma^2) varies smoothly between captions. A sentence
  embedding varies continuously, and the paper wants that smoothness (its "more
  training pairs"); a digit's class does not: c drawn half-way between the means of a
  "four" and a "nine" asks G for neither, and G draws a digit between them. At
  lambda = 1 the means can lie only about one noise's width apart, so eps moves many
  codes across a neighbour class's; a weight 1/100 of the paper's text keeps the KL's
  pull (c stays a draw around mu, CA's noise and its gradient unchanged) while the
  classes' means spread out over several widths of the noise.

New pieces, each with its backward derived where it is defined: ``JoinText`` (a code
replicated over space and joined to feature maps; backward sums over space),
``sketch_logits`` (Stage-II's skip, a constant of the frozen sketch: no backward),
``TextProjection`` (the projection term; backward spreads g v over space by the mean),
``StageOneGenerator``, ``StageTwoGenerator``, ``TextHead`` and ``TextDiscriminator``
(networks with two inputs, their backward split between them), and the 2x2 average
pooling of the real images (``downsample``, on data: no backward). Upsample and CA are
in ``minigan/nn``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import Backend, get_array_module, get_backend
from minigan.ema import EMA
from minigan.losses import BCEWithLogitsLoss
from minigan.models.base import Model, check_adam, check_count, check_positive, frozen, option
from minigan.models.cyclegan import Pair
from minigan.models.dcgan import dcgan_init
from minigan.nn.checks import check_array, is_integer
from minigan.nn.upsample import upsample_nearest
from minigan.optim import Adam

IMAGE_SIZES = (28, 32)  # G_0 starts at size / 4; both D's end at 4x4
CHANNELS = (1, 3)
LOGIT_SIDE = 4  # the side of both D's last feature maps (the paper's M_d)


@dataclass
class StackGANConfig:
    """StackGAN's sizes, its two stages' split, and how they are trained."""

    latent_dim: int = option(32, "size of z, Stage-I's noise (the paper's 100)")
    text_dim: int = option(
        32,
        "length of the caption embedding the model takes (minigan.captions: the mean of "
        "fixed word vectors; >= 31, the vocabulary's size, keeps every word's direction)",
    )
    c_dim: int = option(16, "length of the text code c that CA draws for G (the paper's 128)")
    d_text_dim: int = option(
        16, "length of D's compressed text code, replicated over D's 4x4 features"
    )
    g1_channels: int = option(
        64, "channels of Stage-I G's first (7x7) maps, halved at its up-sampling block"
    )
    g2_channels: int = option(
        16,
        "channels of Stage-II G's 14x14 maps (2x inside, at 7x7, half at 28x28; the "
        "paper's ngf: 128)",
    )
    d_channels: int = option(
        32, "channels of each D's first convolution, doubled at each further one"
    )
    d_projection: bool = option(
        True,
        "both D's logits add the projection term v(e) . mean(f) (Miyato & Koyama 2018) to "
        "the paper's head; off: the paper's head alone",
        flag=False,
    )
    sketch_skip: bool = option(
        True,
        "Stage-II G draws tanh(y + atanh(s0 enlarged)): the sketch itself plus a learnt "
        "correction y (off: tanh(y), the paper's)",
        flag=False,
    )
    residual_blocks: int = option(2, "Stage-II G's residual blocks at 7x7 (the paper's 4)")
    lr: float = option(2e-4, "Adam's learning rate of both D's (and of both G's, unless g_lr)")
    g_lr: float | None = option(
        1e-3, "both G's own learning rate (CA's included); None: lr, the paper's one rate"
    )
    betas: tuple[float, float] = option((0.5, 0.999), "Adam's (beta1, beta2)", flag=False)
    kl_weight: float = option(
        0.01, "lambda, the weight of CA's KL term in G's loss (the paper: 1; its code: 2.0)"
    )
    ca_relu: bool = option(
        False,
        "a ReLU after CA's fully connected layer, as the paper's PyTorch code (mu, "
        "log sigma^2 >= 0); off: (mu, log sigma^2) linear in e, as the paper's text",
        flag=False,
    )
    stage1_share: float = option(
        0.7,
        "share of the run's steps spent on Stage-I, the rest on Stage-II with Stage-I "
        "frozen (the paper trains the two equally long)",
    )
    batch_size: int = option(64, "batch size (the paper's 64)")
    ema: float = option(
        0.995,
        "sample from a moving average of each stage's G with decay BETA, saved in the "
        "checkpoint; 0 for none (then the live G's draw)",
        metavar="BETA",
    )
    image_size: int = option(28, "the side of the square images: 28 or 32", flag=False)
    channels: int = option(1, "channels per image: 1 (grey) or 3 (RGB)", flag=False)

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {self.image_size!r}")
        if self.channels not in CHANNELS:
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        check_positive(self, "latent_dim", "text_dim", "c_dim", "d_text_dim", "g1_channels",
                       "g2_channels", "d_channels", "residual_blocks", "batch_size")  # fmt: skip
        for name in ("g1_channels", "g2_channels"):
            if getattr(self, name) % 2:
                raise ValueError(f"{name} must be even (it is halved), got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be >= 2 (a wrong caption is another image's), got "
                f"{self.batch_size}"
            )
        check_adam(self)
        if self.g_lr is not None and not (math.isfinite(self.g_lr) and self.g_lr > 0):
            raise ValueError(f"g_lr must be a positive number (or None: lr), got {self.g_lr!r}")
        if not (math.isfinite(self.kl_weight) and self.kl_weight >= 0):
            raise ValueError(f"kl_weight must be a number >= 0, got {self.kl_weight}")
        if not 0 < self.stage1_share < 1:
            raise ValueError(f"stage1_share must lie in (0, 1), got {self.stage1_share}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must lie in [0, 1) (0: no average), got {self.ema}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, image_size, image_size): Stage-II's images."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def stage1_shape(self) -> tuple[int, int, int]:
        """(channels, image_size / 2, image_size / 2): Stage-I's images."""
        return (self.channels, self.image_size // 2, self.image_size // 2)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def downsample(x: Any) -> Any:
    """Real images for Stage-I: each 2x2 block averaged, (N, C, 2H, 2W) -> (N, C, H, W).

    y[n, c, i, j] = 1/4 sum_{k, l < 2} x[n, c, 2i + k, 2j + l]: a linear map of the data,
    applied before training sees it, so nothing differentiates it.
    """
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


# --- the new pieces -------------------------------------------------------------------------


class JoinText(nn.Module):
    """``y = [h | c replicated over space]``: a text code joined to feature maps.

    Shapes:
        h: (N, F, H, W) feature maps      c: (N, K) one code per image
        y: (N, F + K, H, W), with y[n, F + k, i, j] = c[n, k] at every (i, j)

    StackGAN joins text to images this way in both G (Stage-II: the code c beside the
    encoded sketch) and D (the compressed text beside the image's 4x4 features, the
    code's ``D_GET_LOGITS``): the convolution that follows sees the text at every place.

    **Backward.** y is a copy of its inputs' entries, h's each copied once and c's each
    copied H W times:

        y[n, f, i, j]     = h[n, f, i, j]      =>  dL/dh[n, f, i, j] = g[n, f, i, j]
        y[n, F + k, i, j] = c[n, k]  all i, j  =>  dL/dc[n, k] = sum_{i, j} g[n, F + k, i, j]

    (g = dL/dy): the derivative of a copy is 1 and the copies' gradients add, so c's
    gradient is the sum over space of its channels' slice of g, as nearest-neighbour
    up-sampling's is the sum over each block (replication is up-sampling a 1x1 map to
    H x W). Returns ``(dL/dh, dL/dc)``.
    """

    def __repr__(self) -> str:
        return "JoinText()"

    def __call__(self, h: Any, c: Any) -> Any:  # type: ignore[override]
        return self.forward(h, c)

    def forward(self, h: Any, c: Any) -> Any:  # type: ignore[override]
        check_array(self, h, shape=("batch", "features", "height", "width"), name="feature maps")
        check_array(self, c, like=h, shape=(h.shape[0], "code"), name="text code")
        n, f, height, width = h.shape
        y = get_array_module(h).empty((n, f + c.shape[1], height, width), dtype=h.dtype)
        y[:, :f] = h
        y[:, f:] = c[:, :, None, None]  # the code at every (i, j)
        self.save_for_backward(f, output_shape=y.shape, like=h)
        return y

    def backward(
        self, grad_out: Any, input_grad: bool = True, create_graph: bool = False
    ) -> tuple[Any, Any]:
        self.first_order_only(create_graph)
        f = self.saved(grad_out)
        return grad_out[:, :f], grad_out[:, f:].sum(axis=(2, 3))  # dh: a slice; dc: over space


def up_block(c_in: int, c_out: int, rng: np.random.Generator, dtype: Any) -> list[nn.Module]:
    """The paper code's ``upBlock``: nearest-neighbour up-sampling by 2, a 3x3 convolution
    (no bias: BatchNorm's beta is one), BatchNorm, ReLU."""
    return [
        nn.Upsample(2),
        nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False, rng=rng, dtype=dtype),
        nn.BatchNorm2d(c_out, dtype=dtype),
        nn.ReLU(),
    ]


def conv_bn_relu(c_in: int, c_out: int, k: int, stride: int, padding: int,
                 rng: np.random.Generator, dtype: Any) -> list[nn.Module]:  # fmt: skip
    return [
        nn.Conv2d(c_in, c_out, k, stride, padding, bias=False, rng=rng, dtype=dtype),
        nn.BatchNorm2d(c_out, dtype=dtype),
        nn.ReLU(),
    ]


class StageOneGenerator(nn.Module):
    """Stage-I's G: ``s0 = net([z | c0])``, c0 = CA_0(e).

    Shapes: z (N, latent_dim), e (N, text_dim) -> s0 (N, C, S/2, S/2) in [-1, 1].

    Backward, with g = dL/ds0 and CA's KL weighted in (its ``kl_weight``):

        dL/d[z | c0] = net.backward(g)            split at latent_dim:
        dL/dz = its first latent_dim columns      (returned; z learns nothing)
        dL/dc0 = the rest  ->  CA_0.backward(dL/dc0): dL/dW_ca, the KL's gradient added

    e is data: its gradient is not computed.
    """

    def __init__(self, ca: nn.ConditioningAugmentation, net: nn.Sequential):
        self.ca = ca
        self.concat = nn.Concat()
        self.net = net

    def __repr__(self) -> str:
        return f"StageOneGenerator({self.ca!r}, {self.net!r})"

    def __call__(self, z: Any, text: Any) -> Any:  # type: ignore[override]
        return self.forward(z, text)

    def forward(self, z: Any, text: Any) -> Any:  # type: ignore[override]
        return self.net.forward(self.concat.forward([z, self.ca.forward(text)]))

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        dz, dc = self.concat.backward(self.net.backward(grad_out))
        self.ca.backward(dc, input_grad=False)  # dL/dW_ca; e is data
        return dz if input_grad else None


class StageTwoGenerator(nn.Module):
    """Stage-II's G: ``s = net(join(encoder(s0), c))``, c = CA(e); with ``skip``,
    ``s = tanh(y + a(s0))``, y = net(join(encoder(s0), c)) (net without its Tanh) and
    a = ``sketch_logits`` (the sketch enlarged, as a pre-activation).

    Shapes: s0 (N, C, S/2, S/2) Stage-I's image, e (N, text_dim) -> s (N, C, S, S).

    Backward, with g = dL/ds, walking forward in reverse:

        (skip) g <- g (1 - s^2)                     the Tanh's; a(s0) is a constant
        dL/dj = net.backward(g)                     j = join(h, c), h = encoder(s0)
        (dL/dh, dL/dc) = join.backward(dL/dj)       a slice; a sum over space
        CA.backward(dL/dc)                          dL/dW_ca, the KL's gradient added
        encoder.backward(dL/dh)                     dL/dW_encoder

    and there it stops: s0 is Stage-I's output, frozen (the paper's ``detach``), so
    dL/ds0 is not computed.
    """

    def __init__(self, encoder: nn.Sequential, ca: nn.ConditioningAugmentation,
                 net: nn.Sequential, skip: bool = False):  # fmt: skip
        self.encoder = encoder
        self.ca = ca
        self.join = JoinText()
        self.net = net
        self.skip = skip
        self.tanh = nn.Tanh() if skip else None  # with the skip, net ends before its Tanh

    def __repr__(self) -> str:
        skip = ", skip=True" if self.skip else ""
        return f"StageTwoGenerator({self.encoder!r}, {self.ca!r}, {self.net!r}{skip})"

    def __call__(self, sketch: Any, text: Any) -> Any:  # type: ignore[override]
        return self.forward(sketch, text)

    def forward(self, sketch: Any, text: Any) -> Any:  # type: ignore[override]
        h = self.encoder.forward(sketch)
        y = self.net.forward(self.join.forward(h, self.ca.forward(text)))
        return y if self.tanh is None else self.tanh.forward(y + sketch_logits(sketch))

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> None:
        self.first_order_only(create_graph)
        if self.tanh is not None:  # s = tanh(y + a(s0)): a is a constant (s0 frozen)
            grad_out = self.tanh.backward(grad_out)
        dh, dc = self.join.backward(self.net.backward(grad_out))
        self.ca.backward(dc, input_grad=False)
        self.encoder.backward(dh, input_grad=False)  # the sketch is frozen: no gradient


class TextProjection(nn.Module):
    """The projection term of D's logit: ``r = sum_k v_k(e) p_k(f)``, v = Linear(e).

    Miyato & Koyama (2018)'s ``embed(y) . phi(x)``, the label's one-hot replaced by the
    caption's embedding e and phi by the spatial mean of D's last feature maps:

        p = mean_{i, j} f[:, :, i, j]       (N, F)    f: (N, F, H, W)
        v = W e + b                         (N, F)    a Linear(text_dim, F)
        r = sum_k v_k p_k                   (N, 1)

    e is the mean of a caption's word vectors (``minigan.captions``), a linear function
    of its words' counts, so W e is the sum of one learned vector per word (over the
    caption's length): the class word's vector is a class embedding, as CGAN's
    projection D learns. The Linear's bias b gives the unconditional term psi(phi(x)) =
    b . p of Miyato & Koyama's logit. The mean instead of their sum over space is the
    same map up to the constant H W, absorbed in W and b; with the mean, r's initial size
    does not grow with the maps' area.

    **Backward**, with g = dL/dr (N, 1):

        dL/dv_k = g p_k          -> the Linear's backward: dL/dW = (g p)^T e, dL/db = sum g p
        dL/dp_k = g v_k          -> dL/df[:, k, i, j] = g v_k / (H W) at every (i, j)

    the mean's derivative being 1 / (H W) for each of the entries it averages. Returns
    dL/df; e is data (its gradient is not computed).
    """

    def __init__(self, embed: nn.Linear):
        self.embed = embed

    def __repr__(self) -> str:
        return f"TextProjection({self.embed!r})"

    def __call__(self, features: Any, text: Any) -> Any:  # type: ignore[override]
        return self.forward(features, text)

    def forward(self, features: Any, text: Any) -> Any:  # type: ignore[override]
        maps = ("batch", "features", "height", "width")
        check_array(self, features, shape=maps, name="feature maps")
        p = features.mean(axis=(2, 3))
        v = self.embed.forward(text)
        r = (v * p).sum(axis=1, keepdims=True)
        self.save_for_backward(p, v, features.shape, output_shape=r.shape, like=features)
        return r

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        p, v, shape = self.saved(grad_out)
        self.embed.backward(grad_out * p, input_grad=False)  # dL/dv = g p
        dp = grad_out * v / (shape[2] * shape[3])  # dL/dp = g v, spread by the mean's 1/(H W)
        df = get_array_module(dp).empty(shape, dtype=dp.dtype)
        df[...] = dp[:, :, None, None]  # the same at every (i, j)
        return df


class TextHead(nn.Module):
    """D's logits from image features and text: ``net(join(f, LReLU(Linear(e))))``, plus
    the projection ``r(f, e)`` (``TextProjection``) when D has one.

    Shapes: f (N, F, 4, 4), e (N, text_dim) -> one logit per pair, (N, 1).

    Backward, with g = dL/dlogits:

        dL/dj = net.backward(g)                      j = join(f, t), t = compress(e)
        (dL/df, dL/dt) = join.backward(dL/dj)        a slice; a sum over space
        compress.backward(dL/dt)                     dL/dW_compress (e is data)
        dL/df += projection.backward(g)              f feeds both terms: their gradients add

    returns dL/df, which the image encoder's backward takes.
    """

    def __init__(self, compress: nn.Sequential, net: nn.Sequential,
                 projection: TextProjection | None = None):  # fmt: skip
        self.compress = compress
        self.join = JoinText()
        self.net = net
        self.projection = projection

    def __repr__(self) -> str:
        return f"TextHead({self.compress!r}, {self.net!r}, {self.projection!r})"

    def __call__(self, features: Any, text: Any) -> Any:  # type: ignore[override]
        return self.forward(features, text)

    def forward(self, features: Any, text: Any) -> Any:  # type: ignore[override]
        s = self.net.forward(self.join.forward(features, self.compress.forward(text)))
        return s if self.projection is None else s + self.projection.forward(features, text)

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        df, dt = self.join.backward(self.net.backward(grad_out))
        self.compress.backward(dt, input_grad=False)
        if self.projection is not None:
            df = df + self.projection.backward(grad_out)
        return df


class TextDiscriminator(nn.Module):
    """D(x, e) = head(encoder(x), e): one logit per (image, caption) pair, (N, 1).

    The paper code's split: ``netD(x)`` encodes the image, ``get_cond_logits(f, e)``
    scores it with a caption; the D step encodes each real image once and scores it
    with two captions. Backward: ``encoder.backward(head.backward(g))``, dL/dx returned
    (G's loss crosses D into the fake image).
    """

    def __init__(self, encoder: nn.Sequential, head: TextHead):
        self.encoder = encoder
        self.head = head

    def __repr__(self) -> str:
        return f"TextDiscriminator({self.encoder!r}, {self.head!r})"

    def __call__(self, x: Any, text: Any) -> Any:  # type: ignore[override]
        return self.forward(x, text)

    def forward(self, x: Any, text: Any) -> Any:  # type: ignore[override]
        return self.head.forward(self.encoder.forward(x), text)

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        self.first_order_only(create_graph)
        return self.encoder.backward(self.head.backward(grad_out), input_grad=input_grad)


SKETCH_CLIP = 0.999  # atanh(0.999) = 3.8: a sketch's saturated pixels stay finite


def sketch_logits(sketch: Any) -> Any:
    """a(s0) = atanh(clip(up(s0), -SKETCH_CLIP, SKETCH_CLIP)): the pre-activation whose tanh
    is Stage-I's sketch enlarged 2x by nearest neighbour (up to the clip), (N, C, S, S).
    Stage-II's skip (``sketch_skip``) adds it before G's Tanh; s0 is frozen data here, so
    nothing differentiates it."""
    xp = get_array_module(sketch)
    u = xp.clip(upsample_nearest(sketch, 2), -SKETCH_CLIP, SKETCH_CLIP)
    return 0.5 * (xp.log1p(u) - xp.log1p(-u))  # atanh(u) = 1/2 log((1 + u) / (1 - u))


# --- the four networks ----------------------------------------------------------------------


def conditioning_augmentation(
    config: StackGANConfig, rng: np.random.Generator, dtype: Any
) -> nn.ConditioningAugmentation:
    """Each stage's own CA: e (text_dim) -> c (c_dim), KL weighted by ``kl_weight``."""
    return nn.ConditioningAugmentation(config.text_dim, config.c_dim, init_rng=rng, dtype=dtype,
                                       kl_weight=config.kl_weight, relu=config.ca_relu)  # fmt: skip


def build_stage1_generator(config: StackGANConfig, rng: np.random.Generator,
                           dtype: Any) -> StageOneGenerator:  # fmt: skip
    g, q, c = config.g1_channels, config.image_size // 4, config.channels
    ca = conditioning_augmentation(config, rng, dtype)
    net = nn.Sequential(
        nn.Linear(config.latent_dim + config.c_dim, g * q * q, rng=rng, dtype=dtype),
        nn.BatchNorm1d(g * q * q, dtype=dtype),
        nn.ReLU(),
        nn.Unflatten(1, (g, q, q)),
        *up_block(g, g // 2, rng, dtype),
        nn.Conv2d(g // 2, c, 3, 1, 1, rng=rng, dtype=dtype),
        nn.Tanh(),
    )
    return StageOneGenerator(ca, net)


def build_stage2_generator(config: StackGANConfig, rng: np.random.Generator,
                           dtype: Any) -> StageTwoGenerator:  # fmt: skip
    g, c = config.g2_channels, config.channels
    encoder = nn.Sequential(
        nn.Conv2d(c, g, 3, 1, 1, rng=rng, dtype=dtype),
        nn.ReLU(),
        *conv_bn_relu(g, 2 * g, 4, 2, 1, rng, dtype),
    )
    ca = conditioning_augmentation(config, rng, dtype)
    blocks = []
    for _ in range(config.residual_blocks):  # the code's ResBlock: ReLU(x + BN(conv(...)))
        body = nn.Sequential(
            *conv_bn_relu(2 * g, 2 * g, 3, 1, 1, rng, dtype),
            nn.Conv2d(2 * g, 2 * g, 3, 1, 1, bias=False, rng=rng, dtype=dtype),
            nn.BatchNorm2d(2 * g, dtype=dtype),
        )
        blocks += [nn.Residual(body), nn.ReLU()]
    net = nn.Sequential(
        *conv_bn_relu(2 * g + config.c_dim, 2 * g, 3, 1, 1, rng, dtype),  # the joint conv
        *blocks,
        *up_block(2 * g, g, rng, dtype),
        *up_block(g, g // 2, rng, dtype),
        nn.Conv2d(g // 2, c, 3, 1, 1, rng=rng, dtype=dtype),
        *([] if config.sketch_skip else [nn.Tanh()]),  # with the skip: StageTwoGenerator's
    )
    return StageTwoGenerator(encoder, ca, net, skip=config.sketch_skip)


def text_head(config: StackGANConfig, features: int, rng: np.random.Generator,
              dtype: Any) -> TextHead:  # fmt: skip
    n_d = config.d_text_dim
    compress = nn.Sequential(
        nn.Linear(config.text_dim, n_d, rng=rng, dtype=dtype), nn.LeakyReLU(0.2)
    )
    net = nn.Sequential(
        nn.Conv2d(features + n_d, features, 3, 1, 1, rng=rng, dtype=dtype),
        nn.LeakyReLU(0.2),
        nn.Conv2d(features, 1, LOGIT_SIDE, LOGIT_SIDE, 0, rng=rng, dtype=dtype),
        nn.Flatten(),
    )
    if not config.d_projection:
        return TextHead(compress, net)
    return TextHead(compress, net, TextProjection(nn.Linear(config.text_dim, features, rng=rng,
                                                            dtype=dtype)))  # fmt: skip


def build_stage1_discriminator(config: StackGANConfig, rng: np.random.Generator,
                               dtype: Any) -> TextDiscriminator:  # fmt: skip
    d, c = config.d_channels, config.channels
    encoder = nn.Sequential(
        nn.Conv2d(c, d, 4, 2, 1, rng=rng, dtype=dtype),  # 14 -> 7
        nn.LeakyReLU(0.2),
        nn.Conv2d(d, 2 * d, 3, 2, 1, rng=rng, dtype=dtype),  # 7 -> 4
        nn.LeakyReLU(0.2),
    )
    return TextDiscriminator(encoder, text_head(config, 2 * d, rng, dtype))


def build_stage2_discriminator(config: StackGANConfig, rng: np.random.Generator,
                               dtype: Any) -> TextDiscriminator:  # fmt: skip
    d, c = config.d_channels, config.channels
    encoder = nn.Sequential(
        nn.Conv2d(c, d, 4, 2, 1, rng=rng, dtype=dtype),  # 28 -> 14
        nn.LeakyReLU(0.2),
        nn.Conv2d(d, 2 * d, 4, 2, 1, rng=rng, dtype=dtype),  # 14 -> 7
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * d, 4 * d, 3, 2, 1, rng=rng, dtype=dtype),  # 7 -> 4
        nn.LeakyReLU(0.2),
    )
    return TextDiscriminator(encoder, text_head(config, 4 * d, rng, dtype))


def count_parameters(config: StackGANConfig) -> int:
    """Weights of the four networks, from the config alone (nothing built)."""
    c, z, t, k = config.channels, config.latent_dim, config.text_dim, config.c_dim
    g1, g2, d, n_d = config.g1_channels, config.g2_channels, config.d_channels, config.d_text_dim
    q = config.image_size // 4

    def conv(c_in: int, c_out: int, size: int, bias: bool = True) -> int:
        return c_in * c_out * size * size + (c_out if bias else 0)

    def conv_bn(c_in: int, c_out: int, size: int) -> int:  # no bias; BatchNorm's gamma, beta
        return conv(c_in, c_out, size, bias=False) + 2 * c_out

    ca = (t + 1) * 2 * k
    stage1 = ca + (z + k + 1) * g1 * q * q + 2 * g1 * q * q
    stage1 += conv_bn(g1, g1 // 2, 3) + conv(g1 // 2, c, 3)
    stage2 = conv(c, g2, 3) + conv_bn(g2, 2 * g2, 4) + ca + conv_bn(2 * g2 + k, 2 * g2, 3)
    stage2 += config.residual_blocks * 2 * conv_bn(2 * g2, 2 * g2, 3)
    stage2 += conv_bn(2 * g2, g2, 3) + conv_bn(g2, g2 // 2, 3) + conv(g2 // 2, c, 3)

    def head(features: int) -> int:
        projection = (t + 1) * features if config.d_projection else 0  # v(e): W and b
        compress, logit = (t + 1) * n_d, conv(features, 1, LOGIT_SIDE)
        return compress + conv(features + n_d, features, 3) + logit + projection

    d1 = conv(c, d, 4) + conv(d, 2 * d, 3) + head(2 * d)
    d2 = conv(c, d, 4) + conv(d, 2 * d, 4) + conv(2 * d, 4 * d, 3) + head(4 * d)
    return stage1 + stage2 + d1 + d2


def estimate_memory(config: StackGANConfig, rows: int) -> int:
    """About how many bytes training needs: each parameter's 4 arrays (weights, gradients,
    Adam's two moments; 6 with the moving average's), and for ``rows`` images Stage-II's
    feature maps (the larger stage) times 4 (forward caches, im2col columns, gradients),
    with D's encoder seeing 2 rows per image and its head 3."""
    c, s, g, d = config.channels, config.image_size, config.g2_channels, config.d_channels
    g_maps = (g + 2 * g) * (s // 2) ** 2 + 2 * g * (s // 4) ** 2 * (2 + 2 * config.residual_blocks)
    g_maps += (g + g // 2) * s * s + c * s * s
    d_maps = 2 * (d * (s // 2) ** 2 + 2 * d * (s // 4) ** 2 + 4 * d * 16)
    d_maps += 3 * (4 * d + config.d_text_dim) * 16 * 9
    return 4 * (6 * count_parameters(config) + 4 * rows * (g_maps + d_maps))


# --- the model ------------------------------------------------------------------------------


class StackGAN(Model):
    """Text to image in two stages. Stats (the stage being trained): ``d_loss`` (L_D),
    ``g_loss`` (G's adversarial term), ``kl`` (CA's KL), ``d_real``, ``d_wrong``,
    ``d_fake`` (D's mean probability of "real and matching" for each kind of pair).

    Interface beyond ``Model``'s: ``plan_steps(total)`` before training; ``stage``;
    ``train_step(real, text)``; ``generate(z, text)``; ``generate_stages(z, text)``.
    ``generator`` and ``discriminator`` are ``Pair(stage1=..., stage2=...)``s, and each
    of the four networks has its own Adam (``optimizers``); ``g_optimizer`` and
    ``d_optimizer`` are those of the stage being trained.
    """

    name = "stackgan"
    summary = "text to image in two stages: a 14x14 sketch from the caption, redrawn at 28x28"
    config_class = StackGANConfig
    captioned: ClassVar[bool] = True  # trained on (images, caption embeddings)
    default_epochs = 7  # 4.9 of Stage-I, 2.1 of Stage-II: benchmarks/RESULTS.md, "StackGAN"
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "D's loss: BCE(real, e) + 1/2 [BCE(real, wrong e) + BCE(fake, e)]",
        "g_loss": "G's adversarial loss, BCE(D(G(.), e), 1) (the KL term apart)",
        "kl": "KL(N(mu(e), sigma(e)^2) || N(0, I)) of G's text code, per element",
        "d_real": "D's mean probability for real images with their captions",
        "d_wrong": "D's mean probability for real images with another image's caption",
        "d_fake": "D's mean probability for G's images with their captions",
    }

    def __init__(
        self,
        config: StackGANConfig,
        backend: str | Backend = "numpy",
        seed: int = 0,
        dtype: Any = np.float32,
    ):
        if not isinstance(config, StackGANConfig):
            raise TypeError(f"StackGAN needs a StackGANConfig, got a {type(config).__name__}")
        self.config = config
        self.backend = get_backend(backend)
        self.dtype = np.dtype(dtype)
        G, D = self.build_networks(config, np.random.default_rng(seed), self.dtype)
        self.generator, self.discriminator = G.to(self.backend), D.to(self.backend)
        g_lr = config.lr if config.g_lr is None else config.g_lr
        self.optimizers = {
            f"{player}{stage}_optimizer": Adam(getattr(net, f"stage{stage}").parameters(),
                                               lr=rate, betas=config.betas)
            for stage in (1, 2)
            for player, net, rate in (("g", self.generator, g_lr),
                                      ("d", self.discriminator, config.lr))
        }  # fmt: skip
        self.averages = (
            (EMA(G.stage1, config.ema), EMA(G.stage2, config.ema)) if config.ema else None
        )
        self.generator_ema = None  # Model's single average: here one per stage (averages)
        self.loss = BCEWithLogitsLoss()
        self.total_steps: int | None = None  # plan_steps
        self.stage1_steps: int | None = None
        self.reseed_noise(seed)
        self.steps = 0
        self._g_loss = None

    # --- sizes and networks -----------------------------------------------------------------

    @classmethod
    def config_for_images(
        cls, config: StackGANConfig, shape: tuple[int, int, int]
    ) -> StackGANConfig:
        """``config`` for square images of ``shape`` (channels, size, size): 28 or 32 wide,
        grey or RGB."""
        channels, height, width = shape
        if height != width or height not in IMAGE_SIZES or channels not in CHANNELS:
            raise ValueError(
                f"StackGAN takes square grey or RGB images 28 or 32 pixels wide, got "
                f"{channels}x{height}x{width}"
            )
        return dataclasses.replace(config, channels=channels, image_size=height)

    @classmethod
    def parameter_count(cls, config: StackGANConfig) -> int:
        """Weights of the four networks, from the config alone (``count_parameters``)."""
        return count_parameters(config)

    @classmethod
    def memory_bytes(cls, config: StackGANConfig, rows: int) -> int:
        """About how much memory training needs, in bytes (``estimate_memory``)."""
        return estimate_memory(config, rows)

    def build_networks(
        self, config: StackGANConfig, rng: np.random.Generator, dtype: Any
    ) -> tuple[Pair, Pair]:
        G = Pair(stage1=build_stage1_generator(config, rng, dtype),
                 stage2=build_stage2_generator(config, rng, dtype))  # fmt: skip
        D = Pair(stage1=build_stage1_discriminator(config, rng, dtype),
                 stage2=build_stage2_discriminator(config, rng, dtype))  # fmt: skip
        return dcgan_init(G, rng), D  # G: N(0, 0.02), BatchNorm N(1, 0.02); D: the layers' own

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    @property
    def g_optimizer(self) -> Adam:
        """G's optimizer of the stage being trained."""
        return self.optimizers[f"g{self.stage}_optimizer"]

    @property
    def d_optimizer(self) -> Adam:
        """D's optimizer of the stage being trained."""
        return self.optimizers[f"d{self.stage}_optimizer"]

    # --- the plan: Stage-I, then Stage-II -----------------------------------------------------

    def plan_steps(self, total_steps: int) -> None:
        """The run will take ``total_steps`` steps: Stage-I the first
        round(stage1_share * total_steps), Stage-II the rest."""
        if not (is_integer(total_steps) and total_steps >= 1):
            raise ValueError(
                f"plan_steps: total_steps must be an integer >= 1, got {total_steps!r}"
            )
        self.total_steps = int(total_steps)
        self.stage1_steps = round(self.config.stage1_share * self.total_steps)

    @property
    def stage(self) -> int:
        """The stage the next ``train_step`` trains: 1 until the plan's Stage-I steps are
        done (or while no plan is made), then 2."""
        if self.stage1_steps is None or self.steps < self.stage1_steps:
            return 1
        return 2

    # --- noise and sampling -----------------------------------------------------------------------

    def reseed_noise(self, seed: int) -> None:
        """Restart the noise stream, which draws z and both CAs' eps (the averaged G's too)."""
        self.noise_rng = self.backend.default_rng(seed)
        nets = [self.generator] + [a.averaged for a in self.averages or ()]
        for net in nets:
            for layer in net.modules():
                if isinstance(layer, nn.ConditioningAugmentation):
                    layer.rng = self.noise_rng

    @property
    def samplers(self) -> tuple[nn.Module, nn.Module]:
        """(Stage-I's G, Stage-II's G) that draw samples: the moving averages of their
        weights when ``ema`` > 0, else the live G's."""
        if self.averages is not None:
            return self.averages[0].averaged, self.averages[1].averaged
        return self.generator.stage1, self.generator.stage2

    @property
    def sampler(self) -> nn.Module:
        return self.samplers[1]

    def check_text(self, where: str, text: Any, n: int) -> None:
        check_array(where, text, xp=self.backend.xp, dtype=self.dtype,
                    shape=(n, self.config.text_dim), name="text embeddings")  # fmt: skip

    def sketch(self, z: Any, text: Any) -> Any:
        """Stage-I's image for (z, e), from its sampler in evaluation mode: (n, C, S/2, S/2)."""
        G = self.samplers[0]
        G.eval()
        try:
            return G.forward(z, text)
        finally:
            G.train()

    def generate_stages(self, z: Any, text: Any) -> tuple[Any, Any]:
        """(Stage-I's image (n, C, S/2, S/2), Stage-II's (n, C, S, S)), both in [-1, 1],
        both G's in evaluation mode: Stage-II redraws the very sketch returned beside it
        (each stage draws its own text code, as the paper's)."""
        where = "StackGAN.generate_stages"
        check_array(where, z, xp=self.backend.xp, dtype=self.dtype,
                    shape=("n", self.config.latent_dim), name="z")  # fmt: skip
        self.check_text(where, text, z.shape[0])
        sketch = self.sketch(z, text)
        G = self.samplers[1]
        G.eval()
        try:
            return sketch, G.forward(sketch, text)
        finally:
            G.train()

    def generate(self, z: Any, text: Any) -> Any:  # type: ignore[override]
        """Images (n, C, S, S) in [-1, 1]: Stage-II's once it has begun training, else
        Stage-I's sketch up-sampled by nearest neighbour (the current result either way)."""
        if self.stage1_steps is not None and self.steps > self.stage1_steps:
            return self.generate_stages(z, text)[1]
        check_array("StackGAN.generate", z, xp=self.backend.xp, dtype=self.dtype,
                    shape=("n", self.config.latent_dim), name="z")  # fmt: skip
        self.check_text("StackGAN.generate", text, z.shape[0])
        return upsample_nearest(self.sketch(z, text), 2)

    # --- training ---------------------------------------------------------------------------

    def train_step(self, real: Any, text: Any) -> dict[str, Any]:  # type: ignore[override]
        """One D update, then one G update, of the stage ``stage`` names.

        Args:
            real: real images in [-1, 1], (batch, C, S, S) (Stage-I sees them at S/2).
            text: their captions' embeddings, (batch, text_dim), on the model's backend.

        Returns:
            the model's ``stats``, 0-d arrays on the backend (nothing read back).
        """
        where = "StackGAN.train_step"
        if self.stage1_steps is None:
            raise RuntimeError(
                f"{where}: call plan_steps(total_steps) first: the run's steps are split "
                f"between Stage-I and Stage-II"
            )
        self.check_real(real)
        n = real.shape[0]
        if n < 2:
            raise ValueError(
                f"{where}: a batch of {n} image has no other image's caption: give >= 2"
            )
        self.check_text(where, text, n)
        stage = self.stage
        G = getattr(self.generator, f"stage{stage}")
        D = getattr(self.discriminator, f"stage{stage}")
        z = self.sample_noise(n)
        if stage == 1:
            real = downsample(real)
            fake = G.forward(z, text)
        else:
            fake = G.forward(self.sketch(z, text), text)  # Stage-I frozen, evaluation mode
        stats = self.discriminator_step(D, real, fake, text)
        stats["g_loss"], stats["kl"] = self.generator_step(G, D, fake, text)
        if self.averages is not None:
            self.averages[stage - 1].update()
        self.steps += 1
        return {key: stats[key] for key in self.stats}

    def discriminator_step(
        self, D: TextDiscriminator, real: Any, fake: Any, text: Any
    ) -> dict[str, Any]:  # type: ignore[override]
        """D on L_D: real images with their captions (1), with the next image's (0), and
        G's images with their captions (0), the last two weighted 1/2.

        The encoder runs once over [real; fake]; the head scores [f_real; f_real; f_fake]
        with [e; e'; e], and the real features' gradient is the sum of their two pairs'.
        """
        xp, n = get_array_module(real), real.shape[0]
        wrong = xp.concatenate([text[1:], text[:1]])  # e': image i with caption i + 1
        optimizer = self.d_optimizer
        optimizer.zero_grad()
        features = D.encoder.forward(xp.concatenate([real, fake]))
        f_real, f_fake = features[:n], features[n:]
        scores = D.head.forward(xp.concatenate([f_real, f_real, f_fake]),
                                xp.concatenate([text, wrong, text]))  # fmt: skip
        grad = xp.empty_like(scores)
        loss, rows = self.loss, (slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n))
        err_real = loss.forward(scores[rows[0]], 1.0)
        grad[rows[0]] = loss.backward()
        err_wrong = loss.forward(scores[rows[1]], 0.0)
        grad[rows[1]] = 0.5 * loss.backward()
        err_fake = loss.forward(scores[rows[2]], 0.0)
        grad[rows[2]] = 0.5 * loss.backward()
        d_features = D.head.backward(grad)
        d_real = d_features[rows[0]] + d_features[rows[1]]  # f_real fed two pairs
        D.encoder.backward(xp.concatenate([d_real, d_features[rows[2]]]), input_grad=False)
        optimizer.step()
        probs = nn.sigmoid(scores)
        return {
            "d_loss": xp.asarray(err_real + 0.5 * (err_wrong + err_fake)),
            "d_real": xp.asarray(probs[rows[0]].mean()),
            "d_wrong": xp.asarray(probs[rows[1]].mean()),
            "d_fake": xp.asarray(probs[rows[2]].mean()),
        }

    def generator_step(
        self, G: nn.Module, D: TextDiscriminator, fake: Any, text: Any
    ) -> tuple[Any, Any]:  # type: ignore[override]
        """G and its CA on L_G = BCE(D(fake, e), 1) + kl_weight * KL, through the frozen D
        (just updated); G's forward caches for ``fake`` are still valid."""
        xp = get_array_module(fake)
        with frozen(D):
            g_loss = self.loss.forward(D.forward(fake, text), 1.0)
            d_fake = D.backward(self.loss.backward())
        optimizer = self.g_optimizer
        optimizer.zero_grad()
        G.backward(d_fake, input_grad=False)  # CA's backward adds kl_weight * dKL
        optimizer.step()
        return xp.asarray(g_loss), xp.asarray(G.ca.kl())

    # --- saving and loading -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Name, the four networks (``generator`` and ``discriminator``, each a pair), their
        four optimizers, ``steps``, the plan, and the moving averages when kept."""
        state = {
            "model": self.name,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            **{key: opt.state_dict() for key, opt in self.optimizers.items()},
            "steps": self.steps,
            "plan": {"total_steps": self.total_steps, "stage1_steps": self.stage1_steps},
        }
        if self.averages is not None:
            state["generator_ema"] = {
                f"stage{i + 1}": average.state_dict() for i, average in enumerate(self.averages)
            }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a ``state_dict()``: all of it, or, if any part does not fit, none of it."""
        where = "StackGAN.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{where}: expected a dict, got {type(state).__name__}")
        if "model" not in state:
            raise KeyError(f"{where}: the state has no ['model']")
        if state["model"] != self.name:
            saved = state["model"]
            raise ValueError(
                f"{where}: this state was saved by a {saved!r} model, not {self.name!r}; "
                f"load it into a {saved!r} model (the model it was trained as)"
            )
        parts = [(self.generator, "generator"), (self.discriminator, "discriminator")]
        parts += [(opt, key) for key, opt in self.optimizers.items()]
        if self.averages is not None:
            parts += [(a, f"stage{i + 1}") for i, a in enumerate(self.averages)]
            if not isinstance(state.get("generator_ema"), dict):
                raise KeyError(f"{where}: the state has no ['generator_ema'] (this model keeps "
                               f"moving averages: ema={self.config.ema})")  # fmt: skip
        elif "generator_ema" in state:
            raise ValueError(
                f"{where}: this state holds averaged generators, and this model keeps none "
                f"(its config has ema=0); load it into a model built with the config it was "
                f"saved with"
            )
        averaged = state.get("generator_ema", {})
        missing = [key for part, key in parts if key not in state and key not in averaged]
        missing += [key for key in ("steps", "plan") if key not in state]
        if missing:
            raise KeyError(f"{where}: the state has no {missing}")
        plan, steps = state["plan"], state["steps"]
        if not isinstance(plan, dict) or set(plan) != {"total_steps", "stage1_steps"}:
            raise ValueError(f"{where}: the plan must be a dict of total_steps and stage1_steps")
        total, first = plan["total_steps"], plan["stage1_steps"]
        unplanned = total is None and first is None
        planned = is_integer(total) and is_integer(first) and 0 <= first <= total and total >= 1
        if not (is_integer(steps) and steps >= 0 and (unplanned or planned)):
            raise ValueError(f"{where}: steps {steps!r} or plan {plan!r} is not a step count")
        backups = []
        try:
            for part, key in parts:
                backup = part.state_dict()
                part.load_state_dict(averaged[key] if key.startswith("stage") else state[key])
                backups.append((part, backup))
        except Exception:
            for part, backup in backups:
                part.load_state_dict(backup)
            raise
        self.steps = int(steps)
        self.total_steps = None if total is None else int(total)
        self.stage1_steps = None if first is None else int(first)

    def sample_noise(self, n: int) -> Any:
        """z ~ N(0, I), (n, latent_dim), from the noise stream (Stage-I's input)."""
        check_count("StackGAN.sample_noise", n, "noise vectors")
        return self.noise_rng.standard_normal((n, self.config.latent_dim), dtype=self.dtype)
