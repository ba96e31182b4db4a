"""The tutorial script as a whole process: its own NumPy code against ``cymlp.tutorial``.

    python benchmarks/tutorial_process.py [--epochs 100 1000 10000] [--repeat 5]

Writes two scripts into a temporary directory: the tutorial's script as
/work/shared/TUTORIAL.md gives it (its NumPy definitions of ``sigmoid``,
``f_forward``, ``generate_wt``, ``loss``, ``back_prop``, ``train`` and
``predict``, the letters A, B and C, ``np.random.seed`` fixed, one
``Epoch: N, Accuracy: X%`` line per epoch, the trained weights, ``Predicted
Letter: A``), and the same script with its definitions replaced by ``from
cymlp.tutorial import *``. Each runs as ``python script.py`` for every epoch
count, in turns, ``--repeat`` times; the table gives the fastest wall time of
each (the whole process: interpreter start, imports, training, printing),
their ratio, and whether the two printed byte-identical output (the script
stops with an error if they did not).

Below the table, where the cymlp process spends its fixed cost: the import of
NumPy, the import of ``cymlp.tutorial``, and the load of the compiled kernels
(with the SciPy modules they pull in, if any). If the kernels load SciPy's
BLAS with themselves (as they did before loading it lazily), the table also
gives that load (``python -c "import numpy, scipy.linalg.cython_blas"`` less
``python -c "import numpy"``, run in the same turns) and the cymlp process
less it. A measurement, not
a pass/fail test.

The processes read and write their bytecode in a temporary cache
(``PYTHONPYCACHEPREFIX``), as an installed package has its modules compiled
once; ``--no-bytecode-cache`` runs them with the environment as it is (where
``PYTHONDONTWRITEBYTECODE`` is set, every process compiles cymlp again).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

# The tutorial's own definitions, as TUTORIAL.md describes them (steps 3-9).
TUTORIAL_DEFINITIONS = '''\
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def f_forward(x, w1, w2):
    z1 = x.dot(w1)
    a1 = sigmoid(z1)
    z2 = a1.dot(w2)
    a2 = sigmoid(z2)
    return a2


def generate_wt(x, y):
    li = []
    for i in range(x * y):
        li.append(np.random.randn())
    return np.array(li).reshape(x, y)


def loss(out, Y):
    s = np.square(out - Y)
    s = np.sum(s) / len(Y)
    return s


def back_prop(x, y, w1, w2, alpha):
    z1 = x.dot(w1)
    a1 = sigmoid(z1)
    z2 = a1.dot(w2)
    a2 = sigmoid(z2)
    d2 = a2 - y
    d1 = np.multiply(w2.dot(d2.transpose()).transpose(), np.multiply(a1, 1 - a1))
    w1_adj = x.transpose().dot(d1)
    w2_adj = a1.transpose().dot(d2)
    w1 = w1 - alpha * w1_adj
    w2 = w2 - alpha * w2_adj
    return w1, w2


def train(x, Y, w1, w2, alpha=0.01, epoch=10):
    acc = []
    losss = []
    for j in range(epoch):
        l = []
        correct = 0
        for i in range(len(x)):
            out = f_forward(x[i], w1, w2)
            l.append(loss(out, Y[i]))
            correct += int(np.argmax(out) == np.argmax(Y[i]))
            w1, w2 = back_prop(x[i], Y[i], w1, w2, alpha)
        acc.append(100 * correct / len(x))
        losss.append(sum(l) / len(x))
        print(f"Epoch: {j + 1}, Accuracy: {acc[-1]:.2f}%")
    return acc, losss, w1, w2


def predict(x, w1, w2):
    Out = f_forward(x, w1, w2)
    k = int(np.argmax(Out))
    print("Predicted Letter: " + "ABC"[k])
'''

CYMLP_DEFINITIONS = "from cymlp.tutorial import *\n"

# Steps 1-2 and 10-13: the data, the weights, training, the weights and a prediction.
TUTORIAL_SCRIPT = '''\
import numpy as np

{definitions}

a = [0, 0, 1, 1, 0, 0,
     0, 1, 0, 0, 1, 0,
     1, 1, 1, 1, 1, 1,
     1, 0, 0, 0, 0, 1,
     1, 0, 0, 0, 0, 1]
b = [0, 1, 1, 1, 1, 0,
     0, 1, 0, 0, 1, 0,
     0, 1, 1, 1, 1, 0,
     0, 1, 0, 0, 1, 0,
     0, 1, 1, 1, 1, 0]
c = [0, 1, 1, 1, 1, 0,
     0, 1, 0, 0, 0, 0,
     0, 1, 0, 0, 0, 0,
     0, 1, 0, 0, 0, 0,
     0, 1, 1, 1, 1, 0]
y = [[1, 0, 0],
     [0, 1, 0],
     [0, 0, 1]]
x = [np.array(a).reshape(1, 30), np.array(b).reshape(1, 30),
     np.array(c).reshape(1, 30)]
y = np.array(y)

np.random.seed({seed})
w1 = generate_wt(30, 5)
w2 = generate_wt(5, 3)

acc, losss, w1, w2 = train(x, y, w1, w2, 0.1, {epochs})
print("Trained w1:", w1)
print("Trained w2:", w2)
predict(x[0], w1, w2)
'''

SEED = 42


def write_scripts(directory, epochs, seed=SEED):
    """Paths of the tutorial's own script and of the ``cymlp.tutorial`` one."""
    paths = []
    for name, definitions in (("tutorial_numpy", TUTORIAL_DEFINITIONS),
                              ("tutorial_cymlp", CYMLP_DEFINITIONS)):
        path = os.path.join(directory, f"{name}_{epochs}.py")
        with open(path, "w") as file:
            file.write(TUTORIAL_SCRIPT.format(definitions=definitions, seed=seed,
                                              epochs=epochs))
        paths.append(path)
    return paths


