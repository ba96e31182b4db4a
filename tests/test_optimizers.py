"""Optimizers and learning-rate schedules: steps worked by hand, state, validation.

The hand-worked tests use the smallest network whose gradient is easy to
write down: one input, one identity output with a bias, MSE on one sample,

    a = w x + b,   L = (a - y)^2,   dL/dw = 2 (a - y) x,   dL/db = 2 (a - y),

and follow the update rules of torch.optim.SGD and torch.optim.Adam as their
documentation states them (one parameter group, weight decay on w and b):

    SGD:  g = grad + wd p;  buf = mu buf + g (buf = g at the first step);
          g = g + mu buf (nesterov) or g = buf;  p -= lr g
    Adam: g = grad + wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
          m_hat = m / (1 - b1^t);  v_hat = v / (1 - b2^t);
          p -= lr m_hat / (sqrt(v_hat) + eps)
"""

import math
import re

import numpy as np
import pytest

from cymlp import MLP
from cymlp.schedules import ConstantLR, ExponentialLR, StepLR


def hand_tolerance(dtype):
    """(rtol, atol) for comparing a kernel result with numbers worked out in float64."""
    if np.dtype(dtype) == np.float32:
        return 1e-5, 1e-6
    return 1e-12, 1e-14


def unit_net(backend, dtype, w, b):
    """a = w x + b with MSE, the weights set by hand."""
    net = MLP([1, 1], output_activation="identity", loss="mse", bias=True, dtype=dtype,
              backend=backend)
    net.weights[0][...] = w
    net.biases[0][...] = b
    return net


def assert_wb(net, w, b, dtype, what=""):
    rtol, atol = hand_tolerance(dtype)
    np.testing.assert_allclose(net.weights[0][0, 0], w, rtol=rtol, atol=atol, err_msg=f"w {what}")
    np.testing.assert_allclose(net.biases[0][0], b, rtol=rtol, atol=atol, err_msg=f"b {what}")


# The sample and the starting point of every hand-worked case.
X1, Y1 = [[1.5]], [[-0.5]]
W0, B0 = 0.4, 0.1


# ---------------------------------------------------------------- SGD by hand

def test_sgd_momentum_three_steps_by_hand(backend, dtype):
    lr, mu = 0.1, 0.9
    # Step 1: a = 0.4 * 1.5 + 0.1 = 0.7, a - y = 1.2
    #   grad = (2 * 1.2 * 1.5, 2 * 1.2) = (3.6, 2.4); the buffer starts as the grad
    #   buf = (3.6, 2.4);  w = 0.4 - 0.1 * 3.6 = 0.04;  b = 0.1 - 0.1 * 2.4 = -0.14
    # Step 2: a = 0.04 * 1.5 - 0.14 = -0.08, a - y = 0.42
    #   grad = (2 * 0.42 * 1.5, 2 * 0.42) = (1.26, 0.84)
    #   buf = (0.9 * 3.6 + 1.26, 0.9 * 2.4 + 0.84) = (4.5, 3.0)
    #   w = 0.04 - 0.1 * 4.5 = -0.41;  b = -0.14 - 0.1 * 3.0 = -0.44
    # Step 3: a = -0.41 * 1.5 - 0.44 = -1.055, a - y = -0.555
    #   grad = (2 * -0.555 * 1.5, 2 * -0.555) = (-1.665, -1.11)
    #   buf = (0.9 * 4.5 - 1.665, 0.9 * 3.0 - 1.11) = (2.385, 1.59)
    #   w = -0.41 - 0.1 * 2.385 = -0.6485;  b = -0.44 - 0.1 * 1.59 = -0.599
    net = unit_net(backend, dtype, W0, B0)
    history = net.fit(X1, Y1, epochs=3, learning_rate=lr, momentum=mu, shuffle=False)
    assert_wb(net, -0.6485, -0.599, dtype)
    rtol, _ = hand_tolerance(dtype)
    # Losses (a - y)^2 of the forward passes before each step.
    np.testing.assert_allclose(history.loss, [1.2 ** 2, 0.42 ** 2, 0.555 ** 2], rtol=rtol)
    # The momentum buffer is the optimizer state, in the order (w, b).
    np.testing.assert_allclose(net.state_dict()["optimizer_state"][0], [2.385, 1.59], rtol=rtol)
    # Plain SGD would have taken a visibly different path: its step 2 ends at
    # w = 0.04 - 0.1 * 1.26 = -0.086.
    plain = unit_net(backend, dtype, W0, B0)
    plain.fit(X1, Y1, epochs=2, learning_rate=lr, shuffle=False)
    assert_wb(plain, 0.04 - 0.126, -0.14 - 0.084, dtype)


