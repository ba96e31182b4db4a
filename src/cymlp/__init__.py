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

__version__ = "0.1.0"
__all__ = ["MLP", "History", "TrainingDiverged", "BackendWarning", "available_backends", "load",
           "datasets", "optim", "schedules", "__version__"]

# Submodules imported on first use (``cymlp.datasets``, ``from cymlp import
# datasets``): the kernels, the letters and their generator cost a script
# only when it uses them. (``optim`` and ``schedules`` come with MLP.)
_SUBMODULES = ("datasets", "optim", "schedules")


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")   # also binds it here
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


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
        The file is not a valid cymlp model (damaged, truncated, foreign,
        of an unsupported version, or holding NaN parameters); the message
        names the file. Loading never executes code from the file.
    """
    from ._io import load_network
    return load_network(path, backend=backend)[0]
