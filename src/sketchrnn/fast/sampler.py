"""Lean CPU sampler for sketch-rnn decoders (LSTM, LayerNorm LSTM, HyperLSTM).

Same function as :func:`sketchrnn.api.decode` with ``fast=False`` (the plain oracle:
``model.decoder.step`` + :func:`sketchrnn.model.mdn.sample_step`), reformulated so that a
step costs one matrix product per weight matrix and a handful of elementwise ops:

* no autograd (``torch.inference_mode``), no modules, no parameter dataclasses per step;
* weights copied once per model (cached, refreshed when a parameter changes) into
  contiguous ``(in, out)`` matrices; the input of a step is one buffer ``u = [h, x5]``
  (HyperLSTM: ``[h, hyper_h, x5]``) and the gate pre-activations are ONE ``addmm`` with a
  stacked weight ``[W_hh; W_ih[:5]]``; the z-part ``z @ W_ih[5:] + bias`` is computed once
  per call (Ha & Eck 2017 Eq. 3-4: z enters every step through the same matrix);
* gate blocks reordered ``(i, f, o, j)`` so the three sigmoid gates are one contiguous
  slice; the forget bias 1.0 (Magenta) is folded into the bias / layer-norm shift;
* all state lives in preallocated buffers written with ``out=`` / in-place ops;
* the MDN head (``h @ W_out + b``) is one ``addmm``; sampling is done in NumPy on the head
  output: the mixture index and the pen state by inverse CDF on one uniform each
  (``k = #{j : cdf_j < u * cdf_M}``), the bivariate normal from two standard normals
  (``dx = mu_x + s_x e0``, ``dy = mu_y + s_y (rho e0 + sqrt(1 - rho^2) e1)``), as
  Graves 2013 (arXiv:1308.0850) Sec. 4.1 and Magenta's ``sample_gaussian_2d``;
* finished sketches are dropped from the batch (per-sketch stopping) when enough have ended.

Random numbers: per step and sketch two uniforms ``U[t, b] = (u_pi, u_pen)`` and two normals
``N[t, b] = (e0, e1)``, drawn up front from a ``torch.Generator`` (seeded as the plain path)
or injected (``random=(U, N)``), which makes the sampler exactly comparable with the plain
path fed the same numbers (see ``tests/test_fast_sampler.py``). The plain path draws with
``torch.multinomial`` (an exponential race) instead, so a given seed yields other (equally
distributed) sketches with ``fast=True`` than with ``fast=False``.

Temperature modes as :func:`sketchrnn.model.mdn.sample_step`: ``paper`` (logits / tau,
sigma * sqrt(tau)), ``magenta_py`` (sigma * tau), ``magenta_js`` (softmax temperature
0.5 + 0.5 tau, sigma * sqrt(tau)).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError

__all__ = ["FastSampler", "supports", "get_sampler", "draw_random", "choose_backend"]

_LN_EPS = 1e-3  # Magenta's layer_norm epsilon (as sketchrnn.model.cells)
_PERM = (0, 2, 3, 1)  # gate blocks (i, j, f, o) -> (i, f, o, j)
_TEMPERATURE_MODES = ("paper", "magenta_py", "magenta_js")


def _reorder_cols(w: Tensor, n_blocks: int = 4) -> Tensor:
    """(..., 4K) with blocks i, j, f, o -> blocks i, f, o, j (contiguous copy)."""
    blocks = w.chunk(n_blocks, dim=-1)
    return torch.cat([blocks[p] for p in _PERM], dim=-1).contiguous()


def _reorder_rows(w: Tensor) -> Tensor:
    """(4, ...) per-block tensors in i, j, f, o order -> i, f, o, j."""
    return torch.stack([w[p] for p in _PERM]).contiguous()


def supports(model: Any) -> bool:
    """True when :class:`FastSampler` runs ``model`` (a SketchRNN, or a LoadedModel holding one):
    CPU parameters in float32/float64, one of the three project cells (HyperLSTM with its
    default layer norm), not class-conditional."""
    from ..model.cells import HyperLSTMCell, LayerNormLSTMCell, LSTMCell

    model = getattr(model, "model", model)
    try:
        cell = model.decoder.cell
        p = next(model.parameters())
    except (AttributeError, StopIteration):
        return False
    if p.device.type != "cpu" or p.dtype not in (torch.float32, torch.float64):
        return False
    if getattr(model.decoder, "class_embedding", None) is not None:  # class-conditional: plain path
        return False
    if type(cell) in (LSTMCell, LayerNormLSTMCell):
        return True
    return (type(cell) is HyperLSTMCell and cell.use_layer_norm
            and type(cell.hyper_cell) is LayerNormLSTMCell)


def draw_random(generator: torch.Generator, steps: int, batch: int,
                dtype: np.dtype = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The fast sampler's random numbers: ``U`` (steps, batch, 2) uniforms in [0, 1) for the
    mixture index and the pen state, ``N`` (steps, batch, 2) standard normals (e0, e1)."""
    td = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    U = torch.rand((steps, batch, 2), generator=generator, dtype=td).numpy()
    N = torch.randn((steps, batch, 2), generator=generator, dtype=td).numpy()
    return U, N


