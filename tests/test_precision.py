"""sketchrnn.precision: CUDA's float32 product mode read and forced without torch's mixed-API errors.

torch >= 2.9 raises from ``torch.get_float32_matmul_precision()`` (and from reading the legacy
``allow_tf32``) once the legacy and the per-backend APIs have both been used, e.g. after a user's
``torch.backends.cuda.matmul.fp32_precision = "tf32"`` (the new, recommended form). These flags
are process-wide but device-independent, so the CPU tests check them all.
"""

from __future__ import annotations

import pathlib
import re

import pytest
import torch

from sketchrnn.precision import cuda_fp32_reduced, full_fp32_matmul

NEW_API = hasattr(torch.backends.cuda.matmul, "fp32_precision")
_BACKENDS = ["", "cuda.matmul", "cudnn", "cudnn.conv", "cudnn.rnn", "mkldnn", "mkldnn.matmul", "mkldnn.conv",
             "mkldnn.rnn"]


def _backend(name: str):
    obj = torch.backends
    for part in filter(None, name.split(".")):
        obj = getattr(obj, part)
    return obj


def _flags() -> dict[str, str]:
    """Every backend's per-backend fp32_precision (torch >= 2.9)."""
    return {n: _backend(n).fp32_precision for n in _BACKENDS if hasattr(_backend(n), "fp32_precision")}


@pytest.fixture
def restore_precision():
    """Every precision flag back as it was, whatever the test set (either API)."""
    if NEW_API:
        try:  # torch keeps the generic setting's own value beside the per-backend ones
            generic = torch.get_float32_matmul_precision()
        except RuntimeError:
            generic = None
        saved = _flags()
        yield
        if generic is not None:
            torch.set_float32_matmul_precision(generic)
        for n, v in saved.items():
            _backend(n).fp32_precision = v
    else:
        old = torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32
        yield
        torch.set_float32_matmul_precision(old[0])
        torch.backends.cuda.matmul.allow_tf32 = old[1]


SETTERS = {
    "generic highest": lambda: torch.set_float32_matmul_precision("highest"),
    "generic high": lambda: torch.set_float32_matmul_precision("high"),
    "generic medium": lambda: torch.set_float32_matmul_precision("medium"),
    "legacy on": lambda: setattr(torch.backends.cuda.matmul, "allow_tf32", True),
    "legacy off": lambda: setattr(torch.backends.cuda.matmul, "allow_tf32", False),
    "cudnn legacy on": lambda: setattr(torch.backends.cudnn, "allow_tf32", True),
    "new tf32": lambda: setattr(torch.backends.cuda.matmul, "fp32_precision", "tf32"),
    "new ieee": lambda: setattr(torch.backends.cuda.matmul, "fp32_precision", "ieee"),
    "new generic tf32": lambda: setattr(torch.backends, "fp32_precision", "tf32"),
}

# (what the user set, in order; whether CUDA's float32 matmuls may then use TF32)
CASES = [
    ((), False),
    (("generic highest",), False),
    (("generic high",), True),
    (("generic medium",), True),
    (("legacy on",), True),
    (("legacy on", "cudnn legacy on"), True),  # the common two-line idiom
    (("cudnn legacy on",), False),
    (("new tf32",), True),
    (("new generic tf32",), True),
    (("generic high", "legacy off"), False),
    (("legacy on", "generic highest"), False),
    (("new tf32", "legacy off"), False),
    (("generic high", "new ieee"), False),  # the generic getter would still say "high" here
    (("legacy on", "new ieee"), False),
    (("new ieee", "new generic tf32"), False),  # the backend's own setting overrides the generic one
]


