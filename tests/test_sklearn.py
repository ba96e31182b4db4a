"""cymlp.sklearn: scikit-learn's estimator checks, its tools, and scikit-learn's own MLP.

Every test that trains runs on every backend of the ``backend`` fixture.
"""

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_digits,
    load_iris,
    make_blobs,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import cymlp  # noqa: E402
from cymlp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

quiet_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

# As tests/conftest.py (test modules cannot import it): CYMLP_BACKEND=cython or
# numpy restricts the run to that backend, so a comparison of the two skips.
_CHOSEN = os.environ.get("CYMLP_BACKEND", "auto").lower()
BACKENDS = [_CHOSEN] if _CHOSEN in ("cython", "numpy") else cymlp.available_backends()
needs_both = pytest.mark.skipif(
    not {"cython", "numpy"} <= set(BACKENDS),
    reason="compares the compiled backend with the NumPy backend; needs both selected "
           "(CYMLP_BACKEND unset or 'auto', and the compiled extension available)")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def parameters(estimator):
    """Weights then biases of a fitted estimator (ours or scikit-learn's)."""
    return estimator.coefs_ + estimator.intercepts_


# ---------------------------------------------------------------- import rules

def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_importing_cymlp_does_not_import_sklearn():
    result = run_python("import sys, cymlp; print('sklearn' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_cymlp_sklearn_without_sklearn_says_how_to_install():
    # A None entry in sys.modules makes "import sklearn" fail as if it were missing.
    result = run_python(
        "import sys; sys.modules['sklearn'] = None\n"
        "try:\n"
        "    import cymlp.sklearn\n"
        "except ImportError as error:\n"
        "    print(error)\n")
    assert result.returncode == 0, result.stderr
    assert 'pip install "cymlp[sklearn]"' in result.stdout


# ---------------------------------------------------------------- scikit-learn's checks

@quiet_convergence
@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check, backend):
    # Default parameters (they run fast enough); only the backend is set.
    check(clone(estimator).set_params(backend=backend))


# ---------------------------------------------------------------- scikit-learn's tools

@quiet_convergence
def test_pipeline_on_digits(backend):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(),
                          MLPClassifier((64,), max_iter=30, random_state=0, backend=backend))
    model.fit(X_train, y_train)
    assert model[-1].net_.backend == backend
    assert model.score(X_test, y_test) > 0.95


@quiet_convergence
def test_grid_search(iris, backend):
    X, y = iris
    search = GridSearchCV(
        MLPClassifier(max_iter=300, learning_rate_init=0.01, random_state=0, backend=backend),
        {"hidden_layer_sizes": [(5,), (20,)], "alpha": [1e-4, 1.0]}, cv=3)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["hidden_layer_sizes"] in [(5,), (20,)]
    assert search.best_score_ > 0.9
    best = search.best_estimator_
    assert best.coefs_[0].shape[1] == search.best_params_["hidden_layer_sizes"][0]
    assert best.net_.backend == backend


@quiet_convergence
def test_cross_val_score(iris, backend):
    X, y = iris
    scores = cross_val_score(MLPClassifier((10,), learning_rate_init=0.01, random_state=0,
                                           backend=backend), X, y, cv=5)
    assert scores.shape == (5,)
    assert scores.mean() > 0.9


@quiet_convergence
def test_clone_and_set_params(iris, backend):
    X, y = iris
    model = MLPClassifier(alpha=0.5, random_state=1, max_iter=5, backend=backend).fit(X, y)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "net_")
    with pytest.raises(NotFittedError):
        copy.predict(X)
    copy.set_params(hidden_layer_sizes=(5, 3), activation="tanh").fit(X, y)
    assert [w.shape for w in copy.coefs_] == [(4, 5), (5, 3), (3, 3)]
    assert [b.shape for b in copy.intercepts_] == [(5,), (3,), (3,)]
    assert copy.n_layers_ == 4 and copy.n_outputs_ == 3
    assert copy.net_.activations == ("tanh", "tanh", "softmax")


def test_parameters_are_checked_in_fit_not_in_init(iris):
    X, y = iris
    model = MLPClassifier(alpha=-1.0)  # sklearn rule: __init__ stores, fit validates
    assert model.alpha == -1.0
    with pytest.raises(ValueError, match="alpha"):
        model.fit(X, y)


# ---------------------------------------------------------------- behaviour

@quiet_convergence
def test_pickle_round_trip(iris, backend, tmp_path):
    X, y = iris
    model = MLPClassifier((8,), max_iter=20, random_state=0, backend=backend).fit(X, y)
    copy = pickle.loads(pickle.dumps(model))
    assert np.array_equal(copy.predict_proba(X), model.predict_proba(X))
    assert copy.net_.backend == backend
    # The unpickled coefs_ are views of the unpickled network, and training
    # continues exactly as the original would.
    assert np.shares_memory(copy.coefs_[0], copy.net_.params)
    model.partial_fit(X, y)
    copy.partial_fit(X, y)
    assert np.array_equal(copy.predict_proba(X), model.predict_proba(X))


