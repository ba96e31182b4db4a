"""Saved models: bit-exact round trips, continued training, atomic writes,
histories of any length, files of cymlp 0.1.0, and clear errors for files
that are not valid models."""

import base64
import io
import json
import math
import os
import stat
import zipfile
import zlib

import numpy as np
import pytest

import cymlp
from cymlp import MLP, History, _io

HISTORY_KEYS = ("loss", "accuracy", "learning_rate", "val_loss", "val_accuracy")


def trained(backend, dtype=np.float64, optimizer="adam", **net_options):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 40)]
    options = dict(activation=["relu", "tanh"], output_activation="softmax",
                   loss="cross_entropy", seed=3, dtype=dtype, backend=backend)
    options.update(net_options)
    net = MLP([6, 8, 5, 3], **options)
    net.fit(X, Y, epochs=3, batch_size=7, optimizer=optimizer, learning_rate=0.01,
            validation_split=0.2)
    return net, X, Y


def assert_same_state(loaded, net):
    """Every entry of the two networks' state dicts is identical (NaN equal to NaN)."""
    mine, theirs = loaded.state_dict(), net.state_dict()
    assert set(mine) == set(theirs)
    for key in ("params", "optimizer_state"):
        assert mine[key].dtype == theirs[key].dtype
        np.testing.assert_array_equal(mine[key], theirs[key])
    assert (mine["step"], mine["optimizer"]) == (theirs["step"], theirs["optimizer"])
    assert mine["rng_state"] == theirs["rng_state"]
    if theirs["validation_rows"] is None:
        assert mine["validation_rows"] is None
    else:
        mine_rows, their_rows = mine["validation_rows"], theirs["validation_rows"]
        assert (mine_rows["n_rows"], mine_rows["fraction"]) == (their_rows["n_rows"],
                                                                their_rows["fraction"])
        np.testing.assert_array_equal(mine_rows["rows"], their_rows["rows"])
    assert_same_history(mine["history"], theirs["history"])


def assert_same_history(history, expected):
    for key in HISTORY_KEYS:
        assert len(getattr(history, key)) == len(getattr(expected, key)), key
        np.testing.assert_array_equal(np.asarray(getattr(history, key), dtype=np.float64),
                                      np.asarray(getattr(expected, key), dtype=np.float64))
    assert (history.stopped_early, history.best_epoch) == (expected.stopped_early,
                                                           expected.best_epoch)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_round_trip_is_bit_exact(backend, dtype, tmp_path, optimizer):
    net, X, _ = trained(backend, dtype, optimizer)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = cymlp.load(path, backend=backend)
    assert loaded.layer_sizes == net.layer_sizes and loaded.activations == net.activations
    assert loaded.dtype == net.dtype and loaded.loss_name == net.loss_name
    np.testing.assert_array_equal(loaded.params, net.params)
    assert_same_state(loaded, net)
    assert loaded.state_dict()["validation_rows"] is not None   # the split was saved too
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert loaded.history == net.history
    assert loaded.weights[0].base is loaded.params or np.shares_memory(loaded.weights[0],
                                                                       loaded.params)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_continued_training_equals_uninterrupted(backend, tmp_path, optimizer):
    net, X, Y = trained(backend, optimizer=optimizer)
    path = tmp_path / "model.npz"
    net.save(path)
    options = dict(epochs=4, batch_size=5, optimizer=optimizer, learning_rate=0.01,
                   **({"momentum": 0.9} if optimizer == "sgd" else {}))
    net.fit(X, Y, **options)             # shuffles from the saved generator state
    loaded = cymlp.load(path, backend=backend)
    loaded.fit(X, Y, **options)
    np.testing.assert_array_equal(loaded.params, net.params)
    assert_same_state(loaded, net)


def test_continued_fit_validates_on_the_saved_rows(backend, tmp_path):
    """The validation split travels with the model: a fit after loading holds
    out the same rows (and draws the same shuffles) as one without the save."""
    net, X, Y = trained(backend)
    path = tmp_path / "model.npz"
    net.save(path)
    options = {"epochs": 2, "batch_size": 7, "learning_rate": 0.01, "validation_split": 0.2}
    net.fit(X, Y, **options)
    loaded = cymlp.load(path, backend=backend)
    loaded.fit(X, Y, **options)
    assert_same_state(loaded, net)
    assert len(loaded.history.val_loss) == 2


