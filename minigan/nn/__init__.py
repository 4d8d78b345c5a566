"""Layers with hand-written forward and backward passes.

Read in this order: ``module`` (the contract), ``linear``, ``activations``, then
``conv`` (Conv2d, ConvTranspose2d), ``batchnorm`` and ``reshape`` (Flatten, Unflatten,
and PacGAN's Pack); then the pieces for labels and semi-supervised learning:
``embedding``, ``concat``, ``noise`` (Dropout, GaussianNoise) and ``weight_norm``;
``minibatch_std`` (a discriminator's view of a batch's variety, against mode collapse);
and ``augment`` (DiffAugment: augmenting what D sees, for small datasets).

Every forward and backward here is its formula, on NumPy or CuPy arrays alike, and
no layer has a fast path: the one fast kernel minigan keeps is Adam's update
(``minigan/optim.py``; see ``minigan/backend.py``, ``fast_kernel``).
"""

from minigan.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid
from minigan.nn.augment import DiffAugment
from minigan.nn.batchnorm import BatchNorm1d, BatchNorm2d
from minigan.nn.concat import Concat
from minigan.nn.conv import Conv2d, ConvTranspose2d
from minigan.nn.embedding import Embedding
from minigan.nn.linear import Linear
from minigan.nn.minibatch_std import MinibatchStdDev
from minigan.nn.module import Module, Parameter, Sequential
from minigan.nn.noise import Dropout, GaussianNoise
from minigan.nn.reshape import Flatten, Pack, Unflatten
from minigan.nn.weight_norm import WeightNormLinear

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "Concat",
    "Conv2d",
    "ConvTranspose2d",
    "DiffAugment",
    "Dropout",
    "Embedding",
    "Flatten",
    "GaussianNoise",
    "LeakyReLU",
    "Linear",
    "MinibatchStdDev",
    "Module",
    "Pack",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "Unflatten",
    "WeightNormLinear",
    "sigmoid",
]
