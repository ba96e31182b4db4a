"""The command line, run as a user would: in a subprocess."""

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import cymlp
import cymlp.cli
from cymlp import MLP


def run_cli(*args, backend=None, command=None):
    # `python -m cymlp` runs the cymlp this interpreter imports (PYTHONPATH
    # included): the code under test, never a stale installed copy.
    command = command or [sys.executable, "-m", "cymlp"]
    env = dict(os.environ)
    if backend:
        env["CYMLP_BACKEND"] = backend
    return subprocess.run(command + list(args), capture_output=True, text=True, env=env,
                          timeout=120)


def installed_console_script():
    """The ``cymlp`` command on PATH, else the one beside this interpreter, else None."""
    beside = os.path.join(os.path.dirname(sys.executable), "cymlp")
    return shutil.which("cymlp") or (beside if os.access(beside, os.X_OK) else None)


def test_the_console_script_is_declared_and_installed():
    # pyproject.toml declares `cymlp = "cymlp.cli:main"`; an installed cymlp
    # carries that entry point, and its script runs. (The behaviour tests use
    # `python -m cymlp`: a script on PATH may belong to another install.)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pyproject = os.path.join(root, "pyproject.toml")
    if os.path.isfile(pyproject):
        with open(pyproject, encoding="utf-8") as file:
            text = file.read()
        assert re.search(r'^\[project\.scripts\]\s*^cymlp = "cymlp\.cli:main"$', text,
                         re.MULTILINE), "pyproject.toml does not declare the cymlp script"
    try:
        entry_points = importlib.metadata.distribution("cymlp").entry_points
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("cymlp is not installed (running from a source tree)")
    (entry_point,) = [ep for ep in entry_points
                      if ep.group == "console_scripts" and ep.name == "cymlp"]
    assert entry_point.value == "cymlp.cli:main"
    assert entry_point.load() is cymlp.cli.main
    script = installed_console_script()
    assert script is not None, "cymlp is installed without its console script"
    result = run_cli("--help", command=[script])
    assert result.returncode == 0, result.stderr
    assert "usage: cymlp" in result.stdout and "train" in result.stdout


def test_demo_prints_the_tutorial_output(backend):
    result = run_cli("demo", backend=backend)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("Epoch: ")]
    assert len(epochs) == 100
    assert epochs[0].startswith("Epoch: 1, Accuracy: ")
    pattern = re.compile(r"^Epoch: (\d+), Accuracy: (0\.00|33\.33|66\.67|100\.00)%$")
    assert all(pattern.match(line) for line in epochs), epochs
    assert epochs[-1] == "Epoch: 100, Accuracy: 100.00%"
    assert "Trained w1:" in lines and "Trained w2:" in lines
    assert "Predicted Letter: A" in lines
    assert ["  A -> A", "  B -> B", "  C -> C"] == [line for line in lines if "->" in line]
    assert f"Backend: {backend}" in result.stdout


@pytest.mark.parametrize("seed", range(12))
def test_demo_defaults_reach_full_accuracy_for_any_seed(backend, seed):
    result = run_cli("demo", "--seed", str(seed), backend=backend)
    assert result.returncode == 0, result.stderr
    assert "Epoch: 100, Accuracy: 100.00%" in result.stdout


def printed_weights(stdout):
    """The demo's "Trained w1:" and "Trained w2:" matrices, parsed (8 decimals)."""
    number = re.compile(r"-?\d+\.\d*(?:e[-+]?\d+)?")
    w1_text = stdout.split("Trained w1:\n")[1].split("Trained w2:\n")[0]
    w2_text = stdout.split("Trained w2:\n")[1].split("Predicted Letter:")[0]
    return [np.array([float(x) for x in number.findall(text)]) for text in (w1_text, w2_text)]


def demo_twin(learning_rate, seed, epochs, backend):
    """The tutorial's network trained in Python as the demo documents it."""
    X, Y = cymlp.datasets.letters("ABC")
    net = MLP([30, 5, 3], activation="sigmoid", output_activation="sigmoid", loss="mse",
              bias=False, init="uniform", seed=seed, backend=backend)
    history = net.fit(X, Y, epochs=epochs, learning_rate=learning_rate, batch_size=1,
                      shuffle=False)
    return net, history


