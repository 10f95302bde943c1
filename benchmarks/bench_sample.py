"""Batched sampling throughput (sketches/s) and fast-vs-plain agreement at paper size.

* CPU: ``--batch`` sketches (default 1000) of exactly ``--points`` points (end-of-sketch
  suppressed) decoded at once, one thread, with the fast sampler (``api.decode``) and, with
  ``--plain``, the plain oracle (``fast=False``).
* CUDA (when available): the plain decoder on the GPU (the fast sampler is CPU-only), same
  batch; model and z on the device.
* ``--check``: the fast sampler and the oracle fed the same random numbers (see
  tests/test_fast_sampler.py), paper-size untrained models, all three cells: lengths and pen
  states must agree, offsets are compared as max |fast - plain| / max |plain| per sketch.

Run from the repo root: ``python benchmarks/bench_sample.py --check --plain`` (add
``--json-out FILE`` to keep the numbers; ``$OUT/bench_sample.json`` is written when $OUT is set).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sample_cpu import CELLS, cpu_name, paper_model  # noqa: E402


def check(points: int, batch: int = 4) -> dict:
    from sketchrnn.fast.oracle import oracle_decode
    from sketchrnn.fast.sampler import draw_random, get_sampler

    out = {}
    for cell in CELLS:
        lm = paper_model(cell, seed=1)
        z = np.random.default_rng(1).normal(size=(batch, lm.config.z_size)).astype(np.float32)
        worst, n_pts, same = 0.0, 0, True
        for i, kw in enumerate([dict(temperature=1.0), dict(temperature=0.4, temperature_mode="magenta_js")]):
            U, N = draw_random(torch.Generator().manual_seed(i), points, batch)
            fast = get_sampler(lm).decode(torch.from_numpy(z), batch, random=(U, N), max_len=points, allow_end=False,
                                          **kw)
            plain = oracle_decode(lm, z, batch, (U, N), max_len=points, allow_end=False, **kw)
            for a, b in zip(fast, plain):
                same &= a.shape == b.shape and bool((a[:, 2] == b[:, 2]).all())
                worst = max(worst, float(np.abs(a[:, :2] - b[:, :2]).max() / np.abs(b[:, :2]).max()))
                n_pts += len(b)
        out[cell] = {"max_rel_err": worst, "same_pen_and_lengths": same, "points_compared": n_pts}
    return out


def timed(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--plain", action="store_true", help="also time the plain oracle on the CPU (slow)")
    ap.add_argument("--check", action="store_true", help="fast vs plain agreement with shared random numbers")
    ap.add_argument("--no-cuda", action="store_true")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from sketchrnn import api

    res: dict = {"cpu": cpu_name(), "torch": torch.__version__, "threads": 1, "batch": a.batch, "points": a.points,
                 "rows": []}
    if a.check:
        res["check"] = check(a.points)
        for c, r in res["check"].items():
            print(f"check {c:>10}: max rel err {r['max_rel_err']:.2e}, pen/lengths identical: "
                  f"{r['same_pen_and_lengths']} ({r['points_compared']} points)")
    kw = dict(max_len=a.points, allow_end=False, temperature=1.0)
    for cell in [c for c in a.cells.split(",") if c]:
        lm = paper_model(cell)
        z = np.random.default_rng(0).normal(size=(a.batch, lm.config.z_size)).astype(np.float32)
        api.decode(lm, z[:8], seed=0, **kw)  # warm-up
        variants = [("cpu fast", lambda: api.decode(lm, z, seed=1, **kw))]
        if a.plain:
            variants.append(("cpu plain", lambda: api.decode(lm, z, seed=1, fast=False, **kw)))
        if torch.cuda.is_available() and not a.no_cuda:
            from sketchrnn.loaded import LoadedModel

            # a copy: Module.cuda() moves in place, and the CPU rows must keep a CPU model
            lg = LoadedModel(model=copy.deepcopy(lm.model).cuda(), config=lm.config, scale_factor=1.0,
                             class_names=[], name=lm.name)
            api.decode(lg, z[:8], seed=0, **kw)

            def gpu(lg=lg, z=z) -> None:
                api.decode(lg, z, seed=1, **kw)
                torch.cuda.synchronize()
            variants.append((f"cuda plain ({torch.cuda.get_device_name()})", gpu))
        for name, fn in variants:
            t = timed(fn, a.repeats if "plain" not in name or "cuda" in name else 1)
            row = {"cell": cell, "variant": name, "s_per_batch": round(t, 3), "sketches_per_s": round(a.batch / t, 1)}
            res["rows"].append(row)
            print(f"{cell:>10} | {name:>28} | {t:8.2f} s / {a.batch} sketches | {a.batch / t:9.1f} sketches/s",
                  flush=True)
    path = a.json_out or (os.path.join(os.environ["OUT"], "bench_sample.json") if os.environ.get("OUT") else None)
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=2)
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
