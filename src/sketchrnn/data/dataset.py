"""Datasets and batching as in the paper (Ha & Eck 2017, appendix; Magenta
``sketch_rnn/utils.py`` ``DataLoader``).

:class:`SketchData` holds one split of one or several ``.npz`` files after the paper's
preprocessing: sketches longer than ``max_seq_len`` are dropped (counted), offsets are
clamped to ``+-max_offset``; they are *not* normalised. :meth:`SketchData.scale_factor`
is Magenta's normalising factor: ``np.std`` of all dx and dy values together.

:class:`BatchLoader` pads every sketch once into a float32 ``(N, T+1, 5)`` stroke-5 array
(divided by the scale factor), so a plain batch is one index gather. With ``augment``
it applies :func:`random_scale` and :func:`augment_strokes` to the raw stroke-3 of each
sketch and builds that batch's stroke-5 on the fly. Shuffling and augmentation use their
own ``np.random.Generator``; :meth:`BatchLoader.state_dict` resumes exactly.

torch is imported lazily (only when a batch is built), so importing this module is cheap.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from ..errors import DataError
from .augment import augment_batch
from .npz import load_npz

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Batch", "SketchData", "BatchLoader"]


@dataclass
class Batch:
    """A batch of padded, normalised stroke-5 sketches."""

    strokes: "torch.Tensor"  # (B, T+1, 5) float32, start token at row 0
    lengths: "torch.Tensor"  # (B,) int64, L per sketch (without start/end tokens)
    class_ids: "torch.Tensor"  # (B,) int64

    def to(self, device: Any, non_blocking: bool = False) -> "Batch":
        return Batch(
            self.strokes.to(device, non_blocking=non_blocking),
            self.lengths.to(device, non_blocking=non_blocking),
            self.class_ids.to(device, non_blocking=non_blocking),
        )

    def __len__(self) -> int:
        return int(self.strokes.shape[0])


def _preprocess(strokes: Sequence[np.ndarray], max_seq_len: int, max_offset: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Drop sketches longer than ``max_seq_len``; clamp dx, dy to ``+-max_offset``.
    Returns (kept float32 copies, indices of the kept sketches)."""
    kept, idx = [], []
    for i, s in enumerate(strokes):
        if len(s) <= max_seq_len:
            a = np.array(s, dtype=np.float32)
            np.clip(a[:, 0:2], -max_offset, max_offset, out=a[:, 0:2])
            kept.append(a)
            idx.append(i)
    return kept, np.asarray(idx, dtype=np.int64)


@dataclass
class SketchData:
    """One split of one or several npz files, preprocessed as in the paper."""

    strokes: list[np.ndarray]  # stroke-3 float32, offsets clamped to +-max_offset, NOT normalised
    class_ids: np.ndarray  # int64 (N,), index of the source file
    class_names: list[str]
    n_dropped: int = 0  # sketches longer than max_seq_len (counted, not errors)
    max_seq_len: int | None = field(default=None)  # the limit used when building (None = unknown)

    @classmethod
    def from_files(cls, paths: str | os.PathLike | Sequence[str | os.PathLike], split: str,
                   max_seq_len: int, max_offset: float = 1000.0) -> "SketchData":
        """Load ``split`` of each file (class id = position in ``paths``, name = file stem)."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        paths = [Path(p) for p in paths]
        if not paths:
            raise DataError("no data files given; pass one or more sketch-rnn .npz paths (data.paths)")
        _check_limits(max_seq_len, max_offset)
        strokes: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        dropped = 0
        for k, p in enumerate(paths):
            raw = load_npz(p, [split])[split]
            kept, _ = _preprocess(raw, max_seq_len, max_offset)
            dropped += len(raw) - len(kept)
            strokes.extend(kept)
            ids.append(np.full(len(kept), k, dtype=np.int64))
        return cls(strokes, np.concatenate(ids), [_stem(p) for p in paths], dropped, max_seq_len)

    @classmethod
    def from_strokes(cls, strokes: Sequence[np.ndarray], max_seq_len: int, max_offset: float = 1000.0,
                     class_ids: Sequence[int] | np.ndarray | None = None,
                     class_names: Sequence[str] | None = None) -> "SketchData":
        """Same preprocessing for in-memory stroke-3 arrays (e.g. :func:`make_shapes`)."""
        _check_limits(max_seq_len, max_offset)
        for i, s in enumerate(strokes):
            a = np.asarray(s)
            if a.ndim != 2 or a.shape[1] != 3 or len(a) < 1 or a.dtype.kind not in "biuf":
                raise DataError(f"sketch {i}: expected a numeric (L, 3) array with L >= 1, got {a.dtype} {a.shape}")
            if not np.isfinite(a).all():
                raise DataError(f"sketch {i}: contains NaN or Inf; fix or drop it")
        ids_all = np.zeros(len(strokes), np.int64) if class_ids is None else np.asarray(class_ids, np.int64)
        if ids_all.shape != (len(strokes),):
            raise DataError(f"class_ids has shape {ids_all.shape}; expected ({len(strokes)},)")
        names = list(class_names) if class_names is not None else [
            f"class{k}" for k in range(int(ids_all.max()) + 1 if len(ids_all) else 1)]
        kept, idx = _preprocess(strokes, max_seq_len, max_offset)
        return cls(kept, ids_all[idx], names, len(strokes) - len(kept), max_seq_len)

    def __len__(self) -> int:
        return len(self.strokes)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 number of stroke-3 rows per sketch."""
        return np.fromiter((len(s) for s in self.strokes), dtype=np.int64, count=len(self.strokes))

    def scale_factor(self) -> float:
        """Std of all dx and dy values together (Magenta
        ``calculate_normalizing_scale_factor``); call it on the training split."""
        if not self.strokes:
            raise DataError("cannot compute a scale factor from an empty dataset; check data paths and max_seq_len")
        flat = np.concatenate(self.strokes)[:, 0:2].astype(np.float64)  # (sum L, 2)
        s = float(np.std(flat))
        if not (s > 0 and np.isfinite(s)):
            raise DataError(f"scale factor of the data is {s}; the sketches have no movement")
        return s


