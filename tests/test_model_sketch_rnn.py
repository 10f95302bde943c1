"""Encoder, decoder and SketchRNN: shapes, length masking, step == forward, losses, overfitting."""

from __future__ import annotations

import math

import pytest
import torch
from stroke_batches import make_batch

from sketchrnn.config import ModelConfig
from sketchrnn.model import (
    Decoder,
    Encoder,
    SketchRNN,
    reverse_within_length,
    split_params,
)
from sketchrnn.model.mdn import offset_log_prob

KINDS = ["lstm", "layer_norm", "hyper"]


def tiny_cfg(kind="lstm", **kw) -> ModelConfig:
    d = dict(enc_model=kind, dec_model=kind, enc_rnn_size=8, dec_rnn_size=12, z_size=4, num_mixture=3,
             hyper_rnn_size=6, hyper_embedding_size=3, max_seq_len=12)
    d.update(kw)
    return ModelConfig(**d)


def garble_padding(x, lengths, seed=9):
    """Replace every row after L (padding) with noise; rows 0..L stay."""
    y = x.clone()
    g = torch.Generator().manual_seed(seed)
    for b, L in enumerate(lengths.tolist()):
        y[b, L + 1:] = torch.randn(y.shape[1] - L - 1, 5, generator=g, dtype=x.dtype) * 5
    return y


def test_reverse_within_length():
    x = torch.arange(2 * 5, dtype=torch.float32).reshape(2, 5, 1)
    r = reverse_within_length(x, torch.tensor([3, 5]))
    assert r[0, :, 0].tolist() == [2, 1, 0, 3, 4]
    assert r[1, :, 0].tolist() == [9, 8, 7, 6, 5]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conditional", [True, False])
def test_shapes(kind, conditional):
    cfg = tiny_cfg(kind, conditional=conditional)
    torch.manual_seed(0)
    m = SketchRNN(cfg)
    x, L = make_batch([12, 5, 1], 12)
    res = m(x, L)
    assert res["out"].shape == (3, 12, cfg.output_size)
    if conditional:
        assert res["mu"].shape == res["presig"].shape == res["z"].shape == (3, cfg.z_size)
        assert m.decoder.initial_state(res["z"], 3).shape == (3, m.decoder.cell.state_size)
    else:
        assert res["mu"] is None and res["z"] is None
    losses = m.losses(x, L)
    assert set(losses) >= {"L_s", "L_p", "L_R", "L_KL", "kl_raw"}
    assert all(v.shape == () and torch.isfinite(v) for v in losses.values())
    m.eval()
    z = torch.zeros(3, cfg.z_size) if conditional else None
    assert m.per_sketch_nll(x, L, z).shape == (3,)


def test_unconditional_has_no_encoder_params():
    m = SketchRNN(tiny_cfg(conditional=False))
    assert m.encoder is None and m.decoder.init_state is None
    assert not any(n.startswith("encoder.") or "init_state" in n for n, _ in m.named_parameters())
    assert m.decoder.cell.input_size == 5
    assert not m.decoder.initial_state(None, 2).any()
    mc = SketchRNN(tiny_cfg(conditional=True))
    assert mc.decoder.cell.input_size == 5 + mc.cfg.z_size
    with pytest.raises(ValueError, match="unconditional"):
        m.encode(*make_batch([3], 5))


