"""Export to ONNX: a network, a model saved by ``cymlp train``, and the estimators.

``to_onnx(net)`` (also ``MLP.to_onnx``) writes the network as a graph of
standard ONNX operators, built with the ``onnx`` package's own helpers:
per layer ``MatMul`` (``x @ W``), ``Add`` (the bias, when the network has
one) and the activation (``Sigmoid``, ``Tanh``, ``Relu``, ``LeakyRelu``,
``Identity``, ``Softmax`` over axis 1, ``Exp``). The input is ``"X"`` of
shape ``[N, n_features]`` with a dynamic batch dimension ``N``, the output
``"Y"`` of shape ``[N, n_outputs]``, float32 or float64.

The command ``cymlp export`` adds what ``cymlp train`` stores beside the
network: the standardisation ``(X - mean) / scale`` and, for classifiers, the
class labels (see ``model_with_preprocessing``).

``register_skl2onnx()`` teaches skl2onnx to convert ``cymlp.sklearn``'s
``MLPClassifier`` and ``MLPRegressor``, alone or inside a scikit-learn
``Pipeline``; it runs on import of this module when skl2onnx is installed.

Needs the ``onnx`` package: ``pip install "cymlp[onnx]"``.
"""

import importlib.util

import numpy as np

from ._codes import LEAKY_SLOPE
from ._validation import check_dtype

__all__ = ["to_onnx", "model_with_preprocessing", "register_skl2onnx", "OPSET", "IR_VERSION"]

# Opset 17 has every operator used here for float and double (LeakyRelu and
# PRelu gained double in 16, Softmax its per-axis meaning in 13); IR version 8
# is what opset 17 came with, so onnxruntime releases from 1.13 on load it.
OPSET = 17
IR_VERSION = 8
INSTALL_HINT = 'pip install "cymlp[onnx]"'

# cymlp's activation names, to the ONNX operator computing each (leaky_relu is
# built in _activation, which depends on the dtype).
_OPERATORS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "identity": "Identity",
              "softmax": "Softmax", "exp": "Exp"}


def _onnx():
    """The ``onnx`` package, or an ImportError saying how to install it."""
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401 - a submodule ``import onnx`` may not load
    except ImportError as error:
        raise ImportError(f"ONNX export needs the onnx package; install it with "
                          f"{INSTALL_HINT} (or pip install onnx)") from error
    return onnx


# ---------------------------------------------------------------- graph pieces

class _Graph:
    """Nodes and constants of a graph under construction, named uniquely.

    The pieces below describe their nodes here once; ``to_onnx`` turns them
    into ONNX protos, the skl2onnx converter into its container's nodes, so
    both exports compute the same graph.

    Parameters
    ----------
    unique_name : callable
        ``unique_name(hint)`` returns a name no other value of the graph has.
    """

    def __init__(self, unique_name):
        self.unique_name = unique_name
        self.nodes = []        # (op_type, inputs, outputs, attributes)
        self.constants = []    # (name, ndarray)

    def constant(self, hint, array):
        """Add a constant tensor; returns its name."""
        name = self.unique_name(hint)
        self.constants.append((name, np.asarray(array)))
        return name

    def node(self, op_type, inputs, output=None, **attributes):
        """Add a node with one output (named ``output``, or a fresh name); returns it."""
        output = output or self.unique_name(op_type.lower())
        self.nodes.append((op_type, list(inputs), [output], attributes))
        return output


def _counter_names():
    """``unique_name`` for a graph built from scratch: hint_0, hint_1, ..."""
    count = [0]

    def unique_name(hint):
        count[0] += 1
        return f"{hint}_{count[0]}"
    return unique_name


def _activation(graph, name, z, dtype, output=None):
    if name == "leaky_relu":
        if dtype == np.float64:
            # ONNX float attributes are 32-bit, so LeakyRelu's alpha would be
            # 0.01 rounded to float32; PRelu takes the slope as a double tensor
            # and computes what the kernels compute, z * 0.01 for z < 0.
            slope = graph.constant("leaky_slope", np.array(LEAKY_SLOPE, dtype=dtype))
            return graph.node("PRelu", [z, slope], output)
        return graph.node("LeakyRelu", [z], output, alpha=LEAKY_SLOPE)
    if name == "softmax":
        return graph.node("Softmax", [z], output, axis=1)
    if name not in _OPERATORS:
        raise ValueError(f"cannot export activation {name!r} to ONNX; the exportable ones are "
                         f"{', '.join(sorted(_OPERATORS) + ['leaky_relu'])}")
    return graph.node(_OPERATORS[name], [z], output)


