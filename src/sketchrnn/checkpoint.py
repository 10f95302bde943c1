"""Checkpoints (resume training) and exported weights (ship and share models).

* A **training checkpoint** is one ``torch.save`` file that loads with
  ``torch.load(weights_only=True)`` (no pickle code runs): weights, config (JSON text),
  scale factor, class names, optimiser state, step, RNG states, loader position and the
  best validation loss. It is written atomically (temp file, fsync, rename) so a kill at
  any moment leaves the previous checkpoint readable.
* **Exported weights** are ``.safetensors`` (optionally float16) with the config, scale
  factor and class names as JSON in the header metadata.

:func:`load_model` takes any of: a checkpoint, a ``.safetensors`` file, a Magenta
``.gen.json`` file, or the name of a model shipped in ``sketchrnn/weights/``.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

from .config import Config, ModelConfig
from .errors import ConfigError, ModelFileError
from .fileio import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "atomic_write_bytes",
    "save_checkpoint",
    "read_checkpoint",
    "save_weights",
    "load_model",
    "shipped_models",
    "shipped_quality",
    "weights_dir",
]

CHECKPOINT_FORMAT = "sketchrnn-checkpoint"
WEIGHTS_FORMAT = "sketchrnn-weights"


def weights_dir() -> Path:
    return Path(__file__).resolve().parent / "weights"


def shipped_models() -> list[str]:
    """Names of the models shipped inside the package (``sketchrnn/weights/NAME.safetensors``)."""
    d = weights_dir()
    return sorted(p.stem for p in d.glob("*.safetensors")) if d.is_dir() else []


_CARD_ROW = re.compile(r"^\|\s*(?P<metric>[^|]*?(?:nll|elbo)_per_point \(test[^|]*\))\s*\|\s*(?P<ours>[0-9.]+)\s*\|"
                       r"\s*(?P<teacher>[0-9.]+)\s*\|(?P<gap>[^|]*)\|", re.M)


# A card's quick check: the main figure on the first n test sketches of one data file, which the
# test suite reproduces in seconds (the whole split takes minutes for the paper-size models).
_QUICK_CHECK = re.compile(r"^- Quick check: the first (?P<n>\d+) test sketches of `(?P<file>[\w.-]+\.npz)` score "
                          r"(?P<metric>(?:elbo|nll)_per_point) (?P<value>-?[0-9.]+)\.$", re.M)


def _card_text(name: str, directory: str | Path | None) -> str:
    """The model card ``NAME.md`` in ``directory`` (default: the package's weights); "" if there is none."""
    card = Path(directory or weights_dir()) / f"{name}.md"
    return card.read_text() if card.is_file() else ""


def quick_check_line(n: int, file: str, metric: str, value: float) -> str:
    """The card line that :func:`card_quick_checks` reads back."""
    return f"- Quick check: the first {n} test sketches of `{file}` score {metric} {value:.4f}."


def card_quick_checks(name: str, directory: str | Path | None = None) -> list[dict[str, Any]]:
    """A shipped model card's quick checks: ``{"n", "file", "metric", "value"}`` per data file
    (the card ``NAME.md`` in ``directory``, by default the package's weights)."""
    text = _card_text(name, directory)
    return [{"n": int(m["n"]), "file": m["file"], "metric": m["metric"], "value": float(m["value"])}
            for m in _QUICK_CHECK.finditer(text)]


def shipped_quality(name: str, directory: str | Path | None = None) -> list[dict[str, Any]]:
    """What a shipped model's card says of it against its bar (issue "Trained models"): per
    class, the test split's ``nll_per_point`` (decoder-only; bar: within 2 % of the teacher) or
    ``elbo_per_point`` (VAE; bar: within 3 %, and ``recon_nll_per_point`` below the teacher).
    Rows ``{"metric", "ours", "teacher", "gap_percent", "bar_percent", "meets"}``; [] without a card
    (the card ``NAME.md`` in ``directory``, by default the package's weights)."""
    text = _card_text(name, directory)
    rows: dict[str, dict[str, Any]] = {}
    recon: dict[str, float] = {}
    for m in _CARD_ROW.finditer(text):
        metric = m.group("metric").strip()
        ours, teacher = float(m.group("ours")), float(m.group("teacher"))
        prefix = metric.split("recon_nll_per_point")[0] if "recon_nll" in metric else None
        if prefix is not None:
            recon[prefix] = ours - teacher
            continue
        bar = re.search(r"within (\d+(?:\.\d+)?) %", m.group("gap"))
        if bar is None:
            continue
        kind = "elbo_per_point" if "elbo_per_point" in metric else "nll_per_point"
        rows[metric.split(kind)[0]] = {"metric": metric, "ours": ours, "teacher": teacher,
                                       "gap_percent": 100.0 * (ours / teacher - 1.0), "bar_percent": float(bar.group(1))}
    out = []
    for prefix, r in rows.items():
        r["meets"] = r["gap_percent"] <= r["bar_percent"] and ("elbo" not in r["metric"] or recon.get(prefix, 1.0) < 0)
        out.append(r)
    return out


def atomic_write_bytes(path: str | Path, write_fn) -> None:
    """Write a model file atomically (see :func:`sketchrnn.fileio.atomic_write`)."""
    atomic_write(path, write_fn, error=ModelFileError)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomically save a training checkpoint (``payload`` as built by the Trainer)."""
    import torch

    payload = dict(payload)
    payload["format"] = CHECKPOINT_FORMAT
    payload["version"] = 1
    # Serialise in memory first: torch's zip writer turns a failed write (ENOSPC, EIO)
    # into an opaque RuntimeError; a plain f.write raises OSError -> ModelFileError.
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


# How much optimiser state a resume checkpoint keeps, most complete first (compact_for_resume).
# "average-only" exists only for runs with a weight average (train.ema_decay): the average
# becomes the weights and the trained weights are dropped (half the size of weights-only).
RESUME_MODES = ("full", "no-first-moment", "weights-only", "average-only")


def _with_resume_mode(ck: dict[str, Any], mode: str) -> dict[str, Any]:
    """A copy of training checkpoint ``ck`` keeping the optimiser state that ``mode`` names:
    ``full``; ``no-first-moment`` (Adam's second moments as bfloat16, first moments dropped);
    ``weights-only`` (no optimiser state); ``average-only`` (no optimiser state, the weight
    average as the weights: a resume goes on from the average, which is the model, and continues
    the average there at its age, ``ema_updates``). Weights always stay float32."""
    import torch

    c = dict(ck)
    c["resume_mode"] = mode
    if mode == "full":
        return c
    if mode in ("weights-only", "average-only"):
        c.pop("optimizer", None)
        if mode == "average-only":
            if not isinstance(ck.get("ema"), dict):
                raise ModelFileError("average-only needs a checkpoint with a weight average (train.ema_decay)")
            c["model"] = {k: v.to(torch.float32).clone() for k, v in ck["ema"].items()}
            c.pop("ema", None)  # "ema_updates" stays: a resume continues the average from its age
        return c
    opt = ck["optimizer"]
    state = {}
    for idx, st in opt["state"].items():
        st = dict(st)
        st.pop("exp_avg", None)
        if "exp_avg_sq" in st:
            st["exp_avg_sq"] = st["exp_avg_sq"].to(torch.bfloat16)
        state[idx] = st
    c["optimizer"] = {"state": state, "param_groups": opt["param_groups"]}
    return c


def compact_for_resume(ck: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], str, int]:
    """The most complete resume checkpoint (see RESUME_MODES) whose file fits ``max_bytes``:
    returns (payload, mode, size in bytes). A compact checkpoint can be compacted further (never
    back: what it dropped is gone). Raises ModelFileError when the weights alone do not fit."""
    import torch

    current = ck.get("resume_mode", "full")
    if current not in RESUME_MODES:
        raise ModelFileError(f"checkpoint has an unknown resume_mode {current!r}; use a last.pt written by sketchrnn")
    size = 0
    for mode in RESUME_MODES[RESUME_MODES.index(current):]:
        if mode == current:
            c = dict(ck)  # already in this mode (an average-only file holds no "ema" to turn into weights again)
        elif mode == "average-only" and not isinstance(ck.get("ema"), dict):
            break  # no average to keep instead of the weights
        else:
            c = _with_resume_mode(ck, mode)
        buf = io.BytesIO()
        torch.save({**c, "format": CHECKPOINT_FORMAT, "version": 1}, buf)
        size = buf.tell()
        if size <= max_bytes:
            return c, mode, size
    raise ModelFileError(f"even the float32 weights alone take {size / 2**20:.3g} MiB, more than "
                         f"{max_bytes / 2**20:.3g} MiB; export float16 weights with `sketchrnn export` instead")


def _check_zip_crcs(p: Path) -> None:
    """torch.save files are zip archives with a CRC-32 per member, which ``torch.load``
    does not verify: a flipped bit in the weights would load silently. Check them all
    (~1 GB/s); non-zip files are left to ``torch.load`` (which refuses them)."""
    import zipfile

    try:
        if not zipfile.is_zipfile(p):
            return
        with zipfile.ZipFile(p) as zf:
            bad = zf.testzip()
    except Exception as e:  # noqa: BLE001 - BadZipFile, zlib.error, OSError, ... on damaged files
        raise ModelFileError(f"checkpoint {p} is corrupted or truncated ({type(e).__name__}); use an earlier checkpoint") from None
    if bad is not None:
        raise ModelFileError(f"checkpoint {p}: member {bad} fails its CRC-32 check; the file is corrupted, "
                             "use an earlier checkpoint")


def _tensor_digest(tensors: dict) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of a state dict (sorted by name)."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().to("cpu").contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint safely (``weights_only=True``); clear errors for bad files."""
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"checkpoint {p} not found")
    _check_zip_crcs(p)
    try:
        ck = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise ModelFileError(f"checkpoint {p} was refused by the safe loader ({first[:160]}); it is not a sketchrnn checkpoint or it is corrupted") from None
    except Exception as e:  # noqa: BLE001 - torch.load on a damaged file raises many types
        # (RuntimeError, EOFError, BadZipFile, ValueError, OSError, KeyError, AssertionError, ...)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"checkpoint {p} is corrupted or truncated ({msg[:160]}); use an earlier checkpoint") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{p} is not a sketchrnn checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    for key in ("config", "model", "scale_factor", "step"):
        if key not in ck:
            raise ModelFileError(f"checkpoint {p} lacks '{key}'; it is incomplete")
    kinds = {"config": str, "model": dict, "step": int}
    for key, typ in kinds.items():
        if not isinstance(ck[key], typ) or isinstance(ck[key], bool):
            raise ModelFileError(f"checkpoint {p}: '{key}' is a {type(ck[key]).__name__}, expected {typ.__name__}; "
                                 "the file is corrupted")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ck["model"].items()):
        raise ModelFileError(f"checkpoint {p}: 'model' is not a mapping of names to tensors; the file is corrupted")
    if "ema" in ck and not (isinstance(ck["ema"], dict) and ck["ema"].keys() == ck["model"].keys()
                            and all(isinstance(v, torch.Tensor) for v in ck["ema"].values())):
        raise ModelFileError(f"checkpoint {p}: 'ema' (the weight average) does not match its weights; the file is corrupted")
    names = ck.get("class_names", [])
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"checkpoint {p}: 'class_names' is not a list of strings; the file is corrupted")
    return ck


