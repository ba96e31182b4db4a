"""Damaged and hostile model files: ``cymlp.load`` succeeds or raises ValueError.

A small trained model is saved (per backend), then its file is mutated: every
byte flipped, a deterministic sample of bytes overwritten, truncated at every
length, garbage appended and prepended, replaced by random junk, and rebuilt
as zips with valid structure but hostile members. For every mutated file,
``cymlp.load`` must either

* succeed - then, because every member of the archive is covered by its zip
  CRC-32 (which detects any single-byte change), the damage was in a part
  zipfile does not use, and the network must be exactly the saved one: same
  architecture, bit-identical parameters, finite and identical predictions; or
* raise ``ValueError`` whose message names the file (and stays readable);

never another exception, never a crash, never a huge allocation. Each sweep
collects every violation and reports them grouped by kind, with the zip
structure the damaged byte belongs to, so one run shows everything wrong.
"""

import io
import json
import os
import stat
import struct
import tracemalloc
import zipfile
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

import cymlp
from cymlp import MLP

MAX_MESSAGE = 2000          # a readable error message, whatever the file holds


@pytest.fixture
def model(backend, tmp_path):
    """A small trained model saved to tmp_path / "model.npz", and what it predicts."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    Y = np.eye(2)[rng.integers(0, 2, 12)]
    net = MLP([3, 4, 2], activation="relu", output_activation="softmax",
              loss="cross_entropy", seed=1, backend=backend)
    net.fit(X, Y, epochs=2, optimizer="adam", learning_rate=0.01, batch_size=4,
            validation_split=0.25)
    path = tmp_path / "model.npz"
    net.save(path)
    return SimpleNamespace(net=net, X=X, path=path, data=path.read_bytes(),
                           predictions=net.predict(X), backend=backend, directory=tmp_path)


def judge(path, model):
    """(outcome, violation or None) of loading a possibly damaged file."""
    name = os.path.basename(path)
    try:
        loaded = cymlp.load(path, backend=model.backend)
    except ValueError as error:
        message = str(error)
        if name not in message:
            return "refused", f"ValueError not naming the file: {message[:120]!r}"
        if len(message) > MAX_MESSAGE:
            return "refused", f"ValueError message of {len(message):,} characters"
        return "refused", None
    except Exception as error:      # anything else is a violation, reported below
        return "crashed", f"{type(error).__name__}: {str(error)[:120]}"
    net = model.net
    if (loaded.layer_sizes, loaded.activations, loaded.dtype, loaded.loss_name, loaded.bias) != \
            (net.layer_sizes, net.activations, net.dtype, net.loss_name, net.bias):
        return "loaded", f"loaded another architecture: {loaded!r}"
    if not np.array_equal(loaded.params, net.params):
        return "loaded", "loaded different parameters (a CRC-protected member changed?)"
    predictions = loaded.predict(model.X)
    if not (np.isfinite(predictions).all() and np.array_equal(predictions, model.predictions)):
        return "loaded", "loaded network predicts differently"
    return "loaded", None


# ---------------------------------------------------------------- zip structure, for reports

_CENTRAL_FIELDS = [(0, "signature"), (4, "version made by"), (6, "version needed"),
                   (8, "flags"), (10, "compression method"), (12, "time"), (14, "date"),
                   (16, "CRC-32"), (20, "compressed size"), (24, "size"),
                   (28, "name length"), (30, "extra length"), (32, "comment length"),
                   (34, "disk"), (36, "internal attributes"), (38, "external attributes"),
                   (42, "local header offset"), (46, "name")]
_LOCAL_FIELDS = [(0, "signature"), (4, "version needed"), (6, "flags"),
                 (8, "compression method"), (10, "time"), (12, "date"), (14, "CRC-32"),
                 (18, "compressed size"), (22, "size"), (26, "name length"),
                 (28, "extra length"), (30, "name")]


def zip_regions(data):
    """[(start, stop, description, fields)] of the parts of a (sound) zip archive."""
    regions = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        central = archive.start_dir
    for info in infos:
        start = info.header_offset
        name_length, extra_length = struct.unpack("<HH", data[start + 26:start + 30])
        header_end = start + 30 + name_length + extra_length
        regions.append((start, header_end, f"local header of {info.filename}", _LOCAL_FIELDS))
        regions.append((header_end, header_end + info.compress_size,
                        f"data of {info.filename}", None))
    offset = central
    for info in infos:
        name_length, extra_length, comment_length = struct.unpack(
            "<HHH", data[offset + 28:offset + 34])
        end = offset + 46 + name_length + extra_length + comment_length
        regions.append((offset, end, f"central directory entry of {info.filename}",
                        _CENTRAL_FIELDS))
        offset = end
    regions.append((offset, len(data), "end of central directory", None))
    return regions


def where(regions, position):
    for start, stop, description, fields in regions:
        if start <= position < stop:
            if fields:
                field = [name for at, name in fields if at <= position - start][-1]
                return f"{description}, {field}"
            return description
    return "between members"


def report(violations, regions=None):
    """Group violations by kind: a readable assertion message."""
    groups = defaultdict(list)
    for position, violation in violations:
        groups[violation].append(position)
    lines = [f"{len(violations)} mutated files were not handled (load must succeed or raise "
             f"ValueError naming the file):"]
    for violation, positions in sorted(groups.items(), key=lambda item: -len(item[1])):
        shown = ", ".join(str(p) if regions is None else f"{p} ({where(regions, p)})"
                          for p in positions[:3])
        lines.append(f"  {len(positions)} x {violation}\n      e.g. at {shown}")
    return "\n".join(lines)


def sweep(model, mutations):
    """Load every (label, bytes) mutation; (violations, outcome counts)."""
    path = model.directory / "mutated.npz"
    violations, outcomes = [], defaultdict(int)
    for label, data in mutations:
        path.write_bytes(data)
        outcome, violation = judge(path, model)
        outcomes[outcome] += 1
        if violation:
            violations.append((label, violation))
    return violations, dict(outcomes)


# ---------------------------------------------------------------- (a) single bytes

def test_every_byte_flipped(model):
    """Each byte of the file inverted (x ^ 0xFF), at every position."""
    data = model.data

    def mutations():
        for position in range(len(data)):
            mutated = bytearray(data)
            mutated[position] ^= 0xFF
            yield position, bytes(mutated)

    violations, outcomes = sweep(model, mutations())
    assert outcomes["refused"] > len(data) / 2          # the sweep did reach the checks
    assert not violations, report(violations, zip_regions(data))


def test_every_low_bit_flipped(model):
    """The lowest bit of each byte flipped, at every position (off-by-one damage)."""
    data = model.data

    def mutations():
        for position in range(len(data)):
            mutated = bytearray(data)
            mutated[position] ^= 0x01
            yield position, bytes(mutated)

    violations, outcomes = sweep(model, mutations())
    assert outcomes["refused"] > len(data) / 2
    assert not violations, report(violations, zip_regions(data))


def test_bytes_overwritten_at_sampled_positions(model):
    """400 deterministic positions overwritten with 0x00, 0xFF, 0x7F, 0x80 or a random byte."""
    data = model.data
    rng = np.random.default_rng(1234)
    positions = rng.choice(len(data), size=min(400, len(data)), replace=False)

    def mutations():
        for position in sorted(positions):
            for value in (0x00, 0xFF, 0x7F, 0x80, int(rng.integers(256))):
                if data[position] != value:
                    mutated = bytearray(data)
                    mutated[position] = value
                    yield int(position), bytes(mutated)

    violations, _ = sweep(model, mutations())
    assert not violations, report(violations, zip_regions(data))


# ---------------------------------------------------------------- (b) (c) (d) lengths, garbage

def test_truncated_at_every_length(model):
    data = model.data
    violations, outcomes = sweep(model, ((n, data[:n]) for n in range(len(data))))
    assert outcomes.get("loaded", 0) == 0, "a truncated file loaded"
    assert not violations, report(violations)


_GARBAGE = {
    "zero byte": b"\x00",
    "newline": b"\n",
    "text": b"trailing text\n" * 10,
    "random 1 KiB": np.random.default_rng(7).integers(0, 256, 1024, dtype=np.uint8).tobytes(),
    "random 100 KiB": np.random.default_rng(8).integers(0, 256, 100_000,
                                                        dtype=np.uint8).tobytes(),
    "fake end record": b"PK\x05\x06" + b"\x00" * 4 + b"\x01\x00\x01\x00" + b"\xff" * 8 + b"\x00\x00",
    "fake end record, huge counts": b"PK\x05\x06" + b"\xff" * 18,
    "fake zip64 locator": b"PK\x06\x07" + b"\xff" * 16,
    "fake local header": b"PK\x03\x04" + b"\xff" * 26,
    "another model": None,        # the file twice
}


@pytest.mark.parametrize("garbage", sorted(_GARBAGE))
@pytest.mark.parametrize("where_", ["appended", "prepended"])
def test_garbage_around_the_file(model, garbage, where_):
    extra = _GARBAGE[garbage]
    if extra is None:
        extra = model.data
    data = model.data + extra if where_ == "appended" else extra + model.data
    violations, _ = sweep(model, [(f"{garbage} {where_}", data)])
    assert not violations, report(violations)


@pytest.mark.parametrize("size", [0, 1, 3, 4, 21, 22, 30, 100, 1000, 4096, 65_557, 1_000_000])
@pytest.mark.parametrize("start", ["random", "zip signature", "end record", "npy magic"])
def test_random_junk_files(model, size, start):
    rng = np.random.default_rng(size)
    junk = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    prefix = {"random": b"", "zip signature": b"PK\x03\x04", "end record": b"PK\x05\x06",
              "npy magic": b"\x93NUMPY\x01\x00"}[start]
    junk = (prefix + junk)[:max(size, len(prefix))]
    violations, outcomes = sweep(model, [(f"{size} bytes", junk)])
    assert not violations, report(violations)
    assert outcomes == {"refused": 1}


def test_missing_file(model):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        cymlp.load(model.directory / "nothing.npz", backend=model.backend)


# ---------------------------------------------------------------- (e) hostile members

def npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy_header(payload=b"", version=(1, 0), **header):
    """A .npy member with an arbitrary header dict and payload."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (), **header}
    text = repr(header).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    if version == (1, 0):
        prefix = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text))
    else:
        prefix = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text))
    return prefix + text + payload


