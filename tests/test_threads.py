"""BLAS thread limits: one count per process, restored whatever order contexts leave in."""

import threading

import numpy as np
import pytest

from cymlp import MLP, _threads

threadpoolctl = pytest.importorskip("threadpoolctl")


class FakeLibrary:
    """Stands in for a threadpoolctl library controller and records every set."""

    def __init__(self, count):
        self.count, self.sets = count, []

    def get_num_threads(self):
        return self.count

    def set_num_threads(self, count):
        self.sets.append(count)
        self.count = count


def _hold(blas, n_threads, entered, release):
    with blas.limit(n_threads):
        entered.set()
        assert release.wait(10)


@pytest.mark.parametrize("first_to_leave", [0, 1])
def test_overlapping_contexts_from_two_threads_restore_the_original(first_to_leave):
    # The bug this guards: a small fit (1 thread) overlapping a fit(n_threads=2)
    # in another thread, leaving in the opposite order, left BLAS at 1 for good.
    libraries = [FakeLibrary(3), FakeLibrary(4)]
    blas = _threads._BLASThreads(libraries)
    entered = [threading.Event(), threading.Event()]
    release = [threading.Event(), threading.Event()]
    workers = [threading.Thread(target=_hold, args=(blas, count, entered[i], release[i]))
               for i, count in enumerate((1, 2))]
    workers[0].start()
    assert entered[0].wait(10)
    assert blas.counts() == [1, 1]
    workers[1].start()
    assert entered[1].wait(10)
    assert blas.counts() == [2, 2]                     # the latest request runs
    release[first_to_leave].set()
    workers[first_to_leave].join(10)
    remaining = 1 - first_to_leave
    assert blas.counts() == [(1, 2)[remaining]] * 2
    release[remaining].set()
    workers[remaining].join(10)
    assert blas.counts() == [3, 4]                     # what was there before either


def test_a_count_that_is_already_right_is_not_set_again():
    library = FakeLibrary(1)
    blas = _threads._BLASThreads([library])
    for _ in range(3):
        with blas.limit(1):
            pass
    assert library.sets == []
    with blas.limit(2):
        pass
    assert library.sets == [2, 1]


def test_an_exception_inside_restores_the_count():
    library = FakeLibrary(3)
    blas = _threads._BLASThreads([library])
    with pytest.raises(KeyError), blas.limit(1):
        raise KeyError("inside")
    assert library.count == 3 and blas.requests == []


@pytest.fixture
def three_threads():
    """The real BLAS libraries at 3 threads (restored afterwards), set from this thread."""
    _threads.current_counts()          # loads SciPy's BLAS, so the limit reaches it too
    with threadpoolctl.threadpool_limits(limits=3, user_api="blas"):
        counts = _threads.current_counts()
        assert set(counts) == {3}
        yield counts


