"""Gradients: against finite differences of an independent float64 reference loss,
and single SGD steps worked by hand."""

import math

import numpy as np
import pytest

from cymlp import MLP

# ---------------------------------------------------------------- finite differences


def kernel_loss_and_grad(net, X, Y, sample_weight=None):
    """(mean loss, gradient) from the network's backend (``MLP.loss_and_grad``)."""
    value, grad = net.loss_and_grad(X, Y, sample_weight)
    assert grad.dtype == net.dtype and grad.shape == (net.n_params,)
    return value, grad


def pre_activations(net, X):
    """z of every layer, computed independently of the kernels (for kink checks)."""
    functions = {
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
        "relu": lambda z: np.maximum(z, 0), "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
        "identity": lambda z: z,
        "softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True),
        "exp": np.exp,
    }
    a, zs = np.asarray(X, dtype=float), []
    for layer, name in enumerate(net.activations):
        z = a @ net.weights[layer]
        if net.bias:
            z = z + net.biases[layer]
        zs.append(z)
        a = functions[name](z)
    return zs


def check_gradient(net, X, Y, reference_loss, reference_gradient, indices=None):
    """The backend's loss and gradient against the float64 reference (conftest).

    The reference loss is written from the documented formulas, without the
    kernels, and differentiated by central differences; so a loss the backend
    computes wrongly (even if its gradient is consistent with it) fails here.
    """
    before = net.params.copy()
    value, grad = kernel_loss_and_grad(net, X, Y)
    np.testing.assert_array_equal(net.params, before)   # the kernel only reads params
    assert value == pytest.approx(reference_loss(net, X, Y), rel=1e-10, abs=1e-15)
    # loss_and_grad and net.loss (evaluate) agree on the loss, too.
    assert value == pytest.approx(net.loss(X, Y), rel=1e-12, abs=1e-15)
    assert np.isfinite(grad).all()
    index = np.arange(net.n_params) if indices is None else np.array(sorted(indices))
    estimate = reference_gradient(net, X, Y, index)
    np.testing.assert_allclose(grad[index], estimate, rtol=1e-6, atol=1e-8)
    # A gradient of zero would pass trivially; these networks have a real one.
    assert np.abs(grad).max() > 1e-4


# The oracle itself, on a one-layer network worked by hand: z = x @ W + b with
# W = [[0.5, -1], [0.25, 0.5]], b = [0.25, -0.5] gives, for the rows of
# HAND_X, z = [1.25, -0.5] and z = [-0.75, 1.5].
HAND_X = [[1.0, 2.0], [-2.0, 0.0]]
HAND_Z = [[1.25, -0.5], [-0.75, 1.5]]
HAND_FLAT = [0.5, -1.0, 0.25, 0.5, 0.25, -0.5]   # W row-major, then b


def hand_net(backend, output, loss, weights=True):
    net = MLP([2, 2], output_activation=output, loss=loss, bias=True, backend=backend)
    if weights:
        net.weights[0][...] = [[0.5, -1.0], [0.25, 0.5]]
        net.biases[0][...] = [0.25, -0.5]
    else:
        net.params[...] = 0.0
    return net


