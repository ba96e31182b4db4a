"""What ``cymlp`` reports as the user's mistake, and what it lets through as a bug.

A user's mistake (a bad option, a bad file, a learning rate that diverges, a
backend that is not installed) is one line on stderr and status 2. Anything
else is a bug in cymlp: ``main`` lets it propagate, so the traceback shows,
even when it is a ValueError or TypeError (the types the argument checks
use). Most tests call ``main`` in this process, to reach inside with
monkeypatch; one runs the command as a user would.
"""

import subprocess
import sys

import numpy as np
import pytest

import cymlp
import cymlp._backend
import cymlp._numpy_kernels
from cymlp.cli import main
from cymlp.cli._tabular import encode_target, one_hot


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(float)
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=y)
    return path


@pytest.fixture
def model(data, tmp_path):
    path = tmp_path / "model.npz"
    assert main(["train", str(data), "--target", "y", "--epochs", "2", "--quiet",
                 "--out", str(path)]) == 0
    return path


def train_args(data, tmp_path, *extra):
    return ["train", str(data), "--target", "y", "--epochs", "3", "--quiet",
            "--out", str(tmp_path / "out.npz"), *extra]


def assert_reported(status, capsys, *fragments):
    """Status 2 and one line on stderr holding ``fragments``."""
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---- bugs propagate ----------------------------------------------------------------------

@pytest.mark.parametrize("error", [
    ZeroDivisionError("a bug in the kernel"),
    AssertionError("a broken invariant"),
    # The types argument checks raise: still a bug when they come from inside training.
    ValueError("order holds a row index outside X"),
    TypeError("an internal call with the wrong argument"),
])
def test_an_error_inside_training_propagates(data, tmp_path, monkeypatch, error):
    def run(self, order, start, stop):
        raise error
    monkeypatch.setattr(cymlp._numpy_kernels.Trainer, "run", run)
    with pytest.raises(type(error), match=str(error)):
        main(train_args(data, tmp_path, "--backend", "numpy"))
    assert not (tmp_path / "out.npz").exists()


def test_an_error_inside_the_demo_propagates(monkeypatch):
    def run(self, order, start, stop):
        raise ValueError("a bug in the kernel")
    monkeypatch.setattr(cymlp._numpy_kernels.Trainer, "run", run)
    with pytest.raises(ValueError, match="a bug in the kernel"):
        main(["demo", "--backend", "numpy", "--epochs", "1"])


@pytest.mark.parametrize("command, patched, error", [
    (["predict"], "predict", ValueError("X has a bug")),
    (["evaluate", "--target", "y"], "predict", ZeroDivisionError("a bug")),
    (["evaluate", "--target", "y"], "loss", TypeError("a bug")),
])
def test_an_error_inside_a_saved_model_command_propagates(model, data, monkeypatch, command,
                                                          patched, error):
    def broken(self, *args):
        raise error
    monkeypatch.setattr(cymlp.MLP, patched, broken)
    with pytest.raises(type(error), match="bug"):
        main([command[0], str(model), str(data), *command[1:]])


def test_an_error_after_training_propagates(data, tmp_path, monkeypatch):
    def summary(self, epoch=-1):
        raise ValueError("a bug in History.summary")
    monkeypatch.setattr(cymlp.History, "summary", summary)
    with pytest.raises(ValueError, match="a bug in History.summary"):
        main(train_args(data, tmp_path))


def test_an_error_in_info_propagates(model, monkeypatch):
    def summary(self, epoch=-1):
        raise AssertionError("a bug in History.summary")
    monkeypatch.setattr(cymlp.History, "summary", summary)
    with pytest.raises(AssertionError):
        main(["info", str(model)])


