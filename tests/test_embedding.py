"""Embedding and Concat: the label input of a conditional GAN."""

import numpy as np
import pytest

from minigan import nn
from minigan.gradcheck import check_module, numerical_gradient, relative_error

# Both layers are linear in what is differentiated (Embedding in W, Concat in its
# inputs), so a central difference has no truncation error at all (the f''' term
# of its O(h^2) error is zero) and only rounding, ~1e-16 |f| / h, remains: a large
# step is the accurate choice. h = 1 leaves ~1e-15.
LINEAR_STEP = 1.0


def embedding_gradient_errors(layer, labels, rng):
    """Relative error of dL/dW for L = sum(layer(labels) * r), r fixed and random."""
    r = rng.standard_normal((*labels.shape, layer.embedding_dim))
    layer.zero_grad()
    layer(labels)
    assert layer.backward(r) is None  # integer labels: no input gradient
    numeric = numerical_gradient(lambda: (layer(labels) * r).sum(), layer.weight.data, LINEAR_STEP)
    return {"weight": relative_error(layer.weight.grad, numeric)}


@pytest.mark.parametrize(
    "labels",
    [[3], [0, 1, 2, 3, 4], [3, 3, 3], [4, 0, 4, 4, 1, 0, 4], [[1, 2, 1], [2, 2, 0]]],
    ids=["one", "all-distinct", "all-the-same", "repeats", "2-d"],
)
def test_embedding_backward_matches_finite_differences_with_repeated_labels(
    rng, assert_gradients_match, labels
):
    layer = nn.Embedding(5, 3, rng=rng, dtype=np.float64)
    assert_gradients_match(embedding_gradient_errors(layer, np.array(labels), rng))


def test_embedding_backward_is_a_scatter_add_not_an_assignment(rng):
    layer = nn.Embedding(4, 2, rng=rng, dtype=np.float64)
    labels = np.array([1, 3, 1, 1])
    g = rng.standard_normal((4, 2))
    layer(labels)
    layer.backward(g)
    expected = np.zeros((4, 2))
    np.add.at(expected, labels, g)  # NumPy's unbuffered scatter-add: the reference
    np.testing.assert_allclose(layer.weight.grad, expected, rtol=1e-15)
    np.testing.assert_allclose(layer.weight.grad[1], g[0] + g[2] + g[3], rtol=1e-15)
    assigned = np.zeros((4, 2))
    assigned[labels] = g  # keeps one of the three gradients of row 1: wrong
    assert not np.allclose(assigned[1], layer.weight.grad[1])


def test_embedding_looks_up_rows_in_any_shape_and_accumulates(rng):
    layer = nn.Embedding(10, 4, rng=rng)
    labels = np.array([[7, 0], [7, 9], [1, 7]], dtype=np.uint8)
    y = layer(labels)
    assert y.shape == (3, 2, 4) and y.dtype == np.float32
    np.testing.assert_array_equal(y[1, 0], layer.weight.data[7])
    layer.backward(np.ones_like(y))
    layer(labels)
    layer.backward(np.ones_like(y))  # a second pass adds, as every layer's does
    np.testing.assert_array_equal(layer.weight.grad[7], np.full(4, 6.0, np.float32))
    assert not layer.weight.grad[[2, 3, 4, 5, 6, 8]].any()  # rows not used get nothing
    empty = layer(np.zeros(0, np.int64))  # an empty batch: nothing to look up or check
    assert empty.shape == (0, 4)


def test_embedding_init_is_standard_normal_like_pytorch():
    w = nn.Embedding(200, 100, rng=np.random.default_rng(0)).weight.data
    assert w.shape == (200, 100)
    # 20 000 draws of N(0, 1): mean within ~3 standard errors (0.007), std within 1%
    assert abs(w.mean()) < 0.025 and w.std() == pytest.approx(1.0, rel=0.01)


def test_embedding_rejects_bad_labels_with_clear_messages(rng):
    layer = nn.Embedding(5, 3, rng=rng)
    with pytest.raises(
        TypeError,
        match=r"Embedding\(5, 3\): labels must be integer class indices, got dtype float32; "
        r"convert with labels.astype\('int64'\)",
    ):
        layer(np.zeros(4, np.float32))
    with pytest.raises(TypeError, match=r"labels must be a NumPy or CuPy array .* got list"):
        layer([0, 1])
    with pytest.raises(
        ValueError,
        match=r"Embedding\(5, 3\): labels must lie in \[0, 5\) for 5 embeddings, "
        r"got values from 0 to 7",
    ):
        layer(np.array([0, 7, 2]))
    with pytest.raises(ValueError, match=r"got values from -1 to 2"):
        layer(np.array([2, -1]))
    with pytest.raises(ValueError, match=r"Embedding: sizes must be positive, got \(0, 3\)"):
        nn.Embedding(0, 3)
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        nn.Embedding(5, 3).backward(np.zeros((1, 3), np.float32))
    layer(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"expected grad_out \(2, 3\), got \(3, 2\)"):
        layer.backward(np.zeros((3, 2), np.float32))


def test_embedding_label_check_reads_once_and_can_be_skipped(fake_cupy):
    from minigan.backend import get_backend

    be = get_backend("cupy")
    labels = be.asarray(np.array([0, 4, 4]))
    checked = nn.Embedding(5, 3, rng=np.random.default_rng(0)).to(be)
    fake_cupy.reset()
    checked(labels)
    assert len(fake_cupy.reads) == 1 and "(check_label_range)" in fake_cupy.reads[0]
    unchecked = nn.Embedding(5, 3, rng=np.random.default_rng(0), check_range=False).to(be)
    fake_cupy.reset()
    y = unchecked(labels)
    unchecked.backward(be.asarray(np.ones((3, 3), np.float32)))
    assert fake_cupy.reads == []  # a training step can run without a single read
    with pytest.raises(TypeError, match=r"labels is a numpy array but the layer works on cupy"):
        checked(np.array([0, 1]))
    assert y.shape == (3, 3)


