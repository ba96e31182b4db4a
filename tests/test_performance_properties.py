"""Properties behind the speed work: no allocation per epoch, thread control,
blocked inference and thread-parallel training give the same numbers.

These assert behaviour (bytes allocated, weights, thread counts), never time.
"""

import contextlib
import gc
import math
import os
import threading
import tracemalloc

import numpy as np
import pytest
from _helpers import owned_arrays

import cymlp
from cymlp import MLP, _params, _threads, _training


def data(n_samples=600, n_features=64, n_outputs=10, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, n_features)).astype(dtype)
    Y = np.eye(n_outputs, dtype=dtype)[rng.integers(0, n_outputs, n_samples)]
    return X, Y


class AllocationMeter:
    """Bytes allocated inside the kernel calls and between them.

    tracemalloc sees the Python objects and the NumPy arrays (NumPy reports
    its data buffers to it), whichever backend computes. The meter cuts the
    traced time at every ``Trainer.run`` and ``evaluate`` call: for each kind
    of interval ("run", "evaluate", and "outside": the training loop, the
    validation bookkeeping, the callback) it keeps the largest excess of the
    peak over the traced memory at the interval's start (``excess``) and the
    largest peak itself (``absolute``: over the traced time's start).
    """

    def __init__(self):
        self.excess = {"run": 0, "evaluate": 0, "outside": 0}
        self.absolute = dict(self.excess)
        self.tracing = False
        self.base = 0

    def start(self):
        gc.collect()        # empties the free lists (a float freed into one stays traced)
        tracemalloc.start()
        self.tracing, self.base = True, 0

    def boundary(self, ended):
        """The interval of kind ``ended`` ends here and the next one begins."""
        if not self.tracing:
            return
        current, peak = tracemalloc.get_traced_memory()
        self.excess[ended] = max(self.excess[ended], peak - self.base)
        self.absolute[ended] = max(self.absolute[ended], peak)
        tracemalloc.reset_peak()
        self.base = current

    def stop(self):
        """Traced bytes still allocated at the end (free lists emptied)."""
        self.boundary("outside")
        self.tracing = False
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return current


# The epoch measured: the first whose chunks are no larger than any before.
MEASURED_EPOCH = 4


def settled_epoch_allocations(net, monkeypatch, X, Y, **options):
    """What epoch ``MEASURED_EPOCH`` of a fit allocates: a dict with the
    ``meter`` (an ``AllocationMeter``), ``current`` (bytes still allocated at
    its end), ``smallest`` (bytes of the smallest buffer the fit allocated:
    the row order handed to ``Trainer.run``, and every array the Trainer
    allocated for itself at construction), ``order`` (the bytes of that row
    order) and ``runs`` (its ``Trainer.run`` calls).

    The backend's ``Trainer`` and ``evaluate`` are wrapped on the kernel
    module the network uses. Chunks are sized by time, and the compiled
    Trainer grows the two copies of the row order it keeps for undoing (one
    per run slot) when a chunk is larger than any before; so that no epoch's
    work depends on the machine's speed, ``CHUNK_SECONDS`` is set so high
    that every call counts as fast: chunks double after each call, the
    copies reach the epoch's length in epochs 2 and 3, and from epoch 4 on
    every buffer of the fit has its final size.
    """
    kernels, meter = net._kernels, AllocationMeter()
    measured = {"buffers": [], "runs": 0}

    class MeteredTrainer(kernels.Trainer):
        def __init__(self, *args):
            super().__init__(*args)
            measured["buffers"] += [array.nbytes for array in owned_arrays(self, args)
                                    if array.nbytes]

        def run(self, order, start, stop):
            meter.boundary("outside")
            try:
                return super().run(order, start, stop)
            finally:
                meter.boundary("run")
                measured["order"] = order.nbytes
                measured["runs"] += meter.tracing

        def evaluate(self, X, Y):
            meter.boundary("outside")
            try:
                return super().evaluate(X, Y)
            finally:
                meter.boundary("evaluate")

    evaluate = kernels.evaluate

    def metered_evaluate(*args):
        meter.boundary("outside")
        try:
            return evaluate(*args)
        finally:
            meter.boundary("evaluate")

    def callback(epoch, history):
        if epoch == MEASURED_EPOCH - 1:
            meter.start()
        elif epoch == MEASURED_EPOCH:
            measured["current"] = meter.stop()

    with monkeypatch.context() as patch:
        patch.setattr(kernels, "Trainer", MeteredTrainer)
        patch.setattr(kernels, "evaluate", metered_evaluate)
        patch.setattr(_training, "CHUNK_SECONDS", math.inf)
        net.fit(X, Y, epochs=MEASURED_EPOCH, callback=callback, **options)
    assert measured["buffers"], "the Trainer allocated no buffer of its own"
    return dict(meter=meter, current=measured["current"], runs=measured["runs"],
                order=measured["order"], smallest=min(measured["buffers"] + [measured["order"]]))


