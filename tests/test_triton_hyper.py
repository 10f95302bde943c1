"""The persistent HyperLSTM kernels (sketchrnn.fast.triton_hyper) against the float64 reference.

The reference is the eager HyperLSTM recurrence of :func:`sketchrnn.fast.decoder.run_sequence`
(torch operations in float64, itself checked against the oracle model in
tests/test_fast_decoder.py). On a CPU the kernels run under Triton's interpreter: one program
per row tile by default (its barriers are met at once), and with every program of a row tile in
its own thread (tests/triton_threads.py), so that the exchanges of norm statistics and of the
hyper_norm embeddings and their gradients between programs are exercised for real. The
gpu-marked tests run the compiled kernels on CUDA at paper sizes.
"""

from __future__ import annotations

import pytest
import torch
import triton_threads
import wrapper_check

triton = pytest.importorskip("triton", reason="the Triton kernels need the triton package (pip install triton)")

from sketchrnn.config import ModelConfig  # noqa: E402
from sketchrnn.fast import cuda as fc  # noqa: E402
from sketchrnn.fast import decoder as fd  # noqa: E402
from sketchrnn.fast import triton_hyper as thy  # noqa: E402
from sketchrnn.fast import triton_lstm as tlm  # noqa: E402
from sketchrnn.model import SketchRNN  # noqa: E402

_INTERPRETER_LOOPS = tuple(int(v) for v in triton.__version__.split(".")[:2]) >= (3, 8)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
needs_threads = pytest.mark.skipif(not (_INTERPRETER_LOOPS and triton_threads.supported()),
                                   reason="the concurrent-program harness needs Triton 3.8's interpreter")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300))


@pytest.fixture
def concurrent(persistent, monkeypatch):
    """Every program of a grid in its own thread: several unit blocks per row tile on the CPU."""
    if not triton_threads.supported():
        pytest.skip("the concurrent-program harness needs Triton 3.8's interpreter")
    monkeypatch.setattr(thy, "_resident", lambda x, nj: True)
    with triton_threads.concurrent_programs():
        yield


