"""Several networks training at once in Python threads.

The compiled kernels release the GIL for whole chunks of an epoch, so two
networks trained in two threads take about the time of one on two cores. The
NumPy backend holds the GIL between its many small NumPy calls and gains less.
"""

import threading

import pytest

from cymlp import MLP

N_SAMPLES = 4000
N_NETWORKS = 2


def _train_all(networks, X, Y, parallel):
    def train(net):
        net.fit(X, Y, epochs=1, batch_size=1, learning_rate=0.01)

    if not parallel:
        for net in networks:
            train(net)
        return
    threads = [threading.Thread(target=train, args=(net,)) for net in networks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("parallel", [False, True], ids=["one after the other", "in threads"])
def test_two_networks(benchmark, make_data, backend, parallel):
    import numpy as np
    X, Y = make_data(N_SAMPLES, 64, 10, np.float64)
    networks = [MLP([64, 64, 10], seed=seed, backend=backend) for seed in range(N_NETWORKS)]
    benchmark.group = f"{N_NETWORKS} networks 64-64-10, per-sample epoch, {backend}"
    benchmark.extra_info["samples"] = N_SAMPLES * N_NETWORKS
    benchmark(_train_all, networks, X, Y, parallel)
