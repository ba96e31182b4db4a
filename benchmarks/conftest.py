"""Shared fixtures of the benchmark suite (run: pytest benchmarks --benchmark-only).

Every benchmark runs BLAS, numba and XLA on one thread (set here, before
any of them loads), so ratios compare implementations rather than thread
pools; ``torch_one_thread`` does the same for PyTorch.
"""

import os
import sys

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                  "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
# workloads.py, shared with compare.py, sits beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import cymlp  # noqa: E402

BACKENDS = ["cython", "numpy"]


@pytest.fixture(scope="module")
def torch_one_thread():
    """PyTorch on one thread for the module's tests (when it is installed)."""
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param not in cymlp.available_backends():
        pytest.skip(f"backend {request.param!r} is not available here")
    return request.param


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return request.param


@pytest.fixture
def make_data():
    """The data maker below, for benchmark functions."""
    return classification_data


def classification_data(n_samples, n_features, n_classes, dtype, seed=0):
    """Random inputs in [0, 1) and one-hot targets."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, n_features)).astype(dtype)
    Y = np.eye(n_classes, dtype=dtype)[rng.integers(0, n_classes, n_samples)]
    return X, Y
