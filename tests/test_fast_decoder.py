"""Fast teacher-forced training forward (sketchrnn.fast.decoder) against the plain model.

Dropout is made comparable by drawing the masks up front and feeding the SAME masks to the
oracle: :func:`sketchrnn.fast.oracle.oracle_losses` runs ``SketchRNN.losses`` unchanged with
its ``F.dropout`` (in sketchrnn.model.cells and .decoder) handing out the given masks in call
order (encoder forward cell t = 0..T-1, encoder backward cell, then the decoder steps; input
and output dropout of each decoder step) and ``randn_like`` returning the given z-noise; it
fails if a mask is left over.
"""

from __future__ import annotations

import copy

import pytest
import stroke_batches
import torch

from sketchrnn.config import ModelConfig
from sketchrnn.fast import decoder as fd
from sketchrnn.fast.oracle import oracle_losses
from sketchrnn.model import SketchRNN

KINDS = ["lstm", "layer_norm", "hyper"]
T = 10


def make_model(kind: str, conditional: bool = True, dtype=torch.float64, enc: str | None = None, **kw) -> SketchRNN:
    cfg = ModelConfig(enc_model=enc or kind, dec_model=kind, enc_rnn_size=8, dec_rnn_size=12, z_size=4,
                      num_mixture=3, hyper_rnn_size=6, hyper_embedding_size=3, max_seq_len=T,
                      conditional=conditional, **kw)
    torch.manual_seed(0)
    m = SketchRNN(cfg).to(dtype)
    with torch.no_grad():  # move away from the special initial values (zeros, ones)
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return m.train()


