"""Bad input raises ValueError/TypeError naming the argument, before any kernel runs."""

import numpy as np
import pytest

from cymlp import MLP

LAYERS = [3, 4, 2]


def good_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(5, 3)), rng.random((5, 2))


class ExplodingKernels:
    """Stands in for a kernel module: any call means bad input got through."""

    def __getattr__(self, name):
        def explode(*args, **kwargs):
            raise AssertionError(f"kernel function {name} was called")
        return explode


@pytest.fixture
def net(backend):
    return MLP(LAYERS, seed=0, backend=backend)


@pytest.fixture
def guarded_net(backend):
    """A network whose kernels fail the test if they are ever called."""
    net = MLP(LAYERS, seed=0, backend=backend)
    net._kernels = ExplodingKernels()
    return net


def _object_array():
    array = np.empty((5, 3), dtype=object)
    array[...] = 1.0
    return array


def _with(value, at=(1, -1)):
    def make(array):
        array = array.copy()
        array[at] = value
        return array
    return make


# (id, make bad array from a good one, exception, message pattern)
BAD_ARRAYS = [
    ("1-D", lambda a: a[0], ValueError, r"must be a 2-D array.*got 1-D.*reshape\(1, -1\)"),
    ("3-D", lambda a: a[None], ValueError, r"must be a 2-D array.*got 3-D"),
    ("0-D", lambda a: 3.0, ValueError, r"must be a 2-D array.*got 0-D"),
    ("empty-list", lambda a: [], ValueError, r"must be a 2-D array"),
    ("no-rows", lambda a: a[:0], ValueError, r"must not be empty"),
    ("no-columns", lambda a: a[:, :0], ValueError, r"must not be empty"),
    ("too-many-columns", lambda a: np.hstack([a, a]), ValueError, r"\(columns\)"),
    ("too-few-columns", lambda a: a[:, :1], ValueError, r"\(columns\)"),
    ("nan", _with(np.nan), ValueError, r"finite"),
    ("inf", _with(np.inf), ValueError, r"finite"),
    ("minus-inf", _with(-np.inf), ValueError, r"finite"),
    ("nan-in-list", lambda a: _with(np.nan)(a).tolist(), ValueError, r"finite"),
    ("overflows-float32", _with(1e300), None, r"too large for float32"),   # only for float32 networks
    ("complex", lambda a: a.astype(complex), TypeError, r"real numbers"),
    ("object", lambda a: _object_array()[:, :a.shape[1]], TypeError, r"real numbers"),
    ("strings", lambda a: a.astype(str), TypeError, r"real numbers"),
    ("bytes", lambda a: a.astype(bytes), TypeError, r"real numbers"),
    ("str", lambda a: "1,2,3", TypeError, r"numeric array"),
    ("bool", lambda a: a > 0, TypeError, r"boolean"),
    ("datetime", lambda a: np.zeros(a.shape, dtype="M8[s]"), TypeError, r"real numbers"),
    ("none", lambda a: None, TypeError, r"real numbers"),
    ("ragged", lambda a: [[1.0, 2.0, 3.0], [1.0, 2.0]], ValueError, r"could not be converted"),
]
BAD_ARRAY_IDS = [case[0] for case in BAD_ARRAYS]


def _expected(case):
    """(make, exception, pattern); None marks a case that is a ValueError."""
    _, make, error, pattern = case
    return make, error or ValueError, pattern


def _call(net, method, X, Y):
    if method in ("predict", "classify"):
        return getattr(net, method)(X)
    if method == "fit":
        return net.fit(X, Y, epochs=1)
    return getattr(net, method)(X, Y)


@pytest.mark.parametrize("method", ["predict", "classify", "fit", "loss", "accuracy"])
@pytest.mark.parametrize("case", BAD_ARRAYS, ids=BAD_ARRAY_IDS)
def test_bad_X(backend, case, method):
    name = case[0]
    dtype = np.float32 if name == "overflows-float32" else np.float64
    net = MLP(LAYERS, dtype=dtype, seed=0, backend=backend)
    net._kernels = ExplodingKernels()
    make, error, pattern = _expected(case)
    X, Y = good_data()
    with pytest.raises(error, match=r"^X\b.*" + pattern) as info, np.errstate(over="ignore"):
        _call(net, method, make(X), Y)
    assert "Y" not in str(info.value).split(";")[0]


