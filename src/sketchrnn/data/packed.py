"""Packed on-disk sketch corpora: many classes in a few flat, memory-mapped arrays.

Google's per-class sketch-rnn ``.npz`` files hold pickled lists of small arrays: fine for a
few classes, hopeless for all of QuickDraw (345 classes, 50M+ drawings), where a Python
list of arrays alone would not fit in memory. ``sketchrnn pack`` converts ``.npz`` files
or QuickDraw ``.ndjson`` files once into a directory of plain ``.npy`` files that the
loader memory-maps (``np.load(mmap_mode="r")``) and reads one batch at a time::

    DIR/header.json               format, version, dtype, classes, max_offset, per-split counts and stats
    DIR/<split>.points.npy        (P, 3) stroke-3 rows of every sketch, one after the other (dtype below)
    DIR/<split>.offsets.npy       (N+1,) int64: sketch i is points[offsets[i]:offsets[i+1]]
    DIR/<split>.classes.npy       (N,) int32 class id (index into header "classes")
    DIR/<split>.length_stats.npy  (Lmax+1, 3) float64: per sketch length L, the sum, sum of squares
                                  and count of the dx and dy values (clamped to +-max_offset)

The points dtype is the narrowest exact one: ``int16`` when every value is a whole number
in range (the official QuickDraw files), ``float16`` when every value is exactly a float16
(e.g. ../shared/data/distilled), otherwise ``float32``; :func:`load_npz` returns float32, so
pack -> load gives back exactly the float32 arrays it returns. Points are stored as read
(unclamped); clamping to ``max_offset`` and dropping sketches longer than ``max_seq_len``
happen at load time, as :class:`~sketchrnn.data.SketchData` does.

The normalisation statistics (Magenta's scale factor, the std of all dx and dy) are
accumulated in the same single streaming pass that writes the arrays; keeping them per
sketch length lets :meth:`PackedSketchData.scale_factor` give the std of exactly the
sketches a given ``max_seq_len`` keeps, without reading the points again.

:class:`PackedBatchLoader` has the same constructor, :class:`~sketchrnn.data.Batch` output,
iteration order and ``state_dict`` as :class:`~sketchrnn.data.BatchLoader` (same seed ->
same permutation and augmentation draws; states are interchangeable), but never pads or
holds the corpus: each batch gathers its sketches from the memory map. Its resident memory
is the epoch permutation (4 bytes per sketch) plus one batch, whatever the corpus size.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import DataError
from .augment import augment_batch
from .dataset import Batch, EpochLoader, EpochSampler, check_loader_args, stroke5_batch

__all__ = [
    "PACKED_FORMAT",
    "HEADER_NAME",
    "is_packed_dir",
    "read_header",
    "pack",
    "PackedSketchData",
    "PackedBatchLoader",
    "EpochSampler",
]

PACKED_FORMAT = "sketchrnn-packed"
PACKED_VERSION = 1
HEADER_NAME = "header.json"
SPLITS = ("train", "valid", "test")
_DTYPES = ("int16", "float16", "float32")
_NPY_PREFIX = 128  # bytes reserved for the .npy magic + header of a streamed array (64-aligned)
_CHUNK = 1 << 18  # sketches per chunk in streaming passes


# --------------------------------------------------------------------------- helpers
def is_packed_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` is a directory holding a packed corpus (``header.json``)."""
    p = Path(path)
    return p.is_dir() and (p / HEADER_NAME).is_file()


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The validated ``header.json`` of a packed directory."""
    p = Path(path)
    hp = p / HEADER_NAME
    if not hp.is_file():
        raise DataError(f"{p}: no {HEADER_NAME}; not a packed corpus (make one with `sketchrnn pack`)")
    try:
        h = json.loads(hp.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{hp}: unreadable header ({e}); re-create the directory with `sketchrnn pack`") from None
    if not isinstance(h, dict) or h.get("format") != PACKED_FORMAT:
        raise DataError(f"{hp}: not a '{PACKED_FORMAT}' header; re-create the directory with `sketchrnn pack`")
    if h.get("version") != PACKED_VERSION:
        raise DataError(f"{hp}: packed format version {h.get('version')} is not supported (this sketchrnn reads "
                        f"{PACKED_VERSION}); re-pack with this version")
    if h.get("dtype") not in _DTYPES or not isinstance(h.get("classes"), list) or not isinstance(h.get("splits"), dict):
        raise DataError(f"{hp}: header lacks a valid dtype, classes or splits; the directory is damaged, re-pack it")
    return h


def _stem(p: Path) -> str:
    name = p.name
    for suf in (".npz", ".ndjson"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return p.stem


class _NpyAppender:
    """A 2-D (or 1-D) ``.npy`` file written by appending rows; the header (shape) is
    written on :meth:`close` into space reserved up front, so no second copy is needed."""

    def __init__(self, path: Path, dtype: np.dtype | str, ncols: int | None) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.ncols = ncols
        self.rows = 0
        self.f = open(path, "wb")
        self.f.write(b"\0" * _NPY_PREFIX)

    def append(self, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a, dtype=self.dtype)
        self.f.write(a.tobytes())
        self.rows += a.shape[0]

    def _header(self) -> bytes:
        shape = (self.rows,) if self.ncols is None else (self.rows, self.ncols)
        d = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (self.dtype.str, shape)
        room = _NPY_PREFIX - 10  # magic (6) + version (2) + header length (2)
        body = d.encode("latin1")
        if len(body) + 1 > room:  # pragma: no cover - shapes never get this long
            raise DataError(f"{self.path}: array too large for the reserved .npy header")
        body = body + b" " * (room - 1 - len(body)) + b"\n"
        return b"\x93NUMPY" + bytes([1, 0]) + len(body).to_bytes(2, "little") + body

    def recode(self, dtype: np.dtype | str) -> None:
        """Convert what was written so far to a wider ``dtype`` (chunked, flat memory)."""
        new = np.dtype(dtype)
        self.f.flush()
        self.f.close()
        width = 1 if self.ncols is None else self.ncols
        old = np.memmap(self.path, dtype=self.dtype, mode="r", offset=_NPY_PREFIX,
                        shape=(self.rows * width,)) if self.rows else np.zeros(0, self.dtype)
        tmp = self.path.with_name(self.path.name + ".recode")
        with open(tmp, "wb") as g:
            g.write(b"\0" * _NPY_PREFIX)
            step = 1 << 22
            for i in range(0, len(old), step):
                g.write(np.asarray(old[i:i + step]).astype(new).tobytes())
        del old
        os.replace(tmp, self.path)
        self.dtype = new
        self.f = open(self.path, "r+b")
        self.f.seek(0, os.SEEK_END)

    def close(self) -> None:
        self.f.seek(0)
        self.f.write(self._header())
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()


def _needed_dtype(flat: np.ndarray) -> tuple[bool, bool]:
    """(all values whole numbers in int16 range, all values exactly representable in float16)."""
    if flat.size == 0:
        return True, True
    with np.errstate(over="ignore", invalid="ignore"):
        is_int = bool(np.all(flat == np.round(flat)) and np.all(np.abs(flat) <= 32767))
        is_f16 = bool(np.all(flat.astype(np.float16).astype(np.float32) == flat))
    return is_int, is_f16


class _SplitWriter:
    """Streams one split: points, offsets, class ids and per-length statistics."""

    def __init__(self, tmp: Path, split: str, dtype: str, max_offset: float) -> None:
        self.split = split
        self.max_offset = float(max_offset)
        self.points = _NpyAppender(tmp / f"{split}.points.npy", dtype, 3)
        self.offsets = _NpyAppender(tmp / f"{split}.offsets.npy", np.int64, None)
        self.offsets.append(np.zeros(1, np.int64))
        self.classes = _NpyAppender(tmp / f"{split}.classes.npy", np.int32, None)
        self.total = 0
        self.stats = np.zeros((1, 3), np.float64)  # (Lmax+1, 3) sum, sum of squares, count
        self.per_class: dict[int, int] = {}

    def add(self, sketches: Sequence[np.ndarray], class_id: int) -> None:
        if not sketches:
            return
        lengths = np.fromiter((len(s) for s in sketches), np.int64, count=len(sketches))  # (n,)
        flat = np.concatenate(sketches).astype(np.float32, copy=False)  # (sum L, 3)
        self.points.append(flat)
        self.offsets.append(self.total + np.cumsum(lengths))
        self.total += int(lengths.sum())
        self.classes.append(np.full(len(sketches), class_id, np.int32))
        self.per_class[class_id] = self.per_class.get(class_id, 0) + len(sketches)
        # statistics of the clamped dx, dy (as SketchData clamps them), grouped by sketch length
        xy = np.clip(flat[:, 0:2], -self.max_offset, self.max_offset).astype(np.float64)  # (sum L, 2)
        starts = np.cumsum(lengths) - lengths
        s1 = np.add.reduceat(xy.sum(axis=1), starts)  # (n,) per-sketch sum of dx + dy
        s2 = np.add.reduceat((xy * xy).sum(axis=1), starts)  # (n,) per-sketch sum of squares
        lmax = int(lengths.max())
        if lmax >= len(self.stats):
            grown = np.zeros((lmax + 1, 3), np.float64)
            grown[: len(self.stats)] = self.stats
            self.stats = grown
        m = len(self.stats)
        self.stats[:, 0] += np.bincount(lengths, weights=s1, minlength=m)
        self.stats[:, 1] += np.bincount(lengths, weights=s2, minlength=m)
        self.stats[:, 2] += np.bincount(lengths, weights=2.0 * lengths, minlength=m)

    def close(self, tmp: Path, n_classes: int) -> dict[str, Any]:
        for a in (self.points, self.offsets, self.classes):
            a.close()
        np.save(tmp / f"{self.split}.length_stats.npy", self.stats)
        return {
            "sketches": int(self.classes.rows),
            "points": int(self.total),
            "max_len": int(len(self.stats) - 1),
            "per_class": [int(self.per_class.get(k, 0)) for k in range(n_classes)],
            "stats": {"sum": float(self.stats[:, 0].sum()), "sumsq": float(self.stats[:, 1].sum()),
                      "count": int(self.stats[:, 2].sum())},
        }


def _read_input(p: Path, simplify: bool | None, valid_count: int, test_count: int,
                seed: int) -> dict[str, list[np.ndarray]]:
    """One input file -> {split: [stroke-3 float32]}."""
    name = p.name.lower()
    if name.endswith(".npz"):
        from .npz import load_npz

        return load_npz(p)
    if name.endswith(".ndjson"):
        from .quickdraw import read_ndjson

        sk = [d.stroke3 for d in read_ndjson(p, simplify=simplify)]
        n = len(sk)
        if n <= valid_count + test_count:
            raise DataError(f"{p}: {n} drawings, not more than --valid-count {valid_count} + --test-count "
                            f"{test_count}; lower them")
        rng = np.random.default_rng([int(seed), zlib.crc32(_stem(p).encode("utf-8"))])
        perm = rng.permutation(n)
        parts = {"valid": np.sort(perm[:valid_count]), "test": np.sort(perm[valid_count:valid_count + test_count]),
                 "train": np.sort(perm[valid_count + test_count:])}
        return {s: [sk[i] for i in idx] for s, idx in parts.items()}
    raise DataError(f"{p}: unknown input type; `sketchrnn pack` reads sketch-rnn .npz and QuickDraw .ndjson files")


def pack(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, max_offset: float = 1000.0,
         valid_count: int = 2500, test_count: int = 2500, seed: int = 0, simplify: bool | None = None,
         log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Convert ``.npz`` / ``.ndjson`` files (one class each, named by the file stem) into a
    packed directory ``out`` in one streaming pass; returns the header.

    ``.npz`` files keep their train/valid/test splits; each ``.ndjson`` file is split at
    random (``seed``) into ``valid_count`` / ``test_count`` / the rest (train). ``simplify``
    is passed to :func:`read_ndjson` (None: simplify raw drawings only). Memory: one input
    file at a time. ``out`` appears complete or not at all (built in a temp dir, renamed).
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise DataError("pack: no inputs; give one or more sketch-rnn .npz or QuickDraw .ndjson files")
    if not (max_offset > 0 and math.isfinite(max_offset)):
        raise DataError(f"pack: max_offset must be a positive number, got {max_offset}")
    if valid_count < 0 or test_count < 0:
        raise DataError("pack: --valid-count and --test-count must be >= 0")
    names = [_stem(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise DataError(f"{p}: input file not found")
    seen: dict[str, Path] = {}
    for p, n in zip(paths, names):
        if n in seen:
            raise DataError(f"{p}: class name '{n}' is also the name of {seen[n]}; each input is one class, rename one")
        seen[n] = p
    dst = Path(out)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DataError(f"{dst}: already exists and is not an empty directory; choose a new --out or delete it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=str(dst.parent)))
    log = log or (lambda s: None)
    try:
        dtype = "int16"
        all_int = all_f16 = True
        writers: dict[str, _SplitWriter] = {}
        sources = []
        for k, (p, name) in enumerate(zip(paths, names)):
            data = _read_input(p, simplify, valid_count, test_count, seed)
            kept = {s: v for s, v in data.items() if s in SPLITS}
            if not kept:
                raise DataError(f"{p}: none of the splits {', '.join(SPLITS)} in the file; nothing to pack")
            for v in kept.values():
                if v:
                    i_ok, f_ok = _needed_dtype(np.concatenate(v))
                    all_int &= i_ok
                    all_f16 &= f_ok
            want = "int16" if all_int else "float16" if all_f16 else "float32"
            if want != dtype:
                for w in writers.values():
                    w.points.recode(want)
                dtype = want
            for s in SPLITS:
                if s in kept:
                    if s not in writers:
                        writers[s] = _SplitWriter(tmp, s, dtype, max_offset)
                    writers[s].add(kept[s], k)
            sources.append({"file": p.name, "class": name, **{s: len(v) for s, v in kept.items()}})
            log(f"packed {p.name}: " + ", ".join(f"{s} {len(v)}" for s, v in kept.items()))
            del data, kept
        header = {
            "format": PACKED_FORMAT,
            "version": PACKED_VERSION,
            "dtype": dtype,
            "classes": names,
            "max_offset": float(max_offset),
            "splits": {s: w.close(tmp, len(names)) for s, w in writers.items()},
            "sources": sources,
        }
        (tmp / HEADER_NAME).write_text(json.dumps(header, indent=1) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        if dst.exists():
            dst.rmdir()  # empty (checked above)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return header


# --------------------------------------------------------------------------- reading
def _load_npy(path: Path, where: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{where}: {path.name} is missing; the packed directory is incomplete, re-pack it")
    try:
        if path.stat().st_size <= _NPY_PREFIX:  # an empty array cannot be memory-mapped
            return np.load(path, allow_pickle=False)
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{where}: cannot read {path.name} ({e}); the packed directory is damaged, re-pack it") from None


class _Column:
    """A lazily indexed per-sketch column (``obj[i]`` or ``obj[index_array]``)."""

    def __init__(self, n: int, fetch: Callable[[np.ndarray], np.ndarray]) -> None:
        self._n = n
        self._fetch = fetch

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, slice):
            return self._fetch(np.arange(self._n)[idx])
        a = np.asarray(idx, dtype=np.int64)
        scalar = a.ndim == 0
        a = a.reshape(-1)
        if len(a) and (a.min() < -self._n or a.max() >= self._n):
            raise IndexError(f"index out of range for {self._n} sketches")
        a = np.where(a < 0, a + self._n, a)
        out = self._fetch(a)
        return out[0] if scalar else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """Materialise the whole column (8 bytes per sketch)."""
        out = np.concatenate([self._fetch(np.arange(i, min(i + _CHUNK, self._n)))
                              for i in range(0, self._n, _CHUNK)]) if self._n else self._fetch(np.zeros(0, np.int64))
        return out if dtype is None else out.astype(dtype)


class _Strokes(Sequence):
    """``data.strokes[i]``: stroke-3 float32 of sketch i, offsets clamped (read on demand)."""

    def __init__(self, data: "PackedSketchData") -> None:
        self._d = data

    def __len__(self) -> int:
        return len(self._d)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._d.get(int(i))


class PackedSketchData:
    """One split of a packed directory, with :class:`~sketchrnn.data.SketchData`'s fields
    (``strokes``, ``class_ids``, ``class_names``, ``n_dropped``, ``max_seq_len``) as lazy
    views over memory-mapped arrays. Index ``i`` counts kept sketches (``len <= max_seq_len``)
    in file order, as ``SketchData.from_files`` does."""

    def __init__(self, path: str | os.PathLike, split: str, max_seq_len: int, max_offset: float = 1000.0) -> None:
        self.path = Path(path)
        self.split = split
        where = f"{self.path}: split '{split}'"
        if int(max_seq_len) < 1:
            raise DataError(f"max_seq_len must be >= 1, got {max_seq_len}")
        if not (max_offset > 0):
            raise DataError(f"max_offset must be > 0, got {max_offset}")
        self.header = read_header(self.path)
        if split not in self.header["splits"]:
            have = ", ".join(self.header["splits"]) or "none"
            raise DataError(f"{self.path}: no split '{split}' in the packed corpus (it has: {have}); choose one of those")
        info = self.header["splits"][split]
        self.max_seq_len = int(max_seq_len)
        self.max_offset = float(max_offset)
        self.class_names: list[str] = [str(c) for c in self.header["classes"]]
        self.dtype = np.dtype(self.header["dtype"])
        self.points = _load_npy(self.path / f"{split}.points.npy", where)  # (P, 3)
        self.offsets = _load_npy(self.path / f"{split}.offsets.npy", where)  # (N+1,)
        self.raw_class_ids = _load_npy(self.path / f"{split}.classes.npy", where)  # (N,)
        self.length_stats = np.load(self.path / f"{split}.length_stats.npy", allow_pickle=False) \
            if (self.path / f"{split}.length_stats.npy").is_file() else None  # (Lmax+1, 3), small
        n_all = int(info.get("sketches", -1))
        if (self.points.ndim != 2 or self.points.shape[1] != 3 or self.points.dtype != self.dtype
                or self.offsets.shape != (n_all + 1,) or self.raw_class_ids.shape != (n_all,)
                or int(self.offsets[0]) != 0 or int(self.offsets[-1]) != self.points.shape[0]):
            raise DataError(f"{where}: array shapes do not match the header ({n_all} sketches); the directory is damaged, re-pack it")
        # which sketches max_seq_len keeps: one chunked pass over the offsets (flat memory)
        kept_parts, dropped = [], 0
        for a in range(0, n_all, _CHUNK):
            off = np.asarray(self.offsets[a:min(a + _CHUNK, n_all) + 1])
            ln = np.diff(off)  # (chunk,)
            if len(ln) and ln.min() < 1:
                i = a + int(np.argmin(ln))
                raise DataError(f"{where} index {i}: sketch of {int(ln.min())} points; the directory is damaged, re-pack it")
            keep = ln <= self.max_seq_len
            dropped += int((~keep).sum())
            kept_parts.append(a + np.flatnonzero(keep))
        self.n_dropped = dropped
        n = n_all - dropped
        if dropped == 0:
            self._kept: np.ndarray | None = None  # identity: no index array at all
        else:
            dt = np.int32 if n_all < 2**31 else np.int64
            self._kept = np.concatenate(kept_parts).astype(dt) if kept_parts else np.zeros(0, dt)
        self._n = n
        self.strokes = _Strokes(self)
        self.class_ids = _Column(n, lambda k: np.asarray(self.raw_class_ids[self._phys(k)], dtype=np.int64))
        self.lengths = _Column(n, self._lengths_of)

    @classmethod
    def from_dir(cls, path: str | os.PathLike, split: str, max_seq_len: int,
                 max_offset: float = 1000.0) -> "PackedSketchData":
        return cls(path, split, max_seq_len, max_offset)

    def __len__(self) -> int:
        return self._n

    def _phys(self, idx: np.ndarray) -> np.ndarray:
        return idx if self._kept is None else self._kept[idx].astype(np.int64)

    def _lengths_of(self, idx: np.ndarray) -> np.ndarray:
        k = self._phys(idx)
        return np.asarray(self.offsets[k + 1], np.int64) - np.asarray(self.offsets[k], np.int64)

    def raw(self, i: int) -> np.ndarray:
        """Sketch ``i`` exactly as stored (float32, not clamped)."""
        if not (-self._n <= i < self._n):
            raise IndexError(f"sketch {i} out of range for {self._n} sketches")
        k = int(self._phys(np.array([i % self._n]))[0])
        a = np.array(self.points[int(self.offsets[k]):int(self.offsets[k + 1])], dtype=np.float32)  # a copy
        if self.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError(f"{self.path}: split '{self.split}' index {i % self._n}: NaN or Inf in the points; "
                            "the directory is damaged, re-pack it")
        return a

    def get(self, i: int) -> np.ndarray:
        """Sketch ``i`` as SketchData holds it: float32 stroke-3, dx and dy clamped."""
        a = self.raw(i)
        np.clip(a[:, 0:2], -self.max_offset, self.max_offset, out=a[:, 0:2])
        return a

    def gather(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points of several sketches in one read: (flat (sum L, 3) float32 clamped, lengths (B,))."""
        k = self._phys(np.asarray(idx, np.int64))
        starts = np.asarray(self.offsets[k], np.int64)
        lens = np.asarray(self.offsets[k + 1], np.int64) - starts
        total = int(lens.sum())
        rows = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)  # (sum L,)
        flat = np.array(self.points[rows], dtype=np.float32)  # (sum L, 3) gathered from the memory map (a copy)
        if self.dtype.kind == "f" and not np.isfinite(flat).all():
            bad = int(np.searchsorted(np.cumsum(lens), int(np.argmin(np.isfinite(flat).all(axis=1))), side="right"))
            raise DataError(f"{self.path}: split '{self.split}' index {int(np.asarray(idx)[bad])}: NaN or Inf in the "
                            "points; the directory is damaged, re-pack it")
        np.clip(flat[:, 0:2], -self.max_offset, self.max_offset, out=flat[:, 0:2])
        return flat, lens

    def _moments(self) -> tuple[float, float, float]:
        """(sum, sum of squares, count) of the clamped dx, dy of the kept sketches."""
        if self.length_stats is not None and math.isclose(float(self.header.get("max_offset", -1)), self.max_offset):
            st = self.length_stats[: self.max_seq_len + 1]
            return float(st[:, 0].sum()), float(st[:, 1].sum()), float(st[:, 2].sum())
        s1 = s2 = c = 0.0  # different clamp than at pack time: one streaming pass over the points
        for a in range(0, self._n, _CHUNK):
            flat, _ = self.gather(np.arange(a, min(a + _CHUNK, self._n)))
            xy = flat[:, 0:2].astype(np.float64)
            s1 += float(xy.sum())
            s2 += float((xy * xy).sum())
            c += xy.size
        return s1, s2, c

    def scale_factor(self) -> float:
        """Std of all dx and dy of the kept sketches (Magenta's normalising factor), from
        the statistics stored at pack time; call it on the training split."""
        if self._n == 0:
            raise DataError(f"{self.path}: split '{self.split}' has no sketch of at most {self.max_seq_len} points; "
                            "cannot compute a scale factor")
        s1, s2, c = self._moments()
        mean = s1 / c
        s = math.sqrt(max(s2 / c - mean * mean, 0.0))
        if not (s > 0 and math.isfinite(s)):
            raise DataError(f"{self.path}: scale factor of the data is {s}; the sketches have no movement")
        return s


