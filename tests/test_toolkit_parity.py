"""Backend parity over the whole training toolkit grid.

For every hidden activation (in both positions of a two-hidden-layer network,
through the list form of ``activation``), every output activation / loss pair
the library accepts, every optimizer configuration, batch sizes 1, 5 and "all
rows", with and without biases, in float32 and float64: the compiled kernels
and the NumPy reference, started from the same seed, end with matching
weights, optimizer state, step counter and history (DESIGN.md: float64 rtol
1e-10, float32 rtol 1e-4).

The inner part of the grid (optimizer x batch size x bias x dtype) runs in a
loop inside each test so the item count stays small; a failure message names
the combination.
"""

import itertools

import numpy as np
import pytest

import cymlp
from cymlp import MLP

if len(cymlp.available_backends()) < 2:
    pytest.skip("parity needs both the compiled and the NumPy backend",
                allow_module_level=True)

RTOL = {np.float64: 1e-10, np.float32: 1e-4}
# Absolute slack relative to the magnitude of the compared values: entries
# that are (nearly) zero cannot meet a relative tolerance.
ATOL = {np.float64: 1e-12, np.float32: 1e-6}

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
# Every (output activation, loss) pair the library accepts, with the kind of
# target each is trained on.
HEADS = ([(output, "mse", "regression")
          for output in ("sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax")]
         + [("sigmoid", "bce", "binary"), ("softmax", "cross_entropy", "probability")])
OPTIMIZERS = {
    "sgd": dict(optimizer="sgd", learning_rate=0.05),
    "sgd-momentum": dict(optimizer="sgd", learning_rate=0.02, momentum=0.9),
    "sgd-nesterov": dict(optimizer="sgd", learning_rate=0.02, momentum=0.9, nesterov=True),
    "sgd-weight-decay": dict(optimizer="sgd", learning_rate=0.05, weight_decay=0.1),
    "adam": dict(optimizer="adam", learning_rate=0.01),
    "adam-weight-decay": dict(optimizer="adam", learning_rate=0.01, betas=(0.8, 0.99),
                              eps=1e-6, weight_decay=0.1),
}
N_SAMPLES = 10
BATCH_SIZES = [1, 5, N_SAMPLES]
DTYPES = [np.float64, np.float32]
EPOCHS = 3


def make_targets(rng, kind, n_samples, n_outputs):
    if kind == "regression":
        return rng.random((n_samples, n_outputs))
    if kind == "binary":
        return rng.integers(0, 2, (n_samples, n_outputs)).astype(float)
    return rng.dirichlet(np.ones(n_outputs), size=n_samples)


def assert_match(compiled, reference, dtype, what, atol=None):
    compiled, reference = np.asarray(compiled, dtype=float), np.asarray(reference, dtype=float)
    assert compiled.shape == reference.shape, what
    if atol is None:
        atol = ATOL[dtype] * max(1.0, float(np.abs(reference).max()))
    np.testing.assert_allclose(compiled, reference, rtol=RTOL[dtype], atol=atol, err_msg=what)


