"""Shared fixtures: every behaviour test runs on every available backend."""

import os
import sys

import numpy as np
import pytest
from scipy.special import logsumexp

import cymlp

# tests/_helpers.py, shared by several test modules, sits beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# CYMLP_BACKEND=numpy (or cython) runs the suite on that backend alone, as a
# user with that setting would; unset or "auto", on every available backend.
_CHOSEN = os.environ.get("CYMLP_BACKEND", "auto").lower()
BACKENDS = [_CHOSEN] if _CHOSEN in ("cython", "numpy") else cymlp.available_backends()
DTYPES = [np.float32, np.float64]


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def backend(request):
    """Name of a backend that works here ("cython" and/or "numpy")."""
    return request.param


@pytest.fixture(params=DTYPES, ids=[np.dtype(d).name for d in DTYPES])
def dtype(request):
    """numpy.float32 or numpy.float64."""
    return request.param


def tolerance(dtype):
    """rtol for comparing results of the same computation done two ways."""
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-10


def make_data(n_samples, n_features, n_outputs, seed=0, kind="regression"):
    """Random float64 inputs and targets.

    kind : "regression" (targets in [0, 1)), "onehot" (one-hot rows),
           "binary" (0/1 entries), "probability" (rows summing to 1) or
           "count" (Poisson counts of mean 1.5).
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    if kind == "regression":
        Y = rng.random((n_samples, n_outputs))
    elif kind == "onehot":
        Y = np.eye(n_outputs)[rng.integers(0, n_outputs, n_samples)]
    elif kind == "binary":
        Y = rng.integers(0, 2, (n_samples, n_outputs)).astype(float)
    elif kind == "probability":
        Y = rng.dirichlet(np.ones(n_outputs), size=n_samples)
    elif kind == "count":
        Y = rng.poisson(1.5, (n_samples, n_outputs)).astype(float)
    else:
        raise ValueError(kind)
    return X, Y


_ACTIVATIONS = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "identity": lambda z: z,
    "softmax": lambda z: (np.exp(z - z.max(axis=1, keepdims=True))
                          / np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)),
    "exp": np.exp,
}


def reference_forward(net, X):
    """Outputs of ``net`` computed in float64 from its weights, without the kernels."""
    a = np.asarray(X, dtype=np.float64)
    for layer, name in enumerate(net.activations):
        z = a @ net.weights[layer].astype(np.float64)
        if net.bias:
            z = z + net.biases[layer].astype(np.float64)
        a = _ACTIVATIONS[name](z)
    return a


# ---- an independent float64 loss, for oracles that must not use the kernels

def reference_unflatten(net, params):
    """``(weights, biases)`` of ``net`` as float64 arrays cut from a flat vector.

    The layout is the documented one, rebuilt here from ``net.layer_sizes``
    alone: layer by layer, the weights of shape ``(n_in, n_out)`` row-major,
    then (with ``net.bias``) the bias of length ``n_out``.
    """
    params = np.asarray(params, dtype=np.float64)
    pairs = list(zip(net.layer_sizes[:-1], net.layer_sizes[1:]))
    n_params = sum(n_in * n_out + (n_out if net.bias else 0) for n_in, n_out in pairs)
    if params.shape != (n_params,):
        raise ValueError(f"params of shape {params.shape} for a layout of {n_params}")
    weights, biases, offset = [], [], 0
    for n_in, n_out in pairs:
        weights.append(params[offset:offset + n_in * n_out].reshape(n_in, n_out))
        offset += n_in * n_out
        if net.bias:
            biases.append(params[offset:offset + n_out])
            offset += n_out
    return weights, biases


def reference_pre_activations(net, X, params=None):
    """``(z, a)`` of every layer in float64, from ``params`` or the net's own weights."""
    if params is None:
        weights = [w.astype(np.float64) for w in net.weights]
        biases = [b.astype(np.float64) for b in net.biases]
    else:
        weights, biases = reference_unflatten(net, params)
    a, layers = np.asarray(X, dtype=np.float64), []
    with np.errstate(over="ignore", under="ignore"):  # exp(-z) -> inf gives sigmoid 0
        for layer, name in enumerate(net.activations):
            z = a @ weights[layer]
            if net.bias:
                z = z + biases[layer]
            a = _ACTIVATIONS[name](z)
            layers.append((z, a))
    return layers


