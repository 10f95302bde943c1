"""Function-preserving widening of the bidirectional LSTM encoder (Net2Net-style growth).

Chen, Goodfellow & Shlens 2016, "Net2Net: Accelerating Learning via Knowledge Transfer"
(arXiv:1511.05641): a trained network is grown into a wider one that computes the same
function, so training goes on from where it stood instead of from scratch.

Here each direction's LSTM goes from E to E' > E units: the new units get random input and
recurrent weights (TensorFlow's glorot_uniform / orthogonal blocks as a fresh cell), the old
units' gates read nothing from the new units (those rows of W_hh are zero), and the new
units' columns of the mu / presig projections are zero. So mu(x) and sigma(x) are exactly
the old ones, and the new units start learning through the projections' gradient
(h_new x dL/dmu, nonzero). Used to test whether the encoder's capacity is what leaves the
amortisation gap (benchmarks/NOTES_gpu.md, thirty-fourth session).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from .cells import LSTMCell

__all__ = ["widen_encoder_state"]


def _widen_gate_cols(w: Tensor, H: int, H2: int, fresh: Tensor) -> Tensor:
    """(R, 4H) in gate blocks i, j, f, o -> (R, 4H2): each block's old columns kept, new ones from ``fresh`` (R, 4H2)."""
    out = fresh.clone()
    for g in range(4):
        out[:, g * H2:g * H2 + H] = w[:, g * H:(g + 1) * H]
    return out


def widen_encoder_state(state: dict[str, Tensor], old_size: int, new_size: int, seed: int = 0) -> dict[str, Tensor]:
    """A copy of a model state_dict with ``encoder.*`` grown from ``old_size`` to ``new_size`` units
    per direction; the encoder's mu and presig are unchanged for every input. Plain LSTM encoders only."""
    H, H2 = int(old_size), int(new_size)
    if H2 <= H:
        raise ConfigError(f"widen-encoder: the new size {H2} must exceed the current {H}")
    for key in ("encoder.cell_fw.weight_hh", "encoder.mu.weight"):
        if key not in state:
            raise ConfigError(f"widen-encoder: the model has no '{key}'; only conditional models with a plain "
                              "LSTM encoder (model.enc_model=lstm) can be widened")
    cell_keys = {k.split(".", 2)[2] for k in state if k.startswith(("encoder.cell_fw.", "encoder.cell_bw."))}
    if cell_keys != {"weight_ih", "weight_hh", "bias"} or tuple(state["encoder.cell_fw.weight_hh"].shape) != (H, 4 * H):
        raise ConfigError(f"widen-encoder: encoder.cell_fw.weight_hh is {tuple(state['encoder.cell_fw.weight_hh'].shape)} "
                          f"with {sorted(cell_keys)}, not an LSTM of {H} units; only plain LSTM encoders (model.enc_model=lstm) can be widened")
    gen = torch.Generator().manual_seed(int(seed))
    new = dict(state)
    for d in ("fw", "bw"):
        p = f"encoder.cell_{d}."
        w_ih, w_hh, b = state[p + "weight_ih"], state[p + "weight_hh"], state[p + "bias"]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
            fresh = LSTMCell(w_ih.shape[0], H2)  # the initialisation a fresh cell of the new size gets
        fresh_ih = fresh.weight_ih.detach().to(w_ih.dtype)
        fresh_hh = fresh.weight_hh.detach().to(w_hh.dtype)
        new[p + "weight_ih"] = _widen_gate_cols(w_ih, H, H2, fresh_ih)  # (I, 4H2)
        hh = _widen_gate_cols(w_hh, H, H2, torch.zeros(H, 4 * H2, dtype=w_hh.dtype))  # rows: old units
        hh_new_rows = fresh_hh[H:].clone()  # (H2-H, 4H2): new units feed only the new units' gates
        for g in range(4):
            hh_new_rows[:, g * H2:g * H2 + H] = 0.0
            hh[:, g * H2 + H:(g + 1) * H2] = fresh_hh[:H, g * H2 + H:(g + 1) * H2]  # old units -> new gates
        new[p + "weight_hh"] = torch.cat([hh, hh_new_rows], dim=0)  # (H2, 4H2)
        new[p + "bias"] = _widen_gate_cols(b.unsqueeze(0), H, H2, torch.zeros(1, 4 * H2, dtype=b.dtype)).squeeze(0)
    for name in ("mu", "presig"):
        w = state[f"encoder.{name}.weight"]  # (Z, 2H): [h_fw; h_bw]
        Z = w.shape[0]
        w2 = torch.zeros(Z, 2 * H2, dtype=w.dtype)
        w2[:, :H] = w[:, :H]
        w2[:, H2:H2 + H] = w[:, H:]
        new[f"encoder.{name}.weight"] = w2  # (Z, 2H2), the new units' columns zero
    return new
