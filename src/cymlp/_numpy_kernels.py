"""The NumPy backend: the readable reference for ``csrc/_kernels.pyx``.

Each public function here has a compiled twin of the same name, signature and
semantics; the test suite checks that both give the same numbers. The buffers
(``params``, ``layout``, ``workspace``) are described in ``cymlp/_layout.py``.
The Python layer validates every argument before calling in here.

The network computes, per layer ``l``, ``z = a_prev @ W + b`` and ``a = f(z)``.
Backpropagation starts from ``delta = dLoss/dz`` of the output layer and
walks back with ``delta_prev = (delta @ W.T) * f'(z_prev)``.

This is also the fallback for users without a compiler, so it avoids
allocating: every operation writes into the workspace, whose tail holds
this backend's scratch buffers (``_layout.Scratch``).
"""

import numpy as np

from ._layout import (
    ACTIVATION, ADAM, B_OFFSET, BCE, BETA1, BETA2, CROSS_ENTROPY, EPSILON, IDENTITY,
    LAYOUT_COLUMNS, LEAKY_RELU, LEAKY_SLOPE, LEARNING_RATE, MOMENTUM, MSE, N_HYPERPARAMS,
    N_IN, N_OUT, NESTEROV, RELU, SGD, SIGMOID, SOFTMAX, TANH, TUTORIAL, W_OFFSET,
    WEIGHT_DECAY, Scratch, parameter_count, workspace_capacity, workspace_row_width,
    workspace_views,
)

__all__ = ["forward", "evaluate", "loss_and_grad", "train_epoch"]

# Overflow to inf or NaN is detected and reported by the caller (divergence),
# as in the compiled kernels, so NumPy's floating-point warnings stay off.
_quiet = np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore")


# ---------------------------------------------------------------- activations

def _activate(code, a, scratch):
    """a = f(a) in place."""
    if code == SIGMOID:
        # e = exp(-|z|) never overflows; then 1/(1+e) for z >= 0 and e/(1+e) below.
        negative, denominator = scratch.like(scratch.mask, a), scratch.like(scratch.tmp, a)
        np.less(a, 0, out=negative)
        np.abs(a, out=a)
        np.negative(a, out=a)
        np.exp(a, out=a)
        np.add(a, 1, out=denominator)
        np.divide(a, denominator, out=a, where=negative)
        np.logical_not(negative, out=negative)
        np.divide(1, denominator, out=a, where=negative)
    elif code == TANH:
        # float32 in double, rounded: NumPy's float32 tanh reaches +-1 from
        # |z| = 8 on, the kernels' tanhf (like double) only from 9.01, and where
        # one backend saturates its derivative 1 - a**2 is exactly 0.
        np.tanh(a, out=a, dtype=np.float64)
    elif code == RELU:
        np.maximum(a, 0, out=a)
    elif code == LEAKY_RELU:
        # max(z, slope z) is z above 0 and slope z below.
        scaled = scratch.like(scratch.tmp, a)
        np.multiply(a, a.dtype.type(LEAKY_SLOPE), out=scaled)
        np.maximum(a, scaled, out=a)
    elif code == SOFTMAX:
        a -= a.max(axis=1, keepdims=True)
        np.exp(a, out=a)
        a /= a.sum(axis=1, keepdims=True)
    elif code != IDENTITY:
        raise ValueError(f"unknown activation code {code}")


def _multiply_derivative(code, delta, a, scratch):
    """delta *= f'(z), with f' written in terms of the output a = f(z)."""
    if code == SIGMOID:
        derivative = scratch.like(scratch.tmp, a)
        np.subtract(1, a, out=derivative)
        derivative *= a
        delta *= derivative
    elif code == TANH:
        derivative = scratch.like(scratch.tmp, a)
        np.multiply(a, a, out=derivative)
        np.subtract(1, derivative, out=derivative)
        delta *= derivative
    elif code in (RELU, LEAKY_RELU):
        not_positive = scratch.like(scratch.mask, a)
        np.greater(a, 0, out=not_positive)
        np.logical_not(not_positive, out=not_positive)
        if code == RELU:
            np.copyto(delta, 0, where=not_positive)
        else:
            np.multiply(delta, delta.dtype.type(LEAKY_SLOPE), out=delta, where=not_positive)


# ---------------------------------------------------------------- losses