def test_string_labels(backend):
    X, y = make_blobs(n_samples=150, centers=3, cluster_std=0.5, random_state=0)
    names = np.array(["cat", "dog", "bird"])[y]
    model = MLPClassifier((10,), learning_rate_init=0.01, random_state=0,
                          backend=backend).fit(X, names)
    assert model.classes_.tolist() == ["bird", "cat", "dog"]
    predicted = model.predict(X)
    assert predicted.dtype.kind in "UO"
    assert set(predicted) <= {"bird", "cat", "dog"}
    assert np.mean(predicted == names) > 0.95
    assert model.predict_proba(X).shape == (150, 3)


def test_binary_outputs(backend):
    X, y = make_blobs(n_samples=100, centers=2, random_state=1)
    labels = np.where(y == 1, "yes", "no")
    logistic = MLPClassifier((6,), learning_rate_init=0.01, random_state=0,
                             backend=backend).fit(X, labels)
    assert logistic.out_activation_ == "logistic"
    assert logistic.n_outputs_ == 1 and logistic.net_.loss_name == "bce"
    proba = logistic.predict_proba(X)
    assert proba.shape == (100, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(logistic.predict(X), logistic.classes_[proba.argmax(axis=1)])
    assert logistic.score(X, labels) > 0.95
    softmax = MLPClassifier((6,), learning_rate_init=0.01, random_state=0, loss="cross_entropy",
                            backend=backend).fit(X, labels)
    assert softmax.out_activation_ == "softmax" and softmax.n_outputs_ == 2
    assert softmax.predict_proba(X).shape == (100, 2)
    assert softmax.score(X, labels) > 0.95


@quiet_convergence
def test_predict_log_proba(iris, backend):
    X, y = iris
    model = MLPClassifier((5,), max_iter=20, random_state=0, backend=backend).fit(X, y)
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(model.predict_proba(X)))


def test_partial_fit_with_classes(backend):
    X, y = make_blobs(n_samples=300, centers=3, cluster_std=0.5, random_state=0)
    model = MLPClassifier((10,), learning_rate_init=0.01, random_state=0, backend=backend)
    with pytest.raises(ValueError, match="classes"):
        model.partial_fit(X[:10], y[:10])
    first = y != 2  # the first batch holds classes 0 and 1 only
    model.partial_fit(X[first][:50], y[first][:50], classes=[0, 1, 2])
    assert model.classes_.tolist() == [0, 1, 2]
    assert model.out_activation_ == "softmax"
    assert model.predict_proba(X).shape == (300, 3)
    for start in range(0, 300, 50):
        model.partial_fit(X[start:start + 50], y[start:start + 50])
    for _ in range(30):
        model.partial_fit(X, y)
    assert model.n_iter_ == 1
    assert model.t_ == 50 + 300 + 30 * 300
    assert model.score(X, y) > 0.95
    with pytest.raises(ValueError, match="classes"):
        model.partial_fit(X[:3], [0, 1, 5])


def test_partial_fit_epochs_equal_fit(iris, backend):
    # partial_fit keeps the optimizer state, so n calls equal one fit of n epochs.
    X, y = iris
    options = dict(hidden_layer_sizes=(6,), shuffle=False, random_state=2, backend=backend,
                   learning_rate_init=0.01, n_iter_no_change=np.inf)
    online = MLPClassifier(**options)
    for _ in range(4):
        online.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.warns(ConvergenceWarning):
        batch = MLPClassifier(max_iter=4, **options).fit(X, y)
    for ours, theirs in zip(parameters(online), parameters(batch)):
        np.testing.assert_array_equal(ours, theirs)
    assert online.loss_curve_ == batch.loss_curve_


def test_partial_fit_regressor(backend):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 2))
    y = X @ [1.5, -2.0] + 0.5
    model = MLPRegressor((10,), learning_rate_init=0.01, random_state=0, backend=backend)
    for _ in range(150):
        model.partial_fit(X, y)
    assert len(model.loss_curve_) == 150 and model.n_iter_ == 1
    assert model.loss_curve_[-1] < model.loss_curve_[0] / 10
    assert model.score(X, y) > 0.95


def test_partial_fit_rejects_early_stopping(iris):
    X, y = iris
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


@quiet_convergence
def test_warm_start(iris, backend):
    X, y = iris
    options = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend=backend)
    cold = MLPClassifier(**options).fit(X, y)
    warm = MLPClassifier(warm_start=True, **options).fit(X, y)
    first = [p.copy() for p in parameters(warm)]
    for ours, theirs in zip(first, parameters(cold)):
        np.testing.assert_array_equal(ours, theirs)
    warm.fit(X, y)  # continues from the fitted weights
    assert len(warm.loss_curve_) == 10 and warm.n_iter_ == 5
    assert warm.loss_curve_[-1] < warm.loss_curve_[4]
    assert not np.array_equal(warm.coefs_[0], first[0])
    cold.fit(X, y)  # without warm_start, fit starts again from the same weights
    for ours, theirs in zip(first, parameters(cold)):
        np.testing.assert_array_equal(ours, theirs)
    assert len(cold.loss_curve_) == 5
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        warm.set_params(hidden_layer_sizes=(9,)).fit(X, y)
    with pytest.raises(ValueError, match="warm_start"):
        warm.set_params(hidden_layer_sizes=(8,)).fit(X[y < 2], y[y < 2])


