"""Train a GAN on MNIST (or Fashion-MNIST, or a folder of pictures) and watch it learn.

    python examples/mnist_gan.py                      # the default recipe, on the CPU
    python examples/mnist_gan.py --backend cupy       # the same, on a GPU
    python examples/mnist_gan.py --preset classic --out runs/classic  # for comparison
    python examples/mnist_gan.py --model wgan-gp --out runs/wgan-gp   # another of the family
    python examples/mnist_gan.py --model dcgan --dataset fashion --out runs/fashion
    python examples/mnist_gan.py --model dcgan --dataset folder:my_pictures \\
        --d-augment color,translation,cutout --d-norm batch --g-full-res-channels 0 \\
        --d-fc-width 0 --g-fc-width 0 --out runs/mine  # the paper's networks, DiffAugment
    python examples/mnist_gan.py --model dcgan --dataset stacked-mnist --pack 2 \\
        --eval-every 1 --out runs/stacked   # 1,000 modes: Stacked MNIST, modes and KL
    python examples/mnist_gan.py --resume             # continue the run in --out
    python examples/mnist_gan.py --sample 10000 --checkpoint runs/mnist/checkpoint.npz \\
        --output samples.npy      # draw samples from a trained model (or examples/sample.py)

Each model (--model, see minigan.models) trains with its paper's defaults; its flags are
its config's fields (minigan/cli.py makes them), flags left out take the defaults, and a
flag the model has no use for is refused.

Everything goes into --out (default runs/mnist): a grid of 64 samples from a fixed
batch of noise after every epoch (samples_epoch_NNN.png), the real data once
(real.png), the loss curves (history.png, history.jsonl), and checkpoint.npz.
A new run never replaces another: an --out that holds a run is refused unless
--resume (continue it) or --overwrite (delete its files first) is given, and a run
holds its --out while it lives (a lock, .minigan.lock): a second one there is refused.
Every option is checked before any work starts (minigan/runs.py); a run that fails then
leaves nothing behind. Ctrl-C or SIGTERM stop a run cleanly (exit 130 or 143), saying
which checkpoint is kept and the command that continues it.

On a GPU, every read of a value back to the host waits for the device, so training
reads only these, each explicitly (tests/test_cupy_path.py counts them): one per
--log-every window (the averaged figures, also checked for NaN/inf there), and after
each epoch one for the sample grid, one per weight array (the averaged G's too) and
Adam moment for the checkpoint, and with --eval-every the samples and the classifier's outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from minigan.cli import threads_from_argv  # loads no NumPy

if __name__ == "__main__":
    # Read by OpenBLAS when NumPy loads, just below: --threads threads (a value set in the
    # shell wins), whose idle threads sleep at once instead of spinning on shared cores.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads_from_argv(sys.argv[1:])))
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from tqdm import tqdm

from minigan import captioned, cli, plane, runs, stacked, threads, unpaired
from minigan.backend import BackendUnavailableError, to_host
from minigan.checkpoint import CheckpointError, check_same_data, save_checkpoint
from minigan.data import BatchIterator, DataError
from minigan.files import WriteError
from minigan.models import MODELS, PRESETS, Model
from minigan.models.conditional import check_labels
from minigan.pictures import EpochPictures

FLAGS = cli.family_flags()  # --lr, --hidden, ...: one per config field (minigan/cli.py)
# Failures that end a run with one line: "error: what happened; what to do" (an OSError
# names the file that cannot be read or written).
ERRORS = (DataError, CheckpointError, runs.RunError, BackendUnavailableError, ValueError, OSError)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train a GAN on MNIST with minigan (or sample from a trained one). "
        "Flags left out take the model's default."
    )
    add = p.add_argument
    summaries = "; ".join(f"{name}: {cls.summary}" for name, cls in MODELS.items())
    add(
        "--model",
        choices=list(MODELS),
        help=f"which GAN: {summaries} (default: gan; on --resume, the run's own)",
    )
    add(
        "--preset",
        choices=list(PRESETS),
        help="with --model gan: 'default' (the best plain MLP GAN we found; the default), "
        "'ema' (the default before D judged pairs of images), 'label-smoothing' (the default "
        "before G's weights were averaged) or 'classic' (the tutorial recipe), for comparison",
    )
    add(
        "--dataset",
        type=cli.dataset_spec,
        help="mnist (the default), fashion (Fashion-MNIST), folder:PATH (every PNG/JPEG "
        "under PATH, centre-cropped and resized to --image-size), 2d-ring or 2d-grid (points "
        "of the plane), or stacked-mnist (three digits as the channels of a 3x28x28 image, "
        "1,000 modes; 25,600 drawn by --seed unless --train-size); domain A of --model cyclegan",
    )
    add("--dataset-b", type=cli.dataset_spec, help="with --model cyclegan: domain B, as --dataset "
        "(default: mnist-striped, the MNIST images domain A leaves, as striped digits)")  # fmt: skip
    add(
        "--image-size",
        type=cli.positive_int,
        help=f"with --dataset folder:PATH: the side of the square images (default: "
        f"{runs.FOLDER_IMAGE_SIZE}; --model dcgan takes 32 or 64)",
    )
    add("--backend", default="numpy", help="'numpy' (CPU, the default) or 'cupy' (GPU)")
    add(
        "--threads",
        type=cli.positive_int,
        default=1,
        help="threads for OpenBLAS's matrix products and minigan's fast kernels (default: 1, "
        "which shares a machine best); OPENBLAS_NUM_THREADS set in the shell wins for OpenBLAS",
    )
    others = ", ".join(f"{cls.default_epochs} for {name}" for name, cls in MODELS.items()
                       if cls.default_epochs != Model.default_epochs)  # fmt: skip
    add(
        "--epochs",
        type=cli.positive_int,
        help=f"total epochs, counting those already done when resuming (default: "
        f"{Model.default_epochs}; {others})",
    )
    add(
        "--seed",
        type=cli.nonnegative_int,
        help="seed for weights, noise and shuffling (default: 0; on --resume, the run's own)",
    )
    add("--out", default="runs/mnist", help="folder for every output (default: runs/mnist)")
    add(
        "--data-dir",
        help="folder of the MNIST (or Fashion-MNIST) files, searched first: it must hold them "
        "(default: $MINIGAN_DATA/mnist, then ${XDG_CACHE_HOME:-~/.cache}/minigan/mnist, fetched)",
    )
    add("--train-size", type=cli.positive_int, help="train on the first N images only (quick "
        "experiments)")  # fmt: skip
    add("--resume", action="store_true", help="continue from OUT/checkpoint.npz up to --epochs")
    add(
        "--overwrite",
        action="store_true",
        help="start a new run even though --out holds one, deleting that run's files first "
        "(only the files a run writes); with --sample: replace an existing --output/--grid",
    )
    add(
        "--log-every",
        type=cli.positive_int,
        default=20,
        help="log the figures averaged over N steps; reading them back is a GPU sync (default: 20)",
    )
    add(
        "--eval-every",
        type=cli.nonnegative_int,
        default=0,
        metavar="K",
        help="every K epochs (and after the last), score samples with FID, Inception Score "
        "and class coverage (minigan.metrics; trains its MNIST or Fashion-MNIST classifier "
        "once, about 3 CPU minutes) and plot FID (default: 0, off); on stacked-mnist, modes "
        "of 1,000 and KL to uniform through that classifier; on a 2-D task, the papers' modes",
    )
    add("--eval-samples", type=cli.positive_int, metavar="N", help="samples scored by "
        "--eval-every (default: 10000; the papers' counts on a 2-D task, 2500, and on "
        "stacked-mnist, 26000)")  # fmt: skip
    cli.add_sample_flags(
        p.add_argument_group("sampling instead of training (as examples/sample.py)")
    )
    cli.add_config_flags(p, FLAGS, cli.family_configs())
    args = p.parse_args(argv)
    try:
        typed = cli.typed_flags(p, sys.argv[1:] if argv is None else argv)  # even = default
        cli.check_flag_values(
            args, FLAGS, cli.family_configs(), args.model or "gan", p.get_default, typed
        )
    except cli.FlagError as error:
        p.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with threads.using(args.threads):  # process-wide: restored on the way out
        work = (lambda: sample(args)) if args.sample is not None else (lambda: train(args))
        return runs.exit_status(work, ERRORS)  # 0; 1: "error: ..."; 130/143: interrupted


def sample(args: argparse.Namespace) -> str:
    """--sample N: draw from a run's checkpoint (as examples/sample.py does)."""
    if args.resume:
        raise runs.RunError("--resume continues training; --sample draws from --checkpoint")
    return runs.sample_run(
        args.checkpoint, args.sample, args.output, args.grid, args.label, args.seed or 0,
        args.backend, args.overwrite, args.model, args.direction, args.data_dir, args.input,
        args.caption,
    )  # fmt: skip