# ----------------------------------------------------------------------------- weights
@dataclass
class _Weights:
    """Decoder weights laid out for the sampler (all contiguous, gate blocks i, f, o, j)."""

    kind: str
    dtype: torch.dtype
    H: int
    Nh: int  # hyper units (0 unless hyper)
    E: int  # hyper embedding size (0 unless hyper)
    M: int
    Z: int  # z size (0 for decoder-only)
    state_size: int
    init_w: Tensor | None  # (Z, S) initial-state projection (conditional)
    init_b: Tensor | None  # (S,)
    w_u: Tensor  # (H+5, 4H) rows [h; x5] (LSTM/LN); hyper cell: (H+Nh+5, 4Nh) rows [h; hyper_h; x5]
    w_z: Tensor | None  # (Z, 4H) z-part of W_ih (hyper: hyper cell's z-part (Z, 4Nh))
    bias: Tensor  # (4H,) LSTM: bias with forget bias on f; LN/hyper cell: zeros
    w_out: Tensor  # (H, 6M+3)
    b_out: Tensor  # (6M+3,)
    ln_gamma: Tensor | None = None  # (4, 1, K) gate-block LN gain (LN: K=H; hyper: hyper cell K=Nh)
    ln_beta: Tensor | None = None  # (4, 1, K) gate-block LN shift, forget bias folded into block f
    ln_c_gamma: Tensor | None = None  # (H,) (hyper: hyper cell's, (Nh,))
    ln_c_beta: Tensor | None = None
    # HyperLSTM main cell
    w_hh: Tensor | None = None  # (H, 4H)
    w_x5: Tensor | None = None  # (5, 4H)
    w_xz: Tensor | None = None  # (Z, 4H)
    w_zs: Tensor | None = None  # (Nh, 12E): [x_zw | h_zw | h_zb], 4 blocks of E each, reordered
    w_blk: Tensor | None = None  # (12, E, H): [x_alpha; h_alpha; h_beta] reordered
    b_blk: Tensor | None = None  # (12, 1, H): x_zw_b@x_alpha, h_zw_b@h_alpha, bias (per block)
    m_gamma: Tensor | None = None  # (4, 1, H) main LN gain
    m_beta: Tensor | None = None  # (4, 1, H) main LN shift (+ forget bias on f)
    m_c_gamma: Tensor | None = None  # (H,)
    m_c_beta: Tensor | None = None


