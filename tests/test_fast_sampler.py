"""Fast CPU sampler (sketchrnn.fast.sampler) against the plain oracle (api.decode(fast=False)).

Exactness: both paths are fed the SAME random numbers. The fast sampler takes them as
``random=(U, N)``; the oracle's ``mdn.sample_step`` draws through ``torch.multinomial`` and
``torch.randn``, which this file replaces (only inside ``sketchrnn.model.mdn``) by an inverse
CDF on ``U`` and by ``N``, step by step. Everything else in the oracle runs unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import sketchrnn.model.mdn as mdn
from sketchrnn import api
from sketchrnn.config import ModelConfig
from sketchrnn.errors import ConfigError
from sketchrnn.fast import sampler as fs
from sketchrnn.fast.oracle import StreamTorch as _StreamTorch
from sketchrnn.fast.sampler import FastSampler, draw_random, get_sampler, supports
from sketchrnn.loaded import LoadedModel
from sketchrnn.model import SketchRNN
from sketchrnn.model.cells import HyperLSTMCell

KINDS = ["lstm", "layer_norm", "hyper"]
SCALE = 2.5
MAX_LEN = 24


def tiny(kind: str, conditional: bool, seed: int = 0, dtype=torch.float32) -> LoadedModel:
    cfg = ModelConfig(enc_model="lstm", dec_model=kind, enc_rnn_size=8, dec_rnn_size=32, z_size=4, num_mixture=4,
                      hyper_rnn_size=8, hyper_embedding_size=8, max_seq_len=MAX_LEN, conditional=conditional)
    torch.manual_seed(seed)
    m = SketchRNN(cfg).to(dtype).eval()
    with torch.no_grad():  # livelier than the initialisation; end-of-sketch rarer: longer sketches
        for p in m.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.2)
        m.decoder.output.bias[2] -= 2.0
    return LoadedModel(model=m, config=cfg, scale_factor=SCALE, class_names=[], name=f"tiny-{kind}")


def _z(lm: LoadedModel, B: int, seed: int = 1) -> np.ndarray | None:
    if not lm.config.conditional:
        return None
    return np.random.default_rng(seed).normal(size=(B, lm.config.z_size)).astype(np.float32)


def _assert_same_sketches(fast: list[np.ndarray], plain: list[np.ndarray], rtol: float = 1e-5) -> int:
    """Same lengths and pen states; offsets equal to rtol relative to the sketch's largest offset."""
    assert len(fast) == len(plain)
    n = 0
    for a, b in zip(fast, plain):
        assert a.dtype == np.float32 and a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_array_equal(a[:, 2], b[:, 2])
        if len(b):
            err = np.abs(a[:, :2] - b[:, :2]).max() / max(np.abs(b[:, :2]).max(), 1e-30)
            assert err <= rtol, err
        n += len(b)
    return n