def test_load_on_the_other_backend(tmp_path):
    if len(cymlp.available_backends()) < 2:
        pytest.skip("needs both backends")
    net, X, _ = trained("cython")
    net.save(tmp_path / "m.npz")
    other = cymlp.load(tmp_path / "m.npz", backend="numpy")
    assert other.backend == "numpy"
    np.testing.assert_allclose(other.predict(X), net.predict(X), rtol=1e-12)


def test_format_is_documented_npz_without_pickle(backend, tmp_path):
    net, _, _ = trained(backend, bias=False)
    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as archive:   # plain NumPy reads it
        assert set(archive.files) == {"metadata", "params", "optimizer_state", "step",
                                      "validation_rows",
                                      *(f"history/{key}" for key in HISTORY_KEYS)}
        metadata = json.loads(str(archive["metadata"]))
        np.testing.assert_array_equal(archive["params"], net.params)
        for key in HISTORY_KEYS:
            assert archive[f"history/{key}"].dtype == np.float64
            np.testing.assert_array_equal(archive[f"history/{key}"], getattr(net.history, key))
        assert archive["validation_rows"].dtype == np.int64
        np.testing.assert_array_equal(archive["validation_rows"],
                                      net.state_dict()["validation_rows"]["rows"])
    assert metadata["format"] == "cymlp-model" and metadata["version"] == 2
    assert metadata["layer_sizes"] == [6, 8, 5, 3] and metadata["bias"] is False
    assert metadata["activations"] == ["relu", "tanh", "softmax"]
    assert metadata["history"] == {"stopped_early": False, "best_epoch": None}
    assert metadata["validation_rows"] == {"n_rows": 40, "fraction": 0.2}
    with zipfile.ZipFile(path) as archive:                 # stored, so nothing to inflate
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


def test_network_without_validation_split_has_no_validation_rows(backend, tmp_path):
    net = MLP([2, 3, 1], seed=0, backend=backend)
    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as archive:
        assert "validation_rows" not in archive.files
        assert json.loads(str(archive["metadata"]))["validation_rows"] is None
        assert archive["history/loss"].shape == (0,)
    loaded = cymlp.load(path, backend=backend)
    assert loaded.state_dict()["validation_rows"] is None and loaded.history == History()


def test_history_of_a_million_epochs_saves_and_loads(backend, tmp_path):
    """Issue 9, item 8: the history is stored as arrays, not in the size-capped
    JSON metadata, so however long a network trained, its file loads with
    every value intact (NaN and infinities included) and small metadata."""
    n_epochs = 10 ** 6
    epochs = np.arange(n_epochs, dtype=np.float64)
    history = History(loss=(1.0 / (1.0 + epochs)).tolist(),
                      accuracy=(epochs % 101 / 100).tolist(),
                      learning_rate=[0.1] * n_epochs,
                      val_loss=(2.0 / (1.0 + epochs)).tolist(),
                      val_accuracy=(epochs % 7 / 7).tolist(),
                      stopped_early=True, best_epoch=n_epochs - 7)
    history.loss[5], history.val_loss[-1], history.accuracy[9] = math.nan, math.inf, -math.inf
    net = MLP([2, 3, 1], seed=0, backend=backend)
    net.load_state_dict({**net.state_dict(), "history": history})
    path = tmp_path / "long.npz"
    net.save(path)
    loaded = cymlp.load(path, backend=backend)
    assert loaded.history.epochs == n_epochs
    assert_same_history(loaded.history, history)
    np.testing.assert_array_equal(loaded.params, net.params)
    with zipfile.ZipFile(path) as archive:
        metadata_bytes = archive.getinfo("metadata.npy").file_size
    assert metadata_bytes < 4 * 2000, f"metadata grew to {metadata_bytes} bytes"
    with np.load(path, allow_pickle=False) as archive:
        assert len(str(archive["metadata"])) < 2000

    # Re-compressed (as np.savez_compressed would), a million epochs still load.
    compressed = tmp_path / "long-deflated.npz"
    _rewrite(path, compressed, lambda members: members, zipfile.ZIP_DEFLATED)
    assert compressed.stat().st_size < path.stat().st_size
    assert_same_history(cymlp.load(compressed, backend=backend).history, history)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_file_gets_the_mode_the_umask_gives(backend, tmp_path, umask, mode):
    """A model file is a normal file: its mode is 0o666 less the umask, as for
    any file the user creates, also when it replaces an existing model."""
    net, _, _ = trained(backend)
    path, plain = tmp_path / "model.npz", tmp_path / "plain.txt"
    previous = os.umask(umask)
    try:
        net.save(path)
        first = stat.S_IMODE(path.stat().st_mode)
        net.save(path)
        plain.write_text("a file made the ordinary way")
    finally:
        os.umask(previous)
    assert first == mode
    assert stat.S_IMODE(path.stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)
    assert sorted(os.listdir(tmp_path)) == ["model.npz", "plain.txt"]


