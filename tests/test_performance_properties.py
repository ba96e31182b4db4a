"""Properties behind the speed work: no allocation per epoch, thread control,
blocked inference and thread-parallel training give the same numbers.

These assert behaviour (bytes allocated, weights, thread counts), never time.
"""

import contextlib
import os
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


def second_epoch_allocations(net, X, Y, **options):
    """(bytes still allocated at its end, peak bytes) of the second epoch of a fit.

    tracemalloc sees the Python objects and the NumPy arrays (NumPy reports its
    data buffers to it), whichever backend computes.
    """
    measured = {}

    def callback(epoch, history):
        if epoch == 1:
            tracemalloc.start()
        elif epoch == 2:
            measured["current"], measured["peak"] = tracemalloc.get_traced_memory()
            tracemalloc.stop()

    net.fit(X, Y, epochs=2, callback=callback, **options)
    return measured["current"], measured["peak"]


# What the second epoch may keep: the history's new entries (a few floats).
MAX_KEPT = 2 * 1024


@pytest.mark.parametrize("options", [
    dict(batch_size=1),
    dict(batch_size=32),
    dict(batch_size=32, optimizer="sgd", momentum=0.9, weight_decay=1e-4),
    dict(batch_size=16, optimizer="adam", learning_rate=1e-3),
    dict(batch_size=8, shuffle=False),
], ids=["sgd-1", "sgd-32", "momentum-32", "adam-16", "in-order-8"])
def test_second_epoch_allocates_less_than_the_gradient(backend, options):
    """No buffer of the fit is allocated again in the second epoch: the gradient
    is the smallest of them (the workspace and the optimizer state are larger),
    so allocating any one of them even once, let alone per chunk, makes the peak
    reach the gradient's size. What the epoch does allocate (slices, views, the
    NumPy backend's batch-sized temporaries) stays well below it."""
    X, Y = data()
    net = MLP([64, 64, 10], activation="relu", output_activation="softmax",
              loss="cross_entropy", seed=0, backend=backend)
    gradient = net.n_params * net.dtype(0).itemsize
    current, peak = second_epoch_allocations(net, X, Y, **{"learning_rate": 0.01, **options})
    assert peak < gradient, dict(peak=peak, gradient=gradient)
    assert current < MAX_KEPT, dict(current=current)
    # The epoch was real work: X alone is 300 KiB, far above the bound.
    assert X.nbytes > 4 * gradient


def test_second_epoch_with_validation_allocates_less_than_the_gradient(backend):
    """The same with validation data: neither the training buffers nor the
    validation workspace (larger still) are allocated again. 256 features make
    the gradient (68 KB) dwarf the NumPy backend's temporaries for 100
    validation rows of 32 hidden units (about 29 KB)."""
    X, Y = data(n_features=256)
    net = MLP([256, 32, 10], seed=0, backend=backend)
    gradient = net.n_params * net.dtype(0).itemsize
    current, peak = second_epoch_allocations(net, X[:500], Y[:500], batch_size=10,
                                             validation_data=(X[500:], Y[500:]))
    assert peak < gradient, dict(peak=peak, gradient=gradient)
    assert current < MAX_KEPT, dict(current=current)
    assert net._inference_workspace(100).nbytes > gradient


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


def blas_thread_counts():
    """Thread counts of the BLAS libraries loaded here, read by threadpoolctl
    (independently of cymlp's own getters), without repeats."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return sorted({info["num_threads"] for info in threadpoolctl.threadpool_info()
                   if info["user_api"] == "blas"})


@contextlib.contextmanager
def blas_set_to(n_threads, exact=True):
    """BLAS set to ``n_threads`` by threadpoolctl, as a caller might have left it
    (``exact=False``: to what the libraries take of it, the same for all)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=n_threads, user_api="blas"):
        counts = blas_thread_counts()
        if len(counts) != 1 or (exact and counts != [n_threads]):
            pytest.skip(f"no BLAS here that takes a limit of {n_threads} threads "
                        f"(it reports {counts})")
        yield


