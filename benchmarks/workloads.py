"""The speed workloads, and each implementation of them, as zero-argument callables.

Shared by the pytest-benchmark suite (``test_speed.py``), the plain script
(``compare.py``) and the agreement check (``test_peer_agreement.py``).
``runner`` returns an ``Entry``: a function that runs one epoch (or one
inference pass) over ``n_samples`` rows, or the reason it cannot run here.
Every training implementation starts from the same weights (those of
``cymlp.MLP(seed=0)``) and visits the rows in order, so after one epoch they
all hold the same weights (checked by ``test_peer_agreement.py``). The peers
live in ``peers/``; they and BLAS are limited to one thread by the callers'
environment (see ``compare.py`` and ``conftest.py``).
"""

import importlib
from collections import namedtuple

import numpy as np

import cymlp

# name: (layer sizes, batch size, rows per epoch, network options)
TRAINING = {
    "per-sample 30-5-3": ((30, 5, 3), 1, 3000, "sigmoid"),
    "per-sample 64-32-10": ((64, 32, 10), 1, 2000, "sigmoid"),
    "per-sample 784-128-10": ((784, 128, 10), 1, 400, "sigmoid"),
    "batch-64 784-256-128-10 sigmoid/mse": ((784, 256, 128, 10), 64, 3200, "sigmoid"),
    "batch-64 784-256-128-10 relu/softmax/ce": ((784, 256, 128, 10), 64, 3200, "softmax"),
}
# Optimizers other than plain SGD (torch.optim.SGD / torch.optim.Adam semantics).
OPTIMIZER_OPTIONS = {
    "per-sample momentum 64-64-10": dict(momentum=0.9),
    "per-sample adam 64-64-10": dict(optimizer="adam", learning_rate=1e-3,
                                     betas=(0.9, 0.999), eps=1e-8),
}
TRAINING.update({
    "per-sample momentum 64-64-10": ((64, 64, 10), 1, 2000, "sigmoid"),
    "per-sample adam 64-64-10": ((64, 64, 10), 1, 2000, "sigmoid"),
})
INFERENCE = {"inference 10000 rows 784-256-128-10": ((784, 256, 128, 10), 10000)}

NETWORKS = {
    "sigmoid": dict(activation="sigmoid", output_activation="sigmoid", loss="mse"),
    "softmax": dict(activation="relu", output_activation="softmax", loss="cross_entropy"),
}
LEARNING_RATE = 0.01

# What a peer needs to know of a training workload. kind "sigmoid": sigmoid
# hidden and output layers, MSE (mean over rows and outputs); "softmax": relu
# hidden layers, softmax output, cross-entropy (mean over rows). optimizer:
# "sgd" (plain), "momentum" (SGD, momentum 0.9) or "adam".
Workload = namedtuple("Workload", "sizes batch_size kind optimizer learning_rate momentum "
                                  "betas eps")


def spec(workload):
    """The ``Workload`` of a training workload's name."""
    sizes, batch_size, _, kind = TRAINING[workload]
    options = OPTIMIZER_OPTIONS.get(workload, {})
    optimizer = options.get("optimizer", "momentum" if "momentum" in options else "sgd")
    return Workload(sizes, batch_size, kind, optimizer,
                    options.get("learning_rate", LEARNING_RATE), options.get("momentum", 0.0),
                    options.get("betas", (0.9, 0.999)), options.get("eps", 1e-8))