def hand_losses():
    """(output, loss, Y, expected) worked out with the math module."""
    (z11, z12), (z21, z22) = HAND_Z
    y_onehot = [[1.0, 0.0], [0.0, 1.0]]
    # MSE on identity outputs: errors 0.25, -0.5, -0.75, 0.5 -> 1.125 / 4 entries.
    mse_identity = 0.28125
    s = [[sigmoid(z) for z in row] for row in HAND_Z]
    mse_sigmoid = ((s[0][0] - 1) ** 2 + s[0][1] ** 2 + s[1][0] ** 2 + (s[1][1] - 1) ** 2) / 4
    # BCE as -[y log a + (1 - y) log(1 - a)] on a = sigmoid(z), mean of 4 entries.
    bce = -(math.log(s[0][0]) + math.log(1 - s[0][1]) + math.log(1 - s[1][0])
            + math.log(s[1][1])) / 4
    # Cross-entropy: -sum y log softmax, mean over the 2 samples (not the 4 entries).
    y_probability = [[0.25, 0.75], [1.0, 0.0]]
    # Poisson on exp outputs: exp(z) - y z, mean of the 4 entries.
    y_counts = [[2.0, 0.0], [1.0, 3.0]]
    poisson = sum(math.exp(z) - y * z for z_row, y_row in zip(HAND_Z, y_counts)
                  for z, y in zip(z_row, y_row)) / 4
    p1 = [math.exp(z11) / (math.exp(z11) + math.exp(z12)),
          math.exp(z12) / (math.exp(z11) + math.exp(z12))]
    p2 = [math.exp(z21) / (math.exp(z21) + math.exp(z22)),
          math.exp(z22) / (math.exp(z21) + math.exp(z22))]
    cross_entropy = -(0.25 * math.log(p1[0]) + 0.75 * math.log(p1[1]) + math.log(p2[0])) / 2
    return [("identity", "mse", y_onehot, mse_identity),
            ("sigmoid", "mse", y_onehot, mse_sigmoid),
            ("sigmoid", "bce", y_onehot, bce),
            ("softmax", "cross_entropy", y_probability, cross_entropy),
            ("exp", "poisson", y_counts, poisson)]


@pytest.mark.parametrize("case", range(5), ids=["identity-mse", "sigmoid-mse", "sigmoid-bce",
                                                 "softmax-cross_entropy", "exp-poisson"])
def test_reference_loss_by_hand(backend, reference_loss, case):
    output, loss, Y, expected = hand_losses()[case]
    net = hand_net(backend, output, loss)
    assert reference_loss(net, HAND_X, Y) == pytest.approx(expected, rel=1e-14)
    # From a flat vector in the documented layout, ignoring the net's own weights.
    zeros = hand_net(backend, output, loss, weights=False)
    assert reference_loss(zeros, HAND_X, Y, params=HAND_FLAT) == pytest.approx(expected,
                                                                               rel=1e-14)
    assert reference_loss(zeros, HAND_X, Y) != pytest.approx(expected, rel=1e-3)


def test_reference_gradient_by_hand(backend, reference_gradient):
    # Identity outputs, MSE: dL/dW = 2/(N K) X^T (Z - Y), dL/db = 2/(N K) sum of the
    # rows of Z - Y, with Z - Y = [[0.25, -0.5], [-0.75, 0.5]] and 2/(N K) = 1/2.
    net = hand_net(backend, "identity", "mse")
    expected = [0.875, -0.75, 0.25, -0.5, -0.25, 0.0]
    np.testing.assert_allclose(reference_gradient(net, HAND_X, np.eye(2)), expected,
                               rtol=1e-8, atol=1e-9)
    # Softmax, cross-entropy (rows of Y sum to 1): dL/db = mean over samples of
    # softmax(z) - y.
    net = hand_net(backend, "softmax", "cross_entropy")
    Y = [[0.25, 0.75], [1.0, 0.0]]
    p = [[math.exp(z) / sum(math.exp(v) for v in row) for z in row] for row in HAND_Z]
    expected_bias = [(p[0][k] - Y[0][k] + p[1][k] - Y[1][k]) / 2 for k in range(2)]
    np.testing.assert_allclose(reference_gradient(net, HAND_X, Y, indices=[4, 5]),
                               expected_bias, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_reference_layout_is_the_networks(backend, reference_unflatten, bias):
    # The reference cuts the flat vector as the library lays it out.
    net = MLP([3, 4, 5, 2], bias=bias, seed=0, backend=backend)
    net.params[...] = np.arange(net.n_params)
    weights, biases = reference_unflatten(net, net.params)
    assert len(weights) == 3 and len(biases) == (3 if bias else 0)
    for mine, theirs in zip(weights + biases, net.weights + net.biases):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(ValueError, match="^params of shape"):
        reference_unflatten(net, net.params[:-1])


def make_net(backend, layer_sizes, activation, output, loss, bias, seed=0):
    net = MLP(layer_sizes, activation=activation, output_activation=output, loss=loss,
              bias=bias, init="normal", dtype=np.float64, seed=seed, backend=backend)
    rng = np.random.default_rng(seed + 1000)
    for b in net.biases:
        b[...] = rng.normal(scale=0.5, size=b.shape)
    return net


def targets(rng, n_samples, n_outputs, loss, output):
    if output == "softmax":
        return rng.dirichlet(np.ones(n_outputs), size=n_samples)
    if loss == "poisson":
        return rng.poisson(1.5, (n_samples, n_outputs)).astype(float)
    if loss == "bce":
        return rng.integers(0, 2, (n_samples, n_outputs)).astype(float)
    return rng.random((n_samples, n_outputs))


def keep_away_from_kinks(net, X, activations):
    """Fail loudly (instead of flakily) if a ReLU sits at its kink."""
    for z, name in zip(pre_activations(net, X), activations):
        if name in ("relu", "leaky_relu"):
            assert np.abs(z).min() > 1e-4, "test data puts a ReLU pre-activation at its kink"


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_sigmoid_mse_gradient(backend, bias, reference_loss, reference_gradient):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(7, 4)), rng.random((7, 3))
    net = make_net(backend, [4, 5, 3], "sigmoid", "sigmoid", "mse", bias)
    check_gradient(net, X, Y, reference_loss, reference_gradient)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_tutorial_sized_gradient(backend, bias, reference_loss, reference_gradient):
    X = np.random.default_rng(2).integers(0, 2, (3, 30)).astype(float)
    Y = np.eye(3)
    net = make_net(backend, [30, 5, 3], "sigmoid", "sigmoid", "mse", bias, seed=3)
    check_gradient(net, X, Y, reference_loss, reference_gradient)


