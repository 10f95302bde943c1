"""CPU sampling latency: ms per 100-point sketch, batch 1, one thread (fast sampler vs plain).

Untrained paper-size models (conditional, enc 256 / dec 512 / z 128 / M 20; HyperLSTM 256 /
32), end-of-sketch suppressed (``allow_end=False``) so that every sketch has exactly
``--points`` points; ``torch.set_num_threads(1)`` and NumPy's BLAS on one thread. Timings
are interleaved (fast and plain alternate) and summarised by the median over repeats; the
spread (min, p90) is printed because the machine may be shared. Run from the repo root:

    python benchmarks/sample_cpu.py --json      # ONE JSON object {"lstm_ms", "layer_norm_ms", "hyper_ms"}
    python benchmarks/sample_cpu.py             # table: fast, plain reference, ratio, spread
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # before numpy / torch load their BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

CELLS = ("lstm", "layer_norm", "hyper")


def paper_model(cell: str, seed: int = 0):
    """An untrained paper-size conditional model as a LoadedModel."""
    from sketchrnn.config import ModelConfig
    from sketchrnn.loaded import LoadedModel
    from sketchrnn.model import SketchRNN

    cfg = ModelConfig(dec_model=cell)
    torch.manual_seed(seed)
    return LoadedModel(model=SketchRNN(cfg).eval(), config=cfg, scale_factor=1.0, class_names=[], name=f"paper-{cell}")


def max_rel_error(lm, z: np.ndarray, points: int) -> float:
    """Fast sampler vs the float64 plain model fed the same random numbers (3 sketches)."""
    from sketchrnn.fast.oracle import oracle_decode
    from sketchrnn.fast.sampler import draw_random, get_sampler
    from sketchrnn.loaded import LoadedModel
    from sketchrnn.model import SketchRNN

    m64 = SketchRNN(lm.config)
    m64.load_state_dict(lm.model.state_dict())
    lm64 = LoadedModel(model=m64.double().eval(), config=lm.config, scale_factor=1.0, class_names=[], name="f64")
    zz = np.repeat(z, 3, 0) + np.random.default_rng(1).normal(size=(3, z.shape[1])).astype(np.float32)
    U, N = draw_random(torch.Generator().manual_seed(1), points, 3)
    kw = dict(temperature=0.5, allow_end=False, max_len=points)
    fast = get_sampler(lm).decode(torch.from_numpy(zz), 3, random=(U, N), **kw)
    plain = oracle_decode(lm64, zz.astype(np.float64), 3, (U.astype(np.float64), N.astype(np.float64)), **kw)
    worst = 0.0
    for f, p in zip(fast, plain):
        if f.shape != p.shape or not np.array_equal(f[:, 2], p[:, 2]):
            return float("inf")
        worst = max(worst, float(np.abs(f[:, :2] - p[:, :2]).max() / np.abs(p[:, :2]).max()))
    return worst


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_CPU_MS: dict[str, list[float]] = {}


def time_once(fn, key: str = "") -> float:
    """Wall-clock ms of fn(); the process CPU time is kept in _CPU_MS[key] (on a shared
    machine it excludes the time other processes held the core)."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    t = (time.perf_counter() - t0) * 1e3
    _CPU_MS.setdefault(key, []).append((time.process_time() - c0) * 1e3)
    return t


def summary(ts: list[float]) -> dict:
    s = sorted(ts)
    return {"median": statistics.median(s), "min": s[0], "p90": s[min(len(s) - 1, int(0.9 * len(s)))], "n": len(s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print only {lstm_ms, layer_norm_ms, hyper_ms}")
    ap.add_argument("--repeats", type=int, default=21, help="timed fast sketches per cell")
    ap.add_argument("--plain-repeats", type=int, default=3, help="timed plain sketches per cell (0 = skip)")
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--backend", default="auto", choices=["auto", "native", "torch", "numpy"],
                    help="fast sampler backend (auto: the C kernel when built, else numpy when its BLAS runs "
                         "1 thread, else torch)")
    ap.add_argument("--f16-weights", action="store_true",
                    help="round the weights to float16 values first, as in shipped / exported models (the C "
                         "kernel then streams float16 panels)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    from sketchrnn import api
    from sketchrnn.fast.sampler import choose_backend, get_sampler

    cells = [c for c in a.cells.split(",") if c]
    models = {c: paper_model(c) for c in cells}
    if a.f16_weights:
        with torch.no_grad():
            for lm in models.values():
                for p in lm.model.parameters():
                    p.copy_(p.half().float())
    z = {c: np.random.default_rng(0).normal(size=(1, models[c].config.z_size)).astype(np.float32) for c in cells}
    for c in cells:
        get_sampler(models[c]).backend = a.backend
    kw = dict(max_len=a.points, allow_end=False, temperature=1.0)

    def fast(c: str, seed: int) -> None:
        s = api.decode(models[c], z[c], seed=seed, **kw)
        assert len(s[0]) == a.points

    def plain(c: str, seed: int) -> None:
        s = api.decode(models[c], z[c], seed=seed, fast=False, **kw)
        assert len(s[0]) == a.points

    for c in cells:  # warm-up (weights prepared, caches hot)
        fast(c, 0)
        if a.plain_repeats:
            plain(c, 0)
    tf = {c: [] for c in cells}
    tp = {c: [] for c in cells}
    for r in range(a.repeats):
        for c in cells:
            tf[c].append(time_once(lambda: fast(c, r + 1), c))
            if r < a.plain_repeats:
                tp[c].append(time_once(lambda: plain(c, r + 1)))
    if a.json:
        print(json.dumps({f"{c}_ms": round(statistics.median(tf[c]), 2) for c in cells}))
        return
    err = {c: max_rel_error(models[c], z[c], a.points) for c in cells}
    from sketchrnn.fast import native

    backend = a.backend
    if backend == "auto":
        backend = "native (C kernel)" if native.available() else f"{choose_backend()} (native: {native.status()})"
    if a.f16_weights:
        backend += "; weights rounded to float16" + (
            ", float16 panels" if all(getattr(get_sampler(models[c]).native(), "half", False) for c in cells) else "")
    print(f"# CPU sampling, batch 1, {a.points} points/sketch, 1 thread; {cpu_name()}; torch {torch.__version__}; "
          f"numpy {np.__version__}; backend {backend}; load avg {os.getloadavg()[0]:.1f}")
    print(f"{'cell':>11} | {'fast ms (median)':>16} | {'min':>6} | {'p90':>6} | {'cpu-time med':>12} | "
          f"{'plain ms':>8} | {'speed-up':>8} | {'max rel err vs f64 plain':>24}")
    for c in cells:
        f = summary(tf[c])
        p = summary(tp[c]) if tp[c] else None
        ratio = f"{p['median'] / f['median']:.1f}x" if p else "-"
        print(f"{c:>11} | {f['median']:16.2f} | {f['min']:6.2f} | {f['p90']:6.2f} | "
              f"{statistics.median(_CPU_MS[c]):12.2f} | {(p['median'] if p else float('nan')):8.1f} | {ratio:>8} | "
              f"{err[c]:24.1e}")
    print("# max rel err: the fast sampler (float32) against the plain model in float64, same random numbers, "
          "3 sketches at temperature 0.5; error relative to each sketch's largest offset; pen states must agree")


if __name__ == "__main__":
    main()
