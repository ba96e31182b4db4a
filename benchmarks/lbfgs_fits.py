"""scikit-learn's lbfgs solver against cymlp.sklearn's, on the same data and settings.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lbfgs_fits.py [--repeat 5]

Digits, breast cancer and wine (standardised, the split of
``benchmarks/sklearn_fits.py``) and a larger synthetic problem (20000 x 100,
10 classes), each with one hidden layer of 64 relu units, ``solver="lbfgs"``,
``max_iter=200``, ``random_state=0``. BLAS runs on one thread. The table
gives the fastest ``fit`` of ``--repeat`` (the two in turns), the time per
evaluation of the objective (fit time over SciPy's evaluation count), the
speed-up, the iterations, the final loss and the held-out accuracy of each:
the two minimise the same objective from the same start, so iterations,
losses and accuracies agree closely. ``--quick`` runs one repeat of the
small sets only (CI's smoke run).

A measurement, not a pass/fail test.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklearn_fits import load  # noqa: E402

SETTINGS = dict(hidden_layer_sizes=(64,), activation="relu", solver="lbfgs", max_iter=200,
                random_state=0)


def synthetic():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(n_samples=25000, n_features=100, n_informative=40,
                               n_classes=10, random_state=0)
    return train_test_split(X, y, test_size=5000, random_state=0, stratify=y)


def fit_counting(model, X, y):
    """(seconds, evaluations of the objective) of ``model.fit(X, y)``."""
    import scipy.optimize

    minimize, calls = scipy.optimize.minimize, []

    def counted(*args, **kwargs):
        result = minimize(*args, **kwargs)
        calls.append(result.nfev)
        return result

    scipy.optimize.minimize = counted   # both estimators import it from there at fit time
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            model.fit(X, y)
            seconds = time.perf_counter() - started
    finally:
        scipy.optimize.minimize = minimize
    return seconds, sum(calls)


def compare(name, data, repeat, backend):
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    from cymlp.sklearn import MLPClassifier as CymlpMLP

    X_train, X_test, y_train, y_test = data
    factories = {"scikit-learn": lambda: SklearnMLP(**SETTINGS),
                 "cymlp": lambda: CymlpMLP(**SETTINGS, backend=backend)}
    best, facts = {}, {}
    for _ in range(repeat):
        for key, factory in factories.items():
            model = factory()
            seconds, evaluations = fit_counting(model, X_train, y_train)
            if key not in best or seconds < best[key][0]:
                best[key] = (seconds, evaluations)
            facts[key] = (model.n_iter_, model.loss_, model.score(X_test, y_test))
    (sk_s, sk_ev), (cy_s, cy_ev) = best["scikit-learn"], best["cymlp"]
    print(f"{name:>14} {X_train.shape[0]:>6} {sk_s * 1e3:>9.1f} {cy_s * 1e3:>9.1f} "
          f"{sk_s / sk_ev * 1e6:>9.0f} {cy_s / cy_ev * 1e6:>9.0f} {sk_s / cy_s:>7.2f}x "
          f"{facts['scikit-learn'][0]:>4}/{facts['cymlp'][0]:<4} "
          f"{facts['scikit-learn'][1]:>9.2e}/{facts['cymlp'][1]:<9.2e} "
          f"{facts['scikit-learn'][2]:.3f}/{facts['cymlp'][2]:.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", default="cython")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import numpy
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    import cymlp

    repeat = 1 if args.quick else args.repeat
    print("command: python " + " ".join(sys.argv))
    print(f"cymlp {cymlp.__version__}, scikit-learn {sklearn.__version__}, NumPy "
          f"{numpy.__version__}, SciPy {scipy.__version__}; backend {args.backend}")
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            print(f"BLAS: {pool.get('internal_api')} {pool.get('version')} "
                  f"{pool.get('architecture')}, {pool.get('num_threads')} thread(s)")
    print(f"{'data':>14} {'n':>6} {'sk ms':>9} {'cy ms':>9} {'sk us/ev':>9} {'cy us/ev':>9} "
          f"{'speedup':>8} {'iters':>9} {'loss (sk/cy)':>19} accuracy")
    sets = [(name, load(name)) for name in ("digits", "breast_cancer", "wine")]
    if not args.quick:
        sets.append(("synthetic", synthetic()))
    for name, data in sets:
        compare(name, data, repeat, args.backend)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
