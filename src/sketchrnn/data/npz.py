"""Safe reading and writing of sketch-rnn ``.npz`` files.

Google's sketch-rnn files (QuickDraw, aaron_sheep, omniglot, kanji) are zip archives
whose members ``train.npy`` / ``valid.npy`` / ``test.npy`` are *object* arrays: a pickled
list of ``(L, 3)`` stroke-3 arrays. ``np.load(allow_pickle=True)`` would run whatever code
such a pickle names, so this module never calls it (nor ``pickle.load``). Instead it

1. opens the zip itself and parses the ``.npy`` header (``numpy.lib.format``),
2. unpickles object arrays with :class:`_StrokeUnpickler`, whose ``find_class`` admits
   exactly the three globals numpy's own pickles of plain arrays reference
   (``numpy[._]core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``; plus
   ``_codecs.encode`` restricted to str -> latin-1 bytes, which protocol-2 pickles use)
   and maps them to inert stand-ins: nothing numpy- or user-defined is ever *called* with
   attacker-controlled arguments; numeric data is rebuilt with ``np.frombuffer`` from a
   whitelisted plain dtype,
3. validates every sketch (numeric, shape ``(L, 3)``, ``L >= 1``, finite) and returns
   float32 copies.

Files written by :func:`save_npz` have Google's layout and load with both
``np.load(path, allow_pickle=True, encoding="latin1")`` and :func:`load_npz`.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from numpy.lib import format as npy_format

from ..errors import DataError
from ..fileio import atomic_write

__all__ = ["load_npz", "save_npz", "SPLITS"]

SPLITS = ("train", "valid", "test")

# Plain dtypes a stroke array (or the outer object array) may have on disk.
_NUMERIC_SPECS = frozenset(
    ["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"]
)
_OBJECT_SPECS = frozenset(["O4", "O8"])
# The only globals numpy's pickles of plain ndarrays reference (checked with
# pickletools on the shared files: protocol-1 Python 2 pickles and protocol-4 ones).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    # Python 3 pickles at protocol 2 spell bytes as _codecs.encode(str, 'latin1')
    ("_codecs", "encode"): "encode",
}
_MAX_MEMBER_BYTES = 8 << 30  # refuse absurd (zip-bomb) members


def _one_line(x: object, limit: int = 120) -> str:
    """Text from a file (names, parser messages) made safe for a one-line message."""
    t = str(x)
    t = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in t)
    return t if len(t) <= limit else t[:limit] + "..."


class _Refused(Exception):
    """Raised inside the unpickler; turned into a DataError by the caller."""


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` inside a pickle; deliberately not callable."""

    __slots__ = ()

    def __reduce__(self):  # pragma: no cover - never pickled
        raise TypeError("not picklable")


_NDARRAY = _NdarrayToken()


def _as_str(x: object) -> str:
    if isinstance(x, bytes):
        return x.decode("latin1")
    if isinstance(x, str):
        return x
    raise _Refused(f"dtype spec of type {type(x).__name__}")


class _DtypeProxy:
    """Stands for ``numpy.dtype(spec, align, copy)``; admits plain numeric/object dtypes only."""

    __slots__ = ("dtype",)

    def __init__(self, spec: object = None, align: object = False, copy: object = True) -> None:
        s = _as_str(spec)
        if s not in _NUMERIC_SPECS and s not in _OBJECT_SPECS:
            raise _Refused(f"dtype {s!r}")
        self.dtype = np.dtype(s)

    def __setstate__(self, state: object) -> None:
        # numpy: (version, endian, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise _Refused("dtype with an unexpected pickled state")
        endian = _as_str(state[1])
        if state[2] is not None or state[3] is not None or state[4] is not None:
            raise _Refused("structured or sub-array dtype")
        if len(state) == 9 and state[8] is not None:
            raise _Refused("dtype with metadata")
        if endian in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(endian)
        elif endian not in ("|", "="):
            raise _Refused(f"dtype byte order {endian!r}")


