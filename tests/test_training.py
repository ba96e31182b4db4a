"""Training behaviour: validation, early stopping, regression, binary outputs,
numerical stability at extreme pre-activations, and divergence."""

import math
import warnings

import numpy as np
import pytest

from cymlp import MLP, History, TrainingDiverged

# ---------------------------------------------------------------- early stopping


def overfitting_problem():
    """Training targets 1, validation targets 0.75 on the same inputs.

    A sigmoid output starting near 0.5 first moves towards 0.75 (validation
    loss falls), then past it towards 1 (validation loss rises again).
    """
    X = np.random.default_rng(0).normal(size=(8, 2))
    return X, np.ones((8, 1)), X, np.full((8, 1), 0.75)


FIT = dict(learning_rate=0.05, batch_size=4, momentum=0.5)


def overfitting_net(backend, dtype=np.float64):
    return MLP([2, 4, 1], activation="tanh", dtype=dtype, seed=0, backend=backend)


def expected_stop(val_loss, patience, min_delta):
    """(best epoch from 1, epochs run) by the documented rule: an epoch improves
    when its validation loss is below the best so far by more than min_delta;
    training stops after ``patience`` epochs without improvement."""
    best, best_epoch, waited = math.inf, None, 0
    for epoch, value in enumerate(val_loss, start=1):
        if value < best - min_delta:
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                return best_epoch, epoch
    return best_epoch, len(val_loss)


def test_validation_loss_does_rise_in_the_overfitting_problem(backend):
    X, Y, Xv, Yv = overfitting_problem()
    history = overfitting_net(backend).fit(X, Y, epochs=40, validation_data=(Xv, Yv), **FIT)
    best = int(np.argmin(history.val_loss))
    assert 3 <= best < 30
    assert history.val_loss[-1] > 5 * history.val_loss[best]
    # Meanwhile the training loss keeps falling.
    assert history.loss[-1] < history.loss[best] < history.loss[0]


@pytest.mark.parametrize("patience", [1, 3, 6])
def test_early_stopping_restores_the_best_epoch(backend, dtype, patience):
    X, Y, Xv, Yv = overfitting_problem()
    reference = overfitting_net(backend, dtype).fit(X, Y, epochs=60,
                                                    validation_data=(Xv, Yv), **FIT)
    best_epoch = int(np.argmin(reference.val_loss)) + 1

    net = overfitting_net(backend, dtype)
    history = net.fit(X, Y, epochs=60, validation_data=(Xv, Yv), early_stopping=True,
                      patience=patience, **FIT)
    assert history.stopped_early is True
    assert history.best_epoch == best_epoch
    assert history.epochs == best_epoch + patience
    assert len(history.val_loss) == len(history.val_accuracy) == best_epoch + patience
    # The epochs run are the same epochs as without early stopping.
    np.testing.assert_array_equal(history.val_loss, reference.val_loss[:history.epochs])

    # The restored weights are those after epoch best_epoch: retrain a
    # same-seed network for exactly that many epochs.
    retrained = overfitting_net(backend, dtype)
    retrained.fit(X, Y, epochs=best_epoch, **FIT)
    np.testing.assert_array_equal(net.params, retrained.params)
    # The optimizer state (momentum buffer, step count) comes back with them.
    np.testing.assert_array_equal(net.state_dict()["optimizer_state"], retrained.state_dict()["optimizer_state"])
    assert net.state_dict()["step"] == retrained.state_dict()["step"]
    assert net.loss(Xv, Yv) == pytest.approx(history.val_loss[best_epoch - 1], rel=1e-6)
    assert net.loss(Xv, Yv) == pytest.approx(min(history.val_loss), rel=1e-6)


def test_min_delta(backend):
    X, Y, Xv, Yv = overfitting_problem()
    reference = overfitting_net(backend).fit(X, Y, epochs=60, validation_data=(Xv, Yv), **FIT)
    gains = -np.diff(reference.val_loss)
    # A min_delta between the gains near the minimum: some improvements no
    # longer count, so the best epoch comes before the plain argmin.
    min_delta = 3e-4
    best_epoch, epochs_run = expected_stop(reference.val_loss, 2, min_delta)
    assert best_epoch < int(np.argmin(reference.val_loss)) + 1, "set-up no longer tests min_delta"
    assert gains[best_epoch - 1] <= min_delta < gains[best_epoch - 2]

    net = overfitting_net(backend)
    history = net.fit(X, Y, epochs=60, validation_data=(Xv, Yv), early_stopping=True,
                      patience=2, min_delta=min_delta, **FIT)
    assert (history.best_epoch, history.epochs) == (best_epoch, epochs_run)
    assert history.stopped_early
    retrained = overfitting_net(backend)
    retrained.fit(X, Y, epochs=best_epoch, **FIT)
    np.testing.assert_array_equal(net.params, retrained.params)


