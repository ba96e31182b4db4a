"""MLP.fit with L-BFGS, the new schedules, sample weights, and 1-D targets (every backend)."""

import warnings

import numpy as np
import pytest
from scipy.optimize import approx_fprime

import cymlp
from cymlp import MLP, datasets
from cymlp.optim import LBFGS
from cymlp.schedules import AdaptiveLR, InvScalingLR


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) + labels[:, None]
    return X, labels


# ---------------------------------------------------------------- L-BFGS

def test_lbfgs_reaches_a_stationary_point_of_loss_plus_weight_decay(backend):
    # The objective L-BFGS minimises is the mean loss plus
    # 0.5 * weight_decay * ||params||^2: at its end, that gradient is ~0
    # (checked with the backend's loss_and_grad, and the objective itself
    # against finite differences).
    X, labels = blobs()
    net = MLP([4, 6, 3], output_activation="softmax", loss="cross_entropy", seed=1,
              backend=backend)
    decay = 1e-2
    _, start = net.loss_and_grad(X, labels)
    history = net.fit(X, labels, optimizer=LBFGS(tol=1e-9, weight_decay=decay), epochs=500)
    loss, grad = net.loss_and_grad(X, labels)
    # (SciPy's relative-decrease test ends the run first, near 1e-5.)
    assert np.abs(grad + decay * net.params).max() < 1e-3 * np.abs(start).max()
    assert history.loss[-1] == pytest.approx(loss, rel=1e-12)
    assert np.isnan(history.learning_rate).all()   # L-BFGS has no learning rate

    def objective(params):
        probe = MLP([4, 6, 3], output_activation="softmax", loss="cross_entropy",
                    backend=backend)
        probe.params[...] = params
        return probe.loss(X, labels) + 0.5 * decay * params @ params

    numeric = approx_fprime(net.params.copy(), objective, 1e-7)
    np.testing.assert_allclose(numeric, grad + decay * net.params, atol=1e-6)


def test_lbfgs_backends_agree():
    if not {"cython", "numpy"} <= set(cymlp.available_backends()):
        pytest.skip("needs both backends")
    X, labels = blobs()
    fitted = []
    for backend in ("cython", "numpy"):
        net = MLP([4, 5, 3], output_activation="softmax", loss="cross_entropy", seed=2,
                  backend=backend)
        net.fit(X, labels, optimizer="lbfgs", epochs=15)
        fitted.append(net.params.copy())
    np.testing.assert_allclose(fitted[0], fitted[1], rtol=1e-7, atol=1e-9)


def test_lbfgs_history_validation_and_early_stopping(backend):
    X, Y = datasets.letters()
    net = MLP([30, 5, 3], seed=0, backend=backend)
    net.fit(X, Y, epochs=20, learning_rate=1.0)
    history = net.fit(X, Y, optimizer=LBFGS(weight_decay=1e-3), epochs=40,
                      validation_data=(X, Y), early_stopping=True, patience=3)
    assert history.epochs == len(history.val_loss) == len(history.accuracy)
    best = history.best_epoch
    assert history.val_loss[best - 1] == min(history.val_loss)
    # The best iterate was restored: its loss is the network's now.
    assert net.loss(X, Y) == pytest.approx(history.val_loss[best - 1], rel=1e-12)
    assert net.state_dict()["optimizer"] is None   # L-BFGS leaves no optimizer state


def test_lbfgs_options_are_checked():
    net = MLP([2, 2, 1])
    X, y = np.zeros((4, 2)), np.zeros(4)
    with pytest.raises(ValueError, match="learning_rate is not an L-BFGS option"):
        net.fit(X, y, optimizer="lbfgs", learning_rate=0.1)
    with pytest.raises(ValueError, match="lr_schedule"):
        net.fit(X, y, optimizer="lbfgs", lr_schedule=InvScalingLR())
    with pytest.raises(ValueError, match="max_fun"):
        LBFGS(max_fun=0)
    with pytest.raises(TypeError, match="history_size"):
        LBFGS(history_size=2.5)


# ---------------------------------------------------------------- schedules

def test_inv_scaling_schedule_is_sklearns_rule(backend):
    # Epoch k runs at lr / (k * n + 1) ** power_t: n rows trained per epoch.
    X, Y = datasets.letters()
    history = MLP([30, 5, 3], seed=0, backend=backend).fit(
        X, Y, epochs=4, learning_rate=0.5, lr_schedule=InvScalingLR(power_t=0.25))
    expected = [0.5 / (epoch * 3 + 1) ** 0.25 for epoch in range(4)]
    np.testing.assert_allclose(history.learning_rate, expected, rtol=1e-15)


