"""Training and environment faults (issue 9): what a killed, poisoned or starved run leaves.

* non-finite gradients (injected with tensor hooks) are skipped, counted, never applied;
  too many in a row stop training with the last good checkpoint intact;
* SIGKILL of ``sketchrnn train`` mid-run, then ``--resume``: the final weights are bitwise
  those of an uninterrupted run (CPU, train.deterministic=true, 1 thread);
* SIGKILL during checkpoint writes (slowed so that kills land inside them): ``last.pt``
  always loads;
* unwritable / full output directory, missing data, corrupted checkpoint: a one-line
  error at start-up (or at the first save when the disk fills later), no partial file.

Figures from longer runs of the same faults are in docs/RELIABILITY.md.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sketchrnn.checkpoint import load_model, read_checkpoint
from sketchrnn.config import Config, apply_overrides
from sketchrnn.errors import ConfigError, DataError, ModelFileError, SketchRNNError, TrainingError
from sketchrnn.train import Trainer

TINY = ["model.enc_rnn_size=16", "model.dec_rnn_size=24", "model.z_size=8", "model.num_mixture=3",
        "model.max_seq_len=64", "train.batch_size=8", "train.log_every=1", "train.eval_every=10",
        "train.save_every=1", "train.max_eval_sketches=16", "train.deterministic=true"]


@pytest.fixture(scope="module")
def shapes_npz(tmp_path_factory) -> Path:
    from sketchrnn.data.synthetic import write_synthetic_npz

    return write_synthetic_npz(tmp_path_factory.mktemp("data") / "shapes.npz", 64, 16, 16, seed=0)


@pytest.fixture(autouse=True)
def _restore_determinism():
    """Trainer(deterministic=true) switches torch's global flag on; leave it as found."""
    was = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(was)


def tiny_cfg(data: Path, *extra: str) -> Config:
    return apply_overrides(Config(), [f"data.paths={data}", *TINY, *extra])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sketchrnn.cli", "train", *args]


ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def tmp_files(d: Path) -> list[Path]:
    return sorted(d.glob(".*.tmp"))


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ gradient faults
def test_nan_and_inf_gradients_are_skipped_counted_then_stop(tmp_path, shapes_npz):
    """Hooks poison one element of one gradient (loss stays finite) on chosen steps."""
    tr = Trainer(tiny_cfg(shapes_npz, "train.num_steps=40", "train.max_bad_steps=3"), tmp_path / "run", progress=False)
    param = tr.model.decoder.output.weight
    bad = {3: float("nan"), 4: float("inf"), 7: float("-inf"), 8: float("nan"), 9: float("nan")}

    def hook(g):
        v = bad.get(tr.step)  # tr.step is the index of the step being computed
        if v is None:
            return g
        g = g.clone()
        g.view(-1)[5] = v
        return g

    param.register_hook(hook)
    orig = tr.train_step
    log = []

    def spy(batch):
        before = {k: v.clone() for k, v in tr.model.state_dict().items()}
        adam = {k: s["exp_avg"].clone() for k, s in tr.optimizer.state_dict()["state"].items()}
        step, res = tr.step, None
        try:
            res = orig(batch)
            return res
        finally:  # also for the step that raises TrainingError
            same = states_equal(before, tr.model.state_dict())
            adam_same = all(torch.equal(adam[k], s["exp_avg"])
                            for k, s in tr.optimizer.state_dict()["state"].items() if k in adam)
            log.append((step, res is None, same, adam_same, tr.bad_total))

    tr.train_step = spy
    with pytest.raises(TrainingError) as ei:
        tr.fit()
    msg = str(ei.value)
    assert "\n" not in msg and "3 non-finite" in msg and str(tr.last_path) in msg
    skipped = [s for s, sk, *_ in log if sk]
    assert skipped == [3, 4, 7, 8, 9]  # all five injected faults caught, nothing else
    for step, sk, same, adam_same, _ in log:
        assert same == sk, step  # weights move exactly on good steps
        if sk:
            assert adam_same, step  # and a skipped step leaves Adam's moments alone
    assert tr.bad_total == 5 and log[-1][0] == 9 and tr.step == 9  # stopped at the third bad step in a row
    # last.pt holds the weights of the last good step (6) and loads
    saved = load_model(tr.last_path)
    assert states_equal(saved.model.state_dict(), tr.model.state_dict())
    ck = read_checkpoint(tr.last_path)  # saved after step 8 (the 4th skip); step 9 raised before saving
    assert ck["step"] == 9 and ck["bad_total"] == 4


