"""Fused LSTM recurrences in Triton: one kernel per step each way, or one persistent launch.

Why: on an H100 the graph-captured fast path (:mod:`.cuda`) spends a paper-size training step
(B 100, T 250, decoder LSTM 512) mostly in the per-step products ``h @ W_hh`` (cuBLAS chooses
32 x 32 tiles for a (100, 512) x (512, 2048) product: 22 us each, ~9 TFLOPS) and in separate
pointwise kernels (benchmarks/RESULTS.md, "Kernel profile"). Here a step is ONE kernel:

* forward, program (batch tile, unit block, direction): the four gate products of its hidden
  units ``h_{t-1}[b] @ W_hh[:, gate*H + j]`` with ``tl.dot``, then the whole gate math of
  Magenta's ``LSTMCell`` with recurrent dropout on g (Semeniuta et al. 2016):
  ``c_t = c_{t-1} s(f + forget_bias) + s(i) drop(tanh j)``, ``h_t = tanh(c_t) s(o)``;
  it writes the activations [s(i), tanh(j), s(f + b), s(o)] for the backward, c_t and h_t.
* backward, same grid: ``dh_t[b, j] = dh_ext[b, j] + g_{t+1}[b, :] @ W_hh[j, :]^T`` (the step
  after's pre-activation gradients, all 4H of them, are complete: a kernel boundary lies
  between) and then the gate math's derivative for its own units, which needs nothing from
  other units; the cell-state gradient ``dc`` is carried in place per (b, j).
* ``dW_hh = sum_t h_{t-1}^T g_t`` is one product per direction after the loop, and the input
  projection's gradient is the pre-activation gradients themselves (as in
  :class:`.decoder._LSTMSequence`, whose torch-operations path is the reference here).
* persistent (opt-in, :func:`set_persistent`; correct on an H200, 2026-11-27, and in float32 no
  faster there than the step kernels: ~44 us per step pair either way): the same math with all T
  steps in ONE launch each way, the programs of a row tile meeting at a barrier after every
  step: no launch per step, no tail of each step's grid, and each SM multiplies the same W_hh
  columns every step; only where a row tile's programs can be resident at once
  (:func:`persistent_grid`), else the step kernels run. Written to remove most of the ~42 us
  per step pair the step kernels take at B 100; that it did not suggests the float32 products
  (on the FMA units: ~4.4 us per step each way at their full rate) bound both; the TF32 and
  TF32 x3 products (tensor cores) are not yet timed.
* LayerNorm LSTM (Magenta ``LayerNormLSTMCell``, the LayerNorm decoder), persistent only
  (:func:`ln_lstm_sequence`): the norms over each gate block and over c span the row tile's
  programs, which exchange their parts of the statistics through a buffer every step.
* HyperLSTM (the HyperLSTM decoder): :mod:`.triton_hyper`, persistent only, on this module's
  barrier and switches (its tiles ``hfw`` / ``hbw``).

Layouts: step inputs ``xp`` (T, D, B, 4H) hold ``x_t @ W_ih + b`` (decoder: plus the z part);
``W_hh`` (D, H, 4H) in the oracle's gate order (i, j, f, o); states (D, B, H); masks
(T, D, B, H) with values 0 or 1/keep. D = 2 runs both encoder directions in the same kernels.
Internal buffers are direction-major, (D, T, B, .), so that the weight gradient of each
direction is a product over contiguous (T*B, .) rows.

Exact in float32 up to summation order (``tl.dot`` with ``input_precision="ieee"``; TF32 only
where CUDA's float32 matmuls may use it (:func:`sketchrnn.precision.cuda_fp32_reduced`), as for
cuBLAS; or three TF32 products per product, float32-level error on the tensor cores:
:func:`set_fp32_products`). tanh and the sigmoid are written out with ``exp``
(``triton.language`` has no tanh, the CUDA libdevice one does not run in Triton's interpreter,
and ``tl.sigmoid`` is a jit function that the interpreter runs only when TRITON_INTERPRET was
set before triton was imported): absolute error ~1e-7 in float32. The same kernels run on a CPU
under Triton's interpreter (``TRITON_INTERPRET=1`` or :func:`set_interpret`), which is how the tests check them
against the float64 reference without a GPU; on CUDA they are launched inside the captured
CUDA graph of :mod:`.cuda` (``configure(triton=True)``), so Python's per-launch cost is paid at
capture only.
"""

from __future__ import annotations

import os
import types
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..precision import cuda_fp32_reduced

try:  # an optional dependency: CUDA builds of torch bring it, CPU ones do not
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - depends on the install
    triton = None
    tl = None

__all__ = ["available", "supports_size", "lstm_sequence", "mm", "set_interpret", "set_blocks", "blocks",
           "set_persistent", "persistent_grid", "last_mode", "ln_lstm_sequence", "supports_ln", "barrier_timeouts"]

# (BB, BH, BK): batch rows, hidden units and reduction length per program / dot. tl.dot needs
# each >= 16. Forward grid (ceil(B/BB), H/BH, D): B 100, H 512, BB 16, BH 32 -> 7 x 16 = 112
# programs, about one per SM (132 on an H100 / H200); the benchmark sweeps these (benchmarks/bench_triton_lstm.py).
# the fastest exact setting of benchmarks/bench_triton_lstm.py on an H200 (2026-11-26) for both
# the decoder LSTM 512 and the encoder's two LSTM 256 at B 100 (1.14x / 1.84x the compiled path)
_BLOCKS: dict[str, tuple[int, int, int]] = {"fw": (16, 32, 64), "bw": (16, 32, 128),
                                            # the persistent kernels (one launch per sequence): B 100
                                            # -> 4 row tiles x 32 unit blocks = 128 programs, one per
                                            # SM, each multiplying the same 512 x 64 W_hh columns
                                            # every step; 8 warps: 150 / 190 registers, no spills (sm_90)
                                            "pfw": (32, 16, 64), "pbw": (32, 16, 128),
                                            # the persistent HyperLSTM kernels (.triton_hyper): B 100,
                                            # H 512, Nh 256 -> 7 row tiles x 16 unit blocks of 32 main
                                            # and 16 hyper units (tl.dot takes no fewer); not yet measured
                                            "hfw": (16, 32, 64), "hbw": (16, 32, 128)}
# pwarps 8: with 4 warps the persistent kernels spill (ptxas -v, Triton 3.6: benchmarks/compile_sm90.py)
_STATE: dict[str, Any] = {"interpret": None, "kernels": {}, "warps": 4, "pwarps": 8,  # warps per program
                          "fp32_dot": "ieee",  # float32 products without TF32: set_fp32_products
                          # one launch per sequence where the grid fits on the device at once
                          "persistent": os.environ.get("SKETCHRNN_TRITON_PERSISTENT", "0") == "1",
                          "last_mode": None}  # "persistent" or "steps": how the last forward ran
# the sum combiner of tl.sum, for tl.reduce: tl.sum itself is a jit function that Triton's
# interpreter runs only when TRITON_INTERPRET was set before triton was imported; tl.reduce with
# this combiner it runs as a NumPy sum
_SUM = tl.standard._sum_combine if tl is not None else None
_MAX_SPIN = 1 << 22  # acquire reads a program waits at a grid barrier before giving up (seconds)


def available() -> bool:
    """True when Triton is importable."""
    return triton is not None


def set_interpret(on: bool | None) -> None:
    """Run the kernels with Triton's interpreter (CPU tensors, NumPy underneath): True, False,
    or None = only where the tensors are not on CUDA."""
    _STATE["interpret"] = on


def set_blocks(fw: tuple[int, int, int] | None = None, bw: tuple[int, int, int] | None = None,
               warps: int | None = None, pfw: tuple[int, int, int] | None = None,
               pbw: tuple[int, int, int] | None = None, pwarps: int | None = None,
               hfw: tuple[int, int, int] | None = None, hbw: tuple[int, int, int] | None = None) -> None:
    """Tile sizes (BB, BH, BK) of the forward and backward step kernels (powers of two >= 16),
    the warps per program (1, 2, 4 (default), 8 or 16), and the same of the persistent kernels
    (``pfw``, ``pbw``, ``pwarps``; ``hfw``, ``hbw`` the HyperLSTM ones, :mod:`.triton_hyper`)."""
    for key, n in (("warps", warps), ("pwarps", pwarps)):
        if n is None:
            continue
        if n not in (1, 2, 4, 8, 16):
            raise ValueError(f"{key} must be 1, 2, 4, 8 or 16, got {n!r}")
        _STATE[key] = int(n)
    for name, v in (("fw", fw), ("bw", bw), ("pfw", pfw), ("pbw", pbw), ("hfw", hfw), ("hbw", hbw)):
        if v is None:
            continue
        if len(v) != 3 or any(int(x) < 16 or int(x) & (int(x) - 1) for x in v):
            raise ValueError(f"{name} blocks must be three powers of two >= 16, got {v!r}")
        _BLOCKS[name] = tuple(int(x) for x in v)  # type: ignore[assignment]


def blocks() -> dict[str, Any]:
    """The current settings, in the form :func:`set_blocks` takes."""
    return {**_BLOCKS, "warps": _STATE["warps"], "pwarps": _STATE["pwarps"]}


def set_persistent(on: bool) -> None:
    """Run each recurrence as ONE launch of the persistent kernels (all T steps, a grid barrier
    between steps) wherever its grid fits on the device at once, else one launch per step as
    before; also ``SKETCHRNN_TRITON_PERSISTENT=1`` at import. Off by default until measured."""
    _STATE["persistent"] = bool(on)


