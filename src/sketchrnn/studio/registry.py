"""The studio's model registry: names fixed at startup, models loaded lazily and cached.

A request names a model; the name is looked up in a dict built when the server starts
(from the shipped models and the files found in the ``--models`` folders). A request
never carries a path, so no request can make the server open a file of its choice.

Each entry holds a lock: one request at a time uses a given model (the decoder loop keeps
its state in local tensors, so this is for safety and bounded memory, not correctness of
torch itself). Loading happens on first use, under that lock.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import ModelFileError, SketchRNNError
from .validation import NAME_RE, RequestError

__all__ = ["ModelEntry", "ModelRegistry", "describe_file", "MODEL_SUFFIXES"]

MODEL_SUFFIXES = (".safetensors", ".gen.json", ".pt")
MAX_MODELS = 200  # a folder with thousands of files is a mistake, not a model zoo


@dataclass
class ModelEntry:
    """One model the studio can serve; ``spec`` is what :func:`sketchrnn.checkpoint.load_model` takes."""

    name: str
    kind: str  # "shipped" | "magenta" | "safetensors" | "checkpoint"
    spec: str
    conditional: bool
    max_seq_len: int
    scale_factor: float
    extent: float | None = None  # data units spanned by the canvas; set on load (metadata or calibration)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    loaded: Any = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """Public description (no file paths)."""
        d: dict[str, Any] = {"name": self.name, "conditional": self.conditional, "kind": self.kind,
                             "max_seq_len": self.max_seq_len, "scale_factor": self.scale_factor}
        if self.extent is not None:
            d["extent"] = self.extent
        return d


def _stem(p: Path) -> str:
    n = p.name
    for suf in MODEL_SUFFIXES:
        if n.endswith(suf):
            return n[: -len(suf)]
    return p.stem


def _sanitize(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lstrip("._-")[:100]
    return s or "model"


def describe_file(path: Path) -> tuple[str, bool, int, float]:
    """(kind, conditional, max_seq_len, scale_factor) of a model file without building it.

    Raises :class:`ModelFileError` for files that are not usable models."""
    from ..checkpoint import _check_scale, config_from_json

    n = path.name
    if n.endswith(".gen.json"):
        from ..interop.magenta import read_magenta_json

        mf = read_magenta_json(path)  # validates the whole file
        return "magenta", False, mf.max_seq_len, mf.scale_factor
    if n.endswith(".safetensors"):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise ModelFileError(f"{path}: not a readable safetensors file ({str(e)[:100]})") from None
        if "config" not in meta:
            raise ModelFileError(f"{path}: no sketchrnn metadata; it was not exported by sketchrnn")
        cfg = config_from_json(meta["config"], str(path))
        scale = _check_scale(meta.get("scale_factor"), str(path))
        return "safetensors", bool(cfg.model.conditional), int(cfg.model.max_seq_len), scale
    if n.endswith(".pt"):
        from ..checkpoint import read_checkpoint

        ck = read_checkpoint(path)
        cfg = config_from_json(ck["config"], str(path))
        return "checkpoint", bool(cfg.model.conditional), int(cfg.model.max_seq_len), _check_scale(ck["scale_factor"], str(path))
    raise ModelFileError(f"{path}: not a model file (expected {', '.join(MODEL_SUFFIXES)})")


def _files_in(folder: Path) -> list[Path]:
    """Model files in ``folder`` and its direct subfolders (a training run dir holds best.pt/last.pt)."""
    out: list[Path] = []
    for pattern in ("*", "*/*"):
        for p in sorted(folder.glob(pattern)):
            if p.is_file() and p.name.endswith(MODEL_SUFFIXES) and not p.name.startswith("."):
                out.append(p)
    return out


class ModelRegistry:
    """Name -> :class:`ModelEntry`, fixed at construction."""

    def __init__(self, entries: Sequence[ModelEntry]) -> None:
        self._entries: dict[str, ModelEntry] = {}
        for e in entries:
            if not NAME_RE.fullmatch(e.name):
                raise ValueError(f"invalid model name {e.name!r}")
            if e.name in self._entries:
                raise ValueError(f"duplicate model name {e.name!r}")
            self._entries[e.name] = e

    # ------------------------------------------------------------------ discovery
    @classmethod
    def discover(cls, paths: Sequence[str | Path] = (), include_shipped: bool = True,
                 warn: Callable[[str], None] | None = None) -> "ModelRegistry":
        """Shipped models plus every model file in ``paths`` (folders, searched one level
        deep, or files). Unreadable files are skipped with a warning; a missing path is an error."""
        warn = warn or (lambda msg: print(f"sketchrnn studio: warning: {msg}", file=sys.stderr))
        entries: list[ModelEntry] = []
        taken: set[str] = set()

        def unique(base: str) -> str:
            base = _sanitize(base)
            name, k = base, 2
            while name in taken:
                name = f"{base}-{k}"
                k += 1
            taken.add(name)
            return name

        if include_shipped:
            from ..checkpoint import shipped_models, weights_dir

            for s in shipped_models():
                p = weights_dir() / f"{s}.safetensors"
                try:
                    kind, cond, msl, scale = describe_file(p)
                except SketchRNNError as e:
                    warn(f"skipping shipped model {s}: {e}")
                    continue
                entries.append(ModelEntry(unique(s), "shipped", s, cond, msl, scale))
        files: list[Path] = []
        for raw in paths:
            p = Path(raw).expanduser()
            if p.is_dir():
                found = _files_in(p)
                if not found:
                    warn(f"no model files ({', '.join(MODEL_SUFFIXES)}) in {p}")
                files.extend(found)
            elif p.is_file():
                files.append(p)
            else:
                raise ModelFileError(f"--models {p}: no such file or folder; give folders or files with "
                                     f"{', '.join(MODEL_SUFFIXES)} models")
        seen: set[Path] = set()
        for p in files:
            rp = p.resolve()
            if rp in seen:
                continue
            seen.add(rp)
            if len(entries) >= MAX_MODELS:
                warn(f"more than {MAX_MODELS} models; ignoring the rest (from {p} on)")
                break
            try:
                kind, cond, msl, scale = describe_file(p)
            except SketchRNNError as e:
                warn(f"skipping {p}: {e}")
                continue
            stem = _stem(p)
            if kind == "checkpoint" and stem in ("best", "last"):
                stem = f"{p.parent.name}-{stem}"  # run_dir/best.pt -> run_dir-best
            entries.append(ModelEntry(unique(stem), kind, str(rp), cond, msl, scale))
        return cls(entries)

    # ------------------------------------------------------------------ lookup
    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> ModelEntry:
        e = self._entries.get(name)
        if e is None:
            known = ", ".join(list(self._entries)[:20])
            raise RequestError(404, f"unknown model {name[:40]!r}; known models: {known}")
        return e

    @contextmanager
    def use(self, name: str, timeout: float, on_load: Callable[[ModelEntry], None] | None = None) -> Iterator[ModelEntry]:
        """Hold ``name``'s lock (at most ``timeout`` s of waiting, else 503), loading it on first use
        (then ``on_load(entry)``, until it has set ``entry.extent``)."""
        e = self.get(name)
        if not e.lock.acquire(timeout=timeout):
            raise RequestError(503, f"model {name} is busy (waited {timeout:g} s); try again")
        try:
            if e.loaded is None:
                from ..checkpoint import load_model

                try:
                    e.loaded = load_model(e.spec)
                except SketchRNNError as err:
                    raise RequestError(500, f"model {name} cannot be loaded: {err}") from None
            if on_load is not None and e.extent is None:
                on_load(e)
            yield e
        finally:
            e.lock.release()


def metadata_extent(info: dict[str, Any]) -> float | None:
    """An ``extent`` stored with the model (safetensors metadata), if any and valid."""
    v = info.get("extent") if isinstance(info, dict) else None
    try:
        f = float(json.loads(v) if isinstance(v, str) else v)
    except (TypeError, ValueError):
        return None
    return f if f > 0 and f < 1e7 else None
