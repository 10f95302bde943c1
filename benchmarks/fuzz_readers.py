"""Fuzz every reader of user files: only clear errors come out, never a traceback or a hang.

Readers under test (one *target* each):

=============  ===========================================================  =================
target         entry point                                                  accepted outcome
=============  ===========================================================  =================
npz            ``sketchrnn.data.load_npz``                                  stroke-3 dict
ndjson         ``sketchrnn.data.quickdraw.read_ndjson``                     list of sketches
svg            ``sketchrnn.data.io.read_strokes_file`` (``.svg``)           list of stroke-3
json_strokes   ``sketchrnn.data.io.read_strokes_file`` (``.json``)          list of stroke-3
magenta        ``sketchrnn.checkpoint.load_model`` (``.gen.json``)          LoadedModel
checkpoint     ``sketchrnn.checkpoint.load_model`` (``.pt``)                LoadedModel
safetensors    ``sketchrnn.checkpoint.load_model`` (``.safetensors``)       LoadedModel
config         ``sketchrnn.config.load_config``                             Config
=============  ===========================================================  =================

Every input is classified as

* ``ok``     the reader returned a value that meets its contract (stroke-3 arrays are
             float32 ``(L, 3)``, ``L >= 1``, finite; pen in {0, 1} for the readers that
             convert drawings -- npz keeps stored pen values, read as lifted when > 0.5,
             like the rest of the project); models are in eval mode
             with finite weights);
* ``error``  a :class:`sketchrnn.errors.SketchRNNError` with a one-line message;
* ``bug``    anything else: another exception type (a raw traceback for a user), a
             multi-line message, a returned value that breaks the contract, a crashed
             worker process, or an input that took longer than ``--timeout`` seconds.

Inputs come from small valid seed files (made here; optionally also the real files of
``--shared``) changed by mutators -- byte flips, interesting bytes, truncation,
insertion, deletion, chunk duplication, splicing; for zip containers (npz, checkpoints)
the same mutations applied to one *member* and re-zipped with valid CRCs, so the
mutation reaches the unpickler instead of stopping at the zip checksum; for JSON a
structural mutation of the parsed tree (delete/duplicate/retype/deep-nest nodes, NaN,
huge numbers) -- and from generators (random bytes, random JSON documents, random SVG
path grammar). Crafted pickles that would run code (``os.system``, ``builtins.exec``)
are always among the inputs; a marker file shows whether any ever ran.

Each target runs in its own worker process (``torch.set_num_threads(1)``); the input in
flight is written to disk first, so a worker that dies (segfault, OOM kill) is counted as
a bug with its input kept. Usage (bounded, one thread)::

    python benchmarks/fuzz_readers.py --seconds 30 --out benchmarks/fuzz_results.json
    python benchmarks/fuzz_readers.py --seconds 30 --shared ../shared --targets npz ndjson
    python benchmarks/fuzz_readers.py --atheris --seconds 30   # coverage-guided (pip install atheris)

The pytest version (tests/test_fuzz_readers.py) drives the same mutators through
Hypothesis with a few hundred inputs per reader.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import pickle
import random
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TARGETS = ("npz", "ndjson", "svg", "json_strokes", "magenta", "checkpoint", "safetensors", "config")
SUFFIX = {"npz": ".npz", "ndjson": ".ndjson", "svg": ".svg", "json_strokes": ".json", "magenta": ".gen.json",
          "checkpoint": ".pt", "safetensors": ".safetensors", "config": ".json"}
ZIP_TARGETS = ("npz", "checkpoint")
JSON_TARGETS = ("ndjson", "json_strokes", "magenta", "config")
MAX_INPUT = 1 << 20  # mutated inputs are cut to 1 MiB


# --------------------------------------------------------------------------- outcomes
@dataclass
class Outcome:
    kind: str  # "ok" | "error" | "bug"
    detail: str = ""
    seconds: float = 0.0


class ContractViolation(Exception):
    """A reader returned a value that breaks its documented contract."""


def _check_stroke3(a: Any, where: str, pen01: bool = True) -> None:
    if type(a) is not np.ndarray or a.dtype != np.float32 or a.ndim != 2 or a.shape[1] != 3 or a.shape[0] < 1:
        raise ContractViolation(f"{where}: not a float32 (L>=1, 3) array: {type(a).__name__} "
                                f"{getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}")
    if not np.isfinite(a).all():
        raise ContractViolation(f"{where}: non-finite values in a returned sketch")
    if pen01 and not np.isin(a[:, 2], (0.0, 1.0)).all():
        raise ContractViolation(f"{where}: pen column not in {{0, 1}}")


def _check_loaded(lm: Any, where: str) -> None:
    import torch

    if lm.model.training:
        raise ContractViolation(f"{where}: model not in eval mode")
    if not (math.isfinite(lm.scale_factor) and lm.scale_factor > 0):
        raise ContractViolation(f"{where}: scale_factor {lm.scale_factor}")
    for k, v in lm.model.state_dict().items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ContractViolation(f"{where}: non-finite weight {k}")


def _run_target(target: str, path: Path) -> None:
    """Call the reader of ``target`` on ``path`` and check what it returns."""
    if target == "npz":
        from sketchrnn.data.npz import load_npz

        for split, sk in load_npz(path).items():
            for i, a in enumerate(sk):
                _check_stroke3(a, f"{split}[{i}]", pen01=False)  # stored as is; consumers read > 0.5 as lifted
    elif target == "ndjson":
        from sketchrnn.data.quickdraw import read_ndjson

        for i, d in enumerate(read_ndjson(path)):
            _check_stroke3(d.stroke3, f"line item {i}")
    elif target in ("svg", "json_strokes"):
        from sketchrnn.data.io import read_strokes_file

        sk = read_strokes_file(path)
        if not sk:
            raise ContractViolation("empty list returned")
        for i, a in enumerate(sk):
            _check_stroke3(a, f"sketch {i}")
    elif target in ("magenta", "checkpoint", "safetensors"):
        from sketchrnn.checkpoint import load_model

        _check_loaded(load_model(path), target)
    elif target == "config":
        from sketchrnn.config import Config, load_config

        cfg = load_config(path)
        if not isinstance(cfg, Config):
            raise ContractViolation(f"load_config returned {type(cfg).__name__}")
        cfg.validate()
    else:  # pragma: no cover
        raise KeyError(target)


def classify(target: str, data: bytes, workdir: Path) -> Outcome:
    """Write ``data`` as a ``target`` file in ``workdir``, read it, classify the outcome."""
    from sketchrnn.errors import SketchRNNError

    path = workdir / f"input{SUFFIX[target]}"
    path.write_bytes(data)
    t0 = time.perf_counter()
    try:
        _run_target(target, path)
        out = Outcome("ok")
    except SketchRNNError as e:
        msg = str(e)
        if not msg.strip() or "\n" in msg:
            out = Outcome("bug", f"{type(e).__name__} message is not one line: {msg[:300]!r}")
        else:
            out = Outcome("error", type(e).__name__)
    except ContractViolation as e:
        out = Outcome("bug", f"contract: {e}")
    except RecursionError:
        out = Outcome("bug", "RecursionError")
    except Exception as e:  # noqa: BLE001 - this is what the fuzzer looks for
        out = Outcome("bug", f"{type(e).__name__}: {str(e)[:300]}")
    out.seconds = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- seeds
def _tiny_model_files(d: Path) -> dict[str, bytes]:
    """A tiny VAE checkpoint, its safetensors export and a tiny Magenta-compatible decoder."""
    import torch

    from sketchrnn.checkpoint import save_checkpoint, save_weights
    from sketchrnn.config import Config, apply_overrides
    from sketchrnn.interop.magenta import export_magenta
    from sketchrnn.model import SketchRNN

    torch.manual_seed(0)
    cfg = apply_overrides(Config(), ["model.enc_rnn_size=4", "model.dec_rnn_size=6", "model.z_size=2",
                                     "model.num_mixture=2", "model.max_seq_len=16"])
    model = SketchRNN(cfg.model)
    opt = torch.optim.Adam(model.parameters())
    save_checkpoint(d / "seed.pt", {"config": cfg.to_json(), "scale_factor": 12.5, "class_names": ["shapes"],
                                    "model": model.state_dict(), "optimizer": opt.state_dict(), "step": 3,
                                    "best_valid": 1.5, "rng": {"torch": torch.get_rng_state()},
                                    "loader": {"epoch": 0, "pos": 2}})
    save_weights(d / "seed.safetensors", model, cfg, 12.5, ["shapes"], half=True)
    mcfg = apply_overrides(Config(), ["model.conditional=false", "model.dec_rnn_size=3", "model.num_mixture=20",
                                      "model.max_seq_len=16", "model.use_recurrent_dropout=false"])
    mmodel = SketchRNN(mcfg.model)
    export_magenta(mmodel, d / "seed.gen.json", scale_factor=20.0, name="tiny")
    return {"checkpoint": (d / "seed.pt").read_bytes(), "safetensors": (d / "seed.safetensors").read_bytes(),
            "magenta": (d / "seed.gen.json").read_bytes()}


def _qd_strokes(s3: np.ndarray, raw: bool) -> list:
    from sketchrnn.data.strokes import to_polylines

    out = []
    for k, line in enumerate(to_polylines(s3, start=(10.0, 20.0))):
        xs, ys = [int(v) for v in line[:, 0]], [int(v) for v in line[:, 1]]
        out.append([xs, ys, [100 * k + 7 * i for i in range(len(xs))]] if raw else [xs, ys])
    return out


def make_seeds(workdir: str | Path, shared: str | Path | None = None) -> dict[str, list[bytes]]:
    """Small valid files for every target (plus real files from ``shared`` when given)."""
    from sketchrnn.config import Config
    from sketchrnn.data.npz import save_npz
    from sketchrnn.data.synthetic import make_shapes
    from sketchrnn.render.svg import stroke3_to_svg

    d = Path(workdir)
    d.mkdir(parents=True, exist_ok=True)
    shapes = make_shapes(8, seed=1)
    seeds: dict[str, list[bytes]] = {t: [] for t in TARGETS}

    save_npz(d / "a.npz", {"train": [s.astype(np.int16) for s in shapes[:4]], "valid": [shapes[4].astype(np.int16)],
                           "test": [shapes[5].astype(np.int16)]})
    save_npz(d / "b.npz", {"train": [s.astype(np.float16) for s in shapes[6:8]]})
    seeds["npz"] += [(d / "a.npz").read_bytes(), (d / "b.npz").read_bytes()]

    lines = [json.dumps({"word": "cat", "key_id": str(i), "recognized": True, "countrycode": "US",
                         "drawing": _qd_strokes(s, raw=bool(i % 2))}) for i, s in enumerate(shapes[:3])]
    seeds["ndjson"].append(("\n".join(lines) + "\n").encode())
    seeds["ndjson"].append((json.dumps({"drawing": [[[0, 5, 9], [0, 3, 1]], [[4], [4]]]}) + "\n").encode())

    seeds["svg"].append(stroke3_to_svg(shapes[0]).encode())
    seeds["svg"].append(
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><g transform="translate(5,5) rotate(10)">'
        b'<path d="M10 10 L40 10 Q50 20 40 30 C30 40 20 40 10 30 A10 15 30 0 1 10 10 Z m5 5 h10 v10 s5 5 10 0 t5 5"/>'
        b'<polyline points="1,1 20,20 30,5"/><rect x="2" y="3" width="9" height="4"/><circle cx="50" cy="50" r="8"/>'
        b'<ellipse cx="20" cy="70" rx="6" ry="3"/><line x1="0" y1="0" x2="9" y2="9"/></g>'
        b'<defs><path d="M0 0 L5 5"/></defs></svg>')

    s3 = shapes[1]
    seeds["json_strokes"] += [
        json.dumps(s3.tolist()).encode(),
        json.dumps(_qd_strokes(shapes[2], raw=False)).encode(),
        json.dumps({"polylines": [[[0, 0], [5, 5], [9, 1]], [[3, 3], [4, 8]]]}).encode(),
        json.dumps({"sketches": [{"strokes": s3[:5].tolist()}, {"drawing": _qd_strokes(shapes[3], raw=True)}]}).encode(),
        json.dumps([{"strokes": s3[:3].tolist()}, {"polylines": [[[1, 2], [3, 4]]]}]).encode(),
    ]

    model_files = _tiny_model_files(d)
    for k, v in model_files.items():
        seeds[k].append(v)

    cfg = Config()
    cfg.data.paths = ["a.npz"]
    seeds["config"] += [cfg.to_json().encode(), b'{"model": {"dec_model": "hyper", "z_size": 16}, "train": {"batch_size": 8}}',
                        b"{}"]
    if shared is not None:
        seeds_from_shared(seeds, Path(shared))
    return seeds


def seeds_from_shared(seeds: dict[str, list[bytes]], shared: Path) -> None:
    """Add small real files of ../shared: a 40-sketch cut of aaron_sheep, QuickDraw lines,
    and one real Magenta model (read, never copied into the repository)."""
    from sketchrnn.data.npz import load_npz, save_npz

    npz = shared / "data" / "sketchrnn" / "aaron_sheep.npz"
    if npz.is_file():
        d = load_npz(npz, ["valid"])
        with tempfile.TemporaryDirectory() as t:
            save_npz(Path(t) / "cut.npz", {"train": [a.astype(np.int16) for a in d["valid"][:40]]})
            seeds["npz"].append((Path(t) / "cut.npz").read_bytes())
    for sub in ("raw", "simplified"):
        qd = sorted((shared / "data" / "quickdraw" / sub).glob("*.ndjson"))[:2]
        for f in qd:
            seeds["ndjson"].append(b"".join(f.read_bytes().splitlines(keepends=True)[:5]))
    mg = sorted((shared / "models" / "magenta").glob("*.json"))
    if mg:
        seeds["magenta"].append(min(mg, key=lambda p: p.stat().st_size).read_bytes())


# --------------------------------------------------------------------------- malicious inputs
def _evil_pickle_npy(marker: str) -> bytes:
    """An object-dtype .npy whose pickle calls os.system (would touch ``marker``)."""
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    arr = np.empty(2, dtype=object)
    arr[0] = np.zeros((3, 3), np.int16)
    arr[1] = Evil()
    buf = io.BytesIO()
    from numpy.lib import format as npy_format

    npy_format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (2,)})
    buf.write(pickle.dumps(arr, protocol=2))
    return buf.getvalue()


def malicious_inputs(marker: str | Path) -> dict[str, list[bytes]]:
    """Files that would run code when read unsafely: an npz and two checkpoints."""
    import torch

    marker = str(marker)

    class EvilExec:
        def __reduce__(self):
            import builtins

            return (builtins.exec, (f"open({marker!r}, 'w').write('pwned')",))

    class EvilSystem:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    out: dict[str, list[bytes]] = {"npz": [], "checkpoint": []}
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as zf:
        zf.writestr("train.npy", _evil_pickle_npy(marker))
    out["npz"].append(b.getvalue())
    for evil in (EvilExec(), EvilSystem()):
        b = io.BytesIO()
        torch.save({"format": "sketchrnn-checkpoint", "version": 1, "config": "{}", "model": {}, "scale_factor": 1.0,
                    "step": 0, "x": evil}, b)
        out["checkpoint"].append(b.getvalue())
    return out


# --------------------------------------------------------------------------- mutators
_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x2E, 0x0A, 0x22, 0x5B, 0x7B, 0x3C]


def mutate_bytes(data: bytes, rng: random.Random, n: int | None = None) -> bytes:
    """1-4 random byte-level edits: flip, set, delete, insert, duplicate, truncate, swap."""
    b = bytearray(data)
    for _ in range(n or rng.randint(1, 4)):
        op = rng.randrange(8)
        if not b:
            b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            continue
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.choice(_INTERESTING)
        elif op == 2:
            del b[i:i + rng.randint(1, 64)]
        elif op == 3:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 256)]
        elif op == 5:
            del b[rng.randrange(len(b) + 1):]
        elif op == 6:
            j = rng.randrange(len(b))
            k = rng.randint(1, 8)
            b[i:i + k], b[j:j + k] = b[j:j + k], b[i:i + k]
        else:  # overwrite a 2/4/8-byte little-endian integer with an extreme value
            w = rng.choice((2, 4, 8))
            v = rng.choice((0, 1, 2 ** (8 * w - 1) - 1, 2 ** (8 * w) - 1, rng.randrange(2 ** (8 * w))))
            b[i:i + w] = v.to_bytes(w, "little")
    return bytes(b[:MAX_INPUT])


def mutate_zip_member(data: bytes, rng: random.Random) -> bytes:
    """Mutate one member of a zip container and re-zip it with valid CRCs."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    except Exception:  # noqa: BLE001 - not a zip: fall back to byte mutation
        return mutate_bytes(data, rng)
    if not members:
        return mutate_bytes(data, rng)
    k = rng.randrange(len(members))
    name, content = members[k]
    op = rng.randrange(6)
    if op == 0:
        members.pop(k)
    elif op == 1:
        members.append((name.rsplit("/", 1)[0] + "/extra" if "/" in name else "extra.npy", content))
    else:
        members[k] = (name, mutate_bytes(content, rng))
    out = io.BytesIO()
    comp = zipfile.ZIP_DEFLATED if rng.random() < 0.5 else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", compression=comp) as zf:
        for n, c in members:
            zf.writestr(n, c)
    return out.getvalue()[:MAX_INPUT]


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    r = rng.randrange(11 if depth < 3 else 7)
    if r == 0:
        return None
    if r == 1:
        return rng.random() < 0.5
    if r == 2:
        return rng.choice((0, 1, -1, 2, 3, 255, 2 ** 31, 2 ** 63, -(2 ** 63), 10 ** 30, 10 ** 400))
    if r == 3:
        return rng.choice((0.5, -0.0, 1e-320, 1e308, -1e308, 3.4e38, float("nan"), float("inf"), float("-inf")))
    if r == 4:
        return rng.choice(("", "0", "1.5", "lstm", "hyper", "true", "NaN", "\x00", "é" * 3, "a" * 100))
    if r == 5:
        return []
    if r == 6:
        return {}
    if r in (7, 8):
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(("drawing", "strokes", "polylines", "sketches", "model", "data", "train", "x", "word")):
            _random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _nodes(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, list):
        for i, v in enumerate(obj[:50]):
            out += _nodes(v, path + (i,))
    elif isinstance(obj, dict):
        for k, v in list(obj.items())[:50]:
            out += _nodes(v, path + (k,))
    return out