def test_sgd_nesterov_two_steps_by_hand(backend, dtype):
    lr, mu = 0.1, 0.9
    # Step 1: grad = (3.6, 2.4) as above; buf = grad
    #   nesterov direction g + mu buf = (3.6 + 3.24, 2.4 + 2.16) = (6.84, 4.56)
    #   w = 0.4 - 0.684 = -0.284;  b = 0.1 - 0.456 = -0.356
    # Step 2: a = -0.284 * 1.5 - 0.356 = -0.782, a - y = -0.282
    #   grad = (2 * -0.282 * 1.5, 2 * -0.282) = (-0.846, -0.564)
    #   buf = (0.9 * 3.6 - 0.846, 0.9 * 2.4 - 0.564) = (2.394, 1.596)
    #   direction = (-0.846 + 0.9 * 2.394, -0.564 + 0.9 * 1.596) = (1.3086, 0.8724)
    #   w = -0.284 - 0.13086 = -0.41486;  b = -0.356 - 0.08724 = -0.44324
    net = unit_net(backend, dtype, W0, B0)
    net.fit(X1, Y1, epochs=1, learning_rate=lr, momentum=mu, nesterov=True, shuffle=False)
    assert_wb(net, -0.284, -0.356, dtype, "after step 1")
    net.fit(X1, Y1, epochs=1, learning_rate=lr, momentum=mu, nesterov=True, shuffle=False)
    assert_wb(net, -0.41486, -0.44324, dtype, "after step 2")
    rtol, _ = hand_tolerance(dtype)
    np.testing.assert_allclose(net.state_dict()["optimizer_state"][0], [2.394, 1.596], rtol=rtol)


def test_sgd_weight_decay_with_momentum_by_hand(backend, dtype):
    lr, mu, wd = 0.1, 0.5, 0.25
    # Step 1: grad = (3.6, 2.4); + wd p = (3.6 + 0.25 * 0.4, 2.4 + 0.25 * 0.1) = (3.7, 2.425)
    #   buf = (3.7, 2.425);  w = 0.4 - 0.37 = 0.03;  b = 0.1 - 0.2425 = -0.1425
    # Step 2: a = 0.03 * 1.5 - 0.1425 = -0.0975, a - y = 0.4025
    #   grad = (2 * 0.4025 * 1.5, 2 * 0.4025) = (1.2075, 0.805)
    #   + wd p = (1.2075 + 0.25 * 0.03, 0.805 + 0.25 * -0.1425) = (1.215, 0.769375)
    #   buf = (0.5 * 3.7 + 1.215, 0.5 * 2.425 + 0.769375) = (3.065, 1.981875)
    #   w = 0.03 - 0.3065 = -0.2765;  b = -0.1425 - 0.1981875 = -0.3406875
    net = unit_net(backend, dtype, W0, B0)
    net.fit(X1, Y1, epochs=2, learning_rate=lr, momentum=mu, weight_decay=wd, shuffle=False)
    assert_wb(net, -0.2765, -0.3406875, dtype)


def test_sgd_weight_decay_applies_to_biases_too(backend, dtype):
    # A zero-loss sample: only the decay moves the parameters.
    # a = 0.4 * 1.5 + 0.1 = 0.7 = y, so grad = 0 and p -= lr * wd * p.
    net = unit_net(backend, dtype, W0, B0)
    net.fit([[1.5]], [[0.7]], epochs=1, learning_rate=0.5, weight_decay=0.2, shuffle=False)
    assert_wb(net, 0.4 * (1 - 0.5 * 0.2), 0.1 * (1 - 0.5 * 0.2), dtype)


# ---------------------------------------------------------------- Adam by hand