@pytest.mark.parametrize("kind", KINDS)
def test_encoder_respects_lengths(kind):
    """Batched + padded encoding equals encoding each sketch alone without padding; padding is ignored."""
    torch.manual_seed(1)
    enc = Encoder(tiny_cfg(kind)).double().eval()
    enc.use_fast_path = False
    lengths = [7, 3, 10, 1]
    x, L = make_batch(lengths, 10, seed=2, dtype=torch.float64)
    s = x[:, 1:]  # (B, T, 5) without the start token
    mu, presig = enc(s, L)
    mu2, presig2 = enc(garble_padding(x, L)[:, 1:], L)
    torch.testing.assert_close(mu2, mu, rtol=0, atol=0)
    torch.testing.assert_close(presig2, presig, rtol=0, atol=0)
    for b, n in enumerate(lengths):  # reference: each sketch alone, explicit forward/backward loops
        seq = s[b:b + 1, :n]
        st_f = enc.cell_fw.initial_state(1)
        st_b = enc.cell_bw.initial_state(1)
        for t in range(n):
            h_f, st_f = enc.cell_fw(seq[:, t], st_f)
            h_b, st_b = enc.cell_bw(seq[:, n - 1 - t], st_b)
        last = torch.cat([h_f, h_b], 1)
        torch.testing.assert_close(mu[b:b + 1], enc.mu(last), rtol=0, atol=1e-12)
        torch.testing.assert_close(presig[b:b + 1], enc.presig(last), rtol=0, atol=1e-12)


@pytest.mark.parametrize("train_mode", [False, True])
def test_encoder_fast_path_equals_cell_loop(train_mode):
    torch.manual_seed(3)
    cfg = tiny_cfg("lstm", use_recurrent_dropout=False, enc_rnn_size=16)
    enc = Encoder(cfg).train(train_mode)
    with torch.no_grad():  # non-trivial biases so the forget-bias folding is exercised
        enc.cell_fw.bias.normal_(0, 0.5)
        enc.cell_bw.bias.normal_(0, 0.5)
        enc.mu.weight.normal_(0, 0.3)
        enc.presig.weight.normal_(0, 0.3)
    x, L = make_batch([12, 4, 9, 1, 12], 12, seed=4)
    s = x[:, 1:]
    assert enc._fast_path_ok(L)
    enc.use_fast_path = True
    mu_f, ps_f = enc(s, L)
    (mu_f.sum() + ps_f.square().sum()).backward()
    grads_f = {n: p.grad.clone() for n, p in enc.named_parameters()}
    enc.zero_grad()
    enc.use_fast_path = False
    mu_l, ps_l = enc(s, L)
    (mu_l.sum() + ps_l.square().sum()).backward()
    torch.testing.assert_close(mu_f, mu_l, rtol=0, atol=1e-5)
    torch.testing.assert_close(ps_f, ps_l, rtol=0, atol=1e-5)
    for n, p in enc.named_parameters():
        torch.testing.assert_close(grads_f[n], p.grad, rtol=1e-4, atol=1e-5)
    # garbage padding does not matter on the fast path either
    enc.use_fast_path = True
    mu_g, _ = enc(garble_padding(x, L)[:, 1:], L)
    torch.testing.assert_close(mu_g, mu_f, rtol=0, atol=0)
    # not used while recurrent dropout is active in training
    enc2 = Encoder(tiny_cfg("lstm", use_recurrent_dropout=True)).train()
    assert not enc2._fast_path_ok(L) and enc2.eval()._fast_path_ok(L)
    assert not Encoder(tiny_cfg("layer_norm")).eval()._fast_path_ok(L)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conditional", [True, False])
