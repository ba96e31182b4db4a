"""The compiled backend against the NumPy reference: same seed, same numbers.

DESIGN.md: for a fixed seed both backends produce matching weights
(float64: rtol 1e-10; float32: rtol 1e-4).
"""

import numpy as np
import pytest

import cymlp
from cymlp import MLP, TrainingDiverged
from cymlp.optim import SGD

if len(cymlp.available_backends()) < 2:
    pytest.skip("parity needs both the compiled and the NumPy backend",
                allow_module_level=True)

RTOL = {np.float64: 1e-10, np.float32: 1e-4}
# Absolute slack relative to the scale of the compared values (entries that
# are near zero cannot meet a relative tolerance).
ATOL = {np.float64: 1e-12, np.float32: 1e-6}


def assert_match(compiled, reference, dtype, what):
    compiled, reference = np.asarray(compiled), np.asarray(reference)
    assert compiled.shape == reference.shape, what
    scale = max(1.0, float(np.abs(reference).max()))
    np.testing.assert_allclose(compiled, reference, rtol=RTOL[dtype],
                               atol=ATOL[dtype] * scale, err_msg=what)


def train_both(layer_sizes, X, Y, fit_kwargs, **net_kwargs):
    """The same network trained on both backends: {name: (net, history)}."""
    trained = {}
    for name in ("cython", "numpy"):
        net = MLP(layer_sizes, backend=name, **net_kwargs)
        history = net.fit(X, Y, **fit_kwargs)
        trained[name] = (net, history)
    return trained


def assert_trained_match(trained, X, Y, dtype):
    (net_c, hist_c), (net_n, hist_n) = trained["cython"], trained["numpy"]
    assert net_c.params.dtype == net_n.params.dtype == dtype
    # The nets did train: parameters moved away from the shared initial state.
    initial = MLP(net_n.layer_sizes, activation=list(net_n.activations[:-1]),
                  output_activation=net_n.activations[-1], loss=net_n.loss_name,
                  bias=net_n.bias, init=net_n.init, dtype=dtype, seed=net_n.seed,
                  backend="numpy")
    assert not np.allclose(initial.params, net_n.params)
    assert_match(net_c.params, net_n.params, dtype, "params")
    assert_match(net_c.predict(X), net_n.predict(X), dtype, "predict")
    assert_match(net_c.loss(X, Y), net_n.loss(X, Y), dtype, "loss")
    assert net_c.accuracy(X, Y) == net_n.accuracy(X, Y)
    np.testing.assert_array_equal(net_c.classify(X), net_n.classify(X))
    assert len(hist_c.loss) == len(hist_n.loss)
    assert_match(hist_c.loss, hist_n.loss, dtype, "history.loss")
    assert hist_c.accuracy == hist_n.accuracy


# ---------------------------------------------------------------- the tutorial

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("init, bias", [("normal", False), ("uniform", False),
                                        ("glorot_uniform", True)])
