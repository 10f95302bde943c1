"""Ship a trained checkpoint inside the package: float16 safetensors + a model card.

    python scripts/ship_model.py runs/cat/best.pt --name cat \
        --data ../shared/data/distilled/cat.npz --real ../shared/data/quickdraw/simplified/cat.ndjson \
        --teacher 8.2587 --teacher-real 8.1043 --gpu-minutes 0 --note "..."

The figures in the card are measured on the shipped (float16) weights, on the whole test
split, with `sketchrnn.evaluate.evaluate_model` (the same code as `sketchrnn evaluate`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--name", required=True)
    ap.add_argument("--data", required=True, help="npz whose test split is scored")
    ap.add_argument("--real", default=None, help="QuickDraw simplified .ndjson of real drawings")
    ap.add_argument("--teacher", type=float, default=None, help="teacher nll_per_point on the test split")
    ap.add_argument("--teacher-real", type=float, default=None)
    ap.add_argument("--gpu-minutes", type=float, default=0.0)
    ap.add_argument("--cpu-minutes", type=float, default=0.0)
    ap.add_argument("--note", default="")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from sketchrnn.checkpoint import load_model, read_checkpoint, save_weights, weights_dir
    from sketchrnn.config import Config
    from sketchrnn.data import load_npz
    from sketchrnn.data.quickdraw import read_ndjson
    from sketchrnn.evaluate import evaluate_model

    ck = read_checkpoint(a.checkpoint)
    step = int(ck["step"])
    src = load_model(a.checkpoint)
    out = weights_dir() / f"{a.name}.safetensors"
    save_weights(out, src.model, Config.from_dict(json.loads(ck["config"])), src.scale_factor, src.class_names,
                 half=True, extra={"step": str(step)})
    lm = load_model(out)  # score what is shipped (float16 weights)
    test = load_npz(a.data, splits=["test"])["test"]
    res = evaluate_model(lm, test, batch_size=100)
    real = None
    if a.real:
        real = evaluate_model(lm, [d.stroke3 for d in read_ndjson(a.real)], batch_size=100)
    cfg = lm.config
    main_metric = "elbo_per_point" if cfg.conditional else "nll_per_point"
    gap = (res[main_metric] / a.teacher - 1.0) * 100 if a.teacher else None
    bar = 3.0 if cfg.conditional else 2.0
    date = datetime.date.today().isoformat()

    def f(v):
        return "—" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))

    lines = [
        f"# Model card: `{a.name}`", "",
        f"{'Conditional VAE' if cfg.conditional else 'Decoder-only'} sketch-rnn, {cfg.dec_model} decoder "
        f"{cfg.dec_rnn_size}" + (f", {cfg.enc_model} encoder {cfg.enc_rnn_size}, z {cfg.z_size}" if cfg.conditional else "")
        + f", {cfg.num_mixture} mixtures, max_seq_len {cfg.max_seq_len}.", "",
        f"- Data: `{Path(a.data).name}` ({', '.join(lm.class_names)}); "
        "the distilled files are samples of Magenta's pretrained decoders, not human drawings.",
        f"- Training: {step} steps, config below; {a.gpu_minutes:g} GPU minutes, {a.cpu_minutes:g} CPU minutes "
        f"({platform.processor() or platform.machine()}, torch {torch.__version__}).",
        f"- Shipped as float16 safetensors ({out.stat().st_size / 1e6:.1f} MB); figures below are of these weights.",
        f"- Measured {date} with `sketchrnn evaluate` on the whole test split ({res['n_sketches']} sketches).", "",
        "| metric | this model | teacher | gap |", "|---|---|---|---|",
        f"| {main_metric} (test) | {f(res[main_metric])} | {f(a.teacher)} | "
        f"{'—' if gap is None else f'{gap:+.1f} % (bar: within {bar:g} %)'} |",
    ]
    if cfg.conditional:
        lines.append(f"| recon_nll_per_point (test, z = mu) | {f(res['recon_nll_per_point'])} | {f(a.teacher)} | must be below the teacher |")
        lines.append(f"| L_KL (test, mean over z dims) | {f(res['L_KL'])} | | |")
    lines.append(f"| Magenta L_R (test) | {f(res['L_R'])} | | |")
    if real is not None:
        lines.append(f"| {main_metric}, {real['n_sketches']} real QuickDraw drawings | {f(real[main_metric])} | "
                     f"{f(a.teacher_real)} | |")
    lines += ["", a.note, "", "Config:", "", "```json", Config.from_dict(json.loads(ck["config"])).to_json(), "```", ""]
    card = weights_dir() / f"{a.name}.md"
    card.write_text("\n".join(lines))
    print(json.dumps({"name": a.name, "step": step, "test": res, "real": real, "gap_percent": gap}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
