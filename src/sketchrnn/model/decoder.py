"""Autoregressive RNN decoder of sketch-rnn with its MDN head (Ha & Eck 2017, Sec. 3.2, Eq. 3-4).

Conditional (VAE) model: the initial state is h_0 = tanh(W_z z + b_z) (Eq. 3, over the
whole flat cell state, as Magenta) and each step reads x_t = [S_{t-1}; z] (5 + N_z).
Unconditional model: zero initial state, input S_{t-1} only. Each step's output h_t goes
through y_t = W_y h_t + b_y (6M + 3 numbers, layout in :mod:`.mdn`).

Optional input dropout (on [S_{t-1}; z]) and output dropout (on h_t before the head) mirror
Magenta's ``DropoutWrapper``: inverted dropout, fresh mask every step, training mode only.

Class-conditional option (``cfg.class_conditional``, off by default): a learned embedding
``e = E[class_id]`` (``class_embedding_size``) is appended to every step's input,
x_t = [S_{t-1}; z; e]; the initial state is unchanged. With the option off the module,
its parameters and its arithmetic are exactly those of the plain decoder.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..precision import cpu_fp32_reduced, cuda_fp32_reduced, full_fp32_matmul
from .cells import make_cell

__all__ = ["Decoder", "Float32Head"]


def _autocast_on(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4: no device argument
        return bool(torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled())


@contextlib.contextmanager
def _float32_products(device_type: str) -> Iterator[None]:
    """Within the block: float32 products (no TF32 / bf16 inside float32 matmuls, no autocast)."""
    with full_fp32_matmul(), torch.autocast(device_type, enabled=False):
        yield


class _Float32Linear(torch.autograd.Function):
    """y = x W^T + b with all three products (forward, dx, dW) in float32."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        ctx.x_dtype = x.dtype
        dt = torch.promote_types(w.dtype, torch.float32)  # float32 (float64 stays float64)
        x = x.to(dt)
        ctx.save_for_backward(x, w)
        with _float32_products(x.device.type):
            return F.linear(x, w.to(dt), b.to(dt))

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        with _float32_products(g.device.type):
            g = g.to(x.dtype)
            g2 = g.reshape(-1, g.shape[-1])  # (N, 6M+3)
            gx = (g @ w.to(x.dtype)).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
            gw = (g2.t() @ x.reshape(-1, x.shape[-1])).to(w.dtype) if ctx.needs_input_grad[1] else None
            gb = g2.sum(0).to(w.dtype) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


