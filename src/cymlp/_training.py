"""The training loop of ``MLP.fit``: epochs, chunks, validation, early stopping.

One backend ``Trainer`` is built per fit (``csrc/_kernels.pyx`` or
``cymlp/_numpy_kernels.py``); it takes the optimizer steps over whole chunks
of an epoch without returning to Python. This module shuffles the rows,
cuts each epoch into chunks (so that Ctrl-C and progress come back quickly),
measures validation data, stops early, and raises ``TrainingDiverged``.

Divergence has one mechanism: the trainer takes a step only if the loss
before it and the parameters and optimizer state after it are finite, and
says at which row it stopped. Two checks of the finished network follow
from the same promise (a fit that returns leaves a usable network): the
validation loss after each epoch, and the training loss with the final
weights. Neither depends on how the epochs were cut into chunks, so the
outcome never depends on the machine's speed.
"""

import contextlib
import math
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Callable, Optional

import numpy as np

from . import _sparse
from ._params import N_OUT, layer_views
from ._threads import blas_threads, blas_threads_for, reaches_blas, threads_for

# Time per trainer call: short enough that Ctrl-C and progress come back
# quickly, long enough that the call overhead is invisible. (Only the
# responsiveness depends on it, never the result.)
CHUNK_SECONDS = 0.05
FIRST_CHUNK_ROWS = 256
MAX_CHUNK_ROWS = 1 << 20


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite; lower the learning rate.

    Attributes
    ----------
    epoch : int
        The epoch (from 1) in which it happened; ``History`` keeps the epochs
        before it.
    """

    epoch = None


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

    def copy(self) -> "History":
        """An independent copy (the lists copied, not shared)."""
        return History(list(self.loss), list(self.accuracy), list(self.val_loss),
                       list(self.val_accuracy), list(self.learning_rate), self.stopped_early,
                       self.best_epoch)

    def check(self, name="history"):
        """Raise ``ValueError``/``TypeError`` naming ``name`` if the fields are inconsistent.

        Lists of real numbers; ``loss``, ``accuracy`` and ``learning_rate`` of
        one length, ``val_loss`` and ``val_accuracy`` empty or of that length;
        ``best_epoch`` None or an epoch of the history.
        """
        fields = ("loss", "accuracy", "learning_rate", "val_loss", "val_accuracy")
        for key in fields:
            values = getattr(self, key)
            if not isinstance(values, list) or not all(
                    isinstance(v, (int, float, np.floating, np.integer))
                    and not isinstance(v, (bool, np.bool_)) for v in values):
                raise TypeError(f"{name}.{key} must be a list of real numbers")
        epochs = len(self.loss)
        if len(self.accuracy) != epochs or len(self.learning_rate) != epochs:
            raise ValueError(f"{name}: loss, accuracy and learning_rate must have one length; "
                             f"got {epochs}, {len(self.accuracy)}, {len(self.learning_rate)}")
        if {len(self.val_loss), len(self.val_accuracy)} - {0, epochs} or \
                len(self.val_loss) != len(self.val_accuracy):
            raise ValueError(f"{name}: val_loss and val_accuracy must be empty or have "
                             f"{epochs} entries")
        if not isinstance(self.stopped_early, (bool, np.bool_)):
            raise TypeError(f"{name}.stopped_early must be True or False")
        best = self.best_epoch
        if best is not None and (isinstance(best, (bool, np.bool_))
                                 or not isinstance(best, (int, np.integer))
                                 or not 1 <= best <= epochs):
            raise ValueError(f"{name}.best_epoch must be None or an epoch from 1 to {epochs}; "
                             f"got {best!r}")

    def _drop_from(self, epoch_index):
        for values in (self.loss, self.accuracy, self.learning_rate, self.val_loss,
                       self.val_accuracy):
            del values[epoch_index:]
        if self.best_epoch is not None and self.best_epoch > epoch_index:
            self.best_epoch = None


@dataclass
class FitSettings:
    """The options of one ``fit`` call, checked by ``MLP.fit``."""

    epochs: int
    batch_size: int
    shuffle: bool
    schedule: Any
    verbose: bool = False
    early_stopping: bool = False
    patience: int = 10
    min_delta: float = 0.0
    callback: Optional[Callable] = None


class _Snapshot:
    """A copy of a network's parameters, optimizer state and step, to go back to."""

    def __init__(self, net):
        self.net = net
        self.params = net._params.copy()
        self.state = net._optimizer_state.copy()
        self.step = net._step

    def save(self):
        np.copyto(self.params, self.net._params)
        np.copyto(self.state, self.net._optimizer_state)
        self.step = self.net._step

    def restore(self):
        np.copyto(self.net._params, self.params)
        np.copyto(self.net._optimizer_state, self.state)
        self.net._step = self.step


