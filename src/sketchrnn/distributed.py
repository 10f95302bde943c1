"""Data-parallel training on PyTorch's own engine (``torch.distributed`` + DDP).

``sketchrnn train`` needs no other tool: launched by ``torchrun --nproc-per-node N
[--nnodes M ...]`` it finds ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in the environment,
calls ``init_process_group`` (NCCL on GPU, one GPU per ``LOCAL_RANK``; gloo on CPU) and the
:class:`~sketchrnn.train.Trainer` wraps the model in ``DistributedDataParallel``.
The rules (docs/SCALING.md has the reasoning):

* ``train.batch_size`` is the **global** batch: each step every rank takes its own
  ``batch_size / N`` slice of the same global batch, so a config means the same at any N.
* Every rank draws the same epoch permutation (same seed) through :class:`ShardedLoader`,
  whose state is the position in that global permutation, in BatchLoader's layout: a
  checkpoint resumes under any world size (including a plain single-process run).
* With N > 1, augmentation of the sketch in slot ``j`` of epoch ``e`` uses a generator
  keyed by ``(seed, e, j)`` (:func:`augment_key`): the augmented global batch is the same
  for every N > 1; torch's generator (z samples, dropout masks) is reseeded each step from
  ``(seed, rank, step)`` (:func:`rank_seed`), so no per-rank RNG state needs saving.
  With N = 1 (torchrun or not) the trainer is exactly the plain trainer.
* Only rank 0 logs and writes files; validation is split across ranks and all-reduced;
  the skip of a non-finite step and the KL tolerance clamp are decided on all-reduced
  values, so all ranks take the same decision and the step equals a one-process step on
  the global batch.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import torch
from torch import nn

from .data.dataset import EpochLoader, EpochSampler
from .errors import ConfigError, SketchRNNError

__all__ = [
    "DistEnv",
    "launched_by_torchrun",
    "setup_distributed",
    "rank_seed",
    "augment_key",
    "ShardedLoader",
    "LossModule",
    "shard_range",
]

T = TypeVar("T")


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ConfigError(f"environment variable {name}={v!r} is not an integer; launch with torchrun") from None


def launched_by_torchrun() -> bool:
    """True when RANK and WORLD_SIZE are set (torchrun, or any launcher using env://)."""
    return os.environ.get("RANK") is not None and os.environ.get("WORLD_SIZE") is not None


@dataclass
class DistEnv:
    """Where this process stands: rank, world size, device and whether a group is in use."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False  # a process group is in use (launched by torchrun)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        """More than one process: batches are split, RNG is per rank."""
        return self.enabled and self.world_size > 1

    # ---- collectives (no-ops when not enabled)
    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.rank == 0 else None]
        torch.distributed.broadcast_object_list(box, src=0, device=self._obj_device())
        return box[0]

    def _obj_device(self) -> torch.device | None:
        return self.device if self.backend == "nccl" else None

    def on_main(self, fn: Callable[[], T]) -> T | None:
        """Run ``fn`` on rank 0 only; a user error it raises is raised on every rank, so no
        rank is left waiting in a collective. Returns ``fn()`` on rank 0, None elsewhere."""
        result, err = None, None
        if self.rank == 0:
            try:
                result = fn()
            except SketchRNNError as e:
                err = e
        if self.enabled:
            err = self.broadcast_object(err)
        if err is not None:
            raise err
        return result

    def barrier(self) -> None:
        if self.enabled:
            if self.backend == "nccl":
                torch.distributed.barrier(device_ids=[self.device.index])
            else:
                torch.distributed.barrier()


def _resolve_device(name: str, local_rank: int) -> torch.device:
    """Device of this rank: ``cuda:LOCAL_RANK`` for auto/cuda/cuda:N when CUDA is there, else CPU."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    try:
        dev = torch.device(name if name != "auto" else "cuda")
    except RuntimeError:
        raise ConfigError(f"train.device={name!r} is not a device (use auto, cpu, cuda or cuda:N)") from None
    if dev.type != "cuda":
        raise ConfigError(f"train.device={name!r}: distributed training runs on cpu or cuda only")
    if not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available here; use --device cpu")
    n = torch.cuda.device_count()
    if local_rank >= n:
        raise ConfigError(f"LOCAL_RANK={local_rank} but only {n} GPU(s) are visible on this node; "
                          f"use torchrun --nproc-per-node {n} (or fewer)")
    return torch.device("cuda", local_rank)  # one GPU per local rank; an index in train.device is ignored


def setup_distributed(device_name: str) -> DistEnv | None:
    """Join the process group torchrun describes; None when not launched by torchrun.

    The group is created once per process (reused if it already exists) and destroyed at
    exit. CUDA: backend NCCL, device ``cuda:LOCAL_RANK``; CPU: gloo.
    """
    if not launched_by_torchrun():
        return None
    import torch.distributed as dist

    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local = _env_int("LOCAL_RANK")
    local = rank if local is None else local
    if world < 1 or not (0 <= rank < world) or local < 0:
        raise ConfigError(f"RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local} are inconsistent; launch with torchrun")
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; install a standard PyTorch build")
    device = _resolve_device(device_name, local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        kw: dict[str, Any] = {"backend": backend, "init_method": "env://", "rank": rank, "world_size": world}
        if device.type == "cuda":
            kw["device_id"] = device
        try:
            dist.init_process_group(**kw)
        except TypeError:  # torch without device_id
            kw.pop("device_id", None)
            dist.init_process_group(**kw)
        atexit.register(_destroy)
    else:
        backend = dist.get_backend()
        if dist.get_world_size() != world or dist.get_rank() != rank:
            raise ConfigError("a process group with another rank/world size already exists in this process")
    return DistEnv(rank=rank, world_size=world, local_rank=local, enabled=True, device=device, backend=backend)


def _destroy() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # pragma: no cover - best effort at exit
            pass


def rank_seed(seed: int, rank: int, step: int) -> int:
    """Torch seed of ``rank`` at optimiser ``step`` (63-bit, from numpy's SeedSequence)."""
    s = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x7261_6E6B, int(rank), int(step)])
    return int(s.generate_state(1, np.uint64)[0] >> np.uint64(1))


