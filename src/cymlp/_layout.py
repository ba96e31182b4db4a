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


def parameter_count(layout):
    """Length of the flat parameter buffer a layout describes."""
    ends = layout[:, W_OFFSET] + layout[:, N_IN] * layout[:, N_OUT]
    bias_ends = np.where(layout[:, B_OFFSET] >= 0, layout[:, B_OFFSET] + layout[:, N_OUT], 0)
    return int(max(ends.max(), bias_ends.max()))


def workspace_row_width(layout):
    """Workspace elements needed per row processed at once.

    One row holds the input, every layer's activations, the output
    pre-activations and two delta vectors as wide as the widest layer; then
    the NumPy backend's scratch: two temporaries and a flag vector as wide as
    the widest layer, and the gathered target row. (The compiled kernels need
    no scratch; one workspace layout for both keeps them interchangeable.)
    """
    widths = layout[:, N_OUT]
    kernel = layout[0, N_IN] + widths.sum() + widths[-1] + 2 * widths.max()
    scratch = 3 * widths.max() + widths[-1]
    return int(kernel + scratch)


def workspace_size(layout, rows):
    """Length of a workspace that processes ``rows`` rows at once.

    ``rows`` row-sized parts plus one parameter-sized part, which the NumPy
    backend's optimizers use as scratch.
    """
    return workspace_row_width(layout) * int(rows) + parameter_count(layout)


def workspace_capacity(layout, workspace_len):
    """How many rows a workspace of ``workspace_len`` elements processes at once."""
    return (workspace_len - parameter_count(layout)) // workspace_row_width(layout)


class Scratch:
    """The NumPy backend's scratch buffers inside a workspace.

    ``tmp`` and ``tmp2`` hold elementwise intermediates and ``mask`` boolean
    flags, each up to ``capacity x max_width``; ``targets`` holds a batch's
    gathered target rows and ``param_tmp`` one value per parameter.
    """

    def __init__(self, workspace, layout, capacity):
        widths = layout[:, N_OUT]
        max_width, n_out = int(widths.max()), int(widths[-1])
        size = capacity * max_width
        offset = capacity * (int(layout[0, N_IN] + widths.sum()) + n_out + 2 * max_width)
        self.tmp = workspace[offset:offset + size]
        self.tmp2 = workspace[offset + size:offset + 2 * size]
        self.mask = workspace[offset + 2 * size:offset + 3 * size].view(np.bool_)[:size]
        offset += 3 * size
        self.targets = workspace[offset:offset + capacity * n_out].reshape(capacity, n_out)
        end = workspace.shape[0]
        self.param_tmp = workspace[end - parameter_count(layout):end]

    @staticmethod
    def like(buffer, array):
        """The first ``array.size`` entries of ``buffer``, shaped like ``array``."""
        return buffer[:array.size].reshape(array.shape)


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
