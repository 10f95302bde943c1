"""Training loop, as Magenta's sketch_rnn trains (Ha & Eck 2017, Section 3.3).

Loss per step (Eq. 13 of the paper, Magenta's normalisation):
    loss = L_R + w_KL(step) * max(L_KL, kl_tolerance)
    L_R  = (sum over valid points of L_s + sum over all N_max steps of L_p) / (B * N_max)
Schedules (Magenta ``train.py``):
    lr(step)   = (lr0 - lr_min) * decay_rate**step + lr_min
                 (counted from ``decay_start``, 0 in Magenta's, when a resumed phase has its own)
    w_KL(step) = kl_weight - (kl_weight - kl_weight_start) * kl_decay_rate**step
Gradients are clipped by value to +-grad_clip. A step whose loss or gradient is not
finite is skipped and counted; ``max_bad_steps`` in a row stop training with a clear
message, leaving the last good checkpoint intact.

A run directory holds ``config.json``, ``argv.txt``, ``metrics.csv``, ``last.pt`` (resume)
and ``best.pt`` (best validation loss). ``Trainer(..., resume=True)`` continues exactly
where ``last.pt`` left off: weights, optimiser, schedules, data order and RNG states.
``resume=True, new_data=True`` goes on from ``last.pt`` on other training data (e.g. a larger
subset of the same class): weights, optimiser, schedules, step, RNG and the stored scale factor
are kept; the data order starts afresh (epoch 0 of the new data) and the best validation loss
is forgotten, as the validation split may have changed too.

Launched by ``torchrun`` the same Trainer trains data-parallel with DistributedDataParallel
(:mod:`sketchrnn.distributed`, docs/SCALING.md): ``train.batch_size`` is the global batch,
split across ranks; only rank 0 writes files and logs; a checkpoint resumes under any world
size. ``data.paths`` may also name one packed directory (:mod:`sketchrnn.data.packed`).
"""

from __future__ import annotations

import contextlib
import csv
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .checkpoint import RESUME_MODES, config_from_json, read_checkpoint, save_checkpoint
from .config import Config
from .errors import ConfigError, DataError, ModelFileError, TrainingError
from .evaluate import score_stroke5
from .precision import cpu_bf16_available, cpu_bf16_products, full_fp32_matmul

__all__ = ["Trainer", "learning_rate_at", "kl_weight_at", "resolve_device", "trim_padding"]


LR_RESTART_WARMUP = 100  # steps of linear learning-rate warm-up after resuming without Adam's state


def learning_rate_at(cfg: Config, step: int) -> float:
    t = cfg.train
    return (t.learning_rate - t.min_learning_rate) * (t.decay_rate ** max(0, step - t.decay_start)) + t.min_learning_rate


