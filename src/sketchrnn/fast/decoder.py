"""Fast teacher-forced forward of sketch-rnn for training (encoder + decoder + losses).

Exact reformulations of :class:`sketchrnn.model.SketchRNN` (the oracle) that take work out
of the 2 x 250 sequential steps (Ha & Eck 2017, Sec. 3; Magenta ``sketch_rnn/model.py``):

* the input projection of every step is ONE matrix product over the whole sequence,
  ``X (T*B, 5) @ W_ih[:5]`` (decoder: plus the z-part ``z @ W_ih[5:] + bias`` computed once
  per sketch and broadcast over T); per step only ``h @ W_hh`` and the gate math remain;
* both encoder directions run in the same loop as a batch of two cells (``bmm`` with
  stacked weights); the encoder's final state is gathered at step L-1 instead of freezing
  the state with a ``where`` at every step;
* the MDN head (``Linear(H, 6M+3)``) is applied once to the stacked outputs (B, T, H);
* recurrent dropout (Semeniuta et al. 2016, on g only, fresh mask every step) uses masks
  drawn up front for all steps, ``(T, D, B, H)`` holding 0 or 1/keep; feeding the same masks
  to the oracle (tests patch its ``F.dropout``) gives the same numbers.

* the gradient of each big recurrent weight (``W_hh``; HyperLSTM also the hyper cell's) is
  formed ONCE per sequence, ``dW = sum_t h_{t-1}^T g_t`` as one matrix product over all T*B
  rows, instead of T small products and T accumulations (:class:`_SinkRoot`); everything else
  is differentiated by autograd as written, so gradients are those of the oracle.
* on a CPU the plain LSTM recurrence (the small models' decoders and encoders) is one autograd
  node with a hand-written backward (:class:`_LSTMSequence`; float32 gate math in C, the input
  projection added inside the step): no per-step graph, no per-step allocations; the
  LayerNorm LSTM too where the C library is built (:class:`_LNLSTMSequence`, float32)
  (``set_hand_lstm``; benchmarks/RESULTS.md).

On CUDA the per-step elementwise math is compiled (``torch.compile``) and the whole
recurrence, forward and backward, is captured in a CUDA graph (:mod:`.cuda`); both switch on
by themselves and fall back to this eager code on any error. ``class_ids`` are supported
(class-conditional decoders: the class embedding joins z in the once-per-sketch part).

Layouts: every recurrence runs time-major with a leading direction axis: inputs
``(T, D, B, ·)``, states ``(D, B, ·)``, weights ``(D, in, out)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..model.cells import LN_EPS, HyperLSTMCell, LayerNormLSTMCell, LSTMCell

__all__ = ["DropoutMasks", "draw_masks", "supports", "encoder_forward", "decoder_forward", "fast_forward",
           "fast_losses", "set_cuda_acceleration"]


# ----------------------------------------------------------------------------- pointwise math
# Each takes the parts of the gate pre-activations (..., 4K) in the oracle's block order
# (i, j, f, o) -- the hoisted input projection ``xt`` and the recurrent product(s) ``hw`` --,
# the cell state c (..., K) and a scaled dropout mask (..., K) or None; returns (h, c). The
# sum of the parts happens here so that a compiled version fuses it with the gate math.
def lstm_pointwise(xt: Tensor, hw: Tensor, c: Tensor, mask: Tensor | None,
                   forget_bias: float) -> tuple[Tensor, Tensor]:
    """LSTM update (Magenta LSTMCell): c' = c s(f+1) + s(i) drop(tanh j), h' = tanh(c') s(o)."""
    i, j, f, o = (xt + hw).chunk(4, dim=-1)
    g = torch.tanh(j)
    if mask is not None:
        g = g * mask
    new_c = c * torch.sigmoid(f + forget_bias) + torch.sigmoid(i) * g
    return torch.tanh(new_c) * torch.sigmoid(o), new_c


def _ln_blocks(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """Layer norm of each of the 4 gate blocks of the last dim (Magenta ``layer_norm_all``)."""
    xb = x.reshape(*x.shape[:-1], 4, x.shape[-1] // 4)  # (..., 4, K)
    xb = F.layer_norm(xb, xb.shape[-1:], eps=LN_EPS)
    return xb.reshape(x.shape) * gamma + beta


def _ln_lstm(pre: Tensor, c: Tensor, mask: Tensor | None, gamma: Tensor, beta: Tensor, gamma_c: Tensor,
             beta_c: Tensor, forget_bias: float) -> tuple[Tensor, Tensor]:
    pre = _ln_blocks(pre, gamma, beta)
    i, j, f, o = pre.chunk(4, dim=-1)
    g = torch.tanh(j)
    if mask is not None:
        g = g * mask
    new_c = c * torch.sigmoid(f + forget_bias) + torch.sigmoid(i) * g
    cn = F.layer_norm(new_c, new_c.shape[-1:], eps=LN_EPS) * gamma_c + beta_c
    return torch.tanh(cn) * torch.sigmoid(o), new_c


def ln_lstm_pointwise(xt: Tensor, hw: Tensor, hw2: Tensor | None, c: Tensor, mask: Tensor | None, gamma: Tensor,
                      beta: Tensor, gamma_c: Tensor, beta_c: Tensor, forget_bias: float) -> tuple[Tensor, Tensor]:
    """LayerNorm LSTM update (Magenta LayerNormLSTMCell); h' = tanh(LN(c')) s(o). ``hw2``: a
    second recurrent product (the hyper cell reads [x, h] and its own hyper_h), or None."""
    pre = xt + hw if hw2 is None else xt + hw + hw2
    return _ln_lstm(pre, c, mask, gamma, beta, gamma_c, beta_c, forget_bias)


def hyper_pointwise(xw: Tensor, hw: Tensor, scales: Tensor, bias: Tensor, c: Tensor, mask: Tensor | None,
                    gamma: Tensor, beta: Tensor, gamma_c: Tensor, beta_c: Tensor,
                    forget_bias: float) -> tuple[Tensor, Tensor]:
    """HyperLSTM main-cell update from ``x @ W_ih``, ``h @ W_hh`` (..., 4H) and the hyper_norm
    scales (..., 12, H) = [alpha_x (4 blocks); alpha_h (4); beta_h (4)] (Ha et al. 2016)."""
    lead = xw.shape[:-1]
    H = xw.shape[-1] // 4
    ax, ah, bh = scales.reshape(*lead, 3, 4 * H).unbind(-2)  # 3 x (..., 4H)
    pre = ax * xw + ah * hw + bh + bias
    return _ln_lstm(pre, c, mask, gamma, beta, gamma_c, beta_c, forget_bias)


# ----------------------------------------------------------------------------- recurrent weight gradients
class _Sink:
    """The uses of one recurrent weight W in a sequence: inputs a_t and output gradients g_t."""

    def __init__(self) -> None:
        self.inputs: list[Tensor] = []
        self.grads: dict[int, Tensor] = {}


class _SinkMM(torch.autograd.Function):
    """``a @ W`` for step t; backward gives da = g W^T and keeps g for :class:`_SinkRoot`."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, w: Tensor, sink: _Sink, t: int) -> Tensor:  # w: detached
        ctx.save_for_backward(w)
        ctx.sink, ctx.t = sink, t
        return torch.matmul(a, w)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None, None]:
        (w,) = ctx.saved_tensors
        ctx.sink.grads[ctx.t] = g
        return torch.matmul(g, w.transpose(-1, -2)), None, None, None


class _SinkRoot(torch.autograd.Function):
    """Identity on the initial state; its backward runs after every step's (all steps depend on
    its output) and returns dW = sum_t a_t^T g_t as ONE matrix product over all T*B rows, instead
    of T small products and T accumulations that autograd would do per step."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, sink: _Sink) -> Tensor:
        ctx.sink = sink
        ctx.w_shape = w.shape
        return x.clone()

    @staticmethod
    def backward(ctx: Any, dx: Tensor) -> tuple[Tensor, Tensor | None, None]:
        s = ctx.sink
        if not s.grads:
            return dx, None, None
        # stacked on dim -3, so that (*lead, T, B, K) -> (*lead, T*B, K) is a view (stacking on
        # dim 0 and moving T next to B copied both, 2 x 32 MB per step for a small encoder)
        a = torch.stack(s.inputs, dim=-3)  # (.., T, B, K)
        g = torch.stack([s.grads[t] if t in s.grads else torch.zeros_like(s.grads[next(iter(s.grads))])
                         for t in range(len(s.inputs))], dim=-3)  # (.., T, B, N)
        s.grads.clear()
        s.inputs.clear()
        T, B, K, N = a.shape[-3], a.shape[-2], a.shape[-1], g.shape[-1]
        lead = a.shape[:-3]  # () one cell; (D,) D cells; (.., 12) hyper-norm blocks
        a2 = a.reshape(*lead, T * B, K)  # (*lead, T*B, K)
        g2 = g.reshape(*lead, T * B, N)  # (*lead, T*B, N)
        dw = a2.transpose(-1, -2) @ g2  # (*lead, K, N)
        return dx, dw.reshape(ctx.w_shape), None


class _RecWeight:
    """A weight used once per step: ``mm(a, t)`` = a @ W with the deferred gradient. W is
    (K, N) or batched (*lead, K, N) against a (*lead, B, K)."""

    def __init__(self, w: Tensor) -> None:
        self.w = w
        self.deferred = torch.is_grad_enabled() and w.requires_grad
        self.sink = _Sink()

    def root(self, x: Tensor) -> Tensor:
        """Route the initial state (the first ``a``) through the gradient root."""
        return _SinkRoot.apply(x, self.w, self.sink) if self.deferred else x

    def mm(self, a: Tensor, t: int) -> Tensor:
        if not self.deferred:
            return torch.matmul(a, self.w)
        self.sink.inputs.append(a.detach())
        return _SinkMM.apply(a, self.w.detach(), self.sink, t)


# Launch-bound layout (fewer, larger kernels per step; the same numbers): "auto" = on CUDA
# only, where every small kernel costs a launch. On a CPU both of its parts measured slower
# (the (T, .., B, n) buffers of _per_step, the split copies of _RecGroup; benchmarks/RESULTS.md).
_LAUNCH_BOUND = {"mode": "auto"}


def set_launch_bound(mode: str | bool) -> None:
    """Per-step parameter views (:func:`_per_step`) and fused per-state products
    (:class:`_RecGroup`): "auto" (on CUDA, the default), True (always) or False (never)."""
    if mode not in ("auto", True, False):
        raise ValueError(f"launch-bound mode must be 'auto', True or False, got {mode!r}")
    _LAUNCH_BOUND["mode"] = mode


def _launch_bound(x: Tensor) -> bool:
    mode = _LAUNCH_BOUND["mode"]
    return x.is_cuda if mode == "auto" else bool(mode)


def _per_step(param: Tensor, T: int, B: int) -> Sequence[Tensor]:
    """A small parameter ``(.., 1, n)`` that every step uses (layer-norm gains and biases, the
    hyper cell's biases) as T per-step views ``(.., B, n)`` of ONE expand. Each step's gradient
    is then elementwise, inside the step's fused pointwise backward; autograd stacks the T
    gradients and reduces them over T*B in one sum at the end, instead of a reduction over B
    and an accumulation into the parameter's gradient at every step (2 x T small kernels per
    parameter). Costs a (T, .., B, n) gradient buffer in the backward."""
    if not (param.requires_grad and torch.is_grad_enabled()) or not _launch_bound(param):
        return [param] * T
    return param.unsqueeze(0).expand(T, *param.shape[:-2], B, param.shape[-1]).unbind(0)


class _RecGroup:
    """Weights that multiply the same state at the same step: ``mm(a, t)`` -> (a @ W1, a @ W2,
    ..), as ONE product with the concatenation, split afterwards (launch-bound layout: one
    product and one deferred gradient instead of one each, and the backward of the split is one
    cat), or one :class:`_RecWeight` each."""

    def __init__(self, ws: list[Tensor], fused: bool) -> None:
        self.sizes = [w.shape[-1] for w in ws]
        self.fused = fused and len(ws) > 1
        self.parts = [_RecWeight(torch.cat(ws, dim=-1))] if self.fused else [_RecWeight(w) for w in ws]

    def root(self, x: Tensor) -> Tensor:
        for w in self.parts:
            x = w.root(x)
        return x

    def mm(self, a: Tensor, t: int) -> tuple[Tensor, ...]:
        if self.fused:
            return self.parts[0].mm(a, t).split(self.sizes, dim=-1)
        return tuple(w.mm(a, t) for w in self.parts)


# ----------------------------------------------------------------------------- LSTM, by hand
# The plain and LayerNorm LSTM recurrences with their backward written out (a CPU path):
# autograd's per-step graph of ~20 small nodes, the cat that the backward of each step's
# chunk(4) does and the stacks of the per-step inputs and gradients cost a fifth to a third
# of a small model's CPU step; here every step writes into preallocated (T, B, .) buffers and
# W_hh's gradient is one product at the end. "auto" = on CPUs; CUDA keeps its compiled,
# graph-captured steps.
_HAND_LSTM: dict[str, Any] = {"mode": "auto", "native": True}  # native: C step kernels for float32


def set_hand_lstm(mode: str | bool) -> None:
    """The hand-differentiated recurrences (:class:`_LSTMSequence`, :class:`_LNLSTMSequence`):
    "auto" (on CPUs, the default), True (always) or False (never: autograd over the per-step
    math)."""
    if mode not in ("auto", True, False):
        raise ValueError(f"hand-LSTM mode must be 'auto', True or False, got {mode!r}")
    _HAND_LSTM["mode"] = mode


def _hand_lstm(x: Tensor) -> bool:
    mode = _HAND_LSTM["mode"]
    return (not x.is_cuda) if mode == "auto" else bool(mode)


def _native_lstm(x: Tensor) -> Any:
    """The C step kernels (:mod:`.native`) for float32 CPU tensors, else None."""
    if x.dtype != torch.float32 or x.device.type != "cpu" or not _HAND_LSTM["native"]:
        return None
    from .native import training_lib

    return training_lib()


@dataclass
class _LazyProjection:
    """An input projection not yet computed: ``x (T, D, B, I) @ w (D, I, 4H) + b`` with ``b``
    (D, B, 4H) or (D, 1, 4H). The hand-differentiated LSTM adds it row by row inside its step
    (for small I, the 5 pen-offset inputs), so the (T, D, B, 4H) tensor (34 MB for a small
    VAE's decoder) is never written; every other path calls :meth:`materialize`."""

    x: Tensor
    w: Tensor
    b: Tensor

    def materialize(self) -> Tensor:  # (T, D, B, 4H)
        T, D, B, I = self.x.shape
        xd = self.x.permute(1, 0, 2, 3).reshape(D, T * B, I)  # (D, T*B, I)
        xw = torch.bmm(xd, self.w).reshape(D, T, B, -1) + self.b.unsqueeze(1)  # (D, T, B, 4H)
        return xw.transpose(0, 1).contiguous()  # (T, D, B, 4H)


LAZY_MAX_INPUTS = 8  # inputs per step up to which the projection is left to the step (see above)


def _hand_kind(kind: str, x: Tensor) -> bool:
    """Whether a recurrence of cell ``kind`` on tensors like ``x`` runs by hand: the plain LSTM
    (C step kernels for float32, else torch operations), the LayerNorm LSTM (C only: float32
    with the native library)."""
    if not _hand_lstm(x):
        return False
    return kind == "lstm" or (kind == "layer_norm" and _native_lstm(x) is not None)


def _lazy_ok(kind: str, x: Tensor) -> bool:
    return x.shape[-1] <= LAZY_MAX_INPUTS and _hand_kind(kind, x)


def _sequence_grads(need: Sequence[bool], x: Tensor, wx: Tensor | None, b: Tensor | None, hs: Tensor,
                    grads: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor]:
    """Gradients of a hand-differentiated recurrence's inputs from ``grads`` (T, B, 4H), the
    pre-activation gate gradients of every step: (dx, dwx, db, dW_hh). ``x`` is the projection
    xp when ``wx`` is None (dx = grads), else raw inputs with ``x_t @ wx + b`` added per step."""
    T, B, G = grads.shape
    g2 = grads.reshape(T * B, G)  # (T*B, 4H)
    dw = hs[:-1].reshape(T * B, -1).t() @ g2  # dW_hh = sum_t h_{t-1}^T g_t: one product  (H, 4H)
    if wx is None:
        return grads, None, None, dw
    dx = (grads @ wx.t()) if need[0] else None  # (T, B, I)
    dwx = x.reshape(T * B, -1).t() @ g2 if need[1] else None  # (I, 4H)
    db = (g2.sum(0, keepdim=True) if b.shape[0] == 1 else grads.sum(0)) if need[2] else None
    return dx, dwx, db, dw


class _LSTMSequence(torch.autograd.Function):
    """One LSTM cell's whole recurrence (Magenta ``LSTMCell``, recurrent dropout on g) as one
    autograd node. Inputs: the step inputs ``x``, either the hoisted projection xp (T, B, 4H)
    (``wx``, ``b`` None) or raw inputs (T, B, I) with ``wx`` (I, 4H) and ``b`` (B or 1, 4H),
    so that step t adds ``x_t @ wx + b``; ``w`` (H, 4H) = W_hh; states ``c0``, ``h0`` (B, H);
    ``masks`` (T, B, H) or None; the forget bias. Outputs: hs (T, B, H) and the final c, h.
    Per step one product and the gate math: in C for float32 on a CPU (``sk_lstm_fw`` /
    ``sk_lstm_bw`` of native_sampler.c), else as torch operations (float64, other devices)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, wx: Tensor | None, b: Tensor | None, w: Tensor, c0: Tensor, h0: Tensor,
                masks: Tensor | None, forget_bias: float) -> tuple[Tensor, Tensor, Tensor]:
        T, (B, H) = x.shape[0], h0.shape
        x = x.contiguous()
        masks = masks.contiguous() if masks is not None else None
        hs = x.new_empty((T + 1, B, H))  # hs[t + 1] = h_t; hs[0] = h0
        cs = x.new_empty((T + 1, B, H))
        acts = x.new_empty((T, B, 4 * H))  # per step [s(i), tanh(j), s(f + bias), s(o)]
        hs[0], cs[0] = h0, c0
        lib = _native_lstm(x)
        if lib is not None:
            I = 0 if wx is None else x.shape[-1]
            wxc = wx.contiguous() if wx is not None else None
            bc = b.contiguous() if b is not None else None
            sa, sh, sx = B * 4 * H * 4, B * H * 4, x[0].numel() * 4  # bytes per step
            pa, px, ph, pc = acts.data_ptr(), x.data_ptr(), hs.data_ptr(), cs.data_ptr()
            pw, pb = (wxc.data_ptr(), bc.data_ptr()) if I else (None, None)
            b_rows = bc.shape[0] if I else 0
            pm = masks.data_ptr() if masks is not None else None
            hv, av, fw = hs.unbind(0), acts.unbind(0), lib.sk_lstm_fw  # per-step views made once
            for t in range(T):
                torch.mm(hv[t], w, out=av[t])
                fw(B, H, pa + t * sa, px + t * sx, I, pw, pb, b_rows, pc + t * sh,
                   None if pm is None else pm + t * sh, forget_bias, pc + (t + 1) * sh, ph + (t + 1) * sh)
        else:
            for t in range(T):
                a = acts[t]  # (B, 4H)
                torch.mm(hs[t], w, out=a).add_(x[t] if wx is None else torch.addmm(b, x[t], wx))
                i, j, fo = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
                f = a[:, 2 * H:3 * H]
                torch.tanh_(j)
                f.add_(forget_bias)
                torch.sigmoid_(i)
                torch.sigmoid_(fo)
                g = j * masks[t] if masks is not None else j
                c = torch.mul(cs[t], f, out=cs[t + 1])
                c.add_(i * g)  # c' = c s(f + 1) + s(i) drop(tanh j), summed as the oracle does
                torch.tanh(c, out=hs[t + 1]).mul_(a[:, 3 * H:])  # h' = tanh(c') s(o)
        ctx.save_for_backward(x, wx, b, w, masks, hs, cs, acts)
        return hs[1:], cs[T].clone(), hs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dhs: Tensor, dc_last: Tensor, dh_last: Tensor):  # type: ignore[override]
        x, wx, b, w, masks, hs, cs, acts = ctx.saved_tensors
        T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        wt = w.t()  # (4H, H)
        grads = torch.empty_like(acts)  # d(pre-activation gates) per step = d xp  (T, B, 4H)
        dhs = dhs.contiguous()
        dh = dhs[T - 1] + dh_last  # (B, H)
        lib = _native_lstm(acts)
        if lib is not None:
            dc = dc_last.contiguous().clone()  # updated in place, step by step
            sa, sh = B * 4 * H * 4, B * H * 4
            pa, pc, pg = acts.data_ptr(), cs.data_ptr(), grads.data_ptr()
            pm, pdc = (masks.data_ptr() if masks is not None else None), dc.data_ptr()
            dv, gv, bw = dhs.unbind(0), grads.unbind(0), lib.sk_lstm_bw
            for t in range(T - 1, -1, -1):
                bw(B, H, pa + t * sa, pc + t * sh, pc + (t + 1) * sh, None if pm is None else pm + t * sh,
                   dh.data_ptr(), pdc, pg + t * sa)
                dh = torch.addmm(dv[t - 1], gv[t], wt) if t > 0 else gv[0] @ wt
        else:
            dc = dc_last
            for t in range(T - 1, -1, -1):
                a, gr = acts[t], grads[t]
                si, tj, sf, so = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
                tc = torch.tanh(cs[t + 1])
                dho = dh * so
                torch.mul(dh * tc, so * (1 - so), out=gr[:, 3 * H:])  # d o
                dc = dc + dho * (1 - tc * tc)
                torch.mul(dc * cs[t], sf * (1 - sf), out=gr[:, 2 * H:3 * H])  # d f
                m = masks[t] if masks is not None else None
                g = tj * m if m is not None else tj
                torch.mul(dc * g, si * (1 - si), out=gr[:, :H])  # d i
                dj = dc * si
                if m is not None:
                    dj = dj * m
                torch.mul(dj, 1 - tj * tj, out=gr[:, H:2 * H])  # d j
                dc = dc * sf
                dh = torch.addmm(dhs[t - 1], gr, wt) if t > 0 else gr @ wt
        dx, dwx, db, dw = _sequence_grads(ctx.needs_input_grad, x, wx, b, hs, grads)
        return dx, dwx, db, dw, dc, dh, None, None


class _LNLSTMSequence(torch.autograd.Function):
    """One LayerNorm-LSTM cell's whole recurrence (Magenta ``LayerNormLSTMCell``) as one
    autograd node, float32 on a CPU only (the step math is ``sk_lnlstm_fw`` / ``sk_lnlstm_bw``
    in native_sampler.c; elsewhere autograd runs the per-step math). Inputs as
    :class:`_LSTMSequence` (``b`` required with ``wx``) plus the gate-block norm's gain and shift
    ``gamma``, ``beta`` (1, 4H) and the cell norm's ``gamma_c``, ``beta_c`` (1, H)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, wx: Tensor | None, b: Tensor | None, w: Tensor, gamma: Tensor, beta: Tensor,
                gamma_c: Tensor, beta_c: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None,
                forget_bias: float) -> tuple[Tensor, Tensor, Tensor]:
        lib = _native_lstm(x)
        T, (B, H) = x.shape[0], h0.shape
        x = x.contiguous()
        masks = masks.contiguous() if masks is not None else None
        g, be, gc, bc = (p.detach().contiguous() for p in (gamma, beta, gamma_c, beta_c))
        hs = x.new_empty((T + 1, B, H))  # hs[t + 1] = h_t
        cs = x.new_empty((T + 1, B, H))
        acts = x.new_empty((T, B, 4 * H))  # [s(i), tanh(j), s(f + bias), s(o)]
        xhat = x.new_empty((T, B, 4 * H))  # normalised pre-activations
        rs = x.new_empty((T, B, 4))  # their 1 / std per gate block
        chat = x.new_empty((T, B, H))  # normalised c
        rsc = x.new_empty((T, B))
        hs[0], cs[0] = h0, c0
        I = 0 if wx is None else x.shape[-1]
        wxc, bcn = (wx.contiguous(), b.contiguous()) if I else (None, None)
        sa, sh, sx = B * 4 * H * 4, B * H * 4, x[0].numel() * 4  # bytes per step
        hv, av, fw = hs.unbind(0), acts.unbind(0), lib.sk_lnlstm_fw
        pa, px, ph, pc, pxh, prs, pch, prc = (t.data_ptr() for t in (acts, x, hs, cs, xhat, rs, chat, rsc))
        pm = masks.data_ptr() if masks is not None else None
        for t in range(T):
            torch.mm(hv[t], w, out=av[t])
            fw(B, H, pa + t * sa, px + t * sx, I, wxc.data_ptr() if I else None, bcn.data_ptr() if I else None,
               bcn.shape[0] if I else 0, g.data_ptr(), be.data_ptr(), gc.data_ptr(), bc.data_ptr(), LN_EPS,
               pc + t * sh, None if pm is None else pm + t * sh, forget_bias, pxh + t * sa, prs + t * B * 16,
               pch + t * sh, prc + t * B * 4, pc + (t + 1) * sh, ph + (t + 1) * sh)
        ctx.save_for_backward(x, wx, b, w, g, gc, bc, masks, hs, cs, acts, xhat, rs, chat, rsc)
        return hs[1:], cs[T].clone(), hs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dhs: Tensor, dc_last: Tensor, dh_last: Tensor):  # type: ignore[override]
        x, wx, b, w, g, gc, bc, masks, hs, cs, acts, xhat, rs, chat, rsc = ctx.saved_tensors
        T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        lib = _native_lstm(acts)
        wt = w.t()  # (4H, H)
        grads = torch.empty_like(acts)  # d(pre-norm gates) per step  (T, B, 4H)
        dg, dbe = acts.new_zeros(4 * H), acts.new_zeros(4 * H)
        dgc, dbc = acts.new_zeros(H), acts.new_zeros(H)
        tmp = acts.new_empty(5 * H)
        dhs = dhs.contiguous()
        dh = dhs[T - 1] + dh_last
        dc = dc_last.contiguous().clone()
        sa, sh = B * 4 * H * 4, B * H * 4
        pa, pc, pg, pxh, prs, pch, prc = (t.data_ptr() for t in (acts, cs, grads, xhat, rs, chat, rsc))
        pm = masks.data_ptr() if masks is not None else None
        fixed = [t.data_ptr() for t in (g, gc, bc)]
        acc = [t.data_ptr() for t in (dg, dbe, dgc, dbc, tmp)]
        dv, gv, bw = dhs.unbind(0), grads.unbind(0), lib.sk_lnlstm_bw
        for t in range(T - 1, -1, -1):
            bw(B, H, pa + t * sa, pxh + t * sa, prs + t * B * 16, pch + t * sh, prc + t * B * 4, *fixed,
               pc + t * sh, None if pm is None else pm + t * sh, dh.data_ptr(), dc.data_ptr(), pg + t * sa,
               acc[0], acc[1], acc[2], acc[3], acc[4])
            dh = torch.addmm(dv[t - 1], gv[t], wt) if t > 0 else gv[0] @ wt
        dx, dwx, db, dw = _sequence_grads(ctx.needs_input_grad, x, wx, b, hs, grads)
        return dx, dwx, db, dw, dg.view(1, -1), dbe.view(1, -1), dgc.view(1, -1), dbc.view(1, -1), dc, dh, None, None


