"""The tabular pipeline of ``cymlp train``, ``predict`` and ``evaluate``.

Reading tables (CSV with a header row or ``--no-header``, .npy and .npz),
choosing their feature columns (``--features``, ``--drop``, identifier
columns left out with a note), standardising the features, encoding the
target column for a loss, and loading a saved model: one from ``cymlp
train`` with the statistics and labels it carries, or one saved from Python.

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
    target_name : str or None
        The target column's name (for CSV, also when ``--target`` gave its index).
    n_columns : int
        Columns in the file, the target included (for .npz, the columns of ``X``).
    notes : list of str
        What the reader decided for the user (a column dropped as an identifier).
    """

    def __init__(self, features, feature_names, target, target_name=None, n_columns=0,
                 notes=()):
        self.features, self.feature_names, self.target = features, feature_names, target
        self.target_name, self.n_columns, self.notes = target_name, n_columns, list(notes)


# Column names taken for row identifiers: never features unless asked for
# (--features), since a model that learns from them learns nothing that holds
# for new rows. "" and "Unnamed: 0" are the index column pandas' to_csv writes.
IDENTIFIER_NAMES = ("id", "")


def is_identifier_name(name):
    """True for a column name such as ``id``, ``ID``, ``Id`` or pandas' unnamed index."""
    return name.strip().lower() in IDENTIFIER_NAMES or name.startswith("Unnamed: ")


def read_table(path, target=None, feature_names=None, header=True, features=None, drop=None,
               source_columns=None, identifiers=True):
    """Read ``path``; split off the ``target`` column when one is named.

    Parameters
    ----------
    path : str
        ``.csv`` (a header row unless ``header`` is False; a UTF-8 byte-order
        mark is skipped; ``;`` or tab separators are recognised), ``.npy``
        (2-D array; columns are named by their index) or ``.npz`` (array
        ``X`` for the features and, for a target, the array named by ``target``).
    target : str, optional
        Target column name or index (CSV), column index (``.npy``) or array
        name (``.npz``). Negative indices count from the last column.
    feature_names : list of str, optional
        Expected feature columns, in order (for files read for a trained
        model: CSV columns are picked by name, so their order may differ).
    header : bool, default=True
        False: the CSV file has no header row; its columns are named by
        their index, ``"0"``, ``"1"``, ...
    features, drop : list of str, optional
        The feature columns to use, or the columns not to use (names or
        indices; the ``--features`` and ``--drop`` options). Without either,
        a column named like an identifier (``id``, ``ID``, pandas' unnamed
        index) is left out, with a note in ``Table.notes``.
    source_columns : int, optional
        For .npy and .npz files read for a model: the number of columns of
        the file it was trained on. A file of that width gives the model's
        feature columns by their index; any other must hold exactly them.
    identifiers : bool, default=True
        False: keep identifier-like columns as features too, without notes
        (for models saved from Python, which take every column).

    Returns
    -------
    Table

    Raises
    ------
    CLIError
        The file is missing, unreadable or not a table of numbers, or a
        column named does not exist.
    """
    if not os.path.isfile(path):
        raise CLIError(f"no such data file: {path}")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        names, column, target_values, target, n_rows = _read_npy(path, target)
    elif extension == ".npz":
        names, column, target_values, n_rows = _read_npz(path, target)
    else:
        names, column, target_values, target, n_rows = _read_csv(path, target, header)
    notes = []
    if feature_names is not None:
        keep = _model_columns(path, extension, names, target, feature_names, source_columns)
    else:
        keep = _chosen_columns(path, names, target, features, drop, notes if identifiers
                               else None)
    if n_rows == 0:
        raise CLIError(f"{path}: no data rows")
    if not keep:
        raise CLIError(f"{path}: no feature columns"
                       f"{' besides the target' if target is not None else ''}")
    matrix = np.empty((n_rows, len(keep)))
    for j, name in enumerate(keep):
        try:
            matrix[:, j] = column(name)
        except CLIError as error:
            if feature_names is not None or features or not identifiers:
                raise
            raise CLIError(f"{error}; if {name!r} is not a feature, leave it out with "
                           f"--drop {name}") from None
    if not np.isfinite(matrix).all():
        raise CLIError(f"{path}: feature columns hold NaN or inf")
    if feature_names is None and identifiers and extension not in (".npy", ".npz"):
        _note_row_numbers(matrix, keep, features, drop, notes)
    return Table(matrix, list(feature_names) if feature_names is not None else keep,
                 target_values, target, len(names), notes)


