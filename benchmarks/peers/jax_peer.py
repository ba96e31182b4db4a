"""JAX: one ``jax.jit`` per epoch, a ``lax.scan`` over its batches (or rows), one thread.

The epoch is compiled ahead of time (``jit(...).lower(...).compile()``) when
the runner is made, so the timed call runs compiled code only; it donates
the parameters and optimizer state, so XLA may update them in place. A
last, partial batch (when the rows do not divide into batches) is one more
compiled step. Per sample, the rows are vectors and the weight gradients
outer products. float64 needs ``jax_enable_x64``, set here before any array
is made. ``XLA_FLAGS`` asks for one thread (set here too, when the caller
has not, before jax is imported), but that no longer suffices: see
``_start_on_one_core``.

Gradients are written by hand (``GRADIENTS = "by hand"``); ``jax.grad`` of
the loss (``"jax.grad"``) computes the same weights at the same speed,
within the noise of this machine, on every workload.
"""

import os

os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

jax.config.update("jax_enable_x64", True)


def _start_on_one_core():
    """Start XLA's CPU client with its thread pool on one core.

    XLA_FLAGS no longer keep XLA's CPU runtime on one thread (its thread
    pool still splits the work: twice the CPU time of the wall time on two
    cores), but its threads keep the CPU affinity of the thread that made
    them. So the client is made while this thread is pinned to one core,
    and this thread gets its own affinity back afterwards. (``compare.py``
    pins the whole process, which makes this a no-op.)
    """
    if not hasattr(os, "sched_setaffinity"):
        return
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        jax.devices("cpu")
    finally:
        os.sched_setaffinity(0, cores)


_start_on_one_core()

GRADIENTS = "by hand"


def train_runner(spec, X, Y, start):
    if spec.optimizer not in ("sgd", "adam"):
        raise NotImplementedError(f"jax peer: no {spec.optimizer} optimizer")
    step = _step(spec)
    n_full = X.shape[0] // spec.batch_size * spec.batch_size
    # Per sample, the rows are vectors (outer products instead of 1-row GEMMs).
    shape = ((-1,) if spec.batch_size == 1 else (-1, spec.batch_size))
    X_batches = jnp.asarray(X[:n_full].reshape(shape + X.shape[1:]))
    Y_batches = jnp.asarray(Y[:n_full].reshape(shape + Y.shape[1:]))
    X_rest, Y_rest = jnp.asarray(X[n_full:]), jnp.asarray(Y[n_full:])
    state = [_initial_state(spec, start)]
    # Unrolling the loop over rows by a few steps saves XLA's per-iteration
    # overhead per sample (1.3-1.5x with SGD, measured; 2 for Adam's bigger
    # body); on mini-batches it gains nothing.
    unroll = 1 if spec.batch_size > 1 else 4 if spec.optimizer == "sgd" else 2

    def epoch_of_batches(state, X_batches, Y_batches):
        return lax.scan(lambda state, xy: (step(state, *xy), None),
                        state, (X_batches, Y_batches), unroll=unroll)[0]

    compiled_epoch = (jax.jit(epoch_of_batches, donate_argnums=0)
                      .lower(state[0], X_batches, Y_batches).compile())
    compiled_rest = (jax.jit(step, donate_argnums=0).lower(state[0], X_rest, Y_rest).compile()
                     if X_rest.shape[0] else None)

    def epoch():
        new = compiled_epoch(state[0], X_batches, Y_batches)
        if compiled_rest is not None:
            new = compiled_rest(new, X_rest, Y_rest)
        state[0] = jax.block_until_ready(new)
        params = state[0][0]
        return list(zip(params[0::2], params[1::2]))
    return epoch


def predict_runner(X, start):
    params = [jnp.asarray(array) for pair in start for array in pair]
    X = jnp.asarray(X)
    compiled = (jax.jit(lambda params, X: _forward(params, X, "softmax")[-1])
                .lower(params, X).compile())
    return lambda: compiled(params, X).block_until_ready()


# ---------------------------------------------------------------- the network
# Parameters are a flat list [W_1, b_1, W_2, b_2, ...]; so are gradients and moments.