HEADS = [("sigmoid", "mse"), ("sigmoid", "bce"), ("softmax", "cross_entropy"),
         ("softmax", "mse"), ("identity", "mse"), ("tanh", "mse"), ("relu", "mse"),
         ("leaky_relu", "mse"), ("exp", "poisson")]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("output, loss", HEADS, ids=[f"{o}-{l}" for o, l in HEADS])
@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "leaky_relu", "identity"])
def test_gradient_every_activation_and_loss(backend, hidden, output, loss, bias, reference_loss,
                                            reference_gradient):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(6, 3))
    Y = targets(rng, 6, 4, loss, output)
    net = make_net(backend, [3, 5, 4], hidden, output, loss, bias, seed=5)
    keep_away_from_kinks(net, X, net.activations)
    check_gradient(net, X, Y, reference_loss, reference_gradient)


@pytest.mark.parametrize("output, loss", HEADS, ids=[f"{o}-{l}" for o, l in HEADS])
def test_weighted_gradient(backend, output, loss, reference_loss, reference_gradient):
    # d(sum w_i l_i / sum w_i)/dparams against the weighted reference, with a
    # weight of 0, fractional weights and one large one.
    rng = np.random.default_rng(8)
    X = rng.normal(size=(7, 3))
    Y = targets(rng, 7, 4, loss, output)
    weights = np.array([0.5, 0.0, 2.0, 1.0, 7.25, 0.125, 1.0])
    net = make_net(backend, [3, 5, 4], "tanh", output, loss, True, seed=12)
    value, grad = kernel_loss_and_grad(net, X, Y, weights)
    assert value == pytest.approx(reference_loss(net, X, Y, sample_weight=weights), rel=1e-10)
    estimate = reference_gradient(net, X, Y, sample_weight=weights)
    np.testing.assert_allclose(grad, estimate, rtol=1e-6, atol=1e-8)
    # The weights do matter: the unweighted gradient is a different one.
    assert not np.allclose(grad, kernel_loss_and_grad(net, X, Y)[1], rtol=1e-3)


def test_gradient_poisson_counts_of_zero(backend, reference_loss, reference_gradient):
    # y = 0 everywhere: the loss is the mean of exp(z), its delta exp(z) / (N K).
    rng = np.random.default_rng(9)
    X = rng.normal(size=(5, 3))
    net = make_net(backend, [3, 4, 2], "relu", "exp", "poisson", True, seed=13)
    keep_away_from_kinks(net, X, net.activations)
    check_gradient(net, X, np.zeros((5, 2)), reference_loss, reference_gradient)