@pytest.mark.parametrize("seq,reduced", CASES, ids=[" + ".join(s) or "default" for s, _ in CASES])
def test_reads_and_forces_cuda_fp32_under_every_mix_of_apis(restore_precision, seq, reduced):
    if not NEW_API and any(s.startswith("new") for s in seq):
        pytest.skip("torch < 2.9 has no per-backend fp32_precision")
    if NEW_API:  # a known start, whatever ran before: torch's defaults
        torch.backends.fp32_precision = torch.backends.cuda.matmul.fp32_precision = "none"
    else:
        SETTERS["generic highest"]()
        SETTERS["legacy off"]()
    for name in seq:
        SETTERS[name]()
    state = _flags() if NEW_API else torch.get_float32_matmul_precision()
    assert cuda_fp32_reduced() is reduced
    with full_fp32_matmul():
        assert cuda_fp32_reduced() is False
    assert cuda_fp32_reduced() is reduced
    assert (_flags() if NEW_API else torch.get_float32_matmul_precision()) == state


def test_full_fp32_matmul_restores_after_an_exception(restore_precision):
    torch.set_float32_matmul_precision("high")
    with pytest.raises(ValueError):
        with full_fp32_matmul():
            assert not cuda_fp32_reduced()
            raise ValueError("inside")
    assert cuda_fp32_reduced()


def test_float32_head_and_validation_block_work_after_the_new_api(restore_precision):
    """What broke on an H100 with torch 2.11: the head asked the generic getter. On the CPU the
    head takes the CUDA branch's decision only for CUDA tensors, so check the pieces it uses."""
    from sketchrnn.model.decoder import _float32_products

    if NEW_API:
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
    with _float32_products("cpu"):
        assert not cuda_fp32_reduced()
    with full_fp32_matmul():  # Trainer.validate's block
        assert not cuda_fp32_reduced()
    assert cuda_fp32_reduced()


def test_library_code_never_asks_the_generic_or_legacy_getters():
    """Only sketchrnn/precision.py may read torch's float32 precision settings."""
    src = pathlib.Path(__file__).resolve().parents[1] / "src" / "sketchrnn"
    bad = re.compile(r"get_float32_matmul_precision\(|matmul\.allow_tf32(?!\s*=[^=])")
    offenders = [f"{p.relative_to(src)}:{i}" for p in src.rglob("*.py") if p.name != "precision.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert not offenders, offenders


TF32_WAYS = {"generic high": ("generic high",), "legacy idiom": ("legacy on", "cudnn legacy on"),
             "new api": ("new tf32",)}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("way", list(TF32_WAYS))
def test_tf32_runs_on_cuda_whichever_api_turned_it_on(restore_precision, way):
    """The head stays float32 and a fast-path training forward/backward runs (graph key, kernels)
    however the user allowed TF32 (torch 2.11 on an H100 raised from the head on 2026-11-27)."""
    if not NEW_API and way == "new api":
        pytest.skip("torch < 2.9 has no per-backend fp32_precision")
    from sketchrnn.config import ModelConfig
    from sketchrnn.fast import decoder as fd
    from sketchrnn.model import SketchRNN
    from sketchrnn.model.decoder import Float32Head

    torch.manual_seed(0)
    head = Float32Head(512, 123).cuda()
    x = torch.randn(2048, 512, device="cuda")
    ref = head(x)  # default: full float32
    for name in TF32_WAYS[way]:
        SETTERS[name]()
    assert cuda_fp32_reduced()
    out = head(x)
    assert float((out - ref).norm() / ref.norm()) <= 1e-6
    cfg = ModelConfig(enc_rnn_size=64, dec_rnn_size=64, z_size=8, num_mixture=3, max_seq_len=20)
    model = SketchRNN(cfg).cuda()
    seq = torch.zeros(3, 21, 5, device="cuda")
    seq[:, 1:, :2] = torch.randn(3, 20, 2, device="cuda") * 0.3
    seq[:, 1:, 2] = 1.0
    lengths = torch.tensor([20, 12, 7], device="cuda")
    res = fd.fast_losses(model, seq, lengths)
    torch.autograd.grad(sum(v for k, v in res.items() if k in ("L_R", "L_KL")), list(model.parameters()),
                        allow_unused=True)
    assert torch.isfinite(res["L_R"])
