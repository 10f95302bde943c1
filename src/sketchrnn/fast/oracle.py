"""Run the plain model (the oracle) with given dropout masks, reparameterisation noise or
sampling random numbers.

For tests and benchmarks only: to compare :func:`sketchrnn.fast.decoder.fast_losses` with
:meth:`SketchRNN.losses` exactly, both must use the same random numbers. The oracle draws
its dropout masks inside ``F.dropout`` (modules ``sketchrnn.model.cells`` and
``sketchrnn.model.decoder``) and its noise with ``torch.randn_like`` (``sketchrnn.model.
sketch_rnn``); :func:`oracle_losses` replaces those three names, for the duration of one
call, by stand-ins that hand out the given tensors in call order, and restores them after.
The model code itself is not changed. Not thread-safe (it swaps module attributes).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .decoder import DropoutMasks

__all__ = ["oracle_losses", "oracle_decode", "StreamTorch"]


class _MaskedF:
    """``torch.nn.functional`` with ``dropout(x) = x * next mask``."""

    def __init__(self, masks: list[Tensor]) -> None:
        self.masks = list(masks)

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.nn.functional, name)

    def dropout(self, x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
        if not self.masks:
            raise AssertionError("the oracle asked for more dropout masks than were given")
        m = self.masks.pop(0)
        if m.shape != x.shape:
            raise AssertionError(f"dropout mask of shape {tuple(m.shape)} for an input of shape {tuple(x.shape)}")
        return x * m


class _FixedNoiseTorch:
    """``torch`` with ``randn_like`` returning a given tensor."""

    def __init__(self, eps: Tensor) -> None:
        self.eps = eps

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def randn_like(self, t: Tensor, **kw: Any) -> Tensor:
        return self.eps.to(dtype=t.dtype, device=t.device)


def oracle_losses(model: Any, strokes5: Tensor, lengths: Tensor, masks: DropoutMasks, eps: Tensor | None = None,
                  kl_tolerance: float = 0.2, class_ids: Tensor | None = None) -> dict[str, Tensor]:
    """``model.losses(...)`` (the plain code) with dropout masks from ``masks`` and z-noise ``eps``.

    Mask order as the oracle asks: encoder forward cell steps 0..T_enc-1 (``masks.enc[:, 0]``),
    encoder backward cell (``masks.enc[:, 1]``), decoder cell steps (``masks.dec``); decoder
    input / output dropout alternate per step. Raises AssertionError if a mask is left over
    or missing (the comparison would not be like for like)."""
    import sketchrnn.model.cells as cells_mod
    import sketchrnn.model.decoder as decoder_mod
    import sketchrnn.model.sketch_rnn as sketch_mod

    T = strokes5.shape[1] - 1
    cell_q: list[Tensor] = []
    if masks.enc is not None:
        cell_q += list(masks.enc[:, 0].unbind(0)) + list(masks.enc[:, 1].unbind(0))
    if masks.dec is not None:
        cell_q += list(masks.dec.unbind(0))
    dec_q: list[Tensor] = []
    for t in range(T):
        dec_q += [m[t] for m in (masks.dec_in, masks.dec_out) if m is not None]
    saved = (cells_mod.F, decoder_mod.F, sketch_mod.torch)
    fc, fd = _MaskedF(cell_q), _MaskedF(dec_q)
    cells_mod.F, decoder_mod.F = fc, fd
    if eps is not None:
        sketch_mod.torch = _FixedNoiseTorch(eps)
    try:
        kw = {"class_ids": class_ids} if class_ids is not None else {}
        out = model.losses(strokes5, lengths, kl_tolerance=kl_tolerance, **kw)
    finally:
        cells_mod.F, decoder_mod.F, sketch_mod.torch = saved
    if fc.masks or fd.masks:
        raise AssertionError(f"{len(fc.masks) + len(fd.masks)} dropout masks were not used by the oracle")
    return out


class StreamTorch:
    """Stands in for ``torch`` inside ``sketchrnn.model.mdn``: ``multinomial`` becomes an inverse
    CDF on ``U[t]`` and ``randn`` returns ``N[t]`` (the fast sampler's random numbers, see
    :func:`sketchrnn.fast.sampler.draw_random`); every other attribute is torch's."""

    def __init__(self, U: Any, N: Any) -> None:
        self.U, self.N = torch.as_tensor(U), torch.as_tensor(N)
        self.t = 0  # sampling step
        self.j = 0  # 0: mixture index, 1: pen state

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def multinomial(self, probs: Tensor, num_samples: int, generator: Any = None) -> Tensor:
        assert num_samples == 1
        u = self.U[self.t, :, self.j].to(probs.dtype)
        self.j += 1
        cdf = probs.cumsum(-1)
        k = (cdf < u[:, None] * cdf[:, -1:]).sum(-1).clamp(max=probs.shape[-1] - 1)
        return k.unsqueeze(-1)

    def randn(self, shape: Any, generator: Any = None, device: Any = None, dtype: Any = None) -> Tensor:
        assert self.j == 2, "sample_step draws pi, pen, then the normals"
        out = self.N[self.t].t().to(dtype).contiguous()  # (2, B)
        self.t += 1
        self.j = 0
        return out


def oracle_decode(model: Any, z: Any, n: int, random: tuple[Any, Any], **kw: Any) -> list:
    """``sketchrnn.api.decode(model, z, n=n, fast=False, **kw)`` (the plain code) drawing from
    ``random=(U, N)`` as :class:`sketchrnn.fast.sampler.FastSampler` does. Not thread-safe."""
    import sketchrnn.model.mdn as mdn_mod
    from sketchrnn import api

    saved = mdn_mod.torch
    mdn_mod.torch = StreamTorch(*random)
    try:
        return api.decode(model, z, n=n, fast=False, **kw)
    finally:
        mdn_mod.torch = saved
