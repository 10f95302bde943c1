"""MDN head: layout, log-densities vs brute force float64, sampling temperature modes."""

from __future__ import annotations

import math

import pytest
import torch

from sketchrnn.errors import ConfigError
from sketchrnn.model.mdn import MixtureParams, offset_log_prob, pen_log_prob, sample_step, split_params


def brute_force_log_prob(out_row, dx, dy):
    """Sum over components of pi_k * N(d | mu_k, Sigma_k) with an explicit 2x2 covariance, then log."""
    M = (len(out_row) - 3) // 6
    v = [float(a) for a in out_row]
    pi_logits = v[3:3 + M]
    mx = max(pi_logits)
    den = sum(math.exp(a - mx) for a in pi_logits)
    total = 0.0
    for k in range(M):
        pi = math.exp(pi_logits[k] - mx) / den
        mux, muy = v[3 + M + k], v[3 + 2 * M + k]
        sx, sy = math.exp(v[3 + 3 * M + k]), math.exp(v[3 + 4 * M + k])
        rho = math.tanh(v[3 + 5 * M + k])
        S = [[sx * sx, rho * sx * sy], [rho * sx * sy, sy * sy]]
        det = S[0][0] * S[1][1] - S[0][1] * S[1][0]
        inv = [[S[1][1] / det, -S[0][1] / det], [-S[1][0] / det, S[0][0] / det]]
        d = [dx - mux, dy - muy]
        q = sum(d[a] * inv[a][b] * d[b] for a in range(2) for b in range(2))
        total += pi * math.exp(-0.5 * q) / (2 * math.pi * math.sqrt(det))
    return math.log(total)


def test_split_params_layout():
    M = 4
    out = torch.arange(6 * M + 3, dtype=torch.float64).reshape(1, -1).repeat(2, 1) / 10  # (2, 27)
    p = split_params(out)
    torch.testing.assert_close(p.pen_logits, out[:, :3])
    torch.testing.assert_close(p.log_pi, torch.log_softmax(out[:, 3:3 + M], -1))
    torch.testing.assert_close(p.mu_x, out[:, 3 + M:3 + 2 * M])
    torch.testing.assert_close(p.mu_y, out[:, 3 + 2 * M:3 + 3 * M])
    torch.testing.assert_close(p.log_sigma_x, out[:, 3 + 3 * M:3 + 4 * M])
    torch.testing.assert_close(p.log_sigma_y, out[:, 3 + 4 * M:3 + 5 * M])
    torch.testing.assert_close(p.rho, torch.tanh(out[:, 3 + 5 * M:]))
    torch.testing.assert_close(p.log_one_minus_rho2, torch.log1p(-torch.tanh(out[:, 3 + 5 * M:]) ** 2))
    assert p.num_mixture == M
    with pytest.raises(ValueError):
        split_params(torch.zeros(2, 6 * M + 4))


def test_offset_log_prob_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    M, N = 5, 40
    out = torch.randn(N, 6 * M + 3, generator=g, dtype=torch.float64)
    out[:, 3 + 3 * M:3 + 5 * M] *= 0.7  # log sigmas
    out[:, 3 + 5 * M:] *= 1.5  # rho_raw
    dx = torch.randn(N, generator=g, dtype=torch.float64) * 1.5
    dy = torch.randn(N, generator=g, dtype=torch.float64) * 1.5
    p = split_params(out)
    got = offset_log_prob(p, dx, dy)
    ref = torch.tensor([brute_force_log_prob(out[n], dx[n].item(), dy[n].item()) for n in range(N)],
                       dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-10)
    # a MixtureParams built from the 7 contract fields only (log(1-rho^2) from rho) agrees
    p7 = MixtureParams(p.pen_logits, p.log_pi, p.mu_x, p.mu_y, p.log_sigma_x, p.log_sigma_y, p.rho)
    torch.testing.assert_close(offset_log_prob(p7, dx, dy), ref, rtol=0, atol=1e-10)
    # leading shapes broadcast: (B, T)
    got2 = offset_log_prob(split_params(out.reshape(4, 10, -1)), dx.reshape(4, 10), dy.reshape(4, 10))
    torch.testing.assert_close(got2.reshape(-1), ref, rtol=0, atol=1e-10)


