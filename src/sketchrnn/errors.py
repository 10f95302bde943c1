"""Errors meant for users.

Every problem caused by a user's input (a file, a flag, a config value) raises a
subclass of :class:`SketchRNNError` whose message is one line saying what is wrong,
where, and what to do. The CLI prints that line and exits with status 2; it never
shows a traceback for these.
"""

from __future__ import annotations

__all__ = ["SketchRNNError", "DataError", "ConfigError", "ModelFileError", "TrainingError"]


class SketchRNNError(Exception):
    """Base class of all user-facing errors."""


class DataError(SketchRNNError, ValueError):
    """A data file (npz, ndjson, svg, json strokes) is missing, unsafe or malformed."""


class ConfigError(SketchRNNError, ValueError):
    """A configuration value or override is unknown or out of range."""


class ModelFileError(SketchRNNError, ValueError):
    """A checkpoint, weights file or Magenta model cannot be read or does not fit."""


class TrainingError(SketchRNNError, RuntimeError):
    """Training cannot go on (e.g. too many non-finite losses in a row)."""