def adam_textbook(params, grads, m, v, t, lr, b1, b2, eps):
    """The Adam update as written in Kingma & Ba, Algorithm 1 (bias-corrected moments)."""
    new_m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
    new_v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
    m_hat = [mi / (1 - b1 ** t) for mi in new_m]
    v_hat = [vi / (1 - b2 ** t) for vi in new_v]
    new_p = [p - lr * mh / (math.sqrt(vh) + eps) for p, mh, vh in zip(params, m_hat, v_hat)]
    return new_p, new_m, new_v


def test_adam_two_steps_by_hand(backend, dtype):
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    # Step 1 (t = 1): grad = (3.6, 2.4)
    #   m = 0.1 * grad = (0.36, 0.24);  v = 0.001 * grad^2 = (0.01296, 0.00576)
    #   m_hat = grad, v_hat = grad^2: the step is lr * g / (|g| + eps), about lr
    w1 = 0.4 - 0.1 * 3.6 / (3.6 + 1e-8)          # ~0.3
    b1_ = 0.1 - 0.1 * 2.4 / (2.4 + 1e-8)         # ~0.0
    m1, v1 = (0.36, 0.24), (0.01296, 0.00576)
    # Step 2 (t = 2): a = 1.5 w1 + b1_ ~ 0.45, a - y ~ 0.95
    r = 1.5 * w1 + b1_ + 0.5
    g2 = (2 * r * 1.5, 2 * r)                    # ~(2.85, 1.9)
    m2 = [0.9 * m + 0.1 * g for m, g in zip(m1, g2)]
    v2 = [0.999 * v + 0.001 * g * g for v, g in zip(v1, g2)]
    m2_hat = [m / (1 - 0.9 ** 2) for m in m2]    # / 0.19
    v2_hat = [v / (1 - 0.999 ** 2) for v in v2]  # / 0.001999
    w2 = w1 - 0.1 * m2_hat[0] / (math.sqrt(v2_hat[0]) + 1e-8)
    b2_ = b1_ - 0.1 * m2_hat[1] / (math.sqrt(v2_hat[1]) + 1e-8)
    # Cross-check the written-out numbers against the textbook algorithm.
    p, m, v = adam_textbook([0.4, 0.1], [3.6, 2.4], [0, 0], [0, 0], 1, lr, b1, b2, eps)
    assert p == pytest.approx([w1, b1_], rel=1e-15) and m == pytest.approx(m1, rel=1e-15)

    net = unit_net(backend, dtype, W0, B0)
    net.fit(X1, Y1, epochs=1, learning_rate=lr, optimizer="adam", shuffle=False)
    assert_wb(net, w1, b1_, dtype, "after step 1")
    net.fit(X1, Y1, epochs=1, learning_rate=lr, optimizer="adam", shuffle=False)
    assert_wb(net, w2, b2_, dtype, "after step 2")
    rtol, _ = hand_tolerance(dtype)
    np.testing.assert_allclose(net.state_dict()["optimizer_state"][0], m2, rtol=rtol)
    np.testing.assert_allclose(net.state_dict()["optimizer_state"][1], v2, rtol=rtol)
    assert net.state_dict()["step"] == 2
    # Without bias correction in step 2 the update would be
    # lr * m2 / (sqrt(v2) + eps), about 0.22 lr smaller: a visible difference.
    uncorrected = w1 - 0.1 * m2[0] / (math.sqrt(v2[0]) + 1e-8)
    assert abs(uncorrected - w2) > 1e-3


