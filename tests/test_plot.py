"""cymlp.plot: each picture renders to a PNG with the axes, images and lines it should have."""

import os
import subprocess
import sys

import numpy as np
import pytest

import cymlp
from cymlp import MLP, datasets

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def plot():
    """cymlp.plot with matplotlib's file-only Agg backend (skipped without matplotlib)."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from cymlp import plot as module
    return module


def assert_png(path, figure=None):
    """``path`` is a non-trivial PNG; with ``figure``, of the figure's size in pixels."""
    assert os.path.isfile(path)
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 2000
    if figure is not None:
        import matplotlib.image
        height, width = matplotlib.image.imread(path).shape[:2]
        expected = figure.get_size_inches() * figure.dpi
        assert (width, height) == pytest.approx(tuple(expected), abs=1)


def trained(backend, validation=False, early_stopping=False, epochs=6):
    X, Y = datasets.letters("ABCD", n_per_letter=10, noise=0.05, seed=0)
    net = MLP([30, 8, 4], output_activation="softmax", loss="cross_entropy", seed=1,
              backend=backend)
    options = {}
    if validation:
        options["validation_data"] = datasets.letters("ABCD", 5, noise=0.05, seed=1)
    if early_stopping:
        options.update(early_stopping=True, patience=2)
    history = net.fit(X, Y, epochs=epochs, learning_rate=0.5, batch_size=4, **options)
    return net, history, X, Y


def titles(figure):
    return [axes.get_title() for axes in figure.axes]


def suptitle(figure):
    """The figure's title text, "" when it has none."""
    return figure._suptitle.get_text() if figure._suptitle is not None else ""


# ---- plot_history ---------------------------------------------------------------------

def test_history_renders_loss_and_accuracy(plot, backend, tmp_path):
    from matplotlib.figure import Figure
    net, history, _, _ = trained(backend)
    figure = plot.plot_history(history)
    assert isinstance(figure, Figure)
    loss_ax, accuracy_ax = figure.axes
    assert titles(figure) == ["Loss per epoch", "Accuracy per epoch"]
    assert [len(axes.lines) for axes in figure.axes] == [1, 1]
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), history.loss)
    np.testing.assert_allclose(accuracy_ax.lines[0].get_ydata(), 100 * np.array(history.accuracy))
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), np.arange(1, 7))
    assert accuracy_ax.get_ylabel() == "accuracy (%)"
    figure.savefig(tmp_path / "history.png")
    assert_png(tmp_path / "history.png", figure)
    # An MLP stands for its history.
    assert [len(axes.lines) for axes in plot.plot_history(net).axes] == [1, 1]


def test_history_with_validation_draws_dashed_curves(plot, backend, tmp_path):
    _, history, _, _ = trained(backend, validation=True)
    figure = plot.plot_history(history)
    for axes, name, values, scale in zip(figure.axes, ("loss", "accuracy"),
                                         (history.val_loss, history.val_accuracy), (1, 100)):
        labels = [line.get_label() for line in axes.lines]
        assert labels == [f"training {name}", f"validation {name}"]
        assert axes.lines[1].get_linestyle() == "--"
        np.testing.assert_allclose(axes.lines[1].get_ydata(), scale * np.array(values))
        assert [text.get_text() for text in axes.get_legend().get_texts()] == labels
    figure.savefig(tmp_path / "validation.png")
    assert_png(tmp_path / "validation.png", figure)


def test_history_marks_the_best_epoch_of_early_stopping(plot, backend):
    _, history, _, _ = trained(backend, validation=True, early_stopping=True, epochs=60)
    assert history.best_epoch is not None
    figure = plot.plot_history(history)
    for axes in figure.axes:
        assert len(axes.lines) == 3
        assert axes.lines[2].get_xdata()[0] == history.best_epoch
        assert axes.lines[2].get_label() == f"best epoch ({history.best_epoch})"


def test_history_on_given_axes(plot, backend, tmp_path):
    from matplotlib.figure import Figure
    _, history, _, _ = trained(backend, validation=True)
    own = Figure()
    pair = own.subplots(1, 2)
    assert plot.plot_history(history, ax=pair) is own
    assert [len(axes.lines) for axes in own.axes] == [2, 2]

    single = Figure()
    ax = single.add_subplot()
    assert plot.plot_history(history, ax=ax) is single
    assert len(single.axes) == 2  # the accuracy on a twin axis
    assert len(single.axes[0].lines) == 2 and len(single.axes[1].lines) == 2
    legend_labels = [t.get_text() for t in single.axes[0].get_legend().get_texts()]
    assert legend_labels == ["training loss", "validation loss", "training accuracy",
                             "validation accuracy"]
    assert single.axes[0].get_title() == "Loss and accuracy per epoch"
    single.savefig(tmp_path / "twin.png")
    assert_png(tmp_path / "twin.png", single)


