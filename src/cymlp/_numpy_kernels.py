"""The NumPy backend: the readable reference for ``csrc/_kernels.pyx``.

Each public name here has a compiled twin of the same name, signature and
semantics; the test suite checks that both give the same numbers. The Python
layer validates every argument before calling in here.

The network computes, per layer ``l``, ``z = a_prev @ W + b`` and ``a = f(z)``.
Backpropagation starts from ``delta = dLoss/dz`` of the output layer and
walks back with ``delta_prev = (delta @ W.T) * f'(z_prev)``; the gradient of
a layer is ``a_prev.T @ delta`` for ``W`` and ``delta.sum(0)`` for ``b``.

Arithmetic is done as the compiled kernels do it, so that both agree to the
last bits where they can: float32 networks compute in float32 with the
hyperparameters rounded to float32, except the losses,
which both backends compute in float64.
"""

import math

import numpy as np
from scipy.special import expit

from ._codes import LEAKY_SLOPE, Activation, Loss, Optimizer
from ._params import B_OFFSET, N_IN, N_OUT, W_OFFSET, block_rows, layer_views

__all__ = ["Trainer", "evaluate", "evaluate_csr", "forward", "forward_csr", "loss_and_grad",
           "loss_and_grad_csr", "uses_blas"]

# Overflow to inf or NaN is detected and reported by the caller (divergence),
# as in the compiled kernels, so NumPy's floating-point warnings stay off.
_quiet = np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore")


# ---------------------------------------------------------------- activations

def tanh(z):
    """tanh; float32 computed in double and rounded, as the kernels' tanhf gives it.

    (NumPy's float32 tanh reaches +-1 from |z| = 8 on, tanhf only from 9.01,
    and where one backend saturates, the derivative 1 - a**2 is exactly 0.)
    """
    return np.tanh(z) if z.dtype == np.float64 else np.tanh(z, dtype=np.float64).astype(z.dtype)


def leaky_relu(z):
    return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ACTIVATE = {
    Activation.IDENTITY: lambda z: z,
    Activation.SIGMOID: expit,         # 1 / (1 + exp(-z)), without overflow
    Activation.TANH: tanh,
    Activation.RELU: lambda z: np.maximum(z, 0),
    Activation.LEAKY_RELU: leaky_relu,
    Activation.SOFTMAX: softmax,
    Activation.EXP: np.exp,            # output layers only (the Poisson loss)
}

# f'(z) written in terms of the output a = f(z) (softmax is handled by the losses).
DERIVATIVE = {
    Activation.IDENTITY: None,
    Activation.SIGMOID: lambda a: a * (1 - a),
    Activation.TANH: lambda a: 1 - a * a,
    Activation.RELU: lambda a: (a > 0).astype(a.dtype),
    Activation.LEAKY_RELU: lambda a: np.where(a > 0, a.dtype.type(1), a.dtype.type(LEAKY_SLOPE)),
}


def backpropagate_through(code, delta, a):
    """delta * f'(z) for the activation ``code`` whose output is ``a``."""
    derivative = DERIVATIVE[code]
    return delta if derivative is None else delta * derivative(a)


# ---------------------------------------------------------------- losses

def correct_rows(a, y):
    """Whether each row's output class equals the target's (the rule of ``_codes.classify``)."""
    if a.shape[1] == 1:
        return (a[:, 0] > 0.5) == (y[:, 0] > 0.5)
    return a.argmax(axis=1) == y.argmax(axis=1)


def n_correct(a, y, weights=None):
    """Rows classified correctly: how many, or with ``weights`` the sum of theirs (a float)."""
    if weights is None:
        return int(np.count_nonzero(correct_rows(a, y)))
    return float(weights @ correct_rows(a, y))


def _double(x):
    """x in float64 (no copy when it is): the kernels compute losses and deltas in double."""
    return x if x.dtype == np.float64 else x.astype(np.float64)


