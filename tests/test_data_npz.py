"""Safe .npz loading: real shared files, malicious pickles, round trips, bad inputs."""

from __future__ import annotations

import io
import os
import pickle
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from sketchrnn.data import load_npz, save_npz
from sketchrnn.errors import DataError

# counts from ../shared/README.md
SHARED_COUNTS = {
    "sketchrnn/aaron_sheep.npz": (7400, 300, 300),
    "sketchrnn/omniglot.npz": (30000, 1000, 1000),
    "sketchrnn/short_kanji.npz": (10000, 600, 500),
    "distilled/cat.npz": (70000, 2500, 2500),
    "distilled/pig.npz": (70000, 2500, 2500),
    "distilled/yoga.npz": (70000, 2500, 2500),
    "distilled/rabbit.npz": (70000, 2500, 2500),
}


@pytest.mark.parametrize("rel", sorted(SHARED_COUNTS))
def test_shared_files_load_with_readme_counts(shared_dir, rel):
    path = shared_dir / "data" / rel
    if not path.exists():
        pytest.skip(f"{path} absent")
    t0 = time.perf_counter()
    d = load_npz(path)
    dt = time.perf_counter() - t0
    print(f"\n{rel}: loaded in {dt:.2f} s")
    assert list(d) == ["train", "valid", "test"]
    assert tuple(len(d[s]) for s in ("train", "valid", "test")) == SHARED_COUNTS[rel]
    for split, sketches in d.items():
        for s in sketches[:500]:
            assert s.dtype == np.float32 and s.ndim == 2 and s.shape[1] == 3 and len(s) >= 1
            assert np.isin(s[:, 2], (0.0, 1.0)).all()
    if rel.startswith("sketchrnn/") and "kanji" not in rel:  # int16 on disk: whole pixels
        s = np.concatenate(d["train"][:1000])
        assert np.array_equal(s, np.round(s))


def test_load_single_split_and_list(shared_dir):
    path = shared_dir / "data" / "sketchrnn" / "aaron_sheep.npz"
    if not path.exists():
        pytest.skip("aaron_sheep absent")
    assert list(load_npz(path, "valid")) == ["valid"]
    d = load_npz(path, ["test", "valid"])
    assert list(d) == ["test", "valid"] and len(d["test"]) == 300


# ---------------------------------------------------------------- malicious files

def _write_npz_with_pickle(path: Path, payload: bytes, n: int = 1, split: str = "train") -> None:
    """A zip whose ``<split>.npy`` has a valid object-array header followed by ``payload``."""
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (n,)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{split}.npy", buf.getvalue() + payload)


class _OpenMarker:
    """Unpickling calls io.open(marker, 'w'), which would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _SystemMarker:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _CallNdarray:
    """Tries to call numpy.ndarray (an admitted name) directly."""

    def __reduce__(self):
        return (np.ndarray, ((2, 3),))


class _StructuredDtype:
    """numpy.dtype (admitted) with a structured spec holding Python objects."""

    def __reduce__(self):
        return (np.dtype, ([("a", "O")],))


class _CodecsAbuse:
    """_codecs.encode (admitted for protocol-2 bytes) with another codec."""

    def __reduce__(self):
        import codecs
        return (codecs.encode, ("abc", "rot13"))


def _object_array_with(evil: object) -> bytes:
    """numpy's own pickle of an object array holding a real stroke array and ``evil``."""
    arr = np.empty(2, dtype=object)
    arr[0] = np.zeros((4, 3), dtype=np.int16)
    arr[1] = evil
    return pickle.dumps(arr, protocol=3)


