"""End to end on real data: scikit-learn's 8x8 handwritten digits.

``load_digits`` ships with scikit-learn (no download). A 64-64-10 ReLU
network with a softmax output, cross-entropy and Adam must reach 95% on a
fixed, stratified held-out quarter of the data on every backend.
"""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from cymlp import MLP  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits(return_X_y=True)
    X = images / 16.0                      # pixels 0..16 -> [0, 1]
    Y = np.eye(10)[labels]
    X_train, X_test, Y_train, Y_test = train_test_split(
        X, Y, test_size=0.25, random_state=0, stratify=labels)
    return X_train, X_test, Y_train, Y_test


def test_digits_held_out_accuracy(backend, dtype, digits):
    X_train, X_test, Y_train, Y_test = digits
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64)
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0
    net = MLP([64, 64, 10], activation="relu", output_activation="softmax",
              loss="cross_entropy", init="he_uniform", dtype=dtype, seed=0, backend=backend)
    untrained = net.accuracy(X_test, Y_test)
    history = net.fit(X_train, Y_train, optimizer="adam", learning_rate=1e-3,
                      batch_size=32, epochs=30)
    accuracy = net.accuracy(X_test, Y_test)
    assert accuracy >= 0.95, f"held-out accuracy {accuracy:.3f}"
    assert untrained < 0.5
    # accuracy() agrees with the predicted classes.
    assert accuracy == np.mean(net.classify(X_test) == Y_test.argmax(axis=1))
    # Training went downhill: the last epoch's loss is a fraction of the first.
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert history.accuracy[-1] > 0.95


def test_digits_with_validation_split_and_early_stopping(backend, digits):
    X_train, X_test, Y_train, Y_test = digits
    net = MLP([64, 32, 10], activation="tanh", output_activation="softmax",
              loss="cross_entropy", init="glorot_uniform", seed=1, backend=backend)
    history = net.fit(X_train, Y_train, optimizer="sgd", learning_rate=0.1, momentum=0.9,
                      batch_size=32, epochs=40, validation_split=0.2, early_stopping=True,
                      patience=5, lr_schedule=None)
    assert history.best_epoch is not None
    assert len(history.val_loss) == history.epochs
    assert net.accuracy(X_test, Y_test) >= 0.93