# ------------------------------------------------------------------ SIGKILL + resume
def _step_of(path: Path) -> int:
    try:
        return int(read_checkpoint(path)["step"])
    except (SketchRNNError, OSError):
        return -1


def _rows(metrics: Path) -> int:
    try:
        return max(len(metrics.read_text().splitlines()) - 1, 0)
    except OSError:
        return 0


def test_sigkill_mid_run_then_resume_is_bitwise_identical(tmp_path, shapes_npz):
    """`sketchrnn train` killed with SIGKILL at a random step, then `--resume`: the final
    weights and Adam moments equal an uninterrupted run's, bit for bit."""
    n = 16
    args = ["--data", str(shapes_npz), "--steps", str(n), "--threads", "1", "--no-progress", "--set", *TINY]
    kill_at = random.Random(9).randint(3, 9)
    run = tmp_path / "run"
    victim = subprocess.Popen(cli("--out", str(run), *args), env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    t0 = time.time()
    while victim.poll() is None and _rows(run / "metrics.csv") < kill_at and time.time() - t0 < 120:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL  # killed, not finished
    killed_at = _step_of(run / "last.pt")
    assert kill_at - 1 <= killed_at < n, killed_at
    assert load_model(run / "last.pt").model is not None
    resumed = subprocess.Popen(cli("--out", str(run), "--resume", *args), env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    # the uninterrupted reference, in this process meanwhile (same config as the CLI builds)
    ref = Trainer(apply_overrides(Config(), [*TINY, f"data.paths={shapes_npz}", f"train.num_steps={n}",
                                             "train.num_threads=1"]), tmp_path / "ref", progress=False)
    ref.fit()
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()[-2000:]
    b = read_checkpoint(run / "last.pt")
    assert b["step"] == ref.step == n
    assert states_equal(ref.model.state_dict(), b["model"])
    sa, sb = ref.optimizer.state_dict()["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) and torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"])


# ------------------------------------------------------------------ kills inside checkpoint writes
class _SlowFile:
    """File wrapper whose writes go out 1 KiB at a time, 1 ms apart (a slow disk)."""

    def __init__(self, f):
        self._f = f

    def write(self, data) -> int:
        mv = memoryview(data).cast("B")
        for i in range(0, len(mv), 1024):
            self._f.write(mv[i:i + 1024])
            self._f.flush()
            time.sleep(0.001)
        return len(mv)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


def test_kills_during_checkpoint_writes_leave_last_pt_loadable(tmp_path, shapes_npz):
    tr = Trainer(tiny_cfg(shapes_npz, "train.num_steps=2"), tmp_path / "run", progress=False)
    tr.fit()
    weights = {k: v.clone() for k, v in tr.model.state_dict().items()}
    rng = random.Random(3)
    kills, mid_write, steps = 12, 0, []
    for _ in range(kills):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: rewrite last.pt forever through a slow disk
            try:
                os.close(r)
                real = os.fdopen
                os.fdopen = lambda *a, **k: _SlowFile(real(*a, **k))
                os.write(w, b"1")
                while True:
                    tr.step += 1
                    tr.save()
            finally:
                os._exit(0)
        os.close(w)
        os.read(r, 1)
        os.close(r)
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        left = tmp_files(tr.run_dir)
        mid_write += bool(left)
        for f in left:  # a kill inside a write leaves only the hidden temp file
            f.unlink()
        ck = read_checkpoint(tr.last_path)  # always loads
        assert states_equal(ck["model"], weights)
        assert load_model(tr.last_path).model is not None
        steps.append(ck["step"])
        tr.step = ck["step"]
    assert mid_write >= kills // 3, f"only {mid_write} of {kills} kills landed inside a write"
    assert steps == sorted(steps)


# ------------------------------------------------------------------ environment faults
@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (root only); skips where mounting is not allowed."""
    mounted = []

    def make(size: str, ro: bool = False) -> Path:
        d = tmp_path / f"mnt{len(mounted)}"
        d.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        if shutil.which("mount") is None or os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root and mount(8)")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
        mounted.append(d)
        return d

    yield make
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_unwritable_output_dir_fails_at_startup(tmp_path, shapes_npz, tmpfs):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not writable") as ei:
        Trainer(tiny_cfg(shapes_npz), blocker / "run", progress=False)
    assert "\n" not in str(ei.value)
    ro = tmpfs("1m", ro=True)
    with pytest.raises(ConfigError, match="not writable"):
        Trainer(tiny_cfg(shapes_npz), ro / "run", progress=False)
    res = subprocess.run(cli("--out", str(ro / "run"), "--data", str(shapes_npz), "--steps", "2", "--no-progress",
                             "--set", *TINY), env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and "not writable" in res.stderr


def test_full_disk_is_found_at_startup(tmp_path, shapes_npz, tmpfs):
    full = tmpfs("256k")
    t0 = time.time()
    with pytest.raises(ConfigError, match="MB free") as ei:
        Trainer(tiny_cfg(shapes_npz), full / "run", progress=False)
    assert "\n" not in str(ei.value) and time.time() - t0 < 30
    assert not (full / "run" / "last.pt").exists() and not tmp_files(full / "run")


def test_disk_filling_up_during_training(tmp_path, shapes_npz, tmpfs):
    """The disk fills after the first checkpoint (another process): the CLI stops with one
    line, the previous last.pt still loads, no temp file is left."""
    d = tmpfs("3m")
    run = d / "run"
    proc = subprocess.Popen(cli("--out", str(run), "--data", str(shapes_npz), "--steps", "100000", "--threads", "1",
                                "--no-progress", "--set", *TINY), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while _step_of(run / "last.pt") < 2 and proc.poll() is None and time.time() - t0 < 120:
        time.sleep(0.02)
    fd = os.open(d / "filler", os.O_WRONLY | os.O_CREAT)  # take every free byte (unbuffered)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    try:
        rc = proc.wait(timeout=120)
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert rc == 2, err[-2000:]
    assert "Traceback" not in err and "No space left on device" in err, err[-2000:]
    assert len([ln for ln in err.splitlines() if ln.startswith("sketchrnn: error")]) == 1
    assert _step_of(run / "last.pt") >= 2 and load_model(run / "last.pt").model is not None
    assert not tmp_files(run)


def test_enospc_at_save_keeps_the_previous_checkpoint(tmp_path, shapes_npz, monkeypatch):
    """Without a tmpfs: fsync raising ENOSPC (the usual place a full disk shows) at a save."""
    tr = Trainer(tiny_cfg(shapes_npz, "train.num_steps=2"), tmp_path / "run", progress=False)
    tr.fit()
    before = read_checkpoint(tr.last_path)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ModelFileError, match="No space left on device") as ei:
        tr.fit(num_steps=4)
    assert "\n" not in str(ei.value)
    monkeypatch.undo()
    after = read_checkpoint(tr.last_path)
    assert after["step"] == before["step"] == 2 and states_equal(after["model"], before["model"])
    assert not tmp_files(tr.run_dir)


def test_missing_data_file_fails_at_startup(tmp_path, shapes_npz):
    t0 = time.time()
    with pytest.raises(DataError, match="not found") as ei:
        Trainer(tiny_cfg(tmp_path / "nope.npz"), tmp_path / "run", progress=False)
    assert "nope.npz" in str(ei.value) and time.time() - t0 < 30
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "bit_flip", "garbage", "other_pickle"])
def test_corrupted_last_pt_is_refused_at_resume_and_nothing_is_overwritten(tmp_path, shapes_npz, damage):
    cfg = tiny_cfg(shapes_npz, "train.num_steps=3", "train.eval_every=1")
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    tr.fit()
    raw = bytearray(tr.last_path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "empty":
        raw = bytearray()
    elif damage == "bit_flip":  # inside the largest tensor's bytes: torch.load alone would not notice
        import io
        import zipfile

        info = max(zipfile.ZipFile(io.BytesIO(bytes(raw))).infolist(), key=lambda i: i.file_size)
        h = info.header_offset
        start = h + 30 + int.from_bytes(raw[h + 26:h + 28], "little") + int.from_bytes(raw[h + 28:h + 30], "little")
        raw[start + info.file_size // 2] ^= 0x10
    elif damage == "garbage":
        raw = bytearray(os.urandom(4096))
    else:
        import io

        b = io.BytesIO()
        torch.save({"not": "a checkpoint"}, b)
        raw = bytearray(b.getvalue())
    tr.last_path.write_bytes(bytes(raw))
    best = tr.best_path.read_bytes()
    with pytest.raises(ModelFileError) as ei:
        Trainer(cfg, tmp_path / "run", resume=True, progress=False)
    msg = str(ei.value)
    assert "\n" not in msg and "last.pt" in msg
    assert tr.last_path.read_bytes() == bytes(raw)  # left for inspection, not overwritten
    assert tr.best_path.read_bytes() == best and load_model(tr.best_path).model is not None
