"""Creative tools on top of a trained model: reconstructions, latent interpolation, analogies,
completions, design sheets with seamless tiles, and animations.

Sketches are stroke-3 arrays in data units (pixels for QuickDraw-like models); latent
vectors are numpy ``(Z,)`` / ``(N, Z)``. The ideas follow Ha & Eck 2017 (arXiv:1704.03477):
Sec. 4.2 (reconstructions at several temperatures), Sec. 4.3 (latent interpolation and
"latent space vector arithmetic", e.g. cat head + (full pig − pig head); :func:`mean_latent`
averages a side over many drawings and ``strength`` scales the added direction), Sec. 4.4
(completing an incomplete sketch: the decoder is primed with the given strokes and then
samples), Sec. 5 (design: many similar but unique variations of a motif). Spherical
interpolation (slerp) is what Magenta's sketch-rnn notebook uses for Gaussian latents.

Models: encoder-based tools (reconstruct, interpolate, analogy, a design sheet around a
sketch) need a conditional (VAE) model and raise :class:`ModelKindError` otherwise;
:func:`complete` and :func:`design_sheet` also work with decoder-only models (e.g. the
Magenta ``.gen.json`` models loaded with :func:`sketchrnn.checkpoint.load_model`).

Inputs longer than the model's ``max_seq_len`` are simplified with Ramer–Douglas–Peucker
(the least epsilon that fits, :func:`sketchrnn.data.io.fit_sketch`) and a
:class:`SketchFitWarning` says so; empty or one-point sketches raise
:class:`sketchrnn.errors.DataError`.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, ModelFileError
from .fileio import atomic_write

__all__ = [
    "DEFAULT_TEMPERATURES",
    "Decoded",
    "ModelKindError",
    "SketchFitWarning",
    "analogy",
    "complete",
    "design_sheet",
    "frame_images",
    "frames_gif",
    "frames_svg",
    "interpolate",
    "interpolate_z",
    "join",
    "latent",
    "lattice_centres",
    "lerp",
    "mean_latent",
    "prepare_sketches",
    "reconstructions",
    "render_lattice",
    "slerp",
    "split_lines",
    "tile_image",
    "tile_svg",
    "two_tone_image",
    "two_tone_svg",
]

DEFAULT_TEMPERATURES = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


class ModelKindError(ModelFileError):
    """The model is of the wrong kind for the operation (e.g. decoder-only asked to encode)."""


class SketchFitWarning(UserWarning):
    """An input sketch was changed to fit the model (simplified because it was too long)."""


@dataclass
class Decoded:
    """Sketches decoded from latent vectors: ``sketches[i]`` came from ``z[i]`` (``z`` is
    ``None`` for decoder-only models); ``info`` holds per-item parameters (t, temperature)."""

    sketches: list[np.ndarray]
    z: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs
def _need_conditional(loaded, what: str) -> None:
    if not loaded.config.conditional:
        raise ModelKindError(f"{what} needs a conditional (VAE) model with an encoder, but model {loaded.name} is "
                             "decoder-only; use a conditional model (complete and design-sheet work with decoder-only ones)")


def prepare_sketches(loaded, sketches: Sequence[np.ndarray], size: float | None = None, where: str = "input",
                     warn: bool = True) -> list[np.ndarray]:
    """Check sketches and make them fit ``loaded``'s model (see :func:`sketchrnn.data.io.fit_sketch`).

    ``size``: rescale so the larger side is ``size`` data units (``None``: keep). Sketches
    longer than max_seq_len are RDP-simplified (a :class:`SketchFitWarning` says so)."""
    from .data.io import fit_sketch

    out = []
    for i, s in enumerate(sketches):
        fitted, notes = fit_sketch(s, loaded.config.max_seq_len, size, where=f"{where}[{i}]" if len(sketches) > 1 else where)
        if warn:
            for n in notes:
                if "RDP" in n:
                    warnings.warn(n, SketchFitWarning, stacklevel=3)
        out.append(fitted)
    return out


def _is_z(x: Any, z_size: int) -> bool:
    a = np.asarray(x)
    return a.ndim == 1 and a.shape[0] == z_size and a.dtype.kind in "fiu"


def _as_z_or_sketch(loaded, x: Any, where: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(z, None)`` for a latent vector, ``(None, fitted sketch)`` for a stroke-3 sketch."""
    zs = loaded.config.z_size
    if _is_z(x, zs):
        return np.asarray(x, dtype=np.float32), None
    a = np.asarray(x)
    if a.ndim == 1:
        raise DataError(f"{where}: a latent vector of size {a.shape[0]} does not fit model {loaded.name} (z_size {zs})")
    return None, prepare_sketches(loaded, [a], where=where)[0]


