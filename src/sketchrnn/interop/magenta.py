"""Read and write Magenta's ``@magenta/sketch`` model files (``*.gen.json``).

Format (see ../shared/README.md, section models/magenta, and @magenta/sketch
``sketch_rnn/model.ts``): a JSON list ``[info, dims, weights]``.

* ``info``: ``{"mode": 2, "version": 6, "max_seq_len": int, "name": str,
  "scale_factor": float}``; older files have ``"mode": "gen", "version": 2`` and add
  ``r_loss`` and ``training_size``.
* ``dims``: the five shapes ``[[H, 123], [123], [5, 4H], [H, 4H], [4H]]``.
* ``weights``: five base64 strings of little-endian int16 ``q``; the weight is
  ``10 * q / 32767``, in the order output_w ``(H, 123)``, output_b ``(123,)``,
  W_xh ``(5, 4H)``, W_hh ``(H, 4H)``, LSTM bias ``(4H,)``.

The model is a decoder-only LSTM (TensorFlow ``BasicLSTMCell``: gates i, j, f, o,
forget bias 1.0, ``c' = c*sigmoid(f+1) + sigmoid(i)*tanh(j)``, ``h' = tanh(c')*sigmoid(o)``)
fed ``[dx/scale_factor, dy/scale_factor, p1, p2, p3]`` starting from ``[0, 0, 1, 0, 0]``,
with an MDN head of M = 20 components whose output row is
``[3 pen logits, pi logits (20), mu_x, mu_y, log sigma_x, log sigma_y, rho_raw]`` -- the
same layout as :mod:`sketchrnn.model.mdn`. @magenta/sketch ``getPDF(state, temperature,
softmaxTemperature)`` computes ``pen = softmax(pen/st)``, ``pi = softmax(pi/st)``,
``sigma = exp(log_sigma) * sqrt(temperature)``, ``corr = tanh(rho_raw)``, ``mu`` as is,
with ``st = 0.5 + 0.5*temperature`` by default; at temperature 1 it is the raw density.
Note: @magenta/sketch's ``update()`` divides offsets by ``scale_factor / pixelFactor``
with a default pixelFactor of 2 (its demos draw at half scale); the model itself, as
trained in Python Magenta, expects offsets in data units divided by ``scale_factor``,
which is what this module and sketchrnn use.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ModelConfig
from ..errors import ModelFileError
from ..loaded import LoadedModel

__all__ = [
    "MAGENTA_NUM_MIXTURE",
    "MAGENTA_MAX_WEIGHT",
    "QUANT_STEP",
    "MagentaFile",
    "read_magenta_json",
    "load_magenta",
    "export_magenta",
    "quantize",
    "dequantize",
]

MAGENTA_NUM_MIXTURE = 20  # fixed in @magenta/sketch (NMIXTURE = 20)
MAGENTA_INPUT_SIZE = 5  # [dx, dy, p1, p2, p3]
MAGENTA_OUTPUT_SIZE = 3 + 6 * MAGENTA_NUM_MIXTURE  # 123
MAGENTA_MAX_WEIGHT = 10.0  # value = MAX_WEIGHT * q / 32767
QUANT_STEP = MAGENTA_MAX_WEIGHT / 32767  # spacing of representable weights (~3.05e-4)
MAX_HIDDEN = 16384  # refuse absurd sizes before allocating anything
SCALE_RANGE = (1e-4, 1e5)  # plausible scale_factor (std of offsets in data units)
KNOWN_MODES = (1, 2, "gen")  # 1/2: decoder-only per @magenta/sketch docs; "gen": older files
KNOWN_VERSIONS = range(1, 7)  # @magenta/sketch: "pre-trained models have a version between 1-6"
EXPORT_MODE = 2
EXPORT_VERSION = 6
_WEIGHT_NAMES = ("output_w", "output_b", "W_xh", "W_hh", "bias")
# project parameter <- Magenta array (transposed where marked)
_PARAM_MAP = {
    "decoder.cell.weight_ih": "W_xh",  # (5, 4H)
    "decoder.cell.weight_hh": "W_hh",  # (H, 4H)
    "decoder.cell.bias": "bias",  # (4H,)
    "decoder.output.weight": "output_w",  # nn.Linear weight (123, H) = output_w.T
    "decoder.output.bias": "output_b",  # (123,)
}


@dataclass
class MagentaFile:
    """A parsed and validated ``.gen.json``: header, hidden size and float32 weights."""

    info: dict[str, Any]
    hidden_size: int
    weights: dict[str, np.ndarray]  # name -> float32 array in Magenta's layout (see _WEIGHT_NAMES)
    path: str

    @property
    def scale_factor(self) -> float:
        return float(self.info["scale_factor"])

    @property
    def max_seq_len(self) -> int:
        return int(self.info["max_seq_len"])

    @property
    def name(self) -> str:
        n = self.info.get("name")
        if isinstance(n, str) and n:
            return n
        stem = Path(self.path).name
        for suffix in (".gen.json", ".json"):
            if stem.endswith(suffix):
                return stem[: -len(suffix)]
        return stem


def expected_dims(hidden: int) -> list[list[int]]:
    """The five weight shapes of a Magenta decoder with ``hidden`` LSTM units."""
    g = 4 * hidden
    return [[hidden, MAGENTA_OUTPUT_SIZE], [MAGENTA_OUTPUT_SIZE], [MAGENTA_INPUT_SIZE, g], [hidden, g], [g]]


def dequantize(q: np.ndarray) -> np.ndarray:
    """int16 -> float32 weight, ``10 * q / 32767`` (computed in float64, rounded once)."""
    return (q.astype(np.float64) * MAGENTA_MAX_WEIGHT / 32767.0).astype(np.float32)


def quantize(v: np.ndarray, what: str = "weights") -> np.ndarray:
    """float -> little-endian int16, ``round(v * 32767 / 10)``; refuses ``|v| > 10``.

    The error per weight is at most ``QUANT_STEP / 2`` (~1.5e-4). Weights outside
    ``[-10, 10]`` cannot be represented; clipping them would change the model silently,
    so they are refused (ModelFileError) instead.
    """
    v64 = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v64)):
        raise ModelFileError(f"cannot export {what}: it holds NaN or Inf values")
    big = float(np.max(np.abs(v64))) if v64.size else 0.0
    if big > MAGENTA_MAX_WEIGHT:
        raise ModelFileError(
            f"cannot export {what}: a weight of magnitude {big:.4g} exceeds the Magenta format's limit of "
            f"{MAGENTA_MAX_WEIGHT:g} (int16 scaled by 10/32767); refusing rather than clipping -- export to .safetensors instead")
    q = np.rint(v64 * (32767.0 / MAGENTA_MAX_WEIGHT))
    return np.clip(q, -32767, 32767).astype("<i2")


def _fail(where: str, msg: str) -> ModelFileError:
    return ModelFileError(f"Magenta model {where}: {msg}")


def _check_info(info: Any, where: str) -> dict[str, Any]:
    if not isinstance(info, dict):
        raise _fail(where, f"header (element 0) must be a JSON object, got {type(info).__name__}; not a @magenta/sketch .gen.json file")
    missing = [k for k in ("max_seq_len", "scale_factor", "mode", "version") if k not in info]
    if missing:
        raise _fail(where, f"header lacks {', '.join(missing)}; not a complete @magenta/sketch model file")
    mode, version = info["mode"], info["version"]
    if isinstance(mode, bool) or mode not in KNOWN_MODES:
        raise _fail(where, f"unknown mode {mode!r} (known: 1, 2, \"gen\" = decoder-only); VAE files are not supported")
    if isinstance(version, bool) or not isinstance(version, int) or version not in KNOWN_VERSIONS:
        raise _fail(where, f"unknown version {version!r} (known: 1-6)")
    msl = info["max_seq_len"]
    # range first: float() of a huge JSON integer would raise OverflowError
    if isinstance(msl, bool) or not isinstance(msl, (int, float)) or not (1 <= msl <= 100000) or not float(msl).is_integer():
        raise _fail(where, f"max_seq_len {msl!r} must be a whole number in 1..100000")
    sf = info["scale_factor"]
    if isinstance(sf, bool) or not isinstance(sf, (int, float)) or not (SCALE_RANGE[0] <= sf <= SCALE_RANGE[1]) \
            or not math.isfinite(sf):
        raise _fail(where, f"scale_factor {sf!r} must be a finite number in [{SCALE_RANGE[0]:g}, {SCALE_RANGE[1]:g}]")
    if "name" in info and not isinstance(info["name"], str):
        raise _fail(where, f"name {info['name']!r} must be a string")
    out = dict(info)
    out["max_seq_len"] = int(msl)
    out["scale_factor"] = float(sf)
    return out


def _check_dims(dims: Any, where: str) -> int:
    if not isinstance(dims, list) or len(dims) != 5:
        n = len(dims) if isinstance(dims, list) else type(dims).__name__
        raise _fail(where, f"shapes (element 1) must be a list of 5 shapes, got {n}")
    for k, d in enumerate(dims):
        if not isinstance(d, list) or not d or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in d):
            raise _fail(where, f"shape {k} ({_WEIGHT_NAMES[k]}) is {d!r}, not a list of positive integers")
    first = dims[0]
    hidden = first[0] if len(first) == 2 else 0
    if not (1 <= hidden <= MAX_HIDDEN):
        raise _fail(where, f"shape of output_w is {first}, expected [H, {MAGENTA_OUTPUT_SIZE}] with 1 <= H <= {MAX_HIDDEN}")
    exp = expected_dims(hidden)
    if dims != exp:
        bad = next(k for k in range(5) if dims[k] != exp[k])
        if dims[0][1] != MAGENTA_OUTPUT_SIZE:
            why = f"output size {dims[0][1]} != {MAGENTA_OUTPUT_SIZE} (3 pen + 6 x {MAGENTA_NUM_MIXTURE} mixture)"
        else:
            why = f"inconsistent with H={hidden} and 5 inputs"
        raise _fail(where, f"shape {bad} ({_WEIGHT_NAMES[bad]}) is {dims[bad]}, expected {exp[bad]}: {why}")
    return hidden


def _decode_weights(strings: Any, dims: list[list[int]], where: str) -> dict[str, np.ndarray]:
    if not isinstance(strings, list) or len(strings) != 5:
        n = len(strings) if isinstance(strings, list) else type(strings).__name__
        raise _fail(where, f"weights (element 2) must be a list of 5 base64 strings, got {n}")
    out: dict[str, np.ndarray] = {}
    for k, (name, s, shape) in enumerate(zip(_WEIGHT_NAMES, strings, dims)):
        if not isinstance(s, str):
            raise _fail(where, f"weight {k} ({name}) is a {type(s).__name__}, expected a base64 string")
        try:
            raw = base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError) as e:
            raise _fail(where, f"weight {k} ({name}) is not valid base64 ({e}); the file is corrupted") from None
        n = int(np.prod(shape))
        if len(raw) != 2 * n:
            raise _fail(where, f"weight {k} ({name}) has {len(raw)} bytes, shape {shape} needs {2 * n} (int16); the file is truncated or corrupted")
        q = np.frombuffer(raw, dtype="<i2").reshape(shape)
        out[name] = dequantize(q)
    return out


def read_magenta_json(path: str | Path) -> MagentaFile:
    """Parse and fully validate a ``.gen.json`` file (no torch needed).

    Every problem raises :class:`ModelFileError` with one line naming the file.
    """
    p = Path(path)
    where = str(p)
    try:
        text = p.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"Magenta model {where} not found") from None
    except OSError as e:
        raise ModelFileError(f"cannot read Magenta model {where}: {e.strerror or e}") from None
    try:
        doc = json.loads(text)
    except UnicodeDecodeError:
        raise _fail(where, "is not UTF-8 JSON text; expected a @magenta/sketch .gen.json file") from None
    except json.JSONDecodeError as e:
        raise _fail(where, f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); the file is truncated or corrupted") from None
    except RecursionError:
        raise _fail(where, "is not a @magenta/sketch model (JSON nested too deeply)") from None
    if not isinstance(doc, list) or len(doc) != 3:
        what = f"a list of {len(doc)} elements" if isinstance(doc, list) else f"a JSON {type(doc).__name__}"
        raise _fail(where, f"top level is {what}; expected [info, dims, weights]")
    info = _check_info(doc[0], where)
    hidden = _check_dims(doc[1], where)
    weights = _decode_weights(doc[2], doc[1], where)
    return MagentaFile(info=info, hidden_size=hidden, weights=weights, path=where)


def magenta_model_config(hidden: int, max_seq_len: int) -> ModelConfig:
    """The project config of a Magenta decoder-only model (no dropout: inference weights)."""
    cfg = ModelConfig(conditional=False, dec_model="lstm", dec_rnn_size=hidden,
                      num_mixture=MAGENTA_NUM_MIXTURE, max_seq_len=max_seq_len,
                      use_recurrent_dropout=False)
    cfg.validate()
    return cfg


def load_magenta(path: str | Path, device: str = "cpu") -> LoadedModel:
    """Load a @magenta/sketch ``.gen.json`` into the project's decoder-only LSTM SketchRNN.

    The whole file is validated before any model is built, so a bad file never yields
    a half-loaded model. Returns a :class:`LoadedModel` in eval mode.
    """
    mf = read_magenta_json(path)
    import torch

    from ..model import SketchRNN

    cfg = magenta_model_config(mf.hidden_size, mf.max_seq_len)
    model = SketchRNN(cfg)
    state = model.state_dict()
    names = set(state)
    if names != set(_PARAM_MAP):  # the contract of ARCHITECTURE.md (model/cells.py, decoder.py)
        raise RuntimeError(f"internal: decoder-only LSTM SketchRNN has parameters {sorted(names)}, "
                           f"expected exactly {sorted(_PARAM_MAP)}")
    new_state = {}
    for pname, mname in _PARAM_MAP.items():
        arr = mf.weights[mname]
        if pname == "decoder.output.weight":
            arr = arr.T  # (H, 123) -> nn.Linear (123, H)
        t = torch.from_numpy(np.ascontiguousarray(arr))
        if tuple(t.shape) != tuple(state[pname].shape):
            raise RuntimeError(f"internal: {pname} has shape {tuple(state[pname].shape)}, Magenta array {tuple(t.shape)}")
        new_state[pname] = t.to(state[pname].dtype)
    model.load_state_dict(new_state)
    model.eval().to(device)
    info = dict(mf.info)
    return LoadedModel(model=model, config=cfg, scale_factor=mf.scale_factor, class_names=[mf.name],
                       name=mf.name, source=mf.path, info=info)


def _exportable_arrays(model: Any, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Magenta-layout float64 arrays of a decoder-only LSTM model, or ModelFileError saying why not."""
    reasons = []
    if cfg.conditional:
        reasons.append("it is conditional (VAE with encoder and z); the format holds a decoder only")
    if cfg.dec_model != "lstm":
        reasons.append(f"its decoder cell is {cfg.dec_model!r}; the format holds a plain LSTM only")
    if cfg.num_mixture != MAGENTA_NUM_MIXTURE:
        reasons.append(f"it has {cfg.num_mixture} mixture components; @magenta/sketch assumes {MAGENTA_NUM_MIXTURE}")
    if reasons:
        raise ModelFileError("cannot export to Magenta .gen.json: " + "; ".join(reasons))
    state = {k: v.detach().to("cpu").double().numpy() for k, v in model.state_dict().items()}
    if set(state) != set(_PARAM_MAP):
        extra = sorted(set(state) - set(_PARAM_MAP))
        raise ModelFileError(f"cannot export to Magenta .gen.json: the model has parameters the format cannot hold ({extra[:3]})")
    h = cfg.dec_rnn_size
    arrays = {
        "output_w": state["decoder.output.weight"].T,  # (123, H) -> (H, 123)
        "output_b": state["decoder.output.bias"],
        "W_xh": state["decoder.cell.weight_ih"],
        "W_hh": state["decoder.cell.weight_hh"],
        "bias": state["decoder.cell.bias"],
    }
    for k, (name, shape) in enumerate(zip(_WEIGHT_NAMES, expected_dims(h))):
        if list(arrays[name].shape) != shape:
            raise ModelFileError(f"cannot export to Magenta .gen.json: {name} has shape {list(arrays[name].shape)}, "
                                 f"the format needs {shape} (input must be the 5-dim stroke-5 point)")
    return arrays