def test_huge_min_delta_keeps_the_first_epoch(backend):
    X, Y, Xv, Yv = overfitting_problem()
    net = overfitting_net(backend)
    history = net.fit(X, Y, epochs=60, validation_data=(Xv, Yv), early_stopping=True,
                      patience=4, min_delta=10.0, **FIT)
    assert (history.best_epoch, history.epochs, history.stopped_early) == (1, 5, True)
    retrained = overfitting_net(backend)
    retrained.fit(X, Y, epochs=1, **FIT)
    np.testing.assert_array_equal(net.params, retrained.params)


def test_early_stopping_without_stopping_restores_the_best_epoch(backend):
    # Patience longer than the run: no stop, but the documented best epoch
    # (the one whose weights were restored) is the argmin.
    X, Y, Xv, Yv = overfitting_problem()
    net = overfitting_net(backend)
    history = net.fit(X, Y, epochs=25, validation_data=(Xv, Yv), early_stopping=True,
                      patience=100, **FIT)
    assert history.stopped_early is False
    assert history.epochs == 25
    best_epoch = int(np.argmin(history.val_loss)) + 1
    assert best_epoch < 25
    assert history.best_epoch == best_epoch
    retrained = overfitting_net(backend)
    retrained.fit(X, Y, epochs=best_epoch, **FIT)
    np.testing.assert_array_equal(net.params, retrained.params)


def test_early_stopping_with_validation_split(backend, make_data):
    X, Y = make_data(40, 3, 2, seed=3)
    net = MLP([3, 16, 2], activation="relu", output_activation="identity", seed=1,
              backend=backend)
    history = net.fit(X, Y, epochs=300, learning_rate=0.05, validation_split=0.25,
                      early_stopping=True, patience=5)
    assert history.stopped_early
    assert history.best_epoch == int(np.argmin(history.val_loss)) + 1
    assert history.epochs == history.best_epoch + 5


def test_early_stopping_needs_validation(backend, make_data):
    X, Y = make_data(10, 3, 2)
    net = MLP([3, 4, 2], seed=0, backend=backend)
    before = net.params.copy()
    with pytest.raises(ValueError, match="early_stopping"):
        net.fit(X, Y, early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        net.fit(X, Y, early_stopping=True, validation_split=0.0)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(patience=0), ValueError, "patience"),
    (dict(patience=2.0), TypeError, "patience"),
    (dict(min_delta=-0.1), ValueError, "min_delta"),
    (dict(min_delta="0"), TypeError, "min_delta"),
    (dict(early_stopping=1), TypeError, "early_stopping"),
    (dict(validation_split=1.0), ValueError, "validation_split"),
    (dict(validation_split=-0.2), ValueError, "validation_split"),
    (dict(validation_split="0.2"), TypeError, "validation_split"),
    (dict(validation_split=0.95), ValueError, "validation_split"),
    (dict(validation_data=[[1.0, 2.0, 3.0]]), TypeError, "validation_data"),
    (dict(validation_data=(np.zeros((2, 4)), np.zeros((2, 2)))), ValueError,
     r"validation_data\[0\]"),
    (dict(validation_data=(np.zeros((2, 3)), np.zeros((2, 5)))), ValueError,
     r"validation_data\[1\]"),
    (dict(validation_data=(np.zeros((2, 3)), np.zeros((3, 2)))), ValueError,
     r"validation_data"),
    (dict(validation_data=(np.full((2, 3), np.nan), np.zeros((2, 2)))), ValueError,
     r"validation_data\[0\]"),
], ids=["patience-0", "patience-float", "min_delta-neg", "min_delta-str", "early_stopping-int",
        "split-1", "split-neg", "split-str", "split-leaves-nothing", "data-not-pair",
        "data-X-columns", "data-Y-columns", "data-rows", "data-nan"])
