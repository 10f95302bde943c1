"""Read people's drawings from files: sketch-rnn ``.npz``, QuickDraw ``.ndjson``, JSON strokes, SVG.

:func:`read_strokes_file` returns stroke-3 arrays (float32 ``(L, 3)``, rows
``[dx, dy, pen_lifted]``) in the file's own coordinate units; :func:`fit_sketch` then makes a
drawing fit a model (size normalisation, Ramer–Douglas–Peucker simplification).

Accepted JSON (``.json``) layouts
---------------------------------
1. **stroke-3**: ``[[dx, dy, pen_lifted], ...]`` (offsets, as in the sketch-rnn ``.npz`` files).
2. **QuickDraw polylines**: ``[[[x0, x1, ...], [y0, y1, ...]], ...]``, one ``[xs, ys]`` (or
   ``[xs, ys, ts]``, times ignored) per stroke, absolute coordinates — the ``drawing`` field
   of Google's ``.ndjson`` files.
3. **point lists** (only under the key ``"polylines"``): ``{"polylines": [[[x, y], [x, y], ...], ...]}``,
   one list of ``[x, y]`` points per stroke, absolute coordinates.
4. An object ``{"strokes": <1 or 2>}`` or ``{"drawing": <2>}`` (a QuickDraw record).
5. Several sketches: ``{"sketches": [<any of 1-4>, ...]}`` or a list of objects ``[{...}, {...}]``.

Absolute polylines become stroke-3 as in the sketch-rnn files: the first point is the
start point and row 0 is the move from it to the second point
(:func:`sketchrnn.data.strokes.from_polylines`).

SVG (``.svg``)
--------------
``<path>`` (commands M L H V C S Q T A Z, absolute and relative; curves and arcs flattened
into short segments), ``<polyline>``, ``<polygon>``, ``<line>``, ``<rect>``, ``<circle>``,
``<ellipse>``; ``transform`` attributes on elements and groups are applied. Every subpath
is one pen stroke. ``<defs>``, ``<clipPath>``, ``<mask>``, ``<symbol>``, ``<text>`` and
hidden (``display="none"``) elements are skipped. SVG's y axis points down, like the
data. Flattened curves are then thinned with RDP at ``epsilon = 2/255`` of the drawing's
larger side, the simplification of Google's "simplified" QuickDraw files (RDP epsilon
2.0 on drawings scaled to 0-255).
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .strokes import from_polylines, normalize_size, rdp, to_polylines

__all__ = [
    "QUICKDRAW_SIZE",
    "fit_sketch",
    "min_points",
    "parse_json_strokes",
    "parse_path_d",
    "parse_svg",
    "parse_transform",
    "rdp",
    "read_json_strokes",
    "read_strokes_file",
    "read_svg",
    "simplify_strokes",
    "simplify_to_length",
]

QUICKDRAW_SIZE = 255.0  # Google's simplified QuickDraw drawings span 0..255 on their larger side
SVG_RDP_FRACTION = 2.0 / 255.0  # QuickDraw's RDP epsilon (2.0) relative to its 255 px size
_CURVE_SEGMENTS = 24  # line segments per flattened Bezier curve / arc (thinned by RDP afterwards)


# --------------------------------------------------------------------------- entry point
def read_strokes_file(path: str | Path, split: str = "test", simplify_svg: bool = True) -> list[np.ndarray]:
    """Stroke-3 sketches (float32 ``(L, 3)``) from ``.npz`` (one ``split``), ``.ndjson``,
    ``.json`` or ``.svg``, in the file's own units (see the module docstring for layouts).

    ``simplify_svg``: thin flattened SVG curves with RDP (epsilon 2/255 of the larger side).
    Raises :class:`DataError` (one line naming the file) for a missing, empty or malformed file.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"input file {p} not found")
    if p.is_dir():
        raise DataError(f"{p} is a directory; give a .npz, .ndjson, .json or .svg file")
    name = p.name.lower()
    if name.endswith(".npz"):
        from .npz import load_npz

        sketches = load_npz(p, splits=[split])[split]
    elif name.endswith(".ndjson"):
        sketches = _read_ndjson(p)
    elif name.endswith(".json"):
        sketches = read_json_strokes(p)
    elif name.endswith(".svg"):
        sketches = [read_svg(p, simplify=simplify_svg)]
    else:
        raise DataError(f"{p}: unknown input type {p.suffix!r}; use .npz, .ndjson, .json or .svg")
    if not sketches:
        raise DataError(f"{p}: the file holds no sketches")
    return sketches


