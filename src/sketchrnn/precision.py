"""How float32 matrix products run on CUDA and on the CPU, read and set without tripping torch's API checks.

torch 2.9 brought per-backend settings (``torch.backends.cuda.matmul.fp32_precision`` =
"ieee" / "tf32" / "none" = inherit ``torch.backends.fp32_precision``) beside the legacy ones
(``torch.backends.cuda.matmul.allow_tf32``, ``torch.set_float32_matmul_precision``). Some
releases (seen with torch 2.11 on an H100, 2026-11-27) raise ``RuntimeError: PyTorch is
checking the matmul precision without a specific backend name ... mix of the legacy and new
APIs`` from ``torch.get_float32_matmul_precision()`` once a user has set the legacy
``allow_tf32`` flags — the common idiom. Library code must therefore never call that generic
getter: it asks the CUDA matmul backend itself, and restores exactly what it changed.

On the CPU the same torch releases have ``torch.backends.mkldnn.matmul.fp32_precision``:
"bf16" lets oneDNN multiply float32 tensors with bfloat16 inputs and float32 accumulation
(AMX or AVX512-BF16 units; the CPU analogue of TF32). ``train.matmul_precision: medium`` turns
it on for training steps only (:func:`cpu_bf16_products`); measured figures in
benchmarks/RESULTS.md ("bfloat16 products on the CPU").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["cpu_bf16_available", "cpu_bf16_products", "cpu_fp32_reduced", "cuda_fp32_reduced", "full_fp32_matmul"]


def _new_api() -> bool:
    return hasattr(torch.backends.cuda.matmul, "fp32_precision")


def _mkldnn_matmul():
    """oneDNN's matmul settings (torch >= 2.9), or None."""
    mk = getattr(torch.backends, "mkldnn", None)
    m = getattr(mk, "matmul", None)
    return m if m is not None and hasattr(m, "fp32_precision") else None


def cpu_bf16_available() -> bool:
    """Whether float32 products on this CPU can run in bfloat16 (oneDNN with AVX512-BF16 or AMX,
    and a torch with the per-backend precision settings)."""
    if _mkldnn_matmul() is None or not torch.backends.mkldnn.is_available():
        return False
    cpu = getattr(torch, "cpu", None)
    probes = [getattr(cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(f()) for f in probes if f is not None)


def cpu_fp32_reduced() -> bool:
    """Whether float32 matrix products on the CPU may use bfloat16 (oneDNN)."""
    m = _mkldnn_matmul()
    if m is None:
        return False
    mode = m.fp32_precision
    if mode == "none":  # inherits oneDNN's generic setting, which inherits torch's
        mode = getattr(torch.backends.mkldnn, "fp32_precision", "none")
        if mode == "none":
            mode = getattr(torch.backends, "fp32_precision", "none")
    return mode not in ("ieee", "none")


@contextlib.contextmanager
def cpu_bf16_products(enabled: bool = True) -> Iterator[None]:
    """Float32 matrix products on the CPU in bfloat16 within the block (where
    :func:`cpu_bf16_available`; otherwise, or with ``enabled`` False, nothing changes)."""
    if not enabled or not cpu_bf16_available():  # available implies torch has the oneDNN setting
        yield
        return
    m = _mkldnn_matmul()
    old = m.fp32_precision
    m.fp32_precision = "bf16"
    try:
        yield
    finally:
        m.fp32_precision = old


def cuda_fp32_reduced() -> bool:
    """Whether float32 matrix products on CUDA may use reduced precision (TF32 or bf16 passes)."""
    if _new_api():
        mode = torch.backends.cuda.matmul.fp32_precision
        if mode == "none":  # inherits the generic setting ("none" there too = full float32)
            mode = getattr(torch.backends, "fp32_precision", "none")
        return mode not in ("ieee", "none")
    return torch.get_float32_matmul_precision() != "highest"  # torch < 2.9: no mixed-API check


@contextlib.contextmanager
def full_fp32_matmul() -> Iterator[None]:
    """Float32 matrix products on CUDA and on the CPU (oneDNN) are full IEEE float32 within the
    block; whatever was set before (by either API) is back after it, exceptions included."""
    if _new_api():
        mk = _mkldnn_matmul()
        old = torch.backends.cuda.matmul.fp32_precision
        old_cpu = mk.fp32_precision if mk is not None else None
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        if mk is not None:
            mk.fp32_precision = "ieee"
        try:
            yield
        finally:
            torch.backends.cuda.matmul.fp32_precision = old
            if mk is not None:
                mk.fp32_precision = old_cpu
        return
    old_generic = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old_generic)
