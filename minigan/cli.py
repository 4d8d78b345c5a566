"""Command-line flags generated from the model configs, never restated by hand.

Each config field declares itself once (``option`` in ``minigan.models.base``): its
type annotation, and in its metadata a one-line ``help``, optionally ``choices``,
``metavar``, and ``"flag": False`` for a field with no flag of its own. From that,

- ``add_config_flags`` gives every field of every model's config a flag,
  ``--field-name``: typed from its annotation (the type only parses: the config checks
  the value), its help followed by each model's default; plus three flags derived from
  fields (``DERIVED``: --beta1, --d-output, --label-smoothing);
- ``check_flag_values`` refuses, as argparse refuses a word that is no number, a value
  the config's ``__post_init__`` refuses, naming the flag; and a flag the command would
  silently ignore (``check_unused_flags``), and more --threads than the process has cores;
- ``requested_config`` reads the flags a command line gave as config fields of the
  chosen model, and refuses a flag that model has no field for.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# No NumPy here, nor anything that loads it (the models load lazily, in family_configs and
# family_flags): examples/mnist_gan.py reads --threads through this module before NumPy
# loads, since OpenBLAS takes its thread count from the environment then.


class FlagError(ValueError):
    """A flag refused, for its value or for the chosen model; the message says which and why."""


@dataclass(frozen=True)
class Flag:
    """A command-line flag that sets one config field.

    ``convert(value, base)`` turns the flag's value into the field's, ``base`` being the
    config it changes (None: the value is the field's); ``describe(config)`` is the
    default --help shows (None: the field's value).
    """

    dest: str  # argparse's name for it: "d_lr" for --d-lr
    field: str
    parse: Callable[[str], Any]
    help: str
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    convert: Callable[[Any, Any], Any] | None = None
    describe: Callable[[Any], Any] | None = None

    @property
    def name(self) -> str:
        return "--" + self.dest.replace("_", "-")


def threads_from_argv(argv: list[str]) -> int:
    """--threads N (or --threads=N) as ``argv`` gives it, read before NumPy loads: 1 when
    absent or not a positive integer (argparse refuses that afterwards)."""
    value = "1"
    for word, following in zip(argv, [*argv[1:], ""]):
        if word == "--threads":
            value = following
        elif word.startswith("--threads="):
            value = word.removeprefix("--threads=")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (what taskset or a container's
    cpuset allows), else every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def dataset_spec(text: str) -> str:
    """'mnist', 'fashion', 'folder:PATH', a 2-D task ('2d-ring', '2d-grid') or
    'stacked-mnist' (three digits as an image's three channels: minigan/stacked.py)."""
    if text in ("mnist", "fashion", "2d-ring", "2d-grid", "stacked-mnist"):
        return text
    if text.startswith("folder:") and text != "folder:":
        return text
    raise argparse.ArgumentTypeError(
        f"expected mnist, fashion, folder:PATH, 2d-ring, 2d-grid or stacked-mnist, got {text!r}"
    )


def add_sample_flags(parser: Any, required: bool = False) -> None:
    """Sampling from a run's checkpoint: examples/mnist_gan.py's --sample mode and
    examples/sample.py take the same flags (``parser``: a parser or a group of one)."""
    add = parser.add_argument
    add(
        "--sample",
        type=positive_int,
        metavar="N",
        required=required,
        help="write N samples from --checkpoint to --output",
    )
    add("--checkpoint", required=required, help="the run's checkpoint.npz to sample from")
    add(
        "--output",
        required=required,
        metavar="FILE.npy",
        help="where the samples go: float32 images in [0, 1], (N, H, W) grey or (N, H, W, 3) "
        "colour ((N, 28, 28) for MNIST; (N, 3, 28, 28), channels first, for Stacked MNIST); "
        "points (N, 2) for a 2-D task",
    )
    add("--grid", metavar="FILE.png", help="also save the first 64 samples as this picture")
    add("--label", type=int, choices=range(10), metavar="K", help="with a conditional model "
        "(cgan, acgan): draw only digit K (default: the digits 0-9 in turn, so the grid has "
        "one row per digit)")  # fmt: skip
    add("--direction", choices=("AB", "BA"), help="with a translation model (cyclegan): "
        "translate the first N test images of the run's domain A into B (AB, the default) "
        "or of B into A (BA), instead of drawing samples; the grid shows inputs above their "
        "translations")  # fmt: skip
    add("--caption", metavar="TEXT", help="with a text-to-image model (stackgan): draw for "
        "this caption, e.g. 'a thin right-slanted seven' (words may be left out: 'a seven'; "
        "default: every full caption in turn); the grid shows Stage-I beside Stage-II")  # fmt: skip
    add("--input", metavar="FOLDER", help="with --direction: translate the first N pictures "
        "(PNG/JPEG) under FOLDER, resized to the model's images, instead of the run's own "
        "test images")  # fmt: skip


def fraction(text: str) -> float:
    """A number in [0, 1): a derived flag's range, in the flag's own terms."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


# Flags that set a field through a formula: the field itself (a pair, a flag, a target)
# is not what a person wants to type.
DERIVED = (
    Flag(
        "beta1", "betas", fraction, "Adam's beta1, the decay of its running mean of gradients",
        convert=lambda value, base: (value, base.betas[1]), describe=lambda c: c.betas[0],
    ),
    Flag(
        "d_output", "logits", str, "D ends in Sigmoid and trains with BCELoss, or gives "
        "logits and trains with BCEWithLogitsLoss", choices=("sigmoid", "logits"),
        convert=lambda value, base: value == "logits",
        describe=lambda c: "logits" if c.logits else "sigmoid",
    ),
    Flag(
        "label_smoothing", "real_label", fraction, "one-sided label smoothing: train D "
        "towards 1 - S on real images; 0 for none", metavar="S",
        convert=lambda value, base: 1.0 - value, describe=lambda c: round(1 - c.real_label, 6),
    ),
)  # fmt: skip


def parser_for(annotation: Any, where: str) -> Callable[[str], Any]:
    """How the command line's text becomes a value of ``annotation``: int, float, str, or
    one of them or None (``float | None``: a number, or 'none'). It only parses: the
    config's ``__post_init__`` judges the value."""
    if annotation in (int, float, str):
        return annotation
    options = typing.get_args(annotation)
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    if is_union and len(options) == 2 and type(None) in options:
        parse = parser_for(next(t for t in options if t is not type(None)), where)

        def optional(text: str) -> Any:
            return None if text.lower() == "none" else parse(text)

        optional.__name__ = f"{parse.__name__} or 'none'"  # argparse's "invalid ... value"
        return optional
    raise TypeError(f"{where}: a {annotation} cannot come from the command line; "
                    f"declare the field with 'flag': False")  # fmt: skip


def config_flags(config_classes: Iterable[type]) -> dict[str, Flag]:
    """The flag of every field of ``config_classes`` that takes one, in the order the
    fields first appear (a field several configs share is one flag), then ``DERIVED``."""
    flags: dict[str, Flag] = {}
    for cls in config_classes:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            meta = field.metadata
            if field.name in flags or not meta.get("flag", True):
                continue
            parse = parser_for(hints[field.name], f"{cls.__name__}.{field.name}")
            choices = tuple(meta["choices"]) if "choices" in meta else None
            flags[field.name] = Flag(
                field.name, field.name, parse, meta.get("help", ""), choices, meta.get("metavar")
            )
    return flags | {flag.dest: flag for flag in DERIVED}


def field_names(config: Any) -> set[str]:
    return {field.name for field in dataclasses.fields(config)}


def shown(value: Any) -> str:
    """A default as --help shows it."""
    return "none" if value is None else "''" if value == "" else str(value)


def defaults(flag: Flag, configs: dict[str, Any]) -> str:
    """Each model's default, models with the same one together: "(default: 512 for gan,
    lsgan; 500 for sgan)"; models without the field are left out (they refuse the flag)."""
    groups: dict[str, list[str]] = {}
    for label, config in configs.items():
        if flag.field in field_names(config):
            value = flag.describe(config) if flag.describe else getattr(config, flag.field)
            groups.setdefault(shown(value), []).append(label)
    return "(default: " + "; ".join(f"{v} for {', '.join(m)}" for v, m in groups.items()) + ")"


def add_config_flags(
    parser: argparse.ArgumentParser, flags: dict[str, Flag], configs: dict[str, Any]
) -> None:
    """Add ``flags`` to ``parser``, each one's help followed by the defaults of
    ``configs`` (a label, such as the model's name, -> a config). A flag left out is
    absent from the parsed namespace: the model's own default applies."""
    group = parser.add_argument_group(
        "model settings", "each model's own default is said; a model refuses a flag it "
        "has no setting for",
    )  # fmt: skip
    for flag in flags.values():
        text = f"{flag.help} {defaults(flag, configs)}".strip() + other_helps(flag, configs)
        group.add_argument(
            flag.name,
            dest=flag.dest,
            type=flag.parse,
            choices=flag.choices,
            metavar=flag.metavar,
            default=argparse.SUPPRESS,
            help=text.replace("%", "%%"),
        )


def other_helps(flag: Flag, configs: dict[str, Any]) -> str:
    """What the models whose field says something else than ``flag.help`` say, models
    with the same text together: "; for sgan: width of G's hidden layers only ..."."""
    groups: dict[str, list[str]] = {}
    for label, config in configs.items():
        for field in dataclasses.fields(config):
            text = field.metadata.get("help", "")
            if field.name == flag.field and flag.convert is None and text not in ("", flag.help):
                groups.setdefault(text, []).append(label)
    return "".join(f"; for {', '.join(labels)}: {text}" for text, labels in groups.items())


def family_configs() -> dict[str, Any]:
    """The configs --help quotes: each model's default, and the vanilla GAN's tutorial
    recipe beside it (the other presets are steps between the two)."""
    from minigan.models import MODELS, PRESETS

    classic = {"--preset classic": PRESETS["classic"]}
    return {name: cls.default_config() for name, cls in MODELS.items()} | classic


@functools.cache
def family_flags() -> dict[str, Flag]:
    """The flags of every model's config (``minigan.models.MODELS``)."""
    from minigan.models import MODELS

    return config_flags(dict.fromkeys(cls.config_class for cls in MODELS.values()))


def given(args: argparse.Namespace, flags: dict[str, Flag]) -> list[tuple[Flag, Any]]:
    """The config flags the command line gave, with their values."""
    return [(flag, vars(args)[dest]) for dest, flag in flags.items() if dest in vars(args)]


def check_flag_values(
    args: argparse.Namespace,
    flags: dict[str, Flag],
    configs: dict[str, Any],
    model: str,
    default: Callable[[str], Any] | None = None,
    typed: frozenset[str] = frozenset(),
) -> None:
    """Refuse a value the config refuses on its own, naming its flag, before anything else.

    Each given flag is tried alone on the default config of ``model`` (or, when that
    model has no such field, of the first that has one: the flag is refused later for
    ``model``). Only refusals about the flag's own field (the config's message starts
    with the field's name) are the flag's; one that involves other settings (a batch
    size and a pack size that do not fit) is the whole config's, said when it is built.
    Then --threads beyond the cores this process may use, and, given ``default`` (the
    parser's ``get_default``), each flag the command would ignore (``check_unused_flags``).
    Raises FlagError("argument --flag: ...").
    """
    for flag, value in given(args, flags):
        if flag.convert is not None:  # a derived flag: its type checked its range
            continue
        having = [c for c in configs.values() if flag.field in field_names(c)]
        base = configs[model] if flag.field in field_names(configs[model]) else having[0]
        try:
            dataclasses.replace(base, **{flag.field: value})
        except ValueError as error:
            message = str(error)
            if message.startswith(f"{flag.field} "):
                raise FlagError(
                    f"argument {flag.name}: {message.removeprefix(flag.field + ' ')}"
                ) from None
    threads, cores = getattr(args, "threads", None), usable_cores()
    if threads is not None and threads > cores:
        raise FlagError(
            f"argument --threads: {threads} is more than the {cores} "
            f"{'core' if cores == 1 else 'cores'} this process may use (os.sched_getaffinity): "
            f"more threads than cores only wait for each other; pass at most {cores}"
        )
    if default is not None:
        check_unused_flags(args, flags, default, typed)


# examples/mnist_gan.py's flags that only training reads: --sample N draws from the
# model in --checkpoint, whose settings and data are the run's.
TRAINING_ONLY = ("preset", "dataset", "image_size", "epochs", "out", "data_dir", "train_size",
                 "log_every", "eval_every", "eval_samples")  # fmt: skip


def typed_flags(parser: argparse.ArgumentParser, argv: list[str]) -> frozenset[str]:
    """The destinations of the options written on the command line ``argv``, whatever their
    values (``--eval-samples 10000`` is a choice even where it equals the default); a
    unique prefix counts as its option, as argparse reads it."""
    options = {o: a.dest for a in parser._actions for o in a.option_strings}
    typed = set()
    for word in argv:
        if word == "--":
            break
        name = word.split("=", 1)[0]
        if name in options:
            typed.add(options[name])
        elif name.startswith("--"):
            matches = {dest for o, dest in options.items() if o.startswith(name)}
            typed |= matches if len(matches) == 1 else set()
    return frozenset(typed)


def check_unused_flags(
    args: argparse.Namespace,
    flags: dict[str, Flag],
    default: Callable[[str], Any],
    typed: frozenset[str] = frozenset(),
) -> None:
    """Refuse a flag the command would silently ignore: a training flag with --sample, or
    --label, --eval-samples or --data-dir where nothing reads them.

    A flag counts as given when it was written (``typed``: ``typed_flags``) or its value
    differs from ``default(dest)`` (the parser's ``get_default``: what argparse fills in
    is no choice of the user's; a config flag left out is absent). Raises FlagError
    naming the flags.
    """
    chosen = {dest for dest, value in vars(args).items() if value != default(dest)} | typed
    if "sample" in chosen:
        unused = [f"--{d.replace('_', '-')}" for d in TRAINING_ONLY if d in chosen]
        unused += [flag.name for flag, _ in given(args, flags)]
        if unused:
            names = " and ".join([", ".join(unused[:-1]), unused[-1]] if unused[1:] else unused)
            raise FlagError(
                f"{names} would be ignored: --sample N only draws from the "
                f"model in --checkpoint, with that run's settings; drop "
                f"{'it' if len(unused) == 1 else 'them'}"
            )
        return
    if "label" in chosen:
        raise FlagError(
            "argument --label: goes with --sample N (draw only digit K); training draws "
            "every digit: drop --label"
        )
    if "eval_samples" in chosen and not getattr(args, "eval_every", 0):
        raise FlagError(
            "argument --eval-samples: sets how many samples --eval-every K scores, and "
            "--eval-every is 0 (no scoring): add --eval-every K, or drop --eval-samples"
        )
    dataset = getattr(args, "dataset", None) or ""
    if "data_dir" in chosen and dataset.startswith("folder:"):
        raise FlagError(
            f"argument --data-dir: is where the MNIST and Fashion-MNIST files are looked "
            f"for, and --dataset {dataset} reads its own folder: drop --data-dir"
        )


def requested_config(
    args: argparse.Namespace,
    flags: dict[str, Flag],
    name: str,
    base: Any,
    preset: Any = None,
) -> dict[str, Any]:
    """The config fields of model ``name`` that the command line sets: a named preset's
    (``preset``: a config of the same class), then each flag given, converted from
    ``base`` (the preset, when there is one). A flag ``base`` has no field for is refused."""
    fields = preset.to_dict() if preset is not None else {}
    base = preset if preset is not None else base
    settings = field_names(base)
    for flag, value in given(args, flags):
        if flag.field not in settings:
            usable = [f.name for f in flags.values() if f.field in settings]
            raise FlagError(
                f"{flag.name} does not apply to --model {name}; its settings are "
                f"{', '.join(usable)}"
            )
        fields[flag.field] = flag.convert(value, base) if flag.convert else value
    return fields