def test_save_replaces_atomically_and_leaves_no_temporary(backend, tmp_path, monkeypatch):
    net, X, _ = trained(backend)
    path = tmp_path / "model.npz"
    net.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(np.lib.format, "write_array", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        net.save(path)
    assert path.read_bytes() == before                  # the old model is intact
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # and no temporary is left


def test_save_into_missing_directory_fails_cleanly(backend, tmp_path):
    net, _, _ = trained(backend)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.save(tmp_path / "missing" / "model.npz")


def _nan_params(net):
    net.params[0] = np.nan


def _inconsistent_history(net):
    # history is a public attribute: a user can set one that load_state_dict refuses.
    net.history = History(loss=[1.0, 2.0, 3.0], accuracy=[0.5, 0.5], learning_rate=[0.1] * 3)


def _history_of_text(net):
    net.history = History(loss=["low"], accuracy=[0.5], learning_rate=[0.1])


def _zero_best_epoch(net):
    net.history = History(loss=[1.0], accuracy=[0.5], learning_rate=[0.1], best_epoch=0)


@pytest.mark.parametrize("spoil, options, fragment", [
    (_nan_params, {}, "NaN"),
    (_inconsistent_history, {}, "inconsistent"),
    (_history_of_text, {}, "history.loss"),
    (_zero_best_epoch, {}, "best_epoch"),
    (None, {"extra": {"labels": ["x" * 100] * 20_000}}, "metadata"),
    (None, {"arrays": {f"a{i}": np.zeros(1) for i in range(_io.MAX_EXTRA_ARRAYS + 1)}},
     "extra arrays"),
], ids=["nan-params", "inconsistent-history", "text-history", "zero-best-epoch",
        "huge-extra", "too-many-arrays"])
def test_save_refuses_what_load_would_refuse(backend, tmp_path, spoil, options, fragment):
    """save never writes a file load refuses: it raises first and writes nothing."""
    net, _, _ = trained(backend)
    path = tmp_path / "model.npz"
    net.save(path)
    before = path.read_bytes()
    if spoil is not None:
        spoil(net)
    with pytest.raises(ValueError, match=fragment) as raised:
        _io.save_network(net, path, **options)
    assert "model.npz" in str(raised.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_missing_file(backend, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        cymlp.load(tmp_path / "nothing.npz", backend=backend)


# ---------------------------------------------------------------- version 1 (cymlp 0.1.0)

# A model saved by cymlp 0.1.0 (zlib-compressed, base64): MLP([2, 3, 1],
# activation="tanh", seed=5), trained 3 epochs with Adam (learning_rate 0.05,
# batch_size 4, validation_split 0.2, early stopping) on rows of
# default_rng(0).normal(size=(10, 2)), its history then given an inf loss
# and a NaN val_loss (stored as null), saved with extra={"classes": ["no",
# "yes"]} and arrays={"mean": [0.5, -1.0]}.
_MODEL_SAVED_BY_0_1_0 = (
    "eNqtWGtMHFUUHqQY2NKWijU1GrJFyra40H2wuyxpdrQ1pbG23R+gJYhk2J2F1X1lZopdHlpprNvUGAomQsBY"
    "G6sSUJvGGlNMJraxNiWNkpgYaUjwBwmGRBtQiW2C3inn2rPXGUBxNyd35t7z+M7jvsa/L3NNKbf428JZprc+"
    "/Sf8crn7uaioCEFBEcpiiWQGl8dNrl3kpG3PgZr9/toMroVrswRFOSBZKs2WnTUeR4XFaraE4pIiCbGGuBQU"
    "tZE9QkQWSb/cLCRE8r5tu9XcYV7Fz9RGMBQSChGKE5IIRQkJhBQYqyRkhucAoSTwRAglCJXCuyYfJCTCmMZv"
    "RbItMKbZkAmFQSbG2LEzchHAk0TyDUhHK/TLjJ46Qg6ky4meNRv1jB0B/FNAbwuKA8aqZ6cQ+ATgadbxn+Jt"
    "QvEKQ8wKdfBEgEfWsVkIOmTwnbXVCLoFHVkFYngYZLFcGPCHDfLfhHBJ0CqQj8NIlq0nFl8Q5JJQQ6KOrRCy"
    "RfPgJlRuEFsRKMjocjG8McCrQJ4kkBNAlo1XDHyLAGFdccBPayTK1KSk4xe1IxjERgKbTajOFRQDNlZtTM5p"
    "PpqAN4awUB1xA2x+QrsJVS0T65XgWY5Pm4MVkB8PIS8iG8zXchhzoNYNcpSHPlOiMlS3ndFN7ZWDPju0Nnj2"
    "GMyJAIPfAfadyIYT5F0ITwX0uRE+L7T03c70u5AfLoSLxqwc9FHcDjSm6ehgfGhGawGdq9QvBXA7GP9sjA5W"
    "RkQ1xtaSF/lMdbvQu90AYxjVDa3RpEF9LbU+1gH+MrBdAXZpDmgtuJnWi3JAyYriUYZiXc7Ulgflzotya0N5"
    "cgNZDdYWoz0pAHwS6ksu4TOuQxa/Xp8b5aheZ98WAF/Dv4i7k6lND6pdJ9N6gceJ5oxe3CtQLF1MrB0ol3Tu"
    "4HVkpTFn/f2vOVhp7F0Gez/dkyS0r+J9QVpibcU4bAZ2l+uvN1j36Z6XQPttA4M3ohObEIqrrHP2aETnOAXp"
    "TIDNADpXVaIzHbuOaDJH0DlHMFg/AuhsKSNMRue7GOBg98MkI1cPmDTyp90OhEdjxfR2YCK3g4QgCVGZ3g2m"
    "gY+2+neD0MpuBnandZWXA9Nc1sWj0q1xPlhXdPm5rT/wxwcHhl7q/Fbdcd9o70+TU6r/pO/ktdo59eDtvhdm"
    "UpPqpzeGvizo7lDfahze+OrpXjXHdb3/zPwb/OaOc7OZ9mGeW/Net++3GbVxYeKX/gO/q89MP/bOQ+4+NT1G"
    "69+uPU9jlE9iFE8o4Wi4VZQaZEVQRBosf8aiAG1XFSyH1Wx3ripcpkt5xaOdYy387fDIprK2j/n8mgc2pnI+"
    "5z8pGd8y8qDIH/ugdfTCjz38mUfWLrQq/fyJ6vrw6cpq/onG1NlzT3byJXN/fLZtIsJffbn3G6syoL5+YvP5"
    "kvZT6kc3Hr855OriP/SM5E8V7Vb3jnv2nC257HvKNzhS9XABv2v717aZWTvPFV9amOp733dlf22p9Ou876tj"
    "zqtV7Rz/5l7TKztfvOAbyH7tiliUw/smDv2cmbuO7+4/PhNvX/CNDc6PHbo+6zsyfOvawVMTvrZNoeZn5Sw+"
    "PSmWnrFqmpRskhRZERM0EyngSi1ZtuEVlq111VfaewFHugdffHfxXerBBuKBIElCUt4RFYUYdaQLmLu4/6Wk"
    "Vu0IfCngF9ubZJ5k3FOamf6tQfuOoFEud/d39M6UwF8eWEltHZqGlcaUJllAFN1dlVg5bW5qE06j/DS5Xes4"
    "vZn6D8ikjlJQK9lpCr5fz/1dVayUlrsuSMyGNKk+8spk0r8v604FZJF/McH5fJ729hfF/X9e"
)
_PREDICTIONS_BY_0_1_0 = [[0.4383019665820962], [0.5446313127747938]]


def test_model_saved_by_cymlp_0_1_0_loads(backend, tmp_path):
    path = tmp_path / "old.npz"
    path.write_bytes(zlib.decompress(base64.b64decode("".join(_MODEL_SAVED_BY_0_1_0))))
    with np.load(path, allow_pickle=False) as archive:
        assert json.loads(str(archive["metadata"]))["version"] == 1
        saved_params = archive["params"]
    net, extra, arrays = _io.load_network(path, backend=backend)
    np.testing.assert_array_equal(net.params, saved_params)
    X = np.random.default_rng(0).normal(size=(10, 2))
    np.testing.assert_allclose(net.predict(X[:2]), _PREDICTIONS_BY_0_1_0, rtol=1e-12)
    state = net.state_dict()
    assert (state["step"], state["optimizer"], state["validation_rows"]) == (6, "adam", None)
    expected = History(loss=[0.2836099696999444, 0.21419974590402066, math.nan],
                       accuracy=[0.375, 0.5, 0.625],
                       val_loss=[0.3021784343491308, 0.2820559029647034, math.nan],
                       val_accuracy=[0.5, 0.5, 0.5], learning_rate=[0.05] * 3,
                       stopped_early=False, best_epoch=3)
    assert_same_history(net.history, expected)
    assert extra == {"classes": ["no", "yes"]}
    assert list(arrays) == ["mean"]
    np.testing.assert_array_equal(arrays["mean"], [0.5, -1.0])

    # Saved again, it is a version-2 file with the same content.
    _io.save_network(net, tmp_path / "new.npz", extra=extra, arrays=arrays)
    with np.load(tmp_path / "new.npz", allow_pickle=False) as archive:
        assert json.loads(str(archive["metadata"]))["version"] == 2
    again, extra_again, arrays_again = _io.load_network(tmp_path / "new.npz", backend=backend)
    assert_same_state(again, net)
    assert extra_again == extra and list(arrays_again) == ["mean"]


def test_version_1_file_as_written_by_0_1_0_round_trips(backend, tmp_path):
    """The test's own version-1 writer (below) gives what 0.1.0 wrote: it loads
    to the same network, history included (its validation split is not kept)."""
    net, X, _ = trained(backend)
    good, old = tmp_path / "good.npz", tmp_path / "old.npz"
    net.save(good)
    _rewrite(good, old, _as_version_1)
    loaded = cymlp.load(old, backend=backend)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert loaded.history == net.history
    assert loaded.state_dict()["validation_rows"] is None
    np.testing.assert_array_equal(loaded.state_dict()["optimizer_state"],
                                  net.state_dict()["optimizer_state"])


# ---------------------------------------------------------------- invalid files

def _rewrite(source, target, change, compression=zipfile.ZIP_STORED):
    """Copy a model archive, letting ``change(members)`` alter its members."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members = change(members)
    with zipfile.ZipFile(target, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _array(members, name):
    return np.lib.format.read_array(io.BytesIO(members[name]))


def _metadata(members):
    return json.loads(str(_array(members, "metadata.npy")))


def _with_metadata(members, **changes):
    metadata = _metadata(members)
    metadata.update(changes)
    members["metadata.npy"] = _npy(np.array(json.dumps(metadata)))
    return members


def _as_version_1(members, **history_changes):
    """The model as cymlp 0.1.0 wrote it: per-epoch lists (non-finite values
    as null) in the JSON history, no history members, no validation rows."""
    metadata = _metadata(members)
    history = {key: [float(v) if np.isfinite(v) else None
                     for v in _array(members, f"history/{key}.npy")] for key in HISTORY_KEYS}
    history.update(metadata["history"], **history_changes)
    del metadata["validation_rows"]
    metadata.update(version=1, history=history)
    members = {name: data for name, data in members.items()
               if not name.startswith("history/") and name != "validation_rows.npy"}
    members["metadata.npy"] = _npy(np.array(json.dumps(metadata)))
    return members


def _size(members):
    return _array(members, "params.npy").shape[0]


def _epochs(members):
    return _array(members, "history/loss.npy").shape[0]


def _huge_header(shape, descr="<f8"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue() + b"\x00" * 64


@pytest.mark.parametrize("damage, fragment", [
    (lambda m: {k: v for k, v in m.items() if k != "params.npy"}, "lacks params.npy"),
    (lambda m: {**m, "params.npy": _npy(np.zeros(5))}, "shape|more than params.npy holds"),
    (lambda m: {**m, "params.npy": _npy(np.full(_size(m), np.nan))}, "NaN"),
    (lambda m: {**m, "params.npy": _npy(np.zeros(_size(m), np.float32))},
     "dtype|more than params.npy holds"),
    (lambda m: {**m, "params.npy": m["params.npy"][:-8]}, "truncated|more than params.npy holds"),
    (lambda m: {**m, "step.npy": _npy(np.array([-1], np.int64))}, r"step.*>= 0"),
    (lambda m: _with_metadata(m, version=99), "version 99"),
    (lambda m: _with_metadata(m, format="something-else"), "format"),
    (lambda m: _with_metadata(m, activations=["relu", "swish", "softmax"]), "architecture"),
    (lambda m: _with_metadata(m, layer_sizes=[6, -8, 5, 3]), "architecture"),
    (lambda m: _with_metadata(m, rng_state={"bit_generator": "MT19937"}), "generator"),
    (lambda m: {**m, "metadata.npy": _npy(np.array("{not json"))}, "JSON"),
    (lambda m: {**m, "metadata.npy": _npy(np.zeros(3))}, "metadata"),
    (lambda m: {**m, "evil.py": b"import os"}, "unexpected members"),
    (lambda m: {**m, "params.npy": b"\x93NUMPY\x01\x00" + b"\xff" * 20},
     "header|more than params.npy holds"),
    # the per-epoch history members
    (lambda m: {k: v for k, v in m.items() if k != "history/loss.npy"}, "lacks history/loss"),
    (lambda m: {**m, "history/loss.npy": _npy(np.zeros(_epochs(m), np.float32))}, "dtype"),
    (lambda m: {**m, "history/accuracy.npy": _npy(np.zeros(_epochs(m), np.int64))}, "dtype"),
    (lambda m: {**m, "history/loss.npy": _npy(np.zeros((_epochs(m), 1)))}, "dimension"),
    (lambda m: {**m, "history/learning_rate.npy": _npy(np.float64(0.1))}, "dimension"),
    (lambda m: {**m, "history/accuracy.npy": _npy(np.zeros(_epochs(m) - 1))}, "inconsistent"),
    (lambda m: {**m, "history/val_loss.npy": _npy(np.zeros(0))}, "inconsistent"),
    (lambda m: {**m, "history/val_accuracy.npy": _npy(np.zeros(_epochs(m) + 1))},
     "inconsistent"),
    (lambda m: {**m, "history/loss.npy": _huge_header((1000,))}, "more data"),
    (lambda m: {**m, "history/val_loss.npy": m["history/val_loss.npy"][:-8]},
     "truncated|more data"),
    (lambda m: _with_metadata(m, history={"stopped_early": "no", "best_epoch": None}),
     "stopped_early"),
    (lambda m: _with_metadata(m, history={"stopped_early": False, "best_epoch": 0}),
     "best_epoch"),
    (lambda m: _with_metadata(m, history=[1, 2, 3]), "history"),
    # the validation split
    (lambda m: {k: v for k, v in m.items() if k != "validation_rows.npy"},
     "lacks validation_rows"),
    (lambda m: {**m, "validation_rows.npy": _npy(np.array([1.0, 2.0]))}, "dtype"),
    (lambda m: {**m, "validation_rows.npy": _npy(np.array([[1, 2]]))}, "dimension"),
    (lambda m: {**m, "validation_rows.npy": _npy(np.array([3, 2, 1]))}, "validation_rows"),
    (lambda m: {**m, "validation_rows.npy": _npy(np.array([0, 40]))}, "validation_rows"),
    (lambda m: _with_metadata(m, validation_rows=None), "unexpected members"),
    (lambda m: _with_metadata(m, validation_rows=[40, 0.2]), "validation_rows"),
    (lambda m: _with_metadata(m, validation_rows={"n_rows": 40}), "validation_rows"),
    # version 1: the history inside the JSON
    (lambda m: _as_version_1(m, loss=[1.0]), "inconsistent"),
    (lambda m: _as_version_1(m, loss=["low", "high", "low"]), "history"),
    (lambda m: _as_version_1(m, best_epoch=-2), "best_epoch"),
    (lambda m: {**_as_version_1(m), "history/loss.npy": m["history/loss.npy"]},
     "unexpected members"),
    (lambda m: _with_metadata(_as_version_1(m), history=[1, 2, 3]), "history"),
], ids=["missing-member", "wrong-shape", "nan", "wrong-dtype", "truncated", "negative-step",
        "version", "foreign-format", "unknown-activation", "bad-sizes", "bad-rng",
        "bad-json", "metadata-not-text", "extra-member", "damaged-header",
        "history-missing", "history-float32", "history-int64", "history-2d", "history-0d",
        "history-lengths-disagree", "history-val-missing", "history-val-longer",
        "history-declares-more-than-file", "history-truncated", "history-stopped-early-text",
        "history-best-epoch-zero", "history-flags-a-list",
        "validation-member-missing", "validation-float", "validation-2d",
        "validation-unsorted", "validation-out-of-range", "validation-member-unexpected",
        "validation-metadata-a-list", "validation-metadata-incomplete",
        "v1-history-lengths-disagree", "v1-history-text", "v1-negative-best-epoch",
        "v1-with-history-member", "v1-history-a-list"])
def test_invalid_files_raise_value_error_naming_the_file(backend, tmp_path, damage, fragment):
    net, _, _ = trained(backend)
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    net.save(good)
    _rewrite(good, bad, damage)
    with pytest.raises(ValueError, match=fragment) as raised:
        cymlp.load(bad, backend=backend)
    assert "bad.npz" in str(raised.value)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated"],
                         ids=["empty", "text", "truncated-zip"])
def test_garbage_files(backend, tmp_path, content):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="garbage.npz"):
        cymlp.load(path, backend=backend)


def test_pickle_and_plain_npz_are_refused(backend, tmp_path):
    import pickle
    net, _, _ = trained(backend)
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(net))
    with pytest.raises(ValueError, match="model.pkl"):
        cymlp.load(pickled, backend=backend)
    plain = tmp_path / "plain.npz"
    np.savez(plain, X=np.ones((2, 2)))
    with pytest.raises(ValueError, match="lacks"):
        cymlp.load(plain, backend=backend)
    objects = tmp_path / "objects.npz"
    with zipfile.ZipFile(objects, "w") as archive:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        for name in ("metadata.npy", "params.npy", "optimizer_state.npy", "step.npy"):
            archive.writestr(name, buffer.getvalue())
    with pytest.raises(ValueError, match="objects"):
        cymlp.load(objects, backend=backend)


@pytest.mark.parametrize("member", ["params.npy", "history/loss.npy", "validation_rows.npy"])
def test_huge_declared_shape_is_refused_before_allocation(backend, tmp_path, member):
    net, _, _ = trained(backend)
    good, bad = tmp_path / "good.npz", tmp_path / "huge.npz"
    net.save(good)
    descr = "<i8" if member == "validation_rows.npy" else "<f8"

    def change(members):
        members[member] = _huge_header((10 ** 12,), descr)
        return members

    _rewrite(good, bad, change)
    with pytest.raises(ValueError, match="shape|more data"):
        cymlp.load(bad, backend=backend)


@pytest.mark.parametrize("history, error, fragment", [
    (History(loss=[1.0, 2.0], accuracy=[0.5], learning_rate=[0.1] * 2), ValueError,
     r"^state\['history'\]: loss, accuracy and learning_rate must have one length"),
    (History(loss=["low"], accuracy=[0.5], learning_rate=[0.1]), TypeError,
     r"^state\['history'\]\.loss must be a list of real numbers"),
    (History(loss=[1.0], accuracy=[0.5], learning_rate=[0.1], best_epoch=2), ValueError,
     r"^state\['history'\]\.best_epoch must be None or an epoch from 1 to 1"),
    (History(loss=[1.0], accuracy=[0.5], learning_rate=[0.1], val_loss=[1.0]), ValueError,
     r"^state\['history'\]: val_loss and val_accuracy"),
], ids=["lengths", "text", "best-epoch-past-the-end", "val-lengths"])
def test_load_state_dict_refuses_an_inconsistent_history(backend, history, error, fragment):
    net, _, _ = trained(backend)
    before = net.state_dict()
    with pytest.raises(error, match=fragment):
        net.load_state_dict({**before, "history": history})
    np.testing.assert_array_equal(net.params, before["params"])
    assert net.history == before["history"]
