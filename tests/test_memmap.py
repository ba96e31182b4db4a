"""Out-of-core on one machine: training reads a numpy.memmap in place.

The training rows (all of them, or those ``validation_split`` and the
estimators' early-stopping split leave) are indices into the array, visited
in the epoch's order by the kernels: no copy of the training set is made.
The oracle for the numbers is the same fit on the array in memory; for the
memory, a subprocess whose private memory (``RLIMIT_DATA``, which a
read-only file mapping does not count against) is smaller than the file.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cymlp

sklearn = pytest.importorskip("sklearn")
from cymlp.sklearn import MLPClassifier  # noqa: E402


def on_disk(tmp_path, array, name="X.npy"):
    path = tmp_path / name
    np.save(path, array)
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("options", [
    dict(batch_size=1, shuffle=True),
    dict(batch_size=16, shuffle=True, validation_split=0.2),
    dict(batch_size=7, optimizer="adam", validation_split=0.25, early_stopping=True,
         patience=2),
    dict(optimizer="lbfgs", validation_split=0.2),
])
def test_fit_on_a_memmap_equals_fit_in_memory(tmp_path, backend, dtype, options):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12)).astype(dtype)
    Y = np.eye(3)[rng.integers(0, 3, 300)]
    mapped = on_disk(tmp_path, X)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    nets = [cymlp.MLP([12, 6, 3], output_activation="softmax", loss="cross_entropy",
                      dtype=dtype, seed=1, backend=backend) for _ in range(2)]
    if options.get("optimizer") != "lbfgs":
        options = dict(options, learning_rate=0.05)
    histories = [net.fit(data, Y, epochs=4, **options)
                 for net, data in zip(nets, (mapped, X))]
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    # (An epoch's loss is summed per chunk, and chunk sizes follow wall time:
    # the same per-row losses may add up in another order. The weights are exact.)
    assert histories[0].loss == pytest.approx(histories[1].loss, rel=1e-12)
    assert histories[0].val_loss == pytest.approx(histories[1].val_loss, rel=1e-12)
    np.testing.assert_array_equal(nets[0].predict(mapped), nets[1].predict(X))
    nets[0].partial_fit(mapped, Y, batch_size=5)
    nets[1].partial_fit(X, Y, batch_size=5)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)


def test_estimator_on_a_memmap_equals_in_memory(tmp_path, backend):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 10))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    mapped = on_disk(tmp_path, X)
    options = dict(hidden_layer_sizes=(8,), max_iter=6, early_stopping=True,
                   n_iter_no_change=3, random_state=0, backend=backend)
    ours = MLPClassifier(**options).fit(mapped, y)
    reference = MLPClassifier(**options).fit(X, y)
    for mine, theirs in zip(ours.coefs_ + ours.intercepts_,
                            reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(mine, theirs)
    assert ours.validation_scores_ == reference.validation_scores_
    ours.set_params(early_stopping=False).partial_fit(mapped[:100], y[:100])
    reference.set_params(early_stopping=False).partial_fit(X[:100], y[:100])
    np.testing.assert_array_equal(ours.predict_proba(mapped), reference.predict_proba(X))


# The file is 800 MB; the subprocess may allocate about 300 MB of private
# memory beyond what it starts with, so any copy of the training rows fails.
_BOUNDED_FIT = textwrap.dedent("""
    import os, resource, sys, time
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy as np
    import cymlp
    from cymlp.sklearn import MLPClassifier

    def private_bytes():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData"):
                    return int(line.split()[1]) * 1024

    path, backend = sys.argv[1], sys.argv[2]
    X = np.load(path, mmap_mode="r")
    Y = np.eye(2)[(np.asarray(X[:, 0]) > 0).astype(int)]
    y = Y[:, 1].astype(int)
    allowed = private_bytes() + Y.nbytes + 300 * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (allowed, allowed))
    try:
        np.array(X)                        # the whole array does not fit: the limit bites
    except MemoryError:
        pass
    else:
        raise SystemExit("the memory limit did not stop a copy of the array")
    started = time.perf_counter()
    net = cymlp.MLP([X.shape[1], 8, 2], output_activation="softmax", loss="cross_entropy",
                    seed=0, backend=backend)
    history = net.fit(X, Y, epochs=1, batch_size=256, validation_split=0.02, shuffle=True,
                      learning_rate=0.01)
    net.partial_fit(X, Y, batch_size=256, shuffle=True)
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, batch_size=256,
                          early_stopping=True, validation_fraction=0.02, random_state=0,
                          backend=backend).fit(X, y)
    model.set_params(early_stopping=False).partial_fit(X, y)
    print(f"fits on a {X.nbytes / 1e6:.0f} MB memmap in {time.perf_counter() - started:.1f} s;"
          f" private memory {private_bytes() / 1e6:.0f} MB of the {allowed / 1e6:.0f} MB"
          f" allowed; val accuracy {history.val_accuracy[-1]:.2f}, "
          f"estimator score {model.score(X[:2000], y[:2000]):.2f}")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc: Linux")
def test_fit_on_a_memmap_larger_than_the_memory_allowed(tmp_path, backend):
    rows, features = 100_000, 1000
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(rows, features))
    rng = np.random.default_rng(0)
    for start in range(0, rows, 10_000):
        X[start:start + 10_000] = rng.normal(size=(10_000, features))
    X.flush()
    del X
    result = subprocess.run([sys.executable, "-c", _BOUNDED_FIT, str(path), backend],
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout
    print("\n" + result.stdout.strip())
    assert "fits on a 800 MB memmap" in result.stdout
