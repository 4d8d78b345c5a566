"""The same network in PyTorch: build a ``torch.nn`` twin of a minigan model, weights included.

One converter serves every parity test and benchmark, so none of them rebuilds a
generator or discriminator by hand:

    >>> from minigan.testing.pytorch import to_torch       # doctest: +SKIP
    >>> twin = to_torch(gan.discriminator)                  # doctest: +SKIP
    >>> twin(torch.from_numpy(x))                           # the same scores as D(x)

minigan names its parameters as PyTorch does ("0.weight", "2.bias", ...), so the
weights move by name through ``state_dict`` (weight normalisation's g and v are
renamed to PyTorch's parametrization names). Layers are mapped one to one; a
layer with no PyTorch twin here (``Concat``, ``GaussianNoise``) raises
``TypeError`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minigan import nn
from minigan.backend import to_host


def _conv_twin(m: nn.Module, tnn: Any) -> Any:
    args = (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
    if isinstance(m, nn.ConvTranspose2d):
        return tnn.ConvTranspose2d(*args, m.output_padding, bias=m.bias is not None)
    return tnn.Conv2d(*args, bias=m.bias is not None)


def _minibatch_std_twin(m: nn.MinibatchStdDev, tnn: Any) -> Any:
    """PyTorch has no such layer: its forward in torch operations (autograd gives backward)."""
    import torch

    class MinibatchStdDev(tnn.Module):
        def forward(self, x: Any) -> Any:
            n, G, rest = x.shape[0], m.group_size, x.shape[1:]
            groups = x.reshape(n // G, G, *rest)
            sig = torch.sqrt(groups.var(dim=1, unbiased=False, keepdim=True) + m.EPS)
            s = sig.mean(dim=tuple(range(2, sig.ndim)), keepdim=True)
            appended = s.expand(n // G, G, 1, *rest[1:]).reshape(n, 1, *rest[1:])
            return torch.cat([x, appended], dim=1)

    return MinibatchStdDev()


def _pack_twin(m: nn.Pack, tnn: Any) -> Any:
    """PyTorch has no such layer: a reshape (as PacGAN's code writes it in its D)."""

    class Pack(tnn.Module):
        def forward(self, x: Any) -> Any:
            return x.reshape(x.shape[0] // m.m, m.m * x.shape[1], *x.shape[2:])

    return Pack()


def _maxout_twin(m: nn.Maxout, tnn: Any) -> Any:
    """PyTorch has no Maxout: a Linear to out * K, viewed as (N, out, K), maxed over K."""
    import torch

    class Maxout(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            rows = m.out_features * m.pieces
            self.weight = tnn.Parameter(torch.empty(rows, m.in_features))
            self.bias = tnn.Parameter(torch.empty(rows))

        def forward(self, x: Any) -> Any:
            z = tnn.functional.linear(x, self.weight, self.bias)
            return z.view(x.shape[0], m.out_features, m.pieces).max(dim=2).values

    return Maxout()


def _residual_twin(m: nn.Residual, tnn: Any) -> Any:
    """PyTorch has no such layer: y = x + body(x) (the parameters keep the names body.*)."""

    class Residual(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _twin_layer(m.body, tnn)

        def forward(self, x: Any) -> Any:
            return x + self.body(x)

    return Residual()


def _twin_layer(layer: nn.Module, tnn: Any) -> Any:
    """The ``torch.nn`` layer that computes what ``layer`` computes (weights not copied)."""
    makers: dict[type, Callable[[Any], Any]] = {
        nn.Linear: lambda m: tnn.Linear(m.in_features, m.out_features),
        nn.Conv2d: lambda m: _conv_twin(m, tnn),
        nn.ConvTranspose2d: lambda m: _conv_twin(m, tnn),
        nn.BatchNorm1d: lambda m: tnn.BatchNorm1d(
            m.num_features, eps=m.eps, momentum=m.momentum, affine=m.weight is not None
        ),
        nn.BatchNorm2d: lambda m: tnn.BatchNorm2d(
            m.num_features, eps=m.eps, momentum=m.momentum, affine=m.weight is not None
        ),
        nn.Flatten: lambda m: tnn.Flatten(m.start_dim, m.end_dim),
        nn.Unflatten: lambda m: tnn.Unflatten(m.dim, m.unflattened_size),
        nn.ReLU: lambda m: tnn.ReLU(),
        nn.LeakyReLU: lambda m: tnn.LeakyReLU(m.negative_slope),
        nn.Tanh: lambda m: tnn.Tanh(),
        nn.Sigmoid: lambda m: tnn.Sigmoid(),
        nn.Embedding: lambda m: tnn.Embedding(m.num_embeddings, m.embedding_dim),
        nn.Dropout: lambda m: tnn.Dropout(m.p).train(m.training),
        nn.WeightNormLinear: lambda m: tnn.utils.parametrizations.weight_norm(
            tnn.Linear(m.in_features, m.out_features)
        ),
        nn.MinibatchStdDev: lambda m: _minibatch_std_twin(m, tnn),
        nn.Pack: lambda m: _pack_twin(m, tnn),
        nn.Maxout: lambda m: _maxout_twin(m, tnn),
        nn.InstanceNorm2d: lambda m: tnn.InstanceNorm2d(m.num_features, eps=m.eps),
        nn.ReflectionPad2d: lambda m: tnn.ReflectionPad2d(m.padding),
        nn.Residual: lambda m: _residual_twin(m, tnn),
        nn.Upsample: lambda m: tnn.Upsample(scale_factor=m.scale, mode="nearest"),
        nn.Sequential: lambda m: tnn.Sequential(*(_twin_layer(inner, tnn) for inner in m)),
    }
    make = makers.get(type(layer))
    if make is None:
        raise TypeError(f"to_torch: no PyTorch twin for {layer!r} ({type(layer).__name__})")
    return make(layer)


def _twin_state(layer: nn.Module, prefix: str = "") -> dict[str, Any]:
    """``layer.state_dict()`` under the names (and shapes) its twin uses.

    The names are the same except for weight normalisation, which PyTorch keeps as
    ``parametrizations.weight.original0`` (g, shaped (out, 1)) and ``original1`` (v).
    """
    if isinstance(layer, nn.Sequential):
        return {
            name: value
            for index, inner in enumerate(layer)
            for name, value in _twin_state(inner, f"{prefix}{index}.").items()
        }
    if isinstance(layer, nn.Residual):
        return _twin_state(layer.body, f"{prefix}body.")
    state = layer.state_dict()
    if isinstance(layer, nn.WeightNormLinear):
        state = {
            "parametrizations.weight.original0": state["weight_g"][:, None],
            "parametrizations.weight.original1": state["weight_v"],
            "bias": state["bias"],
        }
    return {prefix + name: value for name, value in state.items()}


def to_torch(model: nn.Module, dtype: Any = None) -> Any:
    """A ``torch.nn`` module computing what ``model`` computes: same layers, parameters,
    buffers (BatchNorm's running statistics) and mode (``train`` / ``eval``).

    Args:
        model: a minigan layer or ``Sequential`` (on any backend).
        dtype: the twin's floating dtype (a ``torch.dtype``); default: the model's own.
    """
    import torch

    state = {name: torch.from_numpy(to_host(value)) for name, value in _twin_state(model).items()}
    twin = _twin_layer(model, torch.nn)
    floats = [value.dtype for value in state.values() if value.is_floating_point()]
    if dtype is not None or floats:
        twin = twin.to(dtype or floats[0])  # .to moves floating tensors only
    twin.load_state_dict(state)
    return twin.train(model.training)