def _prepare(model: Any) -> _Weights:
    """Copy a SketchRNN's decoder weights into the sampler's layout."""
    from ..model.cells import HyperLSTMCell, LayerNormLSTMCell

    dec = model.decoder
    cell = dec.cell
    cfg = model.cfg
    dt = cell.weight_hh.dtype
    H, M = cell.hidden_size, cfg.num_mixture
    Z = cfg.z_size if dec.conditional else 0
    fb = cell.forget_bias
    init_w = init_b = None
    if dec.init_state is not None:
        init_w = dec.init_state.weight.detach().t().contiguous()  # (Z, S)
        init_b = dec.init_state.bias.detach().clone()
    w_out = dec.output.weight.detach().t().contiguous()  # (H, 6M+3)
    b_out = dec.output.bias.detach().clone()
    common = dict(dtype=dt, H=H, M=M, Z=Z, state_size=cell.state_size, init_w=init_w, init_b=init_b,
                  w_out=w_out, b_out=b_out)

    def ln_blocks(gamma: Tensor, beta: Tensor, K: int, forget_bias: float) -> tuple[Tensor, Tensor]:
        g = _reorder_cols(gamma.detach()).reshape(4, 1, K).contiguous()
        b = _reorder_cols(beta.detach()).reshape(4, 1, K).clone()
        b[1] += forget_bias  # block f (after reordering): sigmoid(LN(f) + 1)
        return g, b

    if isinstance(cell, HyperLSTMCell):
        hc = cell.hyper_cell
        Nh, E = cell.hyper_size, cell.hyper_embedding_size
        I = cell.input_size  # 5 + Z
        w_ih_h = _reorder_cols(hc.weight_ih.detach())  # (I + H, 4Nh) rows [x5, z, h]
        w_u = torch.cat([w_ih_h[I:], _reorder_cols(hc.weight_hh.detach()), w_ih_h[:5]]).contiguous()
        w_z = w_ih_h[5:I].contiguous() if Z else None
        g_h, b_h = ln_blocks(hc.ln_gamma, hc.ln_beta, Nh, hc.forget_bias)
        w_ih = _reorder_cols(cell.weight_ih.detach())  # (I, 4H)

        def blocks_e(w: Tensor) -> Tensor:  # (Nh, 4E) blocks i, j, f, o -> i, f, o, j
            return _reorder_cols(w.detach())

        w_zs = torch.cat([blocks_e(cell.x_zw_weight), blocks_e(cell.h_zw_weight), blocks_e(cell.h_zb_weight)],
                         dim=1).contiguous()  # (Nh, 12E)
        x_alpha, h_alpha, h_beta = (_reorder_rows(a.detach()) for a in (cell.x_alpha, cell.h_alpha, cell.h_beta))
        w_blk = torch.cat([x_alpha, h_alpha, h_beta]).contiguous()  # (12, E, H)
        bx = torch.einsum("ge,geh->gh", _reorder_cols(cell.x_zw_bias.detach()).reshape(4, E), x_alpha)
        bh = torch.einsum("ge,geh->gh", _reorder_cols(cell.h_zw_bias.detach()).reshape(4, E), h_alpha)
        bb = _reorder_cols(cell.bias.detach()).reshape(4, H)
        b_blk = torch.cat([bx, bh, bb]).reshape(12, 1, H).contiguous()
        m_gamma, m_beta = ln_blocks(cell.ln_gamma, cell.ln_beta, H, fb)
        return _Weights(kind="hyper", Nh=Nh, E=E, w_u=w_u, w_z=w_z, bias=torch.zeros(4 * Nh, dtype=dt),
                        ln_gamma=g_h, ln_beta=b_h, ln_c_gamma=hc.ln_c_gamma.detach().clone(),
                        ln_c_beta=hc.ln_c_beta.detach().clone(),
                        w_hh=_reorder_cols(cell.weight_hh.detach()), w_x5=w_ih[:5].contiguous(),
                        w_xz=w_ih[5:].contiguous() if Z else None, w_zs=w_zs, w_blk=w_blk, b_blk=b_blk,
                        m_gamma=m_gamma, m_beta=m_beta, m_c_gamma=cell.ln_c_gamma.detach().clone(),
                        m_c_beta=cell.ln_c_beta.detach().clone(), **common)

    w_ih = _reorder_cols(cell.weight_ih.detach())  # (5 + Z, 4H)
    w_u = torch.cat([_reorder_cols(cell.weight_hh.detach()), w_ih[:5]]).contiguous()  # (H + 5, 4H)
    w_z = w_ih[5:].contiguous() if Z else None
    if isinstance(cell, LayerNormLSTMCell):
        g, b = ln_blocks(cell.ln_gamma, cell.ln_beta, H, fb)
        return _Weights(kind="layer_norm", Nh=0, E=0, w_u=w_u, w_z=w_z, bias=torch.zeros(4 * H, dtype=dt),
                        ln_gamma=g, ln_beta=b, ln_c_gamma=cell.ln_c_gamma.detach().clone(),
                        ln_c_beta=cell.ln_c_beta.detach().clone(), **common)
    bias = _reorder_cols(cell.bias.detach()).clone()
    bias[H:2 * H] += fb  # block f: sigmoid(f + forget_bias)
    return _Weights(kind="lstm", Nh=0, E=0, w_u=w_u, w_z=w_z, bias=bias, **common)


# ----------------------------------------------------------------------------- matmul backend
_OPENBLAS: list[Any] = []  # [get_num_threads function or None], filled on first use


def _openblas_threads() -> int | None:
    """Threads of NumPy's OpenBLAS (Linux, via its exported ``*get_num_threads*``), None if unknown."""
    if not _OPENBLAS:
        fn = None
        try:
            import ctypes

            with open("/proc/self/maps") as f:
                paths = sorted({ln.split()[-1] for ln in f if "openblas" in ln.lower() and ".so" in ln})
            for path in paths:
                lib = ctypes.CDLL(path)
                for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                             "openblas_get_num_threads64_", "openblas_get_num_threads"):
                    if hasattr(lib, name):
                        fn = getattr(lib, name)
                        break
                if fn is not None:
                    break
        except (OSError, AttributeError, IndexError):  # no /proc, no OpenBLAS: unknown
            fn = None
        _OPENBLAS.append(fn)
    fn = _OPENBLAS[0]
    return int(fn()) if fn is not None else None


def choose_backend() -> str:
    """``"numpy"`` (OpenBLAS sgemv, 1.2-2.5x faster than MKL's on the AMD EPYC measured) when
    both NumPy's OpenBLAS and torch run ONE thread, else ``"torch"`` (which honours
    ``torch.set_num_threads``). NumPy's thread count is never changed here."""
    return "numpy" if torch.get_num_threads() == 1 and _openblas_threads() == 1 else "torch"