class _ArrayProxy:
    """Stands for ``_reconstruct(ndarray, shape, typecode)`` + ``__setstate__``.

    After BUILD, ``value`` is a numeric ``np.ndarray`` or, for an object array, a
    Python list of its (still unvalidated) elements.
    """

    __slots__ = ("value",)

    def __init__(self, subtype: object = None, shape: object = None, typecode: object = None) -> None:
        if subtype is not _NDARRAY:
            raise _Refused("array of a type other than numpy.ndarray")
        self.value = None

    def __setstate__(self, state: object) -> None:
        if type(state) is not tuple or len(state) not in (4, 5):
            raise _Refused("array with an unexpected pickled state")
        shape, dt, fortran, raw = state[-4:]  # (version,) shape, dtype, is_fortran, data
        if type(dt) is not _DtypeProxy:
            raise _Refused("array without a plain dtype")
        if type(shape) is not tuple or len(shape) > 3:
            raise _Refused("array with an invalid shape")
        count = 1
        for k in shape:
            if type(k) is not int or k < 0:
                raise _Refused("array with an invalid shape")
            count *= k
        dtype = dt.dtype
        if dtype.kind == "O":
            if len(shape) != 1 or type(raw) is not list or len(raw) != count:
                raise _Refused("object array that is not a flat list")
            self.value = raw
            return
        if type(raw) is str:  # Python 2 pickles read with encoding='latin1'
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != count * dtype.itemsize:
            raise _Refused("numeric array whose data does not match its shape")
        arr = np.frombuffer(raw, dtype=dtype, count=count)
        self.value = arr.reshape(shape, order="F" if fortran else "C")


def _latin1_encode(text: object, encoding: object = "latin1") -> bytes:
    """Stands for ``_codecs.encode``: only ``str`` -> bytes in latin-1 is admitted."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("call of _codecs.encode other than str -> latin1 bytes")
    return text.encode("latin1")


class _StrokeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's ndarray-rebuilding globals, to inert stand-ins."""

    def find_class(self, module: str, name: str):  # noqa: D401
        kind = _ALLOWED_GLOBALS.get((module, name))
        if kind == "reconstruct":
            return _ArrayProxy
        if kind == "ndarray":
            return _NDARRAY
        if kind == "dtype":
            return _DtypeProxy
        if kind == "encode":
            return _latin1_encode
        raise _Refused(f"global {_one_line(module)}.{_one_line(name)}")

    def persistent_load(self, pid):  # pragma: no cover - defensive
        raise _Refused("persistent id")


def _member_name(split: str) -> str:
    return f"{split}.npy"


def _read_member(path: Path, zf: zipfile.ZipFile, split: str) -> list[np.ndarray]:
    """Parse one ``<split>.npy`` member; returns the raw (unvalidated) list of arrays."""
    where = f"{path}: split '{_one_line(split)}'"
    info = zf.getinfo(_member_name(split))
    if info.file_size > _MAX_MEMBER_BYTES:
        raise DataError(f"{where} is {info.file_size} bytes uncompressed; refusing (limit {_MAX_MEMBER_BYTES})")
    try:
        data = zf.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError, RuntimeError) as e:
        # zlib.error: corrupt deflate stream; NotImplementedError: unknown compression
        # method; RuntimeError: encrypted member
        raise DataError(f"{where}: cannot read the zip member ({_one_line(e)}); the file is damaged, download it again") from None
    fh = io.BytesIO(data)
    try:
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(fh)
        else:
            raise DataError(f"{where}: unsupported .npy format version {version}; re-save it with numpy")
    except DataError:
        raise
    except Exception as e:  # numpy raises ValueError for bad magic/header
        raise DataError(f"{where}: not a valid .npy member ({_one_line(e)})") from None
    if dtype.kind != "O":
        raise DataError(
            f"{where} is a plain {dtype} array of shape {shape}; expected an object array of (L, 3) "
            "stroke arrays as in Google's sketch-rnn files"
        )
    if len(shape) != 1:
        raise DataError(f"{where}: object array of shape {shape}; expected a 1-D array of sketches")
    try:
        obj = _StrokeUnpickler(fh, encoding="latin1").load()
    except _Refused as e:
        raise DataError(
            f"{where} holds a pickled {e}; refusing to load it (only numeric stroke arrays are "
            "allowed) - do not use this file, or re-save it from trusted data"
        ) from None
    except Exception as e:
        raise DataError(f"{where}: malformed pickled data ({type(e).__name__}: {_one_line(e)}); the file is damaged or not a sketch file") from None
    if not isinstance(obj, _ArrayProxy) or not isinstance(getattr(obj, "value", None), list):
        raise DataError(f"{where} holds a pickled {type(obj).__name__}, not an array of sketches; refusing it")
    if len(obj.value) != shape[0]:
        raise DataError(f"{where}: header says {shape[0]} sketches but the data holds {len(obj.value)}")
    return obj.value


