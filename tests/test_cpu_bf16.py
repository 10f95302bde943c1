"""bfloat16 products on the CPU (``train.matmul_precision: medium``, oneDNN on AVX512-BF16/AMX).

The mode is a process-wide oneDNN flag; the project sets it only around training steps
(:func:`sketchrnn.precision.cpu_bf16_products`), keeps the mixture head float32 under it, and
forces float32 for validation (:func:`sketchrnn.precision.full_fp32_matmul`). Where this CPU or
torch has no bfloat16 products the tests that need them skip, saying so.
"""

from __future__ import annotations

import pytest
import torch

from sketchrnn.precision import cpu_bf16_available, cpu_bf16_products, cpu_fp32_reduced, full_fp32_matmul

MK = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
NEW_API = MK is not None and hasattr(MK, "fp32_precision")
needs_bf16 = pytest.mark.skipif(not cpu_bf16_available(),
                                reason="this CPU/torch has no bfloat16 products (oneDNN with AVX512-BF16 or AMX, torch >= 2.9)")


@pytest.fixture
def restore_cpu_flags():
    saved = (MK.fp32_precision, torch.backends.mkldnn.fp32_precision, torch.backends.fp32_precision) if NEW_API else None
    yield
    if saved is not None:
        MK.fp32_precision, torch.backends.mkldnn.fp32_precision, torch.backends.fp32_precision = saved


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).norm() / b.detach().double().norm())


@needs_bf16
def test_bf16_products_change_a_product_only_inside_the_block(restore_cpu_flags):
    torch.manual_seed(0)
    a, w = torch.randn(100, 645), torch.randn(645, 2048)
    ref = a.double() @ w.double()
    assert not cpu_fp32_reduced()
    with cpu_bf16_products():
        assert cpu_fp32_reduced()
        inside = a @ w
        with full_fp32_matmul():  # validation inside a training block: float32 again
            assert not cpu_fp32_reduced()
            assert _rel(a @ w, ref) < 1e-6
        assert cpu_fp32_reduced()
    assert not cpu_fp32_reduced()
    assert 1e-4 < _rel(inside, ref) < 1e-2  # bfloat16 inputs (8-bit mantissa), float32 sums
    assert _rel(a @ w, ref) < 1e-6


@needs_bf16
def test_bf16_products_restore_after_an_exception(restore_cpu_flags):
    MK.fp32_precision = "ieee"
    with pytest.raises(ValueError):
        with cpu_bf16_products():
            raise ValueError("inside")
    assert MK.fp32_precision == "ieee" and not cpu_fp32_reduced()


def test_disabled_block_changes_nothing(restore_cpu_flags):
    before = MK.fp32_precision if NEW_API else None
    with cpu_bf16_products(False):
        assert not cpu_fp32_reduced()
    assert (MK.fp32_precision if NEW_API else None) == before


@needs_bf16
def test_float32_head_stays_float32_under_cpu_bf16(restore_cpu_flags):
    """The mixture head's output and gradients (dx, dW, db) under the mode are the float32
    ones (float64 reference, 1e-5), while a plain nn.Linear there is off by the bf16 error."""
    from sketchrnn.model.decoder import Float32Head

    torch.manual_seed(3)
    head = Float32Head(512, 123)
    x = torch.randn(2000, 512, requires_grad=True)
    g = torch.randn(2000, 123)
    with cpu_bf16_products():
        y = head(x)
        dx, dw, db = torch.autograd.grad(y, [x, head.weight, head.bias], g)
        plain = torch.nn.functional.linear(x, head.weight, head.bias)
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, head.weight, head.bias))
    y64 = torch.nn.functional.linear(x64, w64, b64)
    r = torch.autograd.grad(y64, [x64, w64, b64], g.double())
    assert _rel(y, y64) < 1e-5
    assert all(_rel(a, b) < 1e-5 for a, b in zip((dx, dw, db), r))
    assert _rel(plain, y64) > 1e-4  # the mode is really on: the test can fail


@pytest.fixture(scope="module")
def shapes_npz(tmp_path_factory):
    from sketchrnn.data.synthetic import write_synthetic_npz

    p = tmp_path_factory.mktemp("data") / "shapes.npz"
    write_synthetic_npz(p, 64, 16, 16, seed=0)
    return p


def _cfg(data, precision: str):
    from sketchrnn.config import Config, apply_overrides

    return apply_overrides(Config(), [f"data.paths={data}", "model.enc_rnn_size=16", "model.dec_rnn_size=32",
                                      "model.z_size=8", "model.num_mixture=3", "model.dec_model=layer_norm",
                                      "model.max_seq_len=64", "train.batch_size=8", "train.log_every=1",
                                      "train.eval_every=2", "train.save_every=100", "train.max_eval_sketches=16",
                                      "train.num_steps=4", "train.device=cpu", f"train.matmul_precision={precision}"])


def _fit_recording(tmp_path, data, precision: str, monkeypatch=None):
    """Fit 4 steps; returns (trainer, [(training?, bf16 products on?) per loss call], log lines)."""
    from sketchrnn.train import Trainer

    lines: list[str] = []
    tr = Trainer(_cfg(data, precision), tmp_path / precision, progress=False, log=lines.append)
    calls = []
    real = tr._losses

    def spy(batch, n_max=None):
        calls.append((tr.model.training, cpu_fp32_reduced()))
        return real(batch, n_max)

    tr._losses = spy
    tr.fit()
    return tr, calls, lines


@needs_bf16
def test_medium_trains_in_bf16_and_validates_in_float32_on_the_cpu(tmp_path, shapes_npz, restore_cpu_flags):
    MK.fp32_precision = "ieee"
    tr, calls, lines = _fit_recording(tmp_path, shapes_npz, "medium")
    assert any("training products in bfloat16" in s for s in lines)
    train_calls = [on for training, on in calls if training]
    valid_calls = [on for training, on in calls if not training]
    assert len(train_calls) == 4 and all(train_calls)
    assert valid_calls and not any(valid_calls)
    assert MK.fp32_precision == "ieee" and not cpu_fp32_reduced()  # back after fit()
    _, calls32, _ = _fit_recording(tmp_path, shapes_npz, "high")  # high: float32 on the CPU
    assert calls32 and not any(on for _, on in calls32)
    # same data order, same seed: bf16 products change the numbers, a little
    l16 = [float(r) for r in _read_losses(tmp_path / "medium")]
    l32 = [float(r) for r in _read_losses(tmp_path / "high")]
    assert l16 != l32
    assert all(abs(a - b) <= 0.02 * abs(b) + 0.02 for a, b in zip(l16, l32))


def _read_losses(run):
    import csv

    with open(run / "metrics.csv") as f:
        return [r["loss"] for r in csv.DictReader(f) if r["loss"]]


def test_medium_without_cpu_bf16_says_so_and_trains_in_float32(tmp_path, shapes_npz, monkeypatch, restore_cpu_flags):
    import sketchrnn.train as train_mod

    monkeypatch.setattr(train_mod, "cpu_bf16_available", lambda: False)
    tr, calls, lines = _fit_recording(tmp_path, shapes_npz, "medium")
    assert any("no bfloat16 products" in s and "float32" in s for s in lines)
    assert calls and not any(on for _, on in calls)
    assert tr.step == 4