@pytest.mark.parametrize("method", ["fit", "loss", "accuracy"])
@pytest.mark.parametrize("case", BAD_ARRAYS, ids=BAD_ARRAY_IDS)
def test_bad_Y(backend, case, method):
    name = case[0]
    dtype = np.float32 if name == "overflows-float32" else np.float64
    net = MLP(LAYERS, dtype=dtype, seed=0, backend=backend)
    net._kernels = ExplodingKernels()
    make, error, pattern = _expected(case)
    X, Y = good_data()
    if name in ("too-many-columns", "too-few-columns"):
        pattern = r"outputs \(columns\)"
    if name == "1-D":   # targets: a hint on labels, not on single samples
        pattern = r"must be a 2-D array.*got a 1-D array.*output_activation='softmax'"
    if name == "ragged":
        bad_Y = [[0.0, 1.0], [1.0]]
    else:
        bad_Y = make(Y)
    with pytest.raises(error, match=r"^Y\b.*" + pattern), np.errstate(over="ignore"):
        _call(net, method, X, bad_Y)


@pytest.mark.parametrize("method", ["fit", "loss", "accuracy"])
@pytest.mark.parametrize("n_rows", [4, 6, 1])
def test_mismatched_rows(guarded_net, method, n_rows):
    X, Y = good_data()
    Y = np.resize(Y, (n_rows, 2))
    with pytest.raises(ValueError, match=rf"X and Y must have the same number of rows; "
                                         rf"got 5 and {n_rows}"):
        _call(guarded_net, method, X, Y)


def test_error_messages_show_expected_and_received_shapes(guarded_net):
    X, Y = good_data()
    with pytest.raises(ValueError, match=r"X must have 3 features.*got shape \(5, 4\)"):
        guarded_net.predict(np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"Y must have 2 outputs.*got shape \(5, 3\)"):
        guarded_net.fit(X, np.ones((5, 3)))
    with pytest.raises(TypeError, match=r"X must .*got dtype complex128"):
        guarded_net.predict(X.astype(complex))


# ---------------------------------------------------------------- the constructor