def raw_npy(header_text, payload=b""):
    """A version 1.0 .npy member whose header is the given text, verbatim."""
    text = header_text.encode("latin1") + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def members_of(model):
    with zipfile.ZipFile(io.BytesIO(model.data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def metadata_of(model):
    members = members_of(model)
    return json.loads(str(np.lib.format.read_array(io.BytesIO(members["metadata.npy"]))))


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def with_metadata(model, **changes):
    metadata = metadata_of(model)
    metadata.update(changes)
    return {**members_of(model),
            "metadata.npy": npy(np.array(json.dumps(metadata, allow_nan=True)))}


def with_member(model, name, data):
    return {**members_of(model), name: data}


HISTORY_KEYS = ("loss", "accuracy", "learning_rate", "val_loss", "val_accuracy")


def n_epochs(model):
    return len(model.net.history.loss)


def with_history(model, **members):
    """The saved members with some ``history/<key>.npy`` replaced."""
    return {**members_of(model), **{f"history/{key}.npy": data for key, data in members.items()}}


def version_1(model, **metadata_changes):
    """The saved model as cymlp 0.1.0 wrote it (format version 1): the
    per-epoch lists in the JSON history (non-finite values as null), no
    history members and no validation rows; then ``metadata_changes``."""
    members, metadata = members_of(model), metadata_of(model)
    history = {key: [float(v) if np.isfinite(v) else None for v in
                     np.lib.format.read_array(io.BytesIO(members[f"history/{key}.npy"]))]
               for key in HISTORY_KEYS}
    history.update(metadata["history"])
    del metadata["validation_rows"]
    metadata.update(version=1, history=history)
    metadata.update(metadata_changes)
    members = {name: data for name, data in members.items()
               if not name.startswith("history/") and name != "validation_rows.npy"}
    members["metadata.npy"] = npy(np.array(json.dumps(metadata, allow_nan=True)))
    return members


def _nested(depth):
    return "[" * depth + "]" * depth


HOSTILE = {
    # huge declared shapes: refused from the header, before any allocation
    "params shape 1e12": lambda m: with_member(m, "params.npy", npy_header(shape=(10 ** 12,))),
    "state shape 2^31 x 2^31": lambda m: with_member(
        m, "optimizer_state.npy", npy_header(shape=(2 ** 31, 2 ** 31))),
    "step shape 2^62": lambda m: with_member(m, "step.npy",
                                             npy_header(descr="<i8", shape=(2 ** 62,))),
    "extra array shape 1e10": lambda m: with_member(m, "arrays/big.npy",
                                                    npy_header(shape=(10 ** 10,))),
    "extra array shape 2^40 x 2^40": lambda m: with_member(
        m, "arrays/big.npy", npy_header(shape=(2 ** 40, 2 ** 40))),
    "negative shape (-1,)": lambda m: with_member(m, "params.npy", npy_header(shape=(-1,))),
    "extra array negative shape (-2, -3)": lambda m: with_member(
        m, "arrays/neg.npy", npy_header(b"\x00" * 48, shape=(-2, -3))),
    "extra array negative shape (-1, 0)": lambda m: with_member(
        m, "arrays/neg.npy", npy_header(shape=(-1, 0))),
    # object dtypes: never unpickled
    "object params": lambda m: with_member(
        m, "params.npy", npy(np.array([{"x": 1}] * 3, dtype=object), allow_pickle=True)),
    "object metadata": lambda m: with_member(
        m, "metadata.npy", npy(np.array({"format": "cymlp-model"}, dtype=object),
                               allow_pickle=True)),
    "object extra array": lambda m: with_member(
        m, "arrays/x.npy", npy(np.array([None], dtype=object), allow_pickle=True)),
    "structured params": lambda m: with_member(
        m, "params.npy", npy(np.zeros(2, dtype=[("a", "<f8"), ("b", "O")]), allow_pickle=True)),
    # 0-d members
    "0-d params": lambda m: with_member(m, "params.npy", npy(np.float64(1.0))),
    "0-d step": lambda m: with_member(m, "step.npy", npy(np.int64(1))),
    "0-d state": lambda m: with_member(m, "optimizer_state.npy", npy(np.float64(0.0))),
    "1-d metadata": lambda m: with_member(m, "metadata.npy", npy(np.array(["{}", "{}"]))),
    "metadata of dtype <U0": lambda m: with_member(
        m, "metadata.npy", npy_header(descr="<U0", shape=())),
    "metadata of dtype |S5": lambda m: with_member(m, "metadata.npy", npy(np.bytes_(b"{}   "))),
    "big-endian params": lambda m: with_member(
        m, "params.npy", npy(m.net.params.astype(">f8"))),
    "npy format 3.0": lambda m: with_member(
        m, "params.npy", b"\x93NUMPY\x03\x00" + npy(m.net.params)[8:]),
    "header of 60 kB": lambda m: with_member(
        m, "params.npy", npy_header(b"", version=(2, 0), shape=(m.net.n_params,),
                                    junk="x" * 60_000)),
    "header nested 150 deep": lambda m: with_member(
        m, "params.npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (26,), "
                                 "'junk': " + _nested(150) + "}")),
    "header nested 3000 deep": lambda m: with_member(
        m, "params.npy", raw_npy("{'descr': " + _nested(3000) + "}")),
    "header calling a function": lambda m: with_member(
        m, "params.npy", raw_npy("{'descr': __import__('os').getcwd(), 'fortran_order': "
                                 "False, 'shape': (26,)}")),
    "header shape of a string": lambda m: with_member(
        m, "params.npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': 'abc'}")),
    "header shape of 1e400": lambda m: with_member(
        m, "params.npy", raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                 "'shape': (10**400,)}")),
    "header descr of a huge string dtype": lambda m: with_member(
        m, "metadata.npy", raw_npy("{'descr': '<U999999999999', 'fortran_order': False, "
                                   "'shape': ()}")),
    # JSON: negative counts, nesting, long strings, odd values
    "negative layer size": lambda m: with_metadata(m, layer_sizes=[3, -4, 2]),
    "negative seed": lambda m: with_metadata(m, seed=-1),
    "negative n_threads": lambda m: with_metadata(m, n_threads=-7),
    "negative version": lambda m: with_metadata(m, version=-1),
    "zero layer size": lambda m: with_metadata(m, layer_sizes=[3, 0, 2]),
    "layer sizes 1e30": lambda m: with_metadata(m, layer_sizes=[10 ** 30, 2]),
    "layer sizes as floats": lambda m: with_metadata(m, layer_sizes=[3.0, 4.0, 2.0]),
    "layer sizes as a dict": lambda m: with_metadata(m, layer_sizes={"a": 3, "b": 2}),
    "layer sizes as a string": lambda m: with_metadata(m, layer_sizes="342"),
    "activations as a string": lambda m: with_metadata(m, activations="relu"),
    "no activations": lambda m: with_metadata(m, activations=[]),
    "seed NaN": lambda m: with_metadata(m, seed=float("nan")),
    "seed Infinity": lambda m: with_metadata(m, seed=float("inf")),
    "dtype float16": lambda m: with_metadata(m, dtype="float16"),
    "dtype structured": lambda m: with_metadata(m, dtype="f8,f8"),
    "dtype datetime with bad unit": lambda m: with_metadata(m, dtype="M8[xx]"),
    "unknown optimizer": lambda m: with_metadata(m, optimizer="rmsprop"),
    "optimizer as a list": lambda m: with_metadata(m, optimizer=["adam"]),
    "rng state missing": lambda m: with_metadata(m, rng_state=None),
    "rng state with huge ints": lambda m: with_metadata(
        m, rng_state={**metadata_of(m)["rng_state"],
                      "state": {"state": 10 ** 60, "inc": -(10 ** 60)}}),
    "rng state of another generator": lambda m: with_metadata(
        m, rng_state=np.random.MT19937(0).state | {"state": {"key": [0], "pos": 0}}),
    "history flags as a list": lambda m: with_metadata(m, history=[1, 2, 3]),
    "history with negative best epoch": lambda m: with_metadata(
        m, history={"stopped_early": False, "best_epoch": -5}),
    "validation rows as a list": lambda m: with_metadata(m, validation_rows=[12, 0.25]),
    "validation fraction NaN": lambda m: with_metadata(
        m, validation_rows={"n_rows": 12, "fraction": float("nan")}),
    "validation n_rows below the rows": lambda m: with_metadata(
        m, validation_rows={"n_rows": 2, "fraction": 0.25}),
    # the history and validation members: refused from their headers
    "history member shape 1e12": lambda m: with_history(m, loss=npy_header(shape=(10 ** 12,))),
    "history member shape 2^31 x 2^31": lambda m: with_history(
        m, accuracy=npy_header(shape=(2 ** 31, 2 ** 31))),
    "history member negative shape": lambda m: with_history(m, val_loss=npy_header(shape=(-1,))),
    "history member declaring more than it holds": lambda m: with_history(
        m, loss=npy_header(b"\x00" * 16, shape=(1000,))),
    "object history member": lambda m: with_history(
        m, loss=npy(np.array([None] * n_epochs(m), dtype=object), allow_pickle=True)),
    "big-endian history member": lambda m: with_history(
        m, loss=npy(np.zeros(n_epochs(m), ">f8"))),
    "complex history member": lambda m: with_history(
        m, learning_rate=npy(np.zeros(n_epochs(m), complex))),
    "2-d history member": lambda m: with_history(m, loss=npy(np.zeros((n_epochs(m), 1)))),
    "history members of different lengths": lambda m: with_history(
        m, accuracy=npy(np.zeros(n_epochs(m) + 5))),
    "history member missing": lambda m: {k: v for k, v in members_of(m).items()
                                         if k != "history/learning_rate.npy"},
    "validation rows shape 1e12": lambda m: with_member(
        m, "validation_rows.npy", npy_header(descr="<i8", shape=(10 ** 12,))),
    "validation rows of uint64": lambda m: with_member(
        m, "validation_rows.npy", npy(np.array([1, 2], np.uint64))),
    "validation rows out of range": lambda m: with_member(
        m, "validation_rows.npy", npy(np.array([-1, 2]))),
    "validation rows member missing": lambda m: {k: v for k, v in members_of(m).items()
                                                 if k != "validation_rows.npy"},
    # version 1 (cymlp 0.1.0): the history inside the JSON
    "version 1: history with huge int": lambda m: version_1(m, history={"loss": [10 ** 400]}),
    "version 1: history as a list": lambda m: version_1(m, history=[1, 2, 3]),
    "version 1: history of strings": lambda m: version_1(m, history={"loss": ["a"]}),
    "version 1: history with history members": lambda m: {
        **version_1(m), "history/loss.npy": members_of(m)["history/loss.npy"]},
    "extra as a list": lambda m: with_metadata(m, extra=[1, 2]),
    "metadata a JSON list": lambda m: with_member(m, "metadata.npy", npy(np.array("[1, 2]"))),
    "metadata JSON null": lambda m: with_member(m, "metadata.npy", npy(np.array("null"))),
    "metadata empty": lambda m: with_member(m, "metadata.npy", npy(np.array(""))),
    "metadata with integer of 5000 digits": lambda m: with_member(
        m, "metadata.npy", npy(np.array('{"seed": ' + "9" * 5000 + "}"))),
    "metadata nested 100000 deep": lambda m: with_member(
        m, "metadata.npy", npy(np.array(_nested(100_000)))),
    "extra nested 50000 deep": lambda m: with_member(
        m, "metadata.npy", npy(np.array(json.dumps({**metadata_of(m), "extra": 0})
                                        .replace('"extra": 0', '"extra": ' + _nested(50_000))))),
    "init 500000 characters long": lambda m: with_metadata(m, init="x" * 500_000),
    "activation 500000 characters long": lambda m: with_metadata(
        m, activations=["relu", "y" * 500_000]),
    "format name 500000 characters long": lambda m: with_metadata(m, format="z" * 500_000),
    # members: too many, unexpected, traversal-looking names
    "65 extra arrays": lambda m: {**members_of(m),
                                  **{f"arrays/a{i}.npy": npy(np.zeros(1)) for i in range(65)}},
    "unexpected member": lambda m: with_member(m, "run_me.py", b"import os"),
    "directory entry": lambda m: with_member(m, "arrays/", b""),
}

