"""The multi-layer perceptron: construction, parameters, inference and state.

``MLP`` owns one flat parameter buffer (``params``); ``weights[l]`` and
``biases[l]`` are views into it. ``fit`` checks its arguments and hands the
training to ``cymlp/_training.py``, which drives a backend ``Trainer``.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import operator
import os
import threading
from collections.abc import Sequence as SequenceABC
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike  # typing.get_type_hints resolves these

from . import _params, _sparse
from ._backend import resolve_backend
from ._codes import (
    ACTIVATIONS,
    HIDDEN_ACTIVATIONS,
    INITIALIZERS,
    LOSS_OUTPUTS,
    LOSSES,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    Optimizer,
    classify,
)
from ._threads import blas_threads_for
from ._training import FitSettings, History, TrainingDiverged
from ._training import fit as _fit
from ._validation import (
    as_matrix,
    as_sample_weight,
    as_targets,
    check_bool,
    check_choice,
    check_dtype,
    check_float,
    check_int,
    check_same_rows,
    check_seed,
)
from .optim import UNSET, make_optimizer
from .schedules import check_schedule

__all__ = ["MLP", "History", "TrainingDiverged"]


class LayerViews(SequenceABC):
    """The read-only sequence ``MLP.weights`` / ``MLP.biases``: views into ``params``.

    Its items cannot be replaced (that would unlink them from ``params``);
    write into them instead: ``net.weights[l][...] = W``.
    """

    def __init__(self, arrays, name):
        self._arrays, self._name = tuple(arrays), name

    def __getitem__(self, index):
        return self._arrays[index]

    def __len__(self):
        return len(self._arrays)

    def __setitem__(self, index, value):
        raise TypeError(f"{self._name}[{index}] cannot be replaced: it is a view into "
                        f"net.params; assign into it instead, {self._name}[{index}][...] = "
                        "new_values")

    def __add__(self, other):
        return list(self) + list(other)

    def __radd__(self, other):
        return list(other) + list(self)

    def __eq__(self, other):
        if not isinstance(other, (list, tuple, LayerViews)) or len(other) != len(self):
            return NotImplemented if not isinstance(other, (list, tuple)) else False
        return all(np.array_equal(a, b) for a, b in zip(self, other))

    __hash__ = None

    def __repr__(self):
        return f"{self._name}: {list(self._arrays)!r}"


def _refuse_replacing(name, symbol):
    """The setter of ``MLP.weights``/``MLP.biases``: they are views, to write into."""
    def refuse(net, value):
        raise AttributeError(f"net.{name} cannot be replaced: write into its arrays, "
                             f"net.{name}[l][...] = {symbol} (or set net.params[...] = flat)")
    return refuse


class MLP:
    """A feed-forward neural network (multi-layer perceptron).

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from input to output, e.g. ``[30, 5, 3]`` for the tutorial's
        30 inputs, 5 hidden units and 3 outputs. At least two entries.
        Sizes too large for NumPy to index raise a ``ValueError`` before
        anything is allocated, and a network that does not fit in memory a
        ``MemoryError``; both messages give the parameter count.
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
        self._loss_code = LOSSES[self.loss_name]
        n_params = _check_parameter_count(self.layer_sizes, self.bias, self.dtype)
        self._layout, _ = _params.build_layout(
            self.layer_sizes, [ACTIVATIONS[name] for name in self.activations], self.bias)
        self._training_lock = threading.Lock()
        try:
            self._params = np.zeros(n_params, dtype=self.dtype)
            self._optimizer_state = np.zeros((2, n_params), dtype=self.dtype)
            self._make_views()
            self.reset()
        except MemoryError as error:
            n_bytes = n_params * np.dtype(self.dtype).itemsize
            raise MemoryError(
                f"layer_sizes={list(self.layer_sizes)} need {n_params} parameters: "
                f"{3 * n_bytes} bytes ({n_bytes} for the {np.dtype(self.dtype).name} "
                f"parameters, twice that for the optimizer state) could not be "
                f"allocated") from error

    # ------------------------------------------------------------ parameters

    def _make_views(self):
        weights, biases = _params.layer_views(self._params, self._layout)
        self._weights = LayerViews(weights, "weights")
        self._biases = LayerViews(biases, "biases")

    weights = property(lambda self: self._weights, _refuse_replacing("weights", "W"),
                       doc="Read-only sequence: ``weights[l]`` of shape ``(n_in, n_out)``, "
                           "a view into ``params``.")
    biases = property(lambda self: self._biases, _refuse_replacing("biases", "b"),
                      doc="Read-only sequence: ``biases[l]`` of shape ``(n_out,)``, a view "
                          "into ``params``; empty when ``bias=False``.")

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
        self._forget_optimizer()
        self._validation_rows = None
        self.history = History()

    def reset_optimizer(self) -> "MLP":
        """Forget the optimizer state (momentum buffer, Adam moments, step count).

        The next ``fit`` starts its optimizer afresh, as if it were the first.

        Returns
        -------
        self : MLP
        """
        with self._exclusive("reset the optimizer of"):
            self._forget_optimizer()
        return self

    def _forget_optimizer(self):
        self._optimizer_state[...] = 0
        self._step = 0
        self._optimizer_kind = None

    def _start_optimizer(self, optimizer):
        """Start fresh optimizer state when the kind of optimizer changes."""
        if self._optimizer_kind != optimizer.code:
            self._forget_optimizer()
            self._optimizer_kind = optimizer.code

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
            learning_rate: float = UNSET, batch_size: int = 1, shuffle: bool = True,
            verbose: bool = False, optimizer: Any = "sgd", momentum: float = UNSET,
            nesterov: bool = UNSET, weight_decay: float = UNSET,
            betas: Tuple[float, float] = UNSET, eps: float = UNSET,
            lr_schedule: Any = None,
            validation_data: Optional[Tuple[ArrayLike, ArrayLike]] = None,
            validation_split: float = 0.0, early_stopping: bool = False, patience: int = 10,
            min_delta: float = 0.0,
            callback: Optional[Callable[[int, "History"], Any]] = None,
            sample_weight: Optional[ArrayLike] = None) -> "History":
        """Train the network; continues from the current weights and optimizer state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs, one row per sample. A ``scipy.sparse`` matrix (any
            format) is converted once to CSR rows and read in place by the
            kernels, never densified.
        Y : array-like of shape (n_samples, n_outputs) or (n_samples,)
            Targets: one-hot (or probability) rows for classification, 0/1
            for a single sigmoid output, real values for regression. 1-D:
            one value per sample for a one-output network, or integer class
            labels ``0..n_outputs-1`` for a softmax output.
        epochs : int, default=10
            Passes over the data (with L-BFGS: iterations at most).
        learning_rate : float, default=0.1
            Step size (``lr`` of ``torch.optim.SGD`` / ``torch.optim.Adam``);
            ``lr_schedule`` may change it per epoch. Not with an optimizer
            object, which carries its own ``lr``.
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
        optimizer : {"sgd", "adam", "lbfgs"} or a ``cymlp.optim`` object, default="sgd"
            ``cymlp.optim.SGD(lr, momentum, nesterov, weight_decay)`` or
            ``cymlp.optim.Adam(lr, betas, eps, weight_decay)``: the semantics
            of ``torch.optim.SGD`` / ``torch.optim.Adam``, one parameter
            group. ``cymlp.optim.LBFGS(max_fun, tol, history_size,
            weight_decay)``: full-batch L-BFGS-B from SciPy on the flat
            parameters (``batch_size``, ``shuffle`` and ``lr_schedule`` do
            not apply; one ``History`` entry per iteration). A name takes its options from the arguments below. The
            optimizer state (momentum buffer, Adam moments and step count)
            persists across ``fit`` and ``partial_fit`` calls and starts
            afresh when the kind of optimizer changes, on
            ``reset_optimizer()`` or on ``reset()``.
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
            The subset is drawn once per network and reused by later fits on
            data of the same size (it is part of ``state_dict()`` and saved
            with the model), so a continued fit never validates on rows it
            trained on. With classification targets (one-hot or probability
            rows, integer labels of a softmax output, 0/1 targets of
            ``loss="bce"``) a ``UserWarning`` names any class the split
            leaves out of the training or the validation rows.
        early_stopping : bool, default=False
            Stop when the validation loss has not improved by more than
            ``min_delta`` for ``patience`` epochs, and restore the weights
            (and optimizer state) of the best epoch, also when the epochs run
            out or Ctrl-C interrupts the fit. Needs validation data.
        patience : int, default=10
            Epochs without improvement before stopping.
        min_delta : float, default=0.0
            Smallest decrease of the validation loss that counts.
        callback : callable, optional
            Called as ``callback(epoch, history)`` after each epoch.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weight of each row: every batch descends on its
            weighted mean loss ``sum(w * loss) / sum(w)`` (PyTorch's
            ``reduction="none"`` then a weighted mean), and the history's
            training loss and accuracy are weighted means. A batch whose
            weights are all 0 takes no step. ``validation_data`` may carry
            a third element, the validation rows' weights; with
            ``validation_split`` the held-out rows keep their weights.

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
        sample_weight = as_sample_weight(sample_weight, "sample_weight", self.dtype, X.shape[0])
        settings = FitSettings(
            epochs=check_int(epochs, "epochs", minimum=1),
            batch_size=check_int(batch_size, "batch_size", minimum=1),
            shuffle=check_bool(shuffle, "shuffle"),
            schedule=check_schedule(lr_schedule),
            verbose=check_bool(verbose, "verbose"),
            early_stopping=check_bool(early_stopping, "early_stopping"),
            patience=check_int(patience, "patience", minimum=1),
            min_delta=check_float(min_delta, "min_delta", inclusive_minimum=True),
            callback=callback)
        optimizer = make_optimizer(optimizer, learning_rate, momentum, nesterov, weight_decay,
                                   betas, eps)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None; got {callback!r}")
        if optimizer.code == "lbfgs" and type(settings.schedule).__name__ != "ConstantLR":
            raise ValueError(f"lr_schedule={lr_schedule!r} does not apply to L-BFGS, which has "
                             "no learning rate; leave it None")
        with self._exclusive("fit"):
            rows, X_val, Y_val, val_weight = self._validation_split(
                X, Y, validation_data, validation_split, sample_weight)
            if settings.early_stopping and X_val is None:
                raise ValueError("early_stopping=True needs validation_data or "
                                 "validation_split > 0")
            if sample_weight is not None and not (
                    sample_weight if rows is None else sample_weight[rows]).sum(
                    dtype=np.float64) > 0:
                raise ValueError("sample_weight: the training rows left by validation_split "
                                 "all have weight 0")
            return _fit(self, X, Y, X_val, Y_val, optimizer, settings, sample_weight,
                        val_weight, rows)

    def partial_fit(self, X: ArrayLike, Y: ArrayLike, *, learning_rate: float = UNSET,
                    batch_size: int = 1, shuffle: bool = False, optimizer: Any = "sgd",
                    momentum: float = UNSET, nesterov: bool = UNSET, weight_decay: float = UNSET,
                    betas: Tuple[float, float] = UNSET, eps: float = UNSET,
                    sample_weight: Optional[ArrayLike] = None) -> "History":
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
                        nesterov=nesterov, weight_decay=weight_decay, betas=betas, eps=eps,
                        sample_weight=sample_weight)

    def loss_and_grad(self, X: ArrayLike, Y: ArrayLike,
                      sample_weight: Optional[ArrayLike] = None) -> Tuple[float, np.ndarray]:
        """The mean loss over the rows and its gradient with respect to ``params``.

        With ``sample_weight``, the weighted mean ``sum_i w_i l_i / sum_i w_i``
        of the rows' losses ``l_i`` (torch's ``reduction="none"``, then a
        weighted mean). All rows go through the backend in one call, in
        blocks of bounded memory: the objective for L-BFGS on a whole data set.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Y : array-like of shape (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Finite weights >= 0, not all 0; None weighs every row 1.

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_params,)
            In the network's dtype, laid out as ``params``.
        """
        X, Y = self._check_data(X, Y)
        if X.shape[0] == 0:
            raise ValueError("X must have at least one row")
        sample_weight = as_sample_weight(sample_weight, "sample_weight", self.dtype, X.shape[0])
        grad = np.empty_like(self._params)
        rows = _sparse.inference_rows(self._layout, X)
        with blas_threads_for(self._layout, rows, self.n_threads, self._kernels):
            loss = _sparse.loss_and_grad(self._kernels, self._params, self._layout,
                                         self._loss_code, X, Y, grad, sample_weight)
        return loss, grad

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """Everything that training changes, as plain values and copied arrays.

        Consistent when no fit is running, or from the fit's own thread (its
        ``callback``); read from another thread during a fit, it may mix two
        steps.

        Returns
        -------
        dict
            ``params`` (ndarray of shape (n_params,)), ``optimizer_state``
            (ndarray of shape (2, n_params): momentum buffer or Adam's
            moments), ``step`` (int, optimizer steps taken), ``optimizer``
            ("sgd", "adam" or None before any fit), ``rng_state`` (the
            shuffling generator's state), ``validation_rows`` (the rows held
            out by ``validation_split``: None, or a dict with ``n_rows``,
            ``fraction`` and ``rows``) and ``history`` (a copy of the last
            ``History``). ``load_state_dict`` puts them back.
        """
        import copy  # only here: an import less for every script

        kind = self._optimizer_kind
        validation = self._validation_rows
        return {
            "params": self._params.copy(),
            "optimizer_state": self._optimizer_state.copy(),
            "step": int(self._step),
            "optimizer": None if kind is None else Optimizer(kind).name.lower(),
            "rng_state": copy.deepcopy(self._rng.bit_generator.state),
            "validation_rows": None if validation is None else {
                "n_rows": validation["n_rows"], "fraction": validation["fraction"],
                "rows": validation["rows"].copy()},
            "history": self.history.copy(),
        }

    def load_state_dict(self, state: dict) -> "MLP":
        """Restore what ``state_dict`` returned, for a network of the same architecture.

        Every entry is checked before anything is changed: a ``ValueError``
        or ``TypeError`` names the entry at fault and leaves the network as
        it was.

        Parameters
        ----------
        state : dict
            As returned by :meth:`state_dict`; ``history`` and
            ``validation_rows`` may be left out.

        Returns
        -------
        self : MLP
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from state_dict(); got {type(state).__name__}")
        missing = [key for key in ("params", "optimizer_state", "step", "optimizer",
                                   "rng_state") if key not in state]
        if missing:
            raise ValueError(f"state lacks {', '.join(missing)}")
        params = _state_array(state["params"], "params", self.dtype, (self.n_params,))
        optimizer_state = _state_array(state["optimizer_state"], "optimizer_state", self.dtype,
                                       (2, self.n_params))
        step = state["step"]
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"state['step'] must be an integer >= 0; got {step!r}")
        if not 0 <= step < 2 ** 62:
            raise ValueError(f"state['step'] must be an integer >= 0 and below 2**62; "
                             f"got {step!r}")
        if (optimizer_state[1] < 0).any():
            raise ValueError("state['optimizer_state'][1] (Adam's second moment) must be >= 0")
        name = state["optimizer"]
        if name is not None and (not isinstance(name, str) or name not in OPTIMIZERS):
            raise ValueError(f"state['optimizer'] must be None or one of "
                             f"{', '.join(map(repr, OPTIMIZERS))}; got {name!r}")
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = state["rng_state"]
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise ValueError(f"state['rng_state'] is not a generator state ({error})") from None
        validation = _state_validation_rows(state.get("validation_rows"))
        history = state.get("history", History())
        if not isinstance(history, History):
            raise TypeError(f"state['history'] must be a History; got {type(history).__name__}")
        history.check("state['history']")
        with self._exclusive("load the state of"):
            self._params[...] = params
            self._optimizer_state[...] = optimizer_state
            self._step = int(step)
            self._optimizer_kind = None if name is None else OPTIMIZERS[name]
            self._rng = rng
            self._validation_rows = validation
            self.history = history.copy()
        return self

    def _validation_split(self, X, Y, validation_data, validation_split, sample_weight=None):
        """(training rows, X_val, Y_val, w_val); each may be None.

        The training rows (None: all of them) are indices into ``X``: they
        are trained on in place, never copied (``X`` may be a memmap larger
        than memory). The held-out rows of ``validation_split`` are copied.
        """
        validation_split = check_float(validation_split, "validation_split", maximum=1.0,
                                       inclusive_minimum=True)
        if validation_data is not None:
            if validation_split:
                raise ValueError("give validation_data or validation_split, not both")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise TypeError("validation_data must be a tuple (X_val, Y_val) or "
                                "(X_val, Y_val, sample_weight_val)")
            X_val = self._check_inputs(validation_data[0], "validation_data[0]")
            Y_val = self._check_targets(validation_data[1], "validation_data[1]")
            check_same_rows(X_val, Y_val, "validation_data[0]", "validation_data[1]")
            val_weight = None if len(validation_data) == 2 else as_sample_weight(
                validation_data[2], "validation_data[2]", self.dtype, X_val.shape[0])
            return None, X_val, Y_val, val_weight
        if not validation_split:
            return None, None, None, None
        n_val = max(1, round(validation_split * X.shape[0]))
        if n_val >= X.shape[0]:
            raise ValueError(f"validation_split={validation_split} leaves no training rows "
                             f"out of {X.shape[0]}")
        saved = self._validation_rows
        if saved is None or (saved["n_rows"], saved["fraction"]) != (X.shape[0],
                                                                     validation_split):
            # Drawn once per network and data size: a continued fit validates
            # on the same rows, never on rows it has trained on.
            held_out = np.sort(self._rng.permutation(X.shape[0])[:n_val])
            saved = self._validation_rows = {"n_rows": X.shape[0],
                                             "fraction": validation_split, "rows": held_out}
        is_val = np.zeros(X.shape[0], dtype=bool)
        is_val[saved["rows"]] = True
        held_out, rows = np.flatnonzero(is_val), np.flatnonzero(~is_val)
        _warn_missing_classes(Y, rows, held_out, validation_split, self.loss_name)
        X_val, Y_val = _sparse.take_rows(X, held_out), Y[held_out]
        if sample_weight is None:
            return rows, X_val, Y_val, None
        val_weight = sample_weight[held_out]
        if not val_weight.sum(dtype=np.float64) > 0:
            raise ValueError("sample_weight: the rows held out by validation_split all have "
                             "weight 0")
        return rows, X_val, Y_val, val_weight

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

    def to_onnx(self, dtype: Optional[DTypeLike] = None) -> Any:
        """The network as an ONNX model (see :func:`cymlp.onnx.to_onnx`).

        Input ``"X"`` of shape ``[N, n_features]`` (any batch size ``N``),
        output ``"Y"`` of shape ``[N, n_outputs]``: what :meth:`predict`
        returns, computed by standard ONNX operators.

        Parameters
        ----------
        dtype : numpy.float32, numpy.float64 or None, default=None
            Element type of the graph; None: the network's dtype.

        Returns
        -------
        onnx.ModelProto

        Raises
        ------
        ImportError
            The ``onnx`` package is missing: ``pip install "cymlp[onnx]"``.
        """
        # Imported here: onnx is an optional extra, loaded only by those who export.
        from .onnx import to_onnx
        return to_onnx(self, dtype=dtype)

    # ------------------------------------------------------------ inference

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Output activations of the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            In the network's dtype.
        """
        X = self._check_inputs(X)
        out = np.empty((X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        rows = _sparse.inference_rows(self._layout, X)
        with blas_threads_for(self._layout, rows, self.n_threads, self._kernels):
            _sparse.forward(self._kernels, self._params, self._layout, X, out, rows)
        return out

    def classify(self, X: ArrayLike) -> np.ndarray:
        """Predicted class index per row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), dtype intp
            Argmax of the outputs; with a single output, 1 where it exceeds 0.5.
        """
        return classify(self.predict(X))

    def loss(self, X: ArrayLike, Y: ArrayLike) -> float:
        """Mean loss over the rows of X (the network's ``loss`` function).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
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
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
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
        rows = _sparse.inference_rows(self._layout, X)
        with blas_threads_for(self._layout, rows, self.n_threads, self._kernels):
            return _sparse.evaluate(self._kernels, self._params, self._layout, self._loss_code,
                                    X, Y, rows)

    # ------------------------------------------------------------ helpers

    def _check_inputs(self, X, name="X"):
        if _sparse.is_sparse(X) or isinstance(X, _sparse.CSRRows):
            return _sparse.as_csr_rows(X, name, self.dtype, self.layer_sizes[0], "features")
        return as_matrix(X, name, self.dtype, self.layer_sizes[0], "features")

    def _check_data(self, X, Y):
        X = self._check_inputs(X)
        Y = self._check_targets(Y)
        check_same_rows(X, Y)
        return X, Y

    def _check_targets(self, Y, name="Y"):
        return as_targets(Y, name, self.dtype, self.layer_sizes[-1], self.activations[-1])

    def __repr__(self):
        sizes = "-".join(map(str, self.layer_sizes))
        return (f"MLP({sizes}, activations={list(self.activations)}, loss={self.loss_name!r}, "
                f"bias={self.bias}, dtype={np.dtype(self.dtype).name}, backend={self.backend!r})")

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_kernels"], state["_weights"], state["_biases"], state["_training_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._training_lock = threading.Lock()
        self.backend, self._kernels = resolve_backend(self.backend)
        self._make_views()




def _target_classes(Y, loss_name):
    """The class of each row of the targets ``Y``, or None for regression targets.

    Classification targets are one-hot or probability rows (every entry >= 0,
    each row summing to 1: also what integer labels of a softmax output
    become), or, for a single output trained with ``loss="bce"``, 0/1 values.
    Classes are then given by the one classification rule, ``classify``.
    """
    if Y.shape[1] == 1:
        if loss_name != "bce" or not np.isin(Y, (0, 1)).all():
            return None
    elif not ((Y >= 0).all() and np.allclose(Y.sum(axis=1, dtype=np.float64), 1.0,
                                             rtol=0, atol=1e-4)):
        return None
    return classify(Y)


def _warn_missing_classes(Y, rows, held_out, validation_split, loss_name):
    """Warn when ``validation_split`` leaves a class out of the training or validation rows."""
    classes = _target_classes(Y, loss_name)
    if classes is None:
        return
    present = set(np.unique(classes).tolist())
    sides = []
    for side, indices in (("training", rows), ("validation", held_out)):
        missing = sorted(present - set(np.unique(classes[indices]).tolist()))
        if missing:
            label = "class" if len(missing) == 1 else "classes"
            sides.append(f"{label} {', '.join(map(str, missing))} out of the {side} rows")
    if sides:
        import warnings
        warnings.warn(f"validation_split={validation_split} ({held_out.size} of {Y.shape[0]} "
                      f"rows held out) leaves {' and '.join(sides)} (classes are the columns "
                      f"of Y); use validation_data with every class on both sides, or more "
                      f"rows", UserWarning, stacklevel=4)


def _state_array(value, key, dtype, shape):
    """A checked copy of one array of a state dict."""
    array = np.asarray(value)
    if array.dtype != np.dtype(dtype) or array.shape != shape:
        raise ValueError(f"state[{key!r}] must be a {np.dtype(dtype).name} array of shape "
                         f"{shape}; got {array.dtype} of shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"state[{key!r}] holds NaN or inf")
    return array.copy()


def _state_validation_rows(value):
    """A checked copy of a state dict's ``validation_rows`` (None or a dict)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"n_rows", "fraction", "rows"}:
        raise ValueError("state['validation_rows'] must be None or a dict with n_rows, "
                         "fraction and rows")
    n_rows, fraction = value["n_rows"], value["fraction"]
    rows = np.asarray(value["rows"])
    if (isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 2
            or not isinstance(fraction, (float, int)) or not 0 < fraction < 1
            or rows.ndim != 1 or rows.dtype.kind not in "iu" or not 1 <= rows.size < n_rows
            or rows.min() < 0 or rows.max() >= n_rows or (np.diff(rows) <= 0).any()):
        raise ValueError("state['validation_rows'] is inconsistent (rows must be sorted, "
                         "distinct indices below n_rows)")
    return {"n_rows": int(n_rows), "fraction": float(fraction), "rows": rows.astype(np.intp)}


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


# The most parameters a network may have: its largest array, the optimizer
# state of shape (2, n_params), must fit in what NumPy can index (np.intp).
_MAX_BUFFER_BYTES = np.iinfo(np.intp).max


def _check_parameter_count(layer_sizes, bias, dtype):
    """The parameter count of a network, refused with a ValueError if it cannot exist.

    Counted in Python integers before anything is allocated: sizes whose
    count overflows a C integer, or whose buffers exceed what NumPy can
    address, are named instead of raising an OverflowError from deep inside.
    """
    n_params = _params.count_parameters(layer_sizes, bias)
    itemsize = np.dtype(dtype).itemsize
    limit = _MAX_BUFFER_BYTES // (2 * itemsize)
    if n_params > limit:
        raise ValueError(f"layer_sizes={list(layer_sizes)} need {n_params} parameters "
                         f"({n_params * itemsize} bytes in {np.dtype(dtype).name}, twice that "
                         f"for the optimizer state); a network can have at most {limit} "
                         f"parameters in {np.dtype(dtype).name}")
    return n_params


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
