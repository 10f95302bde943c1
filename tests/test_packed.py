"""Packed corpora: pack -> load round-trips exactly (int16 / float16 / float32, .npz and
.ndjson), PackedSketchData equals SketchData (filtering, clamping, scale factor),
PackedBatchLoader equals BatchLoader batch for batch (augmentation and resume included),
and training from a packed directory equals training from the .npz files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchrnn.data import BatchLoader, SketchData, load_npz, save_npz
from sketchrnn.data.packed import PackedBatchLoader, PackedSketchData, is_packed_dir, pack, read_header
from sketchrnn.errors import DataError


def _sketches(rng: np.random.Generator, n: int, kind: str) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        L = int(rng.integers(1, 40))
        a = np.zeros((L, 3), np.float64)
        if kind == "int":
            a[:, :2] = rng.integers(-300, 300, size=(L, 2))
        elif kind == "f16":
            a[:, :2] = rng.normal(0, 40, size=(L, 2)).astype(np.float16)
        else:  # values float16 cannot hold
            a[:, :2] = rng.normal(0, 40, size=(L, 2)) + 1e-3
        a[:, 2] = rng.random(L) < 0.2
        out.append(a.astype(np.int16 if kind == "int" else np.float16 if kind == "f16" else np.float32))
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("packed-src")
    rng = np.random.default_rng(0)
    out = {}
    for name, kind, n in (("ints", "int", 90), ("halves", "f16", 70), ("floats", "float", 50)):
        p = d / f"{name}.npz"
        save_npz(p, {"train": _sketches(rng, n, kind), "valid": _sketches(rng, 12, kind), "test": _sketches(rng, 9, kind)})
        out[name] = p
    out["dir"] = d
    return out


@pytest.mark.parametrize("names,dtype", [(["ints"], "int16"), (["ints", "halves"], "float16"),
                                          (["halves", "ints", "floats"], "float32")])
def test_pack_round_trips_exactly_in_the_narrowest_dtype(files, tmp_path, names, dtype):
    paths = [files[n] for n in names]
    header = pack(paths, tmp_path / "p")
    assert header["dtype"] == dtype and header["classes"] == names
    assert read_header(tmp_path / "p") == header and is_packed_dir(tmp_path / "p")
    assert np.load(tmp_path / "p" / "train.points.npy", mmap_mode="r").dtype == np.dtype(dtype)
    for split in ("train", "valid", "test"):
        d = PackedSketchData(tmp_path / "p", split, max_seq_len=10**6, max_offset=1e9)
        assert isinstance(d.points, np.memmap)  # not read into memory
        want = [s for p in paths for s in load_npz(p, [split])[split]]
        assert len(d) == len(want) == header["splits"][split]["sketches"]
        for i, w in enumerate(want):
            got = d.raw(i)
            assert got.dtype == np.float32 and np.array_equal(got, w), (split, i)
        ids = np.asarray(d.class_ids)
        assert np.array_equal(ids, np.repeat(np.arange(len(paths)), [len(load_npz(p, [split])[split]) for p in paths]))
        assert header["splits"][split]["per_class"] == np.bincount(ids, minlength=len(paths)).tolist()


@pytest.mark.parametrize("max_seq_len,max_offset", [(25, 1000.0), (30, 150.0), (12, 20.0)])
def test_packed_data_equals_sketchdata(files, tmp_path, max_seq_len, max_offset):
    paths = [files["ints"], files["halves"], files["floats"]]
    pack(paths, tmp_path / "p", max_offset=150.0)  # stats table valid for max_offset 150 only
    for split in ("train", "valid"):
        d = PackedSketchData(tmp_path / "p", split, max_seq_len, max_offset)
        s = SketchData.from_files(paths, split, max_seq_len, max_offset)
        assert len(d) == len(s) and d.n_dropped == s.n_dropped > 0
        assert np.array_equal(np.asarray(d.class_ids), s.class_ids)
        assert np.array_equal(np.asarray(d.lengths), s.lengths)
        for i in range(len(s)):
            assert np.array_equal(d.strokes[i], s.strokes[i]), i
        assert d.class_names == s.class_names
        assert d.scale_factor() == pytest.approx(s.scale_factor(), rel=1e-12)


@pytest.mark.parametrize("augment,buckets", [(False, 0), (True, 0), (False, 3)])
def test_packed_loader_equals_batchloader(files, tmp_path, augment, buckets):
    paths = [files["ints"], files["floats"]]
    pack(paths, tmp_path / "p")
    d = PackedSketchData(tmp_path / "p", "train", 30)
    s = SketchData.from_files(paths, "train", 30)
    kw = dict(augment=augment, random_scale_factor=0.2, augment_stroke_prob=0.3, shuffle=True, seed=7,
              length_buckets=buckets)
    a = PackedBatchLoader(d, 37.5, 16, 30, **kw)
    b = BatchLoader(s, 37.5, 16, 30, **kw)
    assert len(a) == len(b)
    for step in range(len(b) + 4):  # past an epoch boundary
        x, y = a.next_batch(), b.next_batch()
        assert torch.equal(x.strokes, y.strokes) and torch.equal(x.lengths, y.lengths), step
        assert torch.equal(x.class_ids, y.class_ids) and x.class_ids.dtype == torch.int64
        if step == 5:  # states are the same and interchangeable
            sa, sb = a.state_dict(), b.state_dict()
            assert json.dumps(sa, default=str, sort_keys=True) == json.dumps(sb, default=str, sort_keys=True)
            c = PackedBatchLoader(d, 37.5, 16, 30, **kw)
            c.load_state_dict(sb)
            assert torch.equal(c.next_batch().strokes, PackedBatchLoader.next_batch(_twin(a)).strokes)
    va = PackedBatchLoader(d, 37.5, 16, 30, shuffle=False, drop_last=False)
    vb = BatchLoader(s, 37.5, 16, 30, shuffle=False, drop_last=False)
    for x, y in zip(va.sequential(40), vb.sequential(40), strict=True):
        assert torch.equal(x.strokes, y.strokes) and torch.equal(x.class_ids, y.class_ids)


def _twin(loader: PackedBatchLoader) -> PackedBatchLoader:
    t = PackedBatchLoader(loader.data, loader.scale_factor, loader.batch_size, loader.max_seq_len,
                          augment=loader.augment, random_scale_factor=loader.random_scale_factor,
                          augment_stroke_prob=loader.augment_stroke_prob, shuffle=loader.shuffle, seed=loader.seed,
                          length_buckets=loader.sampler.length_buckets)
    t.load_state_dict(loader.state_dict())
    return t


def _ndjson(path: Path, n: int, word: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        strokes = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(2, 8))
            strokes.append([rng.integers(0, 256, k).tolist(), rng.integers(0, 256, k).tolist()])
        lines.append(json.dumps({"word": word, "key_id": str(i), "recognized": True, "drawing": strokes}))
    path.write_text("\n".join(lines) + "\n")


def test_pack_ndjson_splits_and_round_trip(tmp_path):
    from sketchrnn.data.quickdraw import read_ndjson

    _ndjson(tmp_path / "cat.ndjson", 30, "cat", 1)
    _ndjson(tmp_path / "dog.ndjson", 20, "dog", 2)
    h = pack([tmp_path / "cat.ndjson", tmp_path / "dog.ndjson"], tmp_path / "p", valid_count=3, test_count=2, seed=5)
    assert h["dtype"] == "int16" and h["classes"] == ["cat", "dog"]
    assert [h["splits"][s]["per_class"] for s in ("train", "valid", "test")] == [[25, 15], [3, 3], [2, 2]]
    ref = {c: [q.stroke3 for q in read_ndjson(tmp_path / f"{c}.ndjson")] for c in ("cat", "dog")}
    seen = {c: [] for c in ref}
    for split in ("train", "valid", "test"):
        d = PackedSketchData(tmp_path / "p", split, 10**6)
        ids = np.asarray(d.class_ids)
        for i in range(len(d)):
            c = h["classes"][ids[i]]
            hits = [j for j, r in enumerate(ref[c]) if np.array_equal(r, d.raw(i))]
            assert hits, (split, i)
            seen[c].append(hits[0])
    for c in ref:  # every drawing lands in exactly one split
        assert sorted(seen[c]) == list(range(len(ref[c])))
    h2 = pack([tmp_path / "cat.ndjson", tmp_path / "dog.ndjson"], tmp_path / "p2", valid_count=3, test_count=2, seed=5)
    assert h2["splits"] == h["splits"]
    assert np.array_equal(np.load(tmp_path / "p" / "valid.points.npy"), np.load(tmp_path / "p2" / "valid.points.npy"))


def test_pack_real_quickdraw_simplified(shared_dir, tmp_path):
    from sketchrnn.data.quickdraw import read_ndjson

    files = sorted((shared_dir / "data/quickdraw/simplified").glob("*.ndjson"))[:3]
    h = pack(files, tmp_path / "p", valid_count=2, test_count=2)
    assert h["dtype"] == "int16"
    n = sum(len(read_ndjson(f)) for f in files)
    assert sum(v["sketches"] for v in h["splits"].values()) == n


def test_pack_refuses_bad_inputs(files, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(DataError, match="not an empty directory"):
        pack([files["ints"]], tmp_path / "busy")
    with pytest.raises(DataError, match="also the name"):
        pack([files["ints"], files["ints"]], tmp_path / "dup")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(DataError, match="unknown input type"):
        pack([tmp_path / "a.txt"], tmp_path / "bad")
    with pytest.raises(DataError, match="not found"):
        pack([tmp_path / "missing.npz"], tmp_path / "bad")
    _ndjson(tmp_path / "few.ndjson", 4, "few", 0)
    with pytest.raises(DataError, match="lower them"):
        pack([tmp_path / "few.ndjson"], tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad.*"))  # nothing half-written


def test_damaged_directories_are_reported(files, tmp_path):
    pack([files["ints"]], tmp_path / "p")
    with pytest.raises(DataError, match="no split 'dev'"):
        PackedSketchData(tmp_path / "p", "dev", 50)
    h = json.loads((tmp_path / "p" / "header.json").read_text())
    h["splits"]["train"]["sketches"] += 1
    (tmp_path / "p" / "header.json").write_text(json.dumps(h))
    with pytest.raises(DataError, match="do not match the header"):
        PackedSketchData(tmp_path / "p", "train", 50)
    (tmp_path / "p" / "header.json").write_text("{")
    with pytest.raises(DataError, match="unreadable header"):
        PackedSketchData(tmp_path / "p", "train", 50)
    with pytest.raises(DataError, match="not a packed corpus"):
        PackedSketchData(tmp_path, "train", 50)


def test_pack_cli(files, tmp_path, capsys):
    from sketchrnn.cli import main

    assert main(["pack", str(files["ints"]), str(files["halves"]), "--out", str(tmp_path / "p")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dtype"] == "float16" and out["classes"] == 2 and out["train"] == 160
    assert main(["pack", str(files["ints"]), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sketchrnn: error:") and "not an empty directory" in err[0]


def test_training_on_a_packed_dir_equals_training_on_the_npz(tmp_path):
    from sketchrnn.config import Config, apply_overrides
    from sketchrnn.data.synthetic import write_synthetic_npz
    from sketchrnn.train import Trainer

    a = write_synthetic_npz(tmp_path / "a.npz", 40, 12, 4, seed=0)
    b = write_synthetic_npz(tmp_path / "b.npz", 24, 12, 4, seed=1)
    pack([a, b], tmp_path / "p")
    tiny = ["model.enc_rnn_size=16", "model.dec_rnn_size=24", "model.z_size=8", "model.num_mixture=3",
            "model.max_seq_len=40", "train.batch_size=8", "train.num_steps=4", "train.eval_every=4",
            "train.save_every=4", "train.max_eval_sketches=16", "train.num_threads=1"]
    runs = {}
    for name, paths in (("npz", f"{a},{b}"), ("packed", str(tmp_path / "p"))):
        tr = Trainer(apply_overrides(Config(), [f"data.paths={paths}", *tiny]), tmp_path / name, progress=False)
        res = tr.fit()
        runs[name] = (tr, res)
    (ta, ra), (tb, rb) = runs["npz"], runs["packed"]
    assert len(ta.train_data) == len(tb.train_data) and ta.train_data.n_dropped == tb.train_data.n_dropped > 0
    assert ta.class_names == tb.class_names == ["a", "b"]
    assert tb.scale_factor == pytest.approx(ta.scale_factor, rel=1e-12)
    for k, v in ta.model.state_dict().items():
        assert torch.allclose(v, tb.model.state_dict()[k], atol=1e-5), k
    assert rb["valid_loss"] == pytest.approx(ra["valid_loss"], rel=1e-4)


def test_non_finite_points_in_a_damaged_file_are_reported(files, tmp_path):
    pack([files["floats"]], tmp_path / "p")
    pts = np.load(tmp_path / "p" / "train.points.npy", mmap_mode="r+")
    off = np.load(tmp_path / "p" / "train.offsets.npy")
    pts[off[3] + 1, 0] = np.nan  # sketch 3
    pts.flush()
    del pts
    d = PackedSketchData(tmp_path / "p", "train", 10**6)
    with pytest.raises(DataError, match="index 3: NaN or Inf"):
        d.strokes[3]
    loader = PackedBatchLoader(d, 10.0, 4, 10**6, shuffle=False)
    with pytest.raises(DataError, match="index 3: NaN or Inf"):
        loader.next_batch()
