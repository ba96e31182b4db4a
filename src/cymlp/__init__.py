"""cymlp: multi-layer perceptrons with a compiled Cython core and a NumPy fallback.

>>> import cymlp
>>> X, Y = cymlp.datasets.letters()
>>> net = cymlp.MLP([30, 5, 3], seed=0)
>>> history = net.fit(X, Y, epochs=200, learning_rate=1.0)
"""

import os
from typing import Optional, Union

from ._backend import BackendWarning, available_backends
from ._network import MLP, History, TrainingDiverged

__all__ = ["MLP", "History", "TrainingDiverged", "BackendWarning", "available_backends", "load",
           "datasets", "optim", "schedules", "tutorial", "__version__"]

# Submodules imported on first use (``cymlp.datasets``, ``from cymlp import
# datasets``): the kernels, the letters and their generator cost a script
# only when it uses them. (``optim`` and ``schedules`` come with MLP.)
_SUBMODULES = ("datasets", "optim", "schedules", "tutorial")
# Public submodules that need an optional extra: never in ``__all__`` (a star
# import would fail without the extra), listed by ``dir`` once imported.
_OPTIONAL_SUBMODULES = ("sklearn", "plot", "torch", "dask", "onnx")


def _find_version() -> str:
    """The version of this copy of cymlp, written once: in pyproject.toml.

    An installed cymlp reads it from its package metadata. Run from a source
    tree (``src/cymlp`` beside ``pyproject.toml``, as with ``PYTHONPATH=src``),
    it reads pyproject.toml itself, so that the metadata of another installed
    copy is never mistaken for its own; with neither, it is ``"0+unknown"``.
    """
    import re
    from importlib import metadata
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if Path(__file__).resolve().parent.parent.name == "src" and pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        project = re.search(r"^\[project\]$(.*?)^\[", text, re.MULTILINE | re.DOTALL)
        if project and re.search(r'^name\s*=\s*"cymlp"', project.group(1), re.MULTILINE):
            version = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.MULTILINE)
            if version:
                return version.group(1)
    try:
        return metadata.version(__name__)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def __getattr__(name):
    # The version is looked up on first use: importing cymlp stays cheap.
    if name == "__version__":
        global __version__
        __version__ = _find_version()
        return __version__
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")   # also binds it here
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    # The public API only: not the helpers this module imports (os, typing
    # names) nor the private modules the import system binds here.
    names = set(__all__) | {name for name in globals()
                            if name.startswith("__") and name.endswith("__")}
    names |= {name for name in _OPTIONAL_SUBMODULES if name in globals()}
    return sorted(names)


def load(path: Union[str, "os.PathLike[str]"], backend: Optional[str] = None) -> MLP:
    """Load a network saved with ``MLP.save``.

    Parameters
    ----------
    path : str or path-like
        A ``.npz`` file written by ``MLP.save``.
    backend : {"auto", "cython", "numpy"} or None
        Backend for the loaded network (None: ``CYMLP_BACKEND``, else auto).

    Returns
    -------
    MLP

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The path is not a valid cymlp model file (a directory or other
        non-regular file; damaged, truncated, foreign, of an unsupported
        version, or holding NaN parameters); the message names the path.
        Loading never executes code from the file.
    """
    from ._io import load_network
    return load_network(path, backend=backend)[0]
