"""Latency of the studio's completion endpoint (issue 7): 4 completions of up to 100 points
for a 30-point drawing, end to end over HTTP on loopback, torch with 1 CPU thread.

    python benchmarks/studio_latency.py [--shared ../shared] [--repeats 30] [--out benchmarks/RESULTS_studio.md]

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
    ang = np.linspace(0, 2 * np.pi, 21)
    head = np.stack([r * np.cos(ang), r * np.sin(ang)], 1)  # (21, 2)
    ear1 = np.array([[-0.8 * r, -0.6 * r], [-0.6 * r, -1.3 * r], [-0.2 * r, -0.95 * r]])
    ear2 = np.array([[0.2 * r, -0.95 * r], [0.6 * r, -1.3 * r], [0.8 * r, -0.6 * r]])
    eyes = np.array([[-0.35 * r, -0.2 * r], [-0.3 * r, -0.2 * r], [0.3 * r, -0.2 * r]])
    pts, pen = [], []
    for s in (head, ear1, ear2, eyes):
        pts.extend(s.tolist())
        pen.extend([0] * (len(s) - 1) + [1])
    pts = np.asarray(pts)
    rows = [[float(round(d[0], 2)), float(round(d[1], 2)), int(p)] for d, p in zip(np.diff(pts, axis=0), pen[1:])]
    assert len(rows) == 29 + 1 or len(rows) >= 29
    return rows[:30]


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def time_model(base: str, name: str, extent: float, repeats: int) -> dict:
    strokes = drawing_30(extent)
    body = {"model": name, "strokes": strokes, "n": 4, "temperature": 0.5, "max_points": 100, "allow_end": False}
    for i in range(3):  # warm-up (first call loads the model and measures its extent)
        post(base + "/api/complete", {**body, "seed": i})
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        res = post(base + "/api/complete", {**body, "seed": 100 + i})
        times.append(time.perf_counter() - t0)
        assert len(res["completions"]) == 4 and all(len(c) == 100 for c in res["completions"])
    times_ms = sorted(1000 * t for t in times)
    return {"model": name, "input_points": len(strokes), "median_ms": statistics.median(times_ms),
            "p90_ms": times_ms[int(0.9 * (len(times_ms) - 1))], "min_ms": times_ms[0], "repeats": repeats}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("SKETCHRNN_SHARED", str(REPO.parent / "shared")))
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS_studio.md"))
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
    rows = []
    with BackgroundServer(create_app(reg)) as srv:
        for name in reg.names():
            info = json.loads(urllib.request.urlopen(f"{srv.url}/api/models/{name}", timeout=60).read())
            rows.append(time_model(srv.url, name, info["extent"], a.repeats))
            print(json.dumps(rows[-1]))
    tmp.cleanup()

    lines = [
        "# Studio latency (issue 7)",
        "",
        "`POST /api/complete`, end to end over HTTP on 127.0.0.1 (server and client in one process, "
        "uvicorn in a thread): 4 completions of exactly 100 new points (`allow_end: false`) for a "
        "30-point input, temperature 0.5, torch with **1 CPU thread**. Target: <= 200 ms.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores visible, "
        f"Python {platform.python_version()}, torch {torch.__version__}. Shared with other jobs, so figures vary.",
        f"Command: `python benchmarks/studio_latency.py` ({a.repeats} timed requests per model after 3 warm-ups).",
        "",
        "| model | input points | median ms | p90 ms | min ms |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['input_points']} | {r['median_ms']:.0f} | {r['p90_ms']:.0f} | {r['min_ms']:.0f} |")
    lines += ["", "`cat`: Magenta's decoder-only cat (LSTM 512, ../shared). `vae_default`: random weights, "
              "conditional, encoder 256 / decoder 512 / z 128 / M 20 (z from the prior).", ""]
    atomic_write_bytes(a.out, lambda f: f.write("\n".join(lines).encode()))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
