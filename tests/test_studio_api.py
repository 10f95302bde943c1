"""Sketch studio (issue 7): JSON API, validation, registry, fast decoder, concurrency, CLI.

A real uvicorn server runs in a thread on a free 127.0.0.1 port, serving tiny random-weight
models written to a temp folder (conditional and decoder-only), so nothing here needs
../shared. Requests use the standard library's http.client.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("starlette", reason="the studio needs starlette (pip install 'sketchrnn[studio]')")
pytest.importorskip("uvicorn", reason="the studio needs uvicorn (pip install 'sketchrnn[studio]')")

from sketchrnn import api  # noqa: E402
from sketchrnn.checkpoint import load_model, save_checkpoint, save_weights  # noqa: E402
from sketchrnn.config import Config, ModelConfig  # noqa: E402
from sketchrnn.errors import ModelFileError  # noqa: E402
from sketchrnn.model import SketchRNN  # noqa: E402
from sketchrnn.studio import BackgroundServer, Limits, ModelRegistry, create_app  # noqa: E402
from sketchrnn.studio.validation import stroke3_to_json  # noqa: E402

LIMITS = Limits(max_body_bytes=32 * 1024, max_points=200, max_new_points=120, max_n=8)


def tiny_cfg(conditional: bool, dec_model: str = "lstm", **kw) -> ModelConfig:
    base = dict(conditional=conditional, enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=40,
                dec_model=dec_model, hyper_rnn_size=8, hyper_embedding_size=4, use_recurrent_dropout=False)
    base.update(kw)
    return ModelConfig(**base)


def write_tiny_models(folder: Path) -> None:
    """tiny_vae (conditional), tiny_dec (decoder-only), tiny_ln (layer-norm decoder: slow path)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, cfg, extent) in enumerate([("tiny_vae", tiny_cfg(True), "60"), ("tiny_dec", tiny_cfg(False), None),
                                              ("tiny_ln", tiny_cfg(False, "layer_norm"), "60")]):
        torch.manual_seed(10 + i)
        model = SketchRNN(cfg)
        with torch.no_grad():  # larger output weights than the default init, and a rare end-of-sketch,
            model.decoder.output.weight.mul_(3.0)  # so that sketches are not all empty
            model.decoder.output.bias[2] -= 4.0
        save_weights(folder / f"{name}.safetensors", model, cfg, 10.0, ["shapes"], half=False,
                     extra={"extent": extent} if extent else None)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("studio_models")
    write_tiny_models(d)
    return d


@pytest.fixture(scope="module")
def server(model_dir):
    reg = ModelRegistry.discover([model_dir], include_shipped=False)
    with BackgroundServer(create_app(reg, limits=LIMITS)) as srv:
        yield srv


def request(srv, method: str, path: str, body=None, raw: bytes | None = None, headers: dict | None = None,
            chunked: bool = False) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
    try:
        h = {"Content-Type": "application/json"} if (body is not None or raw is not None) else {}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if chunked:
            conn.request(method, path, body=iter([data[i:i + 4096] for i in range(0, len(data), 4096)]), headers=h,
                         encode_chunked=True)
        else:
            conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        ctype = r.getheader("content-type", "")
        parsed = json.loads(payload) if ctype.startswith("application/json") else {"_text": payload.decode("utf-8", "replace")}
        return r.status, parsed, dict(r.getheaders())
    finally:
        conn.close()


DRAWING = [[5.0, 3.0, 0], [4.0, -2.0, 0], [3.0, 3.0, 1], [-10.0, 4.0, 0], [6.0, 0.0, 0], [2.5, -1.5, 1]]


