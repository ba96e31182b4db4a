"""Edges of the public Python API: what ``dir`` shows, and the errors and
warnings at its borders (a folder given to ``load``, mis-shaped tutorial
weights, a validation split that loses a class, networks too large to exist).
"""

import os
import re
import warnings

import numpy as np
import pytest

import cymlp
from cymlp import tutorial

# ---------------------------------------------------------------- dir and __all__

PUBLIC = {"MLP", "load", "History", "TrainingDiverged", "BackendWarning", "available_backends",
          "datasets", "optim", "schedules", "tutorial", "__version__"}


def test_dir_shows_the_public_api_only():
    names = set(dir(cymlp))
    assert PUBLIC <= names
    assert set(cymlp.__all__) == PUBLIC
    for helper in ("os", "Optional", "Union", "importlib"):
        assert helper not in names
    private = {name for name in names if name.startswith("_") and not name.endswith("__")}
    assert private == set(), private
    for name in ("__version__", "__doc__", "__name__", "__all__", "__path__", "__file__"):
        assert name in names


def test_every_name_in_all_is_reachable_and_documented():
    for name in cymlp.__all__:
        value = getattr(cymlp, name)
        assert value is not None
        if name != "__version__":
            assert value.__doc__, f"cymlp.{name} has no docstring"
    assert isinstance(cymlp.__version__, str)


def test_submodules_are_reachable_without_importing_them():
    assert cymlp.tutorial.f_forward is tutorial.f_forward
    assert cymlp.optim.SGD and cymlp.schedules.StepLR and cymlp.datasets.letters


def test_star_import_binds_exactly_all():
    namespace = {}
    exec("from cymlp import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(cymlp.__all__)


def test_an_imported_optional_submodule_is_listed():
    pytest.importorskip("matplotlib")
    import cymlp.plot  # noqa: F401
    assert "plot" in dir(cymlp)


# ---------------------------------------------------------------- load

def test_load_on_a_folder_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="is not a readable cymlp model file") as info:
        cymlp.load(tmp_path)
    assert repr(os.fspath(tmp_path)) in str(info.value)
    assert "directory" in str(info.value)


def test_load_on_a_folder_named_like_a_model(tmp_path):
    folder = tmp_path / "model.npz"
    folder.mkdir()
    with pytest.raises(ValueError, match=re.escape(repr(str(folder)))):
        cymlp.load(str(folder))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_load_on_a_named_pipe_does_not_block(tmp_path):
    pipe = tmp_path / "pipe.npz"
    os.mkfifo(pipe)
    with pytest.raises(ValueError, match="not a regular file"):
        cymlp.load(pipe)


def test_load_on_a_bad_file_says_the_same(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="is not a readable cymlp model file"):
        cymlp.load(path)


def test_load_on_a_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        cymlp.load(tmp_path / "missing.npz")


# ---------------------------------------------------------------- tutorial shapes

W1, W2 = np.zeros((30, 5)), np.zeros((5, 3))
SAMPLE = np.zeros((1, 30))


@pytest.fixture
def tutorial_backend(backend):
    previous = tutorial._backend_choice
    tutorial.use_backend(backend)
    yield backend
    tutorial._backend_choice = previous


def test_w2_that_does_not_follow_w1_names_both(tutorial_backend):
    with pytest.raises(ValueError) as info:
        tutorial.f_forward(SAMPLE, W1, np.zeros((4, 3)))
    message = str(info.value)
    assert message.startswith("w2 ")
    assert "w1" in message and "(30, 5)" in message and "(4, 3)" in message
    assert "(5, n_outputs)" in message


def test_w1_of_the_wrong_shape_for_w2(tutorial_backend):
    with pytest.raises(ValueError, match=r"w2 must have shape \(6, n_outputs\).*w1 \(shape "
                                         r"\(30, 6\)\).*\(5, 3\)"):
        tutorial.back_prop(SAMPLE, [1, 0, 0], np.zeros((30, 6)), W2, 0.1)


@pytest.mark.parametrize("bad, name, expected", [
    (np.zeros(30), "w1", r"\(n_inputs, n_hidden\)"),
    (np.zeros((2, 30, 5)), "w1", r"\(n_inputs, n_hidden\)"),
])
def test_weights_that_are_not_matrices(tutorial_backend, bad, name, expected):
    with pytest.raises(ValueError, match=rf"^{name} must be a 2-D array of shape {expected}; "
                                         rf"got {bad.ndim}-D with shape"):
        tutorial.f_forward(SAMPLE, bad, W2)