def loss_and_delta(loss, activation, a, z, y, scale):
    """(loss of each row, ``scale`` times its dLoss/dz).

    The losses are in float64; a row's loss is the mean over outputs (mse,
    bce, poisson) or the sum (cross-entropy), as torch's losses define it.
    ``scale`` is ``1 / rows`` for the batch mean, or a column of
    ``w_i / sum(w)`` for a weighted mean.
    """
    width = a.shape[1]
    if loss in (Loss.MSE, Loss.TUTORIAL):
        error = a - y
        losses = np.add.reduce(np.square(error), axis=1, dtype=np.float64) / width
        if loss == Loss.TUTORIAL:   # the tutorial's a - y, per sample
            return losses, (_double(error) * scale).astype(a.dtype, copy=False)
        delta = (_double(error) * (2.0 * scale) / width).astype(a.dtype, copy=False)
        if activation == Activation.SOFTMAX:
            # Softmax Jacobian: dz_j = a_j (g_j - sum_k g_k a_k).
            inner = (_double(delta) * a).sum(axis=1, keepdims=True)
            return losses, (a * (delta - inner)).astype(a.dtype, copy=False)
        return losses, backpropagate_through(activation, delta, a)
    z, y = _double(z), _double(y)
    if loss == Loss.BCE:
        # log(1 + exp(z)) - z y, with log(1 + exp(z)) as logaddexp(0, z): no overflow.
        losses = (np.logaddexp(0, z) - z * y).sum(axis=1) / width
        return losses, ((_double(a) - y) * scale / width).astype(a.dtype, copy=False)
    if loss == Loss.CROSS_ENTROPY:
        # -sum y log softmax(z) = sum y (logsumexp(z) - z).
        top = z.max(axis=1, keepdims=True)
        log_sum = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
        losses = (y * (log_sum - z)).sum(axis=1)
        delta = (_double(a) * y.sum(axis=1, keepdims=True) - y) * scale
        return losses, delta.astype(a.dtype, copy=False)
    if loss == Loss.POISSON:
        # exp(z) - y z on the log-mean z, a = exp(z) (torch's PoissonNLLLoss, log_input=True).
        losses = (np.exp(z) - y * z).sum(axis=1) / width
        return losses, ((_double(a) - y) * scale / width).astype(a.dtype, copy=False)
    raise ValueError(f"unknown loss code {loss}")


# ---------------------------------------------------------------- one batch

def forward_pass(weights, biases, activations, x):
    """Outputs of every layer for the rows ``x``: ``([x, a_1, ..., a_L], z_L)``."""
    # (ndarray.dot rather than @: the same product, with less overhead on tiny arrays)
    outputs = [x]
    for layer, W in enumerate(weights):
        z = outputs[-1].dot(W)
        if biases:
            z += biases[layer]
        outputs.append(ACTIVATE[activations[layer]](z))
    return outputs, z


def backward_pass(network, outputs, delta, gradient):
    """Write into ``gradient`` (a ``_Network`` over the gradient vector) dLoss/dW, dLoss/db.

    The input rows ``outputs[0]`` may be a scipy.sparse matrix: the first
    layer's ``x.T @ delta`` is then a sparse product.
    """
    for layer in range(len(network.weights) - 1, -1, -1):
        a_prev = outputs[layer]
        if isinstance(a_prev, np.ndarray):
            np.dot(a_prev.T, delta, out=gradient.weights[layer])
        else:
            gradient.weights[layer][...] = a_prev.T @ delta
        if network.biases:
            np.add.reduce(delta, axis=0, out=gradient.biases[layer])
        if layer > 0:
            delta = backpropagate_through(network.activations[layer - 1],
                                          delta.dot(network.weights[layer].T), a_prev)


