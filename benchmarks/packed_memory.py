"""Resident memory of the packed loader on a large synthetic corpus (not a test).

Writes a packed directory of N synthetic sketches (default 2,000,000; int16, 8-120 points
each) with the same streaming writer ``sketchrnn pack`` uses, then, in a fresh process,
opens it with :class:`PackedSketchData` + :class:`PackedBatchLoader` and reads batches
while sampling ``/proc/self/status``: ``RssAnon`` (private memory: what the loader holds)
and ``RssFile`` (file pages mapped in, i.e. page cache; reclaimable, shared between the
ranks of a node). Optionally the same for a small corpus, to show what scales with N.

    python benchmarks/packed_memory.py --n 2000000 --batches 3000 --dir /tmp/packed_bench
    python benchmarks/packed_memory.py --n 200000 --batches 3000 --dir /tmp/packed_bench_small

One thread, one core; results go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def status() -> dict[str, float]:
    """VmRSS, RssAnon, RssFile of this process in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024.0
    return out


def corpus_rss(path: Path) -> float:
    """MiB of the corpus files' pages resident in this process (from /proc/self/smaps)."""
    root = str(path.resolve())
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            inside = len(head) >= 6 and head[5].startswith(root)
        elif inside and line.startswith("Rss:"):
            total += int(head[1])
    return total / 1024.0