def data(sizes, n_samples, dtype, seed=0):
    """Inputs in [0, 1) and one-hot targets."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n_samples)]
    return X, Y


def start_params(sizes, kind, dtype):
    """``[(W, b), ...]``: the initial weights of ``cymlp.MLP(sizes, seed=0)``, copied."""
    net = cymlp.MLP(sizes, seed=0, dtype=dtype, backend="numpy", **NETWORKS[kind])
    return [(W.copy(), b.copy()) for W, b in zip(net.weights, net.biases)]


# ---------------------------------------------------------------- cymlp

def cymlp_runner(backend, workload, X, Y):
    sizes, batch_size, _, kind = TRAINING[workload]
    net = cymlp.MLP(sizes, seed=0, dtype=X.dtype.type, backend=backend, **NETWORKS[kind])
    options = {"learning_rate": LEARNING_RATE, **OPTIMIZER_OPTIONS.get(workload, {})}
    params = list(zip(net.weights, net.biases))

    def epoch():
        net.fit(X, Y, epochs=1, batch_size=batch_size, shuffle=False, **options)
        return params
    return epoch


def cymlp_predict_runner(backend, X, start):
    sizes = [start[0][0].shape[0]] + [W.shape[1] for W, _ in start]
    net = cymlp.MLP(sizes, seed=0, dtype=X.dtype.type, backend=backend, **NETWORKS["softmax"])
    return lambda: net.predict(X)


# ---------------------------------------------------------------- the ceiling

def training_flops(sizes, batch_size, n_samples):
    """Multiply-adds x 2 of the matrix products of one epoch of backprop."""
    per_row = sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    deltas = sum(n_in * n_out for n_in, n_out in zip(sizes[1:-1], sizes[2:]))
    return 2 * n_samples * (2 * per_row + deltas)


def gemm_runner(workload, X):
    """Only the matrix products of one epoch, with NumPy's matmul: the ceiling."""
    sizes, batch_size, _, _ = TRAINING[workload]
    n_samples, dtype = X.shape[0], X.dtype
    rng = np.random.default_rng(0)
    weights = [rng.random((n_in, n_out)).astype(dtype) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    acts = [rng.random((batch_size, width)).astype(dtype) for width in sizes]
    grads = [np.empty_like(w) for w in weights]
    deltas = [np.empty((batch_size, width), dtype) for width in sizes]

    def epoch():
        for _ in range(0, n_samples, batch_size):
            for layer, w in enumerate(weights):
                np.matmul(acts[layer], w, out=acts[layer + 1])
            for layer in range(len(weights) - 1, -1, -1):
                np.matmul(acts[layer].T, acts[layer + 1], out=grads[layer])
                if layer > 0:
                    np.matmul(acts[layer + 1], weights[layer].T, out=deltas[layer])
    return epoch


def gemm_predict_runner(X, start):
    outs = [np.empty((X.shape[0], W.shape[1]), X.dtype) for W, _ in start]

    def run():
        a = X
        for (W, _), out in zip(start, outs):
            a = np.matmul(a, W, out=out)
        return a
    return run


# ---------------------------------------------------------------- every implementation

# name: (module in peers/ (None: here), the library it needs)
IMPLEMENTATIONS = {
    "cymlp cython": (None, None),
    "cymlp numpy": (None, None),
    "numba": ("numba_peer", "numba"),
    "jax": ("jax_peer", "jax"),
    "torch.compile": ("torch_compile_peer", "torch"),
    "pytorch": ("torch_peer", "torch"),
    "scikit-learn": ("sklearn_peer", "scikit-learn"),
    "numpy tutorial": ("tutorial_peer", None),
    "numpy gemm only": (None, None),
}
# Where an implementation computes something else than cymlp, the table says what.
NOTES = {
    ("scikit-learn", "sigmoid"): "softmax/log-loss output (MLPClassifier's only one)",
}

Entry = namedtuple("Entry", "run n_samples note")


def runner(workload, implementation, dtype, n_samples=None):
    """The ``Entry`` of one implementation of a workload, or None where it does not apply.

    ``Entry.run`` is None when the implementation cannot run here (its
    library is not installed); ``Entry.note`` then says why. ``n_samples``
    replaces the workload's number of rows (the agreement test uses few).
    """
    if workload in TRAINING:
        sizes, _, rows, kind = TRAINING[workload]
    else:
        (sizes, rows), kind = INFERENCE[workload], "softmax"
    n_samples = rows if n_samples is None else n_samples
    note = NOTES.get((implementation, kind), "")
    module_name, library = IMPLEMENTATIONS[implementation]
    if module_name is None:
        module = None
    else:
        try:
            module = importlib.import_module(f"peers.{module_name}")
        except ImportError as error:
            return Entry(None, n_samples, f"{library} is not installed ({error})")
    if implementation == "cymlp numpy" and "numpy" not in cymlp.available_backends():
        return Entry(None, n_samples, "the NumPy backend is not available")
    if implementation == "cymlp cython" and "cython" not in cymlp.available_backends():
        return Entry(None, n_samples, "the compiled backend is not built")
    X, Y = data(sizes, n_samples, dtype)
    start = start_params(sizes, kind, dtype)
    try:
        run = (_training(workload, implementation, module, X, Y, start) if workload in TRAINING
               else _inference(implementation, module, X, start))
    except NotImplementedError:
        return None
    return Entry(run, n_samples, note)


def _training(workload, implementation, module, X, Y, start):
    if implementation.startswith("cymlp"):
        return cymlp_runner(implementation.split()[1], workload, X, Y)
    if implementation == "numpy gemm only":
        if TRAINING[workload][1] == 1:
            raise NotImplementedError("the per-sample products are not GEMMs")
        return gemm_runner(workload, X)
    return module.train_runner(spec(workload), X, Y, start)


def _inference(implementation, module, X, start):
    if implementation.startswith("cymlp"):
        return cymlp_predict_runner(implementation.split()[1], X, start)
    if implementation == "numpy gemm only":
        return gemm_predict_runner(X, start)
    if not hasattr(module, "predict_runner"):
        raise NotImplementedError(f"{implementation} has no inference runner")
    return module.predict_runner(X, start)

