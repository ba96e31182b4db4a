"""Properties behind the speed work: no allocation per epoch, thread control,
blocked inference and thread-parallel training give the same numbers.

These assert behaviour (bytes allocated, weights, thread counts), never time.
"""

import threading
import tracemalloc

import numpy as np
import pytest

from cymlp import MLP, _layout, _network, _threads


def data(n_samples=600, n_features=64, n_outputs=10, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, n_features)).astype(dtype)
    Y = np.eye(n_outputs, dtype=dtype)[rng.integers(0, n_outputs, n_samples)]
    return X, Y


@pytest.mark.parametrize("options", [
    dict(batch_size=1),
    dict(batch_size=32),
    dict(batch_size=32, optimizer="sgd", momentum=0.9, weight_decay=1e-4),
    dict(batch_size=16, optimizer="adam", learning_rate=1e-3),
    dict(batch_size=8, shuffle=False),
], ids=["sgd-1", "sgd-32", "momentum-32", "adam-16", "in-order-8"])
def test_second_epoch_allocates_under_64_kib(backend, options):
    X, Y = data()
    net = MLP([64, 64, 10], activation="relu", output_activation="softmax",
              loss="cross_entropy", seed=0, backend=backend)
    measured = {}

    def callback(epoch, history):
        if epoch == 1:
            tracemalloc.start()
        elif epoch == 2:
            measured["current"], measured["peak"] = tracemalloc.get_traced_memory()
            tracemalloc.stop()

    options = {"learning_rate": 0.01, **options}
    net.fit(X, Y, epochs=2, callback=callback, **options)
    assert measured["peak"] < 64 * 1024, measured
    # The epoch was real work: X alone is 300 KiB, far above the bound.
    assert X.nbytes > 4 * 64 * 1024


def test_second_epoch_with_validation_allocates_under_64_kib(backend):
    X, Y = data()
    net = MLP([64, 32, 10], seed=0, backend=backend)
    measured = {}

    def callback(epoch, history):
        if epoch == 1:
            tracemalloc.start()
        elif epoch == 2:
            measured["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

    net.fit(X[:500], Y[:500], epochs=2, batch_size=10, validation_data=(X[500:], Y[500:]),
            callback=callback)
    assert measured["peak"] < 64 * 1024, measured


def test_blocked_inference_equals_row_by_row(backend, monkeypatch):
    X, Y = data(n_samples=257, n_features=30, n_outputs=4)
    net = MLP([30, 40, 4], activation="tanh", output_activation="softmax",
              loss="cross_entropy", seed=1, backend=backend)
    whole = net.predict(X)
    # Tiny blocks: many kernel-internal blocks, the last one partial.
    monkeypatch.setattr(_network, "INFERENCE_BLOCK_ELEMENTS", 7 * _layout.workspace_row_width(net._layout))
    blocked = net.predict(X)
    rows = np.vstack([net.predict(X[i:i + 1]) for i in range(X.shape[0])])
    np.testing.assert_allclose(blocked, whole, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(rows, whole, rtol=1e-13, atol=1e-15)
    assert net.loss(X, Y) == pytest.approx(
        -np.mean(np.sum(Y * np.log(whole), axis=1)), rel=1e-12)


def test_networks_trained_in_parallel_threads_match_serial(backend):
    X, Y = data(n_samples=300)
    configs = [dict(seed=seed, activation=act) for seed, act in ((0, "relu"), (1, "tanh"),
                                                                   (2, "sigmoid"), (3, "relu"))]

    def train(config):
        net = MLP([64, 48, 10], output_activation="softmax", loss="cross_entropy",
                  backend=backend, **config)
        net.fit(X, Y, epochs=3, batch_size=4, learning_rate=0.05)
        return net.params.copy()

    serial = [train(config) for config in configs]
    results = [None] * len(configs)

    def worker(index):
        results[index] = train(configs[index])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(configs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for alone, together in zip(serial, results):
        np.testing.assert_array_equal(together, alone)


def test_blas_thread_limit_is_applied_and_restored():
    controller = _threads._get_controller()
    if isinstance(controller, _threads._OpenBLAS) and not controller.libraries:
        pytest.skip("no controllable BLAS in this environment")
    counts = _threads._current_counts()
    with _threads.blas_threads(1):
        assert set(_threads._current_counts()) == {1}
    assert _threads._current_counts() == counts


def test_threads_for_picks_one_thread_for_small_products():
    small, _ = _layout.build_layout([30, 5, 3], [1, 1], True)
    large, _ = _layout.build_layout([784, 256, 10], [1, 1], True)
    assert _threads.threads_for(small, 1, None) == 1
    assert _threads.threads_for(small, 64, None) == 1
    assert _threads.threads_for(large, 64, None) is None      # BLAS decides
    assert _threads.threads_for(large, 64, 3) == 3
    assert _threads.threads_for(small, 1, -1) >= 1


@pytest.mark.parametrize("n_threads", [0, -2, 1.5, "two"])
def test_bad_n_threads_names_the_argument(backend, n_threads):
    with pytest.raises((ValueError, TypeError), match="n_threads"):
        MLP([3, 2], n_threads=n_threads, backend=backend)


def test_n_threads_does_not_change_results(backend):
    X, Y = data(n_samples=200, n_features=64)
    nets = [MLP([64, 256, 10], seed=5, backend=backend, n_threads=n) for n in (1, 2, None)]
    for net in nets:
        net.fit(X, Y, epochs=2, batch_size=64, learning_rate=0.1)
    for net in nets[1:]:
        np.testing.assert_allclose(net.params, nets[0].params, rtol=1e-12, atol=1e-14)