CASES = [
    dict(temperature=0.7),
    dict(temperature=1.3, temperature_mode="magenta_py"),
    dict(temperature=0.9, temperature_mode="magenta_js", allow_end=False),
    dict(temperature=0.5, prefix=np.array([[3.0, -1.0, 0], [2.0, 4.0, 1], [-5.0, 0.5, 0]], np.float32)),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("B,backend", [(3, "torch"), (3, "numpy"), (3, "native"), (12, "numpy"), (12, "torch"), (12, "native")])
def test_fast_equals_plain_given_the_same_random_numbers(kind, conditional, B, backend, monkeypatch):
    lm = tiny(kind, conditional)
    z = _z(lm, B)
    sampler = FastSampler(lm, backend=backend)
    total, ended_early = 0, 0
    for i, kw in enumerate(CASES):
        U, N = draw_random(torch.Generator().manual_seed(10 + i), MAX_LEN, B)
        fast = sampler.decode(None if z is None else torch.from_numpy(z), B, random=(U, N), scale_factor=SCALE, **kw)
        stream = _StreamTorch(U, N)
        monkeypatch.setattr(mdn, "torch", stream)
        plain = api.decode(lm, z, n=B, fast=False, **kw)
        monkeypatch.setattr(mdn, "torch", torch)
        assert stream.t == min(MAX_LEN, max(len(s) for s in plain) + 1)  # the oracle drew once per step
        total += _assert_same_sketches(fast, plain)
        ended_early += sum(0 < len(s) < MAX_LEN for s in plain)
    assert total > 8 * B  # real drawings were compared, not empty ones
    assert ended_early > 0  # per-sketch stopping was exercised


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_equals_plain(kind):
    for conditional, B in [(True, 2), (False, 11)]:
        lm = tiny(kind, conditional, seed=3)
        z = _z(lm, B)
        plain = api.decode(lm, z, n=B, greedy=True, fast=False)
        fast = api.decode(lm, z, n=B, greedy=True)  # fast=True by default on CPU
        _assert_same_sketches(fast, plain)


def test_float64_model_agrees_tightly(monkeypatch):
    lm = tiny("hyper", True, dtype=torch.float64)
    B = 4
    z = _z(lm, B)
    U, N = draw_random(torch.Generator().manual_seed(0), MAX_LEN, B, np.float64)
    fast = FastSampler(lm).decode(torch.from_numpy(z), B, temperature=0.8, random=(U, N), scale_factor=SCALE)
    monkeypatch.setattr(mdn, "torch", _StreamTorch(U, N))
    plain = api.decode(lm, z, n=B, temperature=0.8, fast=False)
    assert _assert_same_sketches(fast, plain, rtol=1.2e-7) > B  # float64 inside; 1 ulp of the float32 output


def test_default_stream_has_the_model_distribution():
    """The fast sampler's own draws (torch.rand / randn, inverse CDF) follow the MDN: at the
    first step after a prefix, the end-of-sketch rate, the pen-lift rate and the mean offset
    match softmax(logits / tau) and sum_k pi_k mu_k (20000 sketches; 5 standard errors)."""
    lm = tiny("lstm", False, seed=5)
    dec = lm.model.decoder
    prefix = np.array([[1.0, 2.0, 0.0]], np.float32)
    tau = 0.8
    with torch.no_grad():  # the oracle's first output after the prefix
        state = dec.initial_state(None, 1)
        _, state = dec.step(torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]]), None, state)
        out, _ = dec.step(torch.tensor([[1.0 / SCALE, 2.0 / SCALE, 1.0, 0.0, 0.0]]), None, state)
        p = mdn.split_params(out)
        p_end = float(torch.softmax(p.pen_logits[0] / tau, -1)[2])
        p_lift = float(torch.softmax(p.pen_logits[0, :2] / tau, -1)[1])
        mean_dx = float((torch.softmax(p.log_pi[0] / tau, -1) * p.mu_x[0]).sum()) * SCALE
    n = 20000
    sampler = FastSampler(lm)
    s = sampler.decode(None, n, temperature=tau, generator=torch.Generator().manual_seed(0), max_len=1,
                       prefix=prefix, scale_factor=SCALE)
    ended = np.mean([len(x) == 0 for x in s])
    assert abs(ended - p_end) < 5 * math.sqrt(p_end * (1 - p_end) / n) + 1e-4
    s = sampler.decode(None, n, temperature=tau, generator=torch.Generator().manual_seed(1), max_len=2,
                       prefix=prefix, allow_end=False, scale_factor=SCALE)
    first = np.stack([x[0] for x in s])  # (n, 3): the first new point (the pen is forced up only on the last)
    assert abs(first[:, 2].mean() - p_lift) < 5 * math.sqrt(p_lift * (1 - p_lift) / n) + 1e-4
    assert abs(first[:, 0].mean() - mean_dx) < 5 * first[:, 0].std() / math.sqrt(n)


