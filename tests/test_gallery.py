"""Tests of the drawing edits of docs/gallery/make_gallery.py (three eyes, eight legs, pig head)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from sketchrnn.data.strokes import from_polylines, to_polylines

_PATH = Path(__file__).resolve().parents[1] / "docs" / "gallery" / "make_gallery.py"


@pytest.fixture(scope="module")
def G():
    spec = importlib.util.spec_from_file_location("make_gallery", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_gallery"] = mod
    spec.loader.exec_module(mod)
    return mod


def _circle(cx: float, cy: float, r: float, n: int = 16) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n + 1)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)  # (n+1, 2), closed


def test_three_eyed_adds_a_copy_of_an_eye_inside_the_face(G):
    rng = np.random.default_rng(0)
    face = _circle(100, 100, 80, 40)
    eyes = [_circle(70, 90, 8), _circle(130, 92, 8)]
    mouth = np.array([[80, 140], [100, 150], [120, 140.0]])
    polys = [face, eyes[0] + rng.normal(0, 0.3, eyes[0].shape), eyes[1], mouth]
    out, _ = G.three_eyed(from_polylines(polys))
    new = to_polylines(out, start=polys[0][0])
    assert len(new) == len(polys) + 1
    added = new[3]  # drawn right after the second eye
    c = (added.min(axis=0) + added.max(axis=0)) / 2.0
    assert 90 < c[0] < 110 and c[1] < 90 and c[1] > 20  # above and between the eyes, inside the face
    assert np.ptp(added, axis=0) == pytest.approx(np.ptp(new[1], axis=0), abs=1e-3)  # a copy of an eye
    assert G.three_eyed(from_polylines([face, mouth])) is None  # no eyes: nothing to copy


def test_eight_legged_and_head_only(G):
    body = np.array([[0, 0], [200, 0], [200, 80], [0, 80], [0, 0.0]])
    legs = [np.array([[x, 80], [x, 120.0]]) for x in (20, 60, 140, 180)]
    head = _circle(240, 30, 35, 20)
    snout = _circle(250, 35, 8)
    s3 = from_polylines([body] + legs + [head, snout])
    out, _ = G.eight_legged(s3)
    polys = to_polylines(out, start=body[0])
    vertical = [p for p in polys if len(p) == 2 and np.ptp(p[:, 0]) < 1e-6 and np.ptp(p[:, 1]) == pytest.approx(40)]
    assert len(vertical) == 8
    assert len({round(float(p[0, 0]), 3) for p in vertical}) == 8  # all at different places
    h, _ = G.head_only(s3)
    hp = to_polylines(h, start=head[0])
    assert len(hp) == 2 and np.allclose(hp[0], head, atol=1e-3) and np.allclose(hp[1], snout, atol=1e-3)


@pytest.mark.parametrize("cls", ["cat", "pig", "yoga", "rabbit"])
def test_decoder_only_section_draws_samples_and_completions(G, tmp_path, shared_dir, cls):
    """The `--CLASS-uncond` section end to end with a tiny untrained decoder-only model: both
    pictures written (PNG), listed in the README with the given quality note."""
    if not (shared_dir / "data" / "quickdraw" / "simplified" / f"{cls}.ndjson").is_file():
        pytest.skip(f"../shared/data/quickdraw/simplified/{cls}.ndjson not present")
    import torch

    from sketchrnn.checkpoint import save_weights
    from sketchrnn.config import ModelConfig
    from sketchrnn.model import SketchRNN

    cfg = ModelConfig(conditional=False, dec_model="lstm", dec_rnn_size=16, num_mixture=3, max_seq_len=250)
    torch.manual_seed(0)
    path = tmp_path / "tiny_uncond.safetensors"
    save_weights(path, SketchRNN(cfg), cfg, 40.0, [cls])
    out = tmp_path / "gallery"
    assert G.main(["--out", str(out), "--shared", str(shared_dir), "--no-magenta", "--no-shipped",
                   f"--{cls}-uncond", str(path), "--note", f"{cls}-uncond=untrained test model"]) == 0
    for fn in (f"uncond_samples_{cls}.png", f"uncond_complete_{cls}.png"):
        assert (out / fn).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", fn
    readme = (out / "README.md").read_text()
    assert f"## Decoder-only {cls} trained by this project" in readme
    assert readme.count("measured quality: untrained test model.") == 2  # one caption per picture


def _tiny_vae(path, classes: list[str], max_seq_len: int):
    """A tiny untrained conditional VAE saved as safetensors at ``path`` (seeded)."""
    import torch

    from sketchrnn.checkpoint import save_weights
    from sketchrnn.config import ModelConfig
    from sketchrnn.model import SketchRNN

    cfg = ModelConfig(conditional=True, dec_model="lstm", enc_rnn_size=8, dec_rnn_size=16, z_size=8, num_mixture=3,
                      max_seq_len=max_seq_len)
    torch.manual_seed(0)
    save_weights(path, SketchRNN(cfg), cfg, 70.0, classes)
    return path


def test_vae_sections_draw_toothbrushes_and_the_averaged_analogy(G, tmp_path, shared_dir):
    """The `--cat` and `--catpig` sections end to end with tiny untrained VAEs: the toothbrush
    set and the analogy averaged over the teacher's pigs are drawn and captioned."""
    need = [shared_dir / "data" / "quickdraw" / "simplified" / f"{c}.ndjson" for c in ("cat", "pig", "toothbrush", "chair")]
    need.append(shared_dir / "data" / "distilled" / "pig.npz")
    missing = [str(p) for p in need if not p.is_file()]
    if missing:
        pytest.skip(f"shared data not present: {', '.join(missing)}")
    paths = {role: _tiny_vae(tmp_path / f"tiny_{role}.safetensors", classes, max_seq_len=168)
             for role, classes in (("cat", ["cat"]), ("catpig", ["cat", "pig"]))}
    out = tmp_path / "gallery"
    assert G.main(["--out", str(out), "--shared", str(shared_dir), "--no-magenta", "--no-shipped",
                   "--cat", str(paths["cat"]), "--catpig", str(paths["catpig"]),
                   "--note", "cat=untrained test model", "--note", "catpig=untrained test model"]) == 0
    for fn in ("vae_cat_reconstruct.png", "vae_cat_toothbrushes.png", "vae_catpig_analogy.png",
               "vae_catpig_analogy_mean.png"):
        assert (out / fn).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", fn
    readme = (out / "README.md").read_text()
    assert "drawings 0 and 15" in readme and "Every toothbrush" in readme
    assert "mean z(full pig) - mean z(pig head)" in readme and "strength s = 1, 1.5, 2" in readme
    assert "Seen with the shipped model" not in readme  # what was seen holds for the shipped models only