def run(arguments, env):
    """(wall seconds, stdout bytes) of one process."""
    started = time.perf_counter()
    result = subprocess.run(arguments, capture_output=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{result.stderr.decode()}")
    return seconds, result.stdout


def fastest(arguments, env, repeat):
    """The fastest wall time of ``repeat`` runs and the stdout of the runs (all equal)."""
    times, outputs = [], set()
    for _ in range(repeat):
        seconds, stdout = run(arguments, env)
        times.append(seconds)
        outputs.add(stdout)
    if len(outputs) != 1:
        raise SystemExit(f"{' '.join(arguments)} printed different output from run to run")
    return min(times), outputs.pop()


def first_difference(a, b):
    for number, (line_a, line_b) in enumerate(zip(a.splitlines(), b.splitlines()), 1):
        if line_a != line_b:
            return f"line {number}:\n  numpy: {line_a!r}\n  cymlp: {line_b!r}"
    return f"lengths differ: {len(a)} and {len(b)} bytes"


FIXED_COSTS = '''\
import sys, time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import cymlp.tutorial
t2 = time.perf_counter()
cymlp._backend.resolve_backend(None)   # loads the kernel module, as train does
t3 = time.perf_counter()
scipy = sorted(name for name in sys.modules if name == "scipy" or name.startswith("scipy."))
print(t1 - t0, t2 - t1, t3 - t2, len(scipy), "scipy.linalg" in sys.modules)
'''


def fixed_costs(env, repeat):
    """Fastest (numpy import, cymlp.tutorial import, kernel load) in seconds, and SciPy modules."""
    best = None
    for _ in range(repeat):
        result = subprocess.run([sys.executable, "-c", FIXED_COSTS], capture_output=True,
                                text=True, env=env, check=True)
        numpy_s, tutorial_s, kernel_s, n_scipy, linalg = result.stdout.split()
        row = [float(numpy_s), float(tutorial_s), float(kernel_s)]
        best = row if best is None else [min(a, b) for a, b in zip(best, row)]
    return best, int(n_scipy), linalg == "True"


def bytecode_note(env):
    """How the processes get their bytecode, for the table's heading."""
    if "PYTHONPYCACHEPREFIX" in env:
        return "bytecode cached"
    if env.get("PYTHONDONTWRITEBYTECODE"):
        return "PYTHONDONTWRITEBYTECODE set: modules without bytecode compile in every process"
    return "bytecode as the environment has it"


SCIPY_BLAS = "import numpy, scipy.linalg.cython_blas"


def measure(args, env, directory):
    """Run the scripts, print the table and the fixed costs."""
    python = sys.executable
    run([python, "-c", "import numpy, cymlp.tutorial"], env)   # compiles into the cache
    (numpy_s, tutorial_s, kernel_s), n_scipy, linalg = fixed_costs(env, args.repeat)
    # While the compiled module cimports SciPy's BLAS, loading it is part of
    # every cymlp process; measured beside the scripts, it gives the estimate
    # of the last column: the cymlp process without that load.
    extra = {"numpy": [python, "-c", "import numpy"]}
    if linalg:
        extra["scipy"] = [python, "-c", SCIPY_BLAS]
    rows = []
    for epochs in args.epochs:
        own, ours = write_scripts(directory, epochs)
        run([python, ours], env)   # warm the file cache and the bytecode cache
        run([python, own], env)
        commands = {"own": [python, own], "ours": [python, ours], **extra}
        times = {key: [] for key in commands}
        outputs = {"own": set(), "ours": set()}
        for _ in range(args.repeat):   # in turns, so all see the same machine load
            for key, arguments in commands.items():
                seconds, stdout = run(arguments, env)
                times[key].append(seconds)
                if key in outputs:
                    outputs[key].add(stdout)
        if len(outputs["own"]) != 1 or len(outputs["ours"]) != 1:
            raise SystemExit(f"{epochs} epochs: a script printed different output from "
                             "run to run")
        own_out, our_out = outputs["own"].pop(), outputs["ours"].pop()
        identical = own_out == our_out
        best = {key: min(values) for key, values in times.items()}
        scipy_s = best["scipy"] - best["numpy"] if linalg else 0.0
        rows.append((epochs, best["own"], best["ours"], scipy_s, identical))
        if not identical:
            print(f"{epochs} epochs: the outputs differ, {first_difference(own_out, our_out)}",
                  file=sys.stderr)
        last_output = our_out

    print(f"backend {env.get('CYMLP_BACKEND', 'auto') or 'auto'}; {bytecode_note(env)}; "
          f"fastest of {args.repeat} processes each, in turns")
    header = f"{'epochs':>8}  {'tutorial /s':>12}  {'cymlp /s':>10}  {'ratio':>7}  identical"
    if linalg:
        header += f"  {'SciPy BLAS load /s':>18}  {'cymlp without it /s':>19}  {'ratio':>7}"
    print(header)
    for epochs, own_s, our_s, scipy_s, identical in rows:
        line = (f"{epochs:>8,}  {own_s:12.3f}  {our_s:10.3f}  {own_s / our_s:6.2f}x  "
                f"{'yes' if identical else 'NO':>9}")
        if linalg:
            line += (f"  {scipy_s:18.3f}  {our_s - scipy_s:19.3f}  "
                     f"{own_s / (our_s - scipy_s):6.2f}x")
        print(line)
    print(f"fixed costs in the cymlp process (in-process clocks): import numpy "
          f"{numpy_s * 1e3:.1f} ms, import cymlp.tutorial {tutorial_s * 1e3:.1f} ms, kernel "
          f"load {kernel_s * 1e3:.1f} ms ({n_scipy} SciPy modules loaded; scipy.linalg "
          f"{'yes' if linalg else 'no'})")
    if linalg:
        print(f"SciPy BLAS load: python -c {SCIPY_BLAS!r} less python -c 'import numpy'; the "
              "last columns estimate the process once the kernels load it only when a "
              "product needs BLAS (the tutorial's never do).")
    if args.show_output:
        sys.stdout.write(last_output.decode())
    if not all(row[-1] for row in rows):
        raise SystemExit("the cymlp script's output differs from the tutorial's")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each script (min taken)")
    parser.add_argument("--backend", default=None,
                        help="CYMLP_BACKEND for the cymlp script (default: as set, else auto)")
    parser.add_argument("--show-output", action="store_true",
                        help="print the output of the last (largest) epoch count")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run with the environment's bytecode settings as they are")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        env = dict(os.environ)
        if args.backend is not None:
            env["CYMLP_BACKEND"] = args.backend
        if not args.no_bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = os.path.join(directory, "pycache")
        measure(args, env, directory)


if __name__ == "__main__":
    main()