def test_offset_log_prob_is_stable_in_float32():
    M = 2
    out = torch.zeros(3, 6 * M + 3)
    out[:, 3 + 5 * M:] = 30.0  # tanh(30) == 1 in float32: log(1 - rho^2) must stay finite
    lp = offset_log_prob(split_params(out), torch.tensor([0.0, 0.5, 1e3]), torch.tensor([0.0, 0.5, -1e3]))
    assert torch.isfinite(lp[:2]).all()
    # far from every component: densities underflow but the log-density is just very negative
    out2 = torch.zeros(1, 6 * M + 3)
    lp2 = offset_log_prob(split_params(out2), torch.tensor([100.0]), torch.tensor([0.0]))
    expected = -math.log(2 * math.pi) - 0.5 * 100.0 ** 2  # both components are N(0, I)
    assert torch.isfinite(lp2).all() and abs(lp2.item() - expected) < 1e-2
    # gradients stay finite too
    out3 = out.clone().requires_grad_(True)
    offset_log_prob(split_params(out3), torch.zeros(3), torch.zeros(3)).sum().backward()
    assert torch.isfinite(out3.grad).all()


def test_pen_log_prob():
    g = torch.Generator().manual_seed(1)
    out = torch.randn(6, 15, generator=g, dtype=torch.float64)
    idx = torch.tensor([0, 1, 2, 2, 1, 0])
    onehot = torch.nn.functional.one_hot(idx, 3).double()
    got = pen_log_prob(split_params(out), onehot)
    ref = torch.tensor([out[n, idx[n]].item() - math.log(sum(math.exp(out[n, k].item()) for k in range(3)))
                        for n in range(6)], dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_sample_step_greedy():
    M = 3
    out = torch.zeros(2, 6 * M + 3)
    out[0, :3] = torch.tensor([0.0, 2.0, 1.0])
    out[1, :3] = torch.tensor([0.0, 0.0, 5.0])
    out[0, 3:3 + M] = torch.tensor([0.1, 0.0, 3.0])  # component 2
    out[1, 3:3 + M] = torch.tensor([4.0, 0.0, 3.0])  # component 0
    out[:, 3 + M:3 + 3 * M] = torch.arange(2 * M, dtype=torch.float32) + 1  # mu_x = 1..3, mu_y = 4..6
    dx, dy, pen = sample_step(split_params(out), temperature=0.5, greedy=True)
    torch.testing.assert_close(dx, torch.tensor([3.0, 1.0]))
    torch.testing.assert_close(dy, torch.tensor([6.0, 4.0]))
    torch.testing.assert_close(pen, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))


@pytest.mark.parametrize("mode,tau", [("paper", 0.5), ("magenta_py", 0.5), ("magenta_js", 0.4), ("paper", 1.0)])
def test_sample_step_temperature_modes(mode, tau):
    N = 40000
    M = 2
    out = torch.zeros(N, 6 * M + 3, dtype=torch.float64)
    out[:, :3] = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    out[:, 3:3 + M] = torch.tensor([0.0, 0.4], dtype=torch.float64)  # pi logits
    # both components share sigma and rho so the offset covariance given k is known
    out[:, 3 + M:3 + 2 * M] = torch.tensor([-1.0, 2.0], dtype=torch.float64)  # mu_x
    out[:, 3 + 2 * M:3 + 3 * M] = torch.tensor([0.5, 0.5], dtype=torch.float64)  # mu_y
    out[:, 3 + 3 * M:3 + 4 * M] = math.log(0.3)
    out[:, 3 + 4 * M:3 + 5 * M] = math.log(0.2)
    out[:, 3 + 5 * M:] = math.atanh(0.6)
    p = split_params(out)
    gen = torch.Generator().manual_seed(0)
    dx, dy, pen = sample_step(p, temperature=tau, greedy=False, generator=gen, temperature_mode=mode)
    soft_tau = 0.5 + 0.5 * tau if mode == "magenta_js" else tau
    var_factor = tau ** 2 if mode == "magenta_py" else tau  # sigma*tau vs sigma*sqrt(tau)
    # mixture weights: component from which x came (means are 3 apart, sigma <= 0.3*1)
    k1 = (dx > 0.5).double().mean().item()
    w = torch.softmax(torch.tensor([0.0, 0.4], dtype=torch.float64) / soft_tau, 0)
    assert abs(k1 - w[1].item()) < 0.01
    pen_freq = pen.mean(0)
    pw = torch.softmax(torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64) / soft_tau, 0)
    torch.testing.assert_close(pen_freq, pw, atol=0.01, rtol=0)
    assert torch.all(pen.sum(1) == 1)
    # offsets around the chosen component's mean: covariance sigma^2 * var_factor with rho 0.6
    rx = dx - torch.where(dx > 0.5, 2.0, -1.0)
    ry = dy - 0.5
    sx2, sy2 = 0.09 * var_factor, 0.04 * var_factor
    assert abs(rx.var().item() / sx2 - 1) < 0.03
    assert abs(ry.var().item() / sy2 - 1) < 0.03
    assert abs((rx * ry).mean().item() / (0.6 * math.sqrt(sx2 * sy2)) - 1) < 0.05
    # the generator makes draws reproducible
    again = sample_step(p, temperature=tau, generator=torch.Generator().manual_seed(0), temperature_mode=mode)
    torch.testing.assert_close(again[0], dx, rtol=0, atol=0)


