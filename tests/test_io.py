"""Saved models: bit-exact round trips, continued training, atomic writes,
and clear errors for files that are not valid models."""

import json
import os
import zipfile

import numpy as np
import pytest

import cymlp
from cymlp import MLP


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


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_round_trip_is_bit_exact(backend, dtype, tmp_path, optimizer):
    net, X, _ = trained(backend, dtype, optimizer)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = cymlp.load(path, backend=backend)
    assert loaded.layer_sizes == net.layer_sizes and loaded.activations == net.activations
    assert loaded.dtype == net.dtype and loaded.loss_name == net.loss_name
    np.testing.assert_array_equal(loaded.params, net.params)
    np.testing.assert_array_equal(loaded._state, net._state)
    np.testing.assert_array_equal(loaded._step, net._step)
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
    np.testing.assert_array_equal(loaded._state, net._state)


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
        assert set(archive.files) == {"metadata", "params", "optimizer_state", "step"}
        metadata = json.loads(str(archive["metadata"]))
        np.testing.assert_array_equal(archive["params"], net.params)
    assert metadata["format"] == "cymlp-model" and metadata["version"] == 1
    assert metadata["layer_sizes"] == [6, 8, 5, 3] and metadata["bias"] is False
    assert metadata["activations"] == ["relu", "tanh", "softmax"]


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


def test_missing_file(backend, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        cymlp.load(tmp_path / "nothing.npz", backend=backend)


def _rewrite(source, target, change):
    """Copy a model archive, letting ``change(name, data)`` alter members."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members = change(members)
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy(array):
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _with_metadata(members, **changes):
    import io
    metadata = json.loads(str(np.lib.format.read_array(io.BytesIO(members["metadata.npy"]))))
    metadata.update(changes)
    members["metadata.npy"] = _npy(np.array(json.dumps(metadata)))
    return members


@pytest.mark.parametrize("damage, fragment", [
    (lambda m: {k: v for k, v in m.items() if k != "params.npy"}, "lacks params.npy"),
    (lambda m: {**m, "params.npy": _npy(np.zeros(5))}, "shape|more than params.npy holds"),
    (lambda m: {**m, "params.npy": _npy(np.full(_size(m), np.nan))}, "NaN"),
    (lambda m: {**m, "params.npy": _npy(np.zeros(_size(m), np.float32))},
     "dtype|more than params.npy holds"),
    (lambda m: {**m, "params.npy": m["params.npy"][:-8]}, "truncated|more than params.npy holds"),
    (lambda m: {**m, "step.npy": _npy(np.array([-1], np.int64))}, "inconsistent"),
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
], ids=["missing-member", "wrong-shape", "nan", "wrong-dtype", "truncated", "negative-step",
        "version", "foreign-format", "unknown-activation", "bad-sizes", "bad-rng",
        "bad-json", "metadata-not-text", "extra-member", "damaged-header"])
def test_invalid_files_raise_value_error_naming_the_file(backend, tmp_path, damage, fragment):
    net, _, _ = trained(backend)
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    net.save(good)
    _rewrite(good, bad, damage)
    with pytest.raises(ValueError, match=fragment) as raised:
        cymlp.load(bad, backend=backend)
    assert "bad.npz" in str(raised.value)


def _size(members):
    import io
    return np.lib.format.read_array(io.BytesIO(members["params.npy"])).shape[0]


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
        import io
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        for name in ("metadata.npy", "params.npy", "optimizer_state.npy", "step.npy"):
            archive.writestr(name, buffer.getvalue())
    with pytest.raises(ValueError, match="objects"):
        cymlp.load(objects, backend=backend)


def test_huge_declared_shape_is_refused_before_allocation(backend, tmp_path):
    net, _, _ = trained(backend)
    good, bad = tmp_path / "good.npz", tmp_path / "huge.npz"
    net.save(good)
    header = {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)}

    def change(members):
        import io
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, header)
        members["params.npy"] = buffer.getvalue() + b"\x00" * 64
        return members

    _rewrite(good, bad, change)
    with pytest.raises(ValueError, match="shape"):
        cymlp.load(bad, backend=backend)