def test_decoder_step_equals_forward(kind, conditional):
    torch.manual_seed(4)
    cfg = tiny_cfg(kind, conditional=conditional)
    dec = Decoder(cfg).eval()
    if conditional:  # make the initial state far from its near-zero init so tanh matters
        with torch.no_grad():
            dec.init_state.weight.normal_(0.0, 1.0)
    x, _ = make_batch([8, 5], 8, seed=5)
    z = torch.randn(2, cfg.z_size) if conditional else None
    out, final = dec(x[:, :-1], z)
    state = dec.initial_state(z, 2)
    if conditional:
        torch.testing.assert_close(state, torch.tanh(z @ dec.init_state.weight.T + dec.init_state.bias),
                                   rtol=0, atol=1e-6)
    for t in range(8):
        o, state = dec.step(x[:, t], z, state)
        torch.testing.assert_close(o, out[:, t], rtol=0, atol=0)
    torch.testing.assert_close(state, final, rtol=0, atol=0)
    # explicit: input [S_{t-1}; z] (conditional) or S_{t-1}, head Linear(h)
    st = dec.initial_state(z, 2)
    for t in range(8):
        inp = torch.cat([x[:, t], z], 1) if conditional else x[:, t]
        h, st = dec.cell(inp, st)
        torch.testing.assert_close(h @ dec.output.weight.T + dec.output.bias, out[:, t], rtol=0, atol=1e-6)
    # continuing from a given state matches one long pass
    out_a, st_a = dec(x[:, :4], z)
    out_b, st_b = dec(x[:, 4:-1], z, state=st_a)
    torch.testing.assert_close(torch.cat([out_a, out_b], 1), out, rtol=0, atol=0)


def test_decoder_input_and_output_dropout_only_in_training():
    torch.manual_seed(5)
    cfg = tiny_cfg(use_recurrent_dropout=False, use_input_dropout=True, use_output_dropout=True,
                   input_dropout_prob=0.5, output_dropout_prob=0.5)
    dec = Decoder(cfg)
    x, _ = make_batch([6, 6], 6, seed=6)
    z = torch.randn(2, cfg.z_size)
    dec.eval()
    a, _ = dec(x[:, :-1], z)
    b, _ = dec(x[:, :-1], z)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    dec.train()
    c, _ = dec(x[:, :-1], z)
    assert not torch.allclose(a, c)


def manual_losses(m, x, L, z):
    """Magenta's L_s, L_p from explicit per-step loops, float64, given z (no sampling)."""
    B, T = x.shape[0], x.shape[1] - 1
    state = m.decoder.initial_state(z, B)
    Ls = Lp = 0.0
    for t in range(T):
        out, state = m.decoder.step(x[:, t], z, state)
        p = split_params(out)
        tgt = x[:, t + 1]
        for b in range(B):
            pen_lp = torch.log_softmax(p.pen_logits[b], -1)[int(tgt[b, 2:].argmax())].item()
            Lp -= pen_lp
            if t < L[b]:
                pb = split_params(out[b:b + 1])
                Ls -= offset_log_prob(pb, tgt[b:b + 1, 0], tgt[b:b + 1, 1]).item()
    return Ls / (B * T), Lp / (B * T)


@pytest.mark.parametrize("kind", ["lstm", "hyper"])
def test_losses_magenta_convention(kind):
    torch.manual_seed(6)
    m = SketchRNN(tiny_cfg(kind)).double().eval()
    x, L = make_batch([10, 4, 7], 12, seed=7, dtype=torch.float64)
    # fix the z draw: the same seed gives the same eps inside losses() and here
    with torch.no_grad():
        mu, presig = m.encode(x, L)
    torch.manual_seed(11)
    z = mu + torch.exp(presig / 2) * torch.randn_like(mu)
    torch.manual_seed(11)
    res = m.losses(x, L, kl_tolerance=0.2)
    Ls, Lp = manual_losses(m, x, L, z)
    assert abs(res["L_s"].item() - Ls) < 1e-10 and abs(res["L_p"].item() - Lp) < 1e-10
    assert abs(res["L_R"].item() - (Ls + Lp)) < 1e-10
    kl = sum(0.5 * (mu[b, k] ** 2 + math.exp(presig[b, k]) - 1 - presig[b, k]).item()
             for b in range(3) for k in range(m.cfg.z_size)) / (3 * m.cfg.z_size)
    assert abs(res["kl_raw"].item() - kl) < 1e-12
    assert res["L_KL"].item() == max(kl, 0.2)
    # noise after L changes neither L_s nor the KL (L_p counts the end-padding pen states by design)
    torch.manual_seed(11)
    res2 = m.losses(garble_padding(x, L), L, kl_tolerance=0.0)
    assert res2["L_s"].item() == res["L_s"].item()
    assert res2["L_KL"].item() == pytest.approx(kl, abs=1e-12)