def test_history_errors(plot):
    with pytest.raises(ValueError, match=r"^history holds no epochs"):
        plot.plot_history(cymlp.History())
    with pytest.raises(TypeError, match=r"^history must be a cymlp.History .*; got dict$"):
        plot.plot_history({"loss": [1.0]})
    _, history, _, _ = trained("numpy", epochs=1)
    with pytest.raises(TypeError, match=r"^ax must be a matplotlib Axes, a pair of Axes "
                                        r"\(loss, accuracy\) or None; got str$"):
        plot.plot_history(history, ax="left")


# ---- plot_images ----------------------------------------------------------------------

def test_images_with_labels_and_a_mismatch(plot, tmp_path):
    X, Y = datasets.letters("ABCD")
    predicted = np.array([0, 1, 3, 3])  # C taken for D
    figure = plot.plot_images(X, true=Y, predicted=predicted, labels="ABCD")
    assert len(figure.axes) == 4
    assert [len(axes.images) for axes in figure.axes] == [1, 1, 1, 1]
    assert titles(figure) == ["A", "B", "D (true C)", "D"]
    colors = [axes.title.get_color() for axes in figure.axes]
    assert colors[2] != colors[0] and colors[0] == colors[1] == colors[3]
    frame = [axes.spines["left"].get_linewidth() for axes in figure.axes]
    assert frame[2] > frame[0] == frame[1] == frame[3]  # the mistake is framed
    assert suptitle(figure) == "Predicted labels: 3 of 4 right, wrong ones in red"
    for axes, row in zip(figure.axes, X):  # each picture is its row, on the 5x6 grid
        np.testing.assert_array_equal(axes.images[0].get_array(), row.reshape(5, 6))
    figure.savefig(tmp_path / "images.png")
    assert_png(tmp_path / "images.png", figure)


def test_images_from_network_outputs(plot, backend, tmp_path):
    net, _, X, Y = trained(backend)
    figure = plot.plot_images(X[:8], true=Y[:8], predicted=net.predict(X[:8]), labels="ABCD",
                              ncols=3)
    assert len(figure.axes) == 8
    geometry = figure.axes[0].get_subplotspec().get_gridspec().get_geometry()
    assert geometry == (3, 3)  # 8 images, 3 per row
    expected = ["ABCD"[i] if i == t else f"{'ABCD'[i]} (true {'ABCD'[t]})"
                for i, t in zip(net.classify(X[:8]), Y[:8].argmax(axis=1))]
    assert titles(figure) == expected
    figure.savefig(tmp_path / "outputs.png")
    assert_png(tmp_path / "outputs.png", figure)


def test_images_without_labels_and_of_another_shape(plot, tmp_path):
    images = np.random.default_rng(0).random((5, 4, 7))
    figure = plot.plot_images(images, shape=(4, 7))
    assert len(figure.axes) == 5 and titles(figure) == [""] * 5
    assert suptitle(figure) == ""
    figure = plot.plot_images(images.reshape(5, 28), true=[0, 1, 2, 1, 0], shape=(4, 7))
    assert titles(figure) == ["0", "1", "2", "1", "0"]
    assert suptitle(figure) == "True labels"
    figure.savefig(tmp_path / "other.png")
    assert_png(tmp_path / "other.png", figure)


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(X=np.ones((2, 29))), ValueError, "X has 29 columns"),
    (dict(X=np.ones((0, 30))), ValueError, "X holds no images"),
    (dict(X=np.ones(30)), ValueError, "X must be of shape"),
    (dict(true=[0, 1]), ValueError, "true has 2 entries"),
    (dict(predicted=[0, -1, 0]), ValueError, "predicted must hold class indices >= 0"),
    (dict(predicted=[0.5, 1, 0]), TypeError, "predicted must hold whole class indices"),
    (dict(predicted=[0, 1, 5], labels="ABC"), ValueError, "labels has 3 names"),
    (dict(shape=(5, 5)), ValueError, "shape"),
    (dict(shape=(5, 0)), ValueError, "shape"),
    (dict(shape=30), TypeError, "shape"),
    (dict(ncols=0), ValueError, "ncols"),
    (dict(figure="figure"), TypeError, "figure"),
])
def test_images_errors_name_the_argument(plot, kwargs, error, fragment):
    arguments = dict(X=datasets.letters()[0])
    arguments.update(kwargs)
    with pytest.raises(error, match=fragment):
        plot.plot_images(**arguments)