class Session:
    """One backend ``Trainer`` for ``net`` on ``(X, Y)``, run epoch by epoch.

    ``MLP.fit`` and the scikit-learn estimators train through it. The
    network's training lock and the session's BLAS thread limit
    (``limit_threads``) must be held while it is used (``open_session``
    holds both). Each epoch is cut into chunks of whole batches sized to take
    about ``CHUNK_SECONDS``, so that Ctrl-C is honoured quickly while the
    call overhead stays invisible.

    Parameters
    ----------
    net : MLP
    X, Y : ndarray
        Checked training data, in the network's dtype.
    batch_size : int
    optimizer : cymlp.optim.SGD or cymlp.optim.Adam
        Starts fresh optimizer state when its kind differs from the last fit's.
    check_outputs : bool, default=False
        After each epoch, check that the network's outputs on the training
        rows are finite (``OutputCheck``), for callers whose every epoch may
        be the last one (``MLP.fit`` checks once, at its end).
    sample_weight : ndarray of shape (n_samples,) or None
        Checked weights (finite, >= 0, positive sum), in the network's
        dtype: each batch descends on its weighted mean loss, and the epoch's
        loss and accuracy are weighted means.
    rows : ndarray of int or None
        The rows of ``X`` (and ``Y``, ``sample_weight``) to train on, in
        this order before any shuffle; None for all. They are read in place
        (never gathered into a copy of the training set), so ``X`` may be a
        memmap larger than memory.
    """

    def __init__(self, net, X, Y, batch_size, optimizer, check_outputs=False,
                 sample_weight=None, rows=None):
        net._start_optimizer(optimizer)
        self.net, self.X, self.Y, self.batch_size = net, X, Y, batch_size
        self.sample_weight = sample_weight
        self.in_order = (np.arange(X.shape[0]) if rows is None
                         else np.array(rows, dtype=np.intp))
        self.n_rows = self.in_order.shape[0]
        self.total_weight = self.n_rows if sample_weight is None else float(
            np.add.reduce(sample_weight if rows is None else sample_weight[self.in_order],
                          dtype=np.float64))
        self.epoch_start = _Snapshot(net) if check_outputs else None
        self.output_check = OutputCheck(net, X, Y, rows) if check_outputs else None
        weights = {} if sample_weight is None else {"sample_weight": sample_weight}
        self.trainer = net._kernels.Trainer(net._params, net._layout, net._loss_code, X, Y,
                                            batch_size, optimizer, net._optimizer_state,
                                            net._step, **weights)
        rows = min(batch_size, self.n_rows)
        self.threads = threads_for(net._layout, rows, net.n_threads)
        self.needs_blas = reaches_blas(net._layout, rows, net._kernels)
        self.shuffled = np.empty_like(self.in_order)
        self.chunk_rows = batch_size * max(1, FIRST_CHUNK_ROWS // batch_size)

    def limit_threads(self):
        """The BLAS thread limit of the training steps, as a context manager."""
        return blas_threads(self.threads, self.needs_blas)

    @property
    def learning_rate(self):
        """The learning rate of the next steps."""
        return self.trainer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.trainer.learning_rate = value

    def run_epoch(self, epoch, shuffle):
        """One epoch (numbered ``epoch`` in messages): (mean loss, accuracy).

        Raises TrainingDiverged, leaving the network after the last good step.
        """
        order, trainer, net = self.in_order, self.trainer, self.net
        n_rows = order.shape[0]
        if self.epoch_start is not None:
            self.epoch_start.save()
        if shuffle:
            # In place, the same draws as self.net._rng.permutation(n).
            order = self.shuffled
            np.copyto(order, self.in_order)
            net._rng.shuffle(order)
        loss_sum, n_correct, start = 0.0, 0, 0
        while start < n_rows:
            stop = min(n_rows, start + self.chunk_rows)
            started = perf_counter()
            try:
                chunk_loss, chunk_correct, rows_done = trainer.run(order, start, stop)
            finally:
                net._step = trainer.step
            self._adapt_chunk(perf_counter() - started)
            loss_sum += chunk_loss
            n_correct += chunk_correct
            if rows_done < stop - start:
                # rows_done < 0: the step undone was the previous chunk's last,
                # which belongs to the previous epoch when this chunk is the first.
                raise self._diverged(epoch - 1 if rows_done < 0 and start == 0 else epoch)
            start = stop
        if self.output_check is not None:
            self.output_check(epoch, self.epoch_start)
        return loss_sum / self.total_weight, n_correct / self.total_weight

    def evaluate(self, X, Y, sample_weight=None):
        """(mean loss, accuracy) of the network now on ``(X, Y)``, weighted if given."""
        if sample_weight is None:
            loss_sum, correct = self.trainer.evaluate(X, Y)
            return loss_sum / X.shape[0], correct / X.shape[0]
        loss_sum, correct = self.trainer.evaluate(X, Y, sample_weight=sample_weight)
        total = float(np.add.reduce(sample_weight, dtype=np.float64))
        return loss_sum / total, correct / total

    def _diverged(self, epoch):
        error = TrainingDiverged(
            f"training diverged in epoch {epoch}: optimizer step {self.trainer.step + 1} made "
            f"the loss, the weights or the optimizer state NaN or infinite (learning rate "
            f"{self.trainer.learning_rate:g}); try a smaller learning_rate. The network was "
            f"left after step {self.trainer.step}, the last whose loss was finite.")
        error.epoch = epoch
        return error

    def _adapt_chunk(self, seconds):
        # Chunks stay whole numbers of batches, so the batches never depend on them.
        if seconds < CHUNK_SECONDS / 4 and self.chunk_rows < MAX_CHUNK_ROWS:
            self.chunk_rows *= 2
        elif seconds > CHUNK_SECONDS and self.chunk_rows > self.batch_size:
            self.chunk_rows = max(self.batch_size,
                                  self.chunk_rows // 2 // self.batch_size * self.batch_size)


@contextlib.contextmanager
def open_session(net, X, Y, batch_size, optimizer, check_outputs=False, sample_weight=None,
                 rows=None):
    """A ``Session`` on ``net`` with its training lock and its BLAS thread limit held."""
    with net._exclusive("fit"):
        session = Session(net, X, Y, batch_size, optimizer, check_outputs=check_outputs,
                          sample_weight=sample_weight, rows=rows)
        with session.limit_threads():
            yield session


def fit(net, X, Y, X_val, Y_val, optimizer, settings, sample_weight=None, val_weight=None,
        rows=None):
    """Train ``net`` (its training lock held) on ``rows`` of X (None: all); the ``History``."""
    if optimizer.code == "lbfgs":
        if rows is not None:    # full-batch: the objective reads one block of rows
            X, Y = _sparse.take_rows(X, rows), Y[rows]
            sample_weight = None if sample_weight is None else sample_weight[rows]
        return fit_lbfgs(net, X, Y, X_val, Y_val, optimizer, settings, sample_weight,
                         val_weight)
    session = Session(net, X, Y, settings.batch_size, optimizer, sample_weight=sample_weight,
                      rows=rows)
    history = net.history = History()
    best = _Snapshot(net) if settings.early_stopping else None
    epoch_start = _Snapshot(net)
    try:
        with session.limit_threads():    # for the whole fit, callbacks included
            _run_epochs(net, session, history, settings, optimizer.lr, X_val, Y_val, best,
                        epoch_start, val_weight)
            if best is not None and history.best_epoch is not None:
                best.restore()               # the network fit returns is the one checked
                epoch_start = best
            if history.epochs:
                try:
                    OutputCheck(net, X, Y, rows)(history.epochs, epoch_start)
                except TrainingDiverged:
                    history._drop_from(history.epochs - 1)
                    raise
    except KeyboardInterrupt:
        if best is not None and history.best_epoch is not None:
            best.restore()
        raise
    if best is not None and history.best_epoch is not None:
        best.restore()
    return history


def _run_epochs(net, session, history, settings, base_rate, X_val, Y_val, best, epoch_start,
                val_weight=None):
    if X_val is not None:   # the evaluation's products, in blocks of rows
        rows = _sparse.inference_rows(net._layout, X_val)
        validation_threads = (threads_for(net._layout, rows, net.n_threads),
                              reaches_blas(net._layout, rows, net._kernels))
    for epoch in range(settings.epochs):
        epoch_start.save()
        session.learning_rate = settings.schedule(base_rate, epoch,
                                                  samples_seen=epoch * session.n_rows,
                                                  losses=history.loss)
        try:
            loss, accuracy = session.run_epoch(epoch + 1, settings.shuffle)
        except TrainingDiverged as error:
            history._drop_from(error.epoch - 1)
            raise
        history.loss.append(loss)
        history.accuracy.append(accuracy)
        history.learning_rate.append(float(session.learning_rate))
        if X_val is not None:   # the trainer keeps the workspace from epoch to epoch
            with blas_threads(*validation_threads):
                val_loss, val_accuracy = session.evaluate(X_val, Y_val, val_weight)
            if not _finite(net, val_loss):
                history._drop_from(epoch)
                epoch_start.restore()
                error = TrainingDiverged(
                    f"training diverged in epoch {epoch + 1}: the validation loss became NaN "
                    "or infinite; try a smaller learning_rate. The network was left as it was "
                    "at the start of that epoch.")
                error.epoch = epoch + 1
                raise error
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_accuracy)
        if _record_best(history, best, settings, epoch):
            break


def _record_best(history, best, settings, epoch):
    """Early stopping after epoch ``epoch`` (from 0), then verbose and callback; True: stop.

    The best loss and the epochs since are read off ``history`` (its
    ``best_epoch`` moves only on an improvement by more than ``min_delta``).
    """
    if best is not None:
        best_epoch = history.best_epoch
        best_loss = math.inf if best_epoch is None else history.val_loss[best_epoch - 1]
        if history.val_loss[-1] < best_loss - settings.min_delta:
            best.save()                  # before the label: Ctrl-C between them is safe
            history.best_epoch = epoch + 1
        else:
            history.stopped_early = (epoch + 1 - (best_epoch or 0)) >= settings.patience
    if settings.verbose:
        print(history.summary(), flush=True)
    if settings.callback is not None:     # sees this epoch's best_epoch and stopped_early
        settings.callback(epoch + 1, history)
    return history.stopped_early


def _finite(net, loss_sum):
    """Whether a summed loss is finite in the network's precision."""
    with np.errstate(over="ignore"):
        return bool(np.isfinite(net.dtype(loss_sum)))


class OutputCheck:
    """Raise TrainingDiverged if the trained network overflows on its training rows.

    Every step's own batch was checked before it; the rows trained earlier in
    the epoch could still overflow with the final weights. A bound settles it
    cheaply in all but extreme cases: with |x| <= m, each layer's
    pre-activations are at most m times the largest column sum of |W| (plus
    |b|), and sigmoid, tanh and softmax outputs at most 1. Only when that
    bound comes near the dtype's range is the full forward pass run. On
    failure the network goes back to ``epoch_start`` (a ``_Snapshot``).

    Built once per session (a scikit-learn fit checks after every epoch):
    what depends only on the data (the magnitudes of X and Y, hence the
    threshold) is measured once, the weights at each call, in buffers of
    its own.
    """

    def __init__(self, net, X, Y, rows=None):
        # (Over all the rows of X and Y, a superset of ``rows``: still a bound.)
        self.net, self.X, self.Y, self.rows = net, X, Y, rows
        target_magnitude = float(np.abs(Y).max()) if Y.size else 0.0
        self.safe = 1e-3 * math.sqrt(float(np.finfo(net.dtype).max)) / (1 + target_magnitude)
        self.input_magnitude = _sparse.largest_magnitude(X)
        # |params| goes here; the layers' views of it are cut the way the
        # network's weights and biases are cut from params.
        self.magnitudes = np.empty_like(net._params)
        weights, biases = layer_views(self.magnitudes, net._layout)
        biases = biases or [None] * len(weights)
        self.column_sums = np.empty(int(net._layout[:, N_OUT].max()), net.dtype)
        # |f(z)| <= 1 for these, <= |z| for relu, leaky_relu and identity.
        self.layers = [(w, b, self.column_sums[:w.shape[1]],
                        activation in ("sigmoid", "tanh", "softmax"))
                       for w, b, activation in zip(weights, biases, net.activations)]

    def __call__(self, epoch, epoch_start):
        if self.output_bound() < self.safe:
            return
        if _finite(self.net, self._training_loss()):
            return
        epoch_start.restore()
        error = TrainingDiverged(
            f"training diverged in epoch {epoch}: with the weights it ended with, the loss "
            "on the training data is NaN or infinite; try a smaller learning_rate. The "
            "network was left as it was at the start of that epoch.")
        error.epoch = epoch
        raise error

    def _training_loss(self):
        """The summed loss on the training rows (gathered a block at a time when a subset)."""
        net, X, Y = self.net, self.X, self.Y
        block = _sparse.inference_rows(net._layout, X)
        total = 0.0
        with blas_threads_for(net._layout, block, net.n_threads, net._kernels):
            if self.rows is None:
                return _sparse.evaluate(net._kernels, net._params, net._layout,
                                        net._loss_code, X, Y, block)[0]
            for start in range(0, self.rows.shape[0], block):
                rows = self.rows[start:start + block]
                total += _sparse.evaluate(net._kernels, net._params, net._layout,
                                          net._loss_code, _sparse.take_rows(X, rows),
                                          np.ascontiguousarray(Y[rows]), block)[0]
        return total

    def output_bound(self):
        """A bound on |pre-activation| in every layer for the inputs of X.

        First the loose bound with every |w| and |b| replaced by the largest
        of them (one pass over the parameters); only when that is not below
        the threshold, the bound from each layer's largest column sum of |W|
        and largest |b| (which the loose one is never below, so the check
        decides as that alone would).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            np.absolute(self.net._params, out=self.magnitudes)
            largest = float(self.magnitudes.max())
            bound = self._chain((weights.shape[0] * largest, 0.0 if bias is None else largest,
                                 bounded) for weights, bias, _, bounded in self.layers)
            if bound < self.safe:
                return bound
            return self._chain(_column_bound(weights, bias, column_sums, bounded)
                               for weights, bias, column_sums, bounded in self.layers)

    def _chain(self, layers):
        """max |z| over the layers, each ``(|W| column bound, |b| bound, bounded output)``."""
        entering, largest = self.input_magnitude, 0.0
        for column_bound, bias_bound, bounded in layers:
            pre_activation = entering * column_bound + bias_bound
            largest = max(largest, pre_activation)
            entering = 1.0 if bounded else pre_activation
        return largest if math.isfinite(largest) else math.inf


def _column_bound(weights, bias, column_sums, bounded):
    """(largest column sum of |W|, largest |b| or 0, bounded) of one layer's magnitudes."""
    np.add.reduce(weights, axis=0, out=column_sums)
    return float(column_sums.max()), 0.0 if bias is None else float(bias.max()), bounded


# ---------------------------------------------------------------- L-BFGS

class LossAndGrad:
    """The L-BFGS objective on ``net``: ``scale * mean loss + 0.5 * l2 * ||mask * params||**2``.

    Called by SciPy with a float64 vector ``x``; copies it into the network's
    parameters and makes one backend ``loss_and_grad`` call over all the
    rows (weighted mean loss when ``sample_weight`` is given). Returns the
    value and its float64 gradient; a non-finite loss is answered with
    ``inf`` so the line search backs off. ``mask`` (0/1 per parameter, or
    None for all) says which parameters the L2 term covers: all of them for
    ``MLP``'s ``weight_decay``, the weights only for scikit-learn's ``alpha``.
    """

    def __init__(self, net, X, Y, sample_weight=None, scale=1.0, l2=0.0, mask=None):
        self.net, self.X, self.Y, self.scale, self.l2 = net, X, Y, scale, l2
        self.weights = {} if sample_weight is None else {"sample_weight": sample_weight}
        self.mask = None if mask is None else np.asarray(mask, dtype=np.float64)
        self.grad = np.empty_like(net._params)
        self.evaluations = 0

    def __call__(self, x):
        net = self.net
        net._params[...] = x
        loss = _sparse.loss_and_grad(net._kernels, net._params, net._layout, net._loss_code,
                                     self.X, self.Y, self.grad, **self.weights)
        self.evaluations += 1
        gradient = self.grad.astype(np.float64)
        gradient *= self.scale
        value = self.scale * float(loss)
        if self.l2:
            penalised = net._params.astype(np.float64)
            if self.mask is not None:
                penalised *= self.mask
            value += 0.5 * self.l2 * float(np.einsum("i,i->", penalised, penalised))
            gradient += self.l2 * penalised
        if not (math.isfinite(value) and np.isfinite(gradient).all()):
            return math.inf, np.zeros_like(gradient)
        return value, gradient


def run_lbfgs(net, objective, max_iter, max_fun, tol, history_size=10, callback=None):
    """``scipy.optimize.minimize(method="L-BFGS-B")`` of ``objective`` from ``net.params``.

    The network's training lock must be held. ``callback(x)`` is called
    after each iteration with the network's parameters set to that iterate;
    it may raise StopIteration to end the minimisation there. The network is
    left at the result (on Ctrl-C: at the last completed iterate). Returns
    SciPy's ``OptimizeResult``.
    """
    from scipy.optimize import minimize  # only for L-BFGS fits: a SciPy import less

    last = _Snapshot(net)

    def after_iteration(intermediate_result):
        net._params[...] = intermediate_result.x
        last.save()
        if callback is not None:
            callback(intermediate_result.x)

    x0 = net._params.astype(np.float64)
    net._forget_optimizer()   # L-BFGS keeps no state; earlier moments would be stale
    try:
        with blas_threads_for(net._layout, objective.X.shape[0], net.n_threads, net._kernels):
            result = minimize(objective, x0, method="L-BFGS-B", jac=True,
                              callback=after_iteration,
                              options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol,
                                       "maxcor": history_size})
    except BaseException:
        last.restore()
        raise
    net._params[...] = result.x
    return result