def _hand_lstm_sequence(seq: _Seq, xp: Any, state0: tuple[Tensor, ...],
                        masks: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
    """:class:`_LSTMSequence` per cell of a (T, D, B, .) recurrence (D = 2: the encoder's two
    directions, each with contiguous per-step rows); outputs stacked back to (T, D, B, H)."""
    c0, h0 = state0  # (D, B, H)
    p = seq.params
    w_hh = p["w_hh"]  # (D, H, 4H)
    D = h0.shape[0]
    hs, cs, hl = [], [], []
    for d in range(D):
        m = masks[:, d] if masks is not None else None
        xin = (xp.x[:, d], xp.w[d], xp.b[d]) if isinstance(xp, _LazyProjection) else (xp[:, d], None, None)
        if seq.kind == "lstm":
            out = _LSTMSequence.apply(*xin, w_hh[d], c0[d], h0[d], m, seq.forget_bias)
        else:  # layer_norm; gains and shifts (D, 1, n)
            out = _LNLSTMSequence.apply(*xin, w_hh[d], p["gamma"][d], p["beta"][d], p["gamma_c"][d], p["beta_c"][d],
                                        c0[d], h0[d], m, seq.forget_bias)
        hs.append(out[0])
        cs.append(out[1])
        hl.append(out[2])
    if D == 1:  # views, no copies
        return hs[0].unsqueeze(1), (cs[0].unsqueeze(0), hl[0].unsqueeze(0))
    return torch.stack(hs, dim=1), (torch.stack(cs), torch.stack(hl))


# ----------------------------------------------------------------------------- recurrences
@dataclass
class _Seq:
    """One recurrence: D stacked cells of one kind (``params`` (D, ...), see :func:`_seq_params`);
    run by :func:`run_sequence` on the hoisted input projection ``xp``: LSTM / LN
    ``(T, D, B, 4H)``; hyper a pair (main ``x @ W_ih`` (T, D, B, 4H), hyper-cell part (T, D, B, 4Nh)).
    """

    kind: str
    params: dict[str, Tensor]
    forget_bias: float
    hyper_forget_bias: float = 1.0


def _stack(tensors: list[Tensor]) -> Tensor:
    """(D, ...) from D per-direction tensors (a view for D = 1, so gradients flow as usual)."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)


def _seq_params(cells: list[Any]) -> _Seq:
    """Stacked (D, ...) parameters of D cells of one kind, broadcastable against (D, B, ·)."""
    c0 = cells[0]

    def st(name: str, obj: Callable[[Any], Any] = lambda c: c) -> Tensor:
        return _stack([getattr(obj(c), name) for c in cells])

    def vec(name: str, obj: Callable[[Any], Any] = lambda c: c) -> Tensor:  # (D, 1, n)
        return st(name, obj).unsqueeze(1)

    if type(c0) is LSTMCell:
        return _Seq("lstm", {"w_hh": st("weight_hh")}, c0.forget_bias)
    if type(c0) is LayerNormLSTMCell:
        return _Seq("layer_norm", {"w_hh": st("weight_hh"), "gamma": vec("ln_gamma"), "beta": vec("ln_beta"),
                                   "gamma_c": vec("ln_c_gamma"), "beta_c": vec("ln_c_beta")}, c0.forget_bias)
    hc = lambda c: c.hyper_cell  # noqa: E731
    I = c0.input_size  # hyper cell input rows: [x (I), h (H)]
    w_zs = _stack([torch.cat([c.x_zw_weight, c.h_zw_weight, c.h_zb_weight], dim=1) for c in cells])  # (D, Nh, 12E)
    b_zs = _stack([torch.cat([c.x_zw_bias, c.h_zw_bias, torch.zeros_like(c.x_zw_bias)]) for c in cells])
    w_blk = _stack([torch.cat([c.x_alpha, c.h_alpha, c.h_beta]) for c in cells])  # (D, 12, E, H)
    return _Seq("hyper", {
        "w_hh": st("weight_hh"), "bias": vec("bias"),
        "gamma": vec("ln_gamma"), "beta": vec("ln_beta"), "gamma_c": vec("ln_c_gamma"), "beta_c": vec("ln_c_beta"),
        "hw_h": _stack([c.hyper_cell.weight_ih[I:] for c in cells]),  # (D, H, 4Nh) rows for h
        "hw_hh": st("weight_hh", hc),  # (D, Nh, 4Nh)
        "h_gamma": vec("ln_gamma", hc), "h_beta": vec("ln_beta", hc),
        "h_gamma_c": vec("ln_c_gamma", hc), "h_beta_c": vec("ln_c_beta", hc),
        "w_zs": w_zs, "b_zs": b_zs.unsqueeze(1), "w_blk": w_blk,  # b_zs (D, 1, 12E), w_blk (D, 12, E, H)
    }, c0.forget_bias, c0.hyper_cell.forget_bias)


def supports(model: Any) -> bool:
    """True when the fast training path handles ``model``'s cells (the three project cells;
    HyperLSTM with its default layer norm and no dropout inside the hyper cell)."""
    cells = [model.decoder.cell]
    if getattr(model, "encoder", None) is not None:
        cells += [model.encoder.cell_fw, model.encoder.cell_bw]
    for c in cells:
        if type(c) in (LSTMCell, LayerNormLSTMCell):
            continue
        if not (type(c) is HyperLSTMCell and c.use_layer_norm and type(c.hyper_cell) is LayerNormLSTMCell
                and not (c.hyper_cell.use_recurrent_dropout and c.hyper_cell.dropout_keep < 1.0)):
            return False
    return True


def _squeeze_one(seq: _Seq) -> _Seq:
    """A single cell (D = 1): drop the direction axis so that steps use plain mm / addmm."""
    return _Seq(seq.kind, {k: v[0] for k, v in seq.params.items()}, seq.forget_bias, seq.hyper_forget_bias)


def run_sequence(seq: _Seq, xp: Any, state0: tuple[Tensor, ...], masks: Tensor | None,
                 pointwise: dict[str, Callable[..., Any]] | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The recurrence, eager: per step one matrix product per recurrent weight and the
    pointwise update. ``xp``: (T, D, B, 4H) (hyper: pair with (T, D, B, 4Nh)); ``state0``:
    LSTM/LN (c, h), hyper (c, h, hyper_c, hyper_h), each (D, B, ·); ``masks`` (T, D, B, H).
    Returns hs (T, D, B, H) and the final state parts (D, B, ·). Gradients of the weights
    used at every step are formed once per sequence (:class:`_SinkRoot`); on launch-bound
    devices (CUDA) those of the small per-step parameters too (:func:`_per_step`)."""
    if pointwise is None and _hand_kind(seq.kind, state0[1]):
        return _hand_lstm_sequence(seq, xp, state0, masks)
    if isinstance(xp, _LazyProjection):
        xp = xp.materialize()
    if state0[1].shape[0] == 1:  # one cell: run 2-D, restore the direction axis at the end
        # squeeze, not [:, 0]: a select's backward zero-fills a whole xp-sized gradient
        xp1 = tuple(x.squeeze(1) for x in xp) if isinstance(xp, tuple) else xp.squeeze(1)
        hs, fin = run_sequence(_squeeze_one(seq), xp1, tuple(s.squeeze(0) for s in state0),
                               masks.squeeze(1) if masks is not None else None, pointwise)
        return hs.unsqueeze(1), tuple(f.unsqueeze(0) for f in fin)
    pw = pointwise or _EAGER
    p = seq.params
    hyper = seq.kind == "hyper"
    xs = xp[0].unbind(0) if hyper else xp.unbind(0)  # per-step views: the backward of unbind is ONE
    T = len(xs)  # stack (slicing xp[t] in the loop would zero-fill a whole xp-sized gradient per step)
    ms = masks.unbind(0) if masks is not None else [None] * T
    hs = []
    B = state0[1].shape[-2]
    if seq.kind != "lstm":  # per-step views of the small per-step parameters (see _per_step)
        ln = [_per_step(p[k], T, B) for k in ("gamma", "beta", "gamma_c", "beta_c")]
    if not hyper:
        c, h = state0
        w_hh = _RecWeight(p["w_hh"])
        h = w_hh.root(h)
        for t in range(T):
            hw = w_hh.mm(h, t)  # (.., B, 4H)
            if seq.kind == "lstm":
                h, c = pw["lstm"](xs[t], hw, c, ms[t], seq.forget_bias)
            else:
                h, c = pw["layer_norm"](xs[t], hw, None, c, ms[t], *(v[t] for v in ln), seq.forget_bias)
            hs.append(h)
        return torch.stack(hs), (c, h)
    hxs = xp[1].unbind(0)
    c, h, hc, hh = state0
    # Per step, h meets [W_hh (main cell) | W_h->hyper]; the new hyper_h meets [W_zs | W_hh of
    # the hyper cell], whose second part is the NEXT step's hyper-cell recurrence (index t+1;
    # index 0 is the initial hyper_h). Fused into one product each on launch-bound devices.
    fused = _launch_bound(h)
    w_h = _RecGroup([p["w_hh"], p["hw_h"]], fused)  # (.., H, 4H), (.., H, 4Nh)
    w_hh = _RecGroup([p["w_zs"], p["hw_hh"]], fused)  # (.., Nh, 12E), (.., Nh, 4Nh)
    w_blk = _RecWeight(p["w_blk"])  # (.., 12, E, H) per-block projections, deferred gradient too
    h = w_h.root(h)
    hh = w_blk.root(w_hh.root(hh))  # every step's zs depends on hh0: these roots run last
    h_ln = [_per_step(p[k], T, B) for k in ("h_gamma", "h_beta", "h_gamma_c", "h_beta_c")]
    bias, b_zs = _per_step(p["bias"], T, B), _per_step(p["b_zs"], T, B)
    hh_rec = w_hh.mm(hh, 0)[1]  # (.., B, 4Nh) initial hyper_h @ W_hh (its zs part unused)
    for t in range(T):
        hw, h_hyp = w_h.mm(h, t)  # OLD h: (.., B, 4H) main cell, (.., B, 4Nh) hyper cell
        # hyper cell (LayerNorm LSTM) on [x, h] with state (hyper_c, hyper_h)
        hh, hc = pw["layer_norm"](hxs[t], h_hyp, hh_rec, hc, None, *(v[t] for v in h_ln), seq.hyper_forget_bias)
        # hyper_norm embeddings and their per-block projections (Ha et al. 2016, Sec. 3.2)
        zs, hh_rec = w_hh.mm(hh, t + 1)  # (.., B, 12E), (.., B, 4Nh) for step t+1
        zs = (zs + b_zs[t]).reshape(*zs.shape[:-2], B, 12, -1).transpose(-3, -2)  # (.., 12, B, E)
        scales = w_blk.mm(zs, t).transpose(-3, -2)  # (.., 12, B, H) -> (.., B, 12, H)
        h, c = pw["hyper"](xs[t], hw, scales, bias[t], c, ms[t], *(v[t] for v in ln), seq.forget_bias)
        hs.append(h)
    return torch.stack(hs), (c, h, hc, hh)