def test_gradient_mixed_hidden_activations(backend, reference_loss, reference_gradient):
    rng = np.random.default_rng(11)
    X, Y = rng.normal(size=(5, 3)), rng.random((5, 2))
    activations = ["tanh", "relu", "leaky_relu"]
    net = make_net(backend, [3, 6, 5, 4, 2], activations, "sigmoid", "mse", True, seed=2)
    assert net.activations == ("tanh", "relu", "leaky_relu", "sigmoid")
    keep_away_from_kinks(net, X, net.activations)
    check_gradient(net, X, Y, reference_loss, reference_gradient)


def test_gradient_single_output_bce(backend, reference_loss, reference_gradient):
    rng = np.random.default_rng(12)
    X = rng.normal(size=(8, 3))
    Y = rng.integers(0, 2, (8, 1)).astype(float)
    net = make_net(backend, [3, 4, 1], "tanh", "sigmoid", "bce", True, seed=4)
    check_gradient(net, X, Y, reference_loss, reference_gradient)


def test_gradient_no_hidden_layer(backend, reference_loss, reference_gradient):
    rng = np.random.default_rng(13)
    X, Y = rng.normal(size=(4, 3)), rng.dirichlet(np.ones(3), size=4)
    net = make_net(backend, [3, 3], [], "softmax", "cross_entropy", True, seed=6)
    check_gradient(net, X, Y, reference_loss, reference_gradient)


def test_cross_entropy_gradient_with_unnormalised_targets(backend, reference_loss,
                                                          reference_gradient):
    # -sum_k y_k log softmax_k(z) has gradient softmax(z) * sum(y) - y; targets
    # whose rows do not sum to 1 exercise the sum(y) factor.
    rng = np.random.default_rng(14)
    X, Y = rng.normal(size=(5, 3)), 2 * rng.random((5, 4))
    net = make_net(backend, [3, 4, 4], "tanh", "softmax", "cross_entropy", True, seed=8)
    check_gradient(net, X, Y, reference_loss, reference_gradient)


def test_gradient_wide_layers(backend, reference_loss, reference_gradient):
    # Large enough that the compiled kernels use BLAS for every product;
    # finite differences on a sample of the parameters keep this fast.
    rng = np.random.default_rng(15)
    X, Y = rng.normal(size=(70, 40)), rng.random((70, 30))
    net = MLP([40, 64, 30], activation="tanh", seed=1, backend=backend)
    for b in net.biases:
        b[...] = rng.normal(scale=0.1, size=b.shape)
    indices = rng.choice(net.n_params, size=40, replace=False)
    last_bias = net.n_params - 30 + np.arange(3)
    check_gradient(net, X, Y, reference_loss, reference_gradient,
                   indices=sorted(set(indices) | set(last_bias)))


# ---------------------------------------------------------------- SGD steps by hand

