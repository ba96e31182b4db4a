"""Every peer of the speed suite computes the weights cymlp computes.

One epoch of each workload, on fewer rows than the speed runs (so that this
fits a CI smoke run), from the same start (``cymlp.MLP(seed=0)``'s
weights), rows in order; the result is compared with cymlp's compiled
backend (its NumPy backend when the extension is not built). Inference
compares the outputs. A peer that is not installed is skipped, with the
reason; so is scikit-learn on the sigmoid/MSE workloads, where its
MLPClassifier trains a softmax/log-loss output instead.

Three measures, each the largest over the parameter arrays:

- ``update``: the difference between the two changes of an array over the
  epoch, relative to the largest change. Weights move by a small fraction
  of their size in one epoch, so a wrong gradient would hide in the
  weights' own digits; in their changes it cannot.
- ``weights``: the difference between the weights after the epoch,
  relative to the array's largest weight.
- ``elementwise``: the largest ``|peer - cymlp| / |cymlp|`` of any one
  parameter (``rtol`` with no ``atol``; a parameter cymlp leaves at 0 must
  be 0).

float64: each at most 1e-10. The peers sum in other orders than cymlp
(BLAS, XLA, loops), so the last bits differ; nothing more should.

float32: ``update`` at most 1e-2, ``weights`` 1e-5, ``elementwise`` 1e-2.
A float32 weight holds 7 digits, and on the sigmoid/MSE workloads its
change over the epoch is 1e-3 to 1e-4 of it, so rounding the weights alone
leaves 1e-4 to 1e-3 of the change uncertain (and of a parameter near 0,
such as a bias that starts there, as much of its value); cymlp also
computes the output delta (and Adam) in double where the peers stay in
float32. A wrong formula (a factor 2, a missing derivative or bias) is off
by the size of the change itself, 100 times the tolerance.

``pytest -s`` prints the differences measured.
"""

import numpy as np
import pytest
import workloads

pytestmark = pytest.mark.usefixtures("torch_one_thread")

PEERS = [name for name in workloads.IMPLEMENTATIONS
         if name not in ("cymlp cython", "numpy gemm only")]
# Rows per workload: enough for many steps, and for a last partial batch of 8
# rows in the mini-batch workloads (200 = 3 x 64 + 8); few on the wide
# per-sample network, whose steps are slow in the slowest peers.
ROWS = {"per-sample 784-128-10": 64}
DEFAULT_ROWS = 200
TOLERANCE = {np.float64: {"update": 1e-10, "weights": 1e-10, "elementwise": 1e-10,
                          "outputs": 1e-10},
             np.float32: {"update": 1e-2, "weights": 1e-5, "elementwise": 1e-2,
                          "outputs": 1e-5}}

MEASURED = {}   # (workload, dtype name, implementation): {measure: value}


def as_array(value):
    """A NumPy copy in float64 of a NumPy, torch or JAX array."""
    if hasattr(value, "detach"):
        value = value.detach()
    return np.asarray(value).astype(np.float64)


def relative(a, b):
    """max |a - b| over max |b|."""
    return float(np.abs(a - b).max() / np.abs(b).max())


def elementwise(a, b):
    """max |a - b| / |b| (infinite where b is 0 and a is not)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(a == b, 0.0, np.abs(a - b) / np.abs(b))
    return float(ratios.max())


@pytest.fixture(scope="module")
def reference():
    """cymlp's result per (workload, dtype), each computed once."""
    implementation = ("cymlp cython" if workloads.runner(
        "per-sample 30-5-3", "cymlp cython", np.float64, 1).run else "cymlp numpy")
    results = {}

    def result(workload, dtype):
        if (workload, dtype) not in results:
            entry = workloads.runner(workload, implementation, dtype, rows(workload))
            results[workload, dtype] = entry.run()
        return results[workload, dtype]
    return result


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if MEASURED:
        print("\nlargest differences from cymlp (relative; see the module docstring)")
        for (workload, dtype, implementation), values in sorted(MEASURED.items()):
            shown = "  ".join(f"{name} {value:.1e}" for name, value in values.items())
            print(f"  {dtype:<8}{workload:<42}{implementation:<16}{shown}")


def rows(workload):
    return ROWS.get(workload, DEFAULT_ROWS)


def run_peer(workload, implementation, dtype):
    entry = workloads.runner(workload, implementation, dtype, rows(workload))
    if entry is None:
        pytest.skip(f"{implementation} does not run {workload}")
    if entry.run is None:
        pytest.skip(entry.note)
    if entry.note:
        pytest.skip(f"{implementation} computes something else here: {entry.note}")
    return entry.run()


@pytest.mark.parametrize("implementation", PEERS)
@pytest.mark.parametrize("workload", list(workloads.TRAINING))
def test_same_weights_after_one_epoch(workload, implementation, dtype, reference):
    result = run_peer(workload, implementation, dtype)
    expected = reference(workload, dtype)
    sizes, _, _, kind = workloads.TRAINING[workload]
    start = workloads.start_params(sizes, kind, dtype)
    assert len(result) == len(expected) == len(start)
    measured = {"update": 0.0, "weights": 0.0, "elementwise": 0.0}
    for layer, (before, after, got) in enumerate(zip(start, expected, result)):
        for name, initial, want, have in zip("Wb", before, after, got):
            want, have = as_array(want), as_array(have)
            assert have.shape == want.shape, f"{name}[{layer}] has shape {have.shape}"
            assert np.all(np.isfinite(have)), f"{name}[{layer}] is not finite"
            for measure, value in (("update", relative(have - initial, want - initial)),
                                   ("weights", relative(have, want)),
                                   ("elementwise", elementwise(have, want))):
                measured[measure] = max(measured[measure], value)
    MEASURED[workload, np.dtype(dtype).name, implementation] = measured
    for measure, value in measured.items():
        assert value <= TOLERANCE[dtype][measure], f"{measure} differs by {value:.2e}"


@pytest.mark.parametrize("implementation", PEERS)
@pytest.mark.parametrize("workload", list(workloads.INFERENCE))
def test_same_outputs(workload, implementation, dtype, reference):
    result = as_array(run_peer(workload, implementation, dtype))
    expected = as_array(reference(workload, dtype))
    assert result.shape == expected.shape
    difference = relative(result, expected)
    MEASURED[workload, np.dtype(dtype).name, implementation] = {"outputs": difference}
    assert difference <= TOLERANCE[dtype]["outputs"], f"the outputs differ by {difference:.2e}"
