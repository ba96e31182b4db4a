"""The MLP class: parameters, dtypes, training loop, inference, persistence."""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest

import cymlp
from cymlp import MLP, History, TrainingDiverged

# ---------------------------------------------------------------- dtypes


def test_dtype_is_preserved(backend, dtype, data):
    X, Y = data
    net = MLP([4, 5, 2], dtype=dtype, seed=0, backend=backend)
    assert net.dtype is dtype
    assert net.params.dtype == dtype
    assert all(w.dtype == dtype for w in net.weights)
    assert all(b.dtype == dtype for b in net.biases)
    history = net.fit(X.astype(dtype), Y.astype(dtype), epochs=2)
    assert net.params.dtype == dtype
    assert all(w.dtype == dtype for w in net.weights)
    # Outputs follow the network's dtype whatever the input's dtype.
    for inputs in (X.astype(np.float32), X.astype(np.float64), X.astype(np.int64)):
        assert net.predict(inputs).dtype == dtype
    assert net.classify(X).dtype == np.intp
    assert all(type(value) is float for value in history.loss + history.accuracy)
    assert isinstance(net.loss(X, Y), float)


def test_float32_approximates_float64(backend, data):
    X, Y = data
    single = MLP([4, 5, 2], dtype=np.float32, seed=3, backend=backend)
    double = MLP([4, 5, 2], dtype=np.float64, seed=3, backend=backend)
    np.testing.assert_array_equal(single.params, double.params.astype(np.float32))
    single.fit(X, Y, epochs=3, learning_rate=0.5)
    double.fit(X, Y, epochs=3, learning_rate=0.5)
    np.testing.assert_allclose(single.params, double.params, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(single.predict(X), double.predict(X), rtol=1e-5)


@pytest.mark.parametrize("name", ["float32", "float64", "f4", "f8", "double", np.dtype("float32")])
def test_dtype_spellings(backend, name):
    assert MLP([2, 1], dtype=name, backend=backend).params.dtype == np.dtype(name)


def test_integer_and_list_inputs(backend, dtype):
    X_int = np.array([[1, 0, 2], [0, -1, 3], [2, 2, -2], [1, 1, 1]])
    Y_int = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    X_float, Y_float = X_int.astype(np.float64), Y_int.astype(np.float64)
    net = MLP([3, 4, 2], dtype=dtype, seed=1, backend=backend)
    expected = net.predict(X_float)
    for inputs in (X_int, X_int.astype(np.int32), X_int.astype(np.int8), X_int.tolist(),
                   [tuple(row) for row in X_float]):
        np.testing.assert_array_equal(net.predict(inputs), expected)
    unsigned = np.abs(X_int)
    np.testing.assert_array_equal(net.predict(unsigned.astype(np.uint8)),
                                  net.predict(unsigned.astype(np.float64)))
    assert net.loss(X_int.tolist(), Y_int.tolist()) == net.loss(X_float, Y_float)
    assert net.accuracy(X_int, Y_int) == net.accuracy(X_float, Y_float)

    from_lists = MLP([3, 4, 2], dtype=dtype, seed=1, backend=backend)
    from_floats = MLP([3, 4, 2], dtype=dtype, seed=1, backend=backend)
    from_lists.fit(X_int.tolist(), Y_int.tolist(), epochs=3)
    from_floats.fit(X_float, Y_float, epochs=3)
    np.testing.assert_array_equal(from_lists.params, from_floats.params)


def test_memory_order_does_not_matter(backend, dtype, make_data):
    X, Y = make_data(8, 6, 2)
    net = MLP([3, 4, 2], dtype=dtype, seed=1, backend=backend)
    wide = np.asfortranarray(X)
    strided = X[:, ::2]
    assert not strided.flags.c_contiguous
    expected = net.predict(np.ascontiguousarray(strided))
    np.testing.assert_array_equal(net.predict(strided), expected)
    np.testing.assert_array_equal(net.predict(np.asfortranarray(strided)), expected)
    np.testing.assert_array_equal(net.predict(wide[:, 1::2]),
                                  net.predict(np.ascontiguousarray(X[:, 1::2])))
    # Rows in reverse order: the same outputs, reversed.
    np.testing.assert_array_equal(net.predict(strided[::-1]), expected[::-1])


# ---------------------------------------------------------------- parameter views


def test_weights_and_biases_are_views_of_params(backend, dtype):
    net = MLP([3, 4, 2], dtype=dtype, seed=0, backend=backend)
    assert [w.shape for w in net.weights] == [(3, 4), (4, 2)]
    assert [b.shape for b in net.biases] == [(4,), (2,)]
    assert net.n_params == 3 * 4 + 4 + 4 * 2 + 2 == net.params.shape[0]
    assert net.params.ndim == 1 and net.params.flags.c_contiguous
    for array in net.weights + net.biases:
        assert np.shares_memory(array, net.params)
    # Layout: W0, b0, W1, b1 back to back, weights row-major (n_in, n_out).
    layout = np.concatenate([net.weights[0].ravel(), net.biases[0],
                             net.weights[1].ravel(), net.biases[1]])
    np.testing.assert_array_equal(layout, net.params)


def test_writing_a_view_changes_params_and_predictions(backend):
    net = MLP([3, 4, 2], seed=0, backend=backend)
    X = np.array([[0.5, -1.0, 2.0]])
    before = net.predict(X)
    net.weights[1][2, 1] = 5.0
    assert net.params[3 * 4 + 4 + 2 * 2 + 1] == 5.0
    after = net.predict(X)
    assert after[0, 0] == before[0, 0]          # output 0 does not use that weight
    assert after[0, 1] != before[0, 1]
    net.biases[1][0] = -3.0
    assert net.params[3 * 4 + 4 + 4 * 2] == -3.0
    assert net.predict(X)[0, 0] != after[0, 0]
    # And the other way round: params written, views see it.
    net.params[:] = 0
    assert all((w == 0).all() for w in net.weights)
    np.testing.assert_array_equal(net.predict(X), [[0.5, 0.5]])


def test_views_follow_training(backend, data):
    X, Y = data
    net = MLP([4, 3, 2], seed=0, backend=backend)
    first_weights, first_bias = net.weights[0], net.biases[0]
    before = first_weights.copy()
    net.fit(X, Y, epochs=2)
    assert first_weights is net.weights[0] and first_bias is net.biases[0]
    assert np.shares_memory(first_weights, net.params)
    assert not np.array_equal(first_weights, before)


def test_no_bias(backend, data):
    X, Y = data
    net = MLP([4, 3, 2], activation="tanh", bias=False, seed=0, backend=backend)
    assert net.biases == []
    assert net.n_params == 4 * 3 + 3 * 2 == net.params.shape[0]
    np.testing.assert_array_equal(
        net.params, np.concatenate([net.weights[0].ravel(), net.weights[1].ravel()]))
    zeros = np.zeros((1, 4))
    # Without biases a zero input gives tanh(0) = 0 in the hidden layer and
    # sigmoid(0) = 0.5 at the output, before and after training.
    np.testing.assert_array_equal(net.predict(zeros), [[0.5, 0.5]])
    net.fit(X, Y, epochs=3)
    np.testing.assert_array_equal(net.predict(zeros), [[0.5, 0.5]])
    with_bias = MLP([4, 3, 2], activation="tanh", bias=True, seed=0, backend=backend)
    with_bias.fit(X, Y, epochs=3)
    assert not np.allclose(with_bias.predict(zeros), 0.5)


# ---------------------------------------------------------------- initialisation


def test_normal_init_draws_standard_normal_per_layer(backend, dtype):
    net = MLP([5, 4, 3, 2], init="normal", dtype=dtype, seed=42, backend=backend)
    rng = np.random.default_rng(42)
    for weights, shape in zip(net.weights, [(5, 4), (4, 3), (3, 2)]):
        np.testing.assert_array_equal(weights, rng.standard_normal(shape).astype(dtype))
    assert all((b == 0).all() for b in net.biases)


@pytest.mark.parametrize("init, limit", [
    ("uniform", lambda fan_in, fan_out: 0.5),
    ("glorot_uniform", lambda fan_in, fan_out: math.sqrt(6 / (fan_in + fan_out))),
    ("he_uniform", lambda fan_in, fan_out: math.sqrt(6 / fan_in)),
])
def test_uniform_inits_stay_within_their_limit(backend, init, limit):
    net = MLP([30, 50, 3], init=init, seed=0, backend=backend)
    for weights in net.weights:
        bound = limit(*weights.shape)
        assert np.abs(weights).max() <= bound
        # ... and use most of it (a too-small limit would also pass the line above).
        assert np.abs(weights).max() > 0.8 * bound
        assert abs(weights.mean()) < 0.2 * bound
    assert all((b == 0).all() for b in net.biases)


@pytest.mark.parametrize("init, std", [
    ("normal", lambda fan_in, fan_out: 1.0),
    ("glorot_normal", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))),
    ("he_normal", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
])
def test_normal_inits_have_their_standard_deviation(backend, init, std):
    net = MLP([300, 200, 100], init=init, seed=0, backend=backend)
    for weights in net.weights:
        # 20000+ draws: the sample std is within a few percent of the target.
        assert weights.std() == pytest.approx(std(*weights.shape), rel=0.03)
        assert abs(weights.mean()) < 0.03 * std(*weights.shape)


