"""GridSearchCV over MLPClassifier with n_jobs=1 and n_jobs=2 on joblib's threading backend.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/threaded_search.py \
        [--quick] [--repeat 3] [--workloads digits iris large] \
        [--implementations "cymlp cython" "cymlp numpy" scikit-learn] [--profile] \
        [--switch-interval 0.0005]

The same search runs sequentially (``n_jobs=1``) and in two worker threads
(``n_jobs=2`` inside ``joblib.parallel_config(backend="threading")``), for
cymlp's estimator on each backend and, for comparison, scikit-learn's own
``MLPClassifier``. The two runs of each search alternate ``--repeat`` times
(the fastest of each is kept), so drift in the machine's speed hits both.
``refit=False``: the final refit of the best candidate is always one fit in
the calling thread, and would only measure Amdahl's law.

Workloads (every fit runs all ``max_iter`` epochs: ``tol=0`` and
``n_iter_no_change`` beyond ``max_iter``, so the work is the same whatever
the timing):

- ``digits``: ``sklearn.datasets.load_digits`` standardised (1797 x 64),
  hidden (100,), Adam, ``batch_size="auto"`` (200);
- ``iris``: ``load_iris`` standardised (150 x 4), hidden (10,), SGD,
  ``batch_size=1`` (one step per sample): the Python work around the kernel
  calls is all there is to share;
- ``large``: 20000 x 100 synthetic, hidden (256,), Adam, batch 200: each
  batch is 5 million multiply-adds per layer-product, BLAS-bound.

BLAS is left as the environment sets it (no ``OPENBLAS_NUM_THREADS``), as a
user's session would have it; the libraries and the kernels they run are
printed (threadpoolctl), with their thread counts. ``cpu/wall`` is the
process CPU time over the wall time of the search: about 1 for a search on
one core, about 2 for one on both (where ``n_jobs=1`` is above 1, BLAS's own
threads are using the second core: working, or, for about 0.1 s after each
call that woke them, OpenBLAS's idle workers spinning). ``same`` says whether both runs
gave the same ``cv_results_`` scores (they must: results never depend on the
thread count).

``--profile`` times, for cymlp's searches, the share of each fit spent
inside the backend's ``Trainer.run`` (the GIL released on the compiled
backend) and the wall time of the rest, per thread. ``--switch-interval``
sets ``sys.setswitchinterval``: if a shorter one changed the n_jobs=2
times, threads back from a kernel call would be waiting out the other's
Python work for the GIL (on the 2-core development machine it does not:
the Python work between kernel calls is short, and contended as it is).

A measurement, never a pass/fail test; ``benchmarks/test_threaded_search.py``
runs the quick searches under pytest-benchmark.
"""

import argparse
import os
import shlex
import sys
import threading
import time
import warnings
from collections import namedtuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

IDLE_SECONDS = 0.3
IMPLEMENTATIONS = ("cymlp cython", "cymlp numpy", "scikit-learn")

# name: estimator settings, the grid, cv folds; a quick run's max_iter
Workload = namedtuple("Workload", "settings grid cv max_iter quick_max_iter")
WORKLOADS = {
    "digits": Workload(dict(hidden_layer_sizes=(100,), solver="adam", batch_size="auto"),
                       {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-3, 3e-3]}, 3, 40, 10),
    "iris": Workload(dict(hidden_layer_sizes=(10,), solver="sgd", batch_size=1,
                          learning_rate_init=0.01),
                     {"alpha": [1e-4, 1e-3], "momentum": [0.0, 0.9]}, 3, 100, 20),
    "large": Workload(dict(hidden_layer_sizes=(256,), solver="adam", batch_size="auto"),
                      {"alpha": [1e-4, 1e-3]}, 2, 6, 2),
}


def load(name):
    """(X, y) of a workload, standardised, float64."""
    if name == "large":
        rng = np.random.default_rng(0)
        X = rng.standard_normal((20000, 100))
        y = np.argmax(X @ rng.standard_normal((100, 10)), axis=1)
        return X, y
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def estimator(implementation, name, quick):
    """A fresh, unfitted estimator of the workload's settings."""
    workload = WORKLOADS[name]
    max_iter = workload.quick_max_iter if quick else workload.max_iter
    settings = dict(workload.settings, max_iter=max_iter, tol=0.0,
                    n_iter_no_change=max_iter + 1, shuffle=True, random_state=0)
    if implementation == "scikit-learn":
        from sklearn.neural_network import MLPClassifier
        return MLPClassifier(**settings)
    from cymlp.sklearn import MLPClassifier
    return MLPClassifier(**settings, backend=implementation.split()[1])


def search(implementation, name, X, y, n_jobs, quick):
    """A fitted ``GridSearchCV`` (``n_jobs`` worker threads) of the workload."""
    from joblib import parallel_config
    from sklearn.model_selection import GridSearchCV, KFold

    workload = WORKLOADS[name]
    grid = GridSearchCV(estimator(implementation, name, quick), workload.grid,
                        cv=KFold(workload.cv, shuffle=True, random_state=0), n_jobs=n_jobs,
                        refit=False, error_score="raise")
    with warnings.catch_warnings(), parallel_config(backend="threading"):
        warnings.simplefilter("ignore")     # ConvergenceWarning: every epoch runs on purpose
        grid.fit(X, y)
    return grid


def timed_search(implementation, name, X, y, n_jobs, quick):
    """(wall seconds, process CPU seconds, fitted GridSearchCV).

    After a pause first: OpenBLAS's idle worker threads spin for about 0.1 s
    before they sleep, and would otherwise take a core from the search timed.
    """
    time.sleep(IDLE_SECONDS)
    wall, cpu = time.perf_counter(), time.process_time()
    grid = search(implementation, name, X, y, n_jobs, quick)
    return time.perf_counter() - wall, time.process_time() - cpu, grid


