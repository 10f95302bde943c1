"""Augmentation: random_scale and Magenta's point-drop augment_strokes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchrnn.data import augment_strokes, random_scale, to_polylines


def _reference_augment(s3, prob, u):
    """Row-by-row loop with Magenta's rule (float64 lists), driven by the given uniforms."""
    result = []
    prev_pen = 1
    count = 0
    for i, (dx, dy, p) in enumerate(s3.astype(np.float64).tolist()):
        if p == 1 or prev_pen == 1:
            count = 0
        else:
            count += 1
        if p == 0 and prev_pen == 0 and count > 2 and u[i] < prob:
            result[-1][0] += dx
            result[-1][1] += dy
        else:
            result.append([dx, dy, p])
            prev_pen = p
    return np.array(result).reshape(-1, 3)


@st.composite
def sketch(draw):
    L = draw(st.integers(1, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = np.zeros((L, 3), np.float32)
    a[:, :2] = rng.integers(-30, 30, size=(L, 2))
    a[:, 2] = rng.random(L) < draw(st.floats(0.0, 0.4))
    a[-1, 2] = 1
    return a


@settings(max_examples=100, deadline=None)
@given(s3=sketch(), prob=st.sampled_from([0.0, 0.1, 0.5, 1.0]), seed=st.integers(0, 10**6))
def test_augment_strokes_matches_reference_loop(s3, prob, seed):
    out = augment_strokes(s3, prob, np.random.default_rng(seed))
    u = np.random.default_rng(seed).random(len(s3))  # same uniforms, one per row
    ref = _reference_augment(s3, prob, u)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    # never longer, same end point, same number of pen lifts
    assert len(out) <= len(s3)
    np.testing.assert_allclose(out[:, :2].sum(0), s3[:, :2].sum(0), atol=1e-3)
    assert out[:, 2].sum() == s3[:, 2].sum()
    # every stroke keeps its first and last points (only interior points go)
    pa, po = to_polylines(s3), to_polylines(out)
    assert len(pa) == len(po)
    for a, b in zip(pa, po):
        np.testing.assert_allclose(b[[0, -1]], a[[0, -1]], atol=1e-3)


def test_augment_strokes_drops_points_at_high_prob():
    s3 = np.zeros((50, 3), np.float32)
    s3[:, 0] = 1.0
    s3[-1, 2] = 1
    out = augment_strokes(s3, 1.0, np.random.default_rng(0))
    # rows 0-2 (count <= 2) and the lifted last row stay; every other row merges away
    assert len(out) == 4
    np.testing.assert_allclose(out[:, 0].sum(), 50.0)


def test_random_scale_factors_in_range():
    rng = np.random.default_rng(3)
    s3 = np.ones((5, 3), np.float32)
    s3[:, 2] = [0, 0, 1, 0, 1]
    fx, fy = [], []
    for _ in range(500):
        out = random_scale(s3, 0.15, rng)
        np.testing.assert_array_equal(out[:, 2], s3[:, 2])
        assert np.ptp(out[:, 0]) == 0 and np.ptp(out[:, 1]) == 0  # one factor per axis
        fx.append(out[0, 0])
        fy.append(out[0, 1])
    fx, fy = np.array(fx), np.array(fy)
    for f in (fx, fy):
        assert f.min() >= 0.85 - 1e-6 and f.max() <= 1.15 + 1e-6
        assert f.min() < 0.87 and f.max() > 1.13  # covers the range
    assert abs(np.corrcoef(fx, fy)[0, 1]) < 0.15  # independent axes
    # reproducible from the generator state
    a = random_scale(s3, 0.15, np.random.default_rng(7))
    b = random_scale(s3, 0.15, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def _random_sketches(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        L = int(rng.integers(0, 40)) if rng.random() < 0.9 else 0
        s = np.zeros((L, 3), dtype=np.float32)
        s[:, :2] = rng.normal(0, 20, (L, 2)).astype(np.float32)
        s[:, 2] = rng.random(L) < 0.2  # pen lifts
        out.append(s)
    return out


@pytest.mark.parametrize("scale,prob", [(0.15, 0.1), (0.15, 0.0), (0.0, 0.3), (0.0, 0.0), (0.5, 0.9)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augment_batch_equals_the_per_sketch_functions(scale, prob, seed):
    """The batched augmentation gives bit-identical sketches AND leaves the generator where
    the per-sketch loop leaves it (batches and resumed runs are unchanged)."""
    from sketchrnn.data.augment import augment_batch

    sketches = _random_sketches(np.random.default_rng(100 + seed), 64)
    r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
    ref = []
    for s in sketches:
        if scale > 0:
            s = random_scale(s, scale, r1)
        if prob > 0:
            s = augment_strokes(s, prob, r1)
        ref.append(np.asarray(s))
    flat, lens = augment_batch(sketches, scale, prob, r2)
    assert lens.tolist() == [len(s) for s in ref]
    assert np.array_equal(flat, np.concatenate(ref)) and flat.dtype == np.float32
    assert r1.random() == r2.random()
    if prob >= 0.3:
        assert lens.sum() < sum(len(s) for s in sketches)  # points were really dropped