def test_bad_validation_options_name_the_argument(backend, make_data, kwargs, error, name):
    X, Y = make_data(10, 3, 2)
    net = MLP([3, 4, 2], seed=0, backend=backend)
    before = net.params.copy()
    with pytest.raises(error, match=name):
        net.fit(X, Y, **kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_validation_data_and_split_together_is_an_error(backend, make_data):
    X, Y = make_data(10, 3, 2)
    net = MLP([3, 4, 2], seed=0, backend=backend)
    with pytest.raises(ValueError, match="validation_data.*validation_split|validation_split.*"
                                         "validation_data"):
        net.fit(X, Y, validation_data=(X, Y), validation_split=0.2)


# ---------------------------------------------------------------- validation split

def power_of_four_problem(n_rows):
    """Rows whose squared targets are distinct powers of 4: 4^-k for row k.

    With w = b = 0 and a negligible learning rate, a network's mean loss over
    a set of rows is the mean of their 4^-k, whose sum has a unique base-4
    expansion: the loss tells exactly which rows were used.
    """
    X = np.linspace(-1, 1, n_rows).reshape(-1, 1)
    Y = (2.0 ** -np.arange(n_rows)).reshape(-1, 1)
    return X, Y


def rows_from_mean_loss(mean_loss, n_used, n_rows):
    digits = round(mean_loss * n_used * 4.0 ** (n_rows - 1))
    rows = []
    for k in range(n_rows - 1, -1, -1):   # 4^-k is 4^(n_rows - 1 - k) in these units
        if digits % 4 == 1:
            rows.append(k)
        assert digits % 4 in (0, 1), "loss is not a sum of distinct powers of 4"
        digits //= 4
    return sorted(rows)


def split_rows(backend, seed, n_rows=20, split=0.25):
    """(held-out rows, training rows) of fit(validation_split=split)."""
    X, Y = power_of_four_problem(n_rows)
    net = MLP([1, 1], output_activation="identity", seed=seed, backend=backend)
    net.params[...] = 0
    # Steps of 1e-300 * grad leave the outputs at 1e-300: the losses are y^2.
    history = net.fit(X, Y, epochs=2, learning_rate=1e-300, validation_split=split)
    n_val = max(1, round(split * n_rows))
    held_out = rows_from_mean_loss(history.val_loss[0], n_val, n_rows)
    trained_on = rows_from_mean_loss(history.loss[0], n_rows - n_val, n_rows)
    assert rows_from_mean_loss(history.val_loss[1], n_val, n_rows) == held_out
    assert rows_from_mean_loss(history.loss[1], n_rows - n_val, n_rows) == trained_on
    return held_out, trained_on


def test_validation_split_holds_out_rows_drawn_from_the_seed(backend):
    held_out, trained_on = split_rows(backend, seed=5)
    assert len(held_out) == 5 and len(trained_on) == 15
    # The held-out rows are never trained on.
    assert sorted(held_out + trained_on) == list(range(20))
    # Same seed: same rows; another seed: other rows.
    assert split_rows(backend, seed=5) == (held_out, trained_on)
    others = {tuple(split_rows(backend, seed=seed)[0]) for seed in (6, 7, 8)}
    assert others - {tuple(held_out)}, "three other seeds all drew the same rows"


@pytest.mark.parametrize("split, n_val", [(0.1, 2), (0.5, 10), (0.01, 1)])
def test_validation_split_size(backend, split, n_val):
    held_out, trained_on = split_rows(backend, seed=0, split=split)
    assert len(held_out) == n_val == max(1, round(split * 20))
    assert len(trained_on) == 20 - n_val


def test_validation_split_is_reproducible(backend, make_data):
    X, Y = make_data(30, 3, 2, seed=9)
    runs = []
    for _ in range(2):
        net = MLP([3, 5, 2], activation="tanh", seed=12, backend=backend)
        runs.append((net, net.fit(X, Y, epochs=5, validation_split=0.3)))
    (net_a, hist_a), (net_b, hist_b) = runs
    assert hist_a.val_loss == hist_b.val_loss
    assert hist_a.val_accuracy == hist_b.val_accuracy
    np.testing.assert_array_equal(net_a.params, net_b.params)
    # Another seed with the same starting weights: other held-out rows.
    net_c = MLP([3, 5, 2], activation="tanh", seed=13, backend=backend)
    net_c.params[...] = MLP([3, 5, 2], activation="tanh", seed=12, backend=backend).params
    hist_c = net_c.fit(X, Y, epochs=5, validation_split=0.3)
    assert hist_c.val_loss != hist_a.val_loss


def test_validation_data_figures(backend, make_data):
    X, Y = make_data(20, 3, 3, seed=4, kind="onehot")
    Xv, Yv = make_data(9, 3, 3, seed=5, kind="onehot")
    net = MLP([3, 6, 3], output_activation="softmax", loss="cross_entropy", seed=2,
              backend=backend)
    history = net.fit(X, Y, epochs=4, learning_rate=0.2, validation_data=(Xv, Yv))
    # The last entries are the network's own figures on the validation data.
    assert history.val_loss[-1] == pytest.approx(net.loss(Xv, Yv), rel=1e-12)
    assert history.val_accuracy[-1] == net.accuracy(Xv, Yv)
    assert history.val_accuracy[-1] == np.mean(net.classify(Xv) == Yv.argmax(axis=1))
    assert all(value in {k / 9 for k in range(10)} for value in history.val_accuracy)
    # Validation rows are only measured, never trained on: the run equals one
    # without validation data.
    plain = MLP([3, 6, 3], output_activation="softmax", loss="cross_entropy", seed=2,
                backend=backend)
    plain.fit(X, Y, epochs=4, learning_rate=0.2)
    np.testing.assert_array_equal(net.params, plain.params)


# ---------------------------------------------------------------- History

def test_history_field_lengths(backend, make_data):
    X, Y = make_data(12, 3, 2)
    net = MLP([3, 4, 2], seed=0, backend=backend)
    history = net.fit(X, Y, epochs=7)
    assert isinstance(history, History) and net.history is history
    assert history.epochs == len(history.loss) == len(history.accuracy) == 7
    assert len(history.learning_rate) == 7
    assert history.val_loss == [] and history.val_accuracy == []
    assert history.stopped_early is False and history.best_epoch is None

    history = net.fit(X, Y, epochs=6, validation_data=(X[:4], Y[:4]))
    assert net.history is history
    for values in (history.loss, history.accuracy, history.val_loss, history.val_accuracy,
                   history.learning_rate):
        assert len(values) == 6
    assert history.best_epoch is None and history.stopped_early is False
    assert "Val loss" in history.summary() and history.summary().startswith("Epoch: 6,")

    history = net.partial_fit(X, Y)
    assert history.epochs == 1 and history.val_loss == []


def test_callback_sees_each_epoch(backend, make_data):
    X, Y = make_data(12, 3, 2)
    net = MLP([3, 4, 2], seed=0, backend=backend)
    seen = []
    net.fit(X, Y, epochs=4, validation_split=0.25,
            callback=lambda epoch, history: seen.append((epoch, len(history.val_loss))))
    assert seen == [(1, 1), (2, 2), (3, 3), (4, 4)]


# ---------------------------------------------------------------- regression

def test_linear_regression(backend, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    true_w, true_b = np.array([1.5, -2.0, 0.5]), 0.3
    Y = (X @ true_w + true_b).reshape(-1, 1)
    net = MLP([3, 1], output_activation="identity", loss="mse", dtype=dtype, seed=0,
              backend=backend)
    history = net.fit(X, Y, epochs=60, learning_rate=0.05, batch_size=10)
    tol = 1e-3 if dtype == np.float32 else 1e-6
    assert net.loss(X, Y) < tol ** 2
    assert history.loss[-1] < history.loss[0] / 1000
    np.testing.assert_allclose(net.weights[0][:, 0], true_w, atol=tol)
    np.testing.assert_allclose(net.biases[0], [true_b], atol=tol)
    # Outputs are not squashed: targets far outside [0, 1] are reached.
    assert np.abs(Y).max() > 4
    np.testing.assert_allclose(net.predict(X), Y, atol=10 * tol)


def test_nonlinear_regression_with_hidden_layers(backend):
    x = np.linspace(-3, 3, 120).reshape(-1, 1)
    y = np.sin(x) * 2
    net = MLP([1, 24, 24, 1], activation=["tanh", "leaky_relu"], output_activation="identity",
              loss="mse", seed=1, backend=backend)
    history = net.fit(x, y, epochs=300, optimizer="adam", learning_rate=0.01, batch_size=16)
    assert history.loss[0] > 0.5
    assert net.loss(x, y) < 0.01


# ---------------------------------------------------------------- binary outputs

def test_binary_classification_single_sigmoid_output(backend, dtype):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 2))
    Y = (X[:, 0] ** 2 + X[:, 1] ** 2 < 1.2).astype(float).reshape(-1, 1)
    net = MLP([2, 12, 1], activation="tanh", output_activation="sigmoid", loss="bce",
              dtype=dtype, seed=3, backend=backend)
    net.fit(X, Y, epochs=150, optimizer="adam", learning_rate=0.02, batch_size=8)
    outputs = net.predict(X)[:, 0]
    manual = np.mean((outputs > 0.5) == (Y[:, 0] > 0.5))
    assert net.accuracy(X, Y) == manual
    assert manual >= 0.9
    np.testing.assert_array_equal(net.classify(X), (outputs > 0.5).astype(int))
    # BCE as torch.nn.BCELoss: mean of -(y log a + (1 - y) log(1 - a)).
    a = outputs.astype(float)
    bce = -np.mean(Y[:, 0] * np.log(a) + (1 - Y[:, 0]) * np.log(1 - a))
    assert net.loss(X, Y) == pytest.approx(bce, rel=1e-4 if dtype == np.float32 else 1e-9)


