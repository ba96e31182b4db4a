"""Backend selection and the shared kernel interface."""

import importlib
import inspect
import warnings

import numpy as np
import pytest

import cymlp
from cymlp import MLP, BackendWarning, _backend

KERNEL_FUNCTIONS = ("evaluate", "evaluate_csr", "forward", "forward_csr", "loss_and_grad",
                    "loss_and_grad_csr", "uses_blas")
KERNEL_NAMES = ("Trainer",) + KERNEL_FUNCTIONS
TRAINER_METHODS = ("run", "evaluate")


def _signature_text(obj):
    """The signature of a function or class, as text; for a compiled class, its embedded one."""
    try:
        return str(inspect.signature(obj))
    except ValueError:  # a cdef class: Cython embeds "Name(arguments)" in its docstring
        first_line = obj.__doc__.splitlines()[0]
        assert first_line.startswith(obj.__name__ + "("), first_line
        return first_line[len(obj.__name__):]


@pytest.fixture
def no_env(monkeypatch):
    """Selection tests must not depend on the CYMLP_BACKEND of the test run."""
    monkeypatch.delenv("CYMLP_BACKEND", raising=False)


@pytest.fixture
def cython_missing(monkeypatch, no_env):
    """Pretend the compiled extension failed to import; reset the once-only warning."""
    monkeypatch.setitem(_backend._MODULES, "cython", "cymlp._kernels_not_built_here")
    monkeypatch.setattr(_backend, "_import_errors", {})
    monkeypatch.setattr(_backend, "_warned_fallback", False)


# ---------------------------------------------------------------- the interface

def test_numpy_kernels_export_the_kernel_names():
    module = importlib.import_module("cymlp._numpy_kernels")
    assert sorted(module.__all__) == sorted(KERNEL_NAMES)
    for name in KERNEL_NAMES:
        assert callable(getattr(module, name))


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_signatures_identical(name):
    compiled = pytest.importorskip("cymlp._kernels")
    reference = importlib.import_module("cymlp._numpy_kernels")
    assert _signature_text(getattr(compiled, name)) == _signature_text(getattr(reference, name))


@pytest.mark.parametrize("method", TRAINER_METHODS)
def test_trainer_method_signatures_identical(method):
    compiled = pytest.importorskip("cymlp._kernels")
    reference = importlib.import_module("cymlp._numpy_kernels")
    assert (inspect.signature(getattr(compiled.Trainer, method))
            == inspect.signature(getattr(reference.Trainer, method)))


def test_trainers_have_the_same_public_attributes(make_data):
    compiled = pytest.importorskip("cymlp._kernels")
    reference = importlib.import_module("cymlp._numpy_kernels")
    X, Y = make_data(4, 3, 2)
    net = MLP([3, 2], seed=0)
    trainers = [module.Trainer(net.params.copy(), net._layout, net._loss_code, X, Y, 2,
                               cymlp.optim.SGD(0.1), np.zeros((2, net.n_params)), 5)
                for module in (compiled, reference)]
    for trainer in trainers:
        assert trainer.step == 5 and trainer.batch_size == 2 and trainer.learning_rate == 0.1
        trainer.learning_rate = 0.25
        assert trainer.learning_rate == 0.25


def test_compiled_kernels_export_only_the_kernel_names():
    compiled = pytest.importorskip("cymlp._kernels")
    assert sorted(compiled.__all__) == sorted(KERNEL_NAMES)


def test_the_codes_agree_with_the_compiled_ones():
    """The cpdef enums of csrc/_kernels.pyx repeat cymlp/_codes.py: they must agree."""
    compiled = pytest.importorskip("cymlp._kernels")
    from cymlp import _codes
    for enum in (_codes.Activation, _codes.Loss, _codes.Optimizer):
        theirs = getattr(compiled, enum.__name__)
        assert {member.name: int(member) for member in theirs} == \
            {member.name: int(member) for member in enum}, enum.__name__
    assert compiled.LEAKY_SLOPE == _codes.LEAKY_SLOPE


def test_kernel_functions_have_docstrings():
    modules = [importlib.import_module("cymlp._numpy_kernels")]
    if "cython" in cymlp.available_backends():
        modules.append(importlib.import_module("cymlp._kernels"))
    for module in modules:
        for name in KERNEL_NAMES:
            assert getattr(module, name).__doc__, f"{module.__name__}.{name}"
        assert module.Trainer.run.__doc__, f"{module.__name__}.Trainer.run"


# ---------------------------------------------------------------- available_backends

def test_available_backends_contains_numpy():
    names = cymlp.available_backends()
    assert "numpy" in names
    assert set(names) <= {"cython", "numpy"}
    assert len(names) == len(set(names))
    # Fastest first.
    if "cython" in names:
        assert names.index("cython") < names.index("numpy")


def test_available_backends_without_extension(cython_missing):
    assert cymlp.available_backends() == ["numpy"]


# ---------------------------------------------------------------- selection

