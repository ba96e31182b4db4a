"""Compare cymlp with NumPy, PyTorch and scikit-learn on the speed workloads.

    python benchmarks/compare.py [--dtype float64|float32|both] [--seconds 0.5]
                                 [--only "cymlp cython"] [--json rates.json]

Prints one table per dtype: samples per second for every implementation
installed (PyTorch and scikit-learn are optional), and each one's ratio to
``cymlp cython``. Everything runs on one thread, in one process, so the
ratios compare like with like on this machine. "numpy gemm only" times just
the matrix products of the same work with NumPy's matmul: the ceiling.
"""

import argparse
import json
import os
import sys
import time

# One thread for every BLAS and for PyTorch, set before any of them loads.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402


def best_time(run, seconds):
    """Best wall time of one call, repeating for about ``seconds``."""
    run()  # warm up
    best, spent = float("inf"), 0.0
    while spent < seconds or best == float("inf"):
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        best, spent = min(best, elapsed), spent + elapsed
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="time spent per measurement (default 0.5)")
    parser.add_argument("--only", action="append", default=None, metavar="IMPLEMENTATION",
                        help="measure only this implementation (repeatable), e.g. "
                             "'cymlp cython'")
    parser.add_argument("--json", metavar="PATH",
                        help="also write {dtype: {workload: {implementation: samples/s}}}")
    args = parser.parse_args(argv)
    print(blas_summary())
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    measured = {}
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name).type
        print(f"\n{dtype_name}, one thread ({os.cpu_count()} cores on this machine)")
        print(f"{'workload':<42}{'implementation':<18}{'samples/s':>14}{'vs cymlp':>10}")
        for workload, entries in workloads.runners(dtype, args.only).items():
            rates = {name: n / best_time(run, args.seconds) for name, (run, n) in entries.items()}
            measured.setdefault(dtype_name, {})[workload] = rates
            reference = rates.get("cymlp cython")
            for name, rate in rates.items():
                ratio = f"{reference / rate:9.1f}x" if reference else ""
                print(f"{workload:<42}{name:<18}{rate:>14,.0f}{ratio:>10}")
            if workload in workloads.TRAINING and "numpy gemm only" in rates and reference:
                sizes, batch_size, n_samples, _ = workloads.TRAINING[workload]
                flops = workloads.training_flops(sizes, batch_size, 1)
                print(f"{'':<42}GFLOP/s: cymlp {reference * flops / 1e9:.1f}, "
                      f"gemm only {rates['numpy gemm only'] * flops / 1e9:.1f} "
                      f"({100 * reference / rates['numpy gemm only']:.0f}% of the ceiling)")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(measured, file, indent=1)


def blas_summary():
    """The BLAS libraries and the kernels they run (threadpoolctl), for the record."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS too)
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl is not installed"
    lines = [f"BLAS: {info.get('internal_api')} {info.get('version')} "
             f"({info.get('architecture', '?')} kernels, {info.get('threading_layer', '?')}) "
             f"{os.path.basename(info.get('filepath', ''))}"
             for info in threadpool_info() if info.get("user_api") == "blas"]
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if coretype:
        lines.append(f"OPENBLAS_CORETYPE={coretype} is set: OpenBLAS is held to those kernels")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
