"""The fused Triton LSTM steps (sketchrnn.fast.triton_lstm) against the float64 reference.

On a CPU the kernels run under Triton's interpreter (NumPy underneath, one program after the
other): that checks their indexing, masking, tiling and math exactly, though not their speed;
the gpu-marked tests run the compiled kernels on CUDA. The reference is the project's
hand-differentiated LSTM (torch operations in float64), itself checked against finite
differences and the oracle model in tests/test_fast_decoder.py.
"""

from __future__ import annotations

import pytest
import stroke_batches
import torch
import triton_threads
import wrapper_check

triton = pytest.importorskip("triton", reason="the Triton kernels need the triton package (pip install triton)")

from sketchrnn.config import ModelConfig  # noqa: E402
from sketchrnn.fast import cuda as fc  # noqa: E402
from sketchrnn.fast import decoder as fd  # noqa: E402
from sketchrnn.fast import triton_lstm as tlm  # noqa: E402
from sketchrnn.model import SketchRNN  # noqa: E402

# Triton 3.6's interpreter cannot loop over a runtime bound (``range(T)``: "only 0-dimensional
# arrays can be converted to Python scalars"); 3.8's can. Compiled kernels are not affected.
_INTERPRETER_LOOPS = tuple(int(v) for v in triton.__version__.split(".")[:2]) >= (3, 8)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300))


@pytest.fixture
def small_tiles():
    """16-wide tiles (the smallest tl.dot takes) so that small test sizes use several
    programs per axis; the interpreter on CPU tensors. Restores the defaults afterwards."""
    saved = tlm.blocks()
    tlm.set_blocks(fw=(16, 16, 16), bw=(16, 16, 16))
    tlm.set_interpret(None)
    yield
    tlm.set_blocks(**saved)


def _reference(xp, w, c0, h0, masks, forget_bias):
    """Per direction, the float64 hand-differentiated LSTM (torch operations)."""
    outs = [fd._LSTMSequence.apply(xp[:, d], None, None, w[d], c0[d], h0[d],
                                   masks[:, d] if masks is not None else None, forget_bias)
            for d in range(xp.shape[1])]
    return torch.stack([o[0] for o in outs], 1), torch.stack([o[1] for o in outs]), torch.stack([o[2] for o in outs])


def _inputs(D, B, H, T, masked, seed=0):
    g = torch.Generator().manual_seed(seed)
    xp = torch.randn(T, D, B, 4 * H, dtype=torch.float64, generator=g)
    # scaled like trained recurrent weights (0.3 at H 64): a larger spread makes the recurrence
    # expand rounding errors, and plain float32 torch itself drifts past 1e-5 of float64
    # (W * 0.3 at H 512, T 12: 5e-6 for torch, 1.4e-5 for the kernels on an H200)
    w = torch.randn(D, H, 4 * H, dtype=torch.float64, generator=g) * (2.4 / H ** 0.5)
    c0 = torch.randn(D, B, H, dtype=torch.float64, generator=g)
    h0 = torch.randn(D, B, H, dtype=torch.float64, generator=g) * 0.5
    m = (torch.rand(T, D, B, H, generator=g) < 0.9).double() / 0.9 if masked else None
    return [xp, w, c0, h0], m