class Float32Head(nn.Linear):
    """The mixture head ``Linear(H, 6M+3)``, multiplied in float32 even where the rest of the
    model runs TF32 products (``train.matmul_precision: high``), bf16 products (``medium``, CUDA
    and oneDNN CPUs) or autocast.

    Why: the head turns h into the mixture's means and log-sigmas; a well-trained model has
    sharp components, and TF32's 10-bit mantissa in the head's products (its backward above
    all: dW = g^T h) holds training back in the late phase. Measured 2026-11-26 on the CPU with
    TF32 emulated in this layer alone (benchmarks/NOTES_gpu.md): from the same cat LSTM 512
    state, the weight average's validation loss went -0.0041 -> -0.0062 in 44 steps in float32
    and stayed at -0.0040 with the TF32 head, which is where the H200's TF32 chunk had been
    flat for 2,000 steps. Cost not timed yet: ~48 GFLOP of float32 products per batch-1000,
    T-130 step (~1 ms at an H100's float32 rate) beside that step's ~21 ms. Elsewhere (CPU float32,
    ``highest``) it is ``nn.Linear`` exactly."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        dev = x.device.type
        reduced = x.dtype in (torch.float16, torch.bfloat16) or _autocast_on(dev) or (
            dev == "cuda" and x.dtype == torch.float32 and cuda_fp32_reduced()) or (
            dev == "cpu" and x.dtype == torch.float32 and cpu_fp32_reduced())
        if not reduced:  # float32 / float64 products as they are
            return F.linear(x, self.weight, self.bias)
        return _Float32Linear.apply(x, self.weight, self.bias)


class Decoder(nn.Module):
    """``cell``, ``init_state`` (Linear(Z, S) or None), ``output`` (Linear(H, 6M+3), always
    multiplied in float32: :class:`Float32Head`)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conditional = bool(cfg.conditional)
        in_size = 5 + (cfg.z_size if self.conditional else 0)
        self.class_embedding: nn.Embedding | None = None
        if getattr(cfg, "class_conditional", False):
            self.class_embedding = nn.Embedding(cfg.num_classes, cfg.class_embedding_size)
            in_size += cfg.class_embedding_size
        self.cell = make_cell(cfg.dec_model, in_size, cfg.dec_rnn_size,
                              use_recurrent_dropout=cfg.use_recurrent_dropout,
                              dropout_keep=cfg.recurrent_dropout_prob,
                              hyper_rnn_size=cfg.hyper_rnn_size, hyper_embedding_size=cfg.hyper_embedding_size)
        self.init_state: nn.Linear | None = None
        if self.conditional:
            self.init_state = nn.Linear(cfg.z_size, self.cell.state_size)
            nn.init.normal_(self.init_state.weight, 0.0, 0.001)  # Magenta: gaussian, weight_start=0.001
            nn.init.zeros_(self.init_state.bias)
        self.output = Float32Head(cfg.dec_rnn_size, cfg.output_size)
        # Magenta's RNN/output_w and output_b use TF's default glorot_uniform (1-D: fans = n)
        nn.init.xavier_uniform_(self.output.weight)
        with torch.no_grad():
            lim = math.sqrt(3.0 / cfg.output_size)
            self.output.bias.uniform_(-lim, lim)

    def initial_state(self, z: Tensor | None, batch: int) -> Tensor:
        """(B, S): tanh(W z + b) when conditional (z required), zeros otherwise."""
        if self.init_state is not None:
            if z is None:
                raise ValueError("a conditional decoder needs z (B, z_size) for its initial state")
            return torch.tanh(self.init_state(z))
        return self.cell.initial_state(batch)

    def _cond(self, z: Tensor | None, class_ids: Tensor | None) -> Tensor | None:
        """Per-sketch conditioning appended to every input: [z; e] (B, C), or None."""
        parts = []
        if self.conditional:
            if z is None:
                raise ValueError("a conditional decoder needs z (B, z_size) at every step")
            parts.append(z)
        if self.class_embedding is not None:
            if class_ids is None:
                raise ValueError("a class-conditional decoder needs class_ids (B,) (model.class_conditional=true)")
            parts.append(self.class_embedding(class_ids.to(self.class_embedding.weight.device, torch.long)))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (B, Z + E)

    def _step(self, x_t: Tensor, cond: Tensor | None, state: Tensor) -> tuple[Tensor, Tensor]:
        inp = x_t if cond is None else torch.cat([x_t, cond], dim=1)  # (B, 5 + C)
        if self.training and self.cfg.use_input_dropout:
            inp = F.dropout(inp, p=1.0 - self.cfg.input_dropout_prob, training=True)
        h, state = self.cell(inp, state)  # (B, H), (B, S)
        if self.training and self.cfg.use_output_dropout:
            h = F.dropout(h, p=1.0 - self.cfg.output_dropout_prob, training=True)
        return self.output(h), state

    def step(self, x_t: Tensor, z: Tensor | None, state: Tensor,
             class_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step: x_t (B, 5) is the previous point S_{t-1}; returns (out (B, 6M+3), new state).
        ``class_ids`` (B,) int64 is required only by a class-conditional decoder."""
        return self._step(x_t, self._cond(z, class_ids), state)

    def forward(self, inputs: Tensor, z: Tensor | None, state: Tensor | None = None,
                class_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Teacher-forced pass: inputs (B, T, 5) -> (out (B, T, 6M+3), final state (B, S))."""
        B, T, _ = inputs.shape
        if state is None:
            state = self.initial_state(z, B)
        cond = self._cond(z, class_ids)  # computed once for all T steps
        outs = []
        for t in range(T):
            out_t, state = self._step(inputs[:, t], cond, state)
            outs.append(out_t)
        if not outs:
            return inputs.new_zeros(B, 0, self.cfg.output_size), state
        return torch.stack(outs, dim=1), state  # (B, T, 6M+3)
