"""Speed of cymlp before and after a change, measured in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/before_after.py \
        --before OLD_VENV/bin/python --after NEW_VENV/bin/python [--rounds 3]

Each interpreter has a different cymlp wheel installed (build the previous
commit's wheel into one virtual environment and HEAD's into another). The two
run ``compare.py --only "cymlp cython"`` in turns, ``--rounds`` times, so
that drift in the machine's speed hits both; the best rate of each workload
is kept, and the table gives after/before (above 1: faster after).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(python, seconds):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "rates.json")
        # Outside the source tree, so each interpreter imports its own wheel.
        subprocess.run([python, os.path.join(HERE, "compare.py"), "--only", "cymlp cython",
                        "--seconds", str(seconds), "--json", path], check=True, cwd=directory,
                       stdout=subprocess.DEVNULL)
        with open(path) as file:
            return json.load(file)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="python with the old wheel")
    parser.add_argument("--after", required=True, help="python with the new wheel")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    best = {"before": {}, "after": {}}
    for _ in range(args.rounds):
        for side in ("before", "after"):
            for dtype, table in measure(getattr(args, side), args.seconds).items():
                for workload, rates in table.items():
                    key = (dtype, workload)
                    rate = rates.get("cymlp cython", 0.0)
                    best[side][key] = max(best[side].get(key, 0.0), rate)
    print(f"{'dtype':<9}{'workload':<42}{'before /s':>13}{'after /s':>13}{'after/before':>14}")
    for key in best["before"]:
        before, after = best["before"][key], best["after"].get(key, float("nan"))
        print(f"{key[0]:<9}{key[1]:<42}{before:>13,.0f}{after:>13,.0f}{after / before:>13.2f}x")


if __name__ == "__main__":
    sys.exit(main())
