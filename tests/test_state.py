"""Public state: state_dict, load_state_dict, reset_optimizer, optimizer objects, views."""

import numpy as np
import pytest

from cymlp import MLP, History
from cymlp.optim import SGD, Adam


def trained(backend, make_data, **fit_options):
    X, Y = make_data(30, 4, 3, seed=2, kind="onehot")
    net = MLP([4, 6, 3], activation="tanh", output_activation="softmax", loss="cross_entropy",
              seed=1, backend=backend)
    net.fit(X, Y, epochs=3, batch_size=4, **fit_options)
    return net, X, Y


# ---------------------------------------------------------------- state_dict


@pytest.mark.parametrize("optimizer", [SGD(0.1, momentum=0.9), Adam(1e-2)],
                         ids=["momentum", "adam"])
def test_state_dict_round_trip_continues_exactly(backend, make_data, optimizer):
    net, X, Y = trained(backend, make_data, optimizer=optimizer, validation_split=0.2)
    clone = MLP([4, 6, 3], activation="tanh", output_activation="softmax",
                loss="cross_entropy", seed=99, backend=backend)
    clone.load_state_dict(net.state_dict())
    for name in ("params", "optimizer_state"):
        np.testing.assert_array_equal(clone.state_dict()[name], net.state_dict()[name])
    assert clone.history == net.history and clone.state_dict()["step"] == net.state_dict()["step"]
    first = net.fit(X, Y, epochs=2, batch_size=4, optimizer=optimizer, validation_split=0.2)
    second = clone.fit(X, Y, epochs=2, batch_size=4, optimizer=optimizer, validation_split=0.2)
    np.testing.assert_array_equal(clone.params, net.params)
    assert first == second


def test_state_dict_copies(backend, make_data):
    net, _, _ = trained(backend, make_data, optimizer=SGD(0.1, momentum=0.5))
    state = net.state_dict()
    state["params"][...] = 0
    state["optimizer_state"][...] = 0
    state["history"].loss.append(1.0)
    assert np.abs(net.params).max() > 0 and np.abs(net.state_dict()["optimizer_state"]).max() > 0
    assert net.history.epochs == 3


@pytest.mark.parametrize("key, value, error, pattern", [
    ("params", np.zeros(3), ValueError, r"^state\['params'\] must be a float64 array of shape"),
    ("params", "x", ValueError, r"^state\['params'\]"),
    ("optimizer_state", np.full((2, 51), np.nan), ValueError,
     r"^state\['optimizer_state'\] holds NaN or inf"),
    ("step", -1, ValueError, r"^state\['step'\] must be an integer >= 0"),
    ("step", 1.5, TypeError, r"^state\['step'\] must be an integer >= 0"),
    ("step", 2 ** 64, ValueError, r"^state\['step'\] must be an integer >= 0 and below 2\*\*62"),
    ("optimizer", "rmsprop", ValueError, r"^state\['optimizer'\] must be None or one of"),
    ("optimizer", ["adam"], ValueError, r"^state\['optimizer'\] must be None or one of"),
    ("rng_state", {"bit_generator": "PCG64"}, ValueError,
     r"^state\['rng_state'\] is not a generator state"),
    ("validation_rows", {"n_rows": 30, "fraction": 0.2, "rows": [3, 1]}, ValueError,
     r"^state\['validation_rows'\] is inconsistent"),
    ("history", [1, 2], TypeError, r"^state\['history'\] must be a History"),
], ids=lambda value: str(value)[:20])
def test_load_state_dict_names_the_bad_entry_and_changes_nothing(backend, make_data, key, value,
                                                                 error, pattern):
    net, _, _ = trained(backend, make_data, optimizer=SGD(0.1, momentum=0.5))
    before = net.state_dict()
    with pytest.raises(error, match=pattern):
        net.load_state_dict({**before, key: value})
    after = net.state_dict()
    for name in ("params", "optimizer_state"):
        np.testing.assert_array_equal(after[name], before[name])
    assert after["step"] == before["step"] and after["history"] == before["history"]


def test_load_state_dict_needs_the_main_entries(backend):
    net = MLP([2, 1], backend=backend)
    with pytest.raises(ValueError, match=r"^state lacks optimizer_state, step"):
        net.load_state_dict({"params": net.params, "optimizer": None, "rng_state": {}})
    with pytest.raises(TypeError, match=r"^state must be a dict"):
        net.load_state_dict([1, 2])


# ---------------------------------------------------------------- validation split


