"""Creative toolkit (sketchrnn.creative, creative_cli) on tiny random-weight models."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from sketchrnn import creative as C
from sketchrnn.api import decode, encode
from sketchrnn.cli import main
from sketchrnn.config import ModelConfig
from sketchrnn.data.strokes import from_polylines
from sketchrnn.errors import DataError, ModelFileError
from sketchrnn.loaded import LoadedModel
from sketchrnn.model import SketchRNN

MAX_LEN = 40


def _model(conditional: bool, no_end: bool = False, seed: int = 0) -> LoadedModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(conditional=conditional, enc_rnn_size=12, dec_rnn_size=20, z_size=6, num_mixture=3,
                      max_seq_len=MAX_LEN, use_recurrent_dropout=False)
    m = SketchRNN(cfg).eval()
    if no_end:  # pen logit of end-of-sketch very low: sketches run to their length limit
        with torch.no_grad():
            m.decoder.output.bias[2] = -30.0
    return LoadedModel(m, cfg, 8.0, ["thing"], "tiny-cond" if conditional else "tiny-dec")


@pytest.fixture(scope="module")
def cond():
    return _model(True)


@pytest.fixture(scope="module")
def cond_long():
    return _model(True, no_end=True)


@pytest.fixture(scope="module")
def dec_long():
    return _model(False, no_end=True, seed=1)


def _sketch(rng: np.random.Generator, n_strokes: int = 3, pts: int = 6) -> np.ndarray:
    return from_polylines([np.cumsum(rng.normal(0, 8, (pts, 2)), axis=0) for _ in range(n_strokes)])


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


# --------------------------------------------------------------------------- latent maths
def _slerp_ref(a, b, t):
    """Slerp as a rotation in the plane of a and b (float64), norms interpolated linearly in
    log-free form: independent of the sin-weights formula."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    ua, ub = a / na, b / nb
    omega = math.acos(np.clip(ua @ ub, -1, 1))
    v = ub - (ua @ ub) * ua
    v /= np.linalg.norm(v)
    # the sin-weight slerp of unnormalised vectors equals, for each t, a combination whose
    # direction is rotated by t*omega; check against the closed form on unit vectors scaled back
    w0 = math.sin((1 - t) * omega) / math.sin(omega)
    w1 = math.sin(t * omega) / math.sin(omega)
    direction = math.cos(t * omega) * ua + math.sin(t * omega) * v
    return w0 * a + w1 * b, direction


def test_slerp_endpoints_and_reference():
    r = np.random.default_rng(5)
    for _ in range(20):
        a, b = r.normal(size=16), r.normal(size=16)
        t = np.linspace(0, 1, 7)
        z = C.slerp(a, b, t)
        assert z.shape == (7, 16)
        np.testing.assert_array_equal(z[0], a)
        np.testing.assert_array_equal(z[-1], b)
        for ti, zi in zip(t, z):
            ref, direction = _slerp_ref(a, b, ti)
            np.testing.assert_allclose(zi, ref, rtol=1e-10, atol=1e-12)
        # with unit vectors slerp is the rotation from a to b at constant speed
        ua, ub = a / np.linalg.norm(a), b / np.linalg.norm(b)
        for ti in t:
            _, direction = _slerp_ref(ua, ub, ti)
            np.testing.assert_allclose(C.slerp(ua, ub, ti), direction, atol=1e-10)


