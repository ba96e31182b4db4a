"""Argument checks run before anything reaches a kernel.

The compiled kernels run without bounds checks, so every public entry point
coerces its arrays here once (C-contiguous, the network's dtype, finite) and
raises a ``ValueError`` or ``TypeError`` that names the argument.
"""

import math
import numbers
import operator

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def check_dtype(dtype):
    """numpy.float32 or numpy.float64 from anything ``np.dtype`` accepts."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.type not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64; got {dtype!r}")
    return resolved.type


def as_matrix(array, name, dtype, n_columns=None, what="columns"):
    """``array`` as a finite, C-contiguous 2-D array of ``dtype``.

    Parameters
    ----------
    array : array-like
        Nested lists, integer or float arrays of any memory order.
    name : str
        Argument name used in error messages.
    dtype : numpy.float32 or numpy.float64
    n_columns : int, optional
        Required number of columns.
    what : str
        What the columns are, for the error message ("features", "outputs").

    Returns
    -------
    ndarray of shape (n_rows, n_columns)
        A view of ``array`` when it already has the right dtype and order
        (kernels never write to inputs), else a converted copy.
    """
    converted = _real_array(array, name)
    if converted.ndim != 2:
        hint = f"; for a single sample use {name}.reshape(1, -1)" if converted.ndim == 1 else ""
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_{what}); "
                         f"got {converted.ndim}-D with shape {converted.shape}{hint}")
    if converted.shape[0] == 0 or converted.shape[1] == 0:
        raise ValueError(f"{name} must not be empty; got shape {converted.shape}")
    if n_columns is not None and converted.shape[1] != n_columns:
        raise ValueError(f"{name} must have {n_columns} {what} (columns) for this network; "
                         f"got shape {converted.shape}")
    return _finite_in(converted, name, dtype)


def as_array(array, name, dtype, shape):
    """``array`` as a finite, C-contiguous array of ``dtype`` and exactly ``shape``.

    For a block of parameters (a weight matrix, a bias vector): the same
    checks and messages as ``as_matrix``, with the expected and the received
    shape named when they differ.
    """
    converted = _real_array(array, name)
    if converted.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got shape {converted.shape}")
    return _finite_in(converted, name, dtype)


def _real_array(array, name):
    """``array`` as an ndarray of integers or floats (booleans refused)."""
    if isinstance(array, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array; got a {type(array).__name__}")
    if hasattr(array, "tocsr") and hasattr(array, "nnz"):   # scipy.sparse, where X is not
        raise TypeError(f"{name} must be a dense array; got a sparse matrix "
                        f"({name}.toarray() converts it)")
    try:
        converted = np.asarray(array)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name} could not be converted to a numeric array: {error}") from None
    kind = converted.dtype.kind
    if kind == "b":
        raise TypeError(f"{name} must hold numbers; got a boolean array "
                        f"(convert it with {name}.astype(float) if 0/1 is meant)")
    if kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers (integer or float); "
                        f"got dtype {converted.dtype}")
    return converted


def _finite_in(original, name, dtype):
    """``original`` converted to a C-contiguous array of ``dtype``, all entries finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.ascontiguousarray(original, dtype=dtype)
    if not all_finite(converted):
        if original.dtype != converted.dtype and (
                original.dtype.kind in "iu" or all_finite(original)):
            raise ValueError(f"{name} holds values too large for {np.dtype(dtype).name} "
                             f"(largest magnitude {np.abs(original).max():g})")
        raise ValueError(f"{name} must contain only finite values; it holds NaN or inf")
    return converted


def all_finite(array):
    """Whether every entry of a float array is finite.

    A NaN or inf entry makes the sum non-finite, so a finite sum settles it
    without the temporary array of flags ``np.isfinite`` would allocate; only
    a sum that overflows needs the entry-by-entry check.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(np.add.reduce(array, axis=None)):
            return True
    return bool(np.isfinite(array).all())


def check_same_rows(X, Y, x_name="X", y_name="Y"):
    """Raise unless X and Y have the same number of rows."""
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{x_name} and {y_name} must have the same number of rows; "
                         f"got {X.shape[0]} and {Y.shape[0]}")


def check_choice(value, name, choices):
    """``value`` lower-cased if it is one of ``choices`` (strings).

    A value that is not a string at all (None, a number) is a ``TypeError``;
    an unknown name a ``ValueError``.
    """
    expected = f"{name} must be one of {', '.join(map(repr, choices))}"
    if not isinstance(value, str):
        raise TypeError(f"{expected}; got {value!r} of type {type(value).__name__}")
    if value.lower() not in choices:
        raise ValueError(f"{expected}; got {value!r}")
    return value.lower()


def check_int(value, name, minimum=1):
    """``value`` as an int >= minimum; bools and floats are rejected."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return value


