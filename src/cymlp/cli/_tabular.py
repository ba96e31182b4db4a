"""Reading tables for the command line: CSV with a header row, .npy and .npz.

Every problem a user can cause (missing file, unknown column, a cell that is
not a number, ragged rows, the wrong shape) raises ``ValueError`` or
``FileNotFoundError`` with one line that names the file and the place.
"""

import csv
import os

import numpy as np


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
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such data file: {path}")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        return _read_npy(path, target, feature_names)
    if extension == ".npz":
        return _read_npz(path, target, feature_names)
    return _read_csv(path, target, feature_names)


def _read_csv(path, target, feature_names):
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    except csv.Error as error:
        raise ValueError(f"{path}: not a valid CSV file ({error})") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise ValueError(f"{path}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    if len(set(header)) != len(header):
        raise ValueError(f"{path}: the header repeats a column name")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}, line {line}: {len(row)} cells, the header has "
                             f"{len(header)}")
    if target is not None and target not in header:
        raise ValueError(f"{path}: no column named {target!r} (columns: {', '.join(header)})")
    if feature_names is None:
        names = [name for name in header if name != target]
    else:
        missing = [name for name in feature_names if name not in header]
        if missing:
            raise ValueError(f"{path}: missing feature column(s) {', '.join(missing)} that the "
                             "model was trained on")
        names = list(feature_names)
    if not names:
        raise ValueError(f"{path}: no feature columns besides the target")
    columns = {name: index for index, name in enumerate(header)}
    features = np.empty((len(rows) - 1, len(names)))
    for line, row in enumerate(rows[1:], start=2):
        for j, name in enumerate(names):
            cell = row[columns[name]].strip()
            try:
                features[line - 2, j] = float(cell)
            except ValueError:
                raise ValueError(f"{path}, line {line}, column {name!r}: {cell!r} is not a "
                                 "number") from None
    if not np.isfinite(features).all():
        raise ValueError(f"{path}: feature columns hold NaN or inf")
    target_values = None
    if target is not None:
        cells = [row[columns[target]].strip() for row in rows[1:]]
        try:
            target_values = np.array([float(cell) for cell in cells])
        except ValueError:
            target_values = np.array(cells)
        if target_values.dtype.kind == "f" and not np.isfinite(target_values).all():
            raise ValueError(f"{path}: target column {target!r} holds NaN or inf")
    return Table(features, names, target_values)


def _read_npy(path, target, feature_names):
    array = _load_numeric(path)
    if array.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array (rows x columns), got shape "
                         f"{array.shape}")
    names = [str(index) for index in range(array.shape[1])]
    target_values = None
    if target is not None:
        if target not in names:
            raise ValueError(f"{path}: --target must be a column index 0..{len(names) - 1} "
                             f"for .npy files; got {target!r}")
        target_values = array[:, int(target)].astype(np.float64)
        keep = [name for name in names if name != target]
    else:
        keep = names
    if feature_names is not None:
        if len(feature_names) != len(keep):
            raise ValueError(f"{path}: {len(keep)} feature columns, the model expects "
                             f"{len(feature_names)}")
    features = array[:, [int(name) for name in keep]].astype(np.float64)
    if not np.isfinite(features).all():
        raise ValueError(f"{path}: the array holds NaN or inf")
    return Table(features, feature_names or keep, target_values)


def _read_npz(path, target, feature_names):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None
    if "X" not in arrays:
        raise ValueError(f"{path}: no array named 'X' (arrays: {', '.join(arrays) or 'none'})")
    features = arrays["X"]
    if features.dtype.kind not in "iuf" or features.ndim != 2:
        raise ValueError(f"{path}: 'X' must be a 2-D numeric array; got {features.dtype} "
                         f"with shape {features.shape}")
    features = features.astype(np.float64)
    if not np.isfinite(features).all():
        raise ValueError(f"{path}: 'X' holds NaN or inf")
    target_values = None
    if target is not None:
        if target not in arrays:
            raise ValueError(f"{path}: no array named {target!r} for the target "
                             f"(arrays: {', '.join(arrays)})")
        target_values = arrays[target]
        if target_values.ndim != 1 or len(target_values) != len(features):
            raise ValueError(f"{path}: {target!r} must be 1-D with one entry per row of X")
        if target_values.dtype.kind in "iufb":
            target_values = target_values.astype(np.float64)
        elif target_values.dtype.kind == "U":
            pass
        else:
            raise ValueError(f"{path}: {target!r} must hold numbers or strings")
    names = [str(index) for index in range(features.shape[1])]
    if feature_names is not None and len(feature_names) != len(names):
        raise ValueError(f"{path}: {len(names)} feature columns, the model expects "
                         f"{len(feature_names)}")
    return Table(features, feature_names or names, target_values)


def _load_numeric(path):
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npy file ({error})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        raise ValueError(f"{path}: expected a numeric array")
    return array
