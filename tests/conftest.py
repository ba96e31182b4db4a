"""Shared fixtures: every behaviour test runs on every available backend."""

import os

import numpy as np
import pytest

import cymlp

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
           "binary" (0/1 entries) or "probability" (rows summing to 1).
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
