"""stroke-3 -> raster images with Pillow (antialiased by supersampling), grids, PNG saving.

The sketch is fitted (uniform scale, centred) into a ``size x size`` square with
``margin`` pixels on each side; y grows downwards as in the data. Lines are drawn at
``supersample`` times the resolution with round joins and caps, then reduced with a box
filter, which gives clean antialiased edges without any dependency beyond Pillow.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import DataError
from ._common import _polylines, atomic_write, fit_box

__all__ = ["stroke3_to_image", "grid_image", "save_png", "draw_polylines"]

Color = tuple[int, int, int] | str


def draw_polylines(draw: ImageDraw.ImageDraw, lines: Sequence[np.ndarray], width: float, fill: Color) -> None:
    """Draw pixel-space polylines with round joins and round end caps (dots for 1-point strokes)."""
    r = width / 2.0
    w = max(1, int(round(width)))
    for line in lines:
        pts = [(float(x), float(y)) for x, y in line]
        if len(pts) >= 2:
            draw.line(pts, fill=fill, width=w, joint="curve")
        for x, y in (pts[0], pts[-1]):  # round caps
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _check_size(size: int, margin: float, what: str) -> None:
    if int(size) < 1 or size <= 2 * margin:
        raise DataError(f"{what}: size {size} px leaves no room inside a margin of {margin} px per side")


def _render_lines(lines: list[np.ndarray], size: int, margin: float, stroke_width: float, color: Color,
                  background: Color, supersample: int) -> Image.Image:
    ss = max(1, int(supersample))
    big = Image.new("RGB", (size * ss, size * ss), background)
    if lines:
        fit = fit_box(lines, size, size, margin)
        px = [fit.apply(line) * ss for line in lines]  # (n, 2) each, supersampled pixels
        draw_polylines(ImageDraw.Draw(big), px, stroke_width * ss, color)
    return big if ss == 1 else big.resize((size, size), Image.Resampling.BOX)


def stroke3_to_image(s3: Any, size: int = 256, margin: float = 10.0, stroke_width: float = 2.0,
                     color: Color = (0, 0, 0), background: Color = (255, 255, 255),
                     supersample: int = 4) -> Image.Image:
    """Render a stroke-3 sketch into a ``size x size`` RGB image (blank for an empty sketch)."""
    _check_size(size, margin, "stroke3_to_image")
    return _render_lines(_polylines(s3), int(size), margin, stroke_width, color, background, supersample)


def grid_image(sketches: Sequence[Any], ncols: int, cell: int = 128, labels: Sequence[str] | None = None,
               margin: float = 8.0, stroke_width: float = 1.5, color: Color = (0, 0, 0),
               background: Color = (255, 255, 255), supersample: int = 4, label_height: int = 14) -> Image.Image:
    """Sketches in a grid of ``cell x cell`` images, ``ncols`` per row, optional labels under each."""
    if ncols < 1:
        raise DataError(f"grid_image: ncols must be >= 1, got {ncols}")
    if labels is not None and len(labels) != len(sketches):
        raise DataError(f"grid_image: {len(labels)} labels for {len(sketches)} sketches; give one label per sketch")
    _check_size(cell, margin, "grid_image")
    n = len(sketches)
    nrows = max(1, -(-n // ncols))
    row_h = cell + (label_height if labels is not None else 0)
    out = Image.new("RGB", (ncols * cell, nrows * row_h), background)
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default() if labels is not None else None
    for i, s3 in enumerate(sketches):
        r, c = divmod(i, ncols)
        tile = _render_lines(_polylines(s3, where=f"sketch {i}"), int(cell), margin, stroke_width, color,
                             background, supersample)
        out.paste(tile, (c * cell, r * row_h))
        if labels is not None:
            text = str(labels[i])
            x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
            draw.text((c * cell + (cell - (x1 - x0)) / 2, r * row_h + cell + (label_height - (y1 - y0)) / 2 - y0),
                      text, fill=color, font=font)
    return out


def save_png(path: str | Path, img: Image.Image) -> None:
    """Save a Pillow image as PNG atomically (encoded in memory, temp file + rename)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write(path, buf.getvalue())
