"""Optimizers: hand-computed steps, flat buffers, state round trips, bad input."""

import numpy as np
import pytest

from minigan import nn
from minigan.optim import SGD, Adam, RMSprop, clip_weights


def one_parameter(values, dtype=np.float64):
    return nn.Parameter(np.array(values, dtype=dtype))


def test_adam_two_steps_by_hand():
    p = one_parameter([1.0, -2.0])
    opt = Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    g1, g2 = np.array([0.5, -1.0]), np.array([0.1, 2.0])

    p.grad[...] = g1
    opt.step()
    # step 1: m = 0.1 g1, v = 0.001 g1^2; corrected m/(1-0.9) = g1, v/(1-0.999) = g1^2,
    # so the update is lr * g1 / (|g1| + eps): lr * sign(g1), up to eps.
    after_one = np.array([1.0, -2.0]) - 0.1 * g1 / (np.abs(g1) + 1e-8)
    np.testing.assert_allclose(p.data, after_one, rtol=1e-15)
    np.testing.assert_allclose(p.data, [0.9, -1.9], rtol=1e-8)

    p.grad[...] = g2
    opt.step()
    m = 0.9 * (0.1 * g1) + 0.1 * g2
    v = 0.999 * (0.001 * g1**2) + 0.001 * g2**2
    update = 0.1 / (1 - 0.9**2) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**2) + 1e-8)
    np.testing.assert_allclose(p.data, after_one - update, rtol=1e-14)
    # the numbers themselves, worked out on paper: m = [0.055, 0.11], v = [2.5975e-4, 4.999e-3]
    np.testing.assert_allclose(opt.m, [0.055, 0.11], rtol=1e-12)
    np.testing.assert_allclose(opt.v, [2.5975e-4, 4.999e-3], rtol=1e-12)


def test_sgd_with_and_without_momentum_by_hand():
    p = one_parameter([1.0])
    opt = SGD([p], lr=0.5)
    p.grad[...] = 2.0
    opt.step()
    assert p.data[0] == pytest.approx(0.0)

    q = one_parameter([1.0])
    opt = SGD([q], lr=0.5, momentum=0.9)
    q.grad[...] = 2.0
    opt.step()  # buf = 2
    opt.step()  # buf = 0.9 * 2 + 2 = 3.8
    assert q.data[0] == pytest.approx(1.0 - 0.5 * 2 - 0.5 * 3.8)


def test_optimizer_trains_a_model_whose_parameters_live_in_flat_buffers(rng):
    model = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Tanh(), nn.Linear(4, 1, rng=rng))
    before = model.state_dict()
    opt = Adam(model.parameters(), lr=1e-2)
    for name, value in model.state_dict().items():  # packing keeps the values
        np.testing.assert_array_equal(value, before[name])
    assert opt.data.size == 3 * 4 + 4 + 4 + 1
    assert all(np.shares_memory(p.data, opt.data) for p in model.parameters())

    x = rng.standard_normal((16, 3)).astype(np.float32)
    target = x.sum(axis=1, keepdims=True) * 0.3
    losses = []
    for _ in range(200):
        opt.zero_grad()
        y = model(x)
        losses.append(float(((y - target) ** 2).mean()))
        model.backward(2 * (y - target) / y.size)
        opt.step()
    assert losses[-1] < 0.05 * losses[0]
    assert opt.data.dtype == np.float32 and opt.m.dtype == np.float32


@pytest.mark.parametrize(
    "make",
    [
        lambda params: Adam(params, lr=0.05),
        lambda params: RMSprop(params, lr=0.05, momentum=0.3),
        lambda params: SGD(params, lr=0.05, momentum=0.9),
    ],
    ids=["adam", "rmsprop", "sgd"],
)
def test_optimizer_state_dict_resumes_exactly(make):
    def run(steps, resume_from=None):
        p = one_parameter([0.3, -0.7, 1.1])
        opt = make([p])
        if resume_from is not None:
            p.data[...], state = resume_from
            opt.load_state_dict(state)
        for _ in range(steps):
            p.grad[...] = np.sin(3 * p.data)
            opt.step()
        return p, opt

    p_full, _ = run(10)
    p_half, opt_half = run(5)
    p_resumed, _ = run(5, resume_from=(p_half.data.copy(), opt_half.state_dict()))
    np.testing.assert_array_equal(p_resumed.data, p_full.data)


