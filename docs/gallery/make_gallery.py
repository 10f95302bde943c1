"""Regenerate docs/gallery/ (pictures + README.md) from the models at hand.

    python docs/gallery/make_gallery.py                       # Magenta decoder-only sections
    python docs/gallery/make_gallery.py --model runs/cat/best.pt --data cat.npz
                                                              # + conditional-model sections

Sections:
* Magenta decoder-only models (``<shared>/models/magenta/*.gen.json``, loaded with
  :func:`sketchrnn.checkpoint.load_model`): samples at several temperatures, completions
  of halves of real QuickDraw drawings (``<shared>/data/quickdraw/simplified``), a design
  sheet with a seamless tile, and an animation of a sketch being drawn. Skipped with a
  note when the shared folder is absent.
* Each ``--model`` (a conditional model: checkpoint, .safetensors or shipped name) with
  ``--data`` (a sketch-rnn .npz whose ``--split`` gives the inputs): reconstructions at
  several temperatures, latent interpolations (PNG + GIF), an analogy, and a design sheet
  around one input. Skipped with a note when no conditional model is given.

Everything is seeded; PNGs are kept under 300 KB. The README lists what each image shows,
with which model and temperature (temperature mode "paper", see sketchrnn.api).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MAX_PNG_BYTES = 300_000
SCALE = 3.0  # Magenta's QuickDraw models fit real 0-255 drawings best about 3x enlarged (README)


@dataclass
class Entry:
    section: str
    file: str
    text: str


def _log(msg: str) -> None:
    print(msg, flush=True)


def _save_png(path: Path, img) -> None:
    """Save a PNG (atomic) and shrink it until it is under MAX_PNG_BYTES."""
    from PIL import Image

    from sketchrnn.render import save_png

    save_png(path, img)
    while path.stat().st_size > MAX_PNG_BYTES:
        img = img.resize((int(img.width * 0.85), int(img.height * 0.85)), Image.Resampling.LANCZOS)
        save_png(path, img)


def _quickdraw(shared: Path, cls: str) -> list[np.ndarray]:
    from sketchrnn.data.io import read_strokes_file

    return read_strokes_file(shared / "data" / "quickdraw" / "simplified" / f"{cls}.ndjson")


def _first_half(s: np.ndarray) -> np.ndarray:
    """The first half of the strokes (rounded up) of a drawing."""
    ends = np.flatnonzero(s[:, 2] > 0.5)
    k = (len(ends) + 1) // 2
    return s[: ends[k - 1] + 1]


# --------------------------------------------------------------------------- Magenta decoder-only
def magenta_sections(shared: Path, out: Path, seed: int, entries: list[Entry]) -> None:
    from sketchrnn import creative as C
    from sketchrnn.api import sample
    from sketchrnn.checkpoint import load_model
    from sketchrnn.render import animate_gif, grid_image

    mdir = shared / "models" / "magenta"
    temps = [0.1, 0.3, 0.5, 0.7, 1.0]
    ncol = 6
    # rain.gen.json is left out: it scores real QuickDraw rain drawings at 175 nats per point
    # (cat: 8.1) and draws jagged lines, not clouds and drops.
    for name in ("cat", "pig", "rabbit", "yoga", "catpig"):
        f = mdir / f"{name}.gen.json"
        if not f.is_file():
            _log(f"note: {f} not found; skipping its samples")
            continue
        lm = load_model(f)
        sk, labels = [], []
        for j, tau in enumerate(temps):
            sk += sample(lm, n=ncol, temperature=tau, seed=seed + 100 * j)
            labels += [f"t={tau:g}"] * ncol
        fn = f"samples_{name}.png"
        _save_png(out / fn, grid_image(sk, ncols=ncol, cell=96, labels=labels, stroke_width=1.3))
        entries.append(Entry("Samples (Magenta decoder-only models)", fn,
                             f"`{name}.gen.json` (Magenta's decoder-only LSTM, imported): {ncol} samples per row at "
                             f"temperature {', '.join(f'{t:g}' for t in temps)} (one row each, top to bottom), "
                             f"seeds {seed}+100*row."))
        _log(f"wrote {fn}")

    # completions of real halves (Sec. 4.4 of the paper, decoder primed with the strokes).
    # The Magenta models fit the 0-255 simplified drawings best when scaled about 3x (see
    # README), so the drawings are enlarged by SCALE before the model reads them.
    tau = 0.3
    for name, picks in (("cat", (0, 2, 5, 9)), ("pig", (0, 1, 3, 6))):
        f = mdir / f"{name}.gen.json"
        if not f.is_file():
            continue
        lm = load_model(f)
        drawings = [d * np.array([SCALE, SCALE, 1], np.float32) for d in _quickdraw(shared, name)]
        items = []
        for r, i in enumerate(picks):
            half = _first_half(drawings[i])
            conts = C.complete(lm, half, n=5, temperature=tau, seed=seed + r)
            items.append((drawings[i], len(drawings[i])))
            items.append((half, len(half)))
            items += [(C.join(half, c), len(half)) for c in conts]
        fn = f"complete_{name}.png"
        _save_png(out / fn, C.two_tone_image(items, ncols=7, cell=110, stroke_width=1.6))
        entries.append(Entry("Completions of real drawings (Magenta decoder-only models)", fn,
                             f"`{name}.gen.json`, temperature {tau:g}: each row is one human QuickDraw drawing "
                             f"(`simplified/{name}.ndjson`, drawings {', '.join(map(str, picks))}, enlarged {SCALE:g}x "
                             "to about 765 units), first the whole drawing, then its first half of the strokes (grey), "
                             "then 5 continuations drawn by the model (red) after reading the grey strokes."))
        _log(f"wrote {fn}")
        if name == "cat":
            items = []
            raw = _quickdraw(shared, name)
            for i in (0, 5):
                for k in (1.0, 2.0, 3.0):
                    half = _first_half(raw[i] * np.array([k, k, 1], np.float32))
                    conts = C.complete(lm, half, n=4, temperature=tau, seed=seed)
                    items.append((half, len(half)))
                    items += [(C.join(half, c), len(half)) for c in conts]
            fn = "complete_cat_scale.png"
            _save_png(out / fn, C.two_tone_image(items, ncols=5, cell=100, stroke_width=1.5))
            entries.append(Entry("Completions of real drawings (Magenta decoder-only models)", fn,
                                 f"Why the enlargement: the same two halves (cat drawings 0 and 5) at 1x (255 units, "
                                 f"the size of Google's simplified files), 2x and 3x (rows), 4 continuations each "
                                 f"(`cat.gen.json`, temperature {tau:g}, seed {seed}). At 1x the model takes the face for "
                                 "a small head and draws a large body; at 3x it completes the face. "
                                 "Measured: the model's NLL per point on the 25 real cat drawings, in 255-scale units, "
                                 "is 8.10 at 1x, 7.85 at 2x, 7.82 at 3x, 7.86 at 4x (pig: 7.52, 7.39, 7.37, 7.41)."))
            _log(f"wrote {fn}")

    # a hand-written SVG (curves, relative commands, a group transform) completed
    svg_in = HERE / "input_cat_head.svg"
    f = mdir / "cat.gen.json"
    if f.is_file() and svg_in.is_file():
        from sketchrnn.data.io import fit_sketch, read_strokes_file

        lm = load_model(f)
        (x,) = read_strokes_file(svg_in)
        x, _ = fit_sketch(x, lm.config.max_seq_len, size=255.0 * SCALE)
        conts = C.complete(lm, x, n=9, temperature=tau, seed=seed)
        items = [(x, len(x))] + [(C.join(x, c), len(x)) for c in conts]
        fn = "complete_svg_cat.png"
        _save_png(out / fn, C.two_tone_image(items, ncols=5, cell=120, stroke_width=1.6))
        entries.append(Entry("Completions of real drawings (Magenta decoder-only models)", fn,
                             f"Your own drawing: `input_cat_head.svg` (hand-written SVG paths with cubic curves, "
                             f"relative lines and a group transform), read with `sketchrnn.data.io.read_strokes_file`, "
                             f"scaled to 765 units, then 9 continuations by `cat.gen.json` at temperature {tau:g}, "
                             f"seed {seed}."))
        _log(f"wrote {fn}")

    # design sheet: decoder-only -> different seeds, temperature jittered around 0.25
    f = mdir / "pig.gen.json"
    if f.is_file():
        from PIL import Image

        lm = load_model(f)
        rows, cols, cell = 4, 5, 110
        d = C.design_sheet(lm, None, rows=rows, cols=cols, sigma=0.3, temperature=0.25, seed=seed)
        palette = [(209, 73, 91), (0, 121, 140), (237, 174, 73), (48, 99, 142)]
        tile = C.tile_image(d.sketches, rows, cols, cell=cell, colors=palette, background=(253, 246, 227))
        _save_png(out / "tile_pig.png", tile)
        w, h = tile.size
        prev = Image.new("RGB", (2 * w, 2 * h))
        for i in range(2):
            for j in range(2):
                prev.paste(tile, (i * w, j * h))
        _save_png(out / "tile_pig_2x2.png", prev.resize((w, h), Image.Resampling.LANCZOS))
        t = d.info["temperatures"]
        entries.append(Entry("Design sheet and seamless tile", "tile_pig.png",
                             f"`pig.gen.json`: {rows * cols} motifs, each its own seed, temperature 0.25 x exp(0.3 eps) "
                             f"(from {min(t):.2f} to {max(t):.2f}), on a lattice with offset rows; motifs crossing an "
                             "edge are drawn again at the opposite edge, so the tile repeats without seams."))
        entries.append(Entry("Design sheet and seamless tile", "tile_pig_2x2.png",
                             "The tile above repeated 2 x 2 (shown at half size): no seams."))
        _log("wrote tile_pig.png, tile_pig_2x2.png")

    f = mdir / "cat.gen.json"
    if f.is_file():
        lm = load_model(f)
        (s,) = sample(lm, n=1, temperature=0.25, seed=seed + 3)
        animate_gif(s, out / "draw_cat.gif", size=200, every=3, frame_ms=50, hold_ms=1500)
        entries.append(Entry("Animation", "draw_cat.gif",
                             f"`cat.gen.json`, temperature 0.25, seed {seed + 3}: the sample drawn point by point "
                             "(`sketchrnn animate` writes the same as GIF and self-drawing SVG)."))
        _log("wrote draw_cat.gif")


# --------------------------------------------------------------------------- conditional models
def conditional_sections(spec: str, data: str, split: str, out: Path, seed: int, entries: list[Entry],
                         analogy_idx: tuple[int, int, int]) -> None:
    from sketchrnn import creative as C
    from sketchrnn.checkpoint import load_model
    from sketchrnn.data.io import read_strokes_file
    from sketchrnn.render import grid_image

    lm = load_model(spec)
    if not lm.config.conditional:
        _log(f"note: {spec} is decoder-only; the conditional sections need a VAE model - skipped")
        return
    tag = Path(lm.name).stem.replace(" ", "_")
    xs = [s for s in read_strokes_file(data, split=split) if 2 <= len(s) <= lm.config.max_seq_len]
    if len(xs) < 4:
        _log(f"note: {data} ({split}) holds fewer than 4 usable sketches; conditional sections skipped")
        return
    sec = f"Conditional model `{lm.name}`"
    src = f"inputs from `{Path(data).name}` ({split} split)"

    temps = list(C.DEFAULT_TEMPERATURES)
    n = 4
    res = C.reconstructions(lm, xs[:3], n=n, temperatures=temps, seed=seed)
    cells, labels = [], []
    for i, per_t in enumerate(res):
        for tau, recs in zip(temps, per_t):
            cells += [xs[i]] + recs
            labels += [f"input {i}"] + [f"t={tau:g}"] * n
    fn = f"reconstruct_{tag}.png"
    _save_png(out / fn, grid_image(cells, ncols=n + 1, cell=80, labels=labels, stroke_width=1.2))
    entries.append(Entry(sec, fn, f"Reconstructions, {src}: per input, one row per temperature "
                                  f"({', '.join(f'{t:g}' for t in temps)}); first cell the input, then {n} decodings of z = mu(x)."))

    k = 8
    pairs = [(0, 1), (2, 3)]
    cells, labels = [], []
    for a, b in pairs:
        r = C.interpolate(lm, xs[a], xs[b], k=k, temperature=0.1, seed=seed)
        cells += [xs[a]] + r.sketches + [xs[b]]
        labels += ["A"] + [f"{t:.2f}" for t in r.info["t"]] + ["B"]
        if (a, b) == pairs[0]:
            C.frames_gif(r.sketches, out / f"interpolate_{tag}.gif", size=160)
    fn = f"interpolate_{tag}.png"
    _save_png(out / fn, grid_image(cells, ncols=k + 2, cell=90, labels=labels, stroke_width=1.3))
    entries.append(Entry(sec, fn, f"Spherical interpolation between two inputs ({src}, pairs {pairs}), {k} steps, "
                                  f"temperature 0.1, the same seed at every step; the ends of each row are the inputs."))
    entries.append(Entry(sec, f"interpolate_{tag}.gif", "The first interpolation as an animation (ping-pong)."))

    ia, ib, ic = analogy_idx
    r = C.analogy(lm, xs[ia], xs[ib], xs[ic], n=4, temperature=0.1, seed=seed)
    fn = f"analogy_{tag}.png"
    _save_png(out / fn, grid_image([xs[ia], xs[ib], xs[ic]] + r.sketches, ncols=7, cell=100,
                                   labels=["A", "- B", "+ C"] + ["="] * 4))
    entries.append(Entry(sec, fn, f"Latent arithmetic z(A) - z(B) + z(C) ({src}, sketches {ia}, {ib}, {ic}), "
                                  "decoded 4 times at temperature 0.1."))

    rows, cols = 4, 5
    d = C.design_sheet(lm, xs[0], rows=rows, cols=cols, sigma=0.25, temperature=0.3, seed=seed)
    fn = f"sheet_{tag}.png"
    _save_png(out / fn, C.tile_image(d.sketches, rows, cols, cell=100, colors=[(40, 40, 40), (170, 40, 60)]))
    entries.append(Entry(sec, fn, "Design sheet: z around mu(input 0) with Gaussian noise sigma 0.25, temperature 0.3, "
                                  "as a seamless tile with offset rows."))
    _log(f"wrote conditional sections for {lm.name}")


# --------------------------------------------------------------------------- README
def write_readme(out: Path, entries: list[Entry], skipped: list[str]) -> None:
    lines = ["# Gallery", "",
             ("Generated by `python docs/gallery/make_gallery.py` (seeded; rerun to regenerate). Sampling uses "
             "temperature mode `paper` (mixture and pen logits / tau, sigma x sqrt(tau)); see `sketchrnn.api`."),
             ("The Magenta models are Google's pretrained decoder-only LSTMs (`@magenta/sketch` format), loaded "
             "with `sketchrnn.checkpoint.load_model`; the human drawings are the QuickDraw simplified files "
             "(CC BY 4.0, Google). `rain.gen.json` is not shown: it scores real QuickDraw rain drawings at "
             "175 nats per point (cat: 8.1) and draws jagged lines rather than clouds and drops."), ""]
    if skipped:
        lines += ["Not generated in this run:", ""] + [f"- {s}" for s in skipped] + [""]
    section = None
    for e in entries:
        if e.section != section:
            section = e.section
            lines += [f"## {section}", ""]
        lines += [f"![{e.file}]({e.file})", "", f"**{e.file}** — {e.text}", ""]
    lines += ["## Make your own", "",
              "```sh",
              "# continue your own drawing (SVG or JSON strokes) with a Magenta model; --size 765 suits them best",
              "sketchrnn complete my_cat.svg --model ../shared/models/magenta/cat.gen.json --size 765 --n 8 --out out/",
              "# half of a QuickDraw drawing (--keep 0.5 of its strokes), grey input, red continuations",
              "sketchrnn complete cat.ndjson --index 5 --keep 0.5 --size 765 --model cat.gen.json --out out/",
              "# a seamless wallpaper tile (tile.png / tile.svg) and a design sheet",
              ("sketchrnn design-sheet --model pig.gen.json --rows 4 --cols 5 --temperature 0.25 "
              "--palette '#d1495b,#00798c,#edae49,#30638e' --background '#fdf6e3' --out out/"),
              "# conditional models: reconstructions, interpolation (PNG, GIF, animated SVG), analogy",
              "sketchrnn reconstruct data.npz --model best.pt --limit 3 --out out/",
              "sketchrnn interpolate a.svg b.svg --model best.pt --k 10 --out out/",
              "sketchrnn analogy pig.svg pig_head.svg cat_head.svg --model best.pt --out out/",
              "# a drawing drawn stroke by stroke (GIF + self-drawing SVG)",
              "sketchrnn animate out/completions.npz --split full --index 0 --out out/",
              "```", ""]
    text = "\n".join(lines)
    tmp = out / ".README.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out / "README.md")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE), help="output folder (default: docs/gallery)")
    p.add_argument("--shared", default=os.environ.get("SKETCHRNN_SHARED", str(REPO.parent / "shared")),
                   help="the shared data folder (models/magenta, data/quickdraw)")
    p.add_argument("--model", action="append", default=[], help="a conditional model (repeatable)")
    p.add_argument("--data", action="append", default=[], help="sketch-rnn .npz with inputs, one per --model "
                   "(or one for all)")
    p.add_argument("--split", default="test")
    p.add_argument("--analogy", default="0,1,2", help="indices A,B,C of the analogy inputs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-magenta", action="store_true", help="skip the Magenta sections")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    skipped: list[str] = []
    shared = Path(a.shared)
    if a.no_magenta:
        skipped.append("Magenta sections (--no-magenta)")
    elif (shared / "models" / "magenta").is_dir():
        magenta_sections(shared, out, a.seed, entries)
    else:
        msg = f"Magenta sections: {shared / 'models' / 'magenta'} not found (give --shared)"
        _log("note: " + msg)
        skipped.append(msg)
    if not a.model:
        msg = ("conditional-model sections (reconstructions, interpolations, analogy, design sheet around an input): "
               "no conditional model given (use --model M --data D.npz)")
        _log("note: " + msg)
        skipped.append(msg)
    for i, spec in enumerate(a.model):
        if not a.data:
            p.error("--model needs --data (a sketch-rnn .npz with input sketches)")
        data = a.data[i] if i < len(a.data) else a.data[-1]
        idx = tuple(int(x) for x in a.analogy.split(","))
        conditional_sections(spec, data, a.split, out, a.seed, entries, idx)  # type: ignore[arg-type]
    write_readme(out, entries, skipped)
    big = [f.name for f in out.glob("*.png") if f.stat().st_size > MAX_PNG_BYTES]
    if big:
        _log(f"warning: PNGs over {MAX_PNG_BYTES} bytes: {big}")
    _log(f"wrote {out / 'README.md'} ({len(entries)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