# --------------------------------------------------------------------------- batching
class PackedBatchLoader(EpochLoader):
    """:class:`~sketchrnn.data.BatchLoader` for a :class:`PackedSketchData`: same arguments,
    batches, order, augmentation draws and ``state_dict``; reads each batch from the memory
    map instead of padding the corpus up front."""

    def __init__(self, data: PackedSketchData, scale_factor: float, batch_size: int, max_seq_len: int,
                 augment: bool = False, random_scale_factor: float = 0.15, augment_stroke_prob: float = 0.1,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = True, length_buckets: int = 0) -> None:
        n = len(data)
        check_loader_args(n, batch_size, drop_last, scale_factor)
        if data.max_seq_len > max_seq_len:
            raise DataError(f"{data.path}: data was opened with max_seq_len={data.max_seq_len}, more than the "
                            f"loader's {max_seq_len}; open it with the same max_seq_len")
        self._configure(data, scale_factor, batch_size, max_seq_len, augment, random_scale_factor,
                        augment_stroke_prob, shuffle, seed, drop_last)
        self.lengths = data.lengths  # lazy (N,) column
        self.class_ids = data.class_ids  # lazy (N,) column
        self.sampler = EpochSampler(n, batch_size, shuffle, seed, drop_last,
                                    np.asarray(self.lengths) if length_buckets and shuffle else None, length_buckets)

    def next_batch(self):
        """The next batch, starting a new epoch when the current one is exhausted."""
        idx, _, _ = self.sampler.next_indices()
        return self.batch(idx)

    def __iter__(self) -> Iterator:
        self.sampler.start_epoch_if_needed()
        while self.sampler.position < len(self.sampler):
            yield self.next_batch()

    def sequential(self, limit: int | None = None) -> Iterator:
        """Every sketch in index order (first ``limit`` only), un-augmented, in batches of
        ``batch_size``; touches neither the epoch position nor any rng."""
        n = len(self.data) if limit is None else min(int(limit), len(self.data))
        for i in range(0, n, self.batch_size):
            yield self._plain(np.arange(i, min(i + self.batch_size, n)))

    def _plain(self, idx: np.ndarray):
        import torch

        flat, lens = self.data.gather(idx)
        strokes = stroke5_batch(flat, lens, self.max_seq_len, self.scale_factor)
        return Batch(torch.from_numpy(strokes), torch.from_numpy(lens), torch.from_numpy(self.class_ids[idx]))

    def batch(self, indices: Sequence[int] | np.ndarray):
        """Batch of the given sketch indices (augmented when ``augment``)."""
        import torch

        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self.data)
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            raise DataError(f"batch indices out of range for a dataset of {n} sketches")
        idx = np.where(idx < 0, idx + n, idx)
        if not self.augment:
            return self._plain(idx)
        flat, lengths = augment_batch([self.data.get(int(i)) for i in idx], self.random_scale_factor,
                                      self.augment_stroke_prob, self.sampler.aug_rng)
        strokes = stroke5_batch(flat, lengths, self.max_seq_len, self.scale_factor)  # (B, T+1, 5)
        return Batch(torch.from_numpy(strokes), torch.from_numpy(lengths), torch.from_numpy(self.class_ids[idx]))
