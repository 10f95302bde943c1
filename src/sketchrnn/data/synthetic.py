"""A tiny procedural sketch dataset (no download needed): circles, squares, triangles
and zigzags with random size, position, rotation and hand-like jitter.

Each sketch is one stroke of 11-61 points (10-60 stroke-3 rows), in whole-pixel units on a
canvas of about 0-100, like the sketch-rnn files. Used by the README's zero-download demo
and by tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .npz import save_npz
from .strokes import from_polylines

__all__ = ["SHAPES", "make_shapes", "write_synthetic_npz"]

SHAPES = ("circle", "square", "triangle", "zigzag")


def _polygon(vertices: np.ndarray, n: int) -> np.ndarray:
    """``n`` points spread by arc length along the closed polygon through ``vertices``."""
    closed = np.concatenate([vertices, vertices[:1]])  # (k+1, 2)
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed, axis=0).T))])
    s = np.linspace(0.0, cum[-1], n)
    return np.stack([np.interp(s, cum, closed[:, 0]), np.interp(s, cum, closed[:, 1])], axis=1)


def _one_shape(kind: str, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(11, 62))  # points -> 10..61 rows before de-duplication
    size = rng.uniform(25.0, 80.0)
    angle = rng.uniform(-0.3, 0.3)
    if kind == "circle":
        t = rng.uniform(0, 2 * np.pi) + np.linspace(0.0, 2 * np.pi, n)
        pts = 0.5 * size * np.stack([np.cos(t), np.sin(t)], axis=1)
    elif kind == "square":
        h = 0.5 * size
        pts = _polygon(np.array([[-h, -h], [h, -h], [h, h], [-h, h]]), n)
    elif kind == "triangle":
        h = 0.5 * size
        pts = _polygon(np.array([[0.0, -h], [h, h], [-h, h]]), n)
    elif kind == "zigzag":
        teeth = int(rng.integers(3, 8))
        xs = np.linspace(-0.5 * size, 0.5 * size, 2 * teeth + 1)
        ys = np.where(np.arange(len(xs)) % 2 == 0, -0.15 * size, 0.15 * size)
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))])
        s = np.linspace(0.0, cum[-1], n)
        pts = np.stack([np.interp(s, cum, xs), np.interp(s, cum, ys)], axis=1)
    else:  # pragma: no cover - internal
        raise ValueError(kind)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = pts @ rot.T + rng.normal(0.0, 0.7, size=pts.shape)
    pts += rng.uniform(0.5 * size + 5, 100 - 0.5 * size - 5, size=2)  # position on a ~0-100 canvas
    pts = np.round(pts)
    # drop repeated points (zero offsets) left by rounding
    keep = np.concatenate([[True], np.any(np.diff(pts, axis=0) != 0, axis=1)])
    pts = pts[keep]
    return from_polylines([pts])


def make_shapes(n: int, seed: int = 0, return_kinds: bool = False):
    """``n`` one-stroke sketches (stroke-3 float32, integral offsets), kinds in turn
    circle/square/triangle/zigzag. With ``return_kinds`` also return the kind index per sketch."""
    rng = np.random.default_rng(seed)
    kinds = np.arange(n) % len(SHAPES)
    sketches = []
    for k in kinds:
        s = _one_shape(SHAPES[k], rng)
        while len(s) < 10:  # very rare: too many merged duplicates
            s = _one_shape(SHAPES[k], rng)
        sketches.append(s)
    return (sketches, kinds.astype(np.int64)) if return_kinds else sketches


def write_synthetic_npz(path: str | os.PathLike, n_train: int = 2000, n_valid: int = 200,
                        n_test: int = 200, seed: int = 0) -> Path:
    """Write a synthetic sketch-rnn ``.npz`` (int16 offsets, Google's layout); returns its path."""
    s = make_shapes(n_train + n_valid + n_test, seed)
    s = [a.astype(np.int16) for a in s]
    p = Path(path)
    save_npz(p, {"train": s[:n_train], "valid": s[n_train:n_train + n_valid],
                 "test": s[n_train + n_valid:]})
    return p
