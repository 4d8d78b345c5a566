"""Score generated MNIST digits: FID, Inception Score and class coverage, as one JSON line.

    python examples/sample.py --checkpoint runs/mnist/checkpoint.npz --sample 10000 \\
        --output samples.npy      # or: examples/mnist_gan.py --sample 10000 --checkpoint ...
    python examples/evaluate.py samples.npy
    python examples/evaluate.py --dataset fashion fashion_samples.npy   # Fashion-MNIST

The reference points, to read a score against:

    python examples/evaluate.py --real-train 10000   # real digits: the best reachable
    python examples/evaluate.py --noise 10000        # uniform noise: a useless generator

``--translation CHECKPOINT`` scores a CycleGAN run of the built-in task (plain <-> striped
digits) on the 5,000 test images of each domain (minigan/metrics/translation.py): class
kept and domain changed both ways, the cycle's error, FID in each domain, beside the
identity map (no translation) and a perfect translator (real images of the other domain):

    python examples/evaluate.py --translation runs/cyclegan/checkpoint.npz

``--captions CHECKPOINT`` scores a StackGAN run on its dataset's test captions
(minigan/metrics/text_to_image.py): the caption's class read back, the share of images in
their caption's thickness and slant bins beside shuffled captions', and each stage's FID:

    python examples/evaluate.py --captions runs/stackgan/checkpoint.npz

``--mixture ring`` (or ``grid``) scores a .npy of points (N, 2) from a 2-D run
(``mnist_gan.py --dataset 2d-ring``, then ``--sample 2500``) as VEEGAN and PacGAN do:
modes captured, the share of high-quality points, reverse KL to uniform over the modes.

``--stacked`` scores a .npy of Stacked MNIST images (N, 3, 28, 28) in [0, 1] (``mnist_gan.py
--dataset stacked-mnist``, then ``--sample 26000``) as PacGAN's Table 2 does: each channel's
digit read by the MNIST classifier, the modes hit of 1,000 and the KL of the modes'
histogram to uniform, beside as many real Stacked MNIST images of the test split through
the same classifier, and the paper's rows (minigan/stacked.py).

``--parzen`` adds the GAN paper's own score (Goodfellow et al. 2014, Table 1), the
Parzen-window log-likelihood of the MNIST test digits under a Gaussian kernel density on
the samples (minigan/metrics/parzen.py), and prints the paper's table beside it on
stderr; ``--real-train 10000 --parzen`` gives real training digits' figure to compare:

    python examples/evaluate.py samples.npy --parzen
    python examples/evaluate.py --real-train 10000 --parzen   # training images 0-9999

The first run trains the MNIST classifier the scores are measured with (about 3 CPU
minutes) and caches it; later runs take a few seconds. With
``--dataset fashion`` the same is done with a classifier of Fashion-MNIST, against its
test set, and the JSON line names the garment each histogram entry counts. Progress
and warnings go to stderr, the JSON line alone to stdout, so ``> scores.json`` works.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from minigan.backend import BACKEND_NAMES, BackendUnavailableError
from minigan.data import DataError, load_fashion_mnist, load_mnist, to_gan_range
from minigan.metrics import Evaluator, check_samples, label_accuracy, parzen_log_likelihood
from minigan.metrics.classifier import CLASSIFIER_DATA
from minigan.metrics.parzen import PAPER_TABLE

# The GAN paper's validation split for choosing sigma (parzen_ll.py's get_valid): MNIST
# training images 50,000-60,000. --real-train N --parzen takes training images 0..N-1.
PARZEN_VALIDATION = slice(50000, 60000)
PARZEN_SAMPLES = 10000  # parzen_ll.py's --num_samples default

PROG = "evaluate.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=(
            "FID: 0 is the test set itself, lower is better; compare only FIDs "
            "taken from the same number of samples, on the same --dataset. Inception "
            "score: 1 to 10, higher is better. classes_covered: classes (digits, or "
            "garments) given at least 1% of the samples."
        ),
    )
    parser.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE.npy",
        help="a .npy array of float images (N, 28, 28) in [0, 1], as written by "
        "sample.py (or mnist_gan.py --sample N) --output FILE.npy (with --mixture, points "
        "(N, 2); with --stacked, Stacked MNIST images (N, 3, 28, 28))",
    )
    parser.add_argument(
        "--dataset",
        choices=list(CLASSIFIER_DATA),
        default="mnist",
        help="whose classifier and test set the scores use: mnist (the default) or "
        "fashion (Fashion-MNIST; its classifier is trained and cached once too)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--real-train",
        type=int,
        metavar="N",
        help="instead of a file, score N random training images of --dataset (the floor; "
        "with --parzen, training images 0 to N-1)",
    )
    mode.add_argument(
        "--noise",
        type=int,
        metavar="N",
        help="instead of a file, score N images of uniform noise (the ceiling)",
    )
    mode.add_argument(
        "--translation",
        type=Path,
        metavar="CHECKPOINT",
        help="instead of a file, score the translations of a CycleGAN run of the built-in "
        "task (its checkpoint.npz) on each domain's test images; trains and caches its two "
        "classifiers of striped digits the first time",
    )
    mode.add_argument(
        "--captions",
        type=Path,
        metavar="CHECKPOINT",
        help="instead of a file, score a text-to-image run (stackgan; its checkpoint.npz) on "
        "the captions of the test images of its --dataset: the caption's class read back, "
        "its thickness (or tone) and slant bins kept, against shuffled captions, and FID of "
        "each stage",
    )
    parser.add_argument(
        "--mixture",
        choices=("ring", "grid"),
        help="FILE.npy holds points (N, 2) of a 2-D run (--dataset 2d-ring or 2d-grid, "
        "--sample N): score them as VEEGAN and PacGAN do (modes captured, the share of "
        "high-quality points, reverse KL to uniform over the modes); 2,500 points is theirs",
    )
    parser.add_argument(
        "--stacked",
        action="store_true",
        help="FILE.npy holds Stacked MNIST images (N, 3, 28, 28) in [0, 1] (--dataset "
        "stacked-mnist, --sample N): modes of 1,000 and KL to uniform through the MNIST "
        "classifier, beside N real test-split images' and PacGAN's Table 2; 26000 is theirs",
    )
    parser.add_argument(
        "--label",
        metavar="K|cycle",
        help="with FILE.npy from a conditional model (cgan, acgan): the digit each sample "
        "was asked for, K for all of them (--sample N --label K), or 'cycle' for digit "
        "i %% 10 for sample i (--sample N without --label); adds label_accuracy, the share "
        "of each digit's samples the classifier calls that digit",
    )
    parser.add_argument(
        "--parzen",
        action="store_true",
        help="also score the Parzen-window log-likelihood of the MNIST test set under the "
        "samples (Goodfellow et al. 2014's protocol: sigma chosen on training images "
        "50000-59999; about 15 CPU seconds for 10,000 samples); with --real-train N, the "
        "first N training images are the samples",
    )
    parser.add_argument("--seed", type=int, default=0, help="for --real-train/--noise")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="folder of the cached classifier (default: $XDG_CACHE_HOME/minigan)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        help="folder holding the dataset's files (see minigan.data.load_mnist)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default="numpy",
        help="where the classifier runs (default: numpy)",
    )
    args = parser.parse_args(argv)
    modes = (args.file, args.real_train, args.noise, args.translation, args.captions)
    if sum(mode is not None for mode in modes) != 1:
        parser.error("give exactly one of FILE.npy, --real-train N, --noise N, --translation "
                     "or --captions")  # fmt: skip
    if args.translation is not None and (args.label or args.parzen or args.dataset != "mnist"):
        parser.error("--translation scores a translation run: no --label, --parzen or --dataset")
    if args.captions is not None and (args.label or args.parzen or args.dataset != "mnist"):
        parser.error("--captions scores a text-to-image run on its own dataset: no --label, "
                     "--parzen or --dataset")  # fmt: skip
    if args.mixture is not None and (args.file is None or args.label or args.parzen):
        parser.error("--mixture scores FILE.npy of points (N, 2): no --label or --parzen")
    if args.stacked and (args.file is None or args.label or args.parzen or args.mixture
                         or args.dataset != "mnist"):  # fmt: skip
        parser.error("--stacked scores FILE.npy of Stacked MNIST images (N, 3, 28, 28): no "
                     "--label, --parzen, --mixture or --dataset")  # fmt: skip
    if args.label is not None:
        if args.file is None:
            parser.error("--label goes with FILE.npy (samples of a conditional model)")
        if args.label != "cycle" and args.label not in [str(k) for k in range(10)]:
            parser.error(f"--label: expected a digit 0-9 or 'cycle', got {args.label!r}")
    for name in ("real_train", "noise"):
        n = getattr(args, name)
        if n is not None and n < 2:
            parser.error(f"--{name.replace('_', '-')} needs N >= 2, got {n}")
    if args.parzen and args.dataset != "mnist":
        parser.error(
            "--parzen: the GAN paper's Parzen protocol is for MNIST only here (its code "
            "also scored TFD, which minigan does not load); leave out --dataset"
        )
    if args.parzen and args.real_train is not None and args.real_train > 50000:
        parser.error(
            f"--real-train {args.real_train} --parzen: at most 50000 (training images "
            f"50000-59999 are the validation split sigma is chosen on)"
        )
    return args


def load_samples(args: argparse.Namespace) -> tuple[str, np.ndarray]:
    """(a name for the source, the images to score)."""
    rng = np.random.default_rng(args.seed)
    if args.noise is not None:
        return "noise", rng.uniform(0, 1, (args.noise, 28, 28)).astype(np.float32)
    if args.real_train is not None:
        load = load_mnist if args.dataset == "mnist" else load_fashion_mnist
        images, _ = load("train", root=args.data_root)
        if args.real_train > len(images):
            title = CLASSIFIER_DATA[args.dataset].title
            raise ValueError(f"--real-train {args.real_train}: {title} has {len(images)}")
        if args.parzen:  # images 0..N-1: none of them in the Parzen validation split
            return "real-train", images[: args.real_train].astype(np.float32) / 255
        chosen = rng.choice(len(images), args.real_train, replace=False)
        return "real-train", images[chosen].astype(np.float32) / 255
    if not args.file.exists():
        raise ValueError(f"{args.file}: no such file")
    if args.file.is_dir():
        raise ValueError(f"{args.file} is a folder; give the .npy file of samples in it")
    with open(args.file, "rb") as f:
        head = f.read(64)
    what = not_an_npy(head)
    if what is not None:
        raise ValueError(f"cannot read {args.file} as a .npy array: {what}")
    try:
        samples = np.load(args.file, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):  # NumPy would advise loading it unsafely
            raise ValueError(
                f"cannot read {args.file} as a .npy array of numbers: it holds Python objects "
                f"(pickled), and loading them could run any code; {SAVE_HINT}"
            ) from None
        raise ValueError(f"cannot read {args.file} as a .npy array: {error}") from None
    except (OSError, EOFError) as error:
        raise ValueError(f"cannot read {args.file} as a .npy array: {error}") from None
    if not isinstance(samples, np.ndarray):  # an .npz archive
        raise TypeError(f"{args.file}: expected one .npy array, found an .npz archive")
    return str(args.file), samples


SAVE_HINT = "give the .npy file that sample.py --output FILE.npy writes (or np.save one)"


def not_an_npy(head: bytes) -> str | None:
    """What a file starting with ``head`` is, when it is no .npy array (None: it may be
    one, or an .npz archive), in place of NumPy's advice to unpickle it."""
    if head.startswith((b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06")):
        return None
    if not head:
        return f"the file is empty; {SAVE_HINT}"
    if head.startswith(b"\x80"):  # pickle protocols 2 and later start with PROTO
        return f"it is a Python pickle, and loading one could run any code; {SAVE_HINT}"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:  # text, unless more than a last character cut short
        cut = error.reason == "unexpected end of data"
        text = head[: error.start].decode("utf-8") if cut else None
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        first = (text.strip().splitlines() or [""])[0][:40]
        return f"it is a text file (it starts {first!r}), not a binary .npy; {SAVE_HINT}"
    return (
        f"it starts with the bytes {head[:6].hex(' ')}, where a .npy file starts with "
        f"93 4e 55 4d 50 59 (\\x93NUMPY): it is damaged, or another format; {SAVE_HINT}"
    )


def parzen_scores(samples: np.ndarray, data_root: Path | None) -> dict:
    """The Parzen-window figures of ``samples`` on MNIST, and a line comparing them with
    the paper's Table 1 on stderr."""
    train, _ = load_mnist("train", root=data_root)
    test, _ = load_mnist("test", root=data_root)
    validation = train[PARZEN_VALIDATION]
    print(
        f"{PROG}: Parzen window: choosing sigma on {len(validation)} training images, "
        f"then scoring {len(test)} test digits ...",
        file=sys.stderr,
    )
    start = time.perf_counter()
    result = parzen_log_likelihood(samples, test / 255, validation / 255)
    seconds = time.perf_counter() - start
    paper = ", ".join(f"{name} {m:g} +- {se:g}" for name, (m, se) in PAPER_TABLE.items())
    if len(samples) != PARZEN_SAMPLES:  # fewer kernels cover the test digits less well
        print(
            f"{PROG}: warning: the paper's Parzen figures use {PARZEN_SAMPLES} samples, "
            f"these are {len(samples)}: compare only figures from equal numbers",
            file=sys.stderr,
        )
    print(
        f"{PROG}: Parzen log-likelihood of the MNIST test set: {result['mean']:.1f} +- "
        f"{result['standard_error']:.2g} nats (sigma {result['sigma']:.3g}, {len(samples)} "
        f"samples, {seconds:.0f} s). Goodfellow et al. 2014, Table 1: {paper}. Real training "
        f"digits: --real-train 10000 --parzen",
        file=sys.stderr,
    )
    return {
        "sigma": round(result["sigma"], 4),
        "mean": round(result["mean"], 3),
        "standard_error": round(result["standard_error"], 3),
        "seconds": round(seconds, 3),
    }


def translation_scores(args: argparse.Namespace) -> dict:
    """A CycleGAN run's measures on the built-in task's test halves, with the identity
    map's and a perfect translator's beside them, and a table of the three on stderr."""
    from minigan import runs, unpaired
    from minigan.metrics.translation import TranslationJudge
    from minigan.models import MODELS

    path = args.translation
    state = runs.load_run(path, runs.MODEL_KEYS)
    cls = MODELS[state["gan"]["model"]]
    if not cls.translation:
        raise ValueError(f"--translation {path}: it holds a {cls.name!r} model, which does "
                         f"not translate; give a CycleGAN run's checkpoint")  # fmt: skip
    pair = (state["dataset"], state.get("dataset_b"))
    if pair != unpaired.BUILT_IN:
        raise ValueError(
            f"--translation {path}: it translates between {pair[0]} and {pair[1]}; the judge "
            f"knows the built-in task only (--dataset mnist --dataset-b mnist-striped)"
        )
    model = cls(runs.config_from_checkpoint(state, path), args.backend)
    runs.load_gan_state(model, state, path)
    test = unpaired.load_domains(*unpaired.BUILT_IN, "test", args.data_root)
    judge = TranslationJudge.load_or_train(args.data_root, args.cache_dir, args.backend)
    fake_b, rec_a = unpaired.translate_and_back(model, test.a, "AB")
    fake_a, rec_b = unpaired.translate_and_back(model, test.b, "BA")
    a, b = unpaired.unit_images(test.a), unpaired.unit_images(test.b)
    rows = {
        "model": judge.scores(a, test.a_labels, fake_b, rec_a, b, test.b_labels, fake_a, rec_b),
        "identity": judge.identity_baseline(a, test.a_labels, b, test.b_labels),
        "real": judge.real,
    }
    keys = ("class_ab", "class_ba", "transfer_ab", "transfer_ba", "cycle_a", "cycle_b",
            "fid_b", "fid_a")  # fmt: skip
    print(f"{PROG}: {'':9}" + "".join(f"{k:>12}" for k in keys), file=sys.stderr)
    for name, row in rows.items():
        cells = "".join(f"{row[k]:>12.4f}" if k in row else f"{'':>12}" for k in keys)
        print(f"{PROG}: {name:9}{cells}", file=sys.stderr)
    return {"source": str(path), **rows, "classifiers": judge.info}


def caption_scores(args: argparse.Namespace) -> dict:
    """A StackGAN run's measures on its dataset's test captions (minigan/metrics/
    text_to_image.py), and a summary line on stderr."""
    from minigan import runs
    from minigan.captions import CaptionScheme
    from minigan.metrics.text_to_image import caption_scores as scores_of
    from minigan.models import MODELS

    path = args.captions
    state = runs.load_run(path, runs.MODEL_KEYS)
    cls = MODELS[state["gan"]["model"]]
    if not cls.captioned or not isinstance(state.get("captions"), dict):
        raise ValueError(f"--captions {path}: it holds a {cls.name!r} model without captions; "
                         f"give a text-to-image (stackgan) run's checkpoint")  # fmt: skip
    model = cls(runs.config_from_checkpoint(state, path), args.backend)
    runs.load_gan_state(model, state, path)
    dataset = state["dataset"]
    images, labels = (load_mnist if dataset == "mnist" else load_fashion_mnist)(
        "test", root=args.data_root
    )
    evaluator = Evaluator.load_or_train(args.cache_dir, args.data_root, args.backend,
                                        dataset=dataset)  # fmt: skip
    test = to_gan_range(images, flatten=False)  # (N, 1, 28, 28) in [-1, 1], as a run's
    scores = scores_of(model, CaptionScheme.from_dict(state["captions"]), evaluator, test,
                       labels.astype(np.int64), args.seed)  # fmt: skip
    shown = {k: v for k, v in scores.items() if not isinstance(v, list)}
    print(f"{PROG}: " + ", ".join(f"{k} {v}" for k, v in shown.items()), file=sys.stderr)
    return {"source": str(path), "dataset": dataset, **scores,
            "classifier_test_accuracy": evaluator.info["test_accuracy"]}  # fmt: skip


def stacked_scores(args: argparse.Namespace, source: str, samples: np.ndarray) -> dict:
    """Stacked MNIST's modes and KL of ``samples``, with as many real test-split images'
    figures through the same classifier, and PacGAN's Table 2, on stderr."""
    from minigan import stacked

    stacked.check_samples(samples, source)  # before the classifier, which may train first
    evaluator = Evaluator.load_or_train(args.cache_dir, args.data_root, args.backend)
    scores = stacked.measures(samples, evaluator)
    real = stacked.measures(stacked.real_images(len(samples), args.seed, args.data_root),
                            evaluator)  # fmt: skip
    print(f"{PROG}: {source}: {stacked.summary(scores)}", file=sys.stderr)
    print(f"{PROG}: real Stacked MNIST (test split, same classifier): {stacked.summary(real)}",
          file=sys.stderr)  # fmt: skip
    print(f"{PROG}: PacGAN's Table 2 (Lin et al. 2018; their classifier, 26000 samples):\n"
          + "\n".join(stacked.paper_lines()), file=sys.stderr)  # fmt: skip
    if len(samples) != stacked.EVAL_SAMPLES:
        print(f"{PROG}: warning: the papers count modes in {stacked.EVAL_SAMPLES} samples, "
              f"these are {len(samples)}: compare only figures from equal numbers (the "
              f"real row above has as many)", file=sys.stderr)  # fmt: skip
    return {"source": source, "dataset": stacked.DATASET, **scores, "real": real,
            "classifier_test_accuracy": evaluator.info["test_accuracy"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.translation is not None or args.captions is not None:
        try:
            scores = translation_scores if args.translation is not None else caption_scores
            print(json.dumps(scores(args)))
        except (ValueError, TypeError, RuntimeError, DataError, BackendUnavailableError) as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return 1
        return 0
    try:
        source, samples = load_samples(args)
        if args.mixture is not None:  # points of the plane: the papers' measures
            from minigan import plane

            scores = plane.scores(f"2d-{args.mixture}", samples)
            if np.isnan(scores["reverse_kl"]):  # no high-quality point: JSON has no NaN
                scores["reverse_kl"] = None
            print(f"{PROG}: {plane.summary(scores)}", file=sys.stderr)
            print(json.dumps({"source": source, "mixture": args.mixture, **scores}))
            return 0
        if args.stacked:  # three digits an image: modes of 1,000
            print(json.dumps(stacked_scores(args, source, samples)))
            return 0
        with warnings.catch_warnings():  # the check inside evaluate() warns, once
            warnings.simplefilter("ignore")
            check_samples(samples)  # before the classifier, which may train first
        evaluator = Evaluator.load_or_train(
            args.cache_dir, args.data_root, args.backend, dataset=args.dataset
        )
        start = time.perf_counter()
        scores = evaluator.evaluate(samples)
        if args.label is not None:
            n = len(samples)
            asked = np.arange(n) % 10 if args.label == "cycle" else np.full(n, int(args.label))
            accuracy = label_accuracy(evaluator, samples, asked)
            scores["label_accuracy"] = [
                None if np.isnan(a) else round(float(a), 4) for a in accuracy
            ]
        seconds = time.perf_counter() - start
        if args.parzen:
            scores["parzen"] = parzen_scores(samples, args.data_root)
    except (ValueError, TypeError, DataError, BackendUnavailableError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    scores["seconds"] = round(seconds, 3)
    scores["classifier_test_accuracy"] = evaluator.info["test_accuracy"]
    if args.dataset != "mnist":  # the digits name themselves; garments need their names
        scores = {"dataset": args.dataset, **scores, "class_names": evaluator.data.class_names}
    print(json.dumps({"source": source, **scores}))
    return 0


if __name__ == "__main__":
    # One line per warning, like the errors, instead of Python's file:line form.
    warnings.formatwarning = lambda message, *_, **__: f"{PROG}: warning: {message}\n"
    sys.exit(main())
