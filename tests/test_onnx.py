"""ONNX export: the network, ``cymlp export``, and skl2onnx for the estimators.

onnxruntime runs every exported graph; its outputs are compared with what
cymlp computes for the same inputs (``predict``, ``predict_proba``, ``cymlp
predict``). Comparisons are relative to the largest output: an output near 0
after a cancelling sum has no meaningful relative error of its own.
"""

import contextlib
import sys
import warnings

import numpy as np
import pytest

import cymlp
from cymlp.cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cymlp_onnx = pytest.importorskip("cymlp.onnx")

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
OUTPUTS = ("sigmoid", "softmax", "identity", "exp")
# float32: the two engines sum in different orders, and onnxruntime's float
# sigmoid and tanh are its own vectorised approximations, a few ulps apart.
RTOL = {np.float32: 1e-6, np.float64: 1e-12}


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def assert_close(got, want, rtol):
    """|got - want| <= rtol * max|want|, elementwise, and the same shape and dtype."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype,
                                                                 want.shape, want.dtype)
    scale = max(float(np.abs(want).max()), np.finfo(want.dtype).tiny)
    worst = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) / scale
    assert worst <= rtol, f"largest difference {worst:.3g} of the largest output, over {rtol}"


def network(layer_sizes, hidden, output, bias, dtype, backend, seed=0):
    """A network with random, non-zero biases (they start at 0), so Add is exercised."""
    loss = "poisson" if output == "exp" else "mse"
    net = cymlp.MLP(layer_sizes, activation=hidden, output_activation=output, loss=loss,
                    bias=bias, dtype=dtype, seed=seed, backend=backend)
    rng = np.random.default_rng(seed + 1)
    for b in net.biases:
        b[...] = rng.normal(0, 0.5, b.shape)
    return net


# ---------------------------------------------------------------- the network

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_onnxruntime_equals_predict(backend, dtype, hidden, output, depth, bias):
    sizes = [6] + [9] * (depth - 1) + [4]
    net = network(sizes, hidden, output, bias, dtype, backend)
    model = net.to_onnx()
    onnx.checker.check_model(model, full_check=True)
    run = session(model)
    rng = np.random.default_rng(depth)
    for n_rows in (1, 1000):   # the batch dimension is dynamic
        X = rng.normal(size=(n_rows, 6)).astype(dtype)
        (Y,) = run.run(["Y"], {"X": X})
        assert_close(Y, net.predict(X), RTOL[dtype])


def test_the_graph_has_a_dynamic_batch_and_standard_operators(backend, dtype):
    net = network([3, 5, 4, 2], ["leaky_relu", "tanh"], "softmax", True, dtype, backend)
    model = cymlp_onnx.to_onnx(net)
    (x,), (y,) = model.graph.input, model.graph.output
    assert (x.name, y.name) == ("X", "Y")
    element = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    for value, width in ((x, 3), (y, 2)):
        assert value.type.tensor_type.elem_type == element
        batch, columns = value.type.tensor_type.shape.dim
        assert batch.dim_param == "N" and not batch.HasField("dim_value")
        assert columns.dim_value == width
    assert [(o.domain, o.version) for o in model.opset_import] == [("", cymlp_onnx.OPSET)]
    assert model.ir_version == cymlp_onnx.IR_VERSION
    operators = [node.op_type for node in model.graph.node]
    leaky = "LeakyRelu" if dtype == np.float32 else "PRelu"
    assert operators == ["MatMul", "Add", leaky, "MatMul", "Add", "Tanh", "MatMul", "Add",
                         "Softmax"]
    assert all(node.domain == "" for node in model.graph.node)
    softmax = model.graph.node[-1]
    assert onnx.helper.get_attribute_value(softmax.attribute[0]) == 1   # axis
    if dtype == np.float32:
        alpha = onnx.helper.get_attribute_value(model.graph.node[2].attribute[0])
        assert alpha == np.float32(cymlp._codes.LEAKY_SLOPE)


def test_a_float64_network_exported_as_float32(backend):
    net = network([5, 8, 8, 3], "tanh", "sigmoid", True, np.float64, backend)
    model = net.to_onnx(dtype=np.float32)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    X = np.random.default_rng(0).normal(size=(200, 5))
    (Y,) = session(model).run(["Y"], {"X": X.astype(np.float32)})
    assert Y.dtype == np.float32
    assert_close(Y.astype(np.float64), net.predict(X), 1e-5)


def test_a_float32_network_exported_as_float64(backend):
    net = network([5, 8, 3], "relu", "softmax", True, np.float32, backend)
    (Y,) = session(net.to_onnx(dtype="float64")).run(["Y"], {"X": np.ones((2, 5))})
    assert Y.dtype == np.float64
    assert_close(Y.astype(np.float32), net.predict(np.ones((2, 5))), 1e-6)


def test_the_weights_are_copied_at_export(backend):
    net = network([4, 3, 2], "sigmoid", "identity", True, np.float64, backend)
    X = np.random.default_rng(0).normal(size=(5, 4))
    before = net.predict(X)
    model = net.to_onnx()
    net.params[...] += 1.0
    assert_close(session(model).run(["Y"], {"X": X})[0], before, 1e-12)


def test_a_trained_network(backend):
    X, Y = cymlp.datasets.letters()
    net = cymlp.MLP([30, 5, 3], seed=0, backend=backend)
    net.fit(X, Y, epochs=50, learning_rate=1.0)
    (outputs,) = session(net.to_onnx()).run(["Y"], {"X": X})
    assert_close(outputs, net.predict(X), 1e-12)
    assert cymlp._codes.classify(outputs).tolist() == [0, 1, 2]


@pytest.mark.parametrize("dtype", ["float16", np.int32, "double precision", 3])
def test_a_bad_dtype_is_refused_naming_dtype(backend, dtype):
    net = network([2, 2], "relu", "identity", True, np.float64, backend)
    with pytest.raises(TypeError, match="dtype"):
        net.to_onnx(dtype=dtype)


@pytest.mark.parametrize("thing", [object(), "net.npz", None])
def test_what_is_not_an_mlp_is_refused(thing):
    with pytest.raises(TypeError, match="cymlp.MLP"):
        cymlp_onnx.to_onnx(thing)
    with pytest.raises(TypeError, match="cymlp.MLP"):
        cymlp_onnx.model_with_preprocessing(thing)


def test_an_estimator_is_not_an_mlp(backend):
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from cymlp.sklearn import MLPRegressor
    with quiet():
        model = MLPRegressor((3,), max_iter=2, backend=backend).fit(np.eye(3), [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="cymlp.MLP"):
        cymlp_onnx.to_onnx(model)
    assert_close(session(cymlp_onnx.to_onnx(model.net_)).run(["Y"], {"X": np.eye(3)})[0],
                 model.net_.predict(np.eye(3)), 1e-12)


def test_an_unknown_activation_is_refused(backend):
    net = network([2, 3, 2], "relu", "identity", True, np.float64, backend)
    net.activations = ("relu", "swish")   # what a newer cymlp (or a bug) could hold
    with pytest.raises(ValueError, match="'swish'"):
        net.to_onnx()


def test_without_onnx_the_error_says_what_to_install(backend, monkeypatch):
    net = network([2, 2], "relu", "identity", True, np.float64, backend)
    monkeypatch.setitem(sys.modules, "onnx", None)   # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "cymlp\[onnx\]"'):
        net.to_onnx()


def test_preprocessing_arguments_are_checked(backend):
    net = network([3, 2], "relu", "softmax", True, np.float64, backend)
    with pytest.raises(ValueError, match="mean and scale"):
        cymlp_onnx.model_with_preprocessing(net, mean=np.zeros(3))
    with pytest.raises(ValueError, match=r"scale must have shape \(3,\)"):
        cymlp_onnx.model_with_preprocessing(net, mean=np.zeros(3), scale=np.ones(2))
    with pytest.raises(ValueError, match="classes must hold 2 labels"):
        cymlp_onnx.model_with_preprocessing(net, classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="whole numbers or strings"):
        cymlp_onnx.model_with_preprocessing(net, classes=[0.5, 1.5])


def test_preprocessing_and_labels_in_the_graph(backend):
    net = network([3, 4, 1], "tanh", "sigmoid", True, np.float64, backend)
    mean, scale = np.array([1.0, -2.0, 10.0]), np.array([2.0, 0.5, 30.0])
    model = cymlp_onnx.model_with_preprocessing(net, mean=mean, scale=scale, classes=[3, 7])
    X = np.random.default_rng(0).normal(size=(50, 3)) * scale + mean
    probabilities, label = session(model).run(["probabilities", "label"], {"X": X})
    p = net.predict((X - mean) / scale)
    assert_close(probabilities, np.hstack([1 - p, p]), 1e-12)
    assert label.dtype == np.int64
    assert label.tolist() == np.where(p[:, 0] > 0.5, 7, 3).tolist()


# ---------------------------------------------------------------- cymlp export

@pytest.fixture
def table(tmp_path):
    """``table(target)``: a small CSV of three features of different scales and ``target``.

    Targets: "species" (three class names), "kind" (classes 1 and 2) or
    "size" (a number). Returns the path and the features.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -3.0]
    columns = {
        "species": np.array(["setosa", "versicolor", "virginica"])[
            (X[:, 0] > 0).astype(int) + (X[:, 1] > 5).astype(int)],
        "kind": [str(int(x > 0) + 1) for x in X[:, 0]],
        "size": [repr(float(v)) for v in X[:, 0] + X[:, 1] / 10],
    }

    def write(target):
        path = tmp_path / f"{target}.csv"
        with open(path, "w") as file:
            file.write(f"width,length,height,{target}\n")
            for row, value in zip(X, columns[target]):
                file.write(",".join([repr(float(v)) for v in row] + [value]) + "\n")
        return path, X
    return write