def kl_weight_at(cfg: Config, step: int) -> float:
    t = cfg.train
    return t.kl_weight - (t.kl_weight - t.kl_weight_start) * (t.kl_decay_rate ** step)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device={name!r} is not a device (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available here; use --device cpu")
    return dev


@dataclass
class _Stats:
    loss: float = 0.0
    r: float = 0.0
    kl: float = 0.0
    n: int = 0

    def add(self, loss: float, r: float, kl: float) -> None:
        self.loss += loss
        self.r += r
        self.kl += kl
        self.n += 1

    def mean(self) -> tuple[float, float, float]:
        n = max(self.n, 1)
        return self.loss / n, self.r / n, self.kl / n


TRIM_MULTIPLE = 8  # a trimmed batch keeps a multiple of this many steps (fewer distinct shapes to compile/capture)


def trim_padding(strokes5: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T+1, 5) stroke-5 -> (B, m+1, 5), m = the batch's longest sketch + 1 (its end
    step) rounded up to ``TRIM_MULTIPLE``, at most T: the rows after m are end padding, read
    by nothing but Magenta's pen loss on steps after the end."""
    t = int(strokes5.shape[1]) - 1
    longest = int(lengths.max()) if lengths.numel() else 0
    m = min(t, -(-(longest + 1) // TRIM_MULTIPLE) * TRIM_MULTIPLE)
    return strokes5[:, :m + 1].contiguous()  # (B, m+1, 5)


class Trainer:
    """Train a :class:`~sketchrnn.model.SketchRNN` from a :class:`~sketchrnn.config.Config`."""

    def __init__(self, cfg: Config, run_dir: str | Path, resume: bool = False, argv: list[str] | None = None,
                 progress: bool = True, log: Callable[[str], None] | None = None, new_data: bool = False):
        self._run_lock: Any = None  # open RUN/.lock while held (_lock_run_dir, release)
        try:
            self._setup(cfg, run_dir, resume, argv, progress, log, new_data)
        except BaseException:  # a refused start leaves the run directory free for the next try
            self.release()
            raise

    def _setup(self, cfg: Config, run_dir: str | Path, resume: bool, argv: list[str] | None, progress: bool,
               log: Callable[[str], None] | None, new_data: bool) -> None:
        from .data import BatchLoader
        from .distributed import DistEnv, LossModule, ShardedLoader, setup_distributed, wrap_ddp
        from .model import SketchRNN

        self.cfg = cfg.validate()
        self.run_dir = Path(run_dir)
        t = cfg.train
        if not cfg.data.paths:
            raise ConfigError("no training data: give one or more .npz files (data.paths or --data)")
        if new_data and not resume:
            raise ConfigError("--new-data continues a run on other data: use it together with --resume")
        self.new_data = new_data
        # torchrun (RANK/WORLD_SIZE in the environment) -> a process group; else a plain run
        dist_env = setup_distributed(t.device)
        self.dist: DistEnv = dist_env or DistEnv(device=resolve_device(t.device))
        self.progress = progress and self.is_main
        self.log = (log or (lambda s: print(s, file=sys.stderr))) if self.is_main else (lambda s: None)
        if self.dist.sharded and t.batch_size % self.dist.world_size:
            raise ConfigError(f"train.batch_size={t.batch_size} is the global batch and must be divisible by the "
                              f"world size {self.dist.world_size}; use a multiple of {self.dist.world_size}")
        self.dist.on_main(lambda: self._prepare_run_dir(argv, resume))
        if t.num_threads > 0:
            torch.set_num_threads(t.num_threads)
        if t.deterministic:
            torch.use_deterministic_algorithms(True)
        self.device = self.dist.device
        if t.reuse_heap and self.device.type == "cpu":
            _reuse_heap()
        if self.device.type == "cuda":  # process-wide, as torch has it
            torch.set_float32_matmul_precision(t.matmul_precision)
        # CPU: medium = bfloat16 products (oneDNN) inside fit()'s training steps only; high = float32
        self.cpu_bf16 = self.device.type == "cpu" and t.matmul_precision == "medium" and cpu_bf16_available()
        if self.device.type == "cpu" and t.matmul_precision == "medium":
            self.log("train.matmul_precision=medium: training products in bfloat16 on this CPU (the mixture head "
                     "and validation in float32)" if self.cpu_bf16 else
                     "train.matmul_precision=medium: this CPU or torch has no bfloat16 products (oneDNN with "
                     "AVX512-BF16/AMX, torch >= 2.9); training runs in float32")

        ck = None
        if resume:
            def read() -> dict[str, Any]:
                c = read_checkpoint(self.last_path)
                stored = config_from_json(c["config"], str(self.last_path))
                # dropout may change on resume; max_seq_len only with --new-data (it changes the data)
                differ = [k for k in _weight_shaping_diff(stored.model, cfg.model) if not (k == "max_seq_len" and new_data)]
                if differ:
                    raise ConfigError(f"--resume: model setting(s) {', '.join(differ)} differ from {self.last_path}'s; "
                                      f"resume with the same model settings (only dropout may change)")
                changed = [f"{k} {getattr(stored.model, k)} -> {getattr(cfg.model, k)}" for k in sorted(vars(cfg.model))
                           if getattr(stored.model, k) != getattr(cfg.model, k)]
                if changed:  # dropout (or, with new data, max_seq_len): shape no weight, changed on purpose
                    self.log("resumed with changed model settings: " + ", ".join(changed))
                # the settings that define valid_loss: if one changed, the stored best is another loss's figure
                c["valid_loss_changed"] = [f"train.{k} {getattr(stored.train, k)} -> {getattr(cfg.train, k)}"
                                           for k in ("kl_weight", "kl_tolerance", "max_eval_sketches")
                                           if getattr(stored.train, k) != getattr(cfg.train, k)]
                return c

            ck = self.dist.on_main(read)
            ck = self.dist.broadcast_object(ck)  # rank 0 reads; no shared filesystem needed

        m = cfg.model
        self.train_data, self.valid_data, packed = _open_data(cfg)
        if m.class_conditional and len(self.train_data.class_names) > m.num_classes:
            raise ConfigError(f"model.num_classes={m.num_classes} but data.paths holds {len(self.train_data.class_names)} "
                              f"classes; set model.num_classes={len(self.train_data.class_names)}")
        if len(self.train_data.strokes) < t.batch_size:
            raise DataError(f"{cfg.data.paths[0]}: only {len(self.train_data.strokes)} training sketches of at most "
                            f"{m.max_seq_len} points, fewer than batch_size {t.batch_size}; lower train.batch_size")
        # The normalisation factor comes from the training split once and is stored with
        # the model; on resume the stored value is reused (never recomputed from data).
        init = None
        if t.init_from and ck is None:
            init = _load_init(t.init_from, m)
        if ck:
            self.scale_factor = float(ck["scale_factor"])
        elif init is not None:  # fine-tuning keeps the units the weights were trained in
            self.scale_factor = float(init.scale_factor)
        else:
            self.scale_factor = float(self.train_data.scale_factor())
        self.class_names = list(self.train_data.class_names)

        torch.manual_seed(t.seed)
        self.model = SketchRNN(m).to(self.device)
        if init is not None:
            self.model.load_state_dict(init.model.state_dict())
            self.log(f"initialised from {t.init_from} (scale_factor {self.scale_factor:.4f}); optimiser and schedules start fresh")
        # train.host_sync: with "log" the steps are queued without waiting for the device; a
        # non-finite step is then skipped by the fused Adam kernel itself (found_inf)
        mode = t.host_sync if t.host_sync != "auto" else ("log" if self.device.type == "cuda" else "step")
        self._deferred = mode == "log" and not self.dist.enabled  # DDP keeps its all-reduced per-step check
        groups, self._lr_scales = self._param_groups()
        self.optimizer = torch.optim.Adam(groups, lr=t.learning_rate)
        self._pending: list[torch.Tensor] = []  # per queued step: 1.0 if it was skipped (not yet counted)
        self._acc = torch.zeros(4, dtype=torch.float64, device=self.device)  # loss, L_R, L_KL, good steps
        self._unit_scale = torch.ones(1, device=self.device)  # the non-finite check's (no-op) gradient scale
        if packed:
            from .data.packed import PackedBatchLoader as Loader
        else:
            Loader = BatchLoader
        self.loader = Loader(self.train_data, self.scale_factor, t.batch_size, m.max_seq_len, augment=True,
                             random_scale_factor=cfg.data.random_scale_factor,
                             augment_stroke_prob=cfg.data.augment_stroke_prob, shuffle=True, seed=t.seed,
                             length_buckets=t.length_buckets)
        if self.dist.sharded:  # this rank's slice of every global batch
            self.loader = ShardedLoader(self.loader, self.dist.rank, self.dist.world_size)
        eval_bs = t.eval_batch_size or (1000 if self.device.type == "cuda" else t.batch_size)
        self.valid_loader = Loader(self.valid_data, self.scale_factor, eval_bs, m.max_seq_len,
                                   augment=False, shuffle=False, drop_last=False)
        # train.ema_decay: a float32 running average of every weight, beside the trained ones
        self._ema_src = list(self.model.state_dict().values())  # detached views of the weights
        self.ema: list[torch.Tensor] | None = ([w.detach().clone().float() for w in self._ema_src]
                                               if t.ema_decay > 0 else None)
        self.ema_updates = 0
        self.step = 0
        self.lr_restart_step: int | None = None  # set when resumed without optimiser state
        self.best_valid = math.inf
        self.bad_steps = 0
        self.bad_total = 0
        if ck is not None:
            self._restore(ck)
        self._set_adam_kernel(self._deferred)
        self.dist.on_main(self._check_disk_space)  # a full disk is found now, not at the first save
        # the losses as one module (fast or plain path), wrapped by DDP when a process group is in
        # use; self.model stays the plain module
        self._loss_module = LossModule(self.model, fast=self._use_fast)
        self._ddp = wrap_ddp(self._loss_module, self.dist) if self.dist.enabled else None

    def lr_factor(self) -> float:
        """1, or a linear warm-up over LR_RESTART_WARMUP steps after resuming without Adam's
        state (its first steps would otherwise move every weight by about the learning rate)."""
        if self.lr_restart_step is None:
            return 1.0
        return min(1.0, (self.step - self.lr_restart_step + 1) / LR_RESTART_WARMUP)

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes files (rank 0; always in a plain run)."""
        return self.dist.is_main

    # ------------------------------------------------------------------ files
    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    def _check_disk_space(self) -> None:
        """Refuse to start when the run directory cannot hold last.pt, best.pt and the
        temp copy of an atomic write (Adam's two moments make a checkpoint ~3x the weights)."""
        import shutil

        n_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        size = 3 * n_bytes + 64 * 1024  # weights + exp_avg + exp_avg_sq + pickle/zip overhead
        have = sum(q.stat().st_size for q in (self.last_path, self.best_path) if q.exists())
        free = shutil.disk_usage(self.run_dir).free
        if free + have < 3 * size:
            raise ConfigError(f"run directory {self.run_dir} has {free / 1e6:.1f} MB free; checkpoints need about "
                              f"{3 * size / 1e6:.1f} MB (last.pt, best.pt, temp copy); free space or choose another --out")

    def _lock_run_dir(self) -> None:
        """One trainer per run directory: an exclusive lock on RUN/.lock, taken at start-up and
        held until :meth:`fit` returns (the OS drops it when the process ends, however it ends).
        Without it a second ``--resume`` into a running run would interleave checkpoints and delete
        the other's temp files."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        path = self.run_dir / ".lock"
        f = open(path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise ConfigError(f"run directory {self.run_dir} is in use by another training process ({path} is "
                              "locked); wait for it to finish, or choose another --out") from None
        self._run_lock = f

    def _prepare_run_dir(self, argv: list[str] | None, resume: bool) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            probe = self.run_dir / ".write_test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            raise ConfigError(f"run directory {self.run_dir} is not writable ({e.strerror}); choose another --out") from None
        self._lock_run_dir()
        if not resume and self.last_path.exists():
            raise ConfigError(f"{self.last_path} exists: pass --resume to continue that run, or choose a new --out")
        for stale in self.run_dir.glob(".*.pt.*.tmp"):  # left by a kill during a checkpoint write
            try:
                stale.unlink()
            except OSError:
                pass
        from .fileio import atomic_write

        atomic_write(self.run_dir / "config.json", (self.cfg.to_json() + "\n").encode(), error=ConfigError)
        if argv is not None:
            with open(self.run_dir / "argv.txt", "a") as f:
                f.write(" ".join(argv) + "\n")

    def _payload(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_json(),
            "scale_factor": self.scale_factor,
            "class_names": self.class_names,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best_valid": self.best_valid,
            "bad_total": self.bad_total,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" and not self.dist.sharded else []},
            "world_size": self.dist.world_size,
            "loader": _jsonable(self.loader.state_dict()),
            "lr_restart_step": self.lr_restart_step,
            **({"ema": dict(zip(self.model.state_dict().keys(), (e.detach().cpu() for e in self.ema))),
                "ema_updates": self.ema_updates} if self.ema is not None else {}),
        }

    def save(self, path: Path | None = None) -> None:
        """Write a checkpoint (``last.pt`` by default); only rank 0 writes."""
        if self.is_main:
            save_checkpoint(path or self.last_path, self._payload())

    def _restore(self, ck: dict[str, Any]) -> None:
        mode = ck.get("resume_mode", "full")
        if mode not in RESUME_MODES:
            raise ModelFileError(f"cannot resume from {self.last_path}: unknown resume_mode {mode!r}")
        try:
            self.model.load_state_dict(ck["model"])
            if mode == "no-first-moment":  # Adam's momentum restarts at 0 (steps are smaller for ~10 steps)
                opt = ck["optimizer"]
                for idx, st in opt["state"].items():
                    st["exp_avg"] = torch.zeros(st["exp_avg_sq"].shape, dtype=torch.float32)
                self.optimizer.load_state_dict(self._match_groups(opt))  # bfloat16 moments cast back to float32
            elif mode == "full":
                self.optimizer.load_state_dict(self._match_groups(ck["optimizer"]))
            if not self.new_data:
                self.loader.load_state_dict(_unjsonable(ck["loader"]))
            torch.set_rng_state(ck["rng"]["torch"])  # sharded runs reseed per step (distributed.rank_seed)
            if self.device.type == "cuda" and ck["rng"].get("cuda") and not self.dist.sharded:
                torch.cuda.set_rng_state_all(ck["rng"]["cuda"])
        except DataError as e:  # the data differs from the run's (not a damaged file): say so whole
            raise DataError(f"cannot resume {self.last_path} on this data: {e}") from None
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise ModelFileError(f"cannot resume from {self.last_path}: {str(e).splitlines()[0][:160]}") from None
        self.step = int(ck["step"])
        self.best_valid = math.inf if self.new_data else float(ck.get("best_valid", math.inf))
        changed = ck.get("valid_loss_changed", [])  # set by the reader in _setup
        if changed and not self.new_data and math.isfinite(self.best_valid):
            # the stored best is a figure of another loss: comparing with it would keep best.pt forever
            self.best_valid = math.inf
            self.log(f"resumed with {', '.join(changed)} changed: the validation loss is another figure now, "
                     "so the best validation loss is reset (best.pt is rewritten at the next validation)")
        if self.new_data:
            self.log(f"resumed at step {int(ck['step'])} on new data ({len(self.train_data.strokes)} training sketches): "
                     f"a fresh data order, scale_factor {self.scale_factor:.4f} kept, best validation loss reset")
        self.bad_total = int(ck.get("bad_total", 0))
        if self.ema is not None:
            if isinstance(ck.get("ema"), dict):
                sd = self.model.state_dict()
                bad = [k for k in sd if k not in ck["ema"] or tuple(ck["ema"][k].shape) != tuple(sd[k].shape)]
                if bad:
                    raise ModelFileError(f"cannot resume from {self.last_path}: its weight average does not fit the "
                                         f"model ({bad[0]}); the file is corrupted")
                self.ema = [ck["ema"][k].to(self.device, torch.float32).clone() for k in sd]
                self.ema_updates = int(ck.get("ema_updates", 0))
            elif mode == "average-only":
                # the weights ARE the run's average: continue it at its age, not from a fresh one whose
                # warm-up ((1 + n) / (10 + n)) would let the first few hundred steps of a restarted Adam
                # replace it (yoga, thirty-fourth session: validation ELBO 0.0017 worse 95 steps after such
                # a restart, ~800 steps to recover)
                self.ema = [w.detach().clone().float() for w in self._ema_src]
                stored = ck.get("ema_updates")
                self.ema_updates = int(stored) if isinstance(stored, int) and stored >= 0 else _seasoned_ema_updates(self.cfg.train.ema_decay)
                self.log(f"train.ema_decay: the weight average goes on from the resumed weights (the checkpoint's average, "
                         f"{'its ' + str(self.ema_updates) + ' updates' if isinstance(stored, int) else 'taken as fully warmed up'})")
            else:
                self.ema = [w.detach().clone().float() for w in self._ema_src]
                self.log("train.ema_decay: the checkpoint holds no weight average; it starts from the resumed weights")
        elif "ema" in ck:
            self.log("train.ema_decay=0: the checkpoint's weight average is dropped; validation uses the trained weights")
        restart = ck.get("lr_restart_step")
        self.lr_restart_step = int(restart) if restart is not None else None
        if mode in ("weights-only", "average-only"):  # fresh Adam: warm the learning rate up again (see lr_factor)
            self.lr_restart_step = self.step
        if mode != "full":
            self.log(f"resumed from a compact checkpoint ({mode}): "
                     + ("Adam's first moments start at zero" if mode == "no-first-moment" else
                        f"Adam starts afresh, learning rate warmed up over {LR_RESTART_WARMUP} steps"
                        + ("; the weights are the run's weight average" if mode == "average-only" else "")))

    # ------------------------------------------------------------------ steps
    def _losses(self, batch, n_max: int | None = None) -> dict[str, torch.Tensor]:
        """Magenta's losses for a batch: the exact fused path (:mod:`sketchrnn.fast`) when
        ``train.fast`` and the model's cells allow it, else the plain reference model.
        ``n_max``: the untrimmed length of a batch cut by :meth:`_trim`."""
        cls = batch.class_ids if self.cfg.model.class_conditional else None
        return self._loss_module(batch.strokes, batch.lengths, self.cfg.train.kl_tolerance, cls, n_max)

    def _trim(self, batch):
        """(batch, n_max): with ``train.length_buckets`` the batch's end padding cut on the host
        (:func:`trim_padding`, no device sync) and the untrimmed N_max for the normaliser."""
        if not self.cfg.train.length_buckets:
            return batch, None
        n_max = int(batch.strokes.shape[1]) - 1
        strokes = trim_padding(batch.strokes, batch.lengths)
        return type(batch)(strokes, batch.lengths, batch.class_ids), n_max

    @property
    def _use_fast(self) -> bool:
        if not self.cfg.train.fast:
            return False
        from .fast.decoder import supports

        return supports(self.model)

    def _begin_step(self) -> float:
        """Sets this step's learning rate (schedule x warm-up); returns its KL weight."""
        lr = learning_rate_at(self.cfg, self.step) * self.lr_factor()
        for g, scale in zip(self.optimizer.param_groups, self._lr_scales):
            g["lr"] = lr * scale
        return kl_weight_at(self.cfg, self.step)

    def _param_groups(self) -> tuple[list[dict[str, Any]], list[float]]:
        """Adam's parameter groups and each one's learning-rate multiple: one group, or with
        train.encoder_lr_scale the encoder's parameters, then the rest (model.parameters()'
        order either way, so an optimiser state saved with the other layout maps onto this one)."""
        named = list(self.model.named_parameters())
        scale = self.cfg.train.encoder_lr_scale
        if scale == 1.0:
            return [{"params": [p for _, p in named]}], [1.0]
        n_enc = sum(1 for n, _ in named if n.startswith("encoder."))
        if n_enc == 0 or not all(n.startswith("encoder.") for n, _ in named[:n_enc]):
            raise ConfigError("train.encoder_lr_scale: this model has no encoder ahead of its decoder; leave it at 1")
        return ([{"params": [p for _, p in named[:n_enc]]}, {"params": [p for _, p in named[n_enc:]]}],
                [scale, 1.0])

    def _match_groups(self, opt: dict[str, Any]) -> dict[str, Any]:
        """A saved optimiser state re-split into this run's parameter groups (a resume that turns
        train.encoder_lr_scale on or off); the parameters' order is the same in both layouts."""
        sizes = [len(g["params"]) for g in self.optimizer.param_groups]
        saved = opt["param_groups"]
        flat = [i for g in saved for i in g["params"]]
        if [len(g["params"]) for g in saved] == sizes or len(flat) != sum(sizes):
            return opt  # same layout, or another model (torch's load then says so)
        hyper = {k: v for k, v in saved[0].items() if k != "params"}
        groups, start = [], 0
        for n in sizes:
            groups.append({**hyper, "params": flat[start:start + n]})
            start += n
        return {"state": opt["state"], "param_groups": groups}

    def _objective(self, out: dict[str, torch.Tensor], w_kl: float) -> torch.Tensor:
        """The loss minimised: L_R, plus w_KL x the KL term (floored at kl_tolerance) if conditional."""
        return out["L_R"] + w_kl * out["kl_loss"] if self.cfg.model.conditional else out["L_R"]

    def train_step(self, batch) -> tuple[float, float, float] | None:
        """One optimiser step; returns (loss, L_R, L_KL) or None if skipped (non-finite)."""
        if self._ddp is not None:
            return self._train_step_ddp(batch)
        w_kl = self._begin_step()
        self.model.train()
        batch, n_max = self._trim(batch)
        batch = batch.to(self.device)
        out = self._losses(batch, n_max)
        loss = self._objective(out, w_kl)
        self.optimizer.zero_grad(set_to_none=True)
        ok = bool(torch.isfinite(loss))
        if ok:
            loss.backward()
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            ok = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())  # one host sync
        if not self._finish_step(ok):
            return None
        return float(loss.detach()), float(out["L_R"].detach()), float(out["L_KL"].detach())

    def _set_adam_kernel(self, fused: bool) -> None:
        """Adam's fused kernel (needed to skip a step on the device) or torch's default; a
        loaded optimiser state brings the flags it was saved with, so they are set again, and
        each step counter moves where that kernel keeps it (fused: on the parameter's device)."""
        for g in self.optimizer.param_groups:
            g["fused"] = True if fused else None
            g["foreach"] = None
            for p in g["params"]:
                st = self.optimizer.state.get(p)
                if st and isinstance(st.get("step"), torch.Tensor):
                    st["step"] = st["step"].to(device=p.device if fused else "cpu", dtype=torch.float32)

    def _train_step_deferred(self, batch) -> None:
        """:meth:`train_step` without waiting for the device (``train.host_sync`` "log"): the
        non-finite check becomes a flag on the device that makes the fused Adam kernel skip the
        update (and the weight average hold still); flags and loss sums are read at the next
        :meth:`_sync` (log rows, validation, saves). Same numbers as :meth:`train_step` up to
        the fused kernel's rounding."""
        cfg = self.cfg
        w_kl = self._begin_step()
        self.model.train()
        batch, n_max = self._trim(batch)
        if self.device.type == "cuda":  # pinned host memory: the copy does not wait for the queue
            batch = type(batch)(*(t.pin_memory() for t in (batch.strokes, batch.lengths, batch.class_ids)))
            batch = batch.to(self.device, non_blocking=True)
        else:
            batch = batch.to(self.device)
        out = self._losses(batch, n_max)
        loss = self._objective(out, w_kl)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        found = (~torch.isfinite(loss.detach())).to(torch.float32).reshape(1)  # (1,)
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found, self._unit_scale)
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), cfg.train.grad_clip)
        self.optimizer.found_inf = found.view(())  # type: ignore[attr-defined]
        try:
            self.optimizer.step()
        finally:
            del self.optimizer.found_inf  # type: ignore[attr-defined]
        if self.ema is not None:
            self._update_ema(keep=1.0 - found.view(()))
        vals = torch.stack([loss.detach(), out["L_R"].detach(), out["L_KL"].detach()]).to(torch.float64)
        good = found.to(torch.float64) == 0
        self._acc[:3] += torch.where(good, vals, torch.zeros_like(vals))
        self._acc[3:] += good.to(torch.float64)
        self._pending.append(found)
        self.step += 1

    def _sync(self) -> None:
        """Count the queued steps' skips (one wait for the device); raises as
        :meth:`_finish_step` after ``max_bad_steps`` non-finite steps in a row."""
        if not self._pending:
            return
        flags = torch.cat(self._pending).tolist()
        self._pending = []
        first = self.step - len(flags)
        for i, bad in enumerate(flags):
            if not bad:
                self.bad_steps = 0
                continue
            self.bad_steps += 1
            self.bad_total += 1
            if self.bad_steps >= self.cfg.train.max_bad_steps:
                raise TrainingError(f"{self.bad_steps} non-finite losses/gradients in a row at step {first + i}; "
                                    f"stopped; the last good checkpoint is {self.last_path}")

    def _take_stats(self) -> "_Stats":
        """The loss sums of the queued steps since the last call (deferred mode)."""
        loss, r, kl, n = self._acc.tolist()
        self._acc.zero_()
        return _Stats(loss, r, kl, int(n))

    def _finish_step(self, ok: bool) -> bool:
        """After backward: skip and count a non-finite step (stopping after max_bad_steps in a
        row), else clip gradients by value and take the optimiser step. Returns ``ok``."""
        cfg = self.cfg
        if not ok:
            self.bad_steps += 1
            self.bad_total += 1
            self.optimizer.zero_grad(set_to_none=True)
            if self.bad_steps >= cfg.train.max_bad_steps:
                raise TrainingError(f"{self.bad_steps} non-finite losses/gradients in a row at step {self.step}; "
                                    f"stopped; the last good checkpoint is {self.last_path}")
            self.step += 1
            return False
        self.bad_steps = 0
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), cfg.train.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self._update_ema()
        self.step += 1
        return True

    @torch.no_grad()
    def _update_ema(self, keep: torch.Tensor | None = None) -> None:
        """ema <- d * ema + (1 - d) * w, with d = min(ema_decay, (1 + n) / (10 + n)) after n
        updates (TF's ExponentialMovingAverage with num_updates): early averages forget fast.
        ``keep``: a 0-d device tensor, 0 for a step skipped on the device (the average then
        holds still; the count n still advances, as the host cannot know)."""
        n = self.ema_updates
        d = min(self.cfg.train.ema_decay, (1.0 + n) / (10.0 + n))
        src = [w.float() for w in self._ema_src]  # float32 already: no copies
        if keep is None:
            torch._foreach_lerp_(self.ema, src, 1.0 - d)
        else:
            torch._foreach_lerp_(self.ema, src, [keep * (1.0 - d)] * len(src))
        self.ema_updates = n + 1

    @contextlib.contextmanager
    def averaged_weights(self):
        """Within the block the model holds the weight average (train.ema_decay; a no-op when
        off); the trained weights come back afterwards, bit for bit."""
        if self.ema is None:
            yield
            return
        with torch.no_grad():
            kept = [w.clone() for w in self._ema_src]
            for w, e in zip(self._ema_src, self.ema):
                w.copy_(e)
        try:
            yield
        finally:
            with torch.no_grad():
                for w, k in zip(self._ema_src, kept):
                    w.copy_(k)

    def _train_step_ddp(self, batch) -> tuple[float, float, float] | None:
        """:meth:`train_step` under DDP: the same step as one process on the global batch.

        Each rank's loss is the mean over its B/N sketches, and DDP averages the gradients,
        so the gradient is that of the global mean. Magenta's ``max(KL, kl_tolerance)`` is
        decided on the all-reduced KL (a per-rank clamp would not equal the global one).
        The non-finite check is all-reduced, so every rank skips the same steps.
        """
        cfg, env = self.cfg, self.dist
        w_kl = self._begin_step()
        if env.sharded:  # z samples and dropout masks: a fresh stream per (seed, rank, step)
            from .distributed import rank_seed

            torch.manual_seed(rank_seed(cfg.train.seed, env.rank, self.step))
        self.model.train()
        self._ddp.train()
        batch, n_max = self._trim(batch)
        batch = batch.to(self.device)
        cls = batch.class_ids if cfg.model.class_conditional else None
        out = self._ddp(batch.strokes, batch.lengths, cfg.train.kl_tolerance, cls, n_max)
        tol = cfg.train.kl_tolerance
        if cfg.model.conditional:
            kl = out["kl_raw"]
            kl_global = env.all_reduce_sum(kl.detach().clone()) / env.world_size
            below = bool(kl_global < tol)  # False for NaN: the NaN then reaches the loss and is caught
            kl_term = torch.full_like(kl, tol) if below else kl
            loss = out["L_R"] + w_kl * kl_term
            l_kl = torch.clamp(kl_global, min=tol)
        else:
            loss = out["L_R"]
            l_kl = out["L_KL"].detach()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # always, on every rank: DDP's all-reduce needs all of them
        flags = [~torch.isfinite(loss.detach())]
        flags += [~torch.isfinite(p.grad).all() for p in self.model.parameters() if p.grad is not None]
        vec = torch.stack([torch.stack(flags).any().float(), loss.detach().float(), out["L_R"].detach().float()])
        vec = env.all_reduce_sum(vec)
        bad, loss_v, r_v = vec.tolist()
        if not self._finish_step(bad == 0):
            return None
        n = env.world_size
        return loss_v / n, r_v / n, float(l_kl)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation L_R, L_KL and the loss used to pick the best checkpoint (w_KL at its final value).
        Always in full float32 products (train.matmul_precision applies to training only): with
        TF32 an H100 read the cat LSTM 512's validation ~0.008 higher than a CPU, more than the
        differences between late checkpoints that pick best.pt."""
        cfg = self.cfg
        self.model.eval()
        with self.averaged_weights(), full_fp32_matmul(), \
                torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(1234)
            tot_r = tot_kl = 0.0
            n = 0
            # the metric (evaluate.py) on the same sketches: sums of NLL (z = mu), of
            # one z sample's NLL + KL, and of points (L+1 each; end padding not scored)
            pp = [0.0, 0.0, 0.0]
            log_s = math.log(self.scale_factor)
            limit = cfg.train.max_eval_sketches or len(self.valid_data.strokes)
            for batch in self._valid_batches(limit):  # the same sketches every time
                batch = batch.to(self.device)
                out = self._losses(batch)
                b = batch.lengths.shape[0]
                tot_r += float(out["L_R"]) * b
                tot_kl += float(out["L_KL"]) * b
                n += b
                if cfg.train.eval_per_point:
                    eps = torch.randn(b, cfg.model.z_size, device=self.device) if cfg.model.conditional else None
                    cls = batch.class_ids if cfg.model.class_conditional else None
                    sums = score_stroke5(self.model, batch.strokes, batch.lengths, log_s, eps, class_ids=cls)
                    pp[0] += sums["nll_recon"]
                    pp[1] += sums["nll_sample"] + sums["kl"]
                    pp[2] += sums["points"]
        if self.dist.sharded:  # each rank scored its own part: sum over ranks
            tot = self.dist.all_reduce_sum(torch.tensor([tot_r, tot_kl, float(n), *pp], dtype=torch.float64,
                                                        device=self.device))
            tot_r, tot_kl, n, *pp = tot.tolist()
        r, kl = tot_r / max(n, 1), tot_kl / max(n, 1)
        loss = r + (cfg.train.kl_weight * max(kl, cfg.train.kl_tolerance) if cfg.model.conditional else 0.0)
        res = {"valid_loss": loss, "valid_L_R": r, "valid_L_KL": kl}
        if cfg.train.eval_per_point:
            # decoder-only: the NLL per point; VAE: the ELBO per point (the bar's figure) and the
            # reconstruction NLL with z = mu
            res["valid_nll_per_point"] = (pp[1] if cfg.model.conditional else pp[0]) / max(pp[2], 1.0)
            if cfg.model.conditional:
                res["valid_recon_per_point"] = pp[0] / max(pp[2], 1.0)
        return res

    def _valid_batches(self, limit: int):
        """Validation batches: all of the first ``limit`` sketches; with N ranks, rank r
        scores its contiguous share in batches of batch_size / N (sums are all-reduced)."""
        if not self.dist.sharded:
            yield from self.valid_loader.sequential(limit)
            return
        from .distributed import shard_range

        n = min(int(limit), len(self.valid_data.strokes))
        a, b = shard_range(n, self.dist.rank, self.dist.world_size)
        step = max(self.cfg.train.batch_size // self.dist.world_size, 1)
        for i in range(a, b, step):
            yield self.valid_loader.batch(np.arange(i, min(i + step, b)))

    # ------------------------------------------------------------------ loop
    def fit(self, num_steps: int | None = None) -> dict[str, float]:
        """Train to ``num_steps`` (default ``train.num_steps``) or until ``train.max_minutes``;
        holds the run directory's lock meanwhile and releases it on return."""
        if self.is_main and self._run_lock is None:
            self._lock_run_dir()
        try:
            with self._stop_on_signals(), cpu_bf16_products(self.cpu_bf16):
                return self._fit(num_steps)
        finally:
            self.release()

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGTERM or a first Ctrl-C (SIGINT) ends training like train.max_minutes does: after
        the current step, with a validation and a resumable last.pt; a second Ctrl-C interrupts
        at once. (Only in the main thread, where Python delivers signals.)"""
        self._stop_signal: str | None = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: Any) -> None:
            if signum == signal.SIGINT and self._stop_signal is not None:
                raise KeyboardInterrupt
            self._stop_signal = signal.Signals(signum).name
            self.log(f"{self._stop_signal} received: stopping after this step (Ctrl-C again to interrupt at once)")

        saved = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)

    def release(self) -> None:
        """Give up the run directory's lock (another Trainer may then resume the run)."""
        lock, self._run_lock = self._run_lock, None
        if lock is not None:
            lock.close()

    def _fit(self, num_steps: int | None) -> dict[str, float]:
        cfg = self.cfg
        target = cfg.train.num_steps if num_steps is None else num_steps
        metrics_path = self.run_dir / "metrics.csv"
        new_file = self.is_main and not metrics_path.exists()
        fields = ["step", "lr", "kl_weight", "loss", "L_R", "L_KL", "sketches_per_s", "skipped",
                  "valid_loss", "valid_L_R", "valid_L_KL", "valid_nll_per_point", "valid_recon_per_point"]
        if self.is_main and not new_file:
            # a run resumed into a metrics.csv written by an older version keeps that file's columns
            with open(metrics_path, newline="") as f:
                header = next(csv.reader(f), None)
            if header:
                fields = header
        t_start = time.time()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=target, initial=min(self.step, target), unit="step", dynamic_ncols=True, file=sys.stderr)
        stats = _Stats()
        last = {}
        t_log = time.time()
        n_log = 0
        per_batch = self.dist.world_size if self.dist.sharded else 1  # a batch here is this rank's slice
        # only rank 0 writes metrics.csv (other ranks write to nowhere)
        mf_ctx = open(metrics_path, "a", newline="") if self.is_main else contextlib.nullcontext(_NullFile())
        with mf_ctx as mf:
            writer = csv.DictWriter(mf, fieldnames=fields, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            it = iter(self.loader)
            while self.step < target:
                try:
                    batch = next(it)
                except StopIteration:
                    it = iter(self.loader)
                    batch = next(it)
                if self._deferred:
                    self._train_step_deferred(batch)
                else:
                    res = self.train_step(batch)
                    if res is not None:
                        stats.add(*res)
                n_log += batch.lengths.shape[0] * per_batch
                row = None
                if self.step % cfg.train.log_every == 0 or self.step == target:
                    if self._deferred:
                        self._sync()
                        stats = self._take_stats()
                    loss, r, kl = stats.mean()
                    dt = max(time.time() - t_log, 1e-9)
                    row = {"step": self.step, "lr": f"{learning_rate_at(cfg, self.step):.3g}",
                           "kl_weight": f"{kl_weight_at(cfg, self.step):.4f}", "loss": f"{loss:.5f}",
                           "L_R": f"{r:.5f}", "L_KL": f"{kl:.5f}", "sketches_per_s": f"{n_log / dt:.1f}",
                           "skipped": self.bad_total}
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss:.3f}", kl=f"{kl:.3f}", lr=f"{learning_rate_at(cfg, self.step):.2g}",
                                        sk_s=f"{n_log / dt:.0f}")
                    stats, t_log, n_log = _Stats(), time.time(), 0
                # a chunk cut by train.max_minutes ends with a validation too, so that best.pt
                # reflects its last steps (a short GPU chunk would otherwise lose up to eval_every)
                stop_time = cfg.train.max_minutes > 0 and (time.time() - t_start) > 60 * cfg.train.max_minutes
                stop_sig = getattr(self, "_stop_signal", None) is not None
                if self.dist.enabled:  # rank 0's clock and signals decide for all (signals: at log rows)
                    if cfg.train.max_minutes > 0 or self.step % cfg.train.log_every == 0:
                        stop_time, stop_sig = (bool(v) for v in self.dist.broadcast_object((stop_time, stop_sig)))
                    else:
                        stop_sig = False
                stop = stop_time or stop_sig
                if self._deferred and (self.step % cfg.train.eval_every == 0 or self.step % cfg.train.save_every == 0
                                       or self.step == target or stop):
                    self._sync()  # bad_total in the row and the checkpoint counts every queued step
                if self.step % cfg.train.eval_every == 0 or self.step == target or stop:
                    v = self.validate()
                    row = row or {"step": self.step}
                    row.update({k: f"{val:.5f}" for k, val in v.items()})
                    last = v
                    if v["valid_loss"] < self.best_valid:
                        self.best_valid = v["valid_loss"]
                        self.save(self.best_path)
                if row is not None:
                    writer.writerow(row)
                    mf.flush()
                if self.step % cfg.train.save_every == 0 or self.step == target or stop:
                    self.save()
                if bar is not None:
                    bar.update(1)
                if stop:
                    why = (f"train.max_minutes={cfg.train.max_minutes} reached" if stop_time
                           else f"{self._stop_signal or 'a signal on rank 0'} received")
                    self.log(f"stopping at step {self.step}: {why}; resume with --resume")
                    break
        if bar is not None:
            bar.close()
        self.dist.barrier()  # every rank returns after rank 0 has written its checkpoints
        return {"step": self.step, "best_valid": self.best_valid, "skipped": self.bad_total, **last}


