"""CPU training speed (ms/step, sketches/s) of the training paths, in one process.

Variants: ``fast`` (the fused fast path as the Trainer runs it on a CPU: the plain and LayerNorm LSTM
recurrences differentiated by hand, :class:`sketchrnn.fast.decoder._LSTMSequence`),
``fast-bf16`` (the fast path with ``train.matmul_precision: medium``: float32 products in
bfloat16 on CPUs with AVX512-BF16/AMX, the mixture head in float32), ``fast-autograd`` (the same fast path with autograd over the per-step LSTM math, as before
2026-11-26), ``plain`` (the reference model). The variants take turns step by step on the
same batches, so a busy shared host slows them alike; median and min per variant.

Default: paper sizes (enc 256, dec 512, z 128, M 20) on aaron_sheep, batch 100, T = 250,
recurrent dropout on, Adam step included, per decoder cell. ``--config`` times a recipe
instead (e.g. the small CPU models behind the shipped previews). Run from the repo root:

    python benchmarks/train_cpu.py --threads 1 --steps 3 --variants fast,plain
    python benchmarks/train_cpu.py --config configs/pig_vae_layer_norm_kl1.json --variants fast,fast-bf16 --steps 4
    python benchmarks/train_cpu.py --config configs/yoga_uncond_cpu_small.json --variants fast,fast-autograd --steps 8
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

VARIANTS = ("fast", "fast-bf16", "fast-autograd", "plain")


@contextlib.contextmanager
def hand_lstm(on: bool):
    from sketchrnn.fast.decoder import set_hand_lstm

    set_hand_lstm("auto" if on else False)
    try:
        yield
    finally:
        set_hand_lstm("auto")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/sketchrnn/aaron_sheep.npz")
    ap.add_argument("--config", default=None, help="a training recipe (configs/*.json) instead of the paper sizes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=None, help="batch size (default 100, or the recipe's)")
    ap.add_argument("--cells", default="lstm,layer_norm,hyper", help="decoder cells (paper sizes only)")
    ap.add_argument("--variants", default="fast", help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--plain", action="store_true", help="same as --variants plain")
    a = ap.parse_args()
    variants = ["plain"] if a.plain else a.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(a.threads)
    from sketchrnn.config import Config, apply_overrides, load_config
    from sketchrnn.precision import cpu_bf16_available, cpu_bf16_products
    from sketchrnn.train import Trainer

    setups = []
    if a.config:
        cfg = apply_overrides(load_config(a.config), ["train.init_from=", "train.device=cpu",
                                                      f"train.num_threads={a.threads}"]
                              + ([f"train.batch_size={a.batch}"] if a.batch else []))
        setups.append((Path(a.config).stem, cfg))
    else:
        for cell in a.cells.split(","):
            setups.append((cell, apply_overrides(Config(), [f"data.paths={a.data}", f"model.dec_model={cell}",
                                                            f"train.batch_size={a.batch or 100}",
                                                            "train.device=cpu"])))
    rows = []
    for name, base in setups:
        with tempfile.TemporaryDirectory() as d:
            trainers = {}
            for v in variants:
                cfg = apply_overrides(base, [f"train.fast={v != 'plain'}",
                                             f"train.matmul_precision={'medium' if v == 'fast-bf16' else 'highest'}"])
                trainers[v] = Trainer(cfg, Path(d) / v, progress=False)
            bsz = base.train.batch_size
            batches = [trainers[variants[0]].loader.next_batch() for _ in range(a.steps + 1)]
            times: dict[str, list[float]] = {v: [] for v in variants}
            for k, b in enumerate(batches):
                for v in variants:
                    with hand_lstm(v != "fast-autograd"), cpu_bf16_products(trainers[v].cpu_bf16):
                        t0 = time.perf_counter()
                        trainers[v].train_step(b)
                        if k:  # the first round warms up
                            times[v].append(time.perf_counter() - t0)
            for v in variants:
                trainers[v].release()
        for v in variants:
            med, lo = statistics.median(times[v]), min(times[v])
            rows.append({"setup": name, "variant": v, "ms_per_step": round(med * 1e3, 1),
                         "min_ms": round(lo * 1e3, 1), "sketches_per_s": round(bsz / med, 1)})
            print(f"{name:>24} {v:>14}: {med * 1e3:8.1f} ms/step (min {lo * 1e3:.1f}), {bsz / med:7.1f} sketches/s",
                  file=sys.stderr)
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "cpu_bf16": cpu_bf16_available(), "cpu": platform.processor() or platform.machine(),
                      "rows": rows}))


if __name__ == "__main__":
    main()
