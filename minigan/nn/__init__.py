"""Layers with hand-written forward and backward passes.

Read in this order: ``module`` (the contract), ``linear``, ``activations``, then
``conv`` (Conv2d, ConvTranspose2d), ``batchnorm`` and ``reshape`` (Flatten, Unflatten,
and PacGAN's Pack); then the pieces for labels and semi-supervised learning:
``embedding``, ``concat``, ``noise`` (Dropout, GaussianNoise) and ``weight_norm``;
``minibatch_std`` (a discriminator's view of a batch's variety, against mode collapse);
``augment`` (DiffAugment: augmenting what D sees, for small datasets); and CycleGAN's
pieces: ``instancenorm`` (InstanceNorm2d), ``padding`` (ReflectionPad2d) and ``residual``
(Residual, y = x + f(x)). Last, StackGAN's: ``upsample`` (Upsample, nearest-neighbour)
and ``conditioning`` (ConditioningAugmentation: a text code drawn from N(mu(e),
sigma(e)^2), with its KL term). And ``maxout`` (Maxout: the largest of K affine
pieces, the critic of the 2-D mode-collapse benchmarks).

Every forward and backward here is its formula, on NumPy or CuPy arrays alike, and
no layer has a fast path: the one fast kernel minigan keeps is Adam's update
(``minigan/optim.py``; see ``minigan/backend.py``, ``fast_kernel``).
"""

from minigan.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid
from minigan.nn.augment import DiffAugment
from minigan.nn.batchnorm import BatchNorm1d, BatchNorm2d
from minigan.nn.concat import Concat
from minigan.nn.conditioning import ConditioningAugmentation
from minigan.nn.conv import Conv2d, ConvTranspose2d
from minigan.nn.embedding import Embedding
from minigan.nn.instancenorm import InstanceNorm2d
from minigan.nn.linear import Linear
from minigan.nn.maxout import Maxout
from minigan.nn.minibatch_std import MinibatchStdDev
from minigan.nn.module import Module, Parameter, Sequential
from minigan.nn.noise import Dropout, GaussianNoise
from minigan.nn.padding import ReflectionPad2d
from minigan.nn.reshape import Flatten, Pack, Unflatten
from minigan.nn.residual import Residual
from minigan.nn.upsample import Upsample
from minigan.nn.weight_norm import WeightNormLinear

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "Concat",
    "ConditioningAugmentation",
    "Conv2d",
    "ConvTranspose2d",
    "DiffAugment",
    "Dropout",
    "Embedding",
    "Flatten",
    "GaussianNoise",
    "InstanceNorm2d",
    "LeakyReLU",
    "Linear",
    "Maxout",
    "MinibatchStdDev",
    "Module",
    "Pack",
    "Parameter",
    "ReLU",
    "ReflectionPad2d",
    "Residual",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "Unflatten",
    "Upsample",
    "WeightNormLinear",
    "sigmoid",
]
