"""One LSTM recurrence, forward + backward: the graph-captured compiled path vs the fused
Triton step kernels (sketchrnn.fast.triton_lstm) at several tile sizes.

For each shape (decoder LSTM 512, the encoder's two LSTM 256 directions, T 250 and the
decoder-only cat recipe's T 130 at its batch of 1000; B 100 otherwise) it

1. checks each tile setting against the float64 reference on the CPU (outputs and every input
   gradient, relative norm error; float32 must stay within 1e-5, TF32 is reported);
2. times forward + backward of the whole recurrence (both CUDA-graph captured, as in
   training), median of ``--reps`` after warm-up, and prints a table: shape, variant, tiles,
   ms per recurrence, us per step pair, ratio to the compiled path at the same precision
   (the TF32 rows: compiled+tf32 against the best float32 tile setting run in TF32), relative error;
3. times the recurrent products alone (``h @ W_hh``, ``g @ W_hh^T``; 100 calls in one CUDA
   graph): cuBLAS against the Triton tile kernel (``triton_lstm.mm``) — what the LayerNorm and
   Hyper recurrences, which keep cuBLAS products, would gain from it.

    python benchmarks/bench_triton_lstm.py                       # GPU (~1-2 minutes)
    python benchmarks/bench_triton_lstm.py --device cpu --dry-run  # interpreter smoke run

Writes JSON after every row to ``--json-out`` (default ``$OUT/bench_triton_lstm.json`` when
$OUT is set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

# (directions, batch, units, steps); dec512_T130_B1000: the decoder-only cat recipe's late phase
SHAPES = {"dec512": (1, 100, 512, 250), "enc256x2": (2, 100, 256, 250), "dec512_T130_B1000": (1, 1000, 512, 130),
          "ln512": (1, 100, 512, 250)}
# the LayerNorm LSTM (the LayerNorm decoder's recurrence): compiled path against the persistent
# kernels only (the step kernels are plain-LSTM only)
KIND = {"ln512": "layer_norm", "tiny_ln": "layer_norm"}
# (forward tiles, backward tiles, warps per program); the first is the kernels' default (the best
# at B 100 on an H200, 2026-11-26: 1.14x the compiled path for the decoder, 1.84x for the
# encoder). Measured there: larger reduction blocks (BK) helped, larger batch tiles hurt at B 100
# (64 rows 0.64-0.75x, 128 rows 0.46x; the old default 32x16x32 0.96x), so the B-100 list tries
# BK up to 128 / 256; at B 1000 the whole W_hh is read once per batch tile and step, so its list
# tries batch tiles up to 128.
TILES = [((16, 32, 64), (16, 32, 128), 4), ((16, 32, 64), (16, 32, 128), 8), ((16, 32, 128), (16, 32, 256), 4),
         ((16, 64, 64), (16, 64, 128), 4), ((16, 16, 64), (16, 16, 128), 4), ((32, 16, 32), (32, 16, 64), 4)]
# measured on an H100 on 2026-11-27 (compiled float32: 26.5 ms): 16x32x64/16x32x128 w4 0.78x,
# 32x32x64/32x32x128 w4 0.99x, 64x32x64/64x32x128 w4 0.07x (394 ms: it spills; took most of the
# 150-s step), the same with 8 warps 1.02x; the rest were not reached. Unmeasured ones first.
# the persistent kernels (all T steps in one launch, a grid barrier between steps; every program
# resident: B 100 x H 512 allows 128 programs on 132 SMs); not yet measured on a GPU. Compiled for
# sm_90 here (benchmarks/compile_sm90.py, ptxas -v, Triton 3.6.0, float32 products): the default
# (first) 150 / 190 registers and no spills; 4 warps spill 80 / 32 B, 64x16 w8 48 / 180 B, 32x32 w8
# 0 / 8 B (per thread, forward / backward)
PTILES = [((32, 16, 64), (32, 16, 128), 8), ((32, 32, 64), (32, 32, 128), 8), ((32, 16, 64), (32, 16, 128), 4),
          ((64, 16, 64), (64, 16, 128), 8)]
TILES_FOR = {"dec512_T130_B1000": [
    ((64, 32, 64), (64, 32, 128), 8), ((64, 64, 32), (64, 64, 64), 8), ((128, 32, 32), (128, 32, 64), 8),
    ((32, 64, 32), (32, 64, 64), 4)]}


def inputs(D: int, B: int, H: int, T: int, device: str, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xp = torch.randn(T, D, B, 4 * H, generator=g, dtype=torch.float64) * 0.5
    w = torch.randn(D, H, 4 * H, generator=g, dtype=torch.float64) / H ** 0.5
    c0 = torch.randn(D, B, H, generator=g, dtype=torch.float64) * 0.5
    h0 = torch.randn(D, B, H, generator=g, dtype=torch.float64) * 0.5
    m = (torch.rand(T, D, B, H, generator=g) < 0.9).double() / 0.9
    dh = torch.randn(T, D, B, H, generator=g, dtype=torch.float64)
    to = dict(device=device, dtype=dtype)
    return [t.to(**to).requires_grad_() for t in (xp, w, c0, h0)], m.to(**to), dh.to(**to)


def ln_params(D: int, H: int, device: str, dtype: torch.dtype) -> dict:
    """Gains and shifts of the LayerNorm LSTM's norms (fixed, not differentiated here)."""
    g = torch.Generator().manual_seed(7)
    p = {k: (1.0 if k.startswith("gamma") else 0.0) + 0.2 * torch.randn(D, 1, n, generator=g, dtype=torch.float64)
         for k, n in (("gamma", 4 * H), ("beta", 4 * H), ("gamma_c", H), ("beta_c", H))}
    return {k: v.to(device=device, dtype=dtype) for k, v in p.items()}