# --------------------------------------------------------------------------- listing and basic answers
def test_models_listing_and_details(server):
    status, res, headers = request(server, "GET", "/api/models")
    assert status == 200
    got = {m["name"]: m["conditional"] for m in res["models"]}
    assert got == {"tiny_vae": True, "tiny_dec": False, "tiny_ln": False}
    assert "content-security-policy" in {k.lower() for k in headers}
    status, info, _ = request(server, "GET", "/api/models/tiny_vae")
    assert status == 200 and info["conditional"] is True and info["extent"] == 60.0  # stored in metadata
    status, info, _ = request(server, "GET", "/api/models/tiny_dec")
    assert status == 200 and info["extent"] > 0  # calibrated from samples
    status, err, _ = request(server, "GET", "/api/models/nope")
    assert status == 404 and "unknown model" in err["error"]


def _oracle_decoder_only(model_dir: Path, name: str, strokes, n: int, seed: int, **kw) -> list:
    lm = load_model(model_dir / f"{name}.safetensors")
    out = api.decode(lm, None, n=n, prefix=np.asarray(strokes, np.float32), seed=seed, **kw)
    return [stroke3_to_json(s) for s in out]


def test_complete_matches_the_plain_decoder(server, model_dir):
    body = {"model": "tiny_dec", "strokes": DRAWING, "n": 3, "temperature": 0.7, "seed": 123, "max_points": 30}
    status, res, _ = request(server, "POST", "/api/complete", body)
    assert status == 200, res
    assert res["seed"] == 123 and len(res["completions"]) == 3
    for c in res["completions"]:
        assert len(c) <= 30
        for row in c:
            assert isinstance(row[0], float) and isinstance(row[1], float) and row[2] in (0, 1)
    # only the new points, exactly what api.decode gives for the same seed (the oracle)
    expected = _oracle_decoder_only(model_dir, "tiny_dec", DRAWING, 3, 123, temperature=0.7, max_len=30,
                                    temperature_mode="paper")
    assert res["completions"] == expected
    # same seed, same answer; another seed, another answer
    assert request(server, "POST", "/api/complete", body)[1]["completions"] == expected
    other = request(server, "POST", "/api/complete", {**body, "seed": 124})[1]["completions"]
    assert other != expected


def test_complete_fixed_length_and_slow_path(server, model_dir):
    body = {"model": "tiny_ln", "strokes": DRAWING, "n": 2, "seed": 7, "max_points": 9, "allow_end": False,
            "temperature_mode": "magenta_js"}
    status, res, _ = request(server, "POST", "/api/complete", body)
    assert status == 200, res
    assert [len(c) for c in res["completions"]] == [9, 9]
    assert res["completions"][0][-1][2] == 1  # the pen lifts after the last point
    expected = _oracle_decoder_only(model_dir, "tiny_ln", DRAWING, 2, 7, temperature=0.5, max_len=9, allow_end=False,
                                    temperature_mode="magenta_js")
    assert res["completions"] == expected


def test_complete_conditional_z_from_input(server, model_dir):
    body = {"model": "tiny_vae", "strokes": DRAWING, "n": 2, "seed": 5, "z_from": "input", "max_points": 25}
    status, res, _ = request(server, "POST", "/api/complete", body)
    assert status == 200, res
    lm = load_model(model_dir / "tiny_vae.safetensors")
    s = np.asarray(DRAWING, np.float32)
    z = np.repeat(api.encode(lm, [s]), 2, axis=0)
    expected = [stroke3_to_json(x) for x in api.decode(lm, z, prefix=s, seed=5, temperature=0.5, max_len=25,
                                                       temperature_mode="paper")]
    assert res["completions"] == expected
    # z from the prior (default) differs from z = mu(drawing)
    res2 = request(server, "POST", "/api/complete", {**body, "z_from": "prior"})[1]
    assert res2["completions"] != expected