def test_adam_weight_decay_betas_eps_by_hand(backend, dtype):
    lr, b1, b2, eps, wd = 0.05, 0.5, 0.75, 0.1, 0.5
    # Step 1 (t = 1): grad = (3.6, 2.4); + wd p = (3.6 + 0.5 * 0.4, 2.4 + 0.5 * 0.1) = (3.8, 2.45)
    #   m = 0.5 * g = (1.9, 1.225);  v = 0.25 * g^2 = (3.61, 1.500625)
    #   m_hat = m / 0.5 = g;  v_hat = v / 0.25 = g^2
    #   w = 0.4 - 0.05 * 3.8 / (3.8 + 0.1);  b = 0.1 - 0.05 * 2.45 / (2.45 + 0.1)
    w1 = 0.4 - 0.05 * 3.8 / 3.9                  # 0.351282...
    b1_ = 0.1 - 0.05 * 2.45 / 2.55               # 0.051960...
    m1, v1 = (1.9, 1.225), (3.61, 1.500625)
    # Step 2 (t = 2): a - y = 1.5 w1 + b1_ + 0.5;  g = grad + 0.5 p
    r = 1.5 * w1 + b1_ + 0.5
    g2 = (2 * r * 1.5 + 0.5 * w1, 2 * r + 0.5 * b1_)
    m2 = [0.5 * m + 0.5 * g for m, g in zip(m1, g2)]
    v2 = [0.75 * v + 0.25 * g * g for v, g in zip(v1, g2)]
    # Bias corrections 1 - 0.5^2 = 0.75 and 1 - 0.75^2 = 0.4375.
    w2 = w1 - 0.05 * (m2[0] / 0.75) / (math.sqrt(v2[0] / 0.4375) + 0.1)
    b2_ = b1_ - 0.05 * (m2[1] / 0.75) / (math.sqrt(v2[1] / 0.4375) + 0.1)

    net = unit_net(backend, dtype, W0, B0)
    kwargs = dict(optimizer="adam", learning_rate=lr, betas=(b1, b2), eps=eps,
                  weight_decay=wd, shuffle=False)
    net.fit(X1, Y1, epochs=1, **kwargs)
    assert_wb(net, w1, b1_, dtype, "after step 1")
    net.fit(X1, Y1, epochs=1, **kwargs)
    assert_wb(net, w2, b2_, dtype, "after step 2")


def test_adam_batch_gradient_is_the_batch_mean(backend, dtype):
    # Two samples in one batch, x = 1 and x = -1, y = 0, w = 0.5, b = 0.2:
    #   a = (0.7, -0.3); L = mean (a - y)^2
    #   dL/dw = (2 * 0.7 * 1 + 2 * -0.3 * -1) / 2 = 1.0
    #   dL/db = (2 * 0.7 + 2 * -0.3) / 2 = 0.4
    # First Adam step with eps = 0.5: p -= lr * g / (|g| + eps)
    net = unit_net(backend, dtype, 0.5, 0.2)
    net.fit([[1.0], [-1.0]], [[0.0], [0.0]], epochs=1, batch_size=2, optimizer="adam",
            learning_rate=0.3, eps=0.5, shuffle=False)
    assert_wb(net, 0.5 - 0.3 * 1.0 / 1.5, 0.2 - 0.3 * 0.4 / 0.9, dtype)


# ---------------------------------------------------------------- state across calls

OPTIMIZER_CASES = {
    "momentum": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9),
    "nesterov": dict(optimizer="sgd", learning_rate=0.05, momentum=0.8, nesterov=True,
                     weight_decay=0.01),
    "adam": dict(optimizer="adam", learning_rate=0.01),
    "adam-weight-decay": dict(optimizer="adam", learning_rate=0.01, weight_decay=0.1),
}


def small_net(backend, dtype=np.float64, seed=3):
    return MLP([3, 4, 2], activation="tanh", output_activation="sigmoid", dtype=dtype,
               seed=seed, backend=backend)


def fresh_copy(net, backend):
    """A network with ``net``'s weights and no optimizer state."""
    copy = small_net(backend, net.dtype)
    copy.params[...] = net.params
    return copy


@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "shuffled"])
@pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
def test_state_persists_across_fit_calls(backend, dtype, make_data, case, shuffle):
    X, Y = make_data(7, 3, 2, seed=1)
    kwargs = dict(OPTIMIZER_CASES[case], batch_size=3, shuffle=shuffle)
    once = small_net(backend, dtype)
    once.fit(X, Y, epochs=2, **kwargs)
    twice = small_net(backend, dtype)
    twice.fit(X, Y, epochs=1, **kwargs)
    restarted = fresh_copy(twice, backend)   # same weights, forgotten state
    twice.fit(X, Y, epochs=1, **kwargs)
    np.testing.assert_array_equal(twice.params, once.params)
    np.testing.assert_array_equal(twice.state_dict()["optimizer_state"], once.state_dict()["optimizer_state"])
    assert twice.state_dict()["step"] == once.state_dict()["step"] == 2 * 3
    # The state matters: continuing without it lands elsewhere.
    if not shuffle:
        restarted.fit(X, Y, epochs=1, **kwargs)
        assert np.abs(restarted.params - once.params).max() > 1e-6


@pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
def test_reset_clears_state_and_restores_weights(backend, make_data, case):
    X, Y = make_data(7, 3, 2, seed=2)
    kwargs = dict(OPTIMIZER_CASES[case], batch_size=2)
    net = small_net(backend)
    initial = net.params.copy()
    net.fit(X, Y, epochs=3, **kwargs)
    assert np.abs(net.state_dict()["optimizer_state"]).max() > 0 and net.state_dict()["step"] > 0
    assert net.reset() is net
    np.testing.assert_array_equal(net.params, initial)
    assert not net.state_dict()["optimizer_state"].any() and net.state_dict()["step"] == 0
    net.fit(X, Y, epochs=3, **kwargs)
    fresh = small_net(backend)
    fresh.fit(X, Y, epochs=3, **kwargs)
    np.testing.assert_array_equal(net.params, fresh.params)
    np.testing.assert_array_equal(net.state_dict()["optimizer_state"], fresh.state_dict()["optimizer_state"])


def test_switching_optimizer_starts_fresh_state(backend, make_data):
    X, Y = make_data(7, 3, 2, seed=3)
    sgd = dict(OPTIMIZER_CASES["momentum"], shuffle=False, batch_size=2)
    adam = dict(OPTIMIZER_CASES["adam"], shuffle=False, batch_size=2)
    net = small_net(backend)
    net.fit(X, Y, epochs=2, **sgd)
    # SGD -> Adam: Adam starts with zero moments and t = 1.
    expected = fresh_copy(net, backend)
    net.fit(X, Y, epochs=2, **adam)
    expected.fit(X, Y, epochs=2, **adam)
    np.testing.assert_array_equal(net.params, expected.params)
    np.testing.assert_array_equal(net.state_dict()["optimizer_state"], expected.state_dict()["optimizer_state"])
    assert net.state_dict()["step"] == 2 * 4
    # Adam -> SGD: the momentum buffer starts from zero, not from Adam's m.
    expected = fresh_copy(net, backend)
    net.fit(X, Y, epochs=1, **sgd)
    expected.fit(X, Y, epochs=1, **sgd)
    np.testing.assert_array_equal(net.params, expected.params)
    np.testing.assert_array_equal(net.state_dict()["optimizer_state"], expected.state_dict()["optimizer_state"])
    # partial_fit switches too.
    expected = fresh_copy(net, backend)
    net.partial_fit(X, Y, optimizer="adam", learning_rate=0.01)
    expected.partial_fit(X, Y, optimizer="adam", learning_rate=0.01)
    np.testing.assert_array_equal(net.params, expected.params)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("case", ["plain", "momentum", "adam"])
def test_partial_fit_100_times_equals_fit_100_epochs(backend, dtype, make_data, case,
                                                      batch_size):
    X, Y = make_data(5, 3, 2, seed=4)
    kwargs = {} if case == "plain" else OPTIMIZER_CASES[case]
    kwargs = dict(kwargs, batch_size=batch_size)
    online = small_net(backend, dtype)
    for _ in range(100):
        history = online.partial_fit(X, Y, **kwargs)
        assert history.epochs == 1
    batch = small_net(backend, dtype)
    batch.fit(X, Y, epochs=100, shuffle=False, **kwargs)
    np.testing.assert_array_equal(online.params, batch.params)
    np.testing.assert_array_equal(online.state_dict()["optimizer_state"], batch.state_dict()["optimizer_state"])
    assert online.state_dict()["step"] == batch.state_dict()["step"]
    assert not np.allclose(online.params, small_net(backend, dtype).params)


def test_partial_fit_keeps_row_order_by_default(backend, make_data):
    X, Y = make_data(6, 3, 2, seed=5)
    net = small_net(backend)
    net.partial_fit(X, Y, learning_rate=0.3)
    in_order = small_net(backend)
    in_order.fit(X, Y, epochs=1, learning_rate=0.3, shuffle=False)
    np.testing.assert_array_equal(net.params, in_order.params)
    reversed_rows = small_net(backend)
    reversed_rows.fit(X[::-1], Y[::-1], epochs=1, learning_rate=0.3, shuffle=False)
    assert not np.allclose(net.params, reversed_rows.params)