# What the measured epoch may keep: the history's new entries (a few floats).
MAX_KEPT = 2 * 1024


def check_settled_epoch(backend, net, measured):
    """The bounds of the tests below, per backend.

    Both backends: no interval outside the kernel calls (the training loop,
    the validation bookkeeping, the callback) allocates as much as the
    smallest buffer of the fit, so none of those is allocated again there.
    The compiled backend: no run allocates as much as that either, nothing
    in the epoch but ``evaluate`` (see the validation test) reaches the
    gradient's size over the epoch's start, and the epoch keeps only the
    history's entries. The NumPy backend is written like the math and
    allocates freely inside its calls (each step makes new arrays); it keeps
    the snapshot of its last run (a copy of its rows, the parameters and the
    optimizer state: three parameter vectors) for undoing a step, and beyond
    that no more than the compiled one.
    """
    meter, current, smallest = measured["meter"], measured["current"], measured["smallest"]
    gradient = net.n_params * net.dtype(0).itemsize
    assert smallest <= gradient
    report = dict(excess=meter.excess, peak=meter.absolute, current=current,
                  smallest=smallest, gradient=gradient)
    assert meter.excess["outside"] < smallest, report
    if backend == "cython":
        assert meter.excess["run"] < smallest, report
        assert max(meter.absolute["run"], meter.absolute["outside"]) < gradient, report
        assert current < MAX_KEPT, report
    else:
        assert current < MAX_KEPT + 3 * gradient + measured["order"], report
    # The epoch was real work: one kernel call of all its rows.
    assert measured["runs"] == 1, report


@pytest.mark.parametrize("options", [
    dict(batch_size=1),
    dict(batch_size=32),
    dict(batch_size=32, optimizer="sgd", momentum=0.9, weight_decay=1e-4),
    dict(batch_size=16, optimizer="adam", learning_rate=1e-3),
    dict(batch_size=8, shuffle=False),
], ids=["sgd-1", "sgd-32", "momentum-32", "adam-16", "in-order-8"])
def test_a_later_epoch_allocates_no_buffer_of_the_fit(backend, monkeypatch, options):
    """No buffer of the fit is allocated again in a later epoch (the fourth,
    see ``settled_epoch_allocations``), let alone per chunk: neither the
    Trainer's (gradient, workspace, snapshots), nor the row order, nor the
    optimizer state (larger than the gradient). What the epoch does allocate
    (slices, views, result tuples) stays well below the smallest of them;
    see ``check_settled_epoch`` for each backend."""
    X, Y = data()
    net = MLP([64, 64, 10], activation="relu", output_activation="softmax",
              loss="cross_entropy", seed=0, backend=backend)
    measured = settled_epoch_allocations(net, monkeypatch, X, Y,
                                         **{"learning_rate": 0.01, **options})
    check_settled_epoch(backend, net, measured)
    # X alone is 300 KiB, far above the bounds.
    assert X.nbytes > 4 * net.n_params * net.dtype(0).itemsize


def test_a_later_epoch_with_validation_allocates_no_buffer_of_the_fit(backend, monkeypatch):
    """The same with validation data; the validation, measured every epoch,
    allocates at most the activations of one inference block (the rows of a
    block times the elements a row may take, ``INFERENCE_BLOCK_ELEMENTS``
    over the rows of a block that has that many) and keeps nothing; the
    compiled trainer keeps its workspace from the first epoch on (see the
    next test)."""
    X, Y = data(n_features=256)
    net = MLP([256, 32, 10], seed=0, backend=backend)
    measured = settled_epoch_allocations(net, monkeypatch, X[:500], Y[:500], batch_size=10,
                                         validation_data=(X[500:], Y[500:]))
    check_settled_epoch(backend, net, measured)
    row = _params.INFERENCE_BLOCK_ELEMENTS // _params.block_rows(net._layout, 1 << 40)
    block = _params.block_rows(net._layout, 100) * row * net.dtype(0).itemsize
    excess = measured["meter"].excess["evaluate"]
    assert excess < block, dict(excess=excess, block=block)
    if backend == "numpy":
        assert excess > 0, "the NumPy backend's validation was not measured"