def test_binary_accuracy_thresholds_at_one_half(backend):
    # All weights zero: every output is sigmoid(0) = 0.5, which is class 0
    # (a row counts as positive only when its output exceeds 0.5).
    net = MLP([2, 1], output_activation="sigmoid", loss="bce", backend=backend)
    net.params[...] = 0
    X = [[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [-2.0, 1.0]]
    assert net.accuracy(X, [[0], [0], [0], [1]]) == 0.75
    assert net.accuracy(X, [[1], [1], [1], [1]]) == 0.0
    # log 2 per row.
    assert net.loss(X, [[0], [1], [0], [1]]) == pytest.approx(math.log(2), rel=1e-12)
    # Nudge the bias: now every output exceeds 0.5.
    net.biases[0][...] = 1e-6
    assert net.accuracy(X, [[1], [1], [1], [0]]) == 0.75
    # Soft targets: 0.7 counts as positive, 0.3 as negative.
    assert net.accuracy(X, [[0.7], [0.3], [0.51], [0.5]]) == 0.5


def test_history_accuracy_for_binary_outputs(backend):
    # One step per epoch with the whole batch: History.accuracy is that of
    # the forward pass before the step, thresholded at 0.5.
    rng = np.random.default_rng(2)
    X = rng.normal(size=(15, 3))
    Y = rng.integers(0, 2, (15, 1)).astype(float)
    net = MLP([3, 4, 1], loss="bce", seed=4, backend=backend)
    for _ in range(3):
        expected = np.mean((net.predict(X)[:, 0] > 0.5) == (Y[:, 0] > 0.5))
        history = net.fit(X, Y, epochs=1, batch_size=15, learning_rate=0.5)
        assert history.accuracy == [expected]


# ---------------------------------------------------------------- extreme pre-activations

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
HEADS = [("sigmoid", "mse"), ("tanh", "mse"), ("relu", "mse"), ("leaky_relu", "mse"),
         ("identity", "mse"), ("softmax", "mse"), ("sigmoid", "bce"),
         ("softmax", "cross_entropy")]


def extreme_net(backend, dtype, hidden, output, loss):
    """A 2-3-2 network whose pre-activations reach +-1000 (and more) on X below."""
    net = MLP([2, 3, 2], activation=hidden, output_activation=output, loss=loss, dtype=dtype,
              backend=backend)
    net.weights[0][...] = [[1.0, -1.0, 0.5],
                           [-1.0, 1.0, 0.5]]
    net.biases[0][...] = [0.0, 0.0, 0.0]
    net.weights[1][...] = [[1.0, -1.0],
                           [-1.0, 1.0],
                           [1.0, 1.0]]
    net.biases[1][...] = [0.5, -0.5]
    return net


EXTREME_X = 1000 * np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, -1.0],
                             [0.3, -0.7]])


