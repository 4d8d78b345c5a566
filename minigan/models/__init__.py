"""The GAN family: one file per model, each reading like its paper's algorithm box.

Read ``base.py`` first (what they share), then ``gan.py`` (the vanilla GAN),
``lsgan.py``, ``wgan.py`` and ``wgan_gp.py`` (the double backward at work), and
``dcgan.py`` (the vanilla GAN with convolutions and BatchNorm). The labelled models
share ``conditional.py``: ``cgan.py`` and ``acgan.py`` (G told the digit), ``sgan.py``
(a classifier from 100 labels).

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
        ``"cgan"``, ``"acgan"``, ``"sgan"``),
        also stored in ``state_dict()["model"]``.
    ``summary``: what the model is, in one line.
    ``config_class``: the config dataclass; ``config.to_dict()`` gives its fields
        and ``config_class(**fields)`` rebuilds it (checking every value).
    ``stats``: ``{stat name: what it means}``, in the order a plot should show them:
        exactly the keys ``train_step`` returns.
    ``default_config()``: the documented defaults, a fresh copy.
    ``config_for_images(config, (channels, height, width))``: the config sized for a
        dataset's images (the MLPs take C*H*W inputs; DCGAN its channels and side).
    ``parameter_count(config)``, ``memory_bytes(config, rows)``: sizes from the
        config alone, so a training script can refuse what cannot fit before
        allocating anything.

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
        states and ``steps``; loading is all or nothing, and a state saved by
        another model is refused with a ValueError naming both.
    ``config``, ``backend``, ``dtype``, ``generator``, ``discriminator``,
    ``g_optimizer``, ``d_optimizer``: the parts, for readers and tests.

Default configs (batch size, networks: hidden width and G's activation, optimizer):
    gan:     PRESETS["default"]: batch 100, hidden 512, leaky_relu, logits,
             Adam lr 4e-4 betas (0.5, 0.999), real_label 0.9, d_steps 1, D judging
             pairs of images (pack 2), sampled from the moving average of G's
             weights (ema 0.999); 20 epochs
    lsgan:   batch 100, hidden 512, leaky_relu, Adam lr 2e-4 betas (0.5, 0.999), d_steps 1
    wgan:    batch 64, hidden 512, leaky_relu, RMSprop lr 5e-5, clip 0.01, n_critic 5
    wgan-gp: batch 64, hidden 512, leaky_relu, Adam lr 1e-4 betas (0.5, 0.9),
             gp_weight (lambda) 10, n_critic 5
    dcgan:   batch 32, z 100, convolutions 32 and 64 channels (28x28), BatchNorm in G
             only, G's last block 16 maps of the image's size and a 3x3 convolution,
             fully connected hidden layers of 128 units in D and 256 in G,
             Adam betas (0.5, 0.999), lr 4e-4 for D and 2e-3 for G, BCE on logits,
             one D update per G update, D judging pairs of images (pack 2),
             sampled from the average of G (ema 0.999); 6 epochs

The MLP models take images flattened, (batch, image_size); DCGAN takes them as
(batch, channels, size, size): ``model.image_shape`` says which.

Labelled models (two more class attributes, False on ``Model``):
    ``labelled``: trained with digit labels (cgan, acgan, sgan). Labels are integer
        arrays (N,) in [0, 10) (MNIST's uint8 will do). Their range is checked ONCE,
        where they enter, with ``check_labels(where, labels)`` (one read); a training
        step reads nothing back, so it checks only dtype, backend and shape.
    ``conditional``: G is told the label (cgan, acgan):
        ``train_step(real, labels)``: labels (batch,) on the model's backend;
        ``sample_labels(n)``: n labels uniform over 0-9, int64, from the noise stream;
        ``generate(z, labels) -> images``: digit labels[i] from z[i] (labels checked:
            one read).
    sgan (labelled, not conditional): a semi-supervised classifier.
        ``set_labelled(train_images, train_labels)`` first: the training images
            (N, image_size) on the backend, their labels a NumPy array on the host;
            the model keeps ``config.labels`` of the labels (10 per digit, by its
            seed: ``choose_labelled(labels, n, seed)``), and saves their indices in
            ``state_dict()["labelled_indices"]``: call it again after loading a state
            (either order works) and it uses the saved subset;
        ``train_step(real)``: unlabelled batches, as the unlabelled models;
        ``classify(images) -> logits`` (N, 10), D in evaluation mode (no noise);
        ``error_rate(images, labels) -> float``: the test error (one read).
    ``minigan.metrics.label_accuracy(evaluator, samples, labels)``: per-digit label
    accuracy of a conditional model's samples.

    cgan:    batch 100, z 64, hidden 512, leaky_relu, G's label vectors of 50, a projection
             D (label vectors of 512), Adam lr 2e-4 betas (0.5, 0.999), real_label 0.9
    acgan:   the same G and recipe; D with no label input and 21 outputs (real/fake,
             10 classes learnt on real digits, 10 twin classes learnt on G's, the
             twin's CE weighted 0.5 in G's loss)
    sgan:    batch 100, z 100, G hidden 500 relu; D 784-1000-500-250-250-250-10 with
             weight norm, Gaussian noise 0.3 (input) and 0.5 (hidden); 100 labels;
             Adam lr 3e-3 betas (0.5, 0.999)
"""

from minigan.models.acgan import ACGAN, ACGANConfig
from minigan.models.base import MLPConfig, Model
from minigan.models.cgan import CGAN, CGANConfig
from minigan.models.conditional import check_labels, choose_labelled
from minigan.models.dcgan import DCGAN, DCGANConfig
from minigan.models.gan import GAN, PRESETS, GANConfig
from minigan.models.lsgan import LSGAN, LSGANConfig
from minigan.models.sgan import SGAN, SGANConfig
from minigan.models.wgan import WGAN, WGANConfig
from minigan.models.wgan_gp import WGANGP, WGANGPConfig

MODELS: dict[str, type[Model]] = {
    model.name: model for model in (GAN, LSGAN, WGAN, WGANGP, DCGAN, CGAN, ACGAN, SGAN)
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
    "DCGANConfig",
    "GANConfig",
    "LSGANConfig",
    "MLPConfig",
    "Model",
    "SGANConfig",
    "WGANConfig",
    "WGANGPConfig",
    "check_labels",
    "choose_labelled",
]
