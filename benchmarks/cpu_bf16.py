"""bfloat16 products on the CPU (``train.matmul_precision: medium``): error and speed, one process.

On CPUs with AVX512-BF16 or AMX, oneDNN can multiply float32 tensors with bfloat16 inputs and
float32 accumulation (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``, torch >= 2.9).
The trainer turns that on for its training steps when ``train.matmul_precision`` is ``medium``;
the mixture head (:class:`sketchrnn.model.decoder.Float32Head`) and validation stay float32.

This script takes a trained model (default: the shipped ``pig`` VAE; any recipe and weights),
two training batches, and the same z noise, and prints:
* the loss and the gradient (all parameters as one vector) in float32 and with bf16 products,
  each as the relative error against float64 (the plain reference: the same fast path in float64);
* the minibatch gradient noise for scale: |g(batch 1) - g(batch 2)| / |g(batch 1)| in float64;
* ms per forward+backward in each mode (alternating, median), one thread.

    python benchmarks/cpu_bf16.py --threads 1 --reps 3
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/pig_vae_layer_norm_kl1.json")
    ap.add_argument("--weights", default="pig", help="train.init_from: a shipped name or a .pt/.safetensors")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3, help="timed forward+backward passes per mode")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from sketchrnn.config import apply_overrides, load_config
    from sketchrnn.fast.decoder import fast_losses
    from sketchrnn.precision import cpu_bf16_available, cpu_bf16_products
    from sketchrnn.train import Trainer

    cfg = apply_overrides(load_config(a.config), [f"train.init_from={a.weights}", "train.device=cpu",
                                                  f"train.num_threads={a.threads}"])
    with tempfile.TemporaryDirectory() as d:
        tr = Trainer(cfg, Path(d) / "run", progress=False)
        batches = [tr._trim(tr.loader.next_batch())[0] for _ in range(2)]
        tr.release()
    model32 = tr.model.float().train()
    model64 = copy.deepcopy(model32).double()
    z = cfg.model.z_size
    gen = torch.Generator().manual_seed(0)
    eps = torch.randn(batches[0].strokes.shape[0], z, generator=gen, dtype=torch.float64)

    def loss_grad(model, b, dtype, bf16=False):
        model.zero_grad(set_to_none=True)
        with cpu_bf16_products(bf16):
            out = fast_losses(model, b.strokes.to(dtype), b.lengths, kl_tolerance=cfg.train.kl_tolerance,
                              eps=eps.to(dtype))
            loss = out["L_R"] + cfg.train.kl_weight * out["kl_loss"]
            loss.backward()
        g = torch.cat([p.grad.reshape(-1).double() for p in model.parameters() if p.grad is not None])
        return float(loss), g

    l64, g64 = loss_grad(model64, batches[0], torch.float64)
    _, g64b = loss_grad(model64, batches[1], torch.float64)
    l32, g32 = loss_grad(model32, batches[0], torch.float32)
    l16, g16 = loss_grad(model32, batches[0], torch.float32, bf16=True)
    rel = lambda g: float((g - g64).norm() / g64.norm())  # noqa: E731
    times = {"float32": [], "bf16": []}
    for _ in range(a.reps):
        for mode in times:
            t0 = time.perf_counter()
            loss_grad(model32, batches[0], torch.float32, bf16=(mode == "bf16"))
            times[mode].append(time.perf_counter() - t0)
    res = {
        "torch": torch.__version__, "threads": a.threads, "cpu_bf16_available": cpu_bf16_available(),
        "config": a.config, "weights": a.weights, "batch": int(batches[0].strokes.shape[0]),
        "T": int(batches[0].strokes.shape[1]) - 1,
        "loss_f64": l64, "loss_rel_err_f32": abs(l32 - l64) / abs(l64), "loss_rel_err_bf16": abs(l16 - l64) / abs(l64),
        "grad_rel_err_f32": rel(g32), "grad_rel_err_bf16": rel(g16),
        "grad_cos_bf16": float(torch.nn.functional.cosine_similarity(g16, g64, dim=0)),
        "minibatch_grad_noise": float((g64 - g64b).norm() / g64.norm()),
        "ms_float32": round(statistics.median(times["float32"]) * 1e3, 1),
        "ms_bf16": round(statistics.median(times["bf16"]) * 1e3, 1),
    }
    for k, v in res.items():
        print(f"{k:>24}: {v}", file=sys.stderr)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
