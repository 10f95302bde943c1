"""Latency of the studio's completion endpoint (issue 7): 4 completions of up to 100 points
for a 30-point drawing, end to end over HTTP on loopback, torch with 1 CPU thread.

    python benchmarks/studio_latency.py [--shared ../shared] [--repeats 30] [--out FILE]

Models timed: Magenta's decoder-only cat (512-unit LSTM, ../shared/models/magenta/cat.gen.json,
when present) and a random-weight conditional model with the paper's default sizes (encoder
256, decoder 512, z 128, M 20) saved to a temp folder. Each request uses ``allow_end: false``
so that every completion has exactly 100 points (the worst case the target speaks of).
Figures go to a Markdown file; this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def drawing_30(extent: float) -> list[list[float]]:
    """A 30-point stroke-3 cat head (circle + two ears) spanning about 60% of ``extent``."""
    r = 0.3 * extent
    ang = np.linspace(0, 2 * np.pi, 22)
    head = np.stack([r * np.cos(ang), r * np.sin(ang)], 1)  # (22, 2)
    ear1 = np.array([[-0.8 * r, -0.6 * r], [-0.6 * r, -1.3 * r], [-0.2 * r, -0.95 * r]])
    ear2 = np.array([[0.2 * r, -0.95 * r], [0.6 * r, -1.3 * r], [0.8 * r, -0.6 * r]])
    eyes = np.array([[-0.35 * r, -0.2 * r], [-0.3 * r, -0.2 * r], [0.3 * r, -0.2 * r]])
    pts, pen = [], []
    for s in (head, ear1, ear2, eyes):
        pts.extend(s.tolist())
        pen.extend([0] * (len(s) - 1) + [1])
    pts = np.asarray(pts)
    rows = [[float(round(d[0], 2)), float(round(d[1], 2)), int(p)] for d, p in zip(np.diff(pts, axis=0), pen[1:])]
    assert len(rows) == 30  # 31 points -> 30 stroke-3 rows
    return rows


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"median": statistics.median(xs), "p90": xs[int(0.9 * (len(xs) - 1))], "min": xs[0]}


def time_model(base: str, name: str, extent: float, repeats: int) -> dict:
    """Wall time and process CPU time (all threads: server + client) per request, in ms.
    CPU time is what the request costs when it has a core to itself; wall time also counts
    waiting for a core the other jobs on this machine hold."""
    strokes = drawing_30(extent)
    body = {"model": name, "strokes": strokes, "n": 4, "temperature": 0.5, "max_points": 100, "allow_end": False}
    for i in range(3):  # warm-up (first call loads the model and measures its extent)
        post(base + "/api/complete", {**body, "seed": i})
    wall, cpu = [], []
    for i in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = post(base + "/api/complete", {**body, "seed": 100 + i})
        wall.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
        assert len(res["completions"]) == 4 and all(len(c) == 100 for c in res["completions"])
    return {"model": name, "input_points": len(strokes), "wall": _stats(wall), "cpu": _stats(cpu), "repeats": repeats}


def time_direct(lm, repeats: int) -> dict:
    """CPU ms of the decoding alone: sketchrnn.api.decode with the fast sampler (what the studio
    runs) and with the plain step-by-step loop (fast=False, the oracle), interleaved."""
    from sketchrnn import api

    extent = 12.0 * lm.scale_factor
    prefix = np.asarray(drawing_30(extent), np.float32)
    z = np.random.default_rng(0).normal(size=(4, lm.config.z_size)).astype(np.float32) if lm.config.conditional else None
    ts: dict[str, list[float]] = {"fast": [], "plain": []}
    for i in range(repeats):
        for label, fast in (("fast", True), ("plain", False)):
            c0 = time.process_time()
            api.decode(lm, z, n=4, prefix=prefix, temperature=0.5, max_len=100, allow_end=False, seed=i, fast=fast)
            ts[label].append(1000 * (time.process_time() - c0))
    return {k: statistics.median(v) for k, v in ts.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("SKETCHRNN_SHARED", str(REPO.parent / "shared")))
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", default="", help="also write the report here (merge into benchmarks/RESULTS.md by hand)")
    a = ap.parse_args()
    torch.set_num_threads(1)

    from sketchrnn.checkpoint import atomic_write_bytes, save_weights
    from sketchrnn.config import ModelConfig
    from sketchrnn.model import SketchRNN
    from sketchrnn.studio import BackgroundServer, ModelRegistry, create_app

    tmp = tempfile.TemporaryDirectory(prefix="studio-bench-")
    torch.manual_seed(0)
    cfg = ModelConfig(conditional=True, use_recurrent_dropout=False)  # paper/Magenta default sizes
    save_weights(Path(tmp.name) / "vae_default.safetensors", SketchRNN(cfg), cfg, 82.2, ["random"],
                 half=False, extra={"extent": "1050"})
    paths = [tmp.name]
    cat = Path(a.shared) / "models" / "magenta" / "cat.gen.json"
    if cat.is_file():
        paths.append(str(cat))
    reg = ModelRegistry.discover(paths, include_shipped=False)
    rows, direct = [], {}
    with BackgroundServer(create_app(reg)) as srv:
        for name in reg.names():
            info = json.loads(urllib.request.urlopen(f"{srv.url}/api/models/{name}", timeout=60).read())
            rows.append(time_model(srv.url, name, info["extent"], a.repeats))
            print(json.dumps(rows[-1]))
    for name in reg.names():
        with reg.use(name, timeout=60) as e:
            direct[name] = time_direct(e.loaded, max(5, a.repeats // 3))
        print(name, json.dumps(direct[name]))
    tmp.cleanup()
    load = os.getloadavg()

    lines = [
        "# Studio latency (issue 7)",
        "",
        "`POST /api/complete`, end to end over HTTP on 127.0.0.1 (server and client in one process, "
        "uvicorn in a thread): 4 completions of exactly 100 new points (`allow_end: false`) for a "
        "30-point input, temperature 0.5, torch with **1 CPU thread**. Target: <= 200 ms.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores visible, "
        f"Python {platform.python_version()}, torch {torch.__version__}. The 2 cores are shared with other "
        f"developers' jobs: load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) at the end of this run. "
        "Wall time includes waiting for a core; CPU time (all threads of the process, per request) is what "
        "the request costs with a core to itself.",
        f"Command: `python benchmarks/studio_latency.py` ({a.repeats} timed requests per model after 3 warm-ups).",
        "",
        "| model | input points | wall median ms | wall p90 ms | wall min ms | CPU median ms | CPU min ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w, c = r["wall"], r["cpu"]
        lines.append(f"| {r['model']} | {r['input_points']} | {w['median']:.0f} | {w['p90']:.0f} | {w['min']:.0f} "
                     f"| {c['median']:.0f} | {c['min']:.0f} |")
    lines += ["", "Decoding alone (no HTTP), CPU ms, median: `sketchrnn.api.decode` with its default fast CPU "
              "sampler (`sketchrnn.fast`, what the studio runs) and with `fast=False` (the plain step-by-step "
              "loop):", "", "| model | fast (studio) | plain |", "|---|---|---|"]
    for name, d in direct.items():
        lines.append(f"| {name} | {d['fast']:.0f} | {d['plain']:.0f} |")
    lines += ["", "`cat`: Magenta's decoder-only cat (LSTM 512, ../shared/models/magenta/cat.gen.json). `vae_default`: "
              "random weights, conditional, encoder 256 / decoder 512 / z 128 / M 20 (z from the prior).", ""]
    print("\n".join(lines))
    if a.out:
        atomic_write_bytes(a.out, lambda f: f.write("\n".join(lines).encode()))
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