def test_validation_workspace_is_not_allocated_again_in_a_later_epoch(monkeypatch):
    """The compiled backend's promise: the validation workspace (for 100 rows
    of 256-32-10, larger than the gradient) is allocated once per fit, by the
    trainer, not once per epoch, so that no interval of a later epoch
    allocates as much as the fit's smallest buffer."""
    if "cython" not in cymlp.available_backends():
        pytest.skip("the compiled backend is not available")
    X, Y = data(n_features=256)
    net = MLP([256, 32, 10], seed=0, backend="cython")
    measured = settled_epoch_allocations(net, monkeypatch, X[:500], Y[:500], batch_size=10,
                                         validation_data=(X[500:], Y[500:]))
    assert measured["meter"].excess["evaluate"] < measured["smallest"], measured


def test_blocked_inference_equals_row_by_row(backend, monkeypatch):
    X, Y = data(n_samples=257, n_features=30, n_outputs=4)
    net = MLP([30, 40, 4], activation="tanh", output_activation="softmax",
              loss="cross_entropy", seed=1, backend=backend)
    whole = net.predict(X)
    # Tiny blocks: many kernel-internal blocks, the last one partial (257 is
    # prime). block_rows divides INFERENCE_BLOCK_ELEMENTS by the elements a
    # row takes; dividing it by the rows it gives a huge input recovers that
    # width, so seven widths make blocks of seven rows (eight at most, for
    # the rounding).
    layout = net._layout
    row = _params.INFERENCE_BLOCK_ELEMENTS // _params.block_rows(layout, 1 << 40)
    monkeypatch.setattr(_params, "INFERENCE_BLOCK_ELEMENTS", 7 * row)
    forward, blocks = net._kernels.forward, []

    def spy(params, layout, X, out, block_rows):
        blocks.append(block_rows)
        return forward(params, layout, X, out, block_rows)

    monkeypatch.setattr(net._kernels, "forward", spy)
    blocked = net.predict(X)
    assert len(blocks) == 1 and 7 <= blocks[0] <= 8, blocks
    rows = np.vstack([net.predict(X[i:i + 1]) for i in range(X.shape[0])])
    assert blocks[1:] == [1] * X.shape[0]
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
    if not _threads._get_blas().libraries:
        pytest.skip("no controllable BLAS in this environment")
    # Each limit differs from the count BLAS had before, so that a limit that
    # is not applied, or not undone, shows.
    for outer, inner in ((3, 1), (1, 2)):
        with blas_set_to(outer):
            counts = _threads.current_counts()
            with _threads.blas_threads(inner):
                assert blas_thread_counts() == [inner]
                assert set(_threads.current_counts()) == {inner}
            assert blas_thread_counts() == [outer]
            assert _threads.current_counts() == counts
            with _threads.blas_threads(None):
                assert blas_thread_counts() == [outer]


def test_threads_for_picks_one_thread_for_small_products():
    small, _ = _params.build_layout([30, 5, 3], [1, 1], True)
    large, _ = _params.build_layout([784, 256, 10], [1, 1], True)
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
    (seen from inside every ``Trainer.run``, from the callback and from inside
    the forward kernel), and with the caller's count again afterwards; the
    results do not depend on it."""
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
            kernels = net._kernels
            during_run, during_fit, during_predict = [], [], []
            forward = kernels.forward

            class ObservedTrainer(kernels.Trainer):
                def run(self, order, start, stop):
                    during_run.append(blas_thread_counts())
                    return super().run(order, start, stop)

            def spy(*args):
                during_predict.append(blas_thread_counts())
                return forward(*args)

            with monkeypatch.context() as patch:
                patch.setattr(kernels, "Trainer", ObservedTrainer)
                net.fit(*((X, Y) if small else (X_large, Y_large)), epochs=2, batch_size=64,
                        learning_rate=0.1,
                        callback=lambda epoch, history: during_fit.append(blas_thread_counts()))
            case = dict(layer_sizes=layer_sizes, n_threads=n_threads)
            assert len(during_run) >= 2 and during_run == [[inside]] * len(during_run), case
            assert during_fit == [[inside]] * 2, case
            assert blas_thread_counts() == [outer], case
            with monkeypatch.context() as patch:
                patch.setattr(kernels, "forward", spy)
                net.predict((X if small else X_large)[:64])
            assert during_predict == [[inside]], case
            assert blas_thread_counts() == [outer], case
            if small:
                params[n_threads] = net.params
    for n_threads in (2, None, -1):
        np.testing.assert_allclose(params[n_threads], params[1], rtol=1e-12, atol=1e-14)