def _validate(items: Sequence[object], where: str) -> list[np.ndarray]:
    """Check every item is a finite numeric (L, 3) array; return float32 copies.

    The copies are views into one fresh float32 buffer (one cast for the whole split).
    """
    arrs: list[np.ndarray] = []
    for i, item in enumerate(items):
        arr = getattr(item, "value", None) if type(item) is _ArrayProxy else item
        if type(arr) is not np.ndarray or arr.dtype.kind not in "biuf":
            kind = f"array of {arr.dtype}" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise DataError(f"{where} index {i}: expected a numeric (L, 3) array, got {kind}; fix or drop this sketch")
        shape = arr.shape
        if len(shape) != 2 or shape[1] != 3 or shape[0] < 1:
            raise DataError(f"{where} index {i}: expected shape (L, 3) with L >= 1, got {shape}; fix or drop this sketch")
        arrs.append(arr)
    if not arrs:
        return []
    with np.errstate(over="ignore"):  # float64 beyond float32 -> inf, reported below
        flat = np.concatenate(arrs, axis=0, dtype=np.float32, casting="unsafe")  # (sum L, 3)
    finite = np.isfinite(flat).all(axis=1)
    ends = np.cumsum([a.shape[0] for a in arrs])
    if not finite.all():
        i = int(np.searchsorted(ends, int(np.argmin(finite)), side="right"))
        raise DataError(f"{where} index {i}: contains NaN or Inf (or values beyond float32); fix or drop this sketch")
    return np.split(flat, ends[:-1])


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise DataError(f"{path}: file not found; pass the path of a sketch-rnn .npz file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass the path of a sketch-rnn .npz file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError):  # damaged central directory
        raise DataError(f"{path}: not an .npz (zip) file; expected Google's sketch-rnn layout with train/valid/test") from None
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e.strerror})") from None


def load_npz(path: str | os.PathLike, splits: str | Iterable[str] | None = None) -> dict[str, list[np.ndarray]]:
    """Read a sketch-rnn ``.npz`` without ``allow_pickle``.

    ``splits``: ``None`` for every ``*.npy`` member (train, valid, test first), one name,
    or a list of names. Returns ``{split: [stroke-3 float32 (L, 3), ...]}``. Any numeric
    dtype on disk is accepted (int16 QuickDraw, float16 distilled, float64 kanji).
    Raises :class:`DataError` (one line, naming file/split/index) on any problem.
    """
    p = Path(path)
    with _open_zip(p) as zf:
        present = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        if not present:
            raise DataError(f"{p}: no .npy members in the archive; expected train/valid/test")
        if splits is None:
            wanted = [s for s in SPLITS if s in present] + [s for s in present if s not in SPLITS]
        else:
            wanted = [splits] if isinstance(splits, str) else list(splits)
        for s in wanted:
            if s not in present:
                raise DataError(f"{p}: no split '{_one_line(s)}' in the file (it has: {_one_line(', '.join(present), 200)}); "
                                "choose one of those")
        return {s: _validate(_read_member(p, zf, s), f"{p}: split '{_one_line(s)}'") for s in wanted}


def _object_array(strokes: Sequence[np.ndarray], where: str) -> np.ndarray:
    arr = np.empty(len(strokes), dtype=object)
    for i, s in enumerate(strokes):
        a = np.asarray(s)
        if a.dtype.kind not in "biuf" or a.ndim != 2 or a.shape[1] != 3 or a.shape[0] < 1:
            raise DataError(f"{where} index {i}: expected a numeric (L, 3) array, got {a.dtype} {a.shape}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError(f"{where} index {i}: contains NaN or Inf; fix or drop this sketch")
        arr[i] = np.ascontiguousarray(a)  # keeps each array's dtype
    return arr


def save_npz(path: str | os.PathLike, data: Mapping[str, Sequence[np.ndarray]]) -> None:
    """Write ``{split: [stroke-3 arrays]}`` in Google's sketch-rnn layout, atomically.

    Each split becomes an object array ``<split>.npy`` (each sketch keeps its own dtype;
    pass int16 arrays to match the official files). Deflate-compressed like
    ``np.savez_compressed``; the file appears only once complete (temp file + os.replace).
    """
    p = Path(path)
    if not data:
        raise DataError(f"{p}: nothing to save; pass at least one split")
    arrays = {}
    for split, strokes in data.items():
        if not isinstance(split, str) or not split or "/" in split:
            raise DataError(f"{p}: invalid split name {split!r}")
        arrays[split] = _object_array(strokes, f"{p}: split '{split}'")

    def write(fh) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for split, arr in arrays.items():
                with zf.open(_member_name(split), "w", force_zip64=True) as member:
                    npy_format.write_array(member, arr, allow_pickle=True)

    atomic_write(p, write, error=DataError)
