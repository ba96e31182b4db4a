"""The speed workloads, and each implementation of them, as zero-argument callables.

Shared by the pytest-benchmark suite (``test_speed.py``) and the plain
script (``compare.py``). Every ``*_runner`` returns a function that runs one
epoch (or one inference pass) over ``n_samples`` rows, or None when the
implementation is not installed. PyTorch and NumPy's GEMM are limited to one
thread by the callers' environment (see ``compare.py`` and ``conftest.py``).
"""

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
# Optimizers other than plain SGD (cymlp only, for now: the peers run plain SGD).
OPTIMIZER_OPTIONS = {
    "per-sample momentum 64-64-10": dict(momentum=0.9),
    "per-sample adam 64-64-10": dict(optimizer="adam", learning_rate=1e-3),
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


def data(sizes, n_samples, dtype, seed=0):
    """Inputs in [0, 1) and one-hot targets."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n_samples)]
    return X, Y


def cymlp_runner(backend, workload, dtype):
    if backend not in cymlp.available_backends():
        return None
    sizes, batch_size, n_samples, kind = TRAINING[workload]
    X, Y = data(sizes, n_samples, dtype)
    net = cymlp.MLP(sizes, seed=0, dtype=dtype, backend=backend, **NETWORKS[kind])
    options = {"learning_rate": LEARNING_RATE, **OPTIMIZER_OPTIONS.get(workload, {})}
    return lambda: net.fit(X, Y, epochs=1, batch_size=batch_size, **options)


def _torch_model(torch, sizes, kind, dtype):
    hidden = torch.nn.Sigmoid if kind == "sigmoid" else torch.nn.ReLU
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out), hidden()]
    if kind == "softmax":
        layers.pop()  # CrossEntropyLoss takes the logits
    else:
        layers[-1] = torch.nn.Sigmoid()
    return torch.nn.Sequential(*layers).to(torch.float32 if dtype == np.float32
                                           else torch.float64)


def torch_runner(workload, dtype):
    if workload in OPTIMIZER_OPTIONS:
        return None
    try:
        import torch
    except ImportError:
        return None
    sizes, batch_size, n_samples, kind = TRAINING[workload]
    X, Y = (torch.from_numpy(array) for array in data(sizes, n_samples, dtype))
    model = _torch_model(torch, sizes, kind, dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_function = torch.nn.MSELoss() if kind == "sigmoid" else torch.nn.CrossEntropyLoss()

    def epoch():
        for start in range(0, n_samples, batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(model(X[start:start + batch_size]),
                                 Y[start:start + batch_size])
            loss.backward()
            optimizer.step()
    return epoch


def sklearn_runner(workload, dtype):
    if workload in OPTIMIZER_OPTIONS:
        return None
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    sizes, batch_size, n_samples, kind = TRAINING[workload]
    X, Y = data(sizes, n_samples, dtype)
    labels = Y.argmax(axis=1)
    model = MLPClassifier(hidden_layer_sizes=sizes[1:-1],
                          activation="logistic" if kind == "sigmoid" else "relu",
                          solver="sgd", batch_size=batch_size, learning_rate_init=LEARNING_RATE,
                          momentum=0.0, alpha=0.0, shuffle=False, random_state=0)
    classes = np.arange(sizes[-1])
    return lambda: model.partial_fit(X, labels, classes=classes)


def training_flops(sizes, batch_size, n_samples):
    """Multiply-adds x 2 of the matrix products of one epoch of backprop."""
    per_row = sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    deltas = sum(n_in * n_out for n_in, n_out in zip(sizes[1:-1], sizes[2:]))
    return 2 * n_samples * (2 * per_row + deltas)


def gemm_runner(workload, dtype):
    """Only the matrix products of one epoch, with NumPy's matmul: the ceiling."""
    sizes, batch_size, n_samples, _ = TRAINING[workload]
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


def cymlp_predict_runner(backend, workload, dtype):
    if backend not in cymlp.available_backends():
        return None
    sizes, n_rows = INFERENCE[workload]
    X, _ = data(sizes, n_rows, dtype)
    net = cymlp.MLP(sizes, seed=0, dtype=dtype, backend=backend, **NETWORKS["softmax"])
    return lambda: net.predict(X)


def torch_predict_runner(workload, dtype):
    try:
        import torch
    except ImportError:
        return None
    sizes, n_rows = INFERENCE[workload]
    X = torch.from_numpy(data(sizes, n_rows, dtype)[0])
    model = torch.nn.Sequential(_torch_model(torch, sizes, "softmax", dtype),
                                torch.nn.Softmax(dim=1))

    def run():
        with torch.no_grad():
            return model(X)
    return run


def gemm_predict_runner(workload, dtype):
    sizes, n_rows = INFERENCE[workload]
    rng = np.random.default_rng(0)
    weights = [rng.random((n_in, n_out)).astype(dtype) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    X = data(sizes, n_rows, dtype)[0]
    outs = [np.empty((n_rows, w.shape[1]), dtype) for w in weights]

    def run():
        a = X
        for w, out in zip(weights, outs):
            a = np.matmul(a, w, out=out)
    return run


IMPLEMENTATIONS = ("cymlp cython", "cymlp numpy", "pytorch", "scikit-learn", "numpy gemm only")


def runner(workload, implementation, dtype):
    """(callable, n_samples) for one implementation of a workload, or None."""
    if workload in TRAINING:
        n_samples = TRAINING[workload][2]
        makers = {
            "cymlp cython": lambda: cymlp_runner("cython", workload, dtype),
            "cymlp numpy": lambda: cymlp_runner("numpy", workload, dtype),
            "pytorch": lambda: torch_runner(workload, dtype),
            "scikit-learn": lambda: sklearn_runner(workload, dtype),
            "numpy gemm only": lambda: (gemm_runner(workload, dtype)
                                        if TRAINING[workload][1] > 1 else None),
        }
    else:
        n_samples = INFERENCE[workload][1]
        makers = {
            "cymlp cython": lambda: cymlp_predict_runner("cython", workload, dtype),
            "cymlp numpy": lambda: cymlp_predict_runner("numpy", workload, dtype),
            "pytorch": lambda: torch_predict_runner(workload, dtype),
            "numpy gemm only": lambda: gemm_predict_runner(workload, dtype),
        }
    run = makers[implementation]() if implementation in makers else None
    return None if run is None else (run, n_samples)


def runners(dtype, only=None):
    """{workload: {implementation: (callable, n_samples)}} for every installed one (or ``only``)."""
    table = {}
    for workload in list(TRAINING) + list(INFERENCE):
        entries = {name: runner(workload, name, dtype) for name in IMPLEMENTATIONS
                   if only is None or name in only}
        table[workload] = {name: entry for name, entry in entries.items() if entry}
    return table