def _network(graph, net, x, dtype, output=None):
    """The layers of ``net`` applied to ``x``; returns the name of the outputs."""
    for layer, name in enumerate(net.activations):
        # The weights are copied here, as they are now: the graph does not
        # follow later training of the network.
        weights = graph.constant(f"W{layer}", np.array(net.weights[layer], dtype=dtype))
        z = graph.node("MatMul", [x, weights])
        if net.bias:
            bias = graph.constant(f"b{layer}", np.array(net.biases[layer], dtype=dtype))
            z = graph.node("Add", [z, bias])
        x = _activation(graph, name, z, dtype,
                        output if layer == len(net.activations) - 1 else None)
    return x


def _standardisation(graph, x, mean, scale, dtype):
    """``(x - mean) / scale``, as ``cymlp train`` standardises the features."""
    centred = graph.node("Sub", [x, graph.constant("feature_mean", np.array(mean, dtype=dtype))])
    return graph.node("Div", [centred, graph.constant("feature_scale",
                                                      np.array(scale, dtype=dtype))])


def _probabilities(graph, outputs, n_outputs, dtype, output=None):
    """One probability column per class: a single sigmoid output ``p`` becomes ``[1 - p, p]``."""
    if n_outputs != 1:
        return graph.node("Identity", [outputs], output)
    complement = graph.node("Sub", [graph.constant("one", np.array(1, dtype=dtype)), outputs])
    return graph.node("Concat", [complement, outputs], output, axis=1)


def _labels(graph, probabilities, classes, output=None):
    """The class of each row: ``classes[argmax(probabilities)]``, shape [N].

    The argmax of ``[1 - p, p]`` is 1 exactly where ``p > 0.5`` (for p >= 0.5,
    ``1 - p`` is exact), so this is cymlp's one classification rule
    (``_codes.classify``) for both kinds of output; ties go to the first
    class, as NumPy's argmax sends them.
    """
    index = graph.node("ArgMax", [probabilities], axis=1, keepdims=0)
    return graph.node("Gather", [graph.constant("classes", classes), index], output, axis=0)


def _label_tensor(classes):
    """Class labels as a constant: int64 when they are whole numbers, else strings."""
    values = np.asarray(classes)
    if values.dtype == np.bool_:
        return values.astype(np.int64)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values) & (values == np.round(values))):
            raise ValueError(f"cannot export class labels {values.tolist()!r}: labels must be "
                             "whole numbers or strings (ONNX labels are int64 or string)")
        return values.astype(np.int64)
    if values.dtype.kind in "USO" and all(isinstance(value, str) for value in values.tolist()):
        return np.array(values.tolist(), dtype=object)
    raise ValueError(f"cannot export class labels of dtype {values.dtype}: labels must be "
                     "whole numbers or strings")


# ---------------------------------------------------------------- models

def _check_net(net):
    from ._network import MLP
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a cymlp.MLP; got {type(net).__name__}")


def _export_dtype(net, dtype):
    """The dtype of the graph: the network's (None) or the one asked for."""
    return net.dtype if dtype is None else check_dtype(dtype)


def _model(graph, inputs, outputs, doc):
    """An ONNX ModelProto from ``graph`` with value infos ``inputs`` and ``outputs``."""
    onnx = _onnx()
    from onnx import helper, numpy_helper

    from . import __version__

    nodes = [helper.make_node(op_type, node_inputs, node_outputs, name=node_outputs[0],
                              **attributes)
             for op_type, node_inputs, node_outputs, attributes in graph.nodes]
    constants = [numpy_helper.from_array(array, name) for name, array in graph.constants]
    model = helper.make_model(
        helper.make_graph(nodes, "cymlp", inputs, outputs, initializer=constants),
        opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        producer_name="cymlp", producer_version=__version__, doc_string=doc)
    onnx.checker.check_model(model, full_check=True)
    return model