def test_blas_thread_limit_is_applied_and_restored():
    controller = _threads._get_controller()
    if isinstance(controller, _threads._OpenBLAS) and not controller.libraries:
        pytest.skip("no controllable BLAS in this environment")
    # Each limit differs from the count BLAS had before, so that a limit that
    # is not applied, or not undone, shows.
    for outer, inner in ((3, 1), (1, 2)):
        with blas_set_to(outer):
            counts = _threads._current_counts()
            with _threads.blas_threads(inner):
                assert blas_thread_counts() == [inner]
                assert set(_threads._current_counts()) == {inner}
            assert blas_thread_counts() == [outer]
            assert _threads._current_counts() == counts
            with _threads.blas_threads(None):
                assert blas_thread_counts() == [outer]


def test_threads_for_picks_one_thread_for_small_products():
    small, _ = _layout.build_layout([30, 5, 3], [1, 1], True)
    large, _ = _layout.build_layout([784, 256, 10], [1, 1], True)
    assert _threads.threads_for(small, 1, None) == 1
    assert _threads.threads_for(small, 64, None) == 1
    assert _threads.threads_for(large, 64, None) is None      # BLAS decides
    assert _threads.threads_for(large, 64, 3) == 3
    assert _threads.threads_for(small, 1, -1) >= 1


@pytest.mark.parametrize("n_threads, error, got", [
    (0, ValueError, "0"), (-2, ValueError, "-2"), (1.5, TypeError, r"1\.5"),
    ("two", TypeError, "'two'"), (True, TypeError, "True")])
def test_bad_n_threads_names_the_argument(backend, n_threads, error, got):
    with pytest.raises(error, match=rf"^n_threads must be None, -1 \(every core\) or a "
                                    rf"positive integer; got {got}$"):
        MLP([3, 2], n_threads=n_threads, backend=backend)


def test_n_threads_is_applied_in_fit_and_predict_and_does_not_change_results(backend,
                                                                            monkeypatch):
    """BLAS runs with the count ``n_threads`` asks for while fit and predict run
    (seen from the callback and from inside the forward kernel), and with the
    caller's count again afterwards; the results do not depend on it."""
    # -1 asks for every core: as many threads as BLAS takes when set to that.
    with blas_set_to(os.cpu_count() or 1, exact=False):
        [cores] = blas_thread_counts()
    outer = 4 if cores == 3 else 3     # the caller's count: none of the settings below
    X, Y = data(n_samples=200, n_features=64)
    X_large, Y_large = data(n_samples=64, n_features=784)
    # (layer sizes, n_threads, the count inside fit and predict). A batch (and
    # a predicted block) of 64 rows through 64-256-10 is about one million
    # multiply-adds, so None picks one thread; through 784-256-10, 13 million,
    # so None leaves BLAS as it was.
    cases = [([64, 256, 10], 1, 1), ([64, 256, 10], 2, 2), ([64, 256, 10], None, 1),
             ([64, 256, 10], -1, cores), ([784, 256, 10], None, outer),
             ([784, 256, 10], 2, 2)]
    params = {}
    with blas_set_to(outer):
        for layer_sizes, n_threads, inside in cases:
            small = layer_sizes[0] == 64
            net = MLP(layer_sizes, seed=5, backend=backend, n_threads=n_threads)
            during_fit, during_predict = [], []
            forward = net._kernels.forward

            def spy(*args):
                during_predict.append(blas_thread_counts())
                return forward(*args)

            net.fit(*((X, Y) if small else (X_large, Y_large)), epochs=2, batch_size=64,
                    learning_rate=0.1,
                    callback=lambda epoch, history: during_fit.append(blas_thread_counts()))
            case = dict(layer_sizes=layer_sizes, n_threads=n_threads)
            assert during_fit == [[inside]] * 2, case
            assert blas_thread_counts() == [outer], case
            with monkeypatch.context() as patch:
                patch.setattr(net._kernels, "forward", spy)
                net.predict((X if small else X_large)[:64])
            assert during_predict == [[inside]], case
            assert blas_thread_counts() == [outer], case
            if small:
                params[n_threads] = net.params
    for n_threads in (2, None, -1):
        np.testing.assert_allclose(params[n_threads], params[1], rtol=1e-12, atol=1e-14)