def _correct(a, y):
    """Rows whose output argmax equals the target argmax (threshold 0.5 for one output)."""
    if a.shape[1] == 1:
        return int(np.count_nonzero((a[:, 0] > 0.5) == (y[:, 0] > 0.5)))
    return int(np.count_nonzero(a.argmax(axis=1) == y.argmax(axis=1)))


def _output_delta(loss_code, activation, a, z, y, delta, scale, scratch):
    """Summed loss of the rows; delta = scale * dLoss/dz per row."""
    width = a.shape[1]
    tmp = scratch.like(scratch.tmp, a)
    if loss_code in (MSE, TUTORIAL):
        np.subtract(a, y, out=delta)
        np.multiply(delta, delta, out=tmp)
        loss = float(tmp.sum(dtype=np.float64)) / width
        if loss_code == TUTORIAL:
            delta *= scale
        else:
            delta *= scale * 2.0
            delta /= width
            if activation == SOFTMAX:
                # Softmax Jacobian: dz_j = a_j (g_j - sum_k g_k a_k), in double
                # and rounded once, as the kernels do (it cancels on tied outputs).
                inner = np.multiply(delta, a, dtype=np.float64).sum(axis=1, keepdims=True)
                wide = np.subtract(delta, inner)
                wide *= a
                np.copyto(delta, wide, casting="same_kind")
            else:
                _multiply_derivative(activation, delta, a, scratch)
    elif loss_code == BCE:
        # On logits: max(z, 0) - z y + log(1 + exp(-|z|)) never overflows.
        np.abs(z, out=tmp)
        np.negative(tmp, out=tmp)
        np.exp(tmp, out=tmp)
        np.log1p(tmp, out=tmp)
        other = scratch.like(scratch.tmp2, a)
        np.maximum(z, 0, out=other)
        tmp += other
        np.multiply(z, y, out=other)
        tmp -= other
        loss = float(tmp.sum(dtype=np.float64)) / width
        np.subtract(a, y, out=delta)
        delta *= scale
        delta /= width
    elif loss_code == CROSS_ENTROPY:
        # -sum y log softmax(z) = sum y (logsumexp(z) - z).
        top = z.max(axis=1, keepdims=True)
        np.subtract(z, top, out=tmp)
        np.exp(tmp, out=tmp)
        log_sum = top + np.log(tmp.sum(axis=1, keepdims=True))
        np.subtract(log_sum, z, out=tmp)
        tmp *= y
        loss = float(tmp.sum(dtype=np.float64))
        # In double and rounded once, as the kernels do: a sum(y) - y cancels
        # where the outputs match the targets.
        wide = np.multiply(a, y.sum(axis=1, keepdims=True, dtype=np.float64))
        wide -= y
        wide *= scale
        np.copyto(delta, wide, casting="same_kind")
    else:
        raise ValueError(f"unknown loss code {loss_code}")
    return loss


# ---------------------------------------------------------------- one batch

def _layer(params, layout, layer):
    """Views of the weights (n_in, n_out) and bias (or None) of one layer."""
    n_in, n_out = layout[layer, N_IN], layout[layer, N_OUT]
    w_offset, b_offset = layout[layer, W_OFFSET], layout[layer, B_OFFSET]
    weights = params[w_offset:w_offset + n_in * n_out].reshape(n_in, n_out)
    bias = params[b_offset:b_offset + n_out] if b_offset >= 0 else None
    return weights, bias


def _forward_batch(params, layout, x, activations, z_out, scratch):
    """Fill activations[1:] (first len(x) rows) for the input rows x."""
    rows = x.shape[0]
    a_prev = x
    for layer in range(layout.shape[0]):
        weights, bias = _layer(params, layout, layer)
        a = activations[layer + 1][:rows]
        np.matmul(a_prev, weights, out=a)
        if bias is not None:
            a += bias
        if z_out is not None and layer == layout.shape[0] - 1:
            z_out[:rows] = a
        _activate(layout[layer, ACTIVATION], a, scratch)
        a_prev = a
    return a_prev