def test_validation_split_is_drawn_once_and_never_trained_on(backend, make_data):
    # The oracle: the same fits on explicit copies of the training and the
    # held-out rows. Equal weights and validation losses mean the held-out
    # rows were never trained on, and the rows kept in place were visited in
    # the order (and, with shuffling, the permutation) the copies would be.
    X, Y = make_data(40, 3, 2)
    net = MLP([3, 4, 2], seed=5, backend=backend)
    twin = MLP([3, 4, 2], seed=5, backend=backend)
    first_rows = None
    for fit in range(4):
        shuffle = fit >= 2        # the split is drawn: both generators stay in step
        if shuffle:
            twin.load_state_dict(net.state_dict())
        history = net.fit(X, Y, epochs=2, validation_split=0.25, learning_rate=0.1,
                          batch_size=3, shuffle=shuffle)
        held_out = net.state_dict()["validation_rows"]
        assert held_out["n_rows"] == 40 and held_out["fraction"] == 0.25
        rows = held_out["rows"]
        assert len(rows) == 10
        if first_rows is None:
            first_rows = rows.copy()
        np.testing.assert_array_equal(rows, first_rows)   # drawn once
        train = np.setdiff1d(np.arange(40), rows)
        reference = twin.fit(X[train], Y[train], epochs=2, validation_data=(X[rows], Y[rows]),
                             learning_rate=0.1, batch_size=3, shuffle=shuffle)
        np.testing.assert_array_equal(net.params, twin.params)
        assert history.val_loss == reference.val_loss and history.loss == reference.loss
    # Another data size draws a new split; reset() forgets it.
    net.fit(X[:20], Y[:20], epochs=1, validation_split=0.25, learning_rate=1e-3)
    assert net.state_dict()["validation_rows"]["n_rows"] == 20
    net.reset()
    assert net.state_dict()["validation_rows"] is None


def test_the_validation_split_travels_with_the_state(backend, make_data):
    X, Y = make_data(40, 3, 2)
    net = MLP([3, 4, 2], seed=5, backend=backend)
    net.fit(X, Y, epochs=1, validation_split=0.3)
    other = MLP([3, 4, 2], seed=6, backend=backend).load_state_dict(net.state_dict())
    np.testing.assert_array_equal(other.state_dict()["validation_rows"]["rows"],
                                  net.state_dict()["validation_rows"]["rows"])


# ---------------------------------------------------------------- interrupts and early stopping


def test_ctrl_c_with_early_stopping_restores_the_best_epoch(backend, make_data):
    X, Y = make_data(40, 3, 2)
    X_val, Y_val = make_data(10, 3, 2, seed=9)
    net = MLP([3, 8, 2], seed=5, backend=backend)
    snapshots, interrupted_at = {}, []

    def interrupt(epoch, history):
        snapshots[epoch] = net.params.copy()
        if epoch > 2 and history.best_epoch < epoch:   # an epoch that did not improve
            interrupted_at.append(epoch)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y, epochs=200, learning_rate=3.0, validation_data=(X_val, Y_val),
                early_stopping=True, patience=100, callback=interrupt)
    best = int(np.argmin(net.history.val_loss)) + 1
    assert interrupted_at and best < interrupted_at[0]
    assert net.history.best_epoch == best and net.history.epochs == interrupted_at[0]
    np.testing.assert_array_equal(net.params, snapshots[best])
    assert not np.array_equal(net.params, snapshots[interrupted_at[0]])


# ---------------------------------------------------------------- optimizers


def test_optimizer_objects_equal_their_names(backend, make_data):
    X, Y = make_data(20, 3, 2)
    pairs = [(Adam(1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-3),
              dict(optimizer="adam", learning_rate=1e-2, betas=(0.8, 0.99), eps=1e-6,
                   weight_decay=1e-3)),
             (SGD(0.05, momentum=0.9, nesterov=True),
              dict(learning_rate=0.05, momentum=0.9, nesterov=True))]
    for optimizer, options in pairs:
        by_object = MLP([3, 4, 2], seed=2, backend=backend)
        by_name = MLP([3, 4, 2], seed=2, backend=backend)
        by_object.fit(X, Y, epochs=3, batch_size=4, optimizer=optimizer)
        by_name.fit(X, Y, epochs=3, batch_size=4, **options)
        np.testing.assert_array_equal(by_object.params, by_name.params)
        assert by_object.history == by_name.history