def test_backend_argument_selects(backend, no_env):
    net = MLP([2, 1], backend=backend)
    assert net.backend == backend
    expected = {"cython": "cymlp._kernels", "numpy": "cymlp._numpy_kernels"}[backend]
    assert net._kernels.__name__ == expected


def test_backend_argument_is_case_insensitive(backend, no_env):
    assert MLP([2, 1], backend=backend.upper()).backend == backend


def test_environment_variable_selects(backend, monkeypatch):
    monkeypatch.setenv("CYMLP_BACKEND", backend)
    assert MLP([2, 1]).backend == backend


def test_argument_overrides_environment_variable(backend, monkeypatch):
    other = "cython" if backend == "numpy" else "numpy"
    monkeypatch.setenv("CYMLP_BACKEND", other)
    assert MLP([2, 1], backend=backend).backend == backend


@pytest.mark.parametrize("value", [None, "auto", "AUTO"])
def test_auto_prefers_compiled(value, monkeypatch):
    if value is None:
        monkeypatch.delenv("CYMLP_BACKEND", raising=False)
    else:
        monkeypatch.setenv("CYMLP_BACKEND", value)
    expected = "cython" if "cython" in cymlp.available_backends() else "numpy"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendWarning)
        assert MLP([2, 1]).backend == expected
        assert MLP([2, 1], backend="auto").backend == expected


def test_empty_environment_variable_means_auto(monkeypatch):
    monkeypatch.setenv("CYMLP_BACKEND", "")
    expected = "cython" if "cython" in cymlp.available_backends() else "numpy"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendWarning)
        assert MLP([2, 1]).backend == expected


@pytest.mark.parametrize("name", ["torch", "numpy ", "c", "", 3, True])
def test_invalid_backend_argument(name, no_env):
    with pytest.raises(ValueError, match=r"^backend must be one of 'auto', 'cython', 'numpy'"):
        MLP([2, 1], backend=name)


@pytest.mark.parametrize("name", ["torch", "blas", "cpython"])
def test_invalid_environment_variable(name, monkeypatch):
    monkeypatch.setenv("CYMLP_BACKEND", name)
    with pytest.raises(ValueError, match="CYMLP_BACKEND environment variable") as info:
        MLP([2, 1])
    assert repr(name) in str(info.value)


# ---------------------------------------------------------------- missing extension

def test_explicit_missing_backend_raises_import_error(cython_missing):
    with pytest.raises(ImportError, match=r"backend 'cython' is not available") as info:
        MLP([2, 1], backend="cython")
    message = str(info.value)
    # The explanation names the module that failed and the way out.
    assert "cymlp._kernels_not_built_here" in message
    assert "backend='numpy'" in message


def test_missing_backend_from_environment_raises_import_error(cython_missing, monkeypatch):
    monkeypatch.setenv("CYMLP_BACKEND", "cython")
    with pytest.raises(ImportError, match="'cython' is not available"):
        MLP([2, 1])


def test_missing_backend_simulated_through_load(monkeypatch, no_env):
    real_load = _backend._load
    monkeypatch.setattr(_backend, "_load",
                        lambda name: None if name == "cython" else real_load(name))
    monkeypatch.setattr(_backend, "_warned_fallback", False)
    assert cymlp.available_backends() == ["numpy"]
    with pytest.raises(ImportError, match="'cython' is not available"):
        MLP([2, 1], backend="cython")
    with pytest.warns(BackendWarning):
        assert MLP([2, 1]).backend == "numpy"


def test_auto_falls_back_with_exactly_one_warning(cython_missing):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = MLP([2, 1])
        second = MLP([3, 1], backend="auto")
        third = MLP([2, 1], backend="numpy")
    assert (first.backend, second.backend, third.backend) == ("numpy",) * 3
    assert first._kernels is importlib.import_module("cymlp._numpy_kernels")
    backend_warnings = [w for w in caught if issubclass(w.category, BackendWarning)]
    assert len(backend_warnings) == 1
    assert len(caught) == 1
    message = str(backend_warnings[0].message)
    assert "NumPy" in message and "CYMLP_BACKEND=numpy" in message
    # stacklevel points at the code that built the network, not at cymlp.
    assert backend_warnings[0].filename == __file__


def test_backend_warning_is_a_runtime_warning():
    assert issubclass(BackendWarning, RuntimeWarning)
    assert cymlp.BackendWarning is _backend.BackendWarning


def test_explicit_numpy_never_warns(cython_missing):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MLP([2, 1], backend="numpy").backend == "numpy"


def test_fallback_network_trains(cython_missing, make_data):
    X, Y = make_data(6, 2, 1)
    with pytest.warns(BackendWarning):
        net = MLP([2, 3, 1], seed=0)
    reference = MLP([2, 3, 1], seed=0, backend="numpy")
    net.fit(X, Y, epochs=3)
    reference.fit(X, Y, epochs=3)
    np.testing.assert_array_equal(net.params, reference.params)