def resolve_column(spec, names, path, flag):
    """The column ``spec`` names: a column name, else an index (negative from the end)."""
    if spec in names:
        return spec
    try:
        index = int(spec)
    except ValueError:
        index = None
    if index is not None and -len(names) <= index < len(names):
        return names[index]
    shown = ", ".join(repr(name) for name in names[:20]) + (", ..." if len(names) > 20 else "")
    raise CLIError(f"{path}: {flag}: no column named {spec!r}"
                   f"{' and no column index ' + spec if index is not None else ''} "
                   f"(columns: {shown}; indices 0..{len(names) - 1})")


def _chosen_columns(path, names, target, features, drop, notes):
    candidates = [name for name in names if name != target]
    if features:
        chosen = [resolve_column(spec, names, path, "--features") for spec in features]
        if target in chosen:
            raise CLIError(f"{path}: --features: {target!r} is the --target column")
        if len(set(chosen)) != len(chosen):
            raise CLIError(f"{path}: --features names a column twice")
        return chosen
    if drop:
        dropped = {resolve_column(spec, names, path, "--drop") for spec in drop}
        if target in dropped:
            raise CLIError(f"{path}: --drop: {target!r} is the --target column")
        return [name for name in candidates if name not in dropped]
    if notes is None:
        return candidates
    identifiers = [name for name in candidates if is_identifier_name(name)]
    for name in identifiers:
        notes.append(f"column {name!r} is not used as a feature: it looks like a row "
                     f"identifier (choose the columns with --features or --drop)")
    return [name for name in candidates if name not in identifiers]


def _note_row_numbers(matrix, names, features, drop, notes):
    """A note for each feature column that holds just the row numbers (0..n-1 or 1..n)."""
    if features or drop or len(matrix) < 10:
        return
    rows = np.arange(len(matrix), dtype=np.float64)
    for j, name in enumerate(names):
        if np.array_equal(matrix[:, j], rows) or np.array_equal(matrix[:, j], rows + 1):
            notes.append(f"feature column {name!r} holds the row numbers "
                         f"{int(matrix[0, j])}..{int(matrix[-1, j])}; if it is a row "
                         f"identifier, leave it out with --drop {name}")


def _model_columns(path, extension, names, target, feature_names, source_columns):
    """The columns of ``path`` that are a model's features, in the model's order."""
    if extension not in (".npy", ".npz"):  # CSV: by name
        missing = [name for name in feature_names if name not in names]
        if missing:
            raise CLIError(f"{path}: missing feature column(s) {', '.join(missing)} that the "
                           "model was trained on")
        return list(feature_names)
    keep = [name for name in names if name != target]
    if len(keep) == len(feature_names):
        return keep
    if source_columns is not None and len(names) == source_columns and all(
            name in names for name in feature_names):
        return list(feature_names)  # a file laid out as the training file: pick by index
    raise CLIError(f"{path}: {len(keep)} feature columns, the model expects "
                   f"{len(feature_names)}")