class _Network:
    """Per-layer views of a flat parameter vector, and the activation codes."""

    def __init__(self, params, layout):
        self.weights, self.biases = layer_views(params, layout)
        self.activations = [Activation(int(code)) for code in layout[:, 2]]

    def forward(self, x):
        return forward_pass(self.weights, self.biases, self.activations, x)

    def loss(self, loss, x, y, weights=None, weight_sum=None):
        """(sum_i w_i l_i, outputs of every layer, d(sum_i w_i l_i / weight_sum)/dz_L).

        ``weights`` (float64; None: every w_i is 1) and ``weight_sum``
        (None: the rows of ``x``) as the compiled ``forward_loss`` takes
        them. A row of weight 0 counts for nothing, even where its loss
        overflows.
        """
        outputs, z = forward_pass(self.weights, self.biases, self.activations, x)
        weight_sum = x.shape[0] if weight_sum is None else weight_sum
        scale = 1.0 / weight_sum if weights is None else (weights / weight_sum)[:, np.newaxis]
        losses, delta = loss_and_delta(loss, self.activations[-1], outputs[-1], z, y, scale)
        if weights is None:
            return float(losses.sum()), outputs, delta
        dropped = weights == 0
        delta[dropped] = 0
        return float(np.where(dropped, 0.0, weights * losses).sum()), outputs, delta


def _check_layout(layout, n_params, n_in, n_out):
    if layout.ndim != 2 or layout.shape[1] != 5 or layout.shape[0] < 1:
        raise ValueError("layout must have shape (n_layers >= 1, 5)")
    if layout[0, N_IN] != n_in or layout[-1, N_OUT] != n_out:
        raise ValueError("X or Y does not match the layout")
    for layer in range(layout.shape[0]):
        width = layout[layer, N_OUT]
        if (layout[layer, N_IN] < 1 or width < 1
                or (layer > 0 and layout[layer, N_IN] != layout[layer - 1, N_OUT])):
            raise ValueError("layout has inconsistent layer sizes")
        if (layout[layer, W_OFFSET] < 0
                or layout[layer, W_OFFSET] + layout[layer, N_IN] * width > n_params
                or layout[layer, B_OFFSET] + width > n_params):
            raise ValueError("params is too short for the layout")


# ---------------------------------------------------------------- optimizers

def optimizer_step(optimizer, hyper, params, grad, state, step):
    """New ``(params, state)`` after one step, as torch.optim.SGD / Adam compute it.

    ``state[0]`` is the momentum buffer (SGD) or first moment (Adam),
    ``state[1]`` the second moment (Adam). ``step`` counts from 1. Moments
    that decay below the normal range are flushed to 0, as the kernels do:
    subnormal arithmetic is many times slower, and they are far below any
    effect on the weights.
    """
    learning_rate, momentum, nesterov, weight_decay, beta1, beta2, eps = hyper
    dtype = params.dtype.type
    if weight_decay != 0:
        grad = grad + dtype(weight_decay) * params
    if optimizer == Optimizer.SGD:
        if dtype(momentum) == 0:   # judged in the network's precision, as the kernels do
            return params - dtype(learning_rate) * grad, state
        buffer = _flush(dtype(momentum) * state[0] + grad)
        direction = grad + dtype(momentum) * buffer if nesterov else buffer
        return params - dtype(learning_rate) * direction, np.stack([buffer, state[1]])
    # Adam, in the network's precision as torch computes it, with the step's
    # constants worked out in float64 and rounded to it.
    g, first, second = grad, state[0], state[1]
    first = first + dtype(1 - beta1) * (g - first)
    second = dtype(beta2) * second + dtype(1 - beta2) * g * g
    step_size = dtype(learning_rate / (1 - beta1 ** step))
    # torch divides sqrt(v) by sqrt(1 - beta2^t); the kernels multiply by the
    # reciprocal, which saves a division per parameter.
    inverse_correction2 = dtype(1 / math.sqrt(1 - beta2 ** step))
    new_params = params - step_size * (first / (np.sqrt(second) * inverse_correction2
                                                + dtype(eps)))
    return new_params, _flush(np.stack([first, second]))


def _all_finite(values):
    return bool(np.logical_and.reduce(np.isfinite(values), axis=None))


def _flush(values):
    """values with 0 where |values| is below the normal range."""
    return np.where(np.abs(values) < np.finfo(values.dtype).tiny, 0, values)   # NaN stays