# Odd values that do not affect the network: refusing them or loading the
# saved network unchanged are both acceptable.
ODD_BUT_HARMLESS = {
    "history with NaN losses": lambda m: with_history(
        m, loss=npy(np.full(n_epochs(m), np.nan))),
    "history with infinite accuracies": lambda m: with_history(
        m, accuracy=npy(np.full(n_epochs(m), -np.inf))),
    "history with per-epoch lists in the JSON too": lambda m: with_metadata(
        m, history={**metadata_of(m)["history"], "loss": [10 ** 400]}),
    "history with best epoch 1e400": lambda m: with_metadata(
        m, history={"stopped_early": True, "best_epoch": 10 ** 400}),
    "validation rows for 1e30 rows": lambda m: with_metadata(
        m, validation_rows={"n_rows": 10 ** 30, "fraction": 0.25}),
    "version 1: history with negative best epoch": lambda m: version_1(
        m, history={"loss": [1.0], "best_epoch": -5}),
    "version 1: history with NaN losses": lambda m: version_1(
        m, history={"loss": [float("nan")]}),
    "extra with 10000 keys": lambda m: with_metadata(m, extra={str(i): i for i in range(10_000)}),
    "unknown metadata keys": lambda m: with_metadata(m, comment="x" * 1000, more=[1, 2]),
    "version 2.0 as a float": lambda m: with_metadata(m, version=2.0),
    "version 1.0 as a float": lambda m: version_1(m, version=1.0),
    "version true": lambda m: version_1(m, version=True),
}

