"""Bidirectional RNN encoder of sketch-rnn (Ha & Eck 2017, Sec. 3.1, Fig. 2).

The sketch (stroke-5 rows 1..L, without the start token) is read forwards and backwards;
the two final hidden states are concatenated, h = [h_fw; h_bw] (2E), and projected to
mu = W_mu h + b_mu and sigma_hat = W_sigma h + b_sigma (Eq. 2, "presig"); the caller
uses sigma = exp(sigma_hat / 2) (Magenta's ``vector_rnn/ENC_RNN_{mu,sigma}``).

Lengths are respected as in TensorFlow's ``bidirectional_dynamic_rnn``: the forward
state is the one after step L-1 and the backward direction reads each sequence reversed
within its own length, so padding rows never enter either direction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..config import ModelConfig
from .cells import LSTMCell, make_cell

__all__ = ["Encoder", "reverse_within_length"]


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse rows 0..L-1 of each sequence in (B, T, D); rows >= L stay in place."""
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device).unsqueeze(0)  # (1, T)
    L = lengths.unsqueeze(1)  # (B, 1)
    idx = torch.where(t < L, L - 1 - t, t)  # (B, T)
    return x.gather(1, idx.unsqueeze(-1).expand(B, T, x.shape[2]))  # (B, T, D)


def _to_nn_lstm(cell: LSTMCell) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Our (i, j, f, o), x @ W layout -> nn.LSTM's (i, f, g, o), W @ x layout, forget bias folded in."""
    def reorder(w: Tensor) -> Tensor:  # (4H, ...) blocks i, j, f, o -> i, f, j, o
        i, j, f, o = w.chunk(4, dim=0)
        return torch.cat([i, f, j, o], dim=0)

    bi, bj, bf, bo = cell.bias.chunk(4)
    b_ih = torch.cat([bi, bf + cell.forget_bias, bj, bo])  # (4H,)
    return reorder(cell.weight_ih.t()), reorder(cell.weight_hh.t()), b_ih, torch.zeros_like(b_ih)


class Encoder(nn.Module):
    """``forward(strokes5 (B, T, 5) without start token, lengths (B,)) -> (mu (B, Z), presig (B, Z))``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        kw = dict(use_recurrent_dropout=cfg.use_recurrent_dropout, dropout_keep=cfg.recurrent_dropout_prob,
                  hyper_rnn_size=cfg.hyper_rnn_size, hyper_embedding_size=cfg.hyper_embedding_size)
        E, Z = cfg.enc_rnn_size, cfg.z_size
        self.cell_fw = make_cell(cfg.enc_model, 5, E, **kw)
        self.cell_bw = make_cell(cfg.enc_model, 5, E, **kw)
        self.mu = nn.Linear(2 * E, Z)
        self.presig = nn.Linear(2 * E, Z)
        for lin in (self.mu, self.presig):  # Magenta: init_w='gaussian', weight_start=0.001, bias 0
            nn.init.normal_(lin.weight, 0.0, 0.001)
            nn.init.zeros_(lin.bias)
        # nn.LSTM + packed sequences for plain LSTM cells without active recurrent dropout, on
        # CPU only (tested against the cell loop there; GPU paths live in sketchrnn.fast).
        # Set False to always use the loop.
        self.use_fast_path = True
        self._nn_lstm: list[nn.LSTM] = []  # template module, kept out of the state_dict

    @staticmethod
    def _run_cell(cell: nn.Module, x: Tensor, lengths: Tensor) -> Tensor:
        """Final h (B, H) of ``cell`` over x (B, T, 5), freezing each row's state once t >= L."""
        B = x.shape[0]
        state = cell.initial_state(B, device=x.device, dtype=x.dtype)  # (B, S)
        t_max = int(lengths.max()) if B else 0
        for t in range(t_max):
            _, new_state = cell(x[:, t], state)
            state = torch.where((t < lengths).unsqueeze(1), new_state, state)  # (B, S)
        return cell.hidden(state)

    def _fast_path_ok(self, lengths: Tensor) -> bool:
        return (self.use_fast_path and self.cfg.enc_model == "lstm" and lengths.device.type == "cpu"
                and not (self.training and self.cfg.use_recurrent_dropout and self.cfg.recurrent_dropout_prob < 1.0)
                and lengths.numel() > 0 and int(lengths.min()) >= 1)

    def _run_nn_lstm(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Both directions with one packed bidirectional ``nn.LSTM`` call, same weights."""
        if not self._nn_lstm:
            # its own initial weights are never used (functional_call below): built with the global
            # RNG set aside, so a first encoder call draws nothing (validation's z noise, a
            # training run's stream) wherever it happens
            with torch.random.fork_rng(devices=[]):
                self._nn_lstm.append(nn.LSTM(5, self.cfg.enc_rnn_size, batch_first=True, bidirectional=True))
        params = {}
        for suffix, cell in (("l0", self.cell_fw), ("l0_reverse", self.cell_bw)):
            w_ih, w_hh, b_ih, b_hh = _to_nn_lstm(cell)
            params.update({f"weight_ih_{suffix}": w_ih, f"weight_hh_{suffix}": w_hh,
                           f"bias_ih_{suffix}": b_ih, f"bias_hh_{suffix}": b_hh})
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = functional_call(self._nn_lstm[0], params, (packed,))  # h_n (2, B, H)
        return h_n[0], h_n[1]

    def forward(self, strokes5: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        B, T, D = strokes5.shape
        if D != 5:
            raise ValueError(f"encoder expects stroke-5 input (B, T, 5), got {tuple(strokes5.shape)}")
        lengths = lengths.to(device=strokes5.device, dtype=torch.long)
        if B and (int(lengths.min()) < 0 or int(lengths.max()) > T):
            raise ValueError(f"sequence lengths must lie in [0, {T}], got min {int(lengths.min())} "
                             f"max {int(lengths.max())}")
        if self._fast_path_ok(lengths):
            h_fw, h_bw = self._run_nn_lstm(strokes5, lengths)
        else:
            h_fw = self._run_cell(self.cell_fw, strokes5, lengths)
            h_bw = self._run_cell(self.cell_bw, reverse_within_length(strokes5, lengths), lengths)
        last_h = torch.cat([h_fw, h_bw], dim=1)  # (B, 2E)
        return self.mu(last_h), self.presig(last_h)
