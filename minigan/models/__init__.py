"""The GAN family: one file per model, each reading like its paper's algorithm box.

Read ``base.py`` first (the step every model shares: noise, ``train_step``, D's update,
G's update through the frozen D, the state), then ``mlp.py`` (the MLPs most models are
built from), ``gan.py`` (the vanilla GAN), ``lsgan.py``, ``wgan.py`` and ``wgan_gp.py``
(the double backward at work), and ``dcgan.py`` (the vanilla GAN with convolutions and
BatchNorm). The labelled models share ``conditional.py``: ``cgan.py`` and ``acgan.py``
(G told the digit), ``sgan.py`` (a classifier from 100 labels; its losses in
``sgan_losses.py``).

``MODELS`` maps each name to its class; a training loop drives any of them
through this interface, and nothing model-specific:

    cls = MODELS["wgan-gp"]
    config = cls.default_config()            # the paper's hyperparameters (a dataclass)
    config = dataclasses.replace(config, hidden=256)       # changed like any dataclass
    model = cls(config, backend="numpy", seed=0, dtype=np.float32)
    model.reseed_noise(seed)                 # restart the noise stream (each epoch)
    stats = model.train_step(real)           # real: (batch, image_size) in [-1, 1]
    images = model.generate(model.sample_noise(64))          # (64, image_size) in [-1, 1]
    state = model.state_dict(); model.load_state_dict(state)  # checkpoints

Class attributes:
    ``name``: the registry key (``"gan"``, ``"lsgan"``, ``"wgan"``, ``"wgan-gp"``, ``"dcgan"``,
        ``"cgan"``, ``"acgan"``, ``"sgan"``), also stored in ``state_dict()["model"]``.
    ``summary``: what the model is, in one line.
    ``config_class``: the config dataclass. Each field is declared with ``base.option``:
        its default (the paper's, or the project's where the model file says why) and a
        one-line help in its metadata, from which the command line's flags are built;
        ``config.to_dict()`` gives the fields and ``config_class(**fields)`` rebuilds it
        (checking every value: a ValueError naming the field).
    ``stats``: ``{stat name: what it means}``, in the order a plot should show them:
        exactly the keys ``train_step`` returns.
    ``default_epochs``: how many epochs a training script runs when not told.
    ``default_config()``: the documented defaults, a fresh copy (the GAN's:
        ``PRESETS["default"]``, one of the named bundles of field values in ``gan.py``).
    ``config_for_images(config, (channels, height, width))``: the config sized for a
        dataset's images (the MLPs take C*H*W inputs; DCGAN its channels and side).
    ``parameter_count(config)``, ``memory_bytes(config, rows)``: sizes from the
        config alone (``mlp.py``, ``dcgan.py``: beside the builders they count), so a
        training script can refuse what cannot fit before allocating anything.
    ``stacked_d_step`` (gan, dcgan): whether D's step is the textbook two passes
        (``GAN.discriminator_step``) or the same update in one stacked pass
        (``GAN.discriminator_step_stacked``, the GAN's; DCGAN's BatchNorm needs two).

Instances:
    ``train_step(real) -> dict``: one discriminator/critic update, and every k-th
        call (``d_steps`` or ``n_critic``) one generator update; the dict holds
        0-d arrays on the model's device (never read back inside the step);
        ``"g_loss"`` is None until the first generator update.
    ``generate(z)``, ``sample_noise(n)``, ``reseed_noise(seed)``: sampling.
    ``image_shape``: one image as the networks take it: (image_size,) for the
        MLPs, (channels, size, size) for DCGAN.
    ``steps``: how many ``train_step`` calls so far (restored by loading a state).
    ``state_dict()`` / ``load_state_dict(state)``: model name, weights, optimizer
        states and ``steps``; loading is all or nothing, a state with no model name
        is refused with a KeyError, and one saved by another model with a ValueError
        naming both (older checkpoints: ``minigan.checkpoint.upgrade`` first).
    ``config``, ``backend``, ``dtype``, ``generator``, ``discriminator``,
    ``g_optimizer``, ``d_optimizer``: the parts, for readers and tests.

The MLP models take images flattened, (batch, image_size); DCGAN takes them as
(batch, channels, size, size): ``model.image_shape`` says which.

Labelled models (two more class attributes, False on ``Model``):
    ``labelled``: trained with digit labels (cgan, acgan, sgan). Labels are integer
        arrays (N,) in [0, 10) (MNIST's uint8 will do). Their range is checked ONCE,
        where they enter, with ``check_labels(where, labels)`` (one read); a training
        step reads nothing back, so on a GPU it checks only dtype, backend and shape
        (NumPy labels, in host memory, are range-checked in every step: no sync).
    ``conditional``: G is told the label (cgan, acgan):
        ``train_step(real, labels)``: labels (batch,) on the model's backend;
        ``sample_labels(n)``: n labels uniform over 0-9, int64, from the noise stream;
        ``generate(z, labels) -> images``: digit labels[i] from z[i] (labels checked:
            one read).
    sgan (labelled, not conditional): a semi-supervised classifier.
        ``set_labelled(train_images, train_labels)`` first: the training images
            (N, image_size) on the backend, their labels a NumPy array on the host;
            the model keeps ``config.labels`` of the labels (n/10 per digit, by its
            seed: ``choose_labelled(labels, n, seed)``), and saves their indices in
            ``state_dict()["labelled_indices"]``: call it again after loading a state
            (either order works) and it uses the saved subset;
        ``train_step(real)``: unlabelled batches, as the unlabelled models;
        ``classify(images) -> logits`` (N, 10), D in evaluation mode (no noise);
        ``error_rate(images, labels) -> float``: the test error (one read).
    ``minigan.metrics.label_accuracy(evaluator, samples, labels)``: per-digit label
    accuracy of a conditional model's samples.
"""

from minigan.models.acgan import ACGAN, ACGANConfig
from minigan.models.base import Model
from minigan.models.cgan import CGAN, CGANConfig
from minigan.models.conditional import check_labels, choose_labelled
from minigan.models.cyclegan import CycleGAN, CycleGANConfig
from minigan.models.dcgan import DCGAN, DCGANConfig
from minigan.models.gan import GAN, PRESETS, GANConfig
from minigan.models.lsgan import LSGAN, LSGANConfig
from minigan.models.mlp import MLPConfig, MLPModel
from minigan.models.sgan import SGAN, SGANConfig
from minigan.models.stackgan import StackGAN, StackGANConfig
from minigan.models.wgan import WGAN, WGANConfig
from minigan.models.wgan_gp import WGANGP, WGANGPConfig

MODELS: dict[str, type[Model]] = {
    model.name: model
    for model in (GAN, LSGAN, WGAN, WGANGP, DCGAN, CGAN, ACGAN, SGAN, CycleGAN, StackGAN)
}

__all__ = [
    "ACGAN",
    "CGAN",
    "DCGAN",
    "GAN",
    "LSGAN",
    "MODELS",
    "PRESETS",
    "SGAN",
    "WGAN",
    "WGANGP",
    "ACGANConfig",
    "CGANConfig",
    "CycleGAN",
    "CycleGANConfig",
    "DCGANConfig",
    "GANConfig",
    "LSGANConfig",
    "MLPConfig",
    "MLPModel",
    "Model",
    "SGANConfig",
    "StackGAN",
    "StackGANConfig",
    "WGANConfig",
    "WGANGPConfig",
    "check_labels",
    "choose_labelled",
]
