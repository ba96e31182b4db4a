"""Saving and loading networks: a versioned ``.npz`` file that runs no code.

The file is a zip archive of ``.npy`` members, written with NumPy's format
and read back with ``allow_pickle=False``:

``metadata.npy``
    A 0-d unicode array holding a JSON object: ``format`` ("cymlp-model"),
    ``version`` (1), the architecture and options (``layer_sizes``,
    ``activations``, ``loss``, ``bias``, ``init``, ``dtype``, ``seed``,
    ``n_threads``), the optimizer (``optimizer``: "sgd", "adam" or null), the
    state of the shuffling generator (``rng_state``), the last training
    ``history``, and ``extra``: a JSON object the caller may attach (the
    command line stores class labels and feature names there).
``params.npy``
    The flat parameter buffer, shape ``(n_params,)``, in the network's dtype.
``optimizer_state.npy``
    Momentum buffer or Adam moments, shape ``(2, n_params)``, same dtype.
``step.npy``
    Optimizer steps taken so far, shape ``(1,)``, int64.
``arrays/<name>.npy`` (optional)
    Extra float arrays attached by the caller (e.g. feature means and scales).

Loading checks every member before it is used: a member's header (dtype and
shape) is read and compared with what the metadata implies before any data is
read, so a damaged or hostile file raises ``ValueError`` naming the file and
the problem, and never makes cymlp allocate what the header claims.
Writing goes to a temporary file in the target directory, which replaces the
target only once it is complete (``os.replace``), so a crash mid-write leaves
any earlier model intact.
"""

import json
import math
import os
import tempfile
import zipfile

import numpy as np

from ._codes import OPTIMIZERS

FORMAT_NAME = "cymlp-model"
FORMAT_VERSION = 1
MAX_METADATA_CHARS = 1 << 20
MAX_EXTRA_ARRAYS = 64
_REQUIRED = ("metadata.npy", "params.npy", "optimizer_state.npy", "step.npy")


