"""Pictures of training runs, inputs and weights, drawn with matplotlib.

matplotlib is an optional dependency: ``pip install "cymlp[plot]"``.
``import cymlp`` never imports it; importing this module does.

Every function returns a ``matplotlib.figure.Figure`` and leaves saving or
showing it to the caller (``fig.savefig("run.png")``; in Jupyter the figure
displays itself). The figures are built with matplotlib's object-oriented API,
without ``pyplot``: nothing is registered in pyplot's global list of open
figures, so nothing needs closing, and a figure is freed like any other object
once it is no longer referenced. To draw into a window or into a layout of
your own, pass your axes (``ax=``) or (sub)figure (``figure=``).

>>> from cymlp import MLP, datasets, plot
>>> X, Y = datasets.letters("ABCDEFGHIJ", n_per_letter=50, noise=0.05, seed=0)
>>> net = MLP([30, 64, 10], output_activation="softmax", loss="cross_entropy", seed=0)
>>> history = net.fit(X, Y, epochs=20, learning_rate=0.5, batch_size=10)
>>> plot.plot_history(history).savefig("history.png")
>>> plot.plot_images(X[:10], true=Y[:10], predicted=net.predict(X[:10]),
...                  labels="ABCDEFGHIJ").savefig("letters.png")
>>> plot.plot_weights(net, layer=0, shape=(5, 6)).savefig("weights.png")
"""

import math
import numbers
from typing import Optional, Sequence, Tuple, Union

import numpy as np

try:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure
    from matplotlib.ticker import MaxNLocator
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError('cymlp.plot needs matplotlib, which is not installed: '
                      'pip install "cymlp[plot]"') from error

from ._network import MLP, LayerViews
from ._training import History
from ._validation import check_int

__all__ = ["plot_history", "plot_images", "plot_weights"]

FigureLike = Union[Figure, SubFigure]
# Colours of the curves: training solid, validation dashed, in the same hue.
_LOSS_COLOR, _ACCURACY_COLOR = "tab:blue", "tab:green"
_WRONG_COLOR = "tab:red"


def plot_history(history: Union[History, MLP],
                 ax: Union[None, Axes, Sequence[Axes]] = None) -> Figure:
    """Loss and accuracy per epoch, for training and (when recorded) validation.

    Parameters
    ----------
    history : cymlp.History or cymlp.MLP
        What ``MLP.fit`` returned, or a network (its ``history`` is used).
    ax : matplotlib Axes, pair of Axes or None, default=None
        Where to draw. None: a new figure with the loss on the left and the
        accuracy on the right. A pair ``(loss_ax, accuracy_ax)``: one quantity
        on each. A single Axes: the loss on it and the accuracy on a twin
        y-axis on its right.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (the top-level figure when ``ax`` lies in a
        subfigure).

    Raises
    ------
    TypeError
        ``history`` is neither a History nor an MLP, or ``ax`` is not an Axes
        or a pair of Axes.
    ValueError
        ``history`` holds no epochs.

    Notes
    -----
    Training figures are those ``fit`` records: from the forward pass of each
    batch before its update, averaged over the epoch. Validation figures
    (``val_loss``, ``val_accuracy``) are drawn dashed. With early stopping, a
    dotted vertical line marks the epoch whose weights were kept.
    """
    if isinstance(history, MLP):
        history = history.history
    if not isinstance(history, History):
        raise TypeError(f"history must be a cymlp.History (what MLP.fit returns) or an MLP; "
                        f"got {type(history).__name__}")
    if history.epochs == 0:
        raise ValueError("history holds no epochs; train the network first")
    twin = isinstance(ax, Axes)
    if ax is None:
        figure = Figure(figsize=(9.0, 3.4), layout="constrained")
        loss_ax, accuracy_ax = figure.subplots(1, 2)
    elif twin:
        loss_ax, accuracy_ax = ax, ax.twinx()
    elif (isinstance(ax, (list, tuple, np.ndarray)) and len(ax) == 2
          and all(isinstance(one, Axes) for one in ax)):
        loss_ax, accuracy_ax = ax
    else:
        raise TypeError(f"ax must be a matplotlib Axes, a pair of Axes (loss, accuracy) or "
                        f"None; got {type(ax).__name__}")

    epochs = np.arange(1, history.epochs + 1)
    marker = "o" if history.epochs <= 30 else None
    curves = [(loss_ax, "loss", history.loss, history.val_loss, _LOSS_COLOR, 1.0),
              (accuracy_ax, "accuracy", history.accuracy, history.val_accuracy,
               _ACCURACY_COLOR, 100.0)]
    for axes, name, train, val, color, scale in curves:
        axes.plot(epochs, np.asarray(train) * scale, color=color, marker=marker,
                  markersize=3, label=f"training {name}")
        if val:
            axes.plot(np.arange(1, len(val) + 1), np.asarray(val) * scale, color=color,
                      linestyle="--", marker=marker, markersize=3, label=f"validation {name}")
        if history.best_epoch is not None and not (twin and axes is accuracy_ax):
            axes.axvline(history.best_epoch, color="0.4", linestyle=":", linewidth=1,
                         label=f"best epoch ({history.best_epoch})")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.set_ylim(bottom=0)
    accuracy_ax.set_ylabel("accuracy (%)")
    accuracy_ax.set_ylim(top=max(100.5, accuracy_ax.get_ylim()[1]))
    if twin:  # one title and one legend for both curves
        loss_ax.set_title("Loss and accuracy per epoch")
        handles = loss_ax.get_legend_handles_labels()
        more = accuracy_ax.get_legend_handles_labels()
        loss_ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small",
                       loc="center right")
    else:
        loss_ax.set_title("Loss per epoch")
        accuracy_ax.set_title("Accuracy per epoch")
        loss_ax.legend(fontsize="small")
        accuracy_ax.legend(fontsize="small", loc="lower right")
    return _root_figure(loss_ax.figure)