def test_default_init_is_glorot_uniform(backend):
    assert MLP([2, 1], backend=backend).init == "glorot_uniform"
    a = MLP([6, 4, 2], seed=9, backend=backend)
    b = MLP([6, 4, 2], init="glorot_uniform", seed=9, backend=backend)
    np.testing.assert_array_equal(a.params, b.params)


def test_same_seed_same_weights(backend):
    a = MLP([6, 4, 2], seed=123, backend=backend)
    b = MLP([6, 4, 2], seed=123, backend=backend)
    c = MLP([6, 4, 2], seed=124, backend=backend)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    # The seed, not the backend, decides the initial weights.
    np.testing.assert_array_equal(a.params, MLP([6, 4, 2], seed=123, backend="numpy").params)
    # A SeedSequence works like the integer it was built from.
    sequence = MLP([6, 4, 2], seed=np.random.SeedSequence(123), backend=backend)
    np.testing.assert_array_equal(sequence.params, a.params)


@pytest.mark.skipif(len(cymlp.available_backends()) < 2,
                    reason="compares the compiled and the NumPy backend; needs both built")
@pytest.mark.parametrize("init", ["normal", "uniform", "glorot_uniform", "glorot_normal",
                                  "he_uniform", "he_normal"])
def test_initial_weights_do_not_depend_on_the_backend(init):
    # Named explicitly: the backend fixture alone would compare numpy with
    # numpy in a CYMLP_BACKEND=numpy run.
    compiled = MLP([6, 4, 2], init=init, seed=123, backend="cython")
    reference = MLP([6, 4, 2], init=init, seed=123, backend="numpy")
    assert (compiled.backend, reference.backend) == ("cython", "numpy")
    np.testing.assert_array_equal(compiled.params, reference.params)
    assert np.abs(compiled.params).max() > 0