def _read_csv(path, target, header):
    try:
        with reported(*BAD_FILE, prefix=f"{path}: "), \
                open(path, newline="", encoding="utf-8-sig") as file:  # Excel's "CSV UTF-8"
            text = file.read()
    except UnicodeDecodeError as error:
        raise CLIError(f"{path}: not a UTF-8 text file ({error.reason}); save it as "
                       "\"CSV UTF-8\"") from None
    first_line = text.split("\n", 1)[0]
    delimiter = ","
    if "," not in first_line:  # a spreadsheet's ';' or tab separated export
        delimiter = next((d for d in (";", "\t") if d in first_line), ",")
    try:
        rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    except csv.Error as error:
        raise CLIError(f"{path}: not a valid CSV file ({error})") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows or (header and len(rows) < 2):
        raise CLIError(f"{path}: needs a header row and at least one data row"
                       if header else f"{path}: no data rows")
    if header:
        names = [name.strip() for name in rows[0]]
        if _looks_like_data(names, rows[1:]):
            shown = ",".join(rows[0][:6]) + (",..." if len(rows[0]) > 6 else "")
            raise CLIError(f"{path}: the first row ({shown}) looks like data, not column names: "
                           "a header row naming the columns is needed; for a file without "
                           "one, pass --no-header and give columns by index (e.g. "
                           "--target -1 for the last)")
        rows = rows[1:]
        first_line_number = 2
    else:
        names = [str(index) for index in range(len(rows[0]))]
        first_line_number = 1
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise CLIError(f"{path}: the header repeats the column name(s) "
                       f"{', '.join(map(repr, repeated))}")
    for line, row in enumerate(rows, start=first_line_number):
        if len(row) != len(names):
            raise CLIError(f"{path}, line {line}: {len(row)} cells, the "
                           f"{'header' if header else 'first row'} has {len(names)}")
    if target is not None:
        target = resolve_column(target, names, path, "--target")
    index = {name: j for j, name in enumerate(names)}

    def column(name):
        values = np.empty(len(rows))
        for i, row in enumerate(rows):
            cell = row[index[name]].strip()
            try:
                values[i] = float(cell)
            except ValueError:
                hint = (" (numbers need a decimal point, not a decimal comma)"
                        if _is_number(cell.replace(",", ".")) else "")
                raise CLIError(f"{path}, line {i + first_line_number}, column {name!r}: "
                               f"{cell!r} is not a number{hint}") from None
        return values

    target_values = None
    if target is not None:
        cells = [row[index[target]].strip() for row in rows]
        try:
            target_values = np.array([float(cell) for cell in cells])
        except ValueError:
            target_values = np.array(cells)
        if target_values.dtype.kind == "f" and not np.isfinite(target_values).all():
            raise CLIError(f"{path}: target column {target!r} holds NaN or inf")
    return names, column, target_values, target, len(rows)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_like_data(names, rows, sample=200):
    """Whether a CSV file's first row is a data row rather than column names.

    It is, when it has a number in every column whose cells are numbers and,
    in every other column, a value that column holds further down (a class
    name, say); the column indices 0..n-1 are taken for names.
    """
    if names == [str(index) for index in range(len(names))]:
        return False
    sample = [row for row in rows[:sample] if len(row) == len(names)]
    if not sample:
        return all(_is_number(name) for name in names)
    numeric = [all(_is_number(row[j].strip()) for row in sample) for j in range(len(names))]
    if not any(numeric):
        return False
    for j, name in enumerate(names):
        if numeric[j] and not _is_number(name):
            return False
        if not numeric[j] and name not in {row[j].strip() for row in rows}:
            return False
    return True


def _read_npy(path, target):
    array = _load_numeric(path)
    if array.ndim != 2:
        raise CLIError(f"{path}: expected a 2-D array (rows x columns), got shape "
                       f"{array.shape}")
    names = [str(index) for index in range(array.shape[1])]
    target_values = None
    if target is not None:
        try:
            target = resolve_column(target, names, path, "--target")
        except CLIError:
            raise CLIError(f"{path}: --target must be a column index 0..{len(names) - 1} "
                           f"for .npy files; got {target!r}") from None
        target_values = array[:, int(target)].astype(np.float64)
    return (names, lambda name: array[:, int(name)].astype(np.float64), target_values, target,
            array.shape[0])


def _read_npz(path, target):
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
        if target_values.dtype.kind == "f" and not np.isfinite(target_values).all():
            raise CLIError(f"{path}: target array {target!r} holds NaN or inf")
    names = [str(index) for index in range(features.shape[1])]
    return names, lambda name: features[:, int(name)], target_values, features.shape[0]


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


def plain_model_settings(net):
    """The settings of a model saved from Python (``MLP.save``), without the CLI's metadata.

    Its inputs are the data's columns as they are (no standardisation, no
    names: the file must hold exactly ``layer_sizes[0]`` feature columns).
    With ``cross_entropy`` (and with ``bce`` on one output) it is a
    classifier whose classes are the output indices ``0..k-1``; otherwise
    ``classes`` is None and ``cymlp predict`` writes the raw outputs.
    """
    n_outputs = net.layer_sizes[-1]
    classes = None
    if net.loss_name == "cross_entropy" or (net.loss_name in ("bce", "mse")
                                            and n_outputs == 1
                                            and net.activations[-1] == "sigmoid"):
        classes = list(range(max(2, n_outputs)))
    elif net.loss_name == "mse" and n_outputs > 1:
        # The tutorial's way: one output per class, trained on one-hot rows with MSE.
        classes = list(range(n_outputs))
    return {"task": "classification" if classes is not None else "outputs",
            "classes": classes, "feature_names": None, "plain": True}


def load_model(path, backend):
    """``(net, settings, mean, scale)`` of a saved model.

    A model saved by ``cymlp train`` carries its feature names, statistics and
    labels; one saved from Python gets ``plain_model_settings`` and no
    standardisation (``mean`` and ``scale`` are None).
    """
    net, extra, arrays = load_saved(path, backend)
    settings = extra.get("cli") if isinstance(extra, dict) else None
    if settings is None and "feature_mean" not in arrays and "feature_scale" not in arrays:
        return net, plain_model_settings(net), None, None
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