def make_batch(lengths: list[int], dtype=torch.float64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return stroke_batches.make_batch(lengths, T, seed=seed, dtype=dtype)


def _total(out: dict) -> torch.Tensor:
    return out["L_R"] + 0.37 * out["L_KL"]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def compare(model: SketchRNN, x, L, tol: float, seed: int = 3, class_ids=None) -> fd.DropoutMasks:
    """Fast vs oracle losses and gradients with shared masks; returns the masks used."""
    t_enc = int(L.max())
    masks = fd.draw_masks(model, x.shape[0], T, t_enc, x, torch.Generator().manual_seed(11))
    eps = torch.randn(x.shape[0], model.cfg.z_size, dtype=x.dtype, generator=torch.Generator().manual_seed(seed))
    ref_model = copy.deepcopy(model)
    ref = oracle_losses(ref_model, x, L, masks, eps, class_ids=class_ids)
    out = fd.fast_losses(model, x, L, masks=masks, eps=eps, class_ids=class_ids)
    for k in ("L_s", "L_p", "L_R", "L_KL", "kl_raw"):
        a, b = out[k].item(), ref[k].item()
        assert abs(a - b) <= tol * max(abs(b), 1e-12), (k, a, b)
    g_ref = torch.autograd.grad(_total(ref), list(ref_model.parameters()), allow_unused=True)
    g_out = torch.autograd.grad(_total(out), list(model.parameters()), allow_unused=True)
    n = 0
    for (name, _), a, b in zip(model.named_parameters(), g_out, g_ref):
        if b is None:
            assert a is None or not a.any(), name
            continue
        assert a is not None, name
        assert _rel(a, b) <= tol, (name, _rel(a, b))
        n += 1
    assert n >= 5
    return masks


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_losses_and_gradients_match_the_oracle(kind, conditional, dtype, tol):
    model = make_model(kind, conditional, dtype)
    x, L = make_batch([10, 7, 3, 9], dtype)
    masks = compare(model, x, L, tol)
    assert masks.dec is not None and (masks.enc is not None) == conditional


@pytest.mark.parametrize("dec,enc", [("layer_norm", "hyper"), ("hyper", "layer_norm")])
@pytest.mark.parametrize("conditional", [True, False])
def test_launch_bound_layout_gives_the_same_gradients(dec, enc, conditional):
    """The launch-bound layout (CUDA's default; forced here on the CPU): per-step views of the
    layer-norm gains / biases and the HyperLSTM's fused per-state products give the oracle's
    losses and gradients, float64, in the encoder (D = 2) and the decoder."""
    fd.set_launch_bound(True)
    try:
        model = make_model(dec, conditional, torch.float64, enc=enc)
        x, L = make_batch([10, 7, 3, 9], torch.float64, seed=5)
        compare(model, x, L, 1e-10)
    finally:
        fd.set_launch_bound("auto")
    with pytest.raises(ValueError):
        fd.set_launch_bound("sometimes")


@pytest.mark.parametrize("dec,enc", [("hyper", "layer_norm"), ("lstm", "hyper")])
def test_input_output_dropout_and_mixed_cells(dec, enc):
    model = make_model(dec, True, torch.float64, enc=enc, use_input_dropout=True, use_output_dropout=True)
    x, L = make_batch([10, 4, 8], torch.float64, seed=2)
    masks = compare(model, x, L, 1e-10)
    assert masks.dec_in is not None and masks.dec_out is not None


@pytest.mark.parametrize("kind,conditional", [("lstm", True), ("hyper", False)])
def test_class_conditional_decoder(kind, conditional):
    """Class embedding appended to every decoder input ([x; z; e]): same losses and gradients."""
    model = make_model(kind, conditional, torch.float64, class_conditional=True, num_classes=3,
                       class_embedding_size=5, use_input_dropout=True)
    x, L = make_batch([10, 7, 3, 9], torch.float64, seed=4)
    compare(model, x, L, 1e-10, class_ids=torch.tensor([0, 2, 1, 2]))


def test_masks_matter_and_have_the_right_statistics():
    model = make_model("layer_norm", True, torch.float64)
    x, L = make_batch([10, 10, 10, 10])
    m1 = fd.draw_masks(model, 4, T, T, x, torch.Generator().manual_seed(1))
    m2 = fd.draw_masks(model, 4, T, T, x, torch.Generator().manual_seed(2))
    eps = torch.zeros(4, 4, dtype=torch.float64)
    a = fd.fast_losses(model, x, L, masks=m1, eps=eps)["L_R"].item()
    b = fd.fast_losses(model, x, L, masks=m2, eps=eps)["L_R"].item()
    assert a != b
    # the oracle refuses masks it does not use (a comparison must be like for like)
    extra = fd.DropoutMasks(enc=m1.enc, dec=m1.dec, dec_out=m1.dec)
    with pytest.raises(AssertionError):
        oracle_losses(model, x, L, extra, eps)
    big = fd.draw_masks(model, 64, 50, 50, x, torch.Generator().manual_seed(3))
    keep = model.cfg.recurrent_dropout_prob
    vals = torch.unique(big.dec)
    assert torch.allclose(vals, torch.tensor([0.0, 1.0 / keep], dtype=torch.float64))
    frac = float((big.dec > 0).double().mean())
    assert abs(frac - keep) < 0.01  # 38400 draws: std 0.0015
    assert big.enc.shape == (50, 2, 64, model.cfg.enc_rnn_size)
    assert abs(float((big.enc > 0).double().mean()) - keep) < 0.01
    # the same generator state gives the same masks (runs reproduce and resume exactly)
    again = fd.draw_masks(model, 64, 50, 50, x, torch.Generator().manual_seed(3))
    assert torch.equal(again.dec, big.dec) and torch.equal(again.enc, big.enc)
    assert not torch.equal(m1.dec, m2.dec) and not torch.equal(m1.enc, m2.enc)


@pytest.mark.parametrize("kind", KINDS)
def test_eval_mode_and_decoder_contract(kind):
    """Without dropout (eval): forward outputs and final states equal Decoder.forward /
    Encoder.forward, including a given initial state."""
    model = make_model(kind, True, torch.float64).eval()
    x, L = make_batch([10, 6, 2])
    with torch.no_grad():
        ref = model(x, L, sample_z=False)
        out = fd.fast_forward(model, x, L, sample_z=False)
        assert _rel(out["mu"], ref["mu"]) < 1e-12 and _rel(out["presig"], ref["presig"]) < 1e-12
        assert _rel(out["out"], ref["out"]) < 1e-12
        z = ref["z"]
        state = torch.randn(3, model.decoder.cell.state_size, dtype=torch.float64) * 0.5
        o1, s1 = model.decoder(x[:, :5], z, state)
        o2, s2 = fd.decoder_forward(model.decoder, x[:, :5], z, state)
        assert _rel(o2, o1) < 1e-12 and _rel(s2, s1) < 1e-12
        o0, s0 = fd.decoder_forward(model.decoder, x[:, :0], z)
        assert o0.shape == (3, 0, model.cfg.output_size) and s0.shape == s1.shape


def test_supports():
    assert fd.supports(make_model("hyper"))
    m = make_model("lstm", False)
    from sketchrnn.model.cells import HyperLSTMCell

    m.decoder.cell = HyperLSTMCell(5, 12, hyper_size=6, hyper_embedding_size=3, use_layer_norm=False)
    assert not fd.supports(m)


def test_graph_wrapper_logic_with_a_stand_in_for_cuda_graphs(monkeypatch):
    """The CUDA wrapper's bookkeeping (flatten / rebuild of a recurrence, static sample inputs,
    cache per shape key, fallback on a capture error) runs on the CPU with a stand-in for
    torch.cuda.make_graphed_callables that calls the function directly."""
    from sketchrnn.fast import cuda as fc

    captured = []

    def fake_graphed(fn, sample, num_warmup_iters=3, allow_unused_input=False):
        captured.append(sample)
        return lambda *args: fn(*args)

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", fake_graphed)
    monkeypatch.setattr(fc, "_pointwise", lambda: None)
    monkeypatch.setattr(fd, "_run", lambda seq, xp, st, m, tag: fc.run_sequence_accelerated(seq, xp, st, m, tag)
                        or fd.run_sequence(seq, xp, st, m))
    fc.reset()
    model = make_model("hyper", True, torch.float64)
    x, L = make_batch([10, 7, 9], torch.float64)
    compare(model, x, L, 1e-10)
    assert len(captured) == 2 and fc.status() == ["enc/hyper: graph", "dec/hyper: graph"]
    names = sorted(fd._seq_params([model.decoder.cell]).params)
    n_par = len(names)
    # every input, weights included, enters as a fresh detached leaf with its own memory: the
    # captured autograd graph must not reach the model's (its AccumulateGrad nodes live on the
    # default stream, and touching them from the capture stream broke the capture on an H100)
    ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    for sample in captured:
        assert all(t.grad_fn is None and t.is_leaf for t in sample)
        assert not any(t.untyped_storage().data_ptr() in ptrs for t in sample)
    dec = dict(zip(names, captured[1][-n_par:]))
    assert all(dec[k].requires_grad for k in ("w_hh", "hw_h", "hw_hh", "gamma"))
    compare(model, x, L, 1e-10)  # same shapes: the cached "graphs" are reused
    assert len(captured) == 2

    def failing(*a, **k):
        raise RuntimeError("capture failed\nsecond line")

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", failing)
    fc.reset()
    with pytest.warns(UserWarning, match="capture"):
        compare(model, x, L, 1e-10)
    assert all(s.endswith("eager (graph capture failed)") for s in fc.status())
    fc.reset()


# ----------------------------------------------------------------------------- CUDA only
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_accelerated_path_matches_eager(kind):
    """Graph-captured (+ compiled) recurrences give the eager fast path's losses and gradients
    (float32, TF32 off), on the second call too (graph replay with new inputs)."""
    from sketchrnn.fast import cuda as fc

    torch.backends.cuda.matmul.allow_tf32 = False
    model = make_model(kind, True, torch.float32).cuda()
    fc.reset()
    for seed in (0, 1):
        x, L = make_batch([10, 7, 3, 9], torch.float32, seed=seed)
        x, L = x.cuda(), L.cuda()
        masks = fd.draw_masks(model, 4, T, T, x, None)
        eps = torch.randn(4, 4, device="cuda")
        fd.set_cuda_acceleration(False)
        ref = fd.fast_losses(model, x, L, masks=masks, eps=eps)
        g_ref = torch.autograd.grad(_total(ref), list(model.parameters()))
        fd.set_cuda_acceleration(True)
        out = fd.fast_losses(model, x, L, masks=masks, eps=eps)
        g_out = torch.autograd.grad(_total(out), list(model.parameters()))
        assert abs(out["L_R"].item() - ref["L_R"].item()) <= 1e-5 * abs(ref["L_R"].item())
        for a, b in zip(g_out, g_ref):
            assert _rel(a, b) <= 1e-5
    # "enc/lstm: graph+compile", not "...: compile (graph capture failed)"
    assert any(s.split(": ", 1)[1] in ("graph+compile", "graph") for s in fc.status()), fc.status()
    assert not any("failed" in s for s in fc.status()), fc.status()


@pytest.mark.gpu
@cuda
def test_cuda_fallbacks_give_the_same_numbers():
    from sketchrnn.fast import cuda as fc

    model = make_model("layer_norm", True, torch.float32).cuda()
    x, L = make_batch([10, 5], torch.float32)
    x, L = x.cuda(), L.cuda()
    masks = fd.draw_masks(model, 2, T, T, x, None)
    eps = torch.randn(2, 4, device="cuda")
    res = []
    for comp, graphs in [(False, False), (True, False), (False, True)]:
        fc.configure(compile=comp, graphs=graphs)
        res.append(fd.fast_losses(model, x, L, masks=masks, eps=eps)["L_R"].item())
    fc.configure(compile=True, graphs=True)
    assert max(res) - min(res) <= 1e-5 * abs(res[0])


@pytest.mark.slow
def test_compiled_pointwise_math_matches_eager_on_cpu(monkeypatch):
    """The torch.compile half of the CUDA path, run on the CPU (inductor + the C++ compiler):
    the compiled per-step pointwise functions trace with fullgraph=True and give the eager
    numbers. LSTM only (~25 s of compiling); LayerNorm and HyperLSTM were checked the same way
    by hand on 2026-11-26 (gradients within 2.7e-6 / 2.9e-6)."""
    import shutil

    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    compiled = {k: torch.compile(f, fullgraph=True) for k, f in fd._EAGER.items()}
    model = make_model("lstm", True, torch.float32)
    x, L = make_batch([10, 7, 3, 9], torch.float32, seed=0)
    masks = fd.draw_masks(model, 4, T, T, x, None)
    eps = torch.randn(4, 4)
    ref = fd.fast_losses(model, x, L, masks=masks, eps=eps)
    g_ref = torch.autograd.grad(_total(ref), list(model.parameters()))
    plain_run = fd.run_sequence
    used = []

    def with_compiled(seq, xp, st, m, pointwise=None, **kw):
        used.append(seq.kind)
        return plain_run(seq, xp, st, m, pointwise=compiled, **kw)

    monkeypatch.setattr(fd, "run_sequence", with_compiled)
    out = fd.fast_losses(model, x, L, masks=masks, eps=eps)
    g = torch.autograd.grad(_total(out), list(model.parameters()))
    assert used, "the compiled functions were not used"
    assert abs(out["L_R"].item() - ref["L_R"].item()) <= 1e-5 * abs(ref["L_R"].item())
    assert max(_rel(a, b) for a, b in zip(g, g_ref)) <= 1e-5


# ----------------------------------------------------------------------------- the LSTM by hand
def _lstm_sequence_inputs(lazy: bool, dtype, masked: bool = True, T_: int = 6, B: int = 4, H: int = 8, I: int = 5,
                          b_rows: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    if lazy:
        x, wx, b = r(T_, B, I), (r(I, 4 * H) * 0.3).requires_grad_(), r(b_rows, 4 * H).requires_grad_()
    else:
        x, wx, b = r(T_, B, 4 * H).requires_grad_(), None, None
    w = (r(H, 4 * H) * 0.3).requires_grad_()
    c0, h0 = r(B, H).requires_grad_(), r(B, H).requires_grad_()
    m = ((torch.rand(T_, B, H, generator=g) < 0.8).to(dtype) / 0.8) if masked else None
    return x, wx, b, w, c0, h0, m


@pytest.mark.parametrize("lazy,b_rows", [(False, 1), (True, 1), (True, 4)])
@pytest.mark.parametrize("masked", [True, False])
def test_hand_lstm_sequence_gradcheck(lazy, b_rows, masked):
    """The hand-written backward of the LSTM recurrence against finite differences (float64),
    with the projection given (xp) or left to the step (x @ wx + b, b shared or per sketch)."""
    x, wx, b, w, c0, h0, m = _lstm_sequence_inputs(lazy, torch.float64, masked, b_rows=b_rows)

    def f(*a):
        hs, c, h = fd._LSTMSequence.apply(*(a[:3] if lazy else (a[0], None, None)), *a[-3:], m, 1.0)
        return hs, c, h

    args = (x, wx, b, w, c0, h0) if lazy else (x, w, c0, h0)
    assert torch.autograd.gradcheck(f, args)


@pytest.mark.parametrize("lazy", [False, True])
def test_native_lstm_kernels_match_torch_operations(lazy):
    """float32 on a CPU runs the step math in C (native_sampler.c: sk_lstm_fw / sk_lstm_bw);
    values and gradients agree with the torch-operation version to float32 rounding."""
    from sketchrnn.fast import native

    if not native.available():
        pytest.skip(f"native kernels unavailable: {native.status()}")
    x, wx, b, w, c0, h0, m = _lstm_sequence_inputs(lazy, torch.float32, T_=9, B=5, H=16, b_rows=5, seed=3)
    assert fd._native_lstm(x) is not None
    ins = [t for t in (x, wx, b, w, c0, h0) if t is not None and t.requires_grad]
    outs = []
    for use_native in (True, False):
        fd._HAND_LSTM["native"] = use_native
        try:
            hs, c, h = fd._LSTMSequence.apply(x, wx, b, w, c0, h0, m, 1.0)
            loss = (hs * torch.linspace(-1, 1, 16)).sum() + (c ** 2).sum() + 0.5 * h.sum()
            outs.append((hs.detach(), c.detach(), h.detach(), *torch.autograd.grad(loss, ins)))
        finally:
            fd._HAND_LSTM["native"] = True
    for a, b_ in zip(*outs):
        assert _rel(a, b_) <= 2e-6, _rel(a, b_)


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("kind,dtype,tol", [("lstm", torch.float64, 1e-10), ("lstm", torch.float32, 1e-5),
                                            ("layer_norm", torch.float32, 1e-5)])
def test_hand_lstm_and_autograd_paths_agree(conditional, kind, dtype, tol):
    """The whole model's losses and gradients with the hand-differentiated recurrences (the CPU
    default: decoder D = 1, encoder D = 2, projections left to the step; the LayerNorm LSTM in
    C, float32 only) and with autograd over the per-step math (set_hand_lstm(False)), the same
    masks and z-noise."""
    if kind == "layer_norm":
        from sketchrnn.fast import native

        if not native.available():
            pytest.skip(f"native kernels unavailable: {native.status()}")
    model = make_model(kind, conditional, dtype)
    assert fd._hand_kind(kind, torch.zeros((), dtype=dtype))
    x, L = make_batch([10, 7, 3, 9], dtype, seed=6)
    masks = fd.draw_masks(model, 4, T, int(L.max()), x)
    eps = torch.randn(4, model.cfg.z_size, dtype=dtype) if conditional else None
    res = []
    for mode in ("auto", False):
        fd.set_hand_lstm(mode)
        try:
            out = fd.fast_losses(model, x, L, masks=masks, eps=eps)
            res.append((out["L_R"] + out["L_KL"], torch.autograd.grad(out["L_R"] + out["L_KL"],
                                                                        list(model.parameters()), allow_unused=True)))
        finally:
            fd.set_hand_lstm("auto")
    (la, ga), (lb, gb) = res
    assert abs(la.item() - lb.item()) <= tol * abs(lb.item())
    n = 0
    for a, b in zip(ga, gb):
        if b is None:
            continue
        assert _rel(a, b) <= tol
        n += 1
    assert n >= 5
    with pytest.raises(ValueError):
        fd.set_hand_lstm("sometimes")


def test_lazy_projection_materialises_to_the_hoisted_projection():
    """Where a lazy projection reaches a path that needs the tensor (the CUDA runner with
    set_hand_lstm(True)), ``materialize`` gives x @ w + b per step, (T, D, B, 4H)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 3, 4, generator=g, dtype=torch.float64)  # (T, D, B, I)
    w = torch.randn(2, 4, 8, generator=g, dtype=torch.float64)  # (D, I, 4H)
    for b in (torch.randn(2, 1, 8, generator=g, dtype=torch.float64), torch.randn(2, 3, 8, generator=g, dtype=torch.float64)):
        want = torch.einsum("tdbi,dik->tdbk", x, w) + b.unsqueeze(0)
        got = fd._LazyProjection(x, w, b).materialize()
        assert got.shape == (5, 2, 3, 8) and torch.allclose(got, want, atol=1e-12)