def test_w2_that_is_not_a_matrix(tutorial_backend):
    with pytest.raises(ValueError, match=r"^w2 must be a 2-D array of shape "
                                         r"\(n_hidden, n_outputs\); got 1-D with shape \(5,\)"):
        tutorial.f_forward(SAMPLE, W1, np.zeros(5))


@pytest.mark.parametrize("x", [np.zeros(29), np.zeros((3, 29)), [np.zeros((1, 29))] * 3])
def test_x_of_the_wrong_width_names_x_and_w1(tutorial_backend, x):
    with pytest.raises(ValueError) as info:
        tutorial.f_forward(x, W1, W2)
    message = str(info.value)
    assert message.startswith("x must have 30 values per sample")
    assert "w1 (shape (30, 5))" in message
    assert str(np.shape(x)) in message


def test_predict_with_the_wrong_number_of_pixels(tutorial_backend):
    with pytest.raises(ValueError, match=r"^x must have 30 values"):
        tutorial.predict(np.zeros(29), W1, W2)


def test_back_prop_target_of_the_wrong_size_names_y_and_w2(tutorial_backend):
    with pytest.raises(ValueError, match=r"^y must have shape \(1, 3\).*w2 \(shape \(5, 3\)\)"
                                         r".*got y of shape \(4,\)"):
        tutorial.back_prop(SAMPLE, [1, 0, 0, 0], W1, W2, 0.1)


@pytest.mark.parametrize("Y", [np.eye(4)[:3], np.zeros(9)])
def test_train_targets_of_the_wrong_shape_name_Y(tutorial_backend, Y, capsys):
    with pytest.raises(ValueError, match=rf"^Y must have shape \(3, 3\).*got Y of shape "
                                         rf"{re.escape(str(Y.shape))}"):
        tutorial.train(np.zeros((3, 30)), Y, W1, W2, epoch=1)
    with pytest.raises(ValueError, match=r"^x and Y must have the same number of samples; "
                                         r"got 3 and 2$"):
        tutorial.train(np.zeros((3, 30)), np.eye(3)[:2], W1, W2, epoch=1)
    assert capsys.readouterr().out == ""


def test_well_shaped_tutorial_calls_still_work(tutorial_backend, capsys):
    X, Y = cymlp.datasets.letters()
    np.random.seed(0)
    w1, w2 = tutorial.generate_wt(30, 5), tutorial.generate_wt(5, 3)
    new_w1, new_w2 = tutorial.back_prop(X[:1], Y[0], w1, w2, 0.1)      # flat y, as in a loop
    assert new_w1.shape == (30, 5) and new_w2.shape == (5, 3)
    tutorial.back_prop(X[:1], Y[:1], w1, w2, 0.1)                       # (1, 3) y
    x_list = [row.reshape(1, 30) for row in X]                          # the tutorial's x
    acc, losses, w1, w2 = tutorial.train(x_list, Y, w1, w2, alpha=0.1, epoch=2)
    assert len(acc) == len(losses) == 2
    assert tutorial.f_forward(x_list[0], w1, w2).shape == (1, 3)
    capsys.readouterr()


# ---------------------------------------------------------------- validation_split and classes

