"""Fast CPU sampler (sketchrnn.fast.sampler) against the plain oracle (api.decode(fast=False)).

Exactness: both paths are fed the SAME random numbers. The fast sampler takes them as
``random=(U, N)``; the oracle's ``mdn.sample_step`` draws through ``torch.multinomial`` and
``torch.randn``, which this file replaces (only inside ``sketchrnn.model.mdn``) by an inverse
CDF on ``U`` and by ``N``, step by step. Everything else in the oracle runs unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import sketchrnn.model.mdn as mdn
from sketchrnn import api
from sketchrnn.config import ModelConfig
from sketchrnn.errors import ConfigError
from sketchrnn.fast import sampler as fs
from sketchrnn.fast.sampler import FastSampler, draw_random, get_sampler, supports
from sketchrnn.loaded import LoadedModel
from sketchrnn.model import SketchRNN
from sketchrnn.model.cells import HyperLSTMCell

KINDS = ["lstm", "layer_norm", "hyper"]
SCALE = 2.5
MAX_LEN = 24


class _StreamTorch:
    """Stands in for ``torch`` inside sketchrnn.model.mdn: multinomial -> inverse CDF on U[t],
    randn -> N[t]; all other attributes are torch's."""

    def __init__(self, U: np.ndarray, N: np.ndarray) -> None:
        self.U, self.N = torch.from_numpy(U), torch.from_numpy(N)
        self.t = 0  # sampling step
        self.j = 0  # 0: mixture index, 1: pen state

    def __getattr__(self, name: str):
        return getattr(torch, name)

    def multinomial(self, probs, num_samples, generator=None):
        assert num_samples == 1
        u = self.U[self.t, :, self.j].to(probs.dtype)
        self.j += 1
        cdf = probs.cumsum(-1)
        k = (cdf < u[:, None] * cdf[:, -1:]).sum(-1).clamp(max=probs.shape[-1] - 1)
        return k.unsqueeze(-1)

    def randn(self, shape, generator=None, device=None, dtype=None):
        assert self.j == 2, "sample_step draws pi, pen, then the normals"
        out = self.N[self.t].t().to(dtype).contiguous()  # (2, B)
        self.t += 1
        self.j = 0
        return out


def tiny(kind: str, conditional: bool, seed: int = 0, dtype=torch.float32) -> LoadedModel:
    cfg = ModelConfig(enc_model="lstm", dec_model=kind, enc_rnn_size=8, dec_rnn_size=32, z_size=4, num_mixture=4,
                      hyper_rnn_size=8, hyper_embedding_size=4, max_seq_len=MAX_LEN, conditional=conditional)
    torch.manual_seed(seed)
    m = SketchRNN(cfg).to(dtype).eval()
    with torch.no_grad():  # livelier than the initialisation; end-of-sketch rarer: longer sketches
        for p in m.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.2)
        m.decoder.output.bias[2] -= 2.0
    return LoadedModel(model=m, config=cfg, scale_factor=SCALE, class_names=[], name=f"tiny-{kind}")


def _z(lm: LoadedModel, B: int, seed: int = 1) -> np.ndarray | None:
    if not lm.config.conditional:
        return None
    return np.random.default_rng(seed).normal(size=(B, lm.config.z_size)).astype(np.float32)


def _assert_same_sketches(fast: list[np.ndarray], plain: list[np.ndarray], rtol: float = 1e-5) -> int:
    """Same lengths and pen states; offsets equal to rtol relative to the sketch's largest offset."""
    assert len(fast) == len(plain)
    n = 0
    for a, b in zip(fast, plain):
        assert a.dtype == np.float32 and a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_array_equal(a[:, 2], b[:, 2])
        if len(b):
            err = np.abs(a[:, :2] - b[:, :2]).max() / max(np.abs(b[:, :2]).max(), 1e-30)
            assert err <= rtol, err
        n += len(b)
    return n


