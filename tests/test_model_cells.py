"""Cells vs hand-written float64 references of Magenta's equations; gradients; recurrent dropout."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from sketchrnn.errors import ConfigError
from sketchrnn.model.cells import HyperLSTMCell, LayerNormLSTMCell, LSTMCell, make_cell

KINDS = ["lstm", "layer_norm", "hyper"]


# ---------------------------------------------------------------- references (float64, from the equations)

def sig(v):
    return 1.0 / (1.0 + torch.exp(-v))


def ref_layer_norm(v, gamma, beta, eps=1e-3):
    """Magenta layer_norm: (v - mean) / sqrt(mean((v - mean)^2) + eps) * gamma + beta, per row."""
    n = v.shape[1]
    mean = v.sum(1, keepdim=True) / n
    var = ((v - mean) ** 2).sum(1, keepdim=True) / n
    return (v - mean) / torch.sqrt(var + eps) * gamma + beta


def ref_lstm(x, c, h, Wx, Wh, b, fb=1.0):
    H = h.shape[1]
    z = x @ Wx + h @ Wh + b
    i, j, f, o = (z[:, k * H:(k + 1) * H] for k in range(4))
    c2 = c * sig(f + fb) + sig(i) * torch.tanh(j)
    return torch.tanh(c2) * sig(o), c2


def ref_ln_lstm(x, c, h, Wx, Wh, g_all, b_all, g_c, b_c, fb=1.0):
    H = h.shape[1]
    z = x @ Wx + h @ Wh
    blocks = [ref_layer_norm(z[:, k * H:(k + 1) * H], g_all[k * H:(k + 1) * H], b_all[k * H:(k + 1) * H])
              for k in range(4)]
    i, j, f, o = blocks
    c2 = c * sig(f + fb) + sig(i) * torch.tanh(j)
    return torch.tanh(ref_layer_norm(c2, g_c, b_c)) * sig(o), c2


def ref_hyper(x, c, h, hc, hh, P, fb=1.0):
    """Magenta HyperLSTMCell.__call__ with use_layer_norm=True; P holds the module's tensors."""
    H, E = h.shape[1], P["x_alpha"].shape[1]
    hh2, hc2 = ref_ln_lstm(torch.cat([x, h], 1), hc, hh, P["hyper_cell.weight_ih"], P["hyper_cell.weight_hh"],
                           P["hyper_cell.ln_gamma"], P["hyper_cell.ln_beta"],
                           P["hyper_cell.ln_c_gamma"], P["hyper_cell.ln_c_beta"], fb)
    xh, hhm = x @ P["weight_ih"], h @ P["weight_hh"]
    gates = []
    for k in range(4):
        sl, se = slice(k * H, (k + 1) * H), slice(k * E, (k + 1) * E)
        zw_x = hh2 @ P["x_zw_weight"][:, se] + P["x_zw_bias"][se]
        part_x = (zw_x @ P["x_alpha"][k]) * xh[:, sl]
        zw_h = hh2 @ P["h_zw_weight"][:, se] + P["h_zw_bias"][se]
        zb_h = hh2 @ P["h_zb_weight"][:, se]
        part_h = (zw_h @ P["h_alpha"][k]) * hhm[:, sl] + zb_h @ P["h_beta"][k]
        pre = part_x + part_h + P["bias"][sl]
        gates.append(ref_layer_norm(pre, P["ln_gamma"][sl], P["ln_beta"][sl]))
    i, j, f, o = gates
    c2 = c * sig(f + fb) + sig(i) * torch.tanh(j)
    h2 = torch.tanh(ref_layer_norm(c2, P["ln_c_gamma"], P["ln_c_beta"])) * sig(o)
    return h2, c2, hc2, hh2


def ref_step(kind, cell, x, state):
    """Reference step on the flat state layout of ARCHITECTURE.md; returns (h, new_state)."""
    P = {k: v.detach() for k, v in cell.named_parameters()}
    H = cell.hidden_size
    c, h = state[:, :H], state[:, H:2 * H]
    if kind == "lstm":
        h2, c2 = ref_lstm(x, c, h, P["weight_ih"], P["weight_hh"], P["bias"])
        return h2, torch.cat([c2, h2], 1)
    if kind == "layer_norm":
        h2, c2 = ref_ln_lstm(x, c, h, P["weight_ih"], P["weight_hh"], P["ln_gamma"], P["ln_beta"],
                             P["ln_c_gamma"], P["ln_c_beta"])
        return h2, torch.cat([c2, h2], 1)
    Nh = cell.hyper_size
    hc, hh = state[:, 2 * H:2 * H + Nh], state[:, 2 * H + Nh:]
    h2, c2, hc2, hh2 = ref_hyper(x, c, h, hc, hh, P)
    return h2, torch.cat([c2, h2, hc2, hh2], 1)


def build(kind, I=4, H=6, Nh=5, E=3, dtype=torch.float64, **kw):
    cell = make_cell(kind, I, H, hyper_rnn_size=Nh, hyper_embedding_size=E, **kw).to(dtype)
    return cell