def latent(loaded, x: np.ndarray, where: str = "input") -> np.ndarray:
    """``x`` as a latent vector ``(Z,)``: a z is returned as is, a stroke-3 sketch is encoded
    (z = mu(x), Eq. 2 without noise)."""
    from .api import encode

    _need_conditional(loaded, "encoding a sketch")
    z, s = _as_z_or_sketch(loaded, x, where)
    return z if z is not None else encode(loaded, [s])[0]


# --------------------------------------------------------------------------- latent maths
def slerp(z0: np.ndarray, z1: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Spherical linear interpolation (Shoemake 1985), as Magenta's sketch-rnn notebook.

    ``t`` scalar -> ``(Z,)``; ``t`` ``(K,)`` -> ``(K, Z)``. The angle is that between the
    directions of ``z0`` and ``z1``; parallel vectors fall back to linear interpolation.
    Endpoints are exact: ``slerp(a, b, 0) == a``, ``slerp(a, b, 1) == b``.
    """
    a = np.asarray(z0, dtype=np.float64)
    b = np.asarray(z1, dtype=np.float64)
    tt = np.asarray(t, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return lerp(a, b, t)
    cos = float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    omega = math.acos(cos)
    so = math.sin(omega)
    if so < 1e-8:
        return lerp(a, b, t)
    w0 = np.sin((1.0 - tt) * omega) / so
    w1 = np.sin(tt * omega) / so
    out = w0[..., None] * a + w1[..., None] * b  # (..., Z)
    # exact endpoints (sin arithmetic leaves ~1e-16 errors)
    out = np.where((tt == 0)[..., None], a, out)
    out = np.where((tt == 1)[..., None], b, out)
    return out


def lerp(z0: np.ndarray, z1: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Linear interpolation ``(1 - t) z0 + t z1``; ``t`` scalar -> ``(Z,)``, ``(K,)`` -> ``(K, Z)``."""
    a = np.asarray(z0, dtype=np.float64)
    b = np.asarray(z1, dtype=np.float64)
    tt = np.asarray(t, dtype=np.float64)[..., None]
    out = (1.0 - tt) * a + tt * b
    out = np.where(tt == 1, b, out)
    return out


def interpolate_z(z0: np.ndarray, z1: np.ndarray, k: int, method: str = "slerp") -> tuple[np.ndarray, np.ndarray]:
    """``k`` evenly spaced points from ``z0`` to ``z1`` (both included): ``(t (k,), z (k, Z))``."""
    if k < 2:
        raise DataError(f"interpolation needs k >= 2 steps (both ends included), got {k}")
    if method not in ("slerp", "lerp"):
        raise DataError(f"interpolation method must be 'slerp' or 'lerp', got {method!r}")
    t = np.linspace(0.0, 1.0, int(k))
    z = (slerp if method == "slerp" else lerp)(z0, z1, t)
    return t, z.astype(np.float32)


# --------------------------------------------------------------------------- decoding helpers
def _decode_each(loaded, z: np.ndarray, temperature: float, greedy: bool, seed: int | None,
                 temperature_mode: str) -> list[np.ndarray]:
    """Decode every z with the *same* random stream (same seed), so nearby z give nearby
    sketches: the only difference along a path is z itself."""
    from .api import decode

    if seed is None and not greedy:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    return [decode(loaded, zi[None, :], temperature=temperature, greedy=greedy, seed=seed,
                   temperature_mode=temperature_mode)[0] for zi in np.asarray(z)]


def reconstructions(loaded, sketches: Sequence[np.ndarray], n: int = 4,
                    temperatures: Sequence[float] = DEFAULT_TEMPERATURES, seed: int | None = 0,
                    size: float | None = None, temperature_mode: str = "paper") -> list[list[list[np.ndarray]]]:
    """``result[i][j][k]``: the k-th of ``n`` reconstructions of sketch i at ``temperatures[j]``
    (z = mu(x); paper Fig. 4 / Sec. 4.2)."""
    from .api import reconstruct

    _need_conditional(loaded, "reconstruction")
    if n < 1:
        raise DataError(f"n must be >= 1 reconstructions per temperature, got {n}")
    if not temperatures:
        raise DataError("give at least one temperature")
    xs = prepare_sketches(loaded, sketches, size=size)
    per_t = [reconstruct(loaded, xs, n=n, temperature=float(tau), seed=None if seed is None else seed + j,
                         temperature_mode=temperature_mode) for j, tau in enumerate(temperatures)]
    return [[per_t[j][i] for j in range(len(temperatures))] for i in range(len(xs))]


def interpolate(loaded, a: np.ndarray, b: np.ndarray, k: int = 8, method: str = "slerp",
                temperature: float = 0.1, greedy: bool = False, seed: int | None = 0,
                temperature_mode: str = "paper") -> Decoded:
    """``k`` sketches along the path from ``a`` to ``b`` (sketches or latent vectors).

    ``method``: ``"slerp"`` (default, spherical; keeps the norm typical of N(0, I) samples)
    or ``"lerp"``. Every step is decoded with the same seed (and ``greedy`` removes the
    randomness altogether) so the sequence changes smoothly. ``info["t"]`` holds the
    positions in [0, 1]."""
    _need_conditional(loaded, "interpolation")
    za, zb = latent(loaded, a, "first sketch"), latent(loaded, b, "second sketch")
    t, z = interpolate_z(za, zb, k, method)
    sk = _decode_each(loaded, z, temperature, greedy, seed, temperature_mode)
    return Decoded(sk, z, {"t": t.tolist(), "method": method, "temperature": temperature, "greedy": greedy})


def mean_latent(loaded, sketches: Sequence[np.ndarray], where: str = "sketches") -> np.ndarray:
    """The mean of mu(x) over several sketches, ``(Z,)``: an attribute's direction is steadier as
    the difference of two such means (e.g. 200 full pigs minus their heads) than of two drawings."""
    from .api import encode

    xs = list(sketches)
    if not xs:
        raise DataError(f"{where}: no sketches to average")
    _need_conditional(loaded, "encoding a sketch")
    parsed = [_as_z_or_sketch(loaded, x, f"{where}[{i}]") for i, x in enumerate(xs)]
    zs = [z for z, _ in parsed if z is not None]
    todo = [s for _, s in parsed if s is not None]
    for k in range(0, len(todo), 256):  # encoded in batches: one forward pass per 256 sketches
        zs += list(encode(loaded, todo[k:k + 256]))  # (n, Z)
    return np.stack(zs).astype(np.float64).mean(axis=0).astype(np.float32)  # (N, Z) -> (Z,)


def analogy(loaded, a: np.ndarray, b: np.ndarray, c: np.ndarray, n: int = 1, temperature: float = 0.1,
            greedy: bool = False, seed: int | None = 0, temperature_mode: str = "paper",
            strength: float = 1.0) -> Decoded:
    """Latent vector arithmetic z = z(c) + strength * (z(a) − z(b)) (paper Sec. 4.3, Fig. 7; the
    paper's is ``strength`` 1), decoded ``n`` times: e.g. a = full pig, b = pig head, c = cat
    head -> a full cat. ``a``, ``b``, ``c`` are sketches or latent vectors (for a direction
    averaged over many sketches pass :func:`mean_latent` of each set); ``z`` of the result is
    ``(n, Z)`` (all rows equal)."""
    _need_conditional(loaded, "analogy")
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    if not np.isfinite(strength):
        raise DataError(f"strength must be a finite number, got {strength}")
    za, zb, zc = (latent(loaded, x, w) for x, w in ((a, "sketch a"), (b, "sketch b"), (c, "sketch c")))
    z = (zc.astype(np.float64) + strength * (za.astype(np.float64) - zb)).astype(np.float32)
    from .api import decode

    zz = np.repeat(z[None, :], n, axis=0)  # (n, Z)
    sk = decode(loaded, zz, temperature=temperature, greedy=greedy, seed=seed, temperature_mode=temperature_mode)
    return Decoded(sk, zz, {"temperature": temperature, "greedy": greedy, "strength": strength})


def _prefix_fit(loaded, sketch: np.ndarray, size: float | None) -> np.ndarray:
    (p,) = prepare_sketches(loaded, [sketch], size=size, where="incomplete sketch")
    return p


def complete(loaded, sketch: np.ndarray, n: int = 4, temperature: float = 0.5,
             z: str | np.ndarray | None = None, seed: int | None = None, greedy: bool = False,
             max_len: int | None = None, size: float | None = None,
             temperature_mode: str = "paper") -> list[np.ndarray]:
    """``n`` continuations of an incomplete sketch (paper Sec. 4.4): the decoder reads the
    given strokes, then samples. Each result holds only the **new** points (draw it after
    the input: :func:`join`).

    ``z`` (conditional models): ``None`` or ``"input"`` = z = mu(encoded incomplete sketch),
    shared by all continuations; ``"prior"`` = a different z ~ N(0, I) per continuation;
    or an explicit latent ``(Z,)`` / ``(n, Z)``. Decoder-only models take no ``z``.
    ``max_len``: new points at most (default: what is left of max_seq_len after the input,
    at least a quarter of it)."""
    from .api import _generator, decode

    cfg = loaded.config
    if n < 1:
        raise DataError(f"n must be >= 1 completions, got {n}")
    prefix = _prefix_fit(loaded, sketch, size)
    if cfg.conditional:
        if z is None or (isinstance(z, str) and z == "input"):
            zz = np.repeat(latent(loaded, prefix, "incomplete sketch")[None, :], n, axis=0)  # (n, Z)
        elif isinstance(z, str) and z == "prior":
            import torch

            g = _generator(None if seed is None else seed + 7919)
            zz = torch.randn(n, cfg.z_size, generator=g).numpy()
        elif isinstance(z, str):
            raise DataError(f"z must be 'input', 'prior' or a latent vector, got {z!r}")
        else:
            zz = np.asarray(z, dtype=np.float32)
            if zz.ndim == 1:
                zz = np.repeat(zz[None, :], n, axis=0)
            if zz.shape != (n, cfg.z_size):
                raise DataError(f"z has shape {zz.shape}; model {loaded.name} needs ({cfg.z_size},) or ({n}, {cfg.z_size})")
    else:
        if z is not None:
            raise ModelKindError(f"model {loaded.name} is decoder-only: it takes no z; leave z unset to complete from the strokes alone")
        zz = None
    if max_len is None:
        max_len = max(cfg.max_seq_len - len(prefix), cfg.max_seq_len // 4, 1)
    return decode(loaded, zz, n=n, temperature=temperature, greedy=greedy, seed=seed, max_len=int(max_len),
                  temperature_mode=temperature_mode, prefix=prefix)


def join(prefix: np.ndarray, continuation: np.ndarray) -> np.ndarray:
    """The input sketch followed by a continuation (stroke-3 offsets simply concatenate)."""
    a = np.asarray(prefix, dtype=np.float32).reshape(-1, 3)
    b = np.asarray(continuation, dtype=np.float32).reshape(-1, 3)
    return np.concatenate([a, b], axis=0)


def design_sheet(loaded, sketch_or_z: np.ndarray | None = None, rows: int = 4, cols: int = 6, sigma: float = 0.25,
                 temperature: float = 0.3, seed: int | None = 0, prefix: np.ndarray | None = None,
                 size: float | None = None, temperature_mode: str = "paper", max_tries: int = 4) -> Decoded:
    """``rows * cols`` similar but unique variations of one motif (paper Sec. 5).

    Conditional: z_i = z0 + sigma * eps_i with z0 = mu(sketch), the given z, or (None) one
    draw from the prior, decoded at ``temperature``. Decoder-only: each motif is sampled
    with its own seed at temperature ``temperature * exp(sigma * eps_i)``; with ``prefix``
    every motif starts with those strokes (the returned motifs include them). A motif the
    model ends at once (fewer than 2 points) is redrawn with another seed (``max_tries``).
    ``info["temperatures"]`` lists each motif's temperature."""
    from .api import _generator, decode

    cfg = loaded.config
    if rows < 1 or cols < 1:
        raise DataError(f"a design sheet needs rows >= 1 and cols >= 1, got {rows} x {cols}")
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise DataError(f"sigma must be >= 0, got {sigma}")
    n = rows * cols
    rng = np.random.default_rng(seed)
    pre = _prefix_fit(loaded, prefix, size) if prefix is not None else None
    if cfg.conditional:
        import torch

        if sketch_or_z is None:
            g = _generator(None if seed is None else seed + 104729)
            z0 = torch.randn(cfg.z_size, generator=g).numpy()
        else:
            x = sketch_or_z
            if not _is_z(x, cfg.z_size):
                (x,) = prepare_sketches(loaded, [np.asarray(x)], size=size, where="motif sketch")
            z0 = latent(loaded, x, "motif")
        zs = (z0[None, :] + sigma * rng.standard_normal((n, cfg.z_size))).astype(np.float32)  # (n, Z)
        temps = [float(temperature)] * n
    else:
        if sketch_or_z is not None:
            raise ModelKindError(f"model {loaded.name} is decoder-only: a design sheet around a sketch or z needs a "
                                 "conditional model; give no motif (or a prefix to prime the decoder)")
        zs = None
        temps = [float(temperature * math.exp(sigma * e)) for e in rng.standard_normal(n)]
    base_seed = int(rng.integers(0, 2**31 - 1)) if seed is None else int(seed)
    max_len = None
    if pre is not None:
        max_len = max(cfg.max_seq_len - len(pre), cfg.max_seq_len // 4, 1)
    out: list[np.ndarray] = []
    for i in range(n):
        s = np.zeros((0, 3), np.float32)
        for attempt in range(max(1, max_tries)):
            zi = None if zs is None else zs[i:i + 1]
            s = decode(loaded, zi, n=1, temperature=temps[i], seed=base_seed + 1000 * attempt + i, max_len=max_len,
                       temperature_mode=temperature_mode, prefix=pre)[0]
            if len(s) >= 2:
                break
        out.append(join(pre, s) if pre is not None else s)
    return Decoded(out, zs, {"temperatures": temps, "sigma": sigma, "rows": rows, "cols": cols})


# --------------------------------------------------------------------------- seamless tiles
def _lines(s3: np.ndarray) -> list[np.ndarray]:
    """Absolute polylines of a sketch; the start point (origin) is the first drawn point
    (:func:`sketchrnn.data.strokes.to_polylines`). Empty sketches give no lines."""
    from .data.strokes import to_polylines

    a = np.asarray(s3, dtype=np.float64).reshape(-1, 3)
    return to_polylines(a) if len(a) else []


def lattice_centres(rows: int, cols: int, cell: int, offset: bool = True) -> np.ndarray:
    """Motif centres ``(rows * cols, 2)`` in pixels, row-major. ``offset``: odd rows are shifted
    right by half a cell (a brick / half-drop lattice; needs an even number of rows to tile)."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    x = (c + 0.5 + (0.5 * (r % 2) if offset else 0.0)) * cell
    y = (r + 0.5) * cell
    return np.stack([x, y], axis=1).astype(np.float64)


def _check_lattice(n: int, rows: int, cols: int, cell: int, offset: bool) -> None:
    if rows < 1 or cols < 1:
        raise DataError(f"a tile needs rows >= 1 and cols >= 1, got {rows} x {cols}")
    if n != rows * cols:
        raise DataError(f"{n} motifs for a {rows} x {cols} lattice; give rows * cols = {rows * cols} sketches")
    if offset and rows % 2:
        raise DataError(f"offset rows need an even number of rows to tile seamlessly, got {rows}; use an even "
                        "number or no offset")
    if cell < 8:
        raise DataError(f"cell must be >= 8 pixels, got {cell}")


def _motif_pixels(sketches: Sequence[np.ndarray], centres: np.ndarray, box: float) -> list[list[np.ndarray]]:
    """Each motif fitted (uniform scale, centred) into a ``box`` px square around its centre."""
    out = []
    for s, c in zip(sketches, centres):
        lines = _lines(s)
        if not lines:
            out.append([])
            continue
        allp = np.concatenate(lines)
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        ext = float(np.max(hi - lo))
        k = box / ext if ext > 0 else 1.0
        mid = (lo + hi) / 2.0
        out.append([(ln - mid) * k + c for ln in lines])
    return out


def render_lattice(sketches: Sequence[np.ndarray], rows: int, cols: int, cell: int = 128, offset: bool = True,
                   window: tuple[int, int, int, int] | None = None, motif_scale: float = 0.8,
                   stroke_width: float = 2.0, colors: Sequence[Any] = ((0, 0, 0),),
                   background: Any = (255, 255, 255), supersample: int = 4):
    """Render a window ``(x0, y0, width, height)`` (integer pixels) of the infinite periodic
    pattern whose period is the ``cols*cell x rows*cell`` tile (default window: one tile).

    Every motif is drawn at all its wrapped positions (shifts by whole tile periods) that
    touch the window, so the tile repeats without seams. Coordinates are snapped to 1/8
    of a supersampled pixel so that a shift by a period rasterises identically."""
    from PIL import Image, ImageDraw

    from .render.png import draw_polylines

    _check_lattice(len(sketches), rows, cols, cell, offset)
    W, H = cols * cell, rows * cell
    x0, y0, w, h = window if window is not None else (0, 0, W, H)
    ss = max(1, int(supersample))
    motifs = _motif_pixels(sketches, lattice_centres(rows, cols, cell, offset), motif_scale * cell)
    pad = math.ceil(cell * max(1.0, motif_scale) + stroke_width) + 1
    # Pillow's rasteriser rounds negative coordinates differently from positive ones: draw on
    # a canvas with ``pad`` px on every side so that all coordinates are positive, then crop.
    img = Image.new("RGB", ((int(w) + 2 * pad) * ss, (int(h) + 2 * pad) * ss), background)
    draw = ImageDraw.Draw(img)
    for idx, lines in enumerate(motifs):
        if not lines:
            continue
        color = colors[idx % len(colors)]
        local = [np.round(ln * ss * 8.0) / 8.0 for ln in lines]  # (n, 2) supersampled px, dyadic grid
        allp = np.concatenate(lines)
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        for i in range(math.floor((x0 - hi[0] - pad) / W), math.ceil((x0 + w - lo[0] + pad) / W) + 1):
            for j in range(math.floor((y0 - hi[1] - pad) / H), math.ceil((y0 + h - lo[1] + pad) / H) + 1):
                sx, sy = i * W - x0, j * H - y0  # integer pixel shift into the window
                if hi[0] + sx < -pad or lo[0] + sx > w + pad or hi[1] + sy < -pad or lo[1] + sy > h + pad:
                    continue
                shift = np.array([(sx + pad) * ss, (sy + pad) * ss], dtype=np.float64)
                draw_polylines(draw, [ln + shift for ln in local], stroke_width * ss, color)
    img = img.crop((pad * ss, pad * ss, (pad + int(w)) * ss, (pad + int(h)) * ss))
    return img if ss == 1 else img.resize((int(w), int(h)), Image.Resampling.BOX)


def tile_image(sketches: Sequence[np.ndarray], rows: int, cols: int, cell: int = 128, offset: bool = True, **kw):
    """One seamless tile (``cols*cell x rows*cell`` RGB image) of the motif lattice: placed
    side by side (``np.tile``) the copies join without seams (see :func:`render_lattice`)."""
    return render_lattice(sketches, rows, cols, cell, offset, window=None, **kw)


def _color_str(c: Any) -> str:
    if isinstance(c, str):
        return c
    r, g, b = (int(v) for v in c[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def tile_svg(sketches: Sequence[np.ndarray], rows: int, cols: int, cell: int = 128, offset: bool = True,
             motif_scale: float = 0.8, stroke_width: float = 2.0, colors: Sequence[Any] = ("black",),
             background: Any = "white") -> str:
    """The seamless tile as SVG: viewBox = one period, motifs drawn at every wrapped
    position that touches it (the root viewport clips the rest)."""
    from .render.svg import SVG_NS, svg_polyline_points

    _check_lattice(len(sketches), rows, cols, cell, offset)
    W, H = cols * cell, rows * cell
    motifs = _motif_pixels(sketches, lattice_centres(rows, cols, cell, offset), motif_scale * cell)
    parts = [f'<svg xmlns="{SVG_NS}" width="{W}" height="{H}" viewBox="0 0 {W} {H}" overflow="hidden">']
    if background:
        parts.append(f'<rect x="0" y="0" width="{W}" height="{H}" fill="{_color_str(background)}"/>')
    for idx, lines in enumerate(motifs):
        if not lines:
            continue
        allp = np.concatenate(lines)
        lo, hi = allp.min(axis=0) - stroke_width, allp.max(axis=0) + stroke_width
        parts.append(f'<g fill="none" stroke="{_color_str(colors[idx % len(colors)])}" stroke-width="{stroke_width:g}" '
                     'stroke-linecap="round" stroke-linejoin="round">')
        for i in (-1, 0, 1):
            for j in (-1, 0, 1):
                sx, sy = i * W, j * H
                if hi[0] + sx < 0 or lo[0] + sx > W or hi[1] + sy < 0 or lo[1] + sy > H:
                    continue
                for ln in lines:
                    parts.append(f'<polyline points="{svg_polyline_points(ln + np.array([sx, sy]))}"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- completions, two colours
def _polylines_with_rows(s3: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Like :func:`sketchrnn.data.strokes.to_polylines` (start point = origin, first drawn
    point) but also returns, per point, the stroke-3 row that reached it (-1 = the origin)."""
    a = np.asarray(s3, dtype=np.float64).reshape(-1, 3)
    if len(a) == 0:
        return []
    pts = np.concatenate([np.zeros((1, 2)), np.cumsum(a[:, :2], axis=0)])  # (L+1, 2); point i+1 = after row i
    rows = np.arange(-1, len(a))
    lifted = a[:, 2] > 0.5
    out, begin = [], 0  # begin indexes pts
    for i in range(len(a)):
        if lifted[i]:
            out.append((pts[begin:i + 2], rows[begin:i + 2]))
            begin = i + 2
    if begin < len(pts):
        out.append((pts[begin:], rows[begin:]))
    return [(p, r) for p, r in out if len(p)]


def split_lines(s3: np.ndarray, n_first: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Polylines of a sketch split in two parts: drawn by rows ``< n_first`` (e.g. the given
    strokes of a completion) and by the rows after (the continuation, joined to the end of
    the first part where the pen was down)."""
    first, second = [], []
    for pts, rows in _polylines_with_rows(s3):
        q = int(np.searchsorted(rows, n_first))  # first point reached by a row >= n_first
        if q > 0:
            first.append(pts[:q])
        if q < len(pts):
            second.append(pts[max(q - 1, 0):])
    return first, second


def two_tone_image(items: Sequence[tuple[np.ndarray, int]], ncols: int, cell: int = 160, margin: float = 10.0,
                   stroke_width: float = 2.0, colors: Sequence[Any] = ((150, 150, 150), (200, 30, 40)),
                   background: Any = (255, 255, 255), supersample: int = 3):
    """A grid of sketches drawn in two colours: ``items[i] = (sketch, n_first_rows)``; rows
    ``< n_first_rows`` in ``colors[0]``, the rest in ``colors[1]`` (completions: input grey,
    continuation red)."""
    from PIL import Image, ImageDraw

    from .render._common import fit_box
    from .render.png import draw_polylines

    if ncols < 1:
        raise DataError(f"ncols must be >= 1, got {ncols}")
    nrows = max(1, -(-len(items) // ncols))
    ss = max(1, int(supersample))
    out = Image.new("RGB", (ncols * cell, nrows * cell), background)
    for i, (s, n0) in enumerate(items):
        r, c = divmod(i, ncols)
        first, second = split_lines(s, n0)
        tile = Image.new("RGB", (cell * ss, cell * ss), background)
        if first or second:
            fit = fit_box(first + second, cell, cell, margin)
            d = ImageDraw.Draw(tile)
            draw_polylines(d, [fit.apply(ln) * ss for ln in first], stroke_width * ss, colors[0])
            draw_polylines(d, [fit.apply(ln) * ss for ln in second], stroke_width * ss, colors[1])
        out.paste(tile.resize((cell, cell), Image.Resampling.BOX) if ss > 1 else tile, (c * cell, r * cell))
    return out


def two_tone_svg(items: Sequence[tuple[np.ndarray, int]], ncols: int, cell: int = 160, margin: float = 10.0,
                 stroke_width: float = 2.0, colors: Sequence[str] = ("#969696", "#c81e28"),
                 background: str | None = "white") -> str:
    """SVG twin of :func:`two_tone_image`."""
    from .render._common import fit_box
    from .render.svg import SVG_NS, svg_polyline_points

    nrows = max(1, -(-len(items) // ncols))
    W, H = ncols * cell, nrows * cell
    parts = [f'<svg xmlns="{SVG_NS}" width="{W}" height="{H}" viewBox="0 0 {W} {H}">']
    if background:
        parts.append(f'<rect x="0" y="0" width="{W}" height="{H}" fill="{background}"/>')
    for i, (s, n0) in enumerate(items):
        r, c = divmod(i, ncols)
        first, second = split_lines(s, n0)
        if not (first or second):
            continue
        fit = fit_box(first + second, cell, cell, margin)
        off = np.array([c * cell, r * cell], dtype=np.float64)
        for lines, col in ((first, colors[0]), (second, colors[1])):
            if lines:
                parts.append(f'<g fill="none" stroke="{col}" stroke-width="{stroke_width:g}" stroke-linecap="round" '
                             'stroke-linejoin="round">')
                parts += [f'<polyline points="{svg_polyline_points(fit.apply(ln) + off)}"/>' for ln in lines]
                parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- animation
def frame_images(sketches: Sequence[np.ndarray], size: int = 256, margin: float = 12.0, stroke_width: float = 2.0,
                 common_scale: bool = True, supersample: int = 2, color: Any = (0, 0, 0),
                 background: Any = (255, 255, 255)) -> list:
    """One RGB image per sketch, each centred; with ``common_scale`` all share one scale (so
    a growing or shrinking drawing shows as such across an interpolation)."""
    from PIL import Image, ImageDraw

    from .render.png import draw_polylines

    if size <= 2 * margin:
        raise DataError(f"frame size {size} px leaves no room inside a margin of {margin} px")
    all_lines = [_lines(s) for s in sketches]
    exts = [float(np.max(np.ptp(np.concatenate(ls), axis=0))) if ls else 0.0 for ls in all_lines]
    avail = size - 2 * margin
    common = max(exts) if exts else 0.0
    ss = max(1, int(supersample))
    frames = []
    for lines, ext in zip(all_lines, exts):
        img = Image.new("RGB", (size * ss, size * ss), background)
        if lines:
            e = common if common_scale else ext
            k = avail / e if e > 0 else 1.0
            allp = np.concatenate(lines)
            mid = (allp.min(axis=0) + allp.max(axis=0)) / 2.0
            px = [((ln - mid) * k + size / 2.0) * ss for ln in lines]  # (n, 2) supersampled px
            draw_polylines(ImageDraw.Draw(img), px, stroke_width * ss, color)
        frames.append(img.resize((size, size), Image.Resampling.BOX) if ss > 1 else img)
    return frames


def _atomic_write(path: str | Path, data: bytes) -> None:
    atomic_write(path, data, error=DataError)


def frames_gif(sketches: Sequence[np.ndarray], path: str | Path, size: int = 256, frame_ms: int = 120,
               hold_ms: int = 600, pingpong: bool = True, loop: int = 0, **kw) -> int:
    """Animated GIF whose frames are the sketches (e.g. interpolation steps), written
    atomically; ``pingpong`` plays forward then back. Returns the number of frames."""
    frames = frame_images(sketches, size=size, **kw)
    if not frames:
        raise DataError("an animation needs at least one sketch")
    durations = [int(frame_ms)] * len(frames)
    durations[0] = durations[-1] = int(max(frame_ms, hold_ms))
    if pingpong and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
        durations = durations + [int(frame_ms)] * (len(frames) - len(durations))
    from PIL import Image

    pal = [f.convert("P", palette=Image.Palette.ADAPTIVE, colors=32) for f in frames]
    buf = io.BytesIO()
    pal[0].save(buf, format="GIF", save_all=True, append_images=pal[1:], duration=durations, loop=int(loop),
                optimize=False, disposal=1)
    _atomic_write(path, buf.getvalue())
    return len(pal)


def frames_svg(sketches: Sequence[np.ndarray], size: int = 256, frame_s: float = 0.15, hold_s: float = 0.6,
               margin: float = 12.0, stroke_width: float = 2.0, color: str = "black",
               background: str | None = "white", pingpong: bool = True) -> str:
    """Animated SVG (SMIL) showing the sketches one after another as frames, on one common
    scale; plays in browsers, also through ``<img>``."""
    from .render.svg import SVG_NS, svg_polyline_points

    if not sketches:
        raise DataError("an animation needs at least one sketch")
    order = list(range(len(sketches)))
    if pingpong and len(order) > 2:
        order += order[-2:0:-1]
    durs = [hold_s if i in (0, len(sketches) - 1) else frame_s for i in order]
    total = float(sum(durs))
    all_lines = [_lines(s) for s in sketches]
    exts = [float(np.max(np.ptp(np.concatenate(ls), axis=0))) if ls else 0.0 for ls in all_lines]
    k = (size - 2 * margin) / max(max(exts), 1e-9)
    parts = [f'<svg xmlns="{SVG_NS}" width="{size}" height="{size}" viewBox="0 0 {size} {size}">']
    if background:
        parts.append(f'<rect x="0" y="0" width="{size}" height="{size}" fill="{background}"/>')
    starts = np.concatenate([[0.0], np.cumsum(durs)[:-1]])
    kt = ";".join(f"{t / total:.5f}" for t in starts)  # one key time per slot of the cycle
    for f, lines in enumerate(all_lines):
        vv = ";".join("visible" if i == f else "hidden" for i in order)  # discrete: slot p shows frame order[p]
        mid = ((np.concatenate(lines).min(axis=0) + np.concatenate(lines).max(axis=0)) / 2.0) if lines else np.zeros(2)
        parts.append(f'<g visibility="hidden" fill="none" stroke="{color}" stroke-width="{stroke_width:g}" '
                     'stroke-linecap="round" stroke-linejoin="round">'
                     f'<animate attributeName="visibility" calcMode="discrete" dur="{total:.3f}s" '
                     f'repeatCount="indefinite" keyTimes="{kt}" values="{vv}"/>')
        for ln in lines:
            parts.append(f'<polyline points="{svg_polyline_points((ln - mid) * k + size / 2.0)}"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
