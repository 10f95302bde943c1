"""What the studio's endpoints do, free of any web framework: validate a JSON object,
run the model under its lock, answer a JSON-ready dict.

* complete: the user's drawing is fed to the decoder as a prefix and ``n`` continuations
  are sampled (Ha & Eck 2017, Sec. 5.3 "conditional/unconditional completion"; Magenta's
  ``sketch_rnn_js`` demos do the same with the decoder-only models). Conditional models
  take z from the prior N(0, I) unless ``"z_from": "input"`` (z = mu(drawing)).
* reconstruct: z = mu(x), decode ``n`` times (paper Sec. 4, Fig. 4).
* interpolate: z_a = mu(a), z_b = mu(b), spherical interpolation (slerp, as Magenta's
  notebook ``slerp``; White 2016, "Sampling Generative Networks"), one decode per point.
* sample: decode from the prior (conditional) or from the zero state (decoder-only).

All sketches in and out are stroke-3 in the model's data units (pixels of its data).
"""

from __future__ import annotations

import logging
import math
import random
from typing import Any, Callable

import numpy as np

from ..errors import SketchRNNError
from .registry import ModelEntry, ModelRegistry, metadata_extent
from .validation import (Limits, RequestError, bool_field, check_fields, choice_field, float_field, int_field,
                         model_name, stroke3_field, stroke3_to_json)

__all__ = ["StudioService", "slerp", "calibrate_extent", "sketch_extent"]

log = logging.getLogger("sketchrnn.studio")
TEMPERATURE_MODES = ("paper", "magenta_py", "magenta_js")
FILL = 0.75  # a typical drawing of the model fills this fraction of the canvas side


def slerp(z0: np.ndarray, z1: np.ndarray, t: float) -> np.ndarray:
    """Spherical linear interpolation between two latent vectors (linear when they are
    (anti)parallel, where slerp is undefined)."""
    a = np.asarray(z0, np.float64)
    b = np.asarray(z1, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return (1 - t) * a + t * b
    cos = float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    omega = math.acos(cos)
    so = math.sin(omega)
    if so < 1e-6:
        return (1 - t) * a + t * b
    return (math.sin((1 - t) * omega) / so) * a + (math.sin(t * omega) / so) * b


def sketch_extent(s3: np.ndarray) -> float:
    """Largest side of the bounding box of a stroke-3 sketch (start point included)."""
    if len(s3) == 0:
        return 0.0
    xy = np.concatenate([np.zeros((1, 2)), np.cumsum(np.asarray(s3, np.float64)[:, :2], axis=0)])  # (L+1, 2)
    return float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1])))


def calibrate_extent(loaded: Any, n: int = 8, temperature: float = 0.5, seed: int = 0) -> float:
    """Data units the studio's canvas should span for this model.

    Drawing sizes differ a lot between datasets (median extent / scale factor is about 4
    for kanji, 13 for sheep and Magenta's QuickDraw models), so the studio measures it:
    the median extent of ``n`` samples at temperature 0.5, divided by :data:`FILL`. A
    stored ``extent`` (safetensors metadata) wins; a degenerate result falls back to
    12 x scale_factor."""
    from .. import api

    stored = metadata_extent(getattr(loaded, "info", {}) or {})
    if stored is not None:
        return stored
    fallback = 12.0 * float(loaded.scale_factor)
    try:
        sk = api.sample(loaded, n=n, temperature=temperature, seed=seed,
                        max_len=min(int(loaded.config.max_seq_len), 250))
    except Exception:  # noqa: BLE001 - a model that cannot sample is reported by the requests that need it
        log.warning("studio: cannot sample from %s to measure its extent; using 12 x scale_factor", loaded.name)
        return fallback
    ext = [sketch_extent(s) for s in sk if len(s) >= 2]
    med = float(np.median(ext)) if ext else 0.0
    if not (math.isfinite(med) and med > 0):
        return fallback
    return float(np.clip(med / FILL, fallback / 20.0, fallback * 20.0))


