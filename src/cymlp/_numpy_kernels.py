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

__all__ = ["Trainer", "evaluate", "forward", "loss_and_grad", "uses_blas"]

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

def n_correct(a, y):
    """Rows whose output class equals the target's (the rule of ``_codes.classify``)."""
    if a.shape[1] == 1:
        return int(np.count_nonzero((a[:, 0] > 0.5) == (y[:, 0] > 0.5)))
    return int(np.count_nonzero(a.argmax(axis=1) == y.argmax(axis=1)))


def _double(x):
    """x in float64 (no copy when it is): the kernels compute losses and deltas in double."""
    return x if x.dtype == np.float64 else x.astype(np.float64)


def loss_and_delta(loss, activation, a, z, y):
    """(summed loss of the rows, dLoss/dz of the batch-mean loss).

    The loss is summed over rows in float64; each row's loss is the mean over
    outputs (mse, bce) or the sum (cross-entropy), as torch's losses define it.
    """
    rows, width = a.shape
    if loss in (Loss.MSE, Loss.TUTORIAL):
        error = a - y
        total = float(np.add.reduce(np.square(error), axis=None, dtype=np.float64)) / width
        if loss == Loss.TUTORIAL:   # the tutorial's a - y, per sample
            return total, (_double(error) * (1.0 / rows)).astype(a.dtype, copy=False)
        delta = (_double(error) * (2.0 / rows) / width).astype(a.dtype, copy=False)
        if activation == Activation.SOFTMAX:
            # Softmax Jacobian: dz_j = a_j (g_j - sum_k g_k a_k).
            inner = (_double(delta) * a).sum(axis=1, keepdims=True)
            return total, (a * (delta - inner)).astype(a.dtype, copy=False)
        return total, backpropagate_through(activation, delta, a)
    z, y = _double(z), _double(y)
    if loss == Loss.BCE:
        # log(1 + exp(z)) - z y, with log(1 + exp(z)) as logaddexp(0, z): no overflow.
        total = float((np.logaddexp(0, z) - z * y).sum()) / width
        return total, ((_double(a) - y) * (1.0 / rows) / width).astype(a.dtype, copy=False)
    if loss == Loss.CROSS_ENTROPY:
        # -sum y log softmax(z) = sum y (logsumexp(z) - z).
        top = z.max(axis=1, keepdims=True)
        log_sum = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
        total = float((y * (log_sum - z)).sum())
        delta = (_double(a) * y.sum(axis=1, keepdims=True) - y) * (1.0 / rows)
        return total, delta.astype(a.dtype, copy=False)
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
    """Write into ``gradient`` (a ``_Network`` over the gradient vector) dLoss/dW, dLoss/db."""
    for layer in range(len(network.weights) - 1, -1, -1):
        a_prev = outputs[layer]
        np.dot(a_prev.T, delta, out=gradient.weights[layer])
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

    def loss(self, loss, x, y):
        """(summed loss, outputs of every layer, output delta)."""
        outputs, z = forward_pass(self.weights, self.biases, self.activations, x)
        total, delta = loss_and_delta(loss, self.activations[-1], outputs[-1], z, y)
        return total, outputs, delta


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