def _err_flag(x: Tensor) -> Tensor:
    """A zeroed flag for one persistent launch, remembered for :func:`barrier_timeouts`."""
    err = x.new_zeros(1, dtype=torch.int32)
    _STATE["errs"] = (_STATE.get("errs") or [])[-7:] + [err]
    return err


def barrier_timeouts() -> int:
    """How many of the last (up to 8) persistent launches had a program give up waiting at a
    barrier (its peers were not resident; its outputs are NaN). Synchronises with the device."""
    return sum(int(e.item()) for e in _STATE.get("errs") or [])


def last_mode() -> str | None:
    """How the last forward recurrence ran: "persistent" (one launch) or "steps" (one per step)."""
    return _STATE["last_mode"]


def supports_ln(x: Tensor, B: int, H: int, D: int) -> bool:
    """The LayerNorm LSTM kernels (persistent only) take this recurrence: both grids fit and
    H / BH, the programs of a row tile, is a power of two (their exchange is one tile)."""
    if triton is None:
        return False
    grids = [persistent_grid(x, B, H, D, w) for w in ("pfw", "pbw")]
    return all(g is not None and g[0] & (g[0] - 1) == 0 for g in grids)


def persistent_grid(x: Tensor, B: int, H: int, D: int, which: str = "pfw") -> tuple[int, int, int] | None:
    """The persistent kernels' grid (unit blocks, row tiles, directions) for B rows, H units, D
    directions on x's device, or None where it does not apply: switched off, tiles that do not
    divide H, or a row tile with more programs than can run at once (its programs wait for each
    other at every step: at most one per SM on CUDA; under the interpreter, which runs programs
    one after another, one: BH = H). A grid larger than the device runs in waves of whole row
    tiles: a row tile's programs are consecutive in launch order, and CUDA starts blocks in that
    order as SMs free up (the usual behaviour, not a documented guarantee: a row tile left
    waiting for an SM gives up after its bounded wait and writes NaN, see :func:`barrier_timeouts`)."""
    if not _STATE["persistent"] or which not in ("pfw", "pbw"):
        return None
    BB, BH, BK = _BLOCKS[which]
    if H % BH or (H if which == "pfw" else 4 * H) % BK:
        return None
    grid = (H // BH, triton.cdiv(B, BB), D)
    if _use_interpreter(x):
        return grid if grid[0] == 1 else None
    if not x.is_cuda:
        return None
    return grid if grid[0] <= torch.cuda.get_device_properties(x.device).multi_processor_count else None


def _tiles_from_env() -> None:
    """``SKETCHRNN_TRITON_TILES="32,16,32:32,16,64[:8]"`` (forward tiles : backward tiles [: warps])
    sets them at import (what benchmarks/gpu_session.sh picks from the tile benchmark);
    ``SKETCHRNN_TRITON_PTILES`` the same for the persistent kernels, ``SKETCHRNN_TRITON_HTILES``
    for the HyperLSTM ones (their warps are the persistent kernels' setting)."""
    for var, names in (("SKETCHRNN_TRITON_TILES", ("fw", "bw", "warps")),
                       ("SKETCHRNN_TRITON_PTILES", ("pfw", "pbw", "pwarps")),
                       ("SKETCHRNN_TRITON_HTILES", ("hfw", "hbw", "pwarps"))):
        spec = os.environ.get(var, "").strip()
        if not spec:
            continue
        try:
            parts = spec.split(":")
            if len(parts) not in (2, 3):
                raise ValueError("two or three ':'-separated parts")
            fw, bw = (tuple(int(v) for v in part.split(",")) for part in parts[:2])
            set_blocks(**{names[0]: fw, names[1]: bw,  # type: ignore[arg-type]
                          names[2]: int(parts[2]) if len(parts) == 3 else None})
        except ValueError as e:
            raise ValueError(f"{var}={spec!r}: expected 'BB,BH,BK:BB,BH,BK[:WARPS]' ({e})") from None


def supports_size(H: int) -> bool:
    """The kernels tile the hidden units and the reductions exactly: H a multiple of every
    block size used (16 at least; the defaults need 64 for the backward's 4H reduction)."""
    bh = max(_BLOCKS["fw"][1], _BLOCKS["bw"][1])
    return H % bh == 0 and H % _BLOCKS["fw"][2] == 0 and (4 * H) % _BLOCKS["bw"][2] == 0


# ----------------------------------------------------------------------------- kernels
# Plain Python functions, wrapped by triton.jit (GPU) or the interpreter on first use.
def _lstm_fw_step(xp_ptr, w_ptr, hp_ptr, cp_ptr, m_ptr, a_ptr, c_ptr, h_ptr,
                  B, forget_bias, s_x, s_h, s_m, s_a, H: tl.constexpr,
                  HAS_MASK: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr,
                  PREC: tl.constexpr):
    # one step for rows b in [pb*BB, +BB), units j in [pj*BH, +BH), direction d; s_*: the
    # direction strides of xp / h-and-c / mask / acts (rows within a direction are contiguous)
    pb = tl.program_id(0)
    pj = tl.program_id(1)
    d = tl.program_id(2)
    G = 4 * H
    rb = pb * BB + tl.arange(0, BB)
    rj = pj * BH + tl.arange(0, BH)
    rk = tl.arange(0, BK)
    bm = rb[:, None] < B
    hp = hp_ptr + d * s_h + rb[:, None] * H  # (BB, 1) row starts of h_{t-1}
    wp = w_ptr + d * H * G + rj[None, :]  # (1, BH) column starts of W_hh's i block
    acc_i = tl.full((BB, BH), 0.0, tl.float32)
    acc_j = tl.full((BB, BH), 0.0, tl.float32)
    acc_f = tl.full((BB, BH), 0.0, tl.float32)
    acc_o = tl.full((BB, BH), 0.0, tl.float32)
    if PREC == "f64":
        acc_i = acc_i.to(tl.float64)
        acc_j = acc_j.to(tl.float64)
        acc_f = acc_f.to(tl.float64)
        acc_o = acc_o.to(tl.float64)
    for k0 in range(0, H, BK):
        hk = tl.load(hp + (k0 + rk)[None, :], mask=bm, other=0.0)  # (BB, BK)
        wk = wp + (k0 + rk)[:, None] * G  # (BK, BH)
        if PREC == "tf32":
            acc_i += tl.dot(hk, tl.load(wk), input_precision="tf32")
            acc_j += tl.dot(hk, tl.load(wk + H), input_precision="tf32")
            acc_f += tl.dot(hk, tl.load(wk + 2 * H), input_precision="tf32")
            acc_o += tl.dot(hk, tl.load(wk + 3 * H), input_precision="tf32")
        elif PREC == "tf32x3":
            acc_i += tl.dot(hk, tl.load(wk), input_precision="tf32x3")
            acc_j += tl.dot(hk, tl.load(wk + H), input_precision="tf32x3")
            acc_f += tl.dot(hk, tl.load(wk + 2 * H), input_precision="tf32x3")
            acc_o += tl.dot(hk, tl.load(wk + 3 * H), input_precision="tf32x3")
        else:
            acc_i += tl.dot(hk, tl.load(wk), input_precision="ieee")
            acc_j += tl.dot(hk, tl.load(wk + H), input_precision="ieee")
            acc_f += tl.dot(hk, tl.load(wk + 2 * H), input_precision="ieee")
            acc_o += tl.dot(hk, tl.load(wk + 3 * H), input_precision="ieee")
    xr = xp_ptr + d * s_x + rb[:, None] * G + rj[None, :]
    si = 1.0 / (1.0 + tl.exp(-(acc_i + tl.load(xr, mask=bm, other=0.0))))
    pj_ = acc_j + tl.load(xr + H, mask=bm, other=0.0)
    ej = tl.exp(-2.0 * tl.abs(pj_))
    tj = (1.0 - ej) / (1.0 + ej)
    tj = tl.where(pj_ < 0, -tj, tj)  # tanh
    sf = 1.0 / (1.0 + tl.exp(-(acc_f + tl.load(xr + 2 * H, mask=bm, other=0.0) + forget_bias)))
    so = 1.0 / (1.0 + tl.exp(-(acc_o + tl.load(xr + 3 * H, mask=bm, other=0.0))))
    sr = d * s_h + rb[:, None] * H + rj[None, :]
    g = tj
    if HAS_MASK:
        g = tj * tl.load(m_ptr + d * s_m + rb[:, None] * H + rj[None, :], mask=bm, other=0.0)
    c = tl.load(cp_ptr + sr, mask=bm, other=0.0) * sf + si * g
    ec = tl.exp(-2.0 * tl.abs(c))
    tc = (1.0 - ec) / (1.0 + ec)
    tc = tl.where(c < 0, -tc, tc)
    ar = a_ptr + d * s_a + rb[:, None] * G + rj[None, :]
    tl.store(ar, si, mask=bm)
    tl.store(ar + H, tj, mask=bm)
    tl.store(ar + 2 * H, sf, mask=bm)
    tl.store(ar + 3 * H, so, mask=bm)
    tl.store(c_ptr + sr, c, mask=bm)
    tl.store(h_ptr + sr, tc * so, mask=bm)


def _lstm_bw_step(gn_ptr, wt_ptr, dh_ptr, a_ptr, c_ptr, cp_ptr, m_ptr, dc_ptr, g_ptr,
                  B, s_g, s_h, s_dh, s_m, s_a, H: tl.constexpr,
                  HAS_NEXT: tl.constexpr, HAS_MASK: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr,
                  BK: tl.constexpr, PREC: tl.constexpr):
    # the step's pre-activation gradients g_t for rows b, units j, direction d, from the
    # outside gradient dh_ptr (this step's output h), the step after's g_{t+1} (gn_ptr;
    # HAS_NEXT), W_hh^T (wt_ptr: (D, 4H, H)), the saved activations and c_t, c_{t-1}; dc_ptr
    # holds d c_t on entry and d c_{t-1} on exit (each program owns its (b, j) entries)
    pb = tl.program_id(0)
    pj = tl.program_id(1)
    d = tl.program_id(2)
    G = 4 * H
    rb = pb * BB + tl.arange(0, BB)
    rj = pj * BH + tl.arange(0, BH)
    rk = tl.arange(0, BK)
    bm = rb[:, None] < B
    sr = rb[:, None] * H + rj[None, :]
    dh = tl.load(dh_ptr + d * s_dh + sr, mask=bm, other=0.0)
    if HAS_NEXT:
        acc = tl.full((BB, BH), 0.0, tl.float32)
        if PREC == "f64":
            acc = acc.to(tl.float64)
        gp = gn_ptr + d * s_g + rb[:, None] * G  # (BB, 1)
        wp = wt_ptr + d * G * H + rj[None, :]  # (1, BH)
        for n0 in range(0, 4 * H, BK):
            gk = tl.load(gp + (n0 + rk)[None, :], mask=bm, other=0.0)  # (BB, BK)
            wk = tl.load(wp + (n0 + rk)[:, None] * H)  # (BK, BH) = W_hh[j, n]^T
            if PREC == "tf32":
                acc += tl.dot(gk, wk, input_precision="tf32")
            elif PREC == "tf32x3":
                acc += tl.dot(gk, wk, input_precision="tf32x3")
            else:
                acc += tl.dot(gk, wk, input_precision="ieee")
        dh = dh + acc
    ar = a_ptr + d * s_a + rb[:, None] * G + rj[None, :]
    si = tl.load(ar, mask=bm, other=0.0)
    tj = tl.load(ar + H, mask=bm, other=0.0)
    sf = tl.load(ar + 2 * H, mask=bm, other=0.0)
    so = tl.load(ar + 3 * H, mask=bm, other=0.0)
    c = tl.load(c_ptr + d * s_h + sr, mask=bm, other=0.0)
    cp = tl.load(cp_ptr + d * s_h + sr, mask=bm, other=0.0)
    ec = tl.exp(-2.0 * tl.abs(c))
    tc = (1.0 - ec) / (1.0 + ec)
    tc = tl.where(c < 0, -tc, tc)
    dcp = dc_ptr + d * s_dh + sr  # dc (D, B, H), contiguous like dh
    dc = tl.load(dcp, mask=bm, other=0.0) + dh * so * (1.0 - tc * tc)
    g = tj
    dj = dc * si
    if HAS_MASK:
        m = tl.load(m_ptr + d * s_m + sr, mask=bm, other=0.0)
        g = tj * m
        dj = dj * m
    gr = g_ptr + d * s_a + rb[:, None] * G + rj[None, :]
    tl.store(gr, dc * g * si * (1.0 - si), mask=bm)  # d i
    tl.store(gr + H, dj * (1.0 - tj * tj), mask=bm)  # d j
    tl.store(gr + 2 * H, dc * cp * sf * (1.0 - sf), mask=bm)  # d f
    tl.store(gr + 3 * H, dh * tc * so * (1.0 - so), mask=bm)  # d o
    tl.store(dcp, dc * sf, mask=bm)


def _row_tile_barrier_py(cnt, target, limit):
    # one row tile's barrier: every thread's stores done (CTA barrier), one release add on the
    # tile's counter, acquire reads until it reaches target (all programs of the tile arrived
    # this many times) or `limit` reads (then: True, the caller gives up), CTA barrier
    tl.debug_barrier()
    tl.atomic_add(cnt, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(cnt, 0, sem="acquire", scope="gpu")
    spins = 0
    while (seen < target) & (spins < limit):
        seen = tl.atomic_add(cnt, 0, sem="acquire", scope="gpu")
        spins += 1
    tl.debug_barrier()
    return seen < target


# Small helpers of the persistent LayerNorm kernels (and of .triton_hyper's), inlined by the
# compiler: products at the kernel's precision, the gate nonlinearities, and a norm's parts
# exchanged between the programs of a row tile.
def _dot_py(a, b, PREC: tl.constexpr):
    if PREC == "tf32":
        return tl.dot(a, b, input_precision="tf32")
    elif PREC == "tf32x3":
        return tl.dot(a, b, input_precision="tf32x3")
    else:
        return tl.dot(a, b, input_precision="ieee")


def _sig_py(x):
    return 1.0 / (1.0 + tl.exp(-x))


def _tanh_py(x):  # written out: see the module docstring
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)


def _put_stats_py(p, x, N: tl.constexpr):
    # this program's (mean, M2) of each row of x (BB, N) into exchange slots p, p + 1
    m = tl.reduce(x, 1, _SUM) / N
    tl.store(p, m)
    tl.store(p + 1, tl.reduce((x - m[:, None]) * (x - m[:, None]), 1, _SUM))


def _get_stats_py(p, NJ: tl.constexpr, NB: tl.constexpr, N: tl.constexpr, eps):
    # whole-row mean and 1 / std from the NJ programs' parts (slots p, p + 1 of each, (NJ, BB)),
    # NB values each, N in all: mean of the means; M2 = sum M2_p + NB sum (m_p - mean)^2 (Chan et al.)
    pm = tl.load(p, cache_modifier=".cg")
    mean = tl.reduce(pm, 0, _SUM) / NJ
    m2 = tl.reduce(tl.load(p + 1, cache_modifier=".cg"), 0, _SUM) \
        + NB * tl.reduce((pm - mean[None, :]) * (pm - mean[None, :]), 0, _SUM)
    return mean, 1.0 / tl.sqrt(m2 / N + eps)


def _put_sums_py(p, a, b):
    # this program's row sums of a and b into exchange slots p, p + 1
    tl.store(p, tl.reduce(a, 1, _SUM))
    tl.store(p + 1, tl.reduce(b, 1, _SUM))


def _get_sums_py(p, N: tl.constexpr):
    # the whole rows' sums of both slots over the NJ programs, divided by N
    return (tl.reduce(tl.load(p, cache_modifier=".cg"), 0, _SUM) / N,
            tl.reduce(tl.load(p + 1, cache_modifier=".cg"), 0, _SUM) / N)


def _acc_py(p, v):
    tl.store(p, tl.load(p) + v)


# The kernels call these as jit functions; the interpreter runs kernels that call them as
# interpreted ones (a jit function cannot be called from an interpreted kernel): _kernels binds
# each kernel to the helpers of its mode (:func:`interpreted`).
HELPERS_PY = {"_row_tile_barrier": _row_tile_barrier_py, "_dot": _dot_py, "_sig": _sig_py, "_tanh": _tanh_py,
              "_put_stats": _put_stats_py, "_get_stats": _get_stats_py, "_put_sums": _put_sums_py,
              "_get_sums": _get_sums_py, "_acc": _acc_py}
if triton is not None:
    _row_tile_barrier, _dot, _sig, _tanh = (triton.jit(f) for f in (_row_tile_barrier_py, _dot_py, _sig_py, _tanh_py))
    _put_stats, _get_stats, _put_sums, _get_sums, _acc = (
        triton.jit(f) for f in (_put_stats_py, _get_stats_py, _put_sums_py, _get_sums_py, _acc_py))
else:  # pragma: no cover - without triton nothing is launched
    _row_tile_barrier = _dot = _sig = _tanh = _put_stats = _get_stats = _put_sums = _get_sums = _acc = None


def interpreted(fns: list[Any], helpers: dict[str, Any]) -> list[Any]:
    """Interpreted copies of kernels ``fns`` sharing ONE globals dict in which every helper name
    is an interpreted copy too (helpers call helpers): the kernels' module globals, this
    module's, then the helpers."""
    from triton.runtime.interpreter import InterpretedFunction

    g = {**globals(), **fns[0].__globals__}

    def bind(fn: Any) -> Any:
        return InterpretedFunction(types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__))

    g.update({name: bind(fn) for name, fn in helpers.items()})
    return [bind(fn) for fn in fns]


