"""The multi-layer perceptron: parameters, training loop and inference.

``MLP`` owns one flat parameter buffer (``params``); ``weights[l]`` and
``biases[l]`` are views into it. Training hands that buffer, a small integer
layout and the data to a backend's ``train_epoch``, which runs whole chunks of
an epoch without returning to Python.
"""

import contextlib
import math
import numbers
import operator
import threading
from dataclasses import dataclass, field
from time import perf_counter
import os
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _layout
from ._backend import resolve_backend
from ._threads import blas_threads, threads_for
from .schedules import check_schedule
from ._validation import (
    all_finite, as_matrix, check_bool, check_choice, check_dtype, check_float, check_int,
    check_same_rows, check_seed,
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

# Time per training kernel call: short enough that Ctrl-C and progress come
# back quickly, long enough that the call overhead is invisible.
CHUNK_SECONDS = 0.05
MAX_CHUNK_ROWS = 1 << 20
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
    val_loss, val_accuracy : list of float
        The same on the validation data after each epoch (empty without).
    learning_rate : list of float
        The learning rate used in each epoch.
    stopped_early : bool
        Whether early stopping ended the training.
    best_epoch : int or None
        With early stopping, the epoch (from 1) whose weights were restored.
    """

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    learning_rate: list = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: Optional[int] = None

    @property
    def epochs(self) -> int:
        """Number of epochs completed."""
        return len(self.loss)

    def summary(self, epoch: int = -1) -> str:
        """One line on an epoch: ``Epoch: N, Loss: L, Accuracy: A%`` (and validation)."""
        number = self.epochs if epoch == -1 else epoch + 1
        text = (f"Epoch: {number}, Loss: {self.loss[epoch]:.6f}, "
                f"Accuracy: {100 * self.accuracy[epoch]:.2f}%")
        if self.val_loss:
            text += (f", Val loss: {self.val_loss[epoch]:.6f}, "
                     f"Val accuracy: {100 * self.val_accuracy[epoch]:.2f}%")
        return text


class MLP:
    """A feed-forward neural network (multi-layer perceptron).

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from input to output, e.g. ``[30, 5, 3]`` for the tutorial's
        30 inputs, 5 hidden units and 3 outputs. At least two entries.
    activation : str or sequence of str, default="sigmoid"
        Hidden-layer activation, one name for all hidden layers or a list with
        one name per hidden layer: "sigmoid" (``torch.nn.Sigmoid``), "tanh"
        (``torch.nn.Tanh``), "relu" (``torch.nn.ReLU``), "leaky_relu"
        (``torch.nn.LeakyReLU(0.01)``), "identity" (no activation).
    output_activation : str, default="sigmoid"
        Output activation: any hidden activation or "softmax"
        (``torch.nn.Softmax(dim=1)``).
    loss : {"mse", "bce", "cross_entropy"}, default="mse"
        Batch-mean loss. "mse": mean over samples and outputs of
        ``(a - y)**2`` (``torch.nn.MSELoss()``), with any output activation.
        "bce": binary cross-entropy on sigmoid outputs
        (``torch.nn.BCELoss()``, computed from the logits as
        ``torch.nn.BCEWithLogitsLoss`` does, so it never takes ``log(0)``).
        "cross_entropy": ``-sum(y * log softmax(z))`` averaged over samples,
        on softmax outputs (``torch.nn.CrossEntropyLoss()`` with probability
        targets). Other pairings raise a ``ValueError``.
    bias : bool, default=True
        Whether each layer adds a bias vector (the tutorial has none).
    init : str, default="glorot_uniform"
        Weight initialiser: "normal" (N(0, 1), the tutorial's ``randn``),
        "uniform" (U(-0.5, 0.5)), "glorot_uniform"
        (``torch.nn.init.xavier_uniform_``), "glorot_normal"
        (``xavier_normal_``), "he_uniform" (``kaiming_uniform_`` with
        ``nonlinearity="relu"``), "he_normal" (``kaiming_normal_``). Biases
        start at zero.
    dtype : numpy.float32 or numpy.float64, default=numpy.float64
        Floating type of parameters, workspaces and outputs.
    seed : int or None, default=None
        Seeds ``numpy.random.default_rng`` for initialisation and shuffling;
        the same seed gives the same weights on every backend.
    backend : {"auto", "cython", "numpy"} or None, default=None
        None reads ``CYMLP_BACKEND`` (default "auto": compiled if available).
    n_threads : int or None, default=None
        Threads BLAS may use in ``fit`` and ``predict``. None: one thread when
        every product is small (below about two million multiply-adds per
        batch, where waking threads costs more than it saves), BLAS's own
        default otherwise; -1: every core; k: k threads. The setting is
        process-wide while a call runs (BLAS has one thread pool).

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

    def __init__(self, layer_sizes: Sequence[int], *,
                 activation: Union[str, Sequence[str]] = "sigmoid",
                 output_activation: str = "sigmoid", loss: str = "mse", bias: bool = True,
                 init: str = "glorot_uniform", dtype: DTypeLike = np.float64,
                 seed: Optional[int] = None, backend: Optional[str] = None,
                 n_threads: Optional[int] = None) -> None:
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        n_hidden = len(self.layer_sizes) - 2
        if isinstance(activation, str) or activation is None:
            hidden = [check_choice(activation, "activation", HIDDEN_ACTIVATIONS)] * n_hidden
        elif not isinstance(activation, (list, tuple)):
            raise TypeError(f"activation must be a name or a list of names (one per hidden "
                            f"layer); got {activation!r}")
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
        self.seed = check_seed(seed)
        self.backend, self._kernels = resolve_backend(backend)
        self.n_threads = _check_n_threads(n_threads)
        self._loss_code = _layout.LOSSES[self.loss_name]
        self._layout, n_params = _layout.build_layout(
            self.layer_sizes, [_layout.ACTIVATIONS[name] for name in self.activations], self.bias)
        self._params = np.zeros(n_params, dtype=self.dtype)
        self._training_lock = threading.Lock()
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
    def params(self) -> np.ndarray:
        """ndarray of shape (n_params,): the flat buffer of all weights and biases."""
        return self._params

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return self._params.shape[0]

    def reset(self, seed: Optional[int] = None) -> "MLP":
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
        new_seed = self.seed if seed is None else check_seed(seed)
        with self._exclusive("reset"):
            self.seed = new_seed
            self._reset()
        return self

    def _reset(self):
        self._rng = np.random.default_rng(self.seed)
        for weights in self.weights:
            weights[...] = _initial_weights(self.init, weights.shape, self._rng)
        for bias in self.biases:
            bias[...] = 0
        self._state = np.zeros((2, self.n_params), dtype=self.dtype)
        self._step = np.zeros(1, dtype=np.int64)
        self._optimizer_code = None
        self.history = History()

    @contextlib.contextmanager
    def _exclusive(self, action):
        """Hold the training lock: one fit (or reset) at a time per network.

        A second ``fit`` on the same network from another thread would
        interleave updates of one parameter buffer; it gets a RuntimeError
        instead. (``predict`` never takes the lock: it only reads.)
        """
        if not self._training_lock.acquire(blocking=False):
            raise RuntimeError(f"cannot {action} this network: fit is already running on it in "
                               "another thread (use one network per thread, or wait)")
        try:
            yield
        finally:
            self._training_lock.release()

    # ------------------------------------------------------------ training

    def fit(self, X: ArrayLike, Y: ArrayLike, *, epochs: int = 10,
            learning_rate: float = 0.1, batch_size: int = 1, shuffle: bool = True,
            verbose: bool = False, optimizer: str = "sgd", momentum: float = 0.0,
            nesterov: bool = False, weight_decay: float = 0.0,
            betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
            lr_schedule: Any = None,
            validation_data: Optional[Tuple[ArrayLike, ArrayLike]] = None,
            validation_split: float = 0.0, early_stopping: bool = False, patience: int = 10,
            min_delta: float = 0.0,
            callback: Optional[Callable[[int, "History"], Any]] = None) -> "History":
        """Train the network; continues from the current weights and optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs, one row per sample.
        Y : array-like of shape (n_samples, n_outputs)
            Targets: one-hot (or probability) rows for classification, 0/1
            for a single sigmoid output, real values for regression.
        epochs : int, default=10
            Passes over the data.
        learning_rate : float, default=0.1
            Step size (``lr`` of ``torch.optim.SGD`` / ``torch.optim.Adam``);
            ``lr_schedule`` may change it per epoch.
        batch_size : int, default=1
            Rows per update; 1 is the tutorial's per-sample training. The
            gradient is that of the batch-mean loss; the last, partial batch
            of an epoch is used too.
        shuffle : bool, default=True
            Visit the rows in a new random order each epoch (drawn from the
            network's seed); False keeps their order, as the tutorial does.
        verbose : bool, default=False
            Print ``Epoch: N, Loss: L, Accuracy: A%`` (and validation
            figures) after each epoch.
        optimizer : {"sgd", "adam"}, default="sgd"
            ``torch.optim.SGD`` or ``torch.optim.Adam`` semantics, one
            parameter group. The optimizer state (momentum buffer, Adam
            moments and step count) persists across ``fit`` and
            ``partial_fit`` calls and starts afresh when the optimizer changes
            or on ``reset()``.
        momentum : float, default=0.0
            SGD momentum (``torch.optim.SGD(momentum=...)``, dampening 0).
        nesterov : bool, default=False
            Nesterov momentum (``torch.optim.SGD(nesterov=True)``); needs
            ``momentum > 0``.
        weight_decay : float, default=0.0
            L2 penalty added to the gradient, ``grad + weight_decay * params``,
            for weights and biases alike (``weight_decay`` of both torch
            optimizers).
        betas : tuple of float, default=(0.9, 0.999)
            Adam's moment decay rates (``torch.optim.Adam(betas=...)``).
        eps : float, default=1e-8
            Adam's denominator term (``torch.optim.Adam(eps=...)``).
        lr_schedule : None, "constant" or a ``cymlp.schedules`` object
            Per-epoch learning rate: ``ConstantLR``, ``StepLR(step_size,
            gamma)`` or ``ExponentialLR(gamma)``, as the torch schedulers of
            those names stepped once per epoch; epochs count from 0 in each
            ``fit`` call.
        validation_data : tuple (X_val, Y_val), optional
            Data to measure ``val_loss`` and ``val_accuracy`` on after each
            epoch.
        validation_split : float, default=0.0
            Instead of ``validation_data``: hold out this share of the rows
            (a random subset drawn from the network's seed) for validation.
        early_stopping : bool, default=False
            Stop when the validation loss has not improved by more than
            ``min_delta`` for ``patience`` epochs, and restore the weights
            (and optimizer state) of the best epoch. Needs validation data.
        patience : int, default=10
            Epochs without improvement before stopping.
        min_delta : float, default=0.0
            Smallest decrease of the validation loss that counts.
        callback : callable, optional
            Called as ``callback(epoch, history)`` after each epoch.

        Returns
        -------
        History
            Per-epoch figures; also kept as ``self.history`` and updated as
            epochs complete, so it is consistent after an interrupt.

        Raises
        ------
        TrainingDiverged
            When the loss or the weights become NaN or infinite. The network
            is left at the last step whose loss and weights were finite.
        """
        X, Y = self._check_data(X, Y)
        epochs = check_int(epochs, "epochs", minimum=1)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        shuffle = check_bool(shuffle, "shuffle")
        verbose = check_bool(verbose, "verbose")
        optimizer_code, hyperparams = _optimizer_settings(
            optimizer, learning_rate, momentum, nesterov, weight_decay, betas, eps)
        schedule = check_schedule(lr_schedule)
        early_stopping = check_bool(early_stopping, "early_stopping")
        patience = check_int(patience, "patience", minimum=1)
        min_delta = check_float(min_delta, "min_delta", inclusive_minimum=True)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None; got {callback!r}")
        X, Y, X_val, Y_val = self._validation_split(X, Y, validation_data, validation_split)
        if early_stopping and X_val is None:
            raise ValueError("early_stopping=True needs validation_data or validation_split > 0")

        with self._exclusive("fit"):
            return self._fit_checked(X, Y, X_val, Y_val, epochs, batch_size, shuffle, verbose,
                                     optimizer_code, hyperparams, schedule, early_stopping,
                                     patience, min_delta, callback)

    def _fit_checked(self, X, Y, X_val, Y_val, epochs, batch_size, shuffle, verbose,
                     optimizer_code, hyperparams, schedule, early_stopping, patience, min_delta,
                     callback):
        self._set_optimizer(optimizer_code)
        runner = _EpochRunner(self, X, Y, batch_size, optimizer_code, hyperparams)
        val_workspace = None if X_val is None else self._inference_workspace(X_val.shape[0])
        best = _Snapshot(self) if early_stopping else None
        history = self.history = History()
        base_rate = hyperparams[_layout.LEARNING_RATE]
        with blas_threads(threads_for(self._layout, min(batch_size, X.shape[0]),
                                      self.n_threads)):
            self._run_epochs(runner, history, epochs, schedule, base_rate, shuffle, verbose,
                             callback, X_val, Y_val, val_workspace, best, min_delta, patience)
        if early_stopping:
            best.restore()
        return history

    def _run_epochs(self, runner, history, epochs, schedule, base_rate, shuffle, verbose,
                    callback, X_val, Y_val, val_workspace, best, min_delta, patience):
        hyperparams = runner.hyperparams
        best_loss, epochs_without_improvement = math.inf, 0
        epoch_start = _Snapshot(self)
        for epoch in range(epochs):
            epoch_start.save()
            hyperparams[_layout.LEARNING_RATE] = schedule(base_rate, epoch)
            loss, accuracy = runner.run(epoch + 1, shuffle)
            history.loss.append(loss)
            history.accuracy.append(accuracy)
            history.learning_rate.append(float(hyperparams[_layout.LEARNING_RATE]))
            if X_val is not None:
                val_sum, val_correct = self._kernels.evaluate(
                    self._params, self._layout, self._loss_code, X_val, Y_val, val_workspace)
                with np.errstate(over="ignore"):
                    finite = bool(np.isfinite(self.dtype(val_sum)))
                if not finite:
                    for values in (history.loss, history.accuracy, history.learning_rate):
                        values.pop()
                    epoch_start.restore()
                    raise TrainingDiverged(
                        f"training diverged in epoch {epoch + 1}: the validation loss became "
                        "NaN or infinite; try a smaller learning_rate. The network was left as "
                        "it was at the start of that epoch.")
                history.val_loss.append(val_sum / X_val.shape[0])
                history.val_accuracy.append(val_correct / X_val.shape[0])
            if verbose:
                print(history.summary(), flush=True)
            if callback is not None:
                callback(epoch + 1, history)
            if best is not None:
                if history.val_loss[-1] < best_loss - min_delta:
                    best_loss, epochs_without_improvement = history.val_loss[-1], 0
                    history.best_epoch = epoch + 1
                    best.save()
                else:
                    epochs_without_improvement += 1
                    if epochs_without_improvement >= patience:
                        history.stopped_early = True
                        break
        self._check_final_outputs(runner, history, epoch_start)

    def _check_final_outputs(self, runner, history, epoch_start):
        """Raise TrainingDiverged if the trained network overflows on its training rows.

        The kernels see each batch's loss before its step, and the runner
        checks each chunk's last batch after it; the rows trained earlier in
        an epoch could still overflow with the final weights. A bound settles
        it cheaply in all but extreme cases: with |x| <= m, each layer's
        pre-activations are at most m times the largest column sum of |W|
        (plus |b|), and sigmoid, tanh and softmax outputs at most 1. Only when
        that bound comes near the dtype's range is the full forward pass run.
        """
        safe = 1e-3 * math.sqrt(float(np.finfo(self.dtype).max)) / (1 + runner.target_magnitude)
        if self._output_bound(runner.input_magnitude) < safe:
            return
        loss_sum, _ = self._kernels.evaluate(self._params, self._layout, self._loss_code,
                                             runner.X, runner.Y,
                                             self._inference_workspace(runner.X.shape[0]))
        with np.errstate(over="ignore"):
            if np.isfinite(self.dtype(loss_sum)):
                return
        kept = history.epochs - 1
        for values in (history.loss, history.accuracy, history.learning_rate,
                       history.val_loss, history.val_accuracy):
            del values[kept:]
        epoch_start.restore()
        raise TrainingDiverged(
            f"training diverged in epoch {kept + 1}: with the weights it ended with, the loss "
            "on the training data is NaN or infinite; try a smaller learning_rate. The network "
            "was left as it was at the start of that epoch.")

    def _output_bound(self, input_magnitude):
        """A bound on |pre-activation| in every layer for inputs with |x| <= input_magnitude."""
        entering, largest = float(input_magnitude), 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            for layer, weights in enumerate(self.weights):
                bias = float(np.abs(self.biases[layer]).max()) if self.biases else 0.0
                pre_activation = entering * float(np.abs(weights).sum(axis=0).max()) + bias
                largest = max(largest, pre_activation)
                # |f(z)| <= 1 for these, <= |z| for relu, leaky_relu and identity.
                bounded = self.activations[layer] in ("sigmoid", "tanh", "softmax")
                entering = 1.0 if bounded else pre_activation
        return largest if np.isfinite(largest) else np.inf

    def partial_fit(self, X: ArrayLike, Y: ArrayLike, *, learning_rate: float = 0.1,
                    batch_size: int = 1, shuffle: bool = False, optimizer: str = "sgd",
                    momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                    betas: Tuple[float, float] = (0.9, 0.999),
                    eps: float = 1e-8) -> "History":
        """One pass over the given rows, keeping the optimizer state (online learning).

        ``partial_fit`` called n times on the same data equals
        ``fit(epochs=n, shuffle=False)`` with the same options. Parameters are
        those of :meth:`fit`.

        Returns
        -------
        History
            One epoch.
        """
        return self.fit(X, Y, epochs=1, learning_rate=learning_rate, batch_size=batch_size,
                        shuffle=shuffle, optimizer=optimizer, momentum=momentum,
                        nesterov=nesterov, weight_decay=weight_decay, betas=betas, eps=eps)

    def _set_optimizer(self, optimizer_code):
        """Start fresh optimizer state when the optimizer changes."""
        if self._optimizer_code != optimizer_code:
            self._state[...] = 0
            self._step[...] = 0
            self._optimizer_code = optimizer_code

    def _validation_split(self, X, Y, validation_data, validation_split):
        """(X_train, Y_train, X_val, Y_val); the validation pair may be None."""
        validation_split = check_float(validation_split, "validation_split", maximum=1.0,
                                       inclusive_minimum=True)
        if validation_data is not None:
            if validation_split:
                raise ValueError("give validation_data or validation_split, not both")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a tuple (X_val, Y_val)")
            X_val = self._check_inputs(validation_data[0], "validation_data[0]")
            Y_val = as_matrix(validation_data[1], "validation_data[1]", self.dtype,
                              self.layer_sizes[-1], "outputs")
            check_same_rows(X_val, Y_val, "validation_data[0]", "validation_data[1]")
            return X, Y, X_val, Y_val
        if not validation_split:
            return X, Y, None, None
        n_val = max(1, round(validation_split * X.shape[0]))
        if n_val >= X.shape[0]:
            raise ValueError(f"validation_split={validation_split} leaves no training rows "
                             f"out of {X.shape[0]}")
        held_out = self._rng.permutation(X.shape[0])[:n_val]
        is_val = np.zeros(X.shape[0], dtype=bool)
        is_val[held_out] = True
        return X[~is_val], Y[~is_val], X[is_val], Y[is_val]

    # ------------------------------------------------------------ saving

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Save the network to a ``.npz`` file, atomically.

        The file holds the architecture and options as JSON, the parameters,
        the optimizer state and step count, the shuffling generator's state
        and the last training history, so ``cymlp.load(path)`` gives back a
        network that predicts bit for bit the same and continues training
        exactly as this one would. The format is documented in
        ``cymlp/_io.py`` and never stores pickled objects.

        Parameters
        ----------
        path : str or path-like
            Target file (conventionally ``*.npz``); its directory must exist.
            An existing file is replaced only once the new one is complete.
        """
        from ._io import save_network
        save_network(self, path)

    # ------------------------------------------------------------ inference

    def predict(self, X: ArrayLike) -> np.ndarray:
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
        workspace = self._inference_workspace(X.shape[0])
        with self._inference_threads(workspace):
            self._kernels.forward(self._params, self._layout, X, out, workspace)
        return out

    def classify(self, X: ArrayLike) -> np.ndarray:
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

    def loss(self, X: ArrayLike, Y: ArrayLike) -> float:
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

    def accuracy(self, X: ArrayLike, Y: ArrayLike) -> float:
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
        workspace = self._inference_workspace(X.shape[0])
        with self._inference_threads(workspace):
            return self._kernels.evaluate(self._params, self._layout, self._loss_code, X, Y,
                                          workspace)

    def _inference_threads(self, workspace):
        block_rows = _layout.workspace_capacity(self._layout, workspace.shape[0])
        return blas_threads(threads_for(self._layout, block_rows, self.n_threads))

    def _inference_workspace(self, n_rows):
        """A workspace for blocks of up to INFERENCE_BLOCK_ELEMENTS elements."""
        row_width = _layout.workspace_row_width(self._layout)
        block_rows = min(n_rows, max(1, INFERENCE_BLOCK_ELEMENTS // row_width))
        return np.empty(_layout.workspace_size(self._layout, block_rows), dtype=self.dtype)

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
        del state["_kernels"], state["weights"], state["biases"], state["_training_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._training_lock = threading.Lock()
        self.backend, self._kernels = resolve_backend(self.backend)
        self._make_views()


class _Snapshot:
    """A copy of a network's parameters and optimizer state, to go back to."""

    def __init__(self, net):
        self.net = net
        self.params = net._params.copy()
        self.state = net._state.copy()
        self.step = net._step.copy()

    def save(self):
        np.copyto(self.params, self.net._params)
        np.copyto(self.state, self.net._state)
        np.copyto(self.step, self.net._step)

    def restore(self):
        np.copyto(self.net._params, self.params)
        np.copyto(self.net._state, self.state)
        np.copyto(self.net._step, self.step)


class _EpochRunner:
    """Runs the epochs of one ``fit`` call through the kernels, chunk by chunk.

    The buffers are allocated here, once per ``fit``. Each kernel call covers
    a chunk of whole batches sized to take about ``CHUNK_SECONDS``, so that
    Ctrl-C is honoured quickly while the call overhead stays invisible.

    After each chunk the state is checked before it is saved as the last good
    one: weights and optimizer state finite, and the loss of the chunk's last
    batch, recomputed with the updated weights, finite (the kernel only sees
    the loss before each step, so a last step to overflowing weights would
    otherwise pass). ``MLP._check_final_outputs`` covers the other rows. If a check fails, the chunk is replayed batch by batch
    from the last good state, applying the same checks after every step, to
    stop at the last step that passes them.
    """

    def __init__(self, net, X, Y, batch_size, optimizer_code, hyperparams):
        self.net, self.X, self.Y = net, X, Y
        self.batch_size = batch_size
        self.optimizer_code, self.hyperparams = optimizer_code, hyperparams
        rows = min(batch_size, X.shape[0])
        self.grad = np.empty(net.n_params, dtype=net.dtype)
        self.workspace = np.empty(_layout.workspace_size(net._layout, rows), dtype=net.dtype)
        self.check_X = np.empty((rows, X.shape[1]), dtype=net.dtype)
        self.check_Y = np.empty((rows, Y.shape[1]), dtype=net.dtype)
        self.in_order = np.arange(X.shape[0])
        self.shuffled = np.empty_like(self.in_order)
        self.input_magnitude = float(np.abs(X).max())
        self.target_magnitude = float(np.abs(Y).max())
        self.chunk_rows = batch_size * max(1, 256 // batch_size)
        self.last_good = _Snapshot(net)

    def _call(self, rows):
        net = self.net
        return net._kernels.train_epoch(
            net._params, net._layout, net._loss_code, self.X, self.Y, rows, self.batch_size,
            self.optimizer_code, self.hyperparams, net._state, net._step, self.grad,
            self.workspace)

    def _healthy(self, batch):
        """Weights and optimizer state finite, and finite loss on ``batch`` now."""
        net = self.net
        if not (all_finite(net._params) and all_finite(net._state)):
            return False
        count = batch.shape[0]
        np.take(self.X, batch, axis=0, out=self.check_X[:count])
        np.take(self.Y, batch, axis=0, out=self.check_Y[:count])
        loss_sum, _ = net._kernels.evaluate(net._params, net._layout, net._loss_code,
                                            self.check_X[:count], self.check_Y[:count],
                                            self.workspace)
        with np.errstate(over="ignore"):
            return bool(np.isfinite(net.dtype(loss_sum)))

    def run(self, epoch, shuffle):
        """One epoch over the rows, shuffled or in order: (mean loss, accuracy)."""
        order = self.in_order
        if shuffle:
            # In place, the same draws as self.net._rng.permutation(n).
            order = self.shuffled
            np.copyto(order, self.in_order)
            self.net._rng.shuffle(order)
        loss_sum, n_correct, start = 0.0, 0, 0
        while start < order.shape[0]:
            rows = order[start:start + self.chunk_rows]
            started = perf_counter()
            chunk_loss, chunk_correct, rows_done = self._call(rows)
            self._adapt_chunk(perf_counter() - started)
            last_batch = rows[(rows.shape[0] - 1) // self.batch_size * self.batch_size:]
            if rows_done < rows.shape[0] or not self._healthy(last_batch):
                self._stop_at_last_good_step(rows, epoch)
            self.last_good.save()
            loss_sum += chunk_loss
            n_correct += chunk_correct
            start += rows.shape[0]
        return loss_sum / order.shape[0], n_correct / order.shape[0]

    def _adapt_chunk(self, seconds):
        if seconds < CHUNK_SECONDS / 4 and self.chunk_rows < MAX_CHUNK_ROWS:
            self.chunk_rows *= 2
        elif seconds > CHUNK_SECONDS and self.chunk_rows > self.batch_size:
            self.chunk_rows = max(self.batch_size,
                                  self.chunk_rows // 2 // self.batch_size * self.batch_size)

    def _stop_at_last_good_step(self, rows, epoch):
        net = self.net
        self.last_good.restore()
        before = _Snapshot(net)
        for start in range(0, rows.shape[0], self.batch_size):
            batch = rows[start:start + self.batch_size]
            _, _, rows_done = self._call(batch)
            if rows_done < batch.shape[0] or not self._healthy(batch):
                before.restore()
                break
            before.save()
        raise TrainingDiverged(
            f"training diverged in epoch {epoch}: the loss, the weights or the optimizer "
            f"state became NaN or infinite (learning rate "
            f"{self.hyperparams[_layout.LEARNING_RATE]:g}); try a smaller learning_rate. "
            "The network was left at the last step that kept them finite.")


def _optimizer_settings(optimizer, learning_rate, momentum, nesterov, weight_decay, betas, eps):
    """The optimizer code and the float64 hyperparameter vector for train_epoch."""
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    hyperparams = np.zeros(_layout.N_HYPERPARAMS)
    hyperparams[_layout.LEARNING_RATE] = check_float(learning_rate, "learning_rate")
    hyperparams[_layout.WEIGHT_DECAY] = check_float(weight_decay, "weight_decay",
                                                    inclusive_minimum=True)
    momentum = check_float(momentum, "momentum", maximum=1.0, inclusive_minimum=True)
    nesterov = check_bool(nesterov, "nesterov")
    if optimizer == "sgd":
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0 (as in torch.optim.SGD)")
        hyperparams[_layout.MOMENTUM] = momentum
        hyperparams[_layout.NESTEROV] = nesterov
    else:
        if momentum or nesterov:
            raise ValueError("momentum and nesterov are SGD options; Adam uses betas")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair of floats (beta1, beta2); got {betas!r}")
        hyperparams[_layout.BETA1] = check_float(betas[0], "betas[0]", maximum=1.0,
                                                 inclusive_minimum=True)
        hyperparams[_layout.BETA2] = check_float(betas[1], "betas[1]", maximum=1.0,
                                                 inclusive_minimum=True)
        hyperparams[_layout.EPSILON] = check_float(eps, "eps")
    return _layout.OPTIMIZERS[optimizer], hyperparams


def _check_n_threads(n_threads):
    """None, -1 or a positive int; TypeError/ValueError naming n_threads otherwise."""
    if n_threads is None:
        return None
    expected = "n_threads must be None, -1 (every core) or a positive integer"
    if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"{expected}; got {n_threads!r}")
    n_threads = operator.index(n_threads)
    if n_threads == 0 or n_threads < -1:
        raise ValueError(f"{expected}; got {n_threads}")
    return n_threads


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
