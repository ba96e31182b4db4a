"""Memory leaks: thousands of construct -> fit -> predict -> save -> load cycles.

Resident memory is read from /proc/self/statm (Linux only) every
``SAMPLE_EVERY`` cycles after a warm-up, once caches, allocator pools and
lazily imported modules have settled; ``gc.collect()`` runs before each
reading. The growth per cycle is the median of the pairwise slopes of those
readings (Theil-Sen): a leak grows memory at a steady rate and moves it, while
one-off steps (an allocator arena or a page added once) do not. The bound is a
quarter of the smallest buffer a cycle's fit allocates (the smallest array its
backend's Trainer allocates for itself, found by walking what the Trainer holds:
the gradient, ``n_params x itemsize``, in both backends, or the compiled
Trainer's workspace when that is smaller), so a leak of one such buffer (or of
a memoryview's buffer reference, a file handle's read buffer) per cycle fails;
so does one Python object per cycle, through the count of allocated Python
memory blocks. Reference counts of the inputs and the collection of networks,
of the Trainers their fits built and of every buffer those allocated are
checked exactly.
"""

import gc
import os
import sys
import weakref

import numpy as np
import pytest
from _helpers import owned_arrays

import cymlp
from cymlp import MLP

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux")
                                or not os.path.exists("/proc/self/statm"),
                                reason="reads resident memory from /proc/self/statm")

CYCLES = 2000
WARM_UP = 200
SAMPLE_EVERY = 50
MAX_GROWTH = 10 * 2 ** 20       # bytes, over all the cycles measured
# Python memory blocks (sys.getallocatedblocks) per cycle: one object kept per
# cycle makes the slope at least 1; caches that still fill slowly stay far below.
MAX_BLOCKS_PER_CYCLE = 0.5


def resident_bytes():
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def median_slope(x, y):
    """Theil-Sen slope: the median of the slopes between every pair of points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    first, second = np.triu_indices(len(x), k=1)
    return float(np.median((y[second] - y[first]) / (x[second] - x[first])))


def growth_over_cycles(cycle, cycles=CYCLES, warm_up=WARM_UP, every=SAMPLE_EVERY):
    """(resident bytes per cycle, Python blocks per cycle, total resident growth).

    Measured from after the warm-up to the end, from a reading every ``every``
    cycles.
    """
    for index in range(warm_up):
        cycle(index)
    samples = []
    for index in range(warm_up, cycles):
        if (index - warm_up) % every == 0:
            samples.append((index, resident_bytes(), sys.getallocatedblocks()))
        cycle(index)
    samples.append((cycles, resident_bytes(), sys.getallocatedblocks()))
    indices, resident, blocks = zip(*samples)
    return (median_slope(indices, resident), median_slope(indices, blocks),
            resident[-1] - resident[0])


def recording_trainer(kernels, record):
    """A subclass of ``kernels.Trainer`` that calls ``record(trainer, args)``
    once it is built and ``record(trainer, None)`` after every ``run``."""

    class RecordingTrainer(kernels.Trainer):
        def __init__(self, *args):
            super().__init__(*args)
            record(self, args)

        def run(self, order, start, stop):
            try:
                return super().run(order, start, stop)
            finally:
                record(self, None)

    return RecordingTrainer


def smallest_fit_buffer(monkeypatch, net, *args, **kwargs):
    """Bytes of the smallest array the Trainer of ``net.fit(*args, **kwargs)``
    allocates for itself (the arrays it was handed are not counted)."""
    sizes = []

    def record(trainer, args):
        if args is not None:
            sizes.extend(array.nbytes for array in owned_arrays(trainer, args) if array.nbytes)

    with monkeypatch.context() as patch:
        patch.setattr(net._kernels, "Trainer", recording_trainer(net._kernels, record))
        net.fit(*args, **kwargs)
    gradient = net.n_params * np.dtype(net.dtype).itemsize
    assert gradient in sizes, (sizes, gradient)     # the walk found the Trainer's buffers
    return min(sizes)


def check_growth(rates, smallest_buffer, what):
    per_cycle, blocks_per_cycle, growth = rates
    assert per_cycle < smallest_buffer / 4, (
        f"resident memory grows by {per_cycle:.0f} bytes per cycle over {what}; "
        f"the smallest buffer a fit allocates is {smallest_buffer} bytes")
    assert blocks_per_cycle < MAX_BLOCKS_PER_CYCLE, (
        f"{blocks_per_cycle:.2f} more Python memory blocks per cycle over {what}")
    assert growth < MAX_GROWTH, (f"resident memory grew by {growth / 2 ** 20:.1f} MiB over "
                                 f"{what}")


# Tiny random splits may leave a class out of one side: the warning that
# says so (tests/test_api_edges.py) is not what this test is about.
@pytest.mark.filterwarnings("ignore:validation_split=.*leaves class")
def test_fit_predict_save_load_cycles_do_not_leak(backend, tmp_path, monkeypatch):
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

    rates = growth_over_cycles(cycle)
    assert all(checks) and len(checks) == CYCLES // 100
    # The smallest buffer of the cycle: the float32 network's fit, batches of 3
    # (6 training rows after the validation split).
    smallest = smallest_fit_buffer(monkeypatch, MLP([4, 5, 2], dtype=np.float32,
                                                    backend=backend),
                                   X32[:6], Y[:6], epochs=1, batch_size=3, optimizer="sgd")
    check_growth(rates, smallest, f"{CYCLES - WARM_UP} cycles")


def test_error_paths_do_not_leak(backend, tmp_path, monkeypatch):
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

    rates = growth_over_cycles(cycle, cycles=1000, warm_up=100)
    assert outcomes == {"rejected": 1000, "refused": 1000, "diverged": 1000}
    smallest = smallest_fit_buffer(monkeypatch, MLP([3, 4, 2], activation="relu",
                                                    output_activation="identity", loss="mse",
                                                    seed=0, backend=backend),
                                   X, Y, epochs=1, learning_rate=0.01, batch_size=6)
    check_growth(rates, smallest, "900 failing cycles")


def test_calls_leave_the_reference_counts_of_their_inputs_unchanged(backend, dtype):
    """A kernel or a wrapper that keeps a reference to an input (or to a view of
    it) raises that input's reference count. The inputs have the network's dtype
    and order, so they reach the kernels without being copied."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 4)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 20)]
    X_val, Y_val = X[:6].copy(), Y[:6].copy()
    inputs = {"X": X, "Y": Y, "X_val": X_val, "Y_val": Y_val}

    def calls(seed):
        net = MLP([4, 6, 3], activation="relu", output_activation="softmax",
                  loss="cross_entropy", dtype=dtype, seed=seed, backend=backend)
        for optimizer in ("sgd", "adam"):
            net.fit(X, Y, epochs=2, batch_size=4, optimizer=optimizer, learning_rate=0.01,
                    validation_data=(X_val, Y_val))
        net.partial_fit(X, Y, learning_rate=0.01)
        net.predict(X)
        net.classify(X_val)
        net.loss(X, Y)
        net.accuracy(X_val, Y_val)

    calls(0)
    before = {name: sys.getrefcount(array) for name, array in inputs.items()}
    for seed in range(1, 11):
        calls(seed)
    gc.collect()
    after = {name: sys.getrefcount(array) for name, array in inputs.items()}
    assert after == before