def test_reconstruct_interpolate_sample(server):
    status, res, _ = request(server, "POST", "/api/reconstruct", {"model": "tiny_vae", "strokes": DRAWING, "n": 3, "seed": 1})
    assert status == 200 and len(res["reconstructions"]) == 3
    status, res, _ = request(server, "POST", "/api/interpolate",
                             {"model": "tiny_vae", "a": DRAWING, "b": DRAWING[::-1], "steps": 4, "seed": 2})
    assert status == 200, res
    assert res["t"] == [0.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0] and len(res["sketches"]) == 4
    for name in ("tiny_vae", "tiny_dec"):
        status, res, _ = request(server, "POST", "/api/sample", {"model": name, "n": 5, "seed": 3, "max_points": 12})
        assert status == 200 and len(res["sketches"]) == 5 and all(len(s) <= 12 for s in res["sketches"])
    # decoder-only models cannot encode: a clear 400, not a 500
    for path, body in [("/api/reconstruct", {"model": "tiny_dec", "strokes": DRAWING}),
                       ("/api/interpolate", {"model": "tiny_dec", "a": DRAWING, "b": DRAWING})]:
        status, err, _ = request(server, "POST", path, body)
        assert status == 400 and "decoder-only" in err["error"]


# --------------------------------------------------------------------------- validation
def _body(**kw):
    b = {"model": "tiny_dec", "strokes": DRAWING}
    b.update(kw)
    return json.dumps(b).encode()


def _strokes_raw(rows: str) -> bytes:
    return ('{"model": "tiny_dec", "strokes": [' + rows + ']}').encode()


BAD_REQUESTS = [
    # (raw body, content type, expected status, words in the message)
    (_strokes_raw("[NaN, 1, 0]"), None, 400, "NaN"),
    (_strokes_raw("[Infinity, 1, 0]"), None, 400, "Infinity"),
    (_strokes_raw("[1e400, 1, 0]"), None, 400, "out of range"),
    (_strokes_raw('["1", 2, 0]'), None, 400, "must be a number"),
    (_strokes_raw("[null, 2, 0]"), None, 400, "must be a number"),
    (_strokes_raw("[true, 2, 0]"), None, 400, "must be a number"),
    (_strokes_raw("[1, 2, 2]"), None, 400, "pen_lifted"),
    (_strokes_raw("[1, 2, 0.5]"), None, 400, "pen_lifted"),
    (_strokes_raw("[1, 2]"), None, 400, "3 numbers"),
    (_strokes_raw("[1e6, 2, 0]"), None, 400, "out of range"),
    (_body(strokes=[]), None, 400, "at least 1"),
    (_body(strokes="M 0 0 L 1 1"), None, 400, "stroke-3"),
    (_body(strokes=[[1, 1, 0]] * 201), None, 413, "more than the limit"),
    (_body(model="nope"), None, 404, "unknown model"),
    (_body(model="../tiny_dec"), None, 400, "not a valid model name"),
    (_body(model="..%2Ftiny_dec"), None, 400, "not a valid model name"),
    (_body(model="/etc/passwd"), None, 400, "not a valid model name"),
    (_body(model=".."), None, 400, "not a valid model name"),
    (_body(model="a/b"), None, 400, "not a valid model name"),
    (_body(model=""), None, 400, "not a valid model name"),
    (_body(model=3), None, 400, "model name"),
    (_body(extra=1), None, 400, "unknown field"),
    (b'{"model": "tiny_dec"}', None, 400, "'strokes' is required"),
    (_body(n=0), None, 400, "'n'"),
    (_body(n=9), None, 400, "'n'"),
    (_body(n="4"), None, 400, "'n'"),
    (_body(n=True), None, 400, "'n'"),
    (_body(temperature=0), None, 400, "temperature"),
    (_body(temperature=3.0), None, 400, "temperature"),
    (_body(temperature="hot"), None, 400, "temperature"),
    (_body(max_points=121), None, 400, "max_points"),
    (_body(seed=-1), None, 400, "seed"),
    (_body(z_from="file"), None, 400, "z_from"),
    (_body(temperature_mode="hot"), None, 400, "temperature_mode"),
    (b"[1, 2, 3]", None, 400, "JSON object"),
    (b'{"model": ', None, 400, "not valid JSON"),
    (b"", None, 400, "empty"),
    (b"\xff\xfe{}", None, 400, "UTF-8"),
    (b"[" * 15000 + b"]" * 15000, None, 400, "JSON"),
    (_body(), "text/plain", 415, "application/json"),
    (_body(), "application/x-www-form-urlencoded", 415, "application/json"),
    (b'{"model": "tiny_dec", "strokes": [' + b"[1, 1, 0], " * 4000 + b"[1, 1, 1]]}", None, 413, "limit"),
]


