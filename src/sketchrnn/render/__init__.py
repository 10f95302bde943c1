"""Rendering of stroke-3 sketches: SVG, PNG (Pillow), animated GIF and self-drawing SVG.

All renderers keep the data's orientation (y grows downwards) and accept any numeric
``(L, 3)`` stroke-3 array; outputs are written atomically.
"""

from __future__ import annotations

from .gif import animate_gif, animate_svg
from .png import grid_image, save_png, stroke3_to_image
from .svg import grid_svg, save_svg, stroke3_to_svg

__all__ = [
    "stroke3_to_svg",
    "grid_svg",
    "save_svg",
    "stroke3_to_image",
    "grid_image",
    "save_png",
    "animate_gif",
    "animate_svg",
]
