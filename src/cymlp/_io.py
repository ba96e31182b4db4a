"""Saving and loading networks: a versioned ``.npz`` file that runs no code.

The file is a zip archive of uncompressed ``.npy`` members, written with
NumPy's format and read back with ``allow_pickle=False``. It holds the
network's architecture and options and its ``state_dict()``:

``metadata.npy``
    A 0-d unicode array holding a JSON object (at most ``MAX_METADATA_CHARS``
    characters): ``format`` ("cymlp-model"), ``version`` (2), the
    architecture and options (``layer_sizes``, ``activations``, ``loss``,
    ``bias``, ``init``, ``dtype``, ``seed``, ``n_threads``), the optimizer
    (``optimizer``: "sgd", "adam" or null), the state of the shuffling
    generator (``rng_state``), ``history`` (``stopped_early`` and
    ``best_epoch`` of the last fit; its per-epoch values are the
    ``history/`` members), ``validation_rows`` (null, or the ``n_rows`` and
    ``fraction`` for which ``validation_split`` drew the rows in
    ``validation_rows.npy``), and ``extra``: a JSON object the caller may
    attach (the command line stores class labels and feature names there).
``params.npy``
    The flat parameter buffer, shape ``(n_params,)``, in the network's dtype.
``optimizer_state.npy``
    Momentum buffer or Adam moments, shape ``(2, n_params)``, same dtype.
``step.npy``
    Optimizer steps taken so far, shape ``(1,)``, int64.
``history/loss.npy``, ``history/accuracy.npy``, ``history/learning_rate.npy``
    The last fit's per-epoch values, float64, shape ``(n_epochs,)`` each.
``history/val_loss.npy``, ``history/val_accuracy.npy``
    The same on the validation data: shape ``(n_epochs,)``, or ``(0,)``
    without validation. NaN and infinities are stored as they are.
``validation_rows.npy`` (when ``validation_rows`` is not null)
    The rows held out by ``validation_split``: sorted indices, int64,
    shape ``(n_held_out,)``.
``arrays/<name>.npy`` (optional)
    Extra float64 arrays attached by the caller (e.g. feature means and
    scales): at most ``MAX_EXTRA_ARRAYS``, of at most ``MAX_ARRAY_BYTES``.

Version 1 (cymlp 0.1.0) has no ``history/`` members and no validation rows:
its ``history`` object also holds the five per-epoch lists (NaN and
infinities as null), so a long history outgrew the metadata limit. It is
still read; only version 2 is written.

Loading checks every member before it is used: a member's header (dtype and
shape) is read and compared with what the metadata implies before any data is
read (the history members' lengths with one another), so a damaged or hostile
file raises ``ValueError`` naming the file and the problem, and never makes
cymlp allocate what a header claims. Saving refuses, with a ``ValueError``
and before writing anything, what loading would refuse, so every file cymlp
writes loads. Writing goes to a new file in the target directory (created
under the user's umask, like any file the user makes), which replaces the
target only once it is complete and flushed to disk (``os.replace``), so a
crash mid-write leaves any earlier model intact.
"""

import contextlib
import errno
import json
import math
import os
import secrets
import zipfile

import numpy as np

from ._training import History

FORMAT_NAME = "cymlp-model"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_METADATA_CHARS = 1 << 20
MAX_EXTRA_ARRAYS = 64
MAX_ARRAY_BYTES = 1 << 29
MAX_LAYERS = 10000
# A history or validation-rows member may hold as many bytes as it occupies
# in the archive, or this many: cymlp stores members uncompressed, so every
# history it writes fits, while a small re-compressed file cannot make the
# loader allocate gigabytes (history values become Python floats, four times
# their size in the file).
MAX_INFLATED_BYTES = 1 << 23
HISTORY_KEYS = ("loss", "accuracy", "learning_rate", "val_loss", "val_accuracy")
_REQUIRED = ("metadata.npy", "params.npy", "optimizer_state.npy", "step.npy")
_HISTORY_MEMBERS = {key: f"history/{key}.npy" for key in HISTORY_KEYS}
_VALIDATION_MEMBER = "validation_rows.npy"


# ---------------------------------------------------------------- saving