def test_a_bug_shows_its_traceback_to_the_user(model, data):
    code = ("import sys, cymlp\n"
            "def broken(self, X):\n"
            "    raise ZeroDivisionError('a bug in predict')\n"
            "cymlp.MLP.predict = broken\n"
            "from cymlp.cli import main\n"
            f"sys.exit(main(['predict', {str(model)!r}, {str(data)!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode not in (0, 2), result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "ZeroDivisionError: a bug in predict" in result.stderr
    assert "cymlp predict: error" not in result.stderr


# ---- the user's mistakes are one line --------------------------------------------------

def test_divergence_is_reported(data, tmp_path, capsys):
    status = main(train_args(data, tmp_path, "--optimizer", "sgd", "--learning-rate", "1e300"))
    assert_reported(status, capsys, "diverged")
    assert not (tmp_path / "out.npz").exists()


def test_the_demo_reports_divergence(monkeypatch, capsys):
    def fit(self, *args, **kwargs):
        raise cymlp.TrainingDiverged("training diverged in epoch 1")
    monkeypatch.setattr(cymlp.MLP, "fit", fit)
    assert_reported(main(["demo", "--epochs", "1"]), capsys, "diverged")


@pytest.mark.parametrize("extra, fragment", [
    (["--validation-split", "0.999"], "--validation-split 0.999 leaves no training rows"),
    (["--early-stopping"], "--early-stopping needs --validation-split"),
    (["--momentum", "0.5"], "--momentum applies to --optimizer sgd"),
])
def test_options_fit_checks_are_reported(data, tmp_path, capsys, extra, fragment):
    assert_reported(main(train_args(data, tmp_path, *extra)), capsys, fragment)
    assert "_" not in capsys.readouterr().err.split(":")[0]


@pytest.mark.parametrize("extra, fragment", [
    (["--validation-split", "1.5"], "--validation-split"),
    (["--optimizer", "sgd", "--momentum", "nan"], "--momentum"),
    (["--weight-decay", "-1"], "--weight-decay"),
])
def test_option_ranges_are_usage_errors_naming_the_flag(data, tmp_path, capsys, extra,
                                                        fragment):
    with pytest.raises(SystemExit) as exit_info:
        main(train_args(data, tmp_path, *extra))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "_" not in err.replace("--validation-split", "")


@pytest.mark.parametrize("command", [["demo", "--epochs", "1"], None], ids=["demo", "train"])
def test_a_missing_backend_is_reported(data, tmp_path, monkeypatch, capsys, command):
    monkeypatch.setitem(cymlp._backend._MODULES, "cython", "cymlp._no_such_extension")
    args = command or train_args(data, tmp_path)
    assert_reported(main([*args, "--backend", "cython"]), capsys, "backend 'cython'",
                    "not available")


def test_a_bad_backend_variable_is_reported(data, tmp_path, model, monkeypatch, capsys):
    monkeypatch.setenv("CYMLP_BACKEND", "gpu")
    assert_reported(main(train_args(data, tmp_path)), capsys, "CYMLP_BACKEND")
    assert_reported(main(["predict", str(model), str(data)]), capsys, "CYMLP_BACKEND")


def test_unwritable_outputs_are_reported(data, model, tmp_path, capsys):
    assert_reported(main(train_args(data, tmp_path)[:-1] + [str(tmp_path)]), capsys,
                    "is a directory")
    assert_reported(main(["predict", str(model), str(data), "--out", str(tmp_path)]), capsys,
                    "--out")


def test_a_negative_seed_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--seed", "-1"])
    assert exit_info.value.code == 2
    assert "--seed" in capsys.readouterr().err


def test_features_that_overflow_when_standardised_are_reported(tmp_path, capsys):
    path = tmp_path / "huge.npz"
    np.savez(path, X=np.array([[1e308, 0.0], [-1e308, 1.0], [1e308, 2.0]]),
             y=np.array([0.0, 1.0, 0.0]))
    status = main(["train", str(path), "--target", "y", "--quiet",
                   "--out", str(tmp_path / "m.npz")])
    assert_reported(status, capsys, "too large to standardise", "--no-standardize")


@pytest.mark.parametrize("shape, fragment", [((0, 3), "no data rows"),
                                             ((4, 1), "no feature columns")])
def test_empty_tables_are_reported(tmp_path, capsys, shape, fragment):
    path = tmp_path / "table.npy"
    np.save(path, np.ones(shape))
    status = main(["train", str(path), "--target", "0", "--quiet",
                   "--out", str(tmp_path / "m.npz")])
    assert_reported(status, capsys, fragment)


# ---- the target encoding the estimators can share ----------------------------------------

def test_one_hot_sorts_the_classes():
    classes, Y = one_hot(np.array(["b", "a", "c", "a"]))
    assert classes.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(Y, [[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0]])
    assert Y.dtype == np.float64


def test_one_hot_with_given_classes_keeps_their_order():
    classes, Y = one_hot([7, 0, 7], classes=[7, 0, 3])
    assert classes.tolist() == [7, 0, 3]
    np.testing.assert_array_equal(Y, [[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    # Numbers compare by value, as the labels stored in a model's JSON do.
    np.testing.assert_array_equal(one_hot(np.array([0.0, 7.0]), classes=[0, 7])[1], np.eye(2))


def test_one_hot_errors():
    with pytest.raises(ValueError, match=r"^labels not among the classes: rose, tulip$"):
        one_hot(["rose", "a", "tulip"], classes=["a", "b"])
    with pytest.raises(ValueError, match=r"^labels must be 1-D; got shape \(2, 1\)$"):
        one_hot([[1], [2]])


def test_encode_target_for_each_loss():
    values = np.array([3.0, 5.0, 3.0])
    Y, activation, classes = encode_target(values, "bce", "f.csv", "y")
    assert activation == "sigmoid" and classes.tolist() == [3.0, 5.0]
    np.testing.assert_array_equal(Y, [[0], [1], [0]])
    Y, activation, classes = encode_target(values, "cross_entropy", "f.csv", "y")
    assert activation == "softmax" and Y.shape == (3, 2)
    Y, activation, classes = encode_target(values, "mse", "f.csv", "y")
    assert activation == "identity" and classes is None
    np.testing.assert_array_equal(Y, values[:, None])