# ---------------------------------------------------------------- entry points

def _check_sample_weight(sample_weight, n_rows, dtype):
    """Raise unless ``sample_weight`` is None or a C-contiguous (n_rows,) array of ``dtype``."""
    if sample_weight is None:
        return
    if (getattr(sample_weight, "dtype", None) != dtype or sample_weight.ndim != 1
            or not sample_weight.flags.c_contiguous or sample_weight.shape[0] != n_rows):
        raise ValueError(f"sample_weight must be None or a C-contiguous {np.dtype(dtype)} "
                         f"array of shape ({n_rows},)")


class Trainer:
    """Trains one network on ``(X, Y)``: built once per fit, run over chunks of rows.

    A step is kept only while everything stays finite. A batch whose loss is
    not finite is not stepped on, and the step before it (whose result gave
    that loss) is undone too; a step that would make a parameter or the
    optimizer state inf or NaN is not taken. Undoing goes back to the
    snapshot taken at the start of the run (or of the last run before that
    took a step, when the step to undo was that run's last) and takes the
    steps after it again. The network is left at the last state whose loss
    was measured finite, and ``run`` says how many rows it kept.

    With ``sample_weight`` (one finite weight >= 0 per row), each step
    descends on its batch's weighted mean loss ``sum w_i l_i / sum w_i``; a
    batch whose weights sum to 0 is skipped: no step, its rows counted done.
    """

    @_quiet
    def __init__(self, params, layout, loss, X, Y, batch_size, optimizer, state, step,
                 sample_weight=None):
        if hasattr(X, "indptr"):   # CSRRows: read as a scipy matrix, its rows sliced per batch
            X = _csr_matrix(params, layout, X.data, X.indices, X.indptr)
        _check_layout(layout, params.shape[0], X.shape[1], Y.shape[1])
        if batch_size < 1 or Y.shape[0] != X.shape[0] or state.shape != (2, params.shape[0]):
            raise ValueError("batch_size, X, Y or state do not match params")
        if not 0 <= step < 2 ** 62:
            raise ValueError("step must be >= 0 and below 2**62")
        _check_sample_weight(sample_weight, X.shape[0], params.dtype)
        self.params, self.layout, self.X, self.Y, self.state = params, layout, X, Y, state
        self.sample_weight = sample_weight
        # The weights in float64, in which the kernels sum and divide them.
        self._weights = None if sample_weight is None else _double(sample_weight)
        self.loss, self.batch_size, self.step = Loss(int(loss)), batch_size, step
        self.optimizer = Optimizer(int(optimizer.code))
        self.learning_rate = optimizer.lr
        self._settings = (optimizer.momentum, bool(optimizer.nesterov), optimizer.weight_decay,
                          optimizer.beta1, optimizer.beta2, optimizer.eps)
        self._network = _Network(params, layout)
        self._grad = np.empty_like(params)
        self._gradient = _Network(self._grad, layout)
        # A loss is judged in the network's precision, as the compiled kernel
        # does: a float32 loss that only double can hold is not finite.
        self._finite = (math.isfinite if params.dtype == np.float64
                        else lambda value: math.isfinite(np.float32(value)))
        # The last run that kept a step: (snapshot, rows kept, learning rate,
        # where the batch of its last step starts).
        self._previous = None

    @_quiet
    def run(self, order, start, stop):
        """Train on the rows ``X[order[start:stop]]``: ``(loss_sum, n_correct, rows_done)``.

        With weights, ``loss_sum`` is sum w_i l_i and ``n_correct`` (a float)
        the sum of the weights of the rows classified correctly; a skipped
        batch of weight 0 counts as done. ``rows_done`` is negative, ``-r``,
        when the last step of the run before that took one had to be undone
        (``r`` rows from that step's batch on).
        """
        if not 0 <= start <= stop <= order.shape[0]:
            raise ValueError("start and stop must satisfy 0 <= start <= stop <= len(order)")
        rows = order[start:stop].copy()
        if rows.size and (rows.min() < 0 or rows.max() >= self.X.shape[0]):
            raise ValueError("order holds a row index outside X")
        if not rows.size:
            return 0.0, (0 if self._weights is None else 0.0), 0
        snapshot = (self.params.copy(), self.state.copy(), self.step)
        try:
            loss_sum, correct, done = self._run(rows, snapshot, self._previous)
        except BaseException:
            self._previous = None   # an interrupted run is no base for undoing
            raise
        return loss_sum, (correct if self._weights is None else float(correct)), done

    def _run(self, rows, snapshot, previous):
        loss_sum, correct, done, last, failed_at, loss_failed = self._steps(rows)
        if failed_at is None:
            self._remember(snapshot, rows, last, previous)
            return loss_sum, correct, done
        if not loss_failed:
            keep = failed_at                      # undo the step that made a value non-finite
        elif last is not None:
            keep = last                           # undo the step whose result gave that loss
        elif previous is not None:
            # No step of this run came before: the step to undo is the previous run's last.
            (params, state, step), previous_rows, previous_rate, previous_last = previous
            self._restore(params, state, step)
            rate, self.learning_rate = self.learning_rate, previous_rate
            last = self._steps(previous_rows[:previous_last])[3]
            self.learning_rate = rate
            self._previous = None
            if last is not None:
                self._previous = (previous[0], previous_rows[:previous_last], previous_rate, last)
            return 0.0, 0, previous_last - previous_rows.shape[0]
        else:
            keep = failed_at          # no step was taken before it (the fit's first): none to undo
        self._restore(*snapshot)
        loss_sum, correct, done, last, _, _ = self._steps(rows[:keep])
        self._remember(snapshot, rows[:keep], last, previous)
        return loss_sum, correct, done

    def _remember(self, snapshot, rows, last, previous):
        """After a run that kept ``rows``: the run an undo goes back to is this one, if it took a step."""
        if last is not None:
            self._previous = (snapshot, rows, self.learning_rate, last)
        else:
            self._previous = previous

    def evaluate(self, X, Y, sample_weight=None):
        """(sum_i w_i l_i, sum_i w_i [row i correct]) of the network now on ``(X, Y)``.

        Without weights (every w_i 1): the summed loss and the number of rows
        classified correctly. ``X`` may be ``CSRRows``.
        """
        if hasattr(X, "indptr"):
            return evaluate_csr(self.params, self.layout, self.loss, X.data, X.indices,
                                X.indptr, Y, block_rows(self.layout, X.shape[0], sparse=True),
                                sample_weight)
        return evaluate(self.params, self.layout, self.loss, X, Y,
                        block_rows(self.layout, X.shape[0]), sample_weight)

    def _commit(self, params, state, step):
        """Take a step: params, state and step count, all or none of them.

        Each assignment can be repeated, so a Ctrl-C between two of them is
        answered by making them all before it propagates.
        """
        try:
            self.params[...] = params
            if state is not self.state:
                self.state[...] = state
            self.step = step
        except BaseException:
            self.params[...] = params
            if state is not self.state:
                self.state[...] = state
            self.step = step
            raise

    def _restore(self, params, state, step):
        self.params[...] = params
        self.state[...] = state
        self.step = step

    def _steps(self, rows):
        """One step per batch of ``X[rows]`` (none for a batch of weight 0).

        Returns ``(loss_sum, n_correct, rows_done, last, failed_at,
        loss_failed)``. Stops at the batch whose loss is not finite
        (``loss_failed``; its step is not taken) or whose step would make a
        value non-finite; ``failed_at`` is where that batch starts (None if
        none did), ``last`` where the batch of the last step taken starts
        (None: no step was taken).
        """
        hyper = (self.learning_rate,) + self._settings
        X, Y, network, finite = self.X, self.Y, self._network, self._finite
        weights, batch_weights, weight_sum = self._weights, None, None
        # The outputs of each batch's forward pass: classified once, at the end.
        outputs_seen = np.empty((rows.shape[0], Y.shape[1]), dtype=self.params.dtype)
        loss_sum, done, last, failed_at, loss_failed = 0.0, 0, None, None, False
        for begin in range(0, rows.shape[0], self.batch_size):
            if self.batch_size == 1:   # a view: cheaper than gathering one row
                batch = slice(int(rows[begin]), int(rows[begin]) + 1)
                count = 1
            else:
                batch = rows[begin:begin + self.batch_size]
                count = batch.shape[0]
            if weights is not None:
                batch_weights = weights[batch]
                weight_sum = float(batch_weights.sum())
                if weight_sum == 0:
                    done += count           # (its rows weigh 0 in n_correct below)
                    continue
            batch_loss, outputs, delta = network.loss(self.loss, X[batch], Y[batch],
                                                      batch_weights, weight_sum)
            if not finite(batch_loss):
                failed_at, loss_failed = begin, True
                break
            backward_pass(network, outputs, delta, self._gradient)
            params, state = optimizer_step(self.optimizer, hyper, self.params, self._grad,
                                           self.state, self.step + 1)
            if not (_all_finite(params) and (state is self.state or _all_finite(state))):
                failed_at = begin
                break
            self._commit(params, state, self.step + 1)
            outputs_seen[begin:begin + count] = outputs[-1]
            loss_sum += batch_loss
            done += count
            last = begin
        correct = 0
        if done:
            kept = rows[:done]
            correct = n_correct(outputs_seen[:done], Y[kept],
                                None if weights is None else weights[kept])
        return loss_sum, correct, done, last, failed_at, loss_failed


