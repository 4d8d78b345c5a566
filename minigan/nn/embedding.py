"""The embedding: a learned vector per class label (how a conditional GAN is told the digit)."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigan.backend import get_array_module
from minigan.nn.checks import check_array, check_label_range, check_sizes
from minigan.nn.module import Module, Parameter


class Embedding(Module):
    """A lookup table: label k -> row k of W, ``y[n] = W[labels[n]]``.

    Shapes:
        labels: integers in [0, num_embeddings), any shape, e.g. (batch,)
        W: (num_embeddings, embedding_dim)
        y: labels.shape + (embedding_dim,), e.g. (batch, embedding_dim)

    An embedding is a ``Linear`` layer without bias, fed one-hot rows. With
    X = onehot(labels) of shape (batch, num_embeddings), X[n, k] = [labels[n] == k]:

        y = X @ W                 row n of X has a single 1, at column labels[n],
                                  so row n of y is row labels[n] of W: the lookup

    Backward, with g = dL/dy of shape (batch, embedding_dim), is Linear's rule
    dL/dW = (dL/dy)^T x with x = X:

        dL/dW = X^T @ g           (num_embeddings, embedding_dim)
        dL/dW[k] = sum over n with labels[n] == k of g[n]
        dL/dlabels: none; labels are integers, nothing upstream learns from them

    Row k collects the gradient of EVERY example that looked it up: a batch with
    three sevens uses W[7] three times, and by the chain rule the loss depends on
    W[7] through all three outputs, so the three gradients add up (a scatter-add).
    Assigning them instead, ``grad[labels] = g`` in NumPy, keeps only one of the
    three (whichever is written last) and silently drops the others.

    How the scatter-add is computed: as the matrix product X^T @ g, not with
    ``xp.add.at(grad, labels, g)``, which NumPy and CuPy both have. Reasons: it is
    Linear's backward, already derived, so nothing new to trust; BLAS (cuBLAS on
    a GPU) runs it fast for a conditional GAN's sizes (10 classes x a batch of
    100); and it adds in a fixed order, so it is bit-reproducible, while CuPy's
    ``add.at`` uses atomic additions whose order varies from run to run (float
    addition is not associative). The cost is X itself, batch x num_embeddings
    numbers: for a vocabulary of 50 000 words, use ``xp.add.at`` instead.

    Initialisation follows PyTorch's ``nn.Embedding``: W ~ N(0, 1).

    Labels are checked (integer dtype, the layer's backend, values in range): an
    out-of-range label would otherwise make CuPy wrap around silently (and NumPy
    too, for a negative one: label -1 picks the last row). The range check reads
    the labels' min and max back (one explicit read, a sync on a GPU).
    ``check_range=False`` skips it on CuPy, for a training step that must read
    nothing back and whose labels are in range by construction (drawn with
    ``rng.integers(0, num_embeddings)``, or checked once when the data set was
    loaded); NumPy labels are in host memory, where the check costs no sync, so
    they are always checked.

    Args:
        num_embeddings: how many labels (rows of W), e.g. 10 digits.
        embedding_dim: the length of each vector.
        rng: a ``numpy.random.Generator`` for the initial values (default: a fresh one).
        dtype: the table's dtype, and so the output's (float32 by default).
        check_range: check that labels lie in [0, num_embeddings) (one read per call);
            False skips the check on CuPy only.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
        check_range: bool = True,
    ):
        shown = f"({num_embeddings!r}, {embedding_dim!r})"
        check_sizes("Embedding", shown, num_embeddings, embedding_dim)
        rng = rng if rng is not None else np.random.default_rng()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.check_range = check_range
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim)).astype(dtype))

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

    def forward(self, labels: Any) -> Any:
        W = self.weight.data
        xp = get_array_module(W)
        check_array(
            self, labels, xp=xp, name="labels", integer=True,
            dtype_hint="convert with labels.astype('int64') (one-hot rows: labels.argmax(axis=1))",
        )  # fmt: skip
        if self.check_range or xp is np:  # on NumPy the check reads nothing from a device
            check_label_range(self, labels, self.num_embeddings, "embeddings")
        y = W[labels]  # the lookup: a gather, cheaper than the product X @ W it equals
        # Backward needs X = onehot(labels), in W's dtype: X^T @ g is dL/dW.
        X = (labels.reshape(-1, 1) == xp.arange(self.num_embeddings)).astype(W.dtype)
        self.save_for_backward(X, output_shape=y.shape)
        return y

    def backward(self, grad_out: Any, input_grad: bool = True, create_graph: bool = False) -> None:
        self.first_order_only(create_graph)
        X, W, g = self.saved(grad_out), self.weight, grad_out
        if W.requires_grad:
            W.grad += X.T @ g.reshape(-1, self.embedding_dim)  # dL/dW = X^T g: a scatter-add
        # No return value: dL/dlabels does not exist (integers), so backward gives None.