def mutate_json_tree(obj: Any, rng: random.Random) -> Any:
    """One structural edit of a parsed JSON tree (returns the new tree)."""
    import copy

    obj = copy.deepcopy(obj)
    paths = _nodes(obj)
    path = rng.choice(paths)

    def get(p):
        v = obj
        for k in p:
            v = v[k]
        return v

    node = get(path)
    op = rng.randrange(9)
    if op == 0:
        new = _random_json(rng)
    elif op == 1:  # retype: number <-> string, list <-> dict
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            new = str(node)
        elif isinstance(node, str):
            try:
                new = float(node)
            except ValueError:
                new = len(node)
        elif isinstance(node, list):
            new = {str(i): v for i, v in enumerate(node)}
        elif isinstance(node, dict):
            new = list(node.values())
        else:
            new = [node]
    elif op == 2:  # wrap deeply
        new = node
        for _ in range(rng.choice((1, 2, 50))):
            new = [new]
    elif op == 3 and isinstance(node, list) and node:
        new = node + node[: rng.randint(1, len(node))]
    elif op == 4 and isinstance(node, list) and node:
        new = list(node)
        del new[rng.randrange(len(new))]
    elif op == 5 and isinstance(node, dict) and node:
        new = dict(node)
        new.pop(rng.choice(list(new)))
    elif op == 6 and isinstance(node, (int, float)) and not isinstance(node, bool):
        try:
            new = rng.choice((node * 1e300, -node, node + 0.5, float("nan"), 0, 10 ** 400, 1e-310))
        except OverflowError:  # node is an integer beyond float range
            new = -node
    elif op == 7 and isinstance(node, list):
        new = []
    else:
        new = _random_json(rng)
    if not path:
        return new
    parent = get(path[:-1])
    parent[path[-1]] = new
    return obj


