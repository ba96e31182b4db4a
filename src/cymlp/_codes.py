"""Every name and integer code the two backends share, defined once.

The compiled kernels declare the same codes as ``cpdef enum``s in
``csrc/_kernels.pyx``; ``tests/test_backends.py`` checks that both agree.
"""

from enum import IntEnum

import numpy as np


class Activation(IntEnum):
    """Activation functions, per layer."""

    IDENTITY = 0
    SIGMOID = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4
    SOFTMAX = 5
    EXP = 6           # output only: the mean of a Poisson loss


class Loss(IntEnum):
    """Batch-mean losses (see DESIGN.md, numerical conventions).

    ``TUTORIAL`` is the tutorial's rule: it reports the MSE but descends along
    the output delta ``a - y`` (``cymlp.tutorial`` uses it; ``MLP`` never does).
    ``POISSON`` is ``torch.nn.PoissonNLLLoss(log_input=True)`` on exp outputs:
    the mean of ``exp(z) - y z`` over samples and outputs.
    """

    MSE = 0
    BCE = 1
    CROSS_ENTROPY = 2
    TUTORIAL = 3
    POISSON = 4


class Optimizer(IntEnum):
    """Update rules of ``cymlp.optim``."""

    SGD = 0
    ADAM = 1


LEAKY_SLOPE = 0.01

ACTIVATIONS = {member.name.lower(): member for member in Activation}
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
OUTPUT_ACTIVATIONS = HIDDEN_ACTIVATIONS + ("softmax", "exp")
LOSSES = {"mse": Loss.MSE, "bce": Loss.BCE, "cross_entropy": Loss.CROSS_ENTROPY,
          "poisson": Loss.POISSON}
# Output activations each loss is defined on.
LOSS_OUTPUTS = {
    "mse": HIDDEN_ACTIVATIONS + ("softmax",),
    "bce": ("sigmoid",),
    "cross_entropy": ("softmax",),
    "poisson": ("exp",),
}
OPTIMIZERS = {member.name.lower(): member for member in Optimizer}
INITIALIZERS = ("normal", "uniform", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal")


def classify(outputs):
    """The class of each row of ``outputs``: the argmax; for one output, 1 above 0.5.

    The one classification rule of cymlp: predictions, accuracy (the kernels
    implement the same rule, ``row_correct``), the estimators and the CLI.
    """
    outputs = np.asarray(outputs)
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > 0.5).astype(np.intp)
    return outputs.argmax(axis=1)
