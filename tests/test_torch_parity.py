"""Parity with PyTorch, the reference: same weights in, same numbers out.

Skipped when PyTorch is not installed (it is never a runtime dependency).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: parity tests skipped")

from minigan import nn
from minigan.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, log_softmax
from minigan.optim import SGD, Adam, RMSprop
from minigan.testing.pytorch import to_torch

TOL = {"rtol": 1e-10, "atol": 1e-12}


def torch_grads(model):
    return {name: p.grad.numpy() for name, p in model.named_parameters()}


def test_mlp_forward_and_backward_match_pytorch(rng):
    ours = nn.Sequential(
        nn.Linear(7, 9, rng=rng, dtype=np.float64),
        nn.LeakyReLU(0.2),
        nn.Linear(9, 9, rng=rng, dtype=np.float64),
        nn.ReLU(),
        nn.Linear(9, 5, rng=rng, dtype=np.float64),
        nn.Tanh(),
        nn.Linear(5, 1, rng=rng, dtype=np.float64),
        nn.Sigmoid(),
    )
    theirs = to_torch(ours)  # names line up one to one: the weights move by state_dict
    assert [type(m).__name__ for m in theirs] == [type(m).__name__ for m in ours]
    assert theirs[0].weight.dtype == torch.float64

    x = rng.standard_normal((6, 7))
    target = rng.uniform(size=(6, 1))
    loss = BCELoss()
    value = loss(ours(x), target)
    dx = ours.backward(loss.backward())

    x_t = torch.from_numpy(x).requires_grad_(True)
    value_t = torch.nn.functional.binary_cross_entropy(theirs(x_t), torch.from_numpy(target))
    value_t.backward()

    np.testing.assert_allclose(value, value_t.item(), **TOL)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), **TOL)
    expected = torch_grads(theirs)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, expected[name], **TOL, err_msg=name)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (nn.ReLU(), torch.relu),
        (nn.LeakyReLU(0.01), torch.nn.LeakyReLU(0.01)),
        (nn.Tanh(), torch.tanh),
        (nn.Sigmoid(), torch.sigmoid),
    ],
    ids=["ReLU", "LeakyReLU", "Tanh", "Sigmoid"],
)
def test_activations_match_pytorch_including_zero_and_saturation(ours, theirs):
    x = np.array([[-1e3, -40.0, -1.5, 0.0, 0.7, 40.0, 1e3]])
    g = np.linspace(-1, 1, x.size).reshape(x.shape)
    x_t = torch.from_numpy(x).requires_grad_(True)
    theirs(x_t).backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).numpy(), **TOL)
    np.testing.assert_allclose(ours.backward(g), x_t.grad.numpy(), **TOL)


@pytest.mark.parametrize("logits", [False, True], ids=["BCELoss", "BCEWithLogitsLoss"])
def test_losses_match_pytorch_including_extremes(rng, logits):
    if logits:
        pred = np.concatenate([rng.normal(scale=4, size=8), [1e4, -1e4, 50.0, -50.0]])
        ours, theirs = (
            BCEWithLogitsLoss(),
            torch.nn.functional.binary_cross_entropy_with_logits,
        )
    else:
        pred = np.concatenate([rng.uniform(size=8), [0.0, 1.0, 1e-30, 1 - 1e-16]])
        ours, theirs = BCELoss(), torch.nn.functional.binary_cross_entropy
    target = np.concatenate([rng.uniform(size=8), [1.0, 0.0, 1.0, 0.0]])
    pred_t = torch.from_numpy(pred).requires_grad_(True)
    value_t = theirs(pred_t, torch.from_numpy(target))
    value_t.backward()
    np.testing.assert_allclose(ours(pred, target), value_t.item(), **TOL)
    np.testing.assert_allclose(ours.backward(), pred_t.grad.numpy(), **TOL)


def test_linear_init_has_pytorchs_distribution():
    ours = nn.Linear(400, 300, rng=np.random.default_rng(0)).weight.data
    theirs = torch.nn.Linear(400, 300).weight.detach().numpy()
    bound = 1 / np.sqrt(400)
    for w in (ours, theirs):
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    # two samples of U(-bound, bound): their spreads agree to sampling noise (~0.3%)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.02)


@pytest.mark.parametrize(
    "make",
    ["adam", "adam_betas", "sgd", "sgd_momentum", "rmsprop", "rmsprop_wgan", "rmsprop_momentum"],
)
def test_optimizer_steps_match_pytorch(rng, make):
    ours_cls, theirs_cls, kwargs = {
        "adam": (Adam, torch.optim.Adam, {"lr": 1e-2}),
        "adam_betas": (
            Adam,
            torch.optim.Adam,
            {"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-6},
        ),
        "sgd": (SGD, torch.optim.SGD, {"lr": 0.1}),
        "sgd_momentum": (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
        "rmsprop": (RMSprop, torch.optim.RMSprop, {"lr": 1e-2}),
        "rmsprop_wgan": (RMSprop, torch.optim.RMSprop, {"lr": 5e-5}),
        "rmsprop_momentum": (
            RMSprop,
            torch.optim.RMSprop,
            {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "momentum": 0.7},
        ),
    }[make]
    shapes = [(4, 3), (4,), (1, 4)]
    start = [rng.standard_normal(s) for s in shapes]
    ours = [nn.Parameter(a.copy()) for a in start]
    theirs = [torch.tensor(a, requires_grad=True) for a in start]
    opt, opt_t = ours_cls(ours, **kwargs), theirs_cls(theirs, **kwargs)
    for _ in range(7):
        grads = [rng.standard_normal(s) for s in shapes]
        for p, p_t, g in zip(ours, theirs, grads):
            p.grad[...] = g
            p_t.grad = torch.from_numpy(g.copy())
        opt.step()
        opt_t.step()
    for p, p_t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, p_t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_cross_entropy_matches_pytorch_including_extremes(rng):
    logits = np.concatenate([rng.normal(scale=4, size=(8, 5)), [[1e4, -1e4, 0.0, 50.0, -50.0]] * 3])
    labels = np.concatenate([rng.integers(0, 5, size=8), [0, 1, 3]])  # right, wrong, 50
    logits_t = torch.from_numpy(logits).requires_grad_(True)
    value_t = torch.nn.functional.cross_entropy(logits_t, torch.from_numpy(labels))
    value_t.backward()
    ours = CrossEntropyLoss()
    np.testing.assert_allclose(ours(logits, labels), value_t.item(), **TOL)
    np.testing.assert_allclose(ours.backward(), logits_t.grad.numpy(), **TOL)
    expected = torch.log_softmax(torch.from_numpy(logits), dim=1).numpy()
    np.testing.assert_allclose(log_softmax(logits), expected, **TOL)


def test_to_torch_names_a_layer_it_cannot_convert():
    class Doubler(nn.Module):
        def __repr__(self):
            return "Doubler()"

    with pytest.raises(TypeError, match=r"to_torch: no PyTorch twin for Doubler\(\)"):
        to_torch(nn.Sequential(nn.Tanh(), Doubler()))


def test_mse_matches_pytorch(rng):
    pred, target = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    pred_t = torch.from_numpy(pred).requires_grad_(True)
    value_t = torch.nn.functional.mse_loss(pred_t, torch.from_numpy(target))
    value_t.backward()
    loss = MSELoss()
    np.testing.assert_allclose(loss(pred, target), value_t.item(), **TOL)
    np.testing.assert_allclose(loss.backward(), pred_t.grad.numpy(), **TOL)
