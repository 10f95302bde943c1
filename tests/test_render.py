"""Renderers: SVG structure and coordinates, raster ink against exact geometry, grids,
animations, degenerate sketches, atomic saving."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from sketchrnn.errors import DataError
from sketchrnn.render import (animate_gif, animate_svg, grid_image, grid_svg, save_png, save_svg,
                              stroke3_to_image, stroke3_to_svg)

NS = {"s": "http://www.w3.org/2000/svg"}

# three strokes: a 3-point stroke from the origin, a 1-point stroke (a dot), a 2-point stroke
SKETCH = np.array([[10, 0, 0], [0, 20, 1],  # (0,0)->(10,0)->(10,20), lift
                   [30, -5, 1],  # dot at (40,15)
                   [-40, 10, 0], [25, 0, 1]], dtype=np.float32)  # (0,25)->(25,25)
EXPECTED = [np.array([[0, 0], [10, 0], [10, 20]]), np.array([[40, 15]]), np.array([[0, 25], [25, 25]])]


def expected_lines(s3: np.ndarray) -> list[np.ndarray]:
    """Independent stroke-3 -> polylines (pen starts down at the origin, which is drawn)."""
    lines, cur, pos = [], [np.zeros(2)], np.zeros(2)
    for dx, dy, lift in s3:
        pos = pos + (dx, dy)
        cur.append(pos.copy())
        if lift > 0.5:
            lines.append(np.array(cur))
            cur = []
    if cur:
        lines.append(np.array(cur))
    return lines


def parse_points(s: str) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")] for p in s.split()])


def random_sketch(rng: np.random.Generator, n: int) -> np.ndarray:
    s = np.zeros((n, 3), dtype=np.float32)
    s[:, :2] = rng.normal(0, 15, (n, 2)).round(1)
    s[:, 2] = rng.random(n) < 0.2
    return s


def test_expected_lines_helper_matches_hand_written():
    for a, b in zip(expected_lines(SKETCH), EXPECTED):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- SVG
def test_svg_one_polyline_per_stroke_with_right_points():
    root = ET.fromstring(stroke3_to_svg(SKETCH))
    polys = root.findall(".//s:polyline", NS)
    assert len(polys) == 3
    for poly, exp in zip(polys, EXPECTED):
        pts = parse_points(poly.get("points"))
        if len(exp) == 1:  # a dot is written as a zero-length segment (round caps draw it)
            exp = np.concatenate([exp, exp])
        np.testing.assert_allclose(pts, exp, atol=1e-3)
    # viewBox = bounds + margin (1 px per data unit without size)
    vx, vy, vw, vh = map(float, root.get("viewBox").split())
    assert (vx, vy, vw, vh) == pytest.approx((-10, -10, 60, 45))
    assert float(root.get("width")) == pytest.approx(60) and float(root.get("height")) == pytest.approx(45)


@pytest.mark.parametrize("seed", range(5))
def test_svg_random_sketches(seed):
    rng = np.random.default_rng(seed)
    s3 = random_sketch(rng, int(rng.integers(1, 60)))
    root = ET.fromstring(stroke3_to_svg(s3, size=300, margin=12, stroke_width=3))
    polys = root.findall(".//s:polyline", NS)
    exp = expected_lines(s3)
    assert len(polys) == len(exp)
    for poly, e in zip(polys, exp):
        pts = parse_points(poly.get("points"))
        np.testing.assert_allclose(pts, e if len(e) > 1 else np.concatenate([e, e]), atol=1e-3)
    allp = np.concatenate(exp)
    ext = (allp.max(0) - allp.min(0)).max()
    w, h = float(root.get("width")), float(root.get("height"))
    assert max(w, h) == pytest.approx(300, abs=2e-3)  # longer side = size
    k = (300 - 24) / ext  # px per data unit
    vx, vy, vw, vh = map(float, root.get("viewBox").split())
    assert vx == pytest.approx(allp[:, 0].min() - 12 / k, abs=2e-3)
    assert vy == pytest.approx(allp[:, 1].min() - 12 / k, abs=2e-3)
    assert float(root.find("s:g", NS).get("stroke-width")) == pytest.approx(3 / k, rel=1e-3, abs=1e-3)


@pytest.mark.parametrize("s3", [np.zeros((0, 3)), np.array([[0, 0, 1]]), np.zeros((5, 3)), np.array([[5, 0, 0]] * 4)])
def test_svg_degenerate_sketches(s3):
    for size in (None, 128):
        root = ET.fromstring(stroke3_to_svg(s3, size=size))
        vb = [float(v) for v in root.get("viewBox").split()]
        assert all(np.isfinite(vb)) and vb[2] > 0 and vb[3] > 0
        assert float(root.get("width")) > 0 and float(root.get("height")) > 0
        assert len(root.findall(".//s:polyline", NS)) == (len(expected_lines(s3)) if len(s3) else 0)


def test_svg_rejects_bad_input():
    with pytest.raises(DataError, match="shape"):
        stroke3_to_svg(np.zeros((4, 2)))
    bad = SKETCH.copy()
    bad[2, 0] = np.nan
    with pytest.raises(DataError, match="row 2"):
        stroke3_to_svg(bad)


def test_grid_svg_cells_labels_and_escaping():
    rng = np.random.default_rng(0)
    sketches = [random_sketch(rng, 20) for _ in range(5)] + [np.zeros((0, 3))]
    labels = ["a", "b", "<cat & dog>", "d", "e", "empty"]
    root = ET.fromstring(grid_svg(sketches, ncols=4, cell=100, labels=labels))
    cells = root.findall("s:svg", NS)
    assert len(cells) == 6
    assert [(float(c.get("x")), float(c.get("y"))) for c in cells[:5]] == \
        [(0, 0), (100, 0), (200, 0), (300, 0), (0, 116)]
    assert float(root.get("width")) == 400 and float(root.get("height")) == 232
    assert sum(len(c.findall(".//s:polyline", NS)) for c in cells) == sum(len(expected_lines(s)) for s in sketches[:5])
    assert [t.text for t in root.findall("s:text", NS)] == labels
    with pytest.raises(DataError, match="labels"):
        grid_svg(sketches, ncols=2, labels=["x"])


# ---------------------------------------------------------------- PNG
def _seg_dist(px: np.ndarray, lines: list[np.ndarray]) -> np.ndarray:
    """Distance from each point (N, 2) to the nearest segment (or dot) of the polylines."""
    d = np.full(len(px), np.inf)
    for line in lines:
        segs = zip(line[:-1], line[1:]) if len(line) > 1 else [(line[0], line[0])]
        for a, b in segs:
            ab = b - a
            t = np.clip(((px - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
            d = np.minimum(d, np.linalg.norm(px - (a + t[:, None] * ab), axis=1))
    return d


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_png_ink_matches_geometry(seed):
    size, margin, sw = 128, 10.0, 3.0
    s3 = SKETCH if seed == 0 else random_sketch(np.random.default_rng(seed), 25)
    img = stroke3_to_image(s3, size=size, margin=margin, stroke_width=sw)
    assert img.size == (size, size) and img.mode == "RGB"
    gray = np.asarray(img.convert("L"), dtype=np.float64)
    # documented layout: uniform scale into size - 2*margin, centred (y down, as in the data)
    lines = expected_lines(s3)
    allp = np.concatenate(lines)
    lo, hi = allp.min(0), allp.max(0)
    k = (size - 2 * margin) / (hi - lo).max()
    px_lines = [(l - (lo + hi) / 2) * k + size / 2 for l in lines]
    yy, xx = np.mgrid[0:size, 0:size]
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)
    dist = _seg_dist(centres, px_lines).reshape(size, size)
    assert np.all(gray[dist > sw / 2 + 1.5] >= 250)  # nothing drawn away from the strokes
    assert np.all(gray[dist < 0.5] < 110)  # ink on the strokes
    mid = gray[(dist > sw / 2 - 0.5) & (dist < sw / 2 + 0.5)]
    assert np.any((mid > 20) & (mid < 235))  # antialiased edge (supersampling)


def test_png_empty_and_single_point():
    assert np.asarray(stroke3_to_image(np.zeros((0, 3)), size=64)).min() == 255
    dot = np.asarray(stroke3_to_image(np.array([[0, 0, 1]]), size=64, stroke_width=4).convert("L"))
    ys, xs = np.nonzero(dot < 128)
    assert len(ys) > 0 and abs(ys.mean() - 31.5) < 1 and abs(xs.mean() - 31.5) < 1  # a centred dot
    with pytest.raises(DataError, match="margin"):
        stroke3_to_image(SKETCH, size=16, margin=10)


def test_grid_image_layout_and_labels():
    rng = np.random.default_rng(3)
    sketches = [random_sketch(rng, 15) for _ in range(5)]
    img = grid_image(sketches, ncols=3, cell=64, labels=[f"s{i}" for i in range(5)], label_height=14)
    assert img.size == (192, 2 * 78)
    g = np.asarray(img.convert("L"))
    for i in range(5):
        r, c = divmod(i, 3)
        assert (g[r * 78:r * 78 + 64, c * 64:(c + 1) * 64] < 128).any()  # sketch ink in its cell
        assert (g[r * 78 + 64:(r + 1) * 78, c * 64:(c + 1) * 64] < 200).any()  # its label
    assert g[78:, 128:].min() == 255  # the sixth cell (no sketch) stays blank


def test_save_png_and_svg_atomic(tmp_path):
    img = stroke3_to_image(SKETCH, size=48)
    p = tmp_path / "sub" / "a.png"
    save_png(p, img)
    assert np.array_equal(np.asarray(Image.open(p).convert("RGB")), np.asarray(img))
    mask = os.umask(0o022)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == 0o666 & ~mask
    q = tmp_path / "a.svg"
    svg = stroke3_to_svg(SKETCH)
    save_svg(q, svg)
    assert q.read_text() == svg
    assert sorted(x.name for x in tmp_path.rglob("*")) == ["a.png", "a.svg", "sub"]  # no temp files left
    with pytest.raises(DataError, match="cannot write"):
        save_svg(q / "x.svg", svg)  # parent is a file


# ---------------------------------------------------------------- animations
def test_animate_gif_frames_grow(tmp_path):
    s3 = random_sketch(np.random.default_rng(4), 40)
    path = tmp_path / "a.gif"
    n = animate_gif(s3, path, size=96, every=5)
    assert n == 9  # ceil(41 points / 5): 40 rows + the start point
    im = Image.open(path)
    assert im.n_frames > 1
    ink = []
    for f in range(im.n_frames):
        im.seek(f)
        ink.append(int((np.asarray(im.convert("L")) < 128).sum()))
    assert all(b >= a for a, b in zip(ink, ink[1:])) and ink[-1] > ink[0]
    final = (np.asarray(stroke3_to_image(s3, size=96, supersample=2).convert("L")) < 128).sum()
    assert abs(ink[-1] - final) <= 0.1 * final  # last frame = the whole sketch
    assert animate_gif(np.zeros((0, 3)), tmp_path / "e.gif", size=32) == 1


def test_animate_svg_strokes_in_order():
    root = ET.fromstring(animate_svg(SKETCH, duration=2.0))
    paths = root.findall(".//s:path", NS)
    assert len(paths) == 3
    begins, durs = [], []
    for p, e in zip(paths, EXPECTED):
        anim = p.find("s:animate", NS)
        assert anim.get("attributeName") == "stroke-dashoffset" and p.get("pathLength") == "1"
        begins.append(float(anim.get("begin").rstrip("s")))
        durs.append(float(anim.get("dur").rstrip("s")))
        pts = np.array([[float(v) for v in tok.lstrip("ML").split(",")] for tok in p.get("d").split()])
        np.testing.assert_allclose(pts, e if len(e) > 1 else np.concatenate([e, e]), atol=1e-3)
    assert begins[0] == 0 and all(b > a for a, b in zip(begins, begins[1:]))
    np.testing.assert_allclose(np.array(begins[1:]), np.cumsum(durs)[:-1], atol=2e-4)
    assert sum(durs) == pytest.approx(2.0, abs=1e-3)
    assert durs[0] > durs[2] > durs[1]  # proportional to stroke length (30 > 25 > dot)


# ---------------------------------------------------------------- real data
def test_render_sheep(shared_dir, tmp_path):
    try:
        from sketchrnn.data import load_npz
    except ImportError:
        pytest.skip("sketchrnn.data.load_npz is not available yet")
    sheep = load_npz(shared_dir / "data" / "sketchrnn" / "aaron_sheep.npz", splits=["test"])["test"][:6]
    img = grid_image(sheep, ncols=3, cell=96)
    save_png(tmp_path / "sheep.png", img)
    g = np.asarray(img.convert("L"))
    for i in range(6):
        r, c = divmod(i, 3)
        cell = g[r * 96:(r + 1) * 96, c * 96:(c + 1) * 96]
        assert 0.02 < (cell < 128).mean() < 0.5
    root = ET.fromstring(stroke3_to_svg(sheep[0]))
    assert len(root.findall(".//s:polyline", NS)) == len(expected_lines(sheep[0]))
