"""Parameters, the Module contract, and Sequential.

Every layer in minigan follows one contract, the same one PyTorch users know:

- ``y = m.forward(x)`` (or ``m(x)``) computes the output and caches what the
  backward pass will need;
- ``dx = m.backward(dy)`` takes dL/dy, returns dL/dx, and ADDS each parameter's
  dL/dparam into ``param.grad`` (so gradients from several backward passes sum up,
  as in PyTorch) until ``m.zero_grad()``. ``m.backward(dy, input_grad=False)``
  returns None instead of dL/dx, for when x is data that nothing upstream
  learns from: ``Linear`` then skips a whole matrix product;
- ``m.parameters()`` lists the ``Parameter`` objects; optimizers update their
  ``.data`` in place.

There is no autograd: a module only knows how to undo its own forward pass, and
``Sequential`` chains those undos in reverse order. That is all backpropagation is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from minigan.backend import Backend, get_array_module, get_backend, host_copy


class Parameter:
    """A trainable array and the gradient accumulated for it.

    Attributes:
        data: the values (a NumPy or CuPy array).
        grad: dL/d(data), same shape, dtype and backend as ``data``; backward adds to it.
        requires_grad: when False, backward passes skip this gradient (the layer's
            input gradient is still computed). A GAN uses this to send the generator's
            gradient through the discriminator without computing the discriminator's.
    """

    def __init__(self, data: Any):
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)
        self.requires_grad = True

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class: parameter bookkeeping shared by every layer.

    Subclasses set ``Parameter`` (and sub-``Module``) attributes in ``__init__`` and
    implement ``forward`` and ``backward``. Parameter names come from the attribute
    names, in the order they were set (``weight`` before ``bias``).
    """

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    def forward(self, x: Any) -> Any:
        raise NotImplementedError

    def backward(self, grad_out: Any, input_grad: bool = True) -> Any:
        raise NotImplementedError

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(name, parameter)`` pairs, e.g. ``("0.weight", p)`` inside a Sequential."""
        for attr, value in vars(self).items():
            if isinstance(value, Parameter):
                yield attr, value
            elif isinstance(value, Module):
                for name, param in value.named_parameters():
                    yield f"{attr}.{name}", param

    def parameters(self) -> list[Parameter]:
        return [param for _, param in self.named_parameters()]

    def zero_grad(self) -> None:
        """Reset every parameter's accumulated gradient to zero (in place)."""
        for param in self.parameters():
            param.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch the parameter gradients of the whole module on or off."""
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def to(self, backend: str | Backend | None = None, *, dtype: Any = None) -> Module:
        """Move the parameters to ``backend`` and/or convert them to ``dtype``, in place.

        Gradients follow their parameters (and are reset to zero). Create optimizers
        after this call: they hold on to the arrays that exist when they are made.
        """
        target = get_backend(backend) if backend is not None else None
        for param in self.parameters():
            data = param.data
            if target is not None:
                data = target.asarray(data)
            if dtype is not None:
                data = data.astype(dtype, copy=False)
            param.data = data
            param.grad = get_array_module(data).zeros_like(data)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter values by PyTorch-style name, as host NumPy copies."""
        return {name: host_copy(param.data) for name, param in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy values into the parameters, in place, keeping their dtype and backend.

        Raises KeyError for missing or unexpected names and ValueError for a shape
        mismatch, before anything is changed, so a failed load leaves the module as
        it was. Values may be NumPy arrays or anything ``numpy.asarray`` accepts (a
        PyTorch CPU tensor's ``.numpy()``, say).
        """
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: names do not match "
                f"(missing: {missing or 'none'}; unexpected: {unexpected or 'none'})"
            )
        for name, param in params.items():
            got = tuple(np.shape(state[name]))
            if got != param.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: '{name}' has shape {got}, "
                    f"this model expects {param.shape}"
                )
        for name, param in params.items():
            value = state[name]
            if get_array_module(param.data) is not np:
                value = get_array_module(param.data).asarray(value)
            param.data[...] = value


class Sequential(Module):
    """Layers applied one after another: ``y = f_n(...f_2(f_1(x)))``.

    Backward is the chain rule read right to left: each layer turns dL/d(its output)
    into dL/d(its input), which is exactly the gradient the layer before it needs.

        dL/dx = J_1^T (J_2^T ( ... (J_n^T dL/dy)))
    """

    def __init__(self, *layers: Module):
        for index, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential: argument {index} is a {type(layer).__name__}, not a Module"
                )
        self.layers = list(layers)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out: Any, input_grad: bool = True) -> Any:
        first, *rest = self.layers
        for layer in reversed(rest):
            grad_out = layer.backward(grad_out)
        return first.backward(grad_out, input_grad=input_grad)

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for index, layer in enumerate(self.layers):
            for name, param in layer.named_parameters():
                yield f"{index}.{name}", param

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