def _stem(p: Path) -> str:
    name = p.name
    return name[:-4] if name.lower().endswith(".npz") else p.stem


def _check_limits(max_seq_len: int, max_offset: float) -> None:
    if int(max_seq_len) < 1:
        raise DataError(f"max_seq_len must be >= 1, got {max_seq_len}")
    if not (max_offset > 0):
        raise DataError(f"max_offset must be > 0, got {max_offset}")


class EpochSampler:
    """Epoch permutations, position in the epoch and the augmentation generator of every
    batch loader (BatchLoader, PackedBatchLoader, the sharded loader): same seed -> same
    permutations, one ``state_dict`` layout, so any of them resumes from the others' states."""

    def __init__(self, n: int, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = True,
                 lengths: np.ndarray | None = None, length_buckets: int = 0) -> None:
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        # length_buckets > 0: each window of that many batches of the shuffled order is sorted
        # by sketch length before it is cut into batches, and the batches are then shuffled, so
        # a batch holds sketches of similar length (the trainer trims its padding)
        self.length_buckets = int(length_buckets)
        if self.length_buckets < 0:
            raise DataError(f"length_buckets must be >= 0 (0 = off), got {length_buckets}")
        if self.length_buckets and self.shuffle:
            if lengths is None or len(lengths) != self.n:
                raise DataError("length_buckets needs the length of every sketch")
            self.lengths: np.ndarray | None = np.asarray(lengths, dtype=np.int64)  # (N,)
        else:
            self.lengths = None
        ss_shuffle, ss_aug = np.random.SeedSequence(self.seed).spawn(2)
        self.shuffle_rng = np.random.Generator(np.random.PCG64(ss_shuffle))
        self.aug_rng = np.random.Generator(np.random.PCG64(ss_aug))
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out
        self.perm: np.ndarray | None = None
        self._perm_rng_state: dict | None = None

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def _draw(self) -> None:
        self._perm_rng_state = copy.deepcopy(self.shuffle_rng.bit_generator.state)
        perm = self.shuffle_rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        if self.lengths is not None:
            perm = self._bucketed(perm)
        # held as int32 when it fits: 4 bytes per sketch (same order as BatchLoader's int64 one)
        self.perm = perm.astype(np.int32) if self.n < 2**31 else perm

    def _bucketed(self, perm: np.ndarray) -> np.ndarray:
        """``perm`` with each window of ``length_buckets`` batches sorted by length (stable),
        cut into batches whose order is shuffled; a last partial batch stays last."""
        b = self.batch_size
        w = b * self.length_buckets
        keys = self.lengths[perm]  # (N,)
        out = np.empty_like(perm)
        for i in range(0, self.n, w):
            order = np.argsort(keys[i:i + w], kind="stable")
            out[i:i + w] = perm[i:i + w][order]
        full = (self.n // b) * b
        rows = out[:full].reshape(-1, b)  # (n_batches, B)
        out[:full] = rows[self.shuffle_rng.permutation(len(rows))].reshape(-1)
        return out

    def start_epoch_if_needed(self) -> None:
        if self.position >= len(self):
            self.epoch += 1
            self.position = 0
            self.perm = None
        if self.perm is None:
            self._draw()

    def next_indices(self) -> tuple[np.ndarray, int, int]:
        """(indices of the next global batch, its epoch, its position in the epoch)."""
        self.start_epoch_if_needed()
        b, pos = self.batch_size, self.position
        idx = self.perm[pos * b:(pos + 1) * b]
        self.position += 1
        return idx, self.epoch, pos

    def state_dict(self) -> dict:
        started = self.perm is not None
        return {
            "epoch": self.epoch,
            "position": self.position,
            "perm_started": started,
            "shuffle_rng": copy.deepcopy(self._perm_rng_state if started else self.shuffle_rng.bit_generator.state),
            "aug_rng": copy.deepcopy(self.aug_rng.bit_generator.state),
            "n": self.n,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "length_buckets": self.length_buckets,
        }

    def load_state_dict(self, d: dict) -> None:
        try:
            if int(d["n"]) != self.n or int(d["batch_size"]) != self.batch_size:
                raise DataError(
                    f"the run trained on {d['n']} sketches in (global) batches of {d['batch_size']}, this data has "
                    f"{self.n} in batches of {self.batch_size}; use the same data and train.batch_size, or add "
                    f"--new-data to go on with this data in a fresh order")
            if int(d.get("length_buckets", 0)) != self.length_buckets:
                raise DataError(
                    f"the run drew its batches with train.length_buckets={int(d.get('length_buckets', 0))}, this "
                    f"resume asks for {self.length_buckets}; use the same setting, or add --new-data to go on in "
                    f"a fresh order")
            self.shuffle_rng.bit_generator.state = copy.deepcopy(d["shuffle_rng"])
            self.aug_rng.bit_generator.state = copy.deepcopy(d["aug_rng"])
            self.epoch = int(d["epoch"])
            self.position = int(d["position"])
            self.perm = None
            self._perm_rng_state = None
            if d["perm_started"]:
                self._draw()
        except DataError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"loader state is malformed ({type(e).__name__}: {e}); the checkpoint is damaged") from None