def uses_blas(layout, rows):
    """Whether products of ``rows`` rows through ``layout`` call BLAS: always, here.

    (NumPy's matmul calls its BLAS, loaded with NumPy; the compiled kernels
    compute small products and single rows with loops of their own.)
    """
    return True


@_quiet
def forward(params, layout, X, out, block_rows):
    """out = f_L(... f_1(X W_1 + b_1) ... W_L + b_L), ``block_rows`` rows at a time."""
    _check_layout(layout, params.shape[0], X.shape[1], out.shape[1])
    if out.shape[0] != X.shape[0] or block_rows < 1:
        raise ValueError("out must have one row per row of X, and block_rows >= 1")
    network = _Network(params, layout)
    for start in range(0, X.shape[0], block_rows):
        out[start:start + block_rows] = network.forward(X[start:start + block_rows])[0][-1]


@_quiet
def evaluate(params, layout, loss, X, Y, block_rows, sample_weight=None):
    """(sum_i w_i l_i, sum_i w_i [row i classified correctly]); w_i = 1 without weights."""
    _check_layout(layout, params.shape[0], X.shape[1], Y.shape[1])
    if Y.shape[0] != X.shape[0] or block_rows < 1:
        raise ValueError("X and Y must have the same number of rows, and block_rows >= 1")
    _check_sample_weight(sample_weight, X.shape[0], params.dtype)
    weights = None if sample_weight is None else _double(sample_weight)
    network, total, correct = _Network(params, layout), 0.0, 0 if weights is None else 0.0
    for start in range(0, X.shape[0], block_rows):
        block = slice(start, start + block_rows)
        block_weights = None if weights is None else weights[block]
        block_loss, outputs, _ = network.loss(Loss(int(loss)), X[block], Y[block], block_weights)
        total += block_loss
        correct += n_correct(outputs[-1], Y[block], block_weights)
    return total, correct


