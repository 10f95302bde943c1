"""Recurrent cells of sketch-rnn: LSTM, LayerNorm LSTM and HyperLSTM, one step at a time.

Semantics follow Magenta's ``sketch_rnn/rnn.py`` (Ha & Eck 2017, "A Neural
Representation of Sketch Drawings", arXiv:1704.03477, Sec. 3 and App. "Recurrent
Neural Network Cells"):

* gate order ``i, j, f, o`` (input gate, candidate, forget gate, output gate), a forget
  bias of 1.0 added inside the sigmoid: ``c' = c*sigmoid(f + 1) + sigmoid(i)*g``;
* recurrent dropout without memory loss (Semeniuta et al. 2016, arXiv:1603.05118):
  dropout (inverted, keep probability ``dropout_keep``) on ``g = tanh(j)`` only, with a
  fresh mask every step, only in training mode;
* ``W_hh`` initialised orthogonal per gate block (Magenta's ``lstm_ortho_initializer``);
  ``W_xh`` with TensorFlow's default ``glorot_uniform`` (Magenta passes no initializer);
  biases zero;
* LayerNorm LSTM (Ba et al. 2016, arXiv:1607.06450): no bias before the norm, each of
  the four gate blocks normalised separately with its own gain/shift (``layer_norm_all``),
  ``h' = tanh(LN(c')) * sigmoid(o)``; epsilon 1e-3 inside the square root as Magenta;
* HyperLSTM (Ha et al. 2016, arXiv:1609.09106): a small LayerNorm LSTM reads ``[x, h]``
  and its output scales the eight gate pre-activation blocks (``hyper_norm``).

Every cell has a flat state ``(B, state_size)`` and ``forward(x, state) -> (h, state)``.
State layouts: LSTM / LayerNorm ``cat(c, h)``; Hyper ``cat(c, h, hyper_c, hyper_h)``
(Magenta's own order differs: ``cat(h, c)`` for LayerNorm and ``cat(h, hyper_h, c,
hyper_c)`` for Hyper; an importer of conditional Magenta models must permute the rows
of the initial-state projection accordingly).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["LSTMCell", "LayerNormLSTMCell", "HyperLSTMCell", "make_cell", "CELL_CLASSES"]

LN_EPS = 1e-3  # Magenta's layer_norm / layer_norm_all epsilon


def _glorot_uniform_(w: Tensor) -> Tensor:
    """TF's default ``glorot_uniform`` for a (fan_in, fan_out) matrix or a 1-D vector (fans = n)."""
    if w.dim() == 1:
        limit = math.sqrt(3.0 / w.shape[0])  # sqrt(6 / (n + n))
    else:
        limit = math.sqrt(6.0 / (w.shape[0] + w.shape[1]))
    with torch.no_grad():
        return w.uniform_(-limit, limit)


def _ortho_blocks_(w: Tensor, n_blocks: int = 4) -> Tensor:
    """Magenta's ``lstm_ortho_initializer``: each (rows, H) gate block an orthogonal matrix."""
    with torch.no_grad():
        for blk in w.chunk(n_blocks, dim=1):
            nn.init.orthogonal_(blk)
    return w


def _layer_norm_blocks(x: Tensor, n_blocks: int, gamma: Tensor, beta: Tensor) -> Tensor:
    """Magenta's ``layer_norm_all``: normalise each of ``n_blocks`` blocks of the last dim separately."""
    B = x.shape[0]
    xb = x.reshape(B, n_blocks, -1)  # (B, n_blocks, H)
    xb = F.layer_norm(xb, xb.shape[-1:], eps=LN_EPS)  # biased variance, rsqrt(var + eps)
    return xb.reshape(B, -1) * gamma + beta  # (B, n_blocks*H)