_EAGER: dict[str, Callable[..., Any]] = {"lstm": lstm_pointwise, "layer_norm": ln_lstm_pointwise,
                                         "hyper": hyper_pointwise}


def _input_projection(seq: _Seq, cells: list[Any], x: Tensor) -> Any:
    """Hoisted input projections for all steps: x (T, D, B, I) -> (T, D, B, 4H) [hyper: pair]."""
    T, D, B, I = x.shape
    w_ih = _stack([c.weight_ih for c in cells])  # (D, I, 4H)
    if _lazy_ok(seq.kind, x):
        b = _stack([c.bias for c in cells]).unsqueeze(1) if seq.kind == "lstm" else w_ih.new_zeros(D, 1, w_ih.shape[-1])
        return _LazyProjection(x, w_ih, b)  # b (D, 1, 4H): the LSTM's bias (LayerNorm cells have none)
    xd = x.permute(1, 0, 2, 3).reshape(D, T * B, I)  # (D, T*B, I)
    if seq.kind == "lstm":
        xw = torch.baddbmm(_stack([c.bias for c in cells]).unsqueeze(1), xd, w_ih)
    else:
        xw = torch.bmm(xd, w_ih)
    xw = xw.reshape(D, T, B, -1).transpose(0, 1)  # (T, D, B, 4H)
    if seq.kind != "hyper":
        return xw.contiguous()
    hw_x = _stack([c.hyper_cell.weight_ih[:I] for c in cells])  # (D, I, 4Nh)
    hx = torch.bmm(xd, hw_x).reshape(D, T, B, -1).transpose(0, 1)  # (T, D, B, 4Nh)
    return xw.contiguous(), hx.contiguous()