def _per_sketch_constants(w: _Weights, z: Tensor | None, B: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """What stays fixed over a sketch: the initial state (B, S) (Eq. 3), the z-part of the
    gate matmul plus its bias (B, 4H; hyper cell: 4Nh) and the hyper main cell's z-part (B, 4H)."""
    if z is not None:
        state0 = torch.tanh(torch.addmm(w.init_b, z, w.init_w))
        zc = torch.addmm(w.bias, z, w.w_z)
        xz = torch.mm(z, w.w_xz) if w.kind == "hyper" else None
    else:
        state0 = torch.zeros(B, w.state_size, dtype=w.dtype)
        zc = w.bias.expand(B, -1).contiguous()
        xz = torch.zeros(B, 4 * w.H, dtype=w.dtype) if w.kind == "hyper" else None
    return state0, zc, xz


# ----------------------------------------------------------------------------- runner
class _Runner:
    """Per-call state buffers for a batch of B sketches and the cell step on them.

    Every buffer is a torch tensor with a NumPy view of the same memory; matrix products run
    on either (``backend``), elementwise work runs in torch (fused LN / sigmoid kernels).
    """

    def __init__(self, w: _Weights, z: Tensor | None, B: int, backend: str = "torch") -> None:
        self.w = w
        self.backend = backend
        H, Nh = w.H, w.Nh
        dt = w.dtype
        self.B = B
        self.width = H + Nh + 5
        state0, zc, self.xz = _per_sketch_constants(w, z, B)
        self.zc = zc
        self.u = torch.zeros(B, self.width, dtype=dt)  # [h | hyper_h | x5]
        self.c = state0[:, :H].contiguous()
        self.u[:, :H] = state0[:, H:2 * H]
        if w.kind == "hyper":
            self.hc = state0[:, 2 * H:2 * H + Nh].contiguous()
            self.u[:, H:H + Nh] = state0[:, 2 * H + Nh:]
        else:
            self.hc = None
        self._views()

    def _mm(self, a: Tensor, wt: Tensor, out: Tensor, bias: Tensor | None = None) -> Any:
        """A zero-argument callable computing ``out = a @ wt (+ bias)`` on the chosen backend
        (2-D, or 3-D stacks of matrices)."""
        if a.dim() == 3 and self.backend != "numpy":
            return (lambda: torch.bmm(a, wt, out=out)) if bias is None else (lambda: torch.baddbmm(bias, a, wt, out=out))
        if self.backend == "numpy":
            a_np, w_np, o_np = a.numpy(), wt.numpy(), out.numpy()
            if bias is None:
                return lambda: np.matmul(a_np, w_np, out=o_np)
            b_np = bias.numpy()

            def f() -> None:
                np.matmul(a_np, w_np, out=o_np)
                np.add(o_np, b_np, out=o_np)
            return f
        if bias is None:
            return lambda: torch.mm(a, wt, out=out)
        return lambda: torch.addmm(bias, a, wt, out=out)

    def _views(self) -> None:
        """(Re)create scratch buffers, the fixed views and the bound matrix products of a step."""
        w, B, H, Nh = self.w, self.B, self.w.H, self.w.Nh
        dt = w.dtype
        self.u_np = self.u.numpy()
        self.x5 = self.u_np[:, H + Nh:]  # (B, 5) NumPy view of the step input
        self.h = self.u[:, :H]
        self.y = torch.empty(B, 6 * w.M + 3, dtype=dt)
        self.y_np = self.y.numpy()
        self.tc = torch.empty(B, H, dtype=dt)
        K = Nh if w.kind == "hyper" else H
        g = torch.empty(B, 4 * K, dtype=dt)  # gate pre-activations (hyper: of the hyper cell)
        self.g = g
        self.g4 = g.view(B, 4, K)
        self.g_sig, self.g_j = g[:, :3 * K], g[:, 3 * K:]
        self.g_i, self.g_f, self.g_o = g[:, :K], g[:, K:2 * K], g[:, 2 * K:3 * K]
        self.mm_gates = self._mm(self.u, w.w_u, g, self.zc)
        self.mm_head = self._mm(self.h, w.w_out, self.y, w.b_out.expand(B, -1).contiguous())
        if w.kind == "hyper":
            self.hh = self.u[:, H:H + Nh]
            self.tch = torch.empty(B, Nh, dtype=dt)
            self.ghh = torch.empty(B, 4 * H, dtype=dt)
            self.gx = torch.empty(B, 4 * H, dtype=dt)
            self.zs = torch.empty(B, 12 * w.E, dtype=dt)
            self.s12 = torch.empty(12, B, H, dtype=dt)
            self.pre = torch.empty(4, B, H, dtype=dt)  # main gate blocks, block-major
            self.zs_t = self.zs.view(B, 12, w.E).transpose(0, 1)  # (12, B, E)
            self.gx4 = self.gx.view(B, 4, H).transpose(0, 1)  # (4, B, H)
            self.ghh4 = self.ghh.view(B, 4, H).transpose(0, 1)
            self.ax, self.ah, self.bh = self.s12[0:4], self.s12[4:8], self.s12[8:12]
            self.mm_hh = self._mm(self.h, w.w_hh, self.ghh)
            self.mm_x = self._mm(self.u[:, H + Nh:], w.w_x5, self.gx, self.xz)
            self.mm_zs = self._mm(self.hh, w.w_zs, self.zs)
            self.mm_blk = self._mm(self.zs_t, w.w_blk, self.s12, w.b_blk.expand(12, B, H).contiguous())

    def compact(self, keep: np.ndarray) -> None:
        """Keep only rows ``keep`` (indices into the current batch)."""
        idx = torch.from_numpy(np.ascontiguousarray(keep, dtype=np.int64))
        self.B = len(keep)
        self.u = self.u.index_select(0, idx)
        self.c = self.c.index_select(0, idx)
        self.zc = self.zc.index_select(0, idx)
        if self.hc is not None:
            self.hc = self.hc.index_select(0, idx)
            self.xz = self.xz.index_select(0, idx)
        self._views()

    # -- the recurrent step: reads u = [h, (hyper_h), x5], writes the new h (and hyper_h) into u
    def _lstm_tail(self, c: Tensor, h_out: Tensor, tc: Tensor, ln_c: tuple[Tensor, Tensor] | None) -> None:
        """Gate nonlinearities on self.g (i, f, o | j) and the c, h update (h written to h_out)."""
        self.g_sig.sigmoid_()
        self.g_j.tanh_()
        c.mul_(self.g_f).addcmul_(self.g_i, self.g_j)  # c' = c sigmoid(f + 1) + sigmoid(i) tanh(j)
        if ln_c is None:
            torch.tanh(c, out=tc)
        else:
            torch.tanh(F.layer_norm(c, c.shape[-1:], ln_c[0], ln_c[1], _LN_EPS), out=tc)
        torch.mul(tc, self.g_o, out=h_out)  # h' = tanh(c') sigmoid(o)

    def _ln_gates(self, K: int) -> None:
        """Per-gate-block layer norm of self.g with gain/shift (Magenta ``layer_norm_all``)."""
        w = self.w
        torch.addcmul(w.ln_beta.view(4, K), F.layer_norm(self.g4, (K,), eps=_LN_EPS), w.ln_gamma.view(4, K),
                      out=self.g4)  # (B, 4, K)

    def cell_step(self) -> None:
        w = self.w
        if w.kind == "lstm":
            self.mm_gates()
            self._lstm_tail(self.c, self.h, self.tc, None)
        elif w.kind == "layer_norm":
            self.mm_gates()
            self._ln_gates(w.H)
            self._lstm_tail(self.c, self.h, self.tc, (w.ln_c_gamma, w.ln_c_beta))
        else:
            self._hyper_step()

    def _hyper_step(self) -> None:
        w = self.w
        # main-cell products of the OLD h and of x (before h / hyper_h are overwritten)
        self.mm_hh()  # (B, 4H) h @ W_hh
        self.mm_x()  # (B, 4H) x @ W_ih = x5 @ W_ih[:5] + z @ W_ih[5:]
        # hyper cell: LayerNorm LSTM on [x, h] with its own state (hyper_c, hyper_h)
        self.mm_gates()  # (B, 4Nh)
        self._ln_gates(w.Nh)
        self._lstm_tail(self.hc, self.hh, self.tch, (w.ln_c_gamma, w.ln_c_beta))  # new hyper_h -> u
        # hyper_norm scales alpha_x, alpha_h, beta_h per gate block (Ha et al. 2016, Sec. 3.2)
        self.mm_zs()  # (B, 12E)
        self.mm_blk()  # (12, B, H) per-block projections of the embeddings
        pre = self.pre
        torch.mul(self.ax, self.gx4, out=pre)
        pre.addcmul_(self.ah, self.ghh4).add_(self.bh)  # + beta_h + bias (folded into b_blk)
        H = w.H
        torch.addcmul(w.m_beta, F.layer_norm(pre, (H,), eps=_LN_EPS), w.m_gamma, out=pre)
        pre[:3].sigmoid_()
        pre[3].tanh_()
        self.c.mul_(pre[1]).addcmul_(pre[0], pre[3])
        torch.tanh(F.layer_norm(self.c, (H,), w.m_c_gamma, w.m_c_beta, _LN_EPS), out=self.tc)
        torch.mul(self.tc, pre[2], out=self.h)

    def head(self) -> None:
        self.mm_head()  # (B, 6M+3)


# ----------------------------------------------------------------------------- sampler
class FastSampler:
    """Fast CPU sampling for one SketchRNN (weights prepared once; see the module docstring).

    ``FastSampler(model).decode(z, n, ...)`` returns stroke-3 sketches as
    :func:`sketchrnn.api.decode` does; ``model`` is a SketchRNN (or a LoadedModel).
    """

    def __init__(self, model: Any, backend: str = "auto") -> None:
        model = getattr(model, "model", model)
        if backend not in ("auto", "torch", "numpy", "native"):
            raise ConfigError(f"fast sampler: backend must be auto, native, torch or numpy, got {backend!r}")
        self.backend = backend
        if not supports(model):
            raise ConfigError("fast sampler: this model is not supported (CPU float32/float64, "
                              "lstm | layer_norm | hyper decoder); use sketchrnn.api.decode(..., fast=False)")
        self.model = model
        self.cfg = model.cfg
        with torch.no_grad():
            self.w = _prepare(model)
        self._native: Any = None  # NativeModel, built on first use
        if backend == "native" and self.native() is None:
            from . import native

            why = native.status() if native.status() != "ok" else "weights not float32 or sizes not multiples of 8"
            raise ConfigError(f"fast sampler: the native backend is unavailable ({why}); use backend='auto'")

    def native(self) -> Any:
        """The C kernel's view of this model (:class:`sketchrnn.fast.native.NativeModel`), or None
        where the kernel is unavailable or does not cover the model."""
        if self._native is None:
            from . import native

            self._native = native.NativeModel(self.w) if native.native_supports(self.w) and native.available() \
                else False
        return self._native or None

    def decode(self, z: Tensor | np.ndarray | None, n: int | None = None, temperature: float = 1.0,
               greedy: bool = False, generator: torch.Generator | None = None, max_len: int | None = None,
               temperature_mode: str = "paper", prefix: np.ndarray | None = None, allow_end: bool = True,
               scale_factor: float = 1.0, random: tuple[np.ndarray, np.ndarray] | None = None) -> list[np.ndarray]:
        """Sketches (stroke-3 float32, ``* scale_factor``) from latent ``z`` (B, Z) or ``n`` times
        from the zero state. ``random=(U, N)``, each (max_len, B, 2), replaces the generator's
        draws (see :func:`draw_random`). Arguments otherwise as :func:`sketchrnn.api.decode`."""
        w = self.w
        if z is not None:
            zt = torch.as_tensor(np.asarray(z) if not isinstance(z, Tensor) else z).to(w.dtype)
            if zt.ndim == 1:
                zt = zt.unsqueeze(0)
            B = zt.shape[0]
        else:
            zt = None
            B = int(n or 1)
        if (zt is None) != (w.Z == 0):
            raise ConfigError("fast sampler: a conditional model needs z, a decoder-only model takes none")
        max_len = int(max_len or self.cfg.max_seq_len)
        if not greedy:
            if temperature_mode not in _TEMPERATURE_MODES:
                raise ConfigError(f"temperature_mode {temperature_mode!r} is not one of {', '.join(_TEMPERATURE_MODES)}")
            if not (temperature > 0 and math.isfinite(temperature)):
                raise ConfigError(f"sampling temperature must be a number > 0, got {temperature}; "
                                  "use greedy mode for a deterministic drawing")
        if random is None and not greedy:
            if generator is None:
                generator = torch.Generator()
                generator.seed()
            random = draw_random(generator, max_len, B, np.float64 if w.dtype == torch.float64 else np.float32)
        if random is not None and (random[0].shape[:2] != (max_len, B) or random[1].shape[:2] != (max_len, B)):
            raise ConfigError(f"fast sampler: random=(U, N) must each have shape ({max_len}, {B}, 2)")
        with torch.inference_mode():
            return self._decode(zt, B, float(temperature), greedy, max_len, temperature_mode, prefix, allow_end,
                                float(scale_factor), random)

    def _decode(self, zt: Tensor | None, B: int, tau: float, greedy: bool, max_len: int, mode: str,
                prefix: np.ndarray | None, allow_end: bool, scale: float,
                random: tuple[np.ndarray, np.ndarray] | None) -> list[np.ndarray]:
        w = self.w
        npdt = np.float64 if w.dtype == torch.float64 else np.float32
        if self.backend == "native" or (self.backend == "auto" and B <= _SCALAR_MAX_BATCH and self.native()):
            return self._decode_native(zt, B, tau, greedy, max_len, mode, prefix, allow_end, scale, random)
        run = _Runner(w, zt, B, choose_backend() if self.backend in ("auto", "native") else self.backend)
        run.x5[:] = (0.0, 0.0, 1.0, 0.0, 0.0)  # start token
        if prefix is not None and len(prefix):
            from ..data.strokes import to_stroke5

            p5 = to_stroke5(np.asarray(prefix, np.float32), len(prefix), scale).astype(npdt)  # (L+1, 5)
            for t in range(len(prefix)):
                run.cell_step()
                run.x5[:] = p5[t + 1]
        soft_tau = 0.5 + 0.5 * tau if mode == "magenta_js" else tau
        mix = _Mixing(w.M, 1.0 / soft_tau, tau if mode == "magenta_py" else math.sqrt(tau), greedy)
        first_no_end = prefix is None  # as api.decode: no end-of-sketch at the first step
        if B <= _SCALAR_MAX_BATCH:
            pts, ends = _loop_scalar(run, mix, random, max_len, allow_end, first_no_end)
        else:
            pts, ends = _loop_vector(run, mix, random, max_len, allow_end, first_no_end, npdt)
        out = []
        for b in range(B):
            s = np.asarray(pts[b], dtype=np.float32).reshape(-1, 3)[: ends[b]]
            s[:, :2] *= np.float32(scale)
            if len(s):
                s[-1, 2] = 1.0  # the pen lifts after the last point
            out.append(s)
        return out


    def _decode_native(self, zt: Tensor | None, B: int, tau: float, greedy: bool, max_len: int, mode: str,
                       prefix: np.ndarray | None, allow_end: bool, scale: float,
                       random: tuple[np.ndarray, np.ndarray] | None) -> list[np.ndarray]:
        """The C kernel: all B sketches in one call (each weight tile read once per step)."""
        w, nm = self.w, self.native()
        if B == 0:
            return []
        state0, zc, xz = _per_sketch_constants(w, zt, B)
        state0, zc = (np.ascontiguousarray(a.numpy(), np.float32) for a in (state0, zc))
        xz = None if xz is None else np.ascontiguousarray(xz.numpy(), np.float32)
        p5 = None
        if prefix is not None and len(prefix):
            from ..data.strokes import to_stroke5

            p5 = np.ascontiguousarray(to_stroke5(np.asarray(prefix, np.float32), len(prefix), scale)[1:len(prefix) + 1],
                                      np.float32)  # (L, 5) the inputs after the start token
        soft_tau = 0.5 + 0.5 * tau if mode == "magenta_js" else tau
        sf = tau if mode == "magenta_py" else math.sqrt(tau)
        U = N = None
        if random is not None and not greedy:
            U, N = (np.ascontiguousarray(r, np.float32) for r in random)
        out = []
        for s in nm.decode(zc, xz, state0, p5, max_len, allow_end, prefix is None, greedy, 1.0 / soft_tau, sf, U, N):
            s = s.copy()
            s[:, :2] *= np.float32(scale)
            if len(s):
                s[-1, 2] = 1.0  # the pen lifts after the last point
            out.append(s)
        return out


_SCALAR_MAX_BATCH = 8  # up to this batch size the mixture is sampled row by row (C kernel or Python floats)


@dataclass
class _Mixing:
    """Temperature-adjusted sampling constants (see mdn.sample_step)."""

    M: int
    inv_soft_tau: float  # 1 / tau (paper, magenta_py) or 1 / (0.5 + 0.5 tau) (magenta_js)
    sigma_factor: float  # sqrt(tau) (paper, magenta_js) or tau (magenta_py)
    greedy: bool


def _loop_scalar(run: _Runner, mix: _Mixing, random: tuple[np.ndarray, np.ndarray] | None, max_len: int,
                 allow_end: bool, first_no_end: bool) -> tuple[list[list[float]], list[int]]:
    """Sampling loop for small batches: the MDN head row is sampled with Python floats."""
    B = run.B
    M, inv, sf, greedy = mix.M, mix.inv_soft_tau, mix.sigma_factor, mix.greedy
    exp, tanh, sqrt = math.exp, math.tanh, math.sqrt
    c_mx, c_my, c_sx, c_sy, c_rr = (3 + M * i for i in range(1, 6))
    U = N = None
    if random is not None:
        U, N = random[0].tolist(), random[1].tolist()  # nested lists [t][b][2]
    pts: list[list[float]] = [[] for _ in range(B)]
    ends = [max_len] * B
    alive = list(range(B))  # original index of each buffer row
    for t in range(max_len):
        run.cell_step()
        run.head()
        no_end = (not allow_end) or (t == 0 and first_no_end)
        npen = 2 if no_end else 3
        x5 = run.x5
        finished = []
        for r, v in enumerate(run.y_np.tolist()):
            b = alive[r]
            pi = v[3:3 + M]
            pen_l = v[:npen]
            if greedy:
                k = pi.index(max(pi))
                pen = pen_l.index(max(pen_l))
            else:
                u = U[t][b]
                m = max(pi)
                acc, target, k = 0.0, 0.0, 0
                e = [exp((p - m) * inv) for p in pi]
                target = u[0] * sum(e)
                for k in range(M):  # inverse CDF: first k with cdf_k >= u * total
                    acc += e[k]
                    if acc >= target:
                        break
                m = max(pen_l)
                e = [exp((p - m) * inv) for p in pen_l]
                target = u[1] * sum(e)
                acc = 0.0
                for pen in range(npen):
                    acc += e[pen]
                    if acc >= target:
                        break
            dx, dy = v[c_mx + k], v[c_my + k]
            if not greedy:
                e0, e1 = N[t][b]
                sx, sy, rho = exp(v[c_sx + k]) * sf, exp(v[c_sy + k]) * sf, tanh(v[c_rr + k])
                dx = dx + sx * e0
                dy = dy + sy * (rho * e0 + sqrt(max(1.0 - rho * rho, 0.0)) * e1)
            pts[b] += (dx, dy, 1.0 if pen == 1 else 0.0)
            if pen == 2:
                ends[b] = t
                finished.append(r)
            x5[r] = (dx, dy, pen == 0, pen == 1, pen == 2)
        if finished:
            if len(finished) == len(alive):
                break
            keep = [r for r in range(len(alive)) if r not in finished]
            run.compact(np.asarray(keep))
            alive = [alive[r] for r in keep]
    return pts, ends


def _loop_vector(run: _Runner, mix: _Mixing, random: tuple[np.ndarray, np.ndarray] | None, max_len: int,
                 allow_end: bool, first_no_end: bool, npdt: type) -> tuple[np.ndarray, np.ndarray]:
    """Sampling loop for large batches: the MDN head is sampled with vectorised NumPy."""
    B = run.B
    M, greedy = mix.M, mix.greedy
    inv, sf = npdt(mix.inv_soft_tau), npdt(mix.sigma_factor)
    U, N = random if random is not None else (None, None)
    eye3 = np.eye(3, dtype=npdt)
    cols = (3 + M * np.arange(1, 6)).astype(np.int64)  # (5,) columns of mu_x, mu_y, log_sx, log_sy, rho_raw
    pts = np.zeros((B, max_len, 3), dtype=np.float32)
    ends = np.full(B, max_len, dtype=np.int64)
    alive = np.arange(B)  # original index of each buffer row
    done = np.zeros(B, dtype=bool)  # per buffer row
    n_done = 0
    rows = np.arange(B)
    for t in range(max_len):
        run.cell_step()
        run.head()
        y = run.y_np
        no_end = (not allow_end) or (t == 0 and first_no_end)
        npen = 2 if no_end else 3
        pen_l = y[:, :npen]
        pi = y[:, 3:3 + M]
        if greedy:
            k = pi.argmax(1)
            pen = pen_l.argmax(1)
        else:
            u = U[t, alive]  # (B, 2)
            e = np.exp((pi - pi.max(1, keepdims=True)) * inv)  # (B, M) unnormalised
            cdf = np.cumsum(e, 1)
            k = np.minimum((cdf < u[:, :1] * cdf[:, -1:]).sum(1), M - 1)
            ep = np.exp((pen_l - pen_l.max(1, keepdims=True)) * inv)  # (B, npen)
            cdp = np.cumsum(ep, 1)
            pen = np.minimum((cdp < u[:, 1:] * cdp[:, -1:]).sum(1), npen - 1)
        g = y[rows[:, None], cols + k[:, None]]  # (B, 5)
        if greedy:
            dx, dy = g[:, 0], g[:, 1]
        else:
            nrm = N[t, alive]  # (B, 2)
            sxy = np.exp(g[:, 2:4]) * sf  # (B, 2)
            rho = np.tanh(g[:, 4])
            e0 = nrm[:, 0]
            dx = g[:, 0] + sxy[:, 0] * e0
            dy = g[:, 1] + sxy[:, 1] * (rho * e0 + np.sqrt(np.maximum(1.0 - rho * rho, 0.0)) * nrm[:, 1])
        pts[alive, t, 0] = dx
        pts[alive, t, 1] = dy
        pts[alive, t, 2] = pen == 1
        if not no_end:
            ended = (pen == 2) & ~done
            if ended.any():
                ends[alive[ended]] = t
                done |= ended
                n_done += int(ended.sum())
                if n_done == len(alive):
                    break
                if 4 * n_done >= len(alive):  # drop finished sketches from the batch
                    keep = np.flatnonzero(~done)
                    run.compact(keep)
                    alive, dx, dy, pen = alive[keep], dx[keep], dy[keep], pen[keep]
                    done = np.zeros(len(keep), dtype=bool)
                    n_done = 0
                    rows = np.arange(len(keep))
        x5 = run.x5
        x5[:, 0] = dx
        x5[:, 1] = dy
        x5[:, 2:] = eye3[pen]
    return pts, ends


# ----------------------------------------------------------------------------- cache
_CACHE: "weakref.WeakKeyDictionary[Any, tuple[tuple, FastSampler]]" = weakref.WeakKeyDictionary()


def _signature(model: Any) -> tuple:
    """Changes whenever a decoder parameter is replaced or modified in place."""
    return tuple((p.data_ptr(), p._version, p.dtype) for p in model.decoder.parameters())


def get_sampler(model: Any) -> FastSampler:
    """A cached :class:`FastSampler` for ``model`` (rebuilt when its decoder weights change)."""
    model = getattr(model, "model", model)
    sig = _signature(model)
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == sig:
        return hit[1]
    s = FastSampler(model)
    _CACHE[model] = (sig, s)
    return s