def train(table_path, tmp_path, backend, *options):
    model = tmp_path / "model.npz"
    assert main(["train", str(table_path), "--quiet", "--epochs", "5", "--backend", backend,
                 "--out", str(model), *options]) == 0
    return model


def predicted(model, table_path, capsys):
    """What 'cymlp predict' writes: labels and the probability columns."""
    capsys.readouterr()
    assert main(["predict", str(model), str(table_path)]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    cells = [line.split(",") for line in lines]
    return [row[0] for row in cells], np.array([[float(v) for v in row[1:]] for row in cells])


def test_export_a_classifier_with_class_names(table, tmp_path, backend, capsys):
    path, X = table("species")
    model = train(path, tmp_path, backend, "--target", "species", "--hidden", "8,6")
    out = tmp_path / "model.onnx"
    assert main(["export", str(model), str(out)]) == 0
    assert "probabilities" in capsys.readouterr().out
    exported = onnx.load(str(out))
    onnx.checker.check_model(exported, full_check=True)
    assert [o.name for o in exported.graph.output] == ["probabilities", "label"]
    assert [n.op_type for n in exported.graph.node][:2] == ["Sub", "Div"]
    run = session(exported)
    probabilities, label = run.run(None, {"X": X})   # raw features: standardised inside
    labels, columns = predicted(model, path, capsys)
    assert label.tolist() == labels
    np.testing.assert_allclose(probabilities, columns, rtol=1e-5, atol=1e-6)  # printed 6 digits
    net, _, arrays = cymlp._io.load_network(model)
    want = net.predict((X - arrays["feature_mean"]) / arrays["feature_scale"])
    assert_close(probabilities, want, 1e-12)
    assert run.run(None, {"X": X[:1]})[1].tolist() == labels[:1]   # a batch of one


def test_export_a_bce_classifier_with_numeric_classes(table, tmp_path, backend, capsys):
    path, X = table("kind")
    model = train(path, tmp_path, backend, "--target", "kind", "--loss", "bce",
                  "--dtype", "float32")
    out = tmp_path / "model.onnx"
    assert main(["export", str(model), str(out)]) == 0
    probabilities, label = session(onnx.load(str(out))).run(None, {"X": X.astype(np.float32)})
    labels, columns = predicted(model, path, capsys)
    assert label.dtype == np.int64 and label.tolist() == [int(v) for v in labels]
    assert probabilities.dtype == np.float32 and probabilities.shape == (90, 2)
    np.testing.assert_allclose(probabilities, columns, rtol=1e-5, atol=1e-6)


def test_export_a_regression(table, tmp_path, backend, capsys):
    path, X = table("size")
    model = train(path, tmp_path, backend, "--target", "size", "--loss", "mse",
                  "--activation", "tanh")
    out = tmp_path / "model.onnx"
    assert main(["export", str(model), str(out), "--dtype", "float32"]) == 0
    exported = onnx.load(str(out))
    assert [o.name for o in exported.graph.output] == ["Y"]
    (Y,) = session(exported).run(None, {"X": X.astype(np.float32)})
    capsys.readouterr()
    assert main(["predict", str(model), str(path)]) == 0
    want = np.array([float(v) for v in capsys.readouterr().out.splitlines()[1:]])
    assert Y.shape == (90, 1) and Y.dtype == np.float32
    assert_close(Y[:, 0].astype(np.float64), want, 1e-5)


def test_export_a_model_saved_by_the_library(tmp_path, backend, capsys):
    net = network([4, 5, 2], "relu", "softmax", True, np.float64, backend)
    net.save(tmp_path / "net.npz")
    out = tmp_path / "net.onnx"
    assert main(["export", str(tmp_path / "net.npz"), str(out)]) == 0
    assert "network only" in capsys.readouterr().out
    X = np.random.default_rng(0).normal(size=(7, 4))
    assert_close(session(onnx.load(str(out))).run(["Y"], {"X": X})[0], net.predict(X), 1e-12)


def test_export_replaces_an_existing_file(tmp_path, backend):
    net = network([2, 1], "relu", "identity", True, np.float64, backend)
    net.save(tmp_path / "net.npz")
    out = tmp_path / "net.onnx"
    out.write_text("old")
    assert main(["export", str(tmp_path / "net.npz"), str(out)]) == 0
    onnx.checker.check_model(onnx.load(str(out)))
    assert [p.name for p in tmp_path.iterdir()] != [] and not any(
        p.name.endswith(".tmp") for p in tmp_path.iterdir())


def assert_reported(status, capsys, fragment):
    """Status 2 and one line on stderr holding ``fragment``."""
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("cymlp export: error: ")
    assert fragment in err, err


def test_export_errors_are_one_line(tmp_path, backend, capsys):
    net = network([2, 1], "relu", "identity", True, np.float64, backend)
    net.save(tmp_path / "net.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    model, out = str(tmp_path / "net.npz"), str(tmp_path / "net.onnx")
    assert_reported(main(["export", str(tmp_path / "missing.npz"), out]), capsys,
                    "no such model file")
    assert_reported(main(["export", str(tmp_path / "bad.npz"), out]), capsys,
                    "not a readable cymlp model file")
    assert_reported(main(["export", model, str(tmp_path)]), capsys, "it is a directory")
    assert_reported(main(["export", model, str(tmp_path / "no" / "net.onnx")]), capsys,
                    "does not exist")
    with pytest.raises(SystemExit) as exit_status:
        main(["export", model, out, "--dtype", "float16"])
    assert exit_status.value.code == 2
    assert "--dtype" in capsys.readouterr().err


def test_export_without_onnx_says_what_to_install(tmp_path, backend, capsys, monkeypatch):
    net = network([2, 1], "relu", "identity", True, np.float64, backend)
    net.save(tmp_path / "net.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert_reported(main(["export", str(tmp_path / "net.npz"), str(tmp_path / "x.onnx")]),
                    capsys, 'pip install "cymlp[onnx]"')
    assert not (tmp_path / "x.onnx").exists()


# ---------------------------------------------------------------- skl2onnx

@pytest.fixture
def skl2onnx():
    pytest.importorskip("sklearn")
    module = pytest.importorskip("skl2onnx")
    cymlp_onnx.register_skl2onnx()   # idempotent: imported cymlp.onnx did it already
    return module


def targets(kind, X):
    if kind == "binary":           # one sigmoid output, string classes
        return np.where(X[:, 0] + X[:, 1] / 10 > 0, "yes", "no"), {}
    if kind == "binary-softmax":   # two softmax outputs
        return (X[:, 0] > 0).astype(int) * 5, {"loss": "cross_entropy"}
    if kind == "multiclass":
        return np.digitize(X[:, 0], [-0.5, 0.5]) + 3, {}
    if kind == "float-classes":
        return np.digitize(X[:, 0], [-0.5, 0.5]).astype(float), {}
    if kind == "multilabel":
        return np.stack([X[:, 0] > 0, X[:, 1] > 5, X[:, 2] > 0], axis=1).astype(int), {}
    raise ValueError(kind)


def data(n_rows=300):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n_rows, 4)) * [1.0, 10.0, 0.1, 5.0] + [0.0, 5.0, 0.0, -2.0]