# Hostile but valid: must load, and give the saved network back.
VALID_VARIANTS = {
    "optimizer state in Fortran order": lambda m: with_member(
        m, "optimizer_state.npy", npy(np.asfortranarray(m.net.state_dict()["optimizer_state"]))),
    "history members in Fortran order": lambda m: with_history(
        m, loss=npy(np.asfortranarray(m.net.history.loss))),
    "version 1 file (as cymlp 0.1.0 wrote it)": version_1,
    "npy format 2.0 members": lambda m: {
        name: b"\x93NUMPY\x02\x00" + struct.pack("<I", struct.unpack("<H", d[8:10])[0]) + d[10:]
        for name, d in members_of(m).items()},
    "extra array with a traversal-looking name": lambda m: with_member(
        m, "arrays/../../../evil.npy", npy(np.zeros(3))),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_members_are_refused(model, case):
    path = model.directory / "hostile.npz"
    write_zip(path, HOSTILE[case](model))
    outcome, violation = judge(path, model)
    assert violation is None, f"{case}: {violation}"
    assert outcome == "refused", f"{case}: loaded"


@pytest.mark.parametrize("case", sorted(ODD_BUT_HARMLESS))
def test_odd_metadata_is_refused_or_harmless(model, case):
    path = model.directory / "odd.npz"
    write_zip(path, ODD_BUT_HARMLESS[case](model))
    outcome, violation = judge(path, model)
    assert violation is None, f"{case}: {violation}"


@pytest.mark.parametrize("case", sorted(VALID_VARIANTS))
def test_valid_variants_load(model, case):
    path = model.directory / "variant.npz"
    write_zip(path, VALID_VARIANTS[case](model))
    outcome, violation = judge(path, model)
    assert (outcome, violation) == ("loaded", None), f"{case}: {violation}"
    loaded, saved = cymlp.load(path, backend=model.backend).state_dict(), model.net.state_dict()
    np.testing.assert_array_equal(loaded["optimizer_state"], saved["optimizer_state"])
    assert (loaded["step"], loaded["optimizer"], loaded["rng_state"]) == (
        saved["step"], saved["optimizer"], saved["rng_state"])
    assert loaded["history"] == saved["history"]
    if not case.startswith("version 1"):        # version 1 had no validation rows
        np.testing.assert_array_equal(loaded["validation_rows"]["rows"],
                                      saved["validation_rows"]["rows"])


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                         zipfile.ZIP_LZMA], ids=["deflate", "bzip2", "lzma"])
def test_compressed_archives_load(model, compression):
    """A model re-zipped with compression (as np.savez_compressed would) is still valid."""
    path = model.directory / "compressed.npz"
    write_zip(path, members_of(model), compression)
    assert judge(path, model) == ("loaded", None)