def test_optimizer_zero_grad_clears_every_parameter(rng):
    model = nn.Sequential(nn.Linear(2, 2, rng=rng), nn.Linear(2, 1, rng=rng))
    opt = SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad[...] = 1.0
    opt.zero_grad()
    assert not any(p.grad.any() for p in model.parameters())


def test_optimizers_reject_bad_arguments():
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        Adam([])
    with pytest.raises(ValueError, match=r"betas must lie in \[0, 1\)"):
        Adam([one_parameter([1.0])], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="learning rate must be >= 0, got -1"):
        SGD([one_parameter([1.0])], lr=-1)
    with pytest.raises(TypeError, match="all parameters must share one backend and dtype"):
        Adam([one_parameter([1.0]), one_parameter([1.0], np.float32)])
    p = one_parameter([1.0])
    with pytest.raises(ValueError, match="a parameter appears more than once"):
        SGD([p, p], lr=0.1)


def test_load_state_dict_from_another_model_is_refused_untouched():
    opt = Adam([one_parameter([1.0, 2.0])])
    other = Adam([one_parameter([1.0, 2.0, 3.0])]).state_dict()
    with pytest.raises(
        ValueError, match=r"'m' holds \(3,\) values but this optimizer has 2 parameters"
    ):
        opt.load_state_dict(other)
    with pytest.raises(KeyError, match="the state has no 'm'"):
        opt.load_state_dict(SGD([one_parameter([1.0, 2.0])], lr=1).state_dict())
    assert not opt.m.any() and opt.t == 0


def test_an_optimizer_made_before_model_to_refuses_to_step(rng):
    model = nn.Sequential(nn.Linear(2, 2, rng=rng))
    opt = Adam(model.parameters())
    model.to(dtype="float64")
    with pytest.raises(RuntimeError, match=r"its .data was replaced \(by model.to\(...\) after"):
        opt.step()


def test_assigning_p_data_detaches_and_is_reported(rng):
    model = nn.Sequential(nn.Linear(2, 2, rng=rng))
    opt = SGD(model.parameters(), lr=0.1)
    model[0].weight.data = np.zeros((2, 2), np.float32)
    with pytest.raises(RuntimeError, match=r"parameter 0 \(shape \(2, 2\)\) no longer views"):
        opt.step()


def test_a_backward_that_assigns_p_grad_is_reported(rng):
    model = nn.Sequential(nn.Linear(2, 2, rng=rng))
    opt = SGD(model.parameters(), lr=0.1)
    model[0].bias.grad = np.ones(2, np.float32)  # should have been `+=`
    with pytest.raises(RuntimeError, match=r"parameter 1 .*assigning p.grad = g.*\(p.grad \+= g\)"):
        opt.step()


def test_a_second_optimizer_over_the_same_parameters_is_reported(rng):
    model = nn.Sequential(nn.Linear(2, 2, rng=rng))
    first = Adam(model.parameters())
    second = Adam(model.parameters())
    second.step()  # the newer one owns the parameters now and works
    with pytest.raises(RuntimeError, match="taken over by another optimizer"):
        first.step()


def test_optimizer_load_state_dict_is_all_or_nothing():
    opt = Adam([one_parameter([1.0, 2.0])], lr=0.1)
    good = Adam([one_parameter([1.0, 2.0])], lr=0.5).state_dict()
    good["m"] = np.array([3.0, 4.0])
    for bad in ({**good, "lr": "fast"}, {**good, "v": "zeros"}, {**good, "betas": (0.9,)}):
        with pytest.raises((TypeError, ValueError)):
            opt.load_state_dict(bad)
        assert not opt.m.any() and opt.lr == 0.1 and opt.t == 0
    opt.load_state_dict(good)
    np.testing.assert_array_equal(opt.m, [3.0, 4.0])
    assert opt.lr == 0.5