@pytest.mark.parametrize("raw, ctype, status, words", BAD_REQUESTS,
                         ids=[f"{i}-{w[:18]}" for i, (_, _, _, w) in enumerate(BAD_REQUESTS)])
def test_bad_requests_are_refused_with_a_json_message(server, raw, ctype, status, words):
    headers = {"Content-Type": ctype} if ctype else {}
    got, res, hdrs = request(server, "POST", "/api/complete", raw=raw, headers=headers)
    assert got == status, res
    assert set(res) == {"error"} and isinstance(res["error"], str), res
    assert words.lower() in res["error"].lower(), res["error"]
    assert "\n" not in res["error"] and "Traceback" not in res["error"] and len(res["error"]) < 400


def test_oversized_chunked_body_is_refused_without_reading_it_all(server):
    raw = _body(strokes=[[1.0, 1.0, 0]] * 3000)  # ~45 KB > 32 KiB limit, sent without Content-Length
    status, res, _ = request(server, "POST", "/api/complete", raw=raw, chunked=True)
    assert status == 413 and "limit" in res["error"]


def test_other_endpoints_validate_too(server):
    cases = [("/api/reconstruct", {"model": "tiny_vae", "strokes": [[1, 1, 1]]}, 400, "at least 2"),
             ("/api/reconstruct", {"model": "tiny_vae", "strokes": [[1, 1, 0]] * 41}, 400, "max_seq_len"),
             ("/api/interpolate", {"model": "tiny_vae", "a": DRAWING}, 400, "'b' is required"),
             ("/api/interpolate", {"model": "tiny_vae", "a": DRAWING, "b": DRAWING, "steps": 1}, 400, "steps"),
             ("/api/sample", {"model": "tiny_vae", "n": 100}, 400, "'n'"),
             ("/api/sample", {"model": "../../x"}, 400, "not a valid model name")]
    for path, body, status, words in cases:
        got, res, _ = request(server, "POST", path, body)
        assert got == status and words in res["error"], (path, res)
    got, res, _ = request(server, "GET", "/api/models/..%2F..%2Fetc")
    assert got in (400, 404) and "error" in res
    got, res, _ = request(server, "GET", "/api/complete")
    assert got == 405 and "error" in res
    got, res, _ = request(server, "GET", "/no/such/path")
    assert got == 404 and "error" in res
    got, res, _ = request(server, "GET", "/static/..%2F__init__.py")
    assert got == 404


def test_foreign_host_header_is_refused(server):
    status, _, _ = request(server, "GET", "/api/models", headers={"Host": "evil.example"})
    assert status == 400
    assert request(server, "GET", "/api/models", headers={"Host": f"localhost:{server.port}"})[0] == 200


# --------------------------------------------------------------------------- page and OpenAPI
def test_page_is_self_contained(server):
    status, res, headers = request(server, "GET", "/")
    html = res["_text"]
    assert status == 200 and "<canvas" in html and "/static/studio.js" in html
    js = request(server, "GET", "/static/studio.js")[1]["_text"]
    css = request(server, "GET", "/static/studio.css")[1]["_text"]
    assert "pointerdown" in js and "/api/complete" in js
    for text in (html, js, css):  # no CDN, no remote fonts or scripts
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
        assert not re.search(r"""(url\(|import\s*\(|fetch\()\s*["']?(https?:)?//""", text)
        assert "<script>" not in text  # CSP forbids inline scripts
    csp = {k.lower(): v for k, v in headers.items()}["content-security-policy"]
    assert "default-src 'self'" in csp


