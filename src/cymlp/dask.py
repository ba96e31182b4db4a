"""Training and prediction on a Dask cluster, block by block.

``fit_incremental`` trains a cymlp estimator on a row-chunked ``dask.array``
that need never fit in memory: one ``partial_fit`` per block, in block
order, each a task on a worker that receives the model of the previous task.
``predict_blocks`` / ``predict_proba_blocks`` predict each block, lazily.
(dask-ml's ``Incremental(..., shuffle_blocks=False)`` and ``ParallelPostFit``
do the same with cymlp's estimators; this needs ``dask.distributed`` only.)

dask is an optional dependency: ``pip install "cymlp[dask]"``.
"""

from __future__ import annotations

import copy
from collections import deque

import numpy as np

try:
    import dask
    import dask.array as da
    from distributed import default_client, wait
except ImportError as error:  # pragma: no cover - exercised by tests/test_dask.py
    raise ImportError(
        "cymlp.dask needs dask and distributed, which are not installed; "
        'install them with: pip install "cymlp[dask]"') from error

__all__ = ["fit_incremental", "predict_blocks", "predict_proba_blocks"]

# Blocks computed ahead of the training task that reads them: enough to keep
# the next block ready while one trains, few enough that the cluster holds a
# bounded number of blocks, whatever the size of the array.
_LOOKAHEAD = 2


def _pair(X, y):
    return X, y


def _partial_fit_block(model, block, classes):
    """``model.partial_fit`` on one block ``(X, y)``, on a copy: a task's input is never changed."""
    X, y = block
    model = copy.deepcopy(model)
    if classes is None:
        return model.partial_fit(X, y)
    return model.partial_fit(X, y, classes=classes)


def fit_incremental(estimator, X, y, classes=None, *, client=None, epochs=1, timeout=None):
    """Train ``estimator`` by ``partial_fit`` over the row blocks of X and y on a cluster.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A cymlp estimator with a stochastic solver ("sgd" or "adam"); a
        fitted one is continued. It is not modified: the result is a copy.
    X : dask.array.Array or ndarray of shape (n_samples, n_features)
        Training data; its row chunks are the blocks (an ndarray is one block).
    y : dask.array.Array or ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Targets, rechunked to the row chunks of X when they differ.
    classes : array-like of shape (n_classes,), default=None
        Every class of y (classifiers): passed to each ``partial_fit``. None
        for a classifier not yet fitted and 1-D y: ``dask.array.unique(y)``,
        one pass over y.
    client : distributed.Client, default=None
        The cluster's client; None: the default (most recent) client.
    epochs : int, default=1
        Passes over the blocks, each in block order.
    timeout : float, default=None
        Seconds to wait for each task; None: no limit.

    Returns
    -------
    estimator : MLPClassifier or MLPRegressor
        The trained copy. With a fixed ``random_state`` (or ``shuffle=False``)
        its weights equal those of the same ``partial_fit`` loop run locally
        over the same blocks in the same order.

    Notes
    -----
    The blocks are computed on the workers, a few ahead of the training
    task that reads them, and released once read: the cluster holds a
    bounded number of blocks at a time, the client none.
    """
    client = default_client() if client is None else client
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1; got {epochs!r}")
    X, y = _rows(X), da.asarray(y)
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape ({X.shape[0]},) or ({X.shape[0]}, n_outputs) "
                         f"to match X; got {y.shape}")
    y = y.rechunk({0: X.chunks[0], 1: -1} if y.ndim == 2 else {0: X.chunks[0]})
    from sklearn.base import is_classifier  # the estimators' own dependency
    if (classes is None and y.ndim == 1 and is_classifier(estimator)
            and not hasattr(estimator, "classes_")):
        classes = client.compute(da.unique(y)).result(timeout=timeout)
    model = client.scatter(estimator)
    in_flight = deque()
    for _ in range(epochs):
        for block in range(X.numblocks[0]):
            # X's and y's block as one future: they may share ancestors (y
            # computed from X), and two futures of such a graph, released as
            # the chain moves on, trip dask.distributed's scheduler (2026.8:
            # "assert ts.priority" and a hung fit).
            rows = client.compute(dask.delayed(_pair)(X.blocks[block], y.blocks[block]))
            model = client.submit(_partial_fit_block, model, rows, classes, pure=False)
            in_flight.append(model)
            if len(in_flight) > _LOOKAHEAD:
                done = in_flight.popleft()
                wait(done, timeout=timeout)
                if done.status == "error":   # raise it now, not after every block is read
                    done.result()
    return model.result(timeout=timeout)


def predict_blocks(estimator, X):
    """``estimator.predict`` on each row block of X.

    Parameters
    ----------
    estimator : fitted estimator
        It is copied into the tasks.
    X : dask.array.Array of shape (n_samples, n_features)

    Returns
    -------
    y : dask.array.Array of shape (n_samples,) or (n_samples, n_outputs)
        Lazy: computing it gives ``estimator.predict`` of each block, concatenated.
    """
    return _blocked("predict", estimator, X)


def predict_proba_blocks(estimator, X):
    """``estimator.predict_proba`` on each row block of X.

    Parameters
    ----------
    estimator : fitted classifier
    X : dask.array.Array of shape (n_samples, n_features)

    Returns
    -------
    proba : dask.array.Array of shape (n_samples, n_classes)
        Lazy; columns in the order of ``estimator.classes_``.
    """
    return _blocked("predict_proba", estimator, X)


def _blocked(method, estimator, X):
    X = _rows(X)
    # One row of zeros shows the shape and dtype of the result (labels may
    # be strings, outputs one column or several) before any block is read.
    sample = getattr(estimator, method)(np.zeros((1, X.shape[1]), dtype=X.dtype))
    if sample.ndim == 1:
        return X.map_blocks(_apply, estimator, method, drop_axis=1, meta=sample[:0])
    return X.map_blocks(_apply, estimator, method, chunks=(X.chunks[0], sample.shape[1:]),
                        meta=sample[:0])


def _apply(X, estimator, method):
    return getattr(estimator, method)(X)


def _rows(X):
    """X as a 2-D dask array chunked along rows only (each block holds whole rows)."""
    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}")
    return X.rechunk({1: -1})
