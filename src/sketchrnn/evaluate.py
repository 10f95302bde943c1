"""The quality metric every model is held to (../shared/README.md), plus Magenta's L_R/L_KL.

For a sketch of L stroke-3 rows the model is scored on L+1 steps: each row (offset and pen
state), then the end-of-sketch step (pen state p3 only). Offsets are scored as a density in
the data's own units: log-density in normalised units minus 2*log(scale_factor).

* ``nll_per_point`` = sum of -log p over sketches and steps / sum(L+1), nats.
  For decoder-only models this is an exact NLL. For conditional (VAE) models it is
  reported equal to ``elbo_per_point`` (an upper bound on the true NLL).
* ``recon_nll_per_point``: conditional models, z = mu(x).
* ``elbo_per_point``: (sum E_{z~q}[-log p(x|z)] + sum KL(q(z|x) || N(0,I))) / sum(L+1),
  one z sample per sketch.
* ``L_R``: Magenta's reconstruction loss in its evaluation convention: (sum over points of
  L_s + L_p) / N_max per sketch, averaged over sketches; ``L_KL``: Magenta's KL, the mean over
  z dimensions of KL(q||N(0,I)) (not floored by kl_tolerance).
* ``iwae_nll_per_point`` (conditional models, only when asked for with ``iwae=K``): the
  importance-weighted bound of Burda et al. 2016, -log (1/K) sum_k p(x|z_k) N(z_k; 0, I) /
  q(z_k|x) with z_k ~ q(z|x), per point in data units. It is an upper bound on the model's true
  NLL like the ELBO, never above it in expectation, and tightens towards the NLL as K grows: the
  model's own likelihood, where the ELBO also charges the encoder's inexactness. The bar of
  ../shared/README.md reads the ELBO, not this.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .errors import DataError, ModelFileError

__all__ = ["evaluate_model", "score_stroke5", "iwae_nll", "METRIC_KEYS"]

METRIC_KEYS = ("nll_per_point", "recon_nll_per_point", "elbo_per_point", "L_R", "L_KL", "n_sketches")


@torch.no_grad()
def evaluate_model(loaded, sketches: Sequence[np.ndarray], batch_size: int = 100, seed: int = 0,
                   device: str | torch.device = "cpu", iwae: int = 0) -> dict[str, float | int | None]:
    """Score ``sketches`` (stroke-3, data units) with a loaded model; see module docstring.
    ``iwae`` = K > 0 adds ``iwae_nll_per_point`` and ``iwae_samples`` (VAEs only; K decoder
    passes per batch)."""
    from .data.strokes import to_stroke5

    model = loaded.model.to(device).eval()
    cfg = loaded.config
    if iwae < 0:
        raise DataError(f"iwae must be >= 0 (0 = off), got {iwae}")
    if iwae and not cfg.conditional:
        raise DataError(f"model {loaded.name} is decoder-only: its nll_per_point is already exact; "
                        "the importance-weighted bound is for VAEs")
    # the bound's z noise: its own stream, batch by batch in the (deterministic) scoring order
    gen_iwae = torch.Generator(device="cpu").manual_seed(seed + 1_000_003)
    tot_iwae = 0.0
    scale = float(loaded.scale_factor)
    if len(sketches) == 0:
        raise DataError("no sketches to evaluate")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    tot_nll_recon = tot_nll_elbo = tot_kl = tot_points = 0.0
    tot_lr = tot_lkl = 0.0
    n = 0
    log_s = math.log(scale)
    n_all = len(sketches)
    # z noise of each sketch, drawn batch by batch in input order (the figures do not depend on
    # the order the sketches are scored in); scored in batches of similar length, so that few
    # steps are spent on padding (a batch runs as many steps as its longest sketch)
    eps_all = torch.cat([torch.randn(min(batch_size, n_all - i), cfg.z_size, generator=gen)
                         for i in range(0, n_all, batch_size)]) if cfg.conditional else None  # (N, Z)
    order = np.argsort([len(s) for s in sketches], kind="stable")
    for start in range(0, n_all, batch_size):
        idx = order[start:start + batch_size]
        chunk = [sketches[i] for i in idx]
        lengths = [len(s) for s in chunk]
        t = max(lengths)
        x = torch.from_numpy(np.stack([to_stroke5(s, t, scale) for s in chunk])).to(device)  # (B, T+1, 5)
        lens = torch.tensor(lengths, dtype=torch.long, device=device)
        b = len(chunk)
        eps = eps_all[torch.from_numpy(idx)].to(device) if cfg.conditional else None
        sums = score_stroke5(model, x, lens, log_s, eps, n_max=cfg.max_seq_len)
        if iwae:
            tot_iwae += float((iwae_nll(model, x, lens, iwae, gen_iwae) + 2.0 * log_s * lens.to(torch.float64)).sum())
        tot_nll_recon += sums["nll_recon"]
        tot_nll_elbo += sums["nll_sample"]
        tot_kl += sums["kl"]
        tot_lkl += sums["kl"] / cfg.z_size if cfg.conditional else 0.0
        tot_points += sums["points"]
        tot_lr += sums["L_R"]
        n += b
    recon = tot_nll_recon / tot_points
    elbo = (tot_nll_elbo + tot_kl) / tot_points
    out: dict[str, float | int | None] = {
        "nll_per_point": elbo if cfg.conditional else recon,
        "recon_nll_per_point": recon if cfg.conditional else None,
        "elbo_per_point": elbo if cfg.conditional else None,
        "L_R": tot_lr / n,
        "L_KL": tot_lkl / n if cfg.conditional else None,
        "n_sketches": n,
    }
    if iwae:
        out["iwae_nll_per_point"] = tot_iwae / tot_points
        out["iwae_samples"] = int(iwae)
    for k, v in out.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ModelFileError(f"model {loaded.name} gives a non-finite {k}; the weights are broken")
    return out


@torch.no_grad()
def iwae_nll(model, x: torch.Tensor, lens: torch.Tensor, k: int, gen: torch.Generator,
             class_ids: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) float64 importance-weighted NLL bound of each sketch in NORMALISED units (see the
    module docstring), ``k`` z samples from q(z|x) drawn from ``gen`` (a CPU generator)."""
    mu, presig = model.encode(x, lens)  # (B, Z) each
    sigma = torch.exp(presig / 2)
    log_w = []
    for _ in range(k):
        eps = torch.randn(mu.shape, generator=gen).to(mu.device, mu.dtype)  # (B, Z)
        z = mu + sigma * eps
        # log N(z; 0, I) - log q(z|x): the 2*pi terms cancel; log sigma = presig / 2
        log_prior_over_q = 0.5 * (eps.pow(2) - z.pow(2) + presig).sum(dim=1)  # (B,)
        nll = model.per_sketch_nll(x, lens, z, class_ids=class_ids)  # (B,)
        log_w.append((log_prior_over_q - nll).double())
    lw = torch.stack(log_w)  # (K, B)
    return -(torch.logsumexp(lw, dim=0) - math.log(k))


