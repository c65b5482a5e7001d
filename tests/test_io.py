"""fg.save / fg.load: round trips, atomic writes, and refusal of bad files."""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest

import fungrad as fg
from fungrad.errors import CheckpointError


def _model():
    return fg.nn.Sequential([fg.nn.Embedding(5, 3, rng=0), fg.nn.Tanh(),
                             fg.nn.Linear(3, 2, rng=1)])


def _files(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_module_round_trip(tmp_path):
    a, b = _model(), fg.nn.Sequential([fg.nn.Embedding(5, 3, rng=7), fg.nn.Tanh(),
                                       fg.nn.Linear(3, 2, rng=8)])
    path = tmp_path / "model.npz"
    fg.save(path, a)
    assert _files(tmp_path) == ["model.npz"]  # no temporary file left
    state = fg.load(path)
    assert list(state) == list(a.state_dict())
    b.load_state_dict(state)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    x = np.array([0, 3, 4])
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_dict_round_trip_keeps_dtypes_and_odd_names(tmp_path):
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.array(7),
             "file": np.ones(2), "a/b.c": np.zeros((0, 3)), "t": fg.Tensor([1.5, 2.5])}
    path = str(tmp_path / "state.npz")
    fg.save(path, state)
    loaded = fg.load(path)
    assert sorted(loaded) == sorted(state)
    assert loaded["w"].dtype == np.float32 and loaded["step"].dtype == np.array(7).dtype
    np.testing.assert_array_equal(loaded["t"], [1.5, 2.5])
    assert loaded["a/b.c"].shape == (0, 3)
    with np.load(path, allow_pickle=False) as npz:  # a plain .npz
        np.testing.assert_array_equal(npz["w"], state["w"])


def test_save_replaces_an_existing_file_atomically(tmp_path):
    path = tmp_path / "ckpt.npz"
    fg.save(path, {"x": np.zeros(3)})
    fg.save(path, {"x": np.ones(3)})
    np.testing.assert_array_equal(fg.load(path)["x"], np.ones(3))
    assert _files(tmp_path) == ["ckpt.npz"]


def test_a_failed_save_leaves_no_stray_file_and_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    fg.save(path, {"x": np.zeros(3)})
    calls = []

    def failing_write(member, arr, allow_pickle=False):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(member, arr, allow_pickle=allow_pickle)

    original = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="disk full"):
        fg.save(path, {"a": np.ones(2), "b": np.ones(2)})
    monkeypatch.undo()
    assert _files(tmp_path) == ["ckpt.npz"]
    np.testing.assert_array_equal(fg.load(path)["x"], np.zeros(3))


def test_save_refuses_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="'bad' has dtype object"):
        fg.save(tmp_path / "x.npz", {"bad": np.array([{"a": 1}], dtype=object)})
    assert _files(tmp_path) == []
    with pytest.raises(TypeError, match="Module or a mapping"):
        fg.save(tmp_path / "x.npz", [np.ones(2)])


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="nope.npz"):
        fg.load(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "model.npz"
    fg.save(path, _model())
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="model.npz"):
            fg.load(path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "model.npz"
    fg.save(path, {"w": np.arange(100.0)})
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the array bytes: the CRC check catches it
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.npz"):
        fg.load(path)
    path.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="model.npz"):
        fg.load(path)


def test_pickled_files_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, ok=np.ones(2), bad=np.array([{"a": 1}], dtype=object))  # pickles "bad"
    with pytest.raises(CheckpointError, match="objects.npz.*pickle"):
        fg.load(path)
    plain = tmp_path / "model.pkl"
    plain.write_bytes(pickle.dumps({"w": np.ones(2)}))
    with pytest.raises(CheckpointError, match="model.pkl"):
        fg.load(plain)


def test_non_array_members_are_refused(tmp_path):
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match="readme.txt"):
        fg.load(path)


def test_loading_a_mismatched_checkpoint_leaves_the_model_untouched(tmp_path):
    path = tmp_path / "small.npz"
    fg.save(path, fg.nn.Sequential([fg.nn.Embedding(5, 3, rng=0), fg.nn.Tanh(),
                                    fg.nn.Linear(3, 4, rng=1)]))  # 4 outputs, not 2
    model = _model()
    before = model.state_dict()
    with pytest.raises(CheckpointError, match=r"layers\.2\.weight.*shape \(3, 4\)"):
        model.load_state_dict(fg.load(path))
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
