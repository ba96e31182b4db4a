"""The flat parameter layout, the one layout both backends share.

A network's parameters live in one flat buffer. ``build_layout`` says where
each layer's weights and biases sit in it; ``layer_views`` cuts the buffer
into per-layer weight matrices and bias vectors. Each backend sizes its own
workspace.
"""

import numpy as np

# Columns of a layout array.
N_IN, N_OUT, ACTIVATION, W_OFFSET, B_OFFSET = range(5)
LAYOUT_COLUMNS = 5


def count_parameters(layer_sizes, bias):
    """Length of the flat parameter buffer, in Python integers (it never overflows).

    Computed before anything is allocated, so that a network too large for
    memory is refused with its size named rather than overflowing a C integer.
    """
    sizes = [int(size) for size in layer_sizes]
    return sum(n_in * n_out + (n_out if bias else 0) for n_in, n_out in zip(sizes[:-1], sizes[1:]))


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


def layer_views(params, layout):
    """``(weights, biases)``: per-layer views of ``params`` (biases empty without bias).

    ``weights[l]`` has shape ``(n_in, n_out)``, so that ``x @ W`` as in the
    tutorial; ``biases[l]`` shape ``(n_out,)``.
    """
    weights, biases = [], []
    for row in layout:
        n_in, n_out, start = int(row[N_IN]), int(row[N_OUT]), int(row[W_OFFSET])
        weights.append(params[start:start + n_in * n_out].reshape(n_in, n_out))
        if row[B_OFFSET] >= 0:
            start = int(row[B_OFFSET])
            biases.append(params[start:start + n_out])
    return weights, biases


# Elements of activations per inference block: about 4 MB in float64, so a
# block's activations stay in cache while BLAS still sees hundreds of rows.
INFERENCE_BLOCK_ELEMENTS = 1 << 19


def block_rows(layout, n_rows, sparse=False):
    """Rows per block for inference on ``n_rows`` rows (both backends use it).

    With ``sparse`` inputs the workspace holds no copy of the input rows
    (the kernels read them in place), so only the layers' widths count.
    """
    width = int(0 if sparse else layout[0, N_IN])
    width += int(layout[:, N_OUT].sum() + 3 * layout[:, N_OUT].max())
    return max(1, min(int(n_rows), INFERENCE_BLOCK_ELEMENTS // width))
