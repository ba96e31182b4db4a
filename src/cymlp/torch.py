"""PyTorch in both directions: a cymlp network as a ``torch.nn.Sequential``, and back.

``to_torch(net)`` builds the ``torch.nn.Sequential`` that computes what
``net.predict`` computes: one ``torch.nn.Linear`` per layer (``weight`` is
cymlp's ``W.T``: cymlp multiplies ``x @ W`` with ``W`` of shape
``(n_in, n_out)``, torch ``x @ weight.T`` with ``weight`` of shape
``(n_out, n_in)``), each followed by its activation module. ``from_torch``
reads such a module back into a ``cymlp.MLP``. Both copy the parameters bit
for bit and refuse what they cannot represent faithfully, rather than
return a network that computes something else.

Importing this module imports torch; ``import cymlp`` alone never does.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import DTypeLike

try:
    import torch
    from torch import nn
except ModuleNotFoundError as error:  # pragma: no cover - exercised in a subprocess
    if error.name != "torch":
        raise   # torch is there but broken: its own error says more than advice to install it
    raise ImportError('cymlp.torch needs PyTorch: pip install "cymlp[torch]" (or install '
                      "torch itself, https://pytorch.org)") from error

from ._codes import HIDDEN_ACTIVATIONS, LEAKY_SLOPE, OUTPUT_ACTIVATIONS
from ._network import MLP
from ._validation import check_bool, check_choice, check_dtype

__all__ = ["Exp", "to_torch", "from_torch", "torch_loss"]


class Exp(nn.Module):
    """Element-wise ``exp``: cymlp's "exp" output activation (the mean of a Poisson loss).

    torch has no ``nn.Exp`` module; ``to_torch`` uses this one, and
    ``from_torch`` recognises it.

    Examples
    --------
    >>> import torch
    >>> Exp()(torch.zeros(1, 2))
    tensor([[1., 1.]])
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - torch's name
        """``torch.exp(input)``."""
        return torch.exp(input)


_TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}

# What from_torch accepts, for its error messages.
_SUPPORTED = (f"Linear, Sigmoid, Tanh, ReLU, LeakyReLU(negative_slope={LEAKY_SLOPE}), "
              "Identity, Softmax(dim=1), cymlp.torch.Exp, and Sequentials of these")


