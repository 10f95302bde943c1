"""CUDA acceleration of the fast recurrences (used by :mod:`.decoder` on CUDA tensors only).

The cost of a sketch-rnn training step on a GPU is kernel launches, not FLOPs: the eager
recurrence launches ~10 small kernels per step forward and ~15 backward, 2 x 250 times.
Two standard tools remove most of that, each switched on by itself on CUDA:

1. ``torch.compile`` of the per-step POINTWISE math only (:func:`.decoder.lstm_pointwise`
   etc.): the dozen elementwise ops of a step become one fused kernel forward and one
   backward. The loop itself stays Python (compiling 250 unrolled steps would take minutes).
2. ``torch.cuda.make_graphed_callables`` on the whole recurrence (all T steps, forward and
   backward): one CUDA-graph replay each way instead of thousands of launches from Python.
   A graph is captured per (recurrence, shapes, dtypes, precision flags); training batches
   have fixed shapes (``BatchLoader(drop_last=True)``, encoder run for all T steps on CUDA).
   Every input, the weights included, is copied into the graph's own static buffers at each
   replay: a capture that shared the parameters' memory reached their autograd nodes from the
   capture stream and failed on an H100 (benchmarks/NOTES_gpu.md, 2026-11-26).

3. Optional, off by default until measured on a GPU (benchmarks/NOTES_gpu.md): plain-LSTM
   recurrences (every encoder, the LSTM decoder) as fused Triton step kernels, one per step
   each way (:mod:`.triton_lstm`), captured in the same CUDA graph: ``configure(triton=True)``
   or the environment variable ``SKETCHRNN_TRITON=1``; with ``triton_lstm.set_persistent(True)``
   (``SKETCHRNN_TRITON_PERSISTENT=1``) one launch per recurrence where its grid fits on the
   device at once, LayerNorm-LSTM recurrences (the LayerNorm decoder) and HyperLSTM ones (the
   HyperLSTM decoder, :mod:`.triton_hyper`) included (correct on an H200, 2026-11-27; in float32
   no faster than the step kernels there: benchmarks/RESULTS.md).

Any failure (no compiler, capture error) is caught once per key, reported with one
``warnings.warn``, and that key falls back: graph without compile, then eager; a failed
capture first restores the current stream and the CUDA random generator it leaves broken. Numbers are
the eager ones up to float rounding (checked by ``tests/test_fast_decoder.py``, gpu-marked
tests, and ``benchmarks/bench_train.py``).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import torch
from torch import Tensor

from ..precision import cuda_fp32_reduced

__all__ = ["run_sequence_accelerated", "status", "reset", "configure"]

_CFG = {"compile": True, "graphs": True, "triton": os.environ.get("SKETCHRNN_TRITON", "0") == "1"}
_COMPILED: dict[str, Any] = {}  # "fns" -> dict of compiled pointwise fns, or False after a failure
_GRAPHS: dict[tuple, Any] = {}  # key -> graphed callable, or a fallback marker string
_LOG: list[str] = []  # one line per decision (what runs where), for benchmarks


def configure(compile: bool | None = None, graphs: bool | None = None, triton: bool | None = None) -> None:
    """Switch the accelerations on/off (compile and graphs on by default, the Triton LSTM steps
    off); clears cached graphs."""
    if compile is not None:
        _CFG["compile"] = bool(compile)
    if graphs is not None:
        _CFG["graphs"] = bool(graphs)
    if triton is not None:
        _CFG["triton"] = bool(triton)
    reset()


def _triton_ok(seq: Any, h0: Tensor) -> bool:
    """The fused Triton kernels handle this recurrence: switched on, Triton importable, float32,
    and a plain LSTM with a hidden size the tiles divide, or a LayerNorm LSTM / HyperLSTM that
    the persistent kernels take (switched on too, the grid resident at once: ``supports_ln``,
    ``triton_hyper.supports_hyper``)."""
    if not _CFG["triton"] or seq.kind not in ("lstm", "layer_norm", "hyper") or h0.dtype != torch.float32 \
            or _autocast_state()[0]:
        return False  # (under autocast the projections come in bf16/fp16: compiled path)
    from . import triton_lstm

    if not triton_lstm.available():
        return False
    if seq.kind == "layer_norm":
        D, B, H = h0.shape
        return triton_lstm.supports_ln(h0, B, H, D)
    if seq.kind == "hyper":
        from .triton_hyper import Z_BLOCKS, supports_hyper

        D, B, H = h0.shape
        return supports_hyper(h0, B, H, seq.params["hw_hh"].shape[-2], seq.params["w_zs"].shape[-1] // Z_BLOCKS, D)
    return triton_lstm.supports_size(h0.shape[-1])


def _run_triton(seq: Any, xp: Any, state0: tuple[Tensor, ...], masks: Tensor | None) -> tuple[Tensor, tuple]:
    from . import triton_lstm

    p = seq.params
    if seq.kind == "hyper":
        from .triton_hyper import hyper_lstm_sequence

        return hyper_lstm_sequence(xp, p, state0, masks, seq.forget_bias, seq.hyper_forget_bias)
    if seq.kind == "layer_norm":
        return triton_lstm.ln_lstm_sequence(xp, p["w_hh"], p["gamma"], p["beta"], p["gamma_c"], p["beta_c"],
                                            state0[0], state0[1], masks, seq.forget_bias)
    return triton_lstm.lstm_sequence(xp, p["w_hh"], state0[0], state0[1], masks, seq.forget_bias)


def reset() -> None:
    """Forget compiled functions and captured graphs (e.g. between benchmark variants)."""
    _COMPILED.clear()
    _GRAPHS.clear()
    _LOG.clear()


def status() -> list[str]:
    """What ran: one line per recurrence key ("graph+compile", "graph", "compile", "eager: <why>")."""
    return list(_LOG)


def _pointwise() -> dict[str, Callable[..., Any]] | None:
    """The pointwise functions compiled with torch.compile (None when off or unavailable)."""
    from .decoder import _EAGER

    if not _CFG["compile"]:
        return None
    fns = _COMPILED.get("fns")
    if fns is None:
        try:
            # one specialisation per (shape, dtype, mask or not): encoder / decoder / hyper cell,
            # batch sizes, precisions; Dynamo's default limit (8) would silently stop compiling
            import torch._dynamo.config as dcfg

            for name in ("cache_size_limit", "recompile_limit"):
                if isinstance(getattr(dcfg, name, None), int):
                    setattr(dcfg, name, max(getattr(dcfg, name), 64))
            fns = {k: torch.compile(f, fullgraph=True) for k, f in _EAGER.items()}  # automatic dynamic shapes
        except Exception as e:  # pragma: no cover - depends on the install
            warnings.warn(f"sketchrnn.fast: torch.compile unavailable ({type(e).__name__}: {e}); eager pointwise math")
            fns = False
        _COMPILED["fns"] = fns
    return fns or None


def _flatten(seq: Any, xp: Any, state0: tuple[Tensor, ...], masks: Tensor | None) -> tuple[list[Tensor], Callable]:
    """All tensor inputs of a recurrence as one flat list, and a function rebuilding the call."""
    from .decoder import _Seq

    xps = list(xp) if isinstance(xp, tuple) else [xp]
    names = sorted(seq.params)
    flat = xps + list(state0) + ([masks] if masks is not None else []) + [seq.params[k] for k in names]
    n_x, n_s, has_m = len(xps), len(state0), masks is not None

    def rebuild(args: tuple[Tensor, ...]) -> tuple[Any, Any, tuple[Tensor, ...], Tensor | None]:
        i = 0
        xr = tuple(args[:n_x]) if n_x > 1 else args[0]
        i += n_x
        st = tuple(args[i:i + n_s])
        i += n_s
        m = args[i] if has_m else None
        i += int(has_m)
        params = dict(zip(names, args[i:]))
        return _Seq(seq.kind, params, seq.forget_bias, seq.hyper_forget_bias), xr, st, m

    return flat, rebuild


def _autocast_state() -> tuple[bool, str]:
    """(CUDA autocast on?, its dtype) across torch versions."""
    on = bool(torch.is_autocast_enabled())
    if not on:
        return False, ""
    get = getattr(torch, "get_autocast_dtype", None)
    try:
        return True, str(get("cuda") if get is not None else torch.get_autocast_gpu_dtype())
    except Exception:  # pragma: no cover - exotic versions
        return True, "?"


def _key(tag: str, seq: Any, flat: list[Tensor], masks: Tensor | None) -> tuple:
    """A captured graph is valid only for the same structure, shapes, dtypes and precision flags."""
    prec = (cuda_fp32_reduced(), *_autocast_state())
    if _CFG["triton"]:  # the kernels' tiles and float32 product mode are baked into a capture
        from . import triton_lstm

        prec += (repr(triton_lstm.blocks()), triton_lstm._STATE["fp32_dot"], triton_lstm._STATE["persistent"])
    return (tag, seq.kind, seq.forget_bias, seq.hyper_forget_bias, masks is not None, prec,
            tuple((tuple(t.shape), t.dtype, t.requires_grad, str(t.device)) for t in flat))


def run_sequence_accelerated(seq: Any, xp: Any, state0: tuple[Tensor, ...], masks: Tensor | None,
                             tag: str) -> tuple[Tensor, tuple[Tensor, ...]] | None:
    """Run a recurrence with the CUDA accelerations; None means "use the eager path"."""
    from .decoder import run_sequence

    pw = _pointwise()
    if not (_CFG["graphs"] and torch.is_grad_enabled()):
        if _triton_ok(seq, state0[1]):
            try:
                return _run_triton(seq, xp, state0, masks)
            except Exception as e:  # pragma: no cover - GPU only
                warnings.warn(f"sketchrnn.fast: Triton LSTM steps failed ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]}); compiled pointwise math from now on")
                _CFG["triton"] = False
        if pw is None:
            return None
        try:
            return run_sequence(seq, xp, state0, masks, pointwise=pw)
        except Exception as e:  # pragma: no cover - GPU only
            warnings.warn(f"sketchrnn.fast: compiled pointwise math failed ({type(e).__name__}: {e}); eager from now on")
            _COMPILED["fns"] = False
            return None
    flat, rebuild = _flatten(seq, xp, state0, masks)
    key = _key(tag, seq, flat, masks)
    fn = _GRAPHS.get(key)
    if fn is None:
        fn = _capture(key, flat, rebuild, pw, _triton_ok(seq, state0[1]))
    if isinstance(fn, str):  # a fallback marker
        if fn == "compile" and pw is not None:
            return run_sequence(seq, xp, state0, masks, pointwise=pw)
        return None
    out = fn(*flat)
    return out[0], tuple(out[1:])


def _capture_guard(device: torch.device) -> tuple[Any, Any]:
    """What a failed capture leaves broken, saved before it: the current stream (torch's graph
    context does not switch back when ``capture_end`` raises) and the CUDA generator's state
    (it stays marked "capturing": every later random draw fails)."""
    if device.type != "cuda":  # the CPU stand-in of the tests
        return None, None
    stream0 = torch.cuda.current_stream(device)
    try:
        rng = torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
        return stream0, (rng, rng.clone_state())
    except Exception:  # pragma: no cover - older torch without graph-safe generator states
        return stream0, None


def _recover_from_failed_capture(device: torch.device, stream0: Any, rng: Any) -> None:  # pragma: no cover - GPU only
    if stream0 is None:
        return
    torch.cuda.set_stream(stream0)
    if rng is not None:
        gen, saved = rng
        try:
            gen.graphsafe_set_state(saved)
        except Exception as e:
            warnings.warn(f"sketchrnn.fast: could not restore the CUDA random generator after a failed capture ({e})")
    try:
        torch.cuda.synchronize(device)
        torch.randn(1, device=device)
    except Exception as e:
        warnings.warn(f"sketchrnn.fast: CUDA state after a failed graph capture is unusable "
                      f"({type(e).__name__}: {str(e).splitlines()[0][:200]})")


def _capture(key: tuple, flat: list[Tensor], rebuild: Callable, pw: dict | None, use_triton: bool = False) -> Any:
    """Capture the recurrence (forward and backward) as CUDA graphs; on failure store a marker."""
    from .decoder import run_sequence

    attempts: list[tuple[str, Any]] = [("graph+triton", "triton")] if use_triton else []
    if pw is not None:
        attempts.append(("graph+compile", pw))
    attempts.append(("graph", None))
    for name, fns in attempts:
        def recurrence(*args: Tensor, _fns: Any = fns) -> tuple[Tensor, ...]:
            seq, xp, st, m = rebuild(args)
            if isinstance(_fns, str):  # "triton"
                hs, fin = _run_triton(seq, xp, st, m)
            else:
                hs, fin = run_sequence(seq, xp, st, m, pointwise=_fns)
            return (hs, *fin)

        # every input, parameters included, as a fresh detached leaf: the captured autograd graph
        # must not reach the caller's (the parameters' AccumulateGrad nodes live on the default
        # stream; touching them from the capture stream breaks the capture). At replay each
        # input is copied into its static slot (the weights too: a few MB, microseconds), so
        # another model with the same shapes is safe as well.
        sample = [t.detach().clone().requires_grad_(t.requires_grad) for t in flat]
        stream0, rng = _capture_guard(flat[0].device)
        try:
            graphed = torch.cuda.make_graphed_callables(recurrence, tuple(sample), num_warmup_iters=3,
                                                        allow_unused_input=True)
        except Exception as e:  # pragma: no cover - GPU only
            _recover_from_failed_capture(flat[0].device, stream0, rng)
            warnings.warn(f"sketchrnn.fast: CUDA graph capture ({name}) of the {key[0]} recurrence failed "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); falling back")
            continue
        _GRAPHS[key] = graphed
        _LOG.append(f"{key[0]}/{key[1]}: {name}")
        return graphed
    marker = "compile" if pw is not None else "eager"
    _GRAPHS[key] = marker
    _LOG.append(f"{key[0]}/{key[1]}: {marker} (graph capture failed)")
    return marker
