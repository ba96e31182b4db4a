"""The tutorial's own NumPy code, per sample, with the workload's biases and MSE gradient.

The loop of ``test_per_sample.py``'s ``test_tutorial_train_plain_numpy``
(rows as ``(1, n)`` arrays, ``x.dot(w)``, new arrays every step), changed
only where the workload differs from the tutorial: each layer has a bias,
and the output delta is that of the MSE (mean over the outputs) through the
sigmoid, ``(a2 - y) * 2 / n_out * a2 * (1 - a2)``, where the tutorial uses
``a2 - y``. So it computes cymlp's weights: one hidden layer, plain SGD,
batch size 1. It is the naive baseline, not a tuned peer.
"""

import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def train(x, Y, w1, b1, w2, b2, alpha):
    """One epoch over the rows ``x[i]`` (each of shape (1, n_in))."""
    for i in range(len(x)):
        a1 = sigmoid(x[i].dot(w1) + b1)
        a2 = sigmoid(a1.dot(w2) + b2)
        d2 = np.multiply((a2 - Y[i]) * (2 / a2.shape[1]), np.multiply(a2, 1 - a2))
        d1 = np.multiply(w2.dot(d2.T).T, np.multiply(a1, 1 - a1))
        w1 = w1 - alpha * x[i].T.dot(d1)
        b1 = b1 - alpha * d1
        w2 = w2 - alpha * a1.T.dot(d2)
        b2 = b2 - alpha * d2
    return w1, b1, w2, b2


def train_runner(spec, X, Y, start):
    if (spec.batch_size, spec.kind, spec.optimizer, len(start)) != (1, "sigmoid", "sgd", 2):
        raise NotImplementedError("the tutorial's code: one hidden layer, batch 1, sigmoid/MSE")
    x = [row.reshape(1, -1) for row in X]
    ys = [row.reshape(1, -1) for row in Y]
    params = [start[0][0].copy(), start[0][1].reshape(1, -1).copy(),
              start[1][0].copy(), start[1][1].reshape(1, -1).copy()]

    def epoch():
        params[:] = train(x, ys, *params, spec.learning_rate)
        return [(params[0], params[1][0]), (params[2], params[3][0])]
    return epoch
