"""CPU training speed (sketches/s) of the plain model for each decoder cell, on aaron_sheep.

Paper sizes (enc 256, dec 512, z 128, M 20), batch 100 (or --batch), T = 250, recurrent
dropout on, Adam step included, augmentation in the loader. Run from the repo root:

    python benchmarks/train_cpu.py --threads 1 --steps 3 [--plain]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/sketchrnn/aaron_sheep.npz")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--cells", default="lstm,layer_norm,hyper")
    ap.add_argument("--plain", action="store_true", help="the plain reference model instead of the fused fast path")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from sketchrnn.config import Config, apply_overrides
    from sketchrnn.train import Trainer

    rows = []
    for cell in a.cells.split(","):
        cfg = apply_overrides(Config(), [f"data.paths={a.data}", f"model.dec_model={cell}",
                                         f"train.batch_size={a.batch}", "train.device=cpu",
                                         f"train.fast={not a.plain}"])
        with tempfile.TemporaryDirectory() as d:
            tr = Trainer(cfg, Path(d) / "run", progress=False)
            it = iter(tr.loader)
            tr.train_step(next(it))  # warm-up
            times = []
            for _ in range(a.steps):
                b = next(it)
                t0 = time.perf_counter()
                tr.train_step(b)
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        rows.append({"cell": cell, "s_per_step": round(med, 3), "sketches_per_s": round(a.batch / med, 1)})
        print(f"{cell:>10}: {med:.2f} s/step, {a.batch / med:.1f} sketches/s", file=sys.stderr)
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "batch": a.batch, "fast": not a.plain,
                      "cpu": platform.processor() or platform.machine(), "rows": rows}))


if __name__ == "__main__":
    main()
