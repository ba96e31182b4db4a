"""How many threads BLAS may use while cymlp trains or predicts.

The compiled kernels call BLAS through ``scipy.linalg.cython_blas``, so the
thread pool that matters is the one of SciPy's BLAS. For the small products
of small networks, waking BLAS worker threads costs more than it saves, so
cymlp limits BLAS to one thread there and leaves it alone for large layers.

The OpenBLAS copies that SciPy's and NumPy's wheels bundle are driven
directly through their ``*openblas_set_num_threads`` entry points (a few
microseconds per call). With another BLAS, threadpoolctl is used when it is
installed; where neither works, the setting is a no-op and BLAS keeps its
own default.
"""

import contextlib
import ctypes
import os
import threading

# Multiply-adds per batch in the largest layer below which one thread wins.
# Measured on the 2-core development machine, relu/softmax training, samples/s
# with 2 BLAS threads over 1: 128-128-10 at batch 64 (1.0 M) 0.74x;
# 256-256-10 at batch 64 (4.2 M) 1.22x; 784-128-10 at batch 64 (6.4 M) 1.19x;
# 784-512-10 at batch 128 (51 M) 1.55x. The switch sits between 1 M and 4 M.
SINGLE_THREAD_BELOW = 1 << 21

_lock = threading.Lock()
_controller = None


class _OpenBLAS:
    """set/get the thread counts of the OpenBLAS copies SciPy and NumPy bundle.

    SciPy's copy serves the compiled kernels and NumPy's the NumPy backend;
    both are limited together, through their ``*openblas_set_num_threads``.
    """

    def __init__(self):
        import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's copy)
        self.libraries = []  # (setter, getter) pairs
        for path in self._loaded_libraries():
            library = ctypes.CDLL(path)
            for name in ("scipy_openblas", "openblas"):
                for suffix in ("64_", ""):
                    setter = getattr(library, f"{name}_set_num_threads{suffix}", None)
                    getter = getattr(library, f"{name}_get_num_threads{suffix}", None)
                    if setter is not None and getter is not None:
                        setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                        self.libraries.append((setter, getter))
                        break
                else:
                    continue
                break

    @staticmethod
    def _loaded_libraries():
        try:
            with open("/proc/self/maps") as maps:
                return sorted({line.split()[-1] for line in maps if "openblas" in line})
        except OSError:  # not Linux: leave BLAS alone
            return []

    def limit(self, n_threads):
        if not self.libraries:
            return contextlib.nullcontext()
        return self._limit(n_threads)

    @contextlib.contextmanager
    def _limit(self, n_threads):
        previous = [getter() for _, getter in self.libraries]
        for (setter, _), count in zip(self.libraries, previous):
            if count != n_threads:
                setter(n_threads)
        try:
            yield
        finally:
            for (setter, _), count in zip(self.libraries, previous):
                if count != n_threads:
                    setter(count)


class _ThreadpoolController:
    """threadpoolctl's controller, made once (each scan of the libraries costs ~1 ms)."""

    def __init__(self):
        from threadpoolctl import ThreadpoolController
        self.controller = ThreadpoolController()

    def limit(self, n_threads):
        return self.controller.limit(limits=n_threads, user_api="blas")


def _get_controller():
    global _controller
    with _lock:
        if _controller is None:
            # The direct OpenBLAS calls cost microseconds, so they come first;
            # threadpoolctl covers other BLAS vendors.
            _controller = _OpenBLAS()
            if not _controller.libraries:
                try:
                    _controller = _ThreadpoolController()
                except ImportError:
                    pass
        return _controller


def _current_counts():
    """Thread counts of the BLAS libraries cymlp controls (for tests)."""
    controller = _get_controller()
    if isinstance(controller, _OpenBLAS):
        return [getter() for _, getter in controller.libraries]
    from threadpoolctl import threadpool_info
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


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
