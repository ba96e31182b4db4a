"""How many threads BLAS may use while cymlp trains or predicts.

The compiled kernels call BLAS through ``scipy.linalg.cython_blas``, so the
thread pool that matters is the one of SciPy's BLAS. For the small products
of small networks, waking BLAS worker threads costs more than it saves, so
cymlp limits BLAS to one thread there and leaves it alone for large layers.

threadpoolctl is used when installed (it knows every BLAS vendor); without
it, the OpenBLAS that SciPy's wheels bundle is driven directly through its
``*openblas_set_num_threads`` entry point. Where neither works (an unusual
BLAS), the setting is a no-op and BLAS keeps its own default.
"""

import contextlib
import ctypes
import os
import threading

# Multiply-adds per batch in the largest layer below which one thread wins
# (measured on the development machine: a 784x128 product at batch 64,
# 6.4 M multiply-adds, already profits from a second core).
SINGLE_THREAD_BELOW = 1 << 20

_lock = threading.Lock()
_controller = None


class _OpenBLAS:
    """set/get the thread count of SciPy's bundled OpenBLAS via ctypes."""

    def __init__(self):
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library)
        self.set = self.get = None
        for path in self._loaded_libraries():
            library = ctypes.CDLL(path)
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("64_", ""):
                    setter = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
                    getter = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
                    if setter is not None and getter is not None:
                        setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                        self.set, self.get = setter, getter
                        return

    @staticmethod
    def _loaded_libraries():
        import scipy
        scipy_dir = os.path.dirname(os.path.dirname(scipy.__file__))
        try:
            with open("/proc/self/maps") as maps:
                paths = {line.split()[-1] for line in maps if "openblas" in line}
        except OSError:  # not Linux
            paths = set()
        # SciPy's own copy first: that is the one cython_blas calls.
        return sorted(paths, key=lambda path: not path.startswith(scipy_dir))

    def limit(self, n_threads):
        if self.set is None:
            return contextlib.nullcontext()
        return self._limit(n_threads)

    @contextlib.contextmanager
    def _limit(self, n_threads):
        previous = self.get()
        self.set(n_threads)
        try:
            yield
        finally:
            self.set(previous)


class _ThreadpoolController:
    def __init__(self):
        from threadpoolctl import threadpool_limits
        self.threadpool_limits = threadpool_limits

    def limit(self, n_threads):
        return self.threadpool_limits(limits=n_threads, user_api="blas")


def _get_controller():
    global _controller
    with _lock:
        if _controller is None:
            try:
                _controller = _ThreadpoolController()
            except ImportError:
                _controller = _OpenBLAS()
        return _controller


def blas_threads(n_threads):
    """A context manager that lets BLAS use ``n_threads`` threads (None: unchanged)."""
    if n_threads is None:
        return contextlib.nullcontext()
    return _get_controller().limit(n_threads)


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