@_quiet
def loss_and_grad(params, layout, loss, X, Y, grad, sample_weight=None):
    """grad = d(sum_i w_i l_i / sum_i w_i)/d params over the rows of X; returns that mean.

    Without weights every w_i is 1 (the mean loss). The rows go through in
    blocks (``block_rows``), as in the compiled kernel, so the memory stays
    bounded for any number of rows; the gradient is summed over the blocks.
    """
    return _loss_and_grad(params, layout, loss, X, Y, grad, sample_weight)


@_quiet
def _loss_and_grad(params, layout, loss, X, Y, grad, sample_weight, sparse=False):
    _check_layout(layout, params.shape[0], X.shape[1], Y.shape[1])
    if Y.shape[0] != X.shape[0] or X.shape[0] < 1 or grad.shape[0] != params.shape[0]:
        raise ValueError("X, Y and grad do not match")
    _check_sample_weight(sample_weight, X.shape[0], params.dtype)
    weights = None if sample_weight is None else _double(sample_weight)
    weight_sum = X.shape[0] if weights is None else float(weights.sum())
    if not weight_sum > 0:
        raise ValueError("sample_weight sums to 0: the weighted mean loss is undefined")
    rows = block_rows(layout, X.shape[0], sparse=sparse)
    # One block writes its gradient into grad; more are summed there.
    block_grad = grad if rows >= X.shape[0] else np.empty_like(grad)
    network, gradient, total = _Network(params, layout), _Network(block_grad, layout), 0.0
    if block_grad is not grad:
        grad[...] = 0
    for start in range(0, X.shape[0], rows):
        block = slice(start, start + rows)
        block_weights = None if weights is None else weights[block]
        if block_weights is not None and not block_weights.any():
            continue                  # rows of weight 0 count for nothing
        block_loss, outputs, delta = network.loss(Loss(int(loss)), X[block], Y[block],
                                                  block_weights, weight_sum)
        backward_pass(network, outputs, delta, gradient)
        if block_grad is not grad:
            grad += block_grad
        total += block_loss
    return total / weight_sum


