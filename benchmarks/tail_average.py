"""Is a run's weight average too short or too long? Score tail averages of its checkpoints.

A training run with ``train.ema_decay`` d keeps an exponential average of its weights (a window
of ~1/(1-d) steps). Late in training at a small constant rate the trained weights wander around a
slowly moving optimum: a longer window removes more of that noise, a shorter one lags less behind
the drift. This script takes full checkpoints saved along one run (each holds the trained weights
``model`` and the average ``ema``; copy ``last.pt`` aside at every save) and scores, on the same
sketches with the same z noise (``sketchrnn evaluate``'s ELBO per point):

- the run's own average and the trained weights at the newest checkpoint,
- uniform averages of the trained weights of the newest k checkpoints (k = 2 .. N; a tail
  average over k saves, Polyak-Juditsky / SWA style),
- uniform averages of the run's averages at the newest k checkpoints (a longer, smoother window).

    python benchmarks/tail_average.py runs/yoga/snap_*.pt --data ../shared/data/distilled/yoga.npz \
        --split valid --limit 500 --threads 1

Checkpoints are ordered by their step. ``--out-best FILE`` writes the best candidate as an
average-only checkpoint (the format ``compact-checkpoint`` writes), so it can be shipped or resumed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="full checkpoints of one run (with 'ema')")
    p.add_argument("--data", required=True, help=".npz with the split to score")
    p.add_argument("--split", default="valid")
    p.add_argument("--limit", type=int, default=500, help="first N sketches of the split")
    p.add_argument("--ks", default="", help="comma-separated k to score (default: all 2..N)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-best", default="", help="write the best candidate here (average-only checkpoint)")
    p.add_argument("--dry-run", action="store_true", help="10 sketches, k = 2 only")
    a = p.parse_args(argv)
    from sketchrnn.errors import SketchRNNError

    try:
        return _run(a)
    except SketchRNNError as e:
        print(f"tail_average: {e}", file=sys.stderr)
        return 2


def _run(a) -> int:
    import torch

    from sketchrnn.checkpoint import _with_resume_mode, model_from_state, read_checkpoint, save_checkpoint
    from sketchrnn.data.npz import load_npz
    from sketchrnn.errors import DataError, ModelFileError
    from sketchrnn.evaluate import evaluate_model

    torch.set_num_threads(a.threads)
    by_step = {}  # one entry per step (a watcher may have copied the same save twice)
    for f in a.checkpoints:
        ck = read_checkpoint(f)
        if not isinstance(ck.get("ema"), dict):
            raise ModelFileError(f"{f} holds no weight average ('ema'): pass the full checkpoints of a run with train.ema_decay")
        by_step[ck["step"]] = (f, ck)
    steps = sorted(by_step)
    if len(steps) < 2:
        raise DataError("need full checkpoints from at least two different steps")
    newest = by_step[steps[-1]][1]
    limit = 10 if a.dry_run else a.limit
    sketches = load_npz(a.data, [a.split])[a.split][:limit]
    n = len(steps)
    ks = [2] if a.dry_run else ([int(k) for k in a.ks.split(",")] if a.ks else list(range(2, n + 1)))
    ks = [k for k in ks if 2 <= k <= n]

    def mean_of(states):
        return {name: torch.stack([s[name].double() for s in states]).mean(0).float() for name in states[0]}

    cands = [("average (run's own)", steps[-1], newest["ema"]), ("trained", steps[-1], newest["model"])]
    for k in ks:
        tail = [by_step[s][1] for s in steps[-k:]]
        cands.append((f"tail mean of trained, k={k}", steps[-k], mean_of([c["model"] for c in tail])))
        cands.append((f"tail mean of averages, k={k}", steps[-k], mean_of([c["ema"] for c in tail])))
    rows = []
    t0 = time.time()
    for label, first, state in cands:
        r = evaluate_model(model_from_state(newest, state, label), sketches, seed=a.seed)
        rows.append({"candidate": label, "from_step": first, "to_step": steps[-1],
                     "elbo_per_point": r["nll_per_point"], "recon_per_point": r["recon_nll_per_point"],
                     "L_KL": r["L_KL"]})
        print(f"{label:32s} steps {first:>6d}-{steps[-1]:<6d} ELBO {r['nll_per_point']:.5f} "
              f"recon {r['recon_nll_per_point']:.4f} L_KL {r['L_KL']:.4f}  ({time.time() - t0:.0f} s)", flush=True)
    best = min(range(len(rows)), key=lambda i: rows[i]["elbo_per_point"])
    print(json.dumps({"best": rows[best], "rows": rows, "n_sketches": len(sketches), "steps": steps}))
    if a.out_best:
        # the candidate becomes the run's average, and the file the average-only resume format
        out = _with_resume_mode({**newest, "ema": {k: v.detach().clone() for k, v in cands[best][2].items()}},
                                "average-only")
        save_checkpoint(a.out_best, out)
        print(f"wrote {a.out_best} ({rows[best]['candidate']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
