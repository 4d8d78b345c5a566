"""The PyTorch twin of a minigan network: the same layers with the same weights.

For the parity tests and the benchmarks, which compare minigan with PyTorch on one
model. PyTorch is never a runtime dependency: it is imported only when this is called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigan import nn


def torch_layer(layer: nn.Module, torch: Any) -> Any:
    """The ``torch.nn`` module that computes what ``layer`` computes (weights not copied)."""
    tnn = torch.nn
    if isinstance(layer, nn.Sequential):
        return tnn.Sequential(*(torch_layer(inner, torch) for inner in layer))
    if isinstance(layer, nn.Linear):
        return tnn.Linear(layer.in_features, layer.out_features)
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        args = (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride)
        bias = layer.bias is not None
        if isinstance(layer, nn.Conv2d):
            return tnn.Conv2d(*args, layer.padding, bias=bias)
        return tnn.ConvTranspose2d(*args, layer.padding, layer.output_padding, bias=bias)
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return getattr(tnn, type(layer).__name__)(
            layer.num_features, eps=layer.eps, momentum=layer.momentum,
            affine=layer.weight is not None,
        )  # fmt: skip
    if isinstance(layer, nn.LeakyReLU):
        return tnn.LeakyReLU(layer.negative_slope)
    if isinstance(layer, nn.Flatten):
        return tnn.Flatten(layer.start_dim, layer.end_dim)
    if isinstance(layer, nn.Unflatten):
        return tnn.Unflatten(layer.dim, layer.unflattened_size)
    if isinstance(layer, (nn.ReLU, nn.Tanh, nn.Sigmoid)):
        return getattr(tnn, type(layer).__name__)()
    raise TypeError(f"torch_twin: no PyTorch twin for {layer!r}")


def torch_twin(model: nn.Module, dtype: Any = None) -> Any:
    """A ``torch.nn`` copy of ``model``: same layers, parameters and buffers, same mode.

    ``dtype`` (a torch dtype) defaults to the model's own (float32 or float64).
    """
    import torch

    twin = torch_layer(model, torch)
    state = model.state_dict()
    if dtype is None:
        first = next(v for v in state.values() if np.issubdtype(v.dtype, np.floating))
        dtype = torch.float64 if first.dtype == np.float64 else torch.float32
    twin = twin.to(dtype)
    twin.load_state_dict({name: torch.from_numpy(value) for name, value in state.items()})
    return twin.train(model.training)
