"""The multi-layer perceptron: parameters, training loop and inference.

``MLP`` owns one flat parameter buffer (``params``); ``weights[l]`` and
``biases[l]`` are views into it. Training hands that buffer, a small integer
layout and the data to a backend's ``train_epoch``, which runs whole chunks of
an epoch without returning to Python.
"""

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from . import _layout
from ._backend import resolve_backend
from ._validation import (
    as_matrix, check_bool, check_choice, check_dtype, check_float, check_int, check_same_rows,
)

INITIALIZERS = ("normal", "uniform", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal")
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
OUTPUT_ACTIVATIONS = HIDDEN_ACTIVATIONS + ("softmax",)
# Output activations each loss is defined on.
LOSS_OUTPUTS = {
    "mse": OUTPUT_ACTIVATIONS,
    "bce": ("sigmoid",),
    "cross_entropy": ("softmax",),
}
OPTIMIZERS = tuple(_layout.OPTIMIZERS)

# Rows per kernel call while training: small enough that Ctrl-C and progress
# reports come back often, large enough that the call overhead is invisible.
CHUNK_ROWS = 8192
# Workspace elements per inference block: about 4 MB in float64, so a block's
# activations stay in cache while BLAS still sees hundreds of rows.
INFERENCE_BLOCK_ELEMENTS = 1 << 19


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite; lower the learning rate."""


@dataclass
class History:
    """What ``MLP.fit`` measured, one entry per epoch.

    Attributes
    ----------
    loss : list of float
        Mean training loss over the epoch, from the forward pass of each
        batch before its update (as the tutorial records it).
    accuracy : list of float
        Share of training rows classified correctly by those same forward
        passes (argmax of output equals argmax of target; for one output,
        both thresholded at 0.5).
    """

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)

    @property
    def epochs(self):
        """Number of epochs recorded."""
        return len(self.loss)


class MLP:
    """A feed-forward neural network (multi-layer perceptron).

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from input to output, e.g. ``[30, 5, 3]`` for the tutorial's
        30 inputs, 5 hidden units and 3 outputs. At least two entries.
    activation : str or sequence of str, default="sigmoid"
        Hidden-layer activation: one of "sigmoid", "tanh", "relu",
        "leaky_relu" (slope 0.01), "identity"; or a list with one name per
        hidden layer.
    output_activation : str, default="sigmoid"
        Output activation: any hidden activation or "softmax".
    loss : {"mse", "bce", "cross_entropy"}, default="mse"
        Batch-mean loss, as ``torch.nn.MSELoss``, ``torch.nn.BCELoss`` (on
        sigmoid outputs) and ``torch.nn.CrossEntropyLoss`` (on softmax
        outputs, probability targets).
    bias : bool, default=True
        Whether each layer adds a bias vector (the tutorial has none).
    init : str, default="glorot_uniform"
        Weight initialiser: "normal" (N(0, 1), the tutorial's ``randn``),
        "uniform" (U(-0.5, 0.5)), "glorot_uniform", "glorot_normal",
        "he_uniform", "he_normal". Biases start at zero.
    dtype : numpy.float32 or numpy.float64, default=numpy.float64
        Floating type of parameters, workspaces and outputs.
    seed : int or None, default=None
        Seeds ``numpy.random.default_rng`` for initialisation and shuffling;
        the same seed gives the same weights on every backend.
    backend : {"auto", "cython", "numpy"} or None, default=None
        None reads ``CYMLP_BACKEND`` (default "auto": compiled if available).

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        All weights and biases in one buffer.
    weights : list of ndarray
        ``weights[l]`` of shape ``(n_in, n_out)``, a view into ``params``.
    biases : list of ndarray
        ``biases[l]`` of shape ``(n_out,)``, views; empty when ``bias=False``.
    backend : str
        "cython" or "numpy".

    Examples
    --------
    >>> from cymlp import MLP, datasets
    >>> X, Y = datasets.letters()
    >>> net = MLP([30, 5, 3], seed=0)
    >>> history = net.fit(X, Y, epochs=200, learning_rate=1.0)
    >>> net.classify(X).tolist()
    [0, 1, 2]
    """

    def __init__(self, layer_sizes, *, activation="sigmoid", output_activation="sigmoid",
                 loss="mse", bias=True, init="glorot_uniform", dtype=np.float64, seed=None,
                 backend=None):
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        n_hidden = len(self.layer_sizes) - 2
        if isinstance(activation, str) or activation is None:
            hidden = [check_choice(activation, "activation", HIDDEN_ACTIVATIONS)] * n_hidden
        else:
            hidden = [check_choice(name, "activation", HIDDEN_ACTIVATIONS) for name in activation]
            if len(hidden) != n_hidden:
                raise ValueError(f"activation must be one name or a list of {n_hidden} names "
                                 f"(one per hidden layer); got {len(hidden)}")
        output = check_choice(output_activation, "output_activation", OUTPUT_ACTIVATIONS)
        self.activations = tuple(hidden) + (output,)
        self.loss_name = check_choice(loss, "loss", tuple(LOSS_OUTPUTS))
        if output not in LOSS_OUTPUTS[self.loss_name]:
            raise ValueError(f"loss={self.loss_name!r} needs output_activation in "
                             f"{LOSS_OUTPUTS[self.loss_name]}; got {output!r}")
        self.bias = check_bool(bias, "bias")
        self.init = check_choice(init, "init", INITIALIZERS)
        self.dtype = check_dtype(dtype)
        if seed is not None and not isinstance(seed, (numbers.Integral, np.random.SeedSequence)):
            raise TypeError(f"seed must be an integer, a numpy.random.SeedSequence or None; "
                            f"got {seed!r}")
        self.seed = seed
        self.backend, self._kernels = resolve_backend(backend)
        self._loss_code = _layout.LOSSES[self.loss_name]
        self._layout, n_params = _layout.build_layout(
            self.layer_sizes, [_layout.ACTIVATIONS[name] for name in self.activations], self.bias)
        self._params = np.zeros(n_params, dtype=self.dtype)
        self._make_views()
        self.reset()

    # ------------------------------------------------------------ parameters

    def _make_views(self):
        self.weights, self.biases = [], []
        for row in self._layout:
            n_in, n_out = int(row[_layout.N_IN]), int(row[_layout.N_OUT])
            start = int(row[_layout.W_OFFSET])
            self.weights.append(self._params[start:start + n_in * n_out].reshape(n_in, n_out))
            if row[_layout.B_OFFSET] >= 0:
                start = int(row[_layout.B_OFFSET])
                self.biases.append(self._params[start:start + n_out])

    @property
    def params(self):
        """ndarray of shape (n_params,): the flat buffer of all weights and biases."""
        return self._params

    @property
    def n_params(self):
        """Number of trainable parameters."""
        return self._params.shape[0]

    def reset(self, seed=None):
        """Re-initialise the weights and forget the optimizer state.

        Parameters
        ----------
        seed : int or None, default=None
            A new seed; None re-uses the constructor's seed, so ``reset()``
            restores the network as it was constructed (if that seed was set).

        Returns
        -------
        self : MLP
        """
        if seed is not None:
            self.seed = seed
        self._rng = np.random.default_rng(self.seed)
        for weights in self.weights:
            weights[...] = _initial_weights(self.init, weights.shape, self._rng)
        for bias in self.biases:
            bias[...] = 0
        self._state = np.zeros((2, self.n_params), dtype=self.dtype)
        self._step = 0
        self._optimizer_code = None
        return self

    # ------------------------------------------------------------ training

    def fit(self, X, Y, *, epochs=10, learning_rate=0.1, batch_size=1, shuffle=True,
            verbose=False):
        """Train with stochastic gradient descent; continues from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs, one row per sample.
        Y : array-like of shape (n_samples, n_outputs)
            Targets, e.g. one-hot rows for classification.
        epochs : int, default=10
            Passes over the data.
        learning_rate : float, default=0.1
            Step size: ``params -= learning_rate * grad`` of the batch-mean
            loss (``torch.optim.SGD(lr=...)``).
        batch_size : int, default=1
            Rows per update; 1 is the tutorial's per-sample training. The
            last, partial batch of an epoch is used too.
        shuffle : bool, default=True
            Visit the rows in a new random order each epoch (drawn from the
            network's seed); False visits them in order, as the tutorial does.
        verbose : bool, default=False
            Print ``Epoch: N, Loss: L, Accuracy: A%`` after each epoch.

        Returns
        -------
        History
            Per-epoch training loss and accuracy.
        """
        X, Y = self._check_data(X, Y)
        epochs = check_int(epochs, "epochs", minimum=1)
        learning_rate = check_float(learning_rate, "learning_rate")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        shuffle = check_bool(shuffle, "shuffle")
        verbose = check_bool(verbose, "verbose")
        hyperparams = np.zeros(_layout.N_HYPERPARAMS)
        hyperparams[_layout.LEARNING_RATE] = learning_rate
        self._set_optimizer(_layout.SGD)

        n_samples = X.shape[0]
        workspace = np.empty(_layout.workspace_size(self._layout, min(batch_size, n_samples)),
                             dtype=self.dtype)
        grad = np.empty(self.n_params, dtype=self.dtype)
        history = History()
        for epoch in range(1, epochs + 1):
            order = self._rng.permutation(n_samples) if shuffle else np.arange(n_samples)
            loss_sum, n_correct = self._train_rows(X, Y, order, batch_size, hyperparams,
                                                   grad, workspace, epoch)
            history.loss.append(loss_sum / n_samples)
            history.accuracy.append(n_correct / n_samples)
            if verbose:
                print(f"Epoch: {epoch}, Loss: {history.loss[-1]:.6f}, "
                      f"Accuracy: {100 * history.accuracy[-1]:.2f}%", flush=True)
        return history

    def _set_optimizer(self, optimizer_code):
        """Start fresh optimizer state when the optimizer changes."""
        if self._optimizer_code != optimizer_code:
            self._state[...] = 0
            self._step = 0
            self._optimizer_code = optimizer_code

    def _train_rows(self, X, Y, order, batch_size, hyperparams, grad, workspace, epoch):
        """One pass over X[order], in kernel calls of about CHUNK_ROWS rows."""
        chunk = max(1, CHUNK_ROWS // batch_size) * batch_size
        loss_sum, n_correct = 0.0, 0
        for start in range(0, order.shape[0], chunk):
            rows = order[start:start + chunk]
            chunk_loss, chunk_correct, rows_done = self._kernels.train_epoch(
                self._params, self._layout, self._loss_code, X, Y, rows, batch_size,
                self._optimizer_code, hyperparams, self._state, self._step, grad, workspace)
            self._step += math.ceil(rows_done / batch_size)
            if rows_done < rows.shape[0]:
                raise TrainingDiverged(
                    f"the training loss became NaN or infinite in epoch {epoch}; "
                    f"try a smaller learning_rate (got {hyperparams[_layout.LEARNING_RATE]})")
            loss_sum += chunk_loss
            n_correct += chunk_correct
        return loss_sum, n_correct

    # ------------------------------------------------------------ inference

    def predict(self, X):
        """Output activations of the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            In the network's dtype.
        """
        X = self._check_inputs(X)
        out = np.empty((X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        row_width = _layout.workspace_row_width(self._layout)
        block_rows = min(X.shape[0], max(1, INFERENCE_BLOCK_ELEMENTS // row_width))
        workspace = np.empty(row_width * block_rows, dtype=self.dtype)
        self._kernels.forward(self._params, self._layout, X, out, workspace)
        return out

    def classify(self, X):
        """Predicted class index per row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), dtype intp
            Argmax of the outputs; with a single output, 1 where it exceeds 0.5.
        """
        outputs = self.predict(X)
        if outputs.shape[1] == 1:
            return (outputs[:, 0] > 0.5).astype(np.intp)
        return outputs.argmax(axis=1)

    def loss(self, X, Y):
        """Mean loss over the rows of X (the network's ``loss`` function).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Y : array-like of shape (n_samples, n_outputs)

        Returns
        -------
        float
        """
        loss_sum, _ = self._evaluate(X, Y)
        return loss_sum / np.shape(Y)[0]

    def accuracy(self, X, Y):
        """Share of rows whose predicted class matches the target's.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Y : array-like of shape (n_samples, n_outputs)
            One-hot (or probability) rows; with one output, 0/1 targets
            compared with outputs thresholded at 0.5.

        Returns
        -------
        float
            In [0, 1].
        """
        _, n_correct = self._evaluate(X, Y)
        return n_correct / np.shape(Y)[0]

    def _evaluate(self, X, Y):
        X, Y = self._check_data(X, Y)
        row_width = _layout.workspace_row_width(self._layout)
        block_rows = min(X.shape[0], max(1, INFERENCE_BLOCK_ELEMENTS // row_width))
        workspace = np.empty(row_width * block_rows, dtype=self.dtype)
        return self._kernels.evaluate(self._params, self._layout, self._loss_code, X, Y,
                                      workspace)

    # ------------------------------------------------------------ helpers

    def _check_inputs(self, X, name="X"):
        return as_matrix(X, name, self.dtype, self.layer_sizes[0], "features")

    def _check_data(self, X, Y):
        X = self._check_inputs(X)
        Y = as_matrix(Y, "Y", self.dtype, self.layer_sizes[-1], "outputs")
        check_same_rows(X, Y)
        return X, Y

    def __repr__(self):
        sizes = "-".join(map(str, self.layer_sizes))
        return (f"MLP({sizes}, activations={list(self.activations)}, loss={self.loss_name!r}, "
                f"bias={self.bias}, dtype={np.dtype(self.dtype).name}, backend={self.backend!r})")

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_kernels"], state["weights"], state["biases"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.backend, self._kernels = resolve_backend(self.backend)
        self._make_views()


def _check_layer_sizes(layer_sizes):
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(f"layer_sizes must be a sequence of integers such as [30, 5, 3]; "
                        f"got {layer_sizes!r}")
    if len(layer_sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size; "
                         f"got {list(layer_sizes)}")
    return tuple(check_int(size, f"layer_sizes[{index}]", minimum=1)
                 for index, size in enumerate(layer_sizes))


def _initial_weights(init, shape, rng):
    """Draws for a weight matrix of ``shape`` = (n_in, n_out) (float64)."""
    fan_in, fan_out = shape
    if init == "normal":
        return rng.standard_normal(shape)
    if init == "uniform":
        return rng.uniform(-0.5, 0.5, shape)
    if init == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)
    if init == "glorot_normal":
        return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), shape)
    if init == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, shape)
    if init == "he_normal":
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    raise ValueError(f"unknown init {init!r}")
