"""Typed configuration for sketch-rnn.

Defaults follow Magenta's ``sketch_rnn/model.py`` ``get_default_hparams`` (see
../shared/README.md). Each field has a one-line comment with a recommended range.
Configs round-trip through plain dicts/JSON; unknown keys are refused, never ignored,
and nothing here is silently overwritten from data.

Dotted overrides (CLI ``--set model.dec_model=hyper train.batch_size=64``) are parsed
by :func:`apply_overrides` and type-checked against the dataclass field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "CELL_TYPES",
    "ModelConfig",
    "DataConfig",
    "TrainConfig",
    "Config",
    "apply_overrides",
    "load_config",
]

CELL_TYPES = ("lstm", "layer_norm", "hyper")
MAX_MODEL_DIM = 1 << 20  # upper bound of every size in ModelConfig (a config read from a file can ask anything)


@dataclass
class ModelConfig:
    conditional: bool = True  # VAE with encoder and z; False = decoder-only (unconditional) model
    enc_model: str = "lstm"  # encoder cell: lstm | layer_norm | hyper
    enc_rnn_size: int = 256  # encoder units per direction; 128-512
    dec_model: str = "lstm"  # decoder cell: lstm | layer_norm | hyper
    dec_rnn_size: int = 512  # decoder units; 256-2048
    z_size: int = 128  # latent size N_z; 16-256
    num_mixture: int = 20  # Gaussian mixture components M; 5-30
    hyper_rnn_size: int = 256  # HyperLSTM: units of the small hyper LSTM; 64-512
    hyper_embedding_size: int = 32  # HyperLSTM: size of each hyper embedding; 4-64
    use_recurrent_dropout: bool = True  # dropout on the cell update g (Semeniuta et al. 2016)
    recurrent_dropout_prob: float = 0.90  # keep probability of recurrent dropout; 0.8-1.0
    use_input_dropout: bool = False  # dropout on the decoder input
    input_dropout_prob: float = 0.90  # keep probability of input dropout; 0.8-1.0
    use_output_dropout: bool = False  # dropout on the decoder output before the MDN head
    output_dropout_prob: float = 0.90  # keep probability of output dropout; 0.8-1.0
    max_seq_len: int = 250  # N_max: longest sketch (points) the model reads or draws; 100-300
    class_conditional: bool = False  # decoder also reads a learned class embedding at every step (multi-class data)
    num_classes: int = 0  # rows of the class embedding (class_conditional); >= classes in the data, 2-345
    class_embedding_size: int = 32  # size of the class embedding (class_conditional); 8-64

    def validate(self) -> None:
        for name in ("enc_model", "dec_model"):
            if getattr(self, name) not in CELL_TYPES:
                raise ConfigError(f"model.{name}={getattr(self, name)!r} is not one of {', '.join(CELL_TYPES)}")
        for name in ("enc_rnn_size", "dec_rnn_size", "z_size", "num_mixture", "hyper_rnn_size",
                     "hyper_embedding_size", "max_seq_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
            if getattr(self, name) > MAX_MODEL_DIM:  # far beyond any real model; refuses absurd files
                raise ConfigError(f"model.{name} must be <= {MAX_MODEL_DIM}, got {getattr(self, name)}")
        for name in ("recurrent_dropout_prob", "input_dropout_prob", "output_dropout_prob"):
            v = getattr(self, name)
            if not (0.0 < v <= 1.0):
                raise ConfigError(f"model.{name} is a keep probability in (0, 1], got {v}")
        if not (1 <= self.class_embedding_size <= MAX_MODEL_DIM):
            raise ConfigError(f"model.class_embedding_size must be in 1..{MAX_MODEL_DIM}, got {self.class_embedding_size}")
        if not (0 <= self.num_classes <= MAX_MODEL_DIM):
            raise ConfigError(f"model.num_classes must be in 0..{MAX_MODEL_DIM}, got {self.num_classes}")
        if self.class_conditional and self.num_classes < 1:
            raise ConfigError("model.class_conditional=true needs model.num_classes >= 1 (the number of classes "
                              "in data.paths)")

    @property
    def output_size(self) -> int:
        """Width of the MDN head: 3 pen logits + 6 numbers per mixture component."""
        return 3 + 6 * self.num_mixture


@dataclass
class DataConfig:
    paths: list[str] = field(default_factory=list)  # one or more sketch-rnn .npz files; several = multi-class
    random_scale_factor: float = 0.15  # training augmentation: x and y scaled independently by 1 +- this; 0-0.3
    augment_stroke_prob: float = 0.10  # training augmentation: point-drop probability; 0-0.3
    max_offset: float = 1000.0  # offsets are clamped to +- this many data units (paper preprocessing)

    def validate(self) -> None:
        if not (0.0 <= self.random_scale_factor < 1.0):
            raise ConfigError(f"data.random_scale_factor must be in [0, 1), got {self.random_scale_factor}")
        if not (0.0 <= self.augment_stroke_prob <= 1.0):
            raise ConfigError(f"data.augment_stroke_prob must be in [0, 1], got {self.augment_stroke_prob}")
        if self.max_offset <= 0:
            raise ConfigError(f"data.max_offset must be > 0, got {self.max_offset}")


@dataclass
class TrainConfig:
    batch_size: int = 100  # sketches per step; 32-1000
    learning_rate: float = 1e-3  # Adam initial learning rate; 1e-4-3e-3
    decay_rate: float = 0.9999  # lr = (lr0 - min) * decay_rate**(step - decay_start) + min; 0.999-1
    min_learning_rate: float = 1e-5  # floor of the learning rate
    # the encoder's learning rate as a multiple of the schedule's (VAE only; the decoder keeps the
    # schedule's): a late phase at a low floor moves the posterior's KL/reconstruction trade-off
    # no faster than the decoder; 1 = one rate for all (Magenta); 1-10
    encoder_lr_scale: float = 1.0
    # step from which the decay counts (lr0 until then): a resumed phase's own schedule, e.g. a
    # cool-down from lr0 at step S with decay_start=S; 0 = Magenta's schedule from the first step
    decay_start: int = 0
    grad_clip: float = 1.0  # gradients clipped by value to +- this; 0 = off
    kl_weight: float = 0.5  # final KL weight w_KL; 0.25-1.0 (lower = better reconstruction)
    kl_weight_start: float = 0.01  # KL weight at step 0
    kl_decay_rate: float = 0.99995  # w_KL = kl_weight - (kl_weight - kl_weight_start) * kl_decay_rate**step
    kl_tolerance: float = 0.2  # KL (per z dimension) below this is not penalised; 0.1-0.5
    num_steps: int = 10000000  # total optimiser steps (Magenta trains ~1M)
    eval_every: int = 500  # steps between validation passes (and best-checkpoint updates)
    save_every: int = 500  # steps between resume checkpoints
    log_every: int = 20  # steps between metric log rows
    max_eval_sketches: int = 0  # validation subset size; 0 = whole split
    # also score validation in ../shared/README.md's metric (valid_nll_per_point: the NLL, or for a
    # VAE the ELBO, per point, end padding not scored; valid_recon_per_point: z = mu). Costs two more
    # decoder passes for a VAE (paper-size yoga VAE, 500 sketches, one AVX2 thread: 4.8 -> 13.5 s per
    # validation, ~2.5 % of a run validating every 250 steps), one for a decoder-only model
    eval_per_point: bool = True
    # sketches per validation batch; 0 = batch_size on a CPU, 1000 on CUDA (each batch is T
    # sequential steps: the H100 spent ~12 % of a cat run validating 2,500 sketches at 100)
    eval_batch_size: int = 0
    seed: int = 0  # seeds torch, numpy and the data order
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: int = 0  # torch CPU threads; 0 = leave torch's default
    max_minutes: float = 0.0  # stop (with a checkpoint) after this many minutes; 0 = no limit
    max_bad_steps: int = 20  # non-finite losses/gradients in a row before training stops
    deterministic: bool = False  # torch.use_deterministic_algorithms (bitwise resumable on CPU)
    fast: bool = True  # exact fused training forward (sketchrnn.fast); False = the plain reference model
    # float32 matrix products on CUDA (on the CPU only medium changes anything): highest = full fp32 (Magenta's);
    # high = TF32 (H100: LSTM step 29.4 -> 21.2 ms, B=1000 LayerNorm 6,860 -> 9,832 sketches/s;
    # gradients ~1e-3 relative to fp32); medium = bf16 products, on CUDA and also on CPUs with
    # AVX512-BF16/AMX (oneDNN; training steps only, float32 elsewhere). The mixture head is float32
    # whatever this says (model.decoder.Float32Head); for a late phase near the teacher, highest
    # (a TF32 head stalled there, benchmarks/NOTES_gpu.md 2026-11-26)
    matmul_precision: str = "highest"
    init_from: str = ""  # fine-tune: start from these weights (.pt/.safetensors/shipped name), fresh optimiser
    # exponential moving average of the weights (Polyak averaging; the decay ramps up as TF's
    # ExponentialMovingAverage with num_updates): validation, best.pt and whatever loads a
    # checkpoint (sample, evaluate, export) use the average; 0 = off (Magenta); 0.999-0.9999
    ema_decay: float = 0.0
    # CPU on Linux (glibc): keep freed memory in the process heap (mallopt) so that each step
    # reuses its ~30 MB buffers instead of page-faulting fresh ones (small VAE step ~12 % faster);
    # process-wide, the resident size stays at its peak
    reuse_heap: bool = True
    # when the host waits for the device: "step" = after every step (non-finite check, loss
    # values); "log" = only at log rows, validation and saves: steps are queued ahead, a
    # non-finite step is skipped on the device (fused Adam with found_inf) and counted at the
    # next sync; "auto" = "log" on CUDA (single process), "step" elsewhere
    host_sync: str = "auto"
    # group sketches of similar length into batches and trim each batch's end padding (to its
    # longest sketch + 1, rounded up to 8 rows): training reads ~mean instead of ~max length
    # (pig 122 vs 168 points); drops Magenta's pen loss on padding steps after the end (scored
    # by nothing) but keeps its normaliser. Value = batches per sorted window; 0 = off (Magenta's
    # random batches); 20-100. Validation is never trimmed. Measured (pig LSTM 512 fine-tune,
    # step 14,557, one CPU thread): 50 gave 1.34x the sketches/s but learned far less per sketch
    # than random batches (validation -0.0007 in ~97,000 sketches vs -0.0030 in ~44,000): off in our
    # recipes (benchmarks/NOTES_gpu.md, 2026-11-27)
    length_buckets: int = 0

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size must be >= 1, got {self.batch_size}")
        for name in ("learning_rate", "min_learning_rate"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ConfigError(f"train.{name} must be a positive number, got {getattr(self, name)}")
        if not (self.encoder_lr_scale > 0 and math.isfinite(self.encoder_lr_scale)):
            raise ConfigError(f"train.encoder_lr_scale must be a positive number (1 = off), got {self.encoder_lr_scale}")
        if not (0 < self.decay_rate <= 1):
            raise ConfigError(f"train.decay_rate must be in (0, 1] (1 = constant), got {self.decay_rate}")
        if self.decay_start < 0:
            raise ConfigError(f"train.decay_start must be >= 0, got {self.decay_start}")
        if self.num_steps < 0:
            raise ConfigError(f"train.num_steps must be >= 0, got {self.num_steps}")
        if self.length_buckets < 0:
            raise ConfigError(f"train.length_buckets must be >= 0 (0 = off; 20-100 typical), got {self.length_buckets}")
        if self.eval_batch_size < 0:
            raise ConfigError(f"train.eval_batch_size must be >= 0 (0 = automatic), got {self.eval_batch_size}")
        if self.host_sync not in ("auto", "step", "log"):
            raise ConfigError(f"train.host_sync must be auto, step or log, got {self.host_sync!r}")
        for name in ("eval_every", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if not (0.0 <= self.ema_decay < 1.0):
            raise ConfigError(f"train.ema_decay must be in [0, 1) (0 = off; 0.999-0.9999 typical), got {self.ema_decay}")
        if self.matmul_precision not in ("highest", "high", "medium"):
            raise ConfigError(f"train.matmul_precision must be highest, high or medium, got {self.matmul_precision!r}")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "Config":
        self.model.validate()
        self.data.validate()
        self.train.validate()
        if self.train.encoder_lr_scale != 1.0 and not self.model.conditional:
            raise ConfigError("train.encoder_lr_scale needs an encoder (model.conditional=true); "
                              "leave it at 1 for a decoder-only model")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> "Config":
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a JSON object with keys model/data/train")
        unknown = set(d) - {"model", "data", "train"}
        if unknown:
            raise ConfigError(f"{where}: unknown section(s) {sorted(unknown)}; expected model, data, train")
        return cls(
            model=_section_from_dict(ModelConfig, d.get("model", {}), f"{where}: model"),
            data=_section_from_dict(DataConfig, d.get("data", {}), f"{where}: data"),
            train=_section_from_dict(TrainConfig, d.get("train", {}), f"{where}: train"),
        ).validate()


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check/convert one value to the annotated field type (bool, int, float, str, list[str])."""
    t = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    t = t.replace("typing.", "")
    if t == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if t == "int":
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if t == "float":
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            v = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond float range
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if not math.isfinite(v):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return v
    if t == "str":
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, got {value!r}")
    if t.startswith("list"):
        if isinstance(value, str):
            return [p for p in value.split(",") if p]
        if isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
            return list(value)
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    raise ConfigError(f"{where}: unsupported field type {t}")  # pragma: no cover


def _section_from_dict(cls: type, d: Any, where: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a JSON object, got {type(d).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")
    kwargs = {k: _coerce(v, known[k].type, f"{where}.{k}") for k, v in d.items()}
    return cls(**kwargs)


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings; unknown sections or keys are an error."""
    d = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value (e.g. model.dec_model=hyper)")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2 or parts[0] not in d:
            raise ConfigError(f"override {item!r}: key must be model.X, data.X or train.X")
        section, name = parts
        if name not in d[section]:
            raise ConfigError(f"override {item!r}: unknown key {key}; known: {', '.join(sorted(d[section]))}")
        d[section][name] = value
    return Config.from_dict(d, where="overrides")


def load_config(path: str | Path) -> Config:
    """Read a JSON config file (strict: unknown keys are an error)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not UTF-8 text; expected a JSON config (see configs/)") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {p} is not valid JSON: {e}") from None
    except RecursionError:
        raise ConfigError(f"config file {p} nests JSON too deeply; expected an object with model/data/train") from None
    return Config.from_dict(d, where=str(p))