def save_network(net, path, extra=None, arrays=None):
    """Write ``net`` to ``path`` atomically (see the module docstring).

    Raises ``ValueError`` before writing anything if the file would be one
    that ``load_network`` refuses (non-finite parameters, an inconsistent
    history, too much ``extra`` metadata or too many or too large arrays).
    """
    path = os.fspath(path)

    def refuse(message):
        raise ValueError(f"cannot save to {path!r}: {message}")

    state = net.state_dict()
    if len(net.layer_sizes) > MAX_LAYERS:
        refuse(f"the network has {len(net.layer_sizes)} layer sizes; files hold at most "
               f"{MAX_LAYERS}")
    if not (np.isfinite(state["params"]).all() and np.isfinite(state["optimizer_state"]).all()):
        refuse("the network's parameters or optimizer state hold NaN or inf")
    history = state["history"]
    history_arrays = _history_arrays(history, refuse)
    problem = _history_problem({key: len(values) for key, values in history_arrays.items()},
                               bool(history.stopped_early), history.best_epoch)
    if problem:
        refuse(problem)
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None; got {type(extra).__name__}")
    arrays = {name: np.ascontiguousarray(array, dtype=np.float64)
              for name, array in (arrays or {}).items()}
    if len(arrays) > MAX_EXTRA_ARRAYS:
        refuse(f"{len(arrays)} extra arrays given; files hold at most {MAX_EXTRA_ARRAYS}")
    for name, array in arrays.items():
        if array.nbytes > MAX_ARRAY_BYTES:
            refuse(f"extra array {name!r} takes {array.nbytes} bytes; at most "
                   f"{MAX_ARRAY_BYTES} are allowed")
    validation = state["validation_rows"]
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
        "history": {"stopped_early": bool(history.stopped_early),
                    "best_epoch": None if history.best_epoch is None
                    else int(history.best_epoch)},
        "validation_rows": None if validation is None else {
            "n_rows": int(validation["n_rows"]), "fraction": float(validation["fraction"])},
        "extra": {} if extra is None else extra,
    }
    text = json.dumps(metadata, allow_nan=False)
    if len(text) > MAX_METADATA_CHARS:
        refuse(f"its metadata would take {len(text)} characters, more than the "
               f"{MAX_METADATA_CHARS} allowed (is 'extra' very large?)")
    members = {
        "metadata": np.array(text),
        "params": state["params"],
        "optimizer_state": state["optimizer_state"],
        "step": np.array([state["step"]], dtype=np.int64),
    }
    for key, values in history_arrays.items():
        members[f"history/{key}"] = values
    if validation is not None:
        members["validation_rows"] = np.asarray(validation["rows"], dtype=np.int64)
    for name, array in arrays.items():
        members[f"arrays/{name}"] = array
    _write_atomically(path, members)


def _history_arrays(history, refuse):
    """The per-epoch values of ``history`` as 1-D float64 arrays."""
    result = {}
    for key in HISTORY_KEYS:
        try:
            values = np.array(getattr(history, key), dtype=np.float64)
        except (TypeError, ValueError) as error:
            refuse(f"history.{key} is not a list of numbers ({error})")
        if values.ndim != 1:
            refuse(f"history.{key} is not a flat list of numbers (shape {values.shape})")
        result[key] = values
    return result


def _history_problem(lengths, stopped_early, best_epoch):
    """What makes a history unloadable (a message), or None: one rule for save and load."""
    n_epochs = lengths["loss"]
    if (lengths["accuracy"] != n_epochs or lengths["learning_rate"] != n_epochs
            or lengths["val_loss"] != lengths["val_accuracy"]
            or lengths["val_loss"] not in (0, n_epochs)):
        return (f"its history is inconsistent (lengths {lengths}): loss, accuracy and "
                "learning_rate need one value per epoch, val_loss and val_accuracy one per "
                "epoch or none")
    if not isinstance(stopped_early, (bool, np.bool_)):
        return f"history.stopped_early must be a boolean; got {stopped_early!r}"
    if best_epoch is not None and (isinstance(best_epoch, (bool, np.bool_))
                                   or not isinstance(best_epoch, (int, np.integer))
                                   or best_epoch < 1):
        return f"history.best_epoch must be a positive integer or None; got {best_epoch!r}"
    return None


def _write_atomically(path, members):
    """Write ``members`` as an uncompressed .npz that replaces ``path`` only when complete."""
    def write_archive(file):
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, array in members.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
    write_file_atomically(path, write_archive)