def run_grid(layer_sizes, activation, output, loss, kind, seed):
    """Train every inner combination on both backends and compare."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_SAMPLES, layer_sizes[0]))
    Y = make_targets(rng, kind, N_SAMPLES, layer_sizes[-1])
    combos = itertools.product(OPTIMIZERS.items(), BATCH_SIZES, [True, False], DTYPES)
    n_checked = 0
    for (opt_name, fit_kwargs), batch_size, bias, dtype in combos:
        what = (f"activation={activation}, output={output}, loss={loss}, {opt_name}, "
                f"batch_size={batch_size}, bias={bias}, dtype={np.dtype(dtype).name}")
        nets, histories = {}, {}
        for backend in ("cython", "numpy"):
            net = MLP(layer_sizes, activation=activation, output_activation=output, loss=loss,
                      bias=bias, dtype=dtype, seed=seed, backend=backend)
            initial = net.params.copy()
            histories[backend] = net.fit(X, Y, epochs=EPOCHS, batch_size=batch_size,
                                         shuffle=True, **fit_kwargs)
            nets[backend] = net
        compiled, reference = nets["cython"], nets["numpy"]
        assert compiled.params.dtype == reference.params.dtype == dtype, what
        # Training moved the parameters, so matching them means something.
        assert not np.allclose(reference.params, initial, rtol=0, atol=1e-6), what
        assert_match(compiled.params, reference.params, dtype, f"params: {what}")
        assert_match(compiled.state_dict()["optimizer_state"], reference.state_dict()["optimizer_state"], dtype, f"optimizer state: {what}")
        steps = EPOCHS * -(-N_SAMPLES // batch_size)
        assert compiled.state_dict()["step"] == reference.state_dict()["step"] == steps, what
        hist_c, hist_n = histories["cython"], histories["numpy"]
        assert len(hist_c.loss) == len(hist_n.loss) == EPOCHS, what
        assert_match(hist_c.loss, hist_n.loss, dtype, f"history.loss: {what}")
        assert hist_c.learning_rate == hist_n.learning_rate, what
        if dtype == np.float64:
            assert hist_c.accuracy == hist_n.accuracy, what
        else:
            # float32 rounding may flip a near-tie in one row's argmax.
            np.testing.assert_allclose(hist_c.accuracy, hist_n.accuracy, rtol=0,
                                       atol=1.0 / N_SAMPLES + 1e-12, err_msg=what)
        if batch_size == 1:
            # Outputs near zero are differences of terms as large as |W| |x|,
            # and the weights agree to RTOL: the slack follows that scale.
            term_scale = max(1.0, float(np.abs(reference.params).max() * np.abs(X).max()))
            assert_match(compiled.predict(X), reference.predict(X), dtype,
                         f"predict: {what}", atol=RTOL[dtype] * term_scale)
        n_checked += 1
    return n_checked


@pytest.mark.parametrize("output, loss, kind", HEADS,
                         ids=[f"{output}-{loss}" for output, loss, _ in HEADS])
@pytest.mark.parametrize("first", range(len(HIDDEN)), ids=HIDDEN)
def test_two_hidden_layers_every_combination(first, output, loss, kind):
    # Hidden activation `first` followed by a different one; over the five
    # items every activation is seen in both hidden positions.
    second = (first + 2) % len(HIDDEN)
    activation = [HIDDEN[first], HIDDEN[second]]
    seed = 1000 + 10 * first + HEADS.index((output, loss, kind))
    n_checked = run_grid([4, 3, 3, 2], activation, output, loss, kind, seed)
    assert n_checked == len(OPTIMIZERS) * len(BATCH_SIZES) * 2 * len(DTYPES)


@pytest.mark.parametrize("output, loss, kind", HEADS,
                         ids=[f"{output}-{loss}" for output, loss, _ in HEADS])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_one_hidden_layer_every_combination(hidden, output, loss, kind):
    seed = 2000 + 10 * HIDDEN.index(hidden) + HEADS.index((output, loss, kind))
    n_outputs = 3 if output == "softmax" else 2
    run_grid([4, 3, n_outputs], hidden, output, loss, kind, seed)


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_single_sigmoid_output_bce(opt_name):
    # Binary classification: one sigmoid output, 0/1 targets, accuracy
    # thresholded at 0.5.
    rng = np.random.default_rng(77)
    X = rng.normal(size=(N_SAMPLES, 4))
    Y = (X[:, :1] + X[:, 1:2] > 0).astype(float)
    for batch_size, dtype in itertools.product(BATCH_SIZES, DTYPES):
        nets = {}
        for backend in ("cython", "numpy"):
            net = MLP([4, 3, 1], activation="tanh", output_activation="sigmoid", loss="bce",
                      dtype=dtype, seed=5, backend=backend)
            net.fit(X, Y, epochs=EPOCHS, batch_size=batch_size, **OPTIMIZERS[opt_name])
            nets[backend] = net
        what = f"{opt_name}, batch_size={batch_size}, dtype={np.dtype(dtype).name}"
        assert_match(nets["cython"].params, nets["numpy"].params, dtype, what)
        assert nets["cython"].accuracy(X, Y) == nets["numpy"].accuracy(X, Y), what


@pytest.mark.parametrize("schedule", [cymlp.schedules.StepLR(2, gamma=0.5),
                                      cymlp.schedules.ExponentialLR(0.8)], ids=repr)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_schedules_and_continued_training(schedule, dtype):
    # A schedule, then a second fit that continues from the optimizer state,
    # then partial_fit: still the same numbers on both backends.
    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(N_SAMPLES, 4)), rng.random((N_SAMPLES, 2))
    nets = {}
    for backend in ("cython", "numpy"):
        net = MLP([4, 5, 2], activation="leaky_relu", output_activation="identity",
                  dtype=dtype, seed=3, backend=backend)
        net.fit(X, Y, epochs=4, batch_size=3, optimizer="adam", learning_rate=0.01,
                lr_schedule=schedule)
        net.fit(X, Y, epochs=2, batch_size=3, optimizer="adam", learning_rate=0.01)
        net.partial_fit(X, Y, batch_size=4, optimizer="adam", learning_rate=0.005)
        nets[backend] = net
    assert_match(nets["cython"].params, nets["numpy"].params, dtype, "params")
    assert_match(nets["cython"].state_dict()["optimizer_state"], nets["numpy"].state_dict()["optimizer_state"], dtype, "state")
    assert nets["cython"].state_dict()["step"] == nets["numpy"].state_dict()["step"] == 6 * 4 + 3


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_validation_and_early_stopping(dtype):
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(30, 4)), rng.random((30, 2))
    results = {}
    for backend in ("cython", "numpy"):
        net = MLP([4, 8, 2], activation="tanh", output_activation="sigmoid", dtype=dtype,
                  seed=4, backend=backend)
        history = net.fit(X, Y, epochs=40, batch_size=4, learning_rate=0.5, momentum=0.9,
                          validation_split=0.3, early_stopping=True, patience=3)
        results[backend] = (net, history)
    (net_c, hist_c), (net_n, hist_n) = results["cython"], results["numpy"]
    assert_match(net_c.params, net_n.params, dtype, "params")
    assert_match(hist_c.val_loss, hist_n.val_loss, dtype, "val_loss")
    assert hist_c.best_epoch == hist_n.best_epoch
    assert hist_c.stopped_early == hist_n.stopped_early
    assert len(hist_c.val_loss) == len(hist_n.val_loss)