def randomise(cell, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale + (1.0 if p.dim() == 1 else 0.0) * 0.3)
    return cell


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("kind", KINDS)
def test_cell_matches_reference_float64(kind):
    cell = randomise(build(kind)).eval()
    g = torch.Generator().manual_seed(1)
    B = 5
    state = torch.randn(B, cell.state_size, generator=g, dtype=torch.float64)
    ref_state = state.clone()
    for _ in range(4):  # several chained steps
        x = torch.randn(B, cell.input_size, generator=g, dtype=torch.float64) * 2
        h, state = cell(x, state)
        rh, ref_state = ref_step(kind, cell, x, ref_state)
        assert h.shape == (B, cell.hidden_size) and state.shape == (B, cell.state_size)
        torch.testing.assert_close(h, rh, rtol=0, atol=1e-10)
        torch.testing.assert_close(state, ref_state, rtol=0, atol=1e-10)
        torch.testing.assert_close(cell.hidden(state), h, rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_gradcheck(kind):
    cell = randomise(build(kind, I=2, H=3, Nh=2, E=2), seed=3).eval()
    names = [n for n, _ in cell.named_parameters()]
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, cell.state_size, generator=g, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]

    def f(x, s, *ps):
        h, s2 = functional_call(cell, dict(zip(names, ps)), (x, s))
        return h, s2

    assert torch.autograd.gradcheck(f, (x, s, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_dropout_on_g(kind):
    keep = 0.9
    cell = randomise(build(kind, I=4, H=50, use_recurrent_dropout=True, dropout_keep=keep), seed=5)
    B = 200
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, 4, generator=g, dtype=torch.float64)
    state = torch.randn(B, cell.state_size, generator=g, dtype=torch.float64)
    state[:, :cell.hidden_size] = 0.0  # c = 0, so c' = sigmoid(i) * g exactly
    H = cell.hidden_size
    cell.eval()
    _, s_eval = cell(x, state)
    _, s_ref = ref_step(kind, cell, x, state)
    torch.testing.assert_close(s_eval, s_ref, rtol=0, atol=1e-10)  # eval: no dropout at all
    cell.train()
    torch.manual_seed(123)
    _, s1 = cell(x, state)
    _, s2 = cell(x, state)
    ratio1 = s1[:, :H] / s_eval[:, :H]
    ratio2 = s2[:, :H] / s_eval[:, :H]
    dropped = ratio1 == 0
    frac = dropped.double().mean().item()
    assert abs(frac - (1 - keep)) < 0.015, frac  # 10000 draws: sd 0.003
    torch.testing.assert_close(ratio1[~dropped], torch.full_like(ratio1[~dropped], 1 / keep), rtol=1e-9, atol=0)
    assert not torch.equal(ratio1 == 0, ratio2 == 0)  # fresh mask each call
    # off in training mode when use_recurrent_dropout is False
    cell.use_recurrent_dropout = False
    _, s3 = cell(x, state)
    torch.testing.assert_close(s3, s_eval, rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_initialisation_and_sizes(kind):
    torch.manual_seed(0)
    I, H, Nh, E = 7, 8, 6, 4
    cell = make_cell(kind, I, H, hyper_rnn_size=Nh, hyper_embedding_size=E)
    expected_state = 2 * H + (2 * Nh if kind == "hyper" else 0)
    assert (cell.input_size, cell.hidden_size, cell.state_size) == (I, H, expected_state)
    s0 = cell.initial_state(3)
    assert s0.shape == (3, expected_state) and not s0.any() and s0.dtype == torch.float32
    assert cell.weight_ih.shape == (I, 4 * H) and cell.weight_hh.shape == (H, 4 * H)
    for blk in cell.weight_hh.detach().chunk(4, dim=1):  # orthogonal per gate block
        torch.testing.assert_close(blk.T @ blk, torch.eye(H), atol=1e-5, rtol=0)
    lim = math.sqrt(6.0 / (I + 4 * H))  # glorot uniform
    assert cell.weight_ih.abs().max() <= lim and cell.weight_ih.abs().max() > 0.5 * lim
    if kind != "layer_norm":
        assert not cell.bias.any()
    if kind == "hyper":
        assert torch.all(cell.x_alpha == 0.1 / E) and torch.all(cell.h_alpha == 0.1 / E)
        assert torch.all(cell.x_zw_bias == 1.0) and not cell.x_zw_weight.any() and not cell.h_beta.any()
        assert 0.005 < cell.h_zb_weight.std().item() < 0.02
        assert isinstance(cell.hyper_cell, LayerNormLSTMCell) and cell.hyper_cell.input_size == I + H


def test_make_cell_types_and_errors():
    assert isinstance(make_cell("lstm", 3, 4), LSTMCell)
    assert isinstance(make_cell("layer_norm", 3, 4), LayerNormLSTMCell)
    assert isinstance(make_cell("hyper", 3, 4, hyper_rnn_size=5), HyperLSTMCell)
    with pytest.raises(ConfigError, match="unknown cell type"):
        make_cell("gru", 3, 4)
    with pytest.raises(ConfigError, match="keep probability"):
        make_cell("lstm", 3, 4, dropout_keep=0.0)


def test_lstm_param_layout_is_magenta_plain_copy():
    """gates = x @ W_xh + h @ W_hh + bias with (I, 4H) / (H, 4H) / (4H) tensors, gates i, j, f, o."""
    cell = randomise(LSTMCell(5, 3).double()).eval()
    x = torch.randn(2, 5, dtype=torch.float64)
    h0 = torch.randn(2, 3, dtype=torch.float64)
    c0 = torch.randn(2, 3, dtype=torch.float64)
    W = torch.cat([cell.weight_ih, cell.weight_hh], 0).detach()  # Magenta's w_full
    z = torch.cat([x, h0], 1) @ W + cell.bias.detach()
    i, j, f, o = z.split(3, 1)
    c = c0 * sig(f + 1.0) + sig(i) * torch.tanh(j)
    h, s = cell(x, torch.cat([c0, h0], 1))
    torch.testing.assert_close(s, torch.cat([c, torch.tanh(c) * sig(o)], 1), rtol=0, atol=1e-12)
