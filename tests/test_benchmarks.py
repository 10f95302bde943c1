"""Every script in benchmarks/ runs: a tiny CPU run of each (seconds), as pytorch/examples runs
its entry points' dry runs. The figures themselves live in benchmarks/RESULTS.md, never here;
these runs check that the scripts work and report what they claim to (agreement flags, JSON
keys, no silently dropped options). Scripts tested elsewhere: bench_triton_lstm.py
(tests/test_triton_lstm.py), compile_sm90.py, make_gpu_data.py, train_cpu.py (tests/test_train.py),
fuzz_readers.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SHARED = ROOT.parent / "shared"


def run(script: str, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)  # (the GPU scripts write to $OUT when it is set)
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_bench_train_small(tmp_path):
    out = tmp_path / "t.json"
    r = run("bench_train.py", "--device", "cpu", "--small", "--cells", "lstm,hyper", "--variants",
            "reference,fast-eager", "--steps", "1", "--ref-steps", "1", "--warmup", "1", "--ref-warmup", "1",
            "--sections", "timing,numerics", "--json-out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    timed = {(x["cell"], x["variant"]) for x in res["timing"]}
    assert timed == {(c, v) for c in ("lstm", "hyper") for v in ("reference", "fast-eager")}
    assert all(x["ms_per_step"] > 0 and x["all_steps_finite"] for x in res["timing"])
    fast = [x for x in res["numerics"] if x["variant"].startswith("fast-eager")]
    assert {x["cell"] for x in fast} == {"lstm", "hyper"}
    assert all(x["grad_rel_err_vs_fp64"] <= 1e-5 and x["grad_rel_err_vs_ref32"] <= 1e-5 for x in fast)


@pytest.mark.parametrize("args, needle", [
    (["--variants", "fast+persistant"], "unknown variant fast+persistant"),
    (["--cells", "gru"], "unknown cell gru"),
    (["--sections", "timings"], "unknown section timings"),
])
def test_bench_train_rejects_unknown_names(args, needle):
    r = run("bench_train.py", "--device", "cpu", "--small", *args)
    assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr


def test_bench_sample_check(tmp_path):
    out = tmp_path / "s.json"
    r = run("bench_sample.py", "--batch", "8", "--points", "10", "--repeats", "1", "--no-cuda", "--check",
            "--json-out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert {x["cell"] for x in res["rows"]} == {"lstm", "layer_norm", "hyper"}
    assert all(x["sketches_per_s"] > 0 for x in res["rows"])
    for cell, chk in res["check"].items():
        assert chk["same_pen_and_lengths"] and chk["max_rel_err"] <= 1e-5, (cell, chk)


def test_sample_cpu_json():
    """The issue's interface: one JSON object with the three cells' median ms per sketch."""
    r = run("sample_cpu.py", "--json", "--repeats", "1", "--plain-repeats", "0", "--points", "10")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(res) == {"lstm_ms", "layer_norm_ms", "hyper_ms"} and all(v > 0 for v in res.values())


def test_count_step_ops():
    r = run("count_step_ops.py", "--json", "--eager")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(r.stdout)
    assert {(x["cell"], x["launch_bound"]) for x in rows} == {(c, b) for c in ("layer_norm", "hyper")
                                                            for b in (False, True)}
    assert all(x["per_step"] > 0 and sum(x["by_op"].values()) == x["per_step"] for x in rows)


def test_profile_gpu_small_on_cpu(tmp_path):
    out = tmp_path / "p.json"
    r = run("profile_gpu.py", "--small", "--device", "cpu", "--steps", "1", "--warmup", "1", "--rows", "5",
            "--json-out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["device"] == "cpu" and res["wall_ms_per_step"] > 0 and 0 < len(res["top"]) <= 5


def test_packed_memory_small(tmp_path):
    r = run("packed_memory.py", "--n", "3000", "--batches", "20", "--dir", str(tmp_path / "pk"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (tmp_path / "pk").exists()  # removed afterwards unless --keep


def test_fuzz_kill_training_one_kill(tmp_path):
    out = tmp_path / "fk.json"
    r = run("fuzz_kill_training.py", "--kills", "1", "--steps", "5", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["kills"] == 1 and res["adam_bitwise_equal"] is True


def test_tf32_head_arm_and_effect(tmp_path):
    """The TF32 experiment scripts: the arm trains with the head's products TF32-rounded (its
    first training loss differs from a plain run's; its float32 validation does not), and
    tf32_effect scores the checkpoint it wrote under each rounding."""
    from sketchrnn.data.synthetic import write_synthetic_npz

    data = tmp_path / "s.npz"
    write_synthetic_npz(data, 64, 16, 16, seed=0)
    common = ["train", "--dry-run", "--no-progress", "--threads", "1", "--data", str(data), "--set",
              "model.conditional=false"]
    r = run("tf32_head_arm.py", *common, "--out", str(tmp_path / "arm"))
    assert r.returncode == 0, r.stderr[-2000:]
    plain = subprocess.run([sys.executable, "-m", "sketchrnn", *common, "--out", str(tmp_path / "plain")],
                           capture_output=True, text=True, timeout=240, cwd=ROOT,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert plain.returncode == 0, plain.stderr[-2000:]

    def first_rows(run_dir):
        lines = (run_dir / "metrics.csv").read_text().splitlines()
        head = lines[0].split(",")
        rows = [dict(zip(head, x.split(","))) for x in lines[1:]]
        return float(rows[0]["loss"]), float([x for x in rows if x["valid_loss"]][0]["valid_loss"])

    (arm_loss, arm_valid), (plain_loss, plain_valid) = first_rows(tmp_path / "arm"), first_rows(tmp_path / "plain")
    assert arm_loss != plain_loss and abs(arm_loss - plain_loss) < 1e-3 * abs(plain_loss)
    assert arm_valid == plain_valid
    r = run("tf32_effect.py", str(tmp_path / "arm" / "last.pt"), "--data", str(data), "--n", "16")
    assert r.returncode == 0, r.stderr[-2000:]
    for setting in ("fp32", "head", "recurrence", "both"):
        assert f"{setting}: L_R" in r.stdout, r.stdout


@pytest.mark.skipif(not (SHARED / "models" / "magenta" / "cat.gen.json").exists(),
                    reason="needs ../shared (Magenta's cat model) beside the checkout")
def test_studio_latency_one_repeat():
    r = run("studio_latency.py", "--repeats", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| cat |" in r.stdout


def test_amortisation_gap_small(tmp_path):
    """The shipped `yoga` VAE on 5 synthetic sketches: the per-sketch q lowers the ELBO under
    the same z noise, and the importance-weighted bound sits below the ELBO; a decoder-only
    model is refused in one line."""
    from sketchrnn.data.synthetic import write_synthetic_npz

    data = tmp_path / "shapes.npz"
    write_synthetic_npz(data, n_train=10, n_valid=10, n_test=10, seed=0)
    r = run("amortisation_gap.py", "--model", "yoga", "--data", str(data), "--n", "5", "--steps", "20",
            "--report-every", "20", "--eval-samples", "4", "--iwae", "32", "--lr", "0.05")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    amortised, iwae, optimised = rows[0], rows[1], rows[-1]
    assert iwae["k"] == 32 and iwae["nll"] < amortised["elbo"]
    assert optimised["step"] == 20 and optimised["elbo"] < amortised["elbo"]
    assert optimised["gap"] == pytest.approx(amortised["elbo"] - optimised["elbo"])
    assert abs(amortised["elbo"] - amortised["recon_sampled"] - amortised["kl"]) < 1e-9
    r = run("amortisation_gap.py", "--model", "yoga-uncond", "--data", str(data), "--n", "2", "--steps", "1")
    assert r.returncode == 2 and "decoder-only" in r.stderr and "Traceback" not in r.stderr


def _dry_run_with_average(tmp_path, *overrides: str):
    """A `train --dry-run` with a weight average on synthetic data: (data file, last.pt, its payload)."""
    import torch

    from sketchrnn.data.synthetic import write_synthetic_npz

    data = tmp_path / "s.npz"
    write_synthetic_npz(data, n_train=64, n_valid=16, n_test=16, seed=0)
    r = subprocess.run([sys.executable, "-m", "sketchrnn", "train", "--dry-run", "--no-progress", "--threads", "1",
                        "--data", str(data), "--out", str(tmp_path / "run"), "--set", "train.ema_decay=0.9", *overrides],
                       capture_output=True, text=True, timeout=240, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    first = tmp_path / "run" / "last.pt"
    return data, first, torch.load(first, weights_only=True)


def test_model_soup_scores_decoder_only_runs(tmp_path):
    """model_soup.py on a decoder-only model (no recon, no KL: the NLL alone) prints NLL rows and
    writes --out-best (it raised a TypeError on None until 2026-12-08)."""
    data, first, _ = _dry_run_with_average(tmp_path, "model.conditional=false")
    out = tmp_path / "best.pt"
    r = run("model_soup.py", str(first), str(first), "--data", str(data), "--dry-run", "--out-best", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "uniform soup of 2            NLL" in r.stdout
    res = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][0])
    assert all(row["recon_per_point"] is None for row in res["rows"])
    assert out.exists()


def test_tail_average_scores_the_mean_of_trained_weights(tmp_path):
    """tail_average.py on two full checkpoints of one run: its `tail mean of trained, k=2` row is
    the ELBO of the element-wise mean of the two trained weight sets (scored here independently),
    and --out-best writes an average-only checkpoint that loads as the best row's model."""
    import torch

    from sketchrnn.checkpoint import load_model, read_checkpoint
    from sketchrnn.data.npz import load_npz
    from sketchrnn.evaluate import evaluate_model

    data, first, ck = _dry_run_with_average(tmp_path)
    gen = torch.Generator().manual_seed(0)
    later = {**ck, "step": ck["step"] + 250,
             "model": {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in ck["model"].items()}}
    second = tmp_path / "later.pt"
    torch.save(later, second)
    out = tmp_path / "best.pt"
    r = run("tail_average.py", str(second), str(first), "--data", str(data), "--dry-run", "--out-best", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][0])
    rows = {x["candidate"]: x for x in res["rows"]}
    assert res["steps"] == [ck["step"], ck["step"] + 250] and res["n_sketches"] == 10
    mean = {k: (ck["model"][k].double() + later["model"][k].double()).div(2).float() for k in ck["model"]}
    loaded = load_model(first)
    loaded.model.load_state_dict(mean)
    sketches = load_npz(data, ["valid"])["valid"][:10]  # --dry-run: the first 10, k = 2
    want = evaluate_model(loaded, sketches, seed=0)["nll_per_point"]
    assert rows["tail mean of trained, k=2"]["elbo_per_point"] == pytest.approx(want, rel=1e-9)
    assert rows["trained"]["elbo_per_point"] != pytest.approx(want, rel=1e-6)  # the perturbation shows
    written = read_checkpoint(out)
    assert written["resume_mode"] == "average-only" and "ema" not in written and "optimizer" not in written
    got = evaluate_model(load_model(out), sketches, seed=0)["nll_per_point"]
    assert got == pytest.approx(res["best"]["elbo_per_point"], rel=1e-9)
    r = run("tail_average.py", str(first), "--data", str(data))
    assert r.returncode == 2 and "two different steps" in r.stderr and "Traceback" not in r.stderr