def extreme_targets(loss, output):
    if output == "softmax":
        return np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8], [0.5, 0.5], [1.0, 0.0],
                         [0.0, 1.0]])
    return np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])


EXTREME_STEP = 1e-7   # x is ~1000, so z moves by ~1e-4: small next to the curvature


def crosses_a_kink(net, X, reference_pre_activations, base, i, step):
    """Whether moving params[i] by +-step moves a ReLU pre-activation across 0.

    There the loss is not differentiable and central differences average the
    two one-sided slopes, while the kernels use relu'(0) = 0 as torch does.
    """
    signs = []
    for delta in (-step, 0.0, step):
        params = base.copy()
        params[i] += delta
        layers = reference_pre_activations(net, X, params)
        signs.append([np.sign(z) for (z, _), name in zip(layers, net.activations)
                      if name in ("relu", "leaky_relu")])
    return any((below != at).any() or (above != at).any()
               for below, at, above in zip(*signs))


@pytest.mark.parametrize("output, loss", HEADS, ids=[f"{o}-{l}" for o, l in HEADS])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_extreme_pre_activations_stay_finite_without_warnings(backend, hidden, output, loss,
                                                              reference_loss,
                                                              reference_gradient,
                                                              reference_pre_activations):
    Y = extreme_targets(loss, output)
    for dtype in (np.float64, np.float32):
        net = extreme_net(backend, dtype, hidden, output, loss)
        X = EXTREME_X.astype(dtype)
        Yd = Y.astype(dtype)
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise",
                                                    divide="raise", under="ignore"):
            warnings.simplefilter("error")
            value, grad = net.loss_and_grad(X, Yd)
            loss_value = net.loss(X, Yd)
            outputs = net.predict(X)
            accuracy = net.accuracy(X, Yd)
            net.fit(X, Yd, epochs=1, batch_size=2, learning_rate=1e-6, shuffle=False)
        what = f"{hidden} -> {output}/{loss}, {np.dtype(dtype).name}"
        assert math.isfinite(value), what
        assert math.isfinite(loss_value), what
        assert value == pytest.approx(loss_value, rel=1e-5), what
        assert np.isfinite(grad).all(), what
        assert np.isfinite(outputs).all(), what
        assert 0 <= accuracy <= 1
        assert np.isfinite(net.params).all(), what
        # Against the float64 reference (conftest), at the parameters the
        # kernel saw: the loss, and the gradient wherever the loss is smooth.
        start = extreme_net(backend, dtype, hidden, output, loss)
        rtol = 1e-10 if dtype == np.float64 else 1e-6
        assert value == pytest.approx(reference_loss(start, X, Yd), rel=rtol, abs=1e-12), what
        base = start.params.astype(np.float64)
        smooth = np.array([not crosses_a_kink(start, X, reference_pre_activations, base, i,
                                              EXTREME_STEP)
                           for i in range(start.n_params)])
        # Only rows 4 and 5 put ReLU units at their kink: most entries are checked.
        assert smooth.sum() >= 10, what
        estimate = reference_gradient(start, X, Yd, np.flatnonzero(smooth), step=EXTREME_STEP)
        tol = 1e-7 if dtype == np.float64 else 1e-5
        scale = max(1.0, np.abs(estimate).max())
        np.testing.assert_allclose(grad[smooth], estimate, rtol=tol, atol=tol * scale,
                                   err_msg=what)


