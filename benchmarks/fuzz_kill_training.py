"""Kill `sketchrnn train` with SIGKILL again and again; resume each time; compare at the end.

One run of ``--steps N`` (tiny model, synthetic data, save_every=1, deterministic, one
thread) is killed at random moments -- ``--kills`` times; each process first trains 1-4
steps (metrics.csv rows), then is killed ``U(0, --max-wait)`` seconds later or, with
``--in-write``, at the next moment ``last.pt`` is being
written (a wrapper slows every checkpoint write to ~1 KiB/ms so the kill lands inside
it) -- and resumed with ``--resume`` after every kill. After each kill it records whether
``last.pt`` loads (``read_checkpoint`` + ``load_model``), which step it holds, and
whether a temp file shows the kill came inside a write. Finally the run is completed
and its weights and Adam moments are compared bit for bit with an uninterrupted run.

    python benchmarks/fuzz_kill_training.py --kills 20 --out benchmarks/fuzz_kill_results.json
    python benchmarks/fuzz_kill_training.py --kills 20 --in-write
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["model.enc_rnn_size=16", "model.dec_rnn_size=24", "model.z_size=8", "model.num_mixture=3",
        "model.max_seq_len=64", "train.batch_size=8", "train.log_every=1", "train.eval_every=10",
        "train.save_every=1", "train.max_eval_sketches=16", "train.deterministic=true"]

# Run by the child with --in-write: the CLI with every checkpoint write slowed down.
_SLOW_CLI = """
import os, sys, time
real = os.fdopen
class Slow:
    def __init__(self, f): self.f = f
    def write(self, data):
        mv = memoryview(data).cast("B")
        for i in range(0, len(mv), 1024):
            self.f.write(mv[i:i + 1024]); self.f.flush(); time.sleep(0.001)
        return len(mv)
    def __getattr__(self, n): return getattr(self.f, n)
    def __enter__(self): return self
    def __exit__(self, *e): return self.f.__exit__(*e)
os.fdopen = lambda *a, **k: Slow(real(*a, **k))
from sketchrnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cmd(out: Path, data: Path, steps: int, resume: bool, slow: bool) -> list[str]:
    head = [sys.executable, "-c", _SLOW_CLI] if slow else [sys.executable, "-m", "sketchrnn.cli"]
    return head + ["train", "--out", str(out), "--data", str(data), "--steps", str(steps), "--threads", "1",
                   "--no-progress", *(["--resume"] if resume else []), "--set", *TINY]


def _rows(metrics: Path) -> int:
    try:
        return max(len(metrics.read_bytes().splitlines()) - 1, 0)
    except OSError:
        return 0


def _step(path: Path) -> int | None:
    from sketchrnn.checkpoint import read_checkpoint

    return int(read_checkpoint(path)["step"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--max-wait", type=float, default=1.0, help="longest wait before a kill (s)")
    ap.add_argument("--in-write", action="store_true", help="kill while last.pt is being written")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    import torch

    from sketchrnn.checkpoint import load_model, read_checkpoint
    from sketchrnn.data.synthetic import write_synthetic_npz

    torch.set_num_threads(1)
    rng = random.Random(a.seed)
    work = Path(tempfile.mkdtemp(prefix="kill-training-"))
    data = write_synthetic_npz(work / "shapes.npz", 64, 16, 16, seed=0)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run = work / "run"
    last = run / "last.pt"
    t0 = time.time()
    ref = subprocess.Popen(_cmd(work / "ref", data, a.steps, False, False), env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    records = []
    for k in range(a.kills):
        resume = last.exists()
        p = subprocess.Popen(_cmd(run, data, a.steps, resume, a.in_write), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        # let this process train a random 1-4 steps (its first steps come after ~5 s of start-up)
        rows0, deadline = _rows(run / "metrics.csv"), time.time() + 120
        want = rows0 + rng.randint(1, 4)
        while p.poll() is None and time.time() < deadline and _rows(run / "metrics.csv") < want:
            time.sleep(0.005)
        if a.in_write:  # then wait for a write in progress: a temp file beside last.pt
            while p.poll() is None and time.time() < deadline and not list(run.glob(".last.pt.*.tmp")):
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.02))
        else:  # then a random moment (steps, evaluations, saves)
            time.sleep(rng.uniform(0.0, a.max_wait))
        finished = p.poll() is not None
        p.send_signal(signal.SIGKILL)
        p.wait()
        tmp = sorted(run.glob(".*.tmp"))
        rec = {"kill": k, "finished_before_kill": finished, "temp_file_left": bool(tmp), "last_pt": "absent"}
        if last.exists():
            try:
                rec["step"] = _step(last)
                load_model(last)
                rec["last_pt"] = "loads"
            except Exception as e:  # noqa: BLE001 - this is what is measured
                rec["last_pt"] = f"BROKEN: {type(e).__name__}: {e}"
        for f in tmp:  # what a kill inside a write leaves: a hidden temp file, never last.pt
            f.unlink()
        records.append(rec)
        print(json.dumps(rec), flush=True)
        if finished:
            break
    res = subprocess.run(_cmd(run, data, a.steps, last.exists(), False), env=env, capture_output=True, text=True)
    ref.wait()
    ra, rb = read_checkpoint(work / "ref" / "last.pt"), read_checkpoint(last)
    same_w = ra["model"].keys() == rb["model"].keys() and all(torch.equal(ra["model"][n], rb["model"][n])
                                                              for n in ra["model"])
    sa, sb = ra["optimizer"]["state"], rb["optimizer"]["state"]
    same_adam = sa.keys() == sb.keys() and all(torch.equal(sa[i][m], sb[i][m]) for i in sa
                                               for m in ("exp_avg", "exp_avg_sq"))
    summary = {
        "kills": len(records), "in_write_mode": a.in_write, "steps": a.steps,
        "kills_inside_a_write": sum(r["temp_file_left"] for r in records),
        "last_pt_loads_after_kill": sum(r["last_pt"] == "loads" for r in records),
        "last_pt_absent_after_kill": sum(r["last_pt"] == "absent" for r in records),
        "last_pt_broken_after_kill": sum(r["last_pt"].startswith("BROKEN") for r in records),
        "final_resume_rc": res.returncode, "final_step": rb["step"], "reference_step": ra["step"],
        "weights_bitwise_equal": same_w, "adam_bitwise_equal": same_adam,
        "wall_seconds": round(time.time() - t0, 1), "records": records,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "records"}, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(summary, indent=1) + "\n")
    ok = summary["last_pt_broken_after_kill"] == 0 and same_w and same_adam and res.returncode == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
