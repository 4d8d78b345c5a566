"""Draw samples from a trained run's checkpoint into a .npy file (and a picture of them).

    python examples/sample.py --checkpoint runs/mnist/checkpoint.npz --sample 10000 \\
        --output samples.npy --grid samples.png
    python examples/evaluate.py samples.npy     # then score them

The same as ``python examples/mnist_gan.py --sample N --checkpoint ... --output ...``:
the samples are float32 in [0, 1], (N, H, W) grey or (N, H, W, 3) colour, written a
chunk at a time (any N fits in memory). A conditional model (cgan, acgan) draws the
digits 0-9 in turn, or only digit K with --label K. Nothing is ever written onto the
checkpoint or a run's files, nor onto anything but a regular file, and an existing
--output or --grid is replaced only with --overwrite. A sample killed outright (SIGKILL)
leaves a hidden temporary file beside --output; the next one there removes it.
"""

from __future__ import annotations

import argparse
import os
import sys

from minigan import cli, runs
from minigan.backend import BackendUnavailableError
from minigan.checkpoint import CheckpointError
from minigan.data import DataError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_sample_flags(parser, required=True)
    parser.add_argument("--seed", type=cli.nonnegative_int, default=0, help="the noise's seed")
    parser.add_argument("--backend", default="numpy", help="'numpy' (CPU) or 'cupy' (GPU)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --output or --grid"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return runs.exit_status(
        lambda: runs.sample_run(args.checkpoint, args.sample, args.output, args.grid,
                                args.label, args.seed, args.backend, args.overwrite,
                                direction=args.direction, pictures=args.input,
                                caption=args.caption),
        (CheckpointError, DataError, runs.RunError, BackendUnavailableError, ValueError, OSError),
    )  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
