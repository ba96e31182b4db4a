"""Ctrl-C during fit, and several threads on one network."""

import json
import subprocess
import sys
import textwrap
import threading

import numpy as np

import cymlp
from cymlp import MLP

CHILD = textwrap.dedent("""
    import json, os, signal, sys, threading
    import numpy as np
    import cymlp
    backend, path = sys.argv[1], sys.argv[2]
    # Ctrl-C raises KeyboardInterrupt, as in an interactive session (even if
    # the test runner was started with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = np.random.default_rng(0)
    X = rng.random((20000, 64)); Y = np.eye(10)[rng.integers(0, 10, 20000)]
    net = cymlp.MLP([64, 128, 10], seed=0, backend=backend)

    # Every kernel call of the fit is recorded: the step count when it began,
    # its rows, and whether SIGINT had been sent by then. The signal goes out
    # during the first call of the second epoch, with most of it still to run.
    # The trainer taking the steps is kept, to read its step count from the
    # signalling thread while it runs.
    calls, trainers = [], []
    sent, running = threading.Event(), threading.Event()
    Trainer = net._kernels.Trainer
    class RecordedTrainer(Trainer):
        def run(self, order, start, stop):
            trainers.append(self)
            calls.append([int(self.step), stop - start, sent.is_set()])
            if calls[-1][0] == X.shape[0]:
                running.set()
            return super().run(order, start, stop)
    net._kernels.Trainer = RecordedTrainer

    at_signal = []
    def interrupt():
        running.wait()
        os.kill(os.getpid(), signal.SIGINT)    # a real SIGINT, as Ctrl-C sends
        at_signal.append(int(trainers[-1].step))
        sent.set()
    threading.Thread(target=interrupt, daemon=True).start()
    try:
        net.fit(X, Y, epochs=100000, batch_size=1, learning_rate=0.01)
    except KeyboardInterrupt:
        net._kernels.Trainer = Trainer
        assert sent.wait(60)
        net.save(path)
        print(json.dumps(dict(calls=calls, at_signal=at_signal[0], epochs=net.history.epochs,
                              steps=net.state_dict()["step"], rows=X.shape[0])), flush=True)
        before = net.params.copy()
        net.fit(X[:100], Y[:100], epochs=1, learning_rate=0.01)
        print("CONTINUED", bool(np.isfinite(net.params).all()),
              bool((net.params != before).any()), flush=True)
""")


def test_ctrl_c_stops_fit_within_the_chunk_running_and_leaves_a_consistent_network(
        backend, tmp_path):
    """The promise, in steps rather than seconds: fit runs each epoch in kernel
    calls of whole batches (chunks, sized by the time they take), and Ctrl-C
    stops it by the end of the call it interrupts (or sooner), with no further
    call; the network is left consistent at the last step taken. The child
    process sends itself the SIGINT from a thread as the second epoch begins."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    model = tmp_path / "interrupted.npz"
    child = subprocess.Popen([sys.executable, str(script), backend, str(model)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=300)
    finally:
        child.kill()
    assert child.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, out
    report = json.loads(lines[0])
    calls, at_signal, steps = report["calls"], report["at_signal"], report["steps"]
    epochs, rows = report["epochs"], report["rows"]
    # No kernel call began after the signal, but for one that Python had
    # already been about to make when it arrived: it can only be the last.
    assert not any(call[2] for call in calls[:-1])
    # The fit stopped by the end of the last call, the one the signal came
    # during (or just before): at most that call's steps (batch size 1: one
    # step per row) after the signal.
    started, chunk, _ = calls[-1]
    assert started <= at_signal <= steps <= started + chunk
    # Each call takes one step per row and the next one goes on from there; an
    # epoch runs in several calls, not in one (chunks start well below the
    # 20000 rows, then grow or shrink with the time they take).
    assert all(later[0] == earlier[0] + earlier[1] for earlier, later in zip(calls, calls[1:]))
    assert calls[0][0] == 0 and calls[0][1] < rows
    assert rows <= at_signal and epochs >= 1
    # Every completed epoch is `rows` steps; the interrupted one contributes
    # the steps it completed, and the history only whole epochs.
    assert rows * epochs <= steps <= rows * (epochs + 1) and steps > 0
    assert lines[1].split() == ["CONTINUED", "True", "True"]
    loaded = cymlp.load(model, backend=backend)
    assert loaded.state_dict()["step"] == steps and loaded.history.epochs == epochs
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
    """The refused calls are made while the first fit is certainly running: its
    callback (inside fit) waits until they are done."""
    X, Y = data()
    net = MLP([20, 64, 4], seed=3, backend=backend)
    started, refused = threading.Event(), threading.Event()
    errors, waited = [], []

    def callback(epoch, history):
        if epoch == 1:
            started.set()
            waited.append(refused.wait(60))

    def first():
        net.fit(X, Y, epochs=20, callback=callback)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert started.wait(60)
        try:
            net.fit(X, Y, epochs=1)
        except RuntimeError as error:
            errors.append(str(error))
        try:
            net.reset()
        except RuntimeError as error:
            errors.append(str(error))
        predicted = net.predict(X)          # reading while training works
        still_running = thread.is_alive()
    finally:
        refused.set()
        thread.join()
    assert still_running and waited == [True]
    assert len(errors) == 2 and all("already running" in message for message in errors)
    assert np.isfinite(predicted).all()
    # The refused calls changed nothing: the result equals an undisturbed run.
    alone = MLP([20, 64, 4], seed=3, backend=backend)
    alone.fit(X, Y, epochs=20)
    np.testing.assert_array_equal(net.params, alone.params)
    net.fit(X, Y, epochs=1)              # and the lock is released afterwards
