"""numba: the workloads as hand-written ``@njit`` loops, one thread, fastmath off.

Per-sample training (batch 1) is explicit loops over the rows, the layers
and the units, updating each weight as soon as its gradient is known: no
arrays are allocated and no BLAS is called per sample. Mini-batches call
``np.dot`` (BLAS, through SciPy) for the matrix products, into buffers
allocated once, and loop over the elements for the rest. fastmath stays off
so that the sums are taken in the order written and the weights agree with
cymlp's to rounding.

Parameters are tuples of arrays, one per layer (numba indexes a tuple of
arrays of one type with a loop variable).
"""

import math

import numpy as np
from numba import njit


def train_runner(spec, X, Y, start):
    weights = tuple(W.copy() for W, _ in start)
    biases = tuple(b.copy() for _, b in start)
    params = list(zip(weights, biases))
    learning_rate = X.dtype.type(spec.learning_rate)
    if spec.batch_size == 1 and spec.kind == "sigmoid" and spec.optimizer == "sgd":
        vectors = tuple(np.empty(W.shape[1], X.dtype) for W in weights)
        kernel = sgd_per_sample
        args = (weights, biases, vectors, tuple(map(np.empty_like, vectors)), learning_rate)
    elif spec.batch_size == 1 and spec.kind == "sigmoid" and spec.optimizer == "adam":
        vectors = tuple(np.empty(W.shape[1], X.dtype) for W in weights)
        zeros = [tuple(map(np.zeros_like, arrays)) for arrays in (weights, weights, biases, biases)]
        step = np.zeros(1, np.int64)   # Adam's step count, carried from epoch to epoch
        kernel = adam_per_sample
        args = (weights, biases, vectors, tuple(map(np.empty_like, vectors)), *zeros, step,
                spec.learning_rate, *spec.betas, spec.eps)
    elif spec.optimizer == "sgd":
        rows = min(spec.batch_size, X.shape[0])
        buffers = tuple(np.empty((rows, W.shape[1]), X.dtype) for W in weights)
        kernel = sgd_batches
        args = (weights, biases, buffers, tuple(map(np.empty_like, buffers)),
                tuple(map(np.empty_like, weights)), spec.batch_size, learning_rate,
                spec.kind == "softmax")
    else:
        raise NotImplementedError(f"numba peer: no kernel for {spec}")
    kernel(X[:0], Y[:0], *args)   # compiles (or loads from the cache); no rows, no change

    def epoch():
        kernel(X, Y, *args)
        return params
    return epoch


def predict_runner(X, start):
    weights = tuple(W.copy() for W, _ in start)
    biases = tuple(b.copy() for _, b in start)
    block = min(X.shape[0], 512)
    acts = tuple(np.empty((block, W.shape[1]), X.dtype) for W in weights)
    out = np.empty((X.shape[0], weights[-1].shape[1]), X.dtype)
    forward_relu_softmax(X[:0], weights, biases, acts, out[:0])   # compile

    def run():
        forward_relu_softmax(X, weights, biases, acts, out)
        return out
    return run


# ---------------------------------------------------------------- per sample, sigmoid, MSE

@njit(cache=True, error_model="numpy")
def _sigmoid(z):
    return 1 / (1 + math.exp(-z))


@njit(cache=True, error_model="numpy")
def _forward_sigmoid_row(x, weights, biases, acts):
    """acts[l] = sigmoid(a @ W_l + b_l), where a is the row x for l = 0 and acts[l - 1] after."""
    for layer in range(len(weights)):
        W, b, a = weights[layer], biases[layer], acts[layer]
        a_prev = x if layer == 0 else acts[layer - 1]
        for j in range(W.shape[1]):
            a[j] = b[j]
        for i in range(W.shape[0]):
            a_i = a_prev[i]
            for j in range(W.shape[1]):
                a[j] += a_i * W[i, j]
        for j in range(W.shape[1]):
            a[j] = _sigmoid(a[j])


@njit(cache=True, error_model="numpy")
def _output_delta_mse_sigmoid(a, y, delta):
    """delta = dLoss/dz of the mean-over-outputs squared error, sigmoid outputs."""
    one = a.dtype.type(1)
    scale = a.dtype.type(2 / a.shape[0])
    for j in range(a.shape[0]):
        delta[j] = scale * (a[j] - y[j]) * (a[j] * (one - a[j]))