@pytest.mark.parametrize("cls", ["yoga", "rabbit"])
def test_class_vae_section_reconstructs_and_morphs(G, tmp_path, shared_dir, cls):
    """The `--yoga` / `--rabbit` section end to end with a tiny untrained VAE: reconstructions of
    real and foreign drawings and the morph (PNG + GIF) written and captioned; what was seen with
    the shipped model is not claimed for another model."""
    simplified = shared_dir / "data" / "quickdraw" / "simplified"
    need = [simplified / f"{cls}.ndjson"] + [simplified / f"{o}.ndjson" for o, _ in G.CLASS_PICKS[cls]["foreign"]]
    missing = [str(p) for p in need if not p.is_file()]
    if missing:
        pytest.skip(f"shared data not present: {', '.join(missing)}")
    path = _tiny_vae(tmp_path / f"tiny_{cls}.safetensors", [cls], max_seq_len=120)
    out = tmp_path / "gallery"
    assert G.main(["--out", str(out), "--shared", str(shared_dir), "--no-magenta", "--no-shipped",
                   f"--{cls}", str(path), "--note", f"{cls}=untrained test model"]) == 0
    for fn in (f"vae_{cls}_reconstruct.png", f"vae_{cls}_morph.png"):
        assert (out / fn).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", fn
    assert (out / f"vae_{cls}_morph.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    readme = (out / "README.md").read_text()
    assert f"## Conditional {cls} model" in readme
    assert readme.count("measured quality: untrained test model.") == 2  # reconstruction + morph captions
    foreign = ", ".join(f"{o} {i}" for o, i in G.CLASS_PICKS[cls]["foreign"])
    assert f"drawings the model never saw ({foreign}" in readme
    assert f"distilled training data span a median of {cls} " in readme or not (
        shared_dir / "data" / "distilled" / f"{cls}.npz").is_file()
    assert "Seen with the shipped model" not in readme