def classifier_pipeline(kind, backend, X, dtype=None):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from cymlp.sklearn import MLPClassifier
    y, options = targets(kind, X)
    clf = MLPClassifier((8, 6), max_iter=30, random_state=0, backend=backend, dtype=dtype,
                        **options)
    with quiet():
        pipe = Pipeline([("scale", StandardScaler()), ("mlp", clf)]).fit(X, y)
    return pipe, clf


@contextlib.contextmanager
def quiet():
    """Few iterations on purpose: the ConvergenceWarning is expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def run_converted(skl2onnx, pipe, X, options=None):
    model = skl2onnx.to_onnx(pipe, X[:1], options=options)
    onnx.checker.check_model(model)
    run = session(model)
    return run.run(None, {run.get_inputs()[0].name: X})


@pytest.mark.parametrize("input_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["binary", "binary-softmax", "multiclass", "float-classes",
                                  "multilabel"])
def test_skl2onnx_classifier_pipeline(skl2onnx, backend, kind, input_dtype):
    X = data()
    pipe, clf = classifier_pipeline(kind, backend, X)
    label, probabilities = run_converted(skl2onnx, pipe, X.astype(input_dtype),
                                         options={id(clf): {"zipmap": False}})
    assert probabilities.dtype == input_dtype
    assert probabilities.shape == (300, len(clf.classes_))
    # The pipeline in scikit-learn standardises in float64; ONNX in input_dtype.
    np.testing.assert_allclose(probabilities, pipe.predict_proba(X), rtol=0, atol=1e-5)
    predicted = pipe.predict(X)
    assert label.dtype == (object if predicted.dtype.kind in "UO" else np.int64)
    assert label.tolist() == predicted.tolist()


@pytest.mark.parametrize("kind", ["binary", "multiclass", "float-classes"])
def test_skl2onnx_classifier_with_zipmap(skl2onnx, backend, kind):
    X = data().astype(np.float32)   # ZipMap takes float tensors only (as for skl2onnx's own)
    pipe, clf = classifier_pipeline(kind, backend, X)
    label, dictionaries = run_converted(skl2onnx, pipe, X)
    assert label.tolist() == pipe.predict(X).tolist()
    expected = pipe.predict_proba(X)
    classes = [c.item() if isinstance(c, np.generic) else c for c in clf.classes_]
    for row, probabilities in zip(dictionaries, expected):
        assert sorted(row) == sorted(int(c) if isinstance(c, float) else c for c in classes)
        np.testing.assert_allclose(list(row.values()), probabilities, atol=1e-5)


def test_skl2onnx_classifier_with_zipmap_columns(skl2onnx, backend):
    X = data().astype(np.float32)
    pipe, clf = classifier_pipeline("multiclass", backend, X)
    label, *columns = run_converted(skl2onnx, pipe, X, options={id(clf): {"zipmap": "columns"}})
    assert label.tolist() == pipe.predict(X).tolist()
    np.testing.assert_allclose(np.stack(columns, axis=1), pipe.predict_proba(X), atol=1e-5)


def test_skl2onnx_classifier_alone_in_float32(skl2onnx, backend):
    X = data().astype(np.float32)
    y, _ = targets("multiclass", X)
    from cymlp.sklearn import MLPClassifier
    with quiet():
        clf = MLPClassifier((5,), max_iter=20, random_state=0, backend=backend).fit(X, y)
    assert clf.net_.dtype == np.float32
    label, probabilities = run_converted(skl2onnx, clf, X, options={"zipmap": False})
    assert label.tolist() == clf.predict(X).tolist()
    np.testing.assert_allclose(probabilities, clf.predict_proba(X), atol=1e-6)


def test_skl2onnx_one_class(skl2onnx, backend):
    from cymlp.sklearn import MLPClassifier
    X = data(40)
    with quiet():
        clf = MLPClassifier((3,), max_iter=5, random_state=0, backend=backend).fit(
            X, ["only"] * 40)
    label, probabilities = run_converted(skl2onnx, clf, X, options={"zipmap": False})
    assert label.tolist() == clf.predict(X).tolist() == ["only"] * 40
    np.testing.assert_allclose(probabilities, clf.predict_proba(X), atol=1e-12)
    with pytest.raises(ValueError, match="zipmap"):
        skl2onnx.to_onnx(clf, X[:1])


@pytest.mark.parametrize("input_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_outputs,loss", [(1, None), (2, None), (1, "poisson")])
def test_skl2onnx_regressor_pipeline(skl2onnx, backend, n_outputs, loss, input_dtype):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from cymlp.sklearn import MLPRegressor
    X = data()
    y = np.abs(X[:, :n_outputs] + 0.1 * X[:, 3:4])
    y = y[:, 0] if n_outputs == 1 else y
    with quiet():
        pipe = Pipeline([("scale", StandardScaler()),
                         ("mlp", MLPRegressor((8,), max_iter=30, random_state=0, loss=loss,
                                              backend=backend))]).fit(X, y)
    (Y,) = run_converted(skl2onnx, pipe, X.astype(input_dtype))
    assert Y.dtype == input_dtype and Y.shape == (300, n_outputs)
    predicted = pipe.predict(X)
    scale = np.abs(predicted).max()
    np.testing.assert_allclose(Y.reshape(predicted.shape), predicted, rtol=0,
                               atol=1e-5 * max(scale, 1.0))


def test_register_skl2onnx_is_idempotent(skl2onnx, backend):
    from skl2onnx._supported_operators import sklearn_operator_name_map

    from cymlp.sklearn import MLPClassifier, MLPRegressor
    cymlp_onnx.register_skl2onnx()
    cymlp_onnx.register_skl2onnx()
    assert sklearn_operator_name_map[MLPClassifier] == "CymlpMLPClassifier"
    assert sklearn_operator_name_map[MLPRegressor] == "CymlpMLPRegressor"
    X = data(20)
    pipe, clf = classifier_pipeline("multiclass", backend, X)
    label, _ = run_converted(skl2onnx, pipe, X.astype(np.float32), {id(clf): {"zipmap": False}})
    assert label.tolist() == pipe.predict(X).tolist()