def _loss_batch(params, layout, loss_code, x, y, views, grad, scratch):
    """(summed loss, correct rows) of a batch; with grad, the gradient of its mean.

    ``views`` are the named parts of the workspace (``workspace_views``).
    """
    rows, n_layers = x.shape[0], layout.shape[0]
    activations, z_out, delta_buffer, spare_buffer = views
    a_out = _forward_batch(params, layout, x, activations, z_out, scratch)
    n_out = a_out.shape[1]
    delta = delta_buffer[:rows * n_out].reshape(rows, n_out)
    loss = _output_delta(loss_code, layout[-1, ACTIVATION], a_out, z_out[:rows], y, delta,
                         1.0 / rows, scratch)
    n_correct = _correct(a_out, y)
    if grad is None:
        return loss, n_correct
    for layer in range(n_layers - 1, -1, -1):
        weights, bias = _layer(params, layout, layer)
        grad_weights, grad_bias = _layer(grad, layout, layer)
        a_prev = x if layer == 0 else activations[layer][:rows]
        np.matmul(a_prev.T, delta, out=grad_weights)
        if bias is not None:
            delta.sum(axis=0, out=grad_bias)
        if layer > 0:
            n_in = weights.shape[0]
            spare = spare_buffer[:rows * n_in].reshape(rows, n_in)
            np.matmul(delta, weights.T, out=spare)
            _multiply_derivative(layout[layer - 1, ACTIVATION], spare, a_prev, scratch)
            delta_buffer, spare_buffer = spare_buffer, delta_buffer
            delta = spare
    return loss, n_correct


# ---------------------------------------------------------------- optimizers

def _optimizer_step(optimizer_code, hyperparams, params, grad, state, step, tmp):
    """One update of params from grad, as torch.optim.SGD / torch.optim.Adam do it.

    ``state[0]`` is the momentum buffer (SGD) or first moment (Adam),
    ``state[1]`` the second moment (Adam). ``step`` counts from 1. ``grad``
    and ``tmp`` (as long as params) are used as scratch space.
    """
    learning_rate = hyperparams[LEARNING_RATE]
    weight_decay = hyperparams[WEIGHT_DECAY]
    if weight_decay != 0:
        np.multiply(params, weight_decay, out=tmp)
        grad += tmp
    if optimizer_code == SGD:
        momentum = hyperparams[MOMENTUM]
        if momentum != 0:
            buffer = state[0]
            buffer *= momentum
            buffer += grad
            _flush_subnormals(buffer, tmp)
            if hyperparams[NESTEROV] != 0:
                np.multiply(buffer, momentum, out=tmp)
                grad += tmp
            else:
                np.copyto(grad, buffer)
        grad *= learning_rate
        params -= grad
    elif optimizer_code == ADAM:
        beta1, beta2, eps = hyperparams[BETA1], hyperparams[BETA2], hyperparams[EPSILON]
        step_size = learning_rate / (1.0 - beta1 ** step)
        inverse_correction2 = 1.0 / np.sqrt(1.0 - beta2 ** step)
        first, second = state[0], state[1]
        np.subtract(grad, first, out=tmp)
        tmp *= 1.0 - beta1
        first += tmp
        second *= beta2
        np.multiply(grad, 1.0 - beta2, out=tmp)
        tmp *= grad
        second += tmp
        _flush_subnormals(first, tmp)
        _flush_subnormals(second, tmp)
        np.sqrt(second, out=grad)
        grad *= inverse_correction2   # torch divides; the reciprocal saves a division
        grad += eps
        np.divide(first, grad, out=grad)
        grad *= step_size
        params -= grad
    else:
        raise ValueError(f"unknown optimizer code {optimizer_code}")


def _flush_subnormals(values, tmp):
    """values = 0 where |values| is below the normal range (as the kernels do).

    Optimizer state that decays that far (for parameters whose gradient stays
    0) would make every later step many times slower; it is far below any
    effect on the weights. ``tmp`` is scratch as long as ``values``.
    """
    n, tiny = values.shape[0], np.finfo(values.dtype).tiny
    flags = tmp.view(np.bool_)            # room for two flag vectors of length n
    small, above = flags[:n], flags[n:2 * n]
    np.less(values, tiny, out=small)
    np.greater(values, -tiny, out=above)
    np.logical_and(small, above, out=small)
    np.copyto(values, 0, where=small)


# ---------------------------------------------------------------- entry points

def _check_layout(layout, n_params, n_in, n_out, workspace_len, rows_needed):
    """Capacity (rows) of the workspace; raises if a buffer is too small."""
    if layout.ndim != 2 or layout.shape[1] != LAYOUT_COLUMNS or layout.shape[0] < 1:
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
    if workspace_len < workspace_row_width(layout) * rows_needed + parameter_count(layout):
        raise ValueError("workspace is too small")
    return workspace_capacity(layout, workspace_len)


