"""The estimators on a real Dask cluster: two worker processes on this machine.

Training through the cluster must give what the same training gives
locally: the same weights, bit for bit, for ``partial_fit`` over the same
blocks in the same order (dask-ml's ``Incremental`` and ``cymlp.dask``), the
same predictions block by block, and the same grid-search results under
joblib's dask backend. Every wait on the cluster is bounded, so a hung
worker fails a test instead of the session.
"""

import importlib
import sys
import threading
import warnings

import numpy as np
import pytest

import cymlp

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from cymlp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

TIMEOUT = 60  # seconds for any one wait on the cluster


@pytest.fixture(scope="module")
def client():
    """A client of a two-process LocalCluster, shut down after this module."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        client.wait_for_workers(2, timeout=TIMEOUT)
        # Workers are new processes: they must load this very cymlp (the
        # source tree or the installed wheel), or nothing below means much.
        where = client.run(lambda: importlib.import_module("cymlp").__file__)
        assert set(where.values()) == {cymlp.__file__}, where
        yield client
    finally:
        client.close()
        cluster.close()


def bounded(function, *args, **kwargs):
    """``function(*args, **kwargs)``, failing the test if it takes more than TIMEOUT seconds.

    For the calls that wait on the cluster without a timeout of their own
    (dask-ml's ``fit``, scikit-learn's search).
    """
    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), f"{function!r} did not finish in {TIMEOUT} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def blocks_data(n_rows=360, n_features=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    y = np.argmax(X[:, :n_classes] + 0.3 * rng.normal(size=(n_rows, n_classes)), axis=1)
    return X, y


def local_partial_fit(estimator, X, y, row_chunks, epochs=1, **kwargs):
    """The reference: a loop of partial_fit over the numpy blocks, in order."""
    bounds = np.cumsum((0,) + tuple(row_chunks))
    for _ in range(epochs):
        for start, stop in zip(bounds[:-1], bounds[1:]):
            estimator.partial_fit(X[start:stop], y[start:stop], **kwargs)
    return estimator


def assert_same_weights(a, b):
    for left, right in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(left, right)
    assert a.t_ == b.t_


def compute(client, collection):
    return client.compute(collection).result(timeout=TIMEOUT)


def assert_blocked_equal(client, blocked, method, X, row_chunks):
    """A blocked prediction equals the local one on the same blocks, and on X whole to rounding.

    Bit for bit only block by block: the kernels' products may round
    differently for a call of a few rows than for one of many (a last short
    block), by an ulp or so.
    """
    computed = compute(client, blocked)
    bounds = np.cumsum((0,) + tuple(row_chunks))
    by_blocks = np.concatenate([method(X[start:stop])
                                for start, stop in zip(bounds[:-1], bounds[1:])])
    np.testing.assert_array_equal(computed, by_blocks)
    whole = method(X)
    if whole.dtype.kind == "f":
        np.testing.assert_allclose(computed, whole, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_array_equal(computed, whole)


# ----------------------------------------------------------------- dask-ml

def test_dask_ml_incremental_equals_local_partial_fit(client, backend):
    """Incremental over a row-chunked dask array = partial_fit over its blocks, in order."""
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = blocks_data()
    chunks = (100, 100, 100, 60)
    settings = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.1,
                    random_state=0, backend=backend)
    # shuffle_blocks=False: dask-ml's default visits the blocks in a random order.
    model = wrappers.Incremental(MLPClassifier(**settings), shuffle_blocks=False)
    bounded(model.fit, da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=chunks),
            classes=[0, 1, 2])
    local = local_partial_fit(MLPClassifier(**settings), X, y, chunks, classes=[0, 1, 2])
    assert_same_weights(model.estimator_, local)

    X_test = da.from_array(X, chunks=(70, -1))   # a last block of 10 rows
    assert_blocked_equal(client, model.predict(X_test), local.predict, X, X_test.chunks[0])
    assert_blocked_equal(client, model.predict_proba(X_test), local.predict_proba, X,
                         X_test.chunks[0])


def test_dask_ml_parallel_post_fit_predicts_by_blocks(client, backend):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = blocks_data()
    labels = np.array(["ant", "bee", "cat"])[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = wrappers.ParallelPostFit(MLPClassifier((8,), max_iter=20, random_state=0,
                                                       backend=backend)).fit(X, labels)
    X_test = da.from_array(X, chunks=(50, -1))
    assert_blocked_equal(client, model.predict(X_test), model.estimator.predict, X,
                         X_test.chunks[0])
    assert_blocked_equal(client, model.predict_proba(X_test), model.estimator.predict_proba,
                         X, X_test.chunks[0])


# --------------------------------------------------------------- cymlp.dask

@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_fit_incremental_equals_local_partial_fit(client, backend, kind):
    """Two epochs over uneven blocks, float32, rows shuffled within each block by the seed."""
    from cymlp.dask import fit_incremental
    X, y = blocks_data()
    X = X.astype(np.float32)
    chunks = (90, 130, 100, 40)
    settings = dict(hidden_layer_sizes=(6,), learning_rate_init=0.01, batch_size=32,
                    random_state=3, backend=backend)
    if kind == "classifier":
        make, targets, kwargs = MLPClassifier, y, {"classes": [0, 1, 2]}
    else:
        make, targets, kwargs = MLPRegressor, X[:, :2] @ np.array([[1.0, -1.0], [0.5, 2.0]]), {}
    estimator = make(**settings)
    trained = fit_incremental(estimator, da.from_array(X, chunks=(chunks, -1)),
                              da.from_array(targets, chunks=(chunks,) + targets.shape[1:]),
                              client=client, epochs=2, timeout=TIMEOUT, **kwargs)
    assert not hasattr(estimator, "net_")   # the estimator given is left as it was
    local = local_partial_fit(make(**settings), X, targets, chunks, epochs=2, **kwargs)
    assert_same_weights(trained, local)
    assert trained.coefs_[0].dtype == np.float32
    assert trained.loss_curve_ == local.loss_curve_


def test_fit_incremental_finds_the_classes_and_continues_a_fitted_model(client, backend):
    from cymlp.dask import fit_incremental
    X, y = blocks_data()
    labels = np.array(["ant", "bee", "cat"])[y]
    settings = dict(hidden_layer_sizes=(6,), random_state=0, shuffle=False, backend=backend)
    dX, dy = da.from_array(X, chunks=(120, -1)), da.from_array(labels, chunks=120)
    first = fit_incremental(MLPClassifier(**settings), dX, dy, timeout=TIMEOUT)
    np.testing.assert_array_equal(first.classes_, ["ant", "bee", "cat"])
    again = fit_incremental(first, dX, dy, timeout=TIMEOUT)   # the default client
    local = local_partial_fit(MLPClassifier(**settings), X, labels, (120,) * 3, epochs=2,
                              classes=["ant", "bee", "cat"])
    assert_same_weights(again, local)


def test_fit_incremental_on_targets_computed_from_x(client, backend):
    # Data generated on the workers, y computed from X: the blocks of X and y
    # share ancestors in the graph (this once hung dask.distributed 2026.8).
    from cymlp.dask import fit_incremental
    dX = da.random.default_rng(0).normal(size=(3000, 6), chunks=(1000, 6))
    dy = (dX[:, 0] + dX[:, 1] > 0).astype(int)
    settings = dict(hidden_layer_sizes=(6,), random_state=0, backend=backend)
    model = fit_incremental(MLPClassifier(**settings), dX, dy, classes=[0, 1], epochs=2,
                            timeout=TIMEOUT)
    X, y = compute(client, dX), compute(client, dy)
    local = local_partial_fit(MLPClassifier(**settings), X, y, (1000,) * 3, epochs=2,
                              classes=[0, 1])
    assert_same_weights(model, local)


def test_blocked_predictions_equal_local(client, backend):
    from cymlp.dask import predict_blocks, predict_proba_blocks
    X, y = blocks_data()
    labels = np.array(["ant", "bee", "cat"])[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = MLPClassifier((8,), max_iter=20, random_state=0,
                                   backend=backend).fit(X, labels)
        regressor = MLPRegressor((8,), max_iter=20, random_state=0,
                                 backend=backend).fit(X, X[:, :2])
    # Column chunks too: each block must still see whole rows.
    dX = da.from_array(X, chunks=(64, 3))
    rows = dX.chunks[0]
    predicted = predict_blocks(classifier, dX)
    assert predicted.shape == (X.shape[0],) and predicted.dtype == labels.dtype
    assert_blocked_equal(client, predicted, classifier.predict, X, rows)
    proba = predict_proba_blocks(classifier, dX)
    assert proba.shape == (X.shape[0], 3)
    assert_blocked_equal(client, proba, classifier.predict_proba, X, rows)
    outputs = predict_blocks(regressor, dX)
    assert outputs.shape == (X.shape[0], 2)
    assert_blocked_equal(client, outputs, regressor.predict, X, rows)


def test_fit_incremental_checks_its_arguments(client):
    from cymlp.dask import fit_incremental
    X, y = blocks_data(n_rows=20)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        fit_incremental(MLPClassifier(), X, y, epochs=0)
    with pytest.raises(ValueError, match=r"y must have shape \(20,\)"):
        fit_incremental(MLPClassifier(), X, y[:10])
    with pytest.raises(ValueError, match="X must be 2-D"):
        fit_incremental(MLPClassifier(), X.ravel(), y)
    # An error of a task on a worker reaches the caller, as partial_fit's own.
    with pytest.raises(ValueError, match="y has classes"):
        fit_incremental(MLPClassifier(), da.from_array(X, chunks=(5, -1)), y, classes=[0, 1],
                        client=client, timeout=TIMEOUT)


def test_cymlp_dask_without_dask_says_how_to_install_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "cymlp.dask", raising=False)
    monkeypatch.setitem(sys.modules, "distributed", None)   # what a missing package looks like
    with pytest.raises(ImportError, match=r'pip install "cymlp\[dask\]"'):
        importlib.import_module("cymlp.dask")


# ---------------------------------------------------------- hyperparameter search

def test_grid_search_under_the_dask_joblib_backend_equals_local(client, backend):
    """The same search, fits spread over the workers: the same scores and best parameters."""
    import joblib
    from sklearn.model_selection import GridSearchCV
    X, y = blocks_data(n_rows=240)
    grid = {"hidden_layer_sizes": [(4,), (8,)], "alpha": [1e-4, 1e-1]}
    estimator = MLPClassifier(max_iter=15, learning_rate_init=0.01, random_state=0,
                              backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = GridSearchCV(estimator, grid, cv=3).fit(X, y)

        def search_on_the_cluster():
            # joblib's configuration is per thread: set in the one that searches.
            with joblib.parallel_config(backend="dask"):
                return GridSearchCV(estimator, grid, cv=3, n_jobs=-1).fit(X, y)

        with distributed.get_task_stream(client) as tasks:
            remote = bounded(search_on_the_cluster)
    assert tasks.data, "no task ran on the cluster"
    assert remote.best_params_ == local.best_params_
    for key in ("mean_test_score", "std_test_score", "rank_test_score",
                *(f"split{i}_test_score" for i in range(3))):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    assert_same_weights(remote.best_estimator_, local.best_estimator_)