def test_api_decode_fast_switch_and_determinism():
    lm = tiny("layer_norm", True)
    z = _z(lm, 3)
    a = api.decode(lm, z, seed=4, temperature=0.6)
    b = api.decode(lm, z, seed=4, temperature=0.6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)  # the same seed gives the same sketches
    c = api.decode(lm, z, seed=5, temperature=0.6)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))
    # fast=True uses the sampler: same numbers as calling it with the same generator
    direct = get_sampler(lm).decode(torch.from_numpy(z), 3, temperature=0.6, generator=api._generator(4),
                                    scale_factor=SCALE)
    for x, y in zip(a, direct):
        np.testing.assert_array_equal(x, y)
    # every sketch ends with a lifted pen and holds at least one point (no end at step 0)
    assert all(len(x) >= 1 and x[-1, 2] == 1.0 for x in a)


def test_unsupported_model_falls_back_to_the_plain_path():
    lm = tiny("hyper", False)
    cfg = lm.config
    lm.model.decoder.cell = HyperLSTMCell(5, cfg.dec_rnn_size, hyper_size=8, hyper_embedding_size=4,
                                          use_layer_norm=False)
    assert not supports(lm)
    with pytest.raises(ConfigError):
        FastSampler(lm)
    a = api.decode(lm, None, n=2, seed=1)  # fast=True silently uses the oracle here
    b = api.decode(lm, None, n=2, seed=1, fast=False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_class_conditional_models_use_the_plain_path():
    cfg = ModelConfig(dec_model="lstm", enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=8,
                      conditional=False, class_conditional=True, num_classes=2, class_embedding_size=3)
    assert not supports(SketchRNN(cfg))


def test_cache_follows_weight_changes():
    lm = tiny("lstm", True)
    s1 = get_sampler(lm)
    assert get_sampler(lm.model) is s1
    z = _z(lm, 1)
    g1 = api.decode(lm, z, greedy=True)[0]
    with torch.no_grad():
        lm.model.decoder.cell.weight_hh.mul_(1.5)
    assert get_sampler(lm) is not s1
    _assert_same_sketches(api.decode(lm, z, greedy=True), api.decode(lm, z, greedy=True, fast=False))
    assert not np.array_equal(g1, api.decode(lm, z, greedy=True)[0])


def test_bad_arguments_are_one_line_errors():
    lm = tiny("lstm", False)
    s = FastSampler(lm)
    with pytest.raises(ConfigError) as e:
        s.decode(None, 2, temperature_mode="hot")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError):
        s.decode(None, 2, temperature=0.0)
    with pytest.raises(ConfigError):
        s.decode(None, 2, max_len=5, random=draw_random(torch.Generator(), 4, 2))
    with pytest.raises(ConfigError):
        FastSampler(lm, backend="cuda")


def test_backend_choice_never_changes_numpy_threads():
    before = fs._openblas_threads()
    choice = fs.choose_backend()
    assert choice in ("torch", "numpy")
    assert fs._openblas_threads() == before
    if choice == "numpy":
        assert before == 1 and torch.get_num_threads() == 1


# ----------------------------------------------------------------------------- native C kernel
from sketchrnn.fast import native  # noqa: E402

needs_native = pytest.mark.skipif(not native.available(), reason=f"native sampler not built here: {native.status()}")


def _float64_copy(lm: LoadedModel) -> LoadedModel:
    m = SketchRNN(lm.config)
    m.load_state_dict(lm.model.state_dict())
    return LoadedModel(model=m.to(torch.float64).eval(), config=lm.config, scale_factor=lm.scale_factor,
                       class_names=[], name=lm.name + "-f64")


def _has_f16() -> bool:
    return native.available() and bool(native._load().sk_has_f16())


@needs_native
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("half,head32", [(False, False), (True, False), (True, True)],
                         ids=["f32-panels", "f16-panels", "f16-panels-f32-head"])
