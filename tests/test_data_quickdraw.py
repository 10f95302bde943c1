"""QuickDraw .ndjson reading and our reproduction of Google's simplification."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sketchrnn.data import drawing_to_stroke3, read_ndjson, simplify_drawing, to_polylines
from sketchrnn.data.quickdraw import rdp, resample_polyline
from sketchrnn.errors import DataError

# Measured on the 12 shared raw classes (265 drawings), see benchmarks/RESULTS.md:
# exact 0.925, point ratio 0.9996, mean |diff| 0.0029 px. Thresholds leave a small margin.
MIN_EXACT = 0.90
MAX_MEAN_ABS_DIFF = 0.01
POINT_RATIO = (0.99, 1.01)


def _load(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_simplification_matches_google(shared_dir):
    raw_dir = shared_dir / "data" / "quickdraw" / "raw"
    files = sorted(raw_dir.glob("*.ndjson"))
    if not files:
        pytest.skip("no raw QuickDraw files")
    n = exact = mine_pts = ref_pts = 0
    diffs = []
    per_class = {}
    for f in files:
        ref = {d["key_id"]: d for d in _load(shared_dir / "data" / "quickdraw" / "simplified" / f.name)}
        c_n = c_exact = 0
        for d in _load(f):
            if d["key_id"] not in ref:
                continue
            mine = simplify_drawing(d["drawing"])
            theirs = [np.array(s, dtype=np.int64).T for s in ref[d["key_id"]]["drawing"]]
            n += 1
            c_n += 1
            mine_pts += sum(len(s) for s in mine)
            ref_pts += sum(len(s) for s in theirs)
            same = len(mine) == len(theirs) and all(
                a.shape == b.shape and np.array_equal(a, b) for a, b in zip(mine, theirs))
            exact += same
            c_exact += same
            diffs += [np.abs(a - b).mean() for a, b in zip(mine, theirs) if a.shape == b.shape]
        per_class[f.stem] = (c_exact, c_n)
    frac, ratio, mad = exact / n, mine_pts / ref_pts, float(np.mean(diffs))
    print(f"\nQuickDraw simplification vs Google: {n} drawings, exact {frac:.4f}, "
          f"point ratio {ratio:.4f}, mean |diff| {mad:.4f} px; per class {per_class}")
    assert n >= 250
    assert frac >= MIN_EXACT
    assert POINT_RATIO[0] <= ratio <= POINT_RATIO[1]
    assert mad <= MAX_MEAN_ABS_DIFF


def test_read_simplified_file(shared_dir):
    path = shared_dir / "data" / "quickdraw" / "simplified" / "cat.ndjson"
    if not path.exists():
        pytest.skip("simplified cat absent")
    sketches = read_ndjson(path)
    lines = _load(path)
    assert len(sketches) == len(lines) == 25
    for sk, d in zip(sketches, lines):
        assert sk.word == "cat" and sk.key_id == d["key_id"] and sk.countrycode == d["countrycode"]
        s3_, meta = sk
        assert s3_ is sk.stroke3 and meta["key_id"] == d["key_id"] and meta["recognized"] == d["recognized"]
        pts = np.concatenate([np.array(s, float).T for s in d["drawing"]])
        s3 = sk.stroke3
        assert s3.dtype == np.float32 and len(s3) == len(pts) - 1
        np.testing.assert_array_equal(s3[:, :2], np.diff(pts, axis=0))  # row 0 = move from point 0 to 1
        assert s3[:, 2].sum() == len(d["drawing"]) and s3[-1, 2] == 1
        # drawing comes back from the first point
        polys = to_polylines(s3, start=pts[0])
        assert len(polys) == len(d["drawing"])
        for p, s in zip(polys, d["drawing"]):
            np.testing.assert_array_equal(p, np.array(s, float).T)


def test_read_raw_file_simplify_modes(shared_dir):
    path = shared_dir / "data" / "quickdraw" / "raw" / "pig.ndjson"
    if not path.exists():
        pytest.skip("raw pig absent")
    lines = _load(path)
    auto = read_ndjson(path)
    forced = read_ndjson(path, simplify=True)
    kept = read_ndjson(path, simplify=False)
    for a, f, k, d in zip(auto, forced, kept, lines):
        np.testing.assert_array_equal(a.stroke3, f.stroke3)
        np.testing.assert_array_equal(a.stroke3, drawing_to_stroke3(simplify_drawing(d["drawing"])))
        assert len(k.stroke3) == sum(len(s[0]) for s in d["drawing"]) - 1  # raw points, time dropped
        assert len(a.stroke3) < len(k.stroke3)
        extent = np.ptp(np.concatenate(to_polylines(a.stroke3)), axis=0)
        assert 250 <= extent.max() <= 255  # scaled to 255; RDP may shave an extreme point


def test_drawing_to_stroke3_hand_example():
    drawing = [[[10, 20, 20], [5, 5, 15]], [[0, 3], [0, 4]]]
    s3 = drawing_to_stroke3(drawing)
    np.testing.assert_array_equal(s3, [[10, 0, 0], [0, 10, 1], [-20, -15, 0], [3, 4, 1]])
    # a one-point first stroke stays a separate stroke (stored as the point twice)
    s3b = drawing_to_stroke3([[[7], [7]], [[8, 9], [8, 9]]])
    np.testing.assert_array_equal(s3b, [[0, 0, 1], [1, 1, 0], [1, 1, 1]])


def test_resample_spacing_and_ends():
    rng = np.random.default_rng(1)
    pts = np.cumsum(rng.normal(0, 5, size=(30, 2)), axis=0)
    r = resample_polyline(pts)
    np.testing.assert_allclose(r[0], pts[0])
    np.testing.assert_allclose(r[-1], pts[-1])
    steps = np.hypot(*np.diff(r, axis=0).T)
    assert (steps <= 1.0 + 1e-9).all()  # chords never exceed the 1 px arc step
    seg = np.hypot(*np.diff(pts, axis=0).T).sum()
    assert len(r) == int(np.ceil(seg)) + 1  # 0, 1, ..., plus the end
    line = resample_polyline(np.array([[0.0, 0.0], [10.0, 0.0]]))
    np.testing.assert_allclose(line[:, 0], np.arange(11.0))
    np.testing.assert_array_equal(resample_polyline(np.array([[3.0, 4.0]])), [[3, 4], [3, 4]])


def _rdp_reference(p, eps):
    """Plain recursive RDP, float64, line distance."""
    if len(p) < 3:
        return [tuple(x) for x in p]
    a, b = p[0], p[-1]
    d = b - a
    L = np.hypot(*d)
    dist = [abs(d[0] * (q[1] - a[1]) - d[1] * (q[0] - a[0])) / L if L else np.hypot(*(q - a)) for q in p[1:-1]]
    i = int(np.argmax(dist)) + 1
    if dist[i - 1] > eps:
        return _rdp_reference(p[:i + 1], eps)[:-1] + _rdp_reference(p[i:], eps)
    return [tuple(a), tuple(b)]


def test_rdp_against_recursive_reference():
    rng = np.random.default_rng(2)
    for _ in range(50):
        pts = np.cumsum(rng.normal(0, 3, size=(int(rng.integers(2, 80)), 2)), axis=0)
        assert [tuple(x) for x in rdp(pts, 2.0)] == _rdp_reference(pts, 2.0)
    collinear = np.stack([np.arange(10.0), 2 * np.arange(10.0)], axis=1)
    np.testing.assert_array_equal(rdp(collinear, 0.5), collinear[[0, -1]])


@pytest.mark.parametrize("line, needle", [
    ("{not json", ":2: not valid JSON"),
    ('{"word": "cat"}', ":2: expected a JSON object with a 'drawing'"),
    ('{"drawing": [[[1, 2], [3]]]}', ":2: stroke 0"),
    ('{"drawing": [[["a", 2], [3, 4]]]}', ":2: stroke 0 holds non-numeric"),
    ('{"drawing": []}', ":2: 'drawing' must be"),
    ('{"drawing": [[[1], [1]]]}', ":2: drawing has 1 point"),
])
def test_ndjson_errors_name_file_and_line(tmp_path, line, needle):
    p = tmp_path / "bad.ndjson"
    p.write_text('{"word": "x", "key_id": "1", "drawing": [[[0, 1], [0, 1]]]}\n' + line + "\n")
    with pytest.raises(DataError) as ei:
        read_ndjson(p)
    assert "bad.ndjson" in str(ei.value) and needle in str(ei.value)


def test_ndjson_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_ndjson(tmp_path / "none.ndjson")