def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def hand_rtol(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def test_single_sgd_step_by_hand(backend, dtype):
    """A 2-2-1 sigmoid network with biases, MSE, one sample, one step."""
    net = MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", loss="mse",
              bias=True, dtype=dtype, backend=backend)
    # weights[0][i][j] connects input i to hidden unit j (x @ W).
    net.weights[0][...] = [[0.1, 0.2],
                           [0.3, 0.4]]
    net.biases[0][...] = [0.05, -0.05]
    net.weights[1][...] = [[0.5],
                           [-0.6]]
    net.biases[1][...] = [0.1]
    x1, x2, y, lr = 1.0, 2.0, 1.0, 0.5

    # Forward pass.
    z_h0 = x1 * 0.1 + x2 * 0.3 + 0.05           # 0.75
    z_h1 = x1 * 0.2 + x2 * 0.4 - 0.05           # 0.95
    h0, h1 = sigmoid(z_h0), sigmoid(z_h1)       # 0.679179, 0.721115
    z_out = h0 * 0.5 + h1 * (-0.6) + 0.1        # 0.006920
    a = sigmoid(z_out)                          # 0.501730
    loss = (a - y) ** 2                         # one sample, one output: 0.248274

    # Backward pass: dL/da = 2 (a - y), sigmoid' = a (1 - a).
    d_out = 2 * (a - y) * a * (1 - a)           # -0.249
    d_h0 = d_out * 0.5 * h0 * (1 - h0)          # through weights[1][0]
    d_h1 = d_out * (-0.6) * h1 * (1 - h1)       # through weights[1][1]

    # params -= lr * grad.
    expected_w1 = [[0.1 - lr * x1 * d_h0, 0.2 - lr * x1 * d_h1],
                   [0.3 - lr * x2 * d_h0, 0.4 - lr * x2 * d_h1]]
    expected_b1 = [0.05 - lr * d_h0, -0.05 - lr * d_h1]
    expected_w2 = [[0.5 - lr * h0 * d_out],
                   [-0.6 - lr * h1 * d_out]]
    expected_b2 = [0.1 - lr * d_out]

    X, Y = [[x1, x2]], [[y]]
    rtol = hand_rtol(dtype)
    assert net.predict(X)[0, 0] == pytest.approx(a, rel=rtol)
    assert net.loss(X, Y) == pytest.approx(loss, rel=rtol)
    history = net.fit(X, Y, epochs=1, learning_rate=lr, batch_size=1, shuffle=False)

    np.testing.assert_allclose(net.weights[0], expected_w1, rtol=rtol)
    np.testing.assert_allclose(net.biases[0], expected_b1, rtol=rtol)
    np.testing.assert_allclose(net.weights[1], expected_w2, rtol=rtol)
    np.testing.assert_allclose(net.biases[1], expected_b2, rtol=rtol)
    # The loss recorded is that of the forward pass before the step; a > 0.5
    # and y > 0.5, so the sample counts as correct.
    assert history.loss == [pytest.approx(loss, rel=rtol)]
    assert history.accuracy == [1.0]
    # The step made a difference the comparison above can see.
    assert abs(lr * h0 * d_out) > 0.05


def test_two_samples_one_at_a_time_by_hand(backend, dtype):
    """batch_size=1 and shuffle=False: the tutorial's sample-by-sample updates."""
    net = MLP([2, 1], bias=True, dtype=dtype, backend=backend)
    net.weights[0][...] = [[0.3], [-0.1]]
    net.biases[0][...] = [0.1]
    lr = 0.8

    # Sample 1: x = (1, 2), y = 1.
    w0, w1, b = 0.3, -0.1, 0.1
    a1 = sigmoid(1 * w0 + 2 * w1 + b)           # sigmoid(0.2) = 0.549834
    d1 = 2 * (a1 - 1) * a1 * (1 - a1)
    w0, w1, b = w0 - lr * 1 * d1, w1 - lr * 2 * d1, b - lr * d1
    # Sample 2: x = (-1, 0.5), y = 0, seen by the updated weights.
    a2 = sigmoid(-1 * w0 + 0.5 * w1 + b)
    d2 = 2 * (a2 - 0) * a2 * (1 - a2)
    w0, w1, b = w0 - lr * (-1) * d2, w1 - lr * 0.5 * d2, b - lr * d2

    history = net.fit([[1, 2], [-1, 0.5]], [[1], [0]], epochs=1, learning_rate=lr,
                      batch_size=1, shuffle=False)
    rtol = hand_rtol(dtype)
    np.testing.assert_allclose(net.weights[0][:, 0], [w0, w1], rtol=rtol)
    np.testing.assert_allclose(net.biases[0], [b], rtol=rtol)
    # Epoch loss: mean of the per-sample losses, each before its own step.
    assert history.loss[0] == pytest.approx(((a1 - 1) ** 2 + a2 ** 2) / 2, rel=rtol)
    # Sample 1 correct iff a1 > 0.5; sample 2 correct iff a2 <= 0.5.
    assert history.accuracy[0] == ((a1 > 0.5) + (a2 <= 0.5)) / 2