def _inputs(D, B, H, NH, E, T, masked, seed=0):
    """Random parameters of D HyperLSTM cells (spread like trained ones: gains near 1, scales of
    order 1, recurrent weights 2.4 / sqrt(n)), inputs, initial state and dropout masks."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, sc=1.0):
        return torch.randn(*shape, dtype=torch.float64, generator=g) * sc

    P = {"w_hh": r(D, H, 4 * H, sc=2.4 / H ** 0.5), "bias": r(D, 1, 4 * H, sc=0.3),
         "gamma": 1 + r(D, 1, 4 * H, sc=0.3), "beta": r(D, 1, 4 * H, sc=0.3),
         "gamma_c": 1 + r(D, 1, H, sc=0.3), "beta_c": r(D, 1, H, sc=0.3),
         "hw_h": r(D, H, 4 * NH, sc=1.5 / H ** 0.5), "hw_hh": r(D, NH, 4 * NH, sc=2.4 / NH ** 0.5),
         "h_gamma": 1 + r(D, 1, 4 * NH, sc=0.3), "h_beta": r(D, 1, 4 * NH, sc=0.3),
         "h_gamma_c": 1 + r(D, 1, NH, sc=0.3), "h_beta_c": r(D, 1, NH, sc=0.3),
         "w_zs": r(D, NH, 12 * E, sc=0.5 / NH ** 0.5), "b_zs": 1 + r(D, 1, 12 * E, sc=0.3),
         "w_blk": r(D, 12, E, H, sc=1.0 / E)}
    xw, hx = r(T, D, B, 4 * H), r(T, D, B, 4 * NH)
    state0 = (r(D, B, H), r(D, B, H, sc=0.5), r(D, B, NH), r(D, B, NH, sc=0.5))
    m = (torch.rand(T, D, B, H, generator=g) < 0.9).double() / 0.9 if masked else None
    return xw, hx, P, state0, m


def _check(dtype, D, B, H, NH, E, T, masked, tol, device="cpu"):
    """hyper_lstm_sequence against the eager float64 recurrence: outputs, the final state (both
    cells), and the gradient of every input (the 15 parameters included)."""
    xw, hx, P, state0, m = _inputs(D, B, H, NH, E, T, masked)
    names = ["xw", "hx", *P, "c0", "h0", "yc0", "y0"]
    base = [xw, hx, *P.values(), *state0]
    A = [t.clone().to(device=device, dtype=dtype).requires_grad_() for t in base]
    R = [t.clone().requires_grad_() for t in base]
    n = len(P)
    hs, fin = thy.hyper_lstm_sequence((A[0], A[1]), dict(zip(P, A[2:2 + n])), tuple(A[2 + n:]),
                                      m.to(device=device, dtype=dtype) if m is not None else None, 1.0, 1.0)
    seq = fd._Seq("hyper", dict(zip(P, R[2:2 + n])), 1.0, 1.0)
    hr, fin_r = fd.run_sequence(seq, (R[0], R[1]), tuple(R[2 + n:]), m, pointwise=fd._EAGER)
    assert tlm.last_mode() == "persistent"
    for a, b in zip((hs, *fin), (hr, *fin_r)):
        assert a.shape == b.shape and a.dtype == dtype
        assert _rel(a.detach().cpu(), b.detach()) <= tol
    gg = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, dtype=torch.float64, generator=gg) for t in (hr, *fin_r)]
    sum((a * w.to(device=device, dtype=dtype)).sum() for a, w in zip((hs, *fin), weights)).backward()
    sum((a * w).sum() for a, w in zip((hr, *fin_r), weights)).backward()
    for name, a, r in zip(names, A, R):
        assert a.grad is not None and a.grad.shape == r.grad.shape, name
        assert _rel(a.grad.cpu(), r.grad) <= tol, (name, _rel(a.grad.cpu(), r.grad))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("D,B,H,NH,E,T,masked", [
    (1, 20, 32, 16, 16, 3, True),  # the decoder: 20 valid rows of a 32-row tile
    (2, 40, 32, 16, 16, 3, False),  # both directions x three row tiles, each with its own barrier counter
    (1, 7, 32, 16, 32, 1, True),  # one step: no barrier between steps; E 32 (the paper's)
])
def test_hyper_kernels_match_the_float64_reference(persistent, dtype, tol, D, B, H, NH, E, T, masked):
    """All T steps of both cells in one launch each way, one program per row tile (its norms
    and zs over its own units): the float64 reference's figures."""
    bb = 16 if B > 32 else 32
    tlm.set_blocks(hfw=(bb, H, 16), hbw=(bb, H, 16))
    assert thy.hyper_grid(torch.zeros(1), B, H, NH, E, D, "hfw") == (1, -(-B // bb), D)
    _check(dtype, D, B, H, NH, E, T, masked, tol)


@needs_threads
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("D,B,H,NH,BH,T", [
    (1, 20, 64, 32, 32, 3),  # two unit blocks per row tile (16 hyper units each), two row tiles
    (2, 7, 64, 64, 16, 2),  # four per row tile, both directions: zs blocks 0-11 by programs 0-3 in turn
])
def test_hyper_kernels_with_concurrent_programs(concurrent, dtype, tol, D, B, H, NH, BH, T):
    """Several unit blocks per row tile running at once: the norms' statistics and sums, y_t, zs
    and the parts of d zs pass between programs through memory at every step's barriers."""
    tlm.set_blocks(hfw=(16, BH, 16), hbw=(16, BH, 16))
    _check(dtype, D, B, H, NH, 16, T, True, tol)


@needs_threads
def test_more_unit_blocks_than_embedding_blocks(concurrent):
    """16 unit blocks per row tile, as at paper size (H 512 / 32): programs 12-15 compute no zs
    block and sum no d zs block, and still meet every barrier."""
    tlm.set_blocks(hfw=(16, 16, 16), hbw=(16, 16, 16))
    _check(torch.float64, 1, 7, 256, 256, 16, 1, True, 1e-12)


def _no_wait(cnt, target, limit):
    return target < 0  # a "barrier" that never waits (and never gives up)


@needs_threads
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy on the garbage it reads
def test_the_concurrent_check_catches_a_missing_barrier(concurrent, monkeypatch):
    """The check above can fail: with barriers that do not wait, programs read h, y, zs and the
    exchanged statistics before their peers wrote them."""
    tlm.set_blocks(hfw=(16, 32, 16), hbw=(16, 32, 16))
    monkeypatch.setitem(thy._HELPERS_PY, "_row_tile_barrier", _no_wait)
    monkeypatch.setattr(thy, "_KERNELS", {})
    with pytest.raises(AssertionError):
        _check(torch.float64, 1, 20, 64, 32, 16, 3, True, 1e-12)


def test_grid_rules_and_no_grad_forward(persistent):
    """Where the kernels cannot run, hyper_grid says so and hyper_lstm_sequence refuses in one
    line; without gradients one step's saved values serve as scratch, with the same outputs."""
    x = torch.zeros(1)
    tlm.set_blocks(hfw=(32, 32, 16), hbw=(32, 32, 16))
    assert thy.supports_hyper(x, 20, 32, 16, 16, 1)
    assert thy.hyper_grid(x, 20, 64, 32, 16, 1) is None  # two unit blocks: no peers on the interpreter
    assert thy.hyper_grid(x, 20, 32, 8, 16, 1) is None  # 8 hyper units per program: tl.dot takes 16 at least
    assert thy.hyper_grid(x, 20, 32, 16, 24, 1) is None  # E not a power of two
    assert thy.hyper_grid(x, 20, 48, 16, 16, 1) is None  # 48 % 32
    tlm.set_blocks(hbw=(32, 32, 128))
    assert thy.hyper_grid(x, 20, 32, 16, 16, 1, "hbw") is None  # 4 x 16 hyper gate rows % 128
    tlm.set_blocks(hbw=(32, 32, 16))
    xw, hx, P, state0, m = _inputs(1, 20, 32, 16, 16, 4, True)
    f = dict(xp=(xw.float(), hx.float()), params={k: v.float() for k, v in P.items()},
             state0=tuple(s.float() for s in state0), masks=m.float(), forget_bias=1.0, hyper_forget_bias=1.0)
    with torch.no_grad():
        hs0, fin0 = thy.hyper_lstm_sequence(**f)
    f["params"] = {k: v.clone().requires_grad_() for k, v in f["params"].items()}
    hs1, fin1 = thy.hyper_lstm_sequence(**f)
    for a, b in zip((hs0, *fin0), (hs1, *fin1)):
        assert torch.equal(a, b.detach())
    with pytest.raises(ValueError, match="do not take"):  # H 64: two unit blocks
        thy.hyper_lstm_sequence((torch.zeros(2, 1, 20, 256), torch.zeros(2, 1, 20, 64)), f["params"],
                                (torch.zeros(1, 20, 64), torch.zeros(1, 20, 64), torch.zeros(1, 20, 16),
                                 torch.zeros(1, 20, 16)), None, 1.0, 1.0)
    tlm.set_persistent(False)
    assert not thy.supports_hyper(x, 20, 32, 16, 16, 1)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy on the NaNs it is meant to produce
def test_a_barrier_that_cannot_be_met_gives_nan_not_a_hang(persistent, monkeypatch):
    """Two unit blocks of one row tile on the interpreter, which runs the first to its end before
    the second starts: the first waits a bounded time at its first barrier, gives up, counts a
    timeout and writes NaN; nothing hangs."""
    monkeypatch.setattr(tlm, "_MAX_SPIN", 3)
    monkeypatch.setattr(thy, "_resident", lambda x, nj: True)
    tlm.set_blocks(hfw=(32, 32, 16), hbw=(32, 32, 16))
    xw, hx, P, state0, m = _inputs(1, 20, 64, 32, 16, 2, True)
    tlm._STATE["errs"] = []
    with torch.no_grad():
        hs, (c, h, yc, y) = thy.hyper_lstm_sequence((xw.float(), hx.float()), {k: v.float() for k, v in P.items()},
                                                    tuple(s.float() for s in state0), m.float(), 1.0, 1.0)
    assert tlm.last_mode() == "persistent" and tlm.barrier_timeouts() >= 1
    assert torch.isnan(hs[:, :, :, :32]).all() and torch.isnan(y[..., :16]).all()  # the first program's units


def _model(dtype, enc: int = 16, dec: int = 32, hyper: int = 16, emb: int = 16):
    cfg = ModelConfig(enc_model="lstm", dec_model="hyper", enc_rnn_size=enc, dec_rnn_size=dec, z_size=4,
                      num_mixture=3, max_seq_len=10, conditional=True, hyper_rnn_size=hyper,
                      hyper_embedding_size=emb)
    torch.manual_seed(0)
    m = SketchRNN(cfg).to(dtype)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return m.train()


def test_hyper_decoder_through_the_cuda_wrapper(persistent, monkeypatch):
    """With Triton and the persistent kernels on, the CUDA wrapper runs a HyperLSTM decoder on
    them (the encoder's LSTM 16 on the step kernels): losses and every gradient of the model
    equal the oracle model's (float32, 1e-5)."""
    tlm.set_blocks(hfw=(16, 32, 16), hbw=(16, 32, 16))
    wrapper_check.check_through_cuda_wrapper(_model(torch.float32), monkeypatch,
                                             ["enc/lstm: graph+triton", "dec/hyper: graph+triton"])
    assert tlm.last_mode() == "persistent"


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("D,B,H,NH,T", [(1, 100, 512, 256, 12), (1, 7, 128, 64, 5), (1, 1000, 512, 256, 4)])
def test_hyper_kernels_on_cuda(D, B, H, NH, T):
    """Compiled HyperLSTM kernels, default tiles (B 100 x H 512: 7 row tiles of 16 unit blocks
    exchanging statistics, zs and its gradients every step; B 1000: 63 row tiles, in waves): 1e-5
    of float64, no barrier timeouts."""
    torch.backends.cuda.matmul.allow_tf32 = False
    tlm.set_interpret(None)
    tlm.set_persistent(True)
    try:
        assert thy.supports_hyper(torch.zeros(1, device="cuda"), B, H, NH, 32, D)
        tlm._STATE["errs"] = []
        try:
            _check(torch.float32, D, B, H, NH, 32, T, True, 1e-5, device="cuda")
        finally:
            assert tlm.barrier_timeouts() == 0, "a barrier timed out: the grid's programs were not all resident"
    finally:
        tlm.set_persistent(False)


@pytest.mark.gpu
@cuda
def test_hyper_graph_captured_training_on_cuda():
    """The whole graph-captured fast path with the persistent HyperLSTM kernels equals the eager
    one (decoder 128 with a hyper cell of 64: 4 unit blocks per row tile)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    model = _model(torch.float32, enc=64, dec=128, hyper=64, emb=32).cuda()
    fc.configure(triton=True)
    tlm.set_persistent(True)
    try:
        wrapper_check.check_graph_captured_on_cuda(model, "dec/hyper: graph+triton")
    finally:
        tlm.set_persistent(False)
        fc.configure(triton=False)
        fd.set_cuda_acceleration(True)