BAD_CONSTRUCTOR = [
    # layer_sizes
    (dict(layer_sizes=[3]), ValueError, r"layer_sizes needs at least"),
    (dict(layer_sizes=[]), ValueError, r"layer_sizes needs at least"),
    (dict(layer_sizes=[3, 0]), ValueError, r"layer_sizes\[1\] must be an integer >= 1"),
    (dict(layer_sizes=[0, 2]), ValueError, r"layer_sizes\[0\] must be an integer >= 1"),
    (dict(layer_sizes=[3, -2, 1]), ValueError, r"layer_sizes\[1\] must be an integer >= 1"),
    (dict(layer_sizes=[3.0, 2]), TypeError, r"layer_sizes\[0\] must be an integer"),
    (dict(layer_sizes=[3, 2.5]), TypeError, r"layer_sizes\[1\] must be an integer"),
    (dict(layer_sizes=[3, "2"]), TypeError, r"layer_sizes\[1\] must be an integer"),
    (dict(layer_sizes=[True, 2]), TypeError, r"layer_sizes\[0\] must be an integer"),
    (dict(layer_sizes=[3, None]), TypeError, r"layer_sizes\[1\] must be an integer"),
    (dict(layer_sizes="32"), TypeError, r"layer_sizes must be a sequence"),
    (dict(layer_sizes=5), TypeError, r"layer_sizes must be a sequence"),
    (dict(layer_sizes=None), TypeError, r"layer_sizes must be a sequence"),
    # activations
    (dict(activation="softmax"), ValueError, r"^activation must be one of"),
    (dict(activation="relu6"), ValueError, r"^activation must be one of"),
    (dict(activation=None), TypeError, r"^activation must be one of .*; got None\b"),
    (dict(activation=["relu", "tanh"]), ValueError, r"^activation must be one name or a list"),
    (dict(activation=[]), ValueError, r"^activation must be one name or a list"),
    (dict(activation=["bogus"]), ValueError, r"^activation must be one of"),
    (dict(output_activation="bogus"), ValueError, r"^output_activation must be one of"),
    (dict(output_activation=None), TypeError,
     r"^output_activation must be one of .*; got None\b"),
    # loss and its pairing with the output activation
    (dict(loss="mae"), ValueError, r"^loss must be one of"),
    (dict(loss="categorical_crossentropy"), ValueError, r"^loss must be one of"),
    (dict(loss=None), TypeError, r"^loss must be one of .*; got None\b"),
    (dict(loss="cross_entropy"), ValueError, r"loss='cross_entropy' needs output_activation"),
    (dict(loss="cross_entropy", output_activation="identity"), ValueError,
     r"loss='cross_entropy' needs output_activation.*'identity'"),
    (dict(loss="bce", output_activation="softmax"), ValueError,
     r"loss='bce' needs output_activation.*'softmax'"),
    (dict(loss="bce", output_activation="tanh"), ValueError, r"loss='bce' needs output_activation"),
    # init
    (dict(init="zeros"), ValueError, r"^init must be one of"),
    (dict(init="xavier"), ValueError, r"^init must be one of"),
    (dict(init=None), TypeError, r"^init must be one of .*; got None\b"),
    (dict(init=3), TypeError, r"^init must be one of .*; got 3 of type int"),
    # dtype
    (dict(dtype=np.int32), TypeError, r"^dtype must be numpy.float32 or numpy.float64"),
    (dict(dtype=np.float16), TypeError, r"^dtype must be numpy.float32 or numpy.float64"),
    (dict(dtype=np.longdouble), TypeError, r"^dtype must be"),
    (dict(dtype=np.complex128), TypeError, r"^dtype must be"),
    (dict(dtype="int64"), TypeError, r"^dtype must be"),
    (dict(dtype=object), TypeError, r"^dtype must be"),
    (dict(dtype=bool), TypeError, r"^dtype must be"),
    (dict(dtype="not-a-dtype"), TypeError, r"^dtype must be"),
    # bias, seed, backend
    (dict(bias=1), TypeError, r"^bias must be True or False"),
    (dict(bias="yes"), TypeError, r"^bias must be True or False"),
    (dict(bias=None), TypeError, r"^bias must be True or False"),
    (dict(seed=1.5), TypeError, r"^seed must be a non-negative integer"),
    (dict(seed="1"), TypeError, r"^seed must be a non-negative integer"),
    (dict(seed=[1, 2]), TypeError, r"^seed must be a non-negative integer"),
    (dict(backend="torch"), ValueError, r"^backend must be one of"),
]


def _constructor_id(case):
    kwargs = case[0]
    return "-".join(f"{key}={value!r}" for key, value in kwargs.items())


@pytest.mark.parametrize("kwargs, error, pattern", BAD_CONSTRUCTOR,
                         ids=[_constructor_id(case) for case in BAD_CONSTRUCTOR])
def test_bad_constructor_argument(backend, kwargs, error, pattern):
    kwargs = dict(kwargs)
    layer_sizes = kwargs.pop("layer_sizes", LAYERS)
    if kwargs.get("backend") is None:
        kwargs["backend"] = backend
    with pytest.raises(error, match=pattern):
        MLP(layer_sizes, **kwargs)


def test_negative_seed_names_the_argument(backend):
    # numpy.random.default_rng(-1) raises "expected non-negative integer",
    # which does not say which argument was wrong.
    with pytest.raises(ValueError, match=r"\bseed\b"):
        MLP(LAYERS, seed=-1, backend=backend)


@pytest.mark.parametrize("value", [3, 0.5, True])
def test_non_string_activation_names_the_argument(backend, value):
    # A value that is neither a name nor a list of names currently escapes as
    # "TypeError: 'int' object is not iterable", which does not say which
    # argument was wrong.
    with pytest.raises(TypeError, match=rf"^activation must be a name or a list of names "
                                        rf"\(one per hidden layer\); got {value!r}$"):
        MLP(LAYERS, activation=value, backend=backend)


