"""sketchrnn.data.io: JSON strokes, SVG paths/shapes/transforms, RDP, fitting sketches to a model."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from sketchrnn.data.io import (
    fit_sketch,
    min_points,
    parse_path_d,
    parse_svg,
    parse_transform,
    rdp,
    read_strokes_file,
    simplify_strokes,
    simplify_to_length,
)
from sketchrnn.data.strokes import bounds, from_polylines, to_polylines
from sketchrnn.errors import DataError


def _one_line(e: Exception) -> str:
    msg = str(e)
    assert msg and "\n" not in msg, msg
    return msg


def _cubic_ref(p0, p1, p2, p3, t):
    """de Casteljau in float64 (independent of the closed form in io.py)."""
    pts = [np.asarray(p, float) for p in (p0, p1, p2, p3)]
    while len(pts) > 1:
        pts = [(1 - t) * a + t * b for a, b in itertools.pairwise(pts)]
    return pts[0]


def _rdp_ref(pts: np.ndarray, eps: float) -> np.ndarray:
    """Textbook recursive Douglas-Peucker."""
    if len(pts) < 3:
        return pts
    a, b = pts[0], pts[-1]
    d = b - a
    n = math.hypot(*d)
    best, idx = -1.0, 0
    for i in range(1, len(pts) - 1):
        r = pts[i] - a
        dist = abs(d[0] * r[1] - d[1] * r[0]) / n if n > 0 else math.hypot(*r)
        if dist > best:
            best, idx = dist, i
    if best > eps:
        left = _rdp_ref(pts[: idx + 1], eps)
        right = _rdp_ref(pts[idx:], eps)
        return np.concatenate([left[:-1], right])
    return np.stack([a, b])


# --------------------------------------------------------------------------- SVG paths
def test_path_lines_absolute_relative_h_v_z():
    polys = parse_path_d("M10 10 L20 10 h5 v5 z m1,1 l1-1.5.5.5 V0 H-3")
    assert len(polys) == 2
    np.testing.assert_allclose(polys[0], [[10, 10], [20, 10], [25, 10], [25, 15], [10, 10]])
    # after z the current point is the subpath start (10, 10); m is relative to it
    np.testing.assert_allclose(polys[1], [[11, 11], [12, 9.5], [12.5, 10], [12.5, 0], [-3, 0]])


def test_path_implicit_lineto_after_moveto_and_compact_numbers():
    (p,) = parse_path_d("m1 1 2 2 3 3")  # relative moveto with implicit relative linetos
    np.testing.assert_allclose(p, [[1, 1], [3, 3], [6, 6]])
    (q,) = parse_path_d("M1e1,-2E0L.5-.5")
    np.testing.assert_allclose(q, [[10, -2], [0.5, -0.5]])


def test_path_cubic_points_lie_on_the_curve():
    rng = np.random.default_rng(3)
    c = rng.uniform(-50, 50, (4, 2))
    d = "M{} {} C{} {} {} {} {} {}".format(*c.ravel())
    (p,) = parse_path_d(d)
    n = len(p) - 1
    ref = np.array([_cubic_ref(*c, t) for t in np.linspace(0, 1, n + 1)])
    np.testing.assert_allclose(p, ref, atol=1e-9)
    # the same curve written relative to its start
    rel = c[1:] - c[0]
    (pr,) = parse_path_d("M{} {} c{} {} {} {} {} {}".format(*c[0], *rel.ravel()))
    np.testing.assert_allclose(pr, p, atol=1e-9)


def test_path_smooth_cubic_reflects_previous_control_point():
    (p,) = parse_path_d("M0 0 C0 10 10 10 10 0 S20 -10 20 0")
    (q,) = parse_path_d("M0 0 C0 10 10 10 10 0 C10 -10 20 -10 20 0")
    np.testing.assert_allclose(p, q, atol=1e-12)


def test_path_quadratic_and_smooth_quadratic():
    (p,) = parse_path_d("M0 0 Q5 10 10 0 T20 0")
    (q,) = parse_path_d("M0 0 Q5 10 10 0 Q15 -10 20 0")
    np.testing.assert_allclose(p, q, atol=1e-12)
    n = (len(p) - 1) // 2
    t = np.linspace(0, 1, n + 1)[:, None]
    ref = (1 - t) ** 2 * [0, 0] + 2 * (1 - t) * t * np.array([5, 10]) + t**2 * np.array([10, 0])
    np.testing.assert_allclose(p[: n + 1], ref, atol=1e-12)


@pytest.mark.parametrize("large, sweep, side", [(0, 1, -1), (0, 0, 1), (1, 0, 1), (1, 1, -1)])
def test_path_arc_half_circle(large, sweep, side):
    (p,) = parse_path_d(f"M0 0 A10 10 0 {large} {sweep} 20 0")
    np.testing.assert_allclose(np.hypot(p[:, 0] - 10, p[:, 1]), 10.0, atol=1e-9)  # on the circle
    np.testing.assert_allclose(p[-1], [20, 0])
    # sweep=1 turns clockwise on screen (y down): through the top, y < 0
    assert np.sign(p[len(p) // 2, 1]) == side


def test_path_arc_quarter_and_radii_scaled_up():
    (p,) = parse_path_d("M10 0 A10 10 0 0 1 0 10")  # from angle 0 to 90 deg about (0, 0)
    np.testing.assert_allclose(np.hypot(p[:, 0], p[:, 1]), 10.0, atol=1e-9)
    assert (p >= -1e-9).all()
    (q,) = parse_path_d("M0 0 A1 1 0 0 1 20 0")  # radius too small: scaled to 10 (SVG F.6.6)
    np.testing.assert_allclose(np.hypot(q[:, 0] - 10, q[:, 1]), 10.0, atol=1e-9)


@pytest.mark.parametrize("d", ["L10 10", "M0 0 L5", "M0 0 X5 5", "M0 0 Z 5 5"])
def test_path_malformed_is_one_line_data_error(d):
    with pytest.raises(DataError) as ei:
        parse_path_d(d, "f.svg: <path>")
    assert "f.svg" in _one_line(ei.value)


# --------------------------------------------------------------------------- transforms and documents
def test_transform_composition_matches_matrices():
    m = parse_transform("translate(10, 20) scale(2 3) rotate(90)")
    T = np.array([[1, 0, 10], [0, 1, 20], [0, 0, 1.0]])
    S = np.diag([2.0, 3.0, 1.0])
    R = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(m, T @ S @ R, atol=1e-12)
    rc = parse_transform("rotate(180 5 5)")
    np.testing.assert_allclose(rc @ [0, 0, 1], [10, 10, 1], atol=1e-12)
    np.testing.assert_allclose(parse_transform("matrix(1 2 3 4 5 6)"), [[1, 3, 5], [2, 4, 6], [0, 0, 1]])
    np.testing.assert_allclose(parse_transform("skewX(45)") @ [0, 2, 1], [2, 2, 1], atol=1e-12)


SVG_DOC = """<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">
  <title>hand-written</title>
  <defs><path d="M0 0 L99 99"/></defs>
  <g transform="translate(100,0)">
    <g transform="scale(2)">
      <polyline points="0,0 1,1 2,0" fill="none" stroke="black"/>
    </g>
    <path d="M0 50 h10 v10 z" display="none"/>
  </g>
  <line x1="0" y1="0" x2="3" y2="4" transform="rotate(90)"/>
  <polygon points="0,0 10,0 10,10"/>
  <rect x="1" y="2" width="3" height="4"/>
  <path d="M5 5 l10 0 M30 30 l0 5"/>
  <circle cx="50" cy="50" r="5"/>
  <text x="0" y="0">ignored</text>
