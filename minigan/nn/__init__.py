"""Layers with hand-written forward and backward passes.

Read in this order: ``module`` (the contract), ``linear``, ``activations``.
"""

from minigan.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid
from minigan.nn.linear import Linear
from minigan.nn.module import Module, Parameter, Sequential

__all__ = [
    "LeakyReLU",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "sigmoid",
]
