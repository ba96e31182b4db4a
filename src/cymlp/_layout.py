"""The integer codes and buffer layouts shared by both kernel modules.

A network's parameters live in one flat buffer. ``build_layout`` says where
each layer's weights and biases sit in it; ``workspace_size`` says how much
scratch space a kernel needs to process a given number of rows at once.
"""

import numpy as np

# Columns of a layout array.
N_IN, N_OUT, ACTIVATION, W_OFFSET, B_OFFSET = range(5)
LAYOUT_COLUMNS = 5

ACTIVATIONS = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4, "softmax": 5}
IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX = range(6)
LEAKY_SLOPE = 0.01

LOSSES = {"mse": 0, "bce": 1, "cross_entropy": 2}
MSE, BCE, CROSS_ENTROPY = range(3)
TUTORIAL = 3  # internal: reports MSE, descends along a - y (cymlp.tutorial)

OPTIMIZERS = {"sgd": 0, "adam": 1}
SGD, ADAM = range(2)

# Positions in the float64 ``hyperparams`` vector handed to train_epoch.
LEARNING_RATE, MOMENTUM, NESTEROV, WEIGHT_DECAY, BETA1, BETA2, EPSILON = range(7)
N_HYPERPARAMS = 7


def build_layout(layer_sizes, activation_codes, bias):
    """Layout array and parameter count for a network.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from the input to the output, length ``n_layers + 1``.
    activation_codes : sequence of int
        One activation code per layer (``n_layers`` entries).
    bias : bool
        Whether each layer has a bias vector.

    Returns
    -------
    layout : ndarray of shape (n_layers, 5), dtype intp
        Per layer: ``n_in, n_out, activation, weight offset, bias offset``
        (bias offset ``-1`` when there is no bias).
    n_params : int
        Length of the flat parameter buffer.
    """
    n_layers = len(layer_sizes) - 1
    layout = np.empty((n_layers, LAYOUT_COLUMNS), dtype=np.intp)
    offset = 0
    for layer in range(n_layers):
        n_in, n_out = layer_sizes[layer], layer_sizes[layer + 1]
        layout[layer, N_IN] = n_in
        layout[layer, N_OUT] = n_out
        layout[layer, ACTIVATION] = activation_codes[layer]
        layout[layer, W_OFFSET] = offset
        offset += n_in * n_out
        if bias:
            layout[layer, B_OFFSET] = offset
            offset += n_out
        else:
            layout[layer, B_OFFSET] = -1
    return layout, offset


def workspace_row_width(layout):
    """Workspace elements needed per row processed at once.

    One row holds the input, every layer's activations, the output
    pre-activations and two delta vectors as wide as the widest layer.
    """
    widths = layout[:, N_OUT]
    return int(layout[0, N_IN] + widths.sum() + widths[-1] + 2 * widths.max())


def workspace_size(layout, rows):
    """Length of a workspace that processes ``rows`` rows at once."""
    return workspace_row_width(layout) * int(rows)


def workspace_views(workspace, layout, capacity):
    """Named views into a workspace of ``capacity`` rows (NumPy backend).

    Returns
    -------
    activations : list of ndarray
        ``activations[0]`` is the gathered input, ``activations[l + 1]`` the
        output of layer ``l``; each of shape ``(capacity, width)``.
    z_out : ndarray of shape (capacity, n_outputs)
        Output-layer pre-activations.
    delta, spare : ndarray of shape (capacity * max_width,)
        The two flat delta buffers.
    """
    widths = [int(layout[0, N_IN])] + [int(w) for w in layout[:, N_OUT]]
    max_width = max(widths[1:])
    activations = []
    offset = 0
    for width in widths:
        activations.append(workspace[offset:offset + capacity * width].reshape(capacity, width))
        offset += capacity * width
    z_out = workspace[offset:offset + capacity * widths[-1]].reshape(capacity, widths[-1])
    offset += capacity * widths[-1]
    delta = workspace[offset:offset + capacity * max_width]
    spare = workspace[offset + capacity * max_width:offset + 2 * capacity * max_width]
    return activations, z_out, delta, spare
