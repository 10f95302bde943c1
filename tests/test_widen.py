"""`sketchrnn widen-encoder`: a VAE's encoder grown to more units computes the same mu and sigma,
its new units learn, and a run resumes from the widened checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from sketchrnn.cli import main
from sketchrnn.config import ModelConfig
from sketchrnn.errors import ConfigError
from sketchrnn.model import SketchRNN
from sketchrnn.model.widen import widen_encoder_state


def _vae(E: int, seed: int = 0, **kw) -> SketchRNN:
    torch.manual_seed(seed)
    cfg = ModelConfig(enc_rnn_size=E, dec_rnn_size=12, z_size=6, num_mixture=2, max_seq_len=20, **kw)
    return SketchRNN(cfg).double().eval()


@pytest.mark.parametrize("old, new", [(8, 13), (5, 10)])
@pytest.mark.parametrize("fast", [True, False])
def test_widened_encoder_computes_the_same_mu_and_sigma(old, new, fast):
    small, wide = _vae(old), _vae(new, seed=1)
    # the trained encoder's weights are not its initial ones: perturb them so no structure helps
    with torch.no_grad():
        for p in small.encoder.parameters():
            p.add_(0.3 * torch.randn_like(p))
    wide.load_state_dict(widen_encoder_state(small.state_dict(), old, new, seed=3))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 15, 5, generator=g, dtype=torch.float64)  # (B, T, 5)
    lengths = torch.tensor([15, 1, 9, 4, 15, 2, 11])
    for m in (small, wide):
        m.encoder.use_fast_path = fast
    mu_s, ps_s = small.encoder(x, lengths)
    mu_w, ps_w = wide.encoder(x, lengths)
    torch.testing.assert_close(mu_w, mu_s, rtol=0, atol=1e-12)
    torch.testing.assert_close(ps_w, ps_s, rtol=0, atol=1e-12)
    # the decoder is untouched
    for k, v in small.state_dict().items():
        if not k.startswith("encoder."):
            assert torch.equal(wide.state_dict()[k], v), k


def test_new_units_get_a_gradient_and_differ():
    small, wide = _vae(8), _vae(16, seed=1)
    wide.load_state_dict(widen_encoder_state(small.state_dict(), 8, 16, seed=0))
    x = torch.randn(4, 10, 5, dtype=torch.float64)
    mu, presig = wide.encoder(x, torch.tensor([10, 7, 3, 10]))
    (mu.square().sum() + presig.sum()).backward()
    g = wide.encoder.mu.weight.grad  # (Z, 2E): columns 8..15 and 24..31 are the new units
    new_cols = torch.cat([g[:, 8:16], g[:, 24:32]], dim=1)
    assert new_cols.abs().min() > 0  # every new unit is reached
    w = wide.encoder.cell_fw.weight_ih.detach()
    assert not torch.allclose(w[:, 8:16], w[:, 8:16].mean(dim=1, keepdim=True))  # not symmetric copies


def test_widen_refuses_what_it_cannot_grow():
    small = _vae(8)
    with pytest.raises(ConfigError, match="must exceed"):
        widen_encoder_state(small.state_dict(), 8, 8)
    ln = _vae(8, enc_model="layer_norm")
    with pytest.raises(ConfigError, match="plain"):
        widen_encoder_state(ln.state_dict(), 8, 12)


def test_widen_cli_resumes_a_run(tmp_path, capsys):
    from sketchrnn.checkpoint import load_model
    from sketchrnn.data.synthetic import write_synthetic_npz

    data = tmp_path / "shapes.npz"
    write_synthetic_npz(data, 64, 16, 16, seed=1)
    common = ["model.dec_rnn_size=16", "model.z_size=4", "model.num_mixture=2", "model.max_seq_len=64",
              "train.batch_size=8", "train.eval_every=2", "train.save_every=2", "train.ema_decay=0.9"]
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--no-progress", "--set", "model.enc_rnn_size=8",
                 "train.num_steps=2", *common]) == 0
    wide_run = tmp_path / "wide"
    wide_run.mkdir()
    capsys.readouterr()
    assert main(["widen-encoder", str(run / "last.pt"), "--enc-rnn-size", "12", "--out", str(wide_run / "last.pt")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["enc_rnn_size"] == [8, 12] and out["resume_mode"] == "average-only" and out["step"] == 2
    before, after = load_model(run / "last.pt"), load_model(wide_run / "last.pt")
    assert after.config.enc_rnn_size == 12
    x = torch.randn(3, 9, 5)
    lengths = torch.tensor([9, 4, 6])
    # the average (what the checkpoint's model is) gives the same q(z|x)
    avg = SketchRNN(before.config).eval()
    avg.load_state_dict(torch.load(run / "last.pt", weights_only=True)["ema"])
    torch.testing.assert_close(after.model.encoder(x, lengths), avg.encoder(x, lengths), rtol=0, atol=1e-6)
    # training goes on from it with the new width, and refuses the old one
    assert main(["train", "--data", str(data), "--out", str(wide_run), "--resume", "--no-progress", "--set",
                 "model.enc_rnn_size=12", "train.num_steps=4", *common]) == 0
    assert torch.load(wide_run / "last.pt", weights_only=True)["step"] == 4
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--out", str(wide_run), "--resume", "--no-progress", "--set",
                 "model.enc_rnn_size=8", "train.num_steps=6", *common]) == 2
    assert "enc_rnn_size" in capsys.readouterr().err


def test_widen_cli_refuses_a_decoder_only_model(tmp_path, capsys):
    from sketchrnn.data.synthetic import write_synthetic_npz

    data = tmp_path / "shapes.npz"
    write_synthetic_npz(data, 32, 16, 16, seed=1)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--no-progress", "--set", "model.conditional=false",
                 "model.dec_rnn_size=16", "model.num_mixture=2", "model.max_seq_len=64", "train.batch_size=8",
                 "train.num_steps=1", "train.eval_every=1"]) == 0
    capsys.readouterr()
    assert main(["widen-encoder", str(run / "last.pt"), "--enc-rnn-size", "12", "--out", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a VAE" in err, err
    assert not (tmp_path / "w.pt").exists()
