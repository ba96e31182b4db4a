"""Choosing between the compiled kernels and the NumPy fallback.

Order of precedence: the ``backend=`` argument, then the ``CYMLP_BACKEND``
environment variable, then ``"auto"``: the compiled backend when it imports,
else NumPy with one warning.
"""

import importlib
import os
import warnings

BACKEND_NAMES = ("cython", "numpy")
_MODULES = {"cython": "cymlp._kernels", "numpy": "cymlp._numpy_kernels"}
_import_errors = {}
_warned_fallback = False


class BackendWarning(RuntimeWarning):
    """The compiled backend is missing and cymlp fell back to NumPy."""


def _load(name):
    """The kernel module of a backend, or None if it cannot be imported."""
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError as error:  # a wheel without the extension, or a broken build
        _import_errors[name] = error
        return None


def available_backends() -> list:
    """Names of the backends that can be used here.

    Returns
    -------
    list of str
        A subset of ``["cython", "numpy"]``, fastest first.
    """
    return [name for name in BACKEND_NAMES if _load(name) is not None]


def resolve_backend(backend=None):
    """The name and kernel module of the backend to use.

    Parameters
    ----------
    backend : {"auto", "cython", "numpy"} or None
        None reads the ``CYMLP_BACKEND`` environment variable (default "auto").

    Returns
    -------
    name : str
    module : module
        Either ``cymlp._kernels`` or ``cymlp._numpy_kernels``.
    """
    global _warned_fallback
    source = "backend"
    if backend is None:
        backend = os.environ.get("CYMLP_BACKEND", "auto") or "auto"
        source = "the CYMLP_BACKEND environment variable"
    if not isinstance(backend, str) or backend.lower() not in ("auto",) + BACKEND_NAMES:
        raise ValueError(
            f"{source} must be one of 'auto', 'cython', 'numpy'; got {backend!r}")
    backend = backend.lower()
    if backend == "auto":
        module = _load("cython")
        if module is not None:
            return "cython", module
        if not _warned_fallback:
            _warned_fallback = True
            warnings.warn(
                "cymlp's compiled backend is not available "
                f"({_import_errors.get('cython')}); using the slower NumPy backend. "
                "Set CYMLP_BACKEND=numpy to silence this warning.",
                BackendWarning, stacklevel=3)
        return "numpy", _load("numpy")
    module = _load(backend)
    if module is None:
        raise ImportError(
            f"cymlp backend {backend!r} is not available: importing "
            f"{_MODULES[backend]} failed ({_import_errors.get(backend)}). The compiled "
            "backend needs a wheel built for this platform, or a C compiler when "
            "installing from source; backend='numpy' works everywhere.")
    return backend, module
