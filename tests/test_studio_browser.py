"""Sketch studio end to end in headless Chromium (Debian's ``chromium``), driven by Playwright.

Draws with real mouse events (the page listens to pointer events), waits for the ghost
completions to be animated, checks that they are on the canvas (pixels) and in the results
gallery, downloads an SVG and checks its content, and saves a screenshot (``tmp_path``;
also copied to ``$SKETCHRNN_STUDIO_SCREENSHOT`` when set, e.g. docs/studio.png). Uses
Magenta's decoder-only cat from ../shared when present, else a tiny random-weight model.

Only the Python package ``playwright`` is used with the system browser: never
``playwright install`` (no downloads).
"""

from __future__ import annotations

import math
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

pytest.importorskip("starlette", reason="the studio needs starlette (pip install 'sketchrnn[studio]')")
pytest.importorskip("uvicorn", reason="the studio needs uvicorn (pip install 'sketchrnn[studio]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="Python package playwright is not installed (pip install playwright)")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium chromium-driver)", allow_module_level=True)

from sketchrnn.studio import BackgroundServer, ModelRegistry, create_app  # noqa: E402

from test_studio_api import write_tiny_models  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKETCHRNN_SHARED", REPO.parent / "shared"))
CAT = SHARED / "models" / "magenta" / "cat.gen.json"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GHOST_COLORS = ["#e4572e", "#2e86ab", "#3bb273", "#9b5de5"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser_models")
    write_tiny_models(d)
    paths = [d] + ([CAT] if CAT.is_file() else [])
    reg = ModelRegistry.discover(paths, include_shipped=False)
    with BackgroundServer(create_app(reg)) as srv:
        yield srv, ("cat" if CAT.is_file() else "tiny_dec")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        except Exception as e:  # noqa: BLE001 - an unusable browser is a skip, not a failure
            pytest.skip(f"chromium at {CHROMIUM} cannot be started by Playwright: {str(e).splitlines()[0][:200]}")
        yield b
        b.close()


def _open(browser, url: str):
    # bypass_csp: Playwright evaluates wait_for_function strings, which the page's CSP (no eval) forbids
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, bypass_csp=True)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}")
            if "/api/complete" not in r.url else None)  # superseded completions are aborted on purpose
    page.goto(url)
    page.wait_for_function("document.body.dataset.model !== undefined", timeout=60_000)
    return ctx, page, problems


def _stroke(page, pts: list[tuple[float, float]]) -> None:
    """One stroke with real mouse events; ``pts`` in fractions of the canvas."""
    box = page.locator("#ghost").bounding_box()
    xy = [(box["x"] + u * box["width"], box["y"] + v * box["height"]) for u, v in pts]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=2)
    page.mouse.up()


def _cat_head(page) -> None:
    ring = [(0.5 + 0.2 * math.cos(a), 0.42 + 0.17 * math.sin(a)) for a in [i * 2 * math.pi / 24 for i in range(25)]]
    _stroke(page, ring)
    _stroke(page, [(0.34, 0.33), (0.33, 0.17), (0.44, 0.26)])  # left ear
    _stroke(page, [(0.56, 0.26), (0.67, 0.17), (0.66, 0.33)])  # right ear