@pytest.mark.parametrize("method", [1, 99])
def test_unsupported_compression_method_is_refused(model, method):
    """A member that claims a compression method zipfile does not implement."""
    path = model.directory / "method.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members_of(model).items():
            archive.writestr(name, data)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        start = archive.start_dir
    struct.pack_into("<H", data, start + 10, method)   # the first central directory entry
    path.write_bytes(bytes(data))
    assert judge(path, model) == ("refused", None)


@pytest.mark.parametrize("flag", [0x01, 0x20, 0x40], ids=["encrypted", "patched", "strong"])
def test_member_flagged_encrypted_or_patched_is_refused(model, flag):
    path = model.directory / "flagged.npz"
    path.write_bytes(model.data)
    data = bytearray(model.data)
    with zipfile.ZipFile(path) as archive:
        start = archive.start_dir
    data[start + 8] |= flag
    path.write_bytes(bytes(data))
    assert judge(path, model) == ("refused", None)


def _peak_bytes_while_loading(path, backend):
    tracemalloc.start()
    try:
        try:
            cymlp.load(path, backend=backend)
            outcome = "loaded"
        except ValueError as error:
            outcome = str(error)
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


def test_small_file_declaring_a_huge_network_is_refused_without_allocating_it(model):
    """A 4 KB file whose metadata declares layer_sizes [3000, 3000, 2] (9 million
    parameters) while params.npy holds 26: the loader builds the declared
    network (weights, two optimizer buffers, initial draws) before it
    compares the member's header with it. With [40000, 40000] it would try
    to allocate ~40 GB and get the process OOM-killed."""
    path = model.directory / "huge-network.npz"
    write_zip(path, with_metadata(model, layer_sizes=[3000, 3000, 2]))
    assert path.stat().st_size < 10_000
    peak, outcome = _peak_bytes_while_loading(path, model.backend)
    assert "huge-network.npz" in outcome
    assert peak < 32 * 2 ** 20, (
        f"loading a {path.stat().st_size}-byte file allocated {peak / 2 ** 20:.0f} MiB "
        f"before refusing it ({outcome[:100]})")