def _check(dtype, D, B, H, T, masked, forget_bias, tol, device="cpu"):
    ins, m = _inputs(D, B, H, T, masked)
    A = [t.clone().to(device=device, dtype=dtype).requires_grad_() for t in ins]
    R = [t.clone().requires_grad_() for t in ins]
    hs, (c, h) = tlm.lstm_sequence(*A, m.to(device=device, dtype=dtype) if m is not None else None, forget_bias)
    hr, cr, hr2 = _reference(*R, m, forget_bias)
    for a, b in ((hs, hr), (c, cr), (h, hr2)):
        assert a.shape == b.shape and a.dtype == dtype
        assert _rel(a.detach().cpu(), b.detach()) <= tol
    g = torch.Generator().manual_seed(1)
    gh, gc, gh2 = (torch.randn(t.shape, dtype=torch.float64, generator=g) for t in (hr, cr, hr2))
    to = dict(device=device, dtype=dtype)
    ((hs * gh.to(**to)).sum() + (c * gc.to(**to)).sum() + (h * gh2.to(**to)).sum()).backward()
    ((hr * gh).sum() + (cr * gc).sum() + (hr2 * gh2).sum()).backward()
    for name, a, r in zip(("xp", "w_hh", "c0", "h0"), A, R):
        assert _rel(a.grad.cpu(), r.grad) <= tol, (name, _rel(a.grad.cpu(), r.grad))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("D,B,H,T,masked", [
    (1, 20, 32, 5, True),  # the decoder: rows spill into a partial batch tile (20 = 16 + 4)
    (2, 7, 16, 4, False),  # the encoder's two directions in one grid, fewer rows than a tile
    (1, 33, 48, 3, True),  # three unit blocks, three batch tiles
])
def test_kernels_match_the_float64_reference(small_tiles, dtype, tol, D, B, H, T, masked):
    _check(dtype, D, B, H, T, masked, 1.0, tol)


@pytest.mark.parametrize("fw,bw", [((32, 16, 32), (32, 16, 64)), ((16, 32, 64), (16, 32, 128))])
def test_forget_bias_and_larger_tiles(small_tiles, fw, bw):
    """A different forget bias reaches the gate math; larger tiles (the defaults among them) too."""
    tlm.set_blocks(fw=fw, bw=bw)
    _check(torch.float64, 1, 40, 64, 3, True, 0.25, 1e-12)


def test_a_wrong_kernel_is_caught(small_tiles, monkeypatch):
    """The comparison can fail: with the forget bias dropped from the kernel's arguments
    (passed as 0 instead of 1) the outputs differ from the reference."""
    real = tlm._TritonLSTMSequence.forward

    def no_bias(ctx, xp, w, c0, h0, masks, forget_bias):
        return real(ctx, xp, w, c0, h0, masks, 0.0)

    monkeypatch.setattr(tlm._TritonLSTMSequence, "forward", staticmethod(no_bias))
    with pytest.raises(AssertionError):
        _check(torch.float64, 1, 20, 16, 3, False, 1.0, 1e-6)


@pytest.mark.parametrize("shape,transposed", [((20, 64, 32), False), ((20, 64, 32), True), ((2, 7, 32, 16), False)])
def test_tile_product_equals_matmul(shape, transposed):
    """The GEMM tile kernel (the recurrent products' benchmark against cuBLAS), float64 exact
    to rounding, for a partial row tile, a transposed (strided) right factor and a batch."""
    g = torch.Generator().manual_seed(0)
    if len(shape) == 3:
        M, K, N = shape
        a = torch.randn(M, K, dtype=torch.float64, generator=g)
        b = torch.randn(N, K, dtype=torch.float64, generator=g).t() if transposed else \
            torch.randn(K, N, dtype=torch.float64, generator=g)
    else:
        Z, M, K, N = shape
        a = torch.randn(Z, M, K, dtype=torch.float64, generator=g)
        b = torch.randn(Z, K, N, dtype=torch.float64, generator=g)
    out = tlm.mm(a, b, (16, 16, 16))
    assert out.shape == (a @ b).shape and _rel(out, a @ b) <= 1e-14
    with pytest.raises(ValueError, match="tiles"):
        tlm.mm(a, b, (16, 64, 16))


def test_block_settings_are_validated():
    with pytest.raises(ValueError, match="powers of two"):
        tlm.set_blocks(fw=(8, 16, 16))
    with pytest.raises(ValueError, match="powers of two"):
        tlm.set_blocks(bw=(32, 24, 64))
    with pytest.raises(ValueError, match="warps"):
        tlm.set_blocks(warps=3)
    with pytest.raises(ValueError, match="pwarps"):
        tlm.set_blocks(pwarps=5)
    with pytest.raises(ValueError, match="powers of two"):
        tlm.set_blocks(pfw=(32, 16, 48))
    saved = tlm.blocks()
    tlm.set_blocks(fw=(16, 16, 16), bw=(16, 16, 16))
    assert tlm.supports_size(16) and not tlm.supports_size(12) and not tlm.supports_size(8)
    tlm.set_blocks(**saved)
    assert tlm.supports_size(512) and tlm.supports_size(256) and not tlm.supports_size(48)