@njit(cache=True, error_model="numpy")
def _delta_before(W, delta, a_prev, delta_prev):
    """delta_prev = (W @ delta) * sigmoid'(z_prev), from the weights before their update."""
    one = W.dtype.type(1)
    for i in range(W.shape[0]):
        total = W.dtype.type(0)
        for j in range(W.shape[1]):
            total += W[i, j] * delta[j]
        delta_prev[i] = total * (a_prev[i] * (one - a_prev[i]))


@njit(cache=True, error_model="numpy")
def sgd_per_sample(X, Y, weights, biases, acts, deltas, learning_rate):
    """One epoch of plain SGD, one row per step: W -= lr a_prev^T delta, b -= lr delta."""
    n_layers = len(weights)
    for row in range(X.shape[0]):
        x = X[row]
        _forward_sigmoid_row(x, weights, biases, acts)
        _output_delta_mse_sigmoid(acts[n_layers - 1], Y[row], deltas[n_layers - 1])
        for layer in range(n_layers - 1, -1, -1):
            W, b, delta = weights[layer], biases[layer], deltas[layer]
            a_prev = x if layer == 0 else acts[layer - 1]
            if layer > 0:
                _delta_before(W, delta, a_prev, deltas[layer - 1])
            for i in range(W.shape[0]):
                step = learning_rate * a_prev[i]
                for j in range(W.shape[1]):
                    W[i, j] -= step * delta[j]
            for j in range(W.shape[1]):
                b[j] -= learning_rate * delta[j]


@njit(cache=True, error_model="numpy")
def _adam_update(p, m, v, g, keep1, beta2, keep2, step_size, correction2, eps):
    """torch.optim.Adam on one parameter: (p, m, v) after a step with the gradient g.

    keep1, keep2 are 1 - beta1 and 1 - beta2, rounded to the parameters' type as torch does.
    """
    m = m + keep1 * (g - m)
    v = beta2 * v + keep2 * g * g
    return p - step_size * (m / (math.sqrt(v) / correction2 + eps)), m, v


@njit(cache=True, error_model="numpy")
def adam_per_sample(X, Y, weights, biases, acts, deltas, first, second, first_b, second_b,
                    step, learning_rate, beta1, beta2, eps):
    """One epoch of Adam, one row per step, each weight's gradient used where it is made."""
    dtype = X.dtype.type
    keep1, keep2, beta2_, eps_ = dtype(1 - beta1), dtype(1 - beta2), dtype(beta2), dtype(eps)
    n_layers = len(weights)
    for row in range(X.shape[0]):
        step[0] += 1
        t = step[0]
        # The bias corrections in double, then rounded, as torch computes them.
        step_size = dtype(learning_rate / (1 - beta1 ** t))
        correction2 = dtype(math.sqrt(1 - beta2 ** t))
        x = X[row]
        _forward_sigmoid_row(x, weights, biases, acts)
        _output_delta_mse_sigmoid(acts[n_layers - 1], Y[row], deltas[n_layers - 1])
        for layer in range(n_layers - 1, -1, -1):
            W, b, delta = weights[layer], biases[layer], deltas[layer]
            m, v, m_b, v_b = first[layer], second[layer], first_b[layer], second_b[layer]
            a_prev = x if layer == 0 else acts[layer - 1]
            if layer > 0:
                _delta_before(W, delta, a_prev, deltas[layer - 1])
            for i in range(W.shape[0]):
                a_i = a_prev[i]
                for j in range(W.shape[1]):
                    W[i, j], m[i, j], v[i, j] = _adam_update(
                        W[i, j], m[i, j], v[i, j], a_i * delta[j], keep1, beta2_, keep2,
                        step_size, correction2, eps_)
            for j in range(W.shape[1]):
                b[j], m_b[j], v_b[j] = _adam_update(b[j], m_b[j], v_b[j], delta[j], keep1,
                                                    beta2_, keep2, step_size, correction2, eps_)


