"""Write the training data a GPU chunk carries, and unpack it on the GPU machine.

../shared does not travel to the GPU machine and a call carries 64 MiB in all (the tracked
files take ~37 of them), so the data goes in the tightest exact form we found:

    python benchmarks/make_gpu_data.py cat                 # -> gpu_data/cat.sketches.xz (~24.4 MiB:
                                                           #    all 70,000 / 2,500 / 2,500 sketches)
    python benchmarks/make_gpu_data.py cat --format npz --train 40000
                                                           # -> gpu_data/cat.npz (19.5 MiB: the
                                                           #    subset the first chunks trained on)
    python benchmarks/make_gpu_data.py --expand gpu_data/cat.sketches.xz
                                                           # -> gpu_data/expanded/cat.npz (on the GPU machine;
                                                           #    benchmarks/gpu_session.sh does it)

``.sketches.xz`` is one LZMA stream: a magic line, a JSON header line (format version, split
names and sketch counts), then the sketch lengths (uint32), the float16 dx / dy values as four
byte planes (low and high byte of each column: the exponent bytes compress far better apart),
and the pen bits (packbits). Only files whose offsets are exactly float16 can be written so
(../shared/data/distilled is); anything else is refused. Expanding gives back an ``.npz`` of
object arrays whose sketches ``load_npz`` reads as exactly the source's float32 values.

A resumed model keeps the scale factor stored in its checkpoint, so switching a run to other
data (e.g. from the 40,000-sketch subset to the whole split) is safe; the trainer asks for
``--new-data`` once when the data's size changes (gpu_session.sh: ``NEW_DATA=1``).
``gpu_data/`` is ignored by git (.git/info/exclude) but travels with a call (``carry``): expand
only on the GPU machine, or ``gpu_data/expanded/`` travels too and the call is refused for size.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

MAGIC = b"sketchrnn-gpu-data\n"
VERSION = 1


def _objects(seqs: list) -> np.ndarray:
    """Object array of (n, 3) arrays in the narrowest dtype that holds them exactly
    (the distilled files store float16 offsets, QuickDraw's int16)."""
    arr = np.empty(len(seqs), dtype=object)
    for i, s in enumerate(seqs):
        s = np.asarray(s)
        for dt in (np.int16, np.float16, np.float32):
            if np.array_equal(s.astype(dt).astype(s.dtype), s):
                s = s.astype(dt)
                break
        arr[i] = s
    return arr


def encode(splits: dict[str, list]) -> bytes:
    """{split: [(n, 3) stroke-3 arrays]} -> the .sketches.xz bytes (exact float16 offsets only)."""
    names = list(splits)
    seqs = [np.asarray(s, dtype=np.float32) for k in names for s in splits[k]]
    pts = np.concatenate(seqs) if seqs else np.zeros((0, 3), np.float32)
    xy = pts[:, :2].astype(np.float16)
    if not np.array_equal(xy.astype(np.float32), pts[:, :2]):
        raise ValueError("offsets are not all exact float16 values; use --format npz")
    pen = pts[:, 2]
    if not np.isin(pen, (0.0, 1.0)).all():
        raise ValueError("pen states other than 0 and 1; use --format npz")
    header = {"version": VERSION, "splits": {k: len(splits[k]) for k in names}, "points": int(len(pts))}
    lengths = np.array([len(s) for s in seqs], dtype="<u4")
    planes = np.ascontiguousarray(xy.astype("<f2").view(np.uint8).reshape(-1, 2, 2).transpose(2, 1, 0))  # (byte, col, P)
    payload = b"".join([MAGIC, json.dumps(header).encode() + b"\n", lengths.tobytes(), planes.tobytes(),
                        np.packbits(pen.astype(np.uint8)).tobytes()])
    return lzma.compress(payload, preset=9 | lzma.PRESET_EXTREME)


def decode(blob: bytes) -> dict[str, list[np.ndarray]]:
    """The .sketches.xz bytes -> {split: [(n, 3) float16 stroke-3 arrays]}."""
    raw = lzma.decompress(blob)
    if not raw.startswith(MAGIC):
        raise ValueError("not a sketchrnn GPU data file (bad magic)")
    pos = len(MAGIC)
    end = raw.index(b"\n", pos)
    header = json.loads(raw[pos:end])
    if header.get("version") != VERSION:
        raise ValueError(f"GPU data format version {header.get('version')!r}, this script reads {VERSION}")
    pos = end + 1
    n = sum(header["splits"].values())
    p = int(header["points"])
    if pos + 4 * n + 4 * p + (p + 7) // 8 != len(raw):
        raise ValueError("GPU data file is inconsistent (its header's counts and its size disagree)")
    lengths = np.frombuffer(raw, "<u4", n, pos).astype(np.int64)
    pos += 4 * n
    planes = np.frombuffer(raw, np.uint8, 4 * p, pos).reshape(2, 2, p)
    pos += 4 * p
    pen = np.unpackbits(np.frombuffer(raw, np.uint8, (p + 7) // 8, pos))[:p]
    if int(lengths.sum()) != p:
        raise ValueError("GPU data file is inconsistent (the sketch lengths do not add up to its points)")
    xy = np.ascontiguousarray(planes.transpose(2, 1, 0)).view("<f2").reshape(p, 2)
    pts = np.concatenate([xy, pen[:, None].astype(np.float16)], axis=1)  # (P, 3) float16
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    out, i = {}, 0
    for k, count in header["splits"].items():
        out[k] = [pts[bounds[j]:bounds[j + 1]] for j in range(i, i + count)]
        i += count
    return out


def _write_npz(path: str, splits: dict[str, list], compress: bool = True) -> None:
    tmp = path + ".tmp.npz"
    (np.savez_compressed if compress else np.savez)(tmp, **{k: _objects(v) for k, v in splits.items()})
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", nargs="?", help="class file in ../shared/data/distilled/ (cat, pig, yoga, rabbit)")
    ap.add_argument("--train", type=int, default=None, help="first N training sketches (default: all)")
    ap.add_argument("--format", choices=("xz", "npz"), default="xz")
    ap.add_argument("--src", default=None, help="source .npz (default ../shared/data/distilled/NAME.npz)")
    ap.add_argument("--out-dir", default="gpu_data")
    ap.add_argument("--expand", metavar="FILE.sketches.xz", help="unpack DIR/NAME.sketches.xz into DIR/expanded/NAME.npz")
    a = ap.parse_args()
    if a.expand:
        src = a.expand
        if not src.endswith(".sketches.xz"):
            ap.error("--expand takes a .sketches.xz file")
        with open(src, "rb") as f:
            splits = decode(f.read())
        # DIR/expanded/NAME.npz: the file name is the class name a trained model records
        # (NAME.sketches.npz gave models of class "cat.sketches"); the folder keeps it apart
        # from an older DIR/NAME.npz
        name = os.path.basename(src)[: -len(".sketches.xz")]
        os.makedirs(os.path.join(os.path.dirname(src), "expanded"), exist_ok=True)
        path = os.path.join(os.path.dirname(src), "expanded", f"{name}.npz")
        _write_npz(path, splits, compress=False)  # on the GPU machine's disk: no need to deflate
        print(f"wrote {path}: " + " / ".join(f"{len(v)} {k}" for k, v in splits.items()))
        return
    if not a.name:
        ap.error("give a class name, or --expand FILE")
    from sketchrnn.data import load_npz

    src = a.src or os.path.join("..", "shared", "data", "distilled", f"{a.name}.npz")
    splits = load_npz(src)
    out = {"train": splits["train"][: a.train], "valid": splits["valid"], "test": splits["test"]}
    os.makedirs(a.out_dir, exist_ok=True)
    if a.format == "npz":
        path = os.path.join(a.out_dir, f"{a.name}.npz")
        _write_npz(path, out)
    else:
        path = os.path.join(a.out_dir, f"{a.name}.sketches.xz")
        blob = encode(out)
        back = decode(blob)  # the file must give back exactly what load_npz read
        for k in out:
            assert len(back[k]) == len(out[k]) and all(
                np.array_equal(x.astype(np.float32), np.asarray(y, np.float32)) for x, y in zip(back[k], out[k])), k
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    print(f"wrote {path}: {len(out['train'])} / {len(out['valid'])} / {len(out['test'])} sketches, "
          f"{os.path.getsize(path) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
