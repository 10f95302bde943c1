"""High-level Python API: load a model, sample, encode, reconstruct.

All sketches going in and out are stroke-3 arrays in the data's pixel units; the model's
normalisation (scale factor) is applied and undone here.

Temperature (``temperature_mode``, see :func:`sketchrnn.model.mdn.sample_step`):
``"paper"`` (default; the paper's σ²·τ): mixture and pen logits divided by τ, each σ
multiplied by √τ. ``"magenta_py"``: Magenta's Python sampler, σ multiplied by τ.
``"magenta_js"``: @magenta/sketch, σ·√τ with softmax temperature 0.5 + 0.5·τ.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .checkpoint import load_model
from .errors import DataError, ModelFileError

__all__ = ["load_model", "sample", "encode", "reconstruct", "decode", "prepare_input"]


def _generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def prepare_input(loaded, sketches: Sequence[np.ndarray], where: str = "input") -> tuple[torch.Tensor, torch.Tensor]:
    """Stroke-3 sketches -> (stroke-5 batch (B, T+1, 5), lengths (B,)) for ``loaded``'s model.

    Empty sketches are refused; sketches longer than the model's max_seq_len are refused
    (the encoder was trained only on sketches up to that length)."""
    from .data.strokes import to_stroke5

    cfg = loaded.config
    arrs = []
    for i, s in enumerate(sketches):
        s = np.asarray(s, dtype=np.float32)
        if s.ndim != 2 or s.shape[1] != 3:
            raise DataError(f"{where}[{i}]: a sketch must be stroke-3 with shape (L, 3), got {s.shape}")
        if len(s) < 2:
            raise DataError(f"{where}[{i}]: sketch has {len(s)} point(s); at least 2 are needed")
        if not np.isfinite(s).all():
            raise DataError(f"{where}[{i}]: sketch holds NaN or Inf values")
        if len(s) > cfg.max_seq_len:
            raise DataError(f"{where}[{i}]: sketch has {len(s)} points, more than the model's max_seq_len "
                            f"{cfg.max_seq_len}; simplify it (e.g. RDP) or shorten it")
        arrs.append(s)
    if not arrs:
        raise DataError(f"{where}: no sketches given")
    x = torch.from_numpy(np.stack([to_stroke5(s, cfg.max_seq_len, loaded.scale_factor) for s in arrs]))
    lens = torch.tensor([len(s) for s in arrs], dtype=torch.long)
    return x, lens


@torch.no_grad()
def encode(loaded, sketches: Sequence[np.ndarray], sample: bool = False, seed: int | None = None) -> np.ndarray:
    """Latent vectors of sketches, (N, Z): mu(x), or a sample from q(z|x) with ``sample=True``."""
    if not loaded.config.conditional:
        raise ModelFileError(f"model {loaded.name} is decoder-only (unconditional): it has no encoder; "
                             "use a conditional model to encode or reconstruct")
    model = loaded.model.eval()
    dev = next(model.parameters()).device
    x, lens = prepare_input(loaded, sketches)
    mu, presig = model.encode(x.to(dev), lens.to(dev))
    if sample:
        g = _generator(seed)
        mu = mu + torch.exp(presig / 2) * torch.randn(mu.shape, generator=g).to(dev)
    return mu.cpu().numpy()


@torch.no_grad()
def decode(loaded, z: np.ndarray | torch.Tensor | None, n: int | None = None, temperature: float = 1.0,
           greedy: bool = False, seed: int | None = None, max_len: int | None = None,
           temperature_mode: str = "paper", prefix: np.ndarray | None = None,
           allow_end: bool = True, fast: bool = True, class_id: int | str | None = None) -> list[np.ndarray]:
    """Run the decoder: from latent vectors ``z`` (N, Z) (conditional models) or ``n`` times
    from the zero state (decoder-only). Each sketch stops at its own end-of-sketch or at
    ``max_len`` points (default: the model's max_seq_len).

    ``prefix``: a stroke-3 sketch fed to the decoder first (completion); the returned
    sketches hold only the new points. ``allow_end=False`` suppresses end-of-sketch
    (benchmarks: every sketch exactly ``max_len`` points).

    ``class_id`` (index or class name) is required by class-conditional models
    (``model.class_conditional``) and refused by others.

    ``fast=True`` (default) runs :class:`sketchrnn.fast.FastSampler` for CPU models (same
    distribution, ~4-10x faster at batch 1; it draws its random numbers differently, so a
    seed gives other sketches than ``fast=False``, the plain step-by-step oracle)."""
    from .model.mdn import sample_step, split_params

    if not (temperature > 0 and np.isfinite(temperature)):
        raise DataError(f"temperature must be a positive number, got {temperature}")
    model = loaded.model.eval()
    cfg = loaded.config
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    scale = float(loaded.scale_factor)
    if cfg.conditional:
        if z is None:
            raise DataError(f"model {loaded.name} is conditional: give z (or use sample(), which draws z from the prior)")
        zt = torch.as_tensor(np.asarray(z), dtype=dtype, device=dev)
        if zt.ndim == 1:
            zt = zt.unsqueeze(0)
        if zt.shape[-1] != cfg.z_size:
            raise DataError(f"z has size {zt.shape[-1]}, model {loaded.name} needs {cfg.z_size}")
        b = zt.shape[0]
    else:
        zt = None
        b = int(n or 1)
    max_len = int(max_len or cfg.max_seq_len)
    cids = _class_ids(loaded, class_id, b, dev)
    gen = _generator(seed, dev if dev.type == "cuda" else "cpu")  # draws happen where the model is
    if fast and dev.type == "cpu" and cids is None:
        from .fast.sampler import get_sampler, supports

        if supports(model):
            return get_sampler(model).decode(zt, b, temperature=temperature, greedy=greedy, generator=gen,
                                             max_len=max_len, temperature_mode=temperature_mode, prefix=prefix,
                                             allow_end=allow_end, scale_factor=scale)
    state = model.decoder.initial_state(zt, b)
    x = torch.zeros(b, 5, dtype=dtype, device=dev)
    x[:, 2] = 1.0  # start token (0, 0, 1, 0, 0)
    if prefix is not None:
        from .data.strokes import to_stroke5

        p5 = torch.from_numpy(to_stroke5(np.asarray(prefix, np.float32), len(prefix), scale)).to(dev, dtype)  # (L+1, 5)
        for t in range(len(prefix)):
            _, state = model.decoder.step(x, zt, state, class_ids=cids)
            x = p5[t + 1].expand(b, 5).clone()
    # everything stays on the model's device until the end: one host sync per step (done.all())
    pts = torch.zeros(b, max_len, 3, dtype=torch.float32, device=dev)
    ends = torch.full((b,), max_len, dtype=torch.long, device=dev)
    done = torch.zeros(b, dtype=torch.bool, device=dev)
    for t in range(max_len):
        out, state = model.decoder.step(x, zt, state, class_ids=cids)
        params = split_params(out)
        if not allow_end or (t == 0 and prefix is None):
            # a sketch has at least one point: no end-of-sketch at the first step
            params.pen_logits[:, 2] = -1e9
        dx, dy, pen = sample_step(params, temperature, greedy=greedy, generator=gen, temperature_mode=temperature_mode)
        pen_idx = pen.argmax(dim=-1)
        newly = (pen_idx == 2) & ~done
        ends[newly] = t
        done |= pen_idx == 2
        pts[:, t, 0] = (dx * scale).float()
        pts[:, t, 1] = (dy * scale).float()
        pts[:, t, 2] = (pen_idx == 1).float()
        if bool(done.all()):
            break
        x = torch.cat([dx.unsqueeze(-1), dy.unsqueeze(-1), pen.to(dtype)], dim=-1)  # (B, 5)
    pts, ends = pts.cpu(), ends.cpu()
    result = []
    for i in range(b):
        s = pts[i, : int(ends[i])].numpy().copy()
        if len(s):
            s[-1, 2] = 1.0  # the pen lifts after the last point
        result.append(s)
    return result


def _class_ids(loaded, class_id: int | str | None, b: int, dev) -> torch.Tensor | None:
    """(B,) class ids for a class-conditional model; None for other models."""
    cfg = loaded.config
    if not getattr(cfg, "class_conditional", False):
        if class_id is not None:
            raise DataError(f"model {loaded.name} is not class-conditional; drop class_id")
        return None
    names = list(loaded.class_names or [])
    if class_id is None:
        raise DataError(f"model {loaded.name} is class-conditional: give class_id (one of {names or list(range(cfg.num_classes))})")
    if isinstance(class_id, str):
        if class_id not in names:
            raise DataError(f"class {class_id!r} is not one of model {loaded.name}'s classes {names}")
        class_id = names.index(class_id)
    if not (0 <= int(class_id) < cfg.num_classes):
        raise DataError(f"class_id {class_id} is out of range 0..{cfg.num_classes - 1} for model {loaded.name}")
    return torch.full((b,), int(class_id), dtype=torch.long, device=dev)


def sample(loaded, n: int = 1, temperature: float = 1.0, z: np.ndarray | None = None, greedy: bool = False,
           seed: int | None = None, max_len: int | None = None, temperature_mode: str = "paper",
           class_id: int | str | None = None) -> list[np.ndarray]:
    """``n`` sketches from the model (conditional: z ~ N(0, I) unless ``z`` is given)."""
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    if loaded.config.conditional and z is None:
        g = _generator(None if seed is None else seed + 7919)
        z = torch.randn(n, loaded.config.z_size, generator=g).numpy()
    return decode(loaded, z, n=n, temperature=temperature, greedy=greedy, seed=seed, max_len=max_len,
                  temperature_mode=temperature_mode, class_id=class_id)


def reconstruct(loaded, sketches: Sequence[np.ndarray], n: int = 1, temperature: float = 0.5,
                greedy: bool = False, seed: int | None = None, temperature_mode: str = "paper",
                class_id: int | str | None = None) -> list[list[np.ndarray]]:
    """Encode each sketch (z = mu) and decode it ``n`` times: result[i][j] is the j-th
    reconstruction of sketch i."""
    z = encode(loaded, sketches)  # (N, Z)
    zz = np.repeat(z, n, axis=0)  # (N*n, Z)
    flat = decode(loaded, zz, temperature=temperature, greedy=greedy, seed=seed, temperature_mode=temperature_mode,
                  class_id=class_id)
    return [flat[i * n:(i + 1) * n] for i in range(len(sketches))]