def _dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, allow_nan=True).encode()
    except (ValueError, RecursionError):
        return b"[]"


def mutate_json(data: bytes, rng: random.Random, ndjson: bool = False) -> bytes:
    """Structural mutation of a JSON (or each line of an ndjson) document."""
    try:
        if ndjson:
            lines = [json.loads(x) for x in data.decode().splitlines() if x.strip()]
        else:
            lines = [json.loads(data)]
    except Exception:  # noqa: BLE001
        return mutate_bytes(data, rng)
    try:
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(lines)) if lines else 0
            if lines:
                lines[i] = mutate_json_tree(lines[i], rng)
    except RecursionError:
        pass
    docs = [_dumps(x) for x in lines] or [b"[]"]
    if rng.random() < 0.05:  # nesting deeper than Python's recursion limit, done on the text
        i = rng.randrange(len(docs))
        n = rng.choice((500, 990, 5000, 100000))
        key = rng.choice((b"", b'{"strokes":', b'{"drawing":', b'{"model":'))
        docs[i] = key + b"[" * n + docs[i] + b"]" * n + (b"}" if key else b"")
    if ndjson:
        return b"\n".join(docs)[:MAX_INPUT] + b"\n"
    return docs[0][:MAX_INPUT]


def mutate_checkpoint_payload(data: bytes, rng: random.Random) -> bytes:
    """Load a checkpoint, change its payload (types, shapes, values, config JSON), save it again."""
    import torch

    try:
        ck = torch.load(io.BytesIO(data), weights_only=True)
    except Exception:  # noqa: BLE001
        return mutate_bytes(data, rng)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        key = rng.choice(list(ck) + ["extra"])
        if op == 0:
            ck[key] = rng.choice((None, 0, -1, 2 ** 62, 1.5, float("nan"), "x", [], {}, [1, "a"], torch.zeros(3),
                                  True, {"a": torch.ones(2)}))
        elif op == 1:
            ck.pop(key, None)
        elif op == 2 and isinstance(ck.get("config"), str):
            ck["config"] = mutate_json(ck["config"].encode(), rng).decode("utf-8", "replace")
        elif op in (3, 4) and isinstance(ck.get("model"), dict) and any(
                isinstance(v, torch.Tensor) for v in ck["model"].values()):
            name = rng.choice([k for k, v in ck["model"].items() if isinstance(v, torch.Tensor)])
            t = ck["model"][name]
            ck["model"][name] = rng.choice((t.T.contiguous() if t.dim() == 2 else t[:-1], t * float("nan"), t.long(),
                                            t.to(torch.float16), torch.zeros(0), t.unsqueeze(0), "x",
                                            t.to(torch.complex64) if op == 4 else t * 1e30))
        else:
            ck["scale_factor"] = rng.choice((0.0, -1.0, float("inf"), float("nan"), "12", None, 1e-300, torch.tensor([1.0, 2.0])))
    b = io.BytesIO()
    try:
        torch.save(ck, b)
    except Exception:  # noqa: BLE001
        return mutate_bytes(data, rng)
    return b.getvalue()


