"""train.length_buckets: batches of similar length, their end padding trimmed for training.

What must hold: the bucketed order is still an epoch of distinct sketches, drawn from the seed
and resumable; a batch cut to its longest sketch gives the same offset loss (and gradient) as
the untrimmed batch, and a pen loss short only by the padding steps after the end; the trainer
really trains on trimmed batches and resumes exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import stroke_batches
import torch

from sketchrnn.config import Config, ModelConfig, apply_overrides
from sketchrnn.data.dataset import EpochSampler
from sketchrnn.errors import ConfigError, DataError
from sketchrnn.fast import decoder as fd
from sketchrnn.model import SketchRNN
from sketchrnn.train import TRIM_MULTIPLE, Trainer, trim_padding

from test_train import shapes_npz, tiny_cfg  # noqa: F401  (fixture)


def _epoch(s: EpochSampler) -> list[np.ndarray]:
    return [s.next_indices()[0].copy() for _ in range(len(s))]


@pytest.mark.parametrize("n,b,k", [(1000, 10, 5), (1003, 10, 7), (64, 8, 100)])
def test_bucketed_epoch_is_a_shuffled_partition_of_sorted_windows(n, b, k):
    lengths = np.random.default_rng(1).integers(1, 200, n)
    s = EpochSampler(n, b, seed=3, lengths=lengths, length_buckets=k)
    batches = _epoch(s)
    flat = np.concatenate(batches)
    assert len(flat) == (n // b) * b and len(set(flat.tolist())) == len(flat)  # distinct sketches
    spread = np.mean([np.ptp(lengths[x]) for x in batches])
    plain = EpochSampler(n, b, seed=3)
    spread_plain = np.mean([np.ptp(lengths[x]) for x in _epoch(plain)])
    assert spread < 0.5 * spread_plain  # similar lengths together
    if k * b >= n:  # one window: the batches are exactly the sorted epoch cut in pieces
        sorted_max = np.sort(lengths[flat]).reshape(-1, b).max(1)
        assert sorted(lengths[x].max() for x in batches) == sorted(sorted_max.tolist())
    # batch order is shuffled, not ascending by length
    maxes = [lengths[x].max() for x in batches]
    assert maxes != sorted(maxes)


def test_bucketed_order_is_seeded_and_resumes_mid_epoch():
    lengths = np.random.default_rng(0).integers(1, 100, 500)
    a = EpochSampler(500, 20, seed=5, lengths=lengths, length_buckets=4)
    first = [a.next_indices()[0].copy() for _ in range(7)]
    state = a.state_dict()
    rest = [a.next_indices()[0].copy() for _ in range(30)]  # crosses into the next epoch
    b = EpochSampler(500, 20, seed=5, lengths=lengths, length_buckets=4)
    assert all(np.array_equal(x, y) for x, y in zip(first, [b.next_indices()[0] for _ in range(7)]))
    c = EpochSampler(500, 20, seed=5, lengths=lengths, length_buckets=4)
    c.load_state_dict(state)
    assert all(np.array_equal(x, c.next_indices()[0]) for x in rest)
    other = EpochSampler(500, 20, seed=5, lengths=lengths, length_buckets=0)
    with pytest.raises(DataError, match="length_buckets=4.*--new-data"):
        other.load_state_dict(state)
    old = dict(state)
    del old["length_buckets"]  # a checkpoint from before the setting: it drew random batches
    with pytest.raises(DataError, match="length_buckets=0"):
        c.load_state_dict(old)
    other.load_state_dict(old)


def test_bucketing_needs_lengths_and_a_non_negative_setting():
    with pytest.raises(DataError, match="length of every sketch"):
        EpochSampler(10, 2, length_buckets=3)
    with pytest.raises(DataError, match=">= 0"):
        EpochSampler(10, 2, lengths=np.ones(10, int), length_buckets=-1)
    with pytest.raises(ConfigError, match="length_buckets"):
        apply_overrides(Config(), ["train.length_buckets=-2"]).validate()


@pytest.mark.parametrize("lengths,t,m", [([3, 9, 5], 40, 16), ([7], 40, 8), ([8], 40, 16), ([40, 2], 40, 40),
                                         ([37], 40, 40), ([0, 0], 40, 8)])
def test_trim_keeps_the_end_step_rounded_up(lengths, t, m):
    x, L = stroke_batches.make_batch(lengths, t)
    y = trim_padding(x, L)
    assert y.shape == (len(lengths), m + 1, 5)
    assert m % TRIM_MULTIPLE == 0 or m == t
    assert torch.equal(y, x[:, :m + 1])
    assert (y[:, -1, 4] == 1).all() or max(lengths) + 1 > m  # an end row is kept when there is one


def _model(kind: str, conditional: bool, **kw) -> SketchRNN:
    cfg = ModelConfig(enc_model=kind, dec_model=kind, enc_rnn_size=8, dec_rnn_size=12, z_size=4, num_mixture=3,
                      hyper_rnn_size=6, hyper_embedding_size=3, max_seq_len=40, conditional=conditional, **kw)
    torch.manual_seed(0)
    m = SketchRNN(cfg).double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    m.eval()  # no dropout: the trimmed and untrimmed passes see the same network
    if conditional:  # the CPU encoder builds its nn.LSTM template (random init) on first use
        x, L = stroke_batches.make_batch([3], 40, dtype=torch.float64)
        m.encode(x, L)
    return m


def _losses(model, x, L, fast: bool, n_max=None):
    torch.manual_seed(7)  # the same z noise (B, Z) in both passes
    if fast:
        return fd.fast_losses(model, x, L, n_max=n_max)
    return model.losses(x, L, n_max=n_max)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("kind,conditional", [("lstm", False), ("lstm", True), ("layer_norm", True), ("hyper", True)])
def test_trimmed_batch_loses_only_the_padding_pen_terms(kind, conditional, fast):
    """float64: L_s and its gradient equal the untrimmed batch's; L_p differs by exactly the
    pen terms of the cut steps (each -log P(p3) after the end); the KL (encoder) is unchanged."""
    model = _model(kind, conditional)
    lengths = [5, 11, 9, 13]
    x, L = stroke_batches.make_batch(lengths, 40, dtype=torch.float64)
    full = _losses(model, x, L, fast)
    y = trim_padding(x, L)  # (4, 17, 5)
    assert y.shape[1] == 17
    cut = _losses(model, y, L, fast, n_max=40)
    assert torch.allclose(cut["L_s"], full["L_s"], rtol=1e-12, atol=0)
    assert torch.allclose(cut["kl_raw"], full["kl_raw"], rtol=1e-12, atol=0)
    # the cut steps' pen terms, from the untrimmed pass's outputs
    from sketchrnn.model.mdn import pen_log_prob, split_params

    torch.manual_seed(7)
    out = model(x, L)["out"] if not fast else fd.fast_forward(model, x, L, sample_z=True)["out"]
    lp = pen_log_prob(split_params(out), x[:, 1:, 2:])  # (B, T)
    padding = -lp[:, 16:].sum() / (4 * 40)
    assert torch.allclose(full["L_p"] - cut["L_p"], padding, rtol=1e-9, atol=1e-15)
    assert padding > 0
    # gradients of the offset loss agree
    g_full = torch.autograd.grad(_losses(model, x, L, fast)["L_s"], list(model.parameters()), allow_unused=True)
    g_cut = torch.autograd.grad(_losses(model, y, L, fast, n_max=40)["L_s"], list(model.parameters()),
                                allow_unused=True)
    for a, b in zip(g_full, g_cut):
        if a is None:
            assert b is None
        else:
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-13)


def test_n_max_shorter_than_the_batch_is_refused():
    model = _model("lstm", False)
    x, L = stroke_batches.make_batch([5, 6], 40, dtype=torch.float64)
    with pytest.raises(ValueError, match="n_max=20"):
        model.losses(x, L, n_max=20)


def test_trainer_trains_on_trimmed_batches_and_resumes_exactly(tmp_path, shapes_npz, monkeypatch):  # noqa: F811
    cfg = tiny_cfg(shapes_npz, "train.num_steps=6", "train.length_buckets=2")
    seen: list[tuple[int, int | None]] = []
    tr = Trainer(cfg, tmp_path / "full", progress=False)
    inner = tr._loss_module.forward

    def spy(strokes, lengths, kl_tolerance, class_ids=None, n_max=None):
        if tr.model.training:
            seen.append((int(strokes.shape[1]), n_max))
            assert int(lengths.max()) + 1 <= strokes.shape[1] - 1 or strokes.shape[1] == 65
        return inner(strokes, lengths, kl_tolerance, class_ids, n_max)

    monkeypatch.setattr(tr._loss_module, "forward", spy)
    tr.fit()
    assert len(seen) == 6 and all(n == 64 for _, n in seen)
    assert min(s for s, _ in seen) < 65  # max_seq_len 64 + 1 rows untrimmed
    part = Trainer(cfg, tmp_path / "part", progress=False)
    part.fit(num_steps=3)
    resumed = Trainer(cfg, tmp_path / "part", resume=True, progress=False)
    resumed.fit()
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    with pytest.raises(DataError, match="--new-data"):
        Trainer(tiny_cfg(shapes_npz, "train.num_steps=9"), tmp_path / "part", resume=True, progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["lstm", "layer_norm"])
def test_trimmed_batches_of_many_lengths_on_cuda(kind):
    """The CUDA fast path (a graph per shape) on trimmed batches of several lengths in turn:
    L_s equals the untrimmed batch's, and so does every gradient of it."""
    model = _model(kind, False, use_recurrent_dropout=False).float().cuda().train()
    for seed, lengths in enumerate([[5, 11, 9, 13], [30, 2, 7, 1], [39, 38, 3, 12], [5, 11, 9, 13]]):
        x, L = stroke_batches.make_batch(lengths, 40, seed=seed)
        x, L = x.cuda(), L.cuda()
        y = trim_padding(x, L)
        full = fd.fast_losses(model, x, L)
        cut = fd.fast_losses(model, y, L, n_max=40)
        assert torch.allclose(cut["L_s"], full["L_s"], rtol=1e-5, atol=1e-6), lengths
        g_full = torch.autograd.grad(fd.fast_losses(model, x, L)["L_s"], list(model.parameters()))
        g_cut = torch.autograd.grad(fd.fast_losses(model, y, L, n_max=40)["L_s"], list(model.parameters()))
        for a, b in zip(g_full, g_cut):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), lengths


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trainer_with_length_buckets_on_cuda(tmp_path, shapes_npz):  # noqa: F811
    tr = Trainer(tiny_cfg(shapes_npz, "train.num_steps=12", "train.length_buckets=2", "train.device=cuda",
                          "train.deterministic=false", "model.dec_model=layer_norm"), tmp_path / "run", progress=False)
    res = tr.fit()
    assert res["step"] == 12 and res["skipped"] == 0 and np.isfinite(res["valid_loss"])
    tr.release()