CASES = [
    dict(temperature=0.7),
    dict(temperature=1.3, temperature_mode="magenta_py"),
    dict(temperature=0.9, temperature_mode="magenta_js", allow_end=False),
    dict(temperature=0.5, prefix=np.array([[3.0, -1.0, 0], [2.0, 4.0, 1], [-5.0, 0.5, 0]], np.float32)),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("B,backend", [(3, "torch"), (3, "numpy"), (12, "numpy"), (12, "torch")])
def test_fast_equals_plain_given_the_same_random_numbers(kind, conditional, B, backend, monkeypatch):
    lm = tiny(kind, conditional)
    z = _z(lm, B)
    sampler = FastSampler(lm, backend=backend)
    total, ended_early = 0, 0
    for i, kw in enumerate(CASES):
        U, N = draw_random(torch.Generator().manual_seed(10 + i), MAX_LEN, B)
        fast = sampler.decode(None if z is None else torch.from_numpy(z), B, random=(U, N), scale_factor=SCALE, **kw)
        stream = _StreamTorch(U, N)
        monkeypatch.setattr(mdn, "torch", stream)
        plain = api.decode(lm, z, n=B, fast=False, **kw)
        monkeypatch.setattr(mdn, "torch", torch)
        assert stream.t == min(MAX_LEN, max(len(s) for s in plain) + 1)  # the oracle drew once per step
        total += _assert_same_sketches(fast, plain)
        ended_early += sum(0 < len(s) < MAX_LEN for s in plain)
    assert total > 8 * B  # real drawings were compared, not empty ones
    assert ended_early > 0  # per-sketch stopping was exercised


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_equals_plain(kind):
    for conditional, B in [(True, 2), (False, 11)]:
        lm = tiny(kind, conditional, seed=3)
        z = _z(lm, B)
        plain = api.decode(lm, z, n=B, greedy=True, fast=False)
        fast = api.decode(lm, z, n=B, greedy=True)  # fast=True by default on CPU
        _assert_same_sketches(fast, plain)


def test_float64_model_agrees_tightly(monkeypatch):
    lm = tiny("hyper", True, dtype=torch.float64)
    B = 4
    z = _z(lm, B)
    U, N = draw_random(torch.Generator().manual_seed(0), MAX_LEN, B, np.float64)
    fast = FastSampler(lm).decode(torch.from_numpy(z), B, temperature=0.8, random=(U, N), scale_factor=SCALE)
    monkeypatch.setattr(mdn, "torch", _StreamTorch(U, N))
    plain = api.decode(lm, z, n=B, temperature=0.8, fast=False)
    assert _assert_same_sketches(fast, plain, rtol=1.2e-7) > B  # float64 inside; 1 ulp of the float32 output


def test_default_stream_has_the_model_distribution():
    """The fast sampler's own draws (torch.rand / randn, inverse CDF) follow the MDN: at the
    first step after a prefix, the end-of-sketch rate, the pen-lift rate and the mean offset
    match softmax(logits / tau) and sum_k pi_k mu_k (20000 sketches; 5 standard errors)."""
    lm = tiny("lstm", False, seed=5)
    dec = lm.model.decoder
    prefix = np.array([[1.0, 2.0, 0.0]], np.float32)
    tau = 0.8
    with torch.no_grad():  # the oracle's first output after the prefix
        state = dec.initial_state(None, 1)
        _, state = dec.step(torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]]), None, state)
        out, _ = dec.step(torch.tensor([[1.0 / SCALE, 2.0 / SCALE, 1.0, 0.0, 0.0]]), None, state)
        p = mdn.split_params(out)
        p_end = float(torch.softmax(p.pen_logits[0] / tau, -1)[2])
        p_lift = float(torch.softmax(p.pen_logits[0, :2] / tau, -1)[1])
        mean_dx = float((torch.softmax(p.log_pi[0] / tau, -1) * p.mu_x[0]).sum()) * SCALE
    n = 20000
    sampler = FastSampler(lm)
    s = sampler.decode(None, n, temperature=tau, generator=torch.Generator().manual_seed(0), max_len=1,
                       prefix=prefix, scale_factor=SCALE)
    ended = np.mean([len(x) == 0 for x in s])
    assert abs(ended - p_end) < 5 * math.sqrt(p_end * (1 - p_end) / n) + 1e-4
    s = sampler.decode(None, n, temperature=tau, generator=torch.Generator().manual_seed(1), max_len=2,
                       prefix=prefix, allow_end=False, scale_factor=SCALE)
    first = np.stack([x[0] for x in s])  # (n, 3): the first new point (the pen is forced up only on the last)
    assert abs(first[:, 2].mean() - p_lift) < 5 * math.sqrt(p_lift * (1 - p_lift) / n) + 1e-4
    assert abs(first[:, 0].mean() - mean_dx) < 5 * first[:, 0].std() / math.sqrt(n)


