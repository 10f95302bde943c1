"""A lean decoding loop for LSTM decoders on the CPU, for the studio's latency target.

Same signature and the *same numbers* as :func:`sketchrnn.api.decode` (the oracle): every
floating-point operation and every draw from the random generator happens in the same
order with the same shapes, so a seed gives bit-identical sketches (checked in
``tests/test_studio_api.py``). What it saves is Python and dispatcher overhead: weights are
fetched once, no module calls or parameter dataclasses per step, the MDN quantities that
sampling does not use (``log(1 - rho^2)``) are not computed, and outputs are written into
one preallocated tensor. Models with other cells (layer-norm, hyper), on another device,
or in training mode go to :func:`sketchrnn.api.decode` unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["decode", "supports"]


def supports(loaded: Any) -> bool:
    """True when :func:`decode` runs its own loop for this model (plain LSTM decoder on CPU, eval)."""
    from ..model.cells import LSTMCell

    m = loaded.model
    cell = m.decoder.cell
    p = next(m.parameters())
    return (type(cell) is LSTMCell and not m.training and p.device.type == "cpu"
            and not loaded.config.use_input_dropout and not loaded.config.use_output_dropout)


def decode(loaded: Any, z: Any = None, n: int | None = None, temperature: float = 1.0, greedy: bool = False,
           seed: int | None = None, max_len: int | None = None, temperature_mode: str = "paper",
           prefix: np.ndarray | None = None, allow_end: bool = True) -> list[np.ndarray]:
    """Drop-in for :func:`sketchrnn.api.decode` (see there for the arguments)."""
    from .. import api

    if greedy or not supports(loaded) or temperature_mode not in ("magenta_py", "magenta_js", "paper"):
        return api.decode(loaded, z, n=n, temperature=temperature, greedy=greedy, seed=seed, max_len=max_len,
                          temperature_mode=temperature_mode, prefix=prefix, allow_end=allow_end)
    import torch

    with torch.no_grad():
        return _decode_lstm(loaded, z, n, temperature, seed, max_len, temperature_mode, prefix, allow_end)


def _decode_lstm(loaded: Any, z: Any, n: int | None, temperature: float, seed: int | None, max_len: int | None,
                 temperature_mode: str, prefix: np.ndarray | None, allow_end: bool) -> list[np.ndarray]:
    import torch
    import torch.nn.functional as F

    from .. import api
    from ..data.strokes import to_stroke5
    from ..errors import DataError

    if not (temperature > 0 and np.isfinite(temperature)):
        raise DataError(f"temperature must be a positive number, got {temperature}")
    model = loaded.model.eval()
    cfg = loaded.config
    dec = model.decoder
    cell = dec.cell
    dtype = cell.weight_ih.dtype
    scale = float(loaded.scale_factor)
    if cfg.conditional:
        if z is None:
            raise DataError(f"model {loaded.name} is conditional: give z (or use sample(), which draws z from the prior)")
        zt = torch.as_tensor(np.asarray(z), dtype=dtype)
        if zt.ndim == 1:
            zt = zt.unsqueeze(0)
        if zt.shape[-1] != cfg.z_size:
            raise DataError(f"z has size {zt.shape[-1]}, model {loaded.name} needs {cfg.z_size}")
        b = zt.shape[0]
    else:
        zt = None
        b = int(n or 1)
    max_len = int(max_len or cfg.max_seq_len)
    gen = api._generator(seed)

    H = cell.hidden_size
    w_ih, w_hh, bias, fb = cell.weight_ih, cell.weight_hh, cell.bias, cell.forget_bias
    w_out, b_out = dec.output.weight, dec.output.bias
    M = cfg.num_mixture
    tau = float(temperature)
    soft_tau = 0.5 + 0.5 * tau if temperature_mode == "magenta_js" else tau
    sigma_factor = tau if temperature_mode == "magenta_py" else math.sqrt(tau)

    state = dec.initial_state(zt, b)  # (B, 2H)
    c, h = state[:, :H], state[:, H:]

    def step(x: torch.Tensor) -> torch.Tensor:
        """One LSTMCell step (as LSTMCell.forward in eval mode) and the MDN head; returns out (B, 6M+3)."""
        nonlocal c, h
        inp = torch.cat([x, zt], dim=1) if zt is not None else x  # (B, 5 + Z)
        gates = torch.addmm(bias, inp, w_ih) + h @ w_hh  # (B, 4H)
        i, j, f, o = gates.chunk(4, dim=1)
        c = c * torch.sigmoid(f + fb) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return F.linear(h, w_out, b_out)

    x = torch.zeros(b, 5, dtype=dtype)
    x[:, 2] = 1.0  # start token (0, 0, 1, 0, 0)
    if prefix is not None:
        p5 = torch.from_numpy(to_stroke5(np.asarray(prefix, np.float32), len(prefix), scale)).to(dtype)  # (L+1, 5)
        for t in range(len(prefix)):
            step(x)
            x = p5[t + 1].expand(b, 5).clone()
    pts = torch.zeros(b, max_len, 3, dtype=torch.float32)
    ends = torch.full((b,), max_len, dtype=torch.long)
    done = torch.zeros(b, dtype=torch.bool)
    for t in range(max_len):
        out = step(x)
        pen_logits = out[:, :3]
        pi, mu_x, mu_y, log_sx, log_sy, rho_raw = out[:, 3:].split(M, dim=-1)  # 6 x (B, M)
        if not allow_end or (t == 0 and prefix is None):
            pen_logits[:, 2] = -1e9  # as api.decode: a sketch has at least one point
        log_pi = F.log_softmax(pi, dim=-1)
        # as mdn.sample_step (same operations, same generator draws, same order)
        pi_prob = torch.softmax(log_pi / soft_tau, dim=-1)  # (B, M)
        k = torch.multinomial(pi_prob, 1, generator=gen)  # (B, 1)
        pen_prob = torch.softmax(pen_logits / soft_tau, dim=-1)  # (B, 3)
        pen_idx = torch.multinomial(pen_prob, 1, generator=gen).reshape(b)
        mx, my = mu_x.gather(-1, k).squeeze(-1), mu_y.gather(-1, k).squeeze(-1)
        sx = torch.exp(log_sx.gather(-1, k).squeeze(-1)) * sigma_factor
        sy = torch.exp(log_sy.gather(-1, k).squeeze(-1)) * sigma_factor
        rho = torch.tanh(rho_raw).gather(-1, k).squeeze(-1)
        eps = torch.randn((2, b), generator=gen, dtype=mx.dtype)
        dx = mx + sx * eps[0]
        dy = my + sy * (rho * eps[0] + torch.sqrt(torch.clamp(1.0 - rho * rho, min=0.0)) * eps[1])
        newly = (pen_idx == 2) & ~done
        ends[newly] = t
        done |= pen_idx == 2
        pts[:, t, 0] = dx * scale
        pts[:, t, 1] = dy * scale
        pts[:, t, 2] = (pen_idx == 1).float()
        if bool(done.all()):
            break
        x = torch.cat([dx.unsqueeze(-1), dy.unsqueeze(-1), F.one_hot(pen_idx, 3).to(dtype)], dim=-1)  # (B, 5)
    result = []
    for i in range(b):
        s = pts[i, : int(ends[i])].numpy().copy()
        if len(s):
            s[-1, 2] = 1.0  # the pen lifts after the last point
        result.append(s)
    return result