def _model(dtype, enc: int = 16, dec: int = 32, cell: str = "lstm"):
    cfg = ModelConfig(enc_model="lstm", dec_model=cell, enc_rnn_size=enc, dec_rnn_size=dec, z_size=4,
                      num_mixture=3, max_seq_len=10, conditional=True)
    torch.manual_seed(0)
    m = SketchRNN(cfg).to(dtype)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return m.train()


@pytest.mark.parametrize("graphs", [True, False])
def test_whole_model_through_the_cuda_wrapper(small_tiles, monkeypatch, graphs):
    """With ``configure(triton=True)`` the CUDA wrapper runs the encoder (D = 2) and the decoder
    on the Triton steps (here: interpreter, a stand-in for graph capture that calls the function
    directly; or without graphs) and the losses and every gradient equal the oracle model's
    (float32, 1e-5)."""
    calls = []
    real = tlm.lstm_sequence
    monkeypatch.setattr(tlm, "lstm_sequence", lambda *a: calls.append(a[0].shape) or real(*a))
    wrapper_check.check_through_cuda_wrapper(_model(torch.float32), monkeypatch,
                                             ["enc/lstm: graph+triton", "dec/lstm: graph+triton"] if graphs else [],
                                             graphs=graphs)
    assert [s[1:3] for s in calls] == [(2, 3), (1, 3)]  # (D, B): encoder, then decoder


def test_switch_and_what_it_covers(monkeypatch):
    seq = fd._Seq("layer_norm", {}, 1.0)
    h0 = torch.zeros(1, 2, 512)
    fc.configure(triton=False)
    assert not fc._triton_ok(fd._Seq("lstm", {}, 1.0), h0)
    fc.configure(triton=True)
    try:
        assert fc._triton_ok(fd._Seq("lstm", {}, 1.0), h0)
        assert not fc._triton_ok(seq, h0)  # LayerNorm LSTM: not covered by these kernels
        assert not fc._triton_ok(fd._Seq("lstm", {}, 1.0), h0.double())  # float32 only on the GPU path
        assert not fc._triton_ok(fd._Seq("lstm", {}, 1.0), torch.zeros(1, 2, 12))  # tiles do not divide
    finally:
        fc.configure(triton=False)


# ----------------------------------------------------------------------------- CUDA only
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("D,B,H,T", [(1, 100, 512, 12), (2, 100, 256, 12), (1, 7, 64, 5)])
def test_compiled_kernels_on_cuda(D, B, H, T):
    """Compiled kernels, default tiles, paper sizes, float32 with TF32 off: 1e-5 of float64."""
    torch.backends.cuda.matmul.allow_tf32 = False
    tlm.set_interpret(None)
    _check(torch.float32, D, B, H, T, True, 1.0, 1e-5, device="cuda")


