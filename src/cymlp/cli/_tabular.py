"""The tabular pipeline of ``cymlp train``, ``predict`` and ``evaluate``.

Reading tables (CSV with a header row, .npy and .npz), standardising their
features, encoding the target column for a loss, and loading a model saved
by ``cymlp train`` with the statistics and labels it carries.

Every problem a user can cause (missing file, unknown column, a cell that is
not a number, ragged rows, the wrong shape, a model that does not fit the
data) raises ``CLIError`` with one line that names the file and the place.
``one_hot`` is the exception: a plain function of labels, shared with the
estimators, that raises ``ValueError``.
"""

import csv
import os

import numpy as np

from ._errors import BAD_FILE, BAD_MODEL_FILE, MISSING_BACKEND, CLIError, reported

# More distinct values than this in a target for --loss cross_entropy or bce
# is taken for a numeric target given to a classifier by mistake.
MAX_CLASSES = 1000


class Table:
    """Feature columns as floats, and the target column as given (if asked for).

    Attributes
    ----------
    features : ndarray of shape (n_rows, n_features), float64
    feature_names : list of str
    target : ndarray of shape (n_rows,) or None
        Numbers (float64) when every cell is numeric, else strings.
    """

    def __init__(self, features, feature_names, target):
        self.features, self.feature_names, self.target = features, feature_names, target


def read_table(path, target=None, feature_names=None):
    """Read ``path``; split off the ``target`` column when one is named.

    Parameters
    ----------
    path : str
        ``.csv`` (header row), ``.npy`` (2-D array; columns are named by their
        index) or ``.npz`` (array ``X`` for the features and, for a target,
        the array named by ``target``).
    target : str, optional
        Target column name (CSV), column index (``.npy``) or array name (``.npz``).
    feature_names : list of str, optional
        Expected feature columns, in order (for CSV files read for a trained
        model: they are picked by name, so their order may differ).

    Returns
    -------
    Table

    Raises
    ------
    CLIError
        The file is missing, unreadable or not a table of numbers.
    """
    if not os.path.isfile(path):
        raise CLIError(f"no such data file: {path}")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        table = _read_npy(path, target, feature_names)
    elif extension == ".npz":
        table = _read_npz(path, target, feature_names)
    else:
        table = _read_csv(path, target, feature_names)
    if table.features.shape[0] == 0:
        raise CLIError(f"{path}: no data rows")
    if table.features.shape[1] == 0:
        raise CLIError(f"{path}: no feature columns"
                       f"{' besides the target' if target is not None else ''}")
    return table