def reference(D, B, H, T, device: str = "cpu", kind: str = "lstm"):
    """float64 outputs and input gradients of the project's hand-differentiated LSTM, or of the
    eager LayerNorm-LSTM recurrence (on the bench's device: float64 products are IEEE there too,
    and B 1000 on one CPU thread takes ~1 min)."""
    from sketchrnn.fast import decoder as fd

    ins, m, dh = inputs(D, B, H, T, device, torch.float64)
    xp, w, c0, h0 = ins
    if kind == "layer_norm":
        seq = fd._Seq("layer_norm", {"w_hh": w, **ln_params(D, H, device, torch.float64)}, 1.0)
        hs = fd.run_sequence(seq, xp, (c0, h0), m, pointwise=fd._EAGER)[0]
    else:
        hs = torch.stack([fd._LSTMSequence.apply(xp[:, d], None, None, w[d], c0[d], h0[d], m[:, d], 1.0)[0]
                          for d in range(D)], 1)
    (hs * dh).sum().backward()
    return hs.detach().cpu(), [t.grad.cpu() for t in ins]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double().cpu() - b.double()).norm() / b.double().norm())


def run_once(variant: str, D, B, H, T, device: str, dtype=torch.float32, kind: str = "lstm"):
    """Outputs and input gradients of one variant (graph-captured on CUDA)."""
    from sketchrnn.fast import cuda as fc
    from sketchrnn.fast import decoder as fd

    ins, m, dh = inputs(D, B, H, T, device, dtype)
    xp, w, c0, h0 = ins
    lnp = ln_params(D, H, device, dtype) if kind == "layer_norm" else {}
    seq = fd._Seq(kind, {"w_hh": w, **lnp}, 1.0)
    if device == "cuda":
        res = fc.run_sequence_accelerated(seq, xp, (c0, h0), m, "bench")
        assert res is not None, "no accelerated path"
        hs = res[0]
    else:  # interpreter smoke run: the kernels directly
        from sketchrnn.fast import triton_lstm

        if kind == "layer_norm":
            hs = triton_lstm.ln_lstm_sequence(xp, w, lnp["gamma"], lnp["beta"], lnp["gamma_c"], lnp["beta_c"], c0, h0,
                                              m, 1.0)[0]
        else:
            hs = triton_lstm.lstm_sequence(xp, w, c0, h0, m, 1.0)[0]
    (hs * dh).sum().backward()
    return hs, [t.grad for t in ins], (xp, w, c0, h0, m, dh, seq)