def test_model_soup_scores_the_mean_of_the_runs_averages(tmp_path):
    """model_soup.py on three runs' checkpoints: its `uniform soup of 3` row is the ELBO of the
    element-wise mean of the three weight averages (scored here independently), the greedy rows
    keep only runs that do not make the soup worse, --out-best loads as the best row's model, and
    runs of another model are refused in one line."""
    import torch

    from sketchrnn.checkpoint import load_model, read_checkpoint
    from sketchrnn.data.npz import load_npz
    from sketchrnn.evaluate import evaluate_model

    data, first, ck = _dry_run_with_average(tmp_path)
    gen = torch.Generator().manual_seed(0)
    files, emas = [first], [ck["ema"]]
    for i, size in enumerate((0.02, 0.5)):  # a small and a large perturbation of the average
        ema = {k: v + size * torch.randn(v.shape, generator=gen) for k, v in ck["ema"].items()}
        f = tmp_path / f"run{i + 2}.pt"
        torch.save({**ck, "ema": ema}, f)
        files.append(f)
        emas.append(ema)
    out = tmp_path / "best.pt"
    r = run("model_soup.py", *map(str, files), "--data", str(data), "--dry-run", "--out-best", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][0])
    rows = {x["candidate"]: x for x in res["rows"]}
    sketches = load_npz(data, ["valid"])["valid"][:10]  # --dry-run: the first 10
    loaded = load_model(first)
    loaded.model.load_state_dict({k: sum(e[k].double() for e in emas).div(3).float() for k in ck["ema"]})
    want = evaluate_model(loaded, sketches, seed=0)["nll_per_point"]
    assert rows["uniform soup of 3"]["elbo_per_point"] == pytest.approx(want, rel=1e-9)
    singles = [x for x in res["rows"] if x["candidate"].startswith("average of run")]
    assert len(singles) == 3 and len({round(x["elbo_per_point"], 9) for x in singles}) == 3  # the perturbations show
    greedy = [x for x in res["rows"] if x["candidate"].startswith("greedy")]
    assert len(greedy) == 2  # the best single run, then each other run tried once
    assert res["best"]["elbo_per_point"] == min(x["elbo_per_point"] for x in res["rows"])
    written = read_checkpoint(out)
    assert written["resume_mode"] == "average-only" and "ema" not in written and "optimizer" not in written
    got = evaluate_model(load_model(out), sketches, seed=0)["nll_per_point"]
    assert got == pytest.approx(res["best"]["elbo_per_point"], rel=1e-9)
    other = json.loads(ck["config"])
    other["model"]["z_size"] = other["model"]["z_size"] + 1
    f = tmp_path / "other.pt"
    torch.save({**ck, "config": json.dumps(other)}, f)
    r = run("model_soup.py", str(first), str(f), "--data", str(data))
    assert r.returncode == 2 and "another model" in r.stderr and "Traceback" not in r.stderr
    r = run("model_soup.py", str(first), "--data", str(data))
    assert r.returncode == 2 and "at least two runs" in r.stderr and "Traceback" not in r.stderr
