"""minigan.cli: command-line flags generated from config fields, never restated.

The generator is tested on a small config of this file's own (every kind of field it
must handle), then on the GAN family: every flag that worked before the flags were
generated still works, for the same models, setting the same field.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from dataclasses import dataclass

import pytest

from minigan import cli


def option(default, help, **extra):
    return dataclasses.field(default=default, metadata={"help": help, **extra})


@dataclass
class ToyConfig:
    width: int = option(8, "width of the toy")
    rate: float = option(0.5, "the toy's rate, in % per step")
    mode: str = option("fast", "how the toy runs", choices=("fast", "slow"))
    other_rate: float | None = option(None, "a second rate (none: rate)", metavar="R")
    shape: tuple[int, int] = option((1, 2), "no flag: a pair", flag=False)
    betas: tuple[float, float] = option((0.9, 0.999), "Adam's betas", flag=False)
    real_label: float = option(1.0, "D's target for real images", flag=False)
    batch_size: int = option(10, "batch size")
    pack: int = option(1, "images per pack")

    def __post_init__(self):
        if self.width < 1:
            raise ValueError(f"width must be a positive integer, got {self.width}")
        if self.other_rate is not None and not self.other_rate > 0:
            raise ValueError(
                f"other_rate must be a positive number (or none), got {self.other_rate}"
            )
        if self.batch_size % self.pack:
            raise ValueError(f"batch size {self.batch_size} is not a multiple of pack {self.pack}")

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclass
class SmallToyConfig:
    width: int = option(4, "width of the small toy")


def toy_parser() -> tuple[argparse.ArgumentParser, dict[str, cli.Flag]]:
    flags = cli.config_flags([ToyConfig, SmallToyConfig])
    parser = argparse.ArgumentParser(prog="toy")
    cli.add_config_flags(parser, flags, {"toy": ToyConfig(), "small": SmallToyConfig()})
    return parser, flags


def test_every_field_without_flag_false_becomes_a_flag_then_the_derived_ones():
    flags = cli.config_flags([ToyConfig, SmallToyConfig])
    assert list(flags) == [
        "width", "rate", "mode", "other_rate", "batch_size", "pack",  # width once, shared
        "beta1", "d_output", "label_smoothing",
    ]  # fmt: skip
    assert flags["other_rate"].name == "--other-rate" and flags["other_rate"].metavar == "R"
    assert flags["mode"].choices == ("fast", "slow")


def test_types_only_parse_and_none_means_none_for_an_optional_field():
    parser, _ = toy_parser()
    args = parser.parse_args(["--width", "3", "--rate", "2e-3", "--other-rate", "none"])
    assert (args.width, args.rate, args.other_rate) == (3, 0.002, None)
    assert "mode" not in vars(args)  # left out: absent, so the model's default applies
    assert parser.parse_args(["--width", "-5"]).width == -5  # the config judges, not argparse


@pytest.mark.parametrize(
    "argv, said",
    [
        (["--width", "3.5"], "argument --width: invalid int value: '3.5'"),
        (["--rate", "fast"], "argument --rate: invalid float value: 'fast'"),
        (["--other-rate", "x"], "argument --other-rate: invalid float or 'none' value: 'x'"),
        (["--mode", "medium"], "argument --mode: invalid choice: 'medium'"),
        (["--beta1", "1"], "argument --beta1: must lie in [0, 1), got 1"),
        (["--label-smoothing", "-0.1"], "argument --label-smoothing: must lie in [0, 1), got -0.1"),
        (["--d-output", "probability"], "argument --d-output: invalid choice: 'probability'"),
    ],
)
def test_what_does_not_parse_is_refused_by_the_parser(capsys, argv, said):
    parser, _ = toy_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(argv)
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_help_is_the_fields_help_with_each_models_default(capsys):
    parser, _ = toy_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--width WIDTH width of the toy (default: 8 for toy; 4 for small)" in text
    assert "the toy's rate, in % per step (default: 0.5 for toy)" in text  # % survives argparse
    assert "--other-rate R a second rate (none: rate) (default: none for toy)" in text
    assert "--mode {fast,slow}" in text
    assert "--beta1 BETA1 Adam's beta1, the decay of its running mean of gradients " \
        "(default: 0.9 for toy)" in text  # fmt: skip
    assert "--label-smoothing S" in text and "(default: 0.0 for toy)" in text
    assert "--shape" not in text and "--real-label" not in text and "--betas" not in text


def test_help_adds_what_a_models_own_field_says_where_it_says_something_else(capsys):
    parser, _ = toy_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--width WIDTH width of the toy (default: 8 for toy; 4 for small); for small: " \
        "width of the small toy" in text  # fmt: skip
    assert "(default: 0.5 for toy) --mode" in text  # one help for all: nothing added


def test_a_value_the_config_refuses_is_refused_naming_the_flag():
    parser, flags = toy_parser()
    configs = {"toy": ToyConfig(), "small": SmallToyConfig()}
    for argv, said in [
        (["--width", "0"], "argument --width: must be a positive integer, got 0"),
        (["--other-rate", "-1"], "argument --other-rate: must be a positive number (or none)"),
    ]:
        with pytest.raises(cli.FlagError) as error:
            cli.check_flag_values(parser.parse_args(argv), flags, configs, "toy")
        assert str(error.value).startswith(said)
    # Tried on the chosen model's config (the small toy takes any width), or on the first
    # that has the field (--other-rate: refused later for the small toy anyway).
    cli.check_flag_values(parser.parse_args(["--width", "0"]), flags, configs, "small")
    with pytest.raises(cli.FlagError, match="argument --other-rate"):
        cli.check_flag_values(parser.parse_args(["--other-rate", "-1"]), flags, configs, "small")
    # A refusal that involves other settings is the whole config's, said when it is built.
    cli.check_flag_values(parser.parse_args(["--pack", "3"]), flags, configs, "toy")
    cli.check_flag_values(parser.parse_args(["--width", "5", "--pack", "2"]), flags, configs, "toy")


def test_requested_config_sets_the_fields_and_refuses_a_flag_the_model_lacks():
    parser, flags = toy_parser()
    args = parser.parse_args(["--width", "3", "--beta1", "0.5", "--label-smoothing", "0.25"])
    fields = cli.requested_config(args, flags, "toy", ToyConfig())
    assert fields == {"width": 3, "betas": (0.5, 0.999), "real_label": 0.75}
    assert cli.requested_config(parser.parse_args([]), flags, "toy", ToyConfig()) == {}
    args = parser.parse_args(["--width", "3", "--rate", "0.1"])
    with pytest.raises(cli.FlagError) as error:
        cli.requested_config(args, flags, "small", SmallToyConfig())
    assert str(error.value) == "--rate does not apply to --model small; its settings are --width"


def test_a_preset_comes_first_and_flags_change_it():
    parser, flags = toy_parser()
    preset = ToyConfig(width=20, rate=0.1, betas=(0.2, 0.9))
    args = parser.parse_args(["--rate", "0.3", "--beta1", "0.6"])
    fields = cli.requested_config(args, flags, "toy", ToyConfig(), preset)
    assert fields == {**preset.to_dict(), "rate": 0.3, "betas": (0.6, 0.9)}


def test_a_field_the_command_line_cannot_give_must_say_flag_false():
    @dataclass
    class Untyped:
        sizes: tuple[int, ...] = option((1, 2), "widths")

    with pytest.raises(TypeError, match=r"Untyped.sizes: .* declare the field with 'flag': False"):
        cli.config_flags([Untyped])


@pytest.mark.parametrize(
    "argv, threads",
    [
        ([], 1),
        (["--threads", "3"], 3),
        (["--threads=4", "--epochs", "2"], 4),
        (["--threads", "2", "--threads", "5"], 5),  # the last one, as argparse
        (["--threads", "0"], 1),  # refused later by argparse
        (["--threads", "many"], 1),
        (["--threads"], 1),
        (["--out", "--threads-like-folder"], 1),
    ],
)
def test_threads_are_read_from_the_command_line_before_numpy_loads(argv, threads):
    assert cli.threads_from_argv(argv) == threads


def test_importing_the_cli_module_loads_no_numpy():
    code = "import sys, minigan.cli; print('numpy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False", result.stderr


# --- the GAN family ------------------------------------------------------------------------

# The flags that set config fields before they were generated (examples/mnist_gan.py at the
# commit before issue 24), for each model, and the field each one set.
FLAGS_BEFORE = {
    "gan": ["--batch-size", "--lr", "--d-lr", "--ema", "--minibatch-std", "--pack", "--d-dropout",
            "--latent-dim", "--hidden", "--g-activation", "--generator-loss", "--d-steps",
            "--d-output", "--beta1", "--label-smoothing"],
    "lsgan": ["--batch-size", "--lr", "--latent-dim", "--hidden", "--g-activation", "--d-steps",
              "--beta1"],
    "wgan": ["--batch-size", "--lr", "--latent-dim", "--hidden", "--g-activation", "--n-critic",
             "--clip"],
    "wgan-gp": ["--batch-size", "--lr", "--latent-dim", "--hidden", "--g-activation",
                "--n-critic", "--gp-weight", "--beta1"],
    "dcgan": ["--batch-size", "--lr", "--g-lr", "--ema", "--pack", "--d-dropout", "--d-noise",
              "--d-augment", "--d-norm", "--d-fc-width", "--g-fc-width", "--latent-dim",
              "--base-channels", "--g-full-res-channels", "--generator-loss", "--beta1",
              "--label-smoothing"],
    "cgan": ["--batch-size", "--lr", "--latent-dim", "--hidden", "--g-activation", "--beta1",
             "--label-smoothing"],
    "acgan": ["--batch-size", "--lr", "--latent-dim", "--hidden", "--g-activation", "--beta1",
              "--label-smoothing"],
    "sgan": ["--batch-size", "--lr", "--latent-dim", "--hidden", "--g-activation", "--labels",
             "--beta1"],
}  # fmt: skip
FIELD_OF = {"--beta1": "betas", "--d-output": "logits", "--label-smoothing": "real_label"}
# Flags of other models that a model took over on purpose since: issue 26's convolutional
# networks (--arch conv) and the average of G for lsgan, wgan and wgan-gp, and CGAN's and
# ACGAN's average of G; issue 26's PacGAN critic (--pack) for lsgan, wgan and wgan-gp, and
# ACGAN's convolutional networks (--base-channels, D's --d-dropout); DCGAN's G ending in
# full-size maps (--g-full-res-channels) for lsgan, wgan and wgan-gp.
GAINED_ON_PURPOSE = {
    **{
        model: {"--base-channels", "--ema", "--pack", "--g-full-res-channels"}
        for model in ("lsgan", "wgan", "wgan-gp")
    },
    "acgan": {"--ema", "--base-channels", "--d-dropout"},
    "cgan": {"--ema", "--base-channels"},  # and CGAN's convolutional networks (issue 26)
    # and DCGAN's --d-norm for WGAN's BatchNorm critic (issue 26)
    "wgan": {"--base-channels", "--ema", "--pack", "--g-full-res-channels", "--d-norm"},
}


def test_every_field_of_every_model_config_has_help_or_no_flag():
    from minigan.models import MODELS

    for name, cls in MODELS.items():
        for field in dataclasses.fields(cls.config_class):
            if field.metadata.get("flag", True):
                assert field.metadata.get("help"), f"{name}: {field.name} has no help"
    cli.family_flags()  # every type is one the command line can give


@pytest.mark.parametrize("model", sorted(FLAGS_BEFORE))
def test_every_flag_that_worked_before_still_works_for_the_same_models(model):
    from minigan.models import MODELS

    flags = {flag.name: flag for flag in cli.family_flags().values()}
    fields = {field.name for field in dataclasses.fields(MODELS[model].config_class)}
    for name in FLAGS_BEFORE[model]:
        assert name in flags, name
        field = FIELD_OF.get(name, name.removeprefix("--").replace("-", "_"))
        assert flags[name].field == field and field in fields, (model, name)
    usable = [name for name, flag in flags.items() if flag.field in fields]
    gained = GAINED_ON_PURPOSE.get(model, set())
    for other in {n for names in FLAGS_BEFORE.values() for n in names} - set(FLAGS_BEFORE[model]):
        assert other not in usable or other in gained, f"{other} now applies to --model {model}"