def save_network(net, path, extra=None, arrays=None):
    """Write ``net`` to ``path`` atomically (see the module docstring)."""
    path = os.fspath(path)
    state = net.state_dict()
    metadata = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "layer_sizes": list(net.layer_sizes),
        "activations": list(net.activations),
        "loss": net.loss_name,
        "bias": net.bias,
        "init": net.init,
        "dtype": np.dtype(net.dtype).name,
        "seed": net.seed if isinstance(net.seed, int) else None,
        "n_threads": net.n_threads,
        "optimizer": state["optimizer"],
        "rng_state": state["rng_state"],
        "history": _history_to_json(state["history"]),
        "extra": {} if extra is None else extra,
    }
    members = {
        "metadata": np.array(json.dumps(metadata, allow_nan=False)),
        "params": state["params"],
        "optimizer_state": state["optimizer_state"],
        "step": np.array([state["step"]], dtype=np.int64),
    }
    for name, array in (arrays or {}).items():
        members[f"arrays/{name}"] = np.ascontiguousarray(array, dtype=np.float64)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path!r}: directory {directory!r} does not exist")
    descriptor, temporary = tempfile.mkstemp(prefix=".cymlp-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as file:
            with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
                for name, array in members.items():
                    with archive.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def load_network(path, backend=None):
    """Read a network saved by ``MLP.save``; returns ``(net, extra, arrays)``."""
    from ._network import MLP
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            return _read(archive, path, backend, MLP)
    except (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, ImportError):
        raise  # ours (they name the file), or about the file system / installation
    except Exception as error:  # noqa: BLE001 - anything else a hostile file can provoke
        # zipfile raises NotImplementedError for unknown compression or
        # versions, RuntimeError for encryption, RecursionError comes from
        # deeply nested JSON, zlib.error from damaged data...
        raise ValueError(f"{path!r} is not a readable cymlp model file: "
                         f"{type(error).__name__}: {_short(error)}") from None


def _read(archive, path, backend, MLP):
    def fail(message):
        raise ValueError(f"{path!r} is not a valid cymlp model file: {_short(message)}")

    names = archive.namelist()
    missing = [name for name in _REQUIRED if name not in names]
    if missing:
        fail(f"it lacks {', '.join(missing)} (is it a cymlp model?)")
    extras = [name for name in names if name not in _REQUIRED]
    if len(extras) > MAX_EXTRA_ARRAYS or any(
            not (name.startswith("arrays/") and name.endswith(".npy")) for name in extras):
        fail(f"unexpected members {extras[:5]}")

    raw = _read_member(archive, "metadata.npy", fail, kind="U", shape=(),
                       max_bytes=4 * MAX_METADATA_CHARS)
    try:
        metadata = json.loads(str(raw[()]))
    except ValueError as error:
        fail(f"its metadata is not JSON ({error})")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        fail("its metadata does not name the cymlp-model format")
    version = metadata.get("version")
    if version != FORMAT_VERSION:
        fail(f"format version {version!r} is not supported by this cymlp "
             f"(which reads version {FORMAT_VERSION})")
    _check_size_before_building(archive, metadata, fail)
    try:
        net = MLP(metadata["layer_sizes"], activation=list(metadata["activations"][:-1]),
                  output_activation=metadata["activations"][-1], loss=metadata["loss"],
                  bias=metadata["bias"], init=metadata["init"], dtype=metadata["dtype"],
                  seed=metadata["seed"], backend=backend, n_threads=metadata["n_threads"])
    except (KeyError, TypeError, ValueError, IndexError) as error:
        fail(f"its architecture is invalid ({type(error).__name__}: {error})")
    dtype = np.dtype(net.dtype)
    params = _read_member(archive, "params.npy", fail, dtype=dtype, shape=(net.n_params,))
    state = _read_member(archive, "optimizer_state.npy", fail, dtype=dtype,
                         shape=(2, net.n_params))
    step = _read_member(archive, "step.npy", fail, dtype=np.dtype(np.int64), shape=(1,))
    if not (np.isfinite(params).all() and np.isfinite(state).all()):
        fail("its parameters or optimizer state hold NaN or inf")
    if step[0] < 0 or (state[1] < 0).any():
        fail("its optimizer state is inconsistent (negative step or second moment)")
    optimizer = metadata.get("optimizer")
    if optimizer is not None and (not isinstance(optimizer, str) or optimizer not in OPTIMIZERS):
        fail(f"unknown optimizer {optimizer!r}")
    try:
        history = _history_from_json(metadata.get("history") or {})
        net.load_state_dict({"params": params, "optimizer_state": state, "step": int(step[0]),
                             "optimizer": optimizer, "rng_state": metadata["rng_state"],
                             "history": history})
    except (KeyError, TypeError, ValueError) as error:
        fail(f"its generator state or history is invalid ({error})")
    extra = metadata.get("extra", {})
    if not isinstance(extra, dict):
        fail("its 'extra' metadata is not an object")
    arrays = {}
    for name in extras:
        arrays[name[len("arrays/"):-len(".npy")]] = _read_member(
            archive, name, fail, dtype=np.dtype(np.float64), max_bytes=1 << 29)
    return net, extra, arrays


def _read_member(archive, name, fail, kind=None, dtype=None, shape=None, max_bytes=None):
    """One .npy member, its header checked before its data is read.

    Nothing is allocated beyond what the member really holds: the declared
    size is compared with ``max_bytes`` and the zip's record of the member's
    size first.
    """
    with archive.open(name) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(member, max_header_size=10000)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(member, max_header_size=10000)
            else:
                fail(f"member {name} has .npy format version {version}, expected 1.0 or 2.0")
        except (ValueError, EOFError, SyntaxError, TypeError) as error:
            fail(f"member {name} has a damaged header ({error})")
        found_shape, fortran_order, found_dtype = header
        if found_dtype.hasobject:
            fail(f"member {name} holds Python objects, which cymlp never loads")
        if kind is not None and found_dtype.kind != kind:
            fail(f"member {name} has dtype {found_dtype}, expected kind {kind!r}")
        if dtype is not None and found_dtype != dtype:
            fail(f"member {name} has dtype {found_dtype}, expected {dtype}")
        if shape is not None and tuple(found_shape) != shape:
            fail(f"member {name} has shape {tuple(found_shape)}, expected {shape}")
        if any(not isinstance(size, int) or size < 0 for size in found_shape):
            fail(f"member {name} declares an invalid shape {found_shape}")
        if found_dtype.itemsize == 0:
            fail(f"member {name} declares a dtype of size zero")
        count = int(np.prod(found_shape, dtype=np.float64))
        n_bytes = count * found_dtype.itemsize
        if (max_bytes is not None and n_bytes > max_bytes) or n_bytes > archive.getinfo(
                name).file_size:
            fail(f"member {name} declares more data ({n_bytes} bytes) than allowed or present")
        data = member.read(count * found_dtype.itemsize + 1)
        if len(data) != count * found_dtype.itemsize:
            fail(f"member {name} is truncated or has trailing data")
        array = np.frombuffer(data, dtype=found_dtype, count=count)
        order = "F" if fortran_order else "C"
        return array.reshape(found_shape, order=order).copy()


def _short(message, limit=300):
    """A message cut to ``limit`` characters: hostile files must not flood the terminal."""
    text = str(message)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _check_size_before_building(archive, metadata, fail):
    """Compare the parameter count the metadata implies with params.npy's size.

    Done before the network is built, so a small file cannot make cymlp
    allocate a huge network it does not contain.
    """
    sizes, bias = metadata.get("layer_sizes"), metadata.get("bias")
    if (not isinstance(sizes, list) or not 2 <= len(sizes) <= 10000
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                       for n in sizes) or not isinstance(bias, bool)):
        fail("its architecture is invalid (layer_sizes must be a list of positive integers, "
             "bias a boolean)")
    n_params = sum(n_in * n_out + (n_out if bias else 0)
                   for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    itemsize = 4 if metadata.get("dtype") == "float32" else 8
    if n_params * itemsize > archive.getinfo("params.npy").file_size:
        fail(f"its architecture needs {n_params} parameters, more than params.npy holds")


def _history_to_json(history):
    return {
        # JSON has no NaN or inf: those are stored as null (read back as NaN).
        "loss": [_json_float(v) for v in history.loss],
        "accuracy": [_json_float(v) for v in history.accuracy],
        "val_loss": [_json_float(v) for v in history.val_loss],
        "val_accuracy": [_json_float(v) for v in history.val_accuracy],
        "learning_rate": [_json_float(v) for v in history.learning_rate],
        "stopped_early": bool(history.stopped_early),
        "best_epoch": history.best_epoch,
    }


def _json_float(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _history_from_json(data):
    from ._training import History
    if not isinstance(data, dict):
        raise TypeError("history must be an object")
    lists = {}
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        values = data.get(key, [])
        if not isinstance(values, list) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                for v in values):
            raise TypeError(f"history.{key} must be a list of numbers")
        lists[key] = [math.nan if v is None else float(v) for v in values]
    best_epoch = data.get("best_epoch")
    if best_epoch is not None and (not isinstance(best_epoch, int) or isinstance(best_epoch, bool)
                                   or best_epoch < 1):
        raise TypeError("history.best_epoch must be a positive integer or null")
    return History(stopped_early=bool(data.get("stopped_early", False)), best_epoch=best_epoch,
                   **lists)
