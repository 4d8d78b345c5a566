"""minigan: a GAN library with every forward and backward pass written by hand.

The reading wing holds the formulas, in the order a learner might read them:

- ``minigan.backend``: NumPy or CuPy, found from the data; the one line between host
  and device; and ``fast_kernel``, the one door through which the workshop may swap a
  named formula for a twin tested to give the same numbers;
- ``minigan.nn``: the layers (``Module``, ``Linear``, activations, ``Sequential``,
  convolutions, BatchNorm, ...), each backward right under its forward;
- ``minigan.losses``: binary cross-entropy, on probabilities and on logits, and the
  GAN family's losses (MSE, Wasserstein, gradient penalty);
- ``minigan.gradcheck``: finite-difference checks of any backward pass;
- ``minigan.optim``: SGD, Adam and RMSprop, each step its formula;
- ``minigan.models``: the GAN family, one file per model: ``base`` (the step skeleton
  every model shares), ``gan`` (the vanilla GAN), then ``lsgan``, ``wgan``, ``wgan_gp``,
  ``dcgan``, ``cgan``, ``acgan``, ``sgan``; ``minigan.gan`` re-exports the vanilla GAN;
- ``minigan.ema``: the moving average of G's weights.

The workshop holds the machinery and is never imported by the reading wing:
``minigan.threads`` (threads and fast kernels), ``minigan.runs``, ``minigan.checkpoint``,
``minigan.files``, ``minigan.data``, ``minigan.metrics``, ``minigan.images`` and
``minigan.plotting``.
"""

__version__ = "0.1.0"
