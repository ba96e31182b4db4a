"""Print the benchmark results as throughput and ratios within each group.

    pytest benchmarks --benchmark-only --benchmark-json=bench.json
    python benchmarks/ratios.py bench.json

For each group (one workload), every entry's samples/s and its speed-up over
the slowest entry of the group, so backends compare within one run.
"""

import json
import sys


def main(path):
    with open(path) as file:
        results = json.load(file)["benchmarks"]
    groups = {}
    for result in results:
        groups.setdefault(result["group"], []).append(result)
    for group, entries in groups.items():
        slowest = max(entry["stats"]["mean"] for entry in entries)
        print(f"\n{group}")
        for entry in sorted(entries, key=lambda e: e["stats"]["mean"]):
            mean = entry["stats"]["mean"]
            samples = entry["extra_info"].get("samples", 1)
            name = entry["name"].split("[", 1)[-1].rstrip("]") if "[" in entry["name"] else entry["name"]
            print(f"  {name:<40} {mean * 1e3:10.3f} ms  {samples / mean:14,.0f} samples/s"
                  f"  {slowest / mean:8.1f}x")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench.json")