def _calibration_inputs(model: Any, arrays: dict[str, np.ndarray], sketches: list[np.ndarray], scale: float,
                        q_lstm: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Teacher-forced decoder inputs of ``sketches`` (stroke-3, data units), float64.

    Without ``q_lstm``: rows ``[1, x_t (5), h_{t-1} (H)]`` of the LSTM's gate product. With
    ``q_lstm`` (the rounded W_xh, W_hh, bias): rows ``[1, h_t (H)]`` of the output layer,
    ``h_t`` from the rounded LSTM (the states the exported model will have). Only the L+1
    scored steps of each sketch."""
    import torch

    from ..data.strokes import to_stroke5

    lw = q_lstm or arrays
    w_xh, w_hh, b = (torch.from_numpy(np.asarray(lw[k], dtype=np.float64)) for k in ("W_xh", "W_hh", "bias"))
    hid = w_hh.shape[0]
    fb = float(model.decoder.cell.forget_bias)
    rows = []
    for s in sketches:
        x = torch.from_numpy(to_stroke5(s, len(s), scale)).double()  # (L+1, 5): start token + points
        c = torch.zeros(hid, dtype=torch.float64)
        h = torch.zeros(hid, dtype=torch.float64)
        for t in range(len(s) + 1):
            if q_lstm is None:
                rows.append(torch.cat([torch.ones(1, dtype=torch.float64), x[t], h]))
            gates = x[t] @ w_xh + h @ w_hh + b  # (4H,) order i, j, f, o
            i, j, f, o = gates.split(hid)
            c = c * torch.sigmoid(f + fb) + torch.sigmoid(i) * torch.tanh(j)
            h = torch.tanh(c) * torch.sigmoid(o)
            if q_lstm is not None:
                rows.append(torch.cat([torch.ones(1, dtype=torch.float64), h]))
    return torch.stack(rows).numpy()


def _compensated_round(model: Any, arrays: dict[str, np.ndarray], sketches: list[np.ndarray],
                       scale: float) -> dict[str, np.ndarray]:
    """int16 grid indices of the five arrays by error-compensating rounding
    (:mod:`sketchrnn.interop.rounding`), calibrated on ``sketches``: the LSTM's gate product
    on its float inputs, then the output layer on the states of the rounded LSTM."""
    from .rounding import gptq_round, second_moment

    # gates = [1, x, h] @ [bias; W_xh; W_hh]: one layer of 1 + 5 + H inputs and 4H outputs
    w = np.concatenate([arrays["bias"][None, :], arrays["W_xh"], arrays["W_hh"]]).T  # (4H, 1+5+H)
    q = gptq_round(w, second_moment(_calibration_inputs(model, arrays, sketches, scale)), QUANT_STEP).T
    out = {"bias": q[0], "W_xh": q[1:6], "W_hh": q[6:]}
    q_lstm = {k: dequantize(np.clip(v, -32767, 32767).astype("<i2")).astype(np.float64) for k, v in out.items()}
    w = np.concatenate([arrays["output_b"][None, :], arrays["output_w"]]).T  # (123, 1+H)
    q = gptq_round(w, second_moment(_calibration_inputs(model, arrays, sketches, scale, q_lstm)), QUANT_STEP).T
    out["output_b"], out["output_w"] = q[0], q[1:]
    res = {}
    for name, v in out.items():
        if np.max(np.abs(v)) > 32767:  # compensation pushed a weight past the format's range
            raise ModelFileError(f"cannot export {name} with compensated rounding: a weight would exceed the "
                                 f"format's limit of {MAGENTA_MAX_WEIGHT:g}; export with rounding='nearest'")
        res[name] = v.astype("<i2")
    return res


def export_magenta(loaded_or_model: Any, path: str | Path, scale_factor: float | None = None,
                   name: str | None = None, extra_info: dict[str, Any] | None = None,
                   rounding: str = "compensated", calibration: list[np.ndarray] | None = None,
                   n_calibration: int = 200) -> dict[str, Any]:
    """Write a decoder-only LSTM model as a @magenta/sketch ``.gen.json`` (mode 2, version 6).

    ``loaded_or_model`` is a :class:`LoadedModel` (scale factor and name taken from it
    unless given) or a ``SketchRNN`` (then ``scale_factor`` is required). Weights go onto
    the format's int16 grid (``10 * q / 32767``); weights with ``|v| > 10`` are refused, not
    clipped. ``rounding="nearest"``: each weight to its nearest grid point (error <= 1.53e-4
    per weight). ``rounding="compensated"`` (default): error-compensating rounding (GPTQ,
    :mod:`sketchrnn.interop.rounding`) that keeps each layer's outputs close on
    ``calibration`` sketches (stroke-3, data units; default: ``n_calibration`` samples of the
    model itself at temperature 1, seed 0 — no data needed). ``extra_info`` (e.g. measured
    losses) is added to the header; it may not override the required keys. Returns the
    header written.
    """
    if isinstance(loaded_or_model, LoadedModel):
        model, cfg = loaded_or_model.model, loaded_or_model.config
        scale_factor = loaded_or_model.scale_factor if scale_factor is None else scale_factor
        name = name or loaded_or_model.name
    else:
        model = loaded_or_model
        cfg = getattr(model, "cfg", None)
        if not isinstance(cfg, ModelConfig):
            raise ModelFileError("cannot export to Magenta .gen.json: expected a LoadedModel or a SketchRNN with .cfg")
        if scale_factor is None:
            raise ModelFileError("cannot export to Magenta .gen.json: scale_factor is required when passing a bare model")
    try:
        sf = float(scale_factor)
    except (TypeError, ValueError):
        raise ModelFileError(f"cannot export to Magenta .gen.json: scale_factor {scale_factor!r} is not a number") from None
    if not (math.isfinite(sf) and SCALE_RANGE[0] <= sf <= SCALE_RANGE[1]):
        raise ModelFileError(f"cannot export to Magenta .gen.json: scale_factor {sf!r} must be finite and in "
                             f"[{SCALE_RANGE[0]:g}, {SCALE_RANGE[1]:g}]")
    arrays = _exportable_arrays(model, cfg)
    if rounding not in ("compensated", "nearest"):
        raise ModelFileError(f"cannot export to Magenta .gen.json: rounding must be 'compensated' or 'nearest', got {rounding!r}")
    qs = {n: quantize(arrays[n], what=f"{n} of the model") for n in _WEIGHT_NAMES}  # refuses |v| > 10, NaN
    if rounding == "compensated":
        if calibration is None and n_calibration < 1:
            raise ModelFileError(f"cannot export to Magenta .gen.json: n_calibration must be >= 1 for compensated "
                                 f"rounding, got {n_calibration} (or use rounding='nearest')")
        if calibration is None:
            from ..api import sample

            lm = LoadedModel(model=model, config=cfg, scale_factor=sf, class_names=[], name="export", source="", info={})
            calibration = sample(lm, n=n_calibration, temperature=1.0, seed=0)
        if not calibration:
            raise ModelFileError("cannot export to Magenta .gen.json: no calibration sketches for compensated rounding")
        qs = _compensated_round(model, arrays, list(calibration), sf)
    blobs = [base64.b64encode(qs[n].tobytes()).decode("ascii") for n in _WEIGHT_NAMES]
    info: dict[str, Any] = {"mode": EXPORT_MODE, "version": EXPORT_VERSION, "max_seq_len": int(cfg.max_seq_len),
                            "name": str(name or Path(str(path)).name.split(".")[0]), "scale_factor": sf}
    for k, v in (extra_info or {}).items():
        if k in info:
            raise ModelFileError(f"cannot export to Magenta .gen.json: extra_info may not override {k!r}")
        if isinstance(v, float) and not math.isfinite(v):
            warnings.warn(f"export_magenta: dropping non-finite extra_info {k}={v}", stacklevel=2)
            continue
        info[k] = v
    try:
        text = json.dumps([info, expected_dims(cfg.dec_rnn_size), blobs], separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"cannot export to Magenta .gen.json: extra_info is not JSON-serialisable ({e})") from None
    from ..checkpoint import atomic_write_bytes

    atomic_write_bytes(path, lambda f: f.write(text.encode("ascii")))
    return info
