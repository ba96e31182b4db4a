"""cymlp.tutorial against a plain-NumPy transcription of the tutorial."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cymlp
from cymlp import tutorial


@pytest.fixture(autouse=True)
def tutorial_backend(backend):
    tutorial.use_backend(backend)
    yield
    tutorial.use_backend(None)


# ---- the oracle: the tutorial's own code, transcribed -----------------------

def ref_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def ref_f_forward(x, w1, w2):
    a1 = ref_sigmoid(x.dot(w1))
    return ref_sigmoid(a1.dot(w2))


def ref_loss(out, Y):
    return np.sum(np.square(out - Y)) / len(Y)


def ref_back_prop(x, y, w1, w2, alpha):
    a1 = ref_sigmoid(x.dot(w1))
    a2 = ref_sigmoid(a1.dot(w2))
    d2 = a2 - y
    d1 = np.multiply(w2.dot(d2.transpose()).transpose(), np.multiply(a1, 1 - a1))
    w1 = w1 - alpha * x.transpose().dot(d1)
    w2 = w2 - alpha * a1.transpose().dot(d2)
    return w1, w2


def ref_train(x, Y, w1, w2, alpha, epoch):
    acc, losses = [], []
    for _ in range(epoch):
        per_sample, correct = [], 0
        for i in range(len(x)):
            out = ref_f_forward(x[i], w1, w2)
            per_sample.append(ref_loss(out, Y[i]))
            correct += int(np.argmax(out) == np.argmax(Y[i]))
            w1, w2 = ref_back_prop(x[i], Y[i], w1, w2, alpha)
        acc.append(100 * correct / len(x))
        losses.append(sum(per_sample) / len(x))
    return acc, losses, w1, w2


def tutorial_data():
    X, Y = cymlp.datasets.letters()
    return [row.reshape(1, 30) for row in X], Y


def start_weights(seed):
    np.random.seed(seed)
    return np.random.randn(30, 5), np.random.randn(5, 3)


# ---- the tests ---------------------------------------------------------------

def test_letters_match_the_tutorial_grids():
    X, Y = cymlp.datasets.letters()
    a = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1]
    b = [0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0]
    c = [0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    np.testing.assert_array_equal(X, [a, b, c])
    np.testing.assert_array_equal(Y, np.eye(3))
    assert X.dtype == Y.dtype == np.float64


def test_generate_wt_uses_numpys_global_generator():
    np.random.seed(3)
    expected = np.array([np.random.randn() for _ in range(30 * 5)]).reshape(30, 5)
    np.random.seed(3)
    np.testing.assert_array_equal(tutorial.generate_wt(30, 5), expected)


def test_sigmoid_and_loss_are_the_tutorials():
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(tutorial.sigmoid(z), ref_sigmoid(z), rtol=1e-15)
    with np.errstate(over="raise", invalid="raise"):  # the naive form overflows here
        assert tutorial.sigmoid(np.array([-1000.0]))[0] == 0.0
    out, y = np.array([0.2, 0.7, 0.1]), np.array([0.0, 1.0, 0.0])
    assert tutorial.loss(out, y) == pytest.approx((0.04 + 0.09 + 0.01) / 3)


def test_forward_matches(backend):
    x, _ = tutorial_data()
    w1, w2 = start_weights(0)
    for row in x:
        np.testing.assert_allclose(tutorial.f_forward(row, w1, w2), ref_f_forward(row, w1, w2),
                                   rtol=1e-12)
    assert tutorial.feed_forward is tutorial.f_forward


def test_back_prop_matches_one_step_and_leaves_inputs_alone(backend):
    x, Y = tutorial_data()
    w1, w2 = start_weights(1)
    w1_before, w2_before = w1.copy(), w2.copy()
    new1, new2 = tutorial.back_prop(x[0], Y[0], w1, w2, 0.1)
    ref1, ref2 = ref_back_prop(x[0], Y[0], w1, w2, 0.1)
    np.testing.assert_allclose(new1, ref1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(new2, ref2, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(w1, w1_before)
    np.testing.assert_array_equal(w2, w2_before)
    assert not np.array_equal(new2, w2)


def test_train_matches_step_for_step(backend, capsys):
    x, Y = tutorial_data()
    w1, w2 = start_weights(2)
    ref_w1, ref_w2 = w1, w2
    for _ in range(20):  # epoch by epoch: every intermediate state agrees
        acc, losses, w1, w2 = tutorial.train(x, Y, w1, w2, 0.1, 1)
        ref_acc, ref_losses, ref_w1, ref_w2 = ref_train(x, Y, ref_w1, ref_w2, 0.1, 1)
        assert acc == ref_acc
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-12)
        np.testing.assert_allclose(w1, ref_w1, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(w2, ref_w2, rtol=1e-10, atol=1e-13)
    assert capsys.readouterr().out.count("Epoch: 1, Accuracy: ") == 20


def test_train_100_epochs_reaches_full_accuracy(backend, capsys):
    x, Y = tutorial_data()
    w1, w2 = start_weights(0)
    acc, losses, t1, t2 = tutorial.train(x, Y, w1, w2, 0.1, 100)
    ref_acc, ref_losses, r1, r2 = ref_train(x, Y, w1, w2, 0.1, 100)
    assert acc == ref_acc and acc[-1] == 100.0
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10)
    np.testing.assert_allclose(t1, r1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t2, r2, rtol=1e-10, atol=1e-12)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Epoch: 1, Accuracy: ") and lines[-1] == "Epoch: 100, Accuracy: 100.00%"
    assert [tutorial.predict(row, t1, t2) for row in x] == ["A", "B", "C"]
    assert "Predicted Letter: A" in capsys.readouterr().out


def test_bad_arguments_name_the_argument(backend):
    x, Y = tutorial_data()
    w1, w2 = start_weights(0)
    # Each message starts with the argument's name, then what was expected
    # and what was received.
    with pytest.raises(ValueError, match=r"^w2 must have shape \(5, n_outputs\), one row per "
                                         r"hidden unit of w1 \(shape \(30, 5\)\); got w2 of "
                                         r"shape \(4, 3\)$"):
        tutorial.f_forward(x[0], w1, w2[:4])
    with pytest.raises(ValueError, match=r"^x must have 30 values per sample, one per row of w1 "
                                         r"\(shape \(30, 5\)\); got x of shape \(1, 29\)$"):
        tutorial.f_forward(np.ones((1, 29)), w1, w2)
    with pytest.raises(ValueError, match=r"^alpha must be a finite number > 0\b.*; got -0\.1$"):
        tutorial.train(x, Y, w1, w2, -0.1, 1)
    with pytest.raises(ValueError, match=r"^Y must have shape \(3, 3\): 3 value\(s\) per "
                                         r"sample, one per column of w2 \(shape \(5, 3\)\), "
                                         r"for 3 sample\(s\) of x; got Y of shape \(3, 2\)$"):
        tutorial.train(x, Y[:, :2], w1, w2, 0.1, 1)
    with pytest.raises(ValueError, match=r"^x and Y must have the same number of samples; "
                                         r"got 3 and 6$"):
        tutorial.train(x, np.vstack([Y, Y]), w1, w2, 0.1, 1)
    with pytest.raises(ValueError, match=r"^x must contain only finite values"):
        tutorial.back_prop(x[0] * np.nan, Y[0], w1, w2, 0.1)
    with pytest.raises(TypeError, match=r"^epoch must be an integer; got 2\.5$"):
        tutorial.train(x, Y, w1, w2, 0.1, 2.5)


# The tutorial's own NumPy definitions: those of the whole-process benchmark
# (benchmarks/tutorial_process.py, read by _tutorial_process_module below).

TUTORIAL_SCRIPT = '''
import numpy as np
{definitions}
a = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1]
b = [0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0]
c = [0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
y = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
x = [np.array(a).reshape(1, 30), np.array(b).reshape(1, 30), np.array(c).reshape(1, 30)]
y = np.array(y)
np.random.seed(7)
w1 = generate_wt(30, 5)
w2 = generate_wt(5, 3)
acc, losss, w1, w2 = train(x, y, w1, w2, 0.1, 100)
np.set_printoptions(precision=6, suppress=True)
print("Trained w1:", w1)
print("Trained w2:", w2)
predict(x[1], w1, w2)
'''


def test_tutorial_script_runs_unchanged_with_the_import(backend, tmp_path):
    """The tutorial's script gives the same output with its definitions swapped out."""
    outputs = []
    own_definitions = _tutorial_process_module().TUTORIAL_DEFINITIONS
    for definitions in (own_definitions, "from cymlp.tutorial import *"):
        script = tmp_path / "tutorial_script.py"
        script.write_text(TUTORIAL_SCRIPT.format(definitions=textwrap.dedent(definitions)))
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                env={**__import__("os").environ, "CYMLP_BACKEND": backend},
                                timeout=120)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert "Epoch: 100, Accuracy: 100.00%" in outputs[1]
    assert outputs[1].rstrip().endswith("Predicted Letter: B")


