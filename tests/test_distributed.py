"""Data-parallel training (DDP, gloo on CPU, world size 2): a 2-rank step equals a
one-process step on the same global batch, ranks stay identical, the non-finite skip is
agreed on, resume works across world sizes (both ways, and through the real torchrun CLI),
and the sharded loader slices the global permutation exactly."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from sketchrnn.config import Config, apply_overrides
from sketchrnn.data import BatchLoader, SketchData
from sketchrnn.distributed import ShardedLoader, rank_seed, shard_range
from sketchrnn.errors import ConfigError
from sketchrnn.train import Trainer

# Deterministic model (decoder-only, no dropout) and no augmentation: a 2-rank run must then
# equal a 1-process run on the same global batches up to float summation order.
EXACT = ["model.conditional=false", "model.use_recurrent_dropout=false", "model.dec_rnn_size=24",
         "model.num_mixture=3", "model.max_seq_len=64", "data.random_scale_factor=0",
         "data.augment_stroke_prob=0", "train.batch_size=8", "train.log_every=1", "train.eval_every=3",
         "train.save_every=3", "train.max_eval_sketches=16", "train.num_threads=1",
         "train.device=cpu", "train.learning_rate=3e-3"]
# The full training noise: VAE, recurrent dropout, augmentation, class embedding.
NOISY = ["model.enc_rnn_size=16", "model.dec_rnn_size=24", "model.z_size=8", "model.num_mixture=3",
         "model.max_seq_len=64", "model.class_conditional=true", "model.num_classes=2",
         "model.class_embedding_size=4", "train.batch_size=8", "train.log_every=1", "train.eval_every=2",
         "train.save_every=2", "train.max_eval_sketches=16", "train.num_threads=1", "train.device=cpu"]

WORKER = textwrap.dedent('''
    import os, shutil, sys
    import torch
    torch.set_num_threads(1)
    from sketchrnn.config import Config, apply_overrides
    from sketchrnn.train import Trainer

    out, data, packed, exact, noisy, plain_run = sys.argv[1:7]
    rank = int(os.environ["RANK"])

    def cfg(path, spec, *extra):
        return apply_overrides(Config(), [f"data.paths={path}", *spec.split(";"), *extra])

    # job 1: exact config, 3 steps (copy the checkpoint), then on to 6
    tr = Trainer(cfg(data, exact, "train.num_steps=6"), f"{out}/exact", progress=False)
    assert tr.loader.local_batch == 4 and tr.dist.world_size == 2
    tr.fit(num_steps=3)
    if rank == 0:
        shutil.copy(f"{out}/exact/last.pt", f"{out}/exact_step3.pt")
    tr.fit()
    torch.save(tr.model.state_dict(), f"{out}/exact_rank{rank}.pt")

    # job 1b: the unchanged `sketchrnn train` verb resumes a 1-process run (3 steps) on 2 ranks
    from sketchrnn.cli import main
    assert main(["train", "--data", data, "--out", plain_run, "--resume", "--no-progress",
                 "--set", *exact.split(";"), "train.num_steps=6"]) == 0

    # job 2: VAE + dropout + augmentation + class embedding, on a packed corpus
    tr = Trainer(cfg(packed, noisy, "train.num_steps=4"), f"{out}/noisy", progress=False)
    res = tr.fit()
    torch.save({"w": tr.model.state_dict(), "best": res["best_valid"], "valid": res["valid_loss"],
                "per_point": (res["valid_nll_per_point"], res["valid_recon_per_point"])},
               f"{out}/noisy_rank{rank}.pt")

    # job 3: rank 1 alone sees a non-finite loss at step 1 (gradients stay finite)
    tr = Trainer(cfg(data, exact, "train.num_steps=3"), f"{out}/skip", progress=False)
    loss_module = tr._ddp.module  # what DDP runs: the fast or the plain losses
    orig = loss_module.forward
    def poisoned(*a, **k):
        o = orig(*a, **k)
        if tr.step == 1:
            o["L_R"] = o["L_R"] + torch.tensor(float("nan"))
        return o
    if rank == 1:
        loss_module.forward = poisoned
    tr.fit()
    torch.save({"w": tr.model.state_dict(), "bad": tr.bad_total, "fast": loss_module.fast},
               f"{out}/skip_rank{rank}.pt")
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def cfg(path: Path, spec: list[str], *extra: str) -> Config:
    return apply_overrides(Config(), [f"data.paths={path}", *spec, *extra])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    from sketchrnn.data.packed import pack
    from sketchrnn.data.synthetic import write_synthetic_npz

    d = tmp_path_factory.mktemp("ddp-data")
    a = write_synthetic_npz(d / "shapes.npz", 64, 16, 16, seed=0)
    b = write_synthetic_npz(d / "more.npz", 48, 16, 16, seed=1)
    pack([a, b], d / "packed")
    return {"npz": a, "packed": d / "packed", "dir": d}


@pytest.fixture(scope="module")
def two_ranks(data, tmp_path_factory) -> Path:
    """One torchrun launch (2 CPU ranks, gloo) running WORKER's jobs; a plain 3-step run is
    made first for the worker to resume on 2 ranks through the CLI."""
    out = tmp_path_factory.mktemp("ddp-run")
    Trainer(cfg(data["npz"], EXACT, "train.num_steps=6"), out / "plain_then_2", progress=False).fit(num_steps=3)
    script = out / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           str(script), str(out), str(data["npz"]), str(data["packed"]), ";".join(EXACT), ";".join(NOISY),
           str(out / "plain_then_2")]
    try:
        p = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("torchrun with 2 ranks timed out")
    assert p.returncode == 0, f"torchrun failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def plain_exact(data, tmp_path_factory) -> dict[str, torch.Tensor]:
    """The same 6 steps in one plain process (no process group)."""
    out = tmp_path_factory.mktemp("plain")
    tr = Trainer(cfg(data["npz"], EXACT, "train.num_steps=6"), out / "run", progress=False)
    tr.fit()
    return tr.model.state_dict()


def _close(a: dict, b: dict, atol: float = 2e-6) -> float:
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= atol, f"max weight difference {worst:.3g} > {atol}"
    return worst


def test_two_ranks_equal_one_process_on_the_global_batch(two_ranks, plain_exact):
    w0 = torch.load(two_ranks / "exact_rank0.pt", weights_only=True)
    w1 = torch.load(two_ranks / "exact_rank1.pt", weights_only=True)
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k  # DDP keeps the replicas bit-identical
    # and the step is the one-process step on the same global batch (float summation order aside)
    _close(w0, plain_exact)
    # the weights did move between step 3 and 6 (the comparison is not between idle weights)
    first = torch.load(two_ranks / "exact_step3.pt", weights_only=True)["model"]
    assert max(float((first[k] - w0[k]).abs().max()) for k in w0) > 1e-4


def test_only_rank0_writes_and_metrics_are_global(two_ranks):
    run = two_ranks / "exact"
    assert sorted(p.name for p in run.iterdir()) == [".lock", "best.pt", "config.json", "last.pt", "metrics.csv"]
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 7  # one writer: header + 6 rows, no duplicates
    ck = torch.load(run / "last.pt", weights_only=True)
    assert ck["step"] == 6 and ck["world_size"] == 2
    assert ck["loader"]["batch_size"] == 8  # the global batch, not the per-rank slice


def test_noisy_training_keeps_ranks_identical(two_ranks, data):
    a = torch.load(two_ranks / "noisy_rank0.pt", weights_only=True)
    b = torch.load(two_ranks / "noisy_rank1.pt", weights_only=True)
    for k in a["w"]:
        assert torch.equal(a["w"][k], b["w"][k]), k
        assert torch.isfinite(a["w"][k]).all()
    assert "decoder.class_embedding.weight" in a["w"]
    assert a["valid"] == b["valid"]  # validation is all-reduced: every rank sees the same figure
    assert a["per_point"] == b["per_point"] and all(math.isfinite(v) for v in a["per_point"])
    from sketchrnn.checkpoint import load_model

    lm = load_model(two_ranks / "noisy" / "last.pt")
    assert lm.class_names == ["shapes", "more"] and lm.config.class_conditional


def test_non_finite_step_is_skipped_on_every_rank(two_ranks):
    a = torch.load(two_ranks / "skip_rank0.pt", weights_only=True)
    b = torch.load(two_ranks / "skip_rank1.pt", weights_only=True)
    assert a["bad"] == b["bad"] == 1
    assert a["fast"] and b["fast"]  # DDP wraps the fused fast path (train.fast defaults to true)
    for k in a["w"]:
        assert torch.equal(a["w"][k], b["w"][k]), k


def test_resume_of_a_2_rank_checkpoint_in_one_process(two_ranks, data, plain_exact, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(two_ranks / "exact_step3.pt", run / "last.pt")
    tr = Trainer(cfg(data["npz"], EXACT, "train.num_steps=6"), run, resume=True, progress=False)
    assert tr.step == 3
    tr.fit()
    _close(tr.model.state_dict(), plain_exact)


def test_cli_resumes_a_1_process_run_on_2_ranks(two_ranks, plain_exact):
    """`sketchrnn train --resume` (the unchanged verb) under torchrun, from a plain run."""
    ck = torch.load(two_ranks / "plain_then_2" / "last.pt", weights_only=True)
    assert ck["step"] == 6 and ck["world_size"] == 2
    _close(ck["model"], plain_exact)
    rows = (two_ranks / "plain_then_2" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 7 and rows[4].startswith("4,")  # 3 plain rows + 3 from rank 0 only


# --------------------------------------------------------------------------- in-process units
def _loader(data: SketchData, augment: bool, seed: int = 3, buckets: int = 0) -> BatchLoader:
    return BatchLoader(data, 5.0, 8, 64, augment=augment, random_scale_factor=0.15 if augment else 0.0,
                       augment_stroke_prob=0.1 if augment else 0.0, shuffle=True, seed=seed, length_buckets=buckets)


@pytest.fixture(scope="module")
def sdata(data) -> SketchData:
    return SketchData.from_files([data["npz"]], "train", 64)


@pytest.mark.parametrize("buckets", [0, 2])
def test_sharded_slices_concatenate_to_the_plain_global_batches(sdata, buckets):
    plain = _loader(sdata, augment=False, buckets=buckets)
    shards = [ShardedLoader(_loader(sdata, augment=False, buckets=buckets), r, 2) for r in range(2)]
    for _ in range(len(plain) + 3):  # across an epoch boundary
        ref = plain.next_batch()
        parts = [s.next_batch() for s in shards]
        assert torch.equal(torch.cat([p.strokes for p in parts]), ref.strokes)
        assert torch.equal(torch.cat([p.lengths for p in parts]), ref.lengths)
        assert torch.equal(torch.cat([p.class_ids for p in parts]), ref.class_ids)
    assert shards[0].state_dict() == shards[1].state_dict()
    assert shards[0].epoch == plain.epoch == 1 and shards[0].position == plain.position


def test_keyed_augmentation_is_the_same_global_batch_at_any_world_size(sdata):
    def global_batches(world: int, n: int) -> list[torch.Tensor]:
        ls = [ShardedLoader(_loader(sdata, augment=True), r, world) for r in range(world)]
        return [torch.cat([l.next_batch().strokes for l in ls]) for _ in range(n)]

    g2, g4 = global_batches(2, 3), global_batches(4, 3)
    for a, b in zip(g2, g4):
        assert torch.equal(a, b)
    # slot j of epoch e is augmented with augment_key(seed, e, j), as documented
    from sketchrnn.data import augment_strokes, random_scale, to_stroke5
    from sketchrnn.data.packed import EpochSampler
    from sketchrnn.distributed import augment_key

    perm = EpochSampler(len(sdata), 8, True, 3).next_indices()[0]
    for j in (0, 5):
        rng = augment_key(3, 0, j)
        s = augment_strokes(random_scale(sdata.strokes[perm[j]], 0.15, rng), 0.1, rng)
        assert torch.equal(g2[0][j], torch.from_numpy(to_stroke5(s, 64, 5.0)))
    plain = _loader(sdata, augment=False)
    assert not torch.equal(g2[0], plain.next_batch().strokes)  # augmentation did change the sketches


def test_loader_state_moves_between_plain_and_sharded(sdata):
    plain = _loader(sdata, augment=True)
    for _ in range(len(plain) + 2):
        plain.next_batch()
    state = plain.state_dict()
    sh = [ShardedLoader(_loader(sdata, augment=False), r, 2) for r in range(2)]
    for s in sh:
        s.load_state_dict(state)
    ref = _loader(sdata, augment=False)
    ref.load_state_dict(state)
    for _ in range(3):
        want = ref.next_batch()
        got = torch.cat([s.next_batch().strokes for s in sh])
        assert torch.equal(got, want.strokes)
    back = _loader(sdata, augment=True)
    back.load_state_dict(sh[0].state_dict())  # and back into a plain loader
    assert back.epoch == ref.epoch and back.position == ref.position


def test_batch_size_must_split_evenly_and_helpers(sdata):
    with pytest.raises(ConfigError, match="divisible"):
        ShardedLoader(_loader(sdata, augment=False), 0, 3)
    assert [shard_range(10, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 10)]
    seeds = {rank_seed(0, r, s) for r in range(3) for s in range(50)}
    assert len(seeds) == 150 and all(0 <= x < 2**63 for x in seeds)
    assert rank_seed(0, 1, 5) == rank_seed(0, 1, 5) != rank_seed(1, 1, 5)


def test_plain_run_has_no_process_group(data, tmp_path, monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    tr = Trainer(cfg(data["npz"], EXACT, "train.num_steps=1"), tmp_path / "run", progress=False)
    assert not tr.dist.enabled and tr.is_main and tr._ddp is None and isinstance(tr.loader, BatchLoader)
    assert not torch.distributed.is_initialized()
