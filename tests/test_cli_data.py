"""cymlp train / predict / evaluate / info on temporary data files, through
subprocesses, including every error path (one line on stderr, non-zero exit)."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import cymlp


def run_cli(*args, backend=None, cwd=None):
    env = dict(os.environ)
    if backend:
        env["CYMLP_BACKEND"] = backend
    return subprocess.run([sys.executable, "-m", "cymlp", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300, cwd=cwd)


def write_blobs_csv(path, n=240, seed=0, names=("setosa", "versicolor", "virginica")):
    """Three well-separated Gaussian blobs in 4 features, class names as text."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [4, 4, 0, 0], [0, 4, 4, 4]], dtype=float)
    labels = rng.integers(0, 3, n)
    X = centres[labels] + rng.normal(scale=0.7, size=(n, 4)) + [10, -3, 100, 0.5]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["f1", "f2", "species", "f3", "f4"])
        for row, label in zip(X, labels):
            writer.writerow([row[0], row[1], names[label], row[2], row[3]])
    return X, labels


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_train_predict_evaluate_info_on_csv(backend, tmp_path):
    data = tmp_path / "train.csv"
    X, labels = write_blobs_csv(data)
    model = tmp_path / "model.npz"
    result = run_cli("train", data, "--target", "species", "--hidden", "16,8", "--activation",
                     "relu", "--loss", "cross_entropy", "--optimizer", "adam", "--epochs", "30",
                     "--batch-size", "16", "--validation-split", "0.1", "--out", model,
                     backend=backend, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert model.exists() and "Saved" in result.stdout
    # Progress: one line (or bar update) per epoch on stderr, with loss and accuracy.
    assert "loss" in result.stderr.lower() and "acc" in result.stderr.lower()

    test = tmp_path / "test.csv"
    write_blobs_csv(test, n=90, seed=1)
    evaluation = run_cli("evaluate", model, test, "--target", "species", backend=backend)
    assert evaluation.returncode == 0, evaluation.stderr
    accuracy = float(evaluation.stdout.split("Accuracy: ")[1].split("%")[0])
    assert accuracy > 95.0
    assert "Confusion matrix" in evaluation.stdout and "virginica" in evaluation.stdout
    matrix_lines = evaluation.stdout.strip().splitlines()[-3:]
    counts = [[int(cell) for cell in line.split()[1:]] for line in matrix_lines]
    assert sum(map(sum, counts)) == 90

    out = tmp_path / "predictions.csv"
    prediction = run_cli("predict", model, test, "--out", out, backend=backend)
    assert prediction.returncode == 0, prediction.stderr
    with open(out) as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["prediction", "p_setosa", "p_versicolor", "p_virginica"]
    assert len(rows) == 91
    probabilities = np.array([[float(x) for x in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    with open(test) as file:
        truth = [row["species"] for row in csv.DictReader(file)]
    agreement = np.mean([row[0] == label for row, label in zip(rows[1:], truth)])
    assert agreement == pytest.approx(accuracy / 100)

    info = run_cli("info", model)
    assert info.returncode == 0, info.stderr
    assert "4 -> 16 -> 8 -> 3" in info.stdout
    net = cymlp.load(model)
    assert f"Parameters: {net.n_params}" in info.stdout
    assert "30 epochs" in info.stdout and "setosa, versicolor, virginica" in info.stdout


def test_standardisation_is_stored_and_applied(tmp_path):
    data = tmp_path / "train.csv"
    X, _ = write_blobs_csv(data)
    model = tmp_path / "model.npz"
    assert run_cli("train", data, "--target", "species", "--epochs", "2", "--quiet",
                   "--out", model).returncode == 0
    from cymlp._io import load_network
    net, extra, arrays = load_network(model)
    np.testing.assert_allclose(arrays["feature_mean"], X.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(arrays["feature_scale"], X.std(axis=0), rtol=1e-6)
    assert extra["cli"]["feature_names"] == ["f1", "f2", "f3", "f4"]


def test_regression_on_npz_and_numeric_targets(backend, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ [1.5, -2.0, 0.5] + 0.3
    data = tmp_path / "data.npz"
    np.savez(data, X=X, y=y)
    model = tmp_path / "reg.npz"
    result = run_cli("train", data, "--target", "y", "--loss", "mse", "--hidden", "16",
                     "--activation", "tanh", "--epochs", "60", "--quiet", "--out", model,
                     backend=backend)
    assert result.returncode == 0, result.stderr
    evaluation = run_cli("evaluate", model, data, "--target", "y", backend=backend)
    assert evaluation.returncode == 0, evaluation.stderr
    mse = float(evaluation.stdout.split("Loss (mse): ")[1])
    assert mse < 0.1 * y.var()
    prediction = run_cli("predict", model, data, backend=backend)
    assert prediction.returncode == 0
    predicted = np.array([float(line) for line in prediction.stdout.splitlines()[1:]])
    assert np.mean((predicted - y) ** 2) == pytest.approx(mse, rel=1e-4)  # printed to 6 places


def test_binary_bce_on_npy_with_numeric_classes(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    label = (X[:, 0] + X[:, 1] > 0).astype(float) * 7   # classes 0 and 7
    data = tmp_path / "data.npy"
    np.save(data, np.column_stack([X, label]))
    model = tmp_path / "bin.npz"
    result = run_cli("train", data, "--target", "2", "--loss", "bce", "--epochs", "40",
                     "--quiet", "--out", model)
    assert result.returncode == 0, result.stderr
    evaluation = run_cli("evaluate", model, data, "--target", "2")
    assert evaluation.returncode == 0, evaluation.stderr
    assert float(evaluation.stdout.split("Accuracy: ")[1].split("%")[0]) > 90
    features_only = tmp_path / "features.npy"
    np.save(features_only, X)
    prediction = run_cli("predict", model, features_only)
    assert prediction.returncode == 0, prediction.stderr
    assert prediction.stdout.splitlines()[0] == "prediction,p_0,p_7"
    # A file laid out as the training file gives the features by index; its
    # target column is ignored, as a CSV file's is.
    same_layout = run_cli("predict", model, data)
    assert same_layout.returncode == 0, same_layout.stderr
    assert same_layout.stdout == prediction.stdout
    wider = tmp_path / "wider.npy"
    np.save(wider, np.column_stack([X, label, label]))
    assert_one_line_error(run_cli("predict", model, wider), "4 feature columns", "expects 2")
    assert set(line.split(",")[0] for line in prediction.stdout.splitlines()[1:]) <= {"0", "7"}


def test_plain_progress_lines_without_tqdm(tmp_path):
    data = tmp_path / "train.csv"
    write_blobs_csv(data, n=60)
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "tqdm.py").write_text("raise ImportError('tqdm blocked for this test')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker))
    result = subprocess.run([sys.executable, "-m", "cymlp", "train", str(data), "--target",
                             "species", "--epochs", "3", "--out", str(tmp_path / "m.npz")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Epoch: ")]
    assert len(lines) == 3 and "Loss: " in lines[0] and "Accuracy: " in lines[0]
    quiet = subprocess.run([sys.executable, "-m", "cymlp", "train", str(data), "--target",
                            "species", "--epochs", "3", "--quiet", "--out",
                            str(tmp_path / "m2.npz")],
                           capture_output=True, text=True, env=env, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.fixture
def files(tmp_path):
    data = tmp_path / "train.csv"
    write_blobs_csv(data, n=60)
    model = tmp_path / "model.npz"
    assert run_cli("train", data, "--target", "species", "--epochs", "2", "--quiet",
                   "--out", model).returncode == 0
    return tmp_path, data, model


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("make_args, fragments", [
    (lambda d, m, t: ["train", t / "missing.csv", "--target", "y"], ["no such data file"]),
    (lambda d, m, t: ["train", d, "--target", "colour"], ["no column named 'colour'"]),
    (lambda d, m, t: ["train", _write(t / "bad.csv", "a,b,y\n1,x,0\n2,3,1\n"), "--target", "y"],
     ["line 2", "column 'b'", "'x' is not a number"]),
    (lambda d, m, t: ["train", _write(t / "ragged.csv", "a,b,y\n1,2\n"), "--target", "y"],
     ["line 2", "2 cells"]),
    (lambda d, m, t: ["train", _write(t / "empty.csv", ""), "--target", "y"], ["header row"]),
    (lambda d, m, t: ["train", d, "--target", "species", "--loss", "mse"], ["numeric target"]),
    (lambda d, m, t: ["train", d, "--target", "species", "--loss", "bce"], ["two classes"]),
    (lambda d, m, t: ["train", d, "--target", "species", "--hidden", "8,x"], ["--hidden"]),
    (lambda d, m, t: ["train", d, "--target", "species", "--epochs", "0"], ["--epochs"]),
    (lambda d, m, t: ["train", d, "--target", "species", "--validation-split", "1.5"],
     ["--validation-split", "0 <= S < 1"]),
    (lambda d, m, t: ["train", d, "--target", "species", "--early-stopping"],
     ["--early-stopping", "--validation-split"]),
    (lambda d, m, t: ["train", d, "--target", "species", "--out", t / "no" / "m.npz"],
     ["does not exist"]),
    (lambda d, m, t: ["predict", t / "missing.npz", d], ["no such model file"]),
    (lambda d, m, t: ["predict", d, d], ["not a readable cymlp model file"]),
    (lambda d, m, t: ["predict", m, _write(t / "few.csv", "f1,f2\n1,2\n")],
     ["missing feature column(s) f3, f4"]),
    (lambda d, m, t: ["evaluate", m, d, "--target", "nope"], ["no column named 'nope'"]),
    (lambda d, m, t: ["evaluate", m, _write(t / "new.csv", "f1,f2,f3,f4,species\n1,2,3,4,rose\n"),
                      "--target", "species"], ["never saw", "rose"]),
    (lambda d, m, t: ["info", _write(t / "junk.npz", "junk")], ["junk.npz"]),
    (lambda d, m, t: ["predict", m, _npy_of_shape(t, (5, 7))], ["7 feature columns"]),
], ids=["missing-data", "unknown-target", "non-numeric", "ragged", "empty", "mse-text",
        "bce-three", "bad-hidden", "zero-epochs", "bad-split", "early-no-val", "missing-dir",
        "missing-model", "not-a-model", "missing-columns", "evaluate-unknown-target",
        "unseen-class", "info-junk", "shape-mismatch"])
def test_errors_are_one_line(files, make_args, fragments):
    tmp_path, data, model = files
    result = run_cli(*make_args(data, model, tmp_path))
    assert_one_line_error(result, *fragments)


def _npy_of_shape(directory, shape):
    path = directory / "wrong.npy"
    np.save(path, np.ones(shape))
    return path


def test_help_on_every_command():
    for command in ("train", "predict", "evaluate", "info", "demo"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and f"usage: cymlp {command}" in result.stdout