def test_embedding_matches_pytorch_including_repeated_labels(rng):
    torch = pytest.importorskip("torch")
    from minigan.testing.pytorch import to_torch

    ours = nn.Embedding(6, 4, rng=rng, dtype=np.float64)
    theirs = to_torch(ours)
    labels = np.array([5, 0, 5, 2, 5, 0])
    g = rng.standard_normal((6, 4))
    y = ours(labels)
    ours.backward(g)
    y_t = theirs(torch.from_numpy(labels))
    y_t.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(y, y_t.detach().numpy())
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-14)


# --- Concat ------------------------------------------------------------------------------


def concat_gradient_errors(inputs, rng):
    layer = nn.Concat()
    y = layer(inputs)
    r = rng.standard_normal(y.shape)
    analytic = layer.backward(r)
    assert len(analytic) == len(inputs)
    return {
        f"input {i}": relative_error(
            analytic[i], numerical_gradient(lambda: (layer(inputs) * r).sum(), x, LINEAR_STEP)
        )
        for i, x in enumerate(inputs)
    }


@pytest.mark.parametrize(
    "shapes",
    [[(4, 3)], [(4, 5), (4, 2)], [(1, 1), (1, 3), (1, 2)], [(2, 1, 3, 3), (2, 2, 3, 3)]],
    ids=["one", "z-and-label", "three", "image-channels"],
)
def test_concat_backward_matches_finite_differences(rng, assert_gradients_match, shapes):
    inputs = [rng.standard_normal(s) for s in shapes]
    assert_gradients_match(concat_gradient_errors(inputs, rng))


def test_concat_backward_splits_the_gradient_at_the_offsets(rng):
    z, e = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    layer = nn.Concat()
    y = layer([z, e])
    np.testing.assert_array_equal(y, np.hstack([z, e]))
    g = np.arange(18.0).reshape(3, 6)
    dz, de = layer.backward(g)
    np.testing.assert_array_equal(dz, g[:, :4])
    np.testing.assert_array_equal(de, g[:, 4:])


def test_conditional_generator_gradient_reaches_z_and_the_embedding(rng, assert_gradients_match):
    """G(z, y) = MLP([z | embed(y)]): dL/dz and dL/dW_embed through Concat, checked."""

    class ConditionalMLP(nn.Module):
        def __init__(self, labels):
            self.labels = labels
            self.embed = nn.Embedding(3, 2, rng=rng, dtype=np.float64)
            self.concat = nn.Concat()
            self.mlp = nn.Sequential(
                nn.Linear(4 + 2, 5, rng=rng, dtype=np.float64), nn.Tanh(),
                nn.Linear(5, 1, rng=rng, dtype=np.float64),
            )  # fmt: skip

        def forward(self, z):
            return self.mlp(self.concat([z, self.embed(self.labels)]))

        def backward(self, g, input_grad=True, create_graph=False):
            dz, de = self.concat.backward(self.mlp.backward(g))
            self.embed.backward(de)
            return dz

    model = ConditionalMLP(np.array([2, 0, 2, 2]))
    errors = check_module(model, rng.standard_normal((4, 4)))
    assert "embed.weight" in errors and "input" in errors
    assert_gradients_match(errors)


def test_concat_rejects_mismatched_inputs_with_clear_messages():
    layer = nn.Concat()
    with pytest.raises(
        TypeError, match=r"Concat\(\): expected a list or tuple of arrays, e.g. \[z, embedding\]"
    ):
        layer(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Concat\(\): expected at least one array, got an empty"):
        layer([])
    with pytest.raises(ValueError, match=r"Concat\(\): expected input 1 \(4, k\), got \(3, 2\)"):
        layer([np.zeros((4, 3)), np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"expected input 1 \(2, k, 5\), got \(2, 1, 4\)"):
        layer([np.zeros((2, 3, 5)), np.zeros((2, 1, 4))])
    with pytest.raises(TypeError, match=r"input 1 has dtype float32 but the layer computes in"):
        layer([np.zeros((2, 3)), np.zeros((2, 1), np.float32)])
    with pytest.raises(ValueError, match=r"inputs must be \(batch, features, ...\), got input 0"):
        layer([np.zeros(3)])
    with pytest.raises(TypeError, match=r"input 0 must be a floating-point array"):
        layer([np.zeros((2, 3), int)])
    layer([np.zeros((2, 3)), np.zeros((2, 1))])
    with pytest.raises(ValueError, match=r"expected grad_out \(2, 4\), got \(2, 3\)"):
        layer.backward(np.zeros((2, 3)))


def test_concat_matches_pytorch_cat(rng):
    torch = pytest.importorskip("torch")
    a, b = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 5, 4))
    g = rng.standard_normal((3, 7, 4))
    a_t, b_t = (torch.from_numpy(v).requires_grad_(True) for v in (a, b))
    y_t = torch.cat([a_t, b_t], dim=1)
    y_t.backward(torch.from_numpy(g))
    layer = nn.Concat()
    np.testing.assert_array_equal(layer([a, b]), y_t.detach().numpy())
    da, db = layer.backward(g)
    np.testing.assert_array_equal(da, a_t.grad.numpy())
    np.testing.assert_array_equal(db, b_t.grad.numpy())
