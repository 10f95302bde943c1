"""stroke-3 -> SVG (one ``<polyline>`` per stroke), grids of sketches, atomic saving.

Coordinates keep the data's orientation (y grows downwards, as in the sketch-rnn and
QuickDraw files and in SVG), like Magenta's ``draw_strokes``. Geometry arguments
(``margin``, ``stroke_width``, ``cell``) are in output pixels; the SVG user units are data
units, so the drawing can be rescaled without loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from ..errors import DataError
from ._common import _polylines, atomic_write, bounds

__all__ = ["stroke3_to_svg", "grid_svg", "save_svg", "svg_polyline_points"]

SVG_NS = "http://www.w3.org/2000/svg"


def _num(v: float) -> str:
    """Compact decimal (3 places, no trailing zeros, no '-0')."""
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def svg_polyline_points(line: np.ndarray) -> str:
    """``points`` attribute of one stroke. A single-point stroke is written twice so that
    the round line cap draws it as a dot (a one-point polyline renders nothing)."""
    if len(line) == 1:
        line = np.concatenate([line, line], axis=0)  # (2, 2)
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in line)


def _layout(lines: list[np.ndarray], size: float | None, margin: float) -> tuple[float, tuple[float, float, float, float]]:
    """Pixels per data unit ``k`` and the viewBox (data units) with ``margin`` px around the bounds."""
    x0, y0, x1, y1 = bounds(lines)
    ext = max(x1 - x0, y1 - y0)
    if size is None:
        k = 1.0
    else:
        if size <= 2 * margin:
            raise DataError(f"render: size {size} leaves no room inside a margin of {margin} px per side")
        k = (size - 2.0 * margin) / ext if ext > 0 else 1.0
    m = margin / k
    return k, (x0 - m, y0 - m, (x1 - x0) + 2 * m, (y1 - y0) + 2 * m)


def _body(lines: list[np.ndarray], stroke_width: float, color: str) -> list[str]:
    out = [f'<g fill="none" stroke={quoteattr(color)} stroke-width="{_num(stroke_width)}" '
           f'stroke-linecap="round" stroke-linejoin="round">']
    out += [f'<polyline points="{svg_polyline_points(line)}"/>' for line in lines]
    out.append("</g>")
    return out


def stroke3_to_svg(s3: Any, size: float | None = None, margin: float = 10.0, stroke_width: float = 2.0,
                   color: str = "black", background: str | None = "white") -> str:
    """Render one stroke-3 sketch as an SVG document (one ``<polyline>`` per stroke).

    ``size``: length in pixels of the longer side (aspect kept); ``None`` = 1 px per data
    unit. The viewBox is the sketch's bounds plus ``margin`` px each side. An empty sketch
    gives a blank image of ``2*margin`` (or ``size``) pixels; a one-point stroke is a dot.
    """
    lines = _polylines(s3)
    k, (vx, vy, vw, vh) = _layout(lines, size, margin)
    if not lines and size is not None:
        vx, vy, vw, vh = -size / 2.0, -size / 2.0, float(size), float(size)
    w, h = vw * k, vh * k
    parts = [f'<svg xmlns="{SVG_NS}" width="{_num(w)}" height="{_num(h)}" '
             f'viewBox="{_num(vx)} {_num(vy)} {_num(vw)} {_num(vh)}">']
    if background:
        parts.append(f'<rect x="{_num(vx)}" y="{_num(vy)}" width="{_num(vw)}" height="{_num(vh)}" fill={quoteattr(background)}/>')
    parts += _body(lines, stroke_width / k, color)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def grid_svg(sketches: Sequence[Any], ncols: int, cell: float = 128.0, labels: Sequence[str] | None = None,
             margin: float = 8.0, stroke_width: float = 1.5, color: str = "black",
             background: str | None = "white", label_height: float = 16.0) -> str:
    """Lay out several sketches in a grid of ``cell x cell`` px squares, ``ncols`` per row.

    Each sketch sits in its own nested ``<svg>`` (its own viewBox, centred, aspect kept);
    ``labels`` (one per sketch) are written under the cells.
    """
    if ncols < 1:
        raise DataError(f"grid_svg: ncols must be >= 1, got {ncols}")
    if labels is not None and len(labels) != len(sketches):
        raise DataError(f"grid_svg: {len(labels)} labels for {len(sketches)} sketches; give one label per sketch")
    n = len(sketches)
    nrows = max(1, -(-n // ncols))
    row_h = cell + (label_height if labels is not None else 0.0)
    W, H = ncols * cell, nrows * row_h
    parts = [f'<svg xmlns="{SVG_NS}" width="{_num(W)}" height="{_num(H)}" viewBox="0 0 {_num(W)} {_num(H)}">']
    if background:
        parts.append(f'<rect x="0" y="0" width="{_num(W)}" height="{_num(H)}" fill={quoteattr(background)}/>')
    for i, s3 in enumerate(sketches):
        r, c = divmod(i, ncols)
        lines = _polylines(s3, where=f"sketch {i}")
        k, (vx, vy, vw, vh) = _layout(lines, cell, margin)
        # square viewBox centred on the sketch so every cell has the same scale rule
        side = max(vw, vh)
        vx, vy = vx - (side - vw) / 2.0, vy - (side - vh) / 2.0
        parts.append(f'<svg x="{_num(c * cell)}" y="{_num(r * row_h)}" width="{_num(cell)}" height="{_num(cell)}" '
                     f'viewBox="{_num(vx)} {_num(vy)} {_num(side)} {_num(side)}">')
        parts += _body(lines, stroke_width / k, color)
        parts.append("</svg>")
        if labels is not None:
            parts.append(f'<text x="{_num(c * cell + cell / 2)}" y="{_num(r * row_h + cell + label_height * 0.75)}" '
                         f'font-family="sans-serif" font-size="{_num(label_height * 0.7)}" text-anchor="middle">'
                         f"{escape(str(labels[i]))}</text>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def save_svg(path: str | Path, svg: str) -> None:
    """Write an SVG string atomically (temp file + rename), UTF-8."""
    atomic_write(path, svg.encode("utf-8"))