# ---------------------------------------------------------------- sparse inputs

def _csr_matrix(params, layout, data, indices, indptr):
    """The CSR rows ``(data, indices, indptr)`` as a scipy matrix, after the kernels' checks.

    Row ``i`` holds ``data[indptr[i]:indptr[i + 1]]`` in the columns
    ``indices[...]`` of the same range; there are ``layout[0, N_IN]``
    columns. A column stored twice in a row counts twice (scipy's rule).
    """
    from scipy.sparse import csr_matrix
    n_features = int(layout[0, N_IN])
    for name, array, dtype in (("data", data, params.dtype), ("indices", indices, np.intp),
                               ("indptr", indptr, np.intp)):
        if (getattr(array, "dtype", None) != dtype or array.ndim != 1
                or not array.flags.c_contiguous):
            raise ValueError(f"{name} must be a C-contiguous 1-D {np.dtype(dtype)} array")
    if indptr.shape[0] < 1 or indptr[0] != 0 or np.any(indptr[1:] < indptr[:-1]):
        raise ValueError("indptr must start at 0 and never decrease")
    if indptr[-1] != indices.shape[0] or indices.shape[0] != data.shape[0]:
        raise ValueError("indptr[-1], len(indices) and len(data) must be equal")
    if indices.shape[0] and (indices.min() < 0 or indices.max() >= n_features):
        raise ValueError(f"indices must lie in 0..{n_features - 1}")
    return csr_matrix((data, indices, indptr), shape=(indptr.shape[0] - 1, n_features),
                      copy=False)


def forward_csr(params, layout, data, indices, indptr, out, block_rows):
    """``forward`` on the CSR rows ``(data, indices, indptr)``."""
    forward(params, layout, _csr_matrix(params, layout, data, indices, indptr), out,
            block_rows)


def evaluate_csr(params, layout, loss, data, indices, indptr, Y, block_rows,
                 sample_weight=None):
    """``evaluate`` on the CSR rows ``(data, indices, indptr)``."""
    return evaluate(params, layout, loss, _csr_matrix(params, layout, data, indices, indptr),
                    Y, block_rows, sample_weight)


def loss_and_grad_csr(params, layout, loss, data, indices, indptr, Y, grad,
                      sample_weight=None):
    """``loss_and_grad`` on the CSR rows ``(data, indices, indptr)``."""
    return _loss_and_grad(params, layout, loss,
                          _csr_matrix(params, layout, data, indices, indptr), Y, grad,
                          sample_weight, sparse=True)