def test_kl_tolerance_stops_gradient_below():
    torch.manual_seed(7)
    m = SketchRNN(tiny_cfg())
    x, L = make_batch([5, 3], 12)
    res = m.losses(x, L, kl_tolerance=1e6)
    assert res["L_KL"].item() == 1e6
    res["L_KL"].backward()
    assert all(p.grad is None or not p.grad.any() for p in m.encoder.parameters())


@pytest.mark.parametrize("conditional", [True, False])
def test_per_sketch_nll_matches_step_loop_and_ignores_padding(conditional):
    torch.manual_seed(8)
    cfg = tiny_cfg("layer_norm", conditional=conditional)
    m = SketchRNN(cfg).double().eval()
    lengths = [6, 2, 9, 0]
    x, L = make_batch(lengths, 9, seed=8, dtype=torch.float64)
    z = torch.randn(4, cfg.z_size, dtype=torch.float64) if conditional else None
    nll = m.per_sketch_nll(x, L, z)
    assert torch.equal(nll, m.per_sketch_nll(garble_padding(x, L), L, z))
    for b, n in enumerate(lengths):  # each sketch alone: L offsets + L pen states + the end step
        zb = z[b:b + 1] if conditional else None
        state = m.decoder.initial_state(zb, 1)
        total = 0.0
        for t in range(n + 1):
            out, state = m.decoder.step(x[b:b + 1, t], zb, state)
            p = split_params(out)
            logpen = torch.log_softmax(p.pen_logits[0], -1)
            if t < n:
                tgt = x[b:b + 1, t + 1]
                total -= offset_log_prob(p, tgt[:, 0], tgt[:, 1]).item() + logpen[int(tgt[0, 2:].argmax())].item()
            else:
                total -= logpen[2].item()
        assert abs(nll[b].item() - total) < 1e-10
    if conditional:
        with pytest.raises(ValueError, match="needs z"):
            m.per_sketch_nll(x, L, None)


def test_state_dict_round_trip():
    torch.manual_seed(9)
    cfg = tiny_cfg("hyper")
    m = SketchRNN(cfg).eval()
    sd = m.state_dict()
    assert all(k.startswith(("encoder.", "decoder.")) for k in sd)
    x, L = make_batch([7, 3], 12)
    m(x, L)  # builds the encoder's fast-path template for lstm; must not leak into state_dict
    assert set(SketchRNN(cfg).state_dict()) == set(sd)
    torch.manual_seed(123)
    m2 = SketchRNN(cfg).eval()
    m2.load_state_dict(sd)
    z = torch.randn(2, cfg.z_size)
    torch.testing.assert_close(m2.per_sketch_nll(x, L, z), m.per_sketch_nll(x, L, z), rtol=0, atol=0)
    torch.testing.assert_close(m2.encode(x, L)[0], m.encode(x, L)[0], rtol=0, atol=0)
    m3 = SketchRNN(tiny_cfg("lstm")).eval()
    m3(x, L)
    assert set(m3.state_dict()) == set(SketchRNN(tiny_cfg("lstm")).state_dict())


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(10)
    cfg = tiny_cfg("lstm", enc_rnn_size=16, dec_rnn_size=32, z_size=8, num_mixture=3, use_recurrent_dropout=False)
    m = SketchRNN(cfg)
    x, L = make_batch([10, 8, 12, 6], 12, seed=11)
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)

    def loss_fn():
        r = m.losses(x, L, kl_tolerance=0.2)
        return r["L_R"] + 0.5 * r["L_KL"]

    first = loss_fn().item()
    for _ in range(100):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        last = loss_fn().item()
    print(f"overfit: loss {first:.3f} -> {last:.3f}")
    assert last < first - 0.5 * abs(first), (first, last)
