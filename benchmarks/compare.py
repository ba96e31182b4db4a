"""Compare cymlp with its peers (numba, JAX, PyTorch, scikit-learn, NumPy) on the speed workloads.

    python benchmarks/compare.py [--dtype float64|float32|both] [--seconds 0.5]
                                 [--only "cymlp cython"] [--json rates.json] [--cpu 0]

Prints one table per dtype: samples per second and microseconds per sample
for every implementation, and each one's time over cymlp's compiled
backend's ("time / cymlp": above 1, cymlp is faster). Implementations whose
library is not installed are listed with a note. Everything runs on one
thread, pinned to one core (``--cpu``), in one process, so the ratios
compare like with like on this machine. "numpy gemm only" times just the
matrix products of the same work with NumPy's matmul: the ceiling.
``test_peer_agreement.py`` checks that the peers compute cymlp's weights.
"""

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata

# One thread for every BLAS, numba, XLA and OpenMP, set before any of them loads.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMBA_NUM_THREADS"):
    os.environ[variable] = "1"
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

HERE = os.path.dirname(os.path.abspath(__file__))
RATIO = "time / cymlp"


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
    parser.add_argument("--cpu", type=int, default=0,
                        help="the core to run on (default 0); every thread of the process "
                             "stays there")
    args = parser.parse_args(argv)
    pinned = pin_to(args.cpu)
    # Imported only now, so that every thread they start is on that core.
    import numpy as np

    sys.path.insert(0, HERE)
    import workloads
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    print(blas_summary())
    print(versions())
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {pinned}")
    print(f"{RATIO}: the implementation's time for the same work over cymlp cython's "
          "(above 1: cymlp is faster)")
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    measured = {}
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name).type
        print(f"\n{dtype_name}, one thread")
        print(f"{'workload':<42}{'implementation':<17}{'samples/s':>12}{'µs/sample':>11}"
              f"{RATIO:>14}  note")
        for workload in list(workloads.TRAINING) + list(workloads.INFERENCE):
            rates = measure(workloads, workload, dtype, args)
            measured.setdefault(dtype_name, {})[workload] = rates
            gemm_line(workloads, workload, rates)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(measured, file, indent=1)


def measure(workloads, workload, dtype, args):
    """Time and print every implementation of one workload; {implementation: samples/s}."""
    rates, reference = {}, None
    for name in workloads.IMPLEMENTATIONS:
        if args.only is not None and name not in args.only:
            continue
        entry = workloads.runner(workload, name, dtype)
        if entry is None:
            continue
        if entry.run is None:
            print(f"{workload:<42}{name:<17}{'-':>12}{'-':>11}{'-':>14}  {entry.note}")
            continue
        seconds = best_time(entry.run, args.seconds)
        rates[name] = entry.n_samples / seconds
        if name == "cymlp cython":
            reference = seconds
        ratio = f"{seconds / reference:.2f}x" if reference else ""
        print(f"{workload:<42}{name:<17}{rates[name]:>12,.0f}"
              f"{1e6 * seconds / entry.n_samples:>11.2f}{ratio:>14}  {entry.note}".rstrip(),
              flush=True)
    return rates


def gemm_line(workloads, workload, rates):
    """For the mini-batch workloads: cymlp's GFLOP/s against NumPy's matmul alone."""
    if workload not in workloads.TRAINING or not {"numpy gemm only", "cymlp cython"} <= set(rates):
        return
    sizes, batch_size, _, _ = workloads.TRAINING[workload]
    flops = workloads.training_flops(sizes, batch_size, 1)
    reference, ceiling = rates["cymlp cython"], rates["numpy gemm only"]
    print(f"{'':<42}GFLOP/s: cymlp {reference * flops / 1e9:.1f}, "
          f"gemm only {ceiling * flops / 1e9:.1f} ({100 * reference / ceiling:.0f}% of the ceiling)")


def pin_to(cpu):
    """Pin this process (and every thread it starts from now on) to one core."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise SystemExit(f"--cpu {cpu}: this process may run on cores {sorted(allowed)} only")
    os.sched_setaffinity(0, {cpu})
    return f"pinned to core {cpu}"


def versions():
    """Versions of the libraries compared (without importing those that are not loaded yet)."""
    import cymlp

    found = [f"cymlp {cymlp.__version__}"]
    for name in ("numpy", "scipy", "numba", "jax", "jaxlib", "torch", "scikit-learn"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return f"Python {platform.python_version()}; " + ", ".join(found)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_summary():
    """The BLAS libraries, the kernels they run and their thread counts (threadpoolctl)."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS too)
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl is not installed"
    lines = [f"BLAS: {info.get('internal_api')} {info.get('version')} "
             f"({info.get('architecture', '?')} kernels, {info.get('threading_layer', '?')}, "
             f"{info.get('num_threads')} threads) {os.path.basename(info.get('filepath', ''))}"
             for info in threadpool_info() if info.get("user_api") == "blas"]
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                     "OMP_NUM_THREADS"):
        if os.environ.get(variable):
            lines.append(f"{variable}={os.environ[variable]} is set")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
