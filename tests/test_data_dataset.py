"""SketchData preprocessing and BatchLoader batching / resume."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from sketchrnn.data import (Batch, BatchLoader, SketchData, load_npz, make_shapes, save_npz, to_stroke5,
                            write_synthetic_npz)
from sketchrnn.errors import DataError


@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    a = write_synthetic_npz(d / "shapes_a.npz", 300, 40, 40, seed=1)
    b = write_synthetic_npz(d / "shapes_b.npz", 200, 30, 30, seed=2)
    return a, b


def test_synthetic_shapes():
    s = make_shapes(200, seed=5)
    assert len(s) == 200
    for a in s:
        assert a.dtype == np.float32 and a.shape[1] == 3 and 10 <= len(a) <= 60
        assert np.array_equal(a, np.round(a)) and a[-1, 2] == 1 and a[:, 2].sum() == 1
        pts = np.cumsum(a[:, :2], axis=0)
        assert np.ptp(pts, axis=0).max() <= 100
    again = make_shapes(200, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(s, again))
    assert not all(np.array_equal(x, y) for x, y in zip(s, make_shapes(200, seed=6)))


def test_from_files_multi_class(two_files):
    a, b = two_files
    d = SketchData.from_files([a, b], "train", max_seq_len=60)
    assert d.class_names == ["shapes_a", "shapes_b"]
    assert len(d) == 500 and d.n_dropped == 0
    np.testing.assert_array_equal(d.class_ids, [0] * 300 + [1] * 200)
    assert d.class_ids.dtype == np.int64
    raw = load_npz(b, "train")["train"]
    np.testing.assert_array_equal(d.strokes[300], raw[0])


def test_drop_long_and_clamp():
    s = [np.array([[5000, -3000, 0], [1, 1, 1]], np.float32), np.zeros((30, 3), np.float32),
         np.ones((10, 3), np.float32)]
    d = SketchData.from_strokes(s, max_seq_len=20, max_offset=1000.0)
    assert len(d) == 2 and d.n_dropped == 1
    np.testing.assert_array_equal(d.strokes[0], [[1000, -1000, 0], [1, 1, 1]])
    assert d.max_seq_len == 20


def test_scale_factor_is_std_of_all_offsets():
    s = make_shapes(50, seed=0)
    d = SketchData.from_strokes(s, 60)
    ref = np.std(np.concatenate([np.concatenate([a[:, 0], a[:, 1]]) for a in s]).astype(np.float64))
    assert d.scale_factor() == pytest.approx(ref, rel=1e-12)


def test_aaron_sheep_scale_factor(shared_dir):
    p = shared_dir / "data" / "sketchrnn" / "aaron_sheep.npz"
    if not p.exists():
        pytest.skip("aaron_sheep absent")
    d = SketchData.from_files([p], "train", max_seq_len=250)
    sf = d.scale_factor()
    print(f"\naaron_sheep train: {len(d)} sketches, {d.n_dropped} dropped (> 250), scale_factor {sf:.4f}")
    assert np.isfinite(sf) and sf > 0
    assert len(d) + d.n_dropped == 7400


def _loader(data, **kw):
    args = dict(scale_factor=data.scale_factor(), batch_size=16, max_seq_len=60, seed=3)
    args.update(kw)
    return BatchLoader(data, **args)


def test_padded_layout_invariants():
    data = SketchData.from_strokes(make_shapes(40, seed=1), 60, class_ids=np.arange(40) % 3)
    loader = _loader(data)
    P = loader.padded
    assert P.shape == (40, 61, 5) and P.dtype == np.float32
    for i, s in enumerate(data.strokes):
        L = len(s)
        np.testing.assert_array_equal(P[i, 0], [0, 0, 1, 0, 0])
        assert (P[i, 1:L + 1, 2] + P[i, 1:L + 1, 3] == 1).all() and (P[i, 1:L + 1, 4] == 0).all()
        assert (P[i, L + 1:] == np.array([0, 0, 0, 0, 1], np.float32)).all()
        np.testing.assert_array_equal(P[i], to_stroke5(s, 60, loader.scale_factor))


def test_batch_equals_to_stroke5_of_same_sketches():
    data = SketchData.from_strokes(make_shapes(40, seed=1), 60, class_ids=np.arange(40) % 3)
    loader = _loader(data)
    idx = np.array([5, 0, 39, 17])
    b = loader.batch(idx)
    assert isinstance(b, Batch) and len(b) == 4
    assert b.strokes.dtype == torch.float32 and b.strokes.shape == (4, 61, 5)
    assert b.lengths.dtype == torch.int64 and b.class_ids.dtype == torch.int64
    for j, i in enumerate(idx):
        expect = to_stroke5(data.strokes[i], 60, loader.scale_factor)
        assert torch.equal(b.strokes[j], torch.from_numpy(expect))
        assert int(b.lengths[j]) == len(data.strokes[i]) and int(b.class_ids[j]) == i % 3
    moved = b.to("cpu")
    assert torch.equal(moved.strokes, b.strokes)


def test_epoch_covers_everything_once():
    data = SketchData.from_strokes(make_shapes(45, seed=2), 60)
    loader = _loader(data, drop_last=False)
    assert len(loader) == 3
    seen = []
    for b in loader:
        for row, L in zip(b.strokes, b.lengths):
            seen.append(row[1:int(L) + 1].numpy().tobytes())
    assert len(seen) == 45
    expect = sorted(to_stroke5(s, 60, loader.scale_factor)[1:len(s) + 1].tobytes() for s in data.strokes)
    assert sorted(seen) == expect
    assert loader.epoch == 0 and loader.position == 3
    assert len(list(loader)) == 3 and loader.epoch == 1  # next pass is a new epoch
    assert len(_loader(data, drop_last=True)) == 2


def test_sequential_is_stateless_and_in_order():
    data = SketchData.from_strokes(make_shapes(45, seed=2), 60)
    loader = _loader(data, augment=True)
    loader.next_batch()
    state = loader.state_dict()
    got = list(loader.sequential(limit=40))
    assert [len(b) for b in got] == [16, 16, 8]
    allrows = torch.cat([b.strokes for b in got])
    assert torch.equal(allrows, torch.from_numpy(loader.padded[:40]))  # un-augmented, index order
    assert loader.state_dict() == state
    assert sum(len(b) for b in loader.sequential()) == 45


def _run(loader, n):
    return [loader.next_batch() for _ in range(n)]


@pytest.mark.parametrize("augment", [False, True])
def test_resume_reproduces_batches(augment):
    data = SketchData.from_strokes(make_shapes(50, seed=3), 60)
    a = _loader(data, augment=augment, augment_stroke_prob=0.3)
    _run(a, 4)  # 3 batches per epoch: we are inside epoch 1
    state = a.state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)  # must survive a weights_only checkpoint
    buf.seek(0)
    state2 = torch.load(buf, weights_only=True)
    expected = _run(a, 7)  # crosses two epoch boundaries
    b = _loader(data, augment=augment, augment_stroke_prob=0.3)
    b.load_state_dict(state2)
    got = _run(b, 7)
    for x, y in zip(expected, got):
        assert torch.equal(x.strokes, y.strokes) and torch.equal(x.lengths, y.lengths)
    # a loader with another seed gives another order
    c = _loader(data, augment=augment, seed=4)
    assert not all(torch.equal(x.strokes, y.strokes) for x, y in zip(_run(c, 3), _run(_loader(data, augment=augment), 3)))


def test_resume_via_iteration_after_epoch_end():
    data = SketchData.from_strokes(make_shapes(48, seed=3), 60)
    a = _loader(data)
    list(a)  # one full epoch via __iter__; stops without starting the next
    state = a.state_dict()
    nxt = [b.strokes for b in a]
    b = _loader(data)
    b.load_state_dict(state)
    assert all(torch.equal(x, y.strokes) for x, y in zip(nxt, b))


def test_augmentation_never_lengthens_and_changes_data():
    data = SketchData.from_strokes(make_shapes(64, seed=4), 60)
    plain = _loader(data, shuffle=False)
    aug = _loader(data, shuffle=False, augment=True, random_scale_factor=0.15, augment_stroke_prob=0.5)
    for bp, ba in zip(plain, aug):
        assert (ba.lengths <= bp.lengths).all()
        assert (ba.lengths < bp.lengths).any()
        for row, L in zip(ba.strokes, ba.lengths):  # layout still valid
            L = int(L)
            assert torch.equal(row[0], torch.tensor([0, 0, 1, 0, 0.0]))
            assert (row[1:L + 1, 4] == 0).all() and (row[L + 1:, 4] == 1).all()
            # total displacement only scaled (by at most 15 % per axis)
        disp_p = (bp.strokes[:, 1:, :2]).sum(1)
        disp_a = (ba.strokes[:, 1:, :2]).sum(1)
        ratio = disp_a[disp_p.abs() > 1] / disp_p[disp_p.abs() > 1]
        assert ((ratio > 0.85 - 1e-4) & (ratio < 1.15 + 1e-4)).all()
    off = _loader(data, shuffle=False, augment=True, random_scale_factor=0.0, augment_stroke_prob=0.0)
    for bp, bo in zip(plain, off):
        assert torch.equal(bp.strokes, bo.strokes)


def test_loader_errors():
    data = SketchData.from_strokes(make_shapes(10, seed=0), 60)
    with pytest.raises(DataError, match="fewer than batch_size"):
        _loader(data, batch_size=16)
    with pytest.raises(DataError, match="max_seq_len=20"):
        _loader(data, batch_size=4, max_seq_len=20)
    loader = _loader(data, batch_size=4)
    bad = loader.state_dict()
    bad["n"] = 11
    with pytest.raises(DataError, match="same data"):
        loader.load_state_dict(bad)
    with pytest.raises(DataError, match="malformed"):
        loader.load_state_dict({"n": 10})
    with pytest.raises(DataError, match="empty"):
        SketchData.from_strokes([np.zeros((70, 3))], 60).scale_factor()
    with pytest.raises(DataError, match="no data files"):
        SketchData.from_files([], "train", 60)


def test_missing_split_in_from_files(tmp_path):
    p = tmp_path / "only_train.npz"
    save_npz(p, {"train": make_shapes(5, 0)})
    with pytest.raises(DataError, match="no split 'valid'"):
        SketchData.from_files([p], "valid", 60)
