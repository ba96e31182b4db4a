"""Training one sample at a time: the compiled kernels' own row products.

With batch size 1 the compiled backend multiplies a row by each weight matrix
with loops of its own (column blocks of 256 bytes, then of 32 bytes, then
the rest), passes delta back and updates the weights in one pass over them,
and computes the next row's first product in the same pass as the first
layer's update. These tests check every block shape against a hand-written
oracle, and that the fused passes give the same bits as separate ones.
"""

import subprocess
import sys

import numpy as np
import pytest

from cymlp import MLP

# Hidden and output widths that reach each block shape for float32 (8 lanes
# of 32 bytes, 64 columns per 256 bytes) and float64 (4 and 32): a lone
# remainder, one vector, several, one full block, a block and a remainder.
WIDTHS = [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 70]


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def oracle_per_sample_sgd(weights, biases, X, Y, learning_rate):
    """One in-order epoch of per-sample SGD on a sigmoid/MSE network, in float64."""
    weights = [w.astype(np.float64) for w in weights]
    biases = [b.astype(np.float64) for b in biases]
    for x, y in zip(X.astype(np.float64), Y.astype(np.float64)):
        activations = [x]
        for w, b in zip(weights, biases):
            activations.append(sigmoid(activations[-1] @ w + b))
        out = activations[-1]
        delta = 2 * (out - y) / y.shape[0] * out * (1 - out)
        for layer in range(len(weights) - 1, -1, -1):
            a_prev = activations[layer]
            previous = (weights[layer] @ delta) * a_prev * (1 - a_prev) if layer else None
            weights[layer] -= learning_rate * np.outer(a_prev, delta)
            biases[layer] -= learning_rate * delta
            delta = previous
    return weights, biases


def network(sizes, dtype, backend):
    return MLP(list(sizes), activation="sigmoid", output_activation="sigmoid", loss="mse",
               seed=3, dtype=dtype, backend=backend)


