"""QuickDraw ``.ndjson`` reading and Google's "simplified" preprocessing.

Google's quickdraw-dataset README lists the steps behind the simplified files, but no
code was published (googlecreativelab/quickdraw-dataset issue #33 asks for it; none was
given). Steps as listed: (1) align the drawing to the top-left corner (minimum 0),
(2) scale uniformly so the maximum value is 255, (3) resample every stroke at 1 px
spacing, (4) Ramer-Douglas-Peucker with epsilon 2.0. The details below were settled by
measuring against the shared raw/simplified pairs (benchmarks/RESULTS.md):

* alignment and scale use all points of the drawing: ``p' = (p - min) * 255 / max(w, h)``;
* resampling walks each stroke's polyline by arc length and emits points at 0, 1, 2, ...
  px plus the stroke's last point; a stroke of zero length becomes its point twice
  (Google's files store single points as ``[[x, x], [y, y]]``);
* RDP on the float points, perpendicular distance to the *line* through the chord's ends
  (point distance when they coincide), split at the first farthest point when > 2.0;
* rounding last, half to even (``np.round``), after RDP.

This reproduces 92% of the shared drawings exactly (the rest differ at RDP near-ties).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from .strokes import from_polylines, rdp

MAX_COORD = 1e9  # |x|, |y| beyond this are not screen pixels (and would overflow float32 offsets)
MAX_RESAMPLED = 1_000_000  # points one drawing may have after 1 px resampling (Google's: ~10^3)

__all__ = [
    "QuickDrawSketch",
    "read_ndjson",
    "simplify_drawing",
    "drawing_to_stroke3",
    "resample_polyline",
    "rdp",
]


@dataclass
class QuickDrawSketch:
    """One drawing of a QuickDraw ``.ndjson`` file, as stroke-3 plus its metadata."""

    stroke3: np.ndarray  # (L, 3) float32; first row = move from the first point to the second
    word: str
    key_id: str
    recognized: bool | None
    countrycode: str | None

    @property
    def meta(self) -> dict[str, Any]:
        return {"word": self.word, "key_id": self.key_id, "recognized": self.recognized,
                "countrycode": self.countrycode}

    def __iter__(self):
        """Unpacks as ``(stroke3, meta)`` (the form docs/ARCHITECTURE.md names)."""
        return iter((self.stroke3, self.meta))


def _as_polylines(strokes: Sequence[Any]) -> list[np.ndarray]:
    """Strokes -> ``(n, 2)`` float64 arrays.

    A stroke given as a list/tuple is in QuickDraw layout ``[[x...], [y...](, [t...])]``;
    one given as an ``np.ndarray`` must already be ``(n, 2)`` points.
    """
    out = []
    for j, s in enumerate(strokes):
        if isinstance(s, np.ndarray):
            a = s.astype(np.float64)
            if a.size == 0:
                a = np.zeros((0, 2))
            if a.ndim != 2 or a.shape[1] != 2:
                raise DataError(f"stroke {j}: expected an (n, 2) array of points, got shape {a.shape}")
        else:
            try:
                rows = [np.asarray(r, dtype=np.float64) for r in s]
            except (TypeError, ValueError):
                raise DataError(f"stroke {j}: expected [[x...], [y...]] with numbers") from None
            if len(rows) not in (2, 3) or any(r.ndim != 1 for r in rows) or len({len(r) for r in rows}) != 1:
                raise DataError(f"stroke {j}: expected [[x...], [y...]] or [[x...], [y...], [t...]] of equal lengths")
            a = np.stack(rows[:2], axis=1)  # (n, 2)
        out.append(a)
    return out


def resample_polyline(pts: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    """Points every ``spacing`` along the polyline's arc length, plus its last point.

    A polyline of zero length (one point, or repeated points) gives its first point twice.
    """
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    if len(p) == 0:
        return p
    seg = np.hypot(*np.diff(p, axis=0).T)  # (n-1,)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    if total <= 0.0:
        return np.stack([p[0], p[0]])
    s = np.arange(0.0, total, spacing)
    if s[-1] < total:
        s = np.append(s, total)
    return np.stack([np.interp(s, cum, p[:, 0]), np.interp(s, cum, p[:, 1])], axis=1)  # (m, 2)


def simplify_drawing(raw_strokes: Sequence[Any], size: float = 255.0, spacing: float = 1.0,
                     epsilon: float = 2.0) -> list[np.ndarray]:
    """Google's QuickDraw simplification of a raw drawing -> list of ``(n, 2)`` int64 strokes.

    ``raw_strokes``: QuickDraw strokes ``[[x...], [y...], [t...]]`` (time ignored) or
    ``(n, 2)`` arrays. See the module docstring for the exact steps.
    """
    polys = [p for p in _as_polylines(raw_strokes) if len(p)]
    if not polys:
        raise DataError("drawing has no points; nothing to simplify")
    allp = np.concatenate(polys)
    if not np.isfinite(allp).all() or float(np.abs(allp).max()) > MAX_COORD:
        raise DataError(f"drawing has coordinates beyond +-{MAX_COORD:g} (or NaN/Inf); not a drawing in pixels")
    lo = allp.min(axis=0)
    extent = float((allp - lo).max())
    k = size / extent if extent > 0 else 1.0
    # Resampling emits one point per `spacing` of arc length: bound it before allocating
    # (a zig-zag of n points across the canvas would otherwise give ~360 n points).
    arc = sum(float(np.hypot(*np.diff(p, axis=0).T).sum()) for p in polys) * k / spacing
    if arc > MAX_RESAMPLED:
        raise DataError(f"drawing is {arc:.3g} px long after scaling to {size:g} px; more than the "
                        f"{MAX_RESAMPLED} resampled points allowed (real drawings are far shorter)")
    return [np.round(rdp(resample_polyline((p - lo) * k, spacing), epsilon)).astype(np.int64) for p in polys]


def drawing_to_stroke3(strokes: Sequence[Any]) -> np.ndarray:
    """Absolute strokes (QuickDraw layout or ``(n, 2)`` arrays) -> stroke-3 float32.

    Offsets between consecutive points across all strokes; the initial absolute position is
    dropped (row 0 = move from the first point to the second, as in the sketch-rnn files);
    ``pen_lifted = 1`` on the last point of each stroke. Same as
    :func:`sketchrnn.data.strokes.from_polylines`.
    """
    return from_polylines(_as_polylines(strokes))


def _parse_drawing(drawing: Any, where: str) -> tuple[list[np.ndarray], bool]:
    """Validate a ``drawing`` field; returns (polylines, is_raw)."""
    if not isinstance(drawing, list) or not drawing:
        raise DataError(f"{where}: 'drawing' must be a non-empty list of strokes")
    polys = []
    is_raw = False
    for j, s in enumerate(drawing):
        if not isinstance(s, list) or len(s) not in (2, 3):
            raise DataError(f"{where}: stroke {j} must be [[x...], [y...]] or [[x...], [y...], [t...]]")
        is_raw |= len(s) == 3
        try:
            rows = [np.asarray(r, dtype=np.float64) for r in s]
        except (TypeError, ValueError, OverflowError):  # OverflowError: integers beyond float64
            raise DataError(f"{where}: stroke {j} holds non-numeric values") from None
        if any(r.ndim != 1 for r in rows) or len({len(r) for r in rows}) != 1:
            raise DataError(f"{where}: stroke {j} has rows of different lengths or nested values")
        xy = np.stack(rows[:2], axis=1)  # (n, 2)
        if not np.isfinite(xy).all():
            raise DataError(f"{where}: stroke {j} has NaN or Inf coordinates")
        if xy.size and float(np.abs(xy).max()) > MAX_COORD:
            raise DataError(f"{where}: stroke {j} has coordinates beyond +-{MAX_COORD:g}; not a drawing in pixels")
        polys.append(xy)
    return polys, is_raw


def read_ndjson(path: str | os.PathLike, simplify: bool | None = None) -> list[QuickDrawSketch]:
    """Read a QuickDraw ``.ndjson`` file (raw or simplified) into stroke-3 sketches.

    A drawing is raw when its strokes carry a time row (``[[x], [y], [t]]``).
    ``simplify``: ``None`` (default) applies :func:`simplify_drawing` to raw drawings and
    keeps simplified ones as they are; ``True`` simplifies every drawing; ``False`` keeps
    the coordinates as stored (raw screen pixels stay raw). Errors name file and line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{p}: file not found; pass a QuickDraw .ndjson file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read as UTF-8 text ({e})") from None
    out: list[QuickDrawSketch] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{p}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: not valid JSON ({e.msg}); each line must be one drawing object") from None
        except RecursionError:
            raise DataError(f"{where}: JSON nested too deeply; each line must be one drawing object") from None
        if not isinstance(obj, dict) or "drawing" not in obj:
            raise DataError(f"{where}: expected a JSON object with a 'drawing' field")
        polys, is_raw = _parse_drawing(obj["drawing"], where)
        if simplify or (simplify is None and is_raw):
            try:
                polys = [q.astype(np.float64) for q in simplify_drawing(polys)]
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
        npts = sum(len(q) for q in polys)
        if npts < 2:
            raise DataError(f"{where}: drawing has {npts} point(s); need at least 2")
        rec = obj.get("recognized")
        out.append(QuickDrawSketch(
            stroke3=from_polylines(polys),
            word=str(obj.get("word", "")),
            key_id=str(obj.get("key_id", "")),
            recognized=bool(rec) if rec is not None else None,
            countrycode=obj.get("countrycode"),
        ))
    return out