def test_demo_options(backend):
    result = run_cli("demo", "--epochs", "3", "--learning-rate", "0.5", "--seed", "4",
                     "--backend", backend)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Epoch: ") == 3
    assert f"Backend: {backend}" in result.stdout
    # --learning-rate and --seed took effect: each run prints the weights of
    # a Python MLP trained with its settings (rounded to 8 decimals), and
    # changing either option changes them.
    printed = {(0.5, 4): printed_weights(result.stdout)}
    for learning_rate, seed in [(2.0, 4), (0.5, 5)]:
        other = run_cli("demo", "--epochs", "3", "--learning-rate", str(learning_rate),
                        "--seed", str(seed), "--backend", backend)
        assert other.returncode == 0, other.stderr
        printed[learning_rate, seed] = printed_weights(other.stdout)
    for (learning_rate, seed), weights in printed.items():
        net, history = demo_twin(learning_rate, seed, 3, backend)
        for shown, trained in zip(weights, net.weights):
            np.testing.assert_allclose(shown, trained.ravel(), rtol=0, atol=5.1e-9,
                                       err_msg=f"--learning-rate {learning_rate} --seed {seed}")
        if (learning_rate, seed) == (0.5, 4):
            epochs = [line for line in result.stdout.splitlines() if line.startswith("Epoch: ")]
            assert epochs == [f"Epoch: {epoch}, Accuracy: {100 * accuracy:.2f}%"
                              for epoch, accuracy in enumerate(history.accuracy, start=1)]
            assert result.stdout.rstrip().endswith(f"final loss {history.loss[-1]:.6f}")
    for changed in [(2.0, 4), (0.5, 5)]:
        for shown, reference in zip(printed[changed], printed[0.5, 4]):
            assert np.abs(shown - reference).max() > 1e-3, changed


def test_train_learning_rate_and_seed_take_effect(backend, tmp_path):
    # The saved model is the Python MLP trained with the same settings, and a
    # different --learning-rate or --seed gives a different one.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.tanh(X @ [1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=60)
    data = tmp_path / "data.npz"
    np.savez(data, X=X, y=y)
    models = {}
    for learning_rate, seed in [(0.05, 7), (0.2, 7), (0.05, 8)]:
        out = tmp_path / f"model-{learning_rate}-{seed}.npz"
        result = run_cli("train", str(data), "--target", "y", "--loss", "mse", "--hidden", "4",
                         "--activation", "tanh", "--optimizer", "sgd", "--momentum", "0.5",
                         "--epochs", "3", "--batch-size", "16", "--no-standardize", "--quiet",
                         "--learning-rate", str(learning_rate), "--seed", str(seed),
                         "--backend", backend, "--out", str(out))
        assert result.returncode == 0, result.stderr
        saved = cymlp.load(out, backend=backend)
        twin = MLP([3, 4, 1], activation="tanh", output_activation="identity", loss="mse",
                   init="glorot_uniform", dtype=np.float64, seed=seed, backend=backend)
        twin.fit(X, y[:, None], epochs=3, learning_rate=learning_rate, batch_size=16,
                 optimizer="sgd", momentum=0.5)
        np.testing.assert_allclose(saved.params, twin.params, rtol=1e-12, atol=1e-15,
                                   err_msg=f"--learning-rate {learning_rate} --seed {seed}")
        models[learning_rate, seed] = saved.params
    assert not np.allclose(models[0.2, 7], models[0.05, 7], rtol=1e-3, atol=0)
    assert not np.allclose(models[0.05, 8], models[0.05, 7], rtol=1e-3, atol=0)


@pytest.mark.parametrize("args, fragment", [
    (["demo", "--epochs", "0"], "--epochs"),
    (["demo", "--epochs", "many"], "--epochs"),
    (["demo", "--learning-rate", "-1"], "--learning-rate"),
    (["demo", "--learning-rate", "nan"], "--learning-rate"),
    (["demo", "--backend", "gpu"], "--backend"),
    (["demo", "--bogus"], "--bogus"),
    (["nonsense"], "nonsense"),
    ([], "COMMAND"),
])
def test_bad_options_print_one_line_and_fail(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert fragment in result.stderr


def test_help_for_every_command():
    for args in (["--help"], ["demo", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0
        assert "usage: cymlp" in result.stdout