_U64 = 0xFFFF_FFFF_FFFF_FFFF
_AUG_DOMAIN = 0x6175_6700


def _augment_state(seed: int, epoch: int, slot: int) -> dict:
    """Philox state: key (seed, epoch), counter (0, slot, domain, 0): disjoint streams per slot."""
    return {"bit_generator": "Philox",
            "state": {"counter": np.array([0, int(slot) & _U64, _AUG_DOMAIN, 0], dtype=np.uint64),
                      "key": np.array([int(seed) & _U64, int(epoch) & _U64], dtype=np.uint64)},
            "buffer": np.zeros(4, dtype=np.uint64), "buffer_pos": 4, "has_uint32": 0, "uinteger": 0}


def augment_key(seed: int, epoch: int, slot: int) -> np.random.Generator:
    """Generator for augmenting the sketch in ``slot`` (its position in epoch ``epoch``'s
    permutation): Philox keyed by (seed, epoch), counter block chosen by the slot."""
    bg = np.random.Philox(key=np.zeros(2, np.uint64))
    bg.state = _augment_state(seed, epoch, slot)
    return np.random.Generator(bg)


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous [start, stop) of ``n`` items for ``rank`` (sizes differ by at most one)."""
    return n * rank // world, n * (rank + 1) // world


class ShardedLoader(EpochLoader):
    """This rank's slice of every global batch of a BatchLoader or PackedBatchLoader.

    Every rank draws the same permutation (:class:`~sketchrnn.data.dataset.EpochSampler`,
    BatchLoader's order and state layout); global batch ``g`` is ``perm[g*B:(g+1)*B]`` and
    rank ``r`` takes rows ``[r*B/N, (r+1)*B/N)``. ``state_dict`` is the global position, the
    same at every rank and world size (and loadable by a plain BatchLoader).
    """

    def __init__(self, inner: Any, rank: int, world_size: int) -> None:
        b = int(inner.batch_size)
        if b % world_size:
            raise ConfigError(f"train.batch_size={b} is the global batch and must be divisible by the world size "
                              f"{world_size}; use a multiple of {world_size}")
        if not inner.drop_last:
            raise ConfigError("a sharded training loader needs drop_last=True")
        self.inner = inner
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.local_batch = b // world_size
        self.batch_size = b
        buckets = inner.sampler.length_buckets
        self.sampler = EpochSampler(len(inner.data), b, inner.shuffle, inner.seed, True,
                                    np.asarray(inner.lengths) if buckets and inner.shuffle else None, buckets)
        self._aug_bg = np.random.Philox(key=np.zeros(2, np.uint64))  # re-keyed per sketch (cheap)
        self._aug_gen = np.random.Generator(self._aug_bg)

    @property
    def keyed_augment(self) -> bool:
        i = self.inner
        return bool(i.augment and (i.random_scale_factor > 0 or i.augment_stroke_prob > 0))

    def next_batch(self):
        idx, epoch, pos = self.sampler.next_indices()
        a = self.rank * self.local_batch
        mine = idx[a:a + self.local_batch]
        if not self.keyed_augment:
            return self.inner.batch(mine)  # exactly what the plain loader builds for these sketches
        return self._augmented(mine, epoch, pos * self.batch_size + a)

    def _augmented(self, idx: np.ndarray, epoch: int, first_slot: int):
        from .data import Batch
        from .data.augment import augment_rows
        from .data.dataset import stroke5_batch

        i = self.inner
        scale, drop_pts = i.random_scale_factor > 0, i.augment_stroke_prob > 0
        sketches = [np.asarray(i.data.strokes[int(k)], dtype=np.float32) for k in idx]
        lens = np.fromiter((len(s) for s in sketches), dtype=np.int64, count=len(sketches))
        u_scale = np.empty((len(idx), 2)) if scale else None  # (b, 2)
        u_rows = []
        rng = self._aug_gen
        for j, s in enumerate(sketches):  # per sketch: 2 scale uniforms, then one per row, as random_scale/augment_strokes
            self._aug_bg.state = _augment_state(i.seed, epoch, first_slot + j)  # = augment_key(seed, epoch, slot)
            if scale:
                u_scale[j] = rng.random(2)
            if drop_pts:
                u_rows.append(rng.random(len(s)))
        flat = np.concatenate(sketches) if sketches else np.zeros((0, 3), np.float32)  # (sum L, 3)
        flat, lengths = augment_rows(flat, lens, i.random_scale_factor, i.augment_stroke_prob, u_scale=u_scale,
                                     u_rows=np.concatenate(u_rows) if drop_pts and u_rows else None)
        strokes = stroke5_batch(flat, lengths, i.max_seq_len, i.scale_factor)  # (b, T+1, 5)
        cls = np.asarray(i.class_ids[idx], dtype=np.int64)
        return Batch(torch.from_numpy(strokes), torch.from_numpy(lengths), torch.from_numpy(cls))

    def __iter__(self) -> Iterator:
        self.sampler.start_epoch_if_needed()
        while self.sampler.position < len(self.sampler):
            yield self.next_batch()


class LossModule(nn.Module):
    """The training losses as a forward pass, so DistributedDataParallel can wrap them: the
    fused fast path (:func:`sketchrnn.fast.decoder.fast_losses`; on CUDA with graph-captured
    recurrences) when ``fast``, else ``model.losses`` (the plain reference). Both return the
    same dict; DDP's gradient hooks sit on the parameters either way."""

    def __init__(self, model: nn.Module, fast: bool = False) -> None:
        super().__init__()
        self.model = model
        self.fast = bool(fast)

    def forward(self, strokes: torch.Tensor, lengths: torch.Tensor, kl_tolerance: float,
                class_ids: torch.Tensor | None = None, n_max: int | None = None) -> dict[str, torch.Tensor]:
        kw = {"class_ids": class_ids} if class_ids is not None else {}
        if self.fast:
            from .fast.decoder import fast_losses

            return fast_losses(self.model, strokes, lengths, kl_tolerance=kl_tolerance, n_max=n_max, **kw)
        return self.model.losses(strokes, lengths, kl_tolerance=kl_tolerance, n_max=n_max, **kw)


def wrap_ddp(losses: LossModule, env: DistEnv) -> nn.Module:
    """DistributedDataParallel around a :class:`LossModule` (every parameter is used each step)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [env.device.index] if env.device.type == "cuda" else None
    return DDP(losses, device_ids=ids, output_device=env.device.index if ids else None)
