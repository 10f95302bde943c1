"""Average the weight averages of several runs that left one checkpoint together (a "model soup").

Two or more runs resumed from the same checkpoint with different data orders (``--new-data
--set train.seed=N``) drift the same way but carry independent noise; the mean of their weight
averages keeps the drift and shrinks the noise, without the lag a longer averaging window of one
run adds (``benchmarks/tail_average.py`` measured that lag). Wortsman et al. 2022, "Model soups:
averaging weights of multiple fine-tuned models improves accuracy without increasing inference
time", do the same across fine-tunings of one pretrained model.

This script scores, on the same sketches with the same z noise (``sketchrnn evaluate``'s ELBO per
point), each run's own average, the uniform mean of all of them, and (from three runs on) the
greedy soup: runs added best first, each kept only if the soup does not get worse.

    python benchmarks/model_soup.py runs/yoga_a/last.pt runs/yoga_b/last.pt \
        --data ../shared/data/distilled/yoga.npz --split valid --limit 500 --threads 1

``--out-best FILE`` writes the best candidate as an average-only checkpoint (the format
``compact-checkpoint`` writes; the rest of the payload, loader state included, comes from the
best single run), so it can be shipped or resumed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="full checkpoints (with 'ema') of runs of one model")
    p.add_argument("--data", required=True, help=".npz with the split to score")
    p.add_argument("--split", default="valid")
    p.add_argument("--limit", type=int, default=500, help="first N sketches of the split")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-best", default="", help="write the best candidate here (average-only checkpoint)")
    p.add_argument("--dry-run", action="store_true", help="10 sketches")
    a = p.parse_args(argv)
    from sketchrnn.errors import SketchRNNError

    try:
        return _run(a)
    except SketchRNNError as e:
        print(f"model_soup: {e}", file=sys.stderr)
        return 2


def _run(a) -> int:
    import torch

    from sketchrnn.checkpoint import (_check_scale, _with_resume_mode, config_from_json, model_from_state,
                                      read_checkpoint, save_checkpoint)
    from sketchrnn.data.npz import load_npz
    from sketchrnn.errors import DataError, ModelFileError
    from sketchrnn.evaluate import evaluate_model

    torch.set_num_threads(a.threads)
    if len(a.checkpoints) < 2:
        raise DataError("need the checkpoints of at least two runs")
    runs = []  # (file, checkpoint)
    for f in a.checkpoints:
        ck = read_checkpoint(f)
        if not isinstance(ck.get("ema"), dict):
            raise ModelFileError(f"{f} holds no weight average ('ema'): pass full checkpoints of runs with train.ema_decay")
        runs.append((f, ck))
    first_file, first = runs[0]
    cfg = config_from_json(first["config"], first_file)
    scale = _check_scale(first["scale_factor"], first_file)
    for f, ck in runs[1:]:
        other = config_from_json(ck["config"], f)
        if other.model != cfg.model:
            raise DataError(f"{f} is another model than {first_file} (its model config differs): a soup needs runs of one model")
        if abs(float(ck["scale_factor"]) - scale) > 1e-6 * scale:
            raise DataError(f"{f} scales its offsets by {float(ck['scale_factor']):.6g}, {first_file} by {scale:.6g}: "
                            "the runs trained on different data")
        if set(ck["ema"]) != set(first["ema"]):
            raise ModelFileError(f"{f} holds other weights than {first_file}; the file is not a checkpoint of this model")
    limit = 10 if a.dry_run else a.limit
    sketches = load_npz(a.data, [a.split])[a.split][:limit]

    def mean_of(states):
        return {name: torch.stack([s[name].double() for s in states]).mean(0).float() for name in states[0]}

    t0 = time.time()
    rows: list[dict] = []
    states: list[dict] = []

    def score(label: str, members: list[int], state: dict) -> float:
        r = evaluate_model(model_from_state(first, state, label), sketches, seed=a.seed)
        rows.append({"candidate": label, "runs": [a.checkpoints[i] for i in members],
                     "steps": [int(runs[i][1]["step"]) for i in members],
                     "elbo_per_point": r["nll_per_point"], "recon_per_point": r["recon_nll_per_point"], "L_KL": r["L_KL"]})
        states.append(state)
        if r["recon_nll_per_point"] is None:  # decoder-only: the NLL itself, no recon or KL
            print(f"{label:28s} NLL {r['nll_per_point']:.5f}  ({time.time() - t0:.0f} s)", flush=True)
        else:
            print(f"{label:28s} ELBO {r['nll_per_point']:.5f} recon {r['recon_nll_per_point']:.4f} "
                  f"L_KL {r['L_KL']:.4f}  ({time.time() - t0:.0f} s)", flush=True)
        return r["nll_per_point"]

    single = [score(f"average of run {i + 1} (step {int(ck['step'])})", [i], ck["ema"]) for i, (_, ck) in enumerate(runs)]
    score(f"uniform soup of {len(runs)}", list(range(len(runs))), mean_of([ck["ema"] for _, ck in runs]))
    if len(runs) > 2:
        order = sorted(range(len(runs)), key=lambda i: single[i])
        kept, best_so_far = [order[0]], single[order[0]]
        for i in order[1:]:
            trial = kept + [i]
            if score(f"greedy: runs {'+'.join(str(j + 1) for j in trial)}", trial,
                     mean_of([runs[j][1]["ema"] for j in trial])) <= best_so_far:
                kept, best_so_far = trial, rows[-1]["elbo_per_point"]
    best = min(range(len(rows)), key=lambda i: rows[i]["elbo_per_point"])
    print(json.dumps({"best": rows[best], "rows": rows, "n_sketches": len(sketches)}))
    if a.out_best:
        base = runs[min(range(len(runs)), key=lambda i: single[i])][1]
        out = _with_resume_mode({**base, "ema": {k: v.detach().clone() for k, v in states[best].items()}}, "average-only")
        save_checkpoint(a.out_best, out)
        print(f"wrote {a.out_best} ({rows[best]['candidate']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
