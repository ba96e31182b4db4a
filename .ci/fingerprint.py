"""Digests of the weights the compiled kernels' own loops train, for CI.

    python .ci/fingerprint.py

The loops of csrc/loops.h run the clone of the CPU (AVX-512, AVX2 or the
baseline). CI prints these digests from the normal build and from one
compiled with CYMLP_BASELINE_ONLY=ON and fails if they differ: every CPU must
compute the same bits. The workloads use only the kernels' own arithmetic
(one row at a time, and products too small for BLAS; sigmoid and relu, MSE;
SGD, momentum, Nesterov, weight decay, Adam), not BLAS or libm, whose
results may differ between CPUs.
"""

import hashlib

import numpy as np

import cymlp

WORKLOADS = [
    # (sizes, batch size, fit options)
    ((30, 5, 3), 1, dict(learning_rate=0.5)),
    ((70, 33, 9), 1, dict(learning_rate=0.2, momentum=0.9, weight_decay=1e-3)),
    ((17, 65, 4), 1, dict(learning_rate=0.1, momentum=0.5, nesterov=True)),
    ((64, 40, 10), 1, dict(optimizer="adam", learning_rate=1e-2, weight_decay=1e-4)),
    ((6, 7, 2), 3, dict(learning_rate=0.3)),
]


def digest(dtype):
    hasher = hashlib.sha256()
    for sizes, batch_size, options in WORKLOADS:
        rng = np.random.default_rng(len(sizes) + sizes[0])
        X = rng.random((40, sizes[0])).astype(dtype)
        Y = rng.random((40, sizes[-1])).astype(dtype)
        net = cymlp.MLP(list(sizes), activation="relu", output_activation="sigmoid",
                        loss="mse", seed=7, dtype=dtype, backend="cython")
        history = net.fit(X, Y, epochs=3, batch_size=batch_size, shuffle=False, **options)
        hasher.update(net.params.tobytes())
        hasher.update(np.array(history.loss).tobytes())
    return hasher.hexdigest()


if __name__ == "__main__":
    for dtype in (np.float64, np.float32):
        print(np.dtype(dtype).name, digest(dtype))
