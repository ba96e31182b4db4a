"""The speed suite: cymlp against NumPy, PyTorch and scikit-learn, one thread.

Groups are workloads (per dtype), so the implementations sit side by side;
PyTorch and scikit-learn entries are skipped when those are not installed.
``python benchmarks/compare.py`` prints the same comparison as one table.
"""

import numpy as np
import pytest
import workloads


@pytest.fixture(scope="module", autouse=True)
def torch_one_thread():
    try:
        import torch
    except ImportError:
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("implementation", workloads.IMPLEMENTATIONS)
@pytest.mark.parametrize("workload", list(workloads.TRAINING) + list(workloads.INFERENCE))
def test_speed(benchmark, workload, implementation, dtype):
    entry = workloads.runner(workload, implementation, dtype)
    if entry is None:
        pytest.skip(f"{implementation} is not installed or does not apply here")
    run, n_samples = entry
    benchmark.group = f"{workload} {np.dtype(dtype).name}"
    benchmark.extra_info["samples"] = n_samples
    benchmark.name = implementation
    benchmark(run)
