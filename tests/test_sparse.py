"""Sparse inputs: the same numbers as the dense matrix, without ever densifying it.

The oracle is the dense path on ``X.toarray()`` (itself checked against
PyTorch, scikit-learn and finite differences elsewhere): every result on a
scipy.sparse ``X`` must equal it to rounding.
"""

import time
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import tolerance

import cymlp
from cymlp._sparse import CSRRows, as_csr_rows

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402

from cymlp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

FORMATS = ["csr", "csc", "coo", "csr_array", "lil", "dok"]


def sparse_data(n_samples=120, n_features=40, n_outputs=3, density=0.15, seed=0):
    """A CSR matrix with some empty rows and one-hot targets."""
    rng = np.random.default_rng(seed)
    X = sp.random(n_samples, n_features, density=density, random_state=seed, format="csr",
                  data_rvs=lambda k: rng.normal(size=k))
    X = sp.csr_matrix(X.multiply(rng.random((n_samples, 1)) > 0.1))   # ~10% empty rows
    X.eliminate_zeros()
    Y = np.eye(n_outputs)[rng.integers(0, n_outputs, n_samples)]
    return X, Y


def in_format(X, name):
    if name == "csr_array":
        return sp.csr_array(X)
    return X.asformat(name)


def network(backend, dtype=np.float64, sizes=(40, 9, 3), **options):
    options.setdefault("activation", "tanh")
    options.setdefault("output_activation", "softmax")
    options.setdefault("loss", "cross_entropy")
    return cymlp.MLP(list(sizes), dtype=dtype, seed=3, backend=backend, **options)


