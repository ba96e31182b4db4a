"""The command line, run as a user would: in a subprocess."""

import os
import re
import subprocess
import sys

import pytest


def run_cli(*args, backend=None, module=False):
    command = [sys.executable, "-m", "cymlp"] if module else [
        os.path.join(os.path.dirname(sys.executable), "cymlp")]
    env = dict(os.environ)
    if backend:
        env["CYMLP_BACKEND"] = backend
    return subprocess.run(command + list(args), capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("module", [False, True], ids=["console-script", "python-m"])
def test_demo_prints_the_tutorial_output(backend, module):
    result = run_cli("demo", backend=backend, module=module)
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


def test_demo_options(backend):
    result = run_cli("demo", "--epochs", "3", "--learning-rate", "0.5", "--seed", "4",
                     "--backend", backend)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Epoch: ") == 3
    assert f"Backend: {backend}" in result.stdout


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
