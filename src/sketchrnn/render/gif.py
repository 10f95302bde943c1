"""Animations of a sketch being drawn: animated GIF (Pillow) and self-animating SVG (SMIL).

* :func:`animate_gif` draws the sketch point by point on one supersampled canvas and
  emits a frame every ``every`` points (the last frame is held for ``hold_ms``).
* :func:`animate_svg` writes one ``<path pathLength="1">`` per stroke whose
  ``stroke-dashoffset`` is animated from 1 to 0 (the classic line-drawing trick); strokes
  start one after another, each lasting a share of ``duration`` proportional to its
  length. SMIL ``<animate>`` runs in browsers also when the SVG is shown through ``<img>``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image, ImageDraw

from ..errors import DataError
from ._common import _polylines, atomic_write, fit_box
from .png import Color, _check_size
from .svg import SVG_NS, _layout, _num

__all__ = ["animate_gif", "animate_svg", "gif_frames"]


def gif_frames(s3: Any, size: int = 256, every: int = 2, margin: float = 10.0, stroke_width: float = 2.0,
               color: Color = (0, 0, 0), background: Color = (255, 255, 255), supersample: int = 2) -> list[Image.Image]:
    """RGB frames of the progressive drawing: frame j shows the first ``min((j+1)*every, L)`` points."""
    if every < 1:
        raise DataError(f"animate_gif: every must be >= 1 point per frame, got {every}")
    _check_size(size, margin, "animate_gif")
    lines = _polylines(s3)
    ss = max(1, int(supersample))
    canvas = Image.new("RGB", (size * ss, size * ss), background)
    if not lines:
        return [canvas.resize((size, size), Image.Resampling.BOX) if ss > 1 else canvas]
    fit = fit_box(lines, size, size, margin)
    draw = ImageDraw.Draw(canvas)
    width = stroke_width * ss
    r, w = width / 2.0, max(1, int(round(width)))
    frames: list[Image.Image] = []
    n_total = sum(len(line) for line in lines)
    n = 0
    for line in lines:
        px = fit.apply(line) * ss  # (n, 2) supersampled pixel coordinates
        for i, (x, y) in enumerate(px):
            if i > 0:
                draw.line([tuple(px[i - 1]), (x, y)], fill=color, width=w)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color)  # round join / cap / dot
            n += 1
            if n % every == 0 or n == n_total:
                frames.append(canvas.resize((size, size), Image.Resampling.BOX) if ss > 1 else canvas.copy())
    return frames


def animate_gif(s3: Any, path: str | Path, size: int = 256, every: int = 2, frame_ms: int = 40,
                hold_ms: int = 1500, loop: int = 0, margin: float = 10.0, stroke_width: float = 2.0,
                color: Color = (0, 0, 0), background: Color = (255, 255, 255), supersample: int = 2) -> int:
    """Write an animated GIF of the sketch being drawn (atomically); returns the frame count.

    ``loop=0`` repeats forever. An empty sketch gives a single blank frame.
    """
    frames = gif_frames(s3, size, every, margin, stroke_width, color, background, supersample)
    pal = [f.convert("P", palette=Image.Palette.ADAPTIVE, colors=64) for f in frames]
    durations = [int(frame_ms)] * (len(pal) - 1) + [int(max(frame_ms, hold_ms))]
    buf = io.BytesIO()
    pal[0].save(buf, format="GIF", save_all=True, append_images=pal[1:], duration=durations, loop=int(loop),
                optimize=False, disposal=1)
    atomic_write(path, buf.getvalue())
    return len(pal)


def animate_svg(s3: Any, size: float | None = None, duration: float = 3.0, margin: float = 10.0,
                stroke_width: float = 2.0, color: str = "black", background: str | None = "white") -> str:
    """SVG that draws itself: per stroke a ``<path>`` whose dash offset is animated (SMIL).

    Stroke ``i`` starts when stroke ``i-1`` ends; the durations sum to ``duration`` seconds.
    Each path is hidden until its start (so dots and zero-length strokes also appear in order).
    """
    if not (duration > 0):
        raise DataError(f"animate_svg: duration must be > 0 seconds, got {duration}")
    lines = _polylines(s3)
    k, (vx, vy, vw, vh) = _layout(lines, size, margin)
    if not lines and size is not None:
        vx, vy, vw, vh = -size / 2.0, -size / 2.0, float(size), float(size)
    sw = stroke_width / k
    lengths = np.array([float(np.sum(np.hypot(*np.diff(line, axis=0).T))) if len(line) > 1 else 0.0 for line in lines])
    eff = np.maximum(lengths, sw)  # a dot still takes a moment
    times = duration * eff / eff.sum() if len(eff) else eff
    starts = np.concatenate([[0.0], np.cumsum(times)[:-1]]) if len(times) else times
    parts = [f'<svg xmlns="{SVG_NS}" width="{_num(vw * k)}" height="{_num(vh * k)}" '
             f'viewBox="{_num(vx)} {_num(vy)} {_num(vw)} {_num(vh)}">']
    if background:
        parts.append(f'<rect x="{_num(vx)}" y="{_num(vy)}" width="{_num(vw)}" height="{_num(vh)}" fill={quoteattr(background)}/>')
    parts.append(f'<g fill="none" stroke={quoteattr(color)} stroke-width="{_num(sw)}" '
                 f'stroke-linecap="round" stroke-linejoin="round">')
    for line, t0, dt in zip(lines, starts, times):
        pts = line if len(line) > 1 else np.concatenate([line, line], axis=0)  # (n>=2, 2)
        d = "M" + " L".join(f"{_num(x)},{_num(y)}" for x, y in pts)
        parts.append(f'<path d="{d}" pathLength="1" stroke-dasharray="1 1" stroke-dashoffset="1" visibility="hidden">'
                     f'<set attributeName="visibility" to="visible" begin="{t0:.4f}s" fill="freeze"/>'
                     f'<animate attributeName="stroke-dashoffset" from="1" to="0" begin="{t0:.4f}s" '
                     f'dur="{max(dt, 1e-3):.4f}s" fill="freeze"/></path>')
    parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
