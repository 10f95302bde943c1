"""How much ELBO the encoder leaves on the table: the amortisation gap of a VAE.

For N sketches, the ELBO per point under the encoder's q(z|x) (the figure the bar reads) is
compared with the ELBO under a q optimised for each sketch on its own (mu and presig free,
started at the encoder's, Adam on the reparameterised ELBO with the decoder frozen). Both
ELBOs are estimated with the same K z samples per sketch (common random numbers), so the
difference is the gap, not sampling noise. The decoder is scored exactly as
``sketchrnn evaluate`` scores it (data units, L+1 steps per sketch).

A large gap says the encoder (or its training) is what holds the VAE's ELBO up; a small one
says the decoder is, and that no encoder-side recipe can buy more than the gap.

    python benchmarks/amortisation_gap.py --model yoga --data ../shared/data/distilled/yoga.npz \
        --split valid --n 100 --steps 200 --threads 1
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch


def elbo_sums(model, x, lens, mu, presig, eps):
    """Per-sketch ELBO terms (normalised units): mean over the K samples in ``eps`` (K, B, Z)
    of -log p(x|z), and the analytic KL(q || N(0, I)) (B,)."""
    kl = 0.5 * (mu.pow(2) + presig.exp() - 1.0 - presig).sum(dim=1)  # (B,)
    nll = torch.stack([model.per_sketch_nll(x, lens, mu + torch.exp(presig / 2) * e) for e in eps])  # (K, B)
    return nll.mean(0), kl


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="shipped model name or checkpoint path")
    p.add_argument("--data", required=True, help=".npz with the split to score")
    p.add_argument("--split", default="valid")
    p.add_argument("--n", type=int, default=100, help="sketches (the first N of the split)")
    p.add_argument("--steps", type=int, default=200, help="Adam steps of the per-sketch q")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--train-samples", type=int, default=1, help="z samples per sketch per Adam step")
    p.add_argument("--eval-samples", type=int, default=8, help="K z samples for both ELBO estimates")
    p.add_argument("--report-every", type=int, default=25)
    p.add_argument("--iwae", type=int, default=0,
                   help="also the importance-weighted bound with this many z samples under the encoder's q "
                        "(a tighter upper bound on the true NLL than the ELBO; 0 = skip)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true", help="5 sketches, 3 steps")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.dry_run:
        a.n, a.steps, a.eval_samples, a.report_every = 5, 3, 2, 1

    from sketchrnn.errors import SketchRNNError

    try:
        return _run(a)
    except SketchRNNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(a: argparse.Namespace) -> int:
    from sketchrnn.api import load_model, prepare_input
    from sketchrnn.data.dataset import SketchData
    from sketchrnn.evaluate import iwae_nll

    loaded = load_model(a.model)
    model = loaded.model.float().eval()
    if not model.cfg.conditional:
        print(f"error: {a.model} is decoder-only; the amortisation gap needs a VAE", file=sys.stderr)
        return 2
    for q in model.parameters():
        q.requires_grad_(False)
    data = SketchData.from_files(a.data, a.split, model.cfg.max_seq_len)
    sketches = data.strokes[: a.n]
    if not sketches:
        print(f"error: {a.data} has no {a.split} sketches of at most {model.cfg.max_seq_len} points", file=sys.stderr)
        return 2
    x, lens = prepare_input(loaded, sketches)  # (B, T+1, 5), (B,)
    points = float((lens + 1).sum())
    shift = 2.0 * math.log(float(loaded.scale_factor)) * float(lens.sum())  # normalised -> data units

    gen = torch.Generator().manual_seed(a.seed)
    b, zs = len(sketches), model.cfg.z_size
    eps_eval = torch.randn(a.eval_samples, b, zs, generator=gen)  # (K, B, Z), shared by both estimates

    def per_point(nll, kl):
        return (float(nll.sum()) + shift) / points, float(kl.sum()) / points

    with torch.no_grad():
        mu0, ps0 = model.encode(x, lens)
        nll0, kl0 = elbo_sums(model, x, lens, mu0, ps0, eps_eval)
        recon0 = model.per_sketch_nll(x, lens, mu0)
    r0, k0 = per_point(nll0, kl0)
    out = {"model": a.model, "split": a.split, "n": b, "points": points,
           "amortised": {"elbo": r0 + k0, "recon_sampled": r0, "kl": k0,
                         "recon_at_mu": (float(recon0.sum()) + shift) / points}}
    print(json.dumps(out["amortised"]))
    if a.iwae:
        out["iwae"] = {"k": a.iwae, "nll": (float(iwae_nll(model, x, lens, a.iwae, gen).sum()) + shift) / points}
        print(json.dumps(out["iwae"]), flush=True)

    mu = mu0.clone().requires_grad_(True)
    ps = ps0.clone().requires_grad_(True)
    opt = torch.optim.Adam([mu, ps], lr=a.lr)
    t0 = time.time()
    trace = []
    for step in range(1, a.steps + 1):
        eps = torch.randn(a.train_samples, b, zs, generator=gen)
        nll, kl = elbo_sums(model, x, lens, mu, ps, eps)
        loss = (nll + kl).sum() / points
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % a.report_every == 0 or step == a.steps:
            with torch.no_grad():
                n1, k1 = elbo_sums(model, x, lens, mu, ps, eps_eval)
            r1, kk1 = per_point(n1, k1)
            row = {"step": step, "elbo": r1 + kk1, "recon_sampled": r1, "kl": kk1,
                   "gap": r0 + k0 - (r1 + kk1), "s": round(time.time() - t0, 1)}
            trace.append(row)
            print(json.dumps(row), flush=True)
    with torch.no_grad():
        recon1 = model.per_sketch_nll(x, lens, mu)
    out["optimised"] = dict(trace[-1], recon_at_mu=(float(recon1.sum()) + shift) / points,
                            mu_shift_rms=float((mu.detach() - mu0).pow(2).mean().sqrt()),
                            sigma_ratio_median=float(torch.exp((ps.detach() - ps0) / 2).median()))
    out["trace"] = trace
    print(json.dumps(out["optimised"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