@torch.no_grad()
def score_stroke5(model, x: torch.Tensor, lens: torch.Tensor, log_scale: float, eps: torch.Tensor | None = None,
                  class_ids: torch.Tensor | None = None, n_max: int | None = None) -> dict[str, float]:
    """One batch's sums for the metrics above (the evaluator and the trainer's validation share it).

    ``x`` (B, T+1, 5) normalised stroke-5 (rows after each sketch's end are never read),
    ``lens`` (B,) = L, ``log_scale`` = log(scale_factor), ``eps`` (B, Z) the z noise of a
    conditional model. Returns float sums over the batch: ``nll_recon`` (z = mu; decoder-only:
    the NLL) and ``nll_sample`` (z = mu + sigma * eps) in data units, ``kl`` (nats, full KL),
    ``points`` (sum of L+1), ``L_R`` (Magenta's eval-convention L_R per sketch, summed; ``n_max``
    its N_max, default the model's max_seq_len).
    """
    cfg = model.cfg
    n_max = int(n_max or cfg.max_seq_len)
    if cfg.conditional:
        if eps is None:
            raise ValueError("a conditional model needs eps (B, z_size) to score its ELBO")
        mu, presig = model.encode(x, lens)  # (B, Z) each
        kl = 0.5 * (mu.pow(2) + presig.exp() - 1.0 - presig).sum(dim=1)  # (B,) full KL in nats
        z_s = mu + torch.exp(presig / 2) * eps
        pts, end = model.per_sketch_nll(x, lens, mu, return_parts=True, class_ids=class_ids)  # (B,) each, normalised
        nll_recon = pts + end
        nll_sample = model.per_sketch_nll(x, lens, z_s, class_ids=class_ids)
        kl_sum = float(kl.sum())
    else:
        pts, end = model.per_sketch_nll(x, lens, None, return_parts=True, class_ids=class_ids)
        nll_recon = nll_sample = pts + end
        kl_sum = 0.0
    # data units: each of the L offsets' density is divided by scale**2
    data_shift = 2.0 * log_scale * lens.to(nll_recon.dtype)  # (B,)
    # Magenta L_R (eval convention: pen loss only on the L points, offsets in normalised units),
    # per sketch divided by N_max; the end-of-sketch step is not part of it.
    return {"nll_recon": float((nll_recon + data_shift).sum()), "nll_sample": float((nll_sample + data_shift).sum()),
            "kl": kl_sum, "points": float((lens + 1).sum()), "L_R": float((pts / n_max).sum())}