# ---------------------------------------------------------------- schedules

BASE_RATE = 0.4


@pytest.mark.parametrize("schedule, expected", [
    (None, [0.4, 0.4, 0.4, 0.4, 0.4]),
    ("constant", [0.4, 0.4, 0.4, 0.4, 0.4]),
    (ConstantLR(), [0.4, 0.4, 0.4, 0.4, 0.4]),
    # lr * gamma ** (epoch // step_size), epochs from 0
    (StepLR(2, gamma=0.5), [0.4, 0.4, 0.2, 0.2, 0.1]),
    (StepLR(3), [0.4, 0.4, 0.4, 0.04, 0.04]),
    (StepLR(1, gamma=1.0), [0.4, 0.4, 0.4, 0.4, 0.4]),
    # lr * gamma ** epoch
    (ExponentialLR(0.5), [0.4, 0.2, 0.1, 0.05, 0.025]),
    (ExponentialLR(0.9), [0.4, 0.36, 0.324, 0.2916, 0.26244]),
], ids=["None", "constant", "ConstantLR", "StepLR-2-0.5", "StepLR-3", "StepLR-gamma-1",
        "Exponential-0.5", "Exponential-0.9"])
def test_schedule_learning_rates(backend, make_data, schedule, expected):
    X, Y = make_data(4, 3, 2)
    net = small_net(backend)
    history = net.fit(X, Y, epochs=5, learning_rate=BASE_RATE, lr_schedule=schedule)
    assert history.learning_rate == pytest.approx(expected, rel=1e-14)
    # Each fit call counts epochs from 0 again.
    history = net.fit(X, Y, epochs=3, learning_rate=BASE_RATE, lr_schedule=schedule)
    assert history.learning_rate == pytest.approx(expected[:3], rel=1e-14)


def test_schedule_objects_are_the_documented_functions():
    assert StepLR(10, gamma=0.5)(0.1, 25) == pytest.approx(0.025)
    assert StepLR(10, gamma=0.5)(0.1, 9) == 0.1
    assert ExponentialLR(0.5)(0.8, 3) == pytest.approx(0.1)
    assert ConstantLR()(0.3, 100) == 0.3


@pytest.mark.parametrize("case", ["momentum", "adam"])
@pytest.mark.parametrize("schedule, rates", [
    (StepLR(2, gamma=0.5), [0.04, 0.04, 0.02, 0.02, 0.01]),
    (ExponentialLR(0.8), [0.04, 0.032, 0.0256, 0.02048, 0.016384]),
], ids=["StepLR", "ExponentialLR"])
def test_schedule_trajectory_equals_epoch_by_epoch_fits(backend, make_data, case, schedule,
                                                        rates):
    X, Y = make_data(7, 3, 2, seed=6)
    kwargs = dict(OPTIMIZER_CASES[case], batch_size=3)
    kwargs.pop("learning_rate")
    scheduled = small_net(backend)
    scheduled.fit(X, Y, epochs=5, learning_rate=0.04, lr_schedule=schedule, **kwargs)
    stepwise = small_net(backend)
    for rate in rates:
        # Same seed, one permutation drawn per epoch: the same row orders.
        stepwise.fit(X, Y, epochs=1, learning_rate=rate, **kwargs)
    np.testing.assert_allclose(scheduled.params, stepwise.params, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scheduled.state_dict()["optimizer_state"], stepwise.state_dict()["optimizer_state"], rtol=1e-12, atol=1e-15)
    constant = small_net(backend)
    constant.fit(X, Y, epochs=5, learning_rate=0.04, **kwargs)
    assert np.abs(constant.params - scheduled.params).max() > 1e-5


# ---------------------------------------------------------------- validation

class ExplodingKernels:
    """Stands in for a kernel module: any call means bad input got through."""

    def __getattr__(self, name):
        def explode(*args, **kwargs):
            raise AssertionError(f"kernel function {name} was called")
        return explode


