"""The importance-weighted bound (`sketchrnn evaluate --iwae K`) against the exact NLL.

With a one-dimensional z the marginal likelihood p(x) = integral p(x|z) N(z; 0, 1) dz is a
quadrature, so the bound can be checked against the quantity it bounds, in float64: the
ELBO lies above the exact NLL, the bound between them, closing on the NLL as K grows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sketchrnn.config import ModelConfig
from sketchrnn.data.strokes import to_stroke5
from sketchrnn.errors import DataError
from sketchrnn.evaluate import evaluate_model, iwae_nll
from sketchrnn.loaded import LoadedModel
from sketchrnn.model import SketchRNN


def _tiny_vae(conditional: bool = True) -> SketchRNN:
    torch.manual_seed(0)
    cfg = ModelConfig(conditional=conditional, enc_rnn_size=8, dec_model="lstm", dec_rnn_size=16, z_size=1,
                      num_mixture=2, max_seq_len=12, use_recurrent_dropout=False)
    m = SketchRNN(cfg).double().eval()
    if conditional:
        with torch.no_grad():
            # p(x|z) depends on z strongly (the initial state and the input's z row), so the
            # posterior is far from q; q is N(0.2, 0.78^2) for every sketch, wide enough to sample
            m.decoder.init_state.weight.mul_(100.0)
            m.decoder.cell.weight_ih[5].mul_(4.0)  # (5 + Z, 4H): row 5 reads z
            m.encoder.mu.bias.fill_(0.2)
            m.encoder.presig.bias.fill_(-0.5)
    return m


def _sketches(n: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        s = np.zeros((6 + i, 3), np.float32)
        s[:, :2] = rng.normal(0, 1, (len(s), 2))
        s[::3, 2] = 1
        out.append(s)
    return out


def _batch(model: SketchRNN, sketches):
    t = model.cfg.max_seq_len
    x = torch.from_numpy(np.stack([to_stroke5(s, t, 1.0) for s in sketches])).double()  # (B, T+1, 5)
    return x, torch.tensor([len(s) for s in sketches])


@torch.no_grad()
def _exact_nll(model: SketchRNN, x, lens) -> torch.Tensor:
    """(B,) -log p(x) by quadrature over z in [-10, 10] (1-D latent), normalised units."""
    zs = torch.linspace(-10, 10, 2001, dtype=torch.float64)
    dz = float(zs[1] - zs[0])
    cols = []
    for z in zs:
        zb = torch.full((len(lens), 1), float(z), dtype=torch.float64)
        cols.append(-model.per_sketch_nll(x, lens, zb) - 0.5 * (z * z + math.log(2 * math.pi)))
    return -(torch.logsumexp(torch.stack(cols), 0) + math.log(dz))


@torch.no_grad()
def test_iwae_bounds_and_approaches_the_exact_nll():
    m = _tiny_vae()
    x, lens = _batch(m, _sketches())
    exact = _exact_nll(m, x, lens)
    mu, presig = m.encode(x, lens)
    kl = 0.5 * (mu.pow(2) + presig.exp() - 1.0 - presig).sum(1)
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(4000, len(lens), 1, generator=g, dtype=torch.float64)
    recon = torch.stack([m.per_sketch_nll(x, lens, mu + torch.exp(presig / 2) * e) for e in eps]).mean(0)
    elbo = recon + kl
    gap = elbo - exact
    assert (gap > 0.02).all(), f"the test model's posterior should not be q's: ELBO - NLL = {gap.tolist()}"
    i1 = torch.stack([iwae_nll(m, x, lens, 1, torch.Generator().manual_seed(s)) for s in range(300)]).mean(0)
    assert (i1 - elbo).abs().max() < 0.06, f"K = 1 is the ELBO in expectation: {i1.tolist()} vs {elbo.tolist()}"
    k_big = iwae_nll(m, x, lens, 3000, torch.Generator().manual_seed(2))
    assert (k_big < elbo).all()
    err = (k_big - exact).abs()  # sampling error of one K = 3000 estimate: ~0.01 here
    assert err.max() < 0.03 and err.mean() < 0.1 * gap.mean(), f"{(k_big - exact).tolist()} vs gaps {gap.tolist()}"
    k_mid = torch.stack([iwae_nll(m, x, lens, 30, torch.Generator().manual_seed(100 + s)) for s in range(40)]).mean(0)
    # (a mean of 40 estimates: ~0.01 of sampling error)
    assert (k_mid > exact - 0.02).all() and (k_mid < elbo).all(), "E[IWAE_K] lies between the NLL and the ELBO"


def test_evaluate_reports_iwae_and_refuses_decoder_only():
    m = _tiny_vae()
    lm = LoadedModel(m.float(), m.cfg, 2.0, [], "tiny")
    sk = _sketches(6, seed=3)
    base = evaluate_model(lm, sk, batch_size=4)
    res = evaluate_model(lm, sk, batch_size=4, iwae=64)
    assert "iwae_nll_per_point" not in base
    assert {k: res[k] for k in base} == base, "asking for the bound changes no other figure"
    assert res["iwae_samples"] == 64 and res["iwae_nll_per_point"] < res["elbo_per_point"]
    # data units: the same shift per offset as the other figures (scale 2 -> 2 log 2 per point)
    halved = [s * np.float32([0.5, 0.5, 1.0]) for s in sk]  # offsets / 2, pen states kept
    res2 = evaluate_model(LoadedModel(m, m.cfg, 1.0, [], "tiny"), halved, batch_size=4, iwae=64)
    lens = np.array([len(s) for s in sk])
    shift = 2 * math.log(2.0) * lens.sum() / (lens + 1).sum()
    assert res["elbo_per_point"] == pytest.approx(res2["elbo_per_point"] + shift, abs=1e-4)
    assert res["iwae_nll_per_point"] == pytest.approx(res2["iwae_nll_per_point"] + shift, abs=1e-4)
    with pytest.raises(DataError, match="decoder-only"):
        u = _tiny_vae(conditional=False).float()
        evaluate_model(LoadedModel(u, u.cfg, 1.0, [], "u"), sk, iwae=8)
    with pytest.raises(DataError, match="iwae"):
        evaluate_model(lm, sk, iwae=-1)