def train(args: argparse.Namespace) -> str:
    with runs.own_folder(Path(args.out)):  # locked: no other run uses --out meanwhile
        plan = runs.plan_training(args)  # every option checked; nothing written before
        if plan.start_epoch == plan.epochs:
            return (f"nothing to do: {plan.checkpoint} already finished epoch {plan.epochs} "
                    f"of {plan.epochs}; pass a larger --epochs to train on")  # fmt: skip
        saved = [plan.start_epoch] if plan.state is not None else []  # epochs in checkpoint.npz
        try:
            return train_planned(args, plan, saved)
        except (KeyboardInterrupt, runs.Diverged, WriteError) as stop:  # say what is kept, and
            resume = runs.resume_command(__file__, args, PARSER_DEFAULTS)  # what to do
            last = saved[-1] if saved else None
            raise runs.stopped(stop, plan.checkpoint, last, resume, plan.config) from None


def train_planned(args: argparse.Namespace, plan: runs.Plan, saved: list[int]) -> str:
    """Train as planned: load the data, build the model, then write only into --out."""
    backend, out, translation = plan.backend, plan.out, plan.model_class.translation
    # A translation model (cyclegan) has two domains: domain A stands in for "the images".
    domains = unpaired.load_for_run(plan, args.data_dir) if translation else None
    images, labels = (domains.a, None) if translation else runs.load_images(plan, args.data_dir)
    check_same_data(plan.state, images.shape[1:], len(images), plan.checkpoint)  # resumed
    if images.shape[1:] != plan.image_shape:  # a folder of grey pictures: one channel
        plan.image_shape = images.shape[1:]
        plan.config = plan.model_class.config_for_images(plan.config, plan.image_shape)
    config, seed, epochs = plan.config, plan.seed, plan.epochs
    runs.check_data_fits(plan, len(images))
    gan = plan.model_class(config, backend, seed=seed)
    x = images.reshape(len(images), *gan.image_shape)  # flat rows for the MLPs
    # A conditional model trains on (images, labels) batches; SGAN keeps its few labels.
    data = (x, labels) if gan.conditional else (x,)
    scheme = captioned.scheme_for_run(plan.dataset, images) if gan.captioned else None
    if scheme is not None:  # StackGAN: each image beside its caption's text embedding
        data = (x, captioned.training_text(scheme, images, labels, config.text_dim, seed))
    if translation:  # A and B shuffled apart
        loader = unpaired.UnpairedBatches(x, domains.b, config.batch_size, seed, backend)
    else:
        loader = BatchIterator(*data, batch_size=config.batch_size, seed=seed, backend=backend)
    if translation or gan.captioned:  # CycleGAN's rate falls to 0; StackGAN's stages
        gan.plan_steps(len(loader) * epochs)
    if gan.labelled:
        check_labels("the training labels", labels)  # once, here: never inside a step
    if gan.labelled and not gan.conditional:  # SGAN: choose its few labelled images (a
        gan.set_labelled(backend.asarray(x), labels)  # resumed run loads its own choice)
    test_set = None
    if plan.model == "sgan":  # it is a classifier too: report its test error
        test_images, test_labels = runs.load_images(plan, args.data_dir, "test")
        test_set = (backend.asarray(test_images.reshape(len(test_images), -1)), test_labels)
    # The inputs of every epoch's picture, fixed: the pictures show one model changing.
    pictures = EpochPictures(gan, plan.dataset, seed, images, domains, scheme)
    scorer = None
    if plan.eval_samples and plan.dataset in plane.DATASETS:  # the papers' 2-D measures
        scorer = plane.PointScorer(gan, plan.dataset, seed, plan.eval_samples)
    elif plan.eval_samples and plan.dataset == stacked.DATASET:  # modes of 1,000, and KL
        scorer = stacked.ModeScorer(gan, seed, plan.eval_samples, args.data_dir)
    elif plan.eval_samples:  # imported only when asked for: it may train its classifier
        from minigan.metrics.epochs import EpochScorer

        scorer = EpochScorer.for_run(
            gan, plan.eval_samples, seed, plan.image_shape, args.data_dir, plan.dataset
        )

    # Only now is anything written, deleted or created in --out.
    runs.prepare_folder(out, args.overwrite)  # --overwrite's deletions; killed writes' litter
    history: list[dict[str, Any]] = []
    if plan.state is not None:
        runs.load_gan_state(gan, plan.state, plan.checkpoint)
        runs.load_loader_state(loader, plan.state, plan.checkpoint)
        history = plan.state["history"]
        print(f"resuming {plan.checkpoint} after epoch {plan.start_epoch}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        pictures.save_real(out)

    def save() -> None:
        runs.save_history(history, out, plan.model_class.stats)
        save_checkpoint(plan.checkpoint, {
            "gan": gan.state_dict(), "loader": loader.state_dict(), "history": history,
            "epoch": epoch + 1, "config": config.to_dict(), "seed": seed,
            "dataset": plan.dataset, "image_shape": list(plan.image_shape),
            **({"dataset_b": plan.dataset_b} if translation else {}),
            **({"captions": scheme.to_dict()} if scheme is not None else {}),
        })  # fmt: skip
        saved.append(epoch + 1)

    started = time.perf_counter()
    for epoch in range(plan.start_epoch, epochs):
        gan.reseed_noise(seed * 1_000_003 + epoch)  # resumable at any epoch boundary
        history += train_epoch(gan, loader, epoch, epochs, args.log_every)
        pictures.save(gan, epoch + 1, out, plan.model)  # samples_epoch_NNN.png
        if test_set is not None:
            error = gan.error_rate(*test_set)
            history.append({"epoch": epoch + 1, "test_error": error})
            tqdm.write(f"epoch {epoch + 1}: test error of D as a classifier {error:.2%}")
        save()  # before evaluating: a failed evaluation never costs the epoch
        if scorer is not None and ((epoch + 1) % args.eval_every == 0 or epoch + 1 == epochs):
            history.append({"epoch": epoch + 1, **scorer.score(gan, epoch + 1, tqdm.write)})
            save()
    minutes, seconds = divmod(round(time.perf_counter() - started), 60)
    return (f"done: epoch {epochs} of {epochs} ({minutes} min {seconds} s this run); samples, "
            f"history.png and checkpoint.npz are in {out}")  # fmt: skip


def train_epoch(gan: Model, loader: BatchIterator, epoch: int, epochs: int, log_every: int):
    """Train one epoch; return its logged rows. Raises Diverged on NaN/inf or explosion."""
    rows = []
    steps = len(loader)
    totals: dict[str, Any] = {}  # figures summed on the device since the last log line
    counts: dict[str, int] = {}
    bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{epochs}", leave=True)
    for step, batch in enumerate(bar):
        batch = batch if isinstance(batch, tuple) else (batch,)  # (images, labels): cgan
        for key, value in gan.train_step(*batch).items():
            if value is not None:  # g_loss is None until G's first update (--d-steps)
                totals[key] = totals.get(key, 0) + value
                counts[key] = counts.get(key, 0) + 1
        if step % log_every == log_every - 1 or step == steps - 1:
            # Reading values back waits for the GPU: one read per log line, all figures at once.
            keys = list(totals)
            sums = to_host(gan.backend.xp.stack([totals[k] for k in keys]))
            row = {k: float(total) / counts[k] for k, total in zip(keys, sums)}
            totals, counts = {}, {}
            problem = runs.figures_diverged(row)  # NaN, inf or beyond runs.EXPLODED
            if problem:
                bar.close()
                first = step - step % log_every  # the window these figures average over
                raise runs.Diverged(
                    f"{problem} at epoch {epoch + 1}, step "
                    f"{first + 1}-{step + 1} of {steps} (global step {gan.steps - step + first}"
                    f"-{gan.steps}); training stopped"
                )
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()}, refresh=False)
            rows.append({"epoch": epoch + (step + 1) / steps, **row})
    return rows


PARSER_DEFAULTS = vars(parse_args([]))  # the resume command leaves these out

if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