def stroke5_batch(flat: np.ndarray, lengths: np.ndarray, max_seq_len: int, scale_factor: float) -> np.ndarray:
    """Clamped stroke-3 rows of B sketches (concatenated) -> (B, T+1, 5) float32 stroke-5:
    start token, offsets / scale, pen one-hot, end padding rows (vectorised :func:`to_stroke5`)."""
    n, t = len(lengths), int(max_seq_len)
    if n and int(lengths.max()) > t:  # rows would spill into the next sketch
        raise DataError(f"sketch has {int(lengths.max())} points, more than max_seq_len={t}; raise max_seq_len or drop it")
    out = np.zeros((n, t + 1, 5), dtype=np.float32)  # (B, T+1, 5)
    out[:, 0, 2] = 1.0  # start token (0, 0, 1, 0, 0)
    out[:, 1:, 4] = np.arange(1, t + 1)[None, :] > lengths[:, None]  # end padding rows L+1..T
    body = np.empty((len(flat), 5), dtype=np.float32)  # (sum L, 5) rows 1..L of every sketch
    body[:, 0:2] = flat[:, 0:2] / scale_factor
    pen = flat[:, 2] > 0.5
    body[:, 2] = ~pen
    body[:, 3] = pen
    body[:, 4] = 0.0
    starts = np.cumsum(lengths) - lengths
    dest = np.repeat(np.arange(n) * (t + 1) + 1 - starts, lengths) + np.arange(len(flat))
    out.reshape(n * (t + 1), 5)[dest] = body
    return out


def check_loader_args(n: int, batch_size: int, drop_last: bool, scale_factor: float) -> None:
    """Arguments every batch loader refuses, with one-line errors."""
    if n == 0:
        raise DataError("dataset is empty (every sketch longer than max_seq_len?); check data paths and max_seq_len")
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    if drop_last and n < batch_size:
        raise DataError(f"dataset has {n} sketches, fewer than batch_size={batch_size}; lower the batch size")
    if not (scale_factor > 0 and np.isfinite(scale_factor)):
        raise DataError(f"scale_factor must be a positive number, got {scale_factor}")