def _random_svg(rng: random.Random) -> bytes:
    cmds = "MmLlHhVvCcSsQqTtAaZz"
    nums = ("0", "1", "-1", "1e308", "-1e308", "1e-320", "NaN", "inf", ".5.5", "1-2", "3", "255", "1e9")
    d = ["M", rng.choice(nums), rng.choice(nums)]
    for _ in range(rng.randint(0, 30)):
        d.append(rng.choice(cmds))
        d += [rng.choice(nums) for _ in range(rng.randint(0, 7))]
    tr = rng.choice(("", 'transform="scale(1e300)"', 'transform="rotate(45 1e308 0)"', 'transform="matrix(0 0 0 0 0 0)"',
                     'transform="skewX(90)"', 'transform="translate(NaN)"', 'transform="scale()"'))
    el = rng.choice((f'<path {tr} d="{" ".join(d)}"/>',
                     f'<polyline {tr} points="{" ".join(rng.choice(nums) for _ in range(rng.randint(0, 9)))}"/>',
                     f'<circle {tr} cx="{rng.choice(nums)}" cy="1" r="{rng.choice(nums)}"/>',
                     f'<rect {tr} x="0" y="0" width="{rng.choice(nums)}" height="{rng.choice(nums)}"/>'))
    return f'<svg xmlns="http://www.w3.org/2000/svg">{el * rng.randint(1, 3)}</svg>'.encode()


