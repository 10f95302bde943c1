"""Stroke format conversions: invariants and round trips (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchrnn.data import (START_TOKEN, bounds, clean, from_polylines, from_stroke5, normalize_size,
                            to_polylines, to_stroke5)
from sketchrnn.errors import DataError


@st.composite
def stroke3(draw, min_len=1, max_len=40, last_lifted=True, integral=True):
    L = draw(st.integers(min_len, max_len))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = np.zeros((L, 3), dtype=np.float32)
    a[:, :2] = rng.integers(-50, 50, size=(L, 2)) if integral else rng.normal(0, 20, size=(L, 2))
    a[:, 2] = rng.random(L) < draw(st.floats(0.0, 0.6))
    if last_lifted:
        a[-1, 2] = 1
    return a


@settings(max_examples=60, deadline=None)
@given(s3=stroke3(last_lifted=False), extra=st.integers(0, 10),
       scale=st.sampled_from([1.0, 0.5, 4.0, 13.7, 82.2]))
def test_stroke5_layout_and_round_trip(s3, extra, scale):
    L = len(s3)
    T = L + extra
    s5 = to_stroke5(s3, T, scale)
    assert s5.shape == (T + 1, 5) and s5.dtype == np.float32
    np.testing.assert_array_equal(s5[0], START_TOKEN)
    body = s5[1:L + 1]
    np.testing.assert_array_equal(body[:, 0:2], s3[:, 0:2] / np.float32(scale))
    np.testing.assert_array_equal(body[:, 3], s3[:, 2])
    np.testing.assert_array_equal(body[:, 2], 1 - s3[:, 2])
    assert (body[:, 4] == 0).all()
    np.testing.assert_array_equal(s5[L + 1:], np.tile([0, 0, 0, 0, 1], (T - L, 1)))
    back = from_stroke5(s5, scale)
    assert back.shape == s3.shape
    np.testing.assert_allclose(back, s3, rtol=1e-6, atol=1e-5)
    # without the start token as well
    np.testing.assert_allclose(from_stroke5(s5[1:], scale, start_token=False), s3, rtol=1e-6, atol=1e-5)


def test_from_stroke5_stops_at_first_end_row_and_uses_argmax():
    s5 = np.array([[0, 0, 1, 0, 0],
                   [1, 2, 0.9, 0.1, 0],
                   [3, 4, 0.2, 0.7, 0.1],
                   [0, 0, 0, 0, 1],
                   [9, 9, 1, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(from_stroke5(s5, 2.0), [[2, 4, 0], [6, 8, 1]])
    # an all-padding sequence is an empty sketch
    assert from_stroke5(np.tile([0, 0, 0, 0, 1.0], (4, 1)), 1.0, start_token=False).shape == (0, 3)


def test_to_stroke5_too_long_is_a_data_error():
    with pytest.raises(DataError, match="max_seq_len=3"):
        to_stroke5(np.zeros((4, 3)), 3, 1.0)


@settings(max_examples=80, deadline=None)
@given(s3=stroke3(), sx=st.integers(-100, 100), sy=st.integers(-100, 100))
def test_polylines_round_trip(s3, sx, sy):
    polys = to_polylines(s3, start=(sx, sy))
    assert len(polys) == int(s3[:, 2].sum())
    assert sum(len(p) for p in polys) == len(s3) + 1  # the start point is the first point
    np.testing.assert_array_equal(polys[0][0], [sx, sy])
    back = from_polylines(polys)
    np.testing.assert_array_equal(back, s3)
    again = to_polylines(back, start=polys[0][0])
    assert len(again) == len(polys)
    for a, b in zip(again, polys):
        np.testing.assert_array_equal(a, b)


def test_polylines_trailing_unlifted_stroke_and_single_point_first_stroke():
    s3 = np.array([[1, 0, 1], [0, 5, 0], [2, 0, 0]], np.float32)
    polys = to_polylines(s3)
    assert [p.tolist() for p in polys] == [[[0, 0], [1, 0]], [[1, 5], [3, 5]]]
    s = from_polylines([np.array([[4.0, 4.0]]), np.array([[5.0, 5.0], [6.0, 7.0]])])
    np.testing.assert_array_equal(s, [[0, 0, 1], [1, 1, 0], [1, 2, 1]])
    assert [p.tolist() for p in to_polylines(s, start=(4, 4))] == [[[4, 4], [4, 4]], [[5, 5], [6, 7]]]
    with pytest.raises(DataError):
        from_polylines([np.zeros((0, 2))])


@settings(max_examples=50, deadline=None)
@given(s3=stroke3(integral=False))
def test_bounds_against_brute_force(s3):
    x = y = 0.0
    xs, ys = [0.0], [0.0]
    for dx, dy, _ in s3.astype(np.float64):
        x += dx
        y += dy
        xs.append(x)
        ys.append(y)
    np.testing.assert_allclose(bounds(s3), (min(xs), max(xs), min(ys), max(ys)), atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(s3=stroke3(integral=False), size=st.floats(1.0, 500.0))
def test_normalize_size(s3, size):
    x0, x1, y0, y1 = bounds(s3)
    out = normalize_size(s3, size)
    np.testing.assert_array_equal(out[:, 2], s3[:, 2])
    if max(x1 - x0, y1 - y0) > 1e-3:
        a0, a1, b0, b1 = bounds(out)
        assert max(a1 - a0, b1 - b0) == pytest.approx(size, rel=1e-4)


def _dedup(poly):
    keep = np.concatenate([[True], np.any(np.diff(poly, axis=0) != 0, axis=1)])
    return poly[keep]


@settings(max_examples=80, deadline=None)
@given(s3=stroke3(), zeros=st.integers(0, 10), seed=st.integers(0, 1000))
def test_clean_keeps_the_drawing(s3, zeros, seed):
    rng = np.random.default_rng(seed)
    a = s3.copy()
    for _ in range(zeros):  # insert zero-offset rows at random places
        i = int(rng.integers(0, len(a) + 1))
        a = np.insert(a, i, [0, 0, 0], axis=0)
    c = clean(a)
    assert len(c) <= len(a) and c[-1, 2] == 1
    pa, pc = to_polylines(a), to_polylines(c)
    assert len(pa) == len(pc)
    for p, q in zip(pa, pc):
        np.testing.assert_array_equal(_dedup(p), _dedup(q))
    assert not ((c[1:, 0] == 0) & (c[1:, 1] == 0) & (c[1:, 2] == 0) & (c[:-1, 2] == 0)).any()


@pytest.mark.parametrize("eps", [0.0, -1.0])
def test_rdp_without_tolerance_keeps_every_point(eps):
    # collinear and repeated points too: a non-positive epsilon means "do not simplify"
    from sketchrnn.data.strokes import rdp

    pts = np.array([[0, 0], [1, 0], [2, 0], [2, 0], [3, 1]], dtype=np.float64)
    np.testing.assert_array_equal(rdp(pts, eps), pts)
    assert rdp(pts, 0.5).tolist() == [[0, 0], [2, 0], [3, 1]]
