"""Helpers that several test modules import (tests/conftest.py puts this folder on sys.path)."""

import gc
import types

import numpy as np


def _root(array):
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def owned_arrays(obj, inputs=(), depth=4):
    """The arrays ``obj`` holds that it allocated itself: every ndarray reachable
    from it through ``gc.get_referents`` (its attributes, and the containers and
    objects they hold, ``depth`` levels down) whose memory is not that of one of
    ``inputs``, one entry per underlying buffer."""
    passed = {id(_root(array)) for array in inputs if isinstance(array, np.ndarray)}
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    found, seen, frontier = {}, {id(obj)}, [obj]
    for _ in range(depth):
        reached = []
        for holder in frontier:
            for item in gc.get_referents(holder):
                if id(item) in seen or isinstance(item, skip):
                    continue
                seen.add(id(item))
                if isinstance(item, np.ndarray):
                    if id(_root(item)) not in passed:
                        found[id(_root(item))] = _root(item)
                else:
                    reached.append(item)
        frontier = reached
    return list(found.values())


def _optimizers():
    from cymlp.optim import SGD, Adam
    return {
        "sgd": lambda: SGD(0.1),
        "sgd-weight_decay": lambda: SGD(0.1, weight_decay=0.05),
        "momentum": lambda: SGD(0.05, momentum=0.9),
        "nesterov": lambda: SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
        "adam": lambda: Adam(0.01),
        "adam-weight_decay": lambda: Adam(0.02, betas=(0.8, 0.95), eps=1e-6,
                                          weight_decay=0.1),
    }


# The optimizers the kernel-level tests step with (name: factory), one of each
# kind and option the kernels treat differently.
KERNEL_OPTIMIZERS = _optimizers()