def test_lerp_and_degenerate_slerp():
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    np.testing.assert_allclose(C.lerp(a, b, 0.25), 0.75 * a + 0.25 * b)
    np.testing.assert_allclose(C.slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: falls back to lerp
    np.testing.assert_allclose(C.slerp(a, a, np.array([0.0, 0.3, 1.0])), np.stack([a, a, a]))
    with pytest.raises(DataError):
        C.interpolate_z(a, b, 1)
    with pytest.raises(DataError, match="slerp"):
        C.interpolate_z(a, b, 3, method="cubic")


# --------------------------------------------------------------------------- model tools
def test_interpolate_endpoints_are_the_inputs_z(cond, rng):
    a, b = _sketch(rng), _sketch(rng, 2, 9)
    res = C.interpolate(cond, a, b, k=5)
    (za,), (zb,) = encode(cond, [a]), encode(cond, [b])
    assert res.z.shape == (5, 6) and len(res.sketches) == 5
    np.testing.assert_array_equal(res.z[0], za)  # exact: slerp returns its endpoints as given
    np.testing.assert_array_equal(res.z[-1], zb)
    assert all(s.ndim == 2 and s.shape[1] == 3 and len(s) <= MAX_LEN for s in res.sketches)
    # the same seed for every step: decoding z[i] alone gives that step's sketch
    np.testing.assert_array_equal(decode(cond, res.z[2:3], temperature=0.1, seed=0)[0], res.sketches[2])
    lin = C.interpolate(cond, za, zb, k=5, method="lerp")  # z given directly
    np.testing.assert_allclose(lin.z[2], (za + zb) / 2, rtol=1e-5)


def test_interpolation_of_identical_endpoints_is_constant(cond_long, rng):
    a = _sketch(rng)
    res = C.interpolate(cond_long, a, a.copy(), k=4, temperature=0.5, seed=3)
    for z, s in zip(res.z[1:], res.sketches[1:]):
        np.testing.assert_array_equal(z, res.z[0])
        np.testing.assert_array_equal(s, res.sketches[0])
    assert len(res.sketches[0]) == MAX_LEN
    g = C.interpolate(cond_long, a, _sketch(rng), k=3, greedy=True, seed=None)
    g2 = C.interpolate(cond_long, a, g.z[-1], k=3, greedy=True, seed=None)
    np.testing.assert_array_equal(g.sketches[-1], g2.sketches[-1])  # greedy: no randomness


def test_analogy_with_b_equal_c_returns_a(cond, rng):
    a, b = _sketch(rng), _sketch(rng, 4, 4)
    res = C.analogy(cond, a, b, b.copy(), n=3)
    (za,) = encode(cond, [a])
    assert res.z.shape == (3, 6) and len(res.sketches) == 3
    np.testing.assert_allclose(res.z[0], za, rtol=1e-6, atol=1e-7)
    c = _sketch(rng, 1, 12)
    res2 = C.analogy(cond, a, b, c)
    (zb,), (zc,) = encode(cond, [b]), encode(cond, [c])
    np.testing.assert_allclose(res2.z[0], za.astype(np.float64) - zb + zc, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("strength", [0.0, 0.5, 2.0])
def test_analogy_strength_scales_the_direction(cond, rng, strength):
    a, b, c = _sketch(rng), _sketch(rng, 4, 4), _sketch(rng, 1, 12)
    (za,), (zb,), (zc,) = encode(cond, [a]), encode(cond, [b]), encode(cond, [c])
    res = C.analogy(cond, a, b, c, n=2, strength=strength)
    np.testing.assert_allclose(res.z[0], zc.astype(np.float64) + strength * (za.astype(np.float64) - zb),
                               rtol=1e-6, atol=1e-7)
    assert res.info["strength"] == strength
    with pytest.raises(DataError, match="strength"):
        C.analogy(cond, a, b, c, strength=float("nan"))


def test_mean_latent_is_the_mean_of_mu(cond, rng):
    xs = [_sketch(rng), _sketch(rng, 4, 4), _sketch(rng, 1, 12)]
    zs = encode(cond, xs)  # (3, Z)
    m = C.mean_latent(cond, xs)
    assert m.shape == (zs.shape[1],) and m.dtype == np.float32
    np.testing.assert_allclose(m, zs.astype(np.float64).mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(C.mean_latent(cond, [zs[0], xs[1]]), (zs[0] + zs[1]) / 2, rtol=1e-6, atol=1e-7)
    # a direction from means passes into the analogy as latent vectors
    res = C.analogy(cond, m, C.mean_latent(cond, xs[:1]), xs[2])
    np.testing.assert_allclose(res.z[0], zs[2] + m - zs[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="no sketches"):
        C.mean_latent(cond, [])
    with pytest.raises(DataError, match=r"sketches\[1\]: a latent vector of size 3 does not fit"):
        C.mean_latent(cond, [xs[0], np.zeros(3)])


@pytest.mark.parametrize("which", ["cond", "dec"])
def test_completions_differ_and_hold_only_new_points(which, cond_long, dec_long, rng):
    lm = cond_long if which == "cond" else dec_long
    prefix = _sketch(rng, 2, 5)  # 9 rows
    outs = C.complete(lm, prefix, n=4, temperature=1.0, seed=7)
    assert len(outs) == 4
    for s in outs:  # the model never ends: each holds exactly the room left after the prefix
        assert s.shape == (MAX_LEN - len(prefix), 3)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(outs[i], outs[j])
    # priming matters: the same seed without the prefix gives other points
    free = decode(lm, encode(lm, [prefix]).repeat(4, 0) if which == "cond" else None, n=4, temperature=1.0, seed=7,
                  max_len=MAX_LEN - len(prefix))
    assert not np.array_equal(free[0], outs[0])
    joined = C.join(prefix, outs[0])
    np.testing.assert_array_equal(joined[: len(prefix)], prefix)


def test_complete_z_modes(cond_long, dec_long, rng):
    prefix = _sketch(rng, 1, 6)
    prior = C.complete(cond_long, prefix, n=3, z="prior", seed=1, max_len=10)
    assert [len(s) for s in prior] == [10, 10, 10]
    zin = C.complete(cond_long, prefix, n=2, z="input", greedy=True, max_len=10)
    np.testing.assert_allclose(zin[0], zin[1], rtol=1e-5, atol=1e-5)  # same z, greedy: same (up to batch rounding)
    explicit = C.complete(cond_long, prefix, n=2, z=encode(cond_long, [prefix])[0], greedy=True, max_len=10)
    np.testing.assert_allclose(explicit[0], zin[0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(prior[0], prior[1])  # a z per completion from the prior
    with pytest.raises(ModelFileError) as ei:
        C.complete(dec_long, prefix, z="prior")
    assert "decoder-only" in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(DataError, match="'input', 'prior'"):
        C.complete(cond_long, prefix, z="posterior")


def test_reconstructions_shape(cond, rng):
    xs = [_sketch(rng), _sketch(rng, 2, 3)]
    res = C.reconstructions(cond, xs, n=2, temperatures=(0.1, 0.5, 1.0), seed=0)
    assert len(res) == 2 and all(len(r) == 3 for r in res) and all(len(t) == 2 for r in res for t in r)
    assert all(s.ndim == 2 and s.shape[1] == 3 for r in res for t in r for s in t)


def test_design_sheet_conditional_and_decoder_only(cond_long, dec_long, rng):
    motif = _sketch(rng)
    d = C.design_sheet(cond_long, motif, rows=2, cols=3, sigma=0.3, temperature=0.4, seed=0)
    assert len(d.sketches) == 6 and d.z.shape == (6, 6)
    (z0,) = encode(cond_long, [motif])
    dev = d.z - z0
    assert np.all(np.abs(dev) > 0) and np.all(np.abs(dev) < 0.3 * 6)
    assert len({s.tobytes() for s in d.sketches}) == 6  # all unique
    flat = C.design_sheet(cond_long, motif, rows=1, cols=3, sigma=0.0, seed=0)
    np.testing.assert_allclose(flat.z, np.repeat(z0[None], 3, 0), rtol=1e-6)
    pre = _sketch(rng, 1, 5)
    dd = C.design_sheet(dec_long, None, rows=2, cols=2, sigma=0.2, temperature=0.5, seed=1, prefix=pre)
    assert dd.z is None and len(dd.sketches) == 4
    assert all(np.array_equal(s[: len(pre)], pre) and len(s) > len(pre) for s in dd.sketches)
    assert len(set(dd.info["temperatures"])) == 4
    with pytest.raises(ModelFileError, match="decoder-only"):
        C.design_sheet(dec_long, motif)


# --------------------------------------------------------------------------- seamless tile
def _motifs(rng, n):
    return [_sketch(rng, 2, 7) for _ in range(n)]


@pytest.mark.parametrize("offset", [True, False])
def test_tile_is_seamless(rng, offset):
    rows, cols, cell = 4, 3, 40
    sk = _motifs(rng, rows * cols)
    kw = {"motif_scale": 1.1, "stroke_width": 2.5, "colors": [(200, 0, 0), (0, 0, 120)]}  # motifs cross the cell borders
    tile = np.asarray(C.tile_image(sk, rows, cols, cell=cell, offset=offset, **kw))
    W, H = cols * cell, rows * cell
    assert tile.shape == (H, W, 3)
    # edges carry ink (else the check below would be trivial)
    assert (tile[:, 0] < 250).any() and (tile[0, :] < 250).any() if offset else True
    ext = np.asarray(C.render_lattice(sk, rows, cols, cell, offset, window=(0, 0, W + 1, H + 1), **kw))
    np.testing.assert_array_equal(ext[:, W], ext[:, 0])  # the column after the right edge is the left edge
    np.testing.assert_array_equal(ext[H, :], ext[0, :])  # the row after the bottom edge is the top edge
    np.testing.assert_array_equal(ext[:H, :W], tile)
    big = np.asarray(C.render_lattice(sk, rows, cols, cell, offset, window=(0, 0, 2 * W, 2 * H), **kw))
    np.testing.assert_array_equal(big, np.tile(tile, (2, 2, 1)))  # tiled copies join without seams
    shifted = np.asarray(C.render_lattice(sk, rows, cols, cell, offset, window=(37, 53, W, H), **kw))
    np.testing.assert_array_equal(shifted, np.roll(tile, (-53, -37), axis=(0, 1)))


def test_tile_edges_without_wrapping_would_not_match(rng):
    """Sanity of the test above: the wrapped copies are what makes the edges match."""
    rows, cols, cell = 2, 2, 40
    sk = _motifs(rng, 4)
    tile = np.asarray(C.tile_image(sk, rows, cols, cell=cell, offset=True, motif_scale=1.1))
    assert not np.array_equal(tile[:, 0], tile[:, -1])  # neighbouring columns, not copies
    assert (tile[:, 0] < 250).any()  # the half-shifted motif on the right edge reappears at the left


def test_tile_svg_and_lattice_errors(rng):
    sk = _motifs(rng, 4)
    svg = C.tile_svg(sk, 2, 2, cell=50)
    assert svg.startswith("<svg") and 'viewBox="0 0 100 100"' in svg
    with pytest.raises(DataError, match="even number of rows"):
        C.tile_image(_motifs(rng, 3), 3, 1, cell=40)
    with pytest.raises(DataError, match="rows \\* cols"):
        C.tile_image(sk, 3, 2, cell=40, offset=False)


# --------------------------------------------------------------------------- animation helpers
def test_frames_gif_and_svg(tmp_path, rng):
    sk = _motifs(rng, 5)
    n = C.frames_gif(sk, tmp_path / "a.gif", size=64)
    assert n == 8  # 5 forward + 3 back (ping-pong)
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 8 and im.size == (64, 64)
    svg = C.frames_svg(sk, size=64)
    assert svg.count("<animate ") == 5 and svg.count('values="') == 5
    one = C.frames_svg(sk[:1], size=64)
    assert one.count("<animate ") == 1


def test_split_lines_colours_prefix_and_continuation():
    prefix = np.array([[1, 0, 0], [1, 0, 1], [0, 5, 0]], np.float32)  # ends with the pen down
    cont = np.array([[2, 0, 1], [1, 1, 0], [1, 1, 1]], np.float32)
    first, second = C.split_lines(C.join(prefix, cont), len(prefix))
    np.testing.assert_array_equal(first[0], [[0, 0], [1, 0], [2, 0]])
    np.testing.assert_array_equal(second[0], [[2, 5], [4, 5]])  # continues from the prefix's last point
    np.testing.assert_array_equal(second[1], [[5, 6], [6, 7]])
    img = C.two_tone_image([(C.join(prefix, cont), 3)], ncols=1, cell=64)
    px = np.asarray(img).reshape(-1, 3)
    assert ((px[:, 0] > 150) & (px[:, 1] < 80)).any() and ((np.abs(px[:, 0].astype(int) - px[:, 1]) < 5) & (px[:, 0] < 200)).any()


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("fn", ["reconstructions", "interpolate", "analogy"])
def test_decoder_only_model_is_refused_in_one_line(dec_long, rng, fn):
    s = _sketch(rng)
    args = {"reconstructions": ([s],), "interpolate": (s, s), "analogy": (s, s, s)}[fn]
    with pytest.raises(C.ModelKindError) as ei:
        getattr(C, fn)(dec_long, *args)
    msg = str(ei.value)
    assert "\n" not in msg and "decoder-only" in msg and "tiny-dec" in msg


@pytest.mark.parametrize("bad, needle", [(np.zeros((0, 3)), "empty"), (np.array([[1.0, 1.0, 1.0]]), "only 1 point")])
def test_empty_and_one_point_sketches(cond, bad, needle):
    with pytest.raises(DataError, match=needle):
        C.interpolate(cond, bad, bad)
    with pytest.raises(DataError, match=needle):
        C.complete(cond, bad)


def test_too_long_sketch_is_simplified_with_a_warning(cond, rng):
    long = from_polylines([np.cumsum(rng.normal(0, 4, (60, 2)), axis=0)])  # 59 rows > 40
    with pytest.warns(C.SketchFitWarning, match="RDP"):
        res = C.interpolate(cond, long, long, k=2)
    assert res.z.shape == (2, 6)
    many = from_polylines([np.array([[i, 0.0], [i, 5.0]]) for i in range(30)])  # 59 rows, 30 strokes
    with pytest.raises(DataError, match="straight strokes"):
        C.complete(cond, many)


def test_wrong_z_size(cond, rng):
    with pytest.raises(DataError, match="z_size 6"):
        C.interpolate(cond, np.zeros(5, np.float32), _sketch(rng))


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def model_files(tmp_path_factory, cond_long, dec_long):
    from sketchrnn.checkpoint import save_weights

    d = tmp_path_factory.mktemp("models")
    save_weights(d / "cond.safetensors", cond_long.model, cond_long.config, cond_long.scale_factor, ["thing"], half=False)
    save_weights(d / "dec.safetensors", dec_long.model, dec_long.config, dec_long.scale_factor, ["thing"], half=False)
    return d


@pytest.fixture()
def inputs(tmp_path, rng):
    j = tmp_path / "in.json"
    j.write_text(json.dumps({"sketches": [_sketch(rng).tolist(), _sketch(rng, 2, 4).tolist(), _sketch(rng, 1, 8).tolist()]}))
    s = tmp_path / "in.svg"
    s.write_text('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0 C 30 40 60 40 90 0"/>'
                 '<polyline points="10,50 40,80 80,50"/></svg>')
    return j, s


def _ok(args, capsys):
    code = main(args)
    cap = capsys.readouterr()
    assert code == 0, cap.err
    return cap


def test_cli_conditional_verbs(tmp_path, model_files, inputs, capsys):
    j, s = inputs
    m = str(model_files / "cond.safetensors")
    out = tmp_path / "o"
    _ok(["reconstruct", str(j), "--model", m, "--n", "2", "--temperatures", "0.2,0.8", "--out", str(out / "r")], capsys)
    from sketchrnn.data import load_npz

    rec = load_npz(out / "r" / "reconstruct.npz")
    assert len(rec["input"]) == 3 and len(rec["t0.2"]) == 6 and len(rec["t0.8"]) == 6
    with Image.open(out / "r" / "reconstruct.png") as im:
        assert im.size[0] == 3 * 128  # n + 1 columns
    _ok(["interpolate", str(j), str(s), "--model", m, "--k", "4", "--out", str(out / "i")], capsys)
    with Image.open(out / "i" / "interpolation.gif") as im:
        assert im.n_frames == 6
    assert np.load(out / "i" / "interpolation_z.npy").shape == (4, 6)
    assert len(load_npz(out / "i" / "interpolation.npz", "path")["path"]) == 4
    _ok(["analogy", str(j), str(j), str(s), "--index-b", "1", "--model", m, "--n", "2", "--out", str(out / "a")], capsys)
    cap = _ok(["analogy", str(j), str(j), str(s), "--mean-a", "3", "--mean-b", "2", "--strength", "1.5",
               "--model", m, "--n", "2", "--out", str(out / "a2")], capsys)
    assert "mean z of 3 sketches" in cap.err and "mean z of 2 sketches" in cap.err
    assert len(load_npz(out / "a2" / "analogy.npz", "result")["result"]) == 2
    _ok(["complete", str(j), "--model", m, "--n", "3", "--z", "prior", "--out", str(out / "c")], capsys)
    assert len(load_npz(out / "c" / "completions.npz", "full")["full"]) == 3
    _ok(["design-sheet", str(s), "--model", m, "--rows", "2", "--cols", "3", "--cell", "48", "--out", str(out / "d"),
         "--palette", "#1b4965,tomato"], capsys)
    with Image.open(out / "d" / "tile.png") as im:
        assert im.size == (144, 96)
    _ok(["animate", str(out / "i" / "interpolation.npz"), "--split", "path", "--frames", "--frame-size", "64",
         "--out", str(out / "m")], capsys)
    cap = _ok(["animate", str(j), "--index", "2", "--frame-size", "64", "--out", str(out / "m")], capsys)
    assert "in_2.gif" in cap.out
    assert (out / "m" / "in_2.svg").read_text().count("<animate") >= 1


def test_cli_decoder_only_complete_and_sheet(tmp_path, model_files, inputs, capsys):
    j, s = inputs
    m = str(model_files / "dec.safetensors")
    _ok(["complete", str(s), "--model", m, "--n", "2", "--out", str(tmp_path / "c")], capsys)
    cap = _ok(["design-sheet", str(j), "--model", m, "--rows", "2", "--cols", "2", "--cell", "40",
               "--out", str(tmp_path / "d")], capsys)
    assert "primes every motif" in cap.err


@pytest.mark.parametrize("verb_args, needle", [
    (["reconstruct", "{j}", "--model", "{dec}"], "decoder-only"),
    (["interpolate", "{j}", "--model", "{dec}"], "decoder-only"),
    (["analogy", "{j}", "{j}", "{j}", "--model", "{dec}"], "decoder-only"),
    (["interpolate", "{j}", "--index-b", "9", "--model", "{cond}"], "out of range"),
    (["reconstruct", "{empty}", "--model", "{cond}"], "no points"),
    (["complete", "{j}", "--model", "{cond}", "--keep", "0"], "--keep"),
    (["design-sheet", "--model", "{cond}", "--rows", "3"], "even"),
    (["reconstruct", "{j}", "--model", "{cond}", "--temperatures", "0.1,x"], "--temperatures"),
    (["analogy", "{j}", "{j}", "{j}", "--model", "{cond}", "--mean-a", "-1"], "--mean-a must be >= 0"),
    (["analogy", "{j}", "{j}", "{j}", "--model", "{cond}", "--strength", "nan"], "strength must be a finite"),
])
def test_cli_errors_are_one_line(tmp_path, model_files, inputs, capsys, verb_args, needle):
    j, _ = inputs
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"strokes": [[[], []]]}))
    fill = {"j": str(j), "empty": str(empty), "dec": str(model_files / "dec.safetensors"),
            "cond": str(model_files / "cond.safetensors")}
    args = [a.format(**fill) for a in verb_args] + ["--out", str(tmp_path / "o")]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("sketchrnn: error:") and needle in err, err


# --------------------------------------------------------------------------- Magenta model (shared data)
def test_magenta_decoder_only_completes_real_halves(shared_dir):
    from sketchrnn.checkpoint import load_model
    from sketchrnn.data.io import read_strokes_file

    lm = load_model(shared_dir / "models/magenta/cat.gen.json")
    assert not lm.config.conditional
    s = read_strokes_file(shared_dir / "data/quickdraw/simplified/cat.ndjson")[0]
    ends = np.flatnonzero(s[:, 2] > 0.5)
    half = s[: ends[len(ends) // 2] + 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", C.SketchFitWarning)  # a real half fits without simplification
        outs = C.complete(lm, half, n=3, temperature=0.3, seed=0, max_len=40)
    assert len(outs) == 3 and all(0 < len(o) <= 40 for o in outs)
    assert not np.array_equal(outs[0][: min(len(outs[0]), len(outs[1]))], outs[1][: min(len(outs[0]), len(outs[1]))])
    with pytest.raises(C.ModelKindError):
        C.interpolate(lm, half, half)
