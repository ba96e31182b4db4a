"""scikit-learn: ``MLPClassifier(solver="sgd").partial_fit``, one epoch per call.

MLPClassifier's output layer is always softmax with log-loss for several
classes, so it computes what cymlp computes on the relu/softmax/cross-entropy
workloads only; on the sigmoid/MSE ones it trains a network of the same
sizes with a softmax/log-loss output (the table says so). Plain SGD without
momentum, L2 penalty or shuffling; its weights are replaced by ``start``
after a first ``partial_fit`` on one batch has made them.
"""

import numpy as np
from sklearn.neural_network import MLPClassifier


def train_runner(spec, X, Y, start):
    if spec.optimizer != "sgd":
        raise NotImplementedError("scikit-learn's momentum and Adam are not torch's")
    labels = Y.argmax(axis=1)
    classes = np.arange(Y.shape[1])
    model = MLPClassifier(hidden_layer_sizes=spec.sizes[1:-1],
                          activation="logistic" if spec.kind == "sigmoid" else "relu",
                          solver="sgd", batch_size=spec.batch_size,
                          learning_rate_init=spec.learning_rate, momentum=0.0, alpha=0.0,
                          shuffle=False, random_state=0)
    model.partial_fit(X[:spec.batch_size], labels[:spec.batch_size], classes=classes)
    for (W, b), coef, intercept in zip(start, model.coefs_, model.intercepts_):
        coef[...] = W
        intercept[...] = b

    def epoch():
        model.partial_fit(X, labels, classes=classes)
        return list(zip(model.coefs_, model.intercepts_))
    return epoch
