"""Training-step benchmark and numerics check: plain model (reference) vs the fast paths.

THE one script a GPU session runs (see benchmarks/NOTES_gpu.md); on CPU it runs as a smoke
test with ``--small``. In one run it

1. checks numerics per cell (batch ``--check-batch``, full T; run LAST so that a time budget
   cut falls on it — the gpu-marked tests check the same thing): losses and gradients of the
   reference in float32 and of every fast variant, all fed the SAME dropout masks and z-noise
   (:func:`sketchrnn.fast.oracle.oracle_losses`), against the reference in float64;
   fast-vs-reference float32 must agree to 1e-5 relative (gradients: ||a-b|| / ||b|| per
   parameter, worst parameter reported);
2. times a full training step (zero_grad, losses, backward, finite check, clip by value,
   Adam; as ``Trainer.train_step``) for every variant: ``reference`` (SketchRNN.losses),
   ``fast-eager`` (reformulated, no CUDA tricks), ``fast-compile`` (torch.compile of the
   pointwise step math), ``fast-graph`` (CUDA-graph-captured recurrences), ``fast``
   (graph + compile, the default on CUDA), ``fast+tf32`` (TF32 matmuls), ``fast+bf16``
   (bfloat16 autocast), ``fast+triton`` / ``fast+triton+tf32`` (plain-LSTM recurrences on the
   fused Triton step kernels, sketchrnn.fast.triton_lstm; opt-in), ``fast+persistent`` (the same
   with one persistent launch per recurrence); all cells at ``--batch`` (100), LayerNorm also at ``--big-batch``
   (1000);
3. prints a table (device, torch version, ms/step, sketches/s, ratio to reference, max
   relative error) and writes JSON after every row to ``--json-out`` or ``$OUT/bench_train.json``.

A time budget (``--budget-s``, default 540 s) keeps one call under a 10-minute limit: what
does not fit is listed as skipped; rerun with ``--cells``/``--sections`` for the rest.
Paper sizes: enc 256 (LSTM, Magenta's default encoder), dec 512, z 128, M 20, T 250,
recurrent dropout on (keep 0.9); sketch lengths uniform in [T/2, T].

    python benchmarks/bench_train.py                              # GPU: everything
    python benchmarks/bench_train.py --device cpu --small         # CPU smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

CELLS = ("lstm", "layer_norm", "hyper")
SECTIONS = ("numerics", "timing", "big")
VARIANTS = ("reference", "fast-eager", "fast-compile", "fast-graph", "fast", "fast-nolb", "fast+tf32", "fast+bf16",
            "fast+triton", "fast+triton+tf32", "fast+triton3x", "fast+persistent", "fast+persistent+tf32",
            "fast+persistent3x")
CUDA_ONLY = {"fast-compile", "fast-graph", "fast", "fast-nolb", "fast+tf32", "fast+bf16", "fast+triton",
             "fast+triton+tf32", "fast+triton3x", "fast+persistent", "fast+persistent+tf32", "fast+persistent3x"}
# fast+triton: plain-LSTM recurrences (encoders, LSTM decoder) on the fused Triton step kernels
# (sketchrnn.fast.triton_lstm), other cells as "fast"; fast+triton3x: the same with the kernels'
# float32 products as three TF32 tensor-core products (triton_lstm.set_fp32_products("tf32x3"));
# fast+persistent*: the same with the persistent kernels (one launch per recurrence where the grid
# fits on the device at once: triton_lstm.set_persistent)
# fast-nolb: "fast" without the launch-bound layout (sketchrnn.fast.decoder.set_launch_bound), as
# the fast path was before 2026-11-26 (per-step parameter gradients, separate HyperLSTM products)
# H100 SXM dense peaks (NVIDIA datasheet), for the FLOP floor
PEAK_TFLOPS = {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}


# ----------------------------------------------------------------------------- setup
def model_config(cell: str, small: bool, seq_len: int, enc: str):
    from sketchrnn.config import ModelConfig

    if small:
        return ModelConfig(enc_model=enc, dec_model=cell, enc_rnn_size=32, dec_rnn_size=64, z_size=16,
                           num_mixture=5, hyper_rnn_size=32, hyper_embedding_size=8, max_seq_len=seq_len)
    return ModelConfig(enc_model=enc, dec_model=cell, max_seq_len=seq_len)


def make_model(cfg, device: torch.device, seed: int = 0):
    from sketchrnn.model import SketchRNN

    torch.manual_seed(seed)
    return SketchRNN(cfg).to(device).train()


def make_batch(B: int, T: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic stroke-5 batch (B, T+1, 5): offsets ~ N(0, 1), pen lifted 10 %, lengths in [T/2, T]."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(1, T // 2), T + 1, (B,), generator=g)
    x = torch.zeros(B, T + 1, 5)
    x[:, 0, 2] = 1.0
    t = torch.arange(T).unsqueeze(0)
    valid = t < lengths.unsqueeze(1)  # (B, T)
    lifted = torch.rand(B, T, generator=g) < 0.1
    x[:, 1:, :2] = torch.randn(B, T, 2, generator=g) * valid.unsqueeze(-1)
    x[:, 1:, 2] = (valid & ~lifted).float()
    x[:, 1:, 3] = (valid & lifted).float()
    x[:, 1:, 4] = (~valid).float()
    return x.to(device), lengths.to(device)


@contextlib.contextmanager
def precision(variant: str, device: torch.device):
    """TF32 / bf16 autocast switches for a variant (everything else: plain fp32, TF32 off)."""
    if device.type != "cuda":
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = variant.endswith("tf32")
    try:
        if variant.endswith("bf16"):
            with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def configure_fast(variant: str) -> None:
    """Acceleration switches of the fast path for a variant (no-ops off CUDA)."""
    from sketchrnn.fast import cuda as fcuda
    from sketchrnn.fast import decoder as fdec

    fdec.set_cuda_acceleration(variant != "fast-eager")
    fdec.set_launch_bound(False if variant == "fast-nolb" else "auto")
    full = ("fast", "fast-nolb", "fast+tf32", "fast+bf16", "fast+triton", "fast+triton+tf32", "fast+triton3x",
            "fast+persistent", "fast+persistent+tf32", "fast+persistent3x")
    kernels = "triton" in variant or "persistent" in variant
    fcuda.configure(compile=variant in ("fast-compile",) + full, graphs=variant in ("fast-graph",) + full,
                    triton=kernels)
    from sketchrnn.fast import triton_lstm

    if triton_lstm.available():
        triton_lstm.set_fp32_products("tf32x3" if variant.endswith("3x") else "ieee")
        triton_lstm.set_persistent("persistent" in variant)


def losses_fn(variant: str) -> Callable:
    from sketchrnn.fast.decoder import fast_losses

    if variant == "reference":
        return lambda m, x, L, **kw: m.losses(x, L)
    return lambda m, x, L, **kw: fast_losses(m, x, L, **kw)


# ----------------------------------------------------------------------------- numerics
def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300))


def numerics(cell: str, args, device: torch.device, enc: str) -> list[dict]:
    """Losses / gradients of every variant vs the float64 reference, same masks and noise."""
    from sketchrnn.fast.decoder import draw_masks
    from sketchrnn.fast.oracle import oracle_losses

    cfg = model_config(cell, args.small, args.seq_len, enc)
    model = make_model(cfg, device)
    B, T = args.check_batch, args.seq_len
    x, L = make_batch(B, T, device, seed=1)
    masks = draw_masks(model, B, T, int(L.max()), x, None)  # encoder steps as the reference runs them
    eps = torch.randn(B, cfg.z_size, device=device)

    def grads(m, out) -> tuple[float, list[torch.Tensor]]:
        loss = out["L_R"] + 0.5 * out["kl_loss"]
        g = torch.autograd.grad(loss, list(m.parameters()), allow_unused=True)
        return float(loss.detach()), [gi if gi is not None else torch.zeros_like(p) for gi, p in zip(g, m.parameters())]

    m64 = copy.deepcopy(model).double()
    masks64 = type(masks)(**{k: (v.double() if v is not None else None) for k, v in vars(masks).items()})
    with precision("fp32", device):
        l64, g64 = grads(m64, oracle_losses(m64, x.double(), L, masks64, eps.double()))
        l32, g32 = grads(model, oracle_losses(model, x, L, masks, eps))
    rows = [{"cell": cell, "variant": "reference (fp32)", "loss_rel_err_vs_fp64": abs(l32 - l64) / abs(l64),
             "grad_rel_err_vs_fp64": max(_rel(a, b) for a, b in zip(g32, g64)),
             "loss_rel_err_vs_ref32": 0.0, "grad_rel_err_vs_ref32": 0.0}]
    for variant in VARIANTS[1:]:
        if variant not in args.variant_list or (variant in CUDA_ONLY and device.type != "cuda"):
            continue
        configure_fast(variant)
        with precision(variant, device):
            lf, gf = grads(model, losses_fn(variant)(model, x, L, masks=masks, eps=eps))
        rows.append({"cell": cell, "variant": variant, "loss_rel_err_vs_fp64": abs(lf - l64) / abs(l64),
                     "grad_rel_err_vs_fp64": max(_rel(a, b) for a, b in zip(gf, g64)),
                     "loss_rel_err_vs_ref32": abs(lf - l32) / abs(l32),
                     "grad_rel_err_vs_ref32": max(_rel(a, b) for a, b in zip(gf, g32)),
                     "accel": _accel_status()})
    configure_fast("fast")
    return rows


def _accel_status() -> list[str]:
    from sketchrnn.fast import cuda as fcuda

    return fcuda.status()


# ----------------------------------------------------------------------------- timing
def train_step_fn(model, opt, variant: str, w_kl: float = 0.5, clip: float = 1.0) -> Callable:
    """One optimiser step as Trainer.train_step (one host sync: the finite check)."""
    lf = losses_fn(variant)
    params = [p for p in model.parameters()]
    device = params[0].device

    def step(x: torch.Tensor, L: torch.Tensor) -> bool:
        opt.zero_grad(set_to_none=True)
        with precision(variant, device):
            out = lf(model, x, L)
            loss = out["L_R"] + w_kl * out["kl_loss"]
        loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        ok = bool(torch.isfinite(loss) & torch.stack([torch.isfinite(g).all() for g in grads]).all())
        if ok:
            torch.nn.utils.clip_grad_value_(params, clip)
            opt.step()
        return ok

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_variant(cell: str, B: int, variant: str, args, device: torch.device, enc: str) -> dict:
    cfg = model_config(cell, args.small, args.seq_len, enc)
    model = make_model(cfg, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if variant != "reference":
        configure_fast(variant)
    step = train_step_fn(model, opt, variant)
    batches = [make_batch(B, args.seq_len, device, seed=s) for s in range(2)]
    n_steps = args.ref_steps if variant == "reference" else args.steps
    t0 = time.perf_counter()
    for i in range(args.ref_warmup if variant == "reference" else args.warmup):
        step(*batches[i % 2])
    sync(device)
    warm_s = time.perf_counter() - t0
    ts, ok = [], True
    for i in range(n_steps):
        sync(device)
        t1 = time.perf_counter()
        ok &= step(*batches[i % 2])
        sync(device)
        ts.append(time.perf_counter() - t1)
    ms = 1e3 * statistics.median(ts)
    row = {"cell": cell, "batch": B, "variant": variant, "ms_per_step": round(ms, 3),
           "ms_min": round(1e3 * min(ts), 3), "sketches_per_s": round(B / (ms / 1e3), 1), "steps": n_steps,
           "warmup_s": round(warm_s, 1), "all_steps_finite": ok}
    if variant != "reference" and device.type == "cuda":
        row["accel"] = _accel_status()
    return row


# ----------------------------------------------------------------------------- floor
def matmul_flops(cfg, B: int, T: int) -> dict:
    """FLOPs (2 per multiply-add) of the matrix products of one training step (forward +
    backward = 3 x forward), split into the sequential recurrences and the hoisted parts."""
    H, E, Z, M = cfg.dec_rnn_size, cfg.enc_rnn_size, cfg.z_size, cfg.num_mixture
    Nh, Eh = cfg.hyper_rnn_size, cfg.hyper_embedding_size

    def cell_step(kind: str, hid: int, inp: int) -> tuple[float, float]:
        """(recurrent FLOPs per step, input-projection FLOPs per step) for one sequence row."""
        if kind != "hyper":
            return 2 * hid * 4 * hid, 2 * inp * 4 * hid
        rec = 2 * hid * 4 * hid + 2 * hid * 4 * Nh + 2 * Nh * 4 * Nh + 2 * Nh * 12 * Eh + 2 * 12 * Eh * hid
        return rec, 2 * inp * 4 * hid + 2 * inp * 4 * Nh

    d_rec, d_in = cell_step(cfg.dec_model, H, 5)
    e_rec, e_in = cell_step(cfg.enc_model, E, 5)
    fwd_rec = B * T * (d_rec + 2 * e_rec)
    fwd_other = B * T * (d_in + 2 * e_in + 2 * H * (6 * M + 3)) + B * (2 * Z * 4 * H + 2 * 2 * E * 2 * Z)
    return {"recurrent": 3 * fwd_rec, "hoisted": 3 * fwd_other, "total": 3 * (fwd_rec + fwd_other),
            "dependent_steps": 4 * T}


def floor_text(cfg, B: int, T: int) -> str:
    f = matmul_flops(cfg, B, T)
    parts = [f"{f['total'] / 1e9:.4g} GFLOP/step (recurrences {f['recurrent'] / 1e9:.4g})"]
    parts += [f"H100 {k} peak {f['total'] / (v * 1e12) * 1e3:.3g} ms" for k, v in PEAK_TFLOPS.items()]
    parts.append(f"{f['dependent_steps']} dependent steps x >= 2 kernels x ~2.5 us (graph) = "
                 f"{f['dependent_steps'] * 2 * 2.5e-3:.1f} ms")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--small", action="store_true", help="reduced sizes (CPU smoke run)")
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--enc", default="lstm", help="encoder cell (Magenta default lstm); 'same' = decoder's")
    ap.add_argument("--batch", type=int, default=None, help="default 100 (small: 8)")
    ap.add_argument("--big-batch", type=int, default=None, help="LayerNorm throughput batch; default 1000 (small: 16)")
    ap.add_argument("--seq-len", type=int, default=None, help="T; default 250 (small: 40)")
    ap.add_argument("--check-batch", type=int, default=None, help="numerics batch; default 16 (small: 4)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per fast variant")
    ap.add_argument("--ref-steps", type=int, default=5, help="timed steps of the reference")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps (compile / capture happen here)")
    ap.add_argument("--ref-warmup", type=int, default=1, help="untimed steps of the reference")
    ap.add_argument("--order", choices=("priority", "table"), default="priority",
                    help="priority: reference and fast rows of every cell, then the big batch's fast rows, then the "
                         "other variants; table: cell by cell")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"any of {','.join(SECTIONS)}")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--budget-s", type=float, default=540.0)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    t_start = time.perf_counter()
    small = args.small
    args.batch = args.batch or (8 if small else 100)
    args.big_batch = args.big_batch or (16 if small else 1000)
    args.seq_len = args.seq_len or (40 if small else 250)
    args.check_batch = args.check_batch or (4 if small else 16)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    sections = set(args.sections.split(","))
    for what, given, known in (("variant", args.variants, VARIANTS), ("cell", args.cells, CELLS),
                               ("section", args.sections, SECTIONS)):
        unknown = [v for v in given.split(",") if v and v not in known]
        if unknown:  # (a misspelt variant used to be dropped without a word)
            sys.exit(f"bench_train: unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    variants = [v for v in args.variants.split(",") if v in VARIANTS and (device.type == "cuda" or v not in CUDA_ONLY)]
    args.variant_list = variants
    cells = [c for c in args.cells.split(",") if c]
    out_path = args.json_out or (os.path.join(os.environ["OUT"], "bench_train.json") if os.environ.get("OUT") else None)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    res: dict[str, Any] = {"device": dev_name, "torch": torch.__version__, "cuda": torch.version.cuda,
                           "small": small, "batch": args.batch, "big_batch": args.big_batch, "seq_len": args.seq_len,
                           "numerics": [], "timing": [], "skipped": [], "floor": {}}

    def save() -> None:
        if out_path:
            tmp = out_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(res, f, indent=2)
            os.replace(tmp, out_path)

    def over_budget(what: str) -> bool:
        if time.perf_counter() - t_start > args.budget_s:
            res["skipped"].append(what)
            print(f"  skipped (time budget): {what}", flush=True)
            save()
            return True
        return False

    print(f"# bench_train: {dev_name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"B={args.batch}, big B={args.big_batch}, T={args.seq_len}, small={small}", flush=True)
    for cell in cells:
        cfg = model_config(cell, small, args.seq_len, cell if args.enc == "same" else args.enc)
        res["floor"][cell] = floor_text(cfg, args.batch, args.seq_len)
        print(f"# floor {cell} B={args.batch}: {res['floor'][cell]}", flush=True)
    enc_of = (lambda c: c) if args.enc == "same" else (lambda c: args.enc)

    jobs = []
    if "timing" in sections:
        jobs += [(c, args.batch, v) for c in cells for v in variants]
    if "big" in sections and "layer_norm" in cells:
        jobs += [("layer_norm", args.big_batch, v) for v in variants
                 if v in ("reference", "fast-eager", "fast", "fast+tf32", "fast+bf16", "fast+triton",
                          "fast+triton+tf32", "fast+persistent", "fast+persistent+tf32")]
    if jobs:
        print(f"\n## training step (zero_grad, losses, backward, finite check, clip, Adam)\n"
              f"{'cell':>10} | {'B':>5} | {'variant':>12} | {'ms/step':>9} | {'min':>8} | {'sketches/s':>10} | "
              f"{'vs ref':>7} | accel", flush=True)
    if args.order == "priority":  # what the targets need first, so a budget cut falls on the rest
        def prio(job: tuple[str, int, str]) -> int:
            _, B, v = job
            if B == args.batch:
                return 0 if v in ("reference", "fast", "fast+triton", "fast+persistent", "fast+persistent3x",
                                  "fast+persistent+tf32") else 2
            return 1 if v in ("fast", "fast+tf32", "fast+triton", "fast+persistent", "fast+persistent+tf32") else 3
        jobs.sort(key=prio)  # stable: cells keep their order within a rank
    ref_ms: dict[tuple[str, int], float] = {}
    for cell, B, variant in jobs:
        if over_budget(f"timing {cell} B={B} {variant}"):
            continue
        try:
            row = time_variant(cell, B, variant, args, device, enc_of(cell))
        except Exception as e:
            row = {"cell": cell, "batch": B, "variant": variant, "error": f"{type(e).__name__}: {str(e)[:300]}"}
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if variant == "reference" and "ms_per_step" in row:
            ref_ms[(cell, B)] = row["ms_per_step"]
        if "ms_per_step" in row and (cell, B) in ref_ms:
            row["ratio_to_reference"] = round(ref_ms[(cell, B)] / row["ms_per_step"], 2)
        res["timing"].append(row)
        save()
        if "error" in row:
            print(f"{cell:>10} | {B:5d} | {variant:>12} | ERROR {row['error']}", flush=True)
        else:
            ratio = f"{row['ratio_to_reference']:.1f}x" if "ratio_to_reference" in row else "-"
            print(f"{cell:>10} | {B:5d} | {variant:>12} | {row['ms_per_step']:9.2f} | {row['ms_min']:8.2f} | "
                  f"{row['sketches_per_s']:10.1f} | {ratio:>7} | {'; '.join(row.get('accel', []))}", flush=True)
    if jobs:  # ratios for rows timed before their reference, and the table in cell / variant order
        for row in res["timing"]:
            if "ms_per_step" in row and (row["cell"], row["batch"]) in ref_ms:
                row["ratio_to_reference"] = round(ref_ms[(row["cell"], row["batch"])] / row["ms_per_step"], 2)
        order = {(c, v): i for i, (c, v) in enumerate((c, v) for c in CELLS for v in VARIANTS)}
        res["timing"].sort(key=lambda r: (r["batch"], order.get((r["cell"], r["variant"]), 999)))
        save()
        print("\n## summary", flush=True)
        for row in res["timing"]:
            if "error" in row:
                print(f"{row['cell']:>10} | {row['batch']:5d} | {row['variant']:>12} | ERROR {row['error']}", flush=True)
                continue
            ratio = f"{row['ratio_to_reference']:.1f}x" if "ratio_to_reference" in row else "-"
            print(f"{row['cell']:>10} | {row['batch']:5d} | {row['variant']:>12} | {row['ms_per_step']:9.2f} | "
                  f"{row['ms_min']:8.2f} | {row['sketches_per_s']:10.1f} | {ratio:>7} | "
                  f"{'; '.join(row.get('accel', []))}", flush=True)
    if "numerics" in sections:
        print("\n## numerics (same masks and noise; relative errors)\n"
              f"{'cell':>10} | {'variant':>16} | {'loss vs fp64':>12} | {'grad vs fp64':>12} | "
              f"{'loss vs ref32':>13} | {'grad vs ref32':>13}", flush=True)
        for cell in cells:
            if over_budget(f"numerics {cell}"):
                continue
            try:
                rows = numerics(cell, args, device, enc_of(cell))
            except Exception as e:  # keep going: report the failure
                rows = [{"cell": cell, "variant": "ERROR", "error": f"{type(e).__name__}: {e}"}]
            for r in rows:
                res["numerics"].append(r)
                if "error" in r:
                    print(f"{cell:>10} | ERROR {r['error']}", flush=True)
                    continue
                flag = "" if r["variant"] in ("reference (fp32)", "fast+tf32", "fast+bf16", "fast+triton+tf32",
                                              "fast+persistent+tf32") or \
                    r["grad_rel_err_vs_ref32"] <= 1e-5 else "  <-- above 1e-5"
                print(f"{cell:>10} | {r['variant']:>16} | {r['loss_rel_err_vs_fp64']:12.2e} | "
                      f"{r['grad_rel_err_vs_fp64']:12.2e} | {r['loss_rel_err_vs_ref32']:13.2e} | "
                      f"{r['grad_rel_err_vs_ref32']:13.2e}{flag}", flush=True)
            save()

    res["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    save()
    print(f"\n# done in {res['elapsed_s']} s" + (f"; JSON: {out_path}" if out_path else ""), flush=True)


if __name__ == "__main__":
    main()
