"""The tutorial's functions, with its names and semantics, on cymlp's kernels.

"A neural network from scratch with NumPy" defines ``sigmoid``,
``generate_wt``, ``f_forward``, ``loss``, ``back_prop``, ``train`` and
``predict`` for a 30-5-3 sigmoid network without biases. A script that
replaces its own definitions with ``from cymlp.tutorial import *`` runs
unchanged and gives the same numbers, with the training loop running in the
selected backend (compiled by default) instead of in Python.

One quirk is kept on purpose: the tutorial reports the MSE loss
``sum((out - y)**2) / len(y)`` but its ``back_prop`` descends along the output
delta ``a2 - y``, which is the gradient of sigmoid + cross-entropy, not of the
MSE. These functions do exactly the same; ``cymlp.MLP`` uses the true gradient
of whichever loss it is given.

The backend is chosen as for ``cymlp.MLP``: ``CYMLP_BACKEND`` or
:func:`use_backend`.
"""

import math
from time import perf_counter

import numpy as np

from ._backend import resolve_backend
from ._codes import Activation, Loss
from ._params import N_OUT, block_rows, build_layout
from ._validation import as_matrix, check_float, check_int
from .optim import SGD

__all__ = ["sigmoid", "generate_wt", "f_forward", "feed_forward", "loss", "back_prop",
           "train", "predict", "use_backend"]

LETTERS = "ABC"
# train's progress lines reach the screen at most this late.
PRINT_SECONDS = 0.05
_backend_choice = None


def use_backend(backend=None):
    """Select the backend for these functions ("auto", "cython", "numpy" or None).

    Returns
    -------
    str
        The name of the backend now in use.
    """
    global _backend_choice
    name, _ = resolve_backend(backend)
    _backend_choice = backend
    return name


def _kernels():
    return resolve_backend(_backend_choice)[1]


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))``, elementwise, without overflow warnings."""
    x = np.asarray(x, dtype=float)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def generate_wt(x, y):
    """An ``(x, y)`` array of standard-normal draws from NumPy's global generator.

    ``np.random.seed(n)`` beforehand makes it repeatable, as in the tutorial.
    """
    x = check_int(x, "x")
    y = check_int(y, "y")
    return np.random.randn(x * y).reshape(x, y)


def _weights(array, name, rows, columns):
    """``array`` as a checked float64 matrix; the message names the tutorial's shape."""
    try:
        shape = np.shape(array)
    except ValueError:              # ragged nested lists: as_matrix's message
        shape = None
    if shape is not None and len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D array of shape ({rows}, {columns}); "
                         f"got {len(shape)}-D with shape {tuple(shape)}")
    return as_matrix(array, name, np.float64, what=columns)


def _network(x, w1, w2):
    """Checked float64 copies and the flat-buffer layout of a w1/w2 network."""
    w1 = _weights(w1, "w1", "n_inputs", "n_hidden")
    w2 = _weights(w2, "w2", "n_hidden", "n_outputs")
    if w2.shape[0] != w1.shape[1]:
        raise ValueError(f"w2 must have shape ({w1.shape[1]}, n_outputs), one row per hidden "
                         f"unit of w1 (shape {w1.shape}); got w2 of shape {w2.shape}")
    try:
        rows = np.asarray(x)
    except ValueError as error:
        raise ValueError(f"x must be samples of equal length: {error}") from None
    # The tutorial passes single samples as (1, 30) rows and data as a list of them.
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    elif rows.ndim > 2:
        rows = rows.reshape(rows.shape[0], -1)
    if rows.ndim == 2 and rows.shape[1] != w1.shape[0] and rows.size:
        raise ValueError(f"x must have {w1.shape[0]} values per sample, one per row of w1 "
                         f"(shape {w1.shape}); got x of shape {np.shape(x)}")
    rows = as_matrix(rows, "x", np.float64, w1.shape[0], "inputs")
    sizes = (w1.shape[0], w1.shape[1], w2.shape[1])
    layout, n_params = build_layout(sizes, [Activation.SIGMOID, Activation.SIGMOID], False)
    params = np.concatenate([w1.ravel(), w2.ravel()])
    return rows, params, layout


def _targets(y, name, rows, w2_shape, reshape):
    """Targets for ``rows``: one row of ``w2_shape[1]`` outputs per sample.

    With ``reshape``, any array of that many values (``back_prop`` takes a
    sample's label as a row or a flat vector); else exactly that shape.
    """
    expected = (rows.shape[0], w2_shape[1])
    try:
        shape = np.shape(y)
    except ValueError:              # ragged nested lists: as_matrix's message
        shape = None
    if shape is not None and (math.prod(shape) != math.prod(expected) if reshape
                              else tuple(shape) != expected):
        raise ValueError(f"{name} must have shape {expected}: {w2_shape[1]} value(s) per "
                         f"sample, one per column of w2 (shape {tuple(w2_shape)}), for "
                         f"{rows.shape[0]} sample(s) of x; got {name} of shape {tuple(shape)}")
    if shape is not None and reshape:
        y = np.reshape(y, expected)
    return as_matrix(y, name, np.float64, w2_shape[1], "outputs")


def _unpack(params, layout):
    (n_in, n_hidden), n_out = layout[0, :2], layout[1, N_OUT]
    w1 = params[:n_in * n_hidden].reshape(n_in, n_hidden).copy()
    w2 = params[n_in * n_hidden:].reshape(n_hidden, n_out).copy()
    return w1, w2