def generate(target: str, rng: random.Random) -> bytes:
    """A generated (not mutated) input for ``target``."""
    r = rng.random()
    if r < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if target == "svg":
        return _random_svg(rng)
    if target == "ndjson":
        return b"\n".join(_dumps({"drawing": _random_json(rng)} if rng.random() < 0.7 else _random_json(rng))
                          for _ in range(rng.randint(1, 3)))
    if target in JSON_TARGETS:
        return _dumps(_random_json(rng))
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 2000)))


def make_input(target: str, seeds: list[bytes], rng: random.Random) -> tuple[str, bytes]:
    """(strategy name, input bytes) for one fuzz iteration."""
    r = rng.random()
    if r < 0.15:
        return "generated", generate(target, rng)
    seed = rng.choice(seeds)
    if r < 0.25 and len(seeds) > 1:  # splice two seeds
        other = rng.choice(seeds)
        i, j = rng.randrange(len(seed) + 1), rng.randrange(len(other) + 1)
        return "splice", (seed[:i] + other[j:])[:MAX_INPUT]
    if target == "checkpoint" and r < 0.45:
        return "payload-structure", mutate_checkpoint_payload(seed, rng)
    if target in ZIP_TARGETS and r < 0.7:
        return "zip-member", mutate_zip_member(seed, rng)
    if target in JSON_TARGETS and r < 0.7:
        return "json-structure", mutate_json(seed, rng, ndjson=(target == "ndjson"))
    if target == "safetensors" and r < 0.6:  # mutate the JSON header only
        n = int.from_bytes(seed[:8], "little")
        try:
            hdr = json.loads(seed[8:8 + n])
            hdr = mutate_json_tree(hdr, rng)
            h = _dumps(hdr)
            return "header-structure", len(h).to_bytes(8, "little") + h + seed[8 + n:]
        except Exception:  # noqa: BLE001
            pass
    return "bytes", mutate_bytes(seed, rng)


