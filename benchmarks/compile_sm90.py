"""Compile the Triton LSTM kernels for an NVIDIA GPU without one: registers, spills, shared memory.

Triton's wheels carry the NVIDIA backend and ptxas, so ``triton.compile`` can lower a kernel all
the way to a cubin on a machine with no GPU (here: for sm_90, the H100 / H200). That catches what
the CPU interpreter cannot: constructs the compiler rejects, and tile settings that spill
registers to local memory. Prints one row per kernel, tile setting and product precision
(registers and spill bytes from ``ptxas -v`` on the kernel's PTX) and, with
``--ptx-grep``, the PTX lines that match (e.g. ``atom``: the persistent kernels' barrier).

    python benchmarks/compile_sm90.py                      # every kernel at its default tiles
    python benchmarks/compile_sm90.py --kernels persistent --tiles 32,16,64,4 64,16,64,8 --prec ieee tf32x3
    python benchmarks/compile_sm90.py --json-out compile.json

Tiles ``BB,BH,BK,WARPS`` are the forward's; the backward gets ``BK * 2`` (as the defaults).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

P32 = "*fp32"
SIGS = {
    "fw_step": dict(xp_ptr=P32, w_ptr=P32, hp_ptr=P32, cp_ptr=P32, m_ptr=P32, a_ptr=P32, c_ptr=P32, h_ptr=P32, B="i32",
                    forget_bias="fp32", s_x="i32", s_h="i32", s_m="i32", s_a="i32"),
    "bw_step": dict(gn_ptr=P32, wt_ptr=P32, dh_ptr=P32, a_ptr=P32, c_ptr=P32, cp_ptr=P32, m_ptr=P32, dc_ptr=P32,
                    g_ptr=P32, B="i32", s_g="i32", s_h="i32", s_dh="i32", s_m="i32", s_a="i32"),
    "fw_seq": dict(xp_ptr=P32, w_ptr=P32, hs_ptr=P32, cs_ptr=P32, m_ptr=P32, a_ptr=P32, cnt_ptr="*i32",
                   err_ptr="*i32", T="i32", B="i32", forget_bias="fp32", s_xt="i32", s_hd="i32", s_mt="i32",
                   s_ad="i32", s_at="i32", NP="i32", MAX_SPIN="i32"),
    "bw_seq": dict(g_ptr=P32, wt_ptr=P32, dhs_ptr=P32, dl_ptr=P32, a_ptr=P32, cs_ptr=P32, m_ptr=P32, dc_ptr=P32,
                   cnt_ptr="*i32", err_ptr="*i32", T="i32", B="i32", s_gd="i32", s_hd="i32", s_dt="i32",
                   s_mt="i32", NP="i32", MAX_SPIN="i32"),
    "lnlstm_fw_seq": dict(xp_ptr=P32, w_ptr=P32, gam_ptr=P32, bet_ptr=P32, gamc_ptr=P32, betc_ptr=P32, hs_ptr=P32,
                          cs_ptr=P32, m_ptr=P32, a_ptr=P32, xh_ptr=P32, ch_ptr=P32, rs_ptr=P32, rsc_ptr=P32, st_ptr=P32,
                          cnt_ptr="*i32", err_ptr="*i32", T="i32", B="i32", forget_bias="fp32", eps="fp32",
                          s_xt="i32", s_hd="i32", s_mt="i32", s_ad="i32", s_at="i32", s_cd="i32", s_ct="i32",
                          MAX_SPIN="i32"),
    "lnlstm_bw_seq": dict(g_ptr=P32, wt_ptr=P32, dhs_ptr=P32, dl_ptr=P32, a_ptr=P32, xh_ptr=P32, ch_ptr=P32,
                          rs_ptr=P32, rsc_ptr=P32, cs_ptr=P32, m_ptr=P32, gam_ptr=P32, gamc_ptr=P32, betc_ptr=P32,
                          dc_ptr=P32, dgam_ptr=P32, dbet_ptr=P32, dgamc_ptr=P32, dbetc_ptr=P32, st_ptr=P32,
                          cnt_ptr="*i32", err_ptr="*i32", T="i32", B="i32", s_gd="i32", s_hd="i32", s_dt="i32",
                          s_mt="i32", s_cd="i32", MAX_SPIN="i32"),
}
KERNELS = {"steps": ("fw_step", "bw_step"), "persistent": ("fw_seq", "bw_seq"),
           "layer_norm": ("lnlstm_fw_seq", "lnlstm_bw_seq"), "hyper": ("hyper_fw_seq", "hyper_bw_seq")}
HYPER = {"hyper_size": 256, "embedding": 32}  # the paper's hyper cell (Nh) and hyper_norm embedding (E)


def _ptxas_for(arch: int) -> str:
    """The ptxas Triton itself assembles ``arch`` with: Triton 3.9 carries two (CUDA 12.9 for
    sm < 90, 13.x for sm_90 and up) and writes PTX only the newer one reads; older wheels carry one."""
    import triton
    try:
        from triton.backends.nvidia.compiler import get_ptxas
        tool = get_ptxas(arch)
        path = getattr(tool, "path", None)
        if path:
            return str(path)
    except (ImportError, TypeError, AttributeError):
        pass
    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas")


def _kernel_fn(name: str):
    """The kernel's Python function and its argument types (pointers float32 but the barrier
    counter and error flag; the HyperLSTM kernels' scalars by name)."""
    import inspect

    if name.startswith("hyper"):
        from sketchrnn.fast import triton_hyper as thy

        fn = getattr(thy, "_" + name)
        sig = {}
        for n in inspect.signature(fn).parameters:
            if n.endswith("_ptr"):
                sig[n] = "*i32" if n in ("cnt_ptr", "err_ptr") else P32
            elif n in ("T", "B", "TS", "KS", "MAX_SPIN"):
                sig[n] = "i32"
            elif n in ("forget_bias", "yforget_bias", "eps"):
                sig[n] = "fp32"
        return fn, sig
    from sketchrnn.fast import triton_lstm as tlm

    return getattr(tlm, "_" + name if name.startswith("lnlstm") else "_lstm_" + name), SIGS[name]


