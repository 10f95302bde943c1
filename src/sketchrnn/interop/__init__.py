"""Interoperability with other sketch-rnn implementations (Magenta's @magenta/sketch JSON)."""

from __future__ import annotations

from .magenta import export_magenta, load_magenta, read_magenta_json

__all__ = ["load_magenta", "export_magenta", "read_magenta_json"]