def _read_ndjson(p: Path) -> list[np.ndarray]:
    """QuickDraw ``.ndjson``: via :mod:`sketchrnn.data.quickdraw` (one stroke-3 per line)."""
    from .quickdraw import read_ndjson

    out = []
    for item in read_ndjson(p):
        s3 = item.stroke3 if hasattr(item, "stroke3") else item[0]
        out.append(np.asarray(s3, dtype=np.float32))
    return out


# --------------------------------------------------------------------------- JSON
def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_num_list(v: Any) -> bool:
    return isinstance(v, list) and all(_is_num(x) for x in v)


def _stroke3_from_rows(rows: list, where: str) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float64)  # (L, 3)
    if not np.isfinite(a).all():
        raise DataError(f"{where}: stroke-3 rows hold NaN or Inf values")
    a[:, 2] = (a[:, 2] > 0.5).astype(np.float64)
    with np.errstate(over="ignore"):
        a32 = a.astype(np.float32)
    if not np.isfinite(a32).all():
        raise DataError(f"{where}: stroke-3 offsets too large (beyond float32 range)")
    return a32


def _quickdraw_polylines(strokes: list, where: str) -> list[np.ndarray]:
    polys = []
    for j, st in enumerate(strokes):
        if not (isinstance(st, list) and len(st) in (2, 3) and all(_is_num_list(c) for c in st)
                and len(st[0]) == len(st[1])):
            raise DataError(f"{where}: stroke {j} is not [[x...], [y...]] with equal lengths; "
                            "see sketchrnn.data.io for the accepted JSON layouts")
        polys.append(np.stack([np.asarray(st[0], float), np.asarray(st[1], float)], axis=1))  # (n, 2)
    return polys


def _point_polylines(strokes: Any, where: str) -> list[np.ndarray]:
    if not isinstance(strokes, list):
        raise DataError(f"{where}: 'polylines' must be a list of strokes, each a list of [x, y] points")
    polys = []
    for j, st in enumerate(strokes):
        if not (isinstance(st, list) and all(_is_num_list(q) and len(q) == 2 for q in st)):
            raise DataError(f"{where}: polylines stroke {j} is not a list of [x, y] points")
        polys.append(np.asarray(st, dtype=float).reshape(-1, 2))
    return polys


def _polys_to_s3(polys: list[np.ndarray], where: str) -> np.ndarray:
    polys = [p for p in polys if len(p)]
    if not polys:
        raise DataError(f"{where}: the drawing has no points")
    if not all(np.isfinite(p).all() for p in polys):
        raise DataError(f"{where}: coordinates hold NaN or Inf values")
    with np.errstate(over="ignore", invalid="ignore"):
        s3 = from_polylines(polys)
    if not np.isfinite(s3).all():  # e.g. points at +-1e300: offsets overflow float32
        raise DataError(f"{where}: coordinates too large (offsets beyond float32 range)")
    return s3