def fit_warnings(net, X, Y, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net.fit(X, Y, epochs=1, **options)
    return [w for w in caught if issubclass(w.category, UserWarning)
            and "validation_split" in str(w.message)]


def test_the_three_letters_split_warns_naming_classes_and_sides(backend):
    X, Y = cymlp.datasets.letters()
    net = cymlp.MLP([30, 5, 3], seed=0, backend=backend)
    caught = fit_warnings(net, X, Y, validation_split=0.34)
    assert len(caught) == 1
    message = str(caught[0].message)
    held_out = int(np.argmax(Y[net.state_dict()["validation_rows"]["rows"][0]]))
    others = [c for c in range(3) if c != held_out]
    assert f"class {held_out} out of the training rows" in message
    assert f"classes {others[0]}, {others[1]} out of the validation rows" in message
    assert "validation_split=0.34" in message and "1 of 3 rows" in message
    assert caught[0].filename == __file__                 # points at the fit call


def test_integer_labels_of_a_softmax_output_warn(backend):
    X = np.random.default_rng(0).normal(size=(4, 3))
    labels = np.array([0, 0, 0, 1])                     # one row of class 1
    net = cymlp.MLP([3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0,
                    backend=backend)
    caught = fit_warnings(net, X, labels, validation_split=0.25)
    assert len(caught) == 1
    assert "class 1 out of the" in str(caught[0].message)


def test_probability_targets_warn(backend):
    X = np.random.default_rng(0).normal(size=(3, 2))
    Y = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    net = cymlp.MLP([2, 2], output_activation="softmax", loss="cross_entropy", seed=1,
                    backend=backend)
    assert fit_warnings(net, X, Y, validation_split=0.34)


def test_binary_targets_of_a_bce_output_warn(backend):
    X = np.random.default_rng(0).normal(size=(3, 2))
    net = cymlp.MLP([2, 1], loss="bce", seed=0, backend=backend)
    assert fit_warnings(net, X, np.array([0.0, 0.0, 1.0]), validation_split=0.34)


def test_a_split_that_keeps_every_class_on_both_sides_is_silent(backend):
    X, Y = cymlp.datasets.letters()
    X, Y = np.repeat(X, 10, axis=0), np.repeat(Y, 10, axis=0)
    for seed in range(3):
        net = cymlp.MLP([30, 5, 3], seed=seed, backend=backend)
        assert fit_warnings(net, X, Y, validation_split=0.5) == []


def test_regression_targets_never_warn(backend, make_data):
    X, Y = make_data(4, 3, 2)
    net = cymlp.MLP([3, 4, 2], output_activation="identity", seed=0, backend=backend)
    assert fit_warnings(net, X, Y, validation_split=0.25) == []
    X, y = make_data(3, 3, 1)
    net = cymlp.MLP([3, 1], output_activation="identity", seed=0, backend=backend)
    assert fit_warnings(net, X, np.array([0.0, 0.0, 1.0]), validation_split=0.34) == []


def test_validation_data_is_the_callers_choice_and_never_warns(backend):
    X, Y = cymlp.datasets.letters()
    net = cymlp.MLP([30, 5, 3], seed=0, backend=backend)
    assert fit_warnings(net, X[:2], Y[:2], validation_data=(X[2:], Y[2:])) == []


# ---------------------------------------------------------------- sizes that cannot exist

@pytest.mark.parametrize("sizes", [[2 ** 62, 4], [2 ** 31, 2 ** 31, 2 ** 31], [3, 2 ** 70]])
def test_a_parameter_count_past_what_numpy_addresses_is_a_value_error(sizes, backend):
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    with pytest.raises(ValueError, match=rf"layer_sizes=.* need {n_params} parameters"):
        cymlp.MLP(sizes, backend=backend)


def test_the_limit_depends_on_the_dtype(backend):
    limit64, limit32 = np.iinfo(np.intp).max // 16, np.iinfo(np.intp).max // 8
    with pytest.raises(ValueError, match=f"at most {limit64} parameters in float64"):
        cymlp.MLP([limit64 + 1, 1], backend=backend, bias=False)
    with pytest.raises(ValueError, match=f"at most {limit32} parameters in float32"):
        cymlp.MLP([limit32 + 1, 1], dtype=np.float32, backend=backend, bias=False)


@pytest.mark.skipif(np.dtype(np.intp).itemsize != 8, reason="64-bit address space only")
def test_a_network_larger_than_any_address_space_is_a_memory_error_naming_its_size(backend):
    sizes = [2 ** 54, 4]                             # 2**56 parameters: 512 PiB in float64
    n_params = 2 ** 56 + 4
    with pytest.raises(MemoryError, match=rf"need {n_params} parameters: "
                                          rf"{3 * 8 * n_params} bytes"):
        cymlp.MLP(sizes, backend=backend)


def test_an_allocation_failure_is_reraised_with_the_size(backend, monkeypatch):
    real_zeros = np.zeros

    def failing_zeros(shape, *args, **kwargs):
        if np.prod(shape) >= 2 * 60 * 70:
            raise MemoryError("simulated")
        return real_zeros(shape, *args, **kwargs)

    monkeypatch.setattr(np, "zeros", failing_zeros)
    with pytest.raises(MemoryError, match=r"layer_sizes=\[60, 70\] need 4270 parameters: "
                                          r"51240 bytes \(17080 for the float32") as info:
        cymlp.MLP([60, 70], dtype=np.float32, backend=backend)
    assert str(info.value.__cause__) == "simulated"


def test_ordinary_sizes_are_unaffected(backend):
    net = cymlp.MLP([30, 5, 3], backend=backend)
    assert net.n_params == 30 * 5 + 5 + 5 * 3 + 3
