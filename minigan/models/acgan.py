"""ACGAN (Odena, Olah & Shlens, 2017): the discriminator also names the digit.

G draws the digit it is asked for, G(z, y') (its networks: below). D is not told the
label; instead it answers questions about every image, from one network with several
linear heads:

    D(x) -> (s, c, c_mi):   s = logit of "real",  c = 10 class logits,
                            c_mi = 10 more class logits (the twin classifier)

    D step:  minimise  BCE(s(x), 1) + BCE(s(G(z, y')), 0)      the source: real or fake?
                     + CE(c(x), y)                             c names REAL digits
                     + CE(c_mi(G(z, y')), y')                  c_mi names G's digits
    G step:  minimise  BCE(s(G(z, y')), 1)                     look real,
                     + CE(c(G(z, y')), y')                     look like the asked digit
                     - lambda CE(c_mi(G(z, y')), y')           ... without making it easy

with (x, y) a real image and its label, y' drawn uniformly from 0-9, lambda =
``twin_weight`` = 0.5. This is the twin-classifier ACGAN (TAC-GAN; Gong et al.,
2019, who use lambda = 1), ``classifier="twin"``, the default. The 2017 paper's
ACGAN, ``classifier="paper"``, has no c_mi and trains c on both halves,
CE(c(x), y) + CE(c(G(z, y')), y'), and G has no third term.

What differs from ``cgan.py``, and why:

- **D classifies instead of being told.** A CGAN's D can learn to judge the image
  alone and ignore the label input; an ACGAN's D must predict the label, so its
  features are made to separate digits, and G gets a direct gradient saying "make
  this more of a 7": CE(c(G(z, 7)), 7).

Why not the paper's recipe: it trains c on G's images too, labelled with the digit
G was asked for. Then D gains by reading whatever G writes into its images for
"6", whether or not it looks like a 6, and G gains by writing it: the two agree on
a code, and G's rows need not be their digits.

Training c on real digits only (``classifier="real"``) removes the code: c is
then an honest digit classifier and G must satisfy it. But G's class term alone,
E[-log c(y' | G(z, y'))], is the divergence of G's label posterior from the data's
PLUS the entropy of G's label posterior (Gong et al., section 3): minimising it also
pushes every sample to where c is most certain, towards a few typical images per digit.

The twin c_mi cancels that entropy term: trained on G's images, it estimates G's
own label posterior, so -E[-log c_mi(y' | G(z, y'))] in G's loss is minus that
entropy, and what remains for G is to match its label posterior to the real one.
(``cgan.py``'s D reads the label by projection for a kindred reason: D must not be
free to ignore the digit, nor, here, to learn G's private code for it.)

Why lambda = 0.5, not 1: minus c_mi's CE rewards G for making its digits hard to
tell apart, and the pairs that look alike (9 and 7, 4 and 9) are where that pays;
half the weight keeps most of the correction and less of that pull. What each
recipe drew: benchmarks/RESULTS.md, "The GAN family on MNIST".

Why samples come from an average of G's weights (``ema`` = 0.999, ``minigan/ema.py``;
Yazici et al., 2019), which neither paper does: a GAN's G does not settle on a point,
it circles one, and ACGAN's circles show as specks and broken strokes. Part of G's
loss is the input gradient of a classifier, c, that never sees G's images: it names
the pixels that would make c surer of the digit, and a classifier's input gradient
is spread over single pixels (the directions of adversarial examples: Szegedy et
al., 2014; Goodfellow et al., 2015). A real-or-fake judge pushes back on such pixels
only after G has drawn them, so the G of any one step carries that step's pushes;
they change from step to step. (CGAN's live G speckles too, less: its D reads the
label by projection, a term trained on G's images, as a judge; CGAN shares the
average through ``ConditionalConfig``.) An average of G over about the last
1000 updates cancels what changes and keeps what stays: the digits G has learned.
Training is untouched: D and G learn exactly as the papers' do; the average is a
copy of G that only follows, and draws every sample (as the vanilla GAN's default).

The networks (``arch="conv"``, the default) are the paper's kind: ACGAN is a DCGAN
with a class head, and the common reference code for MNIST (Keras's example
``mnist_acgan.py``, by L. de Oliveira, built to the paper's CIFAR networks) is
convolutional throughout:

    G   z * embed(y') -> Linear -> 4DIM x 4 x 4, BatchNorm, ReLU
        -> ConvT 5x5/2 -> 2DIM x 7 x 7, BatchNorm, ReLU
        -> ConvT 5x5/2 -> DIM x 14 x 14, BatchNorm, ReLU
        -> ConvT 5x5/2 -> 1 x 28 x 28, Tanh            (``convnets.build_generator``)
    D   x -> Conv 5x5/2 -> DIM x 14 x 14, LeakyReLU(0.2), [Dropout(p)]
          -> Conv 5x5/2 -> 2DIM x 7 x 7, LeakyReLU(0.2), [Dropout(p)]
          -> Conv 5x5/2 -> 4DIM x 4 x 4, LeakyReLU(0.2), [Dropout(p)]
          -> Linear -> (s, c, c_mi)                     (``conv_discriminator``)

with DIM = ``base_channels`` = 16. A convolution's weights are shared over the image, so
the gradient D hands G is made of smooth, stroke-sized patterns rather than of single
pixels, and G's transposed convolutions draw strokes from neighbouring units: what an
MLP's G could only learn pixel by pixel. ``arch="mlp"`` keeps the MLPs of ``cgan.py``
(two hidden layers of ``hidden`` units, G fed [z | embed(y')]).

G is told the digit as that code tells it: z times a learned vector per digit, as long
as z (``conditional.ConditionalProduct``). Every input of G is then some z_j scaled by
the digit's e_j, so G cannot set z aside. Fed [z | embed(y')] instead, a G of
convolutions can weigh z down to nothing and draw one image per digit: its class term,
CE(c(G(z, y')), y'), is smallest at each digit's most typical image, and a real/fake
head that shares D's features with the class heads is slow to object. (The MLPs keep
[z | embed(y')]: an MLP G trained with them kept drawing varied digits.)

Departures from that code, each for the CPU time a run may take (measured:
benchmarks/RESULTS.md, "The family through the convolutional classifier"):

- Three 5x5 stride-2 convolutions of 16, 32, 64 maps in D (WGAN-GP's MNIST critic,
  ``convnets.py``) where the Keras D has four 3x3 ones of 32-256 maps, two of them
  stride 1, and G's maps narrower to match (384, 192, 96 there): about a tenth of the
  arithmetic per step.
- No dropout in D (``d_dropout`` 0; the Keras D's is 0.3): a D this small learns its
  real/fake head slowly enough without it, and G learns only as fast as D tells it.
- Batches of 32 and a rate of 4e-4 for both players (the Keras code: 100 and 2e-4, over
  50-100 epochs): an epoch costs about the same, makes three times the steps, each
  twice as long, so that a few epochs on a CPU train G as far (DCGAN's choice here too).
- D's last layer is one linear head for s, c and c_mi (below), where the Keras D has a
  sigmoid head and a softmax head: the same functions, as logits.

Mechanics: one linear head of 21 outputs (11 for the paper's), split: column 0 is s,
columns 1-10 are c, 11-20 are c_mi. Backward joins the heads' gradients side by
side into one (2n, 21) array, each term's in its own rows and columns, zeros
elsewhere, and one backward pass through D carries them all. Both halves (real,
fake) go through D stacked in one pass (as ``GAN.discriminator_step_stacked``): D's
loss is the mean over the 2n rows, half of the sums above (each CE is over n rows).
BCE on logits, Adam (4e-4, (0.5, 0.999)), real_label 0.9 (one-sided smoothing, as the
project's GAN default; the Keras code trains real images towards 0.95). The MLPs'
recipe until the convolutions: ``arch="mlp"``, ``lr`` 2e-4 and batches of 100 (the
paper's), ``d_dropout`` 0, 30 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from minigan import nn
from minigan.backend import get_array_module
from minigan.losses import BCEWithLogitsLoss, CrossEntropyLoss
from minigan.models.base import option
from minigan.models.conditional import (
    NUM_CLASSES,
    ConditionalConfig,
    ConditionalMLP,
    ConditionalModel,
    accuracy,
    conditional_generator,
    conv_features,
    conv_width,
)
from minigan.models.mlp import build_discriminator
from minigan.optim import Adam

CLASSIFIERS = ("twin", "real", "paper")
# D's output columns: s, c, c_mi (the twin's: present with classifier="twin").
SOURCE, CLASSES, TWIN = slice(0, 1), slice(1, 1 + NUM_CLASSES), slice(1 + NUM_CLASSES, None)


@dataclass
class ACGANConfig(ConditionalConfig):
    """An ACGAN: the conditional models' recipe, and how D's classifier learns."""

    classifier: str = option(
        "twin",
        "how D's classifier learns: 'twin' (c on real digits, a twin c_mi on G's: Gong et "
        "al. 2019), 'real' (c on real digits only) or 'paper' (c on real and G's digits "
        "alike: Odena et al. 2017)",
        choices=CLASSIFIERS,
    )
    twin_weight: float = option(
        0.5, "lambda, the weight of minus the twin's CE in G's loss (classifier 'twin')"
    )
    d_dropout: float = option(
        0.0,
        "drop each of D's hidden values with probability P in training (Dropout after "
        "each LeakyReLU; the Keras reference's D: 0.3); 0 for none",
        metavar="P",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.d_dropout < 1:
            raise ValueError(f"d_dropout must lie in [0, 1) (0: none), got {self.d_dropout}")
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")
        if not 0 <= self.twin_weight <= 1:
            raise ValueError(f"twin_weight must lie in [0, 1], got {self.twin_weight}")


def head_width(config: ACGANConfig) -> int:
    """D's outputs: s and c, and c_mi for the twin."""
    return 1 + NUM_CLASSES * (2 if config.classifier == "twin" else 1)


