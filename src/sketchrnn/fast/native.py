"""Native sampling loop (``native_sampler.c``): built on first use, cached, optional.

The same library holds the elementwise step kernels of the CPU training path's plain LSTM
(``sk_lstm_fw`` / ``sk_lstm_bw``, used by :class:`sketchrnn.fast.decoder._LSTMSequence`;
without the library it runs torch operations instead).

The C file runs a whole sketch per call (see its header for why). It is compiled once per
machine with the system C compiler (``$CC`` or ``cc``; ``-O3 -march=native``, falling back
to ``-O3``; see ``_FLAGS``) into ``$SKETCHRNN_CACHE_DIR`` (default ``~/.cache/sketchrnn``), named by a hash
of the source, the compiler, the flags and the CPU, and loaded with :mod:`ctypes`.
Everything degrades quietly: no compiler, a failed build, an unwritable cache, a model the
kernel does not cover (float64, sizes not multiples of 8) or ``SKETCHRNN_NATIVE=0`` all mean
the NumPy sampler runs instead; :func:`status` says which and why.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["available", "status", "cache_dir", "NativeModel", "native_supports", "training_lib"]

_SRC = Path(__file__).with_name("native_sampler.c")
_ABI = 4
_STATE: dict[str, Any] = {}  # "lib": CDLL | None, "why": str
_LOCK = threading.Lock()
# -fno-trapping-math lets the branch-free exp / tanh loops vectorise (nothing here uses FP traps)
_FLAGS = ["-std=gnu99", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math"]


def cache_dir() -> Path:
    env = os.environ.get("SKETCHRNN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sketchrnn"


def _cpu_id() -> str:
    """What -march=native depends on: the CPU model and feature flags."""
    try:
        with open("/proc/cpuinfo") as f:
            keep = [ln for ln in f if ln.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(keep)))
    except OSError:
        return platform.processor() + platform.machine()


def _compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return shutil.which(cc)


def _build(cc: str, out: Path) -> str | None:
    """Compile to ``out`` (atomically); returns None on success, else the reason."""
    out.parent.mkdir(parents=True, exist_ok=True)
    last = ""
    for flags in (["-O3", "-march=native"], ["-O3"]):
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
        os.close(fd)
        cmd = [cc, *flags, *_FLAGS, str(_SRC), "-o", tmp, "-lm"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            os.unlink(tmp)
            return f"compiler failed to run: {e}"
        if r.returncode == 0:
            os.replace(tmp, out)  # concurrent builders: each rename is whole
            return None
        os.unlink(tmp)
        last = (r.stderr.strip().splitlines() or ["?"])[-1][:200]
    return f"build failed: {last}"


def _load() -> Any:
    if "lib" in _STATE:
        return _STATE["lib"]
    with _LOCK:  # one build per process, also when the studio's threads ask at once
        if "lib" not in _STATE:
            _STATE["lib"], _STATE["why"] = _build_and_load()
    return _STATE["lib"]


def _open(path: Path) -> Any:
    lib = ctypes.CDLL(str(path))
    if lib.sk_abi_version() != _ABI:
        raise OSError(f"{path}: ABI version mismatch")
    return lib


def _build_and_load() -> tuple[Any, str]:
    lib, why = None, ""
    if os.environ.get("SKETCHRNN_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        why = "disabled by SKETCHRNN_NATIVE=0"
    else:
        cc = _compiler()
        if cc is None:
            why = "no C compiler (set CC or install cc)"
        else:
            try:
                ver = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
            except (OSError, subprocess.TimeoutExpired):
                ver = ""
            key = hashlib.sha256(b"\0".join(x.encode() if isinstance(x, str) else x for x in
                                            (_SRC.read_bytes(), cc, ver, " ".join(_FLAGS), _cpu_id(), platform.machine()))).hexdigest()[:16]
            path = cache_dir() / f"native_sampler-{key}.so"
            try:
                if path.exists():
                    try:
                        lib = _open(path)
                    except (OSError, AttributeError):  # damaged cache entry: build it again
                        path.unlink(missing_ok=True)  # a concurrent process may have removed it
                if lib is None:
                    why = _build(cc, path) or ""
                    if not why:
                        lib = _open(path)
            except (OSError, AttributeError) as e:
                lib, why = None, f"cannot build or load in {cache_dir()}: {str(e).splitlines()[0][:160]}"
    if lib is not None:
        lib.sk_has_f16.restype = ctypes.c_int
        lib.sk_decode_batch.restype = ctypes.c_int
        lib.sk_decode_batch.argtypes = [ctypes.c_void_p, ctypes.c_int] + [ctypes.c_void_p] * 4 + [ctypes.c_int] * 5 + \
            [ctypes.c_double] * 2 + [ctypes.c_void_p] * 4
        P = ctypes.c_void_p
        lib.sk_lstm_fw.restype = None
        lib.sk_lstm_fw.argtypes = [ctypes.c_int, ctypes.c_int, P, P, ctypes.c_int, P, P, ctypes.c_int, P, P,
                                  ctypes.c_float, P, P]
        lib.sk_lstm_bw.restype = None
        lib.sk_lstm_bw.argtypes = [ctypes.c_int, ctypes.c_int] + [P] * 7
        lib.sk_lnlstm_fw.restype = None
        lib.sk_lnlstm_fw.argtypes = [ctypes.c_int, ctypes.c_int, P, P, ctypes.c_int, P, P, ctypes.c_int,
                                     P, P, P, P, ctypes.c_float, P, P, ctypes.c_float, P, P, P, P, P, P]
        lib.sk_lnlstm_bw.restype = None
        lib.sk_lnlstm_bw.argtypes = [ctypes.c_int, ctypes.c_int] + [P] * 18
        why = "ok"
    return lib, why


def available() -> bool:
    """True when the native sampling loop is built and loaded (building it on first call)."""
    return _load() is not None


def training_lib() -> Any:
    """The loaded library for the training kernels (``sk_lstm_fw`` / ``sk_lstm_bw``,
    ``sk_lnlstm_fw`` / ``sk_lnlstm_bw``), or None (then the plain LSTM runs torch operations
    and the LayerNorm LSTM autograd over its step math)."""
    return _load()


def status() -> str:
    """``"ok"`` or why the NumPy sampler runs instead."""
    _load()
    return _STATE["why"]


class _SkModel(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("kind", "H", "Nh", "E", "M", "n_y", "half")] + \
               [(n, ctypes.c_void_p) for n in ("wu", "w5", "ln_g", "ln_b", "lnc_g", "lnc_b", "wout", "bout",
                                               "whh", "wx5", "wzs", "wblk", "bblk", "m_g", "m_b", "mc_g", "mc_b")]


def _panel(w: torch.Tensor, half: bool = False) -> np.ndarray:
    """(n_in, n_out) -> panel layout: 8-row blocks, 8-column chunks, each 8 x 8 row-major.
    Columns are zero-padded to a multiple of 8; rows must already be one. ``half``: float16."""
    a = w.detach().to(torch.float32).numpy()
    r, c = a.shape
    cp = -(-c // 8) * 8
    if cp != c:
        a = np.concatenate([a, np.zeros((r, cp - c), np.float32)], 1)
    p = np.ascontiguousarray(a.reshape(r // 8, 8, cp // 8, 8).transpose(0, 2, 1, 3)).reshape(-1)
    return p.astype(np.float16) if half else p


def _exactly_half(*ts: torch.Tensor) -> bool:
    """True when every value is a float16 number (so float16 storage loses nothing)."""
    for t in ts:
        t = t.detach()
        h = t.to(torch.float16)
        if not bool(torch.isfinite(h).all()) or not torch.equal(h.to(t.dtype), t):
            return False
    return True


def native_supports(w: Any) -> bool:
    """True when the kernel covers prepared weights ``w`` (sampler._Weights): float32 and every
    recurrent size a multiple of 8."""
    if w.dtype != torch.float32 or w.H % 8:
        return False
    return w.kind != "hyper" or (w.Nh % 8 == 0 and w.E % 8 == 0)


def _f32(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else np.ascontiguousarray(t.detach().to(torch.float32).numpy().reshape(-1))


class NativeModel:
    """Prepared weights (sampler._Weights) laid out for the C kernel, kept alive with it."""

    def __init__(self, w: Any, half: bool | None = None) -> None:
        """``half``: float16 panel storage (half the bytes streamed per step). None = where it is
        lossless (every panel weight already a float16 value, as in shipped and exported
        models) and the build supports it; False = never; True = required."""
        self.lib = _load()
        if self.lib is None or not native_supports(w):
            raise RuntimeError("native sampler unavailable for this model")
        H, Nh, E, M = w.H, w.Nh, w.E, w.M
        n_y = -(-(6 * M + 3) // 8) * 8
        K = Nh if w.kind == "hyper" else H
        recurrent = [w.w_u[:H + Nh]] + ([w.w_hh, w.w_zs, w.w_blk] if w.kind == "hyper" else [])
        can = bool(self.lib.sk_has_f16())
        out_half = True  # the mixture head's panel too (a model shipped with it float32 keeps it so)
        if half is None:
            half = can and _exactly_half(*recurrent)
            out_half = _exactly_half(w.w_out)
        elif half and not can:
            raise RuntimeError("native sampler: this build has no float16 support (needs x86 F16C/AVX2/FMA)")
        self.half = bool(half)
        keep: dict[str, np.ndarray | None] = {}
        keep["wu"] = _panel(w.w_u[:H + Nh], half)  # rows [h | hyper_h]; the x5 rows go separately
        keep["w5"] = _f32(w.w_u[H + Nh:])  # (5, 4K)
        if w.ln_gamma is not None:
            keep["ln_g"], keep["ln_b"] = _f32(w.ln_gamma), _f32(w.ln_beta)  # (4, 1, K) -> (4K)
            keep["lnc_g"], keep["lnc_b"] = _f32(w.ln_c_gamma), _f32(w.ln_c_beta)
        keep["wout"] = _panel(w.w_out, half and out_half)
        bout = np.zeros(n_y, np.float32)
        bout[:6 * M + 3] = w.b_out.numpy()
        keep["bout"] = bout
        if w.kind == "hyper":
            keep["whh"] = _panel(w.w_hh, half)
            keep["wx5"] = _f32(w.w_x5)
            keep["wzs"] = _panel(w.w_zs, half)
            keep["wblk"] = np.concatenate([_panel(w.w_blk[k], half) for k in range(12)])  # 12 x (E, H)
            keep["bblk"] = _f32(w.b_blk)  # (12, 1, H)
            keep["m_g"], keep["m_b"] = _f32(w.m_gamma), _f32(w.m_beta)
            keep["mc_g"], keep["mc_b"] = _f32(w.m_c_gamma), _f32(w.m_c_beta)
        self._keep = keep
        self.K = K
        ptrs = {k: (v.ctypes.data if v is not None else None) for k, v in keep.items()}
        self.struct = _SkModel(kind={"lstm": 0, "layer_norm": 1, "hyper": 2}[w.kind], H=H, Nh=Nh, E=E, M=M, n_y=n_y,
                               half=int(self.half) | (2 if self.half and not out_half else 0), **ptrs)
        self.w = w

    def decode(self, zc: np.ndarray, xz: np.ndarray | None, state0: np.ndarray, prefix5: np.ndarray | None,
               max_len: int, allow_end: bool, first_no_end: bool, greedy: bool, inv_tau: float, sf: float,
               U: np.ndarray | None, N: np.ndarray | None) -> list[np.ndarray]:
        """B sketches: each (end, 3) float32 rows (dx, dy, pen lifted) in model units.
        ``zc`` (B, 4K), ``xz`` (B, 4H) or None, ``state0`` (B, S), ``prefix5`` (P, 5), all
        float32 C-contiguous; ``U``/``N``: float32 C-contiguous (>= max_len, B, 2) or None (greedy)."""
        B = zc.shape[0]
        arrays = [a for a in (zc, xz, state0, prefix5, U, N) if a is not None]
        assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)
        assert state0.shape[0] == B and (xz is None or xz.shape[0] == B)
        if not greedy:
            assert U is not None and N is not None and U.shape == N.shape and U.shape[0] >= max_len
            assert U.shape[1:] == (B, 2)
        pts = np.empty((B, max_len, 3), np.float32)
        ends = np.empty(B, np.int32)
        P = 0 if prefix5 is None else len(prefix5)
        rc = self.lib.sk_decode_batch(
            ctypes.addressof(self.struct), B, zc.ctypes.data, None if xz is None else xz.ctypes.data,
            state0.ctypes.data, None if not P else prefix5.ctypes.data, P, max_len, int(allow_end), int(first_no_end),
            int(greedy), float(inv_tau), float(sf), None if greedy else U.ctypes.data,
            None if greedy else N.ctypes.data, pts.ctypes.data, ends.ctypes.data)
        if rc < 0:
            raise MemoryError("native sampler: out of memory")
        return [pts[b, :ends[b]] for b in range(B)]
