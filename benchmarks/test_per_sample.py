"""One epoch of per-sample SGD (batch size 1), the tutorial's way of training.

Python overhead per sample dominates these small networks; the compiled
backend runs the whole epoch in one call. Throughput is samples per second
(``extra_info["samples"]`` over the mean time).
"""

import numpy as np
import pytest

from cymlp import MLP, tutorial

SAMPLES = {(30, 5, 3): 3000, (64, 32, 10): 2000}


@pytest.mark.parametrize("sizes", list(SAMPLES), ids=lambda s: "-".join(map(str, s)))
def test_sgd_epoch_batch1(benchmark, backend, dtype, sizes, make_data):
    n_samples = SAMPLES[sizes]
    X, Y = make_data(n_samples, sizes[0], sizes[-1], dtype)
    net = MLP(list(sizes), seed=0, dtype=dtype, backend=backend)
    benchmark.group = f"sgd batch=1 {'-'.join(map(str, sizes))} {np.dtype(dtype).name}"
    benchmark.extra_info["samples"] = n_samples
    benchmark(net.fit, X, Y, epochs=1, learning_rate=0.1, batch_size=1)


def test_tutorial_train(benchmark, backend, make_data):
    """cymlp.tutorial.train: the tutorial's 100 epochs over the three letters."""
    X, Y = make_data(3, 30, 3, np.float64)
    x = [row.reshape(1, 30) for row in X]
    tutorial.use_backend(backend)
    np.random.seed(0)
    w1, w2 = tutorial.generate_wt(30, 5), tutorial.generate_wt(5, 3)
    benchmark.group = "tutorial train, 100 epochs of the letters"
    benchmark.extra_info["samples"] = 300
    try:
        benchmark(_quiet(tutorial.train), x, Y, w1, w2, 0.1, 100)
    finally:
        tutorial.use_backend(None)


def test_tutorial_train_plain_numpy(benchmark, make_data):
    """The tutorial's own code (a Python loop over samples with NumPy), for reference."""
    X, Y = make_data(3, 30, 3, np.float64)
    x = [row.reshape(1, 30) for row in X]
    np.random.seed(0)
    w1, w2 = np.random.randn(30, 5), np.random.randn(5, 3)

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    def train(x, Y, w1, w2, alpha, epoch):
        for _ in range(epoch):
            for i in range(len(x)):
                a1 = sigmoid(x[i].dot(w1))
                a2 = sigmoid(a1.dot(w2))
                _ = np.sum(np.square(a2 - Y[i])) / len(Y[i])
                d2 = a2 - Y[i]
                d1 = np.multiply(w2.dot(d2.T).T, np.multiply(a1, 1 - a1))
                w1 = w1 - alpha * x[i].T.dot(d1)
                w2 = w2 - alpha * a1.T.dot(d2)
        return w1, w2

    benchmark.group = "tutorial train, 100 epochs of the letters"
    benchmark.extra_info["samples"] = 300
    benchmark(train, x, Y, w1, w2, 0.1, 100)


def _quiet(function):
    import contextlib
    import io

    def run(*args):
        with contextlib.redirect_stdout(io.StringIO()):
            return function(*args)
    return run


# ---------------------------------------------------------------- the NumPy backend against the tutorial

TUTORIAL_SAMPLES = 3000


def tutorial_as_written(x, Y, w1, w2, alpha, epoch):
    """The tutorial's own train loop, as TUTORIAL.md gives it (two forward passes per sample)."""
    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    def f_forward(x, w1, w2):
        return sigmoid(sigmoid(x.dot(w1)).dot(w2))

    def loss(out, Y):
        return np.sum(np.square(out - Y)) / len(Y)

    def back_prop(x, y, w1, w2, alpha):
        a1 = sigmoid(x.dot(w1))
        a2 = sigmoid(a1.dot(w2))
        d2 = a2 - y
        d1 = np.multiply((w2.dot((d2.transpose()))).transpose(), (np.multiply(a1, 1 - a1)))
        return w1 - alpha * x.transpose().dot(d1), w2 - alpha * a1.transpose().dot(d2)

    losses = []
    for _ in range(epoch):
        epoch_losses = []
        for i in range(len(x)):
            epoch_losses.append(loss(f_forward(x[i], w1, w2), Y[i]))
            w1, w2 = back_prop(x[i], Y[i], w1, w2, alpha)
        losses.append(sum(epoch_losses) / len(x))
    return losses, w1, w2


def test_tutorial_network_epoch_batch1(benchmark, backend, make_data):
    """MLP on the tutorial's network (30-5-3, sigmoid, MSE, no bias), one epoch, batch 1."""
    X, Y = make_data(TUTORIAL_SAMPLES, 30, 3, np.float64)
    net = MLP([30, 5, 3], bias=False, seed=0, backend=backend)
    benchmark.group = "tutorial network 30-5-3 without bias, batch=1, float64"
    benchmark.extra_info["samples"] = TUTORIAL_SAMPLES
    benchmark(net.fit, X, Y, epochs=1, learning_rate=0.1, batch_size=1, shuffle=False)


def test_tutorial_code_as_written_epoch(benchmark, make_data):
    """The tutorial's NumPy code on the same rows: the NumPy backend must not be slower."""
    X, Y = make_data(TUTORIAL_SAMPLES, 30, 3, np.float64)
    x = [row.reshape(1, 30) for row in X]
    Ys = [row.reshape(1, 3) for row in Y]
    rng = np.random.default_rng(0)
    w1, w2 = rng.uniform(-0.5, 0.5, (30, 5)), rng.uniform(-0.5, 0.5, (5, 3))
    benchmark.group = "tutorial network 30-5-3 without bias, batch=1, float64"
    benchmark.extra_info["samples"] = TUTORIAL_SAMPLES
    benchmark(tutorial_as_written, x, Ys, w1, w2, 0.1, 1)
