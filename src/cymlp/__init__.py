"""cymlp: multi-layer perceptrons with a compiled Cython core and a NumPy fallback.

>>> import cymlp
>>> X, Y = cymlp.datasets.letters()
>>> net = cymlp.MLP([30, 5, 3], seed=0)
>>> history = net.fit(X, Y, epochs=200, learning_rate=1.0)
"""

from . import datasets, schedules
from ._backend import BackendWarning, available_backends
from ._network import MLP, History, TrainingDiverged

__version__ = "0.1.0"
__all__ = ["MLP", "History", "TrainingDiverged", "BackendWarning", "available_backends",
           "datasets", "schedules", "__version__"]
