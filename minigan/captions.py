"""Captions for MNIST and Fashion-MNIST, measured from each image, and a fixed text encoder.

StackGAN (Zhang et al. 2017) draws an image from a sentence. MNIST has no sentences, so
this module writes one per image, naming its class and attributes measured from its
pixels, cut into equally frequent bins:

    MNIST           "a thick right-slanted seven", "a thin upright two"
    Fashion-MNIST   "a dark ankle boot", "a light pullover"

**Thickness: ink per stroke length (the pen's width), not ink mass.** A stroke of length
L and width w covers about L w pixels and has a boundary about 2 L long, so

    w = 2 * ink / boundary          ink = sum of intensities (in [0, 1])
                                    boundary = sum over pixels of |grad x| (total variation)

The total variation of a soft-edged stroke is its boundary's length (each edge profile
rises from 0 to 1 once, wherever its gradient is spread), so w is in pixels. Ink mass
alone measures mostly WHICH digit it is and how big it is drawn (a one has half the ink
of an eight drawn with the same pen); the width varies far less from digit to digit
(figures in benchmarks/RESULTS.md), so a "thick one" and a "thick eight" both exist,
and "thick" needs no label to be measured on a generated image.

**Slant: the shear of the ink's second moments**, as classic deskewing measures it. With
row r (downwards) and column c, the image's intensities as weights, and its centroid
(r0, c0):

    mu11 = E[(r - r0)(c - c0)],  mu02 = E[(r - r0)^2],  slant = -mu11 / mu02

the inverse slope of the ink's principal direction (columns moved per row upwards): 0 for
an upright digit, > 0 for one whose top leans right (deskewing shears each row by
mu11 / mu02 to undo it; the sign flips because rows count downwards).

**Tone (Fashion-MNIST): the mean intensity over the garment's silhouette** (the pixels
above 0.1), i.e. ink mass per silhouette area, as the image shows it: "light" is bright in
the picture (Fashion-MNIST negated its product photographs, so a light item here was a
dark product). Ink mass alone would again measure size (a bag against a sandal).

**Bins**: each attribute is cut at its 1/3 and 2/3 quantiles over the training images
(``CaptionScheme.fit``), one set of cuts for every class, so each word is about equally
frequent overall and means the same measured range for every class; the cut points are
stored (``to_dict``/``from_dict``) so a checkpoint bins its samples as it was trained.
The same ``bins``/``thickness_bin`` functions bin generated images, which is how "the
share of samples falling in their caption's thickness bin" is measured; ``bin_agreement``
prints it beside the share for shuffled captions (the chance baseline).

**The text encoder is fixed random word vectors** (``encode``): each word of
``VOCABULARY`` gets a vector drawn once from N(0, I / dim) by a seeded generator, and a
caption's embedding is the mean of its words' vectors (articles skipped). Why:

- StackGAN's encoder is fixed too (a char-CNN-RNN pretrained on the captions, then
  frozen); a fixed encoder keeps D and G from shaping the text space to suit themselves;
- no pretrained encoder exists for these captions, and learning one with the model would
  add an encoder's gradient path to the GAN for words that mean only a bin or a class;
- with dim >= len(VOCABULARY) the vectors are linearly independent (almost surely), so
  the mean of a caption's words determines the words: nothing is lost, and Conditioning
  Augmentation's fully connected layer can read any word's direction out of it;
- a caption that names fewer attributes ("a thin seven") still has an embedding.

The model takes embeddings as input; ``CaptionScheme.embed(labels, bins, dim, seed)``
computes the embeddings of a batch's captions without writing them out as text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from minigan.backend import to_host

ARTICLES = ("a", "an")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CLOTHES_WORDS = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
THICKNESS_WORDS = ("thin", "medium", "thick")
SLANT_WORDS = ("left-slanted", "upright", "right-slanted")
TONE_WORDS = ("dark", "grey", "light")

# Every word of every scheme, in a fixed order: a word's index is its token id (and its
# row of ``word_vectors``), so ids and vectors never depend on which scheme is in use.
VOCABULARY: tuple[str, ...] = (
    ARTICLES + DIGIT_WORDS + THICKNESS_WORDS + SLANT_WORDS + CLOTHES_WORDS + TONE_WORDS
)
TOKEN_IDS = {word: i for i, word in enumerate(VOCABULARY)}
_PHRASES = {tuple(w.split()): w for w in VOCABULARY if " " in w}  # ("ankle", "boot")

SILHOUETTE = 0.1  # a Fashion-MNIST pixel above this intensity (of 1) belongs to the item
QUANTILES = (1 / 3, 2 / 3)  # three equally frequent bins
CHUNK = 4096  # images measured at a time


# --- measuring images ---------------------------------------------------------------------


def _layout(images: Any) -> np.ndarray:
    """``images`` on the host as (N, H, W), in their own dtype."""
    x = np.asarray(to_host(images))
    if x.ndim == 2 and x.shape[1] == 784:
        x = x.reshape(-1, 28, 28)
    elif x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(
            f"captions: expected images (N, H, W), (N, 1, H, W) or (N, 784), got {x.shape}"
        )
    return x


def unit_images(images: Any, gan_range: bool = False) -> np.ndarray:
    """Images as float64 (N, H, W) intensities in [0, 1].

    Args:
        images: uint8 (0..255), or floats in [0, 1], or with ``gan_range`` floats in
            [-1, 1] (a generator's tanh output); shaped (N, H, W), (N, 1, H, W) or
            (N, 784) (28x28 flattened); NumPy or CuPy (copied to the host).
    """
    x = _layout(images)
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"captions: images must be uint8 or floating-point, got {x.dtype}")
    x = x.astype(np.float64)
    if gan_range:
        x = (x + 1) / 2
    if x.size and (x.min() < -0.01 or x.max() > 1.01):
        hint = "" if gan_range else "; pass gan_range=True for a generator's output in [-1, 1]"
        raise ValueError(
            f"captions: float images must lie in [0, 1], got [{x.min():.3g}, {x.max():.3g}]{hint}"
        )
    return x


def stroke_width(x: np.ndarray) -> np.ndarray:
    """Ink per stroke length, 2 * ink / total variation, in pixels (0 for a blank image);
    ``x``: (N, H, W) in [0, 1]."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))  # the outside is blank: edges at the border count
    d_col = p[:, :-1, 1:] - p[:, :-1, :-1]
    d_row = p[:, 1:, :-1] - p[:, :-1, :-1]
    boundary = np.sqrt(d_col**2 + d_row**2).sum(axis=(1, 2))
    ink = x.sum(axis=(1, 2))
    return np.divide(2 * ink, boundary, out=np.zeros_like(ink), where=boundary > 1e-12)


def shear(x: np.ndarray) -> np.ndarray:
    """-mu11 / mu02 of the ink (> 0: the top leans right; 0 for a blank image)."""
    ink = x.sum(axis=(1, 2))
    safe = np.where(ink > 1e-12, ink, 1.0)
    rows = np.arange(x.shape[1], dtype=np.float64)[None, :, None]
    cols = np.arange(x.shape[2], dtype=np.float64)[None, None, :]
    r = rows - ((x * rows).sum(axis=(1, 2)) / safe)[:, None, None]
    c = cols - ((x * cols).sum(axis=(1, 2)) / safe)[:, None, None]
    mu11 = (x * r * c).sum(axis=(1, 2)) / safe
    mu02 = (x * r * r).sum(axis=(1, 2)) / safe
    return np.divide(-mu11, mu02, out=np.zeros_like(mu11), where=mu02 > 1e-12)


def tone(x: np.ndarray) -> np.ndarray:
    """Mean intensity over the silhouette (pixels > SILHOUETTE); 0 for a blank image."""
    inside = x > SILHOUETTE
    area = inside.sum(axis=(1, 2))
    ink = (x * inside).sum(axis=(1, 2))
    return np.divide(ink, area, out=np.zeros_like(ink), where=area > 0)


def measure(images: Any, gan_range: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's two attributes of each image: ``(thickness, slant)``, float64 (N,) each.

    thickness: the stroke width in pixels (2 * ink / boundary); slant: -mu11 / mu02
    (module docstring). ``images`` as ``unit_images`` takes them.
    """
    return _chunked(images, gan_range, lambda x: (stroke_width(x), shear(x)))


def _chunked(images: Any, gan_range: bool, fn: Any) -> tuple[np.ndarray, ...]:
    """``fn(unit_images(chunk))`` over chunks of CHUNK images, the results concatenated:
    float64 copies of 60 000 images at once would take hundreds of megabytes."""
    x = _layout(images)
    parts = [fn(unit_images(x[i : i + CHUNK], gan_range)) for i in range(0, max(len(x), 1), CHUNK)]
    return tuple(np.concatenate(values) for values in zip(*parts, strict=True))


# --- words ----------------------------------------------------------------------------------


def _scan(text: str) -> tuple[list[str], str | None]:
    """(the known words of ``text``, lower-cased, two-word names joined; its first unknown
    word, or None)."""
    words, out, i = text.lower().split(), [], 0
    while i < len(words):
        pair = tuple(words[i : i + 2])
        if pair in _PHRASES:
            out.append(_PHRASES[pair])
            i += 2
            continue
        if words[i] not in TOKEN_IDS:
            return out, words[i]
        out.append(words[i])
        i += 1
    return out, None


def tokens(text: str) -> list[str]:
    """The caption's words, lower-cased, two-word names joined (``"ankle boot"``).

    Raises ValueError (one line) for an empty caption or a word not in ``VOCABULARY``.
    """
    if not isinstance(text, str):
        raise TypeError(f"caption must be a string, got {type(text).__name__}")
    words, unknown = _scan(text)
    known = f"known words: {', '.join(VOCABULARY)}"
    if not words and unknown is None:
        raise ValueError(f"empty caption; {known}")
    if unknown is not None:
        raise ValueError(f"unknown word {unknown!r}; {known}")
    return words


def token_ids(text: str) -> list[int]:
    """The caption's words as indices into ``VOCABULARY``."""
    return [TOKEN_IDS[w] for w in tokens(text)]


def word_vectors(dim: int, seed: int = 0) -> np.ndarray:
    """One fixed vector per word of ``VOCABULARY``: float32 (len(VOCABULARY), dim), each
    entry N(0, 1 / dim), so a vector's length is about 1."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"encode: dim must be an integer >= 1, got {dim!r}")
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((len(VOCABULARY), dim)) / np.sqrt(dim)).astype(np.float32)


def encode(texts: Sequence[str] | Sequence[Sequence[int]], dim: int, seed: int = 0) -> np.ndarray:
    """Captions' embeddings: the mean of their words' fixed vectors, articles skipped.

    Args:
        texts: captions (strings), or each caption's token ids (indices into VOCABULARY).
        dim: the embedding's length (>= len(VOCABULARY) keeps every word's direction).
        seed: seeds the word vectors: the same seed, the same encoder.

    Returns:
        float32 (N, dim), on the host.
    """
    vectors = word_vectors(dim, seed)
    skip = {TOKEN_IDS[a] for a in ARTICLES}
    out = np.empty((len(texts), dim), np.float32)
    for n, text in enumerate(texts):
        ids = token_ids(text) if isinstance(text, str) else [int(i) for i in text]
        if any(not 0 <= i < len(VOCABULARY) for i in ids):
            raise ValueError(f"encode: token ids must lie in [0, {len(VOCABULARY)}), got {ids}")
        content = [i for i in ids if i not in skip]
        if not content:
            raise ValueError(
                f"caption {text!r} names nothing; known words: {', '.join(VOCABULARY)}"
            )
        out[n] = vectors[content].mean(axis=0)
    return out


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# --- the schemes -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CaptionScheme:
    """How one data set's images are captioned: class words, attributes, and fitted cuts.

    Attributes:
        name: ``"mnist"`` or ``"fashion"``.
        class_words: the word (or two) for each label.
        attributes: the attributes' names, in caption order: ``("thickness", "slant")``
            for MNIST, ``("tone",)`` for Fashion-MNIST.
        words: for each attribute, its bins' words from the lowest values to the highest.
        cuts: for each attribute, the cut points (len(words) - 1 of them, increasing):
            a value v falls in bin ``searchsorted(cuts, v, side="right")``.
    """

    name: str
    class_words: tuple[str, ...]
    attributes: tuple[str, ...]
    words: tuple[tuple[str, ...], ...]
    cuts: tuple[tuple[float, ...], ...]

    LAYOUTS: ClassVar[dict[str, Any]] = {  # name -> (class words, attribute names, their words)
        "mnist": (DIGIT_WORDS, ("thickness", "slant"), (THICKNESS_WORDS, SLANT_WORDS)),
        "fashion": (CLOTHES_WORDS, ("tone",), (TONE_WORDS,)),
    }

    @classmethod
    def fit(cls, name: str, images: Any, gan_range: bool = False) -> CaptionScheme:
        """Cut each attribute at the 1/3 and 2/3 quantiles of ``images`` (the training set;
        ``gan_range``: floats in [-1, 1], as ``unit_images``)."""
        if name not in cls.LAYOUTS:
            raise ValueError(f"unknown caption scheme {name!r}; known: {', '.join(cls.LAYOUTS)}")
        class_words, attributes, words = cls.LAYOUTS[name]
        values = _chunked(images, gan_range, lambda x: _measure(name, x))
        cuts = tuple(tuple(float(q) for q in np.quantile(v, QUANTILES)) for v in values)
        return cls(name, class_words, attributes, words, cuts)

    @classmethod
    def from_training_set(
        cls, name: str, root: str | None = None, download: bool = True
    ) -> CaptionScheme:
        """``fit`` on the data set's 60 000 training images (``minigan.data``'s loaders)."""
        from minigan.data import load_fashion_mnist, load_mnist

        if name not in cls.LAYOUTS:
            raise ValueError(f"unknown caption scheme {name!r}; known: {', '.join(cls.LAYOUTS)}")
        load = load_mnist if name == "mnist" else load_fashion_mnist
        return cls.fit(name, load("train", root, download)[0])

    def to_dict(self) -> dict[str, Any]:
        """The scheme's name and cut points (what a checkpoint keeps)."""
        return {"name": self.name, "cuts": [list(c) for c in self.cuts]}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CaptionScheme:
        class_words, attributes, words = cls.LAYOUTS[state["name"]]
        cuts = tuple(tuple(float(q) for q in c) for c in state["cuts"])
        return cls(state["name"], class_words, attributes, words, cuts)

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The words this scheme's captions use (a subset of ``VOCABULARY``)."""
        return ARTICLES + tuple(w for ws in self.words for w in ws) + self.class_words

    def measure(self, images: Any, gan_range: bool = False) -> tuple[np.ndarray, ...]:
        """Each attribute's value per image: float64 (N,) arrays, in ``attributes`` order."""
        return _chunked(images, gan_range, lambda x: _measure(self.name, x))

    def bins(self, images: Any, gan_range: bool = False) -> np.ndarray:
        """Each image's bin of each attribute: int64 (N, len(attributes))."""
        values = self.measure(images, gan_range)
        return np.stack(
            [np.searchsorted(c, v, side="right") for c, v in zip(self.cuts, values, strict=True)],
            axis=1,
        )

    def thickness_bin(self, images: Any, gan_range: bool = False) -> np.ndarray:
        """The first attribute's bin (thickness on MNIST, tone on Fashion-MNIST): int64 (N,)."""
        first = stroke_width if self.name == "mnist" else tone
        (value,) = _chunked(images, gan_range, lambda x: (first(x),))
        return np.searchsorted(self.cuts[0], value, side="right")

    def caption(self, label: int, *bins: int | None) -> str:
        """``caption(7, 2, 1)`` -> "a thick upright seven"; a None bin leaves its word out."""
        if not 0 <= int(label) < len(self.class_words):
            raise ValueError(f"label must lie in [0, {len(self.class_words)}), got {label}")
        if any(b is not None for b in bins[len(self.attributes) :]):
            raise ValueError(
                f"{self.name} captions have {len(self.attributes)} attribute(s): "
                f"{', '.join(self.attributes)}; got bins {bins}"
            )
        words = []
        for words_of, b in zip(self.words, bins):
            if b is None:
                continue
            if not 0 <= int(b) < len(words_of):
                raise ValueError(f"bin must lie in [0, {len(words_of)}), got {b}")
            words.append(words_of[int(b)])
        words.append(self.class_words[int(label)])
        return f"{_article(words[0])} {' '.join(words)}"

    def captions_for(self, images: Any, labels: Any, gan_range: bool = False) -> list[str]:
        """The caption of every image, from its label and its measured bins."""
        labels = np.asarray(to_host(labels))
        bins = self.bins(images, gan_range)
        return [self.caption(int(k), *map(int, b)) for k, b in zip(labels, bins, strict=True)]

    def parse(self, text: str) -> tuple[int, int | None, int | None]:
        """``"a thick upright seven"`` -> ``(7, 2, 1)``: (label, first bin, second bin).

        Words may come in any order; the article is optional; an attribute not named is
        None (and the second is always None on Fashion-MNIST, which has one attribute).
        Raises ValueError (one line, naming the known words) for an empty caption, an
        unknown word, no class or two of them, or an attribute named twice.
        """
        known = f"known words: {', '.join(self.vocabulary)}"
        if not isinstance(text, str):
            raise TypeError(f"caption must be a string, got {type(text).__name__}")
        words, unknown = _scan(text)
        if not words and unknown is None:
            raise ValueError(f"empty caption; {known}")
        if unknown is not None:
            raise ValueError(f"unknown word {unknown!r} for {self.name} captions; {known}")
        label, found = None, [None] * len(self.attributes)
        for word in words:
            if word in ARTICLES:
                continue
            if word in self.class_words:
                if label is not None:
                    raise ValueError(f"caption {text!r} names two classes; {known}")
                label = self.class_words.index(word)
                continue
            for a, words_of in enumerate(self.words):
                if word in words_of:
                    if found[a] is not None:
                        raise ValueError(
                            f"caption {text!r} names its {self.attributes[a]} twice; {known}"
                        )
                    found[a] = words_of.index(word)
                    break
            else:
                raise ValueError(f"unknown word {word!r} for {self.name} captions; {known}")
        if label is None:
            raise ValueError(f"caption {text!r} names no class; {known}")
        found += [None] * (2 - len(found))
        return label, found[0], found[1]

    def embed(self, labels: Any, bins: Any, dim: int, seed: int = 0) -> np.ndarray:
        """``encode`` of the captions of (labels, bins) without writing them out: the mean of
        the class's and the attributes' word vectors. float32 (N, dim). A bin of -1 leaves
        its attribute's word out (``caption(label, None)``: "a seven")."""
        vectors = word_vectors(dim, seed)
        labels = np.asarray(to_host(labels))
        bins = np.asarray(to_host(bins)).reshape(len(labels), -1)
        class_ids = np.array([TOKEN_IDS[w] for w in self.class_words])
        total = vectors[class_ids[labels]].astype(np.float64)  # float64 sum, as encode's mean
        words = np.ones(len(labels))  # the class word, then each attribute named
        for a, words_of in enumerate(self.words[: bins.shape[1]]):
            ids = np.array([TOKEN_IDS[w] for w in words_of])
            named = bins[:, a] >= 0
            total[named] += vectors[ids[bins[named, a]]]
            words += named
        return (total / words[:, None]).astype(np.float32)


def _measure(name: str, x: np.ndarray) -> tuple[np.ndarray, ...]:
    return (stroke_width(x), shear(x)) if name == "mnist" else (tone(x),)


def bin_agreement(image_bins: Any, caption_bins: Any, seed: int = 0) -> tuple[float, float]:
    """(share of images in their caption's bin, the same share for shuffled captions).

    The second is the chance baseline: the captions permuted among the images, so each
    image is compared with a caption it was not drawn from (about sum_k p_k q_k, p and q
    the two bin frequencies: 1/3 for three equally frequent bins).
    """
    image_bins = np.asarray(to_host(image_bins)).ravel()
    caption_bins = np.asarray(to_host(caption_bins)).ravel()
    if image_bins.shape != caption_bins.shape:
        raise ValueError(
            f"bin_agreement: {image_bins.shape[0]} image bins but {caption_bins.shape[0]} captions"
        )
    shuffled = caption_bins[np.random.default_rng(seed).permutation(len(caption_bins))]
    return float((image_bins == caption_bins).mean()), float((image_bins == shuffled).mean())