# --------------------------------------------------------------------------- campaign
def _worker(target: str, seconds: float, timeout: float, seed: int, shared: str | None, state_dir: Path) -> None:
    """Run one target until ``seconds`` pass; write counts to ``state_dir/<target>.json``."""
    import torch

    torch.set_num_threads(1)
    import warnings

    warnings.simplefilter("ignore")
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-"))
    seeds = make_seeds(work / "seeds", shared)[target]
    marker = work / "PWNED"
    evil = malicious_inputs(marker).get(target, [])
    stats_path = state_dir / f"{target}.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {
        "target": target, "inputs": 0, "ok": 0, "error": 0, "bug": 0, "max_seconds": 0.0, "by_strategy": {},
        "bugs": [], "code_executed": False, "malicious_refused": 0, "error_types": {}}
    current = state_dir / f"{target}.current"

    def on_alarm(signum, frame):
        raise TimeoutError(f"input took longer than {timeout} s")

    signal.signal(signal.SIGALRM, on_alarm)
    t_end = time.time() + seconds
    k = 0
    while time.time() < t_end:
        if k < len(evil):
            strategy, data = "malicious", evil[k]
        elif k < len(evil) + len(seeds):
            strategy, data = "seed", seeds[k - len(evil)]
        else:
            strategy, data = make_input(target, seeds, rng)
        k += 1
        current.write_bytes(data)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            out = classify(target, data, work)
        except TimeoutError as e:
            out = Outcome("bug", f"hang: {e}", timeout)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if strategy == "malicious" and out.kind == "error":
            stats["malicious_refused"] += 1
        stats["inputs"] += 1
        stats[out.kind] += 1
        stats["max_seconds"] = max(stats["max_seconds"], out.seconds)
        s = stats["by_strategy"].setdefault(strategy, {"inputs": 0, "ok": 0, "error": 0, "bug": 0})
        s["inputs"] += 1
        s[out.kind] += 1
        if out.kind == "error":
            stats["error_types"][out.detail] = stats["error_types"].get(out.detail, 0) + 1
        if out.kind == "bug":
            bt = stats.setdefault("bug_types", {})
            key = out.detail.split(":")[0] if not out.detail.startswith("contract") else out.detail[:60]
            bt[key] = bt.get(key, 0) + 1
        if out.kind == "bug" and len(stats["bugs"]) < 50:
            keep = state_dir / f"{target}-bug-{stats['bug']}{SUFFIX[target]}"
            keep.write_bytes(data)
            stats["bugs"].append({"detail": out.detail, "strategy": strategy, "input": str(keep)})
        if marker.exists():
            stats["code_executed"] = True
        if stats["inputs"] % 25 == 0:
            stats_path.write_text(json.dumps(stats, indent=1))
    stats_path.write_text(json.dumps(stats, indent=1))
    current.unlink(missing_ok=True)


