"""One training epoch on a 64-64-10 network per activation and per optimizer.

Each group holds one workload (activation or optimizer, batch size, dtype)
with the backends side by side; ``python benchmarks/ratios.py`` turns a JSON
run into throughput and ratios.
"""

import numpy as np
import pytest

from cymlp import MLP

N_SAMPLES = 2000
ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OPTIMIZERS = {
    "sgd": dict(optimizer="sgd"),
    "momentum": dict(optimizer="sgd", momentum=0.9),
    "nesterov": dict(optimizer="sgd", momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", learning_rate=1e-3),
}


def _epoch(benchmark, make_data, backend, dtype, batch_size, group, activation="relu",
           **fit_options):
    X, Y = make_data(N_SAMPLES, 64, 10, dtype)
    net = MLP([64, 64, 10], activation=activation, output_activation="softmax",
              loss="cross_entropy", seed=0, dtype=dtype, backend=backend)
    fit_options.setdefault("learning_rate", 0.01)
    benchmark.group = f"{group} 64-64-10 batch={batch_size} {np.dtype(dtype).name}"
    benchmark.extra_info["samples"] = N_SAMPLES
    benchmark(net.fit, X, Y, epochs=1, batch_size=batch_size, **fit_options)


@pytest.mark.parametrize("batch_size", [1, 32])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_epoch(benchmark, make_data, backend, dtype, batch_size, activation):
    _epoch(benchmark, make_data, backend, dtype, batch_size, f"activation={activation}",
           activation=activation)


@pytest.mark.parametrize("batch_size", [1, 32])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_optimizer_epoch(benchmark, make_data, backend, dtype, batch_size, optimizer):
    _epoch(benchmark, make_data, backend, dtype, batch_size, f"optimizer={optimizer}",
           **OPTIMIZERS[optimizer])