@pytest.mark.parametrize("width", WIDTHS)
def test_per_sample_sgd_matches_the_oracle(backend, dtype, width):
    sizes = (width + 2, width, max(1, width // 2))
    rng = np.random.default_rng(width)
    X = rng.random((12, sizes[0])).astype(dtype)
    Y = rng.random((12, sizes[-1])).astype(dtype)
    net = network(sizes, dtype, backend)
    expected_w, expected_b = oracle_per_sample_sgd(net.weights, net.biases, X, Y, 0.5)
    net.fit(X, Y, epochs=1, batch_size=1, shuffle=False, learning_rate=0.5)
    rtol, atol = (1e-10, 1e-13) if dtype == np.float64 else (2e-4, 1e-6)
    for got, expected in zip(list(net.weights) + list(net.biases), expected_w + expected_b):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("sizes", [(30, 5, 3), (70, 33, 9), (9, 65, 17, 1), (6, 4)],
                         ids=lambda sizes: "-".join(map(str, sizes)))
def test_fused_first_layer_pass_gives_the_same_bits(backend, dtype, sizes):
    """One fit over all rows (each step also computes the next row's first
    product) equals fits of one row each (which cannot look ahead), bit for bit."""
    rng = np.random.default_rng(1)
    X = rng.random((15, sizes[0])).astype(dtype)
    Y = rng.random((15, sizes[-1])).astype(dtype)
    together, apart = network(sizes, dtype, backend), network(sizes, dtype, backend)
    history = together.fit(X, Y, epochs=1, batch_size=1, shuffle=False, learning_rate=0.3)
    losses = []
    for row in range(X.shape[0]):
        losses += apart.fit(X[row:row + 1], Y[row:row + 1], epochs=1, batch_size=1,
                            learning_rate=0.3).loss
    assert np.array_equal(together.params, apart.params)
    # The reported loss is the mean of the losses measured before each step.
    assert history.loss[0] == pytest.approx(np.mean(losses), rel=1e-12)


def test_small_networks_do_not_load_blas():
    """Importing cymlp and training or using a network whose products are all
    small (or one row at a time) imports neither scipy.linalg nor threadpoolctl."""
    script = "\n".join([
        "import sys, numpy as np, cymlp",
        "net = cymlp.MLP([30, 5, 3], seed=0, backend='cython')",
        "X, Y = cymlp.datasets.letters()",
        "net.fit(X, Y, epochs=3, batch_size=1)",
        "net.predict(X[:1]); net.loss(X[:1], Y[:1])",
        "big = cymlp.MLP([784, 128, 10], seed=0, backend='cython')",
        "big.fit(np.zeros((4, 784)), np.eye(10)[:4], epochs=1, batch_size=1)",
        "print('scipy.linalg' in sys.modules, 'threadpoolctl' in sys.modules)",
        "big.fit(np.zeros((64, 784)), np.eye(10)[np.arange(64) % 10], epochs=1, batch_size=64)",
        "print('scipy.linalg' in sys.modules)",
    ])
    pytest.importorskip("cymlp._kernels")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["False", "False", "True"], result.stdout + result.stderr


def test_sigmoid_is_within_two_ulps_everywhere(backend, dtype):
    """Both backends' sigmoid against the exact value (long double where the
    platform has it), over the whole range, with exact 0 and 1 at the ends."""
    net = MLP([1, 1], output_activation="sigmoid", seed=0, dtype=dtype, backend=backend)
    state = net.state_dict()
    state["params"] = np.array([1.0, 0.0], dtype=dtype)   # a = sigmoid(1 z + 0)
    net.load_state_dict(state)
    rng = np.random.default_rng(5)
    z = np.concatenate([np.linspace(-120, 120, 48001), rng.standard_normal(20000) * 20,
                        [0.0, -0.0, 1e-30, -1e-30]]).astype(dtype)
    got = net.predict(z.reshape(-1, 1))[:, 0]
    exact = z.astype(np.longdouble)
    with np.errstate(over="ignore"):
        reference = np.where(exact >= 0, 1 / (1 + np.exp(-exact)),
                             np.exp(exact) / (1 + np.exp(exact)))
    normal = reference >= np.finfo(dtype).tiny
    ulps = (np.abs(got[normal] - reference[normal])
            / np.spacing(reference[normal].astype(dtype)))
    assert ulps.max() <= 2.5
    extremes = net.predict(np.array([[1e4], [-1e4], [40], [0]], dtype))[:, 0]
    assert list(extremes) == [1, 0, 1, 0.5]


def test_predict_overflows_to_inf_without_warnings(backend):
    """Overflow in a forward pass is reported by the values (inf), never by
    NumPy floating-point warnings, on either backend."""
    import warnings
    net = MLP([2, 3, 1], activation="relu", output_activation="identity", seed=0,
              dtype=np.float32, backend=backend)
    state = net.state_dict()
    state["params"] = np.full_like(state["params"], 3e38)
    net.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = net.predict(np.full((4, 2), 3e38, np.float32))
    assert np.isinf(out).all()


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_momentum_that_rounds_to_zero_is_none(backend, batch_size):
    """float32 rounds momentum 1e-46 to 0: plain SGD, with no momentum buffer,
    whether the step is one row's (fused) or a batch's."""
    X, Y = np.random.default_rng(0).random((6, 4)), np.eye(2)[[0, 1, 0, 1, 1, 0]]
    net = network((4, 3, 2), np.float32, backend)
    plain = network((4, 3, 2), np.float32, backend)
    net.fit(X, Y, epochs=2, batch_size=batch_size, shuffle=False, learning_rate=0.1,
            momentum=1e-46)
    plain.fit(X, Y, epochs=2, batch_size=batch_size, shuffle=False, learning_rate=0.1)
    # (Plain SGD folds the learning rate into the product, the optimizer step
    # applies it after: the same values to float32 rounding.)
    np.testing.assert_allclose(net.params, plain.params, rtol=1e-5, atol=1e-6)
    assert not net.state_dict()["optimizer_state"].any()