def test_api_decode_fast_switch_and_determinism():
    lm = tiny("layer_norm", True)
    z = _z(lm, 3)
    a = api.decode(lm, z, seed=4, temperature=0.6)
    b = api.decode(lm, z, seed=4, temperature=0.6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)  # the same seed gives the same sketches
    c = api.decode(lm, z, seed=5, temperature=0.6)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))
    # fast=True uses the sampler: same numbers as calling it with the same generator
    direct = get_sampler(lm).decode(torch.from_numpy(z), 3, temperature=0.6, generator=api._generator(4),
                                    scale_factor=SCALE)
    for x, y in zip(a, direct):
        np.testing.assert_array_equal(x, y)
    # every sketch ends with a lifted pen and holds at least one point (no end at step 0)
    assert all(len(x) >= 1 and x[-1, 2] == 1.0 for x in a)


def test_unsupported_model_falls_back_to_the_plain_path():
    lm = tiny("hyper", False)
    cfg = lm.config
    lm.model.decoder.cell = HyperLSTMCell(5, cfg.dec_rnn_size, hyper_size=8, hyper_embedding_size=4,
                                          use_layer_norm=False)
    assert not supports(lm)
    with pytest.raises(ConfigError):
        FastSampler(lm)
    a = api.decode(lm, None, n=2, seed=1)  # fast=True silently uses the oracle here
    b = api.decode(lm, None, n=2, seed=1, fast=False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_class_conditional_models_use_the_plain_path():
    cfg = ModelConfig(dec_model="lstm", enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=8,
                      conditional=False, class_conditional=True, num_classes=2, class_embedding_size=3)
    assert not supports(SketchRNN(cfg))


def test_cache_follows_weight_changes():
    lm = tiny("lstm", True)
    s1 = get_sampler(lm)
    assert get_sampler(lm.model) is s1
    z = _z(lm, 1)
    g1 = api.decode(lm, z, greedy=True)[0]
    with torch.no_grad():
        lm.model.decoder.cell.weight_hh.mul_(1.5)
    assert get_sampler(lm) is not s1
    _assert_same_sketches(api.decode(lm, z, greedy=True), api.decode(lm, z, greedy=True, fast=False))
    assert not np.array_equal(g1, api.decode(lm, z, greedy=True)[0])


def test_bad_arguments_are_one_line_errors():
    lm = tiny("lstm", False)
    s = FastSampler(lm)
    with pytest.raises(ConfigError) as e:
        s.decode(None, 2, temperature_mode="hot")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError):
        s.decode(None, 2, temperature=0.0)
    with pytest.raises(ConfigError):
        s.decode(None, 2, max_len=5, random=draw_random(torch.Generator(), 4, 2))
    with pytest.raises(ConfigError):
        FastSampler(lm, backend="cuda")


def test_backend_choice_never_changes_numpy_threads():
    before = fs._openblas_threads()
    choice = fs.choose_backend()
    assert choice in ("torch", "numpy")
    assert fs._openblas_threads() == before
    if choice == "numpy":
        assert before == 1 and torch.get_num_threads() == 1
