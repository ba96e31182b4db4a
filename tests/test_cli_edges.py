"""The command line on files as people have them, and its messages in its own terms.

CSV files with a byte-order mark, without a header, with an id column;
``--target`` by index, ``--features``/``--drop``, ``--test-size``; errors that
name the flag; output paths checked before any work; regression runs without
an accuracy; ``--output-activation``, ``--init`` and ``--weight-decay``; and
models saved from Python used by ``predict`` and ``evaluate``. Run as a user
would, in a subprocess (``python -m cymlp``), on every backend where training
is involved.
"""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import cymlp
from cymlp import MLP
from cymlp._io import load_network
from cymlp.cli import held_out_rows


def run_cli(*args, backend=None, env=None):
    env = dict(os.environ, **(env or {}))
    if backend:
        env["CYMLP_BACKEND"] = backend
    return subprocess.run([sys.executable, "-m", "cymlp", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cymlp"), lines[0]
    assert "Errno" not in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def blobs(n=150, seed=0):
    """Three separable classes in three features."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    X = np.array([[0, 0, 0], [4, 4, 0], [0, 4, 4]], dtype=float)[labels]
    X += rng.normal(scale=0.6, size=X.shape)
    return X, np.array(["red", "green", "blue"])[labels]


def write_csv(path, header, columns, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as file:
        writer = csv.writer(file)
        if header is not None:
            writer.writerow(header)
        writer.writerows(zip(*columns))
    return path


def train(data, out, *extra, backend=None):
    result = run_cli("train", data, "--epochs", "25", "--quiet", "--out", out, *extra,
                     backend=backend)
    assert result.returncode == 0, result.stderr
    return result


def accuracy_of(stdout):
    return float(stdout.split("Accuracy: ")[1].split("%")[0])


# ---- 6. CSV files as people have them ----------------------------------------------------

def test_a_utf8_byte_order_mark_is_not_part_of_the_first_name(backend, tmp_path):
    # Excel's "CSV UTF-8" starts the file with a byte-order mark.
    X, labels = blobs()
    data = write_csv(tmp_path / "excel.csv", ["width", "height", "depth", "colour"],
                     [*X.T, labels], encoding="utf-8-sig")
    assert data.read_bytes().startswith(b"\xef\xbb\xbf")
    model = tmp_path / "m.npz"
    train(data, model, "--target", "colour", backend=backend)
    _, extra, _ = load_network(model)
    assert extra["cli"]["feature_names"] == ["width", "height", "depth"]
    info = run_cli("info", model)
    assert "Features: 3 (width, height, depth)" in info.stdout
    assert "\ufeff" not in info.stdout
    evaluation = run_cli("evaluate", model, data, "--target", "colour", backend=backend)
    assert evaluation.returncode == 0, evaluation.stderr
    assert accuracy_of(evaluation.stdout) > 90
    # The first column itself can be the target, named as the user sees it.
    first = write_csv(tmp_path / "first.csv", ["colour", "width", "height", "depth"],
                      [labels, *X.T], encoding="utf-8-sig")
    train(first, tmp_path / "m2.npz", "--target", "colour", backend=backend)


def test_a_csv_without_header_needs_one_or_no_header(backend, tmp_path):
    X, labels = blobs()
    data = write_csv(tmp_path / "plain.csv", None, [*X.T, labels])
    result = run_cli("train", data, "--target", "colour", "--out", tmp_path / "m.npz")
    assert_one_line_error(result, "plain.csv", "header row", "--no-header")
    # All-numeric rows too.
    numbers = write_csv(tmp_path / "numbers.csv", None, [*X.T, (labels == "red") * 1])
    assert_one_line_error(run_cli("train", numbers, "--target", "3"), "header row",
                          "--no-header")
    model = tmp_path / "m.npz"
    train(data, model, "--no-header", "--target", "-1", backend=backend)
    _, extra, _ = load_network(model)
    assert extra["cli"]["feature_names"] == ["0", "1", "2"] and extra["cli"]["target"] == "3"
    # A model trained on a file without header reads such files (no flag needed).
    evaluation = run_cli("evaluate", model, data, "--target", "3", backend=backend)
    assert evaluation.returncode == 0, evaluation.stderr
    assert accuracy_of(evaluation.stdout) > 90
    features = write_csv(tmp_path / "features.csv", None, X.T)
    prediction = run_cli("predict", model, features, backend=backend)
    assert prediction.returncode == 0, prediction.stderr
    assert prediction.stdout.splitlines()[0] == "prediction,p_blue,p_green,p_red"
    assert len(prediction.stdout.splitlines()) == len(X) + 1
    # A header of column indices (numpy.savetxt-like with pandas) is a header.
    indexed = write_csv(tmp_path / "indexed.csv", ["0", "1", "2", "3"], [*X.T, labels])
    train(indexed, tmp_path / "m3.npz", "--target", "3", backend=backend)


def test_the_target_by_column_index(backend, tmp_path):
    X, labels = blobs()
    data = write_csv(tmp_path / "d.csv", ["a", "b", "colour", "c"],
                     [X[:, 0], X[:, 1], labels, X[:, 2]])
    by_name, by_index, from_end = (tmp_path / f"{name}.npz" for name in ("n", "i", "e"))
    train(data, by_name, "--target", "colour", backend=backend)
    train(data, by_index, "--target", "2", backend=backend)
    train(data, from_end, "--target", "-2", backend=backend)
    for model in (by_index, from_end):
        net, extra, _ = load_network(model)
        assert extra["cli"]["target"] == "colour"
        assert extra["cli"]["feature_names"] == ["a", "b", "c"]
        np.testing.assert_array_equal(net.params, cymlp.load(by_name).params)
    evaluation = run_cli("evaluate", by_index, data, "--target", "2", backend=backend)
    assert evaluation.returncode == 0 and accuracy_of(evaluation.stdout) > 90
    assert_one_line_error(run_cli("train", data, "--target", "4"), "--target",
                          "no column named '4'", "indices 0..3")


def test_an_id_column_is_left_out_with_a_note(backend, tmp_path):
    X, labels = blobs()
    n = len(X)
    data = write_csv(tmp_path / "d.csv", ["ID", "a", "b", "c", "colour"],
                     [np.arange(1000, 1000 + n), *X.T, labels])
    model = tmp_path / "m.npz"
    result = train(data, model, "--target", "colour", backend=backend)
    assert "note: column 'ID' is not used as a feature" in result.stderr
    assert "--features" in result.stderr and "--drop" in result.stderr  # --quiet keeps notes
    assert load_network(model)[1]["cli"]["feature_names"] == ["a", "b", "c"]
    # Saying which columns to use silences the note, and is obeyed.
    dropped = train(data, tmp_path / "d.npz", "--target", "colour", "--drop", "ID",
                    backend=backend)
    assert dropped.stderr == ""
    chosen = train(data, tmp_path / "f.npz", "--target", "colour", "--features", "c,a",
                   backend=backend)
    assert chosen.stderr == ""
    assert load_network(tmp_path / "f.npz")[1]["cli"]["feature_names"] == ["c", "a"]
    train(data, tmp_path / "all.npz", "--target", "colour", "--features", "ID,a,b,c",
          backend=backend)
    assert load_network(tmp_path / "all.npz")[1]["cli"]["feature_names"] == ["ID", "a", "b",
                                                                            "c"]
    # predict on the file with its id column: the model picks its own columns.
    prediction = run_cli("predict", model, data, backend=backend)
    assert prediction.returncode == 0, prediction.stderr
    # pandas' DataFrame.to_csv() writes its index as an unnamed first column.
    pandas_like = write_csv(tmp_path / "p.csv", ["", "a", "b", "c", "colour"],
                            [np.arange(n), *X.T, labels])
    result = train(pandas_like, tmp_path / "p.npz", "--target", "colour", backend=backend)
    assert "note: column '' is not used as a feature" in result.stderr
    assert load_network(tmp_path / "p.npz")[1]["cli"]["feature_names"] == ["a", "b", "c"]


def test_a_column_of_row_numbers_is_kept_with_a_note(tmp_path):
    # It may be a real feature (time steps), so it is not dropped, but it is pointed out.
    X, labels = blobs()
    data = write_csv(tmp_path / "d.csv", ["row", "a", "b", "c", "colour"],
                     [np.arange(1, len(X) + 1), *X.T, labels])
    result = train(data, tmp_path / "m.npz", "--target", "colour", "--epochs", "1")
    assert "note: feature column 'row' holds the row numbers 1..150" in result.stderr
    assert "--drop row" in result.stderr
    assert load_network(tmp_path / "m.npz")[1]["cli"]["feature_names"] == ["row", "a", "b",
                                                                           "c"]


def test_spreadsheet_exports_with_semicolons(tmp_path):
    # Excel in many locales: ';' separated, a byte-order mark, maybe decimal commas.
    X, labels = blobs(n=40)
    data = tmp_path / "semi.csv"
    with open(data, "w", newline="", encoding="utf-8-sig") as file:
        csv.writer(file, delimiter=";").writerows([["a", "b", "c", "colour"],
                                                   *zip(*X.T, labels)])
    train(data, tmp_path / "m.npz", "--target", "colour", "--epochs", "1")
    assert load_network(tmp_path / "m.npz")[1]["cli"]["feature_names"] == ["a", "b", "c"]
    data.write_text("a;b;colour\n0,5;1;red\n1;2;blue\n", encoding="utf-8")
    assert_one_line_error(run_cli("train", data, "--target", "colour"), "line 2",
                          "'0,5' is not a number", "decimal comma")


def test_a_text_column_points_to_drop(tmp_path):
    data = tmp_path / "names.csv"
    data.write_text("name,a,colour\nann,1,red\nbob,2,blue\ncy,3,red\n")
    assert_one_line_error(run_cli("train", data, "--target", "colour"), "line 2",
                          "column 'name'", "'ann' is not a number", "--drop name")
    train(data, tmp_path / "m.npz", "--target", "colour", "--drop", "name", "--epochs", "1")


@pytest.mark.parametrize("args, fragments", [
    (["--features", "a,zz"], ["--features", "no column named 'zz'"]),
    (["--drop", "zz"], ["--drop", "no column named 'zz'"]),
    (["--drop", "colour"], ["--drop", "'colour' is the --target column"]),
    (["--features", "a,colour"], ["--features", "'colour' is the --target column"]),
    (["--features", "a,0"], ["--features", "twice"]),
    (["--features", "a,,b"], ["--features", "comma-separated"]),
    (["--features", "a", "--drop", "b"], ["--drop", "--features"]),
    (["--test-size", "0.999"], ["--test-size", "no training rows"]),
    (["--test-size", "0"], ["--test-size"]),
    (["--test-size", "1.5"], ["--test-size"]),
    (["--test-size", "150"], ["--test-size 150 leaves no training rows out of 150"]),
])
def test_column_and_test_size_errors(tmp_path, args, fragments):
    X, labels = blobs()
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "colour"], [*X.T, labels])
    result = run_cli("train", data, "--target", "colour", "--out", tmp_path / "m.npz", *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "m.npz").exists()


def test_test_size_holds_out_stratified_rows_and_reports_their_score(backend, tmp_path):
    X, labels = blobs(n=200)
    labels[:20] = "rare"  # a small class keeps its share of the test rows
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "colour"], [*X.T, labels])
    model = tmp_path / "m.npz"
    result = train(data, model, "--target", "colour", "--test-size", "0.25", "--seed", "3",
                   backend=backend)
    line = [text for text in result.stdout.splitlines() if text.startswith("Test: ")]
    assert len(line) == 1 and line[0].startswith("Test: 50 held-out rows: accuracy ")
    # The rows held out: stratified, drawn with --seed; the model never saw them
    # (its standardisation is of the other rows), and the score is theirs.
    classes, index = np.unique(labels, return_inverse=True)
    train_rows, test_rows = held_out_rows(200, 0.25, index, 3)
    assert len(test_rows) == 50 and not set(train_rows) & set(test_rows)
    for c in range(len(classes)):
        share = np.sum(index[test_rows] == c) / np.sum(index == c)
        assert abs(share - 0.25) < 0.05, classes[c]
    _, extra, arrays = load_network(model)
    np.testing.assert_allclose(arrays["feature_mean"], X[train_rows].mean(axis=0))
    held_out = write_csv(tmp_path / "held_out.csv", ["a", "b", "c", "colour"],
                         [*X[test_rows].T, labels[test_rows]])
    evaluation = run_cli("evaluate", model, held_out, "--target", "colour", backend=backend)
    assert f"accuracy {accuracy_of(evaluation.stdout):.2f}%" in line[0]
    assert extra["cli"]["test"]["rows"] == 50
    assert "Test: 50 held-out rows" in run_cli("info", model).stdout
    # Seeded: the same seed holds out the same rows, another seed others.
    again = held_out_rows(200, 0.25, index, 3)[1]
    other = held_out_rows(200, 0.25, index, 4)[1]
    np.testing.assert_array_equal(again, test_rows)
    assert set(other) != set(test_rows)


def test_held_out_rows_keep_a_training_row_of_every_class():
    labels = np.array([0] * 10 + [1] * 2 + [2])
    train_rows, test_rows = held_out_rows(13, 0.5, labels, 0)
    assert len(test_rows) == 7
    assert set(labels[train_rows]) == {0, 1, 2}
    train_rows, test_rows = held_out_rows(10, 3, None, 0)
    assert len(test_rows) == 3 and len(train_rows) == 7


def test_test_size_of_a_regression_reports_loss_and_r2(backend, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5]
    data = write_csv(tmp_path / "r.csv", ["a", "b", "c", "y"], [*X.T, y])
    result = run_cli("train", data, "--target", "y", "--loss", "mse", "--epochs", "40",
                     "--test-size", "40", "--quiet", "--out", tmp_path / "m.npz",
                     backend=backend)
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[-1]
    assert line.startswith("Test: 40 held-out rows: loss (mse) ") and "R^2 " in line
    assert "accuracy" not in line.lower()
    assert float(line.split("R^2 ")[1]) > 0.5


# ---- 7. CLI messages in CLI terms --------------------------------------------------------

@pytest.fixture
def csv_model(tmp_path):
    X, labels = blobs(n=60)
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "colour"], [*X.T, labels])
    model = tmp_path / "m.npz"
    train(data, model, "--target", "colour", "--epochs", "2")
    return data, model


@pytest.mark.parametrize("args, fragments", [
    (["--validation-split", "1.5"], ["--validation-split", "0 <= S < 1"]),
    (["--validation-split", "0.999"], ["--validation-split 0.999 leaves no training rows"]),
    (["--early-stopping"], ["--early-stopping needs --validation-split"]),
    (["--optimizer", "sgd", "--momentum", "1.5"], ["--momentum", "0 <= M < 1"]),
    (["--weight-decay", "-0.1"], ["--weight-decay"]),
    (["--hidden", ""], ["--hidden", "'none'"]),
    (["--hidden", " "], ["--hidden"]),
    (["--output-activation", "sigmoid"], ["--output-activation sigmoid", "--loss "
                                          "cross_entropy", "softmax"]),
    (["--loss", "bce", "--output-activation", "softmax"], ["--output-activation", "sigmoid"]),
    (["--init", "zeros"], ["--init", "zeros"]),
    (["--out", "no_such_folder/m.npz"], ["--out", "folder 'no_such_folder' does not exist"]),
])
def test_errors_name_the_flag(csv_model, tmp_path, args, fragments):
    data, _ = csv_model
    out = ["--out", tmp_path / "new.npz"] if "--out" not in args else []
    result = run_cli("train", data, "--target", "colour", "--epochs", "2", *out, *args)
    assert_one_line_error(result, *fragments)
    assert "validation_split" not in result.stderr and "weight_decay" not in result.stderr
    assert "Epoch" not in result.stderr + result.stdout


def test_predict_into_a_missing_folder_says_so_before_predicting(csv_model, tmp_path):
    data, model = csv_model
    target = tmp_path / "missing_dir" / "x.csv"
    result = run_cli("predict", model, data, "--out", target)
    assert_one_line_error(result, "--out", str(target), "folder", "does not exist")
    assert not target.parent.exists()
    result = run_cli("predict", model, data, "--out", tmp_path)
    assert_one_line_error(result, "--out", "is a directory")


def test_no_hidden_layer_is_asked_for_by_name(backend, tmp_path, csv_model):
    data, _ = csv_model
    model = tmp_path / "linear.npz"
    train(data, model, "--target", "colour", "--hidden", "none", backend=backend)
    assert list(cymlp.load(model).layer_sizes) == [3, 3]


def test_a_regression_prints_no_accuracy(backend, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    data = tmp_path / "r.npz"
    np.savez(data, X=X, y=X[:, 0] - X[:, 1])
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "tqdm.py").write_text("raise ImportError('tqdm blocked for this test')\n")
    model = tmp_path / "m.npz"
    result = run_cli("train", data, "--target", "y", "--loss", "mse", "--epochs", "3",
                     "--validation-split", "0.2", "--out", model, backend=backend,
                     env={"PYTHONPATH": os.pathsep.join(
                         [str(blocker), os.environ.get("PYTHONPATH", "")])})
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Epoch: ")]
    assert len(lines) == 3 and "Loss: " in lines[0] and "Val loss: " in lines[0]
    assert "ccuracy" not in result.stderr and "ccuracy" not in result.stdout
    info = run_cli("info", model)
    assert info.returncode == 0 and "ccuracy" not in info.stdout
    # A classifier still shows its accuracy.
    np.savez(data, X=X, y=(X[:, 0] > 0) * 1.0)
    classifier = run_cli("train", data, "--target", "y", "--epochs", "1", "--quiet",
                         "--out", model)
    assert "Accuracy: " in classifier.stdout


def test_output_activation_init_and_weight_decay_take_effect(backend, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.tanh(X @ [1.0, -1.0, 0.5])
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=y)
    out = tmp_path / "m.npz"
    result = run_cli("train", data, "--target", "y", "--loss", "mse", "--hidden", "4",
                     "--activation", "relu", "--output-activation", "tanh", "--init",
                     "glorot_normal", "--weight-decay", "0.05", "--optimizer", "sgd",
                     "--learning-rate", "0.1", "--epochs", "4", "--batch-size", "10",
                     "--no-standardize", "--quiet", "--seed", "2", "--out", out,
                     backend=backend)
    assert result.returncode == 0, result.stderr
    saved = cymlp.load(out, backend=backend)
    assert saved.activations == ("relu", "tanh") and saved.init == "glorot_normal"
    twin = MLP([3, 4, 1], activation="relu", output_activation="tanh", loss="mse",
               init="glorot_normal", seed=2, backend=backend)
    twin.fit(X, y[:, None], epochs=4, learning_rate=0.1, batch_size=10, optimizer="sgd",
             weight_decay=0.05)
    np.testing.assert_allclose(saved.params, twin.params, rtol=1e-12, atol=1e-15)
    undecayed = MLP([3, 4, 1], activation="relu", output_activation="tanh", loss="mse",
                    init="glorot_normal", seed=2, backend=backend)
    undecayed.fit(X, y[:, None], epochs=4, learning_rate=0.1, batch_size=10, optimizer="sgd")
    assert not np.allclose(saved.params, undecayed.params, rtol=1e-6, atol=0)
    assert "init: glorot_normal" in run_cli("info", out).stdout
    prediction = run_cli("predict", out, data, backend=backend)
    values = np.array([float(v) for v in prediction.stdout.splitlines()[1:]])
    assert np.all(np.abs(values) <= 1)


# ---- models saved from Python ------------------------------------------------------------

def test_a_model_saved_from_python_predicts_and_evaluates(backend, tmp_path):
    # The tutorial's network: MSE on one-hot letters, sigmoid outputs, classes by argmax.
    X, Y = cymlp.datasets.letters("ABC")
    net = MLP([30, 5, 3], seed=0, backend=backend)
    net.fit(X, Y, epochs=300, learning_rate=1.0)
    model = tmp_path / "tutorial.npz"
    net.save(model)
    features = tmp_path / "letters.npy"
    np.save(features, X)
    prediction = run_cli("predict", model, features, backend=backend)
    assert prediction.returncode == 0, prediction.stderr
    rows = list(csv.reader(prediction.stdout.splitlines()))
    assert rows[0] == ["prediction", "output_0", "output_1", "output_2"]
    assert [int(row[0]) for row in rows[1:]] == net.classify(X).tolist() == [0, 1, 2]
    np.testing.assert_allclose([[float(v) for v in row[1:]] for row in rows[1:]],
                               net.predict(X), rtol=1e-5)
    labelled = tmp_path / "labelled.npy"
    np.save(labelled, np.column_stack([X, [0, 1, 2]]))
    evaluation = run_cli("evaluate", model, labelled, "--target", "-1", backend=backend)
    assert evaluation.returncode == 0, evaluation.stderr
    assert "Accuracy: 100.00%" in evaluation.stdout
    assert f"Loss (mse): {net.loss(X, Y):.6f}" in evaluation.stdout
    info = run_cli("info", model)
    assert "Saved from Python" in info.stdout and "Accuracy" in info.stdout

    # A softmax classifier on a CSV file: its columns as they are, a label column dropped.
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 2))
    classes = (features[:, 0] > 0).astype(int)
    classifier = MLP([2, 6, 2], activation="tanh", output_activation="softmax",
                     loss="cross_entropy", seed=1, backend=backend)
    classifier.fit(features, np.eye(2)[classes], epochs=60, learning_rate=0.2)
    classifier.save(tmp_path / "ce.npz")
    data = write_csv(tmp_path / "ce.csv", ["x0", "x1", "label"], [*features.T, classes])
    prediction = run_cli("predict", tmp_path / "ce.npz", data, "--drop", "label",
                         backend=backend)
    assert prediction.returncode == 0, prediction.stderr
    rows = list(csv.reader(prediction.stdout.splitlines()))
    assert rows[0] == ["prediction", "p_0", "p_1"]
    assert [int(row[0]) for row in rows[1:]] == classifier.classify(features).tolist()
    evaluation = run_cli("evaluate", tmp_path / "ce.npz", data, "--target", "label",
                         backend=backend)
    assert evaluation.returncode == 0, evaluation.stderr
    expected = 100 * np.mean(classifier.classify(features) == classes)
    assert f"Accuracy: {expected:.2f}%" in evaluation.stdout
    assert_one_line_error(run_cli("predict", tmp_path / "ce.npz", data),
                          "3 feature columns", "expects 2", "--drop")


def test_drop_in_predict_is_for_models_saved_from_python(csv_model):
    data, model = csv_model
    assert_one_line_error(run_cli("predict", model, data, "--drop", "a"), "--drop",
                          "cymlp train")