@pytest.mark.parametrize("z, y, expected", [
    # BCE on logits: max(z, 0) - z y + log(1 + exp(-|z|)), exact at any z.
    (1000.0, 0.0, 1000.0),
    (-1000.0, 1.0, 1000.0),
    (1000.0, 1.0, 0.0),
    (-1000.0, 0.0, 0.0),
    (800.0, 0.25, 600.0),
])
def test_bce_at_saturated_sigmoid_is_exact(backend, dtype, z, y, expected):
    # a = sigmoid(w x) with w = 1, x = z: the output is 0 or 1 to machine
    # precision, yet the loss is the exact cross-entropy of the logit.
    net = MLP([1, 1], output_activation="sigmoid", loss="bce", dtype=dtype, backend=backend)
    net.weights[0][...] = 1.0
    net.biases[0][...] = 0.0
    value = net.loss([[z]], [[y]])
    assert value == pytest.approx(expected, abs=1e-9, rel=1e-6)
    _, grad = net.loss_and_grad(np.array([[z]], dtype=dtype), np.array([[y]], dtype=dtype))
    # dL/dz = a - y with a = 1 (z > 0) or 0 (z < 0); dL/dw = x dL/dz, dL/db = dL/dz.
    dz = (1.0 if z > 0 else 0.0) - y
    np.testing.assert_allclose(grad, [z * dz, dz], rtol=1e-6, atol=1e-9)