def to_onnx(net, dtype=None):
    """The network as an ONNX model.

    The graph has one input ``"X"`` of shape ``[N, n_features]`` (``N`` is
    dynamic: any batch size) and one output ``"Y"`` of shape
    ``[N, n_outputs]``, the outputs of :meth:`cymlp.MLP.predict`. It uses
    standard operators only (opset ``OPSET``): ``MatMul``, ``Add`` (when the
    network has biases), ``Sigmoid``, ``Tanh``, ``Relu``, ``LeakyRelu``
    (``alpha`` = cymlp's slope 0.01; a float64 graph uses ``PRelu`` with a
    double slope instead, because ONNX attributes are 32-bit floats),
    ``Identity``, ``Softmax`` (axis 1) and ``Exp`` (the Poisson output).

    Parameters
    ----------
    net : cymlp.MLP
        The network; its weights are copied as they are now.
    dtype : numpy.float32, numpy.float64 or None, default=None
        Element type of the input, the weights and the outputs. None: the
        network's dtype; otherwise the weights are cast to it (a float64
        network exported as float32 computes in float32).

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model``; save it with
        ``onnx.save(model, "net.onnx")``.

    Raises
    ------
    ImportError
        The ``onnx`` package is not installed (``pip install "cymlp[onnx]"``).
    TypeError
        ``net`` is not a ``cymlp.MLP``, or ``dtype`` is not float32/float64.
    ValueError
        The network has an activation ONNX export does not know.

    Examples
    --------
    >>> import numpy as np, onnxruntime, cymlp
    >>> net = cymlp.MLP([4, 8, 3], output_activation="softmax", seed=0)
    >>> session = onnxruntime.InferenceSession(net.to_onnx().SerializeToString())
    >>> X = np.ones((2, 4))
    >>> np.allclose(session.run(["Y"], {"X": X})[0], net.predict(X))
    True
    """
    _check_net(net)
    dtype = _export_dtype(net, dtype)
    onnx = _onnx()
    graph = _Graph(_counter_names())
    _network(graph, net, "X", dtype, output="Y")
    element = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    make = onnx.helper.make_tensor_value_info
    return _model(graph, [make("X", element, ["N", net.layer_sizes[0]])],
                  [make("Y", element, ["N", net.layer_sizes[-1]])], repr(net))


def model_with_preprocessing(net, dtype=None, mean=None, scale=None, classes=None):
    """The network with the standardisation and class labels of ``cymlp train`` around it.

    The graph's input is ``"X"`` of shape ``[N, n_features]``, the raw
    features. With ``mean`` and ``scale`` it first computes
    ``(X - mean) / scale`` (``Sub`` and ``Div``). Without ``classes`` (a
    regression) its one output is ``"Y"``, the network's outputs. With
    ``classes`` it has two outputs: ``"probabilities"`` of shape
    ``[N, n_classes]``, one column per class in the order of ``classes`` (a
    single sigmoid output ``p`` gives ``[1 - p, p]``), and ``"label"`` of
    shape ``[N]``, the predicted class (``ArgMax`` then ``Gather`` over a
    constant of the labels): int64 when every label is a whole number,
    else strings.

    Parameters
    ----------
    net : cymlp.MLP
    dtype : numpy.float32, numpy.float64 or None, default=None
        As in :func:`to_onnx`.
    mean, scale : array-like of shape (n_features,), optional
        The standardisation; both or neither.
    classes : sequence of int or str, optional
        The class labels, one per output (two for a single sigmoid output).

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    TypeError, ValueError
        As :func:`to_onnx`; also when ``mean``/``scale`` do not have one
        entry per feature, or ``classes`` does not match the outputs.
    """
    _check_net(net)
    dtype = _export_dtype(net, dtype)
    onnx = _onnx()
    n_features, n_outputs = net.layer_sizes[0], net.layer_sizes[-1]
    graph = _Graph(_counter_names())
    x = "X"
    if (mean is None) != (scale is None):
        raise ValueError("give mean and scale together, or neither")
    if mean is not None:
        for name, values in (("mean", mean), ("scale", scale)):
            if np.shape(values) != (n_features,):
                raise ValueError(f"{name} must have shape ({n_features},), one entry per "
                                 f"feature; got {np.shape(values)}")
        x = _standardisation(graph, x, mean, scale, dtype)
    element = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    make = onnx.helper.make_tensor_value_info
    inputs = [make("X", element, ["N", n_features])]
    if classes is None:
        _network(graph, net, x, dtype, output="Y")
        return _model(graph, inputs, [make("Y", element, ["N", n_outputs])], repr(net))
    labels = _label_tensor(classes)
    if labels.shape != (max(2, n_outputs),):
        raise ValueError(f"classes must hold {max(2, n_outputs)} labels for a network with "
                         f"{n_outputs} output(s); got {len(labels)}")
    outputs = _network(graph, net, x, dtype)
    probabilities = _probabilities(graph, outputs, n_outputs, dtype, output="probabilities")
    _labels(graph, probabilities, labels, output="label")
    label_type = (onnx.TensorProto.STRING if labels.dtype == object
                  else onnx.TensorProto.INT64)
    return _model(graph, inputs, [make("probabilities", element, ["N", len(labels)]),
                                  make("label", label_type, ["N"])], repr(net))