def test_names_are_case_insensitive(backend):
    net = MLP(LAYERS, activation="ReLU", output_activation="Softmax", loss="Cross_Entropy",
              init="He_Normal", backend=backend)
    assert net.activations == ("relu", "softmax")
    assert net.loss_name == "cross_entropy" and net.init == "he_normal"


@pytest.mark.parametrize("loss, output", [
    ("mse", "sigmoid"), ("mse", "tanh"), ("mse", "relu"), ("mse", "leaky_relu"),
    ("mse", "identity"), ("mse", "softmax"), ("bce", "sigmoid"), ("cross_entropy", "softmax"),
])
def test_valid_loss_output_pairs(backend, loss, output, reference_loss, reference_gradient):
    net = MLP(LAYERS, loss=loss, output_activation=output, seed=0, backend=backend)
    X, Y = good_data()
    Y = Y / Y.sum(axis=1, keepdims=True)
    assert len(net.fit(X, Y, epochs=1).loss) == 1
    # The pairing trains the loss it names: one full-batch step records the
    # float64 reference loss (conftest) of the starting weights and moves them
    # by -learning_rate times the reference gradient; the loss then falls.
    twin = MLP(LAYERS, loss=loss, output_activation=output, seed=0, backend=backend)
    start = twin.params.copy()
    before = reference_loss(twin, X, Y)
    expected_step = -0.5 * reference_gradient(twin, X, Y)
    history = twin.fit(X, Y, epochs=1, batch_size=len(X), learning_rate=0.5, shuffle=False)
    assert history.loss == [pytest.approx(before, rel=1e-10)]
    np.testing.assert_allclose(twin.params - start, expected_step, rtol=1e-6, atol=1e-10)
    assert np.abs(expected_step).max() > 1e-3
    after = reference_loss(twin, X, Y)
    assert twin.loss(X, Y) == pytest.approx(after, rel=1e-10)
    assert after < before


def test_valid_layer_sizes_forms(backend):
    for sizes in ([3, 2], (3, 4, 2), np.array([3, 4, 2]), [np.int64(3), np.int32(2)]):
        net = MLP(sizes, backend=backend)
        assert all(type(size) is int for size in net.layer_sizes)
        assert net.layer_sizes == tuple(int(size) for size in sizes)


# ---------------------------------------------------------------- fit arguments

BAD_FIT = [
    (dict(epochs=0), ValueError, r"^epochs must be an integer >= 1"),
    (dict(epochs=-3), ValueError, r"^epochs must be an integer >= 1"),
    (dict(epochs=1.0), TypeError, r"^epochs must be an integer"),
    (dict(epochs="10"), TypeError, r"^epochs must be an integer"),
    (dict(epochs=None), TypeError, r"^epochs must be an integer"),
    (dict(epochs=True), TypeError, r"^epochs must be an integer"),
    (dict(learning_rate=0), ValueError, r"^learning_rate must be a finite number > 0"),
    (dict(learning_rate=-0.1), ValueError, r"^learning_rate must be a finite number > 0"),
    (dict(learning_rate=float("nan")), ValueError, r"^learning_rate must be a finite number"),
    (dict(learning_rate=float("inf")), ValueError, r"^learning_rate must be a finite number"),
    (dict(learning_rate="0.1"), TypeError, r"^learning_rate must be a real number"),
    (dict(learning_rate=None), TypeError, r"^learning_rate must be a real number"),
    (dict(learning_rate=True), TypeError, r"^learning_rate must be a real number"),
    (dict(learning_rate=1j), TypeError, r"^learning_rate must be a real number"),
    (dict(batch_size=0), ValueError, r"^batch_size must be an integer >= 1"),
    (dict(batch_size=-5), ValueError, r"^batch_size must be an integer >= 1"),
    (dict(batch_size=2.0), TypeError, r"^batch_size must be an integer"),
    (dict(batch_size="2"), TypeError, r"^batch_size must be an integer"),
    (dict(batch_size=None), TypeError, r"^batch_size must be an integer"),
    (dict(batch_size=False), TypeError, r"^batch_size must be an integer"),
    (dict(shuffle=1), TypeError, r"^shuffle must be True or False"),
    (dict(shuffle="yes"), TypeError, r"^shuffle must be True or False"),
    (dict(shuffle=None), TypeError, r"^shuffle must be True or False"),
    (dict(verbose=0), TypeError, r"^verbose must be True or False"),
    (dict(verbose="no"), TypeError, r"^verbose must be True or False"),
    (dict(verbose=None), TypeError, r"^verbose must be True or False"),
]