def _layer_norm(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """Magenta's ``layer_norm`` over the last dim (epsilon 1e-3)."""
    return F.layer_norm(x, x.shape[-1:], eps=LN_EPS) * gamma + beta


class _CellBase(nn.Module):
    """Shared bits: sizes, zero state, h extraction and recurrent dropout on g."""

    input_size: int
    hidden_size: int
    state_size: int

    def __init__(self, input_size: int, hidden_size: int, use_recurrent_dropout: bool,
                 dropout_keep: float, forget_bias: float) -> None:
        super().__init__()
        if not (0.0 < dropout_keep <= 1.0):
            raise ConfigError(f"recurrent dropout keep probability must be in (0, 1], got {dropout_keep}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.use_recurrent_dropout = bool(use_recurrent_dropout)
        self.dropout_keep = float(dropout_keep)
        self.forget_bias = float(forget_bias)

    def _param(self) -> Tensor:
        return next(self.parameters())

    def initial_state(self, batch: int, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> Tensor:
        """Zero state (B, state_size) on the parameters' device/dtype unless given."""
        p = self._param()
        return torch.zeros(batch, self.state_size, device=device or p.device, dtype=dtype or p.dtype)

    def hidden(self, state: Tensor) -> Tensor:
        """The output h (B, H) held in a state; every layout here stores it at [H, 2H)."""
        H = self.hidden_size
        return state[:, H:2 * H]

    def _candidate(self, j: Tensor) -> Tensor:
        """g = tanh(j), with recurrent dropout (inverted scaling 1/keep) in training mode."""
        g = torch.tanh(j)
        if self.training and self.use_recurrent_dropout and self.dropout_keep < 1.0:
            g = F.dropout(g, p=1.0 - self.dropout_keep, training=True)
        return g

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"recurrent_dropout={'keep %.2f' % self.dropout_keep if self.use_recurrent_dropout else 'off'}")


class LSTMCell(_CellBase):
    """Magenta's ``LSTMCell``: gates = x @ weight_ih + h @ weight_hh + bias, order i, j, f, o.

    Parameters: ``weight_ih`` (I, 4H), ``weight_hh`` (H, 4H), ``bias`` (4H) — the same
    layout as @magenta/sketch's ``W_xh``, ``W_hh``, ``bias`` (a plain copy on import).
    State: ``cat(c, h)`` (B, 2H).
    """

    def __init__(self, input_size: int, hidden_size: int, use_recurrent_dropout: bool = False,
                 dropout_keep: float = 0.9, forget_bias: float = 1.0) -> None:
        super().__init__(input_size, hidden_size, use_recurrent_dropout, dropout_keep, forget_bias)
        H = self.hidden_size
        self.state_size = 2 * H
        self.weight_ih = nn.Parameter(torch.empty(self.input_size, 4 * H))
        self.weight_hh = nn.Parameter(torch.empty(H, 4 * H))
        self.bias = nn.Parameter(torch.zeros(4 * H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _glorot_uniform_(self.weight_ih)
        _ortho_blocks_(self.weight_hh)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        H = self.hidden_size
        c, h = state[:, :H], state[:, H:]  # (B, H) each
        gates = torch.addmm(self.bias, x, self.weight_ih) + h @ self.weight_hh  # (B, 4H)
        i, j, f, o = gates.chunk(4, dim=1)
        new_c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * self._candidate(j)
        new_h = torch.tanh(new_c) * torch.sigmoid(o)
        return new_h, torch.cat([new_c, new_h], dim=1)


class LayerNormLSTMCell(_CellBase):
    """Magenta's ``LayerNormLSTMCell`` (no gate bias; per-gate-block LN; LN on c before tanh).

    Parameters: ``weight_ih`` (I, 4H), ``weight_hh`` (H, 4H), ``ln_gamma``/``ln_beta`` (4H)
    for the gate blocks (Magenta ``ln_all``), ``ln_c_gamma``/``ln_c_beta`` (H) for the cell
    (Magenta ``ln_c``). State: ``cat(c, h)`` (B, 2H).
    """

    def __init__(self, input_size: int, hidden_size: int, use_recurrent_dropout: bool = False,
                 dropout_keep: float = 0.9, forget_bias: float = 1.0) -> None:
        super().__init__(input_size, hidden_size, use_recurrent_dropout, dropout_keep, forget_bias)
        H = self.hidden_size
        self.state_size = 2 * H
        self.weight_ih = nn.Parameter(torch.empty(self.input_size, 4 * H))
        self.weight_hh = nn.Parameter(torch.empty(H, 4 * H))
        self.ln_gamma = nn.Parameter(torch.ones(4 * H))
        self.ln_beta = nn.Parameter(torch.zeros(4 * H))
        self.ln_c_gamma = nn.Parameter(torch.ones(H))
        self.ln_c_beta = nn.Parameter(torch.zeros(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _glorot_uniform_(self.weight_ih)
        _ortho_blocks_(self.weight_hh)
        nn.init.ones_(self.ln_gamma)
        nn.init.zeros_(self.ln_beta)
        nn.init.ones_(self.ln_c_gamma)
        nn.init.zeros_(self.ln_c_beta)

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        H = self.hidden_size
        c, h = state[:, :H], state[:, H:]  # (B, H) each
        gates = x @ self.weight_ih + h @ self.weight_hh  # (B, 4H), no bias before LN
        gates = _layer_norm_blocks(gates, 4, self.ln_gamma, self.ln_beta)
        i, j, f, o = gates.chunk(4, dim=1)
        new_c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * self._candidate(j)
        new_h = torch.tanh(_layer_norm(new_c, self.ln_c_gamma, self.ln_c_beta)) * torch.sigmoid(o)
        return new_h, torch.cat([new_c, new_h], dim=1)


class HyperLSTMCell(_CellBase):
    """Magenta's ``HyperLSTMCell`` (Ha et al. 2016) with layer norm, as sketch-rnn uses it.

    A hyper cell (LayerNorm LSTM, ``hyper_size`` units) reads ``[x, h]``; its output
    ``hh`` (B, Nh) gives, per gate block g in (i, j, f, o), embeddings
    ``zw = hh @ zw_weight + zw_bias`` (E per block) and scales ``alpha = zw @ alpha_w``
    (Magenta ``hyper_norm``); the h-blocks also get a shift ``beta = (hh @ zb_weight) @ beta_w``:

        pre = alpha_x * (x @ W_ih) + alpha_h * (h @ W_hh) + beta_h + bias     (B, 4H)

    then per-block layer norm, the LSTM update and ``h' = tanh(LN(c')) * sigmoid(o)``.
    Initialisation as Magenta: zw weights 0 and bias 1, alpha weights ``0.1 / E``
    (so alpha starts at 0.1, Cooijmans et al.'s init gamma), zb weights N(0, 0.01²),
    beta weights 0.

    The eight Magenta ``hyper_{i,j,f,o}{x,h}`` sub-layers are stored stacked per gate
    block: ``*_zw_weight`` (Nh, 4E) with columns ``[g*E:(g+1)*E]`` for block g,
    ``*_alpha`` (4, E, H), ``h_zb_weight`` (Nh, 4E), ``h_beta`` (4, E, H).
    State: ``cat(c, h, hyper_c, hyper_h)`` (B, 2H + 2Nh).
    """

    def __init__(self, input_size: int, hidden_size: int, use_recurrent_dropout: bool = False,
                 dropout_keep: float = 0.9, forget_bias: float = 1.0, hyper_size: int = 256,
                 hyper_embedding_size: int = 32, use_layer_norm: bool = True,
                 hyper_use_recurrent_dropout: bool = False) -> None:
        super().__init__(input_size, hidden_size, use_recurrent_dropout, dropout_keep, forget_bias)
        H, Nh, E = self.hidden_size, int(hyper_size), int(hyper_embedding_size)
        self.hyper_size, self.hyper_embedding_size = Nh, E
        self.use_layer_norm = bool(use_layer_norm)
        self.state_size = 2 * H + 2 * Nh
        hyper_cls = LayerNormLSTMCell if self.use_layer_norm else LSTMCell
        self.hyper_cell = hyper_cls(self.input_size + H, Nh, use_recurrent_dropout=hyper_use_recurrent_dropout,
                                    dropout_keep=dropout_keep, forget_bias=forget_bias)
        self.weight_ih = nn.Parameter(torch.empty(self.input_size, 4 * H))
        self.weight_hh = nn.Parameter(torch.empty(H, 4 * H))
        self.bias = nn.Parameter(torch.zeros(4 * H))
        # hyper_norm of the x-blocks (scale only) and h-blocks (scale and shift)
        self.x_zw_weight = nn.Parameter(torch.empty(Nh, 4 * E))
        self.x_zw_bias = nn.Parameter(torch.empty(4 * E))
        self.x_alpha = nn.Parameter(torch.empty(4, E, H))
        self.h_zw_weight = nn.Parameter(torch.empty(Nh, 4 * E))
        self.h_zw_bias = nn.Parameter(torch.empty(4 * E))
        self.h_alpha = nn.Parameter(torch.empty(4, E, H))
        self.h_zb_weight = nn.Parameter(torch.empty(Nh, 4 * E))
        self.h_beta = nn.Parameter(torch.empty(4, E, H))
        if self.use_layer_norm:
            self.ln_gamma = nn.Parameter(torch.ones(4 * H))
            self.ln_beta = nn.Parameter(torch.zeros(4 * H))
        self.ln_c_gamma = nn.Parameter(torch.ones(H))  # Magenta applies ln_c even without use_layer_norm
        self.ln_c_beta = nn.Parameter(torch.zeros(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        E = self.hyper_embedding_size
        init_gamma = 0.10  # Magenta: "recurrent batch norm init trick" (arXiv:1603.09025)
        self.hyper_cell.reset_parameters()
        _glorot_uniform_(self.weight_ih)
        _ortho_blocks_(self.weight_hh)
        with torch.no_grad():
            self.bias.zero_()
            for zw_w, zw_b, alpha in ((self.x_zw_weight, self.x_zw_bias, self.x_alpha),
                                      (self.h_zw_weight, self.h_zw_bias, self.h_alpha)):
                zw_w.zero_()
                zw_b.fill_(1.0)
                alpha.fill_(init_gamma / E)
            self.h_zb_weight.normal_(0.0, 0.01)
            self.h_beta.zero_()
            if self.use_layer_norm:
                self.ln_gamma.fill_(1.0)
                self.ln_beta.zero_()
            self.ln_c_gamma.fill_(1.0)
            self.ln_c_beta.zero_()

    @staticmethod
    def _per_block(z: Tensor, w: Tensor) -> Tensor:
        """(B, 4E) embeddings times per-block (4, E, H) weights -> (B, 4H)."""
        B = z.shape[0]
        zb = z.reshape(B, 4, -1)  # (B, 4, E)
        return torch.einsum("bge,geh->bgh", zb, w).reshape(B, -1)  # (B, 4H)

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        H = self.hidden_size
        c, h, hyper_state = state[:, :H], state[:, H:2 * H], state[:, 2 * H:]
        hyper_h, new_hyper_state = self.hyper_cell(torch.cat([x, h], dim=1), hyper_state)  # (B, Nh)

        alpha_x = self._per_block(torch.addmm(self.x_zw_bias, hyper_h, self.x_zw_weight), self.x_alpha)
        alpha_h = self._per_block(torch.addmm(self.h_zw_bias, hyper_h, self.h_zw_weight), self.h_alpha)
        beta_h = self._per_block(hyper_h @ self.h_zb_weight, self.h_beta)
        gates = alpha_x * (x @ self.weight_ih) + alpha_h * (h @ self.weight_hh) + beta_h + self.bias  # (B, 4H)
        if self.use_layer_norm:
            gates = _layer_norm_blocks(gates, 4, self.ln_gamma, self.ln_beta)
        i, j, f, o = gates.chunk(4, dim=1)
        new_c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * self._candidate(j)
        new_h = torch.tanh(_layer_norm(new_c, self.ln_c_gamma, self.ln_c_beta)) * torch.sigmoid(o)
        return new_h, torch.cat([new_c, new_h, new_hyper_state], dim=1)

    def extra_repr(self) -> str:
        return (super().extra_repr()
                + f", hyper_size={self.hyper_size}, hyper_embedding_size={self.hyper_embedding_size}")


CELL_CLASSES: dict[str, type[_CellBase]] = {
    "lstm": LSTMCell,
    "layer_norm": LayerNormLSTMCell,
    "hyper": HyperLSTMCell,
}


def make_cell(kind: str, input_size: int, hidden_size: int, *, use_recurrent_dropout: bool = False,
              dropout_keep: float = 0.9, hyper_rnn_size: int = 256, hyper_embedding_size: int = 32,
              forget_bias: float = 1.0) -> _CellBase:
    """Build a cell by ModelConfig name (``lstm`` | ``layer_norm`` | ``hyper``).

    Keyword names follow ModelConfig: ``dropout_keep`` is ``recurrent_dropout_prob`` (a keep
    probability), ``hyper_rnn_size`` / ``hyper_embedding_size`` only matter for ``hyper``.
    """
    if kind not in CELL_CLASSES:
        raise ConfigError(f"unknown cell type {kind!r}; use one of {', '.join(CELL_CLASSES)}")
    kw = dict(use_recurrent_dropout=use_recurrent_dropout, dropout_keep=dropout_keep, forget_bias=forget_bias)
    if kind == "hyper":
        return HyperLSTMCell(input_size, hidden_size, hyper_size=hyper_rnn_size,
                             hyper_embedding_size=hyper_embedding_size, **kw)
    return CELL_CLASSES[kind](input_size, hidden_size, **kw)
