"""Fits on sparse inputs: scikit-learn's MLPClassifier and cymlp's, on the same CSR matrix.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/sparse_fits.py \
        [--repeat 3] [--quick]

Workloads (one hidden layer of relu units, Adam, ``batch_size=200``, every
epoch run: ``tol=0``, ``n_iter_no_change`` beyond ``max_iter``):

- ``text``: 20000 x 2000 at density 0.01 (20 stored values a row, like a
  bag of words), 10 classes, 64 hidden units, 5 epochs;
- ``wide``: 20000 x 100000 at density 1e-4 (10 a row), 2 classes, 16 hidden
  units, 3 epochs: as a dense float64 array it would take 16 GB.

Each implementation fits the same CSR matrix; cymlp also fits the dense
array where it fits in memory (``text``), which must give the same weights
(the ``dense`` column: the largest difference of the coefficients). The
table gives the fastest fit of ``--repeat`` (the implementations in
turns), the speed-up over scikit-learn's, and the training accuracy of
each. BLAS runs on one thread. ``--quick`` runs one repeat on a tenth of
the rows (CI's smoke run).

A measurement, not a pass/fail test.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import namedtuple  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

Workload = namedtuple("Workload", "rows features density classes hidden epochs dense")
WORKLOADS = {
    "text": Workload(20000, 2000, 0.01, 10, 64, 5, True),
    "wide": Workload(20000, 100000, 1e-4, 2, 16, 3, False),
}
IMPLEMENTATIONS = ("scikit-learn", "cymlp cython", "cymlp numpy")


def load(name, quick=False):
    """(X as CSR float64, y) of a workload: labels from a sparse linear model, so they are learnable."""
    import scipy.sparse as sp

    workload = WORKLOADS[name]
    rows = workload.rows // 10 if quick else workload.rows
    rng = np.random.default_rng(0)
    X = sp.random(rows, workload.features, density=workload.density, random_state=rng,
                  format="csr", data_rvs=lambda k: rng.exponential(size=k))
    scores = X @ rng.standard_normal((workload.features, workload.classes))
    return X, np.argmax(scores + 0.1 * rng.standard_normal(scores.shape), axis=1)


def estimator(implementation, name):
    workload = WORKLOADS[name]
    settings = dict(hidden_layer_sizes=(workload.hidden,), solver="adam", batch_size=200,
                    max_iter=workload.epochs, tol=0.0, n_iter_no_change=workload.epochs + 1,
                    random_state=0, shuffle=True)
    if implementation == "scikit-learn":
        from sklearn.neural_network import MLPClassifier
        return MLPClassifier(**settings)
    from cymlp.sklearn import MLPClassifier
    return MLPClassifier(**settings, backend=implementation.split()[1])


def timed_fit(implementation, name, X, y):
    """(seconds, fitted estimator)."""
    model = estimator(implementation, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # ConvergenceWarning: every epoch runs on purpose
        started = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - started, model


def compare(name, repeat, quick, implementations):
    """One row per implementation: fastest fit, speed-up, accuracy (and cymlp's dense check)."""
    X, y = load(name, quick)
    best, models = {}, {}
    for _ in range(repeat):
        for implementation in implementations:
            seconds, model = timed_fit(implementation, name, X, y)
            if implementation not in best or seconds < best[implementation]:
                best[implementation] = seconds
            models[implementation] = model
    reference = best.get("scikit-learn")
    for implementation in implementations:
        model, dense = models[implementation], ""
        if WORKLOADS[name].dense and implementation != "scikit-learn":
            dense_seconds, dense_model = timed_fit(implementation, name, X.toarray(), y)
            difference = max(float(np.abs(a - b).max())
                             for a, b in zip(model.coefs_, dense_model.coefs_))
            dense = f"{dense_seconds:>8.2f} s, differs {difference:.1e}"
        speedup = f"{reference / best[implementation]:>7.2f}x" if reference else "      -"
        print(f"{name:>6} {X.shape[0]:>6}x{X.shape[1]:<7} {X.nnz:>9} {implementation:>14} "
              f"{best[implementation]:>8.2f} {speedup} {model.score(X, y):>8.3f}  {dense}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--implementations", nargs="+", default=list(IMPLEMENTATIONS),
                        choices=IMPLEMENTATIONS)
    args = parser.parse_args(argv)
    import scipy
    import sklearn
    from compare import blas_summary

    import cymlp

    implementations = [name for name in args.implementations
                       if not name.startswith("cymlp ")
                       or name.split()[1] in cymlp.available_backends()]
    print("command: python " + " ".join(sys.argv))
    print(f"cymlp {cymlp.__version__}, scikit-learn {sklearn.__version__}, NumPy "
          f"{np.__version__}, SciPy {scipy.__version__}")
    print(blas_summary())
    print(f"{'data':>6} {'shape':>14} {'stored':>9} {'implementation':>14} {'fit s':>8} "
          f"{'speedup':>8} {'accuracy':>8}  cymlp on the dense array")
    for name in args.workloads:
        compare(name, 1 if args.quick else args.repeat, args.quick, implementations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
