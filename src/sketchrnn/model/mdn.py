"""Mixture density output of sketch-rnn: a mixture of M bivariate normals for (dx, dy)
and a categorical over the 3 pen states (Ha & Eck 2017, Eq. 3-4 and 9-10; Graves 2013,
arXiv:1308.0850, Eq. 18-25).

Layout of one decoder output row (6M + 3 numbers, as Magenta and @magenta/sketch)::

    [pen logits (3), pi logits (M), mu_x (M), mu_y (M), log sigma_x (M), log sigma_y (M), rho_raw (M)]

with ``log_pi = log_softmax(pi logits)`` and ``rho = tanh(rho_raw)``. All densities are
in normalised units (offsets divided by the scale factor).

Differences from Magenta: the mixture log-density is a ``logsumexp`` of per-component
log-densities (Magenta sums densities and adds 1e-6 before the log); ``log(1 - rho^2)``
is computed from ``rho_raw`` so it stays finite where ``tanh`` rounds to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError

__all__ = ["MixtureParams", "split_params", "offset_log_prob", "pen_log_prob", "sample_step",
           "TEMPERATURE_MODES"]

TEMPERATURE_MODES = ("paper", "magenta_py", "magenta_js")
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


@dataclass
class MixtureParams:
    """MDN parameters for any leading shape ``(...)``; mixture fields are ``(..., M)``."""

    pen_logits: Tensor  # (..., 3) unnormalised
    log_pi: Tensor  # (..., M) log mixture weights (log_softmax)
    mu_x: Tensor  # (..., M)
    mu_y: Tensor  # (..., M)
    log_sigma_x: Tensor  # (..., M)
    log_sigma_y: Tensor  # (..., M)
    rho: Tensor  # (..., M) correlation in (-1, 1)
    log_one_minus_rho2: Tensor | None = None  # (..., M) log(1 - rho^2); from rho when None

    @property
    def num_mixture(self) -> int:
        return self.log_pi.shape[-1]

    def log_1m_rho2(self) -> Tensor:
        if self.log_one_minus_rho2 is not None:
            return self.log_one_minus_rho2
        return torch.log1p(-self.rho * self.rho)


def _log_sech2(r: Tensor) -> Tensor:
    """log(1 - tanh(r)^2) = 2 (log 2 - |r| - log(1 + exp(-2|r|))), finite for any r."""
    a = r.abs()
    return 2.0 * (_LOG_2 - a - F.softplus(-2.0 * a))


def split_params(out: Tensor) -> MixtureParams:
    """Split a decoder output ``(..., 6M+3)`` into :class:`MixtureParams`."""
    n = out.shape[-1] - 3
    if n <= 0 or n % 6:
        raise ValueError(f"MDN output width must be 6M+3, got {out.shape[-1]}")
    M = n // 6
    # one split (its backward is one cat); slicing out[..., :3] and out[..., 3:] would zero-fill
    # an out-sized gradient per slice
    pen_logits, pi, mu_x, mu_y, log_sx, log_sy, rho_raw = out.split([3] + [M] * 6, dim=-1)  # (..., 3), 6 x (..., M)
    return MixtureParams(
        pen_logits=pen_logits,
        log_pi=F.log_softmax(pi, dim=-1),
        mu_x=mu_x,
        mu_y=mu_y,
        log_sigma_x=log_sx,
        log_sigma_y=log_sy,
        rho=torch.tanh(rho_raw),
        log_one_minus_rho2=_log_sech2(rho_raw),
    )


def offset_log_prob(p: MixtureParams, dx: Tensor, dy: Tensor) -> Tensor:
    """log sum_k pi_k N(dx, dy | mu_k, sigma_k, rho_k), shape ``(...)`` for dx, dy ``(...)``.

    Bivariate normal (Graves 2013 Eq. 24-25):
    log N = -log 2pi - log sx - log sy - 1/2 log(1-rho^2) - Z / (2 (1-rho^2)),
    Z = nx^2 + ny^2 - 2 rho nx ny, nx = (dx - mu_x)/sx, ny = (dy - mu_y)/sy.
    """
    nx = (dx.unsqueeze(-1) - p.mu_x) * torch.exp(-p.log_sigma_x)  # (..., M)
    ny = (dy.unsqueeze(-1) - p.mu_y) * torch.exp(-p.log_sigma_y)
    l1m = p.log_1m_rho2()
    zq = nx * nx + ny * ny - 2.0 * p.rho * nx * ny
    log_n = -_LOG_2PI - p.log_sigma_x - p.log_sigma_y - 0.5 * l1m - 0.5 * zq * torch.exp(-l1m)
    return torch.logsumexp(p.log_pi + log_n, dim=-1)


def pen_log_prob(p: MixtureParams, pen: Tensor) -> Tensor:
    """sum_k pen_k log softmax(pen_logits)_k, shape ``(...)``; ``pen`` one-hot (or soft) ``(..., 3)``."""
    return (pen * F.log_softmax(p.pen_logits, dim=-1)).sum(-1)


def _check_temperature(temperature: float, temperature_mode: str) -> None:
    if temperature_mode not in TEMPERATURE_MODES:
        raise ConfigError(f"temperature_mode {temperature_mode!r} is not one of {', '.join(TEMPERATURE_MODES)}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ConfigError(f"sampling temperature must be a number > 0, got {temperature}; "
                          "use greedy mode for a deterministic drawing")


def sample_step(p: MixtureParams, temperature: float = 1.0, greedy: bool = False,
                generator: torch.Generator | None = None,
                temperature_mode: str = "paper") -> tuple[Tensor, Tensor, Tensor]:
    """Draw one point per row: returns ``(dx (...), dy (...), pen_onehot (..., 3))``.

    Temperature tau (Ha & Eck 2017 Sec. 3.3), by ``temperature_mode``:

    * ``"paper"`` (default): pi and pen logits divided by tau, variances times tau
      (sigma * sqrt(tau)), as the paper writes ``sigma^2 -> sigma^2 tau``.
    * ``"magenta_py"``: Magenta's Python ``sample()``: logits / tau, but it passes
      ``sqrt(tau)`` to ``sample_gaussian_2d`` which squares it, so sigma * tau.
    * ``"magenta_js"``: @magenta/sketch ``getPDF``: sigma * sqrt(tau), softmax temperature
      ``0.5 + 0.5 tau`` for pi and pen.

    ``greedy``: argmax pi, the mean of that component, argmax pen (temperature unused).
    ``generator`` drives every random draw (categoricals and normals).
    """
    lead = p.log_pi.shape[:-1]
    M = p.num_mixture
    if greedy:
        k = p.log_pi.argmax(-1, keepdim=True)  # (..., 1)
        pen_idx = p.pen_logits.argmax(-1)  # (...)
        dx = p.mu_x.gather(-1, k).squeeze(-1)
        dy = p.mu_y.gather(-1, k).squeeze(-1)
    else:
        _check_temperature(temperature, temperature_mode)
        tau = float(temperature)
        soft_tau = 0.5 + 0.5 * tau if temperature_mode == "magenta_js" else tau
        sigma_factor = tau if temperature_mode == "magenta_py" else math.sqrt(tau)
        pi_prob = torch.softmax(p.log_pi.reshape(-1, M) / soft_tau, dim=-1)  # (N, M)
        k = torch.multinomial(pi_prob, 1, generator=generator).reshape(*lead, 1)  # (..., 1)
        pen_prob = torch.softmax(p.pen_logits.reshape(-1, 3) / soft_tau, dim=-1)  # (N, 3)
        pen_idx = torch.multinomial(pen_prob, 1, generator=generator).reshape(lead)
        mx, my = p.mu_x.gather(-1, k).squeeze(-1), p.mu_y.gather(-1, k).squeeze(-1)
        sx = torch.exp(p.log_sigma_x.gather(-1, k).squeeze(-1)) * sigma_factor
        sy = torch.exp(p.log_sigma_y.gather(-1, k).squeeze(-1)) * sigma_factor
        rho = p.rho.gather(-1, k).squeeze(-1)
        eps = torch.randn((2, *lead), generator=generator, device=mx.device, dtype=mx.dtype)
        # Cholesky factor of [[sx^2, rho sx sy], [rho sx sy, sy^2]]
        dx = mx + sx * eps[0]
        dy = my + sy * (rho * eps[0] + torch.sqrt(torch.clamp(1.0 - rho * rho, min=0.0)) * eps[1])
    pen_onehot = F.one_hot(pen_idx, 3).to(p.pen_logits.dtype)  # (..., 3)
    return dx, dy, pen_onehot