def test_cross_entropy_at_extreme_logits_is_exact(backend, dtype):
    # Logits (1000, -1000) via w = (1, -1): -log softmax = (0, 2000).
    net = MLP([1, 2], output_activation="softmax", loss="cross_entropy", dtype=dtype,
              backend=backend)
    net.weights[0][...] = [[1.0, -1.0]]
    net.biases[0][...] = 0.0
    X = [[1000.0]]
    assert net.loss(X, [[0.0, 1.0]]) == pytest.approx(2000.0, rel=1e-6)
    assert net.loss(X, [[1.0, 0.0]]) == pytest.approx(0.0, abs=1e-9)
    assert net.loss(X, [[0.25, 0.75]]) == pytest.approx(1500.0, rel=1e-6)


# ---------------------------------------------------------------- divergence

def test_training_diverged_is_a_floating_point_error():
    assert issubclass(TrainingDiverged, FloatingPointError)


def test_divergence_epoch_and_weights_by_hand(backend):
    # a = w x + b with x = 1, y = 0: L = s^2 with s = w + b, and both
    # dL/dw and dL/db are 2 s, so one step maps s to s - 2 lr 2 s = (1 - 4 lr) s
    # while w - b stays 0. With lr = 10 and s = 1: s_n = (-39)^n after n steps.
    # Epoch k evaluates the loss at s_(k-1) before its step; the loss s^2
    # overflows once |s| > sqrt(max float64) ~ 1.34e154, i.e. 39^n > 1.34e154,
    # n > 154.13 / log10(39) = 96.9: the step of epoch 97 makes the loss inf.
    # fit checks the loss after each chunk's last step too, so it stops there
    # and leaves the network after step 96, the last one with a finite loss.
    net = MLP([1, 1], output_activation="identity", loss="mse", backend=backend)
    net.weights[0][...] = 0.5
    net.biases[0][...] = 0.5
    assert 39.0 ** 96 < math.sqrt(np.finfo(np.float64).max) < 39.0 ** 97
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged, match=r"\bepoch 97\b") as info:
            net.fit([[1.0]], [[0.0]], epochs=200, learning_rate=10.0, shuffle=False)
    assert "learning_rate" in str(info.value) or "learning rate" in str(info.value)
    # History kept the 96 completed epochs; the network was left after step 96.
    assert net.history.epochs == 96
    assert np.isfinite(net.params).all()
    s96 = 39.0 ** 96
    np.testing.assert_allclose(net.weights[0][0, 0], s96 / 2, rtol=1e-12)
    np.testing.assert_allclose(net.biases[0][0], s96 / 2, rtol=1e-12)


@pytest.mark.parametrize("hidden, output", [("sigmoid", "identity"), ("identity", "identity"),
                                            ("tanh", "identity"), ("relu", "identity")])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_absurd_learning_rate_raises_training_diverged(backend, dtype, make_data, hidden,
                                                       output, optimizer):
    X, Y = make_data(16, 3, 2, seed=1)
    Y = 10 * Y
    net = MLP([3, 5, 2], activation=hidden, output_activation=output, loss="mse",
              dtype=dtype, seed=0, backend=backend)
    kwargs = dict(momentum=0.9) if optimizer == "momentum" else {}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged) as info:
            net.fit(X, Y, epochs=500, learning_rate=50.0, batch_size=4, **kwargs)
    # The message names the epoch in which it happened: the one after the
    # completed epochs kept in net.history.
    assert f"epoch {net.history.epochs + 1}" in str(info.value)
    assert np.isfinite(net.params).all()
    assert np.isfinite(net.state_dict()["optimizer_state"]).all()


@pytest.mark.parametrize("learning_rate", [1e40, 1e100, 1e300])
def test_sigmoid_mse_network_diverges_with_absurd_learning_rate(backend, learning_rate):
    # Sigmoid outputs keep the MSE loss bounded, so divergence shows in the
    # weights: in float32 the very first step lr * grad overflows them, and
    # the network goes back to where it started.
    X = np.array([[1.0, -2.0], [0.5, 1.5], [-1.0, 0.3]])
    Y = np.array([[1.0], [0.0], [1.0]])
    net = MLP([2, 3, 1], activation="sigmoid", output_activation="sigmoid", loss="mse",
              dtype=np.float32, seed=0, backend=backend)
    initial = net.params.copy()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged, match=r"\bepoch 1\b"):
            net.fit(X, Y, epochs=20, learning_rate=learning_rate, shuffle=False)
    assert net.history.epochs == 0
    np.testing.assert_array_equal(net.params, initial)
    # The network is usable again with a sensible rate.
    net.fit(X, Y, epochs=5, learning_rate=0.5)
    assert np.isfinite(net.params).all()


