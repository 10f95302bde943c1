"""Training loop: schedules, exact resume, best checkpoint, fault handling, real-data loss drop."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sketchrnn.config import Config, apply_overrides
from sketchrnn.errors import ConfigError, TrainingError
from sketchrnn.train import Trainer, kl_weight_at, learning_rate_at

TINY = ["model.enc_rnn_size=16", "model.dec_rnn_size=24", "model.z_size=8", "model.num_mixture=3",
        "model.hyper_rnn_size=8", "model.hyper_embedding_size=4", "model.max_seq_len=64",
        "train.batch_size=8", "train.log_every=1", "train.eval_every=3", "train.save_every=3",
        "train.max_eval_sketches=16", "train.deterministic=true"]


@pytest.fixture(scope="module")
def shapes_npz(tmp_path_factory) -> Path:
    from sketchrnn.data.synthetic import write_synthetic_npz

    p = tmp_path_factory.mktemp("data") / "shapes.npz"
    write_synthetic_npz(p, 64, 16, 16, seed=0)
    return p


def tiny_cfg(data: Path, *extra: str) -> Config:
    return apply_overrides(Config(), [f"data.paths={data}", *TINY, *extra])


def test_schedules_match_magenta_formulas():
    cfg = Config()
    assert learning_rate_at(cfg, 0) == pytest.approx(1e-3)
    assert learning_rate_at(cfg, 10_000) == pytest.approx((1e-3 - 1e-5) * 0.9999 ** 10_000 + 1e-5)
    assert learning_rate_at(cfg, 10**7) == pytest.approx(1e-5, rel=1e-6)
    assert kl_weight_at(cfg, 0) == pytest.approx(0.01)
    # a resumed phase's own schedule: lr0 until decay_start, then the decay counts from there
    later = apply_overrides(Config(), ["train.learning_rate=2e-5", "train.min_learning_rate=1e-8",
                                       "train.decay_rate=0.99", "train.decay_start=36000"])
    assert learning_rate_at(later, 30_000) == pytest.approx(2e-5)
    assert learning_rate_at(later, 36_000) == pytest.approx(2e-5)
    assert learning_rate_at(later, 36_100) == pytest.approx((2e-5 - 1e-8) * 0.99 ** 100 + 1e-8)
    assert kl_weight_at(cfg, 20_000) == pytest.approx(0.5 - 0.49 * 0.99995 ** 20_000)


@pytest.mark.parametrize("bad", ["train.decay_rate=0", "train.decay_rate=1.5", "train.decay_start=-1"])
def test_schedule_settings_are_checked(bad):
    with pytest.raises(ConfigError, match=bad.split("=")[0]):
        apply_overrides(Config(), [bad]).validate()


@pytest.mark.parametrize("dec_model,ema,sync", [("lstm", 0.0, "step"), ("layer_norm", 0.0, "step"),
                                                ("hyper", 0.0, "step"), ("lstm", 0.9, "step"), ("lstm", 0.9, "log")])
def test_resume_is_exact(tmp_path, shapes_npz, dec_model, ema, sync):
    """3 steps + resume + 3 steps == 6 uninterrupted steps, bit for bit (CPU, deterministic);
    with train.ema_decay the weight average too; with train.host_sync=log (fused Adam, no
    per-step wait) as well."""
    cfg = tiny_cfg(shapes_npz, f"model.dec_model={dec_model}", "train.num_steps=6", f"train.ema_decay={ema}",
                   f"train.host_sync={sync}")
    full = Trainer(cfg, tmp_path / "full", progress=False)
    full.fit()
    part = Trainer(cfg, tmp_path / "part", progress=False)
    part.fit(num_steps=3)
    resumed = Trainer(cfg, tmp_path / "part", resume=True, progress=False)
    assert resumed.step == 3
    resumed.fit()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and the optimiser moments too
    sa, sb = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    for k in sa:
        assert torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"])
    if ema:
        assert resumed.ema_updates == full.ema_updates == 6
        for a, b in zip(full.ema, resumed.ema):
            assert torch.equal(a, b)
    else:
        assert full.ema is None and resumed.ema is None


def test_run_dir_files_and_best_checkpoint(tmp_path, shapes_npz):
    cfg = tiny_cfg(shapes_npz, "train.num_steps=6")
    tr = Trainer(cfg, tmp_path / "run", argv=["sketchrnn", "train"], progress=False)
    res = tr.fit()
    for name in ("config.json", "argv.txt", "metrics.csv", "last.pt", "best.pt"):
        assert (tmp_path / "run" / name).is_file(), name
    assert math.isfinite(res["best_valid"])
    rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 7


def test_matmul_precision_is_a_cuda_setting_only(tmp_path, shapes_npz):
    """train.matmul_precision=high (TF32) sets torch's process-wide precision on CUDA only: a
    CPU run leaves it at full fp32 (and trains)."""
    before = torch.get_float32_matmul_precision()
    cfg = tiny_cfg(shapes_npz, "train.num_steps=2", "train.matmul_precision=high", "train.device=cpu")
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    assert torch.get_float32_matmul_precision() == before == "highest"


@pytest.mark.parametrize("reuse", [True, False])
def test_reuse_heap_is_asked_for_on_the_cpu_only_when_configured(tmp_path, shapes_npz, monkeypatch, reuse):
    """train.reuse_heap (default true) keeps big freed blocks in the heap on a CPU (glibc
    mallopt); false leaves the allocator alone."""
    import sketchrnn.train as train_mod

    calls = []
    monkeypatch.setattr(train_mod, "_reuse_heap", lambda: calls.append(1) or True)
    cfg = tiny_cfg(shapes_npz, "train.num_steps=1", "train.device=cpu", f"train.reuse_heap={str(reuse).lower()}")
    Trainer(cfg, tmp_path / "run", progress=False).release()
    assert len(calls) == (1 if reuse else 0)


def test_reuse_heap_takes_effect_with_glibc():
    import platform

    from sketchrnn.train import _reuse_heap

    if platform.system() != "Linux" or not platform.libc_ver()[0].startswith("glibc"):
        pytest.skip("mallopt is glibc's")
    assert _reuse_heap() is True
    x = torch.empty(40 * 2**20 // 4)  # 40 MB: above any mmap threshold, served from the heap now
    x.fill_(1.0)
    assert float(x[-1]) == 1.0


def test_one_trainer_per_run_directory(tmp_path, shapes_npz):
    """A second trainer on a run directory in use (e.g. a --resume while the first still runs)
    is refused with a one-line error; once the first is done, resuming works."""
    cfg = tiny_cfg(shapes_npz, "train.num_steps=2")
    first = Trainer(cfg, tmp_path / "run", progress=False)
    first.fit(1)  # releases the lock on return ...
    first._lock_run_dir()  # ... and takes it again, as a trainer that is still running holds it
    with pytest.raises(ConfigError, match="in use by another training process"):
        Trainer(cfg, tmp_path / "run", resume=True, progress=False)
    first.release()
    assert Trainer(cfg, tmp_path / "run", resume=True, progress=False).fit()["step"] == 2


def test_refuses_to_overwrite_a_run_without_resume(tmp_path, shapes_npz):
    cfg = tiny_cfg(shapes_npz, "train.num_steps=3")
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(cfg, tmp_path / "run", progress=False)


def test_resume_refuses_a_different_model(tmp_path, shapes_npz):
    Trainer(tiny_cfg(shapes_npz, "train.num_steps=3"), tmp_path / "run", progress=False).fit()
    with pytest.raises(ConfigError, match="dec_rnn_size differ"):
        Trainer(tiny_cfg(shapes_npz, "model.dec_rnn_size=32"), tmp_path / "run", resume=True, progress=False)


def _poison_losses(tr: Trainer, monkeypatch, factor: float) -> None:
    """From now on every training loss of ``tr`` is multiplied by ``factor`` (nan / inf)."""
    orig = tr._losses

    def poisoned(*a, **k):
        out = orig(*a, **k)
        out["L_R"] = out["L_R"] * factor
        return out

    monkeypatch.setattr(tr, "_losses", poisoned)


@pytest.mark.parametrize("sync", ["step", "log"])
def test_non_finite_steps_are_skipped_then_stop(tmp_path, shapes_npz, monkeypatch, sync):
    """Non-finite steps leave the weights (and with host_sync=log, where the device skips them,
    Adam's state and the weight average) untouched, are counted, and stop training after
    max_bad_steps in a row."""
    cfg = tiny_cfg(shapes_npz, "train.num_steps=50", "train.max_bad_steps=4", f"train.host_sync={sync}",
                   "train.ema_decay=0.5", "train.log_every=5")
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    assert tr._deferred == (sync == "log")
    tr.fit(num_steps=3)  # a good checkpoint exists
    good = {k: v.clone() for k, v in tr.model.state_dict().items()}
    adam = {k: {n: t.clone() for n, t in st.items()} for k, st in tr.optimizer.state_dict()["state"].items()}
    ema = [e.clone() for e in tr.ema]
    _poison_losses(tr, monkeypatch, float("nan"))
    with pytest.raises(TrainingError, match="non-finite"):
        tr.fit()
    assert tr.bad_total == 4
    # weights untouched by the skipped steps, and last.pt still loads
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, good[k])
    for k, st in tr.optimizer.state_dict()["state"].items():
        for n, t in st.items():
            assert torch.equal(t, adam[k][n]), (k, n)
    for e, e0 in zip(tr.ema, ema):
        assert torch.equal(e, e0)
    from sketchrnn.checkpoint import load_model

    saved = load_model(tmp_path / "run" / "last.pt")  # with train.ema_decay: the average
    for (k, v), e in zip(saved.model.state_dict().items(), ema):
        assert torch.equal(v, e), k


@pytest.mark.slow
def test_short_training_on_aaron_sheep_lowers_validation_loss(tmp_path, shared_dir):
    """A small LSTM VAE, 120 steps of batch 32 on real sheep: validation L_R must fall by >= 0.5 nats."""
    data = shared_dir / "data/sketchrnn/aaron_sheep.npz"
    cfg = apply_overrides(Config(), [f"data.paths={data}", "model.enc_rnn_size=64", "model.dec_rnn_size=128",
                                     "model.z_size=16", "model.num_mixture=10", "train.batch_size=32",
                                     "train.num_steps=120", "train.eval_every=120", "train.save_every=120",
                                     "train.max_eval_sketches=128", "train.learning_rate=3e-3"])
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    before = tr.validate()["valid_L_R"]
    after = tr.fit()["valid_L_R"]
    print(f"aaron_sheep valid L_R: {before:.3f} -> {after:.3f}")
    assert after < before - 0.5


def test_class_conditional_model_samples_each_class(tmp_path, shapes_npz):
    """Two files -> two classes; the class-conditional decoder samples per class and refuses a missing id."""
    import shutil

    from sketchrnn.api import sample
    from sketchrnn.checkpoint import load_model
    from sketchrnn.errors import DataError

    other = tmp_path / "other.npz"
    shutil.copy(shapes_npz, other)
    cfg = apply_overrides(Config(), [f"data.paths={shapes_npz},{other}", *TINY, "model.class_conditional=true",
                                     "model.num_classes=2", "model.class_embedding_size=4", "train.num_steps=2"])
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    lm = load_model(tmp_path / "run" / "last.pt")
    assert lm.class_names == ["shapes", "other"]
    for cls in ("shapes", 1):
        out = sample(lm, n=2, temperature=0.5, seed=0, class_id=cls)
        assert len(out) == 2 and all(s.ndim == 2 and s.shape[1] == 3 for s in out)
    with pytest.raises(DataError, match="class-conditional"):
        sample(lm, n=1, seed=0)
    with pytest.raises(DataError, match="not one of"):
        sample(lm, n=1, seed=0, class_id="zebra")


def test_init_from_fine_tunes_from_given_weights(tmp_path, shapes_npz):
    """train.init_from: the weights and the data units of another model, a fresh optimiser and
    schedule; model settings that shape weights must match; resume ignores it."""
    base = Trainer(tiny_cfg(shapes_npz, "train.num_steps=3"), tmp_path / "base", progress=False)
    base.fit()
    init = str(tmp_path / "base" / "last.pt")
    cfg = tiny_cfg(shapes_npz, f"train.init_from={init}", "train.num_steps=2", "model.max_seq_len=48",
                   "data.random_scale_factor=0.3")
    ft = Trainer(cfg, tmp_path / "ft", progress=False)
    assert ft.step == 0 and ft.scale_factor == base.scale_factor
    for k, v in base.model.state_dict().items():
        assert torch.equal(ft.model.state_dict()[k], v), k  # max_seq_len may differ: it shapes no weight
    assert not ft.optimizer.state_dict()["state"]
    ft.fit()
    assert not torch.equal(ft.model.decoder.output.weight, base.model.decoder.output.weight)
    resumed = Trainer(cfg, tmp_path / "ft", resume=True, progress=False)  # resume: the run's own state
    assert resumed.step == 2 and torch.equal(resumed.model.decoder.output.weight, ft.model.decoder.output.weight)
    with pytest.raises(ConfigError) as e:
        Trainer(tiny_cfg(shapes_npz, f"train.init_from={init}", "model.dec_rnn_size=32"), tmp_path / "bad",
                progress=False)
    assert "dec_rnn_size" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("mode", ["full", "no-first-moment", "weights-only"])
def test_compact_resume_checkpoints(tmp_path, shapes_npz, mode, capsys):
    """`sketchrnn compact-checkpoint` keeps the most optimiser state that fits; a run resumes
    from each form: exactly (full), with Adam's momentum at zero (second moments kept), or
    with a fresh Adam and a learning-rate warm-up (weights only)."""
    import json

    import io

    from sketchrnn.checkpoint import RESUME_MODES, _with_resume_mode, read_checkpoint
    from sketchrnn.cli import main
    from sketchrnn.train import LR_RESTART_WARMUP

    cfg = tiny_cfg(shapes_npz, "model.dec_rnn_size=48", "train.num_steps=6")
    Trainer(cfg, tmp_path / "run", progress=False).fit(num_steps=3)
    modes = [m for m in RESUME_MODES if m != "average-only"]  # this run keeps no weight average
    sizes = []
    for m in modes:
        buf = io.BytesIO()
        torch.save(_with_resume_mode(read_checkpoint(tmp_path / "run" / "last.pt"), m), buf)
        sizes.append(buf.tell())
    assert sizes == sorted(sizes, reverse=True) and sizes[1] < 0.6 * sizes[0]
    max_mb = (sizes[modes.index(mode)] + 1000) / 2**20  # room for this mode, not the one before
    out = tmp_path / "resume" / "last.pt"
    out.parent.mkdir()
    assert main(["compact-checkpoint", str(tmp_path / "run" / "last.pt"), "--out", str(out), "--max-mb",
                 str(max_mb)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["resume_mode"] == mode and out.stat().st_size == info["bytes"] <= max_mb * 2**20
    ck = read_checkpoint(out)
    weights = read_checkpoint(tmp_path / "run" / "last.pt")["model"]
    assert all(torch.equal(ck["model"][k], v) and v.dtype == torch.float32 for k, v in weights.items())
    logs = []
    tr = Trainer(cfg, tmp_path / "resume", resume=True, progress=False, log=logs.append)
    assert tr.step == 3
    st = tr.optimizer.state_dict()["state"]
    if mode == "weights-only":
        assert not st and tr.lr_factor() == pytest.approx(1 / LR_RESTART_WARMUP)
    else:
        assert st and tr.lr_factor() == 1.0
        assert all(s["exp_avg_sq"].dtype == torch.float32 for s in st.values())
        assert all((s["exp_avg"] == 0).all() for s in st.values()) == (mode == "no-first-moment")
    assert any("compact checkpoint" in line for line in logs) == (mode != "full")
    tr.fit()
    assert tr.step == 6
    if mode == "weights-only":  # the warm-up survives a later (full) checkpoint
        again = Trainer(cfg, tmp_path / "resume", resume=True, progress=False)
        assert again.lr_restart_step == 3 and again.lr_factor() == pytest.approx(4 / LR_RESTART_WARMUP)


def test_average_only_resume_checkpoint(tmp_path, shapes_npz, capsys):
    """A run with a weight average whose weights-only form is too big compacts to average-only:
    the average becomes the (float32) weights, no optimiser state and no second copy; the model
    it loads as is unchanged, and a resume warms the learning rate up and starts a new average there."""
    import io
    import json

    from sketchrnn.checkpoint import CHECKPOINT_FORMAT, _with_resume_mode, load_model, read_checkpoint
    from sketchrnn.cli import main
    from sketchrnn.train import LR_RESTART_WARMUP

    cfg = tiny_cfg(shapes_npz, "model.dec_rnn_size=48", "train.num_steps=6", "train.ema_decay=0.5")
    Trainer(cfg, tmp_path / "run", progress=False).fit(num_steps=3)
    src = read_checkpoint(tmp_path / "run" / "last.pt")
    assert any(not torch.equal(src["ema"][k], v) for k, v in src["model"].items())  # the two copies differ
    buf = io.BytesIO()
    torch.save({**_with_resume_mode(src, "weights-only"), "format": CHECKPOINT_FORMAT, "version": 1}, buf)
    out = tmp_path / "resume" / "last.pt"
    out.parent.mkdir()
    assert main(["compact-checkpoint", str(tmp_path / "run" / "last.pt"), "--out", str(out),
                 "--max-mb", str((buf.tell() - 1000) / 2**20)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["resume_mode"] == "average-only" and info["bytes"] < 0.6 * buf.tell()
    ck = read_checkpoint(out)
    assert "optimizer" not in ck and "ema" not in ck
    assert ck["model"].keys() == src["ema"].keys()
    assert all(torch.equal(ck["model"][k], v) and ck["model"][k].dtype == torch.float32 for k, v in src["ema"].items())
    before = load_model(tmp_path / "run" / "last.pt").model.state_dict()  # the run's model is its average
    after = load_model(out).model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    logs = []
    tr = Trainer(cfg, tmp_path / "resume", resume=True, progress=False, log=logs.append)
    assert tr.step == 3 and not tr.optimizer.state_dict()["state"]
    assert tr.lr_factor() == pytest.approx(1 / LR_RESTART_WARMUP)
    assert any("average-only" in line and "weight average" in line for line in logs)
    assert all(torch.equal(e, w.detach().float()) for e, w in zip(tr.ema, tr._ema_src))
    # the average goes on at its age (3 updates), not restarted: its warm-up does not let the
    # restarted Adam's first steps replace it
    assert ck["ema_updates"] == src["ema_updates"] == 3 and tr.ema_updates == 3
    assert any("goes on" in line and "3 updates" in line for line in logs)
    avg0 = [e.clone() for e in tr.ema]
    tr.fit(num_steps=4)
    d = min(0.5, (1 + 3) / (10 + 3))
    for e, a, w in zip(tr.ema, avg0, tr._ema_src):
        torch.testing.assert_close(e, d * a + (1 - d) * w.detach().float(), rtol=1e-6, atol=1e-7)
    tr.fit()
    assert tr.step == 6
    # an average-only file written before the count was kept: the average is taken as warmed up
    from sketchrnn.checkpoint import save_checkpoint
    from sketchrnn.train import _seasoned_ema_updates

    old_form = {k: v for k, v in ck.items() if k != "ema_updates"}  # the compact file as read before the resume
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    save_checkpoint(old_dir / "last.pt", old_form)
    tr_old = Trainer(cfg, old_dir, resume=True, progress=False, log=[].append)
    assert tr_old.ema_updates == _seasoned_ema_updates(0.5) == 8
    # a run without an average has no such form: below weights-only it still refuses in one line
    Trainer(tiny_cfg(shapes_npz, "model.dec_rnn_size=48", "train.num_steps=2"), tmp_path / "plain",
            progress=False).fit()
    rc = main(["compact-checkpoint", str(tmp_path / "plain" / "last.pt"), "--out", str(tmp_path / "o.pt"),
               "--max-mb", "0.001"])
    err = capsys.readouterr().err
    assert rc != 0 and "weights alone" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(Exception, match="weight average"):
        _with_resume_mode(read_checkpoint(tmp_path / "plain" / "last.pt"), "average-only")


def test_compact_checkpoint_refuses_what_cannot_fit(tmp_path, shapes_npz, capsys):
    from sketchrnn.cli import main

    Trainer(tiny_cfg(shapes_npz, "train.num_steps=2"), tmp_path / "run", progress=False).fit()
    rc = main(["compact-checkpoint", str(tmp_path / "run" / "last.pt"), "--out", str(tmp_path / "o.pt"),
               "--max-mb", "0.001"])
    err = capsys.readouterr().err
    assert rc != 0 and "weights alone" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.pt").exists()


def test_time_limited_chunk_stops_validates_and_resumes(tmp_path, shapes_npz, monkeypatch):
    """train.max_minutes: the chunk stops at the first step past the limit, validates there
    (best.pt reflects its last step even between eval_every), saves, and --resume goes on."""
    import csv

    import sketchrnn.train as train_mod

    clock = {"t": 1000.0}

    def fake_time() -> float:  # every call advances 1 s: the limit (0.05 min = 3 s) passes early
        clock["t"] += 1.0
        return clock["t"]

    monkeypatch.setattr(train_mod.time, "time", fake_time)
    cfg = tiny_cfg(shapes_npz, "train.num_steps=50", "train.eval_every=40", "train.save_every=40",
                   "train.max_minutes=0.05")
    res = Trainer(cfg, tmp_path / "run", progress=False).fit()
    stopped = res["step"]
    assert 0 < stopped < 40  # stopped by the clock, before any regular validation
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert rows[-1]["step"] == str(stopped) and rows[-1]["valid_loss"] != ""
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["step"] == stopped
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == stopped
    again = Trainer(cfg, tmp_path / "run", resume=True, progress=False).fit()
    assert again["step"] > stopped


def test_a_compact_checkpoint_compacts_further_never_back(tmp_path, shapes_npz):
    from sketchrnn.checkpoint import _with_resume_mode, compact_for_resume

    Trainer(tiny_cfg(shapes_npz, "train.num_steps=2"), tmp_path / "run", progress=False).fit()
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    nfm = _with_resume_mode(ck, "no-first-moment")
    c, mode, _ = compact_for_resume(nfm, 10 * 2**20)  # fits as it is: stays no-first-moment
    assert mode == "no-first-moment" and "exp_avg" not in next(iter(c["optimizer"]["state"].values()))
    wo = _with_resume_mode(ck, "weights-only")
    assert compact_for_resume(wo, 10 * 2**20)[1] == "weights-only"  # not "full": nothing comes back
    nfm_size = compact_for_resume(nfm, 10 * 2**20)[2]
    c, mode, size = compact_for_resume(nfm, nfm_size - 1)  # a limit below the no-first-moment file
    assert mode == "weights-only" and size < nfm_size and "optimizer" not in c


def test_an_average_only_checkpoint_compacts_again(tmp_path, shapes_npz, capsys):
    """An average-only file (what `compact-checkpoint` and the weight-average scripts write) passes
    through `compact-checkpoint` again unchanged when it fits, and a limit it cannot meet names
    its real size (it once said "0 MiB": the average-only form was skipped for lack of an 'ema')."""
    import re

    from sketchrnn.checkpoint import _with_resume_mode, compact_for_resume, read_checkpoint, save_checkpoint
    from sketchrnn.cli import main
    from sketchrnn.errors import ModelFileError

    Trainer(tiny_cfg(shapes_npz, "train.ema_decay=0.9", "train.num_steps=2"), tmp_path / "run", progress=False).fit()
    ck = read_checkpoint(tmp_path / "run" / "last.pt")
    avg = _with_resume_mode(ck, "average-only")
    c, mode, size = compact_for_resume(avg, 10 * 2**20)
    assert mode == "average-only" and size > 0 and "ema" not in c
    for k, v in avg["model"].items():
        assert torch.equal(c["model"][k], v), k
    with pytest.raises(ModelFileError, match=r"take [0-9.e+-]+ MiB") as e:
        compact_for_resume(avg, size - 1)
    said = float(re.search(r"take ([0-9.e+-]+) MiB", str(e.value)).group(1))
    assert said == pytest.approx(size / 2**20, rel=0.01)
    save_checkpoint(tmp_path / "avg.pt", avg)
    rc = main(["compact-checkpoint", str(tmp_path / "avg.pt"), "--out", str(tmp_path / "again.pt"), "--max-mb", "10"])
    assert rc == 0 and read_checkpoint(tmp_path / "again.pt")["resume_mode"] == "average-only"
    from sketchrnn.checkpoint import load_model

    lm = load_model(tmp_path / "again.pt")  # its weights are the average, and it says so
    assert lm.info["weights"] == "average"
    for k, v in lm.model.state_dict().items():
        assert torch.equal(v, ck["ema"][k]), k


def test_cpu_training_benchmark_runs_every_variant(tmp_path, shapes_npz):
    """benchmarks/train_cpu.py on a tiny recipe: one JSON row per variant, positive timings."""
    import json
    import subprocess
    import sys

    cfg = {"model": {"enc_rnn_size": 16, "dec_rnn_size": 24, "z_size": 8, "num_mixture": 3, "max_seq_len": 64,
                     "dec_model": "layer_norm"},
           "data": {"paths": [str(shapes_npz)]}, "train": {"batch_size": 8}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(cfg))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "train_cpu.py"
    r = subprocess.run([sys.executable, str(script), "--config", str(path), "--steps", "1",
                        "--variants", "fast,fast-autograd,plain"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(r.stdout.strip().splitlines()[-1])["rows"]
    assert [row["variant"] for row in rows] == ["fast", "fast-autograd", "plain"]
    assert all(row["ms_per_step"] > 0 for row in rows)


def test_resume_on_new_data_keeps_the_model_and_starts_a_fresh_data_order(tmp_path, shapes_npz):
    """A run resumed on other data: refused without --new-data (one clear line naming the flag);
    with it, weights, Adam, step and scale factor carry over and the data order restarts."""
    from sketchrnn.data.synthetic import write_synthetic_npz
    from sketchrnn.errors import DataError

    bigger = tmp_path / "bigger.npz"
    write_synthetic_npz(bigger, 96, 16, 16, seed=1)
    first = Trainer(tiny_cfg(shapes_npz, "train.num_steps=3"), tmp_path / "run", progress=False)
    first.fit()
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}
    moments = {k: v["exp_avg"].clone() for k, v in first.optimizer.state_dict()["state"].items()}
    first.release()
    cfg = tiny_cfg(bigger, "train.num_steps=5")
    with pytest.raises(DataError, match="--new-data"):
        Trainer(cfg, tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(cfg, tmp_path / "other", new_data=True, progress=False)
    lines: list[str] = []
    moved = Trainer(cfg, tmp_path / "run", resume=True, new_data=True, progress=False, log=lines.append)
    assert moved.step == 3 and moved.scale_factor == first.scale_factor
    assert moved.best_valid == math.inf and any("new data" in s for s in lines)
    for k, v in moved.model.state_dict().items():
        assert torch.equal(v, weights[k]), k
    for k, v in moved.optimizer.state_dict()["state"].items():
        assert torch.equal(v["exp_avg"], moments[k])
    sampler = moved.loader.sampler
    assert (sampler.n, sampler.epoch, sampler.position) == (len(moved.train_data.strokes), 0, 0)
    moved.fit()
    assert moved.step == 5


def test_resume_may_change_dropout_but_no_weight_shaping_setting(tmp_path, shapes_npz):
    """Dropout shapes no weight: a resume may switch it (logged); max_seq_len only with --new-data."""
    Trainer(tiny_cfg(shapes_npz, "train.num_steps=3"), tmp_path / "run", progress=False).fit()
    with pytest.raises(ConfigError, match="max_seq_len"):
        Trainer(tiny_cfg(shapes_npz, "model.max_seq_len=80"), tmp_path / "run", resume=True, progress=False)
    lines: list[str] = []
    t = Trainer(tiny_cfg(shapes_npz, "train.num_steps=5", "model.use_recurrent_dropout=false"), tmp_path / "run",
                resume=True, progress=False, log=lines.append)
    assert t.step == 3 and not t.model.cfg.use_recurrent_dropout
    assert any("use_recurrent_dropout True -> False" in s for s in lines)
    t.fit()
    assert t.step == 5


# ------------------------------------------------------------------ weight average (train.ema_decay)
def _train_with_reference_average(tr: Trainer, decay: float, steps: int) -> list[torch.Tensor]:
    """Take ``steps`` training steps and return the float64 reference of the average:
    ema_{n+1} = d_n ema_n + (1 - d_n) w_{n+1}, d_n = min(decay, (1 + n) / (10 + n))."""
    ref = [w.detach().double().clone() for w in tr.model.state_dict().values()]
    it = iter(tr.loader)
    for n in range(steps):
        assert tr.train_step(next(it)) is not None
        d = min(decay, (1.0 + n) / (10.0 + n))
        ref = [d * e + (1 - d) * w.detach().double() for e, w in zip(ref, tr.model.state_dict().values())]
    return ref


def test_weight_average_follows_the_decay_formula(tmp_path, shapes_npz):
    """ema_{n+1} = d_n ema_n + (1 - d_n) w_{n+1}, d_n = min(decay, (1 + n) / (10 + n)), from
    ema_0 = the initial weights; checked in float64 against the trainer's float32 average."""
    decay = 0.6
    tr = Trainer(tiny_cfg(shapes_npz, f"train.ema_decay={decay}", "train.num_steps=6"), tmp_path / "run", progress=False)
    ref = _train_with_reference_average(tr, decay, 6)
    assert tr.ema_updates == 6
    for e, r, w in zip(tr.ema, ref, tr.model.state_dict().values()):
        assert torch.allclose(e.double(), r, rtol=0, atol=1e-6)
    assert any(not torch.equal(e, w) for e, w in zip(tr.ema, tr.model.state_dict().values()))
    tr.release()


def test_validation_and_checkpoints_use_the_average(tmp_path, shapes_npz):
    from sketchrnn.checkpoint import load_model, read_checkpoint

    tr = Trainer(tiny_cfg(shapes_npz, "train.ema_decay=0.5", "train.num_steps=6"), tmp_path / "run", progress=False)
    tr.fit()
    trained = {k: v.clone() for k, v in tr.model.state_dict().items()}
    v_avg = tr.validate()
    for k, v in tr.model.state_dict().items():  # the trained weights are back, bit for bit
        assert torch.equal(v, trained[k]), k
    ema, tr.ema = tr.ema, None  # the same validation with the average loaded by hand
    v_raw = tr.validate()
    with torch.no_grad():
        for w, e in zip(tr.model.state_dict().values(), ema):
            w.copy_(e)
    assert tr.validate() == v_avg and v_raw != v_avg
    ck = read_checkpoint(tmp_path / "run" / "last.pt")
    for k in trained:
        assert torch.equal(ck["model"][k], trained[k]) and torch.equal(ck["ema"][k], ema[list(trained).index(k)])
    lm = load_model(tmp_path / "run" / "last.pt")  # what sample/evaluate/export see: the average
    assert lm.info["weights"] == "average"
    for k, v in lm.model.state_dict().items():
        assert torch.equal(v, ck["ema"][k]), k
    from sketchrnn.cli import main

    out = tmp_path / "avg.safetensors"
    assert main(["export", str(tmp_path / "run" / "last.pt"), "--out", str(out), "--float32"]) == 0
    exported = load_model(out)
    assert exported.info["weights"] == "average"
    for k, v in exported.model.state_dict().items():
        assert torch.equal(v, ck["ema"][k]), k


def test_weight_average_switched_on_or_off_at_resume(tmp_path, shapes_npz, capsys):
    cfg = tiny_cfg(shapes_npz, "train.num_steps=3")
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    on = Trainer(tiny_cfg(shapes_npz, "train.ema_decay=0.9", "train.num_steps=6"), tmp_path / "run", resume=True,
                 progress=False)
    assert on.ema_updates == 0  # starts from the resumed weights
    for e, w in zip(on.ema, on.model.state_dict().values()):
        assert torch.equal(e, w)
    on.fit()
    off = Trainer(tiny_cfg(shapes_npz, "train.num_steps=9"), tmp_path / "run", resume=True, progress=False)
    assert off.ema is None
    off.fit()
    from sketchrnn.checkpoint import read_checkpoint

    assert "ema" not in read_checkpoint(tmp_path / "run" / "last.pt")
    err = capsys.readouterr().err
    assert "starts from the resumed weights" in err and "weight average is dropped" in err


@pytest.mark.parametrize("bad", ["1.0", "-0.1"])
def test_ema_decay_out_of_range_is_refused(bad):
    with pytest.raises(ConfigError, match="ema_decay"):
        apply_overrides(Config(), [f"train.ema_decay={bad}"]).validate()


@pytest.mark.parametrize("mode", ["no-first-moment", "weights-only"])
def test_compact_checkpoint_keeps_the_weight_average(tmp_path, shapes_npz, mode):
    import io

    from sketchrnn.checkpoint import CHECKPOINT_FORMAT, compact_for_resume, load_model, read_checkpoint

    cfg = tiny_cfg(shapes_npz, "train.ema_decay=0.9", "train.num_steps=3")
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    ck = read_checkpoint(tmp_path / "run" / "last.pt")
    limit = {"no-first-moment": 10**9, "weights-only": 0}[mode]
    if mode == "weights-only":  # the smallest form that fits: measure it, then ask for exactly that
        c = {k: v for k, v in ck.items() if k != "optimizer"}
        buf = io.BytesIO()
        torch.save({**c, "resume_mode": "weights-only", "format": CHECKPOINT_FORMAT, "version": 1}, buf)
        limit = buf.tell()
    else:
        ck["resume_mode"] = "full"
        _, _, full_size = compact_for_resume(ck, 10**9)
        limit = full_size - 1
    small, got, _ = compact_for_resume(ck, limit)
    assert got == mode and ("optimizer" in small) == (mode != "weights-only")
    for k in ck["ema"]:
        assert torch.equal(small["ema"][k], ck["ema"][k]), k
    torch.save({**small, "format": CHECKPOINT_FORMAT, "version": 1}, tmp_path / "small.pt")
    lm = load_model(tmp_path / "small.pt")
    for k, v in lm.model.state_dict().items():
        assert torch.equal(v, ck["ema"][k]), k
    (tmp_path / "run2").mkdir()
    torch.save({**small, "format": CHECKPOINT_FORMAT, "version": 1}, tmp_path / "run2" / "last.pt")
    res = Trainer(tiny_cfg(shapes_npz, "train.ema_decay=0.9", "train.num_steps=4"), tmp_path / "run2", resume=True,
                  progress=False)
    assert res.ema_updates == 3
    for a, k in zip(res.ema, res.model.state_dict()):
        assert torch.equal(a, ck["ema"][k]), k


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_weight_average_on_cuda_with_the_fast_path(tmp_path, shapes_npz):
    """On CUDA (graph-captured fast path) the average follows the formula, validation uses
    it and leaves the trained weights in place, and the checkpoint carries it."""
    from sketchrnn.checkpoint import load_model

    decay = 0.6
    tr = Trainer(tiny_cfg(shapes_npz, f"train.ema_decay={decay}", "train.num_steps=4", "train.device=cuda",
                          "train.deterministic=false"), tmp_path / "run", progress=False)
    ref = _train_with_reference_average(tr, decay, 4)
    for e, r in zip(tr.ema, ref):
        assert e.is_cuda and torch.allclose(e.double(), r, rtol=0, atol=1e-6)
    trained = [w.clone() for w in tr.model.state_dict().values()]
    tr.validate()
    for w, k in zip(tr.model.state_dict().values(), trained):
        assert torch.equal(w, k)
    tr.save()
    lm = load_model(tmp_path / "run" / "last.pt")
    for v, e in zip(lm.model.state_dict().values(), tr.ema):
        assert torch.equal(v, e.cpu())
    tr.release()


def test_host_sync_log_trains_as_step(tmp_path, shapes_npz):
    """train.host_sync=log (steps queued, fused Adam, flags read at log rows) gives the same
    weights and logged losses as the per-step path, up to the fused kernel's rounding; a run
    may switch between the two at resume."""
    import csv

    runs = {}
    for sync in ("step", "log"):
        tr = Trainer(tiny_cfg(shapes_npz, "train.num_steps=8", f"train.host_sync={sync}", "train.log_every=4",
                              "train.ema_decay=0.5"), tmp_path / sync, progress=False)
        tr.fit()
        rows = list(csv.DictReader(open(tmp_path / sync / "metrics.csv")))
        runs[sync] = (tr, [r for r in rows if r["loss"]])
    (a, ra), (b, rb) = runs["step"], runs["log"]
    assert not a._deferred and b._deferred
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == ["4", "8"]
    for x, y in zip(ra, rb):
        for k in ("loss", "L_R"):
            assert float(x[k]) == pytest.approx(float(y[k]), rel=1e-4)
        assert x["skipped"] == y["skipped"] == "0"
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.allclose(v, w, rtol=1e-4, atol=1e-6), k
    for e, f in zip(a.ema, b.ema):
        assert torch.allclose(e, f, rtol=1e-4, atol=1e-6)
    assert all(g["fused"] for g in b.optimizer.param_groups)
    # a log-mode checkpoint resumed per-step, and back: Adam's step counters follow the kernel
    for sync, steps in (("step", 10), ("log", 12)):
        tr = Trainer(tiny_cfg(shapes_npz, f"train.num_steps={steps}", f"train.host_sync={sync}", "train.log_every=4",
                              "train.ema_decay=0.5"), tmp_path / "log", resume=True, progress=False)
        assert all(bool(g["fused"]) == (sync == "log") for g in tr.optimizer.param_groups)
        tr.fit()
        st = tr.optimizer.state_dict()["state"]
        assert all(int(v["step"]) == steps for v in st.values())
        assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_host_sync_is_validated():
    with pytest.raises(ConfigError, match="host_sync"):
        apply_overrides(Config(), ["train.host_sync=never"]).validate()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_host_sync_log_on_cuda(tmp_path, shapes_npz, monkeypatch):
    """On CUDA "auto" means "log": the same weights as the per-step path (fp32, TF32 off, up to
    the fused kernel's rounding), and a poisoned step is skipped on the device."""
    base = ["train.num_steps=6", "train.device=cuda", "train.deterministic=false", "train.log_every=3",
            "train.ema_decay=0.5"]
    # each built and trained before the next: a Trainer seeds torch's generators when it is made
    # (the first GPU run built both first, so b drew other dropout masks than a)
    a = Trainer(tiny_cfg(shapes_npz, *base, "train.host_sync=step"), tmp_path / "a", progress=False)
    a.fit()
    b = Trainer(tiny_cfg(shapes_npz, *base), tmp_path / "b", progress=False)
    b.fit()
    assert not a._deferred and b._deferred
    for v, w in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.allclose(v, w, rtol=1e-4, atol=1e-6)
    for e, f in zip(a.ema, b.ema):  # the weight average, updated on the device in "log" mode
        assert torch.allclose(e, f, rtol=1e-4, atol=1e-6)
    # once captured and warm, a queued step never waits for the device
    it = iter(b.loader)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            b._train_step_deferred(next(it))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    b._sync()
    good = [w.clone() for w in b.model.state_dict().values()]
    _poison_losses(b, monkeypatch, float("inf"))
    b.fit(num_steps=10)
    assert b.bad_total == 2 and b.step == 10
    for w, g in zip(b.model.state_dict().values(), good):
        assert torch.equal(w, g)
    a.release()
    b.release()


def test_eval_batch_size_changes_batching_not_the_figure(tmp_path, shapes_npz):
    """Validation pads every batch to max_seq_len and weights each batch's mean by its size,
    so the batch size leaves a decoder-only model's figure as it is (up to rounding)."""
    vals = []
    for bs in (0, 5, 64):
        tr = Trainer(tiny_cfg(shapes_npz, "model.conditional=false", "train.num_steps=2",
                              f"train.eval_batch_size={bs}"), tmp_path / f"r{bs}", progress=False)
        assert tr.valid_loader.batch_size == (bs or 8)
        tr.fit()
        vals.append(tr.validate()["valid_L_R"])
        tr.release()
    assert vals[0] == pytest.approx(vals[1], rel=1e-6) and vals[0] == pytest.approx(vals[2], rel=1e-6)
    with pytest.raises(ConfigError, match="eval_batch_size"):
        apply_overrides(Config(), ["train.eval_batch_size=-1"]).validate()


def test_validation_runs_in_full_fp32_whatever_the_device():
    """Validation's block (``full_fp32_matmul``) forces float32 products on CUDA and on the CPU (oneDNN) alike, then
    puts back what was set (TF32 on CUDA; bf16 on the CPU where torch has the setting)."""
    from sketchrnn.precision import cpu_fp32_reduced, cuda_fp32_reduced, full_fp32_matmul

    mk = getattr(torch.backends.mkldnn, "matmul", None)
    old_cpu = mk.fp32_precision if mk is not None and hasattr(mk, "fp32_precision") else None
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        if old_cpu is not None:
            mk.fp32_precision = "bf16"
        with full_fp32_matmul():  # what Trainer.validate runs in, on any device
            assert not cuda_fp32_reduced() and not cpu_fp32_reduced()
        assert cuda_fp32_reduced()
        assert cpu_fp32_reduced() is (old_cpu is not None)
    finally:
        torch.set_float32_matmul_precision(old)
        if old_cpu is not None:
            mk.fp32_precision = old_cpu


def test_sigterm_stops_training_cleanly(tmp_path, shapes_npz):
    """SIGTERM (or a first Ctrl-C) ends a training run like train.max_minutes: after the current
    step, with a validation and a last.pt at that step that resumes; the command exits 0."""
    import signal
    import subprocess
    import sys
    import time

    from sketchrnn.checkpoint import read_checkpoint

    out = tmp_path / "run"
    sets = [f"data.paths={shapes_npz}", *TINY, "train.num_steps=100000", "train.eval_every=1000",
            "train.save_every=1000", "train.num_threads=1"]
    p = subprocess.Popen([sys.executable, "-m", "sketchrnn", "train", "--out", str(out), "--no-progress", "--set", *sets],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # a few steps logged (log_every 1)
            m = out / "metrics.csv"
            if m.exists() and len(m.read_text().splitlines()) >= 4:
                break
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        log, _ = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 0, log[-2000:]
    assert "SIGTERM received" in log and "stopping at step" in log, log[-2000:]
    step = int(log.split("stopping at step ")[1].split(":")[0])
    assert 3 <= step < 1000  # stopped early, not at a save boundary
    assert read_checkpoint(out / "last.pt")["step"] == step
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[-1].split(",")[0] == str(step) and rows[-1].split(",")[8] != ""  # a validation at the stop


def test_ship_model_script_writes_a_card_the_checks_read(tmp_path, shapes_npz, repo_dir):
    """scripts/ship_model.py on a tiny trained VAE: float16 weights and a card whose test-split
    figure, quick check and gap are read back by the code the shipped-model tests use."""
    import subprocess
    import sys

    from sketchrnn.checkpoint import card_quick_checks, load_model, shipped_quality
    from sketchrnn.data import load_npz
    from sketchrnn.evaluate import evaluate_model

    Trainer(tiny_cfg(shapes_npz, "train.num_steps=3"), tmp_path / "run", progress=False).fit()
    out = tmp_path / "shipped"
    out.mkdir()
    cmd = [sys.executable, str(repo_dir / "scripts" / "ship_model.py"), str(tmp_path / "run" / "last.pt"),
           "--name", "tiny", "--data", str(shapes_npz), "--teacher", "5.0", "--threads", "1", "--out-dir", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    lm = load_model(out / "tiny.safetensors")
    test = load_npz(shapes_npz, splits=["test"])["test"]
    checks = card_quick_checks("tiny", out)
    assert [(c["n"], c["file"], c["metric"]) for c in checks] == [(len(test), "shapes.npz", "elbo_per_point")]
    assert checks[0]["value"] == pytest.approx(evaluate_model(lm, test)["elbo_per_point"], abs=1e-4)
    (row,) = shipped_quality("tiny", out)
    assert row["teacher"] == 5.0 and row["bar_percent"] == 3.0
    assert row["ours"] == pytest.approx(checks[0]["value"], abs=1e-4)  # the whole split is the first n here
    # the gap cell says how far from the bar, so a rounded "+3.0 %" can no longer read as a pass
    import re

    cell = re.search(r"\| ([+-]\d+\.\d\d) % \(bar: within 3 %; (\d+\.\d{4}) (short|to spare)\) \|",
                     (out / "tiny.md").read_text())
    assert cell is not None
    ours, limit = row["ours"], 5.0 * 1.03
    assert float(cell.group(1)) == pytest.approx((ours / 5.0 - 1) * 100, abs=0.006)
    assert cell.group(3) == ("short" if ours > limit else "to spare")
    assert float(cell.group(2)) == pytest.approx(abs(ours - limit), abs=2e-4)


@pytest.mark.parametrize("conditional", [True, False])
def test_validation_logs_the_issue_metric(tmp_path, shapes_npz, conditional):
    """valid_nll_per_point / valid_recon_per_point are ../shared/README.md's metric on the
    validation sketches: the same figures `sketchrnn evaluate` gives (z = mu for the VAE's
    reconstruction; the ELBO's z sample is the trainer's own, fixed per validation)."""
    from sketchrnn.checkpoint import load_model
    from sketchrnn.evaluate import evaluate_model

    cfg = tiny_cfg(shapes_npz, f"model.conditional={str(conditional).lower()}", "train.num_steps=3")
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    tr.fit()
    v = tr.validate()
    assert tr.validate() == v  # the same sketches and z samples every time
    tr.release()
    ref = evaluate_model(load_model(tmp_path / "run" / "last.pt"), tr.valid_data.strokes[:16])
    if conditional:
        assert v["valid_recon_per_point"] == pytest.approx(ref["recon_nll_per_point"], rel=1e-5)
        assert v["valid_nll_per_point"] == pytest.approx(ref["elbo_per_point"], rel=0.05)
        assert v["valid_nll_per_point"] != v["valid_recon_per_point"]
    else:
        assert v["valid_nll_per_point"] == pytest.approx(ref["nll_per_point"], rel=1e-5)
        assert "valid_recon_per_point" not in v
    header, *rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    col = header.split(",").index("valid_nll_per_point")
    assert float(rows[-1].split(",")[col]) == pytest.approx(v["valid_nll_per_point"], abs=1e-5)
    off = Trainer(tiny_cfg(shapes_npz, "train.eval_per_point=false"), tmp_path / "off", progress=False)
    assert set(off.validate()) == {"valid_loss", "valid_L_R", "valid_L_KL"}
    off.release()


def test_resume_keeps_an_older_metrics_file_s_columns(tmp_path, shapes_npz):
    """A run whose metrics.csv predates the per-point columns goes on in that file's columns."""
    run = tmp_path / "run"
    Trainer(tiny_cfg(shapes_npz, "train.num_steps=3"), run, progress=False).fit()
    old = ["step", "lr", "kl_weight", "loss", "L_R", "L_KL", "sketches_per_s", "skipped",
           "valid_loss", "valid_L_R", "valid_L_KL"]
    lines = (run / "metrics.csv").read_text().strip().splitlines()
    keep = [",".join(line.split(",")[:len(old)]) for line in lines]
    assert keep[0] == ",".join(old)
    (run / "metrics.csv").write_text("\n".join(keep) + "\n")
    Trainer(tiny_cfg(shapes_npz, "train.num_steps=6"), run, resume=True, progress=False).fit()
    lines = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 7 and all(len(line.split(",")) == len(old) for line in lines)


def test_validation_is_the_same_on_its_first_call(tmp_path, shapes_npz):
    """The encoder's CPU fast path builds its nn.LSTM template on first use without drawing
    from the global RNG, so a process's first validation sees the same z noise as later ones."""
    tr = Trainer(tiny_cfg(shapes_npz), tmp_path / "run", progress=False)
    assert not tr.model.encoder._nn_lstm
    first = tr.validate()
    assert tr.model.encoder._nn_lstm  # the template was built by that call
    assert tr.validate() == first
    tr.release()


def test_resume_with_another_kl_weight_resets_the_best_validation(tmp_path, shapes_npz):
    """valid_loss = L_R + w_KL max(KL, tol): a resume that changes w_KL scores another figure,
    so the stored best is dropped (else best.pt could stay frozen at the old loss's minimum)."""
    run = tmp_path / "run"
    Trainer(tiny_cfg(shapes_npz, "train.num_steps=3"), run, progress=False).fit()
    same = Trainer(tiny_cfg(shapes_npz, "train.num_steps=3"), run, resume=True, progress=False)
    assert math.isfinite(same.best_valid)
    same.release()
    logs = []
    tr = Trainer(tiny_cfg(shapes_npz, "train.num_steps=6", "train.kl_weight=2.0", "train.kl_weight_start=2.0"),
                 run, resume=True, progress=False, log=logs.append)
    assert tr.best_valid == math.inf
    assert any("train.kl_weight 0.5 -> 2.0" in line and "reset" in line for line in logs)
    tr.release()


@pytest.mark.parametrize("bad", ["train.encoder_lr_scale=0", "train.encoder_lr_scale=-2", "train.encoder_lr_scale=nan"])
def test_encoder_lr_scale_is_checked(bad):
    with pytest.raises(ConfigError, match="encoder_lr_scale"):
        apply_overrides(Config(), [bad]).validate()


def test_encoder_lr_scale_needs_an_encoder(shapes_npz):
    with pytest.raises(ConfigError, match="encoder_lr_scale"):
        tiny_cfg(shapes_npz, "model.conditional=false", "train.encoder_lr_scale=3").validate()


def test_encoder_lr_scale_moves_the_encoder_only_faster(tmp_path, shapes_npz):
    """Adam's first step moves each parameter by ~lr (m / sqrt(v) = g / |g|): with the scale the
    encoder's parameters move `scale` times as far, the decoder's exactly as without it."""
    runs = {}
    for scale in (1.0, 10.0):
        cfg = tiny_cfg(shapes_npz, "train.num_steps=1", "train.learning_rate=1e-4", "train.min_learning_rate=1e-4",
                       f"train.encoder_lr_scale={scale}")
        tr = Trainer(cfg, tmp_path / f"s{scale}", progress=False)
        before = {k: v.clone() for k, v in tr.model.state_dict().items()}
        tr.fit()
        lrs = [g["lr"] for g in tr.optimizer.param_groups]
        assert lrs == ([1e-4] if scale == 1.0 else [1e-3, 1e-4])
        runs[scale] = {k: v - before[k] for k, v in tr.model.state_dict().items()}
        tr.release()
    for k, d1 in runs[1.0].items():
        d10 = runs[10.0][k]
        if k.startswith("encoder."):
            moved = d1.abs() > 5e-5  # elements whose gradient was far above Adam's eps
            assert moved.any(), k
            assert torch.allclose(d10[moved], 10 * d1[moved], rtol=1e-3), k
        else:
            assert torch.equal(d10, d1), k


@pytest.mark.parametrize("first,then", [(1.0, 10.0), (10.0, 1.0)])
def test_resume_may_switch_the_encoder_lr_scale(tmp_path, shapes_npz, first, then):
    """A full checkpoint's Adam moments map onto the other parameter-group layout, each moment
    staying with its parameter."""
    run = tmp_path / "run"
    tr = Trainer(tiny_cfg(shapes_npz, "train.num_steps=3", f"train.encoder_lr_scale={first}"), run, progress=False)
    tr.fit()
    saved_by_name = {n: tr.optimizer.state[p]["exp_avg_sq"].clone() for n, p in tr.model.named_parameters()}
    tr.release()
    again = Trainer(tiny_cfg(shapes_npz, "train.num_steps=5", f"train.encoder_lr_scale={then}"), run,
                    resume=True, progress=False)
    assert len(again.optimizer.param_groups) == (1 if then == 1.0 else 2)
    for n, p in again.model.named_parameters():
        assert torch.equal(again.optimizer.state[p]["exp_avg_sq"], saved_by_name[n]), n
    again.fit()
    assert again.step == 5
    again.release()
