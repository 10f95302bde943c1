"""Error-compensating rounding onto Magenta's int16 grid (sketchrnn.interop.rounding, GPTQ)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchrnn.interop.magenta import QUANT_STEP, export_magenta, load_magenta
from sketchrnn.interop.rounding import gptq_round, second_moment


def obq_reference(w: np.ndarray, h: np.ndarray, step: float, damp: float) -> np.ndarray:
    """Optimal Brain Quantization in its plain form: round column j, move the later columns by
    -err_j / Hinv[j, j] * Hinv[j, later], then eliminate j from Hinv (Gaussian elimination)."""
    w = w.astype(np.float64).copy()
    n = w.shape[1]
    hinv = np.linalg.inv(h + damp * np.mean(np.diag(h)) * np.eye(n))
    q = np.empty_like(w)
    for j in range(n):
        q[:, j] = np.rint(w[:, j] / step)
        err = w[:, j] - q[:, j] * step
        w[:, j + 1:] -= np.outer(err / hinv[j, j], hinv[j, j + 1:])
        hinv = hinv - np.outer(hinv[:, j], hinv[j, :]) / hinv[j, j]
    return q


def correlated_inputs(n: int, d: int, seed: int) -> np.ndarray:
    """(n, d) samples of one fixed distribution with correlated columns and a decaying
    spectrum, as a layer's activations have."""
    mix = (1.0 / (1.0 + np.arange(d) / 4))[:, None] * np.random.default_rng(1234).normal(size=(d, d))
    return np.random.default_rng(seed).normal(size=(n, d)) @ mix


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cholesky_form_equals_plain_obq(seed):
    rng = np.random.default_rng(seed)
    x = correlated_inputs(400, 12, seed)
    w = rng.normal(size=(7, 12))
    h = second_moment(x)
    q = gptq_round(w, h, step=0.1, damp=0.01)
    np.testing.assert_array_equal(q, obq_reference(w, h, 0.1, 0.01))
    assert np.all(q == np.rint(q))


@pytest.mark.parametrize("seed", [0, 1])
def test_output_error_far_below_nearest_rounding_on_held_out_inputs(seed):
    rng = np.random.default_rng(seed)
    x_cal, x_new = correlated_inputs(3000, 40, seed), correlated_inputs(3000, 40, seed + 10)
    w = rng.normal(size=(30, 40))
    step = 0.05
    q_gptq = gptq_round(w, second_moment(x_cal), step)
    q_near = np.rint(w / step)

    def out_err(q):
        return float(np.mean(((w - q * step) @ x_new.T) ** 2))

    assert out_err(q_gptq) < 0.5 * out_err(q_near), (out_err(q_gptq), out_err(q_near))
    # per weight it is allowed to move further than half a step (that is the point)
    assert np.max(np.abs(w - q_gptq * step)) > step / 2


def test_unused_inputs_are_rounded_to_nearest():
    rng = np.random.default_rng(3)
    x = correlated_inputs(500, 8, 3)
    x[:, 5] = 0.0  # an input that never fires
    w = rng.normal(size=(4, 8))
    q = gptq_round(w, second_moment(x), 0.1)
    np.testing.assert_array_equal(q[:, 5], np.rint(w[:, 5] / 0.1))


def _outputs(model, sketches, scale):
    """Raw decoder outputs of all scored steps of ``sketches`` (stroke-3, data units)."""
    from sketchrnn.data.strokes import to_stroke5

    outs = []
    with torch.no_grad():
        for s in sketches:
            x = torch.from_numpy(to_stroke5(s, len(s), scale))[None].float()  # (1, L+1, 5)
            out, _ = model.decoder(x, None)
            outs.append(out[0].double().numpy())
    return np.concatenate(outs)  # (sum(L+1), 123)


def test_compensated_export_keeps_a_models_outputs_closer_than_nearest(tmp_path):
    """A decoder whose weights sit far off the grid (std 0.5, 64 units): after the round trip
    through .gen.json the compensated file's outputs on sketches it was not calibrated on
    are much closer to the float model's than the nearest-rounded file's."""
    from sketchrnn.config import ModelConfig
    from sketchrnn.data.synthetic import make_shapes
    from sketchrnn.model import SketchRNN

    torch.manual_seed(0)
    cfg = ModelConfig(conditional=False, dec_model="lstm", dec_rnn_size=64, num_mixture=20, max_seq_len=80,
                      use_recurrent_dropout=False)
    model = SketchRNN(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.15)
    scale = 20.0
    sketches = make_shapes(60, seed=0)
    cal, held = sketches[:40], sketches[40:]
    ref = _outputs(model, held, scale)
    errs = {}
    for rounding in ("nearest", "compensated"):
        p = tmp_path / f"{rounding}.gen.json"
        export_magenta(model, p, scale_factor=scale, rounding=rounding, calibration=cal)
        errs[rounding] = float(np.mean((_outputs(load_magenta(p).model, held, scale) - ref) ** 2))
    assert errs["compensated"] < 0.5 * errs["nearest"], errs
    # the default calibrates on the model's own samples (no data needed): it keeps what the
    # model draws, here judged on other samples of it
    from sketchrnn.api import sample
    from sketchrnn.loaded import LoadedModel

    lm = LoadedModel(model=model, config=cfg, scale_factor=scale, class_names=[], name="m", source="", info={})
    drawn = sample(lm, n=20, temperature=1.0, seed=99)
    ref_drawn = _outputs(model, drawn, scale)
    export_magenta(model, tmp_path / "own.gen.json", scale_factor=scale, n_calibration=40)
    own = {f: float(np.mean((_outputs(load_magenta(tmp_path / f).model, drawn, scale) - ref_drawn) ** 2))
           for f in ("own.gen.json", "nearest.gen.json")}
    assert own["own.gen.json"] < 0.5 * own["nearest.gen.json"], own
    q = json_weights(tmp_path / "compensated.gen.json")
    assert all(np.all(np.abs(a) <= 32767) for a in q) and QUANT_STEP > 0


def json_weights(path):
    import base64
    import json

    return [np.frombuffer(base64.b64decode(s), dtype="<i2") for s in json.loads(path.read_text())[2]]