@pytest.mark.parametrize("batch_size", [1, 2, 3])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_divergence_does_not_depend_on_how_epochs_are_cut_into_chunks(backend, monkeypatch,
                                                                      batch_size, optimizer):
    # The trainer's promise holds whatever the chunks: the same steps are kept
    # (the network is left at the last state whose loss was measured finite),
    # whether the failing batch opens a chunk, sits inside one, or follows a
    # chunk that ended an epoch. Chunks of one batch put every step of the
    # undo across a chunk boundary.
    from cymlp import _training
    X = np.linspace(-3, 3, 14).reshape(7, 2) * 1e3
    Y = np.linspace(0, 1, 14).reshape(7, 2)
    kwargs = dict(epochs=40, learning_rate=3.0 if optimizer != "adam" else 1e100,
                  batch_size=batch_size, shuffle=True)
    if optimizer == "momentum":
        kwargs["momentum"] = 0.9
    if optimizer == "adam":
        kwargs["optimizer"] = "adam"

    def outcome():
        net = MLP([2, 3, 2], activation="identity", output_activation="identity", seed=3,
                  backend=backend)
        with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as caught:
            net.fit(X, Y, **kwargs)
        state = net.state_dict()
        assert np.isfinite(state["params"]).all() and np.isfinite(state["optimizer_state"]).all()
        assert np.isfinite(net.loss(X[:batch_size], Y[:batch_size])) or state["step"] == 0
        return str(caught.value), state, net.history

    whole = outcome()
    monkeypatch.setattr(_training, "FIRST_CHUNK_ROWS", 1)
    monkeypatch.setattr(_training, "CHUNK_SECONDS", -1.0)     # chunks never grow
    one_batch_each = outcome()
    assert whole[0] == one_batch_each[0]
    assert whole[1]["step"] == one_batch_each[1]["step"]
    np.testing.assert_array_equal(whole[1]["params"], one_batch_each[1]["params"])
    np.testing.assert_array_equal(whole[1]["optimizer_state"], one_batch_each[1]["optimizer_state"])
    assert whole[2] == one_batch_each[2]
    assert whole[2].epochs == int(whole[0].split("epoch ")[1].split(":")[0]) - 1


def test_output_check_bound_decides_as_the_column_sum_bound():
    """The loose bound (every |w| the largest) never passes a network the tight one fails.

    Both written out here from their definitions: what enters a layer times
    its largest column sum of |W| (loose: n_in times the largest |w| of the
    network), plus its largest |b| (loose: that largest |w|). Among the
    networks tried, some are passed only by the tight bound.
    """
    from cymlp._training import OutputCheck

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 6))
    Y = np.eye(3)[rng.integers(0, 3, 20)]
    passed_only_by_the_tight_bound = 0
    for dtype, activation in [(np.float32, "relu"), (np.float32, "tanh"), (np.float64, "relu")]:
        for scale in 10.0 ** np.arange(0, 36, 0.5):
            net = MLP([6, 9, 7, 3], activation=activation, output_activation="softmax",
                      loss="cross_entropy", dtype=dtype, seed=1)
            net.params[...] = rng.normal(size=net.n_params) * scale
            check = OutputCheck(net, X.astype(dtype), Y.astype(dtype))
            bounds = []
            with np.errstate(over="ignore", invalid="ignore"):
                largest_weight = float(np.abs(net.params).max())
                for loose in (True, False):
                    entering, bound = float(np.abs(X.astype(dtype)).max()), 0.0
                    for layer, weights in enumerate(net.weights):
                        if loose:
                            pre = entering * weights.shape[0] * largest_weight + largest_weight
                        else:
                            pre = (entering * float(np.abs(weights).sum(axis=0).max())
                                   + float(np.abs(net.biases[layer]).max()))
                        bound = max(bound, pre)
                        bounded = net.activations[layer] in ("tanh", "softmax")
                        entering = 1.0 if bounded else pre
                    bounds.append(bound if math.isfinite(bound) else math.inf)
            loose, tight = bounds
            assert (check.output_bound() < check.safe) == (tight < check.safe)
            assert loose >= tight
            passed_only_by_the_tight_bound += tight < check.safe <= loose
    assert passed_only_by_the_tight_bound > 0