def _one_sketch(obj: Any, where: str) -> np.ndarray:
    """Parse one sketch in any accepted JSON layout."""
    if isinstance(obj, dict):
        if "polylines" in obj:
            return _polys_to_s3(_point_polylines(obj["polylines"], where), where)
        for key in ("strokes", "drawing"):
            if key in obj:
                return _one_sketch(obj[key], where)
        raise DataError(f"{where}: JSON object has none of the keys 'strokes', 'drawing', 'polylines', 'sketches'")
    if not isinstance(obj, list) or not obj:
        raise DataError(f"{where}: expected a non-empty list of strokes, got {type(obj).__name__ if obj != [] else 'an empty list'}")
    if all(_is_num_list(r) and len(r) == 3 for r in obj):
        return _stroke3_from_rows(obj, where)
    if all(isinstance(st, list) and st and all(isinstance(c, list) for c in st) for st in obj):
        return _polys_to_s3(_quickdraw_polylines(obj, where), where)
    raise DataError(f"{where}: not stroke-3 rows [[dx, dy, p], ...] nor QuickDraw strokes [[[x...], [y...]], ...]")


def parse_json_strokes(obj: Any, where: str = "JSON") -> list[np.ndarray]:
    """Parsed JSON (any layout of the module docstring) -> list of stroke-3 sketches."""
    try:
        if isinstance(obj, dict) and "sketches" in obj:
            items = obj["sketches"]
            if not isinstance(items, list) or not items:
                raise DataError(f"{where}: 'sketches' must be a non-empty list")
            return [_one_sketch(s, f"{where}: sketch {i}") for i, s in enumerate(items)]
        if isinstance(obj, list) and obj and all(isinstance(s, dict) for s in obj):
            return [_one_sketch(s, f"{where}: sketch {i}") for i, s in enumerate(obj)]
        return [_one_sketch(obj, where)]
    except OverflowError:  # an integer beyond float64 (JSON allows any size)
        raise DataError(f"{where}: a number is too large for a coordinate") from None
    except RecursionError:  # {"strokes": {"strokes": ...}} nested beyond Python's limit
        raise DataError(f"{where}: JSON nested too deeply to be a sketch") from None


