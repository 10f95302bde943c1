"""Training-time data augmentation of stroke-3 sketches (Ha & Eck 2017, appendix;
Magenta ``sketch_rnn/utils.py``: ``DataLoader.random_scale`` and ``augment_strokes``).

Both take an explicit ``np.random.Generator`` so a loader can reproduce and resume them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["random_scale", "augment_strokes"]


def random_scale(s3: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Stretch x and y by independent factors drawn uniformly from ``[1 - factor, 1 + factor]``.

    Returns a float32 copy; draws exactly two uniforms from ``rng`` (x first, then y).
    """
    out = np.array(s3, dtype=np.float32)
    sx, sy = 1.0 + (rng.random(2) - 0.5) * 2.0 * factor
    out[:, 0] *= sx
    out[:, 1] *= sy
    return out


def augment_strokes(s3: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Magenta's point-drop augmentation: randomly merge points inside strokes.

    Semantics of Magenta's ``augment_strokes`` (re-derived, vectorised): walking the rows,
    ``count`` restarts at 0 on a row that lifts the pen or that follows one, and grows by 1
    otherwise. A row is dropped with probability ``prob`` when it and the previous row are
    both pen-down and ``count > 2`` (so the first points of a stroke and its last point
    survive). A dropped row's offset is added to the last kept row, so every later point
    stays where it was and the sketch never gets longer. One uniform is drawn per row.
    Returns float32 ``(L', 3)`` with ``L' <= L``.
    """
    a = np.array(s3, dtype=np.float32)
    n = len(a)
    u = rng.random(n)
    if n == 0 or prob <= 0.0:
        return a
    pen = a[:, 2] > 0.5
    prev_pen = np.concatenate([[True], pen[:-1]])  # Magenta starts from prev = [0, 0, 1]
    # count[i]: rows since the last reset (a reset row has count 0)
    reset = pen | prev_pen
    idx = np.arange(n)
    last_reset = np.maximum.accumulate(np.where(reset, idx, 0))  # row 0 always resets
    count = idx - last_reset
    drop = ~pen & ~prev_pen & (count > 2) & (u < prob)
    if not drop.any():
        return a
    keep = ~drop
    group = np.cumsum(keep) - 1  # index of the kept row each row merges into; row 0 is kept
    out = a[keep].copy()
    out[:, 0] = np.bincount(group, weights=a[:, 0].astype(np.float64), minlength=len(out))
    out[:, 1] = np.bincount(group, weights=a[:, 1].astype(np.float64), minlength=len(out))
    return out