def check_float(value, name, minimum=0.0, maximum=None, inclusive_minimum=False,
                inclusive_maximum=False):
    """``value`` as a finite float in the given range (exclusive bounds by default)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    low_ok = value >= minimum if inclusive_minimum else value > minimum
    high_ok = maximum is None or (value <= maximum if inclusive_maximum else value < maximum)
    if not np.isfinite(value) or not low_ok or not high_ok:
        bound = f"{'>=' if inclusive_minimum else '>'} {minimum}"
        if maximum is not None:
            bound += f" and {'<=' if inclusive_maximum else '<'} {maximum}"
        raise ValueError(f"{name} must be a finite number {bound}; got {value}")
    return value


def check_bool(value, name):
    """``value`` if it is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_seed(seed, allow_generator=False):
    """A seed for ``numpy.random.default_rng``: None, a non-negative integer or a
    SeedSequence (and, with ``allow_generator``, a Generator)."""
    kinds = (np.random.SeedSequence, np.random.Generator) if allow_generator else (
        np.random.SeedSequence,)
    if seed is None or isinstance(seed, kinds):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        accepted = ("a numpy.random.SeedSequence, a numpy.random.Generator"
                    if allow_generator else "a numpy.random.SeedSequence")
        raise TypeError(f"seed must be a non-negative integer, {accepted} or None; "
                        f"got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed}")
    return int(seed)


def as_sample_weight(sample_weight, name, dtype, n_rows):
    """``sample_weight`` as a C-contiguous 1-D array of ``dtype``: finite, >= 0, positive sum.

    None stays None (unweighted). A scalar gives every row that weight.
    """
    if sample_weight is None:
        return None
    converted = _real_array(sample_weight, name)
    if converted.ndim == 0:
        converted = np.full(n_rows, converted, dtype=dtype)
    if converted.ndim != 1 or converted.shape[0] != n_rows:
        raise ValueError(f"{name} must be a 1-D array of shape ({n_rows},), one weight per "
                         f"sample; got shape {converted.shape}")
    converted = _finite_in(converted, name, dtype)
    if (converted < 0).any():
        raise ValueError(f"{name} must be >= 0; got a negative weight at index "
                         f"{int(np.argmax(converted < 0))}")
    if not converted.sum(dtype=np.float64) > 0:
        raise ValueError(f"{name} must have a positive sum; every weight is zero")
    return converted


def as_targets(Y, name, dtype, n_outputs, output_activation):
    """Targets ``Y`` as a 2-D array of ``dtype`` for a network of ``n_outputs`` outputs.

    A 1-D ``Y`` is taken as one value per sample when the network has one
    output, and as integer class labels ``0..n_outputs-1`` (one-hot encoded
    here) when its output is softmax; anything else must be 2-D.
    """
    if isinstance(Y, (str, bytes)):
        return as_matrix(Y, name, dtype, n_outputs, "outputs")
    Y = _real_array(Y, name)   # ragged lists and non-numbers: its messages
    if Y.ndim != 1:
        return as_matrix(Y, name, dtype, n_outputs, "outputs")
    if n_outputs == 1:
        return as_matrix(Y.reshape(-1, 1), name, dtype, 1, "outputs")
    if output_activation != "softmax":
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, {n_outputs}) for this network of "
            f"{n_outputs} {output_activation} outputs; got a 1-D array of shape "
            f"{np.shape(Y)} (1-D class labels need output_activation='softmax')")
    labels = _real_array(Y, name)
    if labels.shape[0] == 0:
        raise ValueError(f"{name} must not be empty")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or (labels != np.round(labels)).any():
            raise ValueError(f"{name}: 1-D targets of a softmax network are class labels, "
                             f"integers from 0 to {n_outputs - 1}; got non-integer values")
    if labels.min() < 0 or labels.max() >= n_outputs:
        raise ValueError(f"{name}: class labels must be integers from 0 to {n_outputs - 1} "
                         f"(one per output); got values from {labels.min()} to {labels.max()}")
    one_hot = np.zeros((labels.shape[0], n_outputs), dtype=dtype)
    one_hot[np.arange(labels.shape[0]), labels.astype(np.intp)] = 1
    return one_hot
