"""Strict parsing of the studio's JSON requests (torch-free, no web framework needed).

Everything a client sends is checked here before any model code runs: body size, UTF-8,
JSON syntax (``NaN``/``Infinity`` refused: they are not JSON), the set of fields, types
(``true`` is not a number), ranges, and the stroke-3 drawings themselves (finite numbers,
bounded offsets, pen states 0/1, at most ``max_points`` rows). A refusal raises
:class:`RequestError` with an HTTP status and one line saying which field is wrong and
what is accepted.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..errors import SketchRNNError

__all__ = ["RequestError", "Limits", "NAME_RE", "parse_json_body", "check_fields", "model_name",
           "stroke3_field", "int_field", "float_field", "bool_field", "choice_field", "stroke3_to_json"]

# Model names: a strict subset of ^[A-Za-z0-9_.-]+$ (no leading dot, so never "." or "..").
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class RequestError(SketchRNNError):
    """A request the studio refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask for (each keeps one request's cost bounded)."""

    max_body_bytes: int = 256 * 1024  # request body size
    max_points: int = 1000  # rows of an input drawing (stroke-3)
    max_new_points: int = 300  # points the model may draw per sketch
    max_n: int = 16  # sketches per request
    max_steps: int = 16  # interpolation steps
    max_abs_offset: float = 1.0e5  # |dx|, |dy| in data units
    min_temperature: float = 0.01
    max_temperature: float = 2.0
    max_seed: int = 2**63 - 1
    lock_timeout_s: float = 30.0  # wait for a busy model at most this long, then 503


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number; send finite numbers only")


def parse_json_body(body: bytes, limits: Limits) -> dict[str, Any]:
    """Body bytes -> JSON object, or :class:`RequestError` (413 too large, 400 malformed)."""
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, f"request body has {len(body)} bytes, more than the limit of "
                                f"{limits.max_body_bytes}; send a shorter drawing")
    if not body:
        raise RequestError(400, "request body is empty; send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(400, "request body is not UTF-8 text; send a JSON object") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestError(400, "request body is nested too deeply; send a flat JSON object") from None
    except ValueError as e:
        msg = str(e).splitlines()[0][:160]
        raise RequestError(400, f"request body is not valid JSON ({msg})") from None
    if not isinstance(obj, dict):
        raise RequestError(400, f"request body must be a JSON object, got {type(obj).__name__}")
    return obj


def check_fields(obj: dict[str, Any], allowed: Iterable[str], required: Iterable[str] = ()) -> None:
    """Refuse unknown fields (a typo must not be silently ignored) and missing required ones."""
    allowed = set(allowed)
    unknown = sorted(k for k in obj if k not in allowed)
    if unknown:
        raise RequestError(400, f"unknown field(s) {', '.join(repr(k)[:40] for k in unknown[:5])}; "
                                f"accepted fields: {', '.join(sorted(allowed))}")
    for k in required:
        if k not in obj:
            raise RequestError(400, f"field '{k}' is required")


def model_name(value: Any, field: str = "model") -> str:
    """A model name as the registry knows it; never a path (``../x`` and ``a/b`` are refused)."""
    if not isinstance(value, str):
        raise RequestError(400, f"'{field}' must be a model name string (see GET /api/models)")
    if not NAME_RE.fullmatch(value):
        shown = value[:40] + ("..." if len(value) > 40 else "")
        raise RequestError(400, f"'{field}' {shown!r} is not a valid model name (letters, digits, '_', '.', '-'; "
                                "no paths); see GET /api/models")
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def stroke3_field(obj: dict[str, Any], field: str, limits: Limits, min_points: int = 1) -> np.ndarray:
    """``obj[field]`` as a stroke-3 float32 array ``(L, 3)`` after checking every value."""
    rows = obj.get(field)
    if not isinstance(rows, list):
        raise RequestError(400, f"'{field}' must be a list of [dx, dy, pen_lifted] rows (stroke-3)")
    n = len(rows)
    if n > limits.max_points:
        raise RequestError(413, f"'{field}' has {n} points, more than the limit of {limits.max_points}; "
                                "simplify the drawing (fewer points)")
    if n < min_points:
        raise RequestError(400, f"'{field}' has {n} point(s); at least {min_points} are needed")
    out = np.empty((n, 3), dtype=np.float64)  # (L, 3)
    lim = limits.max_abs_offset
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 3:
            raise RequestError(400, f"'{field}'[{i}] must be a list [dx, dy, pen_lifted] of 3 numbers")
        dx, dy, pen = row
        for j, v in ((0, dx), (1, dy)):
            if not _is_number(v):
                raise RequestError(400, f"'{field}'[{i}][{j}] must be a number, got {type(v).__name__}")
            fv = float(v)
            if not math.isfinite(fv) or abs(fv) > lim:
                raise RequestError(400, f"'{field}'[{i}][{j}] = {v!r} is out of range (finite, |v| <= {lim:g})")
            out[i, j] = fv
        if not _is_number(pen) or pen not in (0, 1):
            raise RequestError(400, f"'{field}'[{i}][2] (pen_lifted) must be 0 or 1, got {pen!r}"[:200])
        out[i, 2] = float(pen)
    return out.astype(np.float32)


def int_field(obj: dict[str, Any], field: str, default: int | None, lo: int, hi: int) -> int | None:
    v = obj.get(field, default)
    if v is None and default is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise RequestError(400, f"'{field}' must be an integer in [{lo}, {hi}], got {type(v).__name__}")
    if not lo <= v <= hi:
        raise RequestError(400, f"'{field}' = {v} is out of range; use an integer in [{lo}, {hi}]")
    return v


def float_field(obj: dict[str, Any], field: str, default: float, lo: float, hi: float) -> float:
    v = obj.get(field, default)
    if not _is_number(v):
        raise RequestError(400, f"'{field}' must be a number in [{lo:g}, {hi:g}], got {type(v).__name__}")
    fv = float(v)
    if not (math.isfinite(fv) and lo <= fv <= hi):
        raise RequestError(400, f"'{field}' = {v!r} is out of range; use a number in [{lo:g}, {hi:g}]")
    return fv


def bool_field(obj: dict[str, Any], field: str, default: bool) -> bool:
    v = obj.get(field, default)
    if not isinstance(v, bool):
        raise RequestError(400, f"'{field}' must be true or false, got {type(v).__name__}")
    return v


def choice_field(obj: dict[str, Any], field: str, default: str, choices: tuple[str, ...]) -> str:
    v = obj.get(field, default)
    if not isinstance(v, str) or v not in choices:
        raise RequestError(400, f"'{field}' must be one of {', '.join(repr(c) for c in choices)}")
    return v


def stroke3_to_json(s3: np.ndarray, decimals: int = 3) -> list[list[float | int]]:
    """Stroke-3 array -> JSON rows ``[dx, dy, pen_lifted]`` (offsets rounded, pen as 0/1)."""
    a = np.asarray(s3, dtype=np.float64).reshape(-1, 3)
    xy = np.round(a[:, :2], decimals).tolist()
    pen = (a[:, 2] > 0.5).astype(int).tolist()
    return [[x, y, p] for (x, y), p in zip(xy, pen)]