@quiet_convergence
def test_warm_start_switching_early_stopping(iris, backend):
    X, y = iris
    model = MLPClassifier((5,), max_iter=5, warm_start=True, random_state=0, backend=backend)
    model.fit(X, y)
    assert model.validation_scores_ is None and model.best_loss_ is not None
    model.set_params(early_stopping=True).fit(X, y)
    assert len(model.validation_scores_) == model.n_iter_ and model.best_loss_ is None
    assert len(model.loss_curve_) == 5 + model.n_iter_
    model.set_params(early_stopping=False).fit(X, y)
    assert model.validation_scores_ is None and model.best_loss_ == min(model.loss_curve_[-5:])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_feature_names_in_(iris, backend):
    pandas = pytest.importorskip("pandas")
    X, y = iris
    frame = pandas.DataFrame(X, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    model = MLPClassifier((5,), max_iter=5, random_state=0, backend=backend).fit(frame, y)
    assert model.feature_names_in_.tolist() == ["sepal_l", "sepal_w", "petal_l", "petal_w"]
    assert model.n_features_in_ == 4
    expected = model.predict_proba(frame)
    with pytest.warns(UserWarning, match="feature names"):  # fitted with names, given none
        np.testing.assert_array_equal(model.predict_proba(X), expected)
    renamed = frame.rename(columns={"petal_w": "petal_width"})
    with pytest.raises(ValueError, match="feature names"):
        model.predict(renamed)
    from_array = MLPClassifier((5,), max_iter=5, random_state=0, backend=backend).fit(X, y)
    assert not hasattr(from_array, "feature_names_in_")
    np.testing.assert_array_equal(from_array.predict_proba(X), expected)  # same network
    # Labels in a Series, targets in a DataFrame or Series, as scikit-learn takes them.
    labels = pandas.Series(np.array(["a", "b", "c"])[y], name="species")
    named = MLPClassifier((5,), max_iter=5, random_state=0, backend=backend).fit(frame, labels)
    assert named.classes_.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(named.predict_proba(frame), expected)
    targets = pandas.DataFrame({"u": X[:, 0] * X[:, 1], "v": X[:, 2]})
    regressor = MLPRegressor((5,), max_iter=5, random_state=0, backend=backend)
    regressor.fit(frame, targets)
    assert regressor.feature_names_in_.tolist() == frame.columns.tolist()
    plain = MLPRegressor((5,), max_iter=5, random_state=0, backend=backend).fit(
        X, targets.to_numpy())
    np.testing.assert_array_equal(regressor.predict(frame), plain.predict(X))
    single = MLPRegressor((5,), max_iter=5, random_state=0, backend=backend).fit(
        frame, targets["u"])
    assert single.predict(frame).shape == (150,)


def _parity_cases():
    """(Estimator, X, y, extra options) for the backend parity tests."""
    X, y = make_blobs(n_samples=120, centers=3, random_state=3)
    X_reg, Y_reg = make_regression(n_samples=120, n_features=4, n_targets=2, random_state=3)
    return [
        (MLPClassifier, X, y, dict(early_stopping=True)),
        (MLPClassifier, X, y == 1, dict(solver="sgd", learning_rate_init=0.05)),
        (MLPRegressor, X_reg, Y_reg / 100, dict(batch_size=32)),
    ]


def _fit_parity_case(Estimator, X, y, extra, backend):
    options = dict(hidden_layer_sizes=(16, 8), max_iter=40, random_state=7,
                   dtype=np.float64, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Estimator(backend=backend, **options).fit(X, y)


@needs_both
def test_backend_parity():
    # The same random_state gives the same network on the compiled backend
    # as on the NumPy reference (float64: rtol 1e-10, DESIGN.md).
    for Estimator, X_fit, y_fit, extra in _parity_cases():
        compiled = _fit_parity_case(Estimator, X_fit, y_fit, extra, "cython")
        reference = _fit_parity_case(Estimator, X_fit, y_fit, extra, "numpy")
        assert compiled.net_.backend == "cython" and reference.net_.backend == "numpy"
        # Both trained (a Trainer that never steps would agree with itself).
        assert reference.loss_curve_[-1] < reference.loss_curve_[0]
        method = "predict_proba" if Estimator is MLPClassifier else "predict"
        np.testing.assert_allclose(getattr(compiled, method)(X_fit),
                                   getattr(reference, method)(X_fit), rtol=1e-10, atol=1e-12)
        for mine, theirs in zip(parameters(compiled), parameters(reference)):
            np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(compiled.loss_curve_, reference.loss_curve_, rtol=1e-10)
        assert compiled.n_iter_ == reference.n_iter_
        if extra.get("early_stopping"):
            np.testing.assert_allclose(compiled.validation_scores_,
                                       reference.validation_scores_, rtol=1e-10)


def test_same_random_state_is_reproducible(backend):
    # On one backend, the same random_state gives the same network bit for bit.
    for Estimator, X_fit, y_fit, extra in _parity_cases():
        first = _fit_parity_case(Estimator, X_fit, y_fit, extra, backend)
        again = _fit_parity_case(Estimator, X_fit, y_fit, extra, backend)
        assert first.net_.backend == again.net_.backend == backend
        for mine, theirs in zip(parameters(first), parameters(again)):
            np.testing.assert_array_equal(mine, theirs)
        assert first.loss_curve_ == again.loss_curve_
        assert first.n_iter_ == again.n_iter_


def test_regression_of_a_simple_function(backend):
    X = np.linspace(-3, 3, 300).reshape(-1, 1)
    y = np.sin(X).ravel()
    model = MLPRegressor((32,), activation="tanh", learning_rate_init=0.01, max_iter=1000,
                         tol=1e-6, random_state=0, backend=backend).fit(X, y)
    prediction = model.predict(X)
    assert prediction.shape == (300,)
    assert np.mean((prediction - y) ** 2) < 0.01
    assert model.out_activation_ == "identity" and model.net_.loss_name == "mse"


@quiet_convergence
def test_multioutput_regression(backend):
    # Three outputs, mini-batches with a smaller last one (100 = 3 * 32 + 4):
    # with SGD, no shuffling and no L2 the network is scikit-learn's.
    X, Y = make_regression(n_samples=100, n_features=5, n_targets=3, random_state=0)
    options = dict(hidden_layer_sizes=(10,), max_iter=10, random_state=0, solver="sgd",
                   shuffle=False, alpha=0.0, batch_size=32, learning_rate_init=0.01)
    model = MLPRegressor(backend=backend, **options).fit(X, Y / 100)
    theirs = SkMLPRegressor(**options).fit(X, Y / 100)
    assert model.predict(X).shape == (100, 3)
    assert model.n_outputs_ == theirs.n_outputs_ == 3
    assert model.n_iter_ == theirs.n_iter_ == 10
    assert [w.shape for w in model.coefs_] == [w.shape for w in theirs.coefs_]
    for mine, reference in zip(parameters(model), parameters(theirs)):
        np.testing.assert_allclose(mine, reference, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.predict(X), theirs.predict(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    assert model.loss_curve_[-1] < model.loss_curve_[0]  # it trained


@quiet_convergence
def test_multilabel(backend):
    X, Y = make_multilabel_classification(n_samples=100, n_classes=4, random_state=0)
    model = MLPClassifier((20,), learning_rate_init=0.01, random_state=0,
                          backend=backend).fit(X, Y)
    assert model.out_activation_ == "logistic" and model.net_.loss_name == "bce"
    assert model.classes_.tolist() == [0, 1, 2, 3]
    assert model.predict(X).shape == (100, 4)
    assert set(np.unique(model.predict(X))) <= {0, 1}
    proba = model.predict_proba(X)
    assert proba.shape == (100, 4) and (proba >= 0).all() and (proba <= 1).all()
    assert np.mean(model.predict(X) == Y) > 0.8


@quiet_convergence
def test_sparse_multilabel_targets_score_as_dense_ones(backend):
    """With early stopping each epoch is scored on the validation rows; a sparse
    indicator matrix of targets gives the same scores as its dense twin."""
    from scipy.sparse import csr_matrix
    from sklearn.metrics import accuracy_score
    X, Y = make_multilabel_classification(n_samples=80, n_classes=3, random_state=1)
    settings = dict(hidden_layer_sizes=(8,), early_stopping=True, max_iter=4,
                    random_state=0, backend=backend)
    dense = MLPClassifier(**settings).fit(X, Y)
    sparse = MLPClassifier(**settings).fit(X, csr_matrix(Y))
    assert sparse.validation_scores_ == dense.validation_scores_
    assert sparse.score(X, Y) == accuracy_score(Y, dense.predict(X))


@quiet_convergence
def test_dtype(iris, backend):
    X, y = iris
    single = MLPClassifier((5,), max_iter=5, random_state=0, backend=backend).fit(
        X.astype(np.float32), y)
    assert single.net_.dtype == np.float32
    assert single.predict_proba(X).dtype == np.float32
    assert single.coefs_[0].dtype == np.float32
    double = MLPClassifier((5,), max_iter=5, random_state=0, dtype=np.float64,
                           backend=backend).fit(X.astype(np.float32), y)
    assert double.predict_proba(X).dtype == np.float64


@quiet_convergence
def test_coefs_are_views_of_the_network(iris):
    X, y = iris
    model = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    assert np.shares_memory(model.coefs_[0], model.net_.params)
    model.coefs_[-1][...] = 0
    model.intercepts_[-1][...] = [0, 0, 1]
    assert (model.predict(X) == 2).all()


@quiet_convergence
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_assigning_coefs_and_intercepts_changes_the_network(Estimator, iris, backend):
    # As with scikit-learn's lists, assigning an item of coefs_ / intercepts_
    # or the whole list changes the model, exactly as writing the same
    # values into the network's weights does; float64 values are converted
    # to a float32 network's dtype.
    X, y = iris
    if Estimator is MLPRegressor:
        y = np.column_stack([X[:, 0] * X[:, 1], X[:, 2]])
    options = dict(hidden_layer_sizes=(5, 4), max_iter=3, random_state=0, backend=backend,
                   dtype=np.float32)
    reference, by_item, by_list = (Estimator(**options).fit(X, y) for _ in range(3))
    rng = np.random.default_rng(1)
    coefs = [rng.normal(size=w.shape) for w in reference.coefs_]
    intercepts = [rng.normal(size=b.shape) for b in reference.intercepts_]
    before = reference.predict(X)
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        reference.net_.weights[layer][...] = W
        reference.net_.biases[layer][...] = b
    by_item.coefs_[0] = coefs[0]
    by_item.coefs_[-2] = coefs[1].tolist()  # any array-like, negative indices too
    by_item.coefs_[2] = coefs[2]
    for layer, b in enumerate(intercepts):
        by_item.intercepts_[layer] = b
    by_list.coefs_ = coefs
    by_list.intercepts_ = tuple(intercepts)
    assert not np.array_equal(reference.predict(X), before)  # the weights did change
    for model in (by_item, by_list):
        np.testing.assert_array_equal(model.predict(X), reference.predict(X))
        for mine, assigned in zip(parameters(model), coefs + intercepts):
            assert mine.dtype == np.float32
            np.testing.assert_array_equal(mine, assigned.astype(np.float32))
        assert all(np.shares_memory(w, model.net_.params) for w in parameters(model))
        # Training continues from the assigned weights.
        model.partial_fit(X, y)
    reference.partial_fit(X, y)
    for model in (by_item, by_list):
        np.testing.assert_array_equal(model.net_.params, reference.net_.params)
    # A pickled coefs_ is a plain list, detached from the network.
    detached = pickle.loads(pickle.dumps(by_list.coefs_))
    assert type(detached) is list and not np.shares_memory(detached[0], by_list.net_.params)
    np.testing.assert_array_equal(detached[0], by_list.coefs_[0])


@quiet_convergence
def test_assigning_coefs_of_the_wrong_shape_is_an_error(iris, backend):
    X, y = iris
    model = MLPClassifier((5,), max_iter=2, random_state=0, backend=backend).fit(X, y)
    unchanged = model.net_.params.copy()
    with pytest.raises(ValueError, match=r"^coefs_\[0\] must have shape \(4, 5\); "
                                         r"got shape \(5, 4\)"):
        model.coefs_[0] = np.zeros((5, 4))
    with pytest.raises(ValueError, match=r"^intercepts_\[1\] must have shape \(3,\); "
                                         r"got shape \(1, 3\)"):
        model.intercepts_[-1] = np.zeros((1, 3))
    # A list is checked whole before anything is written: the first array
    # here is right, the second not, and the network stays as it was.
    with pytest.raises(ValueError, match=r"^coefs_\[1\] must have shape \(5, 3\)"):
        model.coefs_ = [np.ones((4, 5)), np.ones((3, 5))]
    with pytest.raises(ValueError, match="^coefs_ holds 2 arrays, one per layer; 1 given"):
        model.coefs_ = [np.ones((4, 5))]
    with pytest.raises(TypeError, match="^coefs_ takes a list of arrays"):
        model.coefs_ = np.ones((4, 5))
    with pytest.raises(ValueError, match=r"^coefs_\[0\] must contain only finite values"):
        model.coefs_[0] = np.full((4, 5), np.nan)
    with pytest.raises(TypeError, match=r"^intercepts_\[0\] must hold real numbers"):
        model.intercepts_[0] = ["a"] * 5
    with pytest.raises(IndexError):
        model.coefs_[2] = np.ones((5, 3))
    np.testing.assert_array_equal(model.net_.params, unchanged)
    unfitted = MLPClassifier()
    assert not hasattr(unfitted, "coefs_")
    with pytest.raises(NotFittedError):
        unfitted.coefs_ = [np.ones((4, 5)), np.ones((5, 3))]


def test_estimators_hold_the_networks_training_lock(iris, backend):
    # The estimators train under the network's training lock, as MLP.fit
    # does: here the network is in a fit of its own (running the callback),
    # so the estimator may not train it at the same time.
    X, y = iris
    model = MLPClassifier((5,), max_iter=2, random_state=0, backend=backend)
    model.partial_fit(X, y, classes=[0, 1, 2])

    def train_the_estimator_too(epoch, history):
        model.partial_fit(X, y)

    with pytest.raises(RuntimeError, match="fit is already running"):
        model.net_.fit(X, np.eye(3)[y], callback=train_the_estimator_too)
    assert model.t_ == 150  # the estimator did not train
    model.partial_fit(X, y)  # the lock is free again
    assert model.t_ == 300


def test_defaults_are_written_once_and_are_sklearns():
    # One __init__ for the shared parameters (scikit-learn reads them from
    # its signature; the classifier's adds class_weight), with scikit-learn's
    # defaults for every parameter the two share, and every parameter
    # scikit-learn has is accepted.
    assert MLPRegressor.__init__ is cymlp.sklearn._BaseMLP.__init__
    for Ours, Theirs in [(MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)]:
        ours, theirs = Ours().get_params(), Theirs().get_params()
        assert set(theirs) <= set(ours)
        shared = set(theirs) - {"loss"}  # scikit-learn's loss: its name
        assert len(shared) == 23
        assert {name: ours[name] for name in shared} == {name: theirs[name] for name in shared}
    assert set(MLPClassifier().get_params()) - set(MLPRegressor().get_params()) == {
        "class_weight"}


def test_verbose(iris, capsys):
    X, y = iris
    MLPClassifier((5,), max_iter=30, tol=10.0, n_iter_no_change=2, verbose=True).fit(X, y)
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out
    assert "Training loss did not improve more than tol=10.000000 for 2 consecutive epochs" in out


def test_training_that_diverges_raises(backend):
    X = np.random.default_rng(0).normal(size=(50, 3))
    y = 1e4 * X.sum(axis=1)
    model = MLPRegressor((10,), solver="sgd", learning_rate_init=1e6, momentum=0.0,
                         backend=backend)
    with pytest.raises(ValueError, match="non-finite"):
        model.fit(X, y)


# ---------------------------------------------------------------- convergence

def test_convergence_warning_when_max_iter_is_reached(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        model = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3


def test_stops_when_the_loss_stops_improving(iris):
    X, y = iris
    # tol=10: no epoch after the first improves by tol, so fit stops once
    # n_iter_no_change + 1 epochs in a row did not (scikit-learn's ">" rule).
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MLPClassifier((5,), max_iter=100, tol=10.0, n_iter_no_change=3,
                              random_state=0).fit(X, y)
    assert model.n_iter_ == 5
    assert model.best_loss_ == min(model.loss_curve_)
    assert model.validation_scores_ is None


@quiet_convergence
def test_early_stopping_keeps_the_best_epoch(iris, backend):
    X, y = iris
    model = MLPClassifier((5,), early_stopping=True, validation_fraction=0.2,
                          n_iter_no_change=5, max_iter=200, random_state=0,
                          backend=backend).fit(X, y)
    assert model.best_loss_ is None
    assert len(model.validation_scores_) == model.n_iter_ == len(model.loss_curve_)
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.n_iter_ < 200
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPClassifier(early_stopping=True, validation_fraction=0.01).fit(X[::5], y[::5])


# ---------------------------------------------------------------- scikit-learn's MLP

@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "multioutput"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_sgd_equals_sklearn(kind, early_stopping, iris, backend):
    # Same initial weights and split for the same random_state, the gradient
    # on scikit-learn's scale: without shuffling or L2 (cymlp decays biases
    # too), SGD with Nesterov momentum gives scikit-learn's weights, loss
    # curve, stopping epoch and (with early stopping) validation scores.
    X, y = iris
    if kind == "binary":
        y = np.where(y == 1, "b", "a")
    elif kind in ("regression", "multioutput"):
        X, y = make_regression(n_samples=150, n_features=4, n_targets=1 if kind ==
                               "regression" else 3, noise=1.0, random_state=0)
        y = y / 100
    options = dict(hidden_layer_sizes=(7, 5), solver="sgd", shuffle=False, alpha=0.0,
                   random_state=3, max_iter=40, batch_size=30, learning_rate_init=0.01,
                   activation="tanh", early_stopping=early_stopping, n_iter_no_change=4)
    Ours, Theirs = ((MLPClassifier, SkMLPClassifier) if kind in ("binary", "multiclass")
                    else (MLPRegressor, SkMLPRegressor))
    ours, theirs = Ours(backend=backend, **options), Theirs(**options)
    # Then a warm start: a second fit from those weights with a fresh optimizer.
    for warm in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours.fit(X, y)
            theirs.fit(X, y)
        assert ours.n_iter_ == theirs.n_iter_
        assert ours.out_activation_ == theirs.out_activation_
        # scikit-learn's restored "best" weights are the very arrays it goes
        # on training in a warm start, so after one it may not return the
        # best epoch's weights; cymlp does. Compare them in the first fit only.
        if not (warm and early_stopping):
            for mine, reference in zip(parameters(ours), parameters(theirs)):
                np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
        if early_stopping:
            np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
            assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
        else:
            assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-9)
        ours.set_params(warm_start=True)
        theirs.set_params(warm_start=True)


@pytest.mark.parametrize("Ours, Theirs", [(MLPClassifier, SkMLPClassifier),
                                          (MLPRegressor, SkMLPRegressor)])
def test_adam_equals_sklearn(Ours, Theirs, iris, backend):
    # Adam differs from scikit-learn's only in where epsilon enters (after
    # the bias correction of the second moment, as torch.optim.Adam). With
    # beta_2=0 there is no such correction and the updates are the same,
    # even with an epsilon large enough to matter (beta_1=0 keeps that
    # setting stable: each step is lr * g / (|g| + epsilon)).
    X, y = iris
    if Ours is MLPRegressor:
        y = X[:, 0] * X[:, 1]  # one output: cymlp's gradient is twice scikit-learn's
    options = dict(hidden_layer_sizes=(10,), shuffle=False, alpha=0.0, random_state=0,
                   max_iter=30, learning_rate_init=0.01, batch_size=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for extra, rtol in [(dict(beta_1=0.0, beta_2=0.0, epsilon=1e-2), 1e-9), (dict(), 1e-4)]:
            ours = Ours(backend=backend, **options, **extra).fit(X, y)
            theirs = Theirs(**options, **extra).fit(X, y)
            np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
            for mine, reference in zip(parameters(ours), parameters(theirs)):
                np.testing.assert_allclose(mine, reference, rtol=rtol * 10, atol=rtol / 10)


@pytest.mark.parametrize("kind", ["multiclass", "regression", "multioutput", "multilabel"])
def test_alpha_is_sklearns_l2_gradient(kind, backend):
    # One full-batch SGD step with and without alpha: the difference of the
    # two steps is -learning_rate * alpha * params / batch_size, the L2 term
    # of scikit-learn's gradient (applied here to the biases as well), for
    # every loss whatever its scale relative to scikit-learn's.
    X, y = make_blobs(n_samples=40, centers=3, random_state=0)
    Estimator = MLPRegressor if kind in ("regression", "multioutput") else MLPClassifier
    if kind == "regression":
        y = y / 2.0
    elif kind == "multioutput":
        y = np.column_stack([y, -y, y ** 2]) / 4.0
    elif kind == "multilabel":
        y = np.column_stack([y == 0, y == 1, y != 1]).astype(int)
    options = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0.0, max_iter=1,
                   learning_rate_init=0.1, random_state=0, batch_size=40, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = Estimator(alpha=0.0, **options).fit(X, y)
        decayed = Estimator(alpha=2.0, **options).fit(X, y)
        # A negligible step shows the initial parameters (the same for both).
        start = Estimator(alpha=0.0, **dict(options, learning_rate_init=1e-30)).fit(X, y)
    expected = -0.1 * 2.0 * start.net_.params / 40
    np.testing.assert_allclose(decayed.net_.params - plain.net_.params, expected,
                               rtol=1e-8, atol=1e-14)


def test_loss_curve_with_l2_close_to_sklearn(iris, backend):
    # With alpha > 0 the runs part (cymlp decays the biases too, and measures
    # the L2 term once per epoch), but loss_curve_ includes the L2 term on
    # scikit-learn's scale: here it is about a sixth of the loss.
    X, y = iris
    options = dict(hidden_layer_sizes=(10,), solver="sgd", shuffle=False, alpha=0.1,
                   random_state=0, max_iter=20, learning_rate_init=0.05, batch_size=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(backend=backend, **options).fit(X, y)
        theirs = SkMLPClassifier(**options).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=0.02)


def _reference_outputs(coefs, intercepts, X):
    """Pre-activation outputs of a tanh network, in float64 without the kernels."""
    a = np.asarray(X, dtype=np.float64)
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        a = np.tanh(a @ W + b)
    return a @ coefs[-1] + intercepts[-1]


def _sklearn_data_loss(kind, z, t):
    """scikit-learn's loss without the L2 term, from the output pre-activations z."""
    if kind == "multiclass":  # log_loss on softmax outputs
        return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(t)), t]))
    if kind == "multilabel":  # binary_log_loss: summed over labels, mean over samples
        return float(np.sum(t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z)) / len(t))
    return float(0.5 * np.mean((z - t) ** 2))  # squared_loss: half the MSE


