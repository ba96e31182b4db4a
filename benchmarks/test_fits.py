"""scikit-learn-style fits: sklearn's MLPClassifier and cymlp's, 50 epochs of Adam.

The workloads of ``benchmarks/sklearn_fits.py`` (digits, breast cancer,
wine; 64 relu units, batch size 200, every epoch run), one group per data
set so the estimators sit side by side; ``extra_info`` holds the held-out
accuracy of the fit measured.
"""

import pytest
import sklearn_fits

pytest.importorskip("sklearn")

IMPLEMENTATIONS = ["scikit-learn", "cymlp-cython", "cymlp-numpy"]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("dataset", sklearn_fits.DATASETS)
def test_fit(benchmark, dataset, implementation):
    import cymlp

    backend = None
    if implementation.startswith("cymlp-"):
        backend = implementation.split("-", 1)[1]
        if backend not in cymlp.available_backends():
            pytest.skip(f"backend {backend!r} is not available here")
    name = "cymlp" if backend else "scikit-learn"
    factory = sklearn_fits.estimators(backend)[name]
    X_train, X_test, y_train, y_test = sklearn_fits.load(dataset)
    benchmark.group = f"fit, 50 epochs: {dataset}"
    benchmark.extra_info["samples"] = sklearn_fits.EPOCHS * X_train.shape[0]
    model = benchmark(lambda: sklearn_fits.timed_fit(factory, X_train, y_train)[1])
    assert model.n_iter_ == sklearn_fits.EPOCHS
    benchmark.extra_info["accuracy"] = model.score(X_test, y_test)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("dataset", sklearn_fits.DATASETS)
def test_lbfgs_fit(benchmark, dataset, implementation):
    # The workloads of benchmarks/lbfgs_fits.py: solver="lbfgs", side by side.
    import lbfgs_fits
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    import cymlp
    from cymlp.sklearn import MLPClassifier as CymlpMLP

    backend = implementation.split("-", 1)[1] if implementation.startswith("cymlp-") else None
    if backend is not None and backend not in cymlp.available_backends():
        pytest.skip(f"backend {backend!r} is not available here")
    X_train, X_test, y_train, y_test = sklearn_fits.load(dataset)
    factory = ((lambda: CymlpMLP(**lbfgs_fits.SETTINGS, backend=backend)) if backend
               else (lambda: SklearnMLP(**lbfgs_fits.SETTINGS)))
    benchmark.group = f"fit, lbfgs: {dataset}"
    model = benchmark(lambda: sklearn_fits.timed_fit(factory, X_train, y_train)[1])
    benchmark.extra_info["iterations"] = model.n_iter_
    benchmark.extra_info["accuracy"] = model.score(X_test, y_test)
    assert model.score(X_test, y_test) > 0.9


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("workload", ["text", "wide"])
def test_sparse_fit(benchmark, workload, implementation):
    # The workloads of benchmarks/sparse_fits.py on a tenth of the rows: CSR input.
    import sparse_fits

    import cymlp

    name = implementation.replace("cymlp-", "cymlp ")
    if name.startswith("cymlp ") and name.split()[1] not in cymlp.available_backends():
        pytest.skip(f"backend {name.split()[1]!r} is not available here")
    X, y = sparse_fits.load(workload, quick=True)
    benchmark.group = f"fit, sparse: {workload}"
    benchmark.extra_info["stored"] = int(X.nnz)
    model = benchmark(lambda: sparse_fits.timed_fit(name, workload, X, y)[1])
    assert model.n_iter_ == sparse_fits.WORKLOADS[workload].epochs
    benchmark.extra_info["accuracy"] = model.score(X, y)
    assert model.score(X, y) > 0.5