def test_networks_and_the_buffers_of_their_fits_are_collected(backend, tmp_path, monkeypatch):
    """After ``del`` and ``gc.collect()`` nothing keeps a network, its parameters,
    the Trainers its fits built, or any array those Trainers held that was not
    the caller's data: the gradient, workspace and snapshots they allocated,
    the row orders they were handed, the parameters and optimizer state."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 5))
    Y = np.eye(2)[rng.integers(0, 2, 30)]
    path = tmp_path / "model.npz"
    net = MLP([5, 7, 2], activation="tanh", output_activation="softmax",
              loss="cross_entropy", seed=0, backend=backend)
    trainers, buffers = [], {}      # buffers: id -> (weak reference, bytes)
    gradient = net.n_params * X.itemsize
    with_gradient = []

    def record(trainer, args):
        if args is not None:
            trainers.append(weakref.ref(trainer))
            # The walk reaches what the Trainer allocated: its gradient, at least.
            with_gradient.append(any(array.nbytes == gradient
                                     for array in owned_arrays(trainer, args)))
        # After each run too: a run may allocate (row copies, snapshots).
        for array in owned_arrays(trainer, (X, Y)):
            known = buffers.get(id(array))
            if known is None or known[0]() is None:     # new, or an id reused
                buffers[id(array)] = (weakref.ref(array), array.nbytes)

    monkeypatch.setattr(net._kernels, "Trainer", recording_trainer(net._kernels, record))
    net.fit(X, Y, epochs=3, batch_size=4, optimizer="adam", learning_rate=0.01,
            validation_split=0.2)
    net.fit(X, Y, epochs=2, batch_size=30, momentum=0.9, learning_rate=0.01)
    net.partial_fit(X, Y, learning_rate=0.01)
    outputs = net.predict(X)
    net.save(path)
    loaded = cymlp.load(path, backend=backend)
    np.testing.assert_array_equal(loaded.predict(X), outputs)
    loaded.fit(X, Y, epochs=1, batch_size=8, learning_rate=0.01)
    assert len(trainers) == 4 and all(with_gradient)    # one per fit and partial_fit
    references = {"net": weakref.ref(net), "net.params": weakref.ref(net.params),
                  "net.weights[0]": weakref.ref(net.weights[0]),
                  "loaded": weakref.ref(loaded), "loaded.params": weakref.ref(loaded.params)}
    references.update((f"trainer {index}", reference) for index, reference in enumerate(trainers))
    references.update((f"array {index} held by a trainer ({size} bytes)", reference)
                      for index, (reference, size) in enumerate(buffers.values()))
    del net, loaded
    gc.collect()
    alive = [name for name, reference in references.items() if reference() is not None]
    assert alive == []