def read_json_strokes(path: str | Path) -> list[np.ndarray]:
    """Read a ``.json`` strokes file (layouts in the module docstring) -> stroke-3 sketches."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"input file {p} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: not valid JSON ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise DataError(f"{p}: JSON nested too deeply to be a sketch") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror})") from None
    return parse_json_strokes(obj, str(p))


# --------------------------------------------------------------------------- SVG
_NUM_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PATH_TOKEN_RE = re.compile(r"([MmLlHhVvCcSsQqTtAaZz])|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|([\s,]+)|(.)")
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}
_SKIP_TAGS = {"defs", "clipPath", "mask", "symbol", "marker", "pattern", "title", "desc", "metadata",
              "style", "script", "text", "linearGradient", "radialGradient", "filter", "foreignObject", "image"}


def _tag(el: ET.Element) -> str:
    t = el.tag
    return t.rsplit("}", 1)[-1] if isinstance(t, str) else ""


def parse_transform(text: str | None, where: str = "transform") -> np.ndarray:
    """SVG ``transform`` attribute -> 3x3 affine matrix (functions composed left to right)."""
    m = np.eye(3)
    if not text:
        return m
    for fn, args in re.findall(r"([a-zA-Z]+)\s*\(([^)]*)\)", text):
        v = [float(x) for x in _NUM_RE.findall(args)]
        fn = fn.strip()
        t = np.eye(3)
        try:
            if fn == "matrix" and len(v) == 6:
                t[0, :] = [v[0], v[2], v[4]]
                t[1, :] = [v[1], v[3], v[5]]
            elif fn == "translate" and len(v) in (1, 2):
                t[0, 2], t[1, 2] = v[0], (v[1] if len(v) == 2 else 0.0)
            elif fn == "scale" and len(v) in (1, 2):
                t[0, 0], t[1, 1] = v[0], (v[1] if len(v) == 2 else v[0])
            elif fn == "rotate" and len(v) in (1, 3):
                a = math.radians(v[0])
                r = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0, 0, 1]])
                if len(v) == 3:
                    cx, cy = v[1], v[2]
                    pre = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]])
                    post = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
                    r = pre @ r @ post
                t = r
            elif fn == "skewX" and len(v) == 1:
                t[0, 1] = math.tan(math.radians(v[0]))
            elif fn == "skewY" and len(v) == 1:
                t[1, 0] = math.tan(math.radians(v[0]))
            else:
                raise ValueError
        except ValueError:
            raise DataError(f"{where}: cannot read transform {fn}({' '.join(args.split())[:80]})") from None
        m = m @ t
    return m


def _cubic(p0, p1, p2, p3, n: int = _CURVE_SEGMENTS) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n + 1)[1:, None]  # (n, 1), the start point is already drawn
    u = 1.0 - t
    return u**3 * p0 + 3 * u**2 * t * p1 + 3 * u * t**2 * p2 + t**3 * p3  # (n, 2)


def _quad(p0, p1, p2, n: int = _CURVE_SEGMENTS) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n + 1)[1:, None]  # (n, 1)
    u = 1.0 - t
    return u**2 * p0 + 2 * u * t * p1 + t**2 * p2  # (n, 2)


def _arc(p0: np.ndarray, rx: float, ry: float, phi_deg: float, large: bool, sweep: bool, p1: np.ndarray) -> np.ndarray:
    """Elliptical arc -> points after ``p0`` (SVG 1.1 Appendix F.6.5 endpoint -> centre)."""
    if np.allclose(p0, p1):
        return np.zeros((0, 2))
    rx, ry = abs(rx), abs(ry)
    if rx == 0 or ry == 0:
        return p1[None, :].copy()
    phi = math.radians(phi_deg % 360.0)
    c, s = math.cos(phi), math.sin(phi)
    dx2, dy2 = (p0 - p1) / 2.0
    x1p, y1p = c * dx2 + s * dy2, -s * dx2 + c * dy2
    lam = x1p**2 / rx**2 + y1p**2 / ry**2
    if lam > 1:  # radii too small: scale up (F.6.6)
        rx, ry = rx * math.sqrt(lam), ry * math.sqrt(lam)
    num = rx**2 * ry**2 - rx**2 * y1p**2 - ry**2 * x1p**2
    den = rx**2 * y1p**2 + ry**2 * x1p**2
    k = math.sqrt(max(num, 0.0) / den) if den > 0 else 0.0
    if large == sweep:
        k = -k
    cxp, cyp = k * rx * y1p / ry, -k * ry * x1p / rx
    cx = c * cxp - s * cyp + (p0[0] + p1[0]) / 2.0
    cy = s * cxp + c * cyp + (p0[1] + p1[1]) / 2.0

    def ang(ux, uy, vx, vy):
        return math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)

    th1 = ang(1.0, 0.0, (x1p - cxp) / rx, (y1p - cyp) / ry)
    dth = ang((x1p - cxp) / rx, (y1p - cyp) / ry, (-x1p - cxp) / rx, (-y1p - cyp) / ry)
    if not sweep and dth > 0:
        dth -= 2 * math.pi
    elif sweep and dth < 0:
        dth += 2 * math.pi
    n = max(2, math.ceil(_CURVE_SEGMENTS * abs(dth) / math.pi))
    th = th1 + dth * np.linspace(0.0, 1.0, n + 1)[1:]  # (n,)
    x = cx + rx * np.cos(th) * c - ry * np.sin(th) * s
    y = cy + rx * np.cos(th) * s + ry * np.sin(th) * c
    out = np.stack([x, y], axis=1)  # (n, 2)
    out[-1] = p1  # exact end point
    return out


def parse_path_d(d: str, where: str = "path") -> list[np.ndarray]:
    """SVG path data -> list of ``(n, 2)`` polylines (one per subpath), curves flattened.

    Supports M L H V C S Q T A Z in absolute (upper case) and relative (lower case) form,
    implicit repeated commands, compact numbers (``1.5.5``, ``1-2``) and compact arc flags.
    """
    tokens: list[str | float] = []
    for m in _PATH_TOKEN_RE.finditer(d or ""):
        cmd, num, _ws, bad = m.groups()
        if cmd:
            tokens.append(cmd)
        elif num is not None:
            tokens.append(float(num))
        elif bad:
            raise DataError(f"{where}: unexpected character {bad!r} in path data")
    polys: list[np.ndarray] = []
    cur: list[np.ndarray] = []
    pos = np.zeros(2)
    start = np.zeros(2)
    last_ctrl: np.ndarray | None = None
    last_cmd = ""
    i = 0
    cmd = ""

    def flush():
        nonlocal cur
        if cur:
            polys.append(np.concatenate([c.reshape(-1, 2) for c in cur]))
        cur = []

    def take(k: int) -> list[float]:
        nonlocal i
        vals = tokens[i:i + k]
        if len(vals) < k or not all(isinstance(v, float) for v in vals):
            raise DataError(f"{where}: command {cmd} needs {k} numbers; path data is malformed")
        i += k
        return vals  # type: ignore[return-value]

    if tokens and tokens[0] not in ("M", "m"):
        raise DataError(f"{where}: path data must start with a moveto (M or m)")
    while i < len(tokens):
        tok = tokens[i]
        if isinstance(tok, str):
            cmd = tok
            i += 1
        elif not cmd:
            raise DataError(f"{where}: path data must start with a moveto (M or m)")
        elif cmd in "Mm":  # numbers after a moveto are implicit linetos
            cmd = "L" if cmd == "M" else "l"
        up = cmd.upper()
        rel = cmd.islower()
        if up == "Z":
            if cur:
                cur.append(start.copy())
                flush()
            pos = start.copy()
            last_ctrl, last_cmd = None, "Z"
            # a Z followed by numbers is an error; followed by a command is fine
            if i < len(tokens) and isinstance(tokens[i], float):
                raise DataError(f"{where}: numbers after a closepath (Z); path data is malformed")
            continue
        if up not in _ARGS:
            raise DataError(f"{where}: unknown path command {cmd!r}")
        a = take(_ARGS[up])
        base = pos if rel else np.zeros(2)
        if up == "M":
            flush()
            pos = base + np.array(a)
            start = pos.copy()
            cur = [pos.copy()]
            last_ctrl = None
        else:
            if not cur:  # drawing after a Z without a new M starts from the subpath start
                cur = [pos.copy()]
            if up == "L":
                new = base + np.array(a)
                cur.append(new)
                last_ctrl = None
            elif up == "H":
                new = np.array([a[0] + (pos[0] if rel else 0.0), pos[1]])
                cur.append(new)
                last_ctrl = None
            elif up == "V":
                new = np.array([pos[0], a[0] + (pos[1] if rel else 0.0)])
                cur.append(new)
                last_ctrl = None
            elif up in "CS":
                if up == "C":
                    c1, c2, new = base + np.array(a[0:2]), base + np.array(a[2:4]), base + np.array(a[4:6])
                else:
                    c1 = 2 * pos - last_ctrl if (last_ctrl is not None and last_cmd in "CS") else pos.copy()
                    c2, new = base + np.array(a[0:2]), base + np.array(a[2:4])
                cur.append(_cubic(pos, c1, c2, new))
                last_ctrl = c2
            elif up in "QT":
                if up == "Q":
                    c1, new = base + np.array(a[0:2]), base + np.array(a[2:4])
                else:
                    c1 = 2 * pos - last_ctrl if (last_ctrl is not None and last_cmd in "QT") else pos.copy()
                    new = base + np.array(a[0:2])
                cur.append(_quad(pos, c1, new))
                last_ctrl = c1
            else:  # A
                new = base + np.array(a[5:7])
                cur.append(_arc(pos, a[0], a[1], a[2], a[3] != 0, a[4] != 0, new))
                last_ctrl = None
            pos = new
        last_cmd = up
    flush()
    return polys


def _num_attr(el: ET.Element, name: str, default: float = 0.0) -> float:
    v = el.get(name)
    if v is None:
        return default
    m = _NUM_RE.match(v.strip())
    return float(m.group(0)) if m else default


def _points_attr(text: str | None) -> np.ndarray:
    vals = [float(x) for x in _NUM_RE.findall(text or "")]
    return np.asarray(vals[: len(vals) // 2 * 2], dtype=float).reshape(-1, 2)


def _ellipse_points(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    th = np.linspace(0.0, 2 * math.pi, 2 * _CURVE_SEGMENTS + 1)  # closed: the first point repeats
    return np.stack([cx + rx * np.cos(th), cy + ry * np.sin(th)], axis=1)  # (n, 2)


def _element_polylines(el: ET.Element, tag: str, where: str) -> list[np.ndarray]:
    if tag == "path":
        return parse_path_d(el.get("d", ""), where)
    if tag in ("polyline", "polygon"):
        pts = _points_attr(el.get("points"))
        if tag == "polygon" and len(pts) > 1:
            pts = np.concatenate([pts, pts[:1]])
        return [pts] if len(pts) else []
    if tag == "line":
        return [np.array([[_num_attr(el, "x1"), _num_attr(el, "y1")], [_num_attr(el, "x2"), _num_attr(el, "y2")]])]
    if tag == "rect":
        x, y, w, h = (_num_attr(el, k) for k in ("x", "y", "width", "height"))
        if w <= 0 or h <= 0:
            return []
        return [np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]])]
    if tag == "circle":
        r = _num_attr(el, "r")
        return [_ellipse_points(_num_attr(el, "cx"), _num_attr(el, "cy"), r, r)] if r > 0 else []
    if tag == "ellipse":
        rx, ry = _num_attr(el, "rx"), _num_attr(el, "ry")
        return [_ellipse_points(_num_attr(el, "cx"), _num_attr(el, "cy"), rx, ry)] if rx > 0 and ry > 0 else []
    return []


def parse_svg(text: str, where: str = "SVG") -> list[np.ndarray]:
    """SVG document text -> absolute polylines (transforms applied), in document order."""
    if "<!ENTITY" in text:
        raise DataError(f"{where}: SVG files with XML entity declarations are refused; remove the DOCTYPE")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise DataError(f"{where}: not a valid SVG/XML file ({e})") from None
    if _tag(root) != "svg":
        raise DataError(f"{where}: the root element is <{_tag(root)}>, not <svg>")
    out: list[np.ndarray] = []

    def visit(el: ET.Element, m: np.ndarray) -> None:
        tag = _tag(el)
        if tag in _SKIP_TAGS or el.get("display") == "none" or "display:none" in (el.get("style") or "").replace(" ", ""):
            return
        m = m @ parse_transform(el.get("transform"), f"{where}: <{tag}> transform")
        for line in _element_polylines(el, tag, f"{where}: <{tag}>"):
            if len(line):
                h = np.concatenate([line, np.ones((len(line), 1))], axis=1)  # (n, 3) homogeneous
                out.append((h @ m.T)[:, :2])
        for child in el:
            visit(child, m)

    visit(root, np.eye(3))
    return out


def read_svg(path: str | Path, simplify: bool = True) -> np.ndarray:
    """An SVG drawing -> one stroke-3 sketch (each subpath/element is one pen stroke).

    ``simplify``: thin the flattened curves with RDP at 2/255 of the larger side (the
    epsilon of Google's simplified QuickDraw files)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"input file {p} not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{p}: not a UTF-8 text file; is it really an SVG?") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror})") from None
    polys = [q for q in parse_svg(text, str(p)) if len(q)]
    if not polys:
        raise DataError(f"{p}: the SVG holds no drawable path, polyline, line or shape")
    polys = [_dedupe(q) for q in polys]
    if simplify:
        allp = np.concatenate(polys)
        ext = float(np.max(allp.max(axis=0) - allp.min(axis=0)))
        if ext > 0:
            polys = [rdp(q, SVG_RDP_FRACTION * ext) for q in polys]
    return _polys_to_s3(polys, str(p))


def _dedupe(line: np.ndarray) -> np.ndarray:
    """Drop consecutive repeated points of a polyline (keeps at least one point)."""
    if len(line) < 2:
        return line
    keep = np.concatenate([[True], np.any(np.diff(line, axis=0) != 0, axis=1)])
    return line[keep]


# --------------------------------------------------------------------------- simplification
def simplify_strokes(s3: np.ndarray, epsilon: float) -> np.ndarray:
    """RDP on every stroke of a stroke-3 sketch (start point kept at the origin)."""
    polys = to_polylines(np.asarray(s3, dtype=np.float32))
    return from_polylines([rdp(p, epsilon) for p in polys])


def min_points(s3: np.ndarray) -> int:
    """Fewest stroke-3 rows any RDP simplification can give (each stroke kept as one line)."""
    polys = to_polylines(np.asarray(s3, dtype=np.float32))
    return sum(min(len(p), 2) for p in polys) - 1


def simplify_to_length(s3: np.ndarray, max_len: int, where: str = "sketch") -> tuple[np.ndarray, float]:
    """The least RDP simplification that brings a sketch to ``<= max_len`` rows.

    Returns ``(sketch, epsilon)`` (epsilon 0 when nothing had to change). Bisection on
    epsilon between 0 and the sketch's larger side. Raises :class:`DataError` when even
    straight strokes need more than ``max_len`` rows (too many strokes for the model).
    """
    a = np.asarray(s3, dtype=np.float32)
    if len(a) <= max_len:
        return a, 0.0
    need = min_points(a)
    if need > max_len:
        n_strokes = len(to_polylines(a))
        raise DataError(f"{where}: {len(a)} points in {n_strokes} strokes; even simplified to straight strokes it "
                        f"needs {need} > the model's max_seq_len {max_len}; remove strokes or split the drawing")
    polys = to_polylines(a)
    allp = np.concatenate(polys)
    hi = float(np.max(allp.max(axis=0) - allp.min(axis=0))) or 1.0
    lo = 0.0
    best = from_polylines([rdp(p, hi) for p in polys])
    for _ in range(30):
        mid = (lo + hi) / 2.0
        cand = from_polylines([rdp(p, mid) for p in polys])
        if len(cand) <= max_len:
            hi, best = mid, cand
        else:
            lo = mid
    return best, hi


def fit_sketch(s3: np.ndarray, max_len: int | None = None, size: float | None = None,
               where: str = "sketch") -> tuple[np.ndarray, list[str]]:
    """Make a drawing fit a model: optional size normalisation, then RDP if too long.

    ``size``: scale so the larger side of the bounding box is ``size`` data units
    (QuickDraw-trained models: 255, :data:`QUICKDRAW_SIZE`); ``None`` keeps the scale.
    ``max_len``: the model's max_seq_len; longer sketches are simplified with the smallest
    RDP epsilon that fits (:func:`simplify_to_length`). Returns ``(sketch, notes)`` where
    ``notes`` are one-line descriptions of what was changed. Empty, one-point and
    non-finite sketches raise :class:`DataError`.
    """
    a = np.asarray(s3, dtype=np.float32)
    if a.ndim != 2 or a.shape[1] != 3:
        raise DataError(f"{where}: a sketch must be stroke-3 with shape (L, 3), got {a.shape}")
    if len(a) == 0:
        raise DataError(f"{where}: the sketch is empty; draw at least two points")
    if not np.isfinite(a).all():
        raise DataError(f"{where}: the sketch holds NaN or Inf values")
    if len(a) < 2:
        raise DataError(f"{where}: the sketch has only 1 point; at least 2 are needed")
    notes: list[str] = []
    if size is not None:
        if not (size > 0 and math.isfinite(size)):
            raise DataError(f"{where}: size must be a positive number of data units, got {size}")
        a = normalize_size(a, float(size))
        notes.append(f"{where}: scaled so its larger side is {size:g} data units")
    if max_len is not None and len(a) > max_len:
        n0 = len(a)
        a, eps = simplify_to_length(a, int(max_len), where)
        notes.append(f"{where}: {n0} points > the model's max_seq_len {max_len}; simplified with RDP "
                     f"(epsilon {eps:.3g}) to {len(a)} points")
    return a, notes