class _NullFile:
    """Where the metrics of ranks other than 0 go."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


def _seasoned_ema_updates(decay: float) -> int:
    """The smallest update count n at which the average's warm-up (1 + n) / (10 + n) reaches ``decay``."""
    return max(0, math.ceil((10.0 * decay - 1.0) / (1.0 - decay) - 1e-9))


def _reuse_heap() -> bool:
    """glibc only: serve big allocations from the heap and never trim it (``M_MMAP_MAX`` 0,
    ``M_TRIM_THRESHOLD`` max). By default each block over the mmap threshold (at most 32 MiB)
    is a fresh mapping whose pages fault in again at every step: ~25 ms per 34 MB buffer on
    the development VM (benchmarks/RESULTS.md). Returns whether it took effect."""
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


# Model settings that shape no weight: they may change when fine-tuning or resuming.
_WEIGHT_FREE = frozenset({"use_recurrent_dropout", "recurrent_dropout_prob", "use_input_dropout", "input_dropout_prob",
                          "use_output_dropout", "output_dropout_prob"})


def _weight_shaping_diff(a, b) -> list[str]:
    """Model settings (besides dropout) in which two model configs differ."""
    return [k for k in vars(b) if k not in _WEIGHT_FREE and getattr(a, k, None) != getattr(b, k)]