def _tutorial_process_module():
    """benchmarks/tutorial_process.py, whose two scripts the tutorial benchmark times."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "tutorial_process.py"
    spec = importlib.util.spec_from_file_location("tutorial_process", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed, epochs", [(42, 30), (3, 150)])
def test_tutorial_process_prints_byte_for_byte_what_the_tutorial_prints(backend, tmp_path,
                                                                          seed, epochs):
    """The tutorial as a whole script, default print options: the same bytes on stdout.

    The scripts are the benchmark's (benchmarks/tutorial_process.py): the
    tutorial's own NumPy definitions, and the same script with them replaced
    by ``from cymlp.tutorial import *``.
    """
    import os

    scripts = _tutorial_process_module().write_scripts(str(tmp_path), epochs, seed=seed)
    outputs = []
    for script in scripts:
        result = subprocess.run([sys.executable, script], capture_output=True, timeout=120,
                                env={**os.environ, "CYMLP_BACKEND": backend})
        assert result.returncode == 0, result.stderr.decode()
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    lines = outputs[1].decode().splitlines()
    assert lines[:epochs] == [line for line in lines if line.startswith("Epoch: ")]
    assert lines[epochs - 1].startswith(f"Epoch: {epochs}, Accuracy: ")
    assert lines[epochs].startswith("Trained w1: [[")
    assert lines[-1] == "Predicted Letter: A"