# ---- plot_weights -----------------------------------------------------------------------

def test_weights_as_unit_images(plot, backend, tmp_path):
    net, _, _, _ = trained(backend)
    figure = plot.plot_weights(net, layer=0, shape=(5, 6))
    assert len(figure.axes) == 8 + 1  # one image per hidden unit, one colour bar
    unit_axes = [axes for axes in figure.axes if axes.images]
    assert len(unit_axes) == 8
    assert [axes.get_title() for axes in unit_axes] == [f"unit {i}" for i in range(8)]
    for unit, axes in enumerate(unit_axes):
        np.testing.assert_allclose(axes.images[0].get_array(),
                                   net.weights[0][:, unit].reshape(5, 6))
    low, high = unit_axes[0].images[0].get_clim()
    assert low == -high == -np.abs(net.weights[0]).max()  # one symmetric scale for all
    assert suptitle(figure) == "Layer 0 weights (30 inputs x 8 units)"
    figure.savefig(tmp_path / "units.png")
    assert_png(tmp_path / "units.png", figure)


def test_weights_as_a_heat_map(plot, backend, tmp_path):
    net, _, _, _ = trained(backend)
    for layer in (1, -1):
        figure = plot.plot_weights(net, layer=layer)
        assert len(figure.axes) == 2  # the map and its colour bar
        (image,) = figure.axes[0].images
        np.testing.assert_allclose(image.get_array(), net.weights[1])
        assert figure.axes[0].get_title() == "Layer 1 weights (8 inputs x 4 units)"
    figure.savefig(tmp_path / "heatmap.png")
    assert_png(tmp_path / "heatmap.png", figure)
    # A list of matrices or one matrix work as well as a network.
    assert len(plot.plot_weights(net.weights, layer=1).axes) == 2
    assert len(plot.plot_weights(np.arange(12.0).reshape(4, 3), shape=(2, 2)).axes) == 4


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(layer=2), ValueError, "layer must be below"),
    (dict(layer=-3), ValueError, "layer"),
    (dict(layer=0.5), TypeError, "layer"),
    (dict(shape=(6, 6)), ValueError, "shape"),
    (dict(net_or_weights=np.ones(5)), ValueError, "net_or_weights"),
    (dict(net_or_weights="weights"), TypeError, "net_or_weights"),
    (dict(net_or_weights=[np.full((2, 2), np.nan)]), ValueError, "NaN"),
])
def test_weights_errors_name_the_argument(plot, kwargs, error, fragment):
    net = MLP([30, 4, 3], seed=0, backend="numpy")
    arguments = dict(net_or_weights=net)
    arguments.update(kwargs)
    with pytest.raises(error, match=fragment):
        plot.plot_weights(**arguments)


# ---- matplotlib stays optional and pyplot untouched -----------------------------------

def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_import_cymlp_does_not_import_matplotlib():
    result = run_python("import sys, cymlp, cymlp.cli; cymlp.datasets.letters(); "
                        "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_matplotlib_the_error_says_what_to_install():
    result = run_python("import sys; sys.modules['matplotlib'] = None\n"
                        "try:\n    import cymlp.plot\n"
                        "except ImportError as error:\n    print(error)\n")
    assert result.returncode == 0, result.stderr
    assert 'pip install "cymlp[plot]"' in result.stdout


def test_plots_leave_pyplot_alone(plot, tmp_path):
    result = run_python(
        "import sys, matplotlib; matplotlib.use('Agg')\n"
        "from cymlp import MLP, datasets, plot\n"
        "X, Y = datasets.letters()\n"
        "net = MLP([30, 5, 3], seed=0, backend='numpy')\n"
        "history = net.fit(X, Y, epochs=3)\n"
        f"plot.plot_history(history).savefig({str(tmp_path / 'a.png')!r})\n"
        "plot.plot_images(X, true=Y, predicted=net.predict(X), labels='ABC')\n"
        "plot.plot_weights(net, shape=(5, 6))\n"
        "print('matplotlib.pyplot' in sys.modules)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert_png(tmp_path / "a.png")