def _read_csv(path, target, feature_names):
    try:
        with reported(*BAD_FILE, prefix=f"{path}: "), \
                open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
    except UnicodeDecodeError as error:
        raise CLIError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    except csv.Error as error:
        raise CLIError(f"{path}: not a valid CSV file ({error})") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise CLIError(f"{path}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    if len(set(header)) != len(header):
        raise CLIError(f"{path}: the header repeats a column name")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise CLIError(f"{path}, line {line}: {len(row)} cells, the header has "
                           f"{len(header)}")
    if target is not None and target not in header:
        raise CLIError(f"{path}: no column named {target!r} (columns: {', '.join(header)})")
    if feature_names is None:
        names = [name for name in header if name != target]
    else:
        missing = [name for name in feature_names if name not in header]
        if missing:
            raise CLIError(f"{path}: missing feature column(s) {', '.join(missing)} that the "
                           "model was trained on")
        names = list(feature_names)
    columns = {name: index for index, name in enumerate(header)}
    features = np.empty((len(rows) - 1, len(names)))
    for line, row in enumerate(rows[1:], start=2):
        for j, name in enumerate(names):
            cell = row[columns[name]].strip()
            try:
                features[line - 2, j] = float(cell)
            except ValueError:
                raise CLIError(f"{path}, line {line}, column {name!r}: {cell!r} is not a "
                               "number") from None
    if not np.isfinite(features).all():
        raise CLIError(f"{path}: feature columns hold NaN or inf")
    target_values = None
    if target is not None:
        cells = [row[columns[target]].strip() for row in rows[1:]]
        try:
            target_values = np.array([float(cell) for cell in cells])
        except ValueError:
            target_values = np.array(cells)
        if target_values.dtype.kind == "f" and not np.isfinite(target_values).all():
            raise CLIError(f"{path}: target column {target!r} holds NaN or inf")
    return Table(features, names, target_values)


def _read_npy(path, target, feature_names):
    array = _load_numeric(path)
    if array.ndim != 2:
        raise CLIError(f"{path}: expected a 2-D array (rows x columns), got shape "
                       f"{array.shape}")
    names = [str(index) for index in range(array.shape[1])]
    target_values = None
    if target is not None:
        if target not in names:
            raise CLIError(f"{path}: --target must be a column index 0..{len(names) - 1} "
                           f"for .npy files; got {target!r}")
        target_values = array[:, int(target)].astype(np.float64)
        keep = [name for name in names if name != target]
    else:
        keep = names
    if feature_names is not None:
        if len(feature_names) != len(keep):
            raise CLIError(f"{path}: {len(keep)} feature columns, the model expects "
                           f"{len(feature_names)}")
    features = array[:, [int(name) for name in keep]].astype(np.float64)
    if not np.isfinite(features).all():
        raise CLIError(f"{path}: the array holds NaN or inf")
    return Table(features, feature_names or keep, target_values)


def _read_npz(path, target, feature_names):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError) as error:
        raise CLIError(f"{path}: not a readable .npz file ({error})") from None
    if "X" not in arrays:
        raise CLIError(f"{path}: no array named 'X' (arrays: {', '.join(arrays) or 'none'})")
    features = arrays["X"]
    if features.dtype.kind not in "iuf" or features.ndim != 2:
        raise CLIError(f"{path}: 'X' must be a 2-D numeric array; got {features.dtype} "
                       f"with shape {features.shape}")
    features = features.astype(np.float64)
    if not np.isfinite(features).all():
        raise CLIError(f"{path}: 'X' holds NaN or inf")
    target_values = None
    if target is not None:
        if target not in arrays:
            raise CLIError(f"{path}: no array named {target!r} for the target "
                           f"(arrays: {', '.join(arrays)})")
        target_values = arrays[target]
        if target_values.ndim != 1 or len(target_values) != len(features):
            raise CLIError(f"{path}: {target!r} must be 1-D with one entry per row of X")
        if target_values.dtype.kind in "iufb":
            target_values = target_values.astype(np.float64)
        elif target_values.dtype.kind == "U":
            pass
        else:
            raise CLIError(f"{path}: {target!r} must hold numbers or strings")
    names = [str(index) for index in range(features.shape[1])]
    if feature_names is not None and len(feature_names) != len(names):
        raise CLIError(f"{path}: {len(names)} feature columns, the model expects "
                       f"{len(feature_names)}")
    return Table(features, feature_names or names, target_values)