def write_corpus(path: Path, n: int, seed: int = 0, chunk: int = 100_000) -> None:
    """A packed directory of ``n`` random int16 sketches in ``train`` (+ a small ``valid``)."""
    from sketchrnn.data.packed import HEADER_NAME, PACKED_FORMAT, PACKED_VERSION, _SplitWriter

    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    splits = {}
    for split, count in (("train", n), ("valid", min(n // 100, 20_000))):
        w = _SplitWriter(path, split, "int16", 1000.0)
        for a in range(0, count, chunk):
            m = min(chunk, count - a)
            lengths = rng.integers(8, 121, m)
            flat = np.empty((int(lengths.sum()), 3), np.int16)  # (sum L, 3)
            flat[:, :2] = rng.integers(-60, 61, (len(flat), 2))
            flat[:, 2] = rng.random(len(flat)) < 0.1
            w.add(np.split(flat, np.cumsum(lengths)[:-1]), int(a // chunk) % 10)
        splits[split] = w.close(path, 10)
    header = {"format": PACKED_FORMAT, "version": PACKED_VERSION, "dtype": "int16",
              "classes": [f"class{k}" for k in range(10)], "max_offset": 1000.0, "splits": splits,
              "sources": [{"file": "synthetic"}]}
    (path / HEADER_NAME).write_text(json.dumps(header, indent=1))


def measure(path: Path, batches: int, batch_size: int, max_seq_len: int, mode: str) -> dict:
    """Runs in its own process: open, build the loader, read ``batches`` batches.
    mode: plain (no augmentation), augment (BatchLoader's sequential augmentation draws),
    keyed (the per-sketch keyed augmentation of a sharded, N > 1 run)."""
    import torch

    torch.set_num_threads(1)
    from sketchrnn.data.packed import PackedBatchLoader, PackedSketchData
    from sketchrnn.distributed import ShardedLoader

    base = status()
    t0 = time.perf_counter()
    data = PackedSketchData(path, "train", max_seq_len)
    scale = data.scale_factor()
    loader = PackedBatchLoader(data, scale, batch_size, max_seq_len, augment=mode != "plain", seed=0)
    if mode == "keyed":
        loader = ShardedLoader(loader, 0, 1)
    loader.next_batch()  # draws the epoch permutation
    t_open = time.perf_counter() - t0
    samples = [{"batches": 1, "corpus": corpus_rss(path), **status()}]
    marks = sorted({b for b in (10, 100, 300, 1000) if b < batches} | {batches}
                   | set(range(0, batches + 1, max(batches // 6, 1))) - {0, 1})
    t1 = time.perf_counter()
    done = 1
    for m in marks:
        while done < m:
            loader.next_batch()
            done += 1
        samples.append({"batches": done, "corpus": corpus_rss(path), **status()})
    dt = time.perf_counter() - t1
    return {"n": len(data), "points": int(data.points.shape[0]), "disk_mib": sum(
        f.stat().st_size for f in path.iterdir()) / 2**20, "scale": scale, "open_s": t_open,
        "ms_per_batch": 1000 * dt / max(done - 1, 1), "baseline": base, "samples": samples, "mode": mode}


def measure_batchloader(path: Path, n: int, max_seq_len: int) -> dict:
    """For contrast: the first ``n`` sketches as SketchData (Python list) + BatchLoader (padded)."""
    import torch

    torch.set_num_threads(1)
    from sketchrnn.data import BatchLoader, SketchData
    from sketchrnn.data.packed import PackedSketchData

    base = status()
    src = PackedSketchData(path, "train", max_seq_len)
    strokes = [src.get(i) for i in range(n)]
    data = SketchData(strokes, np.zeros(n, np.int64), ["x"], 0, max_seq_len)
    loader = BatchLoader(data, data.scale_factor(), 100, max_seq_len)
    loader.next_batch()
    return {"n": n, "baseline": base, "after": status(), "padded_mib": loader.padded.nbytes / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--dir", default="/tmp/packed_bench")
    ap.add_argument("--batches", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--max-seq-len", type=int, default=250)
    ap.add_argument("--keep", action="store_true", help="keep the corpus directory afterwards")
    ap.add_argument("--measure", choices=["plain", "augment", "keyed"], help=argparse.SUPPRESS)
    ap.add_argument("--compare", type=int, default=0,
                    help="also measure the in-memory SketchData + BatchLoader on the first N sketches")
    ap.add_argument("--compare-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    path = Path(a.dir)
    if a.compare_only:
        print(json.dumps(measure_batchloader(path, a.compare, a.max_seq_len)))
        return
    if a.measure:
        print(json.dumps(measure(path, a.batches, a.batch_size, a.max_seq_len, a.measure)))
        return
    t0 = time.perf_counter()
    write_corpus(path, a.n)
    print(f"wrote {a.n} sketches to {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for mode in ("plain", "augment", "keyed"):
        nb = a.batches if mode == "plain" else max(a.batches // 5, 10)
        out = subprocess.run([sys.executable, __file__, "--dir", str(path), "--batches", str(nb), "--batch-size",
                              str(a.batch_size), "--max-seq-len", str(a.max_seq_len), "--measure", mode],
                             env=env, capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        print(f"\n{mode}: N={r['n']:,} sketches, {r['points']:,} points, {r['disk_mib']:.0f} MiB on disk; "
              f"open+permutation {r['open_s']:.2f} s; {r['ms_per_batch']:.2f} ms/batch of {a.batch_size}")
        print(f"  before open: RssAnon {r['baseline']['RssAnon']:.1f} MiB, RssFile {r['baseline']['RssFile']:.1f} MiB")
        print("  batches   VmRSS  RssAnon  RssFile  corpus pages  (MiB)")
        for s in r["samples"]:
            print(f"  {s['batches']:7d} {s['VmRSS']:7.1f} {s['RssAnon']:8.1f} {s['RssFile']:8.1f} {s['corpus']:9.1f}")
    if a.compare:
        out = subprocess.run([sys.executable, __file__, "--dir", str(path), "--compare", str(a.compare),
                              "--max-seq-len", str(a.max_seq_len), "--compare-only"],
                             env=env, capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        print(f"\nin-memory SketchData + BatchLoader, first {r['n']:,} sketches: RssAnon "
              f"{r['baseline']['RssAnon']:.1f} -> {r['after']['RssAnon']:.1f} MiB "
              f"(padded array {r['padded_mib']:.0f} MiB; peak VmHWM {r['after']['VmHWM']:.0f} MiB)")
    if not a.keep:
        shutil.rmtree(path)


if __name__ == "__main__":
    main()