def test_metadata_size_limit_is_enforced(model):
    """_io.MAX_METADATA_CHARS (1 Mi characters) is documented as the metadata
    limit, but it is compared with the item count of a 0-d array (always 1):
    a metadata member of 8 Mi characters - here a deflated 'zip bomb' of 100
    KB - is read and decoded in full."""
    metadata = json.dumps(metadata_of(model))
    padded = np.array(metadata + " " * (8 * 2 ** 20 - len(metadata)))
    path = model.directory / "long-metadata.npz"
    write_zip(path, with_member(model, "metadata.npy", npy(padded)), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 200_000
    peak, outcome = _peak_bytes_while_loading(path, model.backend)
    assert outcome != "loaded", "8 Mi characters of metadata were accepted (limit: 1 Mi)"
    assert "long-metadata.npz" in outcome
    assert peak < 16 * 2 ** 20, f"{peak / 2 ** 20:.0f} MiB read before refusing"


def test_compressed_history_bomb_is_refused_without_inflating_it(model):
    """History members of 64 MiB of zeros each, deflated to a file of about
    300 KB: read in full they would become some 2 GiB of Python floats.
    A compressed history member may hold _io.MAX_INFLATED_BYTES (8 MiB, a
    million epochs) beyond its size in the archive; this is refused from the
    headers. (cymlp writes members uncompressed, and those have no limit.)"""
    zeros = npy(np.zeros(2 ** 23))
    path = model.directory / "history-bomb.npz"
    write_zip(path, with_history(model, **{key: zeros for key in HISTORY_KEYS}),
              zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1_000_000
    peak, outcome = _peak_bytes_while_loading(path, model.backend)
    assert "history-bomb.npz" in outcome and "more data" in outcome, outcome[:200]
    assert peak < 16 * 2 ** 20, f"{peak / 2 ** 20:.0f} MiB read before refusing"


# ---------------------------------------------------------------- saving cleanly

def _can_write_despite_permissions(directory):
    """Whether this process (e.g. root) ignores a read-only directory's mode."""
    probe = os.path.join(directory, ".probe")
    try:
        with open(probe, "wb"):
            pass
    except PermissionError:
        return False
    os.unlink(probe)
    return True


def test_save_into_read_only_directory_fails_cleanly(model, tmp_path):
    directory = tmp_path / "read-only"
    directory.mkdir()
    target = directory / "model.npz"
    target.write_bytes(model.data)
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if _can_write_despite_permissions(directory):
            pytest.skip("running as root: chmod does not stop writes "
                        "(test_save_failure_keeps_the_old_file covers this)")
        with pytest.raises(PermissionError) as raised:
            model.net.save(target)
        assert str(directory) in str(raised.value)
        assert target.read_bytes() == model.data
        assert sorted(os.listdir(directory)) == ["model.npz"]
    finally:
        directory.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("failing, error", [
    ("open", PermissionError(13, "Permission denied (simulated)")),
    ("replace", PermissionError(13, "Permission denied (simulated)")),
    ("fsync", OSError(28, "No space left on device (simulated)")),
], ids=["create-denied", "replace-denied", "fsync-disk-full"])
def test_save_failure_keeps_the_old_file(model, tmp_path, monkeypatch, failing, error):
    """Saving fails at each step of the atomic write (simulated: chmod does
    not stop root): the OSError propagates, the old file is intact and
    loadable, and no temporary file remains."""
    directory = tmp_path / "target"
    directory.mkdir()
    target = directory / "model.npz"
    target.write_bytes(model.data)

    def deny(*args, **kwargs):
        raise type(error)(error.errno, error.strerror, str(directory))

    other = MLP([3, 4, 2], activation="relu", output_activation="softmax",
                loss="cross_entropy", seed=99, backend=model.backend)
    monkeypatch.setattr(os, failing, deny)   # os.open creates the temporary file
    with pytest.raises(type(error), match="simulated") as raised:
        other.save(target)
    assert str(directory) in str(raised.value)
    monkeypatch.undo()
    assert target.read_bytes() == model.data
    assert sorted(os.listdir(directory)) == ["model.npz"], "a temporary file was left behind"
    np.testing.assert_array_equal(cymlp.load(target, backend=model.backend).params,
                                  model.net.params)


def test_save_onto_a_directory_fails_cleanly(model, tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    with pytest.raises(OSError) as raised:
        model.net.save(target)
    assert "taken" in str(raised.value)
    assert target.is_dir() and os.listdir(target) == []
    assert [name for name in os.listdir(tmp_path) if name.startswith(".cymlp-")] == []
