"""fg.save / fg.load: round trips, atomic writes, and refusal of bad files. Issue 11's
reproducers carry their item number in the test's name (test_item17_...)."""

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


# --------------------------------------------------------------------------- issue 11 item 1


def test_item01_loading_weights_between_forward_and_backward_is_detected(tmp_path):
    """The issue's reproducer: the gradient would be that of the *new* weights."""
    model, other = fg.nn.Linear(3, 1, rng=0), fg.nn.Linear(3, 1, rng=1)
    x = np.ones((2, 3))
    loss = fg.sum(model(x) ** 2)
    model.load_state_dict(other.state_dict())
    with pytest.raises(fg.errors.GraphError, match="modified in place"):
        loss.backward()
    fg.save(tmp_path / "other.npz", other)
    loss = fg.sum(model(x) ** 2)
    model.load_state_dict(fg.load(tmp_path / "other.npz"))
    with pytest.raises(fg.errors.GraphError, match="modified in place"):
        loss.backward()
    loss = fg.sum(model(x) ** 2)  # recorded after the load: fine
    loss.backward()
    assert model.weight.grad is not None


# --------------------------------------------------------------------------- issue 11 item 18


def test_item18_loading_into_a_read_only_parameter_changes_nothing():
    model = _model()
    target = fg.nn.Sequential([fg.nn.Embedding(5, 3, rng=3), fg.nn.Tanh(),
                               fg.nn.Linear(3, 2, rng=4)])
    target.layers[2].weight.data.setflags(write=False)
    before = target.state_dict()
    with pytest.raises(CheckpointError, match=r"nothing was loaded.*'layers\.2\.weight' is "
                       r"read-only"):
        target.load_state_dict(model.state_dict())
    for name, value in target.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


# --------------------------------------------------------------------------- issue 11 item 17


def _npz_with_member(path, header: dict, payload: bytes, compress=zipfile.ZIP_STORED):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        zf.writestr("x.npy", buf.getvalue() + payload)


def test_item17_a_header_declaring_a_huge_shape_is_refused(tmp_path):
    path = tmp_path / "huge.npz"
    _npz_with_member(path, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)},
                     b"\0" * 8)
    assert path.stat().st_size < 400
    with pytest.raises(CheckpointError, match=r"huge\.npz.*declares shape \(1000000000000,\).*"
                       r"holds 8 bytes"):
        fg.load(path)


def test_item17_decompression_stops_at_the_declared_size(tmp_path):
    """A small deflated member that expands far beyond its declared array is refused cheaply."""
    import tracemalloc

    path = tmp_path / "bomb.npz"
    header = {"descr": "<f8", "fortran_order": False, "shape": (10,)}
    import io

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, header)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as member:
            member.write(head.getvalue() + b"\0" * 80)
            zeros = b"\0" * (1 << 20)
            for _ in range(64):  # 64 MB of zeros compress to about 64 KB
                member.write(zeros)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="bomb.npz.*declares shape"):
            fg.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # never decompressed the 64 MB
    # the same member with its directory sizes forged to match the header: read 80 bytes, stop
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        real, central = zf.getinfo("x.npy").file_size, zf.start_dir
    forged = len(head.getvalue()) + 80
    data = data.replace(real.to_bytes(8, "little"), forged.to_bytes(8, "little"))  # local
    assert data[central:central + 4] == b"PK\x01\x02"
    data[central + 24:central + 28] = forged.to_bytes(4, "little")  # central directory
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("x.npy").file_size == forged
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="bomb.npz.*(CRC|corrupt)"):
            fg.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_honest_compressed_checkpoints_still_load(tmp_path):
    path = tmp_path / "zeros.npz"
    big = np.zeros((512, 1024))  # 4 MB of zeros: about 4 KB compressed
    np.savez_compressed(path, big=big, w=np.arange(6.0).reshape(2, 3), f=np.asfortranarray(
        np.arange(6.0).reshape(2, 3)), s=np.float32(2.5))
    state = fg.load(path)
    np.testing.assert_array_equal(state["big"], big)
    np.testing.assert_array_equal(state["f"], np.arange(6.0).reshape(2, 3))
    assert state["s"].shape == () and state["s"].dtype == np.float32
    assert state["w"].flags.writeable


def test_item17_duplicate_members_and_other_compression_are_refused(tmp_path):
    path = tmp_path / "dup.npz"
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "w") as zf:
            for value in (1.0, 2.0):
                with zf.open("x.npy", "w") as member:
                    np.lib.format.write_array(member, np.array([value]))
    with pytest.raises(CheckpointError, match="twice"):
        fg.load(path)
    path = tmp_path / "bz.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as zf:
        with zf.open("x.npy", "w") as member:
            np.lib.format.write_array(member, np.ones(3))
    with pytest.raises(CheckpointError, match="compression method 12"):
        fg.load(path)


# --------------------------------------------------------------------------- issue 11 item 21


def test_item21_load_and_save_name_themselves_for_a_bad_path():
    with pytest.raises(TypeError, match=r"load: expected a file path \(a str or os.PathLike"):
        fg.load(None)
    with pytest.raises(TypeError, match="save: expected a file path"):
        fg.save(3, {"x": np.ones(1)})


def test_item21_save_writes_through_a_symlink(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "ckpt.npz"
    fg.save(target, {"x": np.zeros(2)})
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    fg.save(link, {"x": np.ones(2)})
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(fg.load(target)["x"], np.ones(2))
    assert _files(real_dir) == ["ckpt.npz"] and _files(tmp_path) == ["latest.npz", "real"]


def test_item21_save_never_touches_the_umask(tmp_path, monkeypatch):
    def no_umask(mask):
        raise AssertionError("fg.save changed the process umask")

    umask = os.umask(0o022)
    os.umask(umask)
    monkeypatch.setattr(os, "umask", no_umask)
    path = tmp_path / "new.npz"
    fg.save(path, {"x": np.ones(2)})
    with open(tmp_path / "plain", "wb"):
        pass
    assert path.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    os.chmod(path, 0o640)
    fg.save(path, {"x": np.zeros(2)})  # a replaced file keeps its own permissions
    assert path.stat().st_mode & 0o777 == 0o640


# --------------------------------------------------------------------------- issue 12 item 3


def test_issue12_torch_argument_order_gets_told_the_order(tmp_path):
    state = _model().state_dict()
    with pytest.raises(TypeError, match=r"save\(path, obj\), the path first.*fg\.save\("
                       r"'ck\.npz', obj\)"):
        fg.save(state, "ck.npz")
    with pytest.raises(TypeError, match=r"save\(path, obj\)"):
        fg.save(_model(), tmp_path / "ck.npz")
    assert not os.path.exists("ck.npz") and _files(tmp_path) == []


def test_docstring_examples_run():
    import doctest

    import fungrad.io
    import fungrad.nn.module

    for module in (fungrad.io, fungrad.nn.module):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module