def _split_state(seq: _Seq, cells: list[Any], state: Tensor) -> tuple[Tensor, ...]:
    """Flat oracle state (D, B, S) -> parts (c, h[, hyper_c, hyper_h]), each (D, B, ·)."""
    H = cells[0].hidden_size
    if seq.kind != "hyper":
        return state[..., :H], state[..., H:2 * H]
    Nh = cells[0].hyper_size
    return state[..., :H], state[..., H:2 * H], state[..., 2 * H:2 * H + Nh], state[..., 2 * H + Nh:]


# ----------------------------------------------------------------------------- masks
@dataclass
class DropoutMasks:
    """Dropout masks for one training forward, values 0 or 1/keep (inverted dropout).

    ``enc`` (T_enc, 2, B, E): recurrent dropout of the forward (0) and backward (1) encoder
    cells, T_enc = max(lengths); ``dec`` (T, B, H): decoder recurrent dropout; ``dec_in``
    (T, B, 5 [+ Z]): decoder input dropout; ``dec_out`` (T, B, H): decoder output dropout.
    None where that dropout is off.
    """

    enc: Tensor | None = None
    dec: Tensor | None = None
    dec_in: Tensor | None = None
    dec_out: Tensor | None = None


def _keep_mask(shape: tuple[int, ...], keep: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    if like.device.type == "cpu":
        # torch's CPU bernoulli_ costs ~10-14 ns per value here, NumPy's PCG64 ~3 ns: a small
        # VAE's two recurrent masks (~4M values) took ~40 ms of a ~480 ms step. Seeded from the
        # torch generator, so runs stay reproducible and resume exactly. float32 uniforms:
        # P(keep) is exact to 2^-24.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        u = np.random.default_rng(seed).random(math.prod(shape), dtype=np.float32)
        m = torch.from_numpy(u).lt_(keep).view(shape).to(like.dtype)  # 1.0 where kept
    else:
        m = torch.empty(shape, device=like.device, dtype=like.dtype).bernoulli_(keep, generator=generator)
    return m.div_(keep)


def _cell_dropout(cell: Any) -> float | None:
    return cell.dropout_keep if (cell.use_recurrent_dropout and cell.dropout_keep < 1.0) else None


def draw_masks(model: Any, batch: int, steps: int, enc_steps: int, like: Tensor,
               generator: torch.Generator | None = None) -> DropoutMasks:
    """Fresh masks for every dropout that ``model`` applies in training mode."""
    cfg = model.cfg
    dec = model.decoder
    out = DropoutMasks()
    keep = _cell_dropout(dec.cell)
    if keep is not None:
        out.dec = _keep_mask((steps, batch, dec.cell.hidden_size), keep, like, generator)
    if cfg.use_input_dropout and cfg.input_dropout_prob < 1.0:
        out.dec_in = _keep_mask((steps, batch, dec.cell.input_size), cfg.input_dropout_prob, like, generator)
    if cfg.use_output_dropout and cfg.output_dropout_prob < 1.0:
        out.dec_out = _keep_mask((steps, batch, dec.cell.hidden_size), cfg.output_dropout_prob, like, generator)
    enc = getattr(model, "encoder", None)
    if enc is not None:
        k = _cell_dropout(enc.cell_fw)
        if k is not None:
            out.enc = _keep_mask((enc_steps, 2, batch, enc.cell_fw.hidden_size), k, like, generator)
    return out


# ----------------------------------------------------------------------------- acceleration hook
_ACCEL: dict[str, Any] = {"enabled": True}


def set_cuda_acceleration(enabled: bool) -> None:
    """Switch the CUDA compile / graph acceleration on (default) or off (eager fast path)."""
    _ACCEL["enabled"] = bool(enabled)


def _run(seq: _Seq, xp: Any, state0: tuple[Tensor, ...], masks: Tensor | None, tag: str) -> tuple[Tensor, tuple]:
    """Dispatch a recurrence: the CUDA-accelerated runner when available, else eager."""
    h0 = state0[1]
    if _ACCEL["enabled"] and h0.is_cuda:
        if isinstance(xp, _LazyProjection):  # only with set_hand_lstm(True) on CUDA
            xp = xp.materialize()
        from . import cuda as _cuda

        res = _cuda.run_sequence_accelerated(seq, xp, state0, masks, tag)
        if res is not None:
            return res
    return run_sequence(seq, xp, state0, masks)


# ----------------------------------------------------------------------------- encoder / decoder
def _encoder_steps(strokes5: Tensor, lengths: Tensor) -> int:
    """Encoder loop length: max(lengths) (as the oracle) on CPU; all T on CUDA (see below)."""
    B, T = strokes5.shape[:2]
    if B == 0:
        return 0
    if strokes5.is_cuda and _ACCEL["enabled"]:
        return T
    return int(lengths.max())


def encoder_forward(encoder: Any, strokes5: Tensor, lengths: Tensor,
                    masks: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """As ``Encoder.forward``: strokes5 (B, T, 5) WITHOUT the start token, lengths (B,) ->
    (mu, presig). ``masks`` (max(lengths), 2, B, E) or None (no recurrent dropout)."""
    from ..model.encoder import reverse_within_length

    B, T, _ = strokes5.shape
    lengths = lengths.to(device=strokes5.device, dtype=torch.long)
    cells = [encoder.cell_fw, encoder.cell_bw]
    seq = _seq_params(cells)
    # steps: max(lengths) as the oracle; on CUDA all T (static shapes for CUDA graphs, no host
    # sync; the extra steps come after every sketch's last point and never reach the output)
    t_max = _encoder_steps(strokes5, lengths)
    E = encoder.cfg.enc_rnn_size
    if masks is not None and masks.shape[0] < t_max:
        masks = torch.cat([masks, masks.new_ones(t_max - masks.shape[0], *masks.shape[1:])])
    if t_max == 0:
        last_h = strokes5.new_zeros(B, 2 * E)
    else:
        xs = torch.stack([strokes5, reverse_within_length(strokes5, lengths)])[:, :, :t_max]  # (2, B, t, 5)
        x = xs.permute(2, 0, 1, 3)  # (t, 2, B, 5)
        xp = _input_projection(seq, cells, x)
        zeros = strokes5.new_zeros(2, B, E)
        state0 = (zeros, zeros) if seq.kind != "hyper" else (zeros, zeros, *([strokes5.new_zeros(
            2, B, cells[0].hyper_size)] * 2))
        hs, _ = _run(seq, xp, state0, masks[:t_max] if masks is not None else None, "enc")  # (t, 2, B, E)
        idx = (lengths - 1).clamp(min=0)  # state after step L-1 (as the oracle's frozen state)
        last = hs[idx, :, torch.arange(B, device=hs.device)]  # (B, 2, E)
        last = torch.where((lengths > 0).view(B, 1, 1), last, torch.zeros_like(last))
        last_h = last.reshape(B, 2 * E)  # [h_fw, h_bw]
    return encoder.mu(last_h), encoder.presig(last_h)


def _conditioning(decoder: Any, z: Tensor | None, class_ids: Tensor | None) -> Tensor | None:
    """What the decoder appends to every input: [z] (VAE), [z; class embedding] (class-
    conditional), or None; the decoder's own ``_cond`` where it has one (same tensor)."""
    cond_fn = getattr(decoder, "_cond", None)
    if cond_fn is not None:
        return cond_fn(z, class_ids)
    if decoder.conditional and z is None:
        raise ValueError("a conditional decoder needs z (B, z_size)")
    return z if decoder.conditional else None


def decoder_forward(decoder: Any, inputs: Tensor, z: Tensor | None, state: Tensor | None = None,
                    masks: DropoutMasks | None = None, class_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """As ``Decoder.forward``: inputs (B, T, 5) -> (out (B, T, 6M+3), final state (B, S)).
    Dropout (recurrent / input / output) only from ``masks`` (None: no dropout); ``class_ids``
    (B,) for a class-conditional decoder."""
    B, T, _ = inputs.shape
    cfg = decoder.cfg
    cell = decoder.cell
    if decoder.conditional and z is None:
        raise ValueError("a conditional decoder needs z (B, z_size)")
    if state is None:
        state = decoder.initial_state(z, B)
    if T == 0:
        return inputs.new_zeros(B, 0, cfg.output_size), state
    cond = _conditioning(decoder, z, class_ids)  # (B, C) or None
    masks = masks or DropoutMasks()
    cells = [cell]
    seq = _seq_params(cells)
    x = inputs.transpose(0, 1)  # (T, B, 5)
    if masks.dec_in is not None:  # input dropout on [x_t, cond]: project the full input per step
        if cond is not None:
            x = torch.cat([x, cond.unsqueeze(0).expand(T, B, cond.shape[1])], dim=2)  # (T, B, 5+C)
        xp = _input_projection(seq, cells, (x * masks.dec_in).unsqueeze(1))
    elif cond is not None:
        xp = _cond_projection(seq, cell, x, cond)  # x @ W[:5] for all steps + cond-part once per sketch
    else:
        xp = _input_projection(seq, cells, x.unsqueeze(1))
    state0 = tuple(s.unsqueeze(0) for s in _split_state(seq, cells, state))
    rec = masks.dec.unsqueeze(1) if masks.dec is not None else None  # (T, 1, B, H)
    hs, final = _run(seq, xp, state0, rec, "dec")
    hs = hs.squeeze(1)  # (T, B, H) (a view both ways; hs[:, 0] would zero-fill in backward)
    if masks.dec_out is not None:
        hs = hs * masks.dec_out
    out = decoder.output(hs.transpose(0, 1))  # (B, T, 6M+3): the head once for all steps
    return out, torch.cat([s[0] for s in final], dim=1)


def _cond_projection(seq: _Seq, cell: Any, x: Tensor, z: Tensor) -> Any:
    """Decoder input projection of [x_t, z] for all t: x (T, B, 5) @ W_ih[:5] + (z @ W_ih[5:] (+b));
    ``z`` is the per-sketch conditioning (B, C) ([z] or [z; class embedding])."""
    T, B, _ = x.shape
    w5, wz = cell.weight_ih[:5], cell.weight_ih[5:]
    zpart = torch.addmm(cell.bias, z, wz) if seq.kind == "lstm" else z @ wz  # (B, 4H)
    if _lazy_ok(seq.kind, x):
        return _LazyProjection(x.unsqueeze(1), w5.unsqueeze(0), zpart.unsqueeze(0))  # (T, 1, B, 5), (1, 5, 4H), (1, B, 4H)
    xw = (x.reshape(T * B, 5) @ w5).reshape(T, B, -1) + zpart  # (T, B, 4H)
    xw = xw.unsqueeze(1)  # (T, 1, B, 4H)
    if seq.kind != "hyper":
        return xw
    hw = cell.hyper_cell.weight_ih  # rows [x5, z, h]
    I = cell.input_size
    hx = (x.reshape(T * B, 5) @ hw[:5]).reshape(T, B, -1) + z @ hw[5:I]  # (T, B, 4Nh)
    return xw, hx.unsqueeze(1)


# ----------------------------------------------------------------------------- model level
def fast_forward(model: Any, strokes5: Tensor, lengths: Tensor, z: Tensor | None = None, sample_z: bool = True,
                 masks: DropoutMasks | None = None, eps: Tensor | None = None,
                 class_ids: Tensor | None = None) -> dict[str, Tensor | None]:
    """As ``SketchRNN.forward`` (same dict). In training mode dropout masks are drawn here
    unless given; ``eps`` (B, Z) replaces ``randn_like(mu)`` of the reparameterisation."""
    B, T1, _ = strokes5.shape
    lengths = lengths.to(device=strokes5.device, dtype=torch.long)
    if masks is None:
        masks = DropoutMasks()
        if model.training:
            masks = draw_masks(model, B, T1 - 1, _encoder_steps(strokes5[:, 1:], lengths), strokes5)
    mu = presig = None
    if model.cfg.conditional and z is None:
        mu, presig = encoder_forward(model.encoder, strokes5[:, 1:], lengths, masks.enc)
        if sample_z:
            z = mu + torch.exp(presig / 2.0) * (torch.randn_like(mu) if eps is None else eps)
        else:
            z = mu
    elif not model.cfg.conditional:
        z = None
    out, _ = decoder_forward(model.decoder, strokes5[:, :-1], z, masks=masks, class_ids=class_ids)
    return {"out": out, "mu": mu, "presig": presig, "z": z}


def fast_losses(model: Any, strokes5: Tensor, lengths: Tensor, kl_tolerance: float = 0.2,
                masks: DropoutMasks | None = None, eps: Tensor | None = None,
                class_ids: Tensor | None = None, n_max: int | None = None) -> dict[str, Tensor]:
    """As ``SketchRNN.losses`` (same keys, same Magenta normalisation, same ``n_max``), on the
    fast forward. Drop-in: ``fast_losses(model, strokes, lengths, kl_tolerance=..., class_ids=...)``."""
    from ..model.mdn import offset_log_prob, pen_log_prob, split_params
    from ..model.sketch_rnn import _n_max

    res = fast_forward(model, strokes5, lengths, sample_z=True, masks=masks, eps=eps, class_ids=class_ids)
    target = strokes5[:, 1:]  # (B, T, 5)
    B, T, _ = target.shape
    p = split_params(res["out"])
    t = torch.arange(T, device=target.device).unsqueeze(0)  # (1, T)
    valid = t < lengths.to(target.device).unsqueeze(1)  # (B, T)
    lp_offset = offset_log_prob(p, target[..., 0], target[..., 1])  # (B, T)
    lp_pen = pen_log_prob(p, target[..., 2:])  # (B, T)
    norm = float(B * _n_max(T, n_max))
    L_s = -torch.where(valid, lp_offset, torch.zeros_like(lp_offset)).sum() / norm  # Eq. 9
    L_p = -lp_pen.sum() / norm  # Eq. 10
    if model.cfg.conditional:
        mu, presig = res["mu"], res["presig"]
        kl_raw = -0.5 * torch.mean(1.0 + presig - mu * mu - torch.exp(presig))  # Eq. 11/12
        L_KL = torch.clamp(kl_raw, min=kl_tolerance)
    else:
        kl_raw = L_KL = target.new_zeros(())
    return {"L_s": L_s, "L_p": L_p, "L_R": L_s + L_p, "L_KL": L_KL, "kl_loss": L_KL, "kl_raw": kl_raw}