def test_letters_tutorial_network(dtype, init, bias):
    X, Y = cymlp.datasets.letters()
    trained = train_both([30, 5, 3], X, Y,
                         dict(epochs=100, learning_rate=0.1, batch_size=1, shuffle=False),
                         activation="sigmoid", output_activation="sigmoid", loss="mse",
                         bias=bias, init=init, dtype=dtype, seed=2025)
    assert_trained_match(trained, X, Y, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_letters_tutorial_network_shuffled(dtype):
    X, Y = cymlp.datasets.letters()
    trained = train_both([30, 5, 3], X, Y, dict(epochs=100, learning_rate=1.0),
                         init="normal", bias=False, dtype=dtype, seed=7)
    assert_trained_match(trained, X, Y, dtype)
    # Learning rate 1 for 100 epochs learns the three letters on both backends.
    assert trained["cython"][1].accuracy[-1] == trained["numpy"][1].accuracy[-1] == 1.0


# ---------------------------------------------------------------- random networks

# (output activation, loss, kind of targets)
HEADS = [("sigmoid", "mse", "regression"), ("sigmoid", "bce", "binary"),
         ("softmax", "cross_entropy", "onehot"), ("identity", "mse", "regression"),
         ("softmax", "mse", "onehot"), ("tanh", "mse", "regression")]
POISSON_HEAD = ("exp", "poisson", "count")
HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
N_SAMPLES = 23


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", [1, 7, N_SAMPLES])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n_hidden", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_architectures(seed, n_hidden, bias, batch_size, dtype):
    train_random_architecture(seed, n_hidden, bias, batch_size, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", [1, 7, N_SAMPLES])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n_hidden", [1, 2, 3])
def test_random_architectures_poisson(n_hidden, bias, batch_size, dtype):
    train_random_architecture(2, n_hidden, bias, batch_size, dtype, POISSON_HEAD)


def train_random_architecture(seed, n_hidden, bias, batch_size, dtype, head=None):
    """A random network (and, unless given, a random head of HEADS) on both backends."""
    rng = np.random.default_rng([seed, n_hidden])
    layer_sizes = [int(w) for w in rng.integers(1, 9, size=n_hidden + 2)]
    layer_sizes[-1] = max(layer_sizes[-1], 2)
    hidden = [HIDDEN[i] for i in rng.integers(0, len(HIDDEN), size=n_hidden)]
    drawn = HEADS[int(rng.integers(0, len(HEADS)))]
    output, loss, kind = drawn if head is None else head
    rng_data = np.random.default_rng([seed, n_hidden, 1])
    X = rng_data.normal(size=(N_SAMPLES, layer_sizes[0]))
    if kind == "regression":
        Y = rng_data.random((N_SAMPLES, layer_sizes[-1]))
    elif kind == "binary":
        Y = rng_data.integers(0, 2, (N_SAMPLES, layer_sizes[-1])).astype(float)
    elif kind == "count":
        Y = rng_data.poisson(1.5, (N_SAMPLES, layer_sizes[-1])).astype(float)
    else:
        Y = np.eye(layer_sizes[-1])[rng_data.integers(0, layer_sizes[-1], N_SAMPLES)]
    trained = train_both(layer_sizes, X, Y,
                         dict(epochs=6, learning_rate=0.1, batch_size=batch_size,
                              shuffle=True),
                         activation=hidden, output_activation=output, loss=loss,
                         bias=bias, dtype=dtype, seed=100 + seed)
    assert_trained_match(trained, X, Y, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", [1, 16, 60])
def test_wide_layers_use_the_blas_path(dtype, batch_size, make_data):
    # Products of rows x n_in x n_out >= 4096 go through BLAS in the compiled
    # kernels, smaller ones through plain loops: both must agree with NumPy.
    X, Y = make_data(60, 40, 30, seed=3)
    trained = train_both([40, 64, 30], X, Y,
                         dict(epochs=3, learning_rate=0.05, batch_size=batch_size),
                         activation="tanh", dtype=dtype, seed=11)
    assert_trained_match(trained, X, Y, dtype)


# ---------------------------------------------------------------- kernels directly

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("output, loss, kind", HEADS + [POISSON_HEAD])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_loss_and_grad_match(hidden, output, loss, kind, dtype, make_data):
    X, Y = make_data(9, 3, 4, seed=5, kind=kind)
    X, Y = X.astype(dtype), Y.astype(dtype)
    results = {}
    for name in ("cython", "numpy"):
        net = MLP([3, 5, 6, 4], activation=hidden, output_activation=output, loss=loss,
                  dtype=dtype, seed=4, backend=name)
        for bias in net.biases:
            bias[...] = np.linspace(-0.3, 0.3, bias.shape[0])
        results[name] = net.loss_and_grad(X, Y)
    assert np.isfinite(results["numpy"][1]).all()
    assert_match(results["cython"][0], results["numpy"][0], dtype, "loss")
    assert_match(results["cython"][1], results["numpy"][1], dtype, "grad")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predict_in_blocks_matches(dtype, make_data):
    # 100-500-10 needs 1620 workspace elements per row: predict runs in blocks
    # of a few hundred rows, the last one partial.
    X, Y = make_data(1000, 100, 10, seed=8, kind="onehot")
    outputs, scores = {}, {}
    for name in ("cython", "numpy"):
        net = MLP([100, 500, 10], activation="relu", output_activation="softmax",
                  loss="cross_entropy", dtype=dtype, seed=9, backend=name)
        outputs[name] = net.predict(X)
        scores[name] = (net.loss(X, Y), net.accuracy(X, Y))
    assert_match(outputs["cython"], outputs["numpy"], dtype, "predict")
    assert_match(scores["cython"][0], scores["numpy"][0], dtype, "loss")
    assert scores["cython"][1] == scores["numpy"][1]


# ---------------------------------------------------------------- divergence

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 1), ("sgd", 3), ("momentum", 2),
                                                   ("adam", 1)])