def _activation_module(name):
    """The torch module of a cymlp activation name."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=LEAKY_SLOPE)
    if name == "identity":
        # Kept explicit (not omitted) so that from_torch reads the activation
        # back instead of guessing it from a gap.
        return nn.Identity()
    if name == "softmax":
        return nn.Softmax(dim=1)
    if name == "exp":
        return Exp()
    raise ValueError(f"no torch module for activation {name!r}")  # pragma: no cover


def to_torch(net: MLP, *, logits: bool = False) -> "nn.Sequential":
    """The ``torch.nn.Sequential`` that computes what ``net.predict`` computes.

    Layer ``l`` becomes ``torch.nn.Linear(n_in, n_out, bias=net.bias)`` with
    ``weight = net.weights[l].T`` and ``bias = net.biases[l]`` (copies: the
    module shares no memory with ``net``), followed by its activation:
    ``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU(negative_slope=0.01)``,
    ``Identity`` (kept, so the round trip knows the activation),
    ``Softmax(dim=1)`` or :class:`Exp`. Parameters are in the network's
    dtype (``torch.float32`` or ``torch.float64``) on the CPU. Building the
    module draws nothing from torch's random generator.

    Parameters
    ----------
    net : cymlp.MLP
    logits : bool, default=False
        Leave out the output activation, so the module returns the output
        layer's pre-activations ``z``. That is what torch's losses on logits
        want: ``torch.nn.CrossEntropyLoss`` (for a softmax output; it applies
        ``log_softmax`` itself), ``torch.nn.BCEWithLogitsLoss`` (sigmoid) and
        ``torch.nn.PoissonNLLLoss(log_input=True)`` (exp). :func:`torch_loss`
        gives the matching one. Bring such a module back with
        ``from_torch(module, output_activation=net.activations[-1])``.

    Returns
    -------
    torch.nn.Sequential
        ``Linear, activation, Linear, activation, ...``, the last activation
        left out with ``logits=True``.

    Examples
    --------
    >>> import cymlp
    >>> from cymlp.torch import to_torch
    >>> to_torch(cymlp.MLP([30, 5, 3], output_activation="softmax", loss="cross_entropy"))
    Sequential(
      (0): Linear(in_features=30, out_features=5, bias=True)
      (1): Sigmoid()
      (2): Linear(in_features=5, out_features=3, bias=True)
      (3): Softmax(dim=1)
    )
    """
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a cymlp.MLP; got {type(net).__name__}")
    logits = check_bool(logits, "logits")
    torch_dtype = _TORCH_DTYPES[net.dtype]
    modules = []
    for layer, weights in enumerate(net.weights):
        n_in, n_out = weights.shape
        # On the meta device the constructor allocates and initialises
        # nothing: the parameters are replaced right away, and the user's
        # torch random stream stays untouched.
        linear = nn.Linear(n_in, n_out, bias=net.bias, device="meta", dtype=torch_dtype)
        linear.weight = nn.Parameter(torch.from_numpy(np.array(weights.T, order="C")))
        if net.bias:
            linear.bias = nn.Parameter(torch.from_numpy(np.array(net.biases[layer])))
        modules.append(linear)
        if layer < len(net.weights) - 1 or not logits:
            modules.append(_activation_module(net.activations[layer]))
    return nn.Sequential(*modules)


def torch_loss(net: MLP, *, logits: bool = False) -> "nn.Module":
    """The torch loss that equals ``net``'s loss on the outputs of ``to_torch(net, logits=...)``.

    With it, a step in torch is the step cymlp's ``fit`` takes (DESIGN.md:
    cymlp's losses are torch's, averaged over the batch).

    ============== ======================== =====================================
    ``loss``       ``logits=False``         ``logits=True``
    ============== ======================== =====================================
    mse            ``MSELoss()``            ``MSELoss()`` (identity output only)
    bce            ``BCELoss()``            ``BCEWithLogitsLoss()``
    cross_entropy  refused                  ``CrossEntropyLoss()``
    poisson        refused                  ``PoissonNLLLoss(log_input=True)``
    ============== ======================== =====================================

    ``CrossEntropyLoss`` takes float targets of the outputs' shape as class
    probabilities (cymlp's targets), or integer class labels.

    Parameters
    ----------
    net : cymlp.MLP
    logits : bool, default=False
        Whether the module it is used with ends in the output activation
        (False) or in the last Linear (True).

    Returns
    -------
    torch.nn.Module
        Called as ``loss(module(x), y)``.

    Raises
    ------
    ValueError
        When no torch loss computes cymlp's on those outputs: cross-entropy
        and Poisson are defined on the logits in torch (use
        ``logits=True``), and MSE on logits equals cymlp's MSE only for an
        identity output.
    """
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a cymlp.MLP; got {type(net).__name__}")
    logits = check_bool(logits, "logits")
    name, output = net.loss_name, net.activations[-1]
    if name == "mse":
        if logits and output != "identity":
            raise ValueError(f"loss='mse' is on the {output} outputs, not on the logits; use "
                             "to_torch(net) and torch_loss(net) with logits=False")
        return nn.MSELoss()
    if name == "bce":
        return nn.BCEWithLogitsLoss() if logits else nn.BCELoss()
    if not logits:
        raise ValueError(f"torch computes loss={name!r} from the logits; use "
                         "to_torch(net, logits=True) and torch_loss(net, logits=True)")
    if name == "cross_entropy":
        return nn.CrossEntropyLoss()
    return nn.PoissonNLLLoss(log_input=True)


def _flatten(module, prefix=""):
    """``(name, module)`` of every leaf, nested Sequentials opened in order.

    Names are the dotted paths of ``module.named_modules()`` ("3", "1.0"),
    so an error points at the module as the user would reach it.
    """
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if type(child) is nn.Sequential:
            yield from _flatten(child, f"{path}.")
        else:
            yield path, child


def _describe(name, module):
    return f"module {name} ({type(module).__name__})"


def _activation_name(name, module):
    """cymlp's name for an activation module, or None for anything else.

    Types are matched exactly: a subclass may compute something else in its
    ``forward``.
    """
    kind = type(module)
    if kind is nn.Sigmoid:
        return "sigmoid"
    if kind is nn.Tanh:
        return "tanh"
    if kind is nn.ReLU:
        return "relu"
    if kind is nn.Identity:
        return "identity"
    if kind is Exp:
        return "exp"
    if kind is nn.LeakyReLU:
        if module.negative_slope != LEAKY_SLOPE:
            raise ValueError(f"{_describe(name, module)} has negative_slope="
                             f"{module.negative_slope}; cymlp's leaky_relu has slope "
                             f"{LEAKY_SLOPE} only")
        return "leaky_relu"
    if kind is nn.Softmax:
        # Inputs are (n_samples, n_features), so dim 1 and -1 are the same
        # axis; dim=None lets torch guess from the input's shape.
        if module.dim not in (1, -1):
            raise ValueError(f"{_describe(name, module)} has dim={module.dim}; cymlp's softmax "
                             "is over the features of each row, Softmax(dim=1)")
        return "softmax"
    return None


def _linear_arrays(name, linear, dtype):
    """``(W, b)`` as NumPy copies in cymlp's layout, ``b`` None without bias."""
    arrays = []
    for part, tensor in (("weight", linear.weight), ("bias", linear.bias)):
        if tensor is None:
            arrays.append(None)
            continue
        if not tensor.dtype.is_floating_point:
            raise TypeError(f"{_describe(name, linear)}.{part} has dtype {tensor.dtype}; cymlp "
                            "needs floating-point parameters (float32 or float64)")
        if dtype is None and tensor.dtype not in _NUMPY_DTYPES:
            raise TypeError(f"{_describe(name, linear)}.{part} has dtype {tensor.dtype}; cymlp "
                            "computes in float32 or float64 (pass dtype= to convert)")
        if tensor.is_meta:
            raise ValueError(f"{_describe(name, linear)}.{part} is on the meta device: it has "
                             "no values to copy")
        target = _TORCH_DTYPES[dtype] if dtype is not None else tensor.dtype
        array = tensor.detach().to(device="cpu", dtype=target).numpy()
        if not np.isfinite(array).all():
            raise ValueError(f"{_describe(name, linear)}.{part} holds NaN or inf")
        arrays.append(array)
    weight, bias = arrays
    return np.array(weight.T), None if bias is None else np.array(bias)


def _default_loss(output_activation):
    """cymlp's loss for a converted network when none is given.

    softmax: cross_entropy, the loss a softmax output is trained with in
    torch (CrossEntropyLoss); exp: poisson, the only loss defined on it;
    every other output: mse, MLP's own default (the tutorial's sigmoid + MSE).
    """
    return {"softmax": "cross_entropy", "exp": "poisson"}.get(output_activation, "mse")


def from_torch(module: "nn.Sequential", *, output_activation: Optional[str] = None,
               loss: Optional[str] = None, dtype: Optional[DTypeLike] = None,
               seed: Optional[int] = None, backend: Optional[str] = None) -> MLP:
    """The ``cymlp.MLP`` that computes what a ``torch.nn.Sequential`` computes.

    The module is read in the pattern ``Linear, activation, Linear,
    activation, ...``; nested ``Sequential``s are opened in order. Supported
    activations: ``Sigmoid``, ``Tanh``, ``ReLU``,
    ``LeakyReLU(negative_slope=0.01)``, ``Identity`` (any layer), and as the
    output activation also ``Softmax(dim=1)`` (or ``dim=-1``) and
    :class:`Exp`. Two Linears in a row mean an identity activation between
    them; a module ending in a Linear has an identity output unless
    ``output_activation`` says otherwise. Types are matched exactly (a
    subclass may compute something else). The parameters are copied bit for
    bit (``W = weight.T``); the module is left as it was.

    Parameters
    ----------
    module : torch.nn.Sequential
    output_activation : str, optional
        For a module that ends in a Linear (its outputs are logits, e.g. one
        from ``to_torch(net, logits=True)`` or trained with
        ``CrossEntropyLoss``): the activation the network applies to them,
        any of cymlp's ("softmax", "sigmoid", "exp", ...). Refused for a
        module that ends in an activation, which would then be applied twice.
    loss : {"mse", "bce", "cross_entropy", "poisson"}, optional
        The network's loss, for further training with ``fit`` (outputs do not
        depend on it). Default: "cross_entropy" for a softmax output,
        "poisson" for exp, and MLP's default "mse" for every other output
        (pass ``loss="bce"`` for a sigmoid classifier).
    dtype : numpy.float32 or numpy.float64, optional
        Default: the dtype of the module's parameters, which must then all be
        float32 or all float64. Given, every floating-point parameter is
        converted to it (float16 and bfloat16 too, exactly).
    seed : int or None, default=None
        The network's seed (for shuffling in later fits and for ``reset``).
    backend : {"auto", "cython", "numpy"} or None, default=None
        As for ``cymlp.MLP``.

    Returns
    -------
    cymlp.MLP
        Its ``predict`` equals the module's outputs, up to rounding.

    Raises
    ------
    TypeError
        ``module`` is not a ``torch.nn.Sequential``, or a parameter is not of
        a floating-point type (or, without ``dtype``, not float32/float64, or
        of mixed dtypes).
    ValueError
        The module holds nothing, a module that is not supported (the
        message names its index and type), an activation that cymlp does not
        represent exactly (another ``negative_slope``, another softmax
        ``dim``), an activation before the first Linear or right after
        another activation, softmax or exp before the last Linear, widths
        that do not chain, Linears that disagree on having a bias, or
        parameters that are NaN or infinite.

    Examples
    --------
    >>> import torch
    >>> from cymlp.torch import from_torch
    >>> module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
    ...                              torch.nn.Linear(8, 3))
    >>> net = from_torch(module, output_activation="softmax")
    >>> net.layer_sizes, net.activations, net.loss_name, net.dtype.__name__
    ((4, 8, 3), ('relu', 'softmax'), 'cross_entropy', 'float32')
    """
    if type(module) is not nn.Sequential:
        hint = " (wrap it: torch.nn.Sequential(layer))" if isinstance(module, nn.Module) else ""
        raise TypeError(f"module must be a torch.nn.Sequential; got {type(module).__name__}"
                        f"{hint}")
    if output_activation is not None:
        output_activation = check_choice(output_activation, "output_activation",
                                         OUTPUT_ACTIVATIONS)
    if dtype is not None:
        dtype = check_dtype(dtype)
    leaves = list(_flatten(module))
    modules = dict(leaves)
    if not leaves:
        raise ValueError("module is an empty Sequential: there is no layer to convert")

    # Each layer: [name, Linear, name of the activation module, activation].
    layers = []
    for name, child in leaves:
        if type(child) is nn.Linear:
            if layers:
                previous = layers[-1]
                if previous[3] is None:
                    previous[3] = "identity"      # two Linears in a row
                n_in, n_out = child.weight.shape[1], previous[1].weight.shape[0]
                if n_in != n_out:
                    raise ValueError(f"{_describe(name, child)} has in_features={n_in}, but "
                                     f"{_describe(previous[0], previous[1])} has "
                                     f"out_features={n_out}")
            layers.append([name, child, None, None])
            continue
        activation = _activation_name(name, child)
        if activation is None:
            raise ValueError(f"{_describe(name, child)} is not supported; supported: "
                             f"{_SUPPORTED}")
        if not layers:
            raise ValueError(f"{_describe(name, child)} comes before any Linear; a cymlp "
                             "network starts with a Linear layer")
        if layers[-1][3] is not None:
            previous = layers[-1][2]
            raise ValueError(f"{_describe(name, child)} follows "
                             f"{_describe(previous, modules[previous])}, another activation; "
                             "cymlp applies one activation per layer")
        layers[-1][2], layers[-1][3] = name, activation

    for _, _, activation_module, activation in layers[:-1]:
        if activation not in HIDDEN_ACTIVATIONS:
            described = _describe(activation_module, modules[activation_module])
            raise ValueError(f"{described} is followed by more layers; {activation} is an "
                             "output activation in cymlp (it may only follow the last Linear)")
    last = layers[-1]
    if last[3] is None:
        last[3] = output_activation or "identity"
    elif output_activation is not None:
        raise ValueError(f"output_activation={output_activation!r} is for a module that ends "
                         f"in a Linear (logits); this one ends in "
                         f"{_describe(last[2], modules[last[2]])}")

    has_bias = [linear.bias is not None for _, linear, _, _ in layers]
    if len(set(has_bias)) > 1:
        with_bias = [name for (name, *_), bias in zip(layers, has_bias) if bias]
        without = [name for (name, *_), bias in zip(layers, has_bias) if not bias]
        raise ValueError(f"the Linear layers disagree on bias (modules {', '.join(with_bias)} "
                         f"have one, modules {', '.join(without)} do not); a cymlp network has "
                         "a bias in every layer or in none")
    if dtype is None:
        dtypes = {tensor.dtype for _, linear, _, _ in layers
                  for tensor in (linear.weight, linear.bias) if tensor is not None}
        if len(dtypes) > 1:
            raise TypeError(f"the module's parameters have mixed dtypes "
                            f"({', '.join(sorted(map(str, dtypes)))}); pass dtype= to convert "
                            "them all to one")
    arrays = [_linear_arrays(name, linear, dtype) for name, linear, _, _ in layers]
    if dtype is None:
        dtype = arrays[0][0].dtype.type

    activations = [activation for *_, activation in layers]
    net = MLP([arrays[0][0].shape[0]] + [weights.shape[1] for weights, _ in arrays],
              activation=activations[:-1], output_activation=activations[-1],
              loss=_default_loss(activations[-1]) if loss is None else loss,
              bias=has_bias[0], dtype=dtype, seed=seed, backend=backend)
    for layer, (weights, bias) in enumerate(arrays):
        net.weights[layer][...] = weights
        if bias is not None:
            net.biases[layer][...] = bias
    return net