def test_native_kernel_equals_the_float64_oracle(kind, conditional, half, head32, monkeypatch):
    """The C kernel (float32 math) against the plain model run in float64 on the same random
    numbers, at sizes where every panel has several blocks (H 64, hyper 16 / 8, M 5). With
    ``half`` the weights are float16 values (as in shipped models) and the kernel streams
    them as float16, which it must do by itself; ``head32``: all but the mixture head, which
    stays float32 (as half exports since 2026-11-27) and is streamed as float32."""
    if half and not _has_f16():
        pytest.skip("this build of the kernel has no float16 support (x86 F16C/AVX2/FMA)")
    cfg = ModelConfig(enc_model="lstm", dec_model=kind, enc_rnn_size=8, dec_rnn_size=64, z_size=6, num_mixture=5,
                      hyper_rnn_size=16, hyper_embedding_size=8, max_seq_len=40, conditional=conditional)
    torch.manual_seed(7)
    m = SketchRNN(cfg).eval()
    with torch.no_grad():
        for p in m.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        m.decoder.output.bias[2] -= 2.0
        if half:
            for name, p in m.named_parameters():
                if not (head32 and name.startswith("decoder.output.")):
                    p.copy_(p.half().float())
    lm = LoadedModel(model=m, config=cfg, scale_factor=SCALE, class_names=[], name=f"mid-{kind}")
    lm64 = _float64_copy(lm)
    B = 4
    z = _z(lm, B)
    sampler = FastSampler(lm, backend="native")
    assert sampler.native().half == half and sampler.native().struct.half == (3 if head32 else int(half))
    compared = 0
    for i, kw in enumerate(CASES):
        U, N = draw_random(torch.Generator().manual_seed(20 + i), 40, B)
        fast = sampler.decode(None if z is None else torch.from_numpy(z), B, random=(U, N), scale_factor=SCALE, **kw)
        monkeypatch.setattr(mdn, "torch", _StreamTorch(U.astype(np.float64), N.astype(np.float64)))
        plain = api.decode(lm64, None if z is None else z.astype(np.float64), n=B, fast=False, **kw)
        monkeypatch.setattr(mdn, "torch", torch)
        compared += _assert_same_sketches(fast, [s.astype(np.float32) for s in plain], rtol=1e-5)
    assert compared > 10 * B


@needs_native
def test_native_is_the_default_for_small_batches_and_numpy_for_large():
    lm = tiny("hyper", True)
    s = get_sampler(lm)
    assert s.native() is not None
    calls = []
    real = s._decode_native
    s._decode_native = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        z = torch.from_numpy(_z(lm, 20))
        s.decode(z[:3], 3, temperature=0.5)
        assert calls == [1]
        s.decode(z, 20, temperature=0.5)  # 20 > 8: one batched pass reads the weights once per step
        assert calls == [1]
    finally:
        del s._decode_native


def test_models_the_kernel_does_not_cover_use_numpy():
    cfg = ModelConfig(enc_model="lstm", dec_model="hyper", enc_rnn_size=8, dec_rnn_size=32, z_size=4, num_mixture=4,
                      hyper_rnn_size=8, hyper_embedding_size=4, max_seq_len=MAX_LEN)  # E = 4: not a multiple of 8
    lm = LoadedModel(model=SketchRNN(cfg).eval(), config=cfg, scale_factor=1.0, class_names=[], name="e4")
    s = FastSampler(lm)
    assert s.native() is None
    z = torch.zeros(2, 4)
    _assert_same_sketches(s.decode(z, 2, greedy=True), api.decode(lm, z.numpy(), n=2, greedy=True, fast=False))
    with pytest.raises(ConfigError) as e:
        FastSampler(lm, backend="native")
    assert "\n" not in str(e.value) and "native" in str(e.value)


_PROBE = """
import json, numpy as np, torch
from sketchrnn.fast import native
from sketchrnn.fast.sampler import FastSampler
from sketchrnn.config import ModelConfig
from sketchrnn.model import SketchRNN
cfg = ModelConfig(dec_rnn_size=16, enc_rnn_size=8, z_size=4, num_mixture=3, max_seq_len=12, conditional=False)
torch.manual_seed(0)
s = FastSampler(SketchRNN(cfg).eval())
out = s.decode(None, 2, greedy=True)
print(json.dumps({"available": native.available(), "status": native.status(), "used": s.native() is not None,
                  "n": [len(x) for x in out]}))
"""


