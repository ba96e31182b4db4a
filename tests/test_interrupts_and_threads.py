"""Ctrl-C during fit, and several threads on one network."""

import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import cymlp
from cymlp import MLP

CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import cymlp
    backend, path = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    X = rng.random((5000, 64)); Y = np.eye(10)[rng.integers(0, 10, 5000)]
    net = cymlp.MLP([64, 128, 10], seed=0, backend=backend)
    print("READY", flush=True)
    try:
        net.fit(X, Y, epochs=100000, batch_size=1, learning_rate=0.01)
    except KeyboardInterrupt:
        caught = time.monotonic()
        net.save(path)
        print("INTERRUPTED", caught, net.history.epochs, int(net._step[0]), flush=True)
        before = net.params.copy()
        net.fit(X[:100], Y[:100], epochs=1, learning_rate=0.01)
        print("CONTINUED", bool(np.isfinite(net.params).all()),
              bool((net.params != before).any()), flush=True)
""")


def test_ctrl_c_stops_fit_quickly_and_leaves_a_consistent_network(backend, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    model = tmp_path / "interrupted.npz"
    child = subprocess.Popen([sys.executable, str(script), backend, str(model)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "READY"
        time.sleep(1.5)  # well into training (each epoch is several kernel calls)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        lines = [child.stdout.readline().split() for _ in range(2)]
        child.wait(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, child.stderr.read()
    interrupted, continued = lines
    assert interrupted[0] == "INTERRUPTED"
    latency = float(interrupted[1]) - sent
    assert latency < 0.5, f"fit took {latency:.3f} s to stop"
    epochs, steps = int(interrupted[2]), int(interrupted[3])
    # Batch size 1: every completed epoch is 5000 steps; the interrupted one
    # contributes the steps it completed, and the history only whole epochs.
    assert steps >= 5000 * epochs and steps > 0
    assert continued == ["CONTINUED", "True", "True"]
    loaded = cymlp.load(model, backend=backend)
    assert loaded._step[0] == steps and loaded.history.epochs == epochs
    assert np.isfinite(loaded.params).all()


def data():
    rng = np.random.default_rng(1)
    X = rng.random((400, 20))
    return X, np.eye(4)[rng.integers(0, 4, 400)]


def test_predict_from_eight_threads_matches_serial(backend):
    X, Y = data()
    net = MLP([20, 64, 4], activation="tanh", output_activation="softmax",
              loss="cross_entropy", seed=2, backend=backend)
    net.fit(X, Y, epochs=2, batch_size=8)
    chunks = [X[i::8] for i in range(8)]
    serial = [net.predict(chunk) for chunk in chunks]
    results = [None] * 8
    barrier = threading.Barrier(8)

    def worker(index):
        barrier.wait()
        for _ in range(20):
            results[index] = net.predict(chunks[index])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for alone, together in zip(serial, results):
        np.testing.assert_array_equal(together, alone)


def test_second_fit_on_the_same_network_is_refused(backend):
    X, Y = data()
    net = MLP([20, 64, 4], seed=3, backend=backend)
    started = threading.Event()
    errors = []

    def callback(epoch, history):
        started.set()
        time.sleep(0.05)

    def first():
        net.fit(X, Y, epochs=20, callback=callback)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(30)
    try:
        net.fit(X, Y, epochs=1)
    except RuntimeError as error:
        errors.append(str(error))
    try:
        net.reset()
    except RuntimeError as error:
        errors.append(str(error))
    predicted = net.predict(X)          # reading while training works
    thread.join()
    assert len(errors) == 2 and all("already running" in message for message in errors)
    assert np.isfinite(predicted).all()
    # The refused calls changed nothing: the result equals an undisturbed run.
    alone = MLP([20, 64, 4], seed=3, backend=backend)
    alone.fit(X, Y, epochs=20)
    np.testing.assert_array_equal(net.params, alone.params)
    net.fit(X, Y, epochs=1)              # and the lock is released afterwards