BAD_OPTIONS = [
    (dict(optimizer="rmsprop"), ValueError, "optimizer"),
    (dict(optimizer=None), TypeError, "optimizer"),
    (dict(momentum=-0.1), ValueError, "momentum"),
    (dict(momentum=float("nan")), ValueError, "momentum"),
    (dict(momentum="0.9"), TypeError, "momentum"),
    (dict(nesterov=True), ValueError, "nesterov"),
    (dict(nesterov=True, momentum=0.0), ValueError, "nesterov"),
    (dict(nesterov="yes", momentum=0.9), TypeError, "nesterov"),
    (dict(optimizer="adam", momentum=0.9), ValueError, "momentum"),
    (dict(optimizer="adam", nesterov=True), ValueError, "nesterov"),
    (dict(optimizer="adam", betas=0.9), TypeError, "betas"),
    (dict(optimizer="adam", betas=(0.9,)), TypeError, "betas"),
    (dict(optimizer="adam", betas=(0.9, 0.99, 0.999)), TypeError, "betas"),
    (dict(optimizer="adam", betas=(1.0, 0.999)), ValueError, r"betas\[0\]"),
    (dict(optimizer="adam", betas=(-0.1, 0.999)), ValueError, r"betas\[0\]"),
    (dict(optimizer="adam", betas=(0.9, 1.5)), ValueError, r"betas\[1\]"),
    (dict(optimizer="adam", betas=(0.9, "0.999")), TypeError, r"betas\[1\]"),
    (dict(optimizer="adam", eps=0.0), ValueError, "eps"),
    (dict(optimizer="adam", eps=-1e-8), ValueError, "eps"),
    (dict(optimizer="adam", eps=float("inf")), ValueError, "eps"),
    (dict(optimizer="adam", eps=None), TypeError, "eps"),
    (dict(weight_decay=-0.01), ValueError, "weight_decay"),
    (dict(weight_decay=float("nan")), ValueError, "weight_decay"),
    (dict(optimizer="adam", weight_decay=-1.0), ValueError, "weight_decay"),
    (dict(weight_decay="0.1"), TypeError, "weight_decay"),
    (dict(lr_schedule="step"), TypeError, "lr_schedule"),
    (dict(lr_schedule=0.5), TypeError, "lr_schedule"),
    (dict(lr_schedule=lambda rate, epoch: rate), TypeError, "lr_schedule"),
    (dict(lr_schedule=StepLR), TypeError, "lr_schedule"),
]


def _case_id(case):
    return "-".join(f"{key}={value!r}" for key, value in case[0].items())[:60]


@pytest.fixture
def guarded_net(backend):
    """A network whose kernels fail the test if they are ever called."""
    net = MLP([3, 4, 2], seed=0, backend=backend)
    net._kernels = ExplodingKernels()
    return net


@pytest.mark.parametrize("kwargs, error, name", BAD_OPTIONS,
                         ids=[_case_id(case) for case in BAD_OPTIONS])
def test_bad_optimizer_options_name_the_argument(guarded_net, make_data, kwargs, error, name):
    X, Y = make_data(5, 3, 2)
    before = guarded_net.params.copy()
    with pytest.raises(error, match=rf"(^|\W){name}(\W|$)"):
        guarded_net.fit(X, Y, **kwargs)
    np.testing.assert_array_equal(guarded_net.params, before)
    if "lr_schedule" not in kwargs:
        with pytest.raises(error, match=rf"(^|\W){name}(\W|$)"):
            guarded_net.partial_fit(X, Y, **kwargs)


@pytest.mark.parametrize("make, error, name", [
    (lambda: StepLR(0), ValueError, "step_size"),
    (lambda: StepLR(-2), ValueError, "step_size"),
    (lambda: StepLR(2.5), TypeError, "step_size"),
    (lambda: StepLR("3"), TypeError, "step_size"),
    (lambda: StepLR(2, gamma=0.0), ValueError, "gamma"),
    (lambda: StepLR(2, gamma=1.5), ValueError, "gamma"),
    (lambda: StepLR(2, gamma=-0.5), ValueError, "gamma"),
    (lambda: ExponentialLR(1.5), ValueError, "gamma"),
    (lambda: ExponentialLR(0.0), ValueError, "gamma"),
    (lambda: ExponentialLR(float("nan")), ValueError, "gamma"),
    (lambda: ExponentialLR("0.5"), TypeError, "gamma"),
], ids=["StepLR(0)", "StepLR(-2)", "StepLR(2.5)", "StepLR('3')", "StepLR-gamma-0",
        "StepLR-gamma-1.5", "StepLR-gamma-neg", "ExponentialLR(1.5)", "ExponentialLR(0)",
        "ExponentialLR(nan)", "ExponentialLR('0.5')"])