@pytest.mark.parametrize("batch_size", [150, 50])
@pytest.mark.parametrize("kind", ["multiclass", "multilabel", "regression"])
def test_loss_curve_is_data_loss_plus_sklearns_l2_term(kind, batch_size, iris, backend):
    # loss_curve_ is scikit-learn's epoch loss: the mean over batches (weighted
    # by their size) of each batch's data loss, measured before its step, plus
    # each batch's 0.5 * alpha * sum(W ** 2) / batch_n (weights only, no
    # biases), cymlp measuring W once, at the end of the epoch (class Notes).
    # The data terms come from an independent float64 forward pass at the
    # parameters before each batch, seen by replaying the batches with
    # partial_fit (which continues the optimizer, so the steps are the same).
    X, y = iris
    n, alpha, epochs = len(X), 1.0, 3
    targets = {"multiclass": y,
               "multilabel": np.column_stack([y == 0, y == 1, y != 1]).astype(int),
               "regression": np.column_stack([X[:, 0] * X[:, 1], X[:, 2] - X[:, 3]])}[kind]
    Estimator = MLPRegressor if kind == "regression" else MLPClassifier
    classes = {} if kind == "regression" else dict(classes=[0, 1, 2])
    options = dict(hidden_layer_sizes=(10,), activation="tanh", solver="sgd", shuffle=False,
                   alpha=alpha, random_state=0, learning_rate_init=0.05,
                   batch_size=batch_size, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = Estimator(max_iter=epochs, **options).fit(X, targets)
        # A negligible step shows the initial parameters.
        start = Estimator(**dict(options, learning_rate_init=1e-30)).partial_fit(
            X, targets, **classes)
    assert fitted.net_.dtype == np.float64
    stepper = Estimator(**options)
    coefs, intercepts = start.coefs_, start.intercepts_
    data_terms, l2_terms = [], []
    for _ in range(epochs):
        data_term, batch_sizes = 0.0, []
        for first in range(0, n, batch_size):
            rows = slice(first, first + batch_size)
            batch_n = len(X[rows])
            z = _reference_outputs(coefs, intercepts, X[rows])
            data_term += _sklearn_data_loss(kind, z, targets[rows]) * batch_n / n
            stepper.partial_fit(X[rows], targets[rows], **classes)
            coefs = [w.copy() for w in stepper.coefs_]
            intercepts = [b.copy() for b in stepper.intercepts_]
            batch_sizes.append(batch_n)
        squares = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in coefs)
        l2_terms.append(sum(0.5 * alpha * squares / batch_n * batch_n / n
                            for batch_n in batch_sizes))
        data_terms.append(data_term)
    # The replay took the very steps of the fit.
    for mine, replayed in zip(parameters(fitted), parameters(stepper)):
        np.testing.assert_allclose(mine, replayed, rtol=1e-12, atol=1e-15)
    loss_curve = np.array(fitted.loss_curve_)
    assert len(loss_curve) == epochs
    assert (np.array(l2_terms) > 0.01 * loss_curve).all()  # the L2 term matters here
    np.testing.assert_allclose(loss_curve, np.add(data_terms, l2_terms), rtol=1e-10)
    np.testing.assert_allclose(loss_curve - data_terms, l2_terms, rtol=1e-9)
    assert fitted.loss_ == loss_curve[-1]