# ---------------------------------------------------------------- skl2onnx

def _compute_dtype(variable_type):
    """float64 for a double input tensor, else float32 (skl2onnx's convention)."""
    from skl2onnx.common.data_types import DoubleTensorType
    return np.float64 if isinstance(variable_type, DoubleTensorType) else np.float32


def _tensor_type(dtype):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    return DoubleTensorType if dtype == np.float64 else FloatTensorType


def _is_multilabel(estimator):
    return estimator._label_binarizer.y_type_.startswith("multilabel")


def _skl2onnx_classes(scope, estimator):
    """The labels the graph outputs, as skl2onnx would give them (honours ``nocl``)."""
    from skl2onnx.common.utils_classifier import get_label_classes
    return _label_tensor(get_label_classes(scope, estimator))


def _classifier_shapes(operator):
    """skl2onnx shape calculator of ``cymlp.sklearn.MLPClassifier``.

    Outputs: ``label`` (int64 or string of shape [N]; int64 [N, n_labels]
    for multilabel targets) and ``probabilities`` ([N, n_classes], float32
    unless the input is float64), as skl2onnx's MLPClassifier has them.
    """
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType
    from skl2onnx.common.utils import check_input_and_output_numbers
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=2)
    estimator = operator.raw_operator
    n_rows = operator.inputs[0].get_first_dimension()
    dtype = _compute_dtype(operator.inputs[0].type)
    n_columns = max(2, estimator.net_.layer_sizes[-1])
    if _is_multilabel(estimator):
        operator.outputs[0].type = Int64TensorType([n_rows, n_columns])
    elif _skl2onnx_classes(operator.scope_inst, estimator).dtype == object:
        operator.outputs[0].type = StringTensorType([n_rows])
    else:
        operator.outputs[0].type = Int64TensorType([n_rows])
    operator.outputs[1].type = _tensor_type(dtype)([n_rows, n_columns])


def _regressor_shapes(operator):
    """skl2onnx shape calculator of ``cymlp.sklearn.MLPRegressor``: [N, n_outputs]."""
    from skl2onnx.common.utils import check_input_and_output_numbers
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    dtype = _compute_dtype(operator.inputs[0].type)
    operator.outputs[0].type = _tensor_type(dtype)(
        [operator.inputs[0].get_first_dimension(), operator.raw_operator.net_.layer_sizes[-1]])


def _emit(graph, container):
    """Write the nodes and constants of ``graph`` into a skl2onnx container."""
    from onnx import TensorProto, numpy_helper
    for name, array in graph.constants:
        if array.dtype == object:   # strings: the container copies only raw data
            container.add_initializer(name, TensorProto.STRING, list(array.shape),
                                      [value.encode("utf-8") for value in array.tolist()])
        else:
            tensor = numpy_helper.from_array(array, name)
            container.add_initializer(name, tensor.data_type, list(array.shape), tensor)
    for op_type, inputs, outputs, attributes in graph.nodes:
        container.add_node(op_type, inputs, outputs, name=outputs[0] + "_op", **attributes)


def _network_input(graph, operator, dtype):
    """The estimator's input in the compute dtype: cast unless it is float32/float64 already."""
    from onnx.helper import np_dtype_to_tensor_dtype
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    x = operator.inputs[0].full_name
    if isinstance(operator.inputs[0].type, (FloatTensorType, DoubleTensorType)):
        return x   # _compute_dtype chose its own type
    return graph.node("Cast", [x], to=np_dtype_to_tensor_dtype(np.dtype(dtype)))