</svg>"""


def test_svg_document_elements_groups_and_skips():
    polys = parse_svg(SVG_DOC, "doc.svg")
    assert len(polys) == 7
    np.testing.assert_allclose(polys[0], [[100, 0], [102, 2], [104, 0]])  # nested group transforms
    np.testing.assert_allclose(polys[1], [[0, 0], [-4, 3]], atol=1e-12)  # rotate(90): (x, y) -> (-y, x)
    np.testing.assert_allclose(polys[2], [[0, 0], [10, 0], [10, 10], [0, 0]])  # polygon closed
    np.testing.assert_allclose(polys[3], [[1, 2], [4, 2], [4, 6], [1, 6], [1, 2]])
    np.testing.assert_allclose(polys[4], [[5, 5], [15, 5]])
    np.testing.assert_allclose(polys[5], [[30, 30], [30, 35]])
    np.testing.assert_allclose(np.hypot(polys[6][:, 0] - 50, polys[6][:, 1] - 50), 5.0, atol=1e-9)


def test_read_svg_file_to_stroke3(tmp_path):
    f = tmp_path / "d.svg"
    f.write_text('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0 L10 0 L10 10"/>'
                 '<polyline points="20,20 30,20"/></svg>')
    (s,) = read_strokes_file(f)
    # first point is the start point; rows move from it (as from_polylines / the sketch-rnn files)
    np.testing.assert_allclose(s, [[10, 0, 0], [0, 10, 1], [10, 10, 0], [10, 0, 1]])
    polys = to_polylines(s)
    np.testing.assert_allclose(polys[0], [[0, 0], [10, 0], [10, 10]])
    np.testing.assert_allclose(polys[1], [[20, 20], [30, 20]])


def test_read_svg_curves_are_thinned_by_rdp(tmp_path):
    f = tmp_path / "c.svg"
    f.write_text('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0 C0 0 255 0 255 0 C 255 100 0 100 0 0"/></svg>')
    (s,) = read_strokes_file(f)
    (raw,) = read_strokes_file(f, simplify_svg=False)
    assert len(s) < len(raw) // 2  # the straight first curve collapses to one segment
    x0, x1, _y0, _y1 = bounds(s)
    assert x1 - x0 == pytest.approx(255, abs=1e-3)


@pytest.mark.parametrize("text, needle", [
    ("<svg xmlns='http://www.w3.org/2000/svg'></svg>", "no drawable"),
    ("<svg", "not a valid SVG"),
    ("<html/>", "not <svg>"),
    ("<!DOCTYPE svg [<!ENTITY a 'b'>]><svg/>", "entity"),
])
def test_bad_svg_is_one_line(tmp_path, text, needle):
    f = tmp_path / "bad.svg"
    f.write_text(text)
    with pytest.raises(DataError) as ei:
        read_strokes_file(f)
    msg = _one_line(ei.value)
    assert needle in msg and "bad.svg" in msg


# --------------------------------------------------------------------------- JSON
def _write(tmp_path, obj, name="s.json"):
    f = tmp_path / name
    f.write_text(json.dumps(obj))
    return f


def test_json_layouts(tmp_path):
    s3 = [[1, 2, 0], [3, 4, 1], [5, -6, 1]]
    (a,) = read_strokes_file(_write(tmp_path, s3))
    np.testing.assert_array_equal(a, np.asarray(s3, np.float32))
    qd = [[[0, 10, 20], [0, 0, 5]], [[30, 31], [40, 41]]]
    (b,) = read_strokes_file(_write(tmp_path, qd))
    expected = from_polylines([np.array([[0, 0], [10, 0], [20, 5]]), np.array([[30, 40], [31, 41]])])
    np.testing.assert_array_equal(b, expected)
    (c,) = read_strokes_file(_write(tmp_path, {"strokes": qd}))
    np.testing.assert_array_equal(c, expected)
    (d,) = read_strokes_file(_write(tmp_path, {"drawing": [[[0, 10, 20], [0, 0, 5], [0, 5, 9]], [[30, 31], [40, 41]]]}))
    np.testing.assert_array_equal(d, expected)  # QuickDraw raw with times: times ignored
    (e,) = read_strokes_file(_write(tmp_path, {"polylines": [[[0, 0], [10, 0], [20, 5]], [[30, 40], [31, 41]]]}))
    np.testing.assert_array_equal(e, expected)
    many = read_strokes_file(_write(tmp_path, {"sketches": [s3, {"strokes": qd}]}))
    assert len(many) == 2
    many2 = read_strokes_file(_write(tmp_path, [{"strokes": s3}, {"drawing": qd}]))
    np.testing.assert_array_equal(many2[1], expected)


def test_json_roundtrip_of_random_polylines(tmp_path):
    rng = np.random.default_rng(0)
    polys = [np.round(rng.uniform(0, 255, (rng.integers(2, 9), 2))) for _ in range(5)]
    qd = [[p[:, 0].tolist(), p[:, 1].tolist()] for p in polys]
    (s,) = read_strokes_file(_write(tmp_path, qd))
    back = to_polylines(s, start=polys[0][0])
    assert len(back) == len(polys)
    for p, q in zip(polys, back):
        np.testing.assert_allclose(q, p, atol=1e-3)


@pytest.mark.parametrize("obj, needle", [
    ([], "empty"),
    ({"foo": 1}, "none of the keys"),
    ([[1, 2]], "not stroke-3"),
    ([[[1, 2], [3]]], "equal lengths"),
    ({"polylines": [[[1, 2, 3]]]}, "[x, y]"),
    ({"sketches": []}, "non-empty"),
    ({"strokes": [[[], []]]}, "no points"),
])
def test_bad_json_is_one_line(tmp_path, obj, needle):
    with pytest.raises(DataError) as ei:
        read_strokes_file(_write(tmp_path, obj, "bad.json"))
    msg = _one_line(ei.value)
    assert needle in msg and "bad.json" in msg, msg


def test_not_json_missing_and_unknown_type(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{nope")
    with pytest.raises(DataError, match="not valid JSON"):
        read_strokes_file(f)
    with pytest.raises(DataError, match="not found"):
        read_strokes_file(tmp_path / "missing.svg")
    g = tmp_path / "x.txt"
    g.write_text("1")
    with pytest.raises(DataError, match="unknown input type"):
        read_strokes_file(g)


# --------------------------------------------------------------------------- RDP and fitting
def test_rdp_matches_recursive_reference():
    rng = np.random.default_rng(1)
    for trial in range(30):
        pts = np.cumsum(rng.normal(0, 5, (rng.integers(2, 60), 2)), axis=0)
        eps = float(rng.uniform(0.1, 8))
        np.testing.assert_array_equal(rdp(pts, eps), _rdp_ref(pts, eps))


def test_simplify_to_length_is_minimal_and_fits():
    rng = np.random.default_rng(2)
    polys = [np.cumsum(rng.normal(0, 3, (80, 2)), axis=0) for _ in range(3)]
    s = from_polylines(polys)
    out, eps = simplify_to_length(s, 60)
    assert len(out) <= 60 and eps > 0
    assert len(simplify_strokes(s, eps * 0.98)) > 60  # a slightly smaller epsilon would not fit
    np.testing.assert_array_equal(out, simplify_strokes(s, eps))
    same, e0 = simplify_to_length(s, len(s))
    assert e0 == 0 and same is not None and len(same) == len(s)


def test_too_many_strokes_for_the_model_is_one_line():
    s = from_polylines([np.array([[i * 10.0, 0], [i * 10.0, 5], [i * 10 + 3.0, 9]]) for i in range(20)])
    assert min_points(s) == 39
    with pytest.raises(DataError) as ei:
        simplify_to_length(s, 30, "pig.svg")
    msg = _one_line(ei.value)
    assert "pig.svg" in msg and "max_seq_len 30" in msg


def test_fit_sketch_size_and_notes():
    rng = np.random.default_rng(4)
    s = from_polylines([np.cumsum(rng.normal(0, 1, (100, 2)), axis=0)])
    out, notes = fit_sketch(s, max_len=50, size=255.0, where="me.json")
    x0, x1, y0, y1 = bounds(out)
    assert max(x1 - x0, y1 - y0) <= 255.0 + 1e-3 and len(out) <= 50
    assert any("RDP" in n and "me.json" in n for n in notes)
    same, notes2 = fit_sketch(s[:10], max_len=50)
    np.testing.assert_array_equal(same, s[:10])
    assert notes2 == []


@pytest.mark.parametrize("s, needle", [
    (np.zeros((0, 3)), "empty"),
    (np.array([[1, 2, 1]]), "only 1 point"),
    (np.array([[1, np.nan, 1], [1, 1, 1]]), "NaN"),
    (np.zeros((4, 2)), "shape"),
])
def test_fit_sketch_bad_input(s, needle):
    with pytest.raises(DataError) as ei:
        fit_sketch(s, 10, where="input[3]")
    msg = _one_line(ei.value)
    assert needle in msg and "input[3]" in msg


def test_reads_real_quickdraw_ndjson(shared_dir):
    sk = read_strokes_file(shared_dir / "data/quickdraw/simplified/cat.ndjson")
    assert len(sk) == 25 and all(s.ndim == 2 and s.shape[1] == 3 for s in sk)
    x0, x1, y0, y1 = bounds(sk[0])
    assert max(x1 - x0, y1 - y0) <= 255