def _probe(tmp_path, **env) -> dict:
    import json
    import os
    import subprocess
    import sys

    e = {**os.environ, "SKETCHRNN_CACHE_DIR": str(tmp_path / "cache"), **env}
    r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=e, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_without_a_compiler_or_when_disabled_the_sampler_still_works(tmp_path):
    off = _probe(tmp_path, SKETCHRNN_NATIVE="0")
    assert off == {"available": False, "status": "disabled by SKETCHRNN_NATIVE=0", "used": False, "n": off["n"]}
    nocc = _probe(tmp_path, CC="/nonexistent/cc")
    assert not nocc["available"] and not nocc["used"] and "no C compiler" in nocc["status"]
    assert nocc["n"] == off["n"] and min(off["n"]) >= 1
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.so"))


@needs_native
def test_kernel_is_built_once_per_cache(tmp_path):
    first = _probe(tmp_path)
    assert first["available"] and first["used"] and first["status"] == "ok"
    (so,) = list((tmp_path / "cache").glob("native_sampler-*.so"))
    stamp = so.stat().st_mtime_ns
    again = _probe(tmp_path)
    assert again == first
    assert so.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert not [p for p in (tmp_path / "cache").iterdir() if p != so]  # no temporary files left behind


@needs_native
def test_native_kernel_agrees_with_numpy_over_many_shapes():
    """Random sizes (several 8-blocks, mixtures past the kernel's 64-entry stack buffer),
    temperatures, prefixes and lengths: the C kernel and the NumPy sampler draw the same
    sketches from the same random numbers."""
    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(24):
        kind = KINDS[trial % 3]
        M = int(rng.choice([1, 3, 20, 70]))
        cfg = ModelConfig(enc_model="lstm", dec_model=kind, enc_rnn_size=8, dec_rnn_size=int(rng.choice([8, 16, 40])),
                          z_size=int(rng.integers(1, 9)), num_mixture=M, hyper_rnn_size=int(rng.choice([8, 24])),
                          hyper_embedding_size=int(rng.choice([8, 16])), max_seq_len=int(rng.integers(1, 30)),
                          conditional=bool(trial % 2))
        torch.manual_seed(trial)
        m = SketchRNN(cfg).eval()
        with torch.no_grad():
            for p in m.decoder.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        lm = LoadedModel(model=m, config=cfg, scale_factor=1.7, class_names=[], name="shape")
        B = int(rng.integers(1, 4))
        z = _z(lm, B, seed=trial)
        L = int(rng.integers(0, 4))
        prefix = rng.normal(size=(L, 3)).astype(np.float32) * 3 if L else None
        if prefix is not None:
            prefix[:, 2] = rng.integers(0, 2, size=L)
        kw = dict(temperature=float(rng.uniform(0.05, 2.0)), allow_end=bool(rng.integers(0, 2)), prefix=prefix,
                  greedy=bool(trial % 5 == 0), max_len=cfg.max_seq_len,
                  temperature_mode=["paper", "magenta_py", "magenta_js"][trial % 3])
        U, N = draw_random(torch.Generator().manual_seed(trial), cfg.max_seq_len, B)
        zt = None if z is None else torch.from_numpy(z)
        a = FastSampler(lm, backend="native").decode(zt, B, random=(U, N), scale_factor=1.7, **kw)
        b = FastSampler(lm, backend="numpy").decode(zt, B, random=(U, N), scale_factor=1.7, **kw)
        checked += _assert_same_sketches(a, b, rtol=2e-5)
    assert checked > 50


@needs_native
def test_a_damaged_cached_kernel_is_rebuilt(tmp_path):
    first = _probe(tmp_path)
    (so,) = list((tmp_path / "cache").glob("native_sampler-*.so"))
    so.write_bytes(b"\x7fELF truncated")
    assert _probe(tmp_path) == first  # rebuilt and used
    assert so.stat().st_size > 1000
