"""Layers with hand-written forward and backward passes.

Read in this order: ``module`` (the contract), ``linear``, ``activations``, then
the pieces for labels and semi-supervised learning: ``embedding``, ``concat``,
``noise`` (Dropout, GaussianNoise) and ``weight_norm``.
"""

from minigan.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid
from minigan.nn.concat import Concat
from minigan.nn.embedding import Embedding
from minigan.nn.linear import Linear
from minigan.nn.module import Module, Parameter, Sequential
from minigan.nn.noise import Dropout, GaussianNoise
from minigan.nn.weight_norm import WeightNormLinear

__all__ = [
    "Concat",
    "Dropout",
    "Embedding",
    "GaussianNoise",
    "LeakyReLU",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "WeightNormLinear",
    "sigmoid",
]