def test_rmsprop_two_steps_by_hand():
    p = one_parameter([1.0, -2.0])
    opt = RMSprop([p], lr=0.1, alpha=0.9, eps=0.0)  # eps 0: the numbers come out clean
    p.grad[...] = [0.5, -1.0]
    opt.step()
    # v = 0.1 g^2, so g / sqrt(v) = sign(g) / sqrt(0.1): both entries move by lr / sqrt(0.1)
    np.testing.assert_allclose(opt.v, [0.025, 0.1], rtol=1e-15)
    after_one = np.array([1.0, -2.0]) - np.sqrt(0.1) * np.array([1.0, -1.0])
    np.testing.assert_allclose(p.data, after_one, rtol=1e-15)
    p.grad[...] = [0.1, 2.0]
    opt.step()
    # v = 0.9 [0.025, 0.1] + 0.1 [0.01, 4] = [0.0235, 0.49]; steps 0.1 g / sqrt(v)
    np.testing.assert_allclose(opt.v, [0.0235, 0.49], rtol=1e-14)
    steps = [0.1 * 0.1 / np.sqrt(0.0235), 0.1 * 2.0 / 0.7]  # the second is 2/7
    np.testing.assert_allclose(p.data, after_one - steps, rtol=1e-15)


def test_rmsprop_momentum_by_hand():
    p = one_parameter([0.0])
    opt = RMSprop([p], lr=1.0, alpha=0.0, eps=0.0, momentum=0.5)  # alpha 0: v = g^2
    p.grad[...] = 3.0
    opt.step()  # buf = 3/3 = 1
    opt.step()  # buf = 0.5 * 1 + 1 = 1.5
    assert p.data[0] == pytest.approx(-2.5)


def test_rmsprop_state_dict_loads_all_or_nothing():
    opt = RMSprop([one_parameter([1.0, 2.0])], lr=0.1)
    with pytest.raises(KeyError, match="the state has no 'buf'; it is not a RMSprop state"):
        opt.load_state_dict(Adam([one_parameter([1.0, 2.0])]).state_dict())
    other = RMSprop([one_parameter([0.3, -0.7, 1.1])], lr=0.05)  # three values, not two
    bad = {**other.state_dict(), "lr": "fast"}
    with pytest.raises(ValueError, match=r"'v' holds \(3,\) values but this optimizer has 2"):
        opt.load_state_dict(bad)
    good = RMSprop([one_parameter([1.0, 2.0])], lr=0.5).state_dict()
    good["v"] = np.array([3.0, 4.0])
    with pytest.raises(TypeError, match="'alpha' must be a number"):
        opt.load_state_dict({**good, "alpha": "x"})
    assert not opt.v.any() and opt.lr == 0.1


def test_rmsprop_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"RMSprop: alpha must lie in \[0, 1\], got 1.5"):
        RMSprop([one_parameter([1.0])], alpha=1.5)
    with pytest.raises(ValueError, match=r"RMSprop: momentum must lie in \[0, 1\), got -0.1"):
        RMSprop([one_parameter([1.0])], momentum=-0.1)
    with pytest.raises(ValueError, match="RMSprop: eps must be >= 0, got -1"):
        RMSprop([one_parameter([1.0])], eps=-1)


def test_clip_weights_clips_in_place_and_keeps_the_flat_buffer(rng):
    model = nn.Sequential(nn.Linear(4, 3, rng=rng, dtype=np.float64))
    opt = RMSprop(model.parameters(), lr=0.1)
    model[0].weight.data[0, 0], model[0].bias.data[1] = 5.0, -5.0
    clip_weights(model.parameters(), 0.01)
    assert np.abs(opt.data).max() == 0.01  # the flat buffer itself was clipped
    assert model[0].weight.data[0, 0] == 0.01 and model[0].bias.data[1] == -0.01
    opt.check_attached()  # no parameter was cut loose
    with pytest.raises(ValueError, match="clip_weights: the limit must be > 0, got 0"):
        clip_weights(model.parameters(), 0)