@pytest.mark.gpu
@cuda
def test_graph_captured_training_forward_on_cuda():
    """The whole graph-captured path with the Triton steps equals the eager fast path (sizes the
    default tiles take: smaller ones fall back to graph+compile, which the first GPU run saw)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    assert tlm.supports_size(64)
    model = _model(torch.float32, enc=64, dec=64).cuda()
    fc.configure(triton=True)
    try:
        for seed in (0, 1):
            x, L = stroke_batches.make_batch([10, 7, 3, 9], 10, seed=seed, dtype=torch.float32)
            x, L = x.cuda(), L.cuda()
            masks = fd.draw_masks(model, 4, 10, 10, x, None)
            eps = torch.randn(4, 4, device="cuda")
            fd.set_cuda_acceleration(False)
            ref = fd.fast_losses(model, x, L, masks=masks, eps=eps)
            g_ref = torch.autograd.grad(ref["L_R"] + ref["L_KL"], list(model.parameters()))
            fd.set_cuda_acceleration(True)
            out = fd.fast_losses(model, x, L, masks=masks, eps=eps)
            g_out = torch.autograd.grad(out["L_R"] + out["L_KL"], list(model.parameters()))
            assert abs(out["L_R"].item() - ref["L_R"].item()) <= 1e-5 * abs(ref["L_R"].item())
            assert max(_rel(a, b) for a, b in zip(g_out, g_ref)) <= 1e-5
        assert fc.status() == ["enc/lstm: graph+triton", "dec/lstm: graph+triton"], fc.status()
    finally:
        fc.configure(triton=False)
        fd.set_cuda_acceleration(True)


def test_benchmark_dry_run(tmp_path):
    """benchmarks/bench_triton_lstm.py --dry-run (interpreter, tiny shapes): rows written, each
    within 1e-5 of the float64 reference."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "b.json"
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_triton_lstm.py"), "--device", "cpu",
                        "--dry-run"] + (["--persistent"] if _INTERPRETER_LOOPS else []) + ["--json-out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) >= 3 and not any("error" in x for x in rows)
    assert all(x["out_rel_err"] <= 1e-5 and x["grad_rel_err"] <= 1e-5 for x in rows)
    persistent = [x for x in rows if x["variant"] == "persistent"]
    assert {x["shape"] for x in persistent} == ({"tiny_dec", "tiny_enc", "tiny_ln"} if _INTERPRETER_LOOPS else set())
    assert all(x["mode"] == "persistent" for x in persistent)
    assert all(x["mode"] == "steps" for x in rows if x["variant"] == "triton")
    # the products' row reruns the best setting of each shape on that shape's own cell (2026-11-27:
    # it ran the LayerNorm shape as a plain LSTM, a KeyError on CUDA)
    x3 = [x for x in rows if x["variant"] == "persistent-tf32x3"]
    assert {x["shape"] for x in x3} == {x["shape"] for x in persistent}


def test_tiles_from_the_environment(monkeypatch):
    saved = tlm.blocks()
    try:
        monkeypatch.setenv("SKETCHRNN_TRITON_TILES", "16,16,16:64,32,128")
        tlm._tiles_from_env()
        assert tlm.blocks() == {**saved, "fw": (16, 16, 16), "bw": (64, 32, 128)}
        monkeypatch.setenv("SKETCHRNN_TRITON_TILES", "32,16,32:32,16,64:8")
        tlm._tiles_from_env()
        assert tlm.blocks() == {**saved, "fw": (32, 16, 32), "bw": (32, 16, 64), "warps": 8}
        monkeypatch.setenv("SKETCHRNN_TRITON_PTILES", "64,16,64:64,16,128:8")
        tlm._tiles_from_env()
        assert tlm.blocks() == {**saved, "fw": (32, 16, 32), "bw": (32, 16, 64), "warps": 8,
                                "pfw": (64, 16, 64), "pbw": (64, 16, 128), "pwarps": 8}
        monkeypatch.setenv("SKETCHRNN_TRITON_TILES", "16,16,16")
        with pytest.raises(ValueError, match="SKETCHRNN_TRITON_TILES"):
            tlm._tiles_from_env()
        monkeypatch.delenv("SKETCHRNN_TRITON_TILES")
        monkeypatch.setenv("SKETCHRNN_TRITON_PTILES", "64,16,64:64,16,128:3")
        with pytest.raises(ValueError, match="SKETCHRNN_TRITON_PTILES"):
            tlm._tiles_from_env()
    finally:
        tlm.set_blocks(**saved)


def test_fp32_products_setting(small_tiles, monkeypatch):
    """``set_fp32_products("tf32x3")`` reaches the kernels (the interpreter multiplies in full
    float32 whatever the mode, so here: the same figures; on CUDA the gpu test below holds it to
    1e-5) and the setting is validated; the environment variable sets it at import."""
    assert tlm._precision(torch.zeros(1)) == "ieee" and tlm._precision(torch.zeros(1, dtype=torch.float64)) == "f64"
    try:
        tlm.set_fp32_products("tf32x3")
        assert tlm._precision(torch.zeros(1)) == "tf32x3"
        _check(torch.float32, 1, 20, 32, 4, True, 1.0, 1e-5)
        with pytest.raises(ValueError, match="tf32x3"):
            tlm.set_fp32_products("bf16")
    finally:
        tlm.set_fp32_products("ieee")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("D,B,H,T", [(1, 100, 512, 12), (2, 100, 256, 12)])
def test_tf32x3_products_on_cuda(D, B, H, T):
    """Three TF32 products per product keep float32's 1e-5 of float64 (paper sizes)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    tlm.set_interpret(None)
    try:
        tlm.set_fp32_products("tf32x3")
        _check(torch.float32, D, B, H, T, True, 1.0, 1e-5, device="cuda")
    finally:
        tlm.set_fp32_products("ieee")


def test_no_grad_forward_matches(small_tiles):
    """Without gradients (validation) the forward keeps one step's activations as scratch:
    the same outputs and final state as the training forward, for both directions."""
    ins, m = _inputs(2, 20, 32, 5, True)
    f = [t.float() for t in ins]
    with torch.no_grad():
        hs0, (c0, h0) = tlm.lstm_sequence(*f, m.float(), 1.0)
    A = [t.clone().requires_grad_() for t in f]
    hs1, (c1, h1) = tlm.lstm_sequence(*A, m.float(), 1.0)
    assert hs1.requires_grad and not hs0.requires_grad
    for a, b in ((hs0, hs1), (c0, c1), (h0, h1)):
        assert torch.equal(a, b.detach())


# ----------------------------------------------------------------------------- persistent kernels
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("D,B,H,T,masked", [
    (1, 20, 32, 5, True),  # the decoder: 20 valid rows of a 32-row tile
    (1, 40, 32, 4, True),  # three row tiles (16 + 16 + 8 rows), each with its own barrier counter
    (2, 7, 16, 4, False),  # both encoder directions, each its own program and barrier counter
    (1, 20, 32, 1, True),  # a single step: no barrier at all
])
def test_persistent_kernels_match_the_float64_reference(persistent, dtype, tol, D, B, H, T, masked):
    """All T steps in one launch (forward and backward), the barrier between steps, c and dc
    carried in registers: the same figures as the float64 reference. The interpreter runs the
    programs of a grid one after another, so here each row tile is one program (its barrier is
    met at once); several unit blocks per row tile meet only on a GPU (gpu tests below)."""
    bb = 16 if B > 32 else 32
    tlm.set_blocks(pfw=(bb, H, 16), pbw=(bb, H, 16))
    assert tlm.persistent_grid(torch.zeros(1), B, H, D, "pfw") == (1, -(-B // bb), D)
    _check(dtype, D, B, H, T, masked, 1.0, tol)
    assert tlm.last_mode() == "persistent"


def test_persistent_grid_rules(persistent, monkeypatch):
    """Where the persistent kernels cannot run, the step kernels do (same figures): switched off,
    tiles that do not divide H, more than one program per direction under the interpreter."""
    x = torch.zeros(1)
    tlm.set_blocks(pfw=(32, 32, 16), pbw=(32, 32, 16))
    assert tlm.persistent_grid(x, 20, 32, 1, "pfw") == (1, 1, 1)
    assert tlm.persistent_grid(x, 20, 48, 1, "pfw") is None  # 48 % 32
    assert tlm.persistent_grid(x, 40, 32, 1, "pfw") == (1, 2, 1)  # two row tiles, one program each
    assert tlm.persistent_grid(x, 20, 64, 1, "pfw") is None  # two unit blocks would wait for each other
    assert tlm.persistent_grid(x, 20, 32, 1, "fw") is None
    tlm.set_persistent(False)
    assert tlm.persistent_grid(x, 20, 32, 1, "pfw") is None
    tlm.set_persistent(True)
    _check(torch.float64, 1, 20, 64, 3, True, 1.0, 1e-12)
    assert tlm.last_mode() == "steps"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy on the NaNs it is meant to produce
def test_a_barrier_that_cannot_be_met_gives_nan_not_a_hang(persistent, monkeypatch):
    """Programs that are not all resident would wait forever at the grid barrier; the wait is
    bounded instead, and a program that gives up writes NaN (a visible non-finite loss, not
    wrong numbers). Forced here: two unit blocks of one row tile on the interpreter, which runs
    the first to its end before the second starts."""
    monkeypatch.setattr(tlm, "_MAX_SPIN", 3)
    monkeypatch.setattr(tlm, "persistent_grid", lambda x, B, H, D, which="pfw": (2, 1, D))
    tlm.set_blocks(pfw=(32, 16, 16), pbw=(32, 16, 16))
    ins, m = _inputs(1, 20, 32, 4, True)
    tlm._STATE["errs"] = []
    hs, (c, h) = tlm.lstm_sequence(*[t.float() for t in ins], m.float(), 1.0)
    assert tlm.last_mode() == "persistent" and tlm.barrier_timeouts() == 1
    assert not torch.isnan(hs[0]).any()  # step 0 was computed before the first barrier
    assert torch.isnan(hs[1:, :, :, :16]).all() and torch.isnan(h[..., :16]).all()  # the first program's units


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("D,B,H,T", [(1, 100, 512, 12), (2, 100, 256, 12), (1, 7, 64, 5), (1, 1000, 512, 4)])
def test_persistent_kernels_on_cuda(D, B, H, T):
    """Compiled persistent kernels, default tiles, many programs per row tile meeting at the
    barrier every step: 1e-5 of float64 at paper sizes (B 1000: 32 row tiles of 32 programs,
    more than the device holds at once, run in waves)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    tlm.set_interpret(None)
    tlm.set_persistent(True)
    try:
        assert tlm.persistent_grid(torch.zeros(1, device="cuda"), B, H, D, "pfw") is not None
        tlm._STATE["errs"] = []
        try:
            _check(torch.float32, D, B, H, T, True, 1.0, 1e-5, device="cuda")
        finally:
            assert tlm.barrier_timeouts() == 0, "a barrier timed out: the grid's programs were not all resident"
        assert tlm.last_mode() == "persistent"
    finally:
        tlm.set_persistent(False)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("cell", ["lstm", "layer_norm"])
def test_persistent_graph_captured_training_forward_on_cuda(cell):
    """The whole graph-captured fast path with the persistent kernels equals the eager one, for
    an LSTM and a LayerNorm decoder (decoder 128, encoder 64: grids of 8 x 4 and 4 x 4 x 2
    programs; the LayerNorm decoder's 8 unit blocks per row tile exchange norm statistics)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    model = _model(torch.float32, enc=64, dec=128, cell=cell).cuda()
    fc.configure(triton=True)
    tlm.set_persistent(True)
    try:
        wrapper_check.check_graph_captured_on_cuda(model, f"dec/{cell}: graph+triton")
    finally:
        tlm.set_persistent(False)
        fc.configure(triton=False)
        fd.set_cuda_acceleration(True)


# ----------------------------------------------------------------------------- several programs per row tile
needs_threads = pytest.mark.skipif(not (_INTERPRETER_LOOPS and triton_threads.supported()),
                                   reason="the concurrent-program harness needs Triton 3.8's interpreter")


@pytest.fixture
def concurrent(persistent, monkeypatch):
    """Every program of a grid in its own thread (tests/triton_threads.py), so that the row
    tiles' barriers and exchanges meet for real on the CPU: any grid the tiles give."""
    if not triton_threads.supported():
        pytest.skip("the concurrent-program harness needs Triton 3.8's interpreter")

    def grid(x, B, H, D, which="pfw"):
        BB, BH, _ = tlm._BLOCKS[which]
        return (H // BH, -(-B // BB), D) if tlm._STATE["persistent"] and H % BH == 0 else None

    monkeypatch.setattr(tlm, "persistent_grid", grid)
    with triton_threads.concurrent_programs():
        yield


@needs_threads
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("D,B,H,T", [(1, 20, 64, 4), (2, 7, 32, 3)])
def test_persistent_kernels_with_concurrent_programs(concurrent, dtype, tol, D, B, H, T):
    """Two row tiles x four unit blocks (and both encoder directions x two blocks), all running
    at once and meeting at every step's barrier: the float64 reference's figures."""
    tlm.set_blocks(pfw=(16, 16, 16), pbw=(16, 16, 16))
    _check(dtype, D, B, H, T, True, 1.0, tol)
    assert tlm.last_mode() == "persistent"


@needs_threads
def test_the_concurrent_harness_catches_a_missing_barrier(concurrent, monkeypatch):
    """The check above can fail: told that a row tile has one program (so none waits for its
    peers), the forward kernel reads h before the other unit blocks wrote it. The programs start
    staggered, so the first runs ahead of its peers; and the inputs are ones no earlier run used:
    h's buffer is uninitialised memory, which after an identical earlier run can hold that run's
    (right) h, so the early reads were right by accident (seen 2026-12-07 in whole-suite runs)."""
    monkeypatch.setattr(triton_threads, "STAGGER_S", 1.0)
    tlm.set_blocks(pfw=(16, 16, 16), pbw=(16, 16, 16))
    _check(torch.float64, 1, 20, 32, 3, True, 1.0, 1e-12)  # staggered, the real barrier still holds
    base = _inputs

    def fresh_inputs(*a):
        ins, m = base(*a)
        return [t * 1.25 for t in ins], m

    monkeypatch.setitem(globals(), "_inputs", fresh_inputs)
    real = tlm._kernels(True)

    class OnePeer:
        def __init__(self, k):
            self.k = k

        def __getitem__(self, grid):
            return lambda *a, **kw: self.k[grid](*a[:16], 1, *a[17:], **kw)  # NP, the peers per row tile

    monkeypatch.setitem(tlm._STATE["kernels"], True, (*real[:3], OnePeer(real[3]), *real[4:]))
    with pytest.raises(AssertionError):
        _check(torch.float64, 1, 20, 32, 3, True, 1.0, 1e-12)


# ----------------------------------------------------------------------------- LayerNorm LSTM (persistent)
def _ln_check(dtype, D, B, H, T, masked, tol, device="cpu"):
    """ln_lstm_sequence against the eager LayerNorm-LSTM recurrence in float64: outputs, final
    state, and the gradients of every input (the four gain / shift vectors included)."""
    g = torch.Generator().manual_seed(0)
    (xp, w, c0, h0), m = _inputs(D, B, H, T, masked)
    gains = [1 + 0.3 * torch.randn(D, 1, n, dtype=torch.float64, generator=g) for n in (4 * H, H)]
    shifts = [0.3 * torch.randn(D, 1, n, dtype=torch.float64, generator=g) for n in (4 * H, H)]
    ins = [xp, w, gains[0], shifts[0], gains[1], shifts[1], c0, h0]
    A = [t.clone().to(device=device, dtype=dtype).requires_grad_() for t in ins]
    R = [t.clone().requires_grad_() for t in ins]
    hs, (c, h) = tlm.ln_lstm_sequence(*A, m.to(device=device, dtype=dtype) if m is not None else None, 1.0)
    seq = fd._Seq("layer_norm", dict(zip(("w_hh", "gamma", "beta", "gamma_c", "beta_c"), R[1:6])), 1.0)
    hr, (cr, hr2) = fd.run_sequence(seq, R[0], (R[6], R[7]), m, pointwise=fd._EAGER)
    for a, b in ((hs, hr), (c, cr), (h, hr2)):
        assert a.shape == b.shape and a.dtype == dtype
        assert _rel(a.detach().cpu(), b.detach()) <= tol
    gg = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, dtype=torch.float64, generator=gg) for t in (hr, cr, hr2)]
    sum((a * wt.to(device=device, dtype=dtype)).sum() for a, wt in zip((hs, c, h), weights)).backward()
    sum((a * wt).sum() for a, wt in zip((hr, cr, hr2), weights)).backward()
    for name, a, r in zip(("xp", "w_hh", "gamma", "beta", "gamma_c", "beta_c", "c0", "h0"), A, R):
        assert a.grad.shape == r.grad.shape and _rel(a.grad.cpu(), r.grad) <= tol, (name, _rel(a.grad.cpu(), r.grad))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("D,B,H,T,masked", [(1, 20, 32, 5, True), (1, 40, 32, 4, True), (2, 7, 16, 3, False)])