class EpochLoader:
    """What every batch loader delegates to its :class:`EpochSampler` ``self.sampler``:
    length in batches, epoch, position, and the resumable state."""

    sampler: EpochSampler

    def __len__(self) -> int:
        return len(self.sampler)

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    @property
    def position(self) -> int:
        """Batches of the current epoch already handed out."""
        return self.sampler.position

    def _configure(self, data: Any, scale_factor: float, batch_size: int, max_seq_len: int, augment: bool,
                   random_scale_factor: float, augment_stroke_prob: float, shuffle: bool, seed: int,
                   drop_last: bool) -> None:
        """Store the loader settings shared by every loader (after check_loader_args)."""
        self.data = data
        self.scale_factor = float(scale_factor)
        self.batch_size = int(batch_size)
        self.max_seq_len = int(max_seq_len)
        self.augment = bool(augment)
        self.random_scale_factor = float(random_scale_factor)
        self.augment_stroke_prob = float(augment_stroke_prob)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)

    def state_dict(self) -> dict:
        """Plain-Python state (ints, bools, dicts): epoch, position, rng states."""
        return self.sampler.state_dict()

    def load_state_dict(self, d: dict) -> None:
        """Resume exactly where :meth:`state_dict` was taken."""
        self.sampler.load_state_dict(d)


class BatchLoader(EpochLoader):
    """Pads every sketch once into a (N, T+1, 5) array; a batch is an index gather.

    Iterating yields the remaining batches of the current epoch (a fresh permutation per
    epoch when ``shuffle``); ``next_batch()`` crosses epochs by itself. Epoch order,
    position and the augmentation generator live in an :class:`EpochSampler`.
    """

    def __init__(self, data: SketchData, scale_factor: float, batch_size: int, max_seq_len: int,
                 augment: bool = False, random_scale_factor: float = 0.15, augment_stroke_prob: float = 0.1,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = True, length_buckets: int = 0) -> None:
        n = len(data)
        check_loader_args(n, batch_size, drop_last, scale_factor)
        lengths = data.lengths
        if int(lengths.max()) > max_seq_len:
            i = int(np.argmax(lengths))
            raise DataError(f"sketch {i} has {lengths[i]} points, more than max_seq_len={max_seq_len}; "
                            "build SketchData with the same max_seq_len")
        self._configure(data, scale_factor, batch_size, max_seq_len, augment, random_scale_factor,
                        augment_stroke_prob, shuffle, seed, drop_last)
        self.lengths = lengths  # (N,) int64
        self.class_ids = np.asarray(data.class_ids, dtype=np.int64)  # (N,)
        # (N, T+1, 5) float32, padded once
        self.padded = stroke5_batch(np.concatenate(data.strokes), lengths, self.max_seq_len, self.scale_factor)
        self.sampler = EpochSampler(n, batch_size, shuffle, seed, drop_last, lengths, length_buckets)

    def next_batch(self) -> Batch:
        """The next batch, starting a new epoch when the current one is exhausted."""
        idx, _, _ = self.sampler.next_indices()
        return self.batch(idx)

    def __iter__(self) -> Iterator[Batch]:
        self.sampler.start_epoch_if_needed()
        while self.sampler.position < len(self.sampler):
            yield self.next_batch()

    def sequential(self, limit: int | None = None) -> Iterator[Batch]:
        """Every sketch in index order (first ``limit`` only, if given), un-augmented, in
        batches of ``batch_size`` (last one may be smaller). Touches neither the epoch
        position nor any rng, so evaluations that stop early always see the same sketches."""
        import torch

        n = len(self.data) if limit is None else min(int(limit), len(self.data))
        for i in range(0, n, self.batch_size):
            j = min(i + self.batch_size, n)
            yield Batch(torch.from_numpy(self.padded[i:j].copy()), torch.from_numpy(self.lengths[i:j].copy()),
                        torch.from_numpy(self.class_ids[i:j].copy()))

    def batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """Batch of the given sketch indices (augmented when ``augment``)."""
        import torch

        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self.data) or idx.max() >= len(self.data)):
            raise DataError(f"batch indices out of range for a dataset of {len(self.data)} sketches")
        if not self.augment:
            strokes = self.padded[idx]  # (B, T+1, 5) gather (a copy)
            lengths = self.lengths[idx]
        else:
            flat, lengths = augment_batch([self.data.strokes[i] for i in idx], self.random_scale_factor,
                                          self.augment_stroke_prob, self.sampler.aug_rng)
            strokes = stroke5_batch(flat, lengths, self.max_seq_len, self.scale_factor)  # (B, T+1, 5)
        return Batch(torch.from_numpy(strokes), torch.from_numpy(lengths),
                     torch.from_numpy(self.class_ids[idx]))
