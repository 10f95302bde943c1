"""SketchRNN: the sketch-rnn VAE (or decoder-only model) and its losses.

Ha & Eck 2017, "A Neural Representation of Sketch Drawings" (arXiv:1704.03477), Sec. 3;
training conventions of Magenta's ``sketch_rnn/model.py``. One set of weights serves
training (:meth:`SketchRNN.losses`), evaluation (:meth:`SketchRNN.per_sketch_nll`) and
step-by-step sampling (``model.decoder.step`` + :func:`.mdn.sample_step`).

Input: stroke-5 ``(B, T+1, 5)`` with the start token at row 0, rows 1..L the sketch and
end padding ``(0, 0, 0, 0, 1)`` after; ``lengths`` (B,) = L. A class-conditional model
(``cfg.class_conditional``) also needs ``class_ids`` (B,) wherever the decoder runs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from .decoder import Decoder
from .encoder import Encoder
from .mdn import offset_log_prob, pen_log_prob, split_params

__all__ = ["SketchRNN"]


class SketchRNN(nn.Module):
    """Encoder (None when ``cfg.conditional`` is False) + decoder with MDN head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.encoder: Encoder | None = Encoder(cfg) if cfg.conditional else None
        self.decoder = Decoder(cfg)

    def encode(self, strokes5: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x) parameters: (mu (B, Z), presig (B, Z)), sigma = exp(presig / 2) (Eq. 2)."""
        if self.encoder is None:
            raise ValueError("this SketchRNN is unconditional (decoder-only): it has no encoder")
        return self.encoder(strokes5[:, 1:], lengths)  # (B, T, 5) without the start token

    def forward(self, strokes5: Tensor, lengths: Tensor, z: Tensor | None = None,
                sample_z: bool = True, class_ids: Tensor | None = None) -> dict[str, Tensor | None]:
        """Teacher-forced pass over ``strokes5[:, :-1]``: dict(out (B, T, 6M+3), mu, presig, z).

        Conditional: with ``z`` None the sketch is encoded and z = mu + sigma * eps (Eq. 2,
        reparameterisation) when ``sample_z``, else z = mu; a given ``z`` skips the encoder
        (mu, presig None). Unconditional: z, mu, presig are None.
        """
        mu = presig = None
        if self.cfg.conditional and z is None:
            mu, presig = self.encode(strokes5, lengths)
            z = mu + torch.exp(presig / 2.0) * torch.randn_like(mu) if sample_z else mu
        elif not self.cfg.conditional:
            z = None
        out, _ = self.decoder(strokes5[:, :-1], z, class_ids=class_ids)  # (B, T, 6M+3): step t predicts row t+1
        return {"out": out, "mu": mu, "presig": presig, "z": z}

    def losses(self, strokes5: Tensor, lengths: Tensor, kl_tolerance: float = 0.2,
               class_ids: Tensor | None = None, n_max: int | None = None) -> dict[str, Tensor]:
        """Training losses in Magenta's convention (normaliser B * N_max, N_max = T).

        ``n_max`` (>= T) keeps that normaliser for a batch whose end padding was trimmed
        (``train.length_buckets``): ``L_s`` is then unchanged and ``L_p`` lacks only the
        trimmed padding steps.

        Decoder input ``x[:, :-1]``, target ``x[:, 1:]`` (B, T, 5). Returns
        ``L_s`` (Eq. 9, offsets, steps t < L only), ``L_p`` (Eq. 10, pen cross-entropy over
        ALL T steps, end padding included, as Magenta trains), ``L_R = L_s + L_p``,
        ``kl_raw`` (Eq. 11/12 KL(q(z|x) || N(0, I)), mean over batch AND z dims as Magenta's
        reduce_mean), ``L_KL = max(kl_raw, kl_tolerance)`` (Magenta's ``kl_cost``, the term
        the trainer weights; ``kl_loss`` is the same tensor). Unconditional: KL terms are 0.
        """
        res = self(strokes5, lengths, sample_z=True, class_ids=class_ids)
        target = strokes5[:, 1:]  # (B, T, 5)
        B, T, _ = target.shape
        p = split_params(res["out"])
        t = torch.arange(T, device=target.device).unsqueeze(0)  # (1, T)
        valid = t < lengths.to(target.device).unsqueeze(1)  # (B, T); equals Magenta's 1 - p3 mask
        lp_offset = offset_log_prob(p, target[..., 0], target[..., 1])  # (B, T)
        lp_pen = pen_log_prob(p, target[..., 2:])  # (B, T)
        norm = float(B * _n_max(T, n_max))
        L_s = -torch.where(valid, lp_offset, torch.zeros_like(lp_offset)).sum() / norm  # Eq. 9
        L_p = -lp_pen.sum() / norm  # Eq. 10 (training: all N_max steps)
        if self.cfg.conditional:
            mu, presig = res["mu"], res["presig"]
            kl_raw = -0.5 * torch.mean(1.0 + presig - mu * mu - torch.exp(presig))  # Eq. 11/12
            L_KL = torch.clamp(kl_raw, min=kl_tolerance)  # Magenta: max(KL, kl_tolerance)
        else:
            kl_raw = L_KL = target.new_zeros(())
        return {"L_s": L_s, "L_p": L_p, "L_R": L_s + L_p, "L_KL": L_KL, "kl_loss": L_KL, "kl_raw": kl_raw}

    def per_sketch_nll(self, strokes5: Tensor, lengths: Tensor, z: Tensor | None = None,
                       return_parts: bool = False,
                       class_ids: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Negative log-likelihood of each sketch (B,), in NORMALISED units, L+1 steps each.

        Steps t < L score row t+1: -offset_log_prob - pen_log_prob; step L scores the end of
        the sketch: -log P(pen = p3) (no offset). This is the numerator of
        ../shared/README.md's ``nll_per_point`` per sketch; in the data's own units the
        offset log-density is lower by 2 log(scale_factor) per offset, so
        ``nll_data = nll_norm + 2 * log(scale_factor) * L`` (the evaluator applies it).
        ``z`` (B, Z) is required for a conditional model (e.g. mu, or a sample), ignored
        otherwise. Only rows 0..L of each sketch are read (padding never matters). Call in
        eval mode for deterministic figures. ``return_parts=True`` gives the two terms
        separately: (points (B,), end step (B,)), whose sum is the NLL. ``class_ids`` (B,)
        is needed (only) by a class-conditional model.
        """
        if self.cfg.conditional and z is None:
            raise ValueError("a conditional SketchRNN needs z (B, z_size) to score sketches")
        B = strokes5.shape[0]
        lengths = lengths.to(device=strokes5.device, dtype=torch.long)
        if B == 0:
            return strokes5.new_zeros(0)
        n = int(lengths.max())
        if n + 1 > strokes5.shape[1]:
            raise ValueError(f"lengths up to {n} need at least {n + 1} stroke-5 rows, got {strokes5.shape[1]}")
        out, _ = self.decoder(strokes5[:, :n + 1], z if self.cfg.conditional else None,
                              class_ids=class_ids)  # (B, n+1, 6M+3)
        target = strokes5[:, 1:n + 1]  # (B, n, 5)
        p = split_params(out[:, :n])
        lp = offset_log_prob(p, target[..., 0], target[..., 1]) + pen_log_prob(p, target[..., 2:])  # (B, n)
        valid = torch.arange(n, device=strokes5.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, n)
        lp_points = torch.where(valid, lp, torch.zeros_like(lp)).sum(1)  # (B,)
        end_logits = out.gather(1, lengths.view(B, 1, 1).expand(B, 1, out.shape[2]))[:, 0, :3]  # (B, 3)
        lp_end = torch.log_softmax(end_logits, dim=-1)[:, 2]  # (B,)
        if return_parts:
            return -lp_points, -lp_end
        return -(lp_points + lp_end)


def _n_max(t: int, n_max: int | None) -> int:
    """The loss normaliser's N_max: the batch's T, or the untrimmed one it was cut from."""
    if n_max is None:
        return t
    if int(n_max) < t:
        raise ValueError(f"n_max={n_max} is shorter than the batch's {t} steps")
    return int(n_max)
