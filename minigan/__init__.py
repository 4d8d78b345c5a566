"""minigan: a GAN library with every forward and backward pass written by hand.

Modules, in the order a learner might read them:

- ``minigan.backend``: NumPy or CuPy, and moving arrays between them;
- ``minigan.nn``: layers (``Linear``, activations, ``Sequential``);
- ``minigan.losses``: binary cross-entropy, on probabilities and on logits, and the
  GAN family's losses (MSE, Wasserstein, gradient penalty);
- ``minigan.optim``: SGD, Adam and RMSprop;
- ``minigan.gradcheck``: finite-difference checks of any backward pass;
- ``minigan.models``: the GAN family, one file per model (GAN, LSGAN, WGAN, WGAN-GP,
  whose gradient penalty uses the layers' double backward); ``minigan.gan`` re-exports
  the GAN;
- ``minigan.data``: MNIST and Fashion-MNIST, verified, scaled and batched;
- ``minigan.metrics``: FID, Inception Score and class coverage of generated digits.
"""

__version__ = "0.1.0"