def _on_load(entry: ModelEntry) -> None:
    entry.extent = round(calibrate_extent(entry.loaded), 3)


class StudioService:
    """The studio's operations over a :class:`ModelRegistry` (thread-safe)."""

    def __init__(self, registry: ModelRegistry, limits: Limits | None = None,
                 decode_fn: Callable[..., list[np.ndarray]] | None = None) -> None:
        self.registry = registry
        self.limits = limits or Limits()
        self._decode_fn = decode_fn

    # ------------------------------------------------------------------ helpers
    def _decode(self, *args: Any, **kw: Any) -> list[np.ndarray]:
        if self._decode_fn is not None:
            return self._decode_fn(*args, **kw)
        from .. import api  # its default path is the fast CPU sampler (sketchrnn.fast)

        return api.decode(*args, **kw)

    def _use(self, name: str):
        return self.registry.use(name, self.limits.lock_timeout_s, on_load=_on_load)

    def _common(self, body: dict[str, Any], default_temperature: float) -> tuple[float, int, str]:
        L = self.limits
        temperature = float_field(body, "temperature", default_temperature, L.min_temperature, L.max_temperature)
        seed = int_field(body, "seed", None, 0, L.max_seed)
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        mode = choice_field(body, "temperature_mode", "paper", TEMPERATURE_MODES)
        return temperature, seed, mode

    def _run(self, name: str, fn: Callable[[ModelEntry], dict[str, Any]]) -> dict[str, Any]:
        with self._use(name) as entry:
            try:
                return fn(entry)
            except RequestError:
                raise
            except SketchRNNError as e:
                raise RequestError(400, str(e)) from None

    @staticmethod
    def _prior_z(entry: ModelEntry, n: int, seed: int) -> np.ndarray:
        import torch

        g = torch.Generator().manual_seed(int(seed) + 7919)
        return torch.randn(n, entry.loaded.config.z_size, generator=g).numpy()  # (n, Z)

    @staticmethod
    def _need_conditional(entry: ModelEntry, what: str) -> None:
        if not entry.conditional:
            raise RequestError(400, f"model {entry.name} is decoder-only (no encoder): it cannot {what}; "
                                    "pick a conditional model")

    # ------------------------------------------------------------------ endpoints
    def models(self) -> dict[str, Any]:
        return {"models": [e.summary() for e in self.registry.entries()]}

    def model_info(self, name: str) -> dict[str, Any]:
        model_name(name)
        with self._use(name) as entry:
            return entry.summary()

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"model", "strokes", "n"=4, "temperature"=0.5, "max_points"=100, "seed"?, "z_from"="prior"}``
        -> ``{"completions": [stroke-3 of the new points, ...], "seed": int}``."""
        L = self.limits
        check_fields(body, ("model", "strokes", "n", "temperature", "max_points", "seed", "z_from",
                            "temperature_mode", "allow_end"), ("model", "strokes"))
        name = model_name(body["model"])
        strokes = stroke3_field(body, "strokes", L, min_points=1)
        n = int_field(body, "n", 4, 1, L.max_n)
        max_points = int_field(body, "max_points", 100, 1, L.max_new_points)
        z_from = choice_field(body, "z_from", "prior", ("prior", "input"))
        allow_end = bool_field(body, "allow_end", True)
        temperature, seed, mode = self._common(body, 0.5)
        self.registry.get(name)

        def run(entry: ModelEntry) -> dict[str, Any]:
            z = None
            if entry.conditional:
                if z_from == "input":
                    from .. import api

                    z = np.repeat(api.encode(entry.loaded, [strokes]), n, axis=0)  # (n, Z)
                else:
                    z = self._prior_z(entry, n, seed)
            out = self._decode(entry.loaded, z, n=n, temperature=temperature, seed=seed, max_len=max_points,
                               temperature_mode=mode, prefix=strokes, allow_end=allow_end)
            return {"model": entry.name, "seed": seed, "completions": [stroke3_to_json(s) for s in out]}

        return self._run(name, run)

    def reconstruct(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"model", "strokes", "n"=4, "temperature"=0.5, "seed"?}`` -> ``{"reconstructions": [...]}``."""
        L = self.limits
        check_fields(body, ("model", "strokes", "n", "temperature", "seed", "temperature_mode"), ("model", "strokes"))
        name = model_name(body["model"])
        strokes = stroke3_field(body, "strokes", L, min_points=2)
        n = int_field(body, "n", 4, 1, L.max_n)
        temperature, seed, mode = self._common(body, 0.5)
        entry0 = self.registry.get(name)
        self._need_conditional(entry0, "reconstruct a drawing")

        def run(entry: ModelEntry) -> dict[str, Any]:
            from .. import api

            out = api.reconstruct(entry.loaded, [strokes], n=n, temperature=temperature, seed=seed,
                                  temperature_mode=mode)[0]
            return {"model": entry.name, "seed": seed, "reconstructions": [stroke3_to_json(s) for s in out]}

        return self._run(name, run)

    def interpolate(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"model", "a", "b", "steps"=6, "temperature"=0.1, "seed"?}`` -> ``{"t": [...], "sketches": [...]}``:
        decodes of slerp(mu(a), mu(b), t), each with the same seed so the sequence changes smoothly."""
        L = self.limits
        check_fields(body, ("model", "a", "b", "steps", "temperature", "seed", "temperature_mode"), ("model", "a", "b"))
        name = model_name(body["model"])
        a = stroke3_field(body, "a", L, min_points=2)
        b = stroke3_field(body, "b", L, min_points=2)
        steps = int_field(body, "steps", 6, 2, L.max_steps)
        temperature, seed, mode = self._common(body, 0.1)
        entry0 = self.registry.get(name)
        self._need_conditional(entry0, "interpolate between drawings")

        def run(entry: ModelEntry) -> dict[str, Any]:
            try:  # prefer the project's creative tools (same seed for every step)
                from ..creative import interpolate

                res = interpolate(entry.loaded, a, b, k=steps, temperature=temperature, seed=seed,
                                  temperature_mode=mode)
                ts, sketches = list(res.info["t"]), list(res.sketches)
            except ImportError:  # a build without sketchrnn.creative (or its data.io helpers)
                from .. import api

                za, zb = api.encode(entry.loaded, [a, b])  # 2 x (Z,)
                ts = np.linspace(0.0, 1.0, steps).tolist()
                sketches = [self._decode(entry.loaded, slerp(za, zb, t)[None].astype(np.float32),
                                         temperature=temperature, seed=seed, temperature_mode=mode)[0] for t in ts]
            return {"model": entry.name, "seed": seed, "t": [round(float(t), 6) for t in ts],
                    "sketches": [stroke3_to_json(s) for s in sketches]}

        return self._run(name, run)

    def sample(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"model", "n"=4, "temperature"=0.5, "seed"?, "max_points"?}`` -> ``{"sketches": [...]}``."""
        L = self.limits
        check_fields(body, ("model", "n", "temperature", "seed", "max_points", "temperature_mode"), ("model",))
        name = model_name(body["model"])
        n = int_field(body, "n", 4, 1, L.max_n)
        max_points = int_field(body, "max_points", None, 1, L.max_new_points)
        temperature, seed, mode = self._common(body, 0.5)
        self.registry.get(name)

        def run(entry: ModelEntry) -> dict[str, Any]:
            z = self._prior_z(entry, n, seed) if entry.conditional else None
            out = self._decode(entry.loaded, z, n=n, temperature=temperature, seed=seed, max_len=max_points,
                               temperature_mode=mode)
            return {"model": entry.name, "seed": seed, "sketches": [stroke3_to_json(s) for s in out]}

        return self._run(name, run)
