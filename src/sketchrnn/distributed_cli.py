"""``sketchrnn pack``: convert ``.npz`` / QuickDraw ``.ndjson`` files into a packed,
memory-mapped corpus directory (:mod:`sketchrnn.data.packed`) that ``sketchrnn train``
accepts in ``--data`` / ``data.paths``. Registered into :mod:`sketchrnn.cli` on import.

Distributed training itself needs no verb: ``torchrun --nproc-per-node N -m sketchrnn
train ...`` (or ``torchrun ... $(which sketchrnn) train ...``) runs the ordinary ``train``
verb data-parallel (docs/SCALING.md).
"""

from __future__ import annotations

import argparse
import json
import sys

from .cli import _EXTRA_PARSERS, verb

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pack", help="convert .npz / QuickDraw .ndjson files into one memory-mapped corpus directory",
                       description="Pack sketches of many classes (one class per input file, named by its stem) into "
                                   "flat .npy arrays plus header.json, in one streaming pass (one input in memory at "
                                   "a time). Train on it with `sketchrnn train --data DIR`.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="sketch-rnn .npz files and/or QuickDraw .ndjson files")
    p.add_argument("--out", required=True, help="output directory (must not exist, or be empty)")
    p.add_argument("--max-offset", type=float, default=1000.0,
                   help="clamp used for the stored normalisation statistics (data.max_offset; default 1000)")
    p.add_argument("--valid-count", type=int, default=2500,
                   help=".ndjson inputs: drawings per file put in the valid split (default 2500, as Google's files)")
    p.add_argument("--test-count", type=int, default=2500, help=".ndjson inputs: drawings per file put in the test split")
    p.add_argument("--seed", type=int, default=0, help=".ndjson inputs: seed of the random split")
    p.add_argument("--simplify", choices=["auto", "always", "never"], default="auto",
                   help=".ndjson inputs: Google's simplification for raw drawings (auto), for all, or never")


@verb("pack")
def cmd_pack(a: argparse.Namespace) -> int:
    from .data.packed import pack

    simplify = {"auto": None, "always": True, "never": False}[a.simplify]
    header = pack(a.inputs, a.out, max_offset=a.max_offset, valid_count=a.valid_count, test_count=a.test_count,
                  seed=a.seed, simplify=simplify, log=lambda s: print(s, file=sys.stderr))
    print(json.dumps({"out": str(a.out), "dtype": header["dtype"], "classes": len(header["classes"]),
                      **{s: v["sketches"] for s, v in header["splits"].items()}}))
    return 0


if add_parsers not in _EXTRA_PARSERS:
    _EXTRA_PARSERS.append(add_parsers)