def test_training_stops_at_the_same_step_when_diverging(dtype, optimizer, batch_size):
    # Both trainers promise: a step that would make the loss, the weights or
    # the optimizer state non-finite is not kept. They must stop at the same
    # step of the same epoch and leave the same (finite) weights and step count.
    X = np.linspace(1, 2, 8, dtype=dtype).reshape(4, 2) * 1e3
    Y = np.zeros((4, 1), dtype=dtype)
    kwargs = {"sgd": dict(learning_rate=1e3), "momentum": dict(learning_rate=1e3, momentum=0.9),
              "adam": dict(optimizer="adam", learning_rate=1e15 if dtype == np.float32
                           else 1e200)}[optimizer]
    messages, states = {}, {}
    for name in ("cython", "numpy"):
        net = MLP([2, 3, 1], output_activation="identity", seed=0, dtype=dtype, backend=name)
        with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as caught:
            net.fit(X, Y, epochs=50, batch_size=batch_size, shuffle=False, **kwargs)
        messages[name], states[name] = str(caught.value), net.state_dict()
    assert messages["cython"] == messages["numpy"], messages
    assert states["numpy"]["step"] == states["cython"]["step"] < 50 * 4
    assert np.isfinite(states["numpy"]["params"]).all()
    assert np.isfinite(states["cython"]["params"]).all()
    assert_match(states["cython"]["optimizer_state"], states["numpy"]["optimizer_state"], dtype,
                 "optimizer state")
    assert_match(states["cython"]["params"], states["numpy"]["params"], dtype, "params")


def _trainers(layout, X, Y, lr):
    from cymlp import _kernels, _numpy_kernels
    trainers = {}
    for name, module in (("cython", _kernels), ("numpy", _numpy_kernels)):
        params = np.array([0.5])
        trainers[name] = (params, module.Trainer(params, layout, 0, X, Y, 1, SGD(lr),
                                                 np.zeros((2, 1)), 0))
    return trainers


def test_trainers_undo_the_same_steps_run_after_run():
    # Runs that keep fewer rows than they were given, then a run whose first
    # row overflows: both trainers must undo the same (kept) step.
    from cymlp._codes import Activation
    from cymlp._params import build_layout
    layout, _ = build_layout([1, 1], [Activation.IDENTITY], False)
    X = np.array([[1.0], [0.5], [2.0], [1e3]])
    Y = np.zeros((4, 1))
    trainers = _trainers(layout, X, Y, 40.0)
    outcomes = {name: [] for name in trainers}
    with np.errstate(all="ignore"):
        for order in ([0, 1, 2] * 30, [3, 0], [0, 1]):
            for name, (params, trainer) in trainers.items():
                order_array = np.array(order, dtype=np.intp)
                result = trainer.run(order_array, 0, len(order_array))
                outcomes[name].append((result[2], trainer.step, params.copy()))
    for (done_c, step_c, params_c), (done_n, step_n, params_n) in zip(outcomes["cython"],
                                                                       outcomes["numpy"]):
        assert (done_c, step_c) == (done_n, step_n)
        np.testing.assert_allclose(params_c, params_n, rtol=1e-10)
    # The set-up: the first run stops short (81 of 90 rows kept, the step
    # before the overflow undone); the second's first row overflows, so the
    # first run's last kept step is undone too.
    assert [(done, step) for done, step, _ in outcomes["numpy"]] == [(81, 81), (-1, 80), (2, 82)]


def test_the_compiled_trainer_refuses_a_batch_larger_than_its_workspace():
    from cymlp import _kernels
    net = MLP([4, 8, 3], seed=0, backend="cython")
    X, Y = np.zeros((1, 4)), np.zeros((1, 3))
    trainer = _kernels.Trainer(net.params, net._layout, net._loss_code, X, Y, 1000,
                               SGD(0.1), np.zeros((2, net.n_params)), 0)
    with pytest.raises(ValueError, match="more rows than X"):
        trainer.run(np.zeros(1000, dtype=np.intp), 0, 1000)
    with pytest.raises(ValueError, match="unknown loss or optimizer code"):
        _kernels.Trainer(net.params, net._layout, 17, X, Y, 1, SGD(0.1),
                         np.zeros((2, net.n_params)), 0)