def config_from_json(text: str, where: str) -> Config:
    try:
        d = json.loads(text)
    except (TypeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelFileError(f"{where}: stored config is not valid JSON ({type(e).__name__}: {str(e)[:100]})") from None
    try:
        return Config.from_dict(d, where=where)
    except ConfigError as e:
        raise ModelFileError(f"{where}: stored config is invalid: {e}") from None


FLOAT32_PREFIXES = ("decoder.output.",)  # kept float32 in half-precision exports


def save_weights(path: str | Path, model, config: Config | ModelConfig, scale_factor: float,
                 class_names: list[str], half: bool = True, extra: dict[str, str] | None = None) -> None:
    """Export weights as ``.safetensors`` (float16 by default, the mixture head float32) with config
    and scale in metadata."""
    import torch
    from safetensors.torch import save as st_save

    if isinstance(config, ModelConfig):
        config = Config(model=config)
    def dtype(name: str) -> torch.dtype:
        # the mixture head stays float32 (+0.13 MB at 512 units): late in training it sharpens
        # components whose means float16 cannot hold (yoga-uncond: 8.633 float32 -> 8.660 float16)
        return torch.float16 if half and not name.startswith(FLOAT32_PREFIXES) else torch.float32

    tensors = {k: v.detach().to("cpu", dtype(k)).contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": WEIGHTS_FORMAT,
        "config": config.to_json(),
        "scale_factor": repr(float(scale_factor)),
        "class_names": json.dumps(list(class_names)),
    }
    if extra:
        meta.update({k: str(v) for k, v in extra.items()})
    meta["tensors_sha256"] = _tensor_digest(tensors)  # safetensors has no checksum of its own
    blob = st_save(tensors, metadata=meta)
    atomic_write_bytes(path, lambda f: f.write(blob))


def _check_scale(scale: Any, where: str) -> float:
    shown = " ".join(repr(scale).split())[:60]  # one line, short, whatever the stored object is
    try:
        s = float(scale)
    except (TypeError, ValueError, OverflowError, RuntimeError):
        raise ModelFileError(f"{where}: scale_factor {shown} is not a number") from None
    if not (math.isfinite(s) and s > 0):
        raise ModelFileError(f"{where}: scale_factor {shown} must be a positive finite number")
    return s


def _build(cfg: Config, state: dict, where: str):
    import torch

    from .model import SketchRNN

    # Shapes are checked on the meta device first (no memory): a file whose config asks
    # for a huge model but does not hold its weights is refused before any allocation.
    try:
        with torch.device("meta"):
            own = SketchRNN(cfg.model).state_dict()
    except (TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise ModelFileError(f"{where}: the stored config does not describe a buildable model "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:100]})") from None
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelFileError(f"{where}: weights do not fit the stored config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(own[k].shape):
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ModelFileError(f"{where}: tensor {k} has shape {shape}, the config needs {tuple(own[k].shape)}")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ModelFileError(f"{where}: tensor {k} holds NaN or Inf values")
        if not (v.is_floating_point() or v.dtype == own[k].dtype):
            raise ModelFileError(f"{where}: tensor {k} has dtype {v.dtype}, expected floating point")
    model = SketchRNN(cfg.model)
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    model.eval()
    return model


def load_model(spec: str | Path, device: str = "cpu"):
    """Load a model from a checkpoint, ``.safetensors``, Magenta ``.gen.json`` or shipped name.

    Returns a :class:`sketchrnn.loaded.LoadedModel` with the model in eval mode.
    """
    from .loaded import LoadedModel

    spec_s = str(spec)
    p = Path(spec_s)
    if not p.exists() and "/" not in spec_s and not spec_s.endswith((".pt", ".json", ".safetensors")):
        cand = weights_dir() / f"{spec_s}.safetensors"
        if cand.is_file():
            p = cand
        else:
            names = ", ".join(shipped_models()) or "none are installed"
            raise ModelFileError(f"model {spec_s!r} is neither a file nor a shipped model (shipped: {names})")
    if not p.is_file():
        raise ModelFileError(f"model file {p} not found")

    if p.name.endswith(".json"):
        from .interop.magenta import load_magenta

        lm = load_magenta(p)
        lm.model.to(device)
        return lm

    if p.suffix == ".safetensors":
        from safetensors.torch import load as st_load

        try:
            raw = p.read_bytes()
            state = st_load(raw)
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as e:  # noqa: BLE001 - SafetensorError, OSError, ValueError, RuntimeError, ...
            first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
            raise ModelFileError(f"weights file {p} is corrupted or not safetensors ({first})") from None
        if meta.get("format") != WEIGHTS_FORMAT:
            raise ModelFileError(f"{p} has no sketchrnn metadata; it was not exported by sketchrnn")
        if "tensors_sha256" in meta and _tensor_digest(state) != meta["tensors_sha256"]:
            raise ModelFileError(f"weights file {p}: tensor data does not match its SHA-256; the file is corrupted")
        cfg = config_from_json(meta.get("config", ""), str(p))
        scale = _check_scale(meta.get("scale_factor"), str(p))
        try:
            class_names = json.loads(meta.get("class_names", "[]"))
        except (json.JSONDecodeError, RecursionError):
            raise ModelFileError(f"{p}: class_names metadata is not valid JSON") from None
        if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
            raise ModelFileError(f"{p}: class_names metadata is not a list of strings")
        model = _build(cfg, state, str(p)).to(device)
        return LoadedModel(model=model, config=cfg.model, scale_factor=scale, class_names=list(class_names),
                           name=p.stem, source=str(p), info={k: v for k, v in meta.items() if k not in ("config",)})

    ck = read_checkpoint(p)
    # a run with train.ema_decay keeps the weight average beside the trained weights: the
    # average is the model (its validation picked best.pt); an average-only resume file holds
    # the average as its weights
    has_ema = "ema" in ck
    averaged = has_ema or ck.get("resume_mode") == "average-only"
    return model_from_state(ck, ck["ema"] if has_ema else ck["model"], str(p), device,
                            info={"step": int(ck["step"]), "best_valid": ck.get("best_valid"),
                                  "weights": "average" if averaged else "trained"})


def model_from_state(ck: dict[str, Any], state: dict, where: str, device: str = "cpu",
                     info: dict[str, Any] | None = None):
    """A :class:`sketchrnn.loaded.LoadedModel` of training checkpoint ``ck`` (its config, scale
    factor and class names) with the weights ``state`` (``ck["model"]``, ``ck["ema"]`` or a mean
    of several runs' weights); ``where`` names it in errors."""
    from .loaded import LoadedModel

    cfg = config_from_json(ck["config"], where)
    scale = _check_scale(ck["scale_factor"], where)
    model = _build(cfg, state, where).to(device)
    return LoadedModel(model=model, config=cfg.model, scale_factor=scale, class_names=list(ck.get("class_names", [])),
                       name=Path(where).stem, source=str(where), info=info or {})
