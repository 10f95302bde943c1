"""Kernel-like operations per recurrent time step of the fast training path, on the CPU.

On a GPU a training step of sketch-rnn is launch bound (benchmarks/RESULTS.md): what it costs
is roughly the number of kernels per time step x 250 steps. This script counts, with
``torch.profiler`` on the CPU, the operations that become kernels on a GPU — matrix products,
the compiled pointwise graphs (torch.compile / inductor, as on CUDA), adds, sums, copies,
cats — in one forward + backward of ``fast_losses``, at T = 20 and T = 40; the difference / 20
is the cost per time step (encoder and decoder together), free of the per-sequence work.
Views (reshape, select, transpose, detach ...) are not counted: they launch nothing.

    python benchmarks/count_step_ops.py                 # layer_norm and hyper, both layouts
    python benchmarks/count_step_ops.py --cells lstm

``--eager`` counts without torch.compile (every pointwise op separately). Needs a C++ compiler
for inductor (about a minute of compiling on 2 cores).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

KERNEL_LIKE = {"aten::matmul", "aten::zero_", "aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::add", "aten::add_", "aten::sum",
               "aten::copy_", "aten::cat", "aten::stack", "aten::mul", "aten::fill_", "aten::sigmoid", "aten::tanh",
               "aten::sigmoid_backward", "aten::tanh_backward", "aten::native_layer_norm",
               "aten::native_layer_norm_backward", "aten::sub", "aten::div", "aten::clone"}


def count(cell: str, T: int, launch_bound: bool, pointwise) -> collections.Counter:
    from torch.profiler import ProfilerActivity, profile

    from sketchrnn.config import ModelConfig
    from sketchrnn.fast import decoder as fd
    from sketchrnn.model import SketchRNN

    fd.set_launch_bound(launch_bound)
    cfg = ModelConfig(enc_model="lstm", dec_model=cell, enc_rnn_size=32, dec_rnn_size=64, z_size=8, num_mixture=3,
                      hyper_rnn_size=32, hyper_embedding_size=8, max_seq_len=T)
    torch.manual_seed(0)
    model = SketchRNN(cfg).train()
    B = 4
    x = torch.zeros(B, T + 1, 5)  # (B, T+1, 5): start token, then pen-down offsets
    x[:, 0, 2] = 1.0
    x[:, 1:, :2] = torch.randn(B, T, 2)
    x[:, 1:, 2] = 1.0
    lengths = torch.full((B,), T)
    plain = fd.run_sequence
    if pointwise is not None:  # the compiled pointwise math, as the CUDA path runs it
        fns = pointwise
        fd.run_sequence = lambda seq, xp, st, m, pointwise=None: plain(seq, xp, st, m, pointwise=fns)
    try:
        for profiled in (False, True):  # the first run compiles
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                out = fd.fast_losses(model, x, lengths)
                (out["L_R"] + out["L_KL"]).backward()
    finally:
        fd.run_sequence = plain
        fd.set_launch_bound("auto")
    c: collections.Counter = collections.Counter()
    for e in prof.events():
        if e.name.startswith("## Call CompiledFxGraph"):
            c["compiled graph"] += 1
            continue
        if e.name not in KERNEL_LIKE:
            continue
        par = e.cpu_parent  # count an op once: not inside another aten op or a compiled graph
        while par is not None and not (par.name.startswith("aten::") or par.name.startswith("## Call")):
            par = par.cpu_parent
        if par is None:
            c[e.name] += 1
    return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default="layer_norm,hyper")
    ap.add_argument("--eager", action="store_true", help="no torch.compile of the pointwise math")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    from sketchrnn.fast import decoder as fd

    pointwise = None if a.eager else {k: torch.compile(f, fullgraph=True) for k, f in fd._EAGER.items()}
    rows = []
    for cell in a.cells.split(","):
        for lb in (False, True):
            c20, c40 = count(cell, 20, lb, pointwise), count(cell, 40, lb, pointwise)
            per = {k: (c40[k] - c20[k]) / 20 for k in set(c20) | set(c40) if c40[k] != c20[k]}
            rows.append({"cell": cell, "launch_bound": lb, "per_step": round(sum(per.values()), 2),
                         "by_op": dict(sorted(per.items(), key=lambda kv: -kv[1]))})
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"kernel-like ops per time step (encoder lstm + decoder), {'eager' if a.eager else 'compiled'} pointwise")
        for r in rows:
            ops = ", ".join(f"{k.replace('aten::', '')} {v:g}" for k, v in r["by_op"].items())
            print(f"{r['cell']:>10} | launch-bound {'on ' if r['launch_bound'] else 'off'} | {r['per_step']:5.1f} | {ops}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