# ---------------------------------------------------------------- mini-batches, np.dot

@njit(cache=True, error_model="numpy")
def _activate(z, b, is_output, relu_softmax):
    """z += b, then the layer's activation in place: relu/softmax or sigmoid."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
    if is_output and relu_softmax:
        for r in range(z.shape[0]):
            top = z[r, 0]
            for j in range(1, z.shape[1]):
                top = max(top, z[r, j])
            total = z.dtype.type(0)
            for j in range(z.shape[1]):
                z[r, j] = math.exp(z[r, j] - top)
                total += z[r, j]
            for j in range(z.shape[1]):
                z[r, j] /= total
    elif relu_softmax:
        zero = z.dtype.type(0)
        for r in range(z.shape[0]):
            for j in range(z.shape[1]):
                z[r, j] = max(z[r, j], zero)
    else:
        for r in range(z.shape[0]):
            for j in range(z.shape[1]):
                z[r, j] = _sigmoid(z[r, j])


@njit(cache=True, error_model="numpy")
def sgd_batches(X, Y, weights, biases, acts, deltas, grads, batch_size, learning_rate,
                softmax_ce):
    """One epoch of plain SGD on mini-batches (the last one may be partial).

    softmax_ce: relu hidden layers, softmax output, cross-entropy; otherwise
    sigmoid everywhere and MSE.
    """
    n_layers = len(weights)
    one = X.dtype.type(1)
    for start in range(0, X.shape[0], batch_size):
        stop = min(start + batch_size, X.shape[0])
        rows = stop - start
        x = X[start:stop]
        for layer in range(n_layers):
            a_prev = x if layer == 0 else acts[layer - 1][:rows]
            z = acts[layer][:rows]
            np.dot(a_prev, weights[layer], z)
            _activate(z, biases[layer], layer == n_layers - 1, softmax_ce)
        a, y, delta = acts[n_layers - 1][:rows], Y[start:stop], deltas[n_layers - 1][:rows]
        if softmax_ce:
            scale = X.dtype.type(1 / rows)
            for r in range(rows):
                for j in range(a.shape[1]):
                    delta[r, j] = scale * (a[r, j] - y[r, j])
        else:
            scale = X.dtype.type(2 / (rows * a.shape[1]))
            for r in range(rows):
                for j in range(a.shape[1]):
                    delta[r, j] = scale * (a[r, j] - y[r, j]) * (a[r, j] * (one - a[r, j]))
        for layer in range(n_layers - 1, -1, -1):
            W, b, grad = weights[layer], biases[layer], grads[layer]
            delta = deltas[layer][:rows]
            a_prev = x if layer == 0 else acts[layer - 1][:rows]
            np.dot(a_prev.T, delta, grad)
            if layer > 0:
                delta_prev = deltas[layer - 1][:rows]
                np.dot(delta, W.T, delta_prev)
                for r in range(rows):
                    for i in range(delta_prev.shape[1]):
                        if softmax_ce:
                            if a_prev[r, i] <= 0:
                                delta_prev[r, i] = 0
                        else:
                            delta_prev[r, i] *= a_prev[r, i] * (one - a_prev[r, i])
            for i in range(W.shape[0]):
                for j in range(W.shape[1]):
                    W[i, j] -= learning_rate * grad[i, j]
            for j in range(W.shape[1]):
                total = X.dtype.type(0)
                for r in range(rows):
                    total += delta[r, j]
                b[j] -= learning_rate * total


@njit(cache=True, error_model="numpy")
def forward_relu_softmax(X, weights, biases, acts, out):
    """out = softmax(... relu(X W_1 + b_1) ... W_L + b_L), a block of rows at a time."""
    n_layers = len(weights)
    block = acts[0].shape[0]
    for start in range(0, X.shape[0], block):
        stop = min(start + block, X.shape[0])
        rows = stop - start
        for layer in range(n_layers):
            a_prev = X[start:stop] if layer == 0 else acts[layer - 1][:rows]
            z = out[start:stop] if layer == n_layers - 1 else acts[layer][:rows]
            np.dot(a_prev, weights[layer], z)
            _activate(z, biases[layer], layer == n_layers - 1, True)
