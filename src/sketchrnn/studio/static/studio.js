// sketch-rnn studio page: draw, and let a model complete / reconstruct / interpolate / sample.
// Plain JS, no dependencies. Coordinates:
//   * the user's strokes are kept in "unit" coordinates (0..1 across the square canvas);
//   * the API speaks stroke-3 [dx, dy, pen_lifted] in the model's data units; the canvas
//     spans `extent` data units (GET /api/models/{name} measures it for each model), so
//     data = unit * extent, and canvas px = data / extent * size.
//   * stroke-3: the start point is the first point; row i moves to point i+1; pen_lifted = 1
//     lifts the pen after that point (docs/ARCHITECTURE.md, "Stroke formats").
"use strict";
(function () {
  const COLORS = ["#e4572e", "#2e86ab", "#3bb273", "#9b5de5", "#f3a712", "#ff006e", "#118ab2", "#8d6a9f"];
  const INK = "#1d2430";
  const $ = (id) => document.getElementById(id);

  const state = {
    models: [],
    info: null,          // current model summary (with extent)
    strokes: [],         // finished strokes, arrays of [ux, uy]
    current: null,       // stroke being drawn
    completions: null,   // {rows[], start: [x, y] data units, extent}
    a: null, b: null,    // saved drawings (unit strokes) for interpolation
    seq: 0,              // completion request sequence (stale answers are dropped)
    highlight: null,     // index of the completion whose card is hovered
    abort: null,
  };
  // Exposed for tests and curious users.
  const studio = (window.studio = { state, rendered: 0, requests: 0, errors: 0, lastRequest: null, lastResponse: null });

  const ink = $("ink"), ghost = $("ghost"), wrap = $("canvas-wrap");
  let size = 512, dpr = 1;

  // ------------------------------------------------------------------ geometry
  function layout() {
    size = Math.max(240, Math.min(560, window.innerWidth - 40));
    dpr = window.devicePixelRatio || 1;
    for (const c of [ink, ghost]) {
      c.width = Math.round(size * dpr);
      c.height = Math.round(size * dpr);
      c.style.width = size + "px";
      c.style.height = size + "px";
    }
    wrap.style.width = size + "px";
    wrap.style.height = size + "px";
    redrawInk();
    drawGhost(Infinity);
  }

  function unitPoint(ev) {
    const r = ghost.getBoundingClientRect();
    return [(ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height];
  }

  // Ramer-Douglas-Peucker simplification of one polyline (as QuickDraw's preprocessing).
  function rdp(points, eps) {
    if (points.length < 3) return points.slice();
    const keep = new Uint8Array(points.length);
    keep[0] = keep[points.length - 1] = 1;
    const stack = [[0, points.length - 1]];
    while (stack.length) {
      const [i0, i1] = stack.pop();
      const [x0, y0] = points[i0], [x1, y1] = points[i1];
      const dx = x1 - x0, dy = y1 - y0, len = Math.hypot(dx, dy);
      let best = -1, bestD = eps;
      for (let i = i0 + 1; i < i1; i++) {
        const [x, y] = points[i];
        const d = len > 0 ? Math.abs(dy * x - dx * y + x1 * y0 - y1 * x0) / len : Math.hypot(x - x0, y - y0);
        if (d > bestD) { bestD = d; best = i; }
      }
      if (best >= 0) { keep[best] = 1; stack.push([i0, best], [best, i1]); }
    }
    return points.filter((_, i) => keep[i]);
  }

  // Unit strokes -> {rows: stroke-3 in data units, start, end: data-unit points} or null (< 2 points).
  function toStroke3(strokes, extent, maxRows) {
    let eps = 0.004;  // of the canvas side (QuickDraw: RDP epsilon 2 in a 0-255 box)
    for (let attempt = 0; attempt < 12; attempt++, eps *= 1.5) {
      const pts = [];
      for (const s of strokes) {
        const simp = rdp(s, eps);
        simp.forEach((p, i) => pts.push([p[0] * extent, p[1] * extent, i === simp.length - 1 ? 1 : 0]));
      }
      if (pts.length < 2) return null;
      if (pts.length - 1 > maxRows && attempt < 11) continue;
      const rows = [];
      for (let i = 1; i < pts.length; i++) {
        rows.push([round2(pts[i][0] - pts[i - 1][0]), round2(pts[i][1] - pts[i - 1][1]), pts[i][2]]);
      }
      // the end point as the model sees it (sum of the rounded offsets)
      let ex = pts[0][0], ey = pts[0][1];
      for (const r of rows) { ex += r[0]; ey += r[1]; }
      return { rows, start: [pts[0][0], pts[0][1]], end: [ex, ey] };
    }
    return null;
  }
  const round2 = (v) => Math.round(v * 100) / 100;

  // stroke-3 rows from (x0, y0) -> polylines (arrays of [x, y]); penDown: is the pen down at the start?
  function rowsToPolylines(rows, x0, y0, penDown) {
    const lines = [];
    let x = x0, y = y0, cur = penDown ? [[x, y]] : null;
    for (const r of rows) {
      x += r[0]; y += r[1];
      if (cur) cur.push([x, y]); else cur = [[x, y]];
      if (r[2] >= 0.5) { lines.push(cur); cur = null; }
    }
    if (cur && cur.length) lines.push(cur);
    return lines;
  }

  // ------------------------------------------------------------------ drawing on canvases
  function ctxOf(c) {
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    return ctx;
  }

  function strokePolyline(ctx, line, tx) {
    ctx.beginPath();
    const [x0, y0] = tx(line[0]);
    ctx.moveTo(x0, y0);
    if (line.length === 1) ctx.lineTo(x0 + 0.01, y0);  // a dot
    for (let i = 1; i < line.length; i++) { const [x, y] = tx(line[i]); ctx.lineTo(x, y); }
    ctx.stroke();
  }

  function redrawInk() {
    const ctx = ctxOf(ink);
    ctx.clearRect(0, 0, size, size);
    ctx.strokeStyle = INK;
    ctx.lineWidth = 2.5;
    const tx = (p) => [p[0] * size, p[1] * size];
    for (const s of state.strokes) strokePolyline(ctx, s, tx);
    if (state.current) strokePolyline(ctx, state.current, tx);
  }

  // Ghost completions drawn up to `upto` points each.
  function drawGhost(upto) {
    const ctx = ctxOf(ghost);
    ctx.clearRect(0, 0, size, size);
    const c = state.completions;
    if (!c) return;
    const k = size / c.extent;
    const tx = (p) => [p[0] * k, p[1] * k];
    ctx.lineWidth = 2;
    c.rows.forEach((rows, i) => {
      // hovering a result card shows that completion and fades the others
      ctx.globalAlpha = state.highlight === null ? 0.7 : (state.highlight === i ? 0.95 : 0.12);
      ctx.strokeStyle = COLORS[i % COLORS.length];
      const part = rows.slice(0, Math.min(rows.length, upto));
      for (const line of rowsToPolylines(part, c.end[0], c.end[1], false)) strokePolyline(ctx, line, tx);
    });
    ctx.globalAlpha = 1;
  }

  function animateGhost(seq) {
    const c = state.completions;
    const total = Math.max(1, ...c.rows.map((r) => r.length));
    const perFrame = Math.max(1, Math.ceil(total / 40));  // about 2/3 s at 60 fps
    let t = 0;
    const frame = () => {
      if (seq !== state.seq) return;
      t += perFrame;
      drawGhost(t);
      if (t < total) requestAnimationFrame(frame);
      else { studio.rendered += 1; document.body.dataset.completions = "ready"; }
    };
    requestAnimationFrame(frame);
  }

  // ------------------------------------------------------------------ figures (results): SVG / PNG
  // A figure is {lines: [{points: [[x, y], ...], color}], title}, in data units.
  function figureBounds(fig) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const l of fig.lines) for (const [x, y] of l.points) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
    if (!isFinite(x0)) return [0, 0, 1, 1];
    return [x0, y0, x1, y1];
  }

  function drawFigure(canvas, fig, px, scale) {
    scale = scale || dpr;
    canvas.width = Math.round(px * scale); canvas.height = Math.round(px * scale);
    canvas.style.width = px + "px"; canvas.style.height = px + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(scale, 0, 0, scale, 0, 0);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, px, px);
    ctx.lineCap = "round"; ctx.lineJoin = "round";
    const [x0, y0, x1, y1] = figureBounds(fig);
    const margin = px * 0.06, ext = Math.max(x1 - x0, y1 - y0, 1e-6);
    const k = (px - 2 * margin) / ext;
    const ox = margin + ((px - 2 * margin) - (x1 - x0) * k) / 2, oy = margin + ((px - 2 * margin) - (y1 - y0) * k) / 2;
    const tx = (p) => [ox + (p[0] - x0) * k, oy + (p[1] - y0) * k];
    ctx.lineWidth = Math.max(1.2, px / 110);
    for (const l of fig.lines) { ctx.strokeStyle = l.color; strokePolyline(ctx, l.points, tx); }
  }

  const num = (v) => (Math.round(v * 1000) / 1000).toString();
  function figureSVG(fig) {
    const [x0, y0, x1, y1] = figureBounds(fig);
    const ext = Math.max(x1 - x0, y1 - y0, 1e-6), m = ext * 0.05, w = ext / 120;
    const vb = [x0 - m, y0 - m, (x1 - x0) + 2 * m, (y1 - y0) + 2 * m].map(num).join(" ");
    const out = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="${vb}" width="512" height="${num(512 * ((y1 - y0) + 2 * m) / ((x1 - x0) + 2 * m))}">`,
      `<title>${escapeXml(fig.title || "sketch")}</title>`,
      `<rect x="${num(x0 - m)}" y="${num(y0 - m)}" width="${num((x1 - x0) + 2 * m)}" height="${num((y1 - y0) + 2 * m)}" fill="#fff"/>`,
      `<g fill="none" stroke-width="${num(w)}" stroke-linecap="round" stroke-linejoin="round">`];
    for (const l of fig.lines) {
      const pts = l.points.length === 1 ? [l.points[0], l.points[0]] : l.points;
      out.push(`<polyline stroke="${l.color}" points="${pts.map((p) => num(p[0]) + "," + num(p[1])).join(" ")}"/>`);
    }
    out.push("</g>", "</svg>");
    return out.join("\n");
  }
  const escapeXml = (s) => s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" }[c]));

  function download(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url; a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function makeCard(fig, label, color, extra) {
    const card = document.createElement("div");
    card.className = "card";
    const cv = document.createElement("canvas");
    drawFigure(cv, fig, 140);
    const lab = document.createElement("div");
    lab.className = "label";
    if (color) { const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = color; lab.appendChild(sw); }
    lab.appendChild(document.createTextNode(label));
    const actions = document.createElement("div");
    actions.className = "actions";
    const base = (fig.title || "sketch").replace(/[^A-Za-z0-9_.-]+/g, "_");
    const svgBtn = button("SVG", "download as SVG", () => download(new Blob([figureSVG(fig)], { type: "image/svg+xml" }), base + ".svg"));
    svgBtn.dataset.download = "svg";
    const pngBtn = button("PNG", "download as PNG", () => {
      const big = document.createElement("canvas");
      drawFigure(big, fig, 512, 1);
      big.toBlob((b) => download(b, base + ".png"), "image/png");
    });
    pngBtn.dataset.download = "png";
    actions.append(svgBtn, pngBtn);
    if (extra) actions.append(extra);
    card.append(cv, lab, actions);
    return card;
  }

  function button(text, title, onClick) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = text; b.title = title;
    b.addEventListener("click", onClick);
    return b;
  }

  function addBatch(kind, title, cards, replaceKind) {
    const gallery = $("gallery");
    if (replaceKind) for (const old of gallery.querySelectorAll(`.batch[data-kind="${kind}"]`)) old.remove();
    const batch = document.createElement("div");
    batch.className = "batch";
    batch.dataset.kind = kind;
    const h = document.createElement("h3");
    h.textContent = title;
    const row = document.createElement("div");
    row.className = "cards";
    row.append(...cards);
    batch.append(h, row);
    gallery.prepend(batch);
    const all = gallery.querySelectorAll(".batch");
    for (let i = 12; i < all.length; i++) all[i].remove();
  }

  // ------------------------------------------------------------------ API
  async function api(path, body, signal) {
    const opts = body === undefined ? { signal } : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
    };
    studio.requests += 1;
    const r = await fetch(path, opts);
    let data;
    try { data = await r.json(); } catch (e) { data = { error: `HTTP ${r.status}` }; }
    if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
    return data;
  }

  function setStatus(msg, isError) {
    const s = $("status");
    s.textContent = msg;
    s.classList.toggle("error", !!isError);
    if (isError) studio.errors += 1;
  }

  // ?seed=N in the page's address makes every request reproducible (tests, demos).
  const fixedSeed = parseInt(new URLSearchParams(location.search).get("seed"), 10);
  const params = () => {
    const p = {
      model: state.info.name,
      temperature: parseFloat($("temperature").value),
      n: Math.max(1, Math.min(8, parseInt($("count").value, 10) || 4)),
    };
    if (Number.isInteger(fixedSeed) && fixedSeed >= 0) p.seed = fixedSeed;
    return p;
  };
  const maxRows = () => (state.info.conditional ? state.info.max_seq_len : 250);

  // ------------------------------------------------------------------ actions
  async function requestCompletions() {
    const seq = ++state.seq;
    state.highlight = null;
    if (state.abort) state.abort.abort();
    state.completions = null;
    drawGhost(0);
    delete document.body.dataset.completions;
    if (!state.info) return;
    const d = toStroke3(state.strokes, state.info.extent, maxRows());
    if (!d) { setStatus("Draw a little more (at least two points)."); return; }
    const ctl = (state.abort = new AbortController());
    const p = params();
    const body = { ...p, strokes: d.rows, max_points: 100 };
    if (state.info.conditional && $("zfrom").checked) body.z_from = "input";
    studio.lastRequest = body;
    setStatus(`Thinking (${p.n} completions)…`);
    const t0 = performance.now();
    try {
      const res = await api("/api/complete", body, ctl.signal);
      if (seq !== state.seq) return;
      studio.lastResponse = res;
      const extent = state.info.extent;
      state.completions = { rows: res.completions, end: d.end, extent };
      setStatus(`${res.completions.length} completions from ${res.model} in ${Math.round(performance.now() - t0)} ms (seed ${res.seed}).`);
      animateGhost(seq);
      const mine = state.strokes.map((s) => ({ points: s.map((q) => [q[0] * extent, q[1] * extent]), color: INK }));
      const cards = res.completions.map((rows, i) => {
        const color = COLORS[i % COLORS.length];
        const lines = rowsToPolylines(rows, d.end[0], d.end[1], false).map((points) => ({ points, color }));
        const fig = { lines: mine.concat(lines), title: `${res.model}-completion-${i + 1}` };
        const keep = button("Keep", "add this completion to the drawing", () => {
          state.strokes.push(...lines.map((l) => l.points.map((q) => [q[0] / extent, q[1] / extent])));
          redrawInk();
          requestCompletions();
        });
        const card = makeCard(fig, `completion ${i + 1} (${rows.length} pts)`, color, keep);
        const show = (on) => () => {
          if (seq !== state.seq) return;
          state.highlight = on ? i : null;
          if (document.body.dataset.completions === "ready") drawGhost(Infinity);
        };
        card.addEventListener("mouseenter", show(true));
        card.addEventListener("mouseleave", show(false));
        return card;
      });
      addBatch("completion", `Completions · ${res.model} · τ ${p.temperature.toFixed(2)}`, cards, true);
    } catch (e) {
      if (e.name === "AbortError" || seq !== state.seq) return;
      setStatus(`Completion failed: ${e.message}`, true);
    }
  }

  function standaloneCards(sketches, model, what, labels) {
    return sketches.map((rows, i) => {
      const color = COLORS[i % COLORS.length];
      const fig = { lines: rowsToPolylines(rows, 0, 0, true).map((points) => ({ points, color })), title: `${model}-${what}-${i + 1}` };
      return makeCard(fig, labels ? labels[i] : `${what} ${i + 1} (${rows.length} pts)`, color);
    });
  }

  async function runAction(label, fn) {
    setStatus(`${label}…`);
    try { await fn(); } catch (e) { setStatus(`${label} failed: ${e.message}`, true); }
  }

  function currentDrawing() {
    const d = state.info && toStroke3(state.strokes, state.info.extent, maxRows());
    if (!d) throw new Error("draw something first (at least two points)");
    return d;
  }

  $("reconstruct").addEventListener("click", () => runAction("Reconstructing", async () => {
    const d = currentDrawing();
    const p = params();
    const res = await api("/api/reconstruct", { ...p, strokes: d.rows });
    addBatch("reconstruction", `Reconstructions · ${res.model} · τ ${p.temperature.toFixed(2)}`,
      standaloneCards(res.reconstructions, res.model, "reconstruction"));
    setStatus(`${res.reconstructions.length} reconstructions (seed ${res.seed}).`);
  }));

  $("sample").addEventListener("click", () => runAction("Sampling", async () => {
    const p = params();
    const res = await api("/api/sample", { ...p, max_points: 250 });
    addBatch("sample", `Samples · ${res.model} · τ ${p.temperature.toFixed(2)}`, standaloneCards(res.sketches, res.model, "sample"));
    setStatus(`${res.sketches.length} samples (seed ${res.seed}).`);
  }));

  function saveAB(which) {
    if (!state.strokes.length) { setStatus("Draw something first.", true); return; }
    state[which] = state.strokes.map((s) => s.slice());
    $("ab-state").textContent = `A: ${state.a ? "✓" : "–"} · B: ${state.b ? "✓" : "–"}`;
    updateButtons();
  }
  $("set-a").addEventListener("click", () => saveAB("a"));
  $("set-b").addEventListener("click", () => saveAB("b"));

  $("interpolate").addEventListener("click", () => runAction("Interpolating", async () => {
    if (!state.a || !state.b) throw new Error("save two drawings first (Use as A, Use as B)");
    const e = state.info.extent;
    const a = toStroke3(state.a, e, maxRows()), b = toStroke3(state.b, e, maxRows());
    if (!a || !b) throw new Error("A and B need at least two points each");
    const p = params();
    const body = { model: p.model, temperature: Math.min(p.temperature, 0.3), a: a.rows, b: b.rows, steps: 6 };
    if (p.seed !== undefined) body.seed = p.seed;
    const res = await api("/api/interpolate", body);
    addBatch("interpolation", `Interpolation A → B · ${res.model}`,
      standaloneCards(res.sketches, res.model, "interpolation", res.t.map((t) => `t = ${t.toFixed(2)}`)));
    setStatus(`Interpolated in ${res.t.length} steps (seed ${res.seed}).`);
  }));

  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", () => {
    state.strokes = []; state.current = null; state.seq += 1; state.completions = null;
    redrawInk(); drawGhost(0);
    for (const old of document.querySelectorAll('.batch[data-kind="completion"]')) old.remove();
    setStatus("Cleared.");
  });
  $("recomplete").addEventListener("click", () => requestCompletions());
  function undo() {
    if (!state.strokes.length) return;
    state.strokes.pop();
    redrawInk();
    if (state.strokes.length) requestCompletions();
    else { state.seq += 1; state.completions = null; drawGhost(0); setStatus("Nothing drawn."); }
  }
  window.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); undo(); }
  });

  $("temperature").addEventListener("input", () => { $("temperature-value").textContent = parseFloat($("temperature").value).toFixed(2); });
  $("temperature").addEventListener("change", () => { if (state.strokes.length) requestCompletions(); });
  $("zfrom").addEventListener("change", () => { if (state.strokes.length) requestCompletions(); });

  // ------------------------------------------------------------------ pointer input (mouse, pen, touch)
  ghost.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    ghost.setPointerCapture(e.pointerId);
    state.current = [unitPoint(e)];
    state.seq += 1;  // a new stroke makes pending completions stale
    if (state.abort) state.abort.abort();
    state.completions = null;
    drawGhost(0);
    redrawInk();
  });
  ghost.addEventListener("pointermove", (e) => {
    if (!state.current) return;
    const evs = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of evs.length ? evs : [e]) {
      const p = unitPoint(ev), q = state.current[state.current.length - 1];
      if (Math.hypot(p[0] - q[0], p[1] - q[1]) * size >= 1) state.current.push(p);
    }
    redrawInk();
  });
  const endStroke = (e) => {
    if (!state.current) return;
    if (e.type === "pointerup") {
      const p = unitPoint(e), q = state.current[state.current.length - 1];
      if (Math.hypot(p[0] - q[0], p[1] - q[1]) * size >= 1) state.current.push(p);
    }
    state.strokes.push(state.current.map((p) => [Math.min(1, Math.max(0, p[0])), Math.min(1, Math.max(0, p[1]))]));
    state.current = null;
    redrawInk();
    requestCompletions();
  };
  ghost.addEventListener("pointerup", endStroke);
  ghost.addEventListener("pointercancel", endStroke);

  // ------------------------------------------------------------------ models
  function updateButtons() {
    const cond = !!(state.info && state.info.conditional);
    for (const id of ["reconstruct", "set-a", "set-b"]) $(id).disabled = !cond;
    $("interpolate").disabled = !(cond && state.a && state.b);
    $("zfrom-wrap").hidden = !cond;
    $("sample").disabled = !state.info;
    $("recomplete").disabled = !state.info;
  }

  async function selectModel(name) {
    state.info = null;
    updateButtons();
    setStatus(`Loading ${name}…`);
    try {
      state.info = await api(`/api/models/${encodeURIComponent(name)}`);
      if (!(state.info.extent > 0)) state.info.extent = 12 * state.info.scale_factor;
    } catch (e) {
      setStatus(`Cannot load ${name}: ${e.message}`, true);
      return;
    }
    $("model-kind").textContent = state.info.conditional ? "conditional (VAE)" : "decoder-only";
    updateButtons();
    setStatus(`${name} ready. Draw!`);
    document.body.dataset.model = name;
    if (state.strokes.length) requestCompletions();
  }

  async function init() {
    layout();
    window.addEventListener("resize", () => { if (Math.abs(Math.min(560, window.innerWidth - 40) - size) > 8) layout(); });
    updateButtons();
    let res;
    try { res = await api("/api/models"); } catch (e) { setStatus(`Cannot list models: ${e.message}`, true); return; }
    state.models = res.models;
    const sel = $("model");
    for (const m of res.models) {
      const o = document.createElement("option");
      o.value = m.name;
      o.textContent = `${m.name}${m.conditional ? " (VAE)" : ""}`;
      sel.appendChild(o);
    }
    if (!res.models.length) { setStatus("No models: start the studio with --models FOLDER.", true); return; }
    const wanted = new URLSearchParams(location.search).get("model");
    if (wanted && res.models.some((m) => m.name === wanted)) sel.value = wanted;
    sel.addEventListener("change", () => selectModel(sel.value));
    await selectModel(sel.value);
  }
  init();
})();
