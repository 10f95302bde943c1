"""``sketchrnn`` verbs of the creative toolkit: reconstruct, interpolate, analogy, complete,
design-sheet, animate (registered into :mod:`sketchrnn.cli` on import).

Every verb reads sketches from ``.npz`` (``--split``), QuickDraw ``.ndjson``, JSON strokes or
SVG (:func:`sketchrnn.data.io.read_strokes_file`) and writes into the ``--out`` folder:
pictures (SVG, PNG, GIF) plus the raw strokes as a sketch-rnn ``.npz``. Input size:
``--size auto`` (default) scales ``.svg``/``.json`` drawings so their larger side is 255 data
units (the scale of QuickDraw-trained models) and leaves ``.npz``/``.ndjson`` data as is;
``--size N`` scales every input to N; ``--size none`` never rescales. Inputs longer than the
model's max_seq_len are simplified with RDP (a note on stderr says so).

Magenta's pretrained QuickDraw models (``*.gen.json``) draw about three times larger than
Google's 0-255 simplified drawings and score real drawings best when they are enlarged
~3x (cat: 8.10 nats/point at 255, 7.82 at 765, in 255-scale units): with them, pass
``--size 765`` (see docs/gallery/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .cli import _EXTRA_PARSERS, verb
from .errors import DataError

__all__ = ["add_parsers"]

_EMPTY = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)  # how an empty result is stored in .npz files


def _note(msg: str) -> None:
    print(f"sketchrnn: note: {msg}", file=sys.stderr)


def _threads(n: int | None) -> None:
    import torch

    torch.set_num_threads(int(n) if n else 1)


def _load(a: argparse.Namespace):
    from .checkpoint import load_model

    _threads(a.threads)
    return load_model(a.model, device=a.device)


def _size_for(path: str, opt: str) -> float | None:
    """``--size`` -> the target size of inputs read from ``path`` (None = keep)."""
    o = str(opt).lower()
    if o == "none":
        return None
    if o == "auto":
        from .data.io import QUICKDRAW_SIZE

        return QUICKDRAW_SIZE if path.lower().endswith((".svg", ".json")) else None
    try:
        v = float(o)
    except ValueError:
        raise DataError(f"--size must be 'auto', 'none' or a number of data units, got {opt!r}") from None
    if not v > 0:
        raise DataError(f"--size must be > 0, got {opt!r}")
    return v


def _pick(sk: list[np.ndarray], indices: list[int], path: str) -> list[np.ndarray]:
    out = []
    for i in indices:
        if not -len(sk) <= i < len(sk):
            raise DataError(f"{path}: holds {len(sk)} sketch(es); index {i} is out of range")
        out.append(sk[i])
    return out


def _inputs(path: str, a: argparse.Namespace, loaded, indices: list[int] | None,
            limit: int | None = None) -> list[np.ndarray]:
    """Read, select (``indices``, or the first ``limit``) and fit input sketches; notes on
    stderr for anything changed."""
    from .data.io import fit_sketch, read_strokes_file

    allsk = read_strokes_file(path, split=a.split)
    if indices is None:
        indices = list(range(min(len(allsk), limit or len(allsk))))
    sk = _pick(allsk, indices, path)
    size = _size_for(path, a.size)
    out = []
    for i, s in zip(indices, sk):
        fitted, notes = fit_sketch(s, loaded.config.max_seq_len, size, where=f"{path}[{i}]")
        for n in notes:
            if "RDP" in n or a.verbose:
                _note(n)
        out.append(fitted)
    return out


def _parse_floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DataError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not vals or not all(v > 0 and np.isfinite(v) for v in vals):
        raise DataError(f"{what} must be positive numbers, got {text!r}")
    return vals


def _parse_ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DataError(f"{what} must be comma-separated integers, got {text!r}") from None


def _nonempty(sk: list[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(s, np.float32) if len(s) else _EMPTY.copy() for s in sk]


def _write_grid(out: Path, stem: str, sketches: list[np.ndarray], ncols: int, labels: list[str] | None,
                cell: int, png: bool = True) -> list[str]:
    from .render import grid_image, grid_svg, save_png, save_svg

    save_svg(out / f"{stem}.svg", grid_svg(sketches, ncols=ncols, cell=cell, labels=labels))
    written = [str(out / f"{stem}.svg")]
    if png:
        save_png(out / f"{stem}.png", grid_image(sketches, ncols=ncols, cell=cell, labels=labels))
        written.append(str(out / f"{stem}.png"))
    return written


def _save_npz(path: Path, data: dict[str, list[np.ndarray]]) -> str:
    from .data import save_npz

    save_npz(path, {k: _nonempty(v) for k, v in data.items()})
    return str(path)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    """Latent vectors as a plain .npy (atomic)."""
    import io

    from .creative import _atomic_write

    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=np.float32), allow_pickle=False)
    _atomic_write(path, buf.getvalue())


def _done(written: list[str]) -> int:
    print("wrote " + ", ".join(written))
    return 0


def _outdir(a: argparse.Namespace) -> Path:
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a folder; give a folder for the outputs")
    return out


# --------------------------------------------------------------------------- verbs
@verb("reconstruct")
def cmd_reconstruct(a: argparse.Namespace) -> int:
    """Input sketches -> ``--n`` reconstructions at each temperature (grid: rows = inputs x temperatures)."""
    from .creative import reconstructions

    lm = _load(a)
    idx = _parse_ints(a.indices, "--indices") if a.indices else list(range(a.limit))
    xs = _inputs(a.input, a, lm, _parse_ints(a.indices, "--indices") if a.indices else None, limit=a.limit)
    idx = idx[: len(xs)]
    temps = _parse_floats(a.temperatures, "--temperatures")
    res = reconstructions(lm, xs, n=a.n, temperatures=temps, seed=a.seed, temperature_mode=a.temperature_mode)
    cells, labels = [], []
    npz: dict[str, list[np.ndarray]] = {"input": xs}
    for i, per_t in enumerate(res):
        for tau, recs in zip(temps, per_t):
            cells += [xs[i]] + recs
            labels += [f"input {idx[i]}"] + [f"t={tau:g}"] * len(recs)
            npz.setdefault(f"t{tau:g}", []).extend(recs)
    out = _outdir(a)
    written = _write_grid(out, "reconstruct", cells, a.n + 1, labels, a.cell)
    written.append(_save_npz(out / "reconstruct.npz", npz))
    return _done(written)


def _two_inputs(a: argparse.Namespace, lm) -> tuple[np.ndarray, np.ndarray]:
    if a.input_b:
        (xa,) = _inputs(a.input, a, lm, [a.index_a])
        (xb,) = _inputs(a.input_b, a, lm, [0 if a.index_b is None else a.index_b])
    else:
        xa, xb = _inputs(a.input, a, lm, [a.index_a, 1 if a.index_b is None else a.index_b])
    return xa, xb


@verb("interpolate")
def cmd_interpolate(a: argparse.Namespace) -> int:
    """Two sketches -> ``--k`` sketches along the latent path (grid, GIF, animated SVG, npz)."""
    from .creative import frames_gif, frames_svg, interpolate
    from .render import save_svg

    lm = _load(a)
    xa, xb = _two_inputs(a, lm)
    res = interpolate(lm, xa, xb, k=a.k, method=a.method, temperature=a.temperature, greedy=a.greedy, seed=a.seed,
                      temperature_mode=a.temperature_mode)
    out = _outdir(a)
    cells = [xa] + res.sketches + [xb]
    labels = ["A"] + [f"t={t:.2f}" for t in res.info["t"]] + ["B"]
    written = _write_grid(out, "interpolation", cells, len(cells), labels, a.cell)
    frames_gif(res.sketches, out / "interpolation.gif", size=a.frame_size, frame_ms=a.frame_ms)
    save_svg(out / "interpolation_anim.svg", frames_svg(res.sketches, size=a.frame_size, frame_s=a.frame_ms / 1000.0))
    written += [str(out / "interpolation.gif"), str(out / "interpolation_anim.svg")]
    written.append(_save_npz(out / "interpolation.npz", {"input": [xa, xb], "path": res.sketches}))
    _save_npy(out / "interpolation_z.npy", res.z)
    return _done(written + [str(out / "interpolation_z.npy")])


@verb("analogy")
def cmd_analogy(a: argparse.Namespace) -> int:
    """z(A) - z(B) + z(C), decoded ``--n`` times."""
    from .creative import analogy, mean_latent

    lm = _load(a)
    picked = {}
    for name in ("a", "b"):
        k = getattr(a, f"mean_{name}")
        if k < 0:
            raise DataError(f"--mean-{name} must be >= 0 (0: one sketch, --index-{name}), got {k}")
        if k:  # the mean z over the first k sketches stands for the input; the first one is drawn
            xs = _inputs(getattr(a, name), a, lm, None, limit=k)
            picked[name] = (xs[0], mean_latent(lm, xs, where=getattr(a, name)))
            _note(f"{name.upper()}: mean z of {len(xs)} sketches from {getattr(a, name)}")
        else:
            (x,) = _inputs(getattr(a, name), a, lm, [getattr(a, f"index_{name}")])
            picked[name] = (x, x)
    (xc,) = _inputs(a.c, a, lm, [a.index_c])
    (xa, za), (xb, zb) = picked["a"], picked["b"]
    res = analogy(lm, za, zb, xc, n=a.n, temperature=a.temperature, greedy=a.greedy, seed=a.seed,
                  temperature_mode=a.temperature_mode, strength=a.strength)
    out = _outdir(a)
    cells = [xa, xb, xc] + res.sketches
    labels = [f"A (mean of {a.mean_a})" if a.mean_a else "A", f"- B (mean of {a.mean_b})" if a.mean_b else "- B",
              "+ C"] + [f"= #{j}" for j in range(len(res.sketches))]
    written = _write_grid(out, "analogy", cells, min(len(cells), 8), labels, a.cell)
    written.append(_save_npz(out / "analogy.npz", {"input": [xa, xb, xc], "result": res.sketches}))
    return _done(written)


def _truncate(s: np.ndarray, keep: float, where: str) -> np.ndarray:
    """The first ``keep`` fraction of the strokes of a sketch (at least one stroke)."""
    if not (0 < keep <= 1):
        raise DataError(f"--keep must be in (0, 1], got {keep}")
    if keep >= 1:
        return s
    ends = np.flatnonzero(s[:, 2] > 0.5) + 1
    n_strokes = max(len(ends), 1)
    k = max(1, round(keep * n_strokes))
    if k >= n_strokes:
        k = n_strokes - 1 if n_strokes > 1 else 1
    cut = int(ends[k - 1]) if len(ends) >= k else len(s)
    if cut < 2:
        raise DataError(f"{where}: keeping {keep:g} of the strokes leaves fewer than 2 points; raise --keep")
    return s[:cut]


@verb("complete")
def cmd_complete(a: argparse.Namespace) -> int:
    """An incomplete sketch -> ``--n`` continuations (the input drawn grey, the new strokes red)."""
    from .creative import complete, join, two_tone_image, two_tone_svg
    from .render import save_png, save_svg

    lm = _load(a)
    (x,) = _inputs(a.input, a, lm, [a.index])
    x = _truncate(x, a.keep, f"{a.input}[{a.index}]")
    z = a.z if lm.config.conditional else None
    if a.z and not lm.config.conditional:
        _note(f"--z {a.z} ignored: model {lm.name} is decoder-only (it completes from the strokes alone)")
    conts = complete(lm, x, n=a.n, temperature=a.temperature, z=z, seed=a.seed, greedy=a.greedy,
                     temperature_mode=a.temperature_mode)
    full = [join(x, c) for c in conts]
    out = _outdir(a)
    items = [(x, len(x))] + [(f, len(x)) for f in full]
    ncols = min(len(items), a.cols)
    save_svg(out / "completions.svg", two_tone_svg(items, ncols=ncols, cell=a.cell))
    save_png(out / "completions.png", two_tone_image(items, ncols=ncols, cell=a.cell))
    written = [str(out / "completions.svg"), str(out / "completions.png")]
    written.append(_save_npz(out / "completions.npz", {"input": [x], "continuation": conts, "full": full}))
    return _done(written)


def _palette(text: str | None) -> list:
    if not text:
        return [(0, 0, 0)]
    from PIL import ImageColor

    cols = []
    for c in text.split(","):
        try:
            cols.append(ImageColor.getrgb(c.strip()))
        except ValueError:
            raise DataError(f"--palette: {c.strip()!r} is not a colour (use names or #rrggbb)") from None
    return cols


@verb("design-sheet")
def cmd_design_sheet(a: argparse.Namespace) -> int:
    """Many similar but unique variations: a grid sheet and a seamless tile (SVG and PNG)."""
    from PIL import ImageColor

    from .creative import design_sheet, tile_image, tile_svg
    from .render import save_png, save_svg

    lm = _load(a)
    motif = prefix = None
    if a.input:
        (x,) = _inputs(a.input, a, lm, [a.index])
        if a.prefix or not lm.config.conditional:
            if not lm.config.conditional and not a.prefix:
                _note(f"model {lm.name} is decoder-only: the input primes every motif (as with --prefix)")
            prefix = x
        else:
            motif = x
    elif a.prefix:
        raise DataError("--prefix needs an input sketch")
    if a.offset and a.rows % 2:
        raise DataError(f"offset rows need an even --rows to tile seamlessly, got {a.rows}; use an even number or --no-offset")
    res = design_sheet(lm, motif, rows=a.rows, cols=a.cols, sigma=a.sigma, temperature=a.temperature, seed=a.seed,
                       prefix=prefix, temperature_mode=a.temperature_mode)
    out = _outdir(a)
    written = _write_grid(out, "sheet", res.sketches, a.cols, None, a.cell)
    colors = _palette(a.palette)
    try:
        bg = ImageColor.getrgb(a.background)
    except ValueError:
        raise DataError(f"--background: {a.background!r} is not a colour") from None
    kw = {"motif_scale": a.motif_scale, "stroke_width": a.stroke_width}
    save_png(out / "tile.png", tile_image(res.sketches, a.rows, a.cols, cell=a.cell, offset=a.offset, colors=colors,
                                          background=bg, **kw))
    save_svg(out / "tile.svg", tile_svg(res.sketches, a.rows, a.cols, cell=a.cell, offset=a.offset, colors=colors,
                                        background=a.background, **kw))
    written += [str(out / "tile.png"), str(out / "tile.svg")]
    written.append(_save_npz(out / "sheet.npz", {"sheet": res.sketches}))
    if res.z is not None:
        _save_npy(out / "sheet_z.npy", res.z)
        written.append(str(out / "sheet_z.npy"))
    from .creative import _atomic_write

    _atomic_write(out / "sheet.json", json.dumps({"model": lm.name, **res.info}, indent=1).encode())
    written.append(str(out / "sheet.json"))
    return _done(written)


@verb("animate")
def cmd_animate(a: argparse.Namespace) -> int:
    """A sketch drawn stroke by stroke (GIF + self-drawing SVG), or ``--frames``: every sketch
    of the file is one frame (e.g. ``interpolation.npz --split path``)."""
    from .creative import frames_gif, frames_svg
    from .data.io import read_strokes_file
    from .render import animate_gif, animate_svg, save_svg

    sk = read_strokes_file(a.input, split=a.split)
    out = _outdir(a)
    stem = Path(a.input).stem
    if a.frames:
        if a.limit:
            sk = sk[: a.limit]
        n = frames_gif(sk, out / f"{stem}_frames.gif", size=a.frame_size, frame_ms=a.frame_ms)
        save_svg(out / f"{stem}_frames.svg", frames_svg(sk, size=a.frame_size, frame_s=a.frame_ms / 1000.0))
        print(f"{n} frames")
        return _done([str(out / f"{stem}_frames.gif"), str(out / f"{stem}_frames.svg")])
    (s,) = _pick(sk, [a.index], a.input)
    if len(s) < 2:
        raise DataError(f"{a.input}[{a.index}]: the sketch has {len(s)} point(s); nothing to animate")
    n = animate_gif(s, out / f"{stem}_{a.index}.gif", size=a.frame_size, every=a.every)
    save_svg(out / f"{stem}_{a.index}.svg", animate_svg(s, size=a.frame_size, duration=a.duration))
    print(f"{n} frames")
    return _done([str(out / f"{stem}_{a.index}.gif"), str(out / f"{stem}_{a.index}.svg")])


# --------------------------------------------------------------------------- parsers
def _common(sp: argparse.ArgumentParser, model: bool = True, sampling: bool = True) -> None:
    if model:
        sp.add_argument("--model", required=True, help="checkpoint (.pt), weights (.safetensors), Magenta .gen.json, or shipped name")
        sp.add_argument("--device", default="cpu", help="cpu (default) or cuda")
        sp.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 1)")
        sp.add_argument("--size", default="auto",
                        help="input size in data units: auto (svg/json -> 255, npz/ndjson kept), none, or N "
                             "(Magenta's QuickDraw models fit real drawings best at about 765)")
    if sampling:
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--temperature-mode", default="paper", choices=["paper", "magenta_py", "magenta_js"],
                        help="how temperature scales the mixture (see sketchrnn.api)")
    sp.add_argument("--split", default="test", help="split of .npz inputs")
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--cell", type=int, default=128, help="grid cell size in pixels")
    sp.add_argument("--verbose", action="store_true", help="print every change made to the inputs")


def add_parsers(sub) -> None:
    """Add the creative verbs to the ``sketchrnn`` sub-parsers."""
    fmt = "input: .npz (--split), .ndjson, .json strokes or .svg"
    r = sub.add_parser("reconstruct", help="encode sketches and decode them at several temperatures (conditional models)")
    r.add_argument("input", help=fmt)
    _common(r)
    r.add_argument("--indices", default=None, help="comma-separated sketch indices (default: the first --limit)")
    r.add_argument("--limit", type=int, default=4)
    r.add_argument("--n", type=int, default=4, help="reconstructions per temperature")
    r.add_argument("--temperatures", default="0.1,0.3,0.5,0.7,0.9,1.0")

    i = sub.add_parser("interpolate", help="decode along the latent path between two sketches (conditional models)")
    i.add_argument("input", help=fmt)
    i.add_argument("input_b", nargs="?", default=None, help="second file (default: a second sketch of the first)")
    _common(i)
    i.add_argument("--index-a", type=int, default=0)
    i.add_argument("--index-b", type=int, default=None, help="default: 0 with a second file, else 1")
    i.add_argument("--k", type=int, default=8, help="steps, both ends included")
    i.add_argument("--method", default="slerp", choices=["slerp", "lerp"])
    i.add_argument("--temperature", type=float, default=0.1)
    i.add_argument("--greedy", action="store_true", help="most likely point at each step (no randomness)")
    i.add_argument("--frame-size", type=int, default=256)
    i.add_argument("--frame-ms", type=int, default=150)

    an = sub.add_parser("analogy", help="latent arithmetic z(A) - z(B) + z(C) (conditional models)")
    for name in ("a", "b", "c"):
        an.add_argument(name, help=fmt)
    _common(an)
    for name in ("a", "b", "c"):
        an.add_argument(f"--index-{name}", type=int, default=0)
    an.add_argument("--n", type=int, default=4)
    an.add_argument("--temperature", type=float, default=0.1)
    an.add_argument("--greedy", action="store_true")
    an.add_argument("--strength", type=float, default=1.0,
                    help="z(C) + STRENGTH * (z(A) - z(B)); 1 is the paper's (default: 1)")
    for name in ("a", "b"):
        an.add_argument(f"--mean-{name}", type=int, default=0, metavar="K",
                        help=f"use the mean z of the first K sketches of {name.upper()} (paired files of many "
                             f"drawings give a steadier direction); 0: the one sketch --index-{name} (default)")

    c = sub.add_parser("complete", help="continue an incomplete sketch (conditional or decoder-only models)")
    c.add_argument("input", help=fmt)
    _common(c)
    c.add_argument("--index", type=int, default=0)
    c.add_argument("--keep", type=float, default=1.0, help="use only this fraction of the input's strokes (demo of unfinished drawings)")
    c.add_argument("--n", type=int, default=8)
    c.add_argument("--temperature", type=float, default=0.5)
    c.add_argument("--z", default=None, choices=["input", "prior"], help="conditional models: z of the input (default) or from the prior")
    c.add_argument("--greedy", action="store_true")
    c.add_argument("--cols", type=int, default=5)

    d = sub.add_parser("design-sheet", help="a grid of similar but unique variations and a seamless tile")
    d.add_argument("input", nargs="?", default=None, help=fmt + " (optional: motif to vary, or prefix)")
    _common(d)
    d.add_argument("--index", type=int, default=0)
    d.add_argument("--prefix", action="store_true", help="prime the decoder with the input instead of encoding it")
    d.add_argument("--rows", type=int, default=4)
    d.add_argument("--cols", type=int, default=6)
    d.add_argument("--sigma", type=float, default=0.25, help="latent noise (conditional) or log-temperature jitter (decoder-only)")
    d.add_argument("--temperature", type=float, default=0.3)
    d.add_argument("--no-offset", dest="offset", action="store_false", help="plain grid instead of offset (brick) rows")
    d.add_argument("--palette", default=None, help="comma-separated motif colours, e.g. '#1b4965,#62b6cb'")
    d.add_argument("--background", default="white")
    d.add_argument("--motif-scale", type=float, default=0.8, help="motif size as a fraction of the cell")
    d.add_argument("--stroke-width", type=float, default=2.0)

    m = sub.add_parser("animate", help="a sketch drawn stroke by stroke (GIF + SVG), or a file's sketches as frames")
    m.add_argument("input", help=fmt)
    m.add_argument("--split", default="test")
    m.add_argument("--out", required=True)
    m.add_argument("--index", type=int, default=0)
    m.add_argument("--frames", action="store_true", help="every sketch is one frame (e.g. an interpolation .npz, --split path)")
    m.add_argument("--limit", type=int, default=None)
    m.add_argument("--frame-size", type=int, default=256)
    m.add_argument("--frame-ms", type=int, default=150, help="--frames: ms per frame")
    m.add_argument("--every", type=int, default=2, help="points drawn per GIF frame")
    m.add_argument("--duration", type=float, default=3.0, help="seconds the SVG takes to draw itself")


if add_parsers not in _EXTRA_PARSERS:
    _EXTRA_PARSERS.append(add_parsers)