@pytest.mark.parametrize("kind", ["open_top", "system_top", "open_nested", "system_nested_p2"])
def test_malicious_pickle_refused_and_not_run(tmp_path, kind):
    marker = tmp_path / "PWNED"
    evil = _OpenMarker(str(marker)) if kind.startswith("open") else _SystemMarker(str(marker))
    if kind.endswith("top"):
        payload, n = pickle.dumps(evil, protocol=3), 1
    elif kind == "system_nested_p2":
        arr = np.empty(2, dtype=object)
        arr[0] = np.zeros((4, 3), dtype=np.int16)
        arr[1] = evil
        payload, n = pickle.dumps(arr, protocol=2), 2
    else:
        payload, n = _object_array_with(evil), 2
    path = tmp_path / "evil.npz"
    _write_npz_with_pickle(path, payload, n)
    with pytest.raises(DataError) as ei:
        load_npz(path)
    msg = str(ei.value)
    assert "\n" not in msg and "evil.npz" in msg and "'train'" in msg and "refusing" in msg
    assert ("io.open" in msg) if kind.startswith("open") else (".system" in msg)
    assert not marker.exists()


@pytest.mark.parametrize("evil, needle", [
    (_CallNdarray(), "malformed"), (_StructuredDtype(), "dtype spec"), (_CodecsAbuse(), "_codecs.encode other")])
def test_admitted_names_cannot_be_abused(tmp_path, evil, needle):
    path = tmp_path / "abuse.npz"
    _write_npz_with_pickle(path, _object_array_with(evil), 2)
    with pytest.raises(DataError, match=needle):
        load_npz(path)


@pytest.mark.parametrize("payload", [
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n)\x81.",  # NEWOBJ: proxy never built
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n)\x81\x85.",  # tuple holding it
    b"\x80\x02]q\x00(cnumpy.core.multiarray\n_reconstruct\n)\x81e.",  # list holding it
])
def test_hand_made_opcode_streams(tmp_path, payload):
    path = tmp_path / "ops.npz"
    _write_npz_with_pickle(path, payload, 1)
    with pytest.raises(DataError):
        load_npz(path)


def test_object_dtype_inside_sketch_refused(tmp_path):
    inner = np.empty((2, 3), dtype=object)
    inner[:] = 1
    arr = np.empty(1, dtype=object)
    arr[0] = inner
    path = tmp_path / "nested.npz"
    _write_npz_with_pickle(path, pickle.dumps(arr, protocol=3), 1)
    with pytest.raises(DataError, match="refusing"):
        load_npz(path)


def test_protocol2_numeric_pickle_loads(tmp_path):
    arr = np.empty(2, dtype=object)
    arr[0] = np.arange(9, dtype=np.int16).reshape(3, 3)
    arr[1] = np.ones((1, 3), dtype=">f8")
    path = tmp_path / "p2.npz"
    _write_npz_with_pickle(path, pickle.dumps(arr, protocol=2), 2)
    back = load_npz(path)["train"]
    np.testing.assert_array_equal(back[0], arr[0].astype(np.float32))
    np.testing.assert_array_equal(back[1], np.ones((1, 3), np.float32))


def test_non_numeric_dtype_refused(tmp_path):
    arr = np.empty(1, dtype=object)
    arr[0] = np.array([["a", "b", "c"]])
    path = tmp_path / "str.npz"
    _write_npz_with_pickle(path, pickle.dumps(arr, protocol=3), 1)
    with pytest.raises(DataError, match="dtype"):
        load_npz(path)


# ---------------------------------------------------------------- round trips

