"""How many threads BLAS may use while cymlp trains or predicts.

For the small products of small networks, waking BLAS worker threads costs
more than it saves, so cymlp limits BLAS to one thread there and leaves it
alone for large layers (``threads_for``). The limit is set through
threadpoolctl on every BLAS library loaded in the process (SciPy's, which the
compiled kernels call, and NumPy's, which the NumPy backend calls).

BLAS has one thread count per process, so contexts entered from several
threads share it: one lock guards a list of the active requests. The first
context saves the counts it found, the most recent active request is what
runs, and when the last context leaves, the saved counts come back, whatever
order the threads leave in. A count that is already right is not set again
(setting costs more than reading).

OpenBLAS 0.3.30 ignores ``openblas_set_num_threads`` called from a thread
other than the main one once the main thread has set a count, so a limit
requested from a worker thread may not take effect there; the bookkeeping
above still restores what was there.
"""

import contextlib
import os
import threading

# Multiply-adds per batch in the largest layer below which one thread wins.
# Measured on the 2-core development machine, relu/softmax training, samples/s
# with 2 BLAS threads over 1: 128-128-10 at batch 64 (1.0 M) 0.74x;
# 256-256-10 at batch 64 (4.2 M) 1.22x; 784-128-10 at batch 64 (6.4 M) 1.19x;
# 784-512-10 at batch 128 (51 M) 1.55x. The switch sits between 1 M and 4 M.
SINGLE_THREAD_BELOW = 1 << 21


class _BLASThreads:
    """The BLAS libraries of the process and the active thread-count requests."""

    def __init__(self, libraries=None):
        if libraries is None:
            # Load SciPy's BLAS (the compiled kernels' one) so threadpoolctl finds it.
            import scipy.linalg.cython_blas  # noqa: F401
            from threadpoolctl import ThreadpoolController
            libraries = [library for library in ThreadpoolController().lib_controllers
                         if library.user_api == "blas"]
        self.libraries = libraries
        self.lock = threading.Lock()
        self.requests = []
        self.saved = []

    def counts(self):
        return [library.get_num_threads() for library in self.libraries]

    def _apply(self, counts):
        for library, count in zip(self.libraries, counts):
            if library.get_num_threads() != count:
                library.set_num_threads(count)

    @contextlib.contextmanager
    def limit(self, n_threads):
        with self.lock:
            if not self.requests:
                self.saved = self.counts()
            request = [n_threads]     # this context's own entry, removed by identity
            self.requests.append(request)
            self._apply([n_threads] * len(self.libraries))
        try:
            yield
        finally:
            with self.lock:
                self.requests = [entry for entry in self.requests if entry is not request]
                if self.requests:
                    self._apply([self.requests[-1][0]] * len(self.libraries))
                else:
                    self._apply(self.saved)


_blas = None
_blas_lock = threading.Lock()


def _get_blas():
    global _blas
    with _blas_lock:
        if _blas is None:
            _blas = _BLASThreads()     # scanning the loaded libraries costs ~1 ms: once
        return _blas


def current_counts():
    """Thread counts of the BLAS libraries loaded in the process (for tests)."""
    return _get_blas().counts()


def blas_threads(n_threads):
    """A context manager that lets BLAS use ``n_threads`` threads (None: unchanged)."""
    if n_threads is None:
        return contextlib.nullcontext()
    return _get_blas().limit(n_threads)


def threads_for(layout, rows, n_threads):
    """The BLAS thread count for products of ``rows`` rows through ``layout``.

    ``n_threads`` as the user gave it: None picks one thread for small
    products and leaves BLAS alone otherwise; -1 means every core; a
    positive number is taken as it is.
    """
    if n_threads is None:
        largest = int((layout[:, 0] * layout[:, 1]).max()) * rows
        return 1 if largest < SINGLE_THREAD_BELOW else None
    if n_threads == -1:
        return os.cpu_count() or 1
    return n_threads
