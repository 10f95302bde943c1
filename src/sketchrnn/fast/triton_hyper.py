"""The HyperLSTM recurrence as ONE persistent Triton launch each way (opt-in; kernels correct on an H200).

HyperLSTM (Ha, Dai & Le 2016, arXiv:1609.09106, Sec. 3.2; Magenta's ``HyperLSTMCell`` as
sketch-rnn uses it, :class:`sketchrnn.model.cells.HyperLSTMCell`): per step a small LayerNorm
LSTM, the *hyper cell* (Nh units), reads ``[x_t, h_{t-1}]``; its output ``y_t`` gives the
``hyper_norm`` embeddings ``zs_t = y_t @ W_zs + b_zs`` (12 blocks of E: the scales of the four
x-blocks, of the four h-blocks, and the h-blocks' shifts) and through them, per gate block g,

    pre_g = (zs_x,g @ A_x,g) * (x W_ih)_g + (zs_h,g @ A_h,g) * (h_{t-1} W_hh)_g + zs_b,g @ A_b,g + bias_g

then the main cell as Magenta's LayerNorm LSTM (a norm per gate block, one over c). The
graph-captured compiled path takes 55.6 ms per paper-size training step on an H200 (75 ms on an
H100; issue 3's target: 25 ms), ~30 small kernels per time step: latency, not arithmetic.

Here the whole recurrence is one launch each way, as the LayerNorm kernels of
:mod:`.triton_lstm`: program (unit block, row tile, direction) holds BH main units and
NHB = Nh / NJ hyper units of BB rows (NJ = H / BH programs per row tile, which must all be
resident: they meet at a bounded barrier, :func:`.triton_lstm._row_tile_barrier`, and give up
with NaN rather than hang). Per step, forward (seven barriers):

1. both recurrent products from the previous step's full rows: ``h_{t-1} @ W_hh`` for its main
   units (kept for 3.) and ``h_{t-1} @ W_h->hyper + y_{t-1} @ W_hh(hyper)`` for its hyper
   units; the hyper cell's norms (statistics exchanged: barriers 1, 2); ``y_t`` to memory (3);
2. ``zs_t`` in slices: program q (mod NJ) computes block q of 12, one (BB, Nh) x (Nh, E)
   product (4);
3. its main units' 12 scales from the whole ``zs_t`` row (twelve (BB, E) x (E, BH) products),
   the pre-activations, the main cell's norms (5, 6) and ``h_t`` (7).

Backward (seven barriers per step): ``dh_t`` from the step after's pre-activation gradients of
both cells, the main cell's norms backward (two exchanges); the scales' gradients give each
program a part of ``d zs_t`` over its units, exchanged and summed per block (two barriers);
``d y_t`` = ``d zs_t @ W_zs^T`` + the hyper recurrence's part; the hyper cell's norms backward
(two exchanges); then the pre-activation gradients of both cells to memory. The weight
gradients are products over all T * B rows after the loop (as :mod:`.triton_lstm`).

Checked on the CPU under Triton's interpreter against the float64 eager recurrence of
:mod:`.decoder` (tests/test_triton_hyper.py), with every program of a row tile running at once
(tests/triton_threads.py) and compiled for sm_90 (benchmarks/compile_sm90.py); its speed is for
a GPU session to measure (benchmarks/NOTES_gpu.md).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import triton_lstm as _tl
# the jit helpers the kernels call by name (the interpreter binds its own copies: _tl.interpreted)
from .triton_lstm import (_SUM, _acc, _dot, _get_stats, _get_sums, _put_stats, _put_sums,  # noqa: F401
                          _row_tile_barrier, _sig, _tanh, tl, triton)

__all__ = ["supports_hyper", "hyper_grid", "hyper_lstm_sequence"]

Z_BLOCKS = 12  # hyper_norm blocks: scales of the 4 x-blocks, of the 4 h-blocks, shifts of the 4 h-blocks
N_SLOTS = 20  # exchange slots per program and row: hyper gates 0-7, hyper c 8-9, main gates 10-17, main c 18-19


# ----------------------------------------------------------------------------- helpers (inlined)
# (the products, gate nonlinearities and norm exchanges are .triton_lstm's, shared with its
# LayerNorm kernels)
def _scales_py(zr, wb, g, E: tl.constexpr, H: tl.constexpr, bm, PREC: tl.constexpr):
    # gate block g's scales of x W_ih and h W_hh and its shift, for this program's units:
    # zs blocks g, 4 + g, 8 + g (BB, E) times their (E, BH) slices of the per-block projections
    zx = tl.load(zr + g * E, mask=bm, other=0.0, cache_modifier=".cg")
    zh = tl.load(zr + (4 + g) * E, mask=bm, other=0.0, cache_modifier=".cg")
    zb = tl.load(zr + (8 + g) * E, mask=bm, other=0.0, cache_modifier=".cg")
    return (_dot(zx, tl.load(wb + g * E * H), PREC), _dot(zh, tl.load(wb + (4 + g) * E * H), PREC),
            _dot(zb, tl.load(wb + (8 + g) * E * H), PREC))


def _scale_grads_py(p, zr, wb, wbt, xr, o, gp_ptr, gx_ptr, gh_ptr, hw_ptr, pz, poison, g, E: tl.constexpr,
                    H: tl.constexpr, bm, PREC: tl.constexpr):
    # gate block g, pre-activation gradient p (BB, BH) at offsets o + g * H of the (D, T, B, 4H)
    # buffers: stores p, the gradients of x W_ih and h W_hh (p * alpha_x, p * alpha_h), and puts
    # this program's part of d zs (its units' share of the sums over H) for blocks g, 4 + g,
    # 8 + g into the exchange pz (BB, 12E)
    zx = tl.load(zr + g * E, mask=bm, other=0.0)
    zh = tl.load(zr + (4 + g) * E, mask=bm, other=0.0)
    og = o + g * H
    tl.store(gp_ptr + og, p + poison, mask=bm)
    tl.store(gx_ptr + og, p * _dot(zx, tl.load(wb + g * E * H), PREC) + poison, mask=bm)
    tl.store(gh_ptr + og, p * _dot(zh, tl.load(wb + (4 + g) * E * H), PREC) + poison, mask=bm)
    xw = tl.load(xr + g * H, mask=bm, other=0.0)
    hw = tl.load(hw_ptr + og, mask=bm, other=0.0)
    tl.store(pz + g * E, _dot(p * xw, tl.load(wbt + g * E * H), PREC))
    tl.store(pz + (4 + g) * E, _dot(p * hw, tl.load(wbt + (4 + g) * E * H), PREC))
    tl.store(pz + (8 + g) * E, _dot(p, tl.load(wbt + (8 + g) * E * H), PREC))


_HELPERS_PY = {**_tl.HELPERS_PY, "_scales": _scales_py, "_scale_grads": _scale_grads_py}
if triton is not None:
    _scales, _scale_grads = triton.jit(_scales_py), triton.jit(_scale_grads_py)


# ----------------------------------------------------------------------------- forward
def _hyper_fw_seq(xw_ptr, hx_ptr, w_ptr, wyh_ptr, wyy_ptr, wzs_ptr, bzs_ptr, wblk_ptr, bias_ptr,
                  gam_ptr, bet_ptr, gamc_ptr, betc_ptr, ygam_ptr, ybet_ptr, ygamc_ptr, ybetc_ptr,
                  hs_ptr, cs_ptr, ys_ptr, ycs_ptr, m_ptr,
                  a_ptr, xh_ptr, hw_ptr, ch_ptr, rs_ptr, rsc_ptr, ya_ptr, yxh_ptr, ych_ptr, yrs_ptr, yrsc_ptr, zs_ptr,
                  st_ptr, cnt_ptr, err_ptr, T, B, TS, KS, forget_bias, yforget_bias, eps, MAX_SPIN,
                  H: tl.constexpr, NH: tl.constexpr, E: tl.constexpr, NJ: tl.constexpr, NHB: tl.constexpr,
                  HAS_MASK: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
    # inputs: xw (T, D, B, 4H) = x W_ih (no bias), hx (T, D, B, 4Nh) = x W_ih(hyper)[:I]; weights
    # W_hh (D, H, 4H), W_h->hyper (D, H, 4Nh), W_hh(hyper) (D, Nh, 4Nh), W_zs (D, Nh, 12E), b_zs
    # (D, 12E), per-block projections (D, 12, E, H); bias, gains, shifts (D, n); masks (T, D, B, H)
    # states: hs / cs (D, T + 1, B, H), ys / ycs (D, T + 1, B, Nh) (index 0 = initial)
    # saved for the backward, slot t * KS of TS (KS = 0: one scratch slot): main acts / xh / hw
    # (D, TS, B, 4H), ch (D, TS, B, H), rs (D, TS, B, 4), rsc (D, TS, B); the hyper cell's ya / yxh
    # (D, TS, B, 4Nh), ych (D, TS, B, Nh), yrs, yrsc; zs (D, TS, B, 12E)
    pj = tl.program_id(0)  # a row tile's unit blocks: consecutive programs
    pb = tl.program_id(1)
    d = tl.program_id(2)
    DD = tl.num_programs(2)
    G = 4 * H
    GY = 4 * NH
    Z = 12 * E
    rl = tl.arange(0, BB)
    rb = pb * BB + rl
    rmask = rb < B
    bm = rb[:, None] < B
    rj = pj * BH + tl.arange(0, BH)  # main units
    ru = pj * NHB + tl.arange(0, NHB)  # hyper units
    rk = tl.arange(0, BK)
    re = tl.arange(0, E)
    sr = rb[:, None] * H + rj[None, :]  # (BB, BH) of a (B, H) state
    su = rb[:, None] * NH + ru[None, :]  # (BB, NHB) of a (B, Nh) state
    grp = d * tl.num_programs(1) + pb
    sx = st_ptr + grp * NJ * BB * 20  # this row tile's exchange: N_SLOTS (20) per program and row
    sx_mine = sx + pj * BB * 20 + rl * 20  # (BB,)
    sx_all = sx + tl.arange(0, NJ)[:, None] * BB * 20 + rl[None, :] * 20  # (NJ, BB)
    c = tl.load(cs_ptr + d * (T + 1) * B * H + sr, mask=bm, other=0.0)
    yc = tl.load(ycs_ptr + d * (T + 1) * B * NH + su, mask=bm, other=0.0)
    poison = tl.load(err_ptr).to(c.dtype) * 0.0
    limit = MAX_SPIN + 0 * pb
    phase = 0
    # gains, shifts and the bias are read where they are used (L1 hits): held across the loop
    # they cost ~24 registers' worth per thread and made the kernel spill (compile_sm90.py)
    pg = d * G + rj  # (BH,) this program's columns of a (D, 4H) vector
    pgy = d * GY + ru
    for t in range(0, T):
        hp = hs_ptr + d * (T + 1) * B * H + t * B * H + rb[:, None] * H  # (BB, 1) rows of h_{t-1}
        yp = ys_ptr + d * (T + 1) * B * NH + t * B * NH + rb[:, None] * NH  # rows of y_{t-1}
        acc_i = tl.full((BB, BH), 0.0, c.dtype)
        acc_j = tl.full((BB, BH), 0.0, c.dtype)
        acc_f = tl.full((BB, BH), 0.0, c.dtype)
        acc_o = tl.full((BB, BH), 0.0, c.dtype)
        ay_i = tl.full((BB, NHB), 0.0, c.dtype)
        ay_j = tl.full((BB, NHB), 0.0, c.dtype)
        ay_f = tl.full((BB, NHB), 0.0, c.dtype)
        ay_o = tl.full((BB, NHB), 0.0, c.dtype)
        for k0 in range(0, H, BK):  # h_{t-1} meets W_hh (main units) and W_h->hyper (hyper units)
            hk = tl.load(hp + (k0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")  # (BB, BK)
            wk = w_ptr + d * H * G + (k0 + rk)[:, None] * G + rj[None, :]  # (BK, BH)
            acc_i += _dot(hk, tl.load(wk), PREC)
            acc_j += _dot(hk, tl.load(wk + H), PREC)
            acc_f += _dot(hk, tl.load(wk + 2 * H), PREC)
            acc_o += _dot(hk, tl.load(wk + 3 * H), PREC)
            wk = wyh_ptr + d * H * GY + (k0 + rk)[:, None] * GY + ru[None, :]  # (BK, NHB)
            ay_i += _dot(hk, tl.load(wk), PREC)
            ay_j += _dot(hk, tl.load(wk + NH), PREC)
            ay_f += _dot(hk, tl.load(wk + 2 * NH), PREC)
            ay_o += _dot(hk, tl.load(wk + 3 * NH), PREC)
        for k0 in range(0, NH, BK):  # y_{t-1} meets the hyper cell's W_hh
            yk = tl.load(yp + (k0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")
            wk = wyy_ptr + d * NH * GY + (k0 + rk)[:, None] * GY + ru[None, :]
            ay_i += _dot(yk, tl.load(wk), PREC)
            ay_j += _dot(yk, tl.load(wk + NH), PREC)
            ay_f += _dot(yk, tl.load(wk + 2 * NH), PREC)
            ay_o += _dot(yk, tl.load(wk + 3 * NH), PREC)
        xr = hx_ptr + t * DD * B * GY + d * B * GY + rb[:, None] * GY + ru[None, :]
        ay_i += tl.load(xr, mask=bm, other=0.0)
        ay_j += tl.load(xr + NH, mask=bm, other=0.0)
        ay_f += tl.load(xr + 2 * NH, mask=bm, other=0.0)
        ay_o += tl.load(xr + 3 * NH, mask=bm, other=0.0)
        # ---- the hyper cell (LayerNorm LSTM, no dropout): its gate blocks' norms (barrier 1)
        _put_stats(sx_mine, ay_i, NHB)
        _put_stats(sx_mine + 2, ay_j, NHB)
        _put_stats(sx_mine + 4, ay_f, NHB)
        _put_stats(sx_mine + 6, ay_o, NHB)
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        mean, yr_i = _get_stats(sx_all, NJ, NHB, NH, eps)
        yx_i = (ay_i - mean[:, None]) * yr_i[:, None]
        mean, yr_j = _get_stats(sx_all + 2, NJ, NHB, NH, eps)
        yx_j = (ay_j - mean[:, None]) * yr_j[:, None]
        mean, yr_f = _get_stats(sx_all + 4, NJ, NHB, NH, eps)
        yx_f = (ay_f - mean[:, None]) * yr_f[:, None]
        mean, yr_o = _get_stats(sx_all + 6, NJ, NHB, NH, eps)
        yx_o = (ay_o - mean[:, None]) * yr_o[:, None]
        ysi = _sig(yx_i * tl.load(ygam_ptr + pgy)[None, :] + tl.load(ybet_ptr + pgy)[None, :])
        ytj = _tanh(yx_j * tl.load(ygam_ptr + pgy + NH)[None, :] + tl.load(ybet_ptr + pgy + NH)[None, :])
        ysf = _sig(yx_f * tl.load(ygam_ptr + pgy + 2 * NH)[None, :] + tl.load(ybet_ptr + pgy + 2 * NH)[None, :]
                   + yforget_bias)
        yso = _sig(yx_o * tl.load(ygam_ptr + pgy + 3 * NH)[None, :] + tl.load(ybet_ptr + pgy + 3 * NH)[None, :])
        yc = yc * ysf + ysi * ytj
        _put_stats(sx_mine + 8, yc, NHB)
        phase += 1  # ---- barrier 2: the norm of the hyper cell's c
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        mean, yr_c = _get_stats(sx_all + 8, NJ, NHB, NH, eps)
        ychat = (yc - mean[:, None]) * yr_c[:, None]
        ytc = _tanh(ychat * tl.load(ygamc_ptr + d * NH + ru)[None, :] + tl.load(ybetc_ptr + d * NH + ru)[None, :])
        slot = t * KS
        ar = d * TS * B * GY + slot * B * GY + rb[:, None] * GY + ru[None, :]
        tl.store(ya_ptr + ar, ysi, mask=bm)
        tl.store(ya_ptr + ar + NH, ytj, mask=bm)
        tl.store(ya_ptr + ar + 2 * NH, ysf, mask=bm)
        tl.store(ya_ptr + ar + 3 * NH, yso, mask=bm)
        tl.store(yxh_ptr + ar, yx_i, mask=bm)
        tl.store(yxh_ptr + ar + NH, yx_j, mask=bm)
        tl.store(yxh_ptr + ar + 2 * NH, yx_f, mask=bm)
        tl.store(yxh_ptr + ar + 3 * NH, yx_o, mask=bm)
        tl.store(ych_ptr + d * TS * B * NH + slot * B * NH + su, ychat, mask=bm)
        rr = d * TS * B + slot * B + rb  # (BB,) rows of the (D, TS, B) row statistics
        if pj == 0:
            tl.store(yrs_ptr + rr * 4, yr_i, mask=rmask)
            tl.store(yrs_ptr + rr * 4 + 1, yr_j, mask=rmask)
            tl.store(yrs_ptr + rr * 4 + 2, yr_f, mask=rmask)
            tl.store(yrs_ptr + rr * 4 + 3, yr_o, mask=rmask)
            tl.store(yrsc_ptr + rr, yr_c, mask=rmask)
        yo = d * (T + 1) * B * NH + (t + 1) * B * NH + su
        tl.store(ycs_ptr + yo, yc + poison, mask=bm)
        tl.store(ys_ptr + yo, ytc * yso + poison, mask=bm)
        phase += 1  # ---- barrier 3: y_t complete
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        # ---- hyper_norm embeddings zs_t = y_t W_zs + b_zs, block q by program q (mod NJ)
        yq = ys_ptr + d * (T + 1) * B * NH + (t + 1) * B * NH + rb[:, None] * NH
        zr = zs_ptr + d * TS * B * Z + slot * B * Z + rb[:, None] * Z + re[None, :]  # (BB, E) block 0
        for q in range(pj, 12, NJ):
            az = tl.full((BB, E), 0.0, c.dtype)
            for k0 in range(0, NH, BK):
                yk = tl.load(yq + (k0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")
                az += _dot(yk, tl.load(wzs_ptr + d * NH * Z + (k0 + rk)[:, None] * Z + q * E + re[None, :]), PREC)
            tl.store(zr + q * E, az + tl.load(bzs_ptr + d * Z + q * E + re)[None, :], mask=bm)
        phase += 1  # ---- barrier 4: zs_t complete
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        # ---- the main cell's pre-activations from its 12 scales, then its norms (barriers 5, 6)
        wb = wblk_ptr + d * 12 * E * H + re[:, None] * H + rj[None, :]  # (E, BH) of block 0
        xr = xw_ptr + t * DD * B * G + d * B * G + rb[:, None] * G + rj[None, :]
        hr = d * TS * B * G + slot * B * G + rb[:, None] * G + rj[None, :]
        tl.store(hw_ptr + hr, acc_i, mask=bm)  # h_{t-1} W_hh, for the scales' gradients
        tl.store(hw_ptr + hr + H, acc_j, mask=bm)
        tl.store(hw_ptr + hr + 2 * H, acc_f, mask=bm)
        tl.store(hw_ptr + hr + 3 * H, acc_o, mask=bm)
        ax, ah, bh = _scales(zr, wb, 0, E, H, bm, PREC)
        acc_i = ax * tl.load(xr, mask=bm, other=0.0) + ah * acc_i + bh + tl.load(bias_ptr + pg)[None, :]
        ax, ah, bh = _scales(zr, wb, 1, E, H, bm, PREC)
        acc_j = ax * tl.load(xr + H, mask=bm, other=0.0) + ah * acc_j + bh + tl.load(bias_ptr + pg + H)[None, :]
        ax, ah, bh = _scales(zr, wb, 2, E, H, bm, PREC)
        acc_f = ax * tl.load(xr + 2 * H, mask=bm, other=0.0) + ah * acc_f + bh + tl.load(bias_ptr + pg + 2 * H)[None, :]
        ax, ah, bh = _scales(zr, wb, 3, E, H, bm, PREC)
        acc_o = ax * tl.load(xr + 3 * H, mask=bm, other=0.0) + ah * acc_o + bh + tl.load(bias_ptr + pg + 3 * H)[None, :]
        _put_stats(sx_mine + 10, acc_i, BH)
        _put_stats(sx_mine + 12, acc_j, BH)
        _put_stats(sx_mine + 14, acc_f, BH)
        _put_stats(sx_mine + 16, acc_o, BH)
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        mean, r_i = _get_stats(sx_all + 10, NJ, BH, H, eps)
        xi = (acc_i - mean[:, None]) * r_i[:, None]
        mean, r_j = _get_stats(sx_all + 12, NJ, BH, H, eps)
        xj = (acc_j - mean[:, None]) * r_j[:, None]
        mean, r_f = _get_stats(sx_all + 14, NJ, BH, H, eps)
        xf = (acc_f - mean[:, None]) * r_f[:, None]
        mean, r_o = _get_stats(sx_all + 16, NJ, BH, H, eps)
        xo = (acc_o - mean[:, None]) * r_o[:, None]
        si = _sig(xi * tl.load(gam_ptr + pg)[None, :] + tl.load(bet_ptr + pg)[None, :])
        tj = _tanh(xj * tl.load(gam_ptr + pg + H)[None, :] + tl.load(bet_ptr + pg + H)[None, :])
        sf = _sig(xf * tl.load(gam_ptr + pg + 2 * H)[None, :] + tl.load(bet_ptr + pg + 2 * H)[None, :] + forget_bias)
        so = _sig(xo * tl.load(gam_ptr + pg + 3 * H)[None, :] + tl.load(bet_ptr + pg + 3 * H)[None, :])
        g = tj
        if HAS_MASK:  # recurrent dropout on g (main cell only)
            g = tj * tl.load(m_ptr + t * DD * B * H + d * B * H + sr, mask=bm, other=0.0)
        c = c * sf + si * g
        _put_stats(sx_mine + 18, c, BH)
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        mean, r_c = _get_stats(sx_all + 18, NJ, BH, H, eps)
        chat = (c - mean[:, None]) * r_c[:, None]
        tc = _tanh(chat * tl.load(gamc_ptr + d * H + rj)[None, :] + tl.load(betc_ptr + d * H + rj)[None, :])
        tl.store(a_ptr + hr, si, mask=bm)
        tl.store(a_ptr + hr + H, tj, mask=bm)
        tl.store(a_ptr + hr + 2 * H, sf, mask=bm)
        tl.store(a_ptr + hr + 3 * H, so, mask=bm)
        tl.store(xh_ptr + hr, xi, mask=bm)
        tl.store(xh_ptr + hr + H, xj, mask=bm)
        tl.store(xh_ptr + hr + 2 * H, xf, mask=bm)
        tl.store(xh_ptr + hr + 3 * H, xo, mask=bm)
        tl.store(ch_ptr + d * TS * B * H + slot * B * H + sr, chat, mask=bm)
        if pj == 0:
            tl.store(rs_ptr + rr * 4, r_i, mask=rmask)
            tl.store(rs_ptr + rr * 4 + 1, r_j, mask=rmask)
            tl.store(rs_ptr + rr * 4 + 2, r_f, mask=rmask)
            tl.store(rs_ptr + rr * 4 + 3, r_o, mask=rmask)
            tl.store(rsc_ptr + rr, r_c, mask=rmask)
        so_ = d * (T + 1) * B * H + (t + 1) * B * H + sr
        tl.store(cs_ptr + so_, c + poison, mask=bm)
        tl.store(hs_ptr + so_, tc * so + poison, mask=bm)
        if t + 1 < T:  # ---- barrier 7: h_t complete before the next step's products read it
            phase += 1
            if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
                tl.atomic_max(err_ptr, 1)
                poison = poison + float("nan")
                limit = 0


# ----------------------------------------------------------------------------- backward
def _hyper_bw_seq(gp_ptr, gx_ptr, gh_ptr, gy_ptr, dz_ptr, pz_ptr, wt_ptr, wyht_ptr, wyyt_ptr, wzs_ptr, wblk_ptr,
                  dhs_ptr, dl_ptr, dyl_ptr, xw_ptr,
                  a_ptr, xh_ptr, hw_ptr, ch_ptr, rs_ptr, rsc_ptr, ya_ptr, yxh_ptr, ych_ptr, yrs_ptr, yrsc_ptr, zs_ptr,
                  cs_ptr, ycs_ptr, m_ptr, gam_ptr, gamc_ptr, betc_ptr, ygam_ptr, ygamc_ptr, ybetc_ptr,
                  dc_ptr, dyc_ptr, dgam_ptr, dbet_ptr, dgamc_ptr, dbetc_ptr, dygam_ptr, dybet_ptr, dygamc_ptr,
                  dybetc_ptr, st_ptr, cnt_ptr, err_ptr, T, B, MAX_SPIN,
                  H: tl.constexpr, NH: tl.constexpr, E: tl.constexpr, NJ: tl.constexpr, NHB: tl.constexpr,
                  HAS_MASK: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
    # outputs per step (D, T, B, .): the main cell's pre-activation gradients gp (4H), their
    # products with the scales gx = gp * alpha_x (the gradient of x W_ih) and gh = gp * alpha_h
    # (of h W_hh), the hyper cell's pre-activation gradients gy (4Nh), d zs (12E); dc / dyc (D, B, .)
    # the final cells' gradients on entry, the initial ones on exit; the gains' and shifts'
    # gradients summed per row tile (D, row tiles, n). pz (D, row tiles, NJ, BB, 12E): the
    # programs' parts of d zs.
    # W_hh^T (D, 4H, H), W_h->hyper^T (D, 4Nh, H), W_hh(hyper)^T (D, 4Nh, Nh); dhs (T, D, B, H)
    # plus dl (D, B, H) and dyl (D, B, Nh) at the last step; saved values as the forward's (TS = T)
    pj = tl.program_id(0)
    pb = tl.program_id(1)
    d = tl.program_id(2)
    DD = tl.num_programs(2)
    G = 4 * H
    GY = 4 * NH
    Z = 12 * E
    rl = tl.arange(0, BB)
    rb = pb * BB + rl
    rmask = rb < B
    bm = rb[:, None] < B
    rj = pj * BH + tl.arange(0, BH)
    ru = pj * NHB + tl.arange(0, NHB)
    rk = tl.arange(0, BK)
    re = tl.arange(0, E)
    sr = rb[:, None] * H + rj[None, :]
    su = rb[:, None] * NH + ru[None, :]
    grp = d * tl.num_programs(1) + pb
    sx = st_ptr + grp * NJ * BB * 20
    sx_mine = sx + pj * BB * 20 + rl * 20
    sx_all = sx + tl.arange(0, NJ)[:, None] * BB * 20 + rl[None, :] * 20
    pz_mine = pz_ptr + (grp * NJ + pj) * BB * Z + rl[:, None] * Z + re[None, :]  # (BB, E) block 0
    dc = tl.load(dc_ptr + d * B * H + sr, mask=bm, other=0.0)
    dyc = tl.load(dyc_ptr + d * B * NH + su, mask=bm, other=0.0)
    poison = tl.load(err_ptr).to(dc.dtype) * 0.0
    limit = MAX_SPIN + 0 * pb
    phase = 0
    # gains read where used; the gains' and shifts' gradients summed per row tile in place in
    # (D * row tiles, n) buffers that only this program touches at these columns (registers
    # held across the loop made the kernel spill; the launcher sums the row tiles)
    pg = d * G + rj
    pgy = d * GY + ru
    qg = grp * G + rj
    qh = grp * H + rj
    qgy = grp * GY + ru
    qy = grp * NH + ru
    for s in range(0, T):
        t = T - 1 - s
        dh = tl.load(dhs_ptr + t * DD * B * H + d * B * H + sr, mask=bm, other=0.0)
        dy = tl.full((BB, NHB), 0.0, dc.dtype)
        if s == 0:
            dh = dh + tl.load(dl_ptr + d * B * H + sr, mask=bm, other=0.0)
            dy = dy + tl.load(dyl_ptr + d * B * NH + su, mask=bm, other=0.0)
        else:  # step t + 1's pre-activation gradients of both cells, through the weights that read h_t, y_t
            acc = tl.full((BB, BH), 0.0, dc.dtype)
            ghp = gh_ptr + d * T * B * G + (t + 1) * B * G + rb[:, None] * G
            for n0 in range(0, G, BK):
                gk = tl.load(ghp + (n0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")
                acc += _dot(gk, tl.load(wt_ptr + d * G * H + (n0 + rk)[:, None] * H + rj[None, :]), PREC)
            gyp = gy_ptr + d * T * B * GY + (t + 1) * B * GY + rb[:, None] * GY
            for n0 in range(0, GY, BK):
                gk = tl.load(gyp + (n0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")
                acc += _dot(gk, tl.load(wyht_ptr + d * GY * H + (n0 + rk)[:, None] * H + rj[None, :]), PREC)
            dh = dh + acc
            for n0 in range(0, GY, BK):  # a loop of its own: sharing the one above spilled (TF32, sm_90)
                gk = tl.load(gyp + (n0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")
                dy += _dot(gk, tl.load(wyyt_ptr + d * GY * NH + (n0 + rk)[:, None] * NH + ru[None, :]), PREC)
        # ---- the main cell: the norm of c backward (barrier 1), the gate math, the gate norms (2)
        ar = d * T * B * G + t * B * G + rb[:, None] * G + rj[None, :]
        si = tl.load(a_ptr + ar, mask=bm, other=0.0)
        tj = tl.load(a_ptr + ar + H, mask=bm, other=0.0)
        sf = tl.load(a_ptr + ar + 2 * H, mask=bm, other=0.0)
        so = tl.load(a_ptr + ar + 3 * H, mask=bm, other=0.0)
        chat = tl.load(ch_ptr + d * T * B * H + t * B * H + sr, mask=bm, other=0.0)
        rr = d * T * B + t * B + rb
        gc = tl.load(gamc_ptr + d * H + rj)[None, :]
        tc = _tanh(chat * gc + tl.load(betc_ptr + d * H + rj)[None, :])
        d_o = dh * tc
        dcn = dh * so * (1.0 - tc * tc)
        _acc(dgamc_ptr + qh, tl.reduce(dcn * chat, 0, _SUM))
        _acc(dbetc_ptr + qh, tl.reduce(dcn, 0, _SUM))
        dch = dcn * gc
        _put_sums(sx_mine + 18, dch, dch * chat)
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        s1, s2 = _get_sums(sx_all + 18, H)
        r = tl.load(rsc_ptr + rr, mask=rmask, other=0.0)
        dc = dc + r[:, None] * (dch - s1[:, None] - chat * s2[:, None])
        cp = tl.load(cs_ptr + d * (T + 1) * B * H + t * B * H + sr, mask=bm, other=0.0)
        g = tj
        dj = dc * si
        if HAS_MASK:
            m = tl.load(m_ptr + t * DD * B * H + d * B * H + sr, mask=bm, other=0.0)
            g = tj * m
            dj = dj * m
        ui = dc * g * si * (1.0 - si)
        uj = dj * (1.0 - tj * tj)
        uf = dc * cp * sf * (1.0 - sf)
        uo = d_o * so * (1.0 - so)
        dc = dc * sf
        xi = tl.load(xh_ptr + ar, mask=bm, other=0.0)
        xj = tl.load(xh_ptr + ar + H, mask=bm, other=0.0)
        xf = tl.load(xh_ptr + ar + 2 * H, mask=bm, other=0.0)
        xo = tl.load(xh_ptr + ar + 3 * H, mask=bm, other=0.0)
        _acc(dgam_ptr + qg, tl.reduce(ui * xi, 0, _SUM))
        _acc(dgam_ptr + qg + H, tl.reduce(uj * xj, 0, _SUM))
        _acc(dgam_ptr + qg + 2 * H, tl.reduce(uf * xf, 0, _SUM))
        _acc(dgam_ptr + qg + 3 * H, tl.reduce(uo * xo, 0, _SUM))
        _acc(dbet_ptr + qg, tl.reduce(ui, 0, _SUM))
        _acc(dbet_ptr + qg + H, tl.reduce(uj, 0, _SUM))
        _acc(dbet_ptr + qg + 2 * H, tl.reduce(uf, 0, _SUM))
        _acc(dbet_ptr + qg + 3 * H, tl.reduce(uo, 0, _SUM))
        ui = ui * tl.load(gam_ptr + pg)[None, :]
        uj = uj * tl.load(gam_ptr + pg + H)[None, :]
        uf = uf * tl.load(gam_ptr + pg + 2 * H)[None, :]
        uo = uo * tl.load(gam_ptr + pg + 3 * H)[None, :]
        _put_sums(sx_mine + 10, ui, ui * xi)
        _put_sums(sx_mine + 12, uj, uj * xj)
        _put_sums(sx_mine + 14, uf, uf * xf)
        _put_sums(sx_mine + 16, uo, uo * xo)
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        s1, s2 = _get_sums(sx_all + 10, H)
        ui = tl.load(rs_ptr + rr * 4, mask=rmask, other=0.0)[:, None] * (ui - s1[:, None] - xi * s2[:, None])
        s1, s2 = _get_sums(sx_all + 12, H)
        uj = tl.load(rs_ptr + rr * 4 + 1, mask=rmask, other=0.0)[:, None] * (uj - s1[:, None] - xj * s2[:, None])
        s1, s2 = _get_sums(sx_all + 14, H)
        uf = tl.load(rs_ptr + rr * 4 + 2, mask=rmask, other=0.0)[:, None] * (uf - s1[:, None] - xf * s2[:, None])
        s1, s2 = _get_sums(sx_all + 16, H)
        uo = tl.load(rs_ptr + rr * 4 + 3, mask=rmask, other=0.0)[:, None] * (uo - s1[:, None] - xo * s2[:, None])
        # ---- through the scales: gradients of x W_ih, h W_hh; parts of d zs (barrier 3)
        zr = zs_ptr + d * T * B * Z + t * B * Z + rb[:, None] * Z + re[None, :]
        wb = wblk_ptr + d * 12 * E * H + re[:, None] * H + rj[None, :]  # (E, BH) of block 0
        wbt = wblk_ptr + d * 12 * E * H + re[None, :] * H + rj[:, None]  # (BH, E): its transpose
        xr = xw_ptr + t * DD * B * G + d * B * G + rb[:, None] * G + rj[None, :]
        _scale_grads(ui, zr, wb, wbt, xr, ar, gp_ptr, gx_ptr, gh_ptr, hw_ptr, pz_mine, poison, 0, E, H, bm, PREC)
        _scale_grads(uj, zr, wb, wbt, xr, ar, gp_ptr, gx_ptr, gh_ptr, hw_ptr, pz_mine, poison, 1, E, H, bm, PREC)
        _scale_grads(uf, zr, wb, wbt, xr, ar, gp_ptr, gx_ptr, gh_ptr, hw_ptr, pz_mine, poison, 2, E, H, bm, PREC)
        _scale_grads(uo, zr, wb, wbt, xr, ar, gp_ptr, gx_ptr, gh_ptr, hw_ptr, pz_mine, poison, 3, E, H, bm, PREC)
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        # ---- d zs_t: block q summed over the row tile's programs by program q (mod NJ) (barrier 4)
        dzr = dz_ptr + d * T * B * Z + t * B * Z + rb[:, None] * Z + re[None, :]
        for q in range(pj, 12, NJ):
            az = tl.full((BB, E), 0.0, dc.dtype)
            for p2 in range(0, NJ):
                az += tl.load(pz_ptr + (grp * NJ + p2) * BB * Z + rl[:, None] * Z + q * E + re[None, :],
                              cache_modifier=".cg")
            tl.store(dzr + q * E, az + poison, mask=bm)
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        # ---- d y_t = d zs_t W_zs^T (this program's hyper units) + the recurrence's part above
        wzt = wzs_ptr + d * NH * Z + ru[None, :] * Z + re[:, None]  # (E, NHB): W_zs[u, e] of block 0
        for q in range(0, 12):
            dy += _dot(tl.load(dzr + q * E, mask=bm, other=0.0, cache_modifier=".cg"), tl.load(wzt + q * E), PREC)
        # ---- the hyper cell: the norm of its c (barrier 5), gate math, gate norms (6)
        yar = d * T * B * GY + t * B * GY + rb[:, None] * GY + ru[None, :]
        ysi = tl.load(ya_ptr + yar, mask=bm, other=0.0)
        ytj = tl.load(ya_ptr + yar + NH, mask=bm, other=0.0)
        ysf = tl.load(ya_ptr + yar + 2 * NH, mask=bm, other=0.0)
        yso = tl.load(ya_ptr + yar + 3 * NH, mask=bm, other=0.0)
        ychat = tl.load(ych_ptr + d * T * B * NH + t * B * NH + su, mask=bm, other=0.0)
        ygc = tl.load(ygamc_ptr + d * NH + ru)[None, :]
        ytc = _tanh(ychat * ygc + tl.load(ybetc_ptr + d * NH + ru)[None, :])
        yd_o = dy * ytc
        ydcn = dy * yso * (1.0 - ytc * ytc)
        _acc(dygamc_ptr + qy, tl.reduce(ydcn * ychat, 0, _SUM))
        _acc(dybetc_ptr + qy, tl.reduce(ydcn, 0, _SUM))
        ydch = ydcn * ygc
        _put_sums(sx_mine + 8, ydch, ydch * ychat)
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        s1, s2 = _get_sums(sx_all + 8, NH)
        r = tl.load(yrsc_ptr + rr, mask=rmask, other=0.0)
        dyc = dyc + r[:, None] * (ydch - s1[:, None] - ychat * s2[:, None])
        ycp = tl.load(ycs_ptr + d * (T + 1) * B * NH + t * B * NH + su, mask=bm, other=0.0)
        vi = dyc * ytj * ysi * (1.0 - ysi)
        vj = dyc * ysi * (1.0 - ytj * ytj)
        vf = dyc * ycp * ysf * (1.0 - ysf)
        vo = yd_o * yso * (1.0 - yso)
        dyc = dyc * ysf
        yxi = tl.load(yxh_ptr + yar, mask=bm, other=0.0)
        yxj = tl.load(yxh_ptr + yar + NH, mask=bm, other=0.0)
        yxf = tl.load(yxh_ptr + yar + 2 * NH, mask=bm, other=0.0)
        yxo = tl.load(yxh_ptr + yar + 3 * NH, mask=bm, other=0.0)
        _acc(dygam_ptr + qgy, tl.reduce(vi * yxi, 0, _SUM))
        _acc(dygam_ptr + qgy + NH, tl.reduce(vj * yxj, 0, _SUM))
        _acc(dygam_ptr + qgy + 2 * NH, tl.reduce(vf * yxf, 0, _SUM))
        _acc(dygam_ptr + qgy + 3 * NH, tl.reduce(vo * yxo, 0, _SUM))
        _acc(dybet_ptr + qgy, tl.reduce(vi, 0, _SUM))
        _acc(dybet_ptr + qgy + NH, tl.reduce(vj, 0, _SUM))
        _acc(dybet_ptr + qgy + 2 * NH, tl.reduce(vf, 0, _SUM))
        _acc(dybet_ptr + qgy + 3 * NH, tl.reduce(vo, 0, _SUM))
        vi = vi * tl.load(ygam_ptr + pgy)[None, :]
        vj = vj * tl.load(ygam_ptr + pgy + NH)[None, :]
        vf = vf * tl.load(ygam_ptr + pgy + 2 * NH)[None, :]
        vo = vo * tl.load(ygam_ptr + pgy + 3 * NH)[None, :]
        _put_sums(sx_mine, vi, vi * yxi)
        _put_sums(sx_mine + 2, vj, vj * yxj)
        _put_sums(sx_mine + 4, vf, vf * yxf)
        _put_sums(sx_mine + 6, vo, vo * yxo)
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        s1, s2 = _get_sums(sx_all, NH)
        tl.store(gy_ptr + yar, tl.load(yrs_ptr + rr * 4, mask=rmask, other=0.0)[:, None]
                 * (vi - s1[:, None] - yxi * s2[:, None]) + poison, mask=bm)
        s1, s2 = _get_sums(sx_all + 2, NH)
        tl.store(gy_ptr + yar + NH, tl.load(yrs_ptr + rr * 4 + 1, mask=rmask, other=0.0)[:, None]
                 * (vj - s1[:, None] - yxj * s2[:, None]) + poison, mask=bm)
        s1, s2 = _get_sums(sx_all + 4, NH)
        tl.store(gy_ptr + yar + 2 * NH, tl.load(yrs_ptr + rr * 4 + 2, mask=rmask, other=0.0)[:, None]
                 * (vf - s1[:, None] - yxf * s2[:, None]) + poison, mask=bm)
        s1, s2 = _get_sums(sx_all + 6, NH)
        tl.store(gy_ptr + yar + 3 * NH, tl.load(yrs_ptr + rr * 4 + 3, mask=rmask, other=0.0)[:, None]
                 * (vo - s1[:, None] - yxo * s2[:, None]) + poison, mask=bm)
        if s + 1 < T:  # ---- barrier 7: step t's gradients complete before step t - 1 reads them
            phase += 1
            if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
                tl.atomic_max(err_ptr, 1)
                poison = poison + float("nan")
                limit = 0
    tl.store(dc_ptr + d * B * H + sr, dc + poison, mask=bm)
    tl.store(dyc_ptr + d * B * NH + su, dyc + poison, mask=bm)


# ----------------------------------------------------------------------------- launch
_KERNELS: dict[bool, tuple[Any, Any]] = {}
PARAMS = ("w_hh", "bias", "gamma", "beta", "gamma_c", "beta_c", "hw_h", "hw_hh", "h_gamma", "h_beta",
          "h_gamma_c", "h_beta_c", "w_zs", "b_zs", "w_blk")  # the decoder's _Seq("hyper") names, in apply's order
_VECTORS = {"bias", "gamma", "beta", "gamma_c", "beta_c", "h_gamma", "h_beta", "h_gamma_c", "h_beta_c", "b_zs"}


def _kernels(interpret: bool) -> tuple[Any, Any]:
    ks = _KERNELS.get(interpret)
    if ks is None:
        fns = [_hyper_fw_seq, _hyper_bw_seq]
        ks = tuple(_tl.interpreted(fns, _HELPERS_PY) if interpret else (triton.jit(f) for f in fns))
        _KERNELS[interpret] = ks  # type: ignore[assignment]
    return ks  # type: ignore[return-value]


def _resident(x: Tensor, nj: int) -> bool:
    """A row tile's NJ programs can all run at once: one per SM on CUDA; on the interpreter,
    which runs programs one after another, only NJ = 1."""
    if _tl._use_interpreter(x):
        return nj == 1
    return x.is_cuda and nj <= torch.cuda.get_device_properties(x.device).multi_processor_count


def hyper_grid(x: Tensor, B: int, H: int, NH: int, E: int, D: int, which: str = "hfw") -> tuple[int, int, int] | None:
    """The grid (unit blocks, row tiles, directions) of the HyperLSTM kernels for tiles
    ``which`` ("hfw" forward, "hbw" backward: :func:`.triton_lstm.set_blocks`), or None where
    they do not apply: persistent kernels off, H / BH unit blocks not a power of two, Nh not
    split by them into powers of two >= 16 (tl.dot's least), E not a power of two >= 16, BK
    not dividing the reductions, or a row tile that cannot be resident at once (waves of
    whole row tiles as :func:`.triton_lstm.persistent_grid`)."""
    if triton is None or not _tl._STATE["persistent"] or which not in ("hfw", "hbw"):
        return None
    BB, BH, BK = _tl._BLOCKS[which]
    if H % BH:
        return None
    nj = H // BH
    if nj & (nj - 1) or NH % nj:
        return None
    nhb = NH // nj
    if nhb < 16 or nhb & (nhb - 1) or E < 16 or E & (E - 1):
        return None
    if (H % BK or NH % BK) if which == "hfw" else ((4 * H) % BK or (4 * NH) % BK):
        return None
    return (nj, triton.cdiv(B, BB), D) if _resident(x, nj) else None


def supports_hyper(x: Tensor, B: int, H: int, NH: int, E: int, D: int) -> bool:
    """Both HyperLSTM kernels take this recurrence (see :func:`hyper_grid`)."""
    return all(hyper_grid(x, B, H, NH, E, D, w) is not None for w in ("hfw", "hbw"))


def _forward(xw: Tensor, hx: Tensor, P: dict[str, Tensor], c0: Tensor, h0: Tensor, yc0: Tensor, y0: Tensor,
             masks: Tensor | None, forget_bias: float, hyper_forget_bias: float, keep: bool) -> dict[str, Tensor]:
    from ..model.cells import LN_EPS

    T, D, B, G = xw.shape
    H, NH, E = G // 4, hx.shape[-1] // 4, P["w_zs"].shape[-1] // Z_BLOCKS
    TS = T if keep else 1  # saved steps (one scratch step without a backward)
    new = xw.new_empty
    S = {"hs": new((D, T + 1, B, H)), "cs": new((D, T + 1, B, H)), "ys": new((D, T + 1, B, NH)),
         "ycs": new((D, T + 1, B, NH)),
         "a": new((D, TS, B, G)), "xh": new((D, TS, B, G)), "hw": new((D, TS, B, G)), "ch": new((D, TS, B, H)),
         "rs": new((D, TS, B, 4)), "rsc": new((D, TS, B)), "ya": new((D, TS, B, 4 * NH)),
         "yxh": new((D, TS, B, 4 * NH)), "ych": new((D, TS, B, NH)), "yrs": new((D, TS, B, 4)),
         "yrsc": new((D, TS, B)), "zs": new((D, TS, B, Z_BLOCKS * E))}
    S["hs"][:, 0], S["cs"][:, 0], S["ys"][:, 0], S["ycs"][:, 0] = h0, c0, y0, yc0
    grid = hyper_grid(xw, B, H, NH, E, D, "hfw")
    BB, BH, BK = _tl._BLOCKS["hfw"]
    st = xw.new_empty((D * grid[1] * grid[0] * BB * N_SLOTS,))
    cnt, err = xw.new_zeros(D * grid[1], dtype=torch.int32), _tl._err_flag(xw)
    _kernels(_tl._use_interpreter(xw))[0][grid](
        xw, hx, *(P[k] for k in ("w_hh", "hw_h", "hw_hh", "w_zs", "b_zs", "w_blk", "bias", "gamma", "beta", "gamma_c",
                                 "beta_c", "h_gamma", "h_beta", "h_gamma_c", "h_beta_c")),
        S["hs"], S["cs"], S["ys"], S["ycs"], masks if masks is not None else xw,
        *(S[k] for k in ("a", "xh", "hw", "ch", "rs", "rsc", "ya", "yxh", "ych", "yrs", "yrsc", "zs")),
        st, cnt, err, T, B, TS, 1 if keep else 0, float(forget_bias), float(hyper_forget_bias), float(LN_EPS),
        _tl._MAX_SPIN, H=H, NH=NH, E=E, NJ=grid[0], NHB=NH // grid[0], HAS_MASK=masks is not None, BB=BB, BH=BH,
        BK=BK, PREC=_tl._precision(xw), **_tl._launch_opts(xw, persistent=True))
    _tl._STATE["last_mode"] = "persistent"
    return S


class _TritonHyperSequence(torch.autograd.Function):
    """D HyperLSTM recurrences on the persistent kernels as one autograd node. Inputs: xw
    (T, D, B, 4H) = x W_ih, hx (T, D, B, 4Nh) = x W_ih(hyper)[:I], the 15 parameters of
    :data:`PARAMS` as (D, ...) (vectors (D, n)), c0, h0 (D, B, H), yc0, y0 (D, B, Nh), masks
    (T, D, B, H) or None. Outputs: hs (T, D, B, H) and the final c, h, hyper c, hyper h."""

    @staticmethod
    def forward(ctx: Any, xw: Tensor, hx: Tensor, *rest: Any) -> tuple[Tensor, ...]:  # type: ignore[override]
        n = len(PARAMS)
        P = dict(zip(PARAMS, (p.contiguous() for p in rest[:n])))
        c0, h0, yc0, y0, masks, fb, yfb = rest[n:]
        xw, hx = xw.contiguous(), hx.contiguous()
        masks = masks.contiguous() if masks is not None else None
        S = _forward(xw, hx, P, c0, h0, yc0, y0, masks, fb, yfb, keep=True)
        ctx.names = list(S)
        ctx.save_for_backward(xw, masks, *(P[k] for k in PARAMS), *S.values())
        T = xw.shape[0]
        return (S["hs"][:, 1:].transpose(0, 1), S["cs"][:, T].clone(), S["hs"][:, T].clone(),
                S["ycs"][:, T].clone(), S["ys"][:, T].clone())

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dhs: Tensor, dc_last: Tensor, dh_last: Tensor, dyc_last: Tensor,  # type: ignore[override]
                 dy_last: Tensor):
        saved = ctx.saved_tensors
        xw, masks = saved[:2]
        P = dict(zip(PARAMS, saved[2:2 + len(PARAMS)]))
        S = dict(zip(ctx.names, saved[2 + len(PARAMS):]))
        T, D, B, G = xw.shape
        H, NH = G // 4, S["ys"].shape[-1]
        Zs = S["zs"].shape[-1]
        E = Zs // Z_BLOCKS
        wt = P["w_hh"].transpose(1, 2).contiguous()  # (D, 4H, H)
        wyht = P["hw_h"].transpose(1, 2).contiguous()  # (D, 4Nh, H)
        wyyt = P["hw_hh"].transpose(1, 2).contiguous()  # (D, 4Nh, Nh)
        new = xw.new_empty
        gp, gx, gh = new((D, T, B, G)), new((D, T, B, G)), new((D, T, B, G))
        gy, dz = new((D, T, B, 4 * NH)), new((D, T, B, Zs))
        dc, dyc = dc_last.contiguous().clone(), dyc_last.contiguous().clone()
        grid = hyper_grid(xw, B, H, NH, E, D, "hbw")
        BB, BH, BK = _tl._BLOCKS["hbw"]
        R = grid[1]  # row tiles: the gains' and shifts' gradients come as one sum per row tile
        sums = {k: xw.new_zeros((D, R, n)) for k, n in (("gamma", G), ("beta", G), ("gamma_c", H), ("beta_c", H),
                                                         ("h_gamma", 4 * NH), ("h_beta", 4 * NH), ("h_gamma_c", NH),
                                                         ("h_beta_c", NH))}
        st = new((D * grid[1] * grid[0] * BB * N_SLOTS,))
        pz = new((D * grid[1] * grid[0] * BB * Zs,))
        cnt, err = xw.new_zeros(D * grid[1], dtype=torch.int32), _tl._err_flag(xw)
        _kernels(_tl._use_interpreter(xw))[1][grid](
            gp, gx, gh, gy, dz, pz, wt, wyht, wyyt, P["w_zs"], P["w_blk"], dhs.contiguous(), dh_last.contiguous(),
            dy_last.contiguous(), xw, *(S[k] for k in ("a", "xh", "hw", "ch", "rs", "rsc", "ya", "yxh", "ych", "yrs",
                                                       "yrsc", "zs", "cs", "ycs")),
            masks if masks is not None else xw, P["gamma"], P["gamma_c"], P["beta_c"], P["h_gamma"], P["h_gamma_c"],
            P["h_beta_c"], dc, dyc, *sums.values(), st, cnt, err, T, B,
            _tl._MAX_SPIN, H=H, NH=NH, E=E, NJ=grid[0], NHB=NH // grid[0], HAS_MASK=masks is not None, BB=BB,
            BH=BH, BK=BK, PREC=_tl._precision(xw), **_tl._launch_opts(xw, persistent=True))
        # the weights' gradients: one product each over all T * B rows
        N = T * B
        h_prev = S["hs"][:, :-1].reshape(D, N, H).transpose(1, 2)  # (D, H, N)
        y_prev = S["ys"][:, :-1].reshape(D, N, NH).transpose(1, 2)
        y_new = S["ys"][:, 1:].reshape(D, N, NH).transpose(1, 2)
        gy2 = gy.reshape(D, N, 4 * NH)
        d_w_hh = torch.bmm(h_prev, gh.reshape(D, N, G))  # (D, H, 4H)
        d_hw_h = torch.bmm(h_prev, gy2)  # (D, H, 4Nh)
        d_hw_hh = torch.bmm(y_prev, gy2)  # (D, Nh, 4Nh)
        d_w_zs = torch.bmm(y_new, dz.reshape(D, N, Zs))  # (D, Nh, 12E)
        # per-block projections: block g of the x-scales meets gp_g * (x W_ih)_g, of the h-scales
        # gp_g * (h W_hh)_g, of the shifts gp_g; each against its zs block over all rows
        gp4 = gp.reshape(D, N, 4, H)
        zs3 = S["zs"].reshape(D, N, 3, 4, E)
        xw4 = xw.transpose(0, 1).reshape(D, N, 4, H)
        d_w_blk = torch.cat([torch.einsum("dngh,dnge->dgeh", gp4 * v, zs3[:, :, k])
                             for k, v in enumerate((xw4, S["hw"].reshape(D, N, 4, H), 1.0))], dim=1)  # (D, 12, E, H)
        grads = {"w_hh": d_w_hh, "bias": gp.sum((1, 2)), "hw_h": d_hw_h, "hw_hh": d_hw_hh, "w_zs": d_w_zs,
                 "b_zs": dz.sum((1, 2)), "w_blk": d_w_blk, **{k: v.sum(1) for k, v in sums.items()}}
        dh0 = torch.bmm(gh[:, 0], wt) + torch.bmm(gy[:, 0], wyht)  # (D, B, H)
        dy0 = torch.bmm(gy[:, 0], wyyt)  # (D, B, Nh)
        return (gx.transpose(0, 1), gy.transpose(0, 1), *(grads[k] for k in PARAMS), dc, dh0, dyc, dy0,
                None, None, None)


def hyper_lstm_sequence(xp: tuple[Tensor, Tensor], params: dict[str, Tensor], state0: tuple[Tensor, ...],
                        masks: Tensor | None, forget_bias: float,
                        hyper_forget_bias: float) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The recurrence of D HyperLSTM cells on the persistent kernels (:func:`supports_hyper`
    must hold), in the form of :func:`sketchrnn.fast.decoder.run_sequence`: ``xp`` the pair
    (x W_ih (T, D, B, 4H), x W_ih(hyper)[:I] (T, D, B, 4Nh)), ``params`` the decoder's
    ``_Seq("hyper")`` parameters (D, ...), ``state0`` (c, h, hyper c, hyper h) (D, B, .), masks
    (T, D, B, H) or None -> hs (T, D, B, H), (c_T, h_T, hyper c_T, hyper h_T)."""
    if triton is None:
        raise RuntimeError("the Triton HyperLSTM kernels need the triton package")
    xw, hx = xp
    c0, h0, yc0, y0 = state0
    D, B, H = h0.shape
    NH, E = y0.shape[-1], params["w_zs"].shape[-1] // Z_BLOCKS
    if not supports_hyper(xw, B, H, NH, E, D):
        raise ValueError(f"the HyperLSTM kernels do not take B {B}, H {H}, Nh {NH}, E {E}, D {D} with tiles "
                         f"{_tl._BLOCKS['hfw']} / {_tl._BLOCKS['hbw']} here (see hyper_grid)")
    P = {k: params[k].reshape(D, -1) if k in _VECTORS else params[k] for k in PARAMS}  # vectors (D, 1, n) -> (D, n)
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (xw, hx, c0, h0, yc0, y0, *P.values()))):
        T = xw.shape[0]
        S = _forward(xw.contiguous(), hx.contiguous(), {k: v.contiguous() for k, v in P.items()}, c0, h0, yc0, y0,
                     masks.contiguous() if masks is not None else None, forget_bias, hyper_forget_bias, keep=False)
        return S["hs"][:, 1:].transpose(0, 1), (S["cs"][:, T], S["hs"][:, T], S["ycs"][:, T], S["ys"][:, T])
    hs, c, h, yc, y = _TritonHyperSequence.apply(xw, hx, *(P[k] for k in PARAMS), c0, h0, yc0, y0, masks,
                                                 forget_bias, hyper_forget_bias)
    return hs, (c, h, yc, y)
