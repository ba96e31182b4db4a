"""Memory leaks: thousands of construct -> fit -> predict -> save -> load cycles.

Resident memory is read from /proc/self/statm (Linux only) after a warm-up,
once caches, allocator pools and lazily imported modules have settled, and
again at the end; ``gc.collect()`` runs before each reading. A leak of one
small buffer per cycle (a workspace, a memoryview's buffer reference, a file
handle's read buffer) would grow by megabytes over the cycles measured.
"""

import gc
import os
import sys

import numpy as np
import pytest

import cymlp
from cymlp import MLP

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux")
                                or not os.path.exists("/proc/self/statm"),
                                reason="reads resident memory from /proc/self/statm")

CYCLES = 2000
WARM_UP = 200
MAX_GROWTH = 10 * 2 ** 20       # bytes


def resident_bytes():
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def growth_over_cycles(cycle, cycles=CYCLES, warm_up=WARM_UP):
    """Resident memory growth from after the warm-up to the end."""
    for index in range(warm_up):
        cycle(index)
    before = resident_bytes()
    for index in range(warm_up, cycles):
        cycle(index)
    return resident_bytes() - before


def test_fit_predict_save_load_cycles_do_not_leak(backend, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 4))
    Y = np.eye(2)[rng.integers(0, 2, 8)]
    X32 = X.astype(np.float32)
    path = tmp_path / "model.npz"
    checks = []

    def cycle(index):
        dtype = np.float32 if index % 2 else np.float64
        net = MLP([4, 5, 2], activation="tanh", output_activation="softmax",
                  loss="cross_entropy", dtype=dtype, seed=index, backend=backend)
        optimizer = ("sgd", "adam")[index % 4 // 2]
        net.fit(X32 if index % 2 else X, Y, epochs=2, batch_size=3, optimizer=optimizer,
                learning_rate=0.05, validation_split=0.25)
        outputs = net.predict(X)
        net.save(path)
        loaded = cymlp.load(path, backend=backend)
        if index % 100 == 0:
            checks.append(np.array_equal(loaded.predict(X), outputs))

    growth = growth_over_cycles(cycle)
    assert all(checks) and len(checks) == CYCLES // 100
    assert growth < MAX_GROWTH, (f"resident memory grew by {growth / 2 ** 20:.1f} MiB over "
                                 f"{CYCLES - WARM_UP} cycles")


def test_error_paths_do_not_leak(backend, tmp_path):
    """Rejected inputs, refused files and diverging fits, in a loop."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 3))
    Y = rng.normal(size=(6, 2))
    bad_X = X.copy()
    bad_X[2, 1] = np.nan
    damaged = tmp_path / "damaged.npz"
    net = MLP([3, 4, 2], activation="relu", output_activation="identity", seed=0,
              backend=backend)
    net.save(damaged)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF        # inside a member: a CRC error
    damaged.write_bytes(bytes(data))
    outcomes = {"rejected": 0, "refused": 0, "diverged": 0}

    def cycle(index):
        try:
            net.predict(bad_X if index % 2 else X[:, :2])
        except ValueError:
            outcomes["rejected"] += 1
        try:
            cymlp.load(damaged, backend=backend)
        except ValueError:
            outcomes["refused"] += 1
        diverging = MLP([3, 4, 2], activation="relu", output_activation="identity",
                        loss="mse", seed=index, backend=backend)
        try:
            diverging.fit(X * 1e3, Y, epochs=20, learning_rate=100.0, batch_size=6)
        except cymlp.TrainingDiverged:
            outcomes["diverged"] += 1

    growth = growth_over_cycles(cycle, cycles=1000, warm_up=100)
    assert outcomes == {"rejected": 1000, "refused": 1000, "diverged": 1000}
    assert growth < MAX_GROWTH, (f"resident memory grew by {growth / 2 ** 20:.1f} MiB over "
                                 f"900 failing cycles")
