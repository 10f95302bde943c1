"""Shared test helper: random stroke-5 batches laid out as docs/ARCHITECTURE.md describes."""

from __future__ import annotations

import torch


def make_batch(lengths: list[int], T: int, seed: int = 0, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T+1, 5) with the start token, L random points per sketch (pen lifted ~20 %), end padding."""
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    x = torch.zeros(B, T + 1, 5, dtype=dtype)
    x[:, 0, 2] = 1.0
    for b, L in enumerate(lengths):
        x[b, 1:L + 1, :2] = torch.randn(L, 2, generator=g, dtype=dtype)
        lifted = torch.rand(L, generator=g) < 0.2
        x[b, 1:L + 1, 2] = (~lifted).to(dtype)
        x[b, 1:L + 1, 3] = lifted.to(dtype)
        x[b, L + 1:, 4] = 1.0
    return x, torch.tensor(lengths, dtype=torch.long)