@pytest.mark.parametrize("options, error, pattern", [
    (dict(optimizer=Adam(), learning_rate=0.1), ValueError,
     r"^learning_rate cannot be combined with an optimizer object"),
    (dict(optimizer=SGD(), momentum=0.9), ValueError,
     r"^momentum cannot be combined with an optimizer object"),
    (dict(optimizer="sgd", betas=(0.9, 0.99)), ValueError, r"^betas and eps are Adam options"),
    (dict(optimizer="adam", momentum=0.9), ValueError, r"^momentum and nesterov are SGD"),
    (dict(optimizer="sgd", learning_rate=0.0), ValueError, r"^learning_rate must be"),
    (dict(optimizer=3), TypeError, r"^optimizer must be 'sgd', 'adam', 'lbfgs' or a cymlp.optim"),
])
def test_bad_optimizer_arguments_name_the_argument(backend, make_data, options, error, pattern):
    X, Y = make_data(5, 3, 2)
    net = MLP([3, 2], seed=0, backend=backend)
    before = net.params.copy()
    with pytest.raises(error, match=pattern):
        net.fit(X, Y, **options)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("make, pattern", [
    (lambda: SGD(lr=-1), r"^lr must be a finite number > 0"),
    (lambda: SGD(momentum=1.0), r"^momentum must be a finite number >= 0"),
    (lambda: SGD(nesterov=True), r"^nesterov=True needs momentum > 0"),
    (lambda: Adam(betas=(0.9,)), r"^betas must be a pair"),
    (lambda: Adam(eps=0), r"^eps must be a finite number > 0"),
    (lambda: Adam(betas=(1.0, 0.5)), r"^betas\[0\] must be"),
])
def test_optimizer_objects_check_their_options(make, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        make()


def test_reset_optimizer_forgets_the_state_only(backend, make_data):
    X, Y = make_data(20, 3, 2)
    net = MLP([3, 4, 2], seed=2, backend=backend)
    net.fit(X, Y, epochs=2, optimizer=SGD(0.1, momentum=0.9))
    params = net.params.copy()
    assert net.state_dict()["step"] > 0 and np.abs(net.state_dict()["optimizer_state"]).max() > 0
    net.reset_optimizer()
    state = net.state_dict()
    assert state["step"] == 0 and state["optimizer"] is None
    assert not state["optimizer_state"].any()
    np.testing.assert_array_equal(net.params, params)
    # Training on equals training a network that starts from these weights.
    fresh = MLP([3, 4, 2], seed=2, backend=backend)
    fresh.params[...] = params
    fresh.load_state_dict({**fresh.state_dict(), "rng_state": net.state_dict()["rng_state"]})
    net.fit(X, Y, epochs=2, optimizer=SGD(0.1, momentum=0.9))
    fresh.fit(X, Y, epochs=2, optimizer=SGD(0.1, momentum=0.9))
    np.testing.assert_array_equal(net.params, fresh.params)


# ---------------------------------------------------------------- views


def test_weights_and_biases_are_read_only_sequences_of_views(backend):
    net = MLP([3, 4, 2], seed=0, backend=backend)
    with pytest.raises(TypeError, match=r"^weights\[0\] cannot be replaced.*"
                                        r"weights\[0\]\[\.\.\.\] = new_values"):
        net.weights[0] = np.zeros((3, 4))
    with pytest.raises(TypeError, match=r"^biases\[1\] cannot be replaced"):
        net.biases[1] = np.zeros(2)
    with pytest.raises(AttributeError, match=r"^net.weights cannot be replaced"):
        net.weights = []
    with pytest.raises(AttributeError, match=r"^net.biases cannot be replaced"):
        net.biases = []
    net.weights[0][...] = 1.5
    assert (net.params[:12] == 1.5).all()
    assert len(net.weights) == 2 and net.weights[-1].shape == (4, 2)
    assert [w.shape for w in net.weights + net.biases] == [(3, 4), (4, 2), (4,), (2,)]
    assert net.weights == list(net.weights) and net.biases != []


def test_history_copy_and_check():
    history = History(loss=[1.0, 0.5], accuracy=[0.5, 1.0], learning_rate=[0.1, 0.1],
                      best_epoch=2)
    copied = history.copy()
    copied.loss.append(0.2)
    assert history.loss == [1.0, 0.5]
    history.check()
    with pytest.raises(ValueError, match=r"^history: loss, accuracy and learning_rate"):
        copied.check()


def test_a_changed_optimizer_object_is_checked_again(backend, make_data):
    X, Y = make_data(5, 3, 2)
    net = MLP([3, 2], seed=0, backend=backend)
    optimizer = SGD(0.1)
    optimizer.lr = -1.0
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0"):
        net.fit(X, Y, optimizer=optimizer)
    optimizer.lr = "0.5"
    with pytest.raises(TypeError, match=r"^lr must be a real number"):
        net.fit(X, Y, optimizer=optimizer)
