"""Conversions between stroke formats (see docs/ARCHITECTURE.md, "Stroke formats").

Conventions used throughout this project
-----------------------------------------
* **stroke-3** ``(L, 3)`` rows ``[dx, dy, pen_lifted]``. The pen starts *down* at a start
  point (the origin unless said otherwise); row ``i`` moves the pen by ``(dx, dy)`` to a
  new point, drawing a line if the pen was down (i.e. unless row ``i-1`` had
  ``pen_lifted = 1``); ``pen_lifted = 1`` lifts the pen after reaching that point.
  So the start point is the first point of the drawing and **row 0 is the move from the
  first point to the second** (as stated for the sketch-rnn files in ../shared/README.md,
  and as the model sees it: the start token ``(0, 0, 1, 0, 0)`` says "pen down").
* **polylines**: list of ``(n, 2)`` absolute points, one array per stroke. The first
  stroke begins at the start point.
* **stroke-5** ``(T+1, 5)``: row 0 is the start token ``(0, 0, 1, 0, 0)``, rows ``1..L`` are
  ``[dx/s, dy/s, 1-pen_lifted, pen_lifted, 0]``, rows ``L+1..T`` are ``(0, 0, 0, 0, 1)``
  (Ha & Eck 2017, section 3.1; Magenta ``utils.to_big_strokes`` + start token).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DataError

__all__ = [
    "START_TOKEN",
    "to_stroke5",
    "from_stroke5",
    "to_polylines",
    "from_polylines",
    "bounds",
    "normalize_size",
    "clean",
    "rdp",
]

START_TOKEN = np.array([0.0, 0.0, 1.0, 0.0, 0.0], dtype=np.float32)


def _check_s3(s3: np.ndarray, name: str = "stroke-3") -> np.ndarray:
    a = np.asarray(s3)
    if a.ndim != 2 or a.shape[1] != 3:
        raise DataError(f"{name}: expected an (L, 3) array, got shape {a.shape}")
    return a


def to_stroke5(s3: np.ndarray, max_len: int, scale: float = 1.0) -> np.ndarray:
    """Stroke-3 ``(L, 3)`` -> padded, normalised stroke-5 ``(max_len + 1, 5)`` float32.

    Offsets are divided by ``scale``. ``L`` must be ``<= max_len``.
    """
    a = _check_s3(s3)
    n = a.shape[0]
    if n > max_len:
        raise DataError(f"sketch has {n} points, more than max_seq_len={max_len}; raise max_seq_len or drop it")
    out = np.zeros((max_len + 1, 5), dtype=np.float32)  # (T+1, 5)
    out[0] = START_TOKEN
    out[1:n + 1, 0:2] = a[:, 0:2] / scale
    pen = (a[:, 2] > 0.5).astype(np.float32)
    out[1:n + 1, 2] = 1.0 - pen
    out[1:n + 1, 3] = pen
    out[n + 1:, 4] = 1.0
    return out


def from_stroke5(s5: np.ndarray, scale: float = 1.0, start_token: bool | None = None) -> np.ndarray:
    """Stroke-5 -> stroke-3 float32, offsets multiplied by ``scale``.

    Pen state per row = argmax of ``(p1, p2, p3)`` (exact for one-hot rows); reading stops
    at the first end-of-sketch row (Magenta ``to_normal_strokes``). ``start_token``: skip
    row 0 (True), keep it (False), or skip it only if it equals ``(0, 0, 1, 0, 0)`` (None;
    a zero-offset pen-down first row does not change the drawing either way).
    """
    a = np.asarray(s5, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 5:
        raise DataError(f"stroke-5: expected a (T, 5) array, got shape {a.shape}")
    if start_token is None:
        start_token = len(a) > 0 and bool(np.array_equal(a[0], START_TOKEN))
    if start_token:
        a = a[1:]
    state = np.argmax(a[:, 2:5], axis=1) if len(a) else np.zeros(0, dtype=np.int64)
    ends = np.nonzero(state == 2)[0]
    n = int(ends[0]) if len(ends) else len(a)
    out = np.zeros((n, 3), dtype=np.float32)
    out[:, 0:2] = a[:n, 0:2] * scale
    out[:, 2] = state[:n] == 1
    return out


def to_polylines(s3: np.ndarray, start: Sequence[float] = (0.0, 0.0)) -> list[np.ndarray]:
    """Stroke-3 -> list of ``(n, 2)`` float64 absolute polylines (first one begins at ``start``).

    A trailing stroke whose last row is not lifted is still returned.
    """
    a = _check_s3(s3)
    st = np.asarray(start, dtype=np.float64).reshape(2)
    if len(a) == 0:
        return [st[None, :].copy()]
    pts = st + np.cumsum(a[:, 0:2].astype(np.float64), axis=0)  # (L, 2) absolute points
    lifted = a[:, 2] > 0.5
    ends = np.nonzero(lifted)[0] + 1  # a stroke ends after each lifted row
    polys: list[np.ndarray] = []
    begin = 0
    for e in list(ends) + ([len(a)] if not lifted[-1] else []):
        seg = pts[begin:e]
        if begin == 0:
            seg = np.concatenate([st[None, :], seg])  # the first stroke starts at the start point
        polys.append(seg)
        begin = e
    return polys


def from_polylines(polys: Sequence[np.ndarray]) -> np.ndarray:
    """List of ``(n, 2)`` absolute polylines -> stroke-3 float32 (inverse of :func:`to_polylines`).

    The first point of the first polyline is the start point and is not stored (row 0 is
    the move from it to the next point); each row's ``pen_lifted`` is 1 on the last point of
    its polyline. ``to_polylines(from_polylines(P), start=P[0][0])`` gives back ``P``, except
    that a one-point first stroke comes back as that point twice (a ``(0, 0, 1)`` row
    keeps it a separate stroke, as Google's simplified files store single points).
    Empty polylines are skipped.
    """
    arrs = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys]
    arrs = [p for p in arrs if len(p)]
    if not arrs:
        raise DataError("drawing has no points; nothing to convert")
    if len(arrs[0]) == 1:
        arrs[0] = np.concatenate([arrs[0], arrs[0]])  # single-point first stroke
    pts = np.concatenate(arrs)  # (N, 2)
    pen = np.zeros(len(pts), dtype=np.float64)
    pen[np.cumsum([len(p) for p in arrs]) - 1] = 1.0
    out = np.empty((len(pts) - 1, 3), dtype=np.float32)
    out[:, 0:2] = np.diff(pts, axis=0)
    out[:, 2] = pen[1:]
    return out


def bounds(s3: np.ndarray, start: Sequence[float] = (0.0, 0.0)) -> tuple[float, float, float, float]:
    """``(min_x, max_x, min_y, max_y)`` of all absolute points, the start point included
    (Magenta ``utils.get_bounds`` with ``factor=1``)."""
    a = _check_s3(s3)
    st = np.asarray(start, dtype=np.float64).reshape(2)
    pts = np.concatenate([st[None, :], st + np.cumsum(a[:, 0:2].astype(np.float64), axis=0)])
    return (float(pts[:, 0].min()), float(pts[:, 0].max()), float(pts[:, 1].min()), float(pts[:, 1].max()))


def normalize_size(s3: np.ndarray, size: float = 255.0) -> np.ndarray:
    """Scale offsets uniformly so the larger side of the bounding box is ``size``
    (Magenta ``scale_bound``); a drawing with zero extent is returned unchanged."""
    a = np.array(_check_s3(s3), dtype=np.float32)
    x0, x1, y0, y1 = bounds(a)
    extent = max(x1 - x0, y1 - y0)
    if extent > 0:
        a[:, 0:2] *= size / extent
    return a


def clean(s3: np.ndarray) -> np.ndarray:
    """Drop rows that change nothing in the drawing; return float32.

    A row is dropped when its offset is exactly zero, its pen stays down, and the
    previous row's pen was down too (a repeated point inside a stroke). The last row is
    marked ``pen_lifted = 1`` so the drawing ends with the pen up.
    """
    a = np.array(_check_s3(s3), dtype=np.float32)
    if len(a) == 0:
        return a
    prev_down = np.concatenate([[True], a[:-1, 2] < 0.5])
    useless = (a[:, 0] == 0) & (a[:, 1] == 0) & (a[:, 2] < 0.5) & prev_down
    useless[-1] = False
    out = a[~useless]
    out[-1, 2] = 1.0
    return out


def rdp(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker (Douglas & Peucker 1973) on one polyline ``(n, 2)``: keep the end
    points and split at the point farthest from the chord of its span while that distance
    exceeds ``epsilon`` (iterative, no recursion limit). ``epsilon <= 0`` keeps every point.
    Used by the QuickDraw pipeline (epsilon 2.0 after resampling) and by SVG import."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n < 3 or epsilon <= 0:
        return pts.copy()
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        seg = pts[j] - pts[i]
        rel = pts[i + 1:j] - pts[i]  # (j-i-1, 2)
        norm = float(np.hypot(seg[0], seg[1]))
        if norm > 0:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm  # distance to the chord's line
        else:
            dist = np.hypot(rel[:, 0], rel[:, 1])  # closed span: distance to its end point
        k = int(np.argmax(dist))
        if dist[k] > epsilon:
            m = i + 1 + k
            keep[m] = True
            stack.append((i, m))
            stack.append((m, j))
    return pts[keep]