class Trainer:
    """Trains one network on ``(X, Y)``: built once per fit, run over chunks of rows.

    A step is kept only while everything stays finite. A batch whose loss is
    not finite is not stepped on, and the step before it (whose result gave
    that loss) is undone too; a step that would make a parameter or the
    optimizer state inf or NaN is not taken. Undoing goes back to the
    snapshot taken at the start of the run (or of the run before, when the
    step to undo was the last one of that run) and takes the steps after it
    again. The network is left at the last state whose loss was measured
    finite, and ``run`` says how many rows it kept.
    """

    @_quiet
    def __init__(self, params, layout, loss, X, Y, batch_size, optimizer, state, step):
        _check_layout(layout, params.shape[0], X.shape[1], Y.shape[1])
        if batch_size < 1 or Y.shape[0] != X.shape[0] or state.shape != (2, params.shape[0]):
            raise ValueError("batch_size, X, Y or state do not match params")
        if not 0 <= step < 2 ** 62:
            raise ValueError("step must be >= 0 and below 2**62")
        self.params, self.layout, self.X, self.Y, self.state = params, layout, X, Y, state
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
        self._previous = None   # the last run: (snapshot, rows, learning rate)

    @_quiet
    def run(self, order, start, stop):
        """Train on the rows ``X[order[start:stop]]``: ``(loss_sum, n_correct, rows_done)``.

        ``rows_done`` is negative, ``-r``, when the last batch of the
        previous run (``r`` rows) had to be undone.
        """
        if not 0 <= start <= stop <= order.shape[0]:
            raise ValueError("start and stop must satisfy 0 <= start <= stop <= len(order)")
        rows = order[start:stop].copy()
        if rows.size and (rows.min() < 0 or rows.max() >= self.X.shape[0]):
            raise ValueError("order holds a row index outside X")
        if not rows.size:
            return 0.0, 0, 0
        snapshot = (self.params.copy(), self.state.copy(), self.step)
        previous, self._previous = self._previous, (snapshot, rows, self.learning_rate)
        try:
            return self._run(rows, snapshot, previous)
        except BaseException:
            self._previous = None   # an interrupted run is no base for undoing
            raise

    def _run(self, rows, snapshot, previous):
        loss_sum, correct, done, failed_at, loss_failed = self._steps(rows)
        if failed_at is None:
            return loss_sum, correct, done
        if not loss_failed:
            keep = failed_at                      # undo the step that made a value non-finite
        elif failed_at > 0:
            keep = failed_at - self.batch_size    # undo the step whose result gave that loss
        elif previous is not None:
            # The first batch of this run: the step to undo is the previous run's last.
            (params, state, step), previous_rows, previous_rate = previous
            self._restore(params, state, step)
            rate, self.learning_rate = self.learning_rate, previous_rate
            keep = (previous_rows.shape[0] - 1) // self.batch_size * self.batch_size
            self._steps(previous_rows[:keep])
            self.learning_rate = rate
            self._previous = (previous[0], previous_rows[:keep], previous_rate) if keep else None
            return 0.0, 0, keep - previous_rows.shape[0]
        else:
            self._previous = None
            return 0.0, 0, 0                      # the first batch of the fit: nothing to undo
        self._restore(*snapshot)
        loss_sum, correct, done, _, _ = self._steps(rows[:keep])
        self._previous = (snapshot, rows[:keep], self.learning_rate) if keep else None
        return loss_sum, correct, done

    def evaluate(self, X, Y):
        """(summed loss, rows classified correctly) of the network now on ``(X, Y)``."""
        return evaluate(self.params, self.layout, self.loss, X, Y,
                        block_rows(self.layout, X.shape[0]))

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
        """One step per batch of ``X[rows]``: (loss_sum, n_correct, rows_done, failed_at, loss_failed).

        Stops at the batch whose loss is not finite (``loss_failed``; its step
        is not taken) or whose step would make a value non-finite;
        ``failed_at`` is where that batch starts (None if none did).
        """
        hyper = (self.learning_rate,) + self._settings
        X, Y, network, finite = self.X, self.Y, self._network, self._finite
        # The outputs of each batch's forward pass: classified once, at the end.
        outputs_seen = np.empty((rows.shape[0], Y.shape[1]), dtype=self.params.dtype)
        loss_sum, done, failed_at, loss_failed = 0.0, 0, None, False
        for begin in range(0, rows.shape[0], self.batch_size):
            if self.batch_size == 1:   # a view: cheaper than gathering one row
                row = int(rows[begin])
                x, y, count = X[row:row + 1], Y[row:row + 1], 1
            else:
                batch = rows[begin:begin + self.batch_size]
                x, y, count = X[batch], Y[batch], batch.shape[0]
            batch_loss, outputs, delta = network.loss(self.loss, x, y)
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
        correct = n_correct(outputs_seen[:done], Y[rows[:done]]) if done else 0
        return loss_sum, correct, done, failed_at, loss_failed


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
def evaluate(params, layout, loss, X, Y, block_rows):
    """(sum over rows of the loss, number of rows classified correctly)."""
    _check_layout(layout, params.shape[0], X.shape[1], Y.shape[1])
    if Y.shape[0] != X.shape[0] or block_rows < 1:
        raise ValueError("X and Y must have the same number of rows, and block_rows >= 1")
    network, total, correct = _Network(params, layout), 0.0, 0
    for start in range(0, X.shape[0], block_rows):
        stop = start + block_rows
        block_loss, outputs, _ = network.loss(Loss(int(loss)), X[start:stop], Y[start:stop])
        total += block_loss
        correct += n_correct(outputs[-1], Y[start:stop])
    return total, correct


@_quiet
def loss_and_grad(params, layout, loss, X, Y, grad):
    """grad = d(mean loss over the rows of X)/d params; returns that mean loss."""
    _check_layout(layout, params.shape[0], X.shape[1], Y.shape[1])
    if Y.shape[0] != X.shape[0] or X.shape[0] < 1 or grad.shape[0] != params.shape[0]:
        raise ValueError("X, Y and grad do not match")
    network = _Network(params, layout)
    total, outputs, delta = network.loss(Loss(int(loss)), X, Y)
    backward_pass(network, outputs, delta, _Network(grad, layout))
    return total / X.shape[0]