def test_no_seed_gives_fresh_weights(backend):
    assert not np.array_equal(MLP([6, 4, 2], backend=backend).params,
                              MLP([6, 4, 2], backend=backend).params)


def test_reset(backend, data):
    X, Y = data
    net = MLP([4, 3, 2], seed=5, backend=backend)
    initial = net.params.copy()
    first = net.fit(X, Y, epochs=3)
    trained = net.params.copy()
    assert not np.array_equal(trained, initial)
    assert net.reset() is net
    np.testing.assert_array_equal(net.params, initial)
    for array in net.weights + net.biases:
        assert np.shares_memory(array, net.params)
    # The generator restarts too: training again repeats the shuffles.
    again = net.fit(X, Y, epochs=3)
    np.testing.assert_array_equal(net.params, trained)
    assert again.loss == first.loss
    # A new seed replaces the old one for later resets.
    net.reset(seed=6)
    assert net.seed == 6
    np.testing.assert_array_equal(net.params, MLP([4, 3, 2], seed=6, backend=backend).params)
    net.fit(X, Y, epochs=1)
    net.reset()
    np.testing.assert_array_equal(net.params, MLP([4, 3, 2], seed=6, backend=backend).params)


# ---------------------------------------------------------------- fit


def test_fit_continues_from_current_weights(backend, data):
    X, Y = data
    for shuffle in (False, True):
        split = MLP([4, 3, 2], seed=8, backend=backend)
        whole = MLP([4, 3, 2], seed=8, backend=backend)
        h1 = split.fit(X, Y, epochs=3, shuffle=shuffle)
        h2 = split.fit(X, Y, epochs=2, shuffle=shuffle)
        h = whole.fit(X, Y, epochs=5, shuffle=shuffle)
        np.testing.assert_array_equal(split.params, whole.params)
        assert h1.loss + h2.loss == h.loss
        assert h1.accuracy + h2.accuracy == h.accuracy


