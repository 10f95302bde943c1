"""Write the training data a GPU chunk carries: gpu_data/CLASS.npz (compressed).

../shared does not travel to the GPU machine and the working tree may carry 64 MiB in all, so
a chunk trains on the first N training sketches of a class (default 40,000 of 70,000) with the
full valid and test splits. A resumed model must keep the same file (its checkpoint holds the
scale factor computed on it). ``gpu_data/`` is ignored by git (.git/info/exclude).

    python benchmarks/make_gpu_data.py cat            # -> gpu_data/cat.npz (~20 MiB)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="class file in ../shared/data/distilled/ (cat, pig, yoga, rabbit)")
    ap.add_argument("--train", type=int, default=40000, help="first N training sketches")
    ap.add_argument("--src", default=None, help="source .npz (default ../shared/data/distilled/NAME.npz)")
    ap.add_argument("--out-dir", default="gpu_data")
    a = ap.parse_args()
    from sketchrnn.data import load_npz

    src = a.src or os.path.join("..", "shared", "data", "distilled", f"{a.name}.npz")
    splits = load_npz(src)
    out = {"train": splits["train"][: a.train], "valid": splits["valid"], "test": splits["test"]}
    os.makedirs(a.out_dir, exist_ok=True)
    path = os.path.join(a.out_dir, f"{a.name}.npz")

    def objects(seqs: list) -> np.ndarray:
        """Object array of (n, 3) arrays in the narrowest dtype that holds them exactly
        (the distilled files store float16 offsets, QuickDraw's int16)."""
        arr = np.empty(len(seqs), dtype=object)
        for i, s in enumerate(seqs):
            s = np.asarray(s)
            for dt in (np.int16, np.float16, np.float32):
                if np.array_equal(s.astype(dt).astype(s.dtype), s):
                    s = s.astype(dt)
                    break
            arr[i] = s
        return arr

    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **{k: objects(v) for k, v in out.items()})
    os.replace(tmp, path)
    print(f"wrote {path}: {len(out['train'])} / {len(out['valid'])} / {len(out['test'])} sketches, "
          f"{os.path.getsize(path) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
