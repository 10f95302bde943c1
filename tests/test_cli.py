"""The `sketchrnn` command line: dry runs, one-line errors, no half-written outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sketchrnn.cli import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sketchrnn", *args], capture_output=True, text=True,
                          cwd=cwd, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, timeout=300)


def test_train_dry_run_subprocess():
    r = run_cli("train", "--dry-run", "--no-progress", "--threads", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["step"] == 2 and out["n_train"] > 0


@pytest.mark.parametrize("args, needle", [
    (["train", "--dry-run", "--set", "model.no_such_key=1"], "unknown key"),
    (["train", "--dry-run", "--set", "model.dec_model=gru"], "dec_model"),
    (["train", "--dry-run", "--set", "train.matmul_precision=tf32"], "matmul_precision"),
    (["train", "--data", "/nonexistent/x.npz", "--out", "/tmp/x"], "not found"),
    (["evaluate", "--model", "no_such_model", "--data", "x.npz"], "no_such_model"),
    (["sample", "--model", "/nonexistent/m.pt", "--out", "o"], "not found"),
    (["render", "/nonexistent.npz", "--out", "o"], "not found"),
])
def test_user_errors_are_one_line(args, needle, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("sketchrnn: error:") and needle in err, err


def test_train_sample_evaluate_roundtrip(tmp_path):
    from sketchrnn.data.synthetic import write_synthetic_npz

    data = tmp_path / "shapes.npz"
    write_synthetic_npz(data, 64, 16, 16, seed=1)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--no-progress", "--set",
                 "model.enc_rnn_size=16", "model.dec_rnn_size=24", "model.z_size=8", "model.num_mixture=3",
                 "model.max_seq_len=64", "train.batch_size=8", "train.num_steps=4", "train.eval_every=2"]) == 0
    assert main(["sample", "--model", str(run / "best.pt"), "--n", "3", "--seed", "0", "--out", str(tmp_path / "s"), "--png"]) == 0
    assert len(list((tmp_path / "s").glob("sample_*.svg"))) == 3
    assert (tmp_path / "s" / "samples.png").stat().st_size > 0
    from sketchrnn.data import load_npz

    assert len(load_npz(tmp_path / "s" / "samples.npz")["test"]) == 3
    assert main(["evaluate", "--model", str(run / "last.pt"), "--data", str(data), "--json"]) == 0


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_sample_to_one_grid_file(tmp_path, suffix):
    """`--out FILE.svg` / `--out FILE.png` write one grid image and the strokes beside it, not a
    folder named like an image."""
    from sketchrnn.data import load_npz

    out = tmp_path / f"cats{suffix}"
    assert main(["sample", "--model", "cat-uncond", "--n", "2", "--seed", "0", "--out", str(out)]) == 0
    assert out.is_file()
    head = out.read_bytes()[:8]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in out.read_bytes()[:400]
    assert len(load_npz(out.with_suffix(".npz"))["test"]) == 2


def test_evaluate_json_has_exactly_the_documented_keys(tmp_path, capsys):
    from sketchrnn.data.synthetic import write_synthetic_npz
    from sketchrnn.evaluate import METRIC_KEYS

    data = tmp_path / "shapes.npz"
    write_synthetic_npz(data, 32, 8, 8, seed=2)
    run = tmp_path / "run"
    main(["train", "--data", str(data), "--out", str(run), "--no-progress", "--set", "model.enc_rnn_size=8",
          "model.dec_rnn_size=16", "model.z_size=4", "model.num_mixture=2", "model.max_seq_len=64",
          "train.batch_size=8", "train.num_steps=2", "train.eval_every=2"])
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "last.pt"), "--data", str(data), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert tuple(res) == METRIC_KEYS
    assert res["n_sketches"] == 8 and res["elbo_per_point"] >= res["recon_nll_per_point"] - 1.0


def test_unwritable_output_is_a_clear_error(tmp_path, capsys):
    from sketchrnn.data.synthetic import write_synthetic_npz

    data = tmp_path / "shapes.npz"
    write_synthetic_npz(data, 32, 8, 8, seed=3)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["train", "--data", str(data), "--out", str(blocker / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "not writable" in err and "Traceback" not in err


def test_info_reports_the_sampler_in_use(tmp_path):
    import json
    import os

    r = subprocess.run([sys.executable, "-m", "sketchrnn.cli", "info", "--json"], capture_output=True, text=True,
                       env={**os.environ, "SKETCHRNN_NATIVE": "0"}, timeout=120)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["cpu_sampler"] == "numpy" and info["native_status"] == "disabled by SKETCHRNN_NATIVE=0"
    assert info["cpu_train_lstm"] == "torch operations"
    from sketchrnn.precision import cpu_bf16_available

    assert info["cpu_bf16_products"].startswith("available" if cpu_bf16_available() else "not available")
    assert info["torch"] and isinstance(info["shipped_models"], list) and isinstance(info["cuda"], list)
    r = subprocess.run([sys.executable, "-m", "sketchrnn.cli", "info"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "SKETCHRNN_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0 and "cpu_sampler:" in r.stdout and "native_status:" in r.stdout
