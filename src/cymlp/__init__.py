"""cymlp: multi-layer perceptrons with a compiled Cython core and a NumPy fallback.

>>> import cymlp
>>> X, Y = cymlp.datasets.letters()
>>> net = cymlp.MLP([30, 5, 3], seed=0)
>>> history = net.fit(X, Y, epochs=200, learning_rate=1.0)
"""

import os
from typing import Optional, Union

from . import datasets, optim, schedules
from ._backend import BackendWarning, available_backends
from ._network import MLP, History, TrainingDiverged


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

__version__ = "0.1.0"
__all__ = ["MLP", "History", "TrainingDiverged", "BackendWarning", "available_backends", "load",
           "datasets", "optim", "schedules", "__version__"]