def test_history(backend, data):
    X, Y = data
    net = MLP([4, 3, 2], seed=0, backend=backend)
    history = net.fit(X, Y, epochs=7, learning_rate=0.5)
    assert isinstance(history, History)
    assert len(history.loss) == len(history.accuracy) == history.epochs == 7
    assert all(0.0 <= value <= 1.0 for value in history.accuracy)
    # Accuracy is a share of the 12 rows.
    assert all(abs(value * 12 - round(value * 12)) < 1e-12 for value in history.accuracy)
    assert all(value > 0 and math.isfinite(value) for value in history.loss)
    assert History().epochs == 0


def test_history_matches_loss_and_accuracy_before_each_epoch(backend, make_data):
    # With one batch per epoch, the numbers recorded for an epoch are those of
    # the network as it was at the start of that epoch.
    X, Y = make_data(10, 3, 3, seed=4, kind="onehot")
    net = MLP([3, 4, 3], seed=2, backend=backend)
    twin = MLP([3, 4, 3], seed=2, backend=backend)
    history = net.fit(X, Y, epochs=6, learning_rate=2.0, batch_size=10, shuffle=False)
    losses, accuracies = [], []
    for _ in range(6):
        losses.append(twin.loss(X, Y))
        accuracies.append(twin.accuracy(X, Y))
        twin.fit(X, Y, epochs=1, learning_rate=2.0, batch_size=10, shuffle=False)
    np.testing.assert_array_equal(twin.params, net.params)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-12)
    assert history.accuracy == accuracies
    assert len(set(accuracies)) > 1 or len(set(losses)) > 1


def test_training_reduces_loss_and_learns_letters(backend):
    X, Y = cymlp.datasets.letters()
    net = MLP([30, 5, 3], seed=0, backend=backend)
    history = net.fit(X, Y, epochs=200, learning_rate=1.0)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert net.classify(X).tolist() == [0, 1, 2]
    assert net.accuracy(X, Y) == 1.0


def test_last_partial_batch_is_used(backend, make_data):
    X, Y = make_data(5, 3, 2, seed=1)
    net = MLP([3, 4, 2], seed=3, backend=backend)
    manual = MLP([3, 4, 2], seed=3, backend=backend)
    history = net.fit(X, Y, epochs=1, learning_rate=0.5, batch_size=2, shuffle=False)
    # Batches of 2, 2 and 1 rows, in order.
    losses = []
    for rows in (slice(0, 2), slice(2, 4), slice(4, 5)):
        step = manual.fit(X[rows], Y[rows], epochs=1, learning_rate=0.5, batch_size=2,
                          shuffle=False)
        losses.append(step.loss[0] * (rows.stop - rows.start))
        if rows.stop == 4:
            without_last = manual.params.copy()
    np.testing.assert_allclose(net.params, manual.params, rtol=1e-12, atol=1e-15)
    assert not np.allclose(net.params, without_last)
    assert history.loss[0] == pytest.approx(sum(losses) / 5, rel=1e-12)