PIXELS_JS = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let any = 0, coloured = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0) { any++; if (Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 40) coloured++; }
  }
  return {any, coloured};
}"""


def test_draw_get_completions_and_download_svg(studio, browser, tmp_path):
    srv, model = studio
    ctx, page, problems = _open(browser, f"{srv.url}/?model={model}&seed=4")
    try:
        assert page.locator("#model").input_value() == model
        assert page.locator("#reconstruct").is_disabled()  # decoder-only: no encoder
        assert page.locator("#zfrom").is_hidden()
        _cat_head(page)
        page.wait_for_function("document.body.dataset.completions === 'ready'", timeout=60_000)

        req = page.evaluate("window.studio.lastRequest")
        assert req["model"] == model and req["n"] == 4 and req["seed"] == 4
        rows = req["strokes"]
        assert len(rows) >= 10 and all(len(r) == 3 and r[2] in (0, 1) for r in rows)
        assert sum(r[2] for r in rows) == 3 and rows[-1][2] == 1  # three strokes, pen lifted at the end
        completions = page.evaluate("window.studio.lastResponse.completions")
        assert len(completions) == 4
        assert sum(len(c) for c in completions) >= 4, completions

        ink = page.evaluate(PIXELS_JS, "ink")
        ghost = page.evaluate(PIXELS_JS, "ghost")
        assert ink["any"] > 500, ink  # the user's strokes
        assert ghost["coloured"] > 100, ghost  # coloured ghost strokes of the completions

        cards = page.locator('.batch[data-kind="completion"] .card')
        assert cards.count() == 4
        # a downloaded SVG holds the drawing (ink) and the completion (its colour)
        first = next(i for i, c in enumerate(completions) if len(c) >= 1)
        with page.expect_download() as dl:
            cards.nth(first).locator('button[data-download="svg"]').click()
        svg_path = tmp_path / "completion.svg"
        dl.value.save_as(svg_path)
        text = svg_path.read_text()
        root = ET.fromstring(text)
        lines = root.findall(".//{http://www.w3.org/2000/svg}polyline")
        strokes = [ln for ln in lines if ln.get("stroke") == "#1d2430"]
        ghosts = [ln for ln in lines if ln.get("stroke") == GHOST_COLORS[first]]
        assert len(strokes) == 3 and ghosts, text[:500]
        n_pts = sum(len(ln.get("points").split()) for ln in ghosts)
        assert n_pts >= len(completions[first]), (n_pts, len(completions[first]))
        with page.expect_download() as dl:
            cards.nth(first).locator('button[data-download="png"]').click()
        png = tmp_path / "completion.png"
        dl.value.save_as(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        page.mouse.move(2, 2)  # leave the cards: all completions shown again, none highlighted
        page.wait_for_timeout(100)
        shot = tmp_path / "studio.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        dest = os.environ.get("SKETCHRNN_STUDIO_SCREENSHOT")
        if dest:
            shutil.copyfile(shot, dest)
        # undo removes the last stroke and asks again
        before = page.evaluate("window.studio.state.strokes.length")
        page.click("#undo")
        assert page.evaluate("window.studio.state.strokes.length") == before - 1
        assert not problems, problems
    finally:
        ctx.close()


def test_conditional_model_reconstruct_sample_interpolate(studio, browser):
    srv, _ = studio
    ctx, page, problems = _open(browser, f"{srv.url}/?model=tiny_vae&seed=1")
    try:
        assert page.locator("#reconstruct").is_enabled() and page.locator("#interpolate").is_disabled()
        _stroke(page, [(0.3, 0.3), (0.5, 0.35), (0.6, 0.6), (0.4, 0.7)])
        page.wait_for_function("document.body.dataset.completions === 'ready'", timeout=60_000)
        assert "z_from" not in page.evaluate("window.studio.lastRequest")
        page.check("#zfrom")  # z = mu(drawing) instead of the prior: asks again
        page.wait_for_function("window.studio.lastRequest.z_from === 'input' && "
                               "document.body.dataset.completions === 'ready'", timeout=60_000)
        page.click("#reconstruct")
        page.wait_for_selector('.batch[data-kind="reconstruction"] .card', timeout=30_000)
        assert page.locator('.batch[data-kind="reconstruction"] .card').count() == 4
        page.click("#sample")
        page.wait_for_selector('.batch[data-kind="sample"] .card', timeout=30_000)
        assert page.locator('.batch[data-kind="sample"] .card').count() == 4
        page.click("#set-a")
        _stroke(page, [(0.7, 0.2), (0.8, 0.5), (0.75, 0.8)])
        page.click("#set-b")
        assert page.locator("#interpolate").is_enabled()
        page.click("#interpolate")
        page.wait_for_selector('.batch[data-kind="interpolation"] .card', timeout=30_000)
        labels = page.locator('.batch[data-kind="interpolation"] .card .label').all_inner_texts()
        assert len(labels) == 6 and labels[0].endswith("t = 0.00") and labels[-1].endswith("t = 1.00")
        # switching to a decoder-only model disables the encoder-based buttons
        page.select_option("#model", "tiny_dec")
        page.wait_for_function("document.body.dataset.model === 'tiny_dec'", timeout=30_000)
        assert page.locator("#reconstruct").is_disabled() and page.locator("#interpolate").is_disabled()
        assert page.locator("#zfrom").is_hidden()
        assert not problems, problems
    finally:
        ctx.close()