def f_forward(x, w1, w2):
    """Forward pass ``sigmoid(sigmoid(x @ w1) @ w2)``.

    Parameters
    ----------
    x : array-like of shape (n_inputs,) or (n_samples, n_inputs)
    w1 : array-like of shape (n_inputs, n_hidden)
    w2 : array-like of shape (n_hidden, n_outputs)

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
    """
    rows, params, layout = _network(x, w1, w2)
    out = np.empty((rows.shape[0], layout[-1, N_OUT]))
    _kernels().forward(params, layout, rows, out, block_rows(layout, rows.shape[0]))
    return out


feed_forward = f_forward


def loss(out, Y):
    """The tutorial's loss: ``sum((out - Y)**2) / len(Y)``."""
    out = np.asarray(out, dtype=float)
    Y = np.asarray(Y, dtype=float)
    return np.sum(np.square(out - Y)) / len(Y)


class _Passes:
    """In-order passes of per-sample updates along the tutorial's delta ``a - y``."""

    def __init__(self, rows, targets, params, layout, alpha):
        self.n_samples = rows.shape[0]
        self.order = np.arange(self.n_samples)
        # Loss.TUTORIAL reports the MSE and descends along a - y.
        self.trainer = _kernels().Trainer(params, layout, Loss.TUTORIAL, rows, targets, 1,
                                          SGD(alpha), np.zeros((2, params.shape[0])), 0)

    def run(self):
        """One pass: (loss sum, correct count)."""
        loss_sum, n_correct, rows_done = self.trainer.run(self.order, 0, self.n_samples)
        if rows_done < self.n_samples:
            raise FloatingPointError("the loss became NaN or infinite; use a smaller alpha")
        return loss_sum, n_correct


def back_prop(x, y, w1, w2, alpha):
    """One gradient step on one sample; returns the new ``(w1, w2)``.

    As in the tutorial: ``d2 = a2 - y``, ``d1 = (d2 @ w2.T) * a1 * (1 - a1)``,
    ``w1 -= alpha * x.T @ d1`` and ``w2 -= alpha * a1.T @ d2``. The arrays
    passed in are not modified.
    """
    rows, params, layout = _network(x, w1, w2)
    targets = _targets(y, "y", rows, np.shape(w2), reshape=True)
    alpha = check_float(alpha, "alpha")
    _Passes(rows, targets, params, layout, alpha).run()
    return _unpack(params, layout)


def train(x, Y, w1, w2, alpha=0.01, epoch=10):
    """Train sample by sample, in order, printing one line per epoch.

    Parameters
    ----------
    x : list of arrays of shape (1, n_inputs), or array of shape (n_samples, n_inputs)
    Y : array-like of shape (n_samples, n_outputs)
        One-hot labels.
    w1, w2 : array-like
        Starting weights (not modified).
    alpha : float, default=0.01
        Learning rate.
    epoch : int, default=10
        Number of passes.

    Returns
    -------
    acc : list of float
        Per epoch, the percentage of samples classified correctly by the
        forward pass made just before each sample's update.
    losses : list of float
        Per epoch, the mean of those forward passes' losses.
    w1, w2 : ndarray
        The trained weights.
    """
    rows, params, layout = _network(x, w1, w2)
    if np.ndim(Y) == 2 and np.shape(Y)[0] != rows.shape[0]:
        raise ValueError(f"x and Y must have the same number of samples; "
                         f"got {rows.shape[0]} and {np.shape(Y)[0]}")
    targets = _targets(Y, "Y", rows, np.shape(w2), reshape=False)
    alpha = check_float(alpha, "alpha")
    epoch = check_int(epoch, "epoch")
    acc, losses = [], []
    n_samples = rows.shape[0]
    passes = _Passes(rows, targets, params, layout, alpha)
    # The lines the tutorial prints, one per epoch, written a batch at a time
    # (a print per line would cost more than the epoch it reports).
    lines, printed = [], perf_counter()
    try:
        for number in range(1, epoch + 1):
            loss_sum, n_correct = passes.run()
            acc.append(100 * n_correct / n_samples)
            losses.append(loss_sum / n_samples)
            lines.append(f"Epoch: {number}, Accuracy: {acc[-1]:.2f}%\n")
            if perf_counter() - printed > PRINT_SECONDS:
                text, lines = "".join(lines), []
                print(text, end="", flush=True)
                printed = perf_counter()
    finally:
        print("".join(lines), end="", flush=True)
    w1, w2 = _unpack(params, layout)
    return acc, losses, w1, w2


def predict(x, w1, w2, show=False):
    """Print and return the letter the network sees in ``x``.

    Parameters
    ----------
    x : array-like of 30 pixels (any shape)
    w1, w2 : array-like
        Trained weights.
    show : bool, default=False
        Also draw the 5x6 image with matplotlib, as the tutorial does.

    Returns
    -------
    str
        "A", "B" or "C" (the index of the largest output).
    """
    out = f_forward(np.reshape(x, (1, -1)), w1, w2)
    index = int(np.argmax(out[0]))
    letter = LETTERS[index] if index < len(LETTERS) else str(index)
    print(f"Predicted Letter: {letter}")
    if show:
        import matplotlib.pyplot as plt
        plt.imshow(np.reshape(x, (5, 6)))
        plt.show()
    return letter