def test_batch_larger_than_data_is_one_batch(backend, data):
    X, Y = data
    big = MLP([4, 3, 2], seed=1, backend=backend)
    exact = MLP([4, 3, 2], seed=1, backend=backend)
    big.fit(X, Y, epochs=3, batch_size=1000, shuffle=False)
    exact.fit(X, Y, epochs=3, batch_size=len(X), shuffle=False)
    np.testing.assert_array_equal(big.params, exact.params)


class _RecordingKernels:
    """Wraps a kernel module and records the rows handed to each Trainer.run call."""

    def __init__(self, module):
        self._module = module
        self.train_calls = []
        calls = self.train_calls

        class RecordingTrainer(module.Trainer):
            def run(self, order, start, stop):
                calls.append(stop - start)
                return super().run(order, start, stop)

        self.Trainer = RecordingTrainer

    def __getattr__(self, name):
        return getattr(self._module, name)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_kernel_chunks_hold_whole_batches_and_do_not_change_results(backend, make_data,
                                                                    batch_size):
    # fit hands the kernel the epoch in several calls (to stay interruptible);
    # each call must hold whole batches, so that the result equals processing
    # the batches one after another.
    X, Y = make_data(1001, 2, 1, seed=6)
    net = MLP([2, 3, 1], seed=4, backend=backend)
    spy = net._kernels = _RecordingKernels(net._kernels)
    history = net.fit(X, Y, epochs=2, learning_rate=0.05, batch_size=batch_size,
                      shuffle=False)
    assert sum(spy.train_calls) == 2 * len(X)
    assert len(spy.train_calls) > 2, "expected more than one kernel call per epoch"
    for rows, end in zip(spy.train_calls, np.cumsum(spy.train_calls)):
        if end % len(X) != 0:        # only the last call of an epoch may be partial
            assert rows % batch_size == 0

    # The same batches, fed as two fit calls per epoch split at a batch boundary.
    reference = MLP([2, 3, 1], seed=4, backend=backend)
    split = (len(X) // 2) // batch_size * batch_size
    losses = []
    for _ in range(2):
        first = reference.fit(X[:split], Y[:split], epochs=1, learning_rate=0.05,
                              batch_size=batch_size, shuffle=False)
        second = reference.fit(X[split:], Y[split:], epochs=1, learning_rate=0.05,
                               batch_size=batch_size, shuffle=False)
        losses.append((first.loss[0] * split + second.loss[0] * (len(X) - split)) / len(X))
    np.testing.assert_allclose(net.params, reference.params, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-10)


def test_shuffle_is_reproducible_and_drawn_from_the_seed(backend, data):
    X, Y = data
    a = MLP([4, 3, 2], init="normal", seed=21, backend=backend)
    b = MLP([4, 3, 2], init="normal", seed=21, backend=backend)
    ordered = MLP([4, 3, 2], init="normal", seed=21, backend=backend)
    a.fit(X, Y, epochs=1, shuffle=True)
    b.fit(X, Y, epochs=1, shuffle=True)
    ordered.fit(X, Y, epochs=1, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.allclose(a.params, ordered.params)
    # The order is the seed's generator's next permutation after the initial
    # weights were drawn from it.
    rng = np.random.default_rng(21)
    rng.standard_normal((4, 3))
    rng.standard_normal((3, 2))
    order = rng.permutation(len(X))
    replay = MLP([4, 3, 2], init="normal", seed=21, backend=backend)
    replay.fit(X[order], Y[order], epochs=1, shuffle=False)
    np.testing.assert_allclose(a.params, replay.params, rtol=1e-12, atol=1e-15)


def test_inputs_are_never_modified(backend, dtype, make_data):
    X, Y = make_data(9, 3, 2)
    # Arrays already in the network's dtype and C order reach the kernels without a copy.
    X, Y = X.astype(dtype), Y.astype(dtype)
    X_before, Y_before = X.copy(), Y.copy()
    net = MLP([3, 4, 2], dtype=dtype, seed=0, backend=backend)
    net.fit(X, Y, epochs=2, batch_size=4)
    net.predict(X)
    net.classify(X)
    net.loss(X, Y)
    net.accuracy(X, Y)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(Y, Y_before)


def test_read_only_inputs_work(backend, dtype, make_data):
    X, Y = make_data(9, 3, 2)
    X, Y = X.astype(dtype), Y.astype(dtype)
    net = MLP([3, 4, 2], dtype=dtype, seed=0, backend=backend)
    twin = MLP([3, 4, 2], dtype=dtype, seed=0, backend=backend)
    twin.fit(X, Y, epochs=2)
    X.setflags(write=False)
    Y.setflags(write=False)
    net.fit(X, Y, epochs=2)
    np.testing.assert_array_equal(net.params, twin.params)
    np.testing.assert_array_equal(net.predict(X), twin.predict(X))
    assert net.loss(X, Y) == twin.loss(X, Y)


def test_verbose_prints_one_line_per_epoch(backend, data, capsys):
    X, Y = data
    net = MLP([4, 3, 2], seed=0, backend=backend)
    history = net.fit(X, Y, epochs=3, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"Epoch: {epoch}, Loss: ")
        assert f"Accuracy: {100 * history.accuracy[epoch - 1]:.2f}%" in line
    net.fit(X, Y, epochs=2)
    assert capsys.readouterr().out == ""


def test_divergence_raises_and_keeps_finite_weights(backend, dtype):
    # The trainer does not take a step that would make the loss or the
    # weights non-finite, so the weights left behind are the last finite ones
    # (and the same on every backend).
    net = MLP([2, 3, 1], output_activation="identity", seed=0, dtype=dtype, backend=backend)
    X, Y = np.full((4, 2), 1e3), np.zeros((4, 1))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged, match="learning_rate"):
            net.fit(X, Y, epochs=50, learning_rate=1e3)
    assert issubclass(TrainingDiverged, FloatingPointError)
    assert np.isfinite(net.params).all(), net.params


# ---------------------------------------------------------------- inference


def test_predict_matches_reference_forward(backend, dtype, reference_forward, make_data):
    X, _ = make_data(20, 4, 3)
    for activation, output in [("sigmoid", "sigmoid"), ("tanh", "softmax"),
                               ("relu", "identity"), ("leaky_relu", "tanh")]:
        net = MLP([4, 6, 5, 3], activation=activation, output_activation=output,
                  loss="cross_entropy" if output == "softmax" else "mse",
                  dtype=dtype, seed=1, backend=backend)
        for b in net.biases:
            b[...] = np.linspace(-0.5, 0.5, b.shape[0])
        rtol = 1e-5 if dtype is np.float32 else 1e-12
        np.testing.assert_allclose(net.predict(X), reference_forward(net, X),
                                   rtol=rtol, atol=rtol * 1e-2)


def test_predict_in_blocks(backend, reference_forward, make_data):
    # 100-500-10 needs 1620 workspace elements per row, so predict works in
    # blocks of a few hundred rows; 700 rows end with a partial block.
    X, _ = make_data(700, 100, 10, seed=2)
    net = MLP([100, 500, 10], activation="tanh", seed=0, backend=backend)
    outputs = net.predict(X)
    np.testing.assert_allclose(outputs, reference_forward(net, X), rtol=1e-10)
    np.testing.assert_allclose(outputs[650:], net.predict(X[650:]), rtol=1e-12)


def test_classify_is_argmax(backend, make_data):
    X, _ = make_data(30, 3, 4)
    net = MLP([3, 5, 4], output_activation="softmax", loss="cross_entropy", seed=0,
              backend=backend)
    classes = net.classify(X)
    np.testing.assert_array_equal(classes, net.predict(X).argmax(axis=1))
    assert len(set(classes.tolist())) > 1


def test_classify_and_accuracy_by_hand(backend):
    # An identity network whose output is its input makes the outputs obvious.
    net = MLP([3, 3], output_activation="identity", bias=False, backend=backend)
    net.weights[0][...] = np.eye(3)
    X = [[0.1, 0.7, 0.2], [0.9, 0.0, 0.3], [0.2, 0.3, 0.4], [0.5, 0.1, 0.0]]
    Y = [[0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]]
    assert net.classify(X).tolist() == [1, 0, 2, 0]
    assert net.accuracy(X, Y) == 3 / 4


def test_single_output_thresholds_at_one_half(backend):
    net = MLP([1, 1], output_activation="identity", bias=False, backend=backend)
    net.weights[0][...] = 1.0
    X = [[0.2], [0.7], [0.5], [0.9], [0.51]]
    Y = [[0], [1], [1], [0], [1]]
    # Outputs > 0.5 are class 1; 0.5 itself is class 0.
    assert net.classify(X).tolist() == [0, 1, 0, 1, 1]
    assert net.accuracy(X, Y) == 3 / 5


def test_loss_is_mean_over_rows(backend, make_data):
    X, Y = make_data(6, 3, 2)
    net = MLP([3, 4, 2], seed=0, backend=backend)
    per_row = [net.loss(X[i:i + 1], Y[i:i + 1]) for i in range(6)]
    assert net.loss(X, Y) == pytest.approx(sum(per_row) / 6, rel=1e-12)
    outputs = net.predict(X)
    # MSE: mean over rows and outputs of the squared error.
    assert net.loss(X, Y) == pytest.approx(((outputs - Y) ** 2).mean(), rel=1e-12)


# ---------------------------------------------------------------- persistence


def test_pickle_round_trip(backend, dtype, data):
    X, Y = data
    net = MLP([4, 3, 2], dtype=dtype, seed=0, backend=backend)
    net.fit(X, Y, epochs=2)
    clone = pickle.loads(pickle.dumps(net))
    assert clone.backend == net.backend
    assert clone.params.dtype == dtype
    assert clone.layer_sizes == net.layer_sizes and clone.activations == net.activations
    np.testing.assert_array_equal(clone.params, net.params)
    np.testing.assert_array_equal(clone.predict(X), net.predict(X))
    assert not np.shares_memory(clone.params, net.params)
    for array in clone.weights + clone.biases:
        assert np.shares_memory(array, clone.params)
    # The generator's state travels too: both continue identically.
    net.fit(X, Y, epochs=2)
    clone.fit(X, Y, epochs=2)
    np.testing.assert_array_equal(clone.params, net.params)
    # Writing through the clone's views changes the clone only.
    clone.weights[0][0, 0] += 1.0
    assert clone.params[0] == net.params[0] + 1.0
    assert not np.array_equal(clone.predict(X), net.predict(X))


def test_deepcopy_is_independent(backend, data):
    X, Y = data
    net = MLP([4, 3, 2], seed=0, backend=backend)
    clone = copy.deepcopy(net)
    assert np.shares_memory(clone.weights[0], clone.params)
    clone.fit(X, Y, epochs=2)
    assert not np.array_equal(clone.params, net.params)
    np.testing.assert_array_equal(net.params, MLP([4, 3, 2], seed=0, backend=backend).params)


def test_repr(backend):
    text = repr(MLP([30, 5, 3], bias=False, dtype=np.float32, backend=backend))
    assert "30-5-3" in text and "float32" in text and repr(backend) in text