# Persistent variants: ALL T steps in one launch. The programs of a row tile (NP = H / BH of
# them: the unit blocks of the same rows and direction, consecutive in launch order; they must be
# resident together: the launcher checks NP against the SM count) meet at a barrier after each
# step, because step t + 1 of rows b needs every unit of h_t[b] (forward) or all 4H
# pre-activation gradients g_t[b] (backward), and nothing of other rows. What this saves over one
# launch per step: the launch gaps and the tail of each step's grid (whether W_hh's columns also
# stay in L1 across steps is for the GPU to show: the barrier's gpu-scope acquire may well
# invalidate L1). Values other programs wrote are read after the barrier: h and g at addresses
# this SM has not read before, the exchange buffer past L1 (``.cg``). The barrier: every thread's
# stores, CTA barrier, one release add on the row tile's counter, acquire reads until all NP
# programs of the step arrived, CTA barrier (the pattern of CUDA's cooperative grid sync). The
# wait is bounded (MAX_SPIN reads, seconds, once per program): a program that gives up (its peers
# were not resident) sets err_ptr, waits no more and writes NaN from then on, so a failure shows
# as a non-finite loss, never as a hang or silently wrong numbers. The step math is the step
# kernels' above, line for line.
def _lstm_fw_seq(xp_ptr, w_ptr, hs_ptr, cs_ptr, m_ptr, a_ptr, cnt_ptr, err_ptr,
                 T, B, forget_bias, s_xt, s_hd, s_mt, s_ad, s_at, NP, MAX_SPIN, H: tl.constexpr,
                 HAS_MASK: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr,
                 PREC: tl.constexpr):
    # xp (T, D, B, 4H): step t, direction d at t * s_xt + d * B * 4H; hs / cs (D, T + 1, B, H):
    # d * s_hd + t * B * H; masks (T, D, B, H): t * s_mt + d * B * H; acts (D, T or 1, B, 4H):
    # d * s_ad + t * s_at (s_at = 0: one step's scratch)
    pj = tl.program_id(0)  # a row tile's unit blocks: consecutive programs
    pb = tl.program_id(1)
    d = tl.program_id(2)
    G = 4 * H
    rb = pb * BB + tl.arange(0, BB)
    rj = pj * BH + tl.arange(0, BH)
    rk = tl.arange(0, BK)
    bm = rb[:, None] < B
    sr = rb[:, None] * H + rj[None, :]  # (BB, BH) this program's entries of a (B, H) state
    wp = w_ptr + d * H * G + rj[None, :]  # (1, BH) column starts of W_hh's i block
    c = tl.load(cs_ptr + d * s_hd + sr, mask=bm, other=0.0)  # c_0; c_t stays in registers
    poison = tl.load(err_ptr).to(c.dtype) * 0.0  # 0 (NaN once this program gave up waiting)
    limit = MAX_SPIN + 0 * pb  # reads per barrier (0 once given up)
    grp = d * tl.num_programs(1) + pb  # this row tile's barrier counter
    for t in range(0, T):
        hp = hs_ptr + d * s_hd + t * B * H + rb[:, None] * H  # (BB, 1) row starts of h_{t-1}
        acc_i = tl.full((BB, BH), 0.0, tl.float32)
        acc_j = tl.full((BB, BH), 0.0, tl.float32)
        acc_f = tl.full((BB, BH), 0.0, tl.float32)
        acc_o = tl.full((BB, BH), 0.0, tl.float32)
        if PREC == "f64":
            acc_i = acc_i.to(tl.float64)
            acc_j = acc_j.to(tl.float64)
            acc_f = acc_f.to(tl.float64)
            acc_o = acc_o.to(tl.float64)
        for k0 in range(0, H, BK):
            hk = tl.load(hp + (k0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")  # (BB, BK)
            wk = wp + (k0 + rk)[:, None] * G  # (BK, BH)
            if PREC == "tf32":
                acc_i += tl.dot(hk, tl.load(wk), input_precision="tf32")
                acc_j += tl.dot(hk, tl.load(wk + H), input_precision="tf32")
                acc_f += tl.dot(hk, tl.load(wk + 2 * H), input_precision="tf32")
                acc_o += tl.dot(hk, tl.load(wk + 3 * H), input_precision="tf32")
            elif PREC == "tf32x3":
                acc_i += tl.dot(hk, tl.load(wk), input_precision="tf32x3")
                acc_j += tl.dot(hk, tl.load(wk + H), input_precision="tf32x3")
                acc_f += tl.dot(hk, tl.load(wk + 2 * H), input_precision="tf32x3")
                acc_o += tl.dot(hk, tl.load(wk + 3 * H), input_precision="tf32x3")
            else:
                acc_i += tl.dot(hk, tl.load(wk), input_precision="ieee")
                acc_j += tl.dot(hk, tl.load(wk + H), input_precision="ieee")
                acc_f += tl.dot(hk, tl.load(wk + 2 * H), input_precision="ieee")
                acc_o += tl.dot(hk, tl.load(wk + 3 * H), input_precision="ieee")
        xr = xp_ptr + t * s_xt + d * B * G + rb[:, None] * G + rj[None, :]
        si = 1.0 / (1.0 + tl.exp(-(acc_i + tl.load(xr, mask=bm, other=0.0))))
        pj_ = acc_j + tl.load(xr + H, mask=bm, other=0.0)
        ej = tl.exp(-2.0 * tl.abs(pj_))
        tj = (1.0 - ej) / (1.0 + ej)
        tj = tl.where(pj_ < 0, -tj, tj)  # tanh
        sf = 1.0 / (1.0 + tl.exp(-(acc_f + tl.load(xr + 2 * H, mask=bm, other=0.0) + forget_bias)))
        so = 1.0 / (1.0 + tl.exp(-(acc_o + tl.load(xr + 3 * H, mask=bm, other=0.0))))
        g = tj
        if HAS_MASK:
            g = tj * tl.load(m_ptr + t * s_mt + d * B * H + sr, mask=bm, other=0.0)
        c = c * sf + si * g
        ec = tl.exp(-2.0 * tl.abs(c))
        tc = (1.0 - ec) / (1.0 + ec)
        tc = tl.where(c < 0, -tc, tc)
        ar = a_ptr + d * s_ad + t * s_at + rb[:, None] * G + rj[None, :]
        tl.store(ar, si, mask=bm)
        tl.store(ar + H, tj, mask=bm)
        tl.store(ar + 2 * H, sf, mask=bm)
        tl.store(ar + 3 * H, so, mask=bm)
        so_ = d * s_hd + (t + 1) * B * H + sr
        tl.store(cs_ptr + so_, c + poison, mask=bm)
        tl.store(hs_ptr + so_, tc * so + poison, mask=bm)
        if t + 1 < T:  # row-tile barrier: h_t[rows] complete before anyone reads it
            if _row_tile_barrier(cnt_ptr + grp, (t + 1) * NP, limit):  # gave up: for good
                tl.atomic_max(err_ptr, 1)
                poison = poison + float("nan")
                limit = 0


def _lstm_bw_seq(g_ptr, wt_ptr, dhs_ptr, dl_ptr, a_ptr, cs_ptr, m_ptr, dc_ptr, cnt_ptr, err_ptr,
                 T, B, s_gd, s_hd, s_dt, s_mt, NP, MAX_SPIN, H: tl.constexpr, HAS_MASK: tl.constexpr,
                 BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
    # every step's pre-activation gradients g (D, T, B, 4H) (d * s_gd + t * B * 4H; the saved
    # activations a_ptr likewise), from the outside gradients dhs (T, D, B, H) (t * s_dt +
    # d * B * H) plus dl (D, B, H) at the last step, W_hh^T (D, 4H, H), cs (D, T + 1, B, H);
    # dc_ptr (D, B, H): d c_T on entry, d c_0 on exit (carried in registers in between)
    pj = tl.program_id(0)  # a row tile's unit blocks: consecutive programs
    pb = tl.program_id(1)
    d = tl.program_id(2)
    G = 4 * H
    rb = pb * BB + tl.arange(0, BB)
    rj = pj * BH + tl.arange(0, BH)
    rk = tl.arange(0, BK)
    bm = rb[:, None] < B
    sr = rb[:, None] * H + rj[None, :]
    wp = wt_ptr + d * G * H + rj[None, :]  # (1, BH)
    dc = tl.load(dc_ptr + d * B * H + sr, mask=bm, other=0.0)
    poison = tl.load(err_ptr).to(dc.dtype) * 0.0
    limit = MAX_SPIN + 0 * pb
    grp = d * tl.num_programs(1) + pb
    for s in range(0, T):
        t = T - 1 - s
        dh = tl.load(dhs_ptr + t * s_dt + d * B * H + sr, mask=bm, other=0.0)
        if s == 0:
            dh = dh + tl.load(dl_ptr + d * B * H + sr, mask=bm, other=0.0)
        else:  # + g_{t+1} @ W_hh^T for this program's units: all 4H of g_{t+1}, from every program
            acc = tl.full((BB, BH), 0.0, tl.float32)
            if PREC == "f64":
                acc = acc.to(tl.float64)
            gp = g_ptr + d * s_gd + (t + 1) * B * G + rb[:, None] * G  # (BB, 1)
            for n0 in range(0, 4 * H, BK):
                gk = tl.load(gp + (n0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")  # (BB, BK)
                wk = tl.load(wp + (n0 + rk)[:, None] * H)  # (BK, BH) = W_hh[j, n]^T
                if PREC == "tf32":
                    acc += tl.dot(gk, wk, input_precision="tf32")
                elif PREC == "tf32x3":
                    acc += tl.dot(gk, wk, input_precision="tf32x3")
                else:
                    acc += tl.dot(gk, wk, input_precision="ieee")
            dh = dh + acc
        ar = a_ptr + d * s_gd + t * B * G + rb[:, None] * G + rj[None, :]
        si = tl.load(ar, mask=bm, other=0.0)
        tj = tl.load(ar + H, mask=bm, other=0.0)
        sf = tl.load(ar + 2 * H, mask=bm, other=0.0)
        so = tl.load(ar + 3 * H, mask=bm, other=0.0)
        c = tl.load(cs_ptr + d * s_hd + (t + 1) * B * H + sr, mask=bm, other=0.0)
        cp = tl.load(cs_ptr + d * s_hd + t * B * H + sr, mask=bm, other=0.0)
        ec = tl.exp(-2.0 * tl.abs(c))
        tc = (1.0 - ec) / (1.0 + ec)
        tc = tl.where(c < 0, -tc, tc)
        dc = dc + dh * so * (1.0 - tc * tc)
        g = tj
        dj = dc * si
        if HAS_MASK:
            m = tl.load(m_ptr + t * s_mt + d * B * H + sr, mask=bm, other=0.0)
            g = tj * m
            dj = dj * m
        gr = g_ptr + d * s_gd + t * B * G + rb[:, None] * G + rj[None, :]
        tl.store(gr, dc * g * si * (1.0 - si) + poison, mask=bm)  # d i
        tl.store(gr + H, dj * (1.0 - tj * tj) + poison, mask=bm)  # d j
        tl.store(gr + 2 * H, dc * cp * sf * (1.0 - sf) + poison, mask=bm)  # d f
        tl.store(gr + 3 * H, dh * tc * so * (1.0 - so) + poison, mask=bm)  # d o
        dc = dc * sf
        if s + 1 < T:  # row-tile barrier: g_t[rows] complete before anyone reads it
            if _row_tile_barrier(cnt_ptr + grp, (s + 1) * NP, limit):  # gave up: for good
                tl.atomic_max(err_ptr, 1)
                poison = poison + float("nan")
                limit = 0
    tl.store(dc_ptr + d * B * H + sr, dc + poison, mask=bm)


# LayerNorm LSTM (Magenta LayerNormLSTMCell), persistent only: per step and row, a norm over each
# gate block's H pre-activations and one over c_t, i.e. over units that other programs of the
# row tile hold. Each program puts its (mean, M2) over its BH units into an exchange buffer
# (D, row tiles, NJ, BB, 10 slots: 4 gates x 2, then c x 2), the row tile meets at a barrier,
# and every program combines the NJ parts exactly (Chan et al.: equal counts BH). Three
# barriers per step each way (gate stats, c stats, h / g). One buffer suffices: a slot is
# written again only after a later barrier that every reader of its last value has passed.
def _lnlstm_fw_seq(xp_ptr, w_ptr, gam_ptr, bet_ptr, gamc_ptr, betc_ptr, hs_ptr, cs_ptr, m_ptr, a_ptr, xh_ptr,
                   ch_ptr, rs_ptr, rsc_ptr, st_ptr, cnt_ptr, err_ptr, T, B, forget_bias, eps, s_xt, s_hd, s_mt,
                   s_ad, s_at, s_cd, s_ct, MAX_SPIN, H: tl.constexpr, NJ: tl.constexpr, HAS_MASK: tl.constexpr,
                   BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
    # xp, hs / cs, masks as _lstm_fw_seq; saved per step (slot t * s_at, or one slot): acts and
    # xh (D, ., B, 4H) [s(i), tanh(j), s(f + bias), s(o)] and the normalised pre-activations, ch
    # (D, ., B, H) normalised c; rs (D, ., B, 4) and rsc (D, ., B) the 1 / std (s_cd, s_ct: the
    # direction / step strides of ch, rs / 4 and rsc); gains / shifts gam, bet (D, 4H), gamc, betc (D, H)
    pj = tl.program_id(0)  # a row tile's unit blocks: consecutive programs
    pb = tl.program_id(1)
    d = tl.program_id(2)
    G = 4 * H
    rl = tl.arange(0, BB)  # rows within the tile
    rb = pb * BB + rl
    rj = pj * BH + tl.arange(0, BH)
    rk = tl.arange(0, BK)
    bm = rb[:, None] < B
    sr = rb[:, None] * H + rj[None, :]
    wp = w_ptr + d * H * G + rj[None, :]
    grp = d * tl.num_programs(1) + pb
    sx = st_ptr + grp * NJ * BB * 10  # this row tile's exchange buffer
    sx_mine = sx + pj * BB * 10 + rl * 10  # (BB,) this program's rows
    sx_all = sx + tl.arange(0, NJ)[:, None] * BB * 10 + rl[None, :] * 10  # (NJ, BB) every program's
    c = tl.load(cs_ptr + d * s_hd + sr, mask=bm, other=0.0)
    poison = tl.load(err_ptr).to(c.dtype) * 0.0
    limit = MAX_SPIN + 0 * pb
    phase = 0  # barriers passed
    gi = tl.load(gam_ptr + d * G + rj)[None, :]
    gj = tl.load(gam_ptr + d * G + H + rj)[None, :]
    gf = tl.load(gam_ptr + d * G + 2 * H + rj)[None, :]
    go = tl.load(gam_ptr + d * G + 3 * H + rj)[None, :]
    bi = tl.load(bet_ptr + d * G + rj)[None, :]
    bj = tl.load(bet_ptr + d * G + H + rj)[None, :]
    bf = tl.load(bet_ptr + d * G + 2 * H + rj)[None, :]
    bo = tl.load(bet_ptr + d * G + 3 * H + rj)[None, :]
    gc = tl.load(gamc_ptr + d * H + rj)[None, :]
    bc = tl.load(betc_ptr + d * H + rj)[None, :]
    for t in range(0, T):
        hp = hs_ptr + d * s_hd + t * B * H + rb[:, None] * H
        acc_i = tl.full((BB, BH), 0.0, c.dtype)
        acc_j = tl.full((BB, BH), 0.0, c.dtype)
        acc_f = tl.full((BB, BH), 0.0, c.dtype)
        acc_o = tl.full((BB, BH), 0.0, c.dtype)
        for k0 in range(0, H, BK):
            hk = tl.load(hp + (k0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")
            wk = wp + (k0 + rk)[:, None] * G
            acc_i += _dot(hk, tl.load(wk), PREC)
            acc_j += _dot(hk, tl.load(wk + H), PREC)
            acc_f += _dot(hk, tl.load(wk + 2 * H), PREC)
            acc_o += _dot(hk, tl.load(wk + 3 * H), PREC)
        xr = xp_ptr + t * s_xt + d * B * G + rb[:, None] * G + rj[None, :]
        acc_i += tl.load(xr, mask=bm, other=0.0)
        acc_j += tl.load(xr + H, mask=bm, other=0.0)
        acc_f += tl.load(xr + 2 * H, mask=bm, other=0.0)
        acc_o += tl.load(xr + 3 * H, mask=bm, other=0.0)
        # this program's part of each gate block's row statistics
        _put_stats(sx_mine, acc_i, BH)
        _put_stats(sx_mine + 2, acc_j, BH)
        _put_stats(sx_mine + 4, acc_f, BH)
        _put_stats(sx_mine + 6, acc_o, BH)
        # ---- barrier 1: the gate statistics of the row tile
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        # whole-row mean and 1 / std per gate block from the NJ programs' parts
        mean, r_i = _get_stats(sx_all, NJ, BH, H, eps)
        xi = (acc_i - mean[:, None]) * r_i[:, None]
        mean, r_j = _get_stats(sx_all + 2, NJ, BH, H, eps)
        xj = (acc_j - mean[:, None]) * r_j[:, None]
        mean, r_f = _get_stats(sx_all + 4, NJ, BH, H, eps)
        xf = (acc_f - mean[:, None]) * r_f[:, None]
        mean, r_o = _get_stats(sx_all + 6, NJ, BH, H, eps)
        xo = (acc_o - mean[:, None]) * r_o[:, None]
        si = _sig(xi * gi + bi)
        tj = _tanh(xj * gj + bj)
        sf = _sig(xf * gf + bf + forget_bias)
        so = _sig(xo * go + bo)
        g = tj
        if HAS_MASK:
            g = tj * tl.load(m_ptr + t * s_mt + d * B * H + sr, mask=bm, other=0.0)
        c = c * sf + si * g
        _put_stats(sx_mine + 8, c, BH)
        # ---- barrier 2: the row tile's c statistics
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        mean, r_c = _get_stats(sx_all + 8, NJ, BH, H, eps)
        chat = (c - mean[:, None]) * r_c[:, None]
        tc = _tanh(chat * gc + bc)
        ar = d * s_ad + t * s_at + rb[:, None] * G + rj[None, :]
        tl.store(a_ptr + ar, si, mask=bm)
        tl.store(a_ptr + ar + H, tj, mask=bm)
        tl.store(a_ptr + ar + 2 * H, sf, mask=bm)
        tl.store(a_ptr + ar + 3 * H, so, mask=bm)
        tl.store(xh_ptr + ar, xi, mask=bm)
        tl.store(xh_ptr + ar + H, xj, mask=bm)
        tl.store(xh_ptr + ar + 2 * H, xf, mask=bm)
        tl.store(xh_ptr + ar + 3 * H, xo, mask=bm)
        tl.store(ch_ptr + d * s_cd + t * s_ct + sr, chat, mask=bm)
        if pj == 0:  # the row statistics, once per row
            rr = d * s_cd // H + t * s_ct // H + rb  # (BB,) rows of rsc (D, ., B); rs the same x 4
            rmask = rb < B
            tl.store(rs_ptr + rr * 4, r_i, mask=rmask)
            tl.store(rs_ptr + rr * 4 + 1, r_j, mask=rmask)
            tl.store(rs_ptr + rr * 4 + 2, r_f, mask=rmask)
            tl.store(rs_ptr + rr * 4 + 3, r_o, mask=rmask)
            tl.store(rsc_ptr + rr, r_c, mask=rmask)
        so_ = d * s_hd + (t + 1) * B * H + sr
        tl.store(cs_ptr + so_, c + poison, mask=bm)
        tl.store(hs_ptr + so_, tc * so + poison, mask=bm)
        if t + 1 < T:  # ---- barrier 3: h_t[rows] complete before anyone reads it
            phase += 1
            if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
                tl.atomic_max(err_ptr, 1)
                poison = poison + float("nan")
                limit = 0


def _lnlstm_bw_seq(g_ptr, wt_ptr, dhs_ptr, dl_ptr, a_ptr, xh_ptr, ch_ptr, rs_ptr, rsc_ptr, cs_ptr, m_ptr, gam_ptr,
                   gamc_ptr, betc_ptr, dc_ptr, dgam_ptr, dbet_ptr, dgamc_ptr, dbetc_ptr, st_ptr, cnt_ptr, err_ptr,
                   T, B, s_gd, s_hd, s_dt, s_mt, s_cd, MAX_SPIN, H: tl.constexpr, NJ: tl.constexpr,
                   HAS_MASK: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
    # pre-activation gradients g (D, T, B, 4H) of every step and, summed over steps and rows, the
    # gains' and shifts' gradients (added atomically: each row tile adds its part), from the
    # forward's saved acts / xh (D, T, B, 4H), ch (D, T, B, H), rs (D, T, B, 4), rsc (D, T, B),
    # cs (D, T + 1, B, H); dhs, dl, dc, W_hh^T as _lstm_bw_seq. Per step and row: the norm of c
    # backward (two sums over H), the gate math backward, the gate blocks' norm backward (two
    # sums per block): the same exchange as the forward, three barriers per step.
    pj = tl.program_id(0)  # a row tile's unit blocks: consecutive programs
    pb = tl.program_id(1)
    d = tl.program_id(2)
    G = 4 * H
    rl = tl.arange(0, BB)
    rb = pb * BB + rl
    rj = pj * BH + tl.arange(0, BH)
    rk = tl.arange(0, BK)
    bm = rb[:, None] < B
    rmask = rb < B
    sr = rb[:, None] * H + rj[None, :]
    wp = wt_ptr + d * G * H + rj[None, :]
    grp = d * tl.num_programs(1) + pb
    sx = st_ptr + grp * NJ * BB * 10
    sx_mine = sx + pj * BB * 10 + rl * 10
    sx_all = sx + tl.arange(0, NJ)[:, None] * BB * 10 + rl[None, :] * 10
    dc = tl.load(dc_ptr + d * B * H + sr, mask=bm, other=0.0)
    poison = tl.load(err_ptr).to(dc.dtype) * 0.0
    limit = MAX_SPIN + 0 * pb
    phase = 0
    gi = tl.load(gam_ptr + d * G + rj)[None, :]
    gj = tl.load(gam_ptr + d * G + H + rj)[None, :]
    gf = tl.load(gam_ptr + d * G + 2 * H + rj)[None, :]
    go = tl.load(gam_ptr + d * G + 3 * H + rj)[None, :]
    gc = tl.load(gamc_ptr + d * H + rj)[None, :]
    bc = tl.load(betc_ptr + d * H + rj)[None, :]
    zero = tl.reduce(dc, 0, _SUM) * 0.0  # (BH,) accumulators of the gains' and shifts' gradients
    dgi = zero
    dgj = zero
    dgf = zero
    dgo = zero
    dbi = zero
    dbj = zero
    dbf = zero
    dbo = zero
    dgc = zero
    dbc = zero
    for s in range(0, T):
        t = T - 1 - s
        dh = tl.load(dhs_ptr + t * s_dt + d * B * H + sr, mask=bm, other=0.0)
        if s == 0:
            dh = dh + tl.load(dl_ptr + d * B * H + sr, mask=bm, other=0.0)
        else:  # + g_{t+1} @ W_hh^T for this program's units
            acc = tl.full((BB, BH), 0.0, dc.dtype)
            gp = g_ptr + d * s_gd + (t + 1) * B * G + rb[:, None] * G
            for n0 in range(0, 4 * H, BK):
                gk = tl.load(gp + (n0 + rk)[None, :], mask=bm, other=0.0, cache_modifier=".cg")
                acc += _dot(gk, tl.load(wp + (n0 + rk)[:, None] * H), PREC)
            dh = dh + acc
        ar = d * s_gd + t * B * G + rb[:, None] * G + rj[None, :]
        si = tl.load(a_ptr + ar, mask=bm, other=0.0)
        tj = tl.load(a_ptr + ar + H, mask=bm, other=0.0)
        sf = tl.load(a_ptr + ar + 2 * H, mask=bm, other=0.0)
        so = tl.load(a_ptr + ar + 3 * H, mask=bm, other=0.0)
        chat = tl.load(ch_ptr + d * s_cd + t * B * H + sr, mask=bm, other=0.0)
        rr = d * s_cd // H + t * B + rb  # (BB,) rows of rsc; of rs x 4
        tc = _tanh(chat * gc + bc)
        d_o = dh * tc  # h = tanh(LN(c)) s(o)
        dcn = dh * so * (1.0 - tc * tc)
        dgc += tl.reduce(dcn * chat, 0, _SUM)
        dbc += tl.reduce(dcn, 0, _SUM)
        dch = dcn * gc
        _put_sums(sx_mine + 8, dch, dch * chat)
        # ---- barrier 1: the row tile's sums for the norm of c
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        s1, s2 = _get_sums(sx_all + 8, H)
        r_c = tl.load(rsc_ptr + rr, mask=rmask, other=0.0)
        dc = dc + r_c[:, None] * (dch - s1[:, None] - chat * s2[:, None])
        cp = tl.load(cs_ptr + d * s_hd + t * B * H + sr, mask=bm, other=0.0)
        g = tj
        dj = dc * si
        if HAS_MASK:
            m = tl.load(m_ptr + t * s_mt + d * B * H + sr, mask=bm, other=0.0)
            g = tj * m
            dj = dj * m
        dyi = dc * g * si * (1.0 - si)
        dyj = dj * (1.0 - tj * tj)
        dyf = dc * cp * sf * (1.0 - sf)
        dyo = d_o * so * (1.0 - so)
        dc = dc * sf
        xi = tl.load(xh_ptr + ar, mask=bm, other=0.0)
        xj = tl.load(xh_ptr + ar + H, mask=bm, other=0.0)
        xf = tl.load(xh_ptr + ar + 2 * H, mask=bm, other=0.0)
        xo = tl.load(xh_ptr + ar + 3 * H, mask=bm, other=0.0)
        dgi += tl.reduce(dyi * xi, 0, _SUM)
        dgj += tl.reduce(dyj * xj, 0, _SUM)
        dgf += tl.reduce(dyf * xf, 0, _SUM)
        dgo += tl.reduce(dyo * xo, 0, _SUM)
        dbi += tl.reduce(dyi, 0, _SUM)
        dbj += tl.reduce(dyj, 0, _SUM)
        dbf += tl.reduce(dyf, 0, _SUM)
        dbo += tl.reduce(dyo, 0, _SUM)
        dyi = dyi * gi
        dyj = dyj * gj
        dyf = dyf * gf
        dyo = dyo * go
        _put_sums(sx_mine, dyi, dyi * xi)
        _put_sums(sx_mine + 2, dyj, dyj * xj)
        _put_sums(sx_mine + 4, dyf, dyf * xf)
        _put_sums(sx_mine + 6, dyo, dyo * xo)
        # ---- barrier 2: the row tile's sums for the gate blocks' norms
        phase += 1
        if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
            tl.atomic_max(err_ptr, 1)
            poison = poison + float("nan")
            limit = 0
        gr = g_ptr + ar
        r = tl.load(rs_ptr + rr * 4, mask=rmask, other=0.0)
        s1, s2 = _get_sums(sx_all, H)
        tl.store(gr, r[:, None] * (dyi - s1[:, None] - xi * s2[:, None]) + poison, mask=bm)
        r = tl.load(rs_ptr + rr * 4 + 1, mask=rmask, other=0.0)
        s1, s2 = _get_sums(sx_all + 2, H)
        tl.store(gr + H, r[:, None] * (dyj - s1[:, None] - xj * s2[:, None]) + poison, mask=bm)
        r = tl.load(rs_ptr + rr * 4 + 2, mask=rmask, other=0.0)
        s1, s2 = _get_sums(sx_all + 4, H)
        tl.store(gr + 2 * H, r[:, None] * (dyf - s1[:, None] - xf * s2[:, None]) + poison, mask=bm)
        r = tl.load(rs_ptr + rr * 4 + 3, mask=rmask, other=0.0)
        s1, s2 = _get_sums(sx_all + 6, H)
        tl.store(gr + 3 * H, r[:, None] * (dyo - s1[:, None] - xo * s2[:, None]) + poison, mask=bm)
        if s + 1 < T:  # ---- barrier 3: g_t[rows] complete before anyone reads it
            phase += 1
            if _row_tile_barrier(cnt_ptr + grp, phase * NJ, limit):
                tl.atomic_max(err_ptr, 1)
                poison = poison + float("nan")
                limit = 0
    tl.store(dc_ptr + d * B * H + sr, dc + poison, mask=bm)
    tl.atomic_add(dgam_ptr + d * G + rj, dgi)
    tl.atomic_add(dgam_ptr + d * G + H + rj, dgj)
    tl.atomic_add(dgam_ptr + d * G + 2 * H + rj, dgf)
    tl.atomic_add(dgam_ptr + d * G + 3 * H + rj, dgo)
    tl.atomic_add(dbet_ptr + d * G + rj, dbi)
    tl.atomic_add(dbet_ptr + d * G + H + rj, dbj)
    tl.atomic_add(dbet_ptr + d * G + 2 * H + rj, dbf)
    tl.atomic_add(dbet_ptr + d * G + 3 * H + rj, dbo)
    tl.atomic_add(dgamc_ptr + d * H + rj, dgc)
    tl.atomic_add(dbetc_ptr + d * H + rj, dbc)


def _mm(a_ptr, b_ptr, c_ptr, M, s_az, s_am, s_ak, s_bz, s_bk, s_bn, s_cz, s_cm,
        K: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
    # C[z] = A[z] @ B[z] for one (BM, BN) tile; any strides (a transposed B costs nothing);
    # the recurrences' products h @ W_hh and g @ W_hh^T with the step kernels' tiling, to set
    # against cuBLAS for these skinny shapes (benchmarks/bench_triton_lstm.py, "gemm")
    pm = tl.program_id(0)
    pn = tl.program_id(1)
    z = tl.program_id(2)
    rm = pm * BM + tl.arange(0, BM)
    rn = pn * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    mm_ = rm[:, None] < M
    acc = tl.full((BM, BN), 0.0, tl.float32)
    if PREC == "f64":
        acc = acc.to(tl.float64)
    for k0 in range(0, K, BK):
        a = tl.load(a_ptr + z * s_az + rm[:, None] * s_am + (k0 + rk)[None, :] * s_ak, mask=mm_, other=0.0)
        b = tl.load(b_ptr + z * s_bz + (k0 + rk)[:, None] * s_bk + rn[None, :] * s_bn)
        if PREC == "tf32":
            acc += tl.dot(a, b, input_precision="tf32")
        elif PREC == "tf32x3":
            acc += tl.dot(a, b, input_precision="tf32x3")
        else:
            acc += tl.dot(a, b, input_precision="ieee")
    tl.store(c_ptr + z * s_cz + rm[:, None] * s_cm + rn[None, :], acc, mask=mm_)


def _kernels(interpret: bool) -> tuple[Any, ...]:
    ks = _STATE["kernels"].get(interpret)
    if ks is None:
        fns = [_lstm_fw_step, _lstm_bw_step, _mm, _lstm_fw_seq, _lstm_bw_seq, _lnlstm_fw_seq, _lnlstm_bw_seq]
        ks = tuple(interpreted(fns, HELPERS_PY) if interpret else (triton.jit(f) for f in fns))
        _STATE["kernels"][interpret] = ks
    return ks


def mm(a: Tensor, b: Tensor, tiles: tuple[int, int, int] | None = None) -> Tensor:
    """``a @ b`` for a (M, K) or (Z, M, K) and b (K, N) or (Z, K, N), any strides, with the
    Triton tile kernel (tiles (BM, BN, BK), default the forward step's; K and N multiples of
    BK and BN). Not differentiable: a benchmark and building block."""
    if triton is None:
        raise RuntimeError("the Triton kernels need the triton package")
    squeeze = a.dim() == 2
    a3, b3 = (a.unsqueeze(0), b.unsqueeze(0)) if squeeze else (a, b)
    Z, M, K = a3.shape
    N = b3.shape[-1]
    BM, BN, BK = tiles or _BLOCKS["fw"]
    if b3.shape[-2] != K or N % BN or K % BK:
        raise ValueError(f"mm: shapes {tuple(a.shape)} @ {tuple(b.shape)} do not fit tiles {(BM, BN, BK)}")
    c = a3.new_empty((Z, M, N))
    zb = b3.stride(0) if b3.shape[0] > 1 else 0
    kern = _kernels(_use_interpreter(a3))[2]
    kern[(triton.cdiv(M, BM), N // BN, Z)](a3, b3, c, M, a3.stride(0), a3.stride(1), a3.stride(2), zb,
                                            b3.stride(1), b3.stride(2), c.stride(0), c.stride(1), K=K, BM=BM,
                                            BN=BN, BK=BK, PREC=_precision(a3), **_launch_opts(a3))
    return c[0] if squeeze else c


def _use_interpreter(x: Tensor) -> bool:
    on = _STATE["interpret"]
    return (not x.is_cuda) if on is None else bool(on)


def _launch_opts(x: Tensor, persistent: bool = False) -> dict[str, int]:
    return {} if _use_interpreter(x) else {"num_warps": _STATE["pwarps" if persistent else "warps"]}


def _precision(x: Tensor) -> str:
    if x.dtype == torch.float64:
        return "f64"
    if x.dtype != torch.float32:
        raise TypeError(f"triton LSTM kernels take float32 or float64 tensors, not {x.dtype}")
    return "tf32" if (x.is_cuda and cuda_fp32_reduced()) else _STATE["fp32_dot"]


def set_fp32_products(mode: str) -> None:
    """How the kernels multiply float32 where TF32 is not allowed: "ieee" (default: FMA
    products, exact up to summation order) or "tf32x3" (three TF32 tensor-core products per
    product, hi*hi + hi*lo + lo*hi: float32-level error, ~1e-7 relative, on the tensor cores);
    also ``SKETCHRNN_TRITON_FP32="tf32x3"`` at import."""
    if mode not in ("ieee", "tf32x3"):
        raise ValueError(f"fp32 products must be 'ieee' or 'tf32x3', got {mode!r}")
    _STATE["fp32_dot"] = mode


# ----------------------------------------------------------------------------- autograd
def _forward(xp: Tensor, w: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None, forget_bias: float,
             keep: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The forward launches over T steps (xp, w, masks contiguous). ``keep``: every step's gate
    activations for the backward; otherwise (no gradient wanted, e.g. validation) one step's
    as scratch, so that a batch of 1000 at T 130 does not hold the 1 GB the backward needs."""
    T, D, B, G = xp.shape
    H = G // 4
    hs = xp.new_empty((D, T + 1, B, H))  # hs[:, t + 1] = h_t
    cs = xp.new_empty((D, T + 1, B, H))
    acts = xp.new_empty((D, T if keep else 1, B, G))  # [s(i), tanh(j), s(f + bias), s(o)] per step
    hs[:, 0], cs[:, 0] = h0, c0
    prec = _precision(xp)
    pgrid = persistent_grid(xp, B, H, D, "pfw")
    if pgrid is not None:  # all T steps in one launch
        BB, BH, BK = _BLOCKS["pfw"]
        cnt, err = xp.new_zeros(D * pgrid[1], dtype=torch.int32), _err_flag(xp)
        _kernels(_use_interpreter(xp))[3][pgrid](
            xp, w, hs, cs, masks if masks is not None else xp, acts, cnt, err, T, B, float(forget_bias),
            D * B * G, (T + 1) * B * H, D * B * H, acts.shape[1] * B * G, B * G if keep else 0,
            pgrid[0], _MAX_SPIN, H=H, HAS_MASK=masks is not None, BB=BB, BH=BH, BK=BK, PREC=prec,
            **_launch_opts(xp, persistent=True))
        _STATE["last_mode"] = "persistent"
        return hs, cs, acts
    _STATE["last_mode"] = "steps"
    fw = _kernels(_use_interpreter(xp))[0]
    BB, BH, BK = _BLOCKS["fw"]
    grid = (triton.cdiv(B, BB), H // BH, D)
    s_x, s_h, s_a = B * G, (T + 1) * B * H, acts.shape[1] * B * G
    s_m = B * H
    for t in range(T):
        fw[grid](xp[t], w, hs[:, t], cs[:, t], masks[t] if masks is not None else xp[t], acts[:, t if keep else 0],
                 cs[:, t + 1], hs[:, t + 1], B, float(forget_bias), s_x, s_h, s_m, s_a, H=H,
                 HAS_MASK=masks is not None, BB=BB, BH=BH, BK=BK, PREC=prec, **_launch_opts(xp))
    return hs, cs, acts


class _TritonLSTMSequence(torch.autograd.Function):
    """D LSTM cells' recurrences (same T, B, H) as one autograd node; see the module docstring.
    Inputs: xp (T, D, B, 4H), w (D, H, 4H), c0 / h0 (D, B, H), masks (T, D, B, H) or None.
    Outputs: hs (T, D, B, H) and the final c, h (D, B, H)."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, w: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None,
                forget_bias: float) -> tuple[Tensor, Tensor, Tensor]:
        xp, w = xp.contiguous(), w.contiguous()
        masks = masks.contiguous() if masks is not None else None
        hs, cs, acts = _forward(xp, w, c0, h0, masks, forget_bias, keep=True)
        ctx.save_for_backward(w, masks, hs, cs, acts)
        T = xp.shape[0]
        return hs[:, 1:].transpose(0, 1), cs[:, T].clone(), hs[:, T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dhs: Tensor, dc_last: Tensor, dh_last: Tensor):  # type: ignore[override]
        w, masks, hs, cs, acts = ctx.saved_tensors
        D, T, B, G = acts.shape
        H = G // 4
        wt = w.transpose(1, 2).contiguous()  # (D, 4H, H): rows of W_hh^T contiguous in j
        grads = torch.empty_like(acts)  # (D, T, B, 4H)
        dc = dc_last.contiguous().clone()  # (D, B, H), carried in place
        dhs = dhs.contiguous()  # (T, D, B, H)
        prec = _precision(acts)
        pgrid = persistent_grid(acts, B, H, D, "pbw")
        if pgrid is not None:  # all T steps in one launch
            BB, BH, BK = _BLOCKS["pbw"]
            cnt, err = acts.new_zeros(D * pgrid[1], dtype=torch.int32), _err_flag(acts)
            _kernels(_use_interpreter(acts))[4][pgrid](
                grads, wt, dhs, dh_last.contiguous(), acts, cs, masks if masks is not None else acts, dc, cnt, err,
                T, B, T * B * G, (T + 1) * B * H, D * B * H, D * B * H, pgrid[0], _MAX_SPIN, H=H,
                HAS_MASK=masks is not None, BB=BB, BH=BH, BK=BK, PREC=prec, **_launch_opts(acts, persistent=True))
        else:
            _backward_steps(grads, wt, dhs, dh_last, acts, cs, masks, dc, prec)
        dh0 = torch.bmm(grads[:, 0], wt)  # (D, B, H)
        dw = torch.bmm(hs[:, :-1].reshape(D, T * B, H).transpose(1, 2), grads.reshape(D, T * B, G))  # (D, H, 4H)
        return grads.transpose(0, 1), dw, dc, dh0, None, None


def _backward_steps(grads: Tensor, wt: Tensor, dhs: Tensor, dh_last: Tensor, acts: Tensor, cs: Tensor,
                    masks: Tensor | None, dc: Tensor, prec: str) -> None:
    """The backward as one launch per step (T launches), filling grads and dc in place."""
    D, T, B, G = acts.shape
    H = G // 4
    d_last = (dhs[T - 1] + dh_last).contiguous()
    bw = _kernels(_use_interpreter(acts))[1]
    BB, BH, BK = _BLOCKS["bw"]
    grid = (triton.cdiv(B, BB), H // BH, D)
    s_g, s_h, s_dh, s_m = T * B * G, (T + 1) * B * H, B * H, B * H
    for t in range(T - 1, -1, -1):
        last = t == T - 1
        bw[grid](grads[:, t + 1] if not last else grads[:, t], wt, d_last if last else dhs[t], acts[:, t],
                 cs[:, t + 1], cs[:, t], masks[t] if masks is not None else acts[:, t], dc, grads[:, t],
                 B, s_g, s_h, s_dh, s_m, s_g, H=H,
                 HAS_NEXT=not last, HAS_MASK=masks is not None, BB=BB, BH=BH, BK=BK, PREC=prec,
                 **_launch_opts(acts))


def lstm_sequence(xp: Tensor, w: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None,
                  forget_bias: float) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """The recurrence of D plain LSTM cells: xp (T, D, B, 4H), W_hh (D, H, 4H), c0 / h0
    (D, B, H), masks (T, D, B, H) or None -> hs (T, D, B, H), (c_T, h_T)."""
    if triton is None:
        raise RuntimeError("the Triton LSTM kernels need the triton package")
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (xp, w, c0, h0))):
        T = xp.shape[0]
        hs_, cs, _ = _forward(xp.contiguous(), w.contiguous(), c0, h0,
                              masks.contiguous() if masks is not None else None, forget_bias, keep=False)
        return hs_[:, 1:].transpose(0, 1), (cs[:, T], hs_[:, T])
    hs, c, h = _TritonLSTMSequence.apply(xp, w, c0, h0, masks, forget_bias)
    return hs, (c, h)


# ----------------------------------------------------------------------------- LayerNorm LSTM
def _ln_forward(xp: Tensor, w: Tensor, gam: Tensor, bet: Tensor, gamc: Tensor, betc: Tensor, c0: Tensor,
                h0: Tensor, masks: Tensor | None, forget_bias: float, keep: bool) -> tuple[Tensor, ...]:
    T, D, B, G = xp.shape
    H = G // 4
    Ts = T if keep else 1  # saved steps (one scratch step without a backward)
    hs = xp.new_empty((D, T + 1, B, H))
    cs = xp.new_empty((D, T + 1, B, H))
    acts, xh = xp.new_empty((D, Ts, B, G)), xp.new_empty((D, Ts, B, G))
    ch, rs, rsc = xp.new_empty((D, Ts, B, H)), xp.new_empty((D, Ts, B, 4)), xp.new_empty((D, Ts, B))
    hs[:, 0], cs[:, 0] = h0, c0
    grid = persistent_grid(xp, B, H, D, "pfw")
    BB, BH, BK = _BLOCKS["pfw"]
    st = xp.new_empty((D * grid[0] * grid[1] * BB * 10,))
    cnt, err = xp.new_zeros(D * grid[1], dtype=torch.int32), _err_flag(xp)
    from ..model.cells import LN_EPS

    _kernels(_use_interpreter(xp))[5][grid](
        xp, w, gam, bet, gamc, betc, hs, cs, masks if masks is not None else xp, acts, xh, ch, rs, rsc, st, cnt, err,
        T, B, float(forget_bias), float(LN_EPS), D * B * G, (T + 1) * B * H, D * B * H, Ts * B * G,
        B * G if keep else 0, Ts * B * H, B * H if keep else 0, _MAX_SPIN, H=H, NJ=grid[0],
        HAS_MASK=masks is not None, BB=BB, BH=BH, BK=BK, PREC=_precision(xp), **_launch_opts(xp, persistent=True))
    _STATE["last_mode"] = "persistent"
    return hs, cs, acts, xh, ch, rs, rsc


class _TritonLNLSTMSequence(torch.autograd.Function):
    """D LayerNorm-LSTM recurrences (Magenta ``LayerNormLSTMCell``: a norm over each gate block,
    one over c) as one autograd node, on the persistent kernels. Inputs: xp (T, D, B, 4H),
    w (D, H, 4H), gains / shifts gam, bet (D, 4H) and gamc, betc (D, H), c0 / h0 (D, B, H),
    masks (T, D, B, H) or None. Outputs: hs (T, D, B, H) and the final c, h (D, B, H)."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, w: Tensor, gam: Tensor, bet: Tensor, gamc: Tensor, betc: Tensor, c0: Tensor,
                h0: Tensor, masks: Tensor | None, forget_bias: float) -> tuple[Tensor, Tensor, Tensor]:
        xp, w = xp.contiguous(), w.contiguous()
        gam, bet, gamc, betc = (p.contiguous() for p in (gam, bet, gamc, betc))
        masks = masks.contiguous() if masks is not None else None
        hs, cs, acts, xh, ch, rs, rsc = _ln_forward(xp, w, gam, bet, gamc, betc, c0, h0, masks, forget_bias, True)
        ctx.save_for_backward(w, gam, gamc, betc, masks, hs, cs, acts, xh, ch, rs, rsc)
        T = xp.shape[0]
        return hs[:, 1:].transpose(0, 1), cs[:, T].clone(), hs[:, T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dhs: Tensor, dc_last: Tensor, dh_last: Tensor):  # type: ignore[override]
        w, gam, gamc, betc, masks, hs, cs, acts, xh, ch, rs, rsc = ctx.saved_tensors
        D, T, B, G = acts.shape
        H = G // 4
        wt = w.transpose(1, 2).contiguous()  # (D, 4H, H)
        grads = torch.empty_like(acts)  # (D, T, B, 4H)
        dc = dc_last.contiguous().clone()
        dhs = dhs.contiguous()
        dgam, dbet = acts.new_zeros((D, G)), acts.new_zeros((D, G))
        dgamc, dbetc = acts.new_zeros((D, H)), acts.new_zeros((D, H))
        grid = persistent_grid(acts, B, H, D, "pbw")
        BB, BH, BK = _BLOCKS["pbw"]
        st = acts.new_empty((D * grid[0] * grid[1] * BB * 10,))
        cnt, err = acts.new_zeros(D * grid[1], dtype=torch.int32), _err_flag(acts)
        _kernels(_use_interpreter(acts))[6][grid](
            grads, wt, dhs, dh_last.contiguous(), acts, xh, ch, rs, rsc, cs, masks if masks is not None else acts,
            gam, gamc, betc, dc, dgam, dbet, dgamc, dbetc, st, cnt, err, T, B, T * B * G, (T + 1) * B * H, D * B * H,
            D * B * H, T * B * H, _MAX_SPIN, H=H, NJ=grid[0], HAS_MASK=masks is not None, BB=BB, BH=BH, BK=BK,
            PREC=_precision(acts), **_launch_opts(acts, persistent=True))
        dh0 = torch.bmm(grads[:, 0], wt)  # (D, B, H)
        dw = torch.bmm(hs[:, :-1].reshape(D, T * B, H).transpose(1, 2), grads.reshape(D, T * B, G))  # (D, H, 4H)
        return grads.transpose(0, 1), dw, dgam, dbet, dgamc, dbetc, dc, dh0, None, None


def ln_lstm_sequence(xp: Tensor, w: Tensor, gam: Tensor, bet: Tensor, gamc: Tensor, betc: Tensor, c0: Tensor,
                     h0: Tensor, masks: Tensor | None, forget_bias: float) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """The recurrence of D LayerNorm-LSTM cells on the persistent kernels (:func:`supports_ln`
    must hold): xp (T, D, B, 4H) (no bias: the norms' shifts take its place), W_hh (D, H, 4H),
    gains / shifts (D, 4H) and (D, H) (or (D, 1, .)), c0 / h0 (D, B, H), masks (T, D, B, H) or
    None -> hs (T, D, B, H), (c_T, h_T)."""
    if triton is None:
        raise RuntimeError("the Triton LSTM kernels need the triton package")
    D, B, H = h0.shape
    if not supports_ln(xp, B, H, D):
        raise ValueError(f"the LayerNorm LSTM kernels do not take B {B}, H {H}, D {D} with tiles "
                         f"{_BLOCKS['pfw']} / {_BLOCKS['pbw']} here (see supports_ln)")
    gam, bet, gamc, betc = (p.reshape(D, -1) for p in (gam, bet, gamc, betc))
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (xp, w, gam, bet, gamc, betc, c0, h0))):
        T = xp.shape[0]
        out = _ln_forward(xp.contiguous(), w.contiguous(), *(p.contiguous() for p in (gam, bet, gamc, betc)), c0, h0,
                          masks.contiguous() if masks is not None else None, forget_bias, False)
        return out[0][:, 1:].transpose(0, 1), (out[1][:, T], out[0][:, T])
    hs, c, h = _TritonLNLSTMSequence.apply(xp, w, gam, bet, gamc, betc, c0, h0, masks, forget_bias)
    return hs, (c, h)


_tiles_from_env()
if os.environ.get("SKETCHRNN_TRITON_FP32", "").strip():
    set_fp32_products(os.environ["SKETCHRNN_TRITON_FP32"].strip())