def _convert_classifier(scope, operator, container):
    """skl2onnx converter of ``cymlp.sklearn.MLPClassifier``.

    ``probabilities`` equals ``predict_proba`` and ``label`` equals
    ``predict``: ``classes_[argmax]`` of the probabilities, the one class
    seen when there is one, and for multilabel targets ``p > 0.5`` per label.
    """
    from onnx import TensorProto
    estimator = operator.raw_operator
    net = estimator.net_
    dtype = _compute_dtype(operator.inputs[0].type)
    graph = _Graph(scope.get_unique_variable_name)
    label, probabilities = (variable.full_name for variable in operator.outputs)
    outputs = _network(graph, net, _network_input(graph, operator, dtype), dtype)
    _probabilities(graph, outputs, net.layer_sizes[-1], dtype, output=probabilities)
    if _is_multilabel(estimator):
        # LabelBinarizer.inverse_transform: 1 where a label's output exceeds 0.5.
        above = graph.node("Greater", [probabilities,
                                       graph.constant("half", np.array(0.5, dtype=dtype))])
        graph.node("Cast", [above], label, to=TensorProto.INT64)
    else:
        classes = _skl2onnx_classes(scope, estimator)
        if len(classes) == 1 and scope.get_options(estimator, {"zipmap": True})["zipmap"]:
            raise ValueError("a classifier fitted on one class has two probability columns "
                             "(as predict_proba gives them) but one label, which ZipMap "
                             "cannot pair; convert it with options={'zipmap': False}")
        if len(classes) == 1:
            # scikit-learn predicts the one class it saw; the network has one
            # output, so the argmax over [1 - p, p] is 0 or 1: both index it.
            classes = np.concatenate([classes, classes])
        _labels(graph, probabilities, classes, output=label)
    _emit(graph, container)


def _convert_regressor(scope, operator, container):
    """skl2onnx converter of ``cymlp.sklearn.MLPRegressor``: ``predict`` as [N, n_outputs]."""
    net = operator.raw_operator.net_
    dtype = _compute_dtype(operator.inputs[0].type)
    graph = _Graph(scope.get_unique_variable_name)
    _network(graph, net, _network_input(graph, operator, dtype), dtype,
             output=operator.outputs[0].full_name)
    _emit(graph, container)


def register_skl2onnx():
    """Register cymlp's estimators with skl2onnx (idempotent).

    Afterwards ``skl2onnx.to_onnx`` converts ``cymlp.sklearn.MLPClassifier``
    and ``MLPRegressor``, alone or as steps of a scikit-learn ``Pipeline``.
    A classifier's graph has the outputs skl2onnx gives its own
    MLPClassifier: ``label`` (``predict``) and ``probabilities``
    (``predict_proba``), by default through a ``ZipMap`` (a list of dicts
    ``{class: probability}``); ``options={id(clf): {"zipmap": False}}`` (or
    ``{"zipmap": False}`` for the whole conversion) keeps the probability
    tensor, which multilabel classifiers need. Options ``"zipmap": "columns"``,
    ``"nocl"`` and ``"output_class_labels"`` are accepted as skl2onnx defines
    them. A regressor has one output of shape ``[N, n_outputs]``. The graph
    computes in float64 when the estimator's input is float64, else float32.

    Importing ``cymlp.onnx`` calls this when skl2onnx is installed; calling it
    again changes nothing.

    Raises
    ------
    ImportError
        skl2onnx (or scikit-learn) is not installed.
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError as error:
        raise ImportError(f"converting cymlp's estimators needs skl2onnx; install it with "
                          f"{INSTALL_HINT} and pip install skl2onnx") from error
    from .sklearn import MLPClassifier, MLPRegressor

    # overwrite=True replaces an earlier registration by the same functions:
    # calling this twice is the same as calling it once.
    update_registered_converter(
        MLPClassifier, "CymlpMLPClassifier", _classifier_shapes, _convert_classifier,
        overwrite=True, options={"zipmap": [True, False, "columns"], "nocl": [False, True],
                                 "output_class_labels": [False, True]})
    update_registered_converter(MLPRegressor, "CymlpMLPRegressor", _regressor_shapes,
                                _convert_regressor, overwrite=True)


if importlib.util.find_spec("skl2onnx") is not None:
    try:
        register_skl2onnx()
    except ImportError:   # skl2onnx present but unusable (e.g. no scikit-learn): stay usable
        pass
