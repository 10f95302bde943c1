"""Class-conditional option (model.class_conditional): a class embedding appended to every
decoder input. Off by default, and then the model is the plain one."""

from __future__ import annotations

import pytest
import torch

from sketchrnn.config import Config, ModelConfig, apply_overrides
from sketchrnn.errors import ConfigError
from sketchrnn.model import SketchRNN

SMALL = dict(enc_rnn_size=8, dec_rnn_size=12, z_size=4, num_mixture=2, max_seq_len=10, use_recurrent_dropout=False)


def _batch(B: int = 3, T: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, T + 1, (B,), generator=g)
    x = torch.zeros(B, T + 1, 5)
    x[:, 0, 2] = 1
    for b in range(B):
        L = int(lengths[b])
        x[b, 1:L + 1, :2] = torch.randn(L, 2, generator=g)
        x[b, 1:L + 1, 2] = 1
        x[b, L + 1:, 4] = 1
    return x, lengths


def test_default_model_has_no_class_parameters():
    for cond in (True, False):
        m = SketchRNN(ModelConfig(conditional=cond, **SMALL))
        assert m.decoder.class_embedding is None
        assert not any("class" in k for k in m.state_dict())
        assert m.decoder.cell.input_size == 5 + (4 if cond else 0)


def test_class_embedding_shapes_and_validation():
    m = SketchRNN(ModelConfig(class_conditional=True, num_classes=5, class_embedding_size=3, **SMALL))
    assert m.state_dict()["decoder.class_embedding.weight"].shape == (5, 3)
    assert m.decoder.cell.input_size == 5 + 4 + 3
    with pytest.raises(ConfigError, match="num_classes"):
        ModelConfig(class_conditional=True, num_classes=0).validate()
    with pytest.raises(ConfigError, match="class_embedding_size"):
        apply_overrides(Config(), ["model.class_embedding_size=0"])


@pytest.mark.parametrize("conditional", [True, False])
def test_decoder_reads_x_then_z_then_the_class_embedding(conditional):
    """float64 reference: a step-by-step loop over the cell with input [x; z; E[c]]."""
    torch.manual_seed(0)
    m = SketchRNN(ModelConfig(conditional=conditional, class_conditional=True, num_classes=4,
                              class_embedding_size=3, **SMALL)).double().eval()
    x, lengths = _batch()
    x = x.double()
    cls = torch.tensor([2, 0, 3])
    z = torch.randn(3, 4, dtype=torch.float64) if conditional else None
    out, _ = m.decoder(x[:, :-1], z, class_ids=cls)
    dec = m.decoder
    state = dec.initial_state(z, 3)
    e = dec.class_embedding.weight[cls]  # (B, E)
    for t in range(x.shape[1] - 1):
        parts = [x[:, t]] + ([z] if conditional else []) + [e]
        h, state = dec.cell(torch.cat(parts, dim=1), state)
        assert torch.allclose(out[:, t], dec.output(h), atol=1e-12)
    with pytest.raises(ValueError, match="class_ids"):
        m.decoder(x[:, :-1], z)


def test_class_ids_change_the_output_and_train_the_embedding():
    torch.manual_seed(1)
    m = SketchRNN(ModelConfig(class_conditional=True, num_classes=3, class_embedding_size=4, **SMALL))
    x, lengths = _batch()
    torch.manual_seed(5)
    a = m.losses(x, lengths, class_ids=torch.tensor([0, 0, 0]))
    torch.manual_seed(5)
    b = m.losses(x, lengths, class_ids=torch.tensor([1, 1, 1]))
    assert not torch.allclose(a["L_R"], b["L_R"])
    b["L_R"].backward()
    g = m.decoder.class_embedding.weight.grad
    assert g[1].abs().sum() > 0 and torch.all(g[0] == 0) and torch.all(g[2] == 0)
    z = torch.zeros(3, 4)
    nll = m.eval().per_sketch_nll(x, lengths, z=z, class_ids=torch.tensor([0, 1, 2]))
    assert nll.shape == (3,) and torch.isfinite(nll).all()


def test_trainer_checks_num_classes_against_the_data(tmp_path):
    from sketchrnn.data.synthetic import write_synthetic_npz
    from sketchrnn.train import Trainer

    a = write_synthetic_npz(tmp_path / "a.npz", 16, 8, 2, seed=0)
    b = write_synthetic_npz(tmp_path / "b.npz", 16, 8, 2, seed=1)
    cfg = apply_overrides(Config(), [f"data.paths={a},{b}", "model.class_conditional=true", "model.num_classes=1",
                                     "train.batch_size=4", "model.max_seq_len=64"])
    with pytest.raises(ConfigError, match="num_classes=2"):
        Trainer(cfg, tmp_path / "run", progress=False)


def test_saved_weights_reload_with_the_embedding(tmp_path):
    from sketchrnn.checkpoint import load_model, save_weights

    torch.manual_seed(2)
    cfg = ModelConfig(class_conditional=True, num_classes=3, class_embedding_size=4, **SMALL)
    m = SketchRNN(cfg).eval()
    save_weights(tmp_path / "m.safetensors", m, cfg, 10.0, ["a", "b", "c"], half=False)
    lm = load_model(tmp_path / "m.safetensors")
    x, lengths = _batch()
    cls = torch.tensor([2, 1, 0])
    z = torch.randn(3, 4)
    assert torch.equal(lm.model.per_sketch_nll(x, lengths, z=z, class_ids=cls), m.per_sketch_nll(x, lengths, z=z, class_ids=cls))