@_quiet
def forward(params, layout, X, out, workspace):
    """out = f_L(... f_1(X W_1 + b_1) ... W_L + b_L), in blocks of rows."""
    capacity = _check_layout(layout, params.shape[0], X.shape[1], out.shape[1],
                             workspace.shape[0], 1)
    if out.shape[0] != X.shape[0]:
        raise ValueError("out must have one row per row of X")
    activations = workspace_views(workspace, layout, capacity)[0]
    scratch = Scratch(workspace, layout, capacity)
    for start in range(0, X.shape[0], capacity):
        stop = min(start + capacity, X.shape[0])
        out[start:stop] = _forward_batch(params, layout, X[start:stop], activations, None,
                                         scratch)


@_quiet
def evaluate(params, layout, loss_code, X, Y, workspace):
    """(sum over rows of the loss, number of rows classified correctly)."""
    capacity = _check_layout(layout, params.shape[0], X.shape[1], Y.shape[1],
                             workspace.shape[0], 1)
    if Y.shape[0] != X.shape[0]:
        raise ValueError("X and Y must have the same number of rows")
    views = workspace_views(workspace, layout, capacity)
    scratch = Scratch(workspace, layout, capacity)
    total, n_correct = 0.0, 0
    for start in range(0, X.shape[0], capacity):
        stop = min(start + capacity, X.shape[0])
        loss, correct = _loss_batch(params, layout, loss_code, X[start:stop], Y[start:stop],
                                    views, None, scratch)
        total += loss
        n_correct += correct
    return total, n_correct


@_quiet
def loss_and_grad(params, layout, loss_code, X, Y, grad, workspace):
    """grad = d(mean loss over the rows of X)/d params; returns that mean loss."""
    n_rows = X.shape[0]
    capacity = _check_layout(layout, params.shape[0], X.shape[1], Y.shape[1],
                             workspace.shape[0], n_rows)
    if Y.shape[0] != n_rows or n_rows < 1 or grad.shape[0] != params.shape[0]:
        raise ValueError("X, Y and grad do not match")
    views = workspace_views(workspace, layout, capacity)
    scratch = Scratch(workspace, layout, capacity)
    loss, _ = _loss_batch(params, layout, loss_code, X, Y, views, grad, scratch)
    return loss / n_rows


@_quiet
def train_epoch(params, layout, loss_code, X, Y, order, batch_size, optimizer_code,
                hyperparams, state, step, grad, workspace):
    """One optimizer step per batch of ``batch_size`` rows taken from X[order].

    Returns ``(loss_sum, n_correct, rows_done)``: the summed per-row loss and
    the correct classifications of the forward passes before each step, and the
    rows used. A batch whose loss is not finite stops the loop before its step
    is applied, so ``rows_done < len(order)`` signals divergence. ``step[0]``
    counts the optimizer steps taken so far (Adam's t) and is advanced in
    place, so params, state and step stay consistent even if Python is
    interrupted between two batches.
    """
    n_params, n_rows = params.shape[0], order.shape[0]
    capacity = _check_layout(layout, n_params, X.shape[1], Y.shape[1], workspace.shape[0],
                             min(batch_size, n_rows))
    if batch_size < 1 or Y.shape[0] != X.shape[0] or grad.shape[0] != n_params:
        raise ValueError("batch_size, X, Y or grad do not match")
    if state.shape != (2, n_params) or hyperparams.shape[0] != N_HYPERPARAMS or step.shape != (1,):
        raise ValueError("state, hyperparams or step do not match params")
    if n_rows and (order.min() < 0 or order.max() >= X.shape[0]):
        raise ValueError("order holds a row index outside X")
    views = workspace_views(workspace, layout, capacity)
    inputs = views[0][0]
    scratch = Scratch(workspace, layout, capacity)
    total, n_correct, start = 0.0, 0, 0
    while start < n_rows:
        rows = order[start:start + batch_size]
        x, y = inputs[:len(rows)], scratch.targets[:len(rows)]
        np.take(X, rows, axis=0, out=x)
        np.take(Y, rows, axis=0, out=y)
        loss, correct = _loss_batch(params, layout, loss_code, x, y, views, grad, scratch)
        # Judged in the network's precision, as the compiled kernel does.
        if not np.isfinite(params.dtype.type(loss)):
            break
        step[0] += 1
        _optimizer_step(optimizer_code, hyperparams, params, grad, state, int(step[0]),
                        scratch.param_tmp)
        total += loss
        n_correct += correct
        start += len(rows)
    return total, n_correct, start