def test_sample_step_rejects_bad_temperature_and_mode():
    p = split_params(torch.zeros(1, 15))
    with pytest.raises(ConfigError, match="temperature"):
        sample_step(p, temperature=0.0)
    with pytest.raises(ConfigError, match="temperature_mode"):
        sample_step(p, temperature=1.0, temperature_mode="bogus")
    dx, dy, pen = sample_step(p, temperature=0.0, greedy=True)  # greedy ignores temperature
    assert dx.shape == (1,) and pen.shape == (1, 3)


# ----------------------------------------------------------------------------- float32 head
def test_float32_head_is_linear_in_float32():
    """In float32 without reduced-precision settings the head is nn.Linear exactly: same
    outputs and gradients (state dict keys unchanged, so checkpoints load as before)."""
    from sketchrnn.model.decoder import Float32Head

    torch.manual_seed(0)
    head, lin = Float32Head(16, 7), torch.nn.Linear(16, 7)
    lin.load_state_dict(head.state_dict())
    assert list(head.state_dict()) == ["weight", "bias"]
    x = torch.randn(3, 5, 16, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    g = torch.randn(3, 5, 7)
    (head(x) * g).sum().backward()
    (lin(x2) * g).sum().backward()
    assert torch.equal(x.grad, x2.grad)
    assert torch.equal(head.weight.grad, lin.weight.grad) and torch.equal(head.bias.grad, lin.bias.grad)


def test_float32_head_under_autocast_stays_float32():
    """Under bf16 autocast (train.matmul_precision medium) the head multiplies in float32:
    output float32 and equal to the float32 product of the (bf16) input; its gradients match
    float32 ones and come back in the input's dtype. nn.Linear would give bf16 here."""
    from sketchrnn.model.decoder import Float32Head

    torch.manual_seed(1)
    head = Float32Head(32, 9)
    x = torch.randn(4, 32).bfloat16().requires_grad_()
    g = torch.randn(4, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = head(x)
        assert torch.nn.Linear(32, 9)(x.float()).dtype == torch.bfloat16  # what the head avoids
    assert y.dtype == torch.float32
    xf = x.detach().float().requires_grad_()
    ref = torch.nn.functional.linear(xf, head.weight, head.bias)
    assert torch.equal(y, ref)
    (y * g).sum().backward()
    w_grad = head.weight.grad.clone()
    head.weight.grad = None
    (ref * g).sum().backward()
    assert x.grad.dtype == torch.bfloat16 and torch.allclose(x.grad.float(), xf.grad, rtol=1e-2, atol=1e-2)
    assert torch.allclose(w_grad, head.weight.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_float32_head_ignores_tf32_on_cuda():
    """With TF32 allowed (matmul_precision high) the head's output and gradients are the
    float32 ones, and the process-wide setting is back afterwards."""
    from sketchrnn.model.decoder import Float32Head

    torch.manual_seed(2)
    head = Float32Head(512, 123).cuda()
    x = torch.randn(4096, 512, device="cuda", requires_grad=True)
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        ref = head(x)
        gr = torch.autograd.grad(ref.square().sum(), [x, head.weight])
        torch.set_float32_matmul_precision("high")
        out = head(x)
        go = torch.autograd.grad(out.square().sum(), [x, head.weight])
        assert torch.get_float32_matmul_precision() == "high"
        tf32 = torch.nn.functional.linear(x, head.weight, head.bias)
    finally:
        torch.set_float32_matmul_precision(old)
    def rel(a, b):
        return float((a - b).norm() / b.norm())

    assert rel(out, ref) <= 1e-6 and all(rel(a, b) <= 1e-6 for a, b in zip(go, gr))
    assert rel(tf32, ref) > 1e-5  # TF32 does change this product (~1e-4): the test can fail
