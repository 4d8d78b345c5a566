"""Layers with hand-written forward and backward passes.

Read in this order: ``module`` (the contract), ``linear``, ``activations``, then
``conv`` (Conv2d, ConvTranspose2d), ``batchnorm`` and ``reshape``.
"""

from minigan.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid
from minigan.nn.batchnorm import BatchNorm1d, BatchNorm2d
from minigan.nn.conv import Conv2d, ConvTranspose2d
from minigan.nn.linear import Linear
from minigan.nn.module import Module, Parameter, Sequential
from minigan.nn.reshape import Flatten, Unflatten

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "Unflatten",
    "sigmoid",
]