def compile_one(name: str, H: int, tiles: tuple[int, int, int], warps: int, prec: str, arch: int,
                ptx_grep: str | None = None) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    pyfn, types_ = _kernel_fn(name)
    fn = triton.jit(pyfn)
    consts = dict(H=H, HAS_MASK=True, BB=tiles[0], BH=tiles[1], BK=tiles[2], PREC=prec)
    if name.startswith("lnlstm") or name.startswith("hyper"):
        consts["NJ"] = H // tiles[1]
    if name.startswith("hyper"):
        consts.update(NH=HYPER["hyper_size"], E=HYPER["embedding"], NHB=HYPER["hyper_size"] // consts["NJ"])
    if name == "bw_step":
        consts["HAS_NEXT"] = True
    # the signature in the function's own parameter order (constexpr ones by index)
    names = list(inspect.signature(fn.fn).parameters)
    sig = {n: types_[n] if n in types_ else "constexpr" for n in names}
    src = ASTSource(fn, sig, constexprs={(names.index(k),): v for k, v in consts.items()})
    k = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": warps})
    row = {"kernel": name, "H": H, "tiles": list(tiles), "warps": warps, "prec": prec, "arch": arch,
           "shared_bytes": k.metadata.shared}
    # ptxas -v on the kernel's PTX (the assembler Triton itself uses) for registers and spills
    ptxas = _ptxas_for(arch)
    sm = f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"
    with tempfile.TemporaryDirectory() as tmp:
        ptx = Path(tmp) / "k.ptx"
        ptx.write_text(k.asm["ptx"])
        r = subprocess.run([str(ptxas), f"-arch={sm}", "-v", str(ptx), "-o", str(Path(tmp) / "k.cubin")],
                           capture_output=True, text=True)
    info = r.stdout + r.stderr
    regs = re.search(r"Used (\d+) registers", info)
    spill = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", info)
    if r.returncode != 0 or regs is None or spill is None:
        raise RuntimeError(f"ptxas -v failed: {info[-300:]!r}")
    row.update(registers=int(regs.group(1)), stack_bytes=int(spill.group(1)), spill_store_bytes=int(spill.group(2)),
               spill_load_bytes=int(spill.group(3)))
    if ptx_grep:
        row["ptx"] = [ln.strip() for ln in k.asm["ptx"].splitlines() if ptx_grep in ln]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", nargs="+", choices=list(KERNELS), default=list(KERNELS))
    ap.add_argument("--tiles", nargs="+", default=None, help="BB,BH,BK,WARPS (default: the kernels' own)")
    ap.add_argument("--prec", nargs="+", default=["ieee"], choices=["ieee", "tf32", "tf32x3"])
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100 / H200)")
    ap.add_argument("--ptx-grep", default=None)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    try:
        import triton
    except ImportError:
        sys.exit("compile_sm90: the triton package is not installed")
    from sketchrnn.fast import triton_lstm as tlm

    rows = []
    print(f"# triton {triton.__version__}, sm_{args.arch}, H {args.hidden}", flush=True)
    for kind in args.kernels:
        if args.tiles:
            settings = [tuple(int(v) for v in t.split(",")) for t in args.tiles]
        else:  # the defaults of this kind
            b = tlm.blocks()
            fw, warps = (b["fw"], b["warps"]) if kind == "steps" else (b["hfw" if kind == "hyper" else "pfw"],
                                                                         b["pwarps"])
            settings = [(*fw, warps)]
        for prec in args.prec:
            for bb, bh, bk, warps in settings:
                for name, bk_ in zip(KERNELS[kind], (bk, 2 * bk)):
                    try:
                        row = compile_one(name, args.hidden, (bb, bh, bk_), warps, prec, args.arch, args.ptx_grep)
                    except Exception as e:  # report and go on
                        row = {"kernel": name, "tiles": [bb, bh, bk_], "warps": warps, "prec": prec,
                               "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
                    rows.append(row)
                    if "error" in row:
                        print(f"{name:>8} {bb}x{bh}x{bk_} w{warps} {prec:>6}: ERROR {row['error']}", flush=True)
                    else:
                        print(f"{name:>8} {bb}x{bh}x{bk_} w{warps} {prec:>6}: {row['registers']:3d} registers, "
                              f"{row['spill_store_bytes']:3d} B spilled, {row['shared_bytes']} B shared", flush=True)
                        for ln in row.get("ptx", []):
                            print(f"    {ln}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"triton": triton.__version__, "rows": rows}, indent=1))
    sys.exit(1 if any("error" in r for r in rows) else 0)


if __name__ == "__main__":
    os.environ.setdefault("TRITON_CACHE_DIR", tempfile.mkdtemp(prefix="sketchrnn-triton-"))
    main()
