"""What importing cymlp costs a process, and what it loads.

    python benchmarks/startup.py [--repeat 15]

Three measurements, each the fastest of ``--repeat`` fresh processes:

- the wall time of ``python -c "import numpy"``, ``python -c "import cymlp"``
  and ``python -c "from cymlp.tutorial import *"`` (interpreter start
  included, so the differences are what cymlp adds);
- ``python -X importtime -c "import numpy; import cymlp"`` (and the same for
  ``cymlp.tutorial``) parsed: the cumulative import time of cymlp itself,
  NumPy already loaded, and the modules that cost most in it (per module, the
  fastest of the runs);
- which heavy modules are in ``sys.modules`` after ``import cymlp``, and
  after training a small network (30-5-3, batch size 1, sigmoid, three
  letters, 20 epochs) on each backend: ``scipy``, ``scipy.linalg``,
  ``scipy.special``, ``threadpoolctl``, ``numpy.random``, ``cymlp.datasets``.
  A small network never calls BLAS, so nothing needs SciPy's BLAS there; the
  compiled module still loads it when it is imported (``cimport
  scipy.linalg.cython_blas``) until the kernels load it lazily.

A report, not a pass/fail test (``tests/test_imports.py`` holds the
promises the Python side can keep).

The processes read and write their bytecode in a temporary cache
(``PYTHONPYCACHEPREFIX``, filled by a first run), as an installed package
has its modules compiled once; ``--no-bytecode-cache`` runs them with the
environment as it is (where ``PYTHONDONTWRITEBYTECODE`` is set, every
process compiles cymlp's modules again, and that shows in its import time).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HEAVY = ("scipy", "scipy.linalg", "scipy.special", "threadpoolctl", "numpy.random",
         "cymlp.datasets", "cymlp._kernels", "cymlp._numpy_kernels")

LOADED = '''\
import json, sys
import cymlp
after_import = {{name: name in sys.modules for name in {heavy!r}}}
import numpy as np
net = cymlp.MLP([30, 5, 3], seed=0, backend={backend!r})
X = np.array([[int(bit) for bit in row] for row in (
    "001100010010111111100001100001",
    "011110010010011110010010011110",
    "011110010000010000010000011110")], dtype=float)
net.fit(X, np.eye(3), epochs=20, batch_size=1, learning_rate=1.0)
after_fit = {{name: name in sys.modules for name in {heavy!r}}}
print(json.dumps([after_import, after_fit, net.backend]))
'''

IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")


def wall(commands, env, repeat):
    """Fastest wall time of each process (in seconds) over ``repeat`` rounds.

    The processes run in turns, one of each per round, so that all of them
    see the same load on a shared machine.
    """
    best = [float("inf")] * len(commands)
    for _ in range(repeat):
        for index, arguments in enumerate(commands):
            started = time.perf_counter()
            subprocess.run(arguments, env=env, check=True, stdout=subprocess.DEVNULL)
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def import_tree(statement, root, env, repeat):
    """Per module under ``root``: fastest (self, cumulative) microseconds of -X importtime.

    ``statement`` runs in a fresh process each time with NumPy imported first,
    so NumPy's own cost is never charged to ``root``.
    """
    best = {}
    for _ in range(repeat):
        result = subprocess.run([sys.executable, "-X", "importtime", "-c",
                                 f"import numpy; {statement}"],
                                env=env, capture_output=True, text=True, check=True)
        lines = [IMPORTTIME_LINE.match(line) for line in result.stderr.splitlines()]
        lines = [match for match in lines if match]
        # importtime prints a module after its imports; the root line ends its subtree.
        end = max(i for i, match in enumerate(lines) if match.group(4) == root)
        depth = len(lines[end].group(3))
        start = end
        while start > 0 and len(lines[start - 1].group(3)) > depth:
            start -= 1
        for match in lines[start:end + 1]:
            name, own, total = match.group(4), int(match.group(1)), int(match.group(2))
            if name in best:
                own, total = min(own, best[name][0]), min(total, best[name][1])
            best[name] = (own, total)
    return best


def describe_tree(tree, root, top):
    own, total = tree[root]
    heaviest = sorted(((value[0], name) for name, value in tree.items()), reverse=True)[:top]
    listed = ", ".join(f"{name} {value / 1e3:.1f}" for value, name in heaviest)
    return (f"{total / 1e3:.1f} ms cumulative over {len(tree)} modules; "
            f"most self time (ms): {listed}")


def loaded_modules(env, backend):
    script = LOADED.format(heavy=HEAVY, backend=backend)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)


def report(args, env):
    """Print the three measurements."""
    python = sys.executable
    subprocess.run([python, "-c", "import numpy, cymlp.tutorial, cymlp.datasets"], env=env,
                   check=True)   # fills the bytecode cache, if there is one
    if "PYTHONPYCACHEPREFIX" in env:
        note = "bytecode cached"
    elif env.get("PYTHONDONTWRITEBYTECODE"):
        note = "PYTHONDONTWRITEBYTECODE set: cymlp compiles in every process"
    else:
        note = "bytecode as the environment has it"
    print(f"wall time of a process, fastest of {args.repeat} ({note}):")
    codes = ("import numpy", "import cymlp", "from cymlp.tutorial import *")
    times = wall([[python, "-c", code] for code in codes], env, args.repeat)
    for code, seconds in zip(codes, times):
        extra = f"  (+{(seconds - times[0]) * 1e3:5.1f} ms)" if code != codes[0] else ""
        print(f"  python -c {code!r:<32} {seconds * 1e3:7.1f} ms{extra}")

    print("-X importtime, NumPy imported first (fastest per module):")
    for statement, root in (("import cymlp", "cymlp"),
                            ("import cymlp.tutorial", "cymlp.tutorial")):
        tree = import_tree(statement, root, env, args.repeat)
        print(f"  {statement}: {describe_tree(tree, root, args.top)}")
        if root == "cymlp.tutorial" and "cymlp" in tree:
            print(f"    (of which the package cymlp: {tree['cymlp'][1] / 1e3:.1f} ms)")

    print("in sys.modules (after import cymlp / after a small fit, 30-5-3 at batch 1):")
    for backend in ("cython", "numpy"):
        result = loaded_modules(env, backend)
        if result is None:
            print(f"  backend {backend}: not available")
            continue
        after_import, after_fit, _ = result
        print(f"  backend {backend}:")
        for name in HEAVY:
            print(f"    {name:<22} {str(after_import[name]):<6} {after_fit[name]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="processes per measurement")
    parser.add_argument("--top", type=int, default=8, help="modules listed by self time")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run with the environment's bytecode settings as they are")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        env = dict(os.environ)
        if not args.no_bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = directory
        report(args, env)


if __name__ == "__main__":
    main()