def _load_numeric(path):
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise CLIError(f"{path}: not a readable .npy file ({error})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        raise CLIError(f"{path}: expected a numeric array")
    return array


# ---------------------------------------------------------------- standardisation

def feature_statistics(features, path):
    """Mean and scale of each feature column: the standard deviation, 1 where it is 0.

    Raises
    ------
    CLIError
        The values are too large for their mean or standard deviation to be finite.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean, scale = features.mean(axis=0), features.std(axis=0)
    if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
        raise CLIError(f"{path}: feature values too large to standardise (their mean or "
                       "standard deviation overflows); rescale them or use --no-standardize")
    scale[scale == 0] = 1.0
    return mean, scale


def standardise(features, mean, scale, path):
    """``(features - mean) / scale``, which must stay finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        standardised = (features - mean) / scale
    if not np.isfinite(standardised).all():
        raise CLIError(f"{path}: feature values too large for the model's standardisation "
                       "(they overflow once scaled)")
    return standardised


# ---------------------------------------------------------------- targets

def one_hot(labels, classes=None):
    """The classes of a column of labels, and one one-hot row per label.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Class labels: numbers or strings.
    classes : array-like of shape (n_classes,), optional
        The classes, in the order of the output columns; by default the
        sorted distinct labels.

    Returns
    -------
    classes : ndarray of shape (n_classes,)
    Y : ndarray of shape (n_samples, n_classes), float64
        ``Y[i, j]`` is 1 where ``labels[i] == classes[j]``, else 0.

    Raises
    ------
    ValueError
        ``labels`` is not 1-D, or holds labels that are not in ``classes``
        (the message lists up to five of them).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {labels.shape}")
    distinct, inverse = np.unique(labels, return_inverse=True)
    if classes is None:
        classes, index = distinct, inverse.reshape(-1)
    else:
        classes = np.asarray(classes)
        column = {label: j for j, label in enumerate(classes.tolist())}
        unseen = [label for label in distinct.tolist() if label not in column]
        if unseen:
            raise ValueError(f"labels not among the classes: "
                             f"{', '.join(map(str, unseen[:5]))}"
                             f"{', ...' if len(unseen) > 5 else ''}")
        index = np.array([column[label] for label in distinct.tolist()],
                         dtype=np.intp)[inverse.reshape(-1)]
    Y = np.zeros((labels.shape[0], classes.shape[0]))
    Y[np.arange(labels.shape[0]), index] = 1.0
    return classes, Y


def encode_target(values, loss, path, target):
    """``(Y, output activation, classes)`` for ``loss``, from the target column.

    ``classes`` is None for a regression (``mse``); with ``bce`` ``Y`` is the
    one column of the second class.
    """
    if loss == "mse":
        if values.dtype.kind != "f":
            raise CLIError(f"{path}: --loss mse needs a numeric target column; {target!r} "
                           "holds text (use --loss cross_entropy for class names)")
        return values[:, None], "identity", None
    classes, Y = one_hot(values)
    if loss == "bce":
        if len(classes) != 2:
            raise CLIError(f"{path}: --loss bce needs exactly two classes in {target!r}; "
                           f"found {len(classes)}")
        return Y[:, 1:], "sigmoid", classes
    if len(classes) < 2:
        raise CLIError(f"{path}: the target {target!r} has only one class")
    if len(classes) > MAX_CLASSES:
        raise CLIError(f"{path}: the target {target!r} has {len(classes)} distinct values; "
                       "for a numeric target use --loss mse")
    return Y, "softmax", classes


def plain_label(value):
    """A class label for JSON and for printing: whole floats become ints."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value.item() if isinstance(value, np.generic) else value


def labels_like(values, classes, path):
    """The target column as a list comparable with the stored class labels."""
    numeric = all(isinstance(c, (int, float)) for c in classes)
    if numeric and values.dtype.kind != "f":
        raise CLIError(f"{path}: the target holds text, the model's classes are numbers")
    return [(plain_label(v) if numeric else str(v)) for v in values]


def encode_for_model(values, net, classes, path):
    """The target column as rows to compare with the model's outputs."""
    labels = labels_like(values, classes, path)
    try:
        _, Y = one_hot(labels, classes=classes)
    except ValueError as error:  # the one ValueError one_hot documents
        raise CLIError(f"{path}: target values the model never saw ({error})") from error
    return Y[:, 1:] if net.layer_sizes[-1] == 1 else Y


def class_probabilities(net, outputs):
    """One probability column per class (a single ``bce`` output is P(second class))."""
    if net.layer_sizes[-1] == 1:
        return np.hstack([1 - outputs, outputs])
    return outputs


# ---------------------------------------------------------------- models

def load_saved(path, backend=None):
    """``(net, extra, arrays)`` of any saved model (``extra`` and ``arrays`` as saved)."""
    from .._io import load_network
    with reported(*BAD_MODEL_FILE, *BAD_FILE, *MISSING_BACKEND):
        return load_network(path, backend=backend)


def load_model(path, backend):
    """``(net, settings, mean, scale)`` of a model saved by ``cymlp train``."""
    net, extra, arrays = load_saved(path, backend)
    if not saved_by_train(extra, arrays):
        raise CLIError(f"{path}: this model was not saved by 'cymlp train' (it lacks the "
                       "feature statistics and labels the command line needs)")
    return (net, *train_settings(path, net, extra, arrays))


def saved_by_train(extra, arrays):
    """Whether a saved model carries what ``cymlp train`` stores (checked by ``train_settings``)."""
    return (isinstance(extra, dict) and isinstance(extra.get("cli"), dict)
            and "feature_mean" in arrays and "feature_scale" in arrays)


def train_settings(path, net, extra, arrays):
    """``(settings, mean, scale)`` that ``cymlp train`` stored with ``net``, checked.

    Raises
    ------
    CLIError
        They do not match the network (a damaged or hand-made file).
    """
    settings = extra["cli"]
    mean, scale = arrays["feature_mean"], arrays["feature_scale"]
    names = settings.get("feature_names")
    if (not isinstance(names, list) or len(names) != net.layer_sizes[0]
            or mean.shape != (net.layer_sizes[0],) or scale.shape != mean.shape
            or not np.isfinite(mean).all() or not np.isfinite(scale).all()
            or not np.all(scale > 0)):
        raise CLIError(f"{path}: the model's feature statistics do not match its inputs")
    classes = settings.get("classes")
    if classes is None and net.layer_sizes[-1] != 1:
        raise CLIError(f"{path}: the model is a regression with {net.layer_sizes[-1]} outputs; "
                       "'cymlp train' writes one")
    if classes is not None and (
            not isinstance(classes, list) or len(classes) != max(2, net.layer_sizes[-1])
            or not all(isinstance(c, (str, int, float)) and not isinstance(c, bool)
                       for c in classes)
            or len(set(classes)) != len(classes)):
        raise CLIError(f"{path}: the model's class labels do not match its outputs")
    return settings, mean, scale