def _atheris_worker(target: str, seconds: float, shared: str | None, state_dir: Path) -> None:  # pragma: no cover
    """Coverage-guided fuzzing of one target with atheris (libFuzzer), seeded with the seed files."""
    import atheris

    with atheris.instrument_imports():
        import sketchrnn.checkpoint  # noqa: F401
        import sketchrnn.config  # noqa: F401
        import sketchrnn.data.io  # noqa: F401
        import sketchrnn.data.npz  # noqa: F401
        import sketchrnn.data.quickdraw  # noqa: F401
        import sketchrnn.interop.magenta  # noqa: F401
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix=f"atheris-{target}-"))
    corpus = work / "corpus"
    corpus.mkdir()
    for i, s in enumerate(make_seeds(work / "seeds", shared)[target]):
        (corpus / f"seed{i}").write_bytes(s)
    stats = {"target": target, "inputs": 0, "ok": 0, "error": 0, "bug": 0, "bugs": []}
    stats_path = state_dir / f"atheris-{target}.json"

    def one(data: bytes) -> None:
        out = classify(target, data, work)
        stats["inputs"] += 1
        stats[out.kind] += 1
        if out.kind == "bug" and len(stats["bugs"]) < 20:
            keep = state_dir / f"atheris-{target}-bug-{stats['bug']}{SUFFIX[target]}"
            keep.write_bytes(data)
            stats["bugs"].append({"detail": out.detail, "input": str(keep)})
        if stats["inputs"] % 50 == 0:
            stats_path.write_text(json.dumps(stats, indent=1))

    import atexit

    atexit.register(lambda: stats_path.write_text(json.dumps(stats, indent=1)))
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={int(seconds)}", "-max_len=65536",
                   "-rss_limit_mb=4096", "-timeout=10"], one)
    atheris.Fuzz()