def reference_loss(net, X, Y, params=None, sample_weight=None):
    """Batch-mean loss of ``net`` on (X, Y) in float64, without the kernels.

    ``params`` (a flat vector in the layout of ``net.params``) replaces the
    network's weights, so finite differences can perturb them here. The
    losses are the documented ones (as in PyTorch), each row's loss ``l_i``
    averaged over the rows, or with ``sample_weight`` the weighted mean
    ``sum w_i l_i / sum w_i``:

    - mse: mean over outputs of ``(a - y)**2``;
    - bce: mean over outputs of ``log(1 + exp(z)) - y z`` on the output
      logits z (``torch.nn.BCEWithLogitsLoss``, = BCE on sigmoid(z));
    - cross_entropy: ``sum_k y_k (logsumexp(z) - z_k)`` (= ``-sum y log softmax(z)``);
    - poisson: mean over outputs of ``exp(z) - y z`` on the log-means z
      (``torch.nn.PoissonNLLLoss(log_input=True)``).
    """
    z, a = reference_pre_activations(net, X, params)[-1]
    Y = np.asarray(Y, dtype=np.float64)
    assert Y.shape == a.shape, (Y.shape, a.shape)
    if net.loss_name == "mse":
        losses = np.mean((a - Y) ** 2, axis=1)
    elif net.loss_name == "bce":
        losses = np.mean(np.logaddexp(0.0, z) - Y * z, axis=1)
    elif net.loss_name == "cross_entropy":
        losses = np.sum(Y * (logsumexp(z, axis=1, keepdims=True) - z), axis=1)
    elif net.loss_name == "poisson":
        losses = np.mean(np.exp(z) - Y * z, axis=1)
    else:
        raise ValueError(f"no reference for loss {net.loss_name!r}")
    if sample_weight is None:
        return float(np.mean(losses))
    weights = np.asarray(sample_weight, dtype=np.float64)
    return float(np.sum(weights * losses) / np.sum(weights))


REFERENCE_STEP = 1e-6


def reference_gradient(net, X, Y, indices=None, step=REFERENCE_STEP, sample_weight=None):
    """Central differences in float64 of ``reference_loss`` at ``net.params``.

    Returns an array with one estimate per entry of ``indices`` (default:
    every parameter). ``net.params`` is only read.
    """
    base = net.params.astype(np.float64)
    indices = range(base.shape[0]) if indices is None else indices
    estimate = []
    for i in indices:
        plus, minus = base.copy(), base.copy()
        plus[i] += step
        minus[i] -= step
        # The step actually taken, after rounding of base[i] +- step.
        estimate.append((reference_loss(net, X, Y, plus, sample_weight)
                         - reference_loss(net, X, Y, minus, sample_weight))
                        / (plus[i] - minus[i]))
    return np.array(estimate)


@pytest.fixture
def data():
    """A small regression problem: 12 rows, 4 features, 2 outputs."""
    return make_data(12, 4, 2)


# Test modules are imported with --import-mode=importlib, so they cannot
# ``import conftest``; the helpers reach them as fixtures instead.

@pytest.fixture(name="make_data")
def make_data_fixture():
    """The ``make_data`` helper."""
    return make_data


@pytest.fixture(name="tolerance")
def tolerance_fixture():
    """The ``tolerance`` helper."""
    return tolerance


@pytest.fixture(name="reference_forward")
def reference_forward_fixture():
    """The ``reference_forward`` helper."""
    return reference_forward


@pytest.fixture(name="reference_loss")
def reference_loss_fixture():
    """The ``reference_loss`` helper."""
    return reference_loss


@pytest.fixture(name="reference_gradient")
def reference_gradient_fixture():
    """The ``reference_gradient`` helper."""
    return reference_gradient


@pytest.fixture(name="reference_unflatten")
def reference_unflatten_fixture():
    """The ``reference_unflatten`` helper."""
    return reference_unflatten


@pytest.fixture(name="reference_pre_activations")
def reference_pre_activations_fixture():
    """The ``reference_pre_activations`` helper."""
    return reference_pre_activations


# ---------------------------------------------------------------- required extras
# CYMLP_REQUIRE_EXTRAS=1 (set by .ci/run): the independent oracles must run. A
# missing oracle dependency is then an error, not a skip: the session refuses
# to start, and a test or module that skips for want of a module fails.

ORACLE_MODULES = ("torch", "sklearn", "pandas", "matplotlib", "tqdm", "hypothesis",
                  "threadpoolctl", "dask", "distributed", "dask_ml", "onnx", "onnxruntime",
                  "skl2onnx")
_ORACLE_NAMES = set(ORACLE_MODULES) | {"pytorch", "scikit-learn"}
REQUIRE_EXTRAS = os.environ.get("CYMLP_REQUIRE_EXTRAS", "0") not in ("", "0")


def _skip_for_missing_module(report):
    """The reason, if ``report`` is a skip (not an xfail) naming an oracle module."""
    import re
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)
    if _ORACLE_NAMES.isdisjoint(re.findall(r"[a-z_][a-z0-9_-]*", reason.lower())):
        return None
    return reason


def _as_failure(report, reason):
    report.outcome = "failed"
    report.longrepr = (f"CYMLP_REQUIRE_EXTRAS is set, so this may not skip for want of a "
                       f"module: {reason}")


def pytest_configure(config):
    if not REQUIRE_EXTRAS:
        return
    import importlib.util
    missing = [name for name in ORACLE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(f"CYMLP_REQUIRE_EXTRAS is set but {', '.join(missing)} "
                                f"cannot be imported; install the test extras "
                                f"(pip install 'cymlp[test,sklearn,plot,progress]') and "
                                f"torch")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    reason = _skip_for_missing_module(report) if REQUIRE_EXTRAS else None
    if reason is not None:
        _as_failure(report, reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    reason = _skip_for_missing_module(report) if REQUIRE_EXTRAS else None
    if reason is not None:
        _as_failure(report, reason)