@pytest.mark.parametrize("kwargs, error, pattern", BAD_FIT,
                         ids=[_constructor_id(case) for case in BAD_FIT])
def test_bad_fit_argument(guarded_net, kwargs, error, pattern):
    X, Y = good_data()
    with pytest.raises(error, match=pattern):
        guarded_net.fit(X, Y, **kwargs)


def assert_same_training(net, twin):
    """Bit-identical weights, optimizer state and history."""
    np.testing.assert_array_equal(net.params, twin.params)
    np.testing.assert_array_equal(net.state_dict()["optimizer_state"], twin.state_dict()["optimizer_state"])
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        np.testing.assert_array_equal(getattr(net.history, name), getattr(twin.history, name),
                                      err_msg=name)


def test_valid_fit_argument_types(backend, net):
    X, Y = good_data()
    history = net.fit(X, Y, epochs=np.int64(2), learning_rate=np.float32(0.5),
                      batch_size=np.int32(2), shuffle=np.bool_(True), verbose=np.bool_(False))
    assert history.epochs == 2
    # NumPy scalars mean exactly what the Python values mean: a twin trained
    # with those, from the same seed, ends bit for bit the same.
    twin = MLP(LAYERS, seed=0, backend=backend)
    twin.fit(X, Y, epochs=2, learning_rate=0.5, batch_size=2, shuffle=True, verbose=False)
    assert_same_training(net, twin)
    # ... and the settings mattered: shuffle=False or batch_size=1 differ.
    for other in (dict(shuffle=False), dict(batch_size=1)):
        different = MLP(LAYERS, seed=0, backend=backend)
        different.fit(X, Y, **{**dict(epochs=2, learning_rate=0.5, batch_size=2), **other})
        assert not np.array_equal(different.params, net.params), other


# ---------------------------------------------------------------- nothing reaches a kernel

def test_guard_catches_kernel_calls(guarded_net):
    # The guard works: valid input does reach the (exploding) kernels.
    X, Y = good_data()
    for call in (lambda: guarded_net.predict(X), lambda: guarded_net.loss(X, Y),
                 lambda: guarded_net.accuracy(X, Y), lambda: guarded_net.fit(X, Y)):
        with pytest.raises(AssertionError, match="kernel function"):
            call()


def test_failed_fit_leaves_the_network_untouched(backend):
    X, Y = good_data()
    net = MLP(LAYERS, seed=3, backend=backend)
    fresh = MLP(LAYERS, seed=3, backend=backend)
    before = net.params.copy()
    for kwargs, error, pattern in (
            (dict(batch_size=0), ValueError, r"^batch_size must be an integer >= 1; got 0$"),
            (dict(epochs=0), ValueError, r"^epochs must be an integer >= 1; got 0$"),
            (dict(learning_rate=-1.0), ValueError,
             r"^learning_rate must be a finite number > 0\b.*; got -1\.0$"),
            (dict(shuffle=None), TypeError, r"^shuffle must be True or False; got None$")):
        with pytest.raises(error, match=pattern):
            net.fit(X, Y, **kwargs)
    with pytest.raises(ValueError, match=r"^Y must contain only finite values"):
        net.fit(X, np.full_like(Y, np.nan))
    np.testing.assert_array_equal(net.params, before)
    # The shuffling generator was not advanced either.
    net.fit(X, Y, epochs=2)
    fresh.fit(X, Y, epochs=2)
    np.testing.assert_array_equal(net.params, fresh.params)
