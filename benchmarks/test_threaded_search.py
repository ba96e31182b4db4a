"""GridSearchCV over MLPClassifier, n_jobs=1 against n_jobs=2 on joblib's threading backend.

The quick searches of ``benchmarks/threaded_search.py`` (digits, iris at
batch size 1, a 20000 x 100 BLAS-bound set), one group per workload and
implementation so that the two n_jobs sit side by side. BLAS runs on one
thread here (``conftest.py``), so n_jobs=1 is a one-core baseline; the
script measures with BLAS as the environment leaves it.
"""

import pytest
import threaded_search

pytest.importorskip("sklearn")
pytest.importorskip("joblib")


@pytest.fixture(scope="module", params=list(threaded_search.WORKLOADS))
def workload(request):
    return request.param, threaded_search.load(request.param)


@pytest.mark.parametrize("n_jobs", [1, 2], ids=["n_jobs=1", "n_jobs=2"])
@pytest.mark.parametrize("implementation", threaded_search.IMPLEMENTATIONS)
def test_grid_search(benchmark, workload, implementation, n_jobs):
    import cymlp

    if implementation.startswith("cymlp "):
        backend = implementation.split()[1]
        if backend not in cymlp.available_backends():
            pytest.skip(f"backend {backend!r} is not available here")
    name, (X, y) = workload
    benchmark.group = f"GridSearchCV threading backend: {name}, {implementation}"
    benchmark.extra_info["fits"] = threaded_search.n_fits(name)
    grid = benchmark.pedantic(threaded_search.search,
                              args=(implementation, name, X, y, n_jobs, True),
                              rounds=3, warmup_rounds=1)
    assert len(grid.cv_results_["mean_test_score"]) * threaded_search.WORKLOADS[name].cv \
        == threaded_search.n_fits(name)
