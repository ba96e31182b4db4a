"""The speed suite: cymlp against its peers (numba, JAX, PyTorch, scikit-learn, NumPy), one thread.

Groups are workloads (per dtype), so the implementations sit side by side;
an implementation whose library is not installed is skipped, and says so.
``python benchmarks/compare.py`` prints the same comparison as one table,
and ``test_peer_agreement.py`` checks that the peers compute cymlp's weights.
"""

import numpy as np
import pytest
import workloads

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("implementation", list(workloads.IMPLEMENTATIONS))
@pytest.mark.parametrize("workload", list(workloads.TRAINING) + list(workloads.INFERENCE))
def test_speed(benchmark, workload, implementation, dtype):
    entry = workloads.runner(workload, implementation, dtype)
    if entry is None:
        pytest.skip(f"{implementation} does not run {workload}")
    if entry.run is None:
        pytest.skip(entry.note)
    benchmark.group = f"{workload} {np.dtype(dtype).name}"
    benchmark.extra_info["samples"] = entry.n_samples
    if entry.note:
        benchmark.extra_info["note"] = entry.note
    benchmark.name = implementation
    benchmark(entry.run)
