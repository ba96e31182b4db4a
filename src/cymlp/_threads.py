"""How many threads BLAS may use while cymlp trains or predicts.

For the small products of small networks, waking BLAS worker threads costs
more than it saves, so cymlp limits BLAS to one thread there and leaves it
alone for large layers (``threads_for``). The limit is set through
threadpoolctl on every BLAS library loaded in the process (SciPy's, which the
compiled kernels call, and NumPy's, which the NumPy backend calls).

BLAS has one thread count per process, so contexts entered from several
threads share it: one lock guards a list of the active requests. The first
context saves the counts it found, the most recent active request for a
count is what runs, and when the last context leaves, the saved counts come
back, whatever order the threads leave in. A request for no particular count
(None: large products, where BLAS decides) leaves the saved counts as they
are while its thread is the only one with requests active; while several
threads have, it shares them out (two fits in two threads on two cores: one
BLAS thread each, rather than two each on the same two cores). A count that
is already right is not set again (setting costs more than reading), and a
request that leaves the running count as it is (nested in one for the same
count, or leaving while another is the latest) does not read it either.

The libraries are looked up (which loads threadpoolctl and SciPy's BLAS) the
first time a limit is needed. A call whose products are all too small for
BLAS (``reaches_blas``) records its request without looking them up, so
training a small network loads neither; nor does a request for no count
made while no other thread has one active.

threadpoolctl lets only one thread set OpenBLAS's count (the first to set
it, while it lives; ``OpenBLASController.clear_controlling_thread``), and
silently ignores the others: a worker thread's limit would not be set once
the main thread had set one. The lock above already orders every change
cymlp makes, so cymlp lets the controlling thread go around each change
(``_set_num_threads``).
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

# Multiply-adds per product below which no thread count can matter: the
# compiled kernels compute such products in plain loops, never in BLAS
# (``SMALL_GEMM`` in csrc/_kernels.pyx), and BLAS libraries run them on one
# thread whatever their setting (OpenBLAS: below 65536 * 4 for gemm).
NO_BLAS_BELOW = 256


def _find_libraries():
    """The BLAS library controllers of the process (loads SciPy's BLAS and threadpoolctl)."""
    # Load SciPy's BLAS (the compiled kernels' one) so threadpoolctl finds it.
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController
    return [library for library in ThreadpoolController().lib_controllers
            if library.user_api == "blas"]


class _BLASThreads:
    """The BLAS libraries of the process and the active thread-count requests.

    ``libraries`` None: found on first need (scanning them costs ~1 ms, and
    loading threadpoolctl and SciPy's BLAS much more), which a request whose
    products never reach BLAS does not count as: it is recorded, and applied
    if and when something else finds the libraries while it is active.

    Each request is ``[count, thread]``: a count of threads (an int), or
    None for "what BLAS had, shared" (``running``), and the thread it was
    made from.
    """

    def __init__(self, libraries=None):
        self._libraries = libraries
        self.lock = threading.Lock()
        self.requests = []
        self.saved = []
        self.applied = []     # the counts last applied or read (the lock is held to use it)

    @property
    def libraries(self):
        with self.lock:
            return self._found()

    def _found(self):
        # The lock is held. Requests made before the libraries were known
        # take effect now, and the counts found are the ones to restore.
        if self._libraries is None:
            self._libraries = _find_libraries()
            if self.requests:
                self.saved = self.applied = self._counts()
                self._update()
        return self._libraries

    def counts(self):
        with self.lock:
            self._found()
            return self._counts()

    def _counts(self):
        return [library.get_num_threads() for library in self._libraries]

    def running(self):
        """The counts the active requests call for (the lock is held, libraries known).

        The most recent request for a count, whichever thread made it; with
        none, the counts found before the first request, each shared out
        among the threads that have requests active (two fits in two
        threads on two cores: one BLAS thread each, not two).
        """
        if not self.requests:
            return self.saved
        for count, _ in reversed(self.requests):
            if count is not None:
                return [count] * len(self._libraries)
        sharing = len({thread for _, thread in self.requests})
        return [max(1, count // sharing) for count in self.saved]

    def _update(self):
        # The lock is held. Reading a count costs less than setting it, and
        # counts that the requests leave as they were are not even read.
        if self._libraries is None:
            return
        wanted = self.running()
        if wanted != self.applied:
            for library, count in zip(self._libraries, wanted):
                if library.get_num_threads() != count:
                    _set_num_threads(library, count)
            self.applied = list(wanted)

    @contextlib.contextmanager
    def limit(self, n_threads, needed=True):
        thread = threading.get_ident()
        request = [n_threads, thread]   # this context's own entry, removed by identity
        with self.lock:
            # None changes nothing unless another thread has requests active.
            if needed and (n_threads is not None
                           or any(other != thread for _, other in self.requests)):
                self._found()
            if self._libraries is not None and not self.requests:
                self.saved = self.applied = self._counts()
            self.requests.append(request)
            self._update()
        try:
            yield
        finally:
            with self.lock:
                self.requests = [entry for entry in self.requests if entry is not request]
                self._update()


def _set_num_threads(library, count):
    """Set ``library``'s count from whichever thread asks (the caller holds the lock).

    threadpoolctl (3.6 and later) lets only one thread set OpenBLAS's
    process-wide count (pthreads builds): the first one that sets it, for as
    long as it lives, so a limit asked for from a worker thread would
    silently not be set once the main thread had set one. The lock of
    ``_BLASThreads`` already puts every change of cymlp in one order, so
    the controlling thread is let go before setting, and after it, as
    ``threadpool_limits`` does when it leaves.
    """
    release = getattr(type(library), "clear_controlling_thread", None)
    if release is not None:
        release(force=True)
    library.set_num_threads(count)
    if release is not None:
        release(force=True)


_blas = _BLASThreads()


def _get_blas():
    return _blas


def current_counts():
    """Thread counts of the BLAS libraries loaded in the process (for tests)."""
    return _blas.counts()


def blas_threads(n_threads, needed=True):
    """A context manager that lets BLAS use ``n_threads`` threads.

    None: the count BLAS had, unchanged in a single thread; while other
    threads have limits active too, it is shared out among them
    (``_BLASThreads.running``), so that fits in several threads do not run
    more BLAS threads than there are cores.

    ``needed=False`` when no product of the call reaches BLAS
    (``reaches_blas``): then the limit does not load the BLAS libraries to
    apply itself (a small network never needs SciPy's BLAS or threadpoolctl).
    """
    return _blas.limit(n_threads, needed)


def blas_threads_for(layout, rows, n_threads, kernels=None):
    """``blas_threads`` for products of ``rows`` rows through ``layout`` (``threads_for``)."""
    return blas_threads(threads_for(layout, rows, n_threads),
                        reaches_blas(layout, rows, kernels))


def _largest_product(layout, rows):
    """Multiply-adds of the largest product of ``rows`` rows through one layer."""
    return int((layout[:, 0] * layout[:, 1]).max()) * int(rows)


def reaches_blas(layout, rows, kernels=None):
    """Whether a product of ``rows`` rows through ``layout`` is large enough for BLAS.

    With the backend's ``kernels``, also whether they call BLAS for it at all
    (the compiled ones never do for one row, and load it when they will).
    """
    if kernels is not None and not kernels.uses_blas(layout, rows):
        return False
    return _largest_product(layout, rows) >= NO_BLAS_BELOW


def threads_for(layout, rows, n_threads):
    """The BLAS thread count for products of ``rows`` rows through ``layout``.

    ``n_threads`` as the user gave it: None picks one thread for small
    products and leaves BLAS alone otherwise; -1 means every core; a
    positive number is taken as it is.
    """
    if n_threads is None:
        return 1 if _largest_product(layout, rows) < SINGLE_THREAD_BELOW else None
    if n_threads == -1:
        return os.cpu_count() or 1
    return n_threads
