"""Ship a trained checkpoint inside the package: float16 safetensors + a model card.

    python scripts/ship_model.py runs/cat/best.pt --name cat \
        --data ../shared/data/distilled/cat.npz --real ../shared/data/quickdraw/simplified/cat.ndjson \
        --teacher 8.2587 --teacher-real 8.1043 --gpu-minutes 0 --note "..."

A model of several classes (catpig) repeats --data/--real/--teacher/--teacher-real once per
class, in the same order: each class is scored on its own test split against its own teacher.

The figures in the card are measured on the shipped (float16) weights, on the whole test
split, with `sketchrnn.evaluate.evaluate_model` (the same code as `sketchrnn evaluate`). The
card's quick check is the same figure on the first 500 test sketches: the test suite reproduces
it in seconds (tests/test_shipped_models.py; SKETCHRNN_FULL_CARD_CHECK=1 redoes the whole splits).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import torch


QUICK_N = 500  # test sketches in the card's quick check (a multiple of the scoring batch, 100)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--name", required=True)
    ap.add_argument("--data", action="append", required=True, help="npz whose test split is scored (repeatable)")
    ap.add_argument("--real", action="append", default=[], help="QuickDraw simplified .ndjson of real drawings")
    ap.add_argument("--teacher", action="append", type=float, default=[], help="teacher nll_per_point on the test split")
    ap.add_argument("--teacher-real", action="append", type=float, default=[])
    ap.add_argument("--gpu-minutes", type=float, default=0.0)
    ap.add_argument("--cpu-minutes", type=float, default=0.0)
    ap.add_argument("--note", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out-dir", default=None, help="where NAME.safetensors and NAME.md go (default: the package's weights)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from sketchrnn.checkpoint import load_model, quick_check_line, read_checkpoint, save_weights, weights_dir
    from sketchrnn.config import Config
    from sketchrnn.data import load_npz
    from sketchrnn.data.quickdraw import read_ndjson
    from sketchrnn.evaluate import evaluate_model

    ck = read_checkpoint(a.checkpoint)
    step = int(ck["step"])
    src = load_model(a.checkpoint)
    out_dir = Path(a.out_dir) if a.out_dir else weights_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{a.name}.safetensors"
    shipped_cfg = Config.from_dict(json.loads(ck["config"]))
    # a GPU chunk reads gpu_data/expanded/C.npz, the exact unpacked copy of the --data file of the
    # same name (benchmarks/make_gpu_data.py): the card and header name the file users have
    by_name = {Path(d).name: d for d in a.data}
    shipped_cfg.data.paths = [by_name.get(Path(p).name, p) if Path(p).parent.name == "expanded" else p
                              for p in shipped_cfg.data.paths]
    ck["config"] = shipped_cfg.to_json()
    save_weights(out, src.model, shipped_cfg, src.scale_factor, src.class_names,
                 half=True, extra={"step": str(step), "weights": src.info["weights"]})
    ema_decay = shipped_cfg.train.ema_decay
    lm = load_model(out)  # score what is shipped (float16 weights)
    cfg = lm.config
    main_metric = "elbo_per_point" if cfg.conditional else "nll_per_point"
    bar = 3.0 if cfg.conditional else 2.0
    date = datetime.date.today().isoformat()

    def at(xs: list, i: int):
        return xs[i] if i < len(xs) else None

    scored = []  # per class: (name, test, real (within max_seq_len), real (all, or None), teacher, teacher_real, gap %)
    for i, data in enumerate(a.data):
        test = load_npz(data, splits=["test"])["test"]
        res = evaluate_model(lm, test, batch_size=100)
        # the same measure on the first QUICK_N test sketches (same z noise: drawn in input order,
        # QUICK_N a multiple of the batch): the figure the test suite reproduces in seconds
        quick_n = min(QUICK_N, len(test))
        res["quick"] = (quick_n, evaluate_model(lm, test[:quick_n], batch_size=100)[main_metric])
        real = real_all = None
        if at(a.real, i):
            drawings = [d.stroke3 for d in read_ndjson(a.real[i])]
            # the teacher's real-drawing figure (../shared/README.md) counts only the drawings that
            # fit its max_seq_len (yoga: 24 of 25); score that subset like for like, and all of them
            fit = [s for s in drawings if len(s) <= cfg.max_seq_len]
            real = evaluate_model(lm, fit, batch_size=100)
            if len(fit) < len(drawings):
                real_all = evaluate_model(lm, drawings, batch_size=100)
        teacher = at(a.teacher, i)
        gap = (res[main_metric] / teacher - 1.0) * 100 if teacher else None
        scored.append((Path(data).stem, res, real, real_all, teacher, at(a.teacher_real, i), gap))

    def f(v):
        return "—" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))

    n_test = sum(r["n_sketches"] for _, r, *_ in scored)
    lines = [
        f"# Model card: `{a.name}`", "",
        f"{'Conditional VAE' if cfg.conditional else 'Decoder-only'} sketch-rnn, {cfg.dec_model} decoder "
        f"{cfg.dec_rnn_size}" + (f", {cfg.enc_model} encoder {cfg.enc_rnn_size}, z {cfg.z_size}" if cfg.conditional else "")
        + f", {cfg.num_mixture} mixtures, max_seq_len {cfg.max_seq_len}.", "",
        f"- Data: {', '.join(f'`{Path(d).name}`' for d in a.data)} ({', '.join(lm.class_names)}); "
        "the distilled files are samples of Magenta's pretrained decoders, not human drawings.",
        f"- Training: {step} steps, config below; {a.gpu_minutes:g} GPU minutes, {a.cpu_minutes:g} CPU minutes "
        f"({platform.processor() or platform.machine()}, torch {torch.__version__})"
        + (f"; shipped: the average of the weights (`train.ema_decay` {ema_decay:g})." if src.info["weights"] == "average"
           else "."),
        f"- Shipped as float16 safetensors, the mixture head (decoder.output) float32 ({out.stat().st_size / 1e6:.1f} MB);"
        " figures below are of these weights.",
        f"- Measured {date} with `sketchrnn evaluate` on the whole test split"
        + (" of each class" if len(scored) > 1 else "") + f" ({n_test} sketches).",
        *[quick_check_line(r["quick"][0], Path(d).name, main_metric, r["quick"][1]) for d, (_, r, *_) in zip(a.data, scored)],
        "",
        "| metric | this model | teacher | gap |", "|---|---|---|---|",
    ]
    def pct(g: float) -> str:  # a gap under 0.05 % keeps two decimals, so it never reads "-0.0 %"
        return f"{g:+.2f} %" if abs(g) < 0.05 else f"{g:+.1f} %"

    def gap_cell(ours: float, teacher: float) -> str:
        # two decimals and the distance to the bar in nats per point: "+3.0 %" next to "within 3 %"
        # read as a pass when the model was 0.002 short
        limit = teacher * (1.0 + bar / 100.0)
        side = f"{ours - limit:.4f} short" if ours > limit else f"{limit - ours:.4f} to spare"
        return f"{(ours / teacher - 1.0) * 100:+.2f} % (bar: within {bar:g} %; {side})"

    for cls, res, real, real_all, teacher, teacher_real, gap in scored:
        tag = f"{cls} " if len(scored) > 1 else ""
        lines.append(f"| {tag}{main_metric} (test) | {f(res[main_metric])} | {f(teacher)} | "
                     f"{'—' if gap is None else gap_cell(res[main_metric], teacher)} |")
        if cfg.conditional:
            lines.append(f"| {tag}recon_nll_per_point (test, z = mu) | {f(res['recon_nll_per_point'])} | {f(teacher)} | "
                         "must be below the teacher |")
            lines.append(f"| {tag}L_KL (test, mean over z dims) | {f(res['L_KL'])} | | |")
        lines.append(f"| {tag}Magenta L_R (test) | {f(res['L_R'])} | | |")
        if real is not None:
            within = f" (those within max_seq_len {cfg.max_seq_len}, as the teacher's figure)" if real_all else ""
            gap_real = pct((real[main_metric] / teacher_real - 1.0) * 100) if teacher_real else ""
            lines.append(f"| {tag}{main_metric}, {real['n_sketches']} real QuickDraw drawings{within} | "
                         f"{f(real[main_metric])} | {f(teacher_real)} | {gap_real} |")
        if real_all is not None:
            lines.append(f"| {tag}{main_metric}, all {real_all['n_sketches']} real drawings (with the longer ones) | "
                         f"{f(real_all[main_metric])} | | |")
    lines += ["", a.note, "", "Config:", "", "```json", Config.from_dict(json.loads(ck["config"])).to_json(), "```", ""]
    card = out_dir / f"{a.name}.md"
    card.write_text("\n".join(lines))
    print(json.dumps({"name": a.name, "step": step, "classes": [
        {"class": c, "test": r, "real": rr, "real_all": ra, "gap_percent": g} for c, r, rr, ra, _, _, g in scored]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
