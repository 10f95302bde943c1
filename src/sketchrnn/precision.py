"""How float32 matrix products run on CUDA, read and set without tripping torch's API checks.

torch 2.9 brought per-backend settings (``torch.backends.cuda.matmul.fp32_precision`` =
"ieee" / "tf32" / "none" = inherit ``torch.backends.fp32_precision``) beside the legacy ones
(``torch.backends.cuda.matmul.allow_tf32``, ``torch.set_float32_matmul_precision``). Some
releases (seen with torch 2.11 on an H100, 2026-11-27) raise ``RuntimeError: PyTorch is
checking the matmul precision without a specific backend name ... mix of the legacy and new
APIs`` from ``torch.get_float32_matmul_precision()`` once a user has set the legacy
``allow_tf32`` flags — the common idiom. Library code must therefore never call that generic
getter: it asks the CUDA matmul backend itself, and restores exactly what it changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["cuda_fp32_reduced", "full_fp32_matmul"]


def _new_api() -> bool:
    return hasattr(torch.backends.cuda.matmul, "fp32_precision")


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
    """Float32 matrix products on CUDA are full IEEE float32 within the block; whatever was set
    before (by either API) is back after it, exceptions included."""
    if _new_api():
        old = torch.backends.cuda.matmul.fp32_precision
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            torch.backends.cuda.matmul.fp32_precision = old
        return
    old_generic = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old_generic)