def time_recurrence(state, device: str, reps: int) -> list[float]:
    from sketchrnn.fast import cuda as fc

    xp, w, c0, h0, m, dh, seq = state
    times = []
    for _ in range(reps):
        for t in (xp, w, c0, h0):
            t.grad = None
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        hs = fc.run_sequence_accelerated(seq, xp, (c0, h0), m, "bench")[0]
        (hs * dh).sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


# the recurrent products alone: (name, (Z, M, K, N), right factor transposed)
GEMMS = [("dec fw h@W", (1, 100, 512, 2048), False), ("dec bw g@W^T", (1, 100, 2048, 512), True),
         ("enc fw h@W", (2, 100, 256, 1024), False), ("enc bw g@W^T", (2, 100, 1024, 256), True)]
GEMM_TILES = [(32, 16, 32), (32, 16, 64), (16, 32, 64), (64, 32, 32), (32, 64, 32)]


def gemm(args, res, save) -> None:
    """Each product 100 times in one CUDA graph: cuBLAS (torch.matmul) vs the tile kernel."""
    from sketchrnn.fast import triton_lstm

    shapes = GEMMS if not args.dry_run else [("tiny", (1, 20, 64, 32), False), ("tiny^T", (2, 7, 32, 16), True)]
    tiles = GEMM_TILES if not args.dry_run else [(16, 16, 16)]
    print(f"\n{'gemm':>14} | {'variant':>12} | {'us/call':>8} | {'vs cuBLAS':>9} | {'rel err':>8}", flush=True)
    for name, (Z, M, K, N), tr in shapes:
        g = torch.Generator().manual_seed(0)
        a64 = torch.randn(Z, M, K, generator=g, dtype=torch.float64)
        b64 = torch.randn(Z, N, K, generator=g, dtype=torch.float64).transpose(1, 2) if tr else \
            torch.randn(Z, K, N, generator=g, dtype=torch.float64)
        ref = a64 @ b64
        a = a64.float().to(args.device)
        b = b64.float().to(args.device)
        if Z == 1:
            a, b, ref = a[0], b[0], ref[0]
        base = None
        for tile in [None] + tiles:
            row = {"gemm": name, "Z": Z, "M": M, "K": K, "N": N, "transposed": tr, "tiles": list(tile) if tile else None}
            try:
                fn = (lambda: torch.matmul(a, b)) if tile is None else (lambda t=tile: triton_lstm.mm(a, b, t))
                out = fn()
                row["rel_err"] = rel(out, ref)
                if args.device == "cuda":
                    for _ in range(3):
                        fn()
                    torch.cuda.synchronize()
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        for _ in range(100):
                            fn()
                    ts = []
                    for _ in range(5):
                        torch.cuda.synchronize()
                        t0 = time.perf_counter()
                        graph.replay()
                        torch.cuda.synchronize()
                        ts.append((time.perf_counter() - t0) / 100)
                    row["us_per_call"] = round(statistics.median(ts) * 1e6, 2)
                    if tile is None:
                        base = row["us_per_call"]
                    elif base:
                        row["speedup_vs_cublas"] = round(base / row["us_per_call"], 2)
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
            res.setdefault("gemm", []).append(row)
            save()
            label = "cuBLAS" if tile is None else "x".join(map(str, tile))
            if "error" in row:
                print(f"{name:>14} | {label:>12} | ERROR {row['error']}", flush=True)
                continue
            us = f"{row['us_per_call']:8.2f}" if "us_per_call" in row else f"{'-':>8}"
            sp = f"{row['speedup_vs_cublas']:8.2f}x" if "speedup_vs_cublas" in row else f"{'-':>9}"
            print(f"{name:>14} | {label:>12} | {us} | {sp} | {row['rel_err']:8.1e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--dry-run", action="store_true", help="tiny shapes, two tile settings (CPU interpreter)")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--no-gemm", action="store_true", help="skip the products-alone section")
    ap.add_argument("--persistent", action="store_true",
                    help="the persistent kernels (one launch per recurrence) at the PTILES settings, against the "
                         "compiled path and the step kernels at their default tiles only")
    ap.add_argument("--ptiles", type=int, default=None,
                    help="only the first N persistent tile settings (the H200 of 2026-11-27 put the default, "
                         "32x16x64/128 with 8 warps, first at every shape)")
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    from sketchrnn.fast import cuda as fc
    from sketchrnn.fast import triton_lstm

    if not triton_lstm.available():
        sys.exit("bench_triton_lstm: the triton package is not installed (pip install triton)")
    shapes = {k: SHAPES[k] for k in args.shapes.split(",")}
    tiles, ptiles = TILES, PTILES
    if args.dry_run:  # (the interpreter runs a persistent grid only with one program per direction)
        shapes = {"tiny_dec": (1, 20, 32, 4), "tiny_enc": (2, 7, 16, 3), "tiny_ln": (1, 20, 32, 3)}
        tiles = [((16, 16, 16), (16, 16, 16), 4), ((32, 16, 32), (32, 16, 32), 4)]
        ptiles = [((32, 32, 16), (32, 32, 16), 4), ((32, 16, 16), (32, 16, 16), 4)]
    if args.ptiles is not None:
        ptiles = ptiles[:max(1, args.ptiles)]
    out_path = args.json_out or (os.path.join(os.environ["OUT"], "bench_triton_lstm.json") if os.environ.get("OUT")
                                 else None)
    dev_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu (Triton interpreter)"
    res = {"device": dev_name, "torch": torch.__version__, "triton": __import__("triton").__version__,
           "date": time.strftime("%Y-%m-%d"), "rows": []}

    def save() -> None:
        if out_path:
            Path(out_path).write_text(json.dumps(res, indent=1))

    print(f"# bench_triton_lstm: {dev_name}, torch {torch.__version__}, triton {res['triton']}", flush=True)
    print(f"{'shape':>12} | {'variant':>12} | {'fw tiles':>13} | {'bw tiles':>13} | {'w':>2} | {'ms/rec':>8} | "
          f"{'us/step':>8} | {'vs comp':>7} | {'out err':>8} | {'grad err':>8}", flush=True)
    for name, (D, B, H, T) in shapes.items():
        kind = KIND.get(name, "lstm")
        ref_hs, ref_g = reference(D, B, H, T, args.device, kind)
        variants = [("compiled", None, False)] if args.device == "cuda" else []
        shape_tiles = tiles if args.dry_run else TILES_FOR.get(name, tiles)
        if args.persistent:
            shape_tiles = shape_tiles[:1]
        if kind == "lstm":
            variants += [("triton", t, False) for t in shape_tiles]
        if args.persistent:  # then the best persistent setting with TF32 x3 products and in TF32
            variants += [("persistent", t, False) for t in ptiles]
            if args.device == "cuda":
                variants += [("persistent-tf32x3", None, False), ("compiled+tf32", None, True),
                             ("persistent+tf32", None, True)]
            else:  # the interpreter: the choice of the best setting for the products' rows runs here too
                variants += [("persistent-tf32x3", None, False)]
        if args.device == "cuda" and not args.persistent:  # the best float32 tile setting of this shape with three TF32
            # products per product (float32-level error on the tensor cores), then TF32 (what training
            # with matmul_precision "high" runs): the compiled path against that setting, in TF32
            variants += [("triton-tf32x3", None, False), ("compiled+tf32", None, True), ("triton+tf32", None, True)]
        base: dict[bool, float] = {}  # compiled ms per precision (tf32 or not)
        for variant, tl_, tf32 in variants:
            row = {"shape": name, "D": D, "B": B, "H": H, "T": T, "variant": variant}
            if variant in ("triton+tf32", "triton-tf32x3", "persistent+tf32", "persistent-tf32x3"):
                # (not `kind`: that is the cell, which run_once needs; reusing the name sent the
                # TF32 rows of 2026-11-27's H200 run to a "persistent" cell: KeyError 'gamma')
                family = variant[:-5] if variant.endswith("+tf32") else variant[:-7]  # "triton" / "persistent"
                done = [r for r in res["rows"] if r["shape"] == name and r["variant"] == family
                        and "error" not in r]  # (untimed on the interpreter: the first)
                best = min(done, key=lambda r: r.get("ms_per_recurrence", 0.0), default=None)
                if best is None and family == "persistent":
                    continue  # no persistent setting ran at this shape
                tl_ = ((tuple(best["fw_tiles"]), tuple(best["bw_tiles"]), best["warps"]) if best  # type: ignore[assignment]
                       else shape_tiles[0])
            try:
                if args.device == "cuda":
                    torch.backends.cuda.matmul.allow_tf32 = tf32
                persistent = variant.startswith("persistent")
                if tl_ is not None and persistent:
                    # (the step kernels' tiles decide whether Triton takes this size at all)
                    triton_lstm.set_blocks(fw=tiles[0][0], bw=tiles[0][1], warps=tiles[0][2],
                                           pfw=tl_[0], pbw=tl_[1], pwarps=tl_[2])
                    row["fw_tiles"], row["bw_tiles"], row["warps"] = list(tl_[0]), list(tl_[1]), tl_[2]
                    triton_lstm.set_persistent(True)
                    probe = torch.empty(0, device=args.device)
                    if not (triton_lstm.supports_size(H) and triton_lstm.persistent_grid(probe, B, H, D, "pfw")
                            and triton_lstm.persistent_grid(probe, B, H, D, "pbw")):
                        continue  # this grid cannot be resident at once here
                elif tl_ is not None:
                    triton_lstm.set_blocks(fw=tl_[0], bw=tl_[1], warps=tl_[2])
                    row["fw_tiles"], row["bw_tiles"], row["warps"] = list(tl_[0]), list(tl_[1]), tl_[2]
                    if not triton_lstm.supports_size(H):
                        continue
                fc.configure(triton=tl_ is not None)
                triton_lstm.set_fp32_products("tf32x3" if variant.endswith("-tf32x3") else "ieee")
                if kind == "layer_norm" and variant.startswith("triton"):
                    continue  # the step kernels are plain-LSTM only
                hs, grads, state = run_once(variant, D, B, H, T, args.device, kind=kind)
                if tl_ is not None:
                    row["mode"] = triton_lstm.last_mode()
                    if persistent:
                        row["barrier_timeouts"] = triton_lstm.barrier_timeouts()
                row["out_rel_err"] = rel(hs, ref_hs)
                row["grad_rel_err"] = max(rel(a, b) for a, b in zip(grads, ref_g))
                if args.device == "cuda":
                    ts = time_recurrence(state, args.device, 3)  # capture done; warm
                    ts = time_recurrence(state, args.device, args.reps)
                    ms = statistics.median(ts) * 1e3
                    row["ms_per_recurrence"] = round(ms, 3)
                    row["us_per_step_pair"] = round(ms * 1e3 / T, 2)
                    row["accel"] = fc.status()
                    if variant.startswith("compiled"):
                        base[tf32] = ms
                    elif tf32 in base:  # against the compiled path at the same precision
                        row["speedup_vs_compiled"] = round(base[tf32] / ms, 2)
            except Exception as e:  # report and go on
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False
                triton_lstm.set_fp32_products("ieee")
                triton_lstm.set_persistent(False)
            res["rows"].append(row)
            save()
            if "error" in row:
                print(f"{name:>12} | {variant:>12} | ERROR {row['error']}", flush=True)
                continue
            ft = "x".join(map(str, row.get("fw_tiles", []))) or "-"
            bt = "x".join(map(str, row.get("bw_tiles", []))) or "-"
            ms = f"{row['ms_per_recurrence']:8.3f}" if "ms_per_recurrence" in row else f"{'-':>8}"
            us = f"{row['us_per_step_pair']:8.2f}" if "us_per_step_pair" in row else f"{'-':>8}"
            sp = f"{row['speedup_vs_compiled']:6.2f}x" if "speedup_vs_compiled" in row else f"{'-':>7}"
            print(f"{name:>12} | {variant:>12} | {ft:>13} | {bt:>13} | {row.get('warps', '-'):>2} | {ms} | {us} | {sp} | "
                  f"{row['out_rel_err']:8.1e} | {row['grad_rel_err']:8.1e}", flush=True)
    if not args.no_gemm:
        gemm(args, res, save)
    fc.configure(triton=False)
    triton_lstm.set_blocks(*TILES[0], pfw=PTILES[0][0], pbw=PTILES[0][1], pwarps=PTILES[0][2])
    print("# done" + (f"; JSON: {out_path}" if out_path else ""), flush=True)


if __name__ == "__main__":
    main()