def test_counts_are_the_libraries_threadpoolctl_sees(three_threads):
    seen = [info["num_threads"] for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"]
    assert three_threads == seen and len(seen) >= 1


def test_nested_contexts_on_the_real_libraries(three_threads):
    with _threads.blas_threads(1):
        assert set(_threads.current_counts()) == {1}
        with _threads.blas_threads(2):
            assert set(_threads.current_counts()) == {2}
        assert set(_threads.current_counts()) == {1}
    assert _threads.current_counts() == three_threads


def test_fit_applies_n_threads_while_it_runs_and_restores(three_threads, backend, make_data):
    X, Y = make_data(40, 4, 2)
    during = []

    def record(epoch, history):
        during.append(_threads.current_counts())

    MLP([4, 3, 2], seed=0, n_threads=2, backend=backend).fit(X, Y, epochs=2, callback=record)
    assert during == [[2] * len(three_threads)] * 2
    assert _threads.current_counts() == three_threads
    MLP([4, 3, 2], seed=0, backend=backend).fit(X, Y, epochs=1, callback=record)
    assert during[-1] == [1] * len(three_threads)     # small products: one thread
    assert _threads.current_counts() == three_threads


def test_a_failing_fit_restores_the_count(three_threads, backend):
    def stop(epoch, history):
        raise ValueError("stop")

    net = MLP([2, 1], seed=0, n_threads=2, backend=backend)
    with pytest.raises(ValueError, match="^stop$"):
        net.fit(np.zeros((3, 2)), np.zeros((3, 1)), epochs=1, callback=stop)
    assert _threads.current_counts() == three_threads


def test_leaving_removes_the_context_s_own_request():
    # A(1), B(2), C(1) active; C leaves: B's 2 is now the latest request.
    library = FakeLibrary(3)
    blas = _threads._BLASThreads([library])
    a, b, c = blas.limit(1), blas.limit(2), blas.limit(1)
    a.__enter__()
    b.__enter__()
    c.__enter__()
    assert library.count == 1
    c.__exit__(None, None, None)
    assert library.count == 2
    b.__exit__(None, None, None)
    assert library.count == 1
    a.__exit__(None, None, None)
    assert library.count == 3 and blas.requests == []


def _hold_in_thread(blas, n_threads, entered, release):
    thread = threading.Thread(target=_hold, args=(blas, n_threads, entered, release))
    thread.start()
    assert entered.wait(10)
    return thread


def test_requests_for_no_count_from_two_threads_share_the_count():
    # Two large fits (n_threads None) in two threads on a 2-thread BLAS: one
    # BLAS thread each while both run, the count found for the one left.
    library = FakeLibrary(2)
    blas = _threads._BLASThreads([library])
    entered = [threading.Event(), threading.Event()]
    release = [threading.Event(), threading.Event()]
    first = _hold_in_thread(blas, None, entered[0], release[0])
    assert library.sets == []                         # alone: left as it is
    second = _hold_in_thread(blas, None, entered[1], release[1])
    assert library.count == 1
    release[0].set()
    first.join(10)
    assert library.count == 2
    release[1].set()
    second.join(10)
    assert library.sets == [1, 2] and blas.requests == []


def test_a_request_for_a_count_runs_over_one_for_none_in_another_thread():
    library = FakeLibrary(4)
    blas = _threads._BLASThreads([library])
    entered = [threading.Event(), threading.Event()]
    release = [threading.Event(), threading.Event()]
    counted = _hold_in_thread(blas, 1, entered[0], release[0])
    unlimited = _hold_in_thread(blas, None, entered[1], release[1])
    assert library.count == 1
    release[0].set()
    counted.join(10)
    assert library.count == 4                         # the count found, for one thread
    release[1].set()
    unlimited.join(10)
    assert library.sets == [1, 4] and blas.requests == []


def test_nested_request_for_no_count_in_one_thread_keeps_the_outer_count():
    library = FakeLibrary(3)
    blas = _threads._BLASThreads([library])
    with blas.limit(2):
        with blas.limit(None):
            assert library.count == 2
        assert library.count == 2
    assert library.count == 3 and library.sets == [2, 3]


def _in_a_thread(function):
    results, errors = [], []

    def run():
        try:
            results.append(function())
        except BaseException as error:       # noqa: BLE001  (re-raised below)
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]
    return results[0]


def test_a_limit_from_a_worker_thread_takes_effect_on_the_real_libraries(three_threads):
    # threadpoolctl lets one thread at a time set OpenBLAS's count; the main
    # thread has just set it (three_threads), and the worker's limit must
    # still be applied, then the main thread's count restored.
    def limited():
        with _threads.blas_threads(1):
            return [info["num_threads"] for info in threadpoolctl.threadpool_info()
                    if info["user_api"] == "blas"]

    assert set(_in_a_thread(limited)) == {1}
    assert _threads.current_counts() == three_threads
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):   # the main thread again
        assert set(_threads.current_counts()) == {2}
    assert _threads.current_counts() == three_threads


def test_two_fits_in_two_threads_run_one_blas_thread_each_with_the_same_results(
        three_threads, backend, make_data):
    # 784-256-10 at batch 64: products large enough that n_threads=None
    # leaves BLAS alone in one fit; two such fits at once share its count.
    X, Y = make_data(128, 784, 10, kind="onehot")
    serial = []
    for seed in (0, 1):
        net = MLP([784, 256, 10], seed=seed, backend=backend)
        net.fit(X, Y, epochs=2, batch_size=64, learning_rate=0.05)
        serial.append(net.params)
    both_running = threading.Barrier(2, timeout=60)
    during = [[], []]
    networks = [MLP([784, 256, 10], seed=seed, backend=backend) for seed in (0, 1)]

    def fit(index):
        def record(epoch, history):
            if epoch == 1:
                both_running.wait()
                during[index].append(_threads.current_counts())
                both_running.wait()          # neither leaves before both have looked
        networks[index].fit(X, Y, epochs=2, batch_size=64, learning_rate=0.05,
                            callback=record)

    threads = [threading.Thread(target=fit, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert during == [[[1] * len(three_threads)]] * 2        # 3 threads // 2 fits
    assert _threads.current_counts() == three_threads
    for net, alone in zip(networks, serial):
        np.testing.assert_allclose(net.params, alone, rtol=1e-12, atol=1e-14)
