"""Where a fast training step's time goes: torch.profiler over a few steps, per kernel.

The first H100 run (2026-11-26, benchmarks/NOTES_gpu.md) measured the default CUDA path at
29 ms per LSTM step against a ~6-8 ms floor: ~29 us per dependent recurrent step. This script
says which kernels make up those microseconds before anyone optimises: it warms up (compile,
graph capture), profiles ``--steps`` full training steps (as benchmarks/bench_train.py times
them) and prints the kernels by total GPU time, kernels per step, GPU busy time per step and
wall time per step; ``--json-out`` keeps the top rows.

    python benchmarks/profile_gpu.py --cell lstm               # on a GPU, ~30-60 s
    python benchmarks/profile_gpu.py --device cpu --small      # smoke run on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

import bench_train as bt  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="lstm", choices=bt.CELLS)
    ap.add_argument("--variant", default="fast", choices=bt.VARIANTS)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--small", action="store_true", help="reduced sizes (CPU smoke run)")
    ap.add_argument("--batch", type=int, default=None, help="default 100 (small: 8)")
    ap.add_argument("--seq-len", type=int, default=None, help="T; default 250 (small: 40)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    B = a.batch or (8 if a.small else 100)
    T = a.seq_len or (40 if a.small else 250)
    cfg = bt.model_config(a.cell, a.small, T, "lstm")
    model = bt.make_model(cfg, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if a.variant != "reference":
        bt.configure_fast(a.variant)
    step = bt.train_step_fn(model, opt, a.variant)
    batches = [bt.make_batch(B, T, device, seed=s) for s in range(2)]
    for i in range(a.warmup):
        step(*batches[i % 2])
    bt.sync(device)

    acts = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    t0 = time.perf_counter()
    with torch.profiler.profile(activities=acts) as prof:
        for i in range(a.steps):
            step(*batches[i % 2])
        bt.sync(device)
    wall_ms = 1e3 * (time.perf_counter() - t0) / a.steps

    # device-side kernels (CUDA) or top-level CPU ops
    if device.type == "cuda":
        events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        if not events:  # other profiler layouts: kernels hang off the CPU events
            events = [k for e in prof.events() for k in getattr(e, "kernels", [])]
    else:
        events = [e for e in prof.events() if e.cpu_parent is None]

    def us(e) -> float:
        if device.type != "cuda":
            return float(e.cpu_time)
        return float(getattr(e, "device_time", None) or getattr(e, "duration", 0.0) or 0.0)

    busy_us = sum(us(e) for e in events) / a.steps
    per_name: dict[str, list[float]] = {}
    for e in events:
        per_name.setdefault(e.name, []).append(us(e))
    rows = sorted(((n, len(v) / a.steps, sum(v) / a.steps, sum(v) / len(v)) for n, v in per_name.items()),
                  key=lambda r: -r[2])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# profile: {name}, torch {torch.__version__}, cell {a.cell}, variant {a.variant}, B={B}, T={T}, "
          f"accel {'; '.join(bt._accel_status()) or '-'}")
    print(f"wall {wall_ms:.2f} ms/step (profiler on); {'GPU' if device.type == 'cuda' else 'CPU'} busy "
          f"{busy_us / 1e3:.2f} ms/step; {len(events) / a.steps:.0f} {'kernels' if device.type == 'cuda' else 'ops'}/step "
          f"({len(events) / a.steps / (4 * T):.1f} per dependent recurrent step)")
    print(f"{'calls/step':>10} | {'ms/step':>8} | {'us/call':>8} | name")
    for n, calls, tot, mean in rows[: a.rows]:
        print(f"{calls:10.0f} | {tot / 1e3:8.3f} | {mean:8.2f} | {n[:110]}")
    out = a.json_out or (os.path.join(os.environ["OUT"], f"profile_{a.cell}.json") if os.environ.get("OUT") else None)
    if out:
        with open(out, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "cell": a.cell, "variant": a.variant, "batch": B,
                       "seq_len": T, "wall_ms_per_step": wall_ms, "busy_ms_per_step": busy_us / 1e3,
                       "events_per_step": len(events) / a.steps,
                       "top": [{"name": n, "calls_per_step": c, "ms_per_step": t / 1e3, "us_per_call": m}
                               for n, c, t, m in rows[: a.rows]]}, f, indent=2)


if __name__ == "__main__":
    main()
