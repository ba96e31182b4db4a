"""scikit-learn's MLPClassifier against cymlp.sklearn.MLPClassifier, on three small data sets.

    python benchmarks/sklearn_fits.py [--repeat 7] [--backend cython] [--profile]

Digits, breast cancer and wine (``sklearn.datasets``), standardised with a
``StandardScaler`` fitted on a fixed, stratified 75/25 train/test split. Both
estimators get the same settings: one hidden layer of 64 relu units, Adam,
``batch_size=200``, 50 epochs (``tol=0`` and ``n_iter_no_change`` beyond
``max_iter``, so that every epoch runs), ``shuffle=True``, ``random_state=0``.
BLAS runs on one thread (set before NumPy loads). The table gives the
fastest ``fit`` of ``--repeat`` (the two estimators in turns), the speed-up,
the time per epoch, and the held-out accuracy of each.

``--profile`` splits cymlp's fit into the time inside the backend's
``Trainer.run`` (per epoch, and as a share), the fixed cost of a fit
(validation, targets, the network) and the rest per epoch, then lists the
Python functions of one fit under cProfile.

A measurement, not a pass/fail test; ``benchmarks/test_fits.py`` runs the
same fits under pytest-benchmark.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

DATASETS = ("digits", "breast_cancer", "wine")
EPOCHS = 50
SETTINGS = dict(hidden_layer_sizes=(64,), activation="relu", solver="adam", batch_size=200,
                max_iter=EPOCHS, shuffle=True, random_state=0, tol=0.0,
                n_iter_no_change=EPOCHS + 1)


def load(name):
    """(X_train, X_test, y_train, y_test): standardised, split 75/25 with a fixed seed."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def estimators(backend=None):
    """``{name: factory}`` of the two estimators with the shared settings."""
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    from cymlp.sklearn import MLPClassifier as CymlpMLP

    return {"scikit-learn": lambda: SklearnMLP(**SETTINGS),
            "cymlp": lambda: CymlpMLP(**SETTINGS, backend=backend)}


def timed_fit(factory, X, y):
    """(seconds, fitted estimator) of one fit, warnings (ConvergenceWarning) silenced."""
    model = factory()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - started
    return seconds, model


def compare(name, repeat, backend=None):
    """One row of the table: fastest fit and held-out accuracy of each estimator."""
    X_train, X_test, y_train, y_test = load(name)
    factories = estimators(backend)
    times = {key: [] for key in factories}
    accuracy, epochs = {}, {}
    for _ in range(repeat):   # in turns, so both see the same machine load
        for key, factory in factories.items():
            seconds, model = timed_fit(factory, X_train, y_train)
            times[key].append(seconds)
            accuracy[key] = model.score(X_test, y_test)
            epochs[key] = model.n_iter_
    assert epochs["scikit-learn"] == epochs["cymlp"] == EPOCHS, epochs
    return {"dataset": name, "n_train": X_train.shape[0], "n_features": X_train.shape[1],
            "n_classes": len(np.unique(y_train)),
            "sklearn_s": min(times["scikit-learn"]), "cymlp_s": min(times["cymlp"]),
            "sklearn_accuracy": accuracy["scikit-learn"], "cymlp_accuracy": accuracy["cymlp"]}


def _timed_trainer(kernels, spent):
    """A subclass of ``kernels.Trainer`` that adds the time of each ``run`` to ``spent``."""
    class TimedTrainer(kernels.Trainer):
        def run(self, order, start, stop):
            started = time.perf_counter()
            try:
                return super().run(order, start, stop)
            finally:
                spent[0] += time.perf_counter() - started
    return TimedTrainer


def profile(name, repeat, backend=None, top=12):
    """Where cymlp's fit spends its time: Trainer.run, the fixed cost, the rest per epoch.

    ``Trainer.run`` is timed through a subclass put in place of the backend's
    Trainer for these fits; the fixed cost is a one-epoch fit less its
    ``Trainer.run``. cProfile then lists the Python functions of one fit.
    """
    import cProfile
    import pstats

    from cymlp._backend import resolve_backend

    X_train, _, y_train, _ = load(name)
    factory = estimators(backend)["cymlp"]
    kernels = resolve_backend(backend)[1]
    original, spent = kernels.Trainer, [0.0]
    one_epoch = lambda: estimators(backend)["cymlp"]().set_params(  # noqa: E731
        max_iter=1, n_iter_no_change=2)
    kernels.Trainer = _timed_trainer(kernels, spent)
    try:
        best = {}
        for label, make in (("full", factory), ("one", one_epoch)):
            for _ in range(repeat):
                spent[0] = 0.0
                seconds, _ = timed_fit(make, X_train, y_train)
                if label not in best or seconds < best[label][0]:
                    best[label] = (seconds, spent[0])
    finally:
        kernels.Trainer = original
    total, kernel = best["full"]
    fixed = best["one"][0] - best["one"][1]
    per_epoch = (total - kernel - fixed) / EPOCHS
    print(f"\n{name}: cymlp fit {total * 1e3:.2f} ms = Trainer.run {kernel * 1e3:.2f} ms "
          f"({kernel / EPOCHS * 1e6:.0f} us per epoch, {100 * kernel / total:.0f} %) + fixed "
          f"cost {fixed * 1e3:.2f} ms ({100 * fixed / total:.0f} %; validation, targets, "
          f"network) + the rest {per_epoch * 1e6:.0f} us per epoch "
          f"({100 * per_epoch * EPOCHS / total:.0f} %)")
    profiler = cProfile.Profile()
    profiler.enable()
    timed_fit(factory, X_train, y_train)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="fits of each (min taken)")
    parser.add_argument("--backend", default=None, help="cymlp backend (default: auto)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--profile", action="store_true",
                        help="also profile cymlp's fit on each data set")
    args = parser.parse_args(argv)

    rows = [compare(name, args.repeat, args.backend) for name in args.datasets]
    print(f"MLPClassifier(hidden_layer_sizes=(64,), relu, adam, batch_size=200, {EPOCHS} "
          f"epochs), one thread, fastest fit of {args.repeat}; cymlp backend "
          f"{args.backend or os.environ.get('CYMLP_BACKEND') or 'auto'}")
    print(f"{'data set':<14} {'rows':>5} {'feat':>4} {'cls':>3}  {'sklearn ms':>10} "
          f"{'cymlp ms':>9} {'speed-up':>8}  {'us/epoch':>8}  {'acc sklearn':>11} "
          f"{'acc cymlp':>9} {'diff':>6}")
    for row in rows:
        print(f"{row['dataset']:<14} {row['n_train']:>5} {row['n_features']:>4} "
              f"{row['n_classes']:>3}  {row['sklearn_s'] * 1e3:10.1f} "
              f"{row['cymlp_s'] * 1e3:9.2f} {row['sklearn_s'] / row['cymlp_s']:7.1f}x  "
              f"{row['cymlp_s'] / EPOCHS * 1e6:8.0f}  {100 * row['sklearn_accuracy']:10.2f}% "
              f"{100 * row['cymlp_accuracy']:8.2f}% "
              f"{100 * (row['cymlp_accuracy'] - row['sklearn_accuracy']):+6.2f}")
    if args.profile:
        for name in args.datasets:
            profile(name, args.repeat, args.backend)


if __name__ == "__main__":
    main()