@pytest.mark.parametrize("optimizer, batch_size, extra", [
    ("sgd", 1, {}),
    ("sgd", 7, dict(momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("sgd", 1, dict(momentum=0.5)),
    ("adam", 1, {}),
    ("adam", 32, dict(weight_decay=1e-2)),
    ("sgd", 500, {}),
])
def test_fit_equals_dense(backend, dtype, optimizer, batch_size, extra):
    X, Y = sparse_data()
    sparse_net, dense_net = network(backend, dtype), network(backend, dtype)
    options = dict(epochs=3, batch_size=batch_size, optimizer=optimizer, learning_rate=0.05,
                   validation_split=0.2, **extra)
    history = sparse_net.fit(X, Y, **options)
    reference = dense_net.fit(X.toarray(), Y, **options)
    rtol = tolerance(dtype)
    np.testing.assert_allclose(sparse_net.params, dense_net.params, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(history.loss, reference.loss, rtol=rtol)
    np.testing.assert_allclose(history.val_loss, reference.val_loss, rtol=rtol)
    assert history.accuracy == pytest.approx(reference.accuracy, rel=rtol)
    assert sparse_net.params.dtype == dtype


@pytest.mark.parametrize("form", FORMATS)
def test_every_format_predicts_as_dense(backend, form):
    X, Y = sparse_data()
    net = network(backend)
    net.fit(X, Y, epochs=2, batch_size=4, learning_rate=0.1)
    dense = X.toarray()
    converted = in_format(X, form)
    np.testing.assert_allclose(net.predict(converted), net.predict(dense), rtol=1e-12,
                               atol=1e-15)
    assert net.loss(converted, Y) == pytest.approx(net.loss(dense, Y), rel=1e-12)
    assert net.accuracy(converted, Y) == net.accuracy(dense, Y)
    np.testing.assert_array_equal(net.classify(converted), net.classify(dense))


def test_loss_and_grad_equals_dense(backend, dtype):
    # Enough rows for several blocks of loss_and_grad, some of weight 0.
    X, Y = sparse_data(n_samples=3000, n_features=300, density=0.02)
    net = network(backend, dtype, sizes=(300, 200, 3))
    weights = np.random.default_rng(1).random(X.shape[0])
    weights[::7] = 0
    for sample_weight in (None, weights):
        loss, grad = net.loss_and_grad(X, Y, sample_weight=sample_weight)
        reference_loss, reference_grad = net.loss_and_grad(X.toarray(), Y,
                                                           sample_weight=sample_weight)
        rtol = tolerance(dtype)
        assert loss == pytest.approx(reference_loss, rel=rtol)
        np.testing.assert_allclose(grad, reference_grad, rtol=rtol * 10,
                                   atol=rtol * np.abs(reference_grad).max())


def test_lbfgs_and_early_stopping_equal_dense(backend):
    X, Y = sparse_data(n_samples=200)
    weights = np.random.default_rng(2).random(X.shape[0])
    for options in (dict(optimizer="lbfgs", epochs=15),
                    dict(optimizer="adam", epochs=12, batch_size=8, learning_rate=0.05,
                         early_stopping=True, patience=3)):
        sparse_net, dense_net = network(backend), network(backend)
        history = sparse_net.fit(X, Y, sample_weight=weights, validation_split=0.25,
                                 **options)
        reference = dense_net.fit(X.toarray(), Y, sample_weight=weights,
                                  validation_split=0.25, **options)
        np.testing.assert_allclose(sparse_net.params, dense_net.params, rtol=1e-8,
                                   atol=1e-10)
        assert history.best_epoch == reference.best_epoch
        assert history.epochs == reference.epochs


def test_partial_fit_and_validation_data_sparse(backend):
    X, Y = sparse_data()
    sparse_net, dense_net = network(backend), network(backend)
    for _ in range(2):
        sparse_net.partial_fit(X, Y, batch_size=3, learning_rate=0.1)
        dense_net.partial_fit(X.toarray(), Y, batch_size=3, learning_rate=0.1)
    history = sparse_net.fit(X[:80], Y[:80], epochs=2, validation_data=(X[80:].tocsc(), Y[80:]))
    reference = dense_net.fit(X[:80].toarray(), Y[:80], epochs=2,
                              validation_data=(X[80:].toarray(), Y[80:]))
    np.testing.assert_allclose(sparse_net.params, dense_net.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(history.val_loss, reference.val_loss, rtol=1e-10)


def test_duplicates_and_unsorted_columns_count_as_scipy_does(backend):
    # COO with a column stored twice in a row: scipy sums the two entries.
    rows = np.array([0, 0, 0, 1, 2, 2])
    cols = np.array([5, 1, 5, 3, 0, 7])
    values = np.array([1.0, -2.0, 0.5, 3.0, 1.5, -1.0])
    X = sp.coo_matrix((values, (rows, cols)), shape=(3, 8))
    net = network(backend, sizes=(8, 4, 2))
    np.testing.assert_allclose(net.predict(X), net.predict(X.toarray()), rtol=1e-13)
    # A CSR matrix with its columns out of order within a row, as scipy allows.
    unsorted = sp.csr_matrix((np.array([2.0, 1.0, -1.0]), np.array([6, 2, 4]),
                              np.array([0, 3, 3, 3])), shape=(3, 8))
    assert not unsorted.has_sorted_indices
    np.testing.assert_allclose(net.predict(unsorted), net.predict(unsorted.toarray()),
                               rtol=1e-13)


def test_bad_sparse_inputs_are_named(backend):
    X, Y = sparse_data()
    net = network(backend)
    bad = X.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="X must contain only finite values"):
        net.fit(bad, Y)
    with pytest.raises(ValueError, match="X must have 40 features"):
        net.predict(X[:, :30])
    with pytest.raises(ValueError, match="X must not be empty"):
        net.predict(sp.csr_matrix((0, 40)))
    with pytest.raises(TypeError, match="X must hold real numbers"):
        net.predict(sp.csr_matrix(X.toarray() > 0))
    with pytest.raises(ValueError, match="validation_data\\[0\\] must have 40 features"):
        net.fit(X, Y, validation_data=(X[:, :5], Y))
    huge = X.copy()
    huge.data[0] = 1e300
    with pytest.raises(ValueError, match="too large for float32"):
        network(backend, np.float32).predict(huge)
    # A malformed matrix (row pointers that decrease), built without scipy's checks.
    broken = sp.csr_matrix((3, 40))
    broken.indptr = np.array([0, 2, 1, 2], dtype=np.int32)
    broken.indices = np.array([1, 2], dtype=np.int32)
    broken.data = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="X is a malformed sparse matrix"):
        net.predict(broken)
    with pytest.raises(TypeError, match="Y must be a dense array; got a sparse matrix"):
        net.fit(X, sp.csr_matrix(Y))
    with pytest.raises(TypeError, match="sample_weight must be a dense array"):
        net.fit(X, Y, sample_weight=sp.csr_matrix(np.ones((1, X.shape[0]))))
    # Nothing was trained by the failed fits.
    assert net.history is None or net.history.epochs == 0


def test_kernels_refuse_malformed_csr_rows(backend):
    # The kernels check the structure themselves too (they run without bounds checks).
    from cymlp._backend import resolve_backend
    _, kernels = resolve_backend(backend)
    net = network(backend, sizes=(6, 3, 2))
    out = np.empty((2, 2))
    good = as_csr_rows(sp.csr_matrix(np.eye(2, 6)), "X", np.float64)
    kernels.forward_csr(net.params, net._layout, good.data, good.indices, good.indptr, out, 4)
    np.testing.assert_allclose(out, net.predict(np.eye(2, 6)), rtol=1e-14)
    cases = [
        (good.data, np.array([0, 6], dtype=np.intp), good.indptr),         # column 6 of 6
        (good.data, np.array([0, -1], dtype=np.intp), good.indptr),        # negative column
        (good.data, good.indices, np.array([0, 2, 1], dtype=np.intp)),     # decreasing
        (good.data, good.indices, np.array([1, 1, 2], dtype=np.intp)),     # not from 0
        (good.data[:1], good.indices, good.indptr),                        # data too short
        (good.data, good.indices, np.array([0, 1, 2, 2], dtype=np.intp)),  # rows != out rows
    ]
    for data, indices, indptr in cases:
        with pytest.raises(ValueError):
            kernels.forward_csr(net.params, net._layout, data, indices, indptr, out, 4)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_estimators_equal_dense(backend, solver):
    X, Y = sparse_data(n_samples=150)
    y = Y.argmax(axis=1)
    options = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=15, random_state=0,
                   batch_size=16, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for Estimator, target in ((MLPClassifier, y), (MLPRegressor, Y @ [1.0, -2.0, 0.5])):
            ours = Estimator(**options, early_stopping=solver != "lbfgs").fit(X.tocsc(), target)
            dense = Estimator(**options, early_stopping=solver != "lbfgs").fit(X.toarray(),
                                                                               target)
            for mine, reference in zip(ours.coefs_ + ours.intercepts_,
                                       dense.coefs_ + dense.intercepts_):
                np.testing.assert_allclose(mine, reference, rtol=1e-8, atol=1e-10)
            np.testing.assert_allclose(ours.predict(X), dense.predict(X.toarray()),
                                       rtol=1e-10, atol=1e-12)
            if Estimator is MLPClassifier:
                np.testing.assert_allclose(ours.predict_proba(X.tocoo()),
                                           dense.predict_proba(X.toarray()), rtol=1e-10)
                if solver != "lbfgs":
                    ours.set_params(early_stopping=False).partial_fit(X, y)
                    dense.set_params(early_stopping=False).partial_fit(X.toarray(), y)
                    np.testing.assert_allclose(ours.coefs_[0], dense.coefs_[0], rtol=1e-8,
                                               atol=1e-10)


def test_estimator_on_sparse_equals_sklearn_on_sparse(backend):
    # scikit-learn's MLP reads sparse X too: plain SGD in row order takes the same steps.
    X, Y = sparse_data(n_samples=150)
    y = Y.argmax(axis=1)
    options = dict(hidden_layer_sizes=(8,), solver="sgd", momentum=0.9, shuffle=False,
                   max_iter=10, random_state=0, batch_size=10, learning_rate_init=0.05)
    # (alpha=0: cymlp's L2 term covers the biases too, a documented difference.)
    for weights, alpha in ((None, 0.0), (np.arange(150) % 3, 0.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours = MLPClassifier(**options, alpha=alpha, backend=backend).fit(
                X, y, sample_weight=weights)
            theirs = SkMLPClassifier(**options, alpha=alpha).fit(X, y, sample_weight=weights)
        for mine, reference in zip(ours.coefs_ + ours.intercepts_,
                                   theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)


def test_csr_rows_take_and_convert():
    X, _ = sparse_data()
    rows = as_csr_rows(X.tocsc(), "X", np.float32)
    assert isinstance(rows, CSRRows) and rows.dtype == np.float32
    assert rows.indices.dtype == np.intp and rows.indptr.dtype == np.intp
    picked = np.array([5, 0, 5, 119, 3])
    np.testing.assert_array_equal(rows.take(picked).toarray(),
                                  X.toarray()[picked].astype(np.float32))
    mask = np.arange(X.shape[0]) % 4 == 1
    np.testing.assert_array_equal(rows[mask].toarray(), X.toarray()[mask].astype(np.float32))
    assert rows.nbytes < X.toarray().nbytes / 2


def test_huge_sparse_fit_stays_small(backend):
    # 10^5 x 10^5 at density 1e-4 (10^6 stored values): as a dense float64
    # array it would take 80 GB. Fitting reads the rows in place.
    n = 100_000
    rng = np.random.default_rng(0)
    X = sp.random(n, n, density=1e-4, random_state=rng, format="csr")
    y = rng.integers(0, 2, n)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2, batch_size=2000,
                              random_state=0, backend=backend)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        predictions = model.predict(X[:1000])
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\n{backend}: fit of a {n}x{n} CSR matrix ({X.nnz} stored) in {seconds:.2f} s, "
          f"peak traced memory {peak / 1e6:.0f} MB")
    assert model.n_iter_ == 2 and predictions.shape == (1000,)
    # The parameters are 12.8 MB (the optimizer state twice that, the NumPy
    # backend's temporaries several times), the converted matrix 20 MB.
    assert peak < 400e6
