"""Sketch data: safe ``.npz`` I/O, QuickDraw ``.ndjson``, stroke formats, augmentation,
datasets and batching. numpy only at import time (torch is imported when a batch is built)."""

from __future__ import annotations

from .augment import augment_strokes, random_scale
from .dataset import Batch, BatchLoader, SketchData
from .npz import SPLITS, load_npz, save_npz
from .quickdraw import QuickDrawSketch, drawing_to_stroke3, read_ndjson, simplify_drawing
from .strokes import (START_TOKEN, bounds, clean, from_polylines, from_stroke5, normalize_size,
                      to_polylines, to_stroke5)
from .synthetic import SHAPES, make_shapes, write_synthetic_npz

__all__ = [
    "SPLITS", "load_npz", "save_npz",
    "QuickDrawSketch", "read_ndjson", "simplify_drawing", "drawing_to_stroke3",
    "START_TOKEN", "to_stroke5", "from_stroke5", "to_polylines", "from_polylines", "bounds",
    "normalize_size", "clean",
    "random_scale", "augment_strokes",
    "Batch", "SketchData", "BatchLoader",
    "SHAPES", "make_shapes", "write_synthetic_npz",
]