def plot_images(X, true=None, predicted=None, shape: Tuple[int, int] = (5, 6),
                labels: Optional[Sequence] = None, ncols: Optional[int] = None,
                figure: Optional[FigureLike] = None) -> Figure:
    """A grid of input images, titled with predicted and true labels.

    Parameters
    ----------
    X : array-like of shape (n_images, rows * columns) or (n_images, rows, columns)
        The images, e.g. rows of ``cymlp.datasets.letters()``; drawn with
        0 white and 1 black (values outside [0, 1] are clipped in the picture).
    true, predicted : array-like, optional
        Labels of each image: class indices of shape (n_images,), or one
        score per class of shape (n_images, n_classes) such as one-hot
        targets or ``net.predict(X)`` (the largest score wins; with a single
        column, above 0.5 is class 1), as ``MLP.classify`` decides.
    shape : tuple of int, default=(5, 6)
        (rows, columns) of one image when ``X`` holds flat rows; the letters'
        grid by default.
    labels : sequence, optional
        Name of each class index, e.g. ``"ABC"`` or ``["cat", "dog"]``;
        None writes the indices.
    ncols : int, optional
        Images per row of the grid; default ``min(n_images, 10)``.
    figure : matplotlib Figure or SubFigure, optional
        Where to draw; None creates a new figure sized to the grid.

    Returns
    -------
    matplotlib.figure.Figure
        The (top-level) figure.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type, shape or value; the message names it.

    Notes
    -----
    Each image is titled with its predicted label when ``predicted`` is given,
    else with its true label. Where both are given and differ, the title
    reads ``"B (true A)"``, and title and frame are red; the figure's title
    counts the mistakes.
    """
    shape = _check_shape(shape, "shape")
    images = _as_images(X, shape)
    n_images = images.shape[0]
    true = None if true is None else _class_indices(true, "true", n_images)
    predicted = None if predicted is None else _class_indices(predicted, "predicted", n_images)
    for name, indices in (("true", true), ("predicted", predicted)):
        if indices is not None and labels is not None and indices.max() >= len(labels):
            raise ValueError(f"labels has {len(labels)} names but {name} holds class index "
                             f"{indices.max()}")
    ncols = min(n_images, 10) if ncols is None else check_int(ncols, "ncols", minimum=1)
    ncols = min(ncols, n_images)
    nrows = math.ceil(n_images / ncols)
    if figure is None:
        cell = 1.1 * max(shape[1] / shape[0], 0.5)
        figure = Figure(figsize=(max(2.5, cell * ncols + 0.3), 1.35 * nrows + 0.5),
                        layout="constrained")
    elif not isinstance(figure, (Figure, SubFigure)):
        raise TypeError(f"figure must be a matplotlib Figure or SubFigure; "
                        f"got {type(figure).__name__}")

    def name(index):
        return str(index) if labels is None else str(labels[index])

    grid = figure.add_gridspec(nrows, ncols)
    n_wrong = 0
    for i in range(n_images):
        axes = figure.add_subplot(grid[i // ncols, i % ncols])
        axes.imshow(images[i], cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        shown = predicted if predicted is not None else true
        if shown is None:
            continue
        title, color = name(shown[i]), "black"
        if predicted is not None and true is not None and predicted[i] != true[i]:
            n_wrong += 1
            title, color = f"{name(predicted[i])} (true {name(true[i])})", _WRONG_COLOR
            for spine in axes.spines.values():
                spine.set_edgecolor(_WRONG_COLOR)
                spine.set_linewidth(2.5)
        axes.set_title(title, color=color, fontsize="medium")
    if predicted is not None and true is not None:
        figure.suptitle(f"Predicted labels: {n_images - n_wrong} of {n_images} right"
                        + (", wrong ones in red" if n_wrong else ""))
    elif predicted is not None:
        figure.suptitle("Predicted labels")
    elif true is not None:
        figure.suptitle("True labels")
    return _root_figure(figure)


def plot_weights(net_or_weights, layer: int = 0, shape: Optional[Tuple[int, int]] = None,
                 figure: Optional[FigureLike] = None) -> Figure:
    """One layer's weights as pictures: per-unit images or a heat map.

    Parameters
    ----------
    net_or_weights : cymlp.MLP, sequence of 2-D arrays, or a 2-D array
        A network, a list of weight matrices (like ``net.weights``) or one
        matrix of shape (n_in, n_out).
    layer : int, default=0
        Which weight matrix (0: inputs to the first hidden layer; negative
        numbers count from the output). A single matrix is layer 0.
    shape : tuple of int, optional
        (rows, columns) with ``rows * columns == n_in``: draw each unit's
        incoming weights (a column of the matrix) as a small image of that
        shape, e.g. ``(5, 6)`` to see which pixels of a letter a hidden unit
        looks at. None: draw the whole (n_in, n_out) matrix as a heat map.
    figure : matplotlib Figure or SubFigure, optional
        Where to draw; None creates a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The (top-level) figure.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type, shape or value; the message names it.

    Notes
    -----
    One diverging colour scale, symmetric around 0, is shared by all units
    and shown in a colour bar: red for positive weights, blue for negative,
    white for zero.
    """
    if isinstance(net_or_weights, MLP):
        matrices = list(net_or_weights.weights)
    elif isinstance(net_or_weights, (list, tuple, LayerViews)):   # LayerViews: net.weights
        matrices = list(net_or_weights)
    else:
        matrices = [net_or_weights]
    layer = check_int(layer, "layer", minimum=-len(matrices))
    if layer >= len(matrices):
        raise ValueError(f"layer must be below the number of weight matrices, "
                         f"{len(matrices)}; got {layer}")
    try:
        weights = np.asarray(matrices[layer], dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"net_or_weights must be an MLP, a list of weight matrices or one "
                        f"matrix; got {type(net_or_weights).__name__}") from None
    if weights.ndim != 2 or weights.size == 0:
        raise ValueError(f"net_or_weights: layer {layer} must be a non-empty 2-D matrix "
                         f"(n_in, n_out); got shape {weights.shape}")
    if not np.isfinite(weights).all():
        raise ValueError(f"net_or_weights: layer {layer} holds NaN or infinite weights")
    n_in, n_out = weights.shape
    if shape is not None:
        shape = _check_shape(shape, "shape")
        if shape[0] * shape[1] != n_in:
            raise ValueError(f"shape {shape} has {shape[0] * shape[1]} pixels but layer "
                             f"{layer} has {n_in} inputs")
    if figure is not None and not isinstance(figure, (Figure, SubFigure)):
        raise TypeError(f"figure must be a matplotlib Figure or SubFigure; "
                        f"got {type(figure).__name__}")
    limit = float(np.abs(weights).max()) or 1.0
    style = dict(cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    number = layer % len(matrices)
    title = f"Layer {number} weights ({n_in} inputs x {n_out} units)"

    if shape is None:
        if figure is None:
            figure = Figure(figsize=(min(12.0, 2.5 + 0.18 * n_out), min(10.0, 1.5 + 0.15 * n_in)),
                            layout="constrained")
        axes = figure.add_subplot()
        image = axes.imshow(weights, aspect="auto", **style)
        axes.set_xlabel("unit")
        axes.set_ylabel("input")
        axes.set_title(title)
        figure.colorbar(image, ax=axes, label="weight")
        return _root_figure(figure)

    ncols = min(n_out, 8)
    nrows = math.ceil(n_out / ncols)
    if figure is None:
        cell = 1.2 * max(shape[1] / shape[0], 0.5)
        figure = Figure(figsize=(cell * ncols + 1.2, 1.3 * nrows + 0.6), layout="constrained")
    grid = figure.add_gridspec(nrows, ncols)
    all_axes = []
    for unit in range(n_out):
        axes = figure.add_subplot(grid[unit // ncols, unit % ncols])
        image = axes.imshow(weights[:, unit].reshape(shape), **style)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(f"unit {unit}", fontsize="small")
        all_axes.append(axes)
    figure.colorbar(image, ax=all_axes, label="weight", shrink=0.9)
    figure.suptitle(title)
    return _root_figure(figure)


# ------------------------------------------------------------------ helpers

def _root_figure(figure):
    """The top-level Figure of a Figure or SubFigure."""
    return figure.figure if isinstance(figure, SubFigure) else figure


def _check_shape(shape, name):
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool)
                       for n in shape)):
        raise TypeError(f"{name} must be a pair of integers (rows, columns); got {shape!r}")
    if min(shape) < 1:
        raise ValueError(f"{name} must hold positive sizes; got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _as_images(X, shape):
    """X as a float array of shape (n_images, rows, columns)."""
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"X must be a numeric array of images; got {type(X).__name__}") from None
    if array.ndim == 3 and array.shape[1:] == shape:
        images = array
    elif array.ndim == 2 and array.shape[1] == shape[0] * shape[1]:
        images = array.reshape(-1, *shape)
    elif array.ndim == 2:
        raise ValueError(f"X has {array.shape[1]} columns but shape {shape} has "
                         f"{shape[0] * shape[1]} pixels")
    else:
        raise ValueError(f"X must be of shape (n_images, {shape[0] * shape[1]}) or "
                         f"(n_images, {shape[0]}, {shape[1]}); got {array.shape}")
    if images.shape[0] == 0:
        raise ValueError("X holds no images")
    if not np.isfinite(images).all():
        raise ValueError("X must contain only finite values")
    return images


def _class_indices(values, name, n_images):
    """Class index per image from indices or per-class scores (as MLP.classify)."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be class indices or per-class scores") from None
    if array.ndim == 2:
        if array.dtype.kind not in "iuf" or not np.isfinite(array).all():
            raise ValueError(f"{name} must hold finite numbers")
        indices = (array[:, 0] > 0.5).astype(np.intp) if array.shape[1] == 1 \
            else array.argmax(axis=1)
    elif array.ndim == 1:
        if array.dtype.kind == "f" and np.all(np.isfinite(array)) \
                and np.all(array == np.round(array)):
            array = array.astype(np.intp)
        if array.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold whole class indices; got dtype {array.dtype}")
        indices = array.astype(np.intp)
        if indices.size and indices.min() < 0:
            raise ValueError(f"{name} must hold class indices >= 0; got {indices.min()}")
    else:
        raise ValueError(f"{name} must be of shape (n_images,) or (n_images, n_classes); "
                         f"got {array.shape}")
    if indices.shape[0] != n_images:
        raise ValueError(f"{name} has {indices.shape[0]} entries for {n_images} images in X")
    return indices