def conv_discriminator(config: ACGANConfig, rng: np.random.Generator, dtype: Any) -> nn.Sequential:
    """images (batch, image_size) -> (batch, head_width): strided convolutions, one linear head.

    ``conditional.conv_features`` (``convnets.py``'s critic: three 5x5 stride-2
    convolutions, DIM, 2DIM, 4DIM maps, LeakyReLU(0.2), no BatchNorm) with Dropout after
    each LeakyReLU, as the paper's D, and a head of s, c (and c_mi) in place of the
    critic's one score.
    """
    features = conv_features(config, rng, dtype, dropout=config.d_dropout)
    head = nn.Linear(conv_width(config), head_width(config), rng=rng, dtype=dtype)
    return nn.Sequential(*features, head)


class ACGAN(ConditionalModel):
    """G(z, y) and a D with a real/fake head and class heads.

    Stats: ``d_loss`` (D's loss, see the module docstring), ``g_loss``, ``d_real``,
    ``d_fake`` (mean probability of "real"), ``d_class_acc`` (c's accuracy on the
    real images' labels).
    """

    summary = "D also classifies the digit (c on real digits, a twin on G's)"
    name = "acgan"
    default_epochs = 6  # benchmarks/RESULTS.md, "The family through the convolutional classifier"
    config_class = ACGANConfig
    stats: ClassVar[dict[str, str]] = {
        "d_loss": "D loss: BCE (source) + CE (classes), mean over real and fake",
        "g_loss": "G loss: BCE (look real) + CE (look like the asked digit) - CE (twin)",
        "d_real": "mean D(x) of the source head, a probability",
        "d_fake": "mean D(G(z, y')) of the source head, a probability",
        "d_class_acc": "D's class accuracy on the real batch",
    }

    def __init__(
        self, config: ACGANConfig, backend: Any = "numpy", seed: int = 0, dtype: Any = np.float32
    ):
        super().__init__(config, backend, seed, dtype)
        self.source_loss = BCEWithLogitsLoss()
        # Real labels were range-checked where they were loaded, fake ones drawn in
        # range: no read-back in the step (see conditional.py).
        self.class_loss = CrossEntropyLoss(check_range=False)

    def build_networks(
        self, config: ACGANConfig, rng: np.random.Generator, dtype: Any
    ) -> tuple[ConditionalMLP, nn.Sequential]:
        G = conditional_generator(config, rng, dtype)  # conv: z * embed(y), BatchNorm
        if config.arch == "conv":
            return G, conv_discriminator(config, rng, dtype)
        D = build_discriminator(
            config, rng, dtype, outputs=head_width(config), dropout=config.d_dropout
        )
        return G, D

    @classmethod
    def conv_head_parameters(cls, config: ACGANConfig) -> int:
        """The class heads beside s: (features + 1) weights each."""
        return (conv_width(config) + 1) * (head_width(config) - 1)

    def make_optimizer(self, params: list[nn.Parameter]) -> Adam:
        return Adam(params, lr=self.config.lr, betas=self.config.betas)

    def class_term(self, outputs: Any, grad: Any, rows: slice, cols: slice, labels: Any) -> Any:
        """CE of ``outputs[rows, cols]`` against ``labels`` (mean over those rows), its
        gradient written into the same block of ``grad``: the other entries stay as they were."""
        loss = self.class_loss.forward(outputs[rows, cols], labels)
        grad[rows, cols] = self.class_loss.backward()
        return loss

    def discriminator_step(
        self, real: Any, labels: Any, fake: Any, fake_labels: Any
    ) -> dict[str, Any]:
        """minimise the source BCE and the classifiers' CEs, real and fake stacked in one pass."""
        xp = get_array_module(real)
        n = real.shape[0]
        outputs = self.discriminator.forward(xp.concatenate([real, fake]))
        targets = xp.zeros((2 * n, 1), dtype=self.dtype)
        targets[:n] = self.config.real_label
        grad = xp.zeros_like(outputs)
        real_rows, fake_rows = slice(0, n), slice(n, 2 * n)
        s_loss = self.source_loss.forward(outputs[:, SOURCE], targets)  # mean over 2n
        grad[:, SOURCE] = self.source_loss.backward()
        c_loss = self.class_term(outputs, grad, real_rows, CLASSES, labels)  # c: real digits
        if self.config.classifier == "paper":  # ... and G's, by the label G was given
            c_loss = c_loss + self.class_term(outputs, grad, fake_rows, CLASSES, fake_labels)
        if self.config.classifier == "twin":  # c_mi names G's digits
            c_loss = c_loss + self.class_term(outputs, grad, fake_rows, TWIN, fake_labels)
        grad[:, CLASSES.start :] /= 2  # each CE is a mean over n rows; the BCE, over 2n
        self.update_discriminator(grad)
        probs = nn.sigmoid(outputs[:, 0])
        return {
            "d_loss": xp.asarray(s_loss + c_loss / 2),
            "d_real": xp.asarray(probs[:n].mean()),
            "d_fake": xp.asarray(probs[n:].mean()),
            "d_class_acc": accuracy(outputs[:n, CLASSES], labels, self.dtype),
        }

    def generator_step(self, fake: Any, fake_labels: Any) -> Any:
        """minimise BCE(s(G), 1) + CE(c(G), y') [- CE(c_mi(G), y')], through the frozen D."""
        xp = get_array_module(fake)
        outputs = self.discriminator.forward(fake)  # D after its own update
        grad = xp.zeros_like(outputs)
        every = slice(None)
        g_loss = self.source_loss.forward(outputs[:, SOURCE], 1.0)
        grad[:, SOURCE] = self.source_loss.backward()
        g_loss = g_loss + self.class_term(outputs, grad, every, CLASSES, fake_labels)
        if self.config.classifier == "twin":  # minus the twin's CE: its gradient, negated
            w = self.config.twin_weight
            g_loss = g_loss - w * self.class_term(outputs, grad, every, TWIN, fake_labels)
            grad[:, TWIN] *= -w
        self.update_generator(grad)
        return xp.asarray(g_loss)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """``Model.load_state_dict``, refusing first, by name, a D of another head width."""
        saved = state.get("discriminator") if isinstance(state, dict) else None
        head = f"{len(self.discriminator.layers) - 1}.bias"  # the last layer: the heads
        if isinstance(saved, dict) and state.get("model") == self.name and head in saved:
            width, wanted = len(saved[head]), head_width(self.config)
            if width != wanted:
                kinds = "'twin'" if width == 1 + 2 * NUM_CLASSES else "'paper' or 'real'"
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: this state's D has {width} "
                    f"outputs (classifier {kinds}), this ACGAN's {wanted} (classifier "
                    f"{self.config.classifier!r}); build it with a matching classifier"
                )
        super().load_state_dict(state)