def fit_lbfgs(net, X, Y, X_val, Y_val, optimizer, settings, sample_weight=None,
              val_weight=None):
    """``MLP.fit`` with ``optimizer=LBFGS(...)``: one ``History`` entry per iteration.

    ``settings.epochs`` bounds the iterations. Each entry has the training
    loss and accuracy at that iterate (learning rate NaN: L-BFGS has none),
    and the validation figures; early stopping ends the minimisation and
    restores the best iterate, as for the other optimizers.
    """
    objective = LossAndGrad(net, X, Y, sample_weight, l2=optimizer.weight_decay)
    history = net.history = History()
    best = _Snapshot(net) if settings.early_stopping else None
    weights = {} if sample_weight is None else {"sample_weight": sample_weight}
    val_weights = {} if val_weight is None else {"sample_weight": val_weight}
    total = X.shape[0] if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
    rows = _sparse.inference_rows(net._layout, X)
    if X_val is not None:
        val_rows = _sparse.inference_rows(net._layout, X_val)
        val_total = (X_val.shape[0] if val_weight is None
                     else float(val_weight.sum(dtype=np.float64)))

    def record(x):
        loss_sum, correct = _sparse.evaluate(net._kernels, net._params, net._layout,
                                             net._loss_code, X, Y, rows, **weights)
        history.loss.append(loss_sum / total)
        history.accuracy.append(correct / total)
        history.learning_rate.append(math.nan)
        if X_val is not None:
            val_sum, val_correct = _sparse.evaluate(
                net._kernels, net._params, net._layout, net._loss_code, X_val, Y_val, val_rows,
                **val_weights)
            history.val_loss.append(val_sum / val_total)
            history.val_accuracy.append(val_correct / val_total)
        if _record_best(history, best, settings, history.epochs - 1):
            raise StopIteration

    start = _Snapshot(net)
    try:
        run_lbfgs(net, objective, settings.epochs, optimizer.max_fun, optimizer.tol,
                  optimizer.history_size, record)
    finally:
        if best is not None and history.best_epoch is not None:
            best.restore()
    loss_sum, _ = _sparse.evaluate(net._kernels, net._params, net._layout, net._loss_code, X, Y,
                                   rows)
    if not (_finite(net, loss_sum) and np.isfinite(net._params).all()):
        start.restore()
        history._drop_from(0)
        error = TrainingDiverged("L-BFGS ended with a NaN or infinite loss; the network was "
                                 "left as it was before the fit (scale the inputs, or add "
                                 "weight_decay)")
        error.epoch = 1
        raise error
    return history
