"""benchmarks/make_gpu_data.py: the compact file a GPU call carries gives back the exact sketches."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sketchrnn.data import load_npz

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "make_gpu_data.py"


def _module():
    spec = importlib.util.spec_from_file_location("make_gpu_data", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sketches(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        m = int(rng.integers(1, 40))
        s = np.zeros((m, 3), np.float32)
        s[:, :2] = (rng.normal(0, 30, (m, 2))).astype(np.float16)  # exact float16 values, as the distilled files
        s[:, 2] = rng.random(m) < 0.2
        s[-1, 2] = 1
        out.append(s)
    return out


def test_sketches_xz_round_trips_exactly_and_expands_to_a_loadable_npz(tmp_path):
    mod = _module()
    rng = np.random.default_rng(0)
    splits = {"train": _sketches(rng, 50), "valid": _sketches(rng, 7), "test": _sketches(rng, 5)}
    blob = mod.encode(splits)
    back = mod.decode(blob)
    assert list(back) == ["train", "valid", "test"]
    for k in splits:
        assert len(back[k]) == len(splits[k])
        for a, b in zip(back[k], splits[k]):
            assert np.array_equal(a.astype(np.float32), b)
    src = tmp_path / "toy.sketches.xz"
    src.write_bytes(blob)
    r = subprocess.run([sys.executable, str(SCRIPT), "--expand", str(src)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = load_npz(tmp_path / "expanded" / "toy.npz")  # the file name is the class name models record
    for k in splits:
        assert len(loaded[k]) == len(splits[k])
        for a, b in zip(loaded[k], splits[k]):
            assert np.array_equal(np.asarray(a, np.float32), b)


def test_sketches_xz_refuses_what_it_cannot_hold_exactly_and_damaged_files():
    mod = _module()
    s = np.array([[0.1, 0.2, 0.0], [1.0, 2.0, 1.0]], np.float32)  # 0.1 is not a float16 value
    with pytest.raises(ValueError, match="float16"):
        mod.encode({"train": [s]})
    good = mod.encode({"train": _sketches(np.random.default_rng(1), 3)})
    import lzma

    raw = lzma.decompress(good)
    with pytest.raises(ValueError, match="inconsistent"):
        mod.decode(lzma.compress(raw[:-1]))
    with pytest.raises(ValueError, match="magic"):
        mod.decode(lzma.compress(b"x" + raw))