# ---------------------------------------------------------------- bad parameters

@pytest.mark.parametrize("name, value", [
    ("hidden_layer_sizes", (10, 0)),
    ("hidden_layer_sizes", "10"),
    ("activation", "softmax"),
    ("solver", "rmsprop"),
    ("solver", "newton"),
    ("learning_rate", "optimal"),
    ("power_t", -0.5),
    ("max_fun", 0),
    ("restore_best_weights", "yes"),
    ("alpha", -1.0),
    ("batch_size", 0),
    ("batch_size", "all"),
    ("learning_rate_init", 0.0),
    ("max_iter", 0),
    ("max_iter", 2.5),
    ("shuffle", "yes"),
    ("random_state", -1),
    ("random_state", "seed"),
    ("tol", -1e-3),
    ("verbose", -1),
    ("warm_start", None),
    ("momentum", 1.5),
    ("nesterovs_momentum", 1),
    ("early_stopping", "no"),
    ("beta_1", 1.0),
    ("beta_2", -0.1),
    ("epsilon", 0.0),
    ("n_iter_no_change", 0),
    ("loss", "hinge"),
    ("backend", "gpu"),
    ("dtype", np.int32),
])
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_bad_parameters_raise_value_error_naming_them(Estimator, name, value, iris):
    # The message starts with the parameter's name, whatever the check.
    X, y = iris
    with pytest.raises(ValueError, match=f"^{name}"):
        Estimator(**{name: value}).fit(X, y)