def n_fits(name):
    workload = WORKLOADS[name]
    return workload.cv * int(np.prod([len(values) for values in workload.grid.values()]))


def compare(implementation, name, repeat, quick):
    """One row: the fastest search with each n_jobs, its cpu/wall, and whether scores agree."""
    X, y = load(name)
    best, scores = {}, {}
    step = max(1, X.shape[0] // 60)
    search(implementation, name, X[::step], y[::step], 1, True)   # warm up: imports, BLAS
    for _ in range(repeat):
        for n_jobs in (1, 2):
            wall, cpu, grid = timed_search(implementation, name, X, y, n_jobs, quick)
            if n_jobs not in best or wall < best[n_jobs][0]:
                best[n_jobs] = (wall, cpu)
            scores[n_jobs] = grid.cv_results_["mean_test_score"]
    return {"workload": name, "implementation": implementation, "fits": n_fits(name),
            "wall_1": best[1][0], "wall_2": best[2][0],
            "cpu_1": best[1][1] / best[1][0], "cpu_2": best[2][1] / best[2][0],
            "same": bool(np.array_equal(scores[1], scores[2]))}


def load_average():
    """The machine's 1-minute load average, to tell a quiet run from a shared one."""
    try:
        return f"load average {os.getloadavg()[0]:.2f} (this run adds up to 2)"
    except OSError:
        return "load average unknown"


def profile(implementation, name, quick):
    """Per thread of an n_jobs=2 search: fits, wall time inside Trainer.run and the rest."""
    from cymlp._backend import resolve_backend

    X, y = load(name)
    kernels = resolve_backend(implementation.split()[1])[1]
    original = kernels.Trainer
    spent, lock = {}, threading.Lock()

    class TimedTrainer(original):
        def run(self, order, start, stop):
            started = time.perf_counter()
            try:
                return super().run(order, start, stop)
            finally:
                with lock:
                    entry = spent.setdefault(threading.get_ident(), [0.0, 0])
                    entry[0] += time.perf_counter() - started
                    entry[1] += 1

    for n_jobs in (1, 2):
        kernels.Trainer = TimedTrainer
        spent.clear()
        try:
            wall, cpu, _ = timed_search(implementation, name, X, y, n_jobs, quick)
        finally:
            kernels.Trainer = original
        inside = sum(entry[0] for entry in spent.values())
        calls = sum(entry[1] for entry in spent.values())
        print(f"  {name}, {implementation}, n_jobs={n_jobs}: wall {wall:.3f} s, cpu/wall "
              f"{cpu / wall:.2f}; Trainer.run {inside:.3f} s in {calls} calls "
              f"({1e6 * inside / max(calls, 1):.0f} us each) over {len(spent)} thread(s), "
              f"{100 * inside / (wall * len(spent)):.0f} % of the threads' wall time")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer epochs and one repeat (a smoke run)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="searches of each n_jobs, alternating (default 3; 1 with --quick)")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--implementations", nargs="+", default=list(IMPLEMENTATIONS),
                        choices=IMPLEMENTATIONS)
    parser.add_argument("--profile", action="store_true",
                        help="also time Trainer.run inside cymlp's searches")
    parser.add_argument("--switch-interval", type=float, default=None, metavar="SECONDS",
                        help="sys.setswitchinterval for the run (a diagnosis: how long a "
                             "thread back from a kernel call waits for the GIL; default "
                             "Python's 0.005)")
    args = parser.parse_args(argv)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    repeat = args.repeat or (1 if args.quick else 3)

    import joblib
    import sklearn

    import cymlp

    implementations = [name for name in args.implementations
                       if not name.startswith("cymlp ")
                       or name.split()[1] in cymlp.available_backends()]
    print("command: " + " ".join(shlex.quote(word) for word in [sys.executable] + sys.argv))
    sys.path.insert(0, HERE)
    from compare import blas_summary  # the one BLAS report of the benchmarks

    print(blas_summary())
    print(f"cymlp {cymlp.__version__}, scikit-learn {sklearn.__version__}, joblib "
          f"{joblib.__version__}, numpy {np.__version__}; {os.cpu_count()} cores; "
          f"{load_average()}")
    print(f"GridSearchCV(refit=False), threading backend; fastest of {repeat}"
          f"{', quick' if args.quick else ''}; switch interval {sys.getswitchinterval()} s; "
          "speed-up = time n_jobs=1 / time n_jobs=2")
    print(f"{'workload':<8} {'implementation':<14} {'fits':>4} {'epochs':>6}  "
          f"{'n_jobs=1 s':>10} {'n_jobs=2 s':>10} {'speed-up':>8}  {'cpu/wall 1':>10} "
          f"{'cpu/wall 2':>10}  same")
    for name in args.workloads:
        workload = WORKLOADS[name]
        for implementation in implementations:
            row = compare(implementation, name, repeat, args.quick)
            print(f"{name:<8} {implementation:<14} {row['fits']:>4} "
                  f"{workload.quick_max_iter if args.quick else workload.max_iter:>6}  "
                  f"{row['wall_1']:10.3f} {row['wall_2']:10.3f} "
                  f"{row['wall_1'] / row['wall_2']:7.2f}x  {row['cpu_1']:10.2f} "
                  f"{row['cpu_2']:10.2f}  {'yes' if row['same'] else 'NO'}", flush=True)
    print(f"after the table: {load_average()}")
    if args.profile:
        for name in args.workloads:
            for implementation in implementations:
                if implementation.startswith("cymlp "):
                    profile(implementation, name, args.quick)


if __name__ == "__main__":
    main()
