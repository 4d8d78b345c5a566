"""Parameters, the Module contract, and Sequential.

Every layer in minigan follows one contract, the same one PyTorch users know:

- ``y = m.forward(x)`` (or ``m(x)``) computes the output and keeps what the
  backward pass will need (``self.save_for_backward(...)``);
- ``dx = m.backward(dy)`` takes dL/dy, the gradient of the loss with respect to
  the layer's output, returns dL/dx, the gradient with respect to its input, and
  ADDS each parameter's dL/dparam into ``param.grad`` (so gradients from several
  backward passes sum up, as in PyTorch) until ``m.zero_grad()``;
- ``m.backward(dy, input_grad=False)`` says nobody needs dL/dx (x is data that
  nothing upstream learns from). It is a hint: a layer where dL/dx costs real
  work skips it and returns None (``Linear`` saves a whole matrix product);
  elementwise layers return dL/dx anyway, since it is one multiply;
- ``m.parameters()`` lists the ``Parameter`` objects; optimizers update their
  ``.data`` in place;
- ``m.train()`` / ``m.eval()`` set the ``training`` flag of ``m`` and every module
  inside it; only layers that behave differently in the two modes read it
  (``BatchNorm``: batch statistics in training, running statistics in evaluation);
- a layer may keep *buffers*: arrays that are state but not trainable (BatchNorm's
  running statistics), named in ``buffer_names``. They travel with ``state_dict``,
  ``load_state_dict`` and ``to``, as PyTorch's buffers do, but no optimizer sees them.
- ``m.shared_copy()`` is a second module with the same Parameters and its own
  forward cache, for a network applied twice in one step (CycleGAN);
- ``gg_out, gx = m.double_backward(gg_in)`` differentiates the backward pass
  itself (see "Double backward" below); it needs the backward it differentiates
  to have run with ``create_graph=True``.

Every layer's backward has one signature, ``backward(grad_out, input_grad=True,
create_graph=False)``; a layer without a double backward says so when
``create_graph`` is set (``first_order_only``) instead of failing later.

Backward reads what forward saved, so the forward input must not change in place
between the two (``x *= 2`` after ``y = m(x)`` would give a wrong dL/dW): make a
new array instead.

There is no autograd: each module knows only the derivative of its own forward
map, and turns dL/d(output) into dL/d(input). ``Sequential`` chains those steps
in reverse order. That is all backpropagation is.

Double backward
---------------
Some losses are functions of a gradient: WGAN-GP penalises the norm of the
critic's input gradient dx = dD/dx. To train on such a loss L(dx) we need dL/dθ
for the parameters θ, and dx was itself computed by a backward pass. So we
differentiate the backward pass. Seen as a function, a layer's backward is

    dx = B(dy, x, θ)        (dy: the gradient it was handed; x, θ: what forward saw)

and, given gg_in = dL/d(dx), its ``double_backward`` returns the two other
gradients of L through B, and adds the third into the parameters:

    gg_out = dL/d(dy) = (dB/d(dy))^T gg_in     the "grad of the grad", handed on
    gx     = dL/dx    = (dB/dx)^T gg_in        only through B's dependence on x
    θ.grad += (dB/dθ)^T gg_in

B is linear in dy, so gg_out is the layer's backward map transposed: for
Linear that is its forward map again. gx is nonzero only where the derivative
depends on x (through f''); for Linear, ReLU and LeakyReLU it is zero and
``double_backward`` returns ``None`` for it, so nobody multiplies by zeros.

What must be kept: forward's cache (as for backward), plus the ``dy`` the
backward pass was handed, which the terms above multiply by. Keeping every
layer's dy would cost memory on every ordinary training step, for nothing; so a
backward pass keeps it only when asked, with ``backward(dy, create_graph=True)``
(PyTorch's name for "this backward will itself be differentiated"). Layers that
do not need dy (ReLU, LeakyReLU) accept the flag and keep nothing; layers with no
``double_backward`` refuse it. A new forward clears what the last backward kept.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np

from minigan.backend import Backend, get_array_module, get_backend, to_host
from minigan.nn.checks import check_array, require_forward


class Parameter:
    """A trainable array and the gradient accumulated for it.

    Attributes:
        data: the values (a NumPy or CuPy array).
        grad: dL/d(data), same shape, dtype and backend as ``data``; backward adds to it.
        requires_grad: when False, backward passes skip this gradient (the layer's
            input gradient is still computed). A GAN uses this to send the generator's
            gradient through the discriminator without computing the discriminator's.
        optimizer: the optimizer whose flat buffers ``data`` and ``grad`` view, if any.
    """

    def __init__(self, data: Any):
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)
        self.requires_grad = True
        self.optimizer = None  # set by the optimizer that packs it (a weak reference)

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

    ``forward`` ends with ``self.save_for_backward(...)``; ``backward`` starts with
    ``self.saved(grad_out)``, which returns what was saved after checking that
    forward ran and that ``grad_out`` fits the forward output (backend, dtype,
    shape). The backward body is then the derivative and nothing else.
    """

    _saved: tuple[Any, ...] | None = None  # what forward kept for backward
    _grad_like: tuple[Any, Any, tuple[int, ...]] | None = None  # dL/d(output)'s xp, dtype, shape
    training: bool = True  # set by train() / eval(); modules start in training mode
    buffer_names: tuple[str, ...] = ()  # attributes holding non-trainable state arrays
    _saved_grad_out: Any = None  # backward's dy, kept by backward(..., create_graph=True)

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    def forward(self, x: Any) -> Any:
        raise NotImplementedError

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        raise NotImplementedError

    def double_backward(self, grad_grad_in: Any) -> tuple[Any, Any]:
        """Differentiate the last backward pass: ``(dL/d(dy), dL/dx or None)``; see the module doc."""
        raise NotImplementedError(f"{type(self).__name__} has no double_backward")

    def first_order_only(self, create_graph: bool) -> None:
        """Refuse ``backward(..., create_graph=True)`` in a layer with no double backward.

        Called first in such a layer's backward, so that asking for a second-order
        pass fails there, naming the layer, rather than in a later ``double_backward``.
        """
        if create_graph:
            raise NotImplementedError(
                f"{self!r}: backward(create_graph=True) is not supported: it has no double_backward"
            )

    def save_for_backward(
        self, *saved: Any, output_shape: tuple[int, ...] | None = None, like: Any = None
    ) -> None:
        """Keep ``saved`` for the backward pass (PyTorch's ``ctx.save_for_backward``).

        The incoming gradient dL/d(output) must have the forward output's shape,
        ``output_shape``, and the backend and dtype of the array ``like``. Both
        default to the first saved array's (right for elementwise layers, whose
        output has the input's shape). ``like`` is read here, not kept: a layer
        that needs only a shape saves the shape and passes its input as ``like``.
        """
        like = saved[0] if like is None else like
        shape = tuple(like.shape) if output_shape is None else tuple(output_shape)
        self._saved = saved
        self._grad_like = (get_array_module(like), like.dtype, shape)
        self._saved_grad_out = None  # a new forward: the last backward's dy is stale

    def save_for_double_backward(
        self, grad_out: Any, input_shape: tuple[int, ...] | None = None
    ) -> None:
        """Keep backward's ``grad_out`` (dy) for ``double_backward`` (only with create_graph).

        ``input_shape`` is the shape of the forward input, which dL/d(dx) must have;
        it defaults to dy's shape (right for elementwise layers).
        """
        shape = tuple(grad_out.shape) if input_shape is None else tuple(input_shape)
        self._saved_grad_out = (grad_out, shape)

    def saved_grad_out(self, grad_grad_in: Any) -> Any:
        """The dy kept by ``backward(dy, create_graph=True)``, once ``grad_grad_in`` is checked.

        ``grad_grad_in`` is dL/d(dx), so it must have the forward input's shape.
        Raises RuntimeError if no backward with ``create_graph=True`` followed the
        last forward, and TypeError / ValueError for a misfit ``grad_grad_in``.
        """
        if self._saved_grad_out is None:
            raise RuntimeError(
                f"{self!r}: double_backward() needs the backward pass it differentiates to "
                f"keep its grad_out: run forward, then backward(grad_out, create_graph=True)"
            )
        dy, input_shape = self._saved_grad_out
        check_array(self, grad_grad_in, like=dy, shape=input_shape, name="grad_grad_in")
        return dy

    def saved(self, grad_out: Any, name: str = "grad_out") -> Any:
        """What forward saved (one item, or a tuple), once ``grad_out`` is checked.

        Raises RuntimeError if forward has not run, and TypeError / ValueError if
        ``grad_out`` is not an array of the forward output's backend, dtype and
        shape. ``name`` is what messages call it (an elementwise layer's double
        backward checks its ``grad_grad_in`` here: same shape).
        """
        saved = require_forward(self, self._saved)
        xp, dtype, shape = self._grad_like
        check_array(self, grad_out, xp=xp, dtype=dtype, shape=shape, name=name)
        return saved[0] if len(saved) == 1 else saved

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

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The modules directly inside this one, by attribute name."""
        for attr, value in vars(self).items():
            if isinstance(value, Module):
                yield attr, value

    def modules(self) -> Iterator[Module]:
        """This module and every module inside it, depth first."""
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        """Yield ``(name, array)`` for every buffer, e.g. ``("1.running_mean", a)``."""
        for attr in self.buffer_names:
            yield attr, getattr(self, attr)
        for prefix, child in self.named_children():
            for name, buffer in child.named_buffers():
                yield f"{prefix}.{name}", buffer

    def train(self, mode: bool = True) -> Module:
        """Put this module and all modules inside it in training mode (or not)."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Reset every parameter's accumulated gradient to zero (in place)."""
        for param in self.parameters():
            param.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch the parameter gradients of the whole module on or off."""
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def shared_copy(self) -> Module:
        """A copy of this module that shares its Parameters: one set of weights, two caches.

        Why: a network applied twice in one training step needs a forward cache per
        application, since each backward reads what its own forward saved. CycleGAN
        applies G_AB to a batch of A (a -> fake B) and, in the other cycle, to G_BA's
        output (G_BA(b) -> reconstructed B); the second forward would overwrite the
        first one's cache. PyTorch's autograd keeps one graph node per call; here
        each application gets its own copy of the module:

            g_ab_cycle = g_ab.shared_copy()
            fake_b = g_ab(real_a);  rec_b = g_ab_cycle(g_ba(real_b))
            ... g_ab.backward(d_fake_b);  g_ab_cycle.backward(d_rec_b)

        Both copies hold the SAME ``Parameter`` objects, so both backward passes add
        into the same ``.grad`` (dL/dW is the sum over the applications, as autograd
        gives it), and an optimizer built on either copy's ``parameters()`` (before
        or after this call: ``.data`` and ``.grad`` may be views of its flat buffers)
        moves both. A parameter's ``requires_grad`` is shared with it. Random
        generators (Dropout's ``rng``) are shared too, so the two applications draw
        one stream, as two calls of one PyTorch module draw from one generator.
        Give an optimizer one copy's ``parameters()``, not both lists: they are the
        same objects, and it refuses a parameter named twice.

        The copy's own: the forward caches (it starts with none), the ``training``
        flags (``eval()`` on one leaves the other alone) and the buffers, copied
        (BatchNorm's running statistics then update in each copy separately). So
        ``state_dict()`` of the copy equals the original's when it is made. Move a
        module with ``to()`` before copying it: ``to()`` replaces the shared
        parameters' arrays for both copies, but the other copy's buffers stay behind.

        How: ``copy.deepcopy`` with the parameters and generators entered in its memo
        (the table of what is already copied, so they map to themselves), and each
        module's cache set aside while it copies (no array of the last forward is
        duplicated).
        """
        memo: dict[int, Any] = {id(p): p for p in self.parameters()}
        modules = list(self.modules())
        for module in modules:
            rng = vars(module).get("rng")
            if rng is not None:
                memo[id(rng)] = rng
        caches = ("_saved", "_grad_like", "_saved_grad_out")
        set_aside = [
            (module, attr, vars(module).pop(attr))
            for module in modules
            for attr in caches
            if attr in vars(module)
        ]
        try:
            return copy.deepcopy(self, memo)
        finally:
            for module, attr, value in set_aside:
                setattr(module, attr, value)

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
        for module in self.modules():
            for attr in module.buffer_names:
                buffer = getattr(module, attr)
                if target is not None:
                    buffer = target.asarray(buffer)
                if dtype is not None and np.issubdtype(buffer.dtype, np.floating):
                    buffer = buffer.astype(dtype, copy=False)  # counters stay integers
                setattr(module, attr, buffer)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter and buffer values by PyTorch-style name, as host NumPy copies."""
        return {name: to_host(array) for name, array in self._named_arrays().items()}

    def _named_arrays(self) -> dict[str, Any]:
        """Every array ``state_dict`` holds: parameter values, then buffers."""
        arrays = {name: param.data for name, param in self.named_parameters()}
        arrays.update(self.named_buffers())
        return arrays

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy values into parameters and buffers, in place, keeping dtype and backend.

        All or nothing: every entry is checked (names, that each value is a numeric
        array, shapes) before any value changes, so a failed load leaves the
        module exactly as it was. Values may be NumPy arrays or anything with a
        numeric ``dtype`` and ``shape`` that ``numpy.asarray`` accepts (a PyTorch CPU
        tensor's ``.numpy()``, say).

        Raises:
            KeyError: missing or unexpected names.
            TypeError: a value that is not a numeric array.
            ValueError: a shape mismatch.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(
                f"{where}: expected a dict of arrays by name, got {type(state).__name__}"
            )
        arrays = self._named_arrays()
        missing = sorted(set(arrays) - set(state))
        unexpected = sorted(set(state) - set(arrays))
        if missing or unexpected:
            raise KeyError(
                f"{where}: names do not match "
                f"(missing: {missing or 'none'}; unexpected: {unexpected or 'none'})"
            )
        for name, array in arrays.items():
            value = state[name]
            if not _is_numeric_array(value):
                raise TypeError(
                    f"{where}: '{name}' must be a numeric array, got {type(value).__name__}"
                    + (f" of dtype {value.dtype}" if hasattr(value, "dtype") else "")
                )
            got = tuple(value.shape)
            if got != array.shape:
                raise ValueError(
                    f"{where}: '{name}' has shape {got}, this model expects {array.shape}"
                )
        for name, array in arrays.items():
            value = state[name]
            if get_array_module(array) is not np:
                value = get_array_module(array).asarray(value)
            array[...] = value


def _is_numeric_array(value: Any) -> bool:
    """True for a NumPy or CuPy array (or scalar) of integers or floats."""
    try:
        dtype = np.dtype(value.dtype)
    except (AttributeError, TypeError):  # not an array, or a dtype NumPy does not know
        return False
    return hasattr(value, "shape") and (
        np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
    )


class Sequential(Module):
    """Layers applied one after another: ``y = f_n(...f_2(f_1(x)))``.

    Backward is the chain rule read right to left: each layer turns dL/d(its output)
    into dL/d(its input), which is exactly the gradient the layer before it needs.

        dL/dx = J_1^T (J_2^T ( ... (J_n^T dL/dy)))

    Double backward differentiates that backward pass. The backward pass is a chain
    of maps too, whose last link was layer 1's backward (it produced dx), so the
    chain rule through it starts at layer 1 and runs left to right (forward
    order): layer 1 receives dL/d(dx); its gg_out is dL/d(the dy layer 1 was
    handed), which is layer 2's dx; and so on to layer n. Along the way every
    layer adds its parameter terms and may return gx_i = dL/d(x_i), a gradient
    with respect to its *forward* input x_i (the f'' terms). Those are gradients
    like any other: one ordinary backward pass, right to left, carries them down,
    adding gx_i in as it reaches layer i's input, so each x_i's effect on L
    through the layers before it (x_i = f_{i-1}(...)) reaches the parameters of
    those layers. When every gx_i is None (Linear and (Leaky)ReLU layers only),
    that pass is skipped: it would carry zeros.
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

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> Any:
        first, *rest = self.layers
        for layer in reversed(rest):
            grad_out = layer.backward(grad_out, create_graph=create_graph)
        return first.backward(grad_out, input_grad=input_grad, create_graph=create_graph)

    def double_backward(self, grad_grad_in: Any, input_grad: bool = True) -> tuple[Any, Any]:
        """Differentiate the last ``backward(dy, create_graph=True)``; see the class doc.

        Args:
            grad_grad_in: dL/d(dx), dx being what that backward returned.
            input_grad: False when nobody needs dL/dx (the critic's input is data).

        Returns:
            ``(dL/d(dy), dL/dx)``; dL/dx is None when it is zero or not asked for.
            Parameter gradients are added into ``.grad``.
        """
        grad_grad, direct = grad_grad_in, []
        for layer in self.layers:  # forward order: the backward pass's chain, from its end
            grad_grad, grad_x = layer.double_backward(grad_grad)
            direct.append(grad_x)
        if all(grad_x is None for grad_x in direct):
            return grad_grad, None
        # The f'' terms, dL/d(x_i), go down through an ordinary backward pass.
        grad = None  # dL/d(output of the layer being visited)
        for index in reversed(range(len(self.layers))):
            if grad is not None:
                grad = self.layers[index].backward(grad, input_grad=index > 0 or input_grad)
            if direct[index] is not None:
                grad = direct[index] if grad is None else grad + direct[index]
        return grad_grad, grad if input_grad else None

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for index, layer in enumerate(self.layers):
            for name, param in layer.named_parameters():
                yield f"{index}.{name}", param

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for index, layer in enumerate(self.layers):
            yield str(index), layer

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