def _load_init(spec: str, m) -> Any:
    """Weights to fine-tune from; the model settings must be the run's own."""
    from .checkpoint import load_model

    init = load_model(spec)
    diff = [k for k in _weight_shaping_diff(init.config, m) if k != "max_seq_len"]
    if diff:
        raise ConfigError(f"train.init_from={spec}: its model settings differ from this run's in {', '.join(diff)}; "
                          f"use the same model.* values as that model")
    return init


def _open_data(cfg: Config):
    """(train, valid, packed?) for data.paths: sketch-rnn .npz files, or one packed directory."""
    from .data import SketchData
    from .data.packed import PackedSketchData, is_packed_dir

    paths = list(cfg.data.paths)
    m = cfg.model
    packed = [p for p in paths if is_packed_dir(p)]
    if packed:
        if len(paths) != 1:
            raise ConfigError(f"data.paths: the packed directory {packed[0]} must be the only entry (pack the other "
                              "files into it with `sketchrnn pack`)")
        return (PackedSketchData(paths[0], "train", m.max_seq_len, cfg.data.max_offset),
                PackedSketchData(paths[0], "valid", m.max_seq_len, cfg.data.max_offset), True)
    for p in paths:
        if Path(p).is_dir():
            raise DataError(f"{p}: a directory without a packed-corpus header; give sketch-rnn .npz files or a "
                            "directory written by `sketchrnn pack`")
    return (SketchData.from_files(paths, "train", m.max_seq_len, cfg.data.max_offset),
            SketchData.from_files(paths, "valid", m.max_seq_len, cfg.data.max_offset), False)


def _jsonable(obj: Any) -> Any:
    """Loader state -> types that torch.load(weights_only=True) accepts (ndarrays become tensors)."""
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


def _unjsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__"}:
            return obj["__ndarray__"].numpy()
        return {k: _unjsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unjsonable(v) for v in obj]
    return obj
