"""Half-precision exports keep the mixture head in float32 (checkpoint.save_weights)."""

from __future__ import annotations

import pytest
import torch

from sketchrnn.checkpoint import FLOAT32_PREFIXES, load_model, save_weights
from sketchrnn.config import ModelConfig
from sketchrnn.model import SketchRNN


@pytest.mark.parametrize("conditional,dec_model", [(False, "lstm"), (True, "layer_norm")])
@pytest.mark.parametrize("half", [True, False])
def test_export_dtypes_and_round_trip(tmp_path, conditional, dec_model, half):
    from safetensors import safe_open

    torch.manual_seed(0)
    cfg = ModelConfig(conditional=conditional, dec_model=dec_model, dec_rnn_size=32, enc_rnn_size=16,
                      z_size=8, num_mixture=5, max_seq_len=20)
    model = SketchRNN(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)  # values float16 cannot hold exactly
    path = tmp_path / "m.safetensors"
    save_weights(path, model, cfg, 10.0, [], half=half)
    with safe_open(str(path), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    head = {k for k in dtypes if k.startswith(FLOAT32_PREFIXES)}
    assert head == {"decoder.output.weight", "decoder.output.bias"}
    for k, d in dtypes.items():
        assert d == ("F16" if half and k not in head else "F32"), (k, d)
    loaded = load_model(path).model.state_dict()
    for k, v in model.state_dict().items():
        want = v.half().float() if half and k not in head else v
        assert torch.equal(loaded[k], want), k