def write_file_atomically(path, write):
    """Call ``write(file)`` on a new file that replaces ``path`` only when complete.

    The one way cymlp writes files (models, ONNX exports): into a temporary
    file beside ``path``, flushed to disk, then renamed over it, so a crash
    mid-write leaves any earlier file intact.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path!r}: directory {directory!r} does not exist")
    descriptor, temporary = _create_temporary(directory)
    try:
        with os.fdopen(descriptor, "wb") as file:
            descriptor = None                 # the file object closes it now
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if descriptor is not None:
            os.close(descriptor)
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _sync_directory(directory)


def _create_temporary(directory):
    """A new, empty file in ``directory``: ``(descriptor, path)``.

    Created with mode 0o666, so the kernel applies the user's umask as for
    any file the user makes (``tempfile.mkstemp`` would make it 0o600; the
    umask is process-wide, so it is never changed), and with ``O_EXCL``, so
    it is never an existing file or a symbolic link.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = os.path.join(directory, f".cymlp-{secrets.token_hex(8)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name found", directory)


def _sync_directory(directory):
    """Flush the rename to disk where the system allows it (best effort: the file is in place)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return                                # e.g. Windows, which cannot open directories
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# ---------------------------------------------------------------- loading

def load_network(path, backend=None):
    """Read a network saved by ``MLP.save``; returns ``(net, extra, arrays)``."""
    from ._network import MLP
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    if not os.path.isfile(path):
        # A directory, a FIFO (which would block), a device: refused like any
        # other file that is not a model, before it is opened.
        kind = "a directory" if os.path.isdir(path) else "not a regular file"
        raise ValueError(f"{path!r} is not a readable cymlp model file: it is {kind}")
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
    metadata = _read_metadata(archive, fail)
    version = metadata.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        fail(f"format version {version!r} is not supported by this cymlp "
             f"(which reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    validation = metadata.get("validation_rows") if version >= 2 else None
    if validation is not None and not isinstance(validation, dict):
        fail("its 'validation_rows' metadata is neither an object nor null")
    expected = list(_REQUIRED)
    if version >= 2:
        expected += _HISTORY_MEMBERS.values()
        if validation is not None:
            expected.append(_VALIDATION_MEMBER)
    missing = [name for name in expected if name not in names]
    if missing:
        fail(f"it lacks {', '.join(missing)} (required by format version {version})")
    extras = [name for name in names if name not in expected]
    if len(extras) > MAX_EXTRA_ARRAYS or any(
            not (name.startswith("arrays/") and name.endswith(".npy")) for name in extras):
        fail(f"unexpected members {extras[:5]}")
    extra = metadata.get("extra", {})
    if not isinstance(extra, dict):
        fail("its 'extra' metadata is not an object")
    flags = metadata.get("history", {})
    if not isinstance(flags, dict):
        fail("its 'history' metadata is not an object")
    lists = None
    if version == 1:
        try:
            lists = _history_lists_from_json(flags)
        except (TypeError, ValueError, OverflowError) as error:
            fail(f"its history is invalid ({error})")
    _check_size_before_building(archive, metadata, fail)
    try:
        net = MLP(metadata["layer_sizes"], activation=list(metadata["activations"][:-1]),
                  output_activation=metadata["activations"][-1], loss=metadata["loss"],
                  bias=metadata["bias"], init=metadata["init"], dtype=metadata["dtype"],
                  seed=metadata["seed"], backend=backend, n_threads=metadata["n_threads"])
    except (KeyError, TypeError, ValueError, IndexError) as error:
        fail(f"its architecture is invalid ({type(error).__name__}: {error})")

    dtype, int64, float64 = np.dtype(net.dtype), np.dtype(np.int64), np.dtype(np.float64)
    specs = {"params.npy": {"dtype": dtype, "shape": (net.n_params,)},
             "optimizer_state.npy": {"dtype": dtype, "shape": (2, net.n_params)},
             "step.npy": {"dtype": int64, "shape": (1,)}}
    for name in expected[len(_REQUIRED):]:       # history/*.npy and validation_rows.npy
        specs[name] = {"dtype": int64 if name == _VALIDATION_MEMBER else float64, "ndim": 1,
                       "max_bytes": max(archive.getinfo(name).compress_size,
                                        MAX_INFLATED_BYTES)}
    for name in extras:
        specs[name] = {"dtype": float64, "max_bytes": MAX_ARRAY_BYTES}

    def check_history(shapes):
        lengths = ({key: shapes[name][0] for key, name in _HISTORY_MEMBERS.items()}
                   if lists is None else {key: len(values) for key, values in lists.items()})
        problem = _history_problem(lengths, flags.get("stopped_early", False),
                                   flags.get("best_epoch"))
        if problem:
            fail(problem)

    data = _read_members(archive, specs, fail, check_history)
    if lists is None:
        lists = {key: data[name].tolist() for key, name in _HISTORY_MEMBERS.items()}
    history = History(stopped_early=flags.get("stopped_early", False),
                      best_epoch=flags.get("best_epoch"), **lists)
    try:
        net.load_state_dict({
            "params": data["params.npy"], "optimizer_state": data["optimizer_state.npy"],
            "step": int(data["step.npy"][0]), "optimizer": metadata.get("optimizer"),
            "rng_state": metadata.get("rng_state"), "history": history,
            "validation_rows": None if validation is None else {
                "n_rows": validation.get("n_rows"), "fraction": validation.get("fraction"),
                "rows": data[_VALIDATION_MEMBER]}})
    except (TypeError, ValueError) as error:
        fail(f"its state is invalid ({error})")
    arrays = {name[len("arrays/"):-len(".npy")]: data[name] for name in extras}
    return net, extra, arrays


def _read_members(archive, specs, fail, check_shapes):
    """``{name: array}`` for the members ``specs`` describes (see ``_check_header``).

    Every header is read and checked, and ``check_shapes({name: shape})``
    called, before any member's data is read.
    """
    with contextlib.ExitStack() as stack:
        headers = {}
        for name, spec in specs.items():
            member = stack.enter_context(archive.open(name))
            headers[name] = member, _check_header(archive, member, name, fail, **spec)
        check_shapes({name: header[0] for name, (_, header) in headers.items()})
        return {name: _read_data(member, name, fail, *header)
                for name, (member, header) in headers.items()}


def _read_metadata(archive, fail):
    raw = _read_member(archive, "metadata.npy", fail, kind="U", shape=(),
                       max_bytes=4 * MAX_METADATA_CHARS)
    try:
        metadata = json.loads(str(raw[()]))
    except ValueError as error:
        fail(f"its metadata is not JSON ({error})")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        fail("its metadata does not name the cymlp-model format")
    return metadata


def _read_member(archive, name, fail, **spec):
    """One .npy member, its header checked (``_check_header``) before its data is read."""
    with archive.open(name) as member:
        return _read_data(member, name, fail, *_check_header(archive, member, name, fail, **spec))


def _read_data(member, name, fail, shape, fortran_order, dtype, n_bytes):
    """The array of an open member whose header ``_check_header`` has read."""
    data = member.read(n_bytes + 1)
    if len(data) != n_bytes:
        fail(f"member {name} is truncated or has trailing data")
    array = np.frombuffer(data, dtype=dtype, count=n_bytes // dtype.itemsize)
    return array.reshape(shape, order="F" if fortran_order else "C").copy()


def _check_header(archive, member, name, fail, kind=None, dtype=None, shape=None, ndim=None,
                  max_bytes=None):
    """Read and check the header of an open .npy member: ``(shape, fortran_order, dtype, n_bytes)``.

    Nothing is allocated beyond what the member really holds: the declared
    size is compared with ``max_bytes`` and the zip's record of the member's
    size before any data is read.
    """
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
    if ndim is not None and len(found_shape) != ndim:
        fail(f"member {name} has shape {tuple(found_shape)}, expected {ndim} dimension(s)")
    if any(not isinstance(size, int) or size < 0 for size in found_shape):
        fail(f"member {name} declares an invalid shape {found_shape}")
    if found_dtype.itemsize == 0:
        fail(f"member {name} declares a dtype of size zero")
    n_bytes = math.prod(found_shape) * found_dtype.itemsize
    if (max_bytes is not None and n_bytes > max_bytes) or n_bytes > archive.getinfo(
            name).file_size:
        fail(f"member {name} declares more data ({n_bytes} bytes) than allowed or present")
    return tuple(found_shape), fortran_order, found_dtype, n_bytes


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
    if (not isinstance(sizes, list) or not 2 <= len(sizes) <= MAX_LAYERS
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                       for n in sizes) or not isinstance(bias, bool)):
        fail("its architecture is invalid (layer_sizes must be a list of positive integers, "
             "bias a boolean)")
    n_params = sum(n_in * n_out + (n_out if bias else 0)
                   for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    itemsize = 4 if metadata.get("dtype") == "float32" else 8
    if n_params * itemsize > archive.getinfo("params.npy").file_size:
        fail(f"its architecture needs {n_params} parameters, more than params.npy holds")


def _history_lists_from_json(data):
    """The per-epoch lists of a version-1 ``history`` object (null read as NaN)."""
    lists = {}
    for key in HISTORY_KEYS:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                for v in values):
            raise TypeError(f"history.{key} must be a list of numbers")
        lists[key] = [math.nan if v is None else float(v) for v in values]
    return lists