def test_ln_persistent_kernels_match_the_float64_reference(persistent, dtype, tol, D, B, H, T, masked):
    """The LayerNorm LSTM on the persistent kernels, one program per row tile (the gate blocks'
    and c's norms over the program's own units)."""
    bb = 16 if B > 32 else 32
    tlm.set_blocks(pfw=(bb, H, 16), pbw=(bb, H, 16))
    assert tlm.supports_ln(torch.zeros(1), B, H, D)
    _ln_check(dtype, D, B, H, T, masked, tol)


@needs_threads
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("D,B,H,T", [(1, 20, 64, 4), (2, 7, 32, 3)])
def test_ln_persistent_kernels_with_concurrent_programs(concurrent, dtype, tol, D, B, H, T):
    """Several unit blocks per row tile: each norm's statistics (forward) and sums (backward)
    combined from the other programs' parts through the exchange buffer, every step."""
    tlm.set_blocks(pfw=(16, 16, 16), pbw=(16, 16, 16))
    _ln_check(dtype, D, B, H, T, True, tol)


def test_ln_no_grad_forward_and_rules(persistent):
    """Without gradients one step's saved values as scratch, the same outputs; where the
    kernels cannot run (switched off, or several unit blocks per row tile on the interpreter)
    supports_ln says so and ln_lstm_sequence refuses in one line."""
    tlm.set_blocks(pfw=(32, 32, 16), pbw=(32, 32, 16))
    (xp, w, c0, h0), m = _inputs(2, 20, 32, 4, True)
    g = torch.Generator().manual_seed(0)
    p = [1 + 0.2 * torch.randn(2, 1, n, generator=g, dtype=torch.float64) for n in (128, 128, 32, 32)]
    f = [t.float() for t in (xp, w, *p, c0, h0)]
    with torch.no_grad():
        hs0, (c0_, h0_) = tlm.ln_lstm_sequence(*f, m.float(), 1.0)
    A = [t.clone().requires_grad_() for t in f]
    hs1, (c1, h1) = tlm.ln_lstm_sequence(*A, m.float(), 1.0)
    for a, b in ((hs0, hs1), (c0_, c1), (h0_, h1)):
        assert torch.equal(a, b.detach())
    assert not tlm.supports_ln(torch.zeros(1), 20, 64, 1)  # two unit blocks: no peers on the interpreter
    with pytest.raises(ValueError, match="do not take"):
        tlm.ln_lstm_sequence(*[t.detach() for t in A[:6]], torch.zeros(2, 20, 64), torch.zeros(2, 20, 64), None, 1.0)
    tlm.set_persistent(False)
    assert not tlm.supports_ln(torch.zeros(1), 20, 32, 2)


