"""Shared helpers of the renderers: stroke-3 -> polylines, bounds, fitting, atomic writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from ..fileio import atomic_write as _atomic_write


def as_stroke3(s3: Any, where: str = "sketch") -> np.ndarray:
    """Check and convert a stroke-3 sketch to float64 ``(L, 3)``; empty input gives ``(0, 3)``."""
    try:
        a = np.asarray(s3, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: not a numeric stroke-3 array (rows [dx, dy, pen_lifted])") from None
    if a.size == 0:
        return np.zeros((0, 3), dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise DataError(f"{where}: stroke-3 array must have shape (L, 3), got {a.shape}")
    if not np.all(np.isfinite(a)):
        bad = int(np.argwhere(~np.isfinite(a))[0, 0])
        raise DataError(f"{where}: row {bad} holds NaN or Inf; clean the sketch before rendering")
    return a


def _polylines(s3: Any, where: str = "sketch") -> list[np.ndarray]:
    """stroke-3 -> absolute polylines (float64 ``(n, 2)`` per stroke), after validation.

    Delegates to :func:`sketchrnn.data.strokes.to_polylines` (the project's convention: the
    pen starts down at the origin, which is the first point of the first stroke, and a
    stroke ends after each row with ``pen_lifted = 1``); an empty sketch has no polylines.
    """
    from ..data.strokes import to_polylines

    a = as_stroke3(s3, where)
    if len(a) == 0:
        return []
    return [np.asarray(p, dtype=np.float64) for p in to_polylines(a)]


def bounds(lines: Sequence[np.ndarray]) -> tuple[float, float, float, float]:
    """(min_x, min_y, max_x, max_y) of all points; (0, 0, 0, 0) when there are none."""
    if not lines:
        return 0.0, 0.0, 0.0, 0.0
    allp = np.concatenate(lines, axis=0)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


@dataclass
class Fit:
    """Maps data coordinates into a ``width x height`` pixel box: ``p * scale + offset``."""

    scale: float
    offset: np.ndarray  # (2,)

    def apply(self, p: np.ndarray) -> np.ndarray:
        return p * self.scale + self.offset


def fit_box(lines: Sequence[np.ndarray], width: float, height: float, margin: float) -> Fit:
    """Uniform scale + translation that centres the sketch in the box, ``margin`` px each side.

    A degenerate extent (one point, a straight line) is treated as 1 data unit so that the
    scale stays finite; such sketches are centred.
    """
    x0, y0, x1, y1 = bounds(lines)
    ext = max(x1 - x0, y1 - y0, 1e-9)
    avail = max(min(width, height) - 2.0 * margin, 1.0)
    scale = avail / ext if ext > 1e-9 else 1.0
    centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    offset = np.array([width / 2.0, height / 2.0]) - centre * scale
    return Fit(scale=scale, offset=offset)


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`sketchrnn.fileio.atomic_write`)."""
    _atomic_write(path, data, error=DataError)