def test_batch_step_is_mean_over_samples_and_outputs(backend, dtype):
    """One step on a 2-sample batch of a 2-2 network: grad of the batch-mean MSE.

    MSE as torch.nn.MSELoss: L = 1/(N*K) sum_s sum_k (a_sk - y_sk)^2 with
    N = 2 samples and K = 2 outputs, so dL/dz_sk = 2 (a - y) a (1 - a) / 4.
    """
    net = MLP([2, 2], bias=True, dtype=dtype, backend=backend)
    net.weights[0][...] = [[0.2, -0.3],
                           [0.4, 0.1]]
    net.biases[0][...] = [0.0, 0.1]
    lr = 1.0
    X = [[1.0, -1.0], [0.5, 2.0]]
    Y = [[1.0, 0.0], [0.0, 1.0]]

    # Sample 1, x = (1, -1), y = (1, 0).
    a10 = sigmoid(1 * 0.2 + (-1) * 0.4 + 0.0)       # sigmoid(-0.2)
    a11 = sigmoid(1 * (-0.3) + (-1) * 0.1 + 0.1)    # sigmoid(-0.3)
    # Sample 2, x = (0.5, 2), y = (0, 1).
    a20 = sigmoid(0.5 * 0.2 + 2 * 0.4 + 0.0)        # sigmoid(0.9)
    a21 = sigmoid(0.5 * (-0.3) + 2 * 0.1 + 0.1)     # sigmoid(0.15)
    loss = ((a10 - 1) ** 2 + (a11 - 0) ** 2 + (a20 - 0) ** 2 + (a21 - 1) ** 2) / 4

    scale = 2 / (2 * 2)                              # d/da of the mean over N*K terms
    d10 = scale * (a10 - 1) * a10 * (1 - a10)
    d11 = scale * (a11 - 0) * a11 * (1 - a11)
    d20 = scale * (a20 - 0) * a20 * (1 - a20)
    d21 = scale * (a21 - 1) * a21 * (1 - a21)
    # grad W[i][k] = sum_s x_si d_sk; grad b_k = sum_s d_sk.
    grad_w = [[1 * d10 + 0.5 * d20, 1 * d11 + 0.5 * d21],
              [(-1) * d10 + 2 * d20, (-1) * d11 + 2 * d21]]
    grad_b = [d10 + d20, d11 + d21]
    expected_w = [[0.2 - lr * grad_w[0][0], -0.3 - lr * grad_w[0][1]],
                  [0.4 - lr * grad_w[1][0], 0.1 - lr * grad_w[1][1]]]
    expected_b = [0.0 - lr * grad_b[0], 0.1 - lr * grad_b[1]]

    rtol = hand_rtol(dtype)
    assert net.loss(X, Y) == pytest.approx(loss, rel=rtol)
    history = net.fit(X, Y, epochs=1, learning_rate=lr, batch_size=2, shuffle=False)
    np.testing.assert_allclose(net.weights[0], expected_w, rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(net.biases[0], expected_b, rtol=rtol, atol=1e-7)
    assert history.loss == [pytest.approx(loss, rel=rtol)]
    # argmax: sample 1 predicts output 0 (z = -0.2 > -0.3), target 0 -> right;
    # sample 2 predicts output 0 (z = 0.9 > 0.15), target 1 -> wrong.
    assert (a10 > a11, a20 > a21) == (True, True)
    assert history.accuracy == [0.5]

    # The other conventions would give visibly different weights: summing over
    # samples (x2), or summing over outputs (x2).
    for factor in (2.0, 0.5):
        other_w = [[0.2 - factor * lr * grad_w[0][0], -0.3 - factor * lr * grad_w[0][1]],
                   [0.4 - factor * lr * grad_w[1][0], 0.1 - factor * lr * grad_w[1][1]]]
        assert not np.allclose(net.weights[0], other_w, rtol=1e-3, atol=0)


def test_batch_gradient_is_mean_of_sample_gradients(backend):
    rng = np.random.default_rng(21)
    X, Y = rng.normal(size=(5, 3)), rng.random((5, 2))
    net = make_net(backend, [3, 4, 2], "tanh", "sigmoid", "mse", True, seed=9)
    value, grad = kernel_loss_and_grad(net, X, Y)
    per_sample = [kernel_loss_and_grad(net, X[i:i + 1], Y[i:i + 1]) for i in range(5)]
    assert value == pytest.approx(sum(v for v, _ in per_sample) / 5, rel=1e-12)
    np.testing.assert_allclose(grad, sum(g for _, g in per_sample) / 5, rtol=1e-10,
                               atol=1e-14)