def _forward(params, x, kind):
    """[x, a_1, ..., a_L]: sigmoid layers, or relu layers and a softmax output."""
    acts = [x]
    n_layers = len(params) // 2
    for layer in range(n_layers):
        z = acts[-1] @ params[2 * layer] + params[2 * layer + 1]
        if kind == "sigmoid":
            acts.append(jax.nn.sigmoid(z))
        elif layer < n_layers - 1:
            acts.append(jnp.maximum(z, 0))
        else:
            acts.append(jax.nn.softmax(z, axis=-1))
    return acts


def _loss(params, x, y, kind):
    """MSE (mean over rows and outputs) or cross-entropy (mean over rows)."""
    if kind == "sigmoid":
        return jnp.mean(jnp.square(_forward(params, x, kind)[-1] - y))
    z = x
    for layer in range(len(params) // 2 - 1):
        z = jnp.maximum(z @ params[2 * layer] + params[2 * layer + 1], 0)
    logits = z @ params[-2] + params[-1]
    rows = x.shape[0] if x.ndim > 1 else 1
    return -jnp.sum(y * jax.nn.log_softmax(logits, axis=-1)) / rows


def _gradients_by_hand(params, x, y, kind):
    """[dLoss/dW_1, dLoss/db_1, ...] by backpropagation; x is one row (a vector) or a batch."""
    acts = _forward(params, x, kind)
    a = acts[-1]
    rows = x.shape[0] if x.ndim > 1 else 1
    if kind == "sigmoid":
        delta = (a - y) * (2 / (rows * a.shape[-1])) * (a * (1 - a))
    else:
        delta = (a - y) / rows
    grads = []
    for layer in range(len(params) // 2 - 1, -1, -1):
        a_prev = acts[layer]
        if x.ndim == 1:
            grads += [delta, jnp.outer(a_prev, delta)]
        else:
            grads += [delta.sum(axis=0), a_prev.T @ delta]
        if layer > 0:
            back = delta @ params[2 * layer].T
            delta = back * (a_prev * (1 - a_prev)) if kind == "sigmoid" else back * (a_prev > 0)
    return grads[::-1]


def _gradients(params, x, y, kind):
    if GRADIENTS == "jax.grad":
        return jax.grad(_loss)(params, x, y, kind)
    return _gradients_by_hand(params, x, y, kind)


# ---------------------------------------------------------------- optimizers

def _initial_state(spec, start):
    params = [jnp.asarray(array) for pair in start for array in pair]
    if spec.optimizer == "sgd":
        return (params,)
    return (params, [jnp.zeros_like(p) for p in params], [jnp.zeros_like(p) for p in params],
            jnp.zeros((), jnp.int64))


def _step(spec):
    """The optimizer step, state -> state, for one batch (x, y)."""
    kind, learning_rate = spec.kind, spec.learning_rate
    if spec.optimizer == "sgd":
        def sgd(state, x, y):
            params = state[0]
            grads = _gradients(params, x, y, kind)
            return ([p - learning_rate * g for p, g in zip(params, grads)],)
        return sgd
    beta1, beta2 = spec.betas
    eps = spec.eps

    def adam(state, x, y):
        """torch.optim.Adam: moments m and v, bias-corrected by the step count t."""
        params, first, second, t = state
        t = t + 1
        dtype = params[0].dtype
        # The corrections in double, then rounded, as torch computes them.
        step_size = (learning_rate / (1 - beta1 ** t.astype(np.float64))).astype(dtype)
        correction2 = jnp.sqrt(1 - beta2 ** t.astype(np.float64)).astype(dtype)
        grads = _gradients(params, x, y, kind)
        first = [m + (1 - beta1) * (g - m) for m, g in zip(first, grads)]
        second = [beta2 * v + (1 - beta2) * g * g for v, g in zip(second, grads)]
        params = [p - step_size * (m / (jnp.sqrt(v) / correction2 + eps))
                  for p, m, v in zip(params, first, second)]
        return params, first, second, t
    return adam