def run_campaign(targets: list[str], seconds: float, timeout: float, seed: int, shared: str | None,
                 state_dir: Path, use_atheris: bool = False) -> dict[str, Any]:
    """Run every target for ``seconds`` in a worker process, restarting a worker that dies."""
    state_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for t in targets:
        t_end = time.time() + seconds
        crashes = []
        attempt = 0
        while time.time() < t_end - 1:
            left = t_end - time.time()
            mode = "--atheris-worker" if use_atheris else "--worker"
            cmd = [sys.executable, __file__, mode, t, "--seconds", f"{left:.1f}", "--timeout", str(timeout),
                   "--seed", str(seed + 1000 * attempt), "--state-dir", str(state_dir)]
            if shared:
                cmd += ["--shared", shared]
            env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            proc = subprocess.run(cmd, env=env, timeout=left + 120)
            attempt += 1
            if proc.returncode == 0 or use_atheris:
                break
            cur = state_dir / f"{t}.current"
            keep = state_dir / f"{t}-crash-{attempt}{SUFFIX[t]}"
            if cur.exists():
                cur.rename(keep)
            crashes.append({"returncode": proc.returncode, "input": str(keep)})
        name = f"atheris-{t}" if use_atheris else t
        p = state_dir / f"{name}.json"
        res = json.loads(p.read_text()) if p.exists() else {"target": t, "inputs": 0}
        res["worker_crashes"] = crashes
        if crashes:
            res["bug"] = res.get("bug", 0) + len(crashes)
        results[name] = res
        print(f"{name:>14}: {res.get('inputs', 0):7d} inputs  ok {res.get('ok', 0):6d}  error {res.get('error', 0):6d}  "
              f"bug {res.get('bug', 0):4d}  max {res.get('max_seconds', float('nan')):.2f} s  "
              f"crashes {len(crashes)}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", nargs="*", default=list(TARGETS), choices=TARGETS)
    ap.add_argument("--seconds", type=float, default=30.0, help="time per target")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds after which one input counts as a hang")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", default=None, help="path of ../shared to add real files as seeds")
    ap.add_argument("--state-dir", default=None, help="where counts and bug inputs go (default: a temp dir)")
    ap.add_argument("--out", default=None, help="write the summary JSON here")
    ap.add_argument("--atheris", action="store_true", help="coverage-guided with atheris instead of the mutators")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--atheris-worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    state_dir = Path(a.state_dir or tempfile.mkdtemp(prefix="fuzz-readers-"))
    if a.worker:
        _worker(a.worker, a.seconds, a.timeout, a.seed, a.shared, state_dir)
        return 0
    if a.atheris_worker:
        _atheris_worker(a.atheris_worker, a.seconds, a.shared, state_dir)
        return 0
    t0 = time.time()
    res = run_campaign(a.targets, a.seconds, a.timeout, a.seed, a.shared, state_dir, a.atheris)
    summary = {"seconds_per_target": a.seconds, "timeout": a.timeout, "seed": a.seed, "shared": bool(a.shared),
               "atheris": a.atheris, "wall_seconds": round(time.time() - t0, 1), "state_dir": str(state_dir),
               "results": res}
    if a.out:
        Path(a.out).write_text(json.dumps(summary, indent=1) + "\n")
    total_bugs = sum(r.get("bug", 0) for r in res.values())
    executed = any(r.get("code_executed") for r in res.values())
    print(f"total inputs {sum(r.get('inputs', 0) for r in res.values())}, bugs {total_bugs}, "
          f"code executed: {executed}; details in {state_dir}")
    return 1 if total_bugs or executed else 0


if __name__ == "__main__":
    sys.exit(main())