def test_bad_schedule_arguments_name_the_argument(make, error, name):
    with pytest.raises(error, match=rf"(^|\W){name}(\W|$)"):
        make()


def test_valid_optimizer_options_are_accepted(backend, make_data):
    X, Y = make_data(5, 3, 2)
    net = MLP([3, 4, 2], seed=0, backend=backend)
    # Edge values torch accepts: beta1 = 0, list betas, numpy scalars, upper-case names.
    net.fit(X, Y, epochs=1, optimizer="adam", betas=[0.0, 0.5], eps=np.float32(1e-3),
            weight_decay=np.float64(0.0))
    adam_params = net.params.copy()
    net.fit(X, Y, epochs=1, optimizer="SGD", momentum=np.float64(0.5), nesterov=np.bool_(True))
    net.fit(X, Y, epochs=1, lr_schedule="CONSTANT")
    assert np.isfinite(net.params).all()
    # They mean exactly what the plain Python values mean: a twin trained
    # with a tuple, Python floats and bools and lower-case names, from the
    # same seed, ends bit for bit the same (eps is the float32 value as a
    # Python float: np.float32(1e-3) is not 1e-3).
    twin = MLP([3, 4, 2], seed=0, backend=backend)
    twin.fit(X, Y, epochs=1, optimizer="adam", betas=(0.0, 0.5), eps=float(np.float32(1e-3)),
             weight_decay=0.0)
    np.testing.assert_array_equal(twin.params, adam_params)
    twin.fit(X, Y, epochs=1, optimizer="sgd", momentum=0.5, nesterov=True)
    twin.fit(X, Y, epochs=1, lr_schedule="constant")
    np.testing.assert_array_equal(net.params, twin.params)
    np.testing.assert_array_equal(net.state_dict()["optimizer_state"], twin.state_dict()["optimizer_state"])
    np.testing.assert_array_equal(net.state_dict()["step"], twin.state_dict()["step"])
    for name in ("loss", "accuracy", "learning_rate"):
        np.testing.assert_array_equal(getattr(net.history, name), getattr(twin.history, name),
                                      err_msg=name)
    # ... and the options took effect: the defaults (betas (0.9, 0.999); no
    # momentum, no nesterov) give other weights.
    for first, second in ((dict(optimizer="adam"), dict(momentum=0.5, nesterov=True)),
                          (dict(optimizer="adam", betas=(0.0, 0.5),
                                eps=float(np.float32(1e-3))), dict())):
        other = MLP([3, 4, 2], seed=0, backend=backend)
        other.fit(X, Y, epochs=1, **first)
        other.fit(X, Y, epochs=1, optimizer="sgd", **second)
        other.fit(X, Y, epochs=1)
        assert not np.array_equal(other.params, net.params), (first, second)


def test_error_messages_show_the_received_value(backend, make_data):
    X, Y = make_data(5, 3, 2)
    net = MLP([3, 4, 2], seed=0, backend=backend)
    with pytest.raises(ValueError) as info:
        net.fit(X, Y, optimizer="rmsprop")
    assert "'rmsprop'" in str(info.value) and "'adam'" in str(info.value)
    with pytest.raises(ValueError) as info:
        net.fit(X, Y, weight_decay=-0.5)
    assert re.search(r"-0\.5", str(info.value))


def test_a_nan_gradient_is_not_absorbed_by_the_flush_of_the_momentum_buffer():
    # The flush of tiny momentum values must not turn NaN into 0 (the state
    # check would then keep a step with a NaN gradient).
    from cymlp import _numpy_kernels
    from cymlp._codes import Optimizer
    params, state = np.array([1.0, 2.0]), np.array([[0.5, 0.5], [0.0, 0.0]])
    new_params, new_state = _numpy_kernels.optimizer_step(
        Optimizer.SGD, (0.1, 0.9, False, 0.0, 0.0, 0.0, 0.0), params, np.array([np.nan, 1.0]),
        state, 1)
    assert np.isnan(new_params[0]) and np.isnan(new_state[0, 0])