def test_ln_decoder_through_the_cuda_wrapper(persistent, monkeypatch):
    """With Triton and the persistent kernels on, the CUDA wrapper runs a LayerNorm decoder on
    them (the encoder's LSTM 16 on the step kernels): losses and every gradient equal the
    oracle model's (float32, 1e-5)."""
    tlm.set_blocks(pfw=(16, 32, 16), pbw=(16, 32, 16))
    wrapper_check.check_through_cuda_wrapper(_model(torch.float32, enc=16, dec=32, cell="layer_norm"), monkeypatch,
                                             ["enc/lstm: graph+triton", "dec/layer_norm: graph+triton"])
    assert tlm.last_mode() == "persistent"


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("D,B,H,T", [(1, 100, 512, 12), (1, 7, 64, 5), (2, 100, 256, 6), (1, 1000, 512, 4)])
def test_ln_persistent_kernels_on_cuda(D, B, H, T):
    """Compiled LayerNorm-LSTM persistent kernels, default tiles (B 100 x H 512: 4 row tiles of
    32 unit blocks exchanging statistics every step; B 1000: 32 row tiles, in waves): 1e-5 of
    float64."""
    torch.backends.cuda.matmul.allow_tf32 = False
    tlm.set_interpret(None)
    tlm.set_persistent(True)
    try:
        assert tlm.supports_ln(torch.zeros(1, device="cuda"), B, H, D)
        tlm._STATE["errs"] = []
        try:
            _ln_check(torch.float32, D, B, H, T, True, 1e-5, device="cuda")
        finally:
            assert tlm.barrier_timeouts() == 0, "a barrier timed out: the grid's programs were not all resident"
    finally:
        tlm.set_persistent(False)