def test_bad_validation_fraction_with_early_stopping(iris):
    X, y = iris
    with pytest.raises(ValueError, match="validation_fraction"):
        MLPClassifier(early_stopping=True, validation_fraction=1.0).fit(X, y)


def test_loss_that_cannot_express_the_targets(iris):
    X, y = iris
    with pytest.raises(ValueError, match="loss='bce'"):
        MLPClassifier(loss="bce").fit(X, y)
    multilabel = np.column_stack([y == 0, y == 1]).astype(int)
    with pytest.raises(ValueError, match="loss='cross_entropy'"):
        MLPClassifier(loss="cross_entropy").fit(X, multilabel)
    with pytest.raises(ValueError, match="loss"):
        MLPRegressor(loss="cross_entropy").fit(X, y)


def test_one_class_is_fitted_and_predicted_as_sklearn_does(iris, backend):
    # scikit-learn fits one class (a logistic output trained towards 0) and
    # predicts it; predict_proba has its two columns.
    X, _ = iris
    y = np.full(len(X), "only")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier((5,), max_iter=100, learning_rate_init=0.01, random_state=0,
                             backend=backend).fit(X, y)
        theirs = SkMLPClassifier((5,), max_iter=100, learning_rate_init=0.01,
                                 random_state=0).fit(X, y)
    assert list(ours.classes_) == list(theirs.classes_) == ["only"]
    assert (ours.predict(X) == "only").all()
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    proba, reference = ours.predict_proba(X), theirs.predict_proba(X)
    assert proba.shape == reference.shape == (len(X), 2)
    assert (proba[:, 1] < 0.1).all() and (reference[:, 1] < 0.1).all()
    assert ours.score(X, y) == 1.0


def test_estimators_are_exported():
    assert cymlp.sklearn.MLPClassifier is MLPClassifier
    assert MLPClassifier.__doc__ and "alpha" in MLPClassifier.__doc__