def test_openapi_describes_every_route(server):
    status, spec, _ = request(server, "GET", "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    assert {"/api/models", "/api/models/{name}", "/api/complete", "/api/reconstruct", "/api/interpolate",
            "/api/sample"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    refs = re.findall(r'"\$ref": "#/components/schemas/([A-Za-z0-9]+)"', json.dumps(spec))
    assert refs and all(r in schemas for r in refs)
    req = schemas["CompleteRequest"]
    assert req["required"] == ["model", "strokes"] and req["additionalProperties"] is False
    assert req["properties"]["n"]["maximum"] == LIMITS.max_n
    assert schemas["Stroke3"]["maxItems"] == LIMITS.max_points


# --------------------------------------------------------------------------- concurrency
def test_fifty_concurrent_clients_get_correct_answers(server):
    """50 clients on loopback, 2 requests each (bounded), mixed models and endpoints; every
    answer must equal the one the same request gets when sent alone."""
    def job(i: int, k: int) -> tuple[str, dict]:
        seed = 1000 + 10 * i + k
        if i % 3 == 0:
            return "/api/sample", {"model": "tiny_vae", "n": 2, "seed": seed, "max_points": 20}
        model = "tiny_dec" if i % 3 == 1 else "tiny_vae"
        strokes = [[float(i % 7) + 1.0, 2.0, 0], [3.0, float(k) - 1.5, 1], [-2.0, 1.0, 0], [1.0, 1.0, 1]]
        return "/api/complete", {"model": model, "strokes": strokes, "n": 3, "seed": seed, "max_points": 20}

    n_clients, per_client = 50, 2
    results: dict[tuple[int, int], tuple[int, dict]] = {}
    errors: list[str] = []
    start = threading.Barrier(n_clients)

    def client(i: int) -> None:
        try:
            start.wait(timeout=30)
            for k in range(per_client):
                path, body = job(i, k)
                status, res, _ = request(server, "POST", path, body)
                results[(i, k)] = (status, res)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {i}: {type(e).__name__}: {e}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - t0
    assert not errors, errors[:3]
    assert not any(t.is_alive() for t in threads) and elapsed < 120
    assert len(results) == n_clients * per_client
    for (i, k), (status, res) in sorted(results.items()):
        assert status == 200, res
        path, body = job(i, k)
        status2, alone, _ = request(server, "POST", path, body)
        assert status2 == 200 and alone == res, (i, k)


# --------------------------------------------------------------------------- registry
def test_registry_discovery(tmp_path, capsys):
    write_tiny_models(tmp_path / "a")
    run = tmp_path / "b" / "run1"
    run.mkdir(parents=True)
    cfg = tiny_cfg(True)
    model = SketchRNN(cfg)
    payload = {"config": Config(model=cfg).to_json(), "scale_factor": 9.0, "class_names": ["x"],
               "model": model.state_dict(), "step": 3}
    save_checkpoint(run / "best.pt", payload)
    save_checkpoint(run / "last.pt", payload)
    (tmp_path / "b" / "tiny_dec.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "b" / "broken.gen.json").write_text("[1, 2")
    reg = ModelRegistry.discover([tmp_path / "a", tmp_path / "b", tmp_path / "a" / "tiny_vae.safetensors"],
                                 include_shipped=False, warn=lambda m: print("WARN", m))
    assert reg.names() == ["tiny_dec", "tiny_ln", "tiny_vae", "run1-best", "run1-last"]
    assert reg.get("run1-best").conditional and reg.get("run1-best").kind == "checkpoint"
    warned = capsys.readouterr().out
    assert "broken.gen.json" in warned and "tiny_dec.safetensors" in warned
    with pytest.raises(ModelFileError, match="no such file"):
        ModelRegistry.discover([tmp_path / "missing"], include_shipped=False)
    # same stem twice: the second gets a suffix
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "tiny_dec.safetensors").write_bytes((tmp_path / "a" / "tiny_dec.safetensors").read_bytes())
    reg2 = ModelRegistry.discover([tmp_path / "a", tmp_path / "c"], include_shipped=False)
    assert "tiny_dec-2" in reg2.names()
    # a model is loaded once, lazily, and cached
    e = reg2.get("tiny_dec")
    assert e.loaded is None
    with reg2.use("tiny_dec", timeout=5) as got:
        first = got.loaded
    with reg2.use("tiny_dec", timeout=5) as got:
        assert got.loaded is first


# --------------------------------------------------------------------------- CLI
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_studio_serves_and_stops(model_dir, capsys):
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sketchrnn", "studio", "--port", str(port), "--models",
                             str(model_dir), "--no-shipped"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        res = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/models")
                res = json.loads(conn.getresponse().read())
                conn.close()
                break
            except OSError:
                time.sleep(0.2)
        assert res is not None, proc.stderr.read() if proc.poll() is not None else "server did not answer"
        assert sorted(m["name"] for m in res["models"]) == ["tiny_dec", "tiny_ln", "tiny_vae"]
        # the port is taken now: a second server says so in one line
        from sketchrnn.cli import main

        code = main(["studio", "--port", str(port), "--models", str(model_dir), "--no-shipped"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert err.startswith("sketchrnn: error:") and "cannot listen" in err and "--port" in err, err
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130, -signal.SIGINT), proc.stderr.read()


def test_cli_studio_without_models_is_one_line_error(tmp_path, capsys):
    from sketchrnn.cli import main

    code = main(["studio", "--models", str(tmp_path), "--no-shipped", "--port", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("sketchrnn: error:") and "no models" in err[-1]


# --------------------------------------------------------------------------- helpers
def test_extent_helpers_and_slerp(model_dir):
    from sketchrnn.studio.service import FILL, calibrate_extent, sketch_extent, slerp

    assert sketch_extent(np.array([[3.0, 0.0, 0], [0.0, 4.0, 1]])) == 4.0
    assert sketch_extent(np.array([[-2.0, 1.0, 1]])) == 2.0  # the start point counts
    lm = load_model(model_dir / "tiny_dec.safetensors")
    got = calibrate_extent(lm, n=6, seed=3)
    sk = api.sample(lm, n=6, temperature=0.5, seed=3, max_len=40)
    med = float(np.median([sketch_extent(s) for s in sk if len(s) >= 2]))
    assert got == pytest.approx(np.clip(med / FILL, 12 * lm.scale_factor / 20, 12 * lm.scale_factor * 20))
    lm.info = {"extent": "77.5"}
    assert calibrate_extent(lm) == 77.5
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=16), rng.normal(size=16)
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(slerp(a, b, 1.0), b)
    b = b / np.linalg.norm(b) * np.linalg.norm(a)  # equal norms: slerp stays on the sphere
    mid = slerp(a, b, 0.5)  # on the great circle: the angle to a and to b is half the angle between them
    assert np.linalg.norm(mid) == pytest.approx(np.linalg.norm(a))
    ang = lambda u, v: np.arccos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))  # noqa: E731
    assert ang(a, mid) == pytest.approx(ang(a, b) / 2) and ang(mid, b) == pytest.approx(ang(a, b) / 2)
    assert np.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: linear


def test_stroke3_to_json_rounds_and_uses_integer_pen():
    rows = stroke3_to_json(np.array([[1.23456, -0.0004, 0.0], [2.0, 3.0, 1.0]], np.float32))
    assert rows == [[1.235, -0.0, 0], [2.0, 3.0, 1]]
    assert all(isinstance(r[2], int) for r in rows)