def _sample_sketches(rng: np.random.Generator, n: int, dtype) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        L = int(rng.integers(1, 40))
        a = np.zeros((L, 3))
        a[:, :2] = rng.integers(-300, 300, size=(L, 2)) + (0 if np.dtype(dtype).kind in "iu" else rng.random((L, 2)))
        a[:, 2] = rng.random(L) < 0.2
        a[-1, 2] = 1
        out.append(a.astype(dtype))
    return out


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    data = {"train": _sample_sketches(rng, 30, np.int16), "valid": _sample_sketches(rng, 5, np.float16),
            "test": _sample_sketches(rng, 4, np.float64)}
    path = tmp_path / "sub" / "rt.npz"
    save_npz(path, data)
    assert sorted(os.listdir(path.parent)) == ["rt.npz"]  # no temp files left behind
    back = load_npz(path)
    assert list(back) == ["train", "valid", "test"]
    for split in data:
        assert len(back[split]) == len(data[split])
        for a, b in zip(data[split], back[split]):
            assert b.dtype == np.float32
            np.testing.assert_array_equal(b, a.astype(np.float32))
    # our own file (trusted): numpy reads it too, dtypes kept as given
    with np.load(path, allow_pickle=True, encoding="latin1") as z:
        for split in data:
            assert z[split].dtype == object and len(z[split]) == len(data[split])
            for a, b in zip(data[split], z[split]):
                assert b.dtype == a.dtype
                np.testing.assert_array_equal(a, b)


def test_save_keeps_equal_length_sketches_as_object_array(tmp_path):
    s = [np.ones((5, 3), np.int16), np.zeros((5, 3), np.int16)]
    save_npz(tmp_path / "eq.npz", {"train": s})
    back = load_npz(tmp_path / "eq.npz")["train"]
    assert len(back) == 2 and back[0].shape == (5, 3)


def test_save_rejects_bad_arrays(tmp_path):
    with pytest.raises(DataError, match="index 1"):
        save_npz(tmp_path / "x.npz", {"train": [np.zeros((3, 3)), np.zeros((3, 2))]})
    with pytest.raises(DataError, match="NaN"):
        save_npz(tmp_path / "x.npz", {"train": [np.full((3, 3), np.nan)]})
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------------------- bad inputs

def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_npz(tmp_path / "nope.npz")


def test_not_a_zip(tmp_path):
    p = tmp_path / "text.npz"
    p.write_text("hello")
    with pytest.raises(DataError, match="not an .npz"):
        load_npz(p)


def test_missing_split_names_present_keys(tmp_path):
    p = tmp_path / "two.npz"
    save_npz(p, {"train": [np.ones((2, 3))], "valid": [np.ones((2, 3))]})
    with pytest.raises(DataError) as ei:
        load_npz(p, "test")
    assert "'test'" in str(ei.value) and "train, valid" in str(ei.value)


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((4, 2), np.float32), "shape"),
    (np.zeros((0, 3), np.float32), "shape"),
    (np.zeros((2, 3, 1), np.float32), "shape"),
    (np.array([[1.0, np.nan, 0.0]], np.float32), "NaN"),
    (np.array([[1.0, np.inf, 0.0]], np.float64), "NaN or Inf"),
    (np.array([[1e300, 0.0, 0.0]], np.float64), "float32"),
])
def test_bad_sketch_named_by_file_split_index(tmp_path, bad, needle):
    arr = np.empty(3, dtype=object)
    arr[0] = np.ones((3, 3), np.int16)
    arr[1] = np.ones((2, 3), np.int16)
    arr[2] = bad
    p = tmp_path / "bad.npz"
    _write_npz_with_pickle(p, pickle.dumps(arr, protocol=3), 3, split="valid")
    with pytest.raises(DataError) as ei:
        load_npz(p)
    msg = str(ei.value)
    assert "bad.npz" in msg and "'valid'" in msg and "index 2" in msg and needle in msg


def test_plain_numeric_split_refused_clearly(tmp_path):
    p = tmp_path / "plain.npz"
    np.savez(p, train=np.zeros((4, 10, 3), np.int16))
    with pytest.raises(DataError, match="plain int16 array"):
        load_npz(p)


def test_truncated_pickle(tmp_path):
    arr = np.empty(1, dtype=object)
    arr[0] = np.ones((3, 3), np.int16)
    p = tmp_path / "trunc.npz"
    _write_npz_with_pickle(p, pickle.dumps(arr, protocol=3)[:-20], 1)
    with pytest.raises(DataError, match="malformed"):
        load_npz(p)