def test_adaptive_schedule_divides_after_patience_epochs_without_progress():
    schedule = AdaptiveLR(factor=0.5, patience=2, min_delta=0.1)
    losses = [1.0, 0.95, 0.94, 0.93, 0.5, 0.49, 0.48, 0.47]
    # Three epochs in a row without an improvement of 0.1 (more than
    # patience=2): halve, and count again.
    rates = [schedule(1.0, epoch, losses=losses[:epoch]) for epoch in range(len(losses) + 1)]
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert AdaptiveLR(min_lr=0.4, factor=0.5, patience=1, min_delta=1.0)(
        1.0, 9, losses=[1.0] * 9) == 0.25   # lowered only while above min_lr


# ---------------------------------------------------------------- 1-D targets

def test_integer_labels_equal_one_hot_targets(backend):
    X, labels = blobs()
    fits = []
    for targets in (labels, np.eye(3)[labels]):
        net = MLP([4, 5, 3], output_activation="softmax", loss="cross_entropy", seed=3,
                  backend=backend)
        net.fit(X, targets, epochs=3, batch_size=7)
        fits.append(net.params.copy())
        assert net.accuracy(X, targets) == net.accuracy(X, np.eye(3)[labels])
    np.testing.assert_array_equal(fits[0], fits[1])


def test_one_dimensional_target_of_a_one_output_network(backend):
    X = np.linspace(-1, 1, 40).reshape(-1, 1)
    y = X.ravel() ** 2
    nets = [MLP([1, 8, 1], output_activation="identity", seed=0, backend=backend)
            for _ in range(2)]
    nets[0].fit(X, y, epochs=3)
    nets[1].fit(X, y.reshape(-1, 1), epochs=3)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)


def test_one_dimensional_targets_that_cannot_be_labels_are_explained():
    net = MLP([4, 5, 3], output_activation="softmax", loss="cross_entropy")
    X = np.zeros((3, 4))
    with pytest.raises(ValueError, match="integers from 0 to 2"):
        net.fit(X, [0, 1, 3])
    with pytest.raises(ValueError, match="non-integer"):
        net.fit(X, [0, 1.5, 2])
    sigmoid = MLP([4, 5, 3])
    with pytest.raises(ValueError, match="1-D class labels need output_activation='softmax'"):
        sigmoid.fit(X, [0, 1, 2])


# ---------------------------------------------------------------- sample weights

@pytest.mark.parametrize("bad, message", [
    ([1.0, -1.0, 1.0], ">= 0"),
    ([1.0, np.nan, 1.0], "sample_weight"),
    ([1.0, 1.0], r"shape \(3,\)"),
    ([0.0, 0.0, 0.0], "every weight is zero"),
])
def test_bad_sample_weights_are_named(bad, message):
    net = MLP([2, 3, 1])
    with pytest.raises(ValueError, match=message):
        net.fit(np.zeros((3, 2)), np.zeros(3), sample_weight=bad)


def test_weighted_fit_equals_repeated_rows_in_one_batch(backend):
    # Full batch: the weighted mean loss with integer weights is the mean
    # over the rows repeated that many times, so each step is the same.
    X, labels = blobs(30)
    counts = np.random.default_rng(0).integers(1, 4, 30)
    fits = []
    for data, targets, weight in [(X, labels, counts),
                                  (X.repeat(counts, 0), labels.repeat(counts), None)]:
        net = MLP([4, 5, 3], output_activation="softmax", loss="cross_entropy", seed=4,
                  backend=backend)
        history = net.fit(data, targets, epochs=5, batch_size=len(data), shuffle=False,
                          sample_weight=weight, optimizer="adam", learning_rate=0.01)
        fits.append((net.params.copy(), history.loss))
    np.testing.assert_allclose(fits[0][0], fits[1][0], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(fits[0][1], fits[1][1], rtol=1e-10)


def test_lbfgs_with_weights_equals_repeated_rows(backend):
    X, labels = blobs(30)
    counts = np.random.default_rng(1).integers(0, 4, 30)
    counts[0] = 0
    fits = []
    for data, targets, weight in [(X, labels, counts),
                                  (X.repeat(counts, 0), labels.repeat(counts), None)]:
        net = MLP([4, 5, 3], output_activation="softmax", loss="cross_entropy", seed=4,
                  backend=backend)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net.fit(data, targets, epochs=8, optimizer="lbfgs", sample_weight=weight)
        fits.append(net.params.copy())
    np.testing.assert_allclose(fits[0], fits[1], rtol=1e-7, atol=1e-9)


def test_validation_split_keeps_the_weights_of_the_held_out_rows(backend):
    X, labels = blobs(40)
    weight = np.linspace(0.5, 2.0, 40)
    net = MLP([4, 5, 3], output_activation="softmax", loss="cross_entropy", seed=5,
              backend=backend)
    history = net.fit(X, labels, epochs=2, validation_split=0.25, sample_weight=weight)
    rows = net.state_dict()["validation_rows"]["rows"]
    one_hot = np.eye(3)[labels[rows]]
    per_row = -np.log((net.predict(X[rows]) * one_hot).sum(axis=1))
    expected = np.average(per_row, weights=weight[rows])
    assert history.val_loss[-1] == pytest.approx(expected, rel=1e-6)
