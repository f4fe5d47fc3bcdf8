// e2espot job page: progress, then the analyst workspace (canvas timeline, table, keyboard, review).
// Plain JavaScript, no dependencies; uses el(), fmtTime(), CSRF_TOKEN, serverReachable() from app.js.
"use strict";

(function jobPage() {
  const root = document.getElementById("job");
  if (!root) return;
  const jobId = root.dataset.jobId;
  const views = {
    progress: document.getElementById("progress-view"),
    failed: document.getElementById("failed-view"),
    gone: document.getElementById("gone-view"),
    result: document.getElementById("result-view"),
  };
  const STAGES = ["upload", "decode", "predict", "render"];
  const FILE_LABELS = {
    events: "Events (JSON)", csv: "Events (CSV)", annotated: "Annotated video (MP4)",
    highlights: "Highlight reel (MP4)", scores: "Per-frame scores (NPZ)",
  };
  const api = "/api/jobs/" + jobId;

  function show(name) { for (const [k, v] of Object.entries(views)) v.hidden = k !== name; }

  async function post(url, body, method) {
    const r = await fetch(url, {
      method: method || "POST", headers: { "X-CSRF-Token": CSRF_TOKEN, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await r.json(); } catch (e) { /* empty */ }
    if (!r.ok) throw new Error((data && data.detail) || ("HTTP " + r.status));
    return data;
  }

  // ---------------------------------------------------------------- job actions (re-run, delete)
  const actionErr = document.getElementById("job-action-error");
  document.getElementById("rerun-btn").addEventListener("click", async () => {
    const th = document.getElementById("rerun-threshold").value;
    try {
      const job = await post(api + "/rerun", { model: document.getElementById("rerun-model").value, threshold: th === "" ? null : parseFloat(th) });
      window.location.href = job.urls.page;
    } catch (e) { actionErr.textContent = e.message; actionErr.hidden = false; }
  });
  document.getElementById("delete-job-btn").addEventListener("click", async () => {
    if (!window.confirm("Delete this job, its uploaded video, its results and its edits?")) return;
    try { await post(api, undefined, "DELETE"); window.location.href = "/"; } catch (e) { actionErr.textContent = e.message; actionErr.hidden = false; }
  });

  // ---------------------------------------------------------------- progress
  async function poll() {
    let job;
    try {
      const r = await fetch(api, { cache: "no-store" });
      if (r.status >= 500) throw new Error("HTTP " + r.status);
      job = await r.json();
    } catch (e) { serverReachable(false); setTimeout(poll, 1500); return; }
    serverReachable(true);
    const badge = document.getElementById("job-status");
    badge.textContent = job.status; badge.className = "badge " + job.status;
    if (job.status === "done" && job.results_missing) { show("gone"); return; }
    if (job.status === "done") { show("result"); loadResult(job); return; }
    if (job.status === "failed") {
      show("failed"); document.getElementById("job-error").textContent = job.error || "unknown error"; return;
    }
    show("progress");
    const idx = STAGES.indexOf(job.stage);
    document.querySelectorAll(".stages li").forEach((li, i) => {
      li.classList.toggle("done", job.status === "running" ? i < Math.max(idx, 1) : i === 0);
      li.classList.toggle("active", job.status === "running" && i === idx);
    });
    document.getElementById("job-progress").value = job.progress || 0;
    document.getElementById("progress-text").textContent = job.status === "queued"
      ? "Waiting in the queue…" : (job.stage || "starting") + " – " + Math.round(100 * (job.progress || 0)) + "%";
    document.getElementById("eta-text").textContent = job.eta_s !== null && job.eta_s !== undefined
      ? "about " + fmtDuration(job.eta_s) + " left (at the rate so far)" : "";
    setTimeout(poll, 700);
  }
  function fmtDuration(s) {
    s = Math.ceil(s);
    return s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
  }

  // ---------------------------------------------------------------- the workspace
  async function loadResult(job) {
    const t0 = performance.now();
    const data = await (await fetch(job.urls.api_events, { cache: "no-store" })).json();
    const tFetched = performance.now();
    const fps = data.fps || 25;
    const video = document.getElementById("player");
    const canvas = document.getElementById("timeline");
    const overview = document.getElementById("overview");
    const hist = document.getElementById("score-hist");
    const tooltip = document.getElementById("tooltip");
    const slider = document.getElementById("score-slider");
    const sliderOut = document.getElementById("score-value");
    const countEl = document.getElementById("event-count");
    const tbody = document.querySelector("#event-table tbody");
    const wrap = document.getElementById("table-wrap");
    const search = document.getElementById("search");
    const rangeFrom = document.getElementById("range-from");
    const rangeTo = document.getElementById("range-to");
    const unrevOnly = document.getElementById("unreviewed-only");
    const editErr = document.getElementById("edit-error");
    const hiddenClasses = new Set();
    const checked = new Set();
    let events = data.events;  // [{id, frame, label, score, time_s, team, note, review, origin, ...}]
    let byId = new Map(events.map((e) => [e.id, e]));
    let shown = [];  // the filtered events in time order (n/p, table, timeline)
    let sortKey = "time_s", sortDir = 1;
    let currentRowId = null;  // the table follows playback: the latest shown event at or before the playhead
    let selectedId = null, activeClass = data.classes[0] || null;
    let loop = null;  // {start, end} in seconds
    let useTeams = false;  // lanes per class and team once any event carries a team
    const lanes = [];  // [{key, label, team}]
    const view = { t0: 0, t1: 1 };
    const drawTimes = [];

    // sources: the upload when the browser can play it, and the annotated render
    const sourceSel = document.getElementById("source-select");
    const sources = [];
    if (job.browser_playable) sources.push(["Original", job.urls.video]);
    if (job.urls.files.annotated) sources.push(["Annotated", job.urls.files.annotated]);
    if (!sources.length) sources.push(["Original", job.urls.video]);
    for (const [label, url] of sources) sourceSel.append(el("option", { value: url }, label));
    sourceSel.parentElement.hidden = sources.length < 2;
    video.src = sources[0][1];
    sourceSel.addEventListener("change", () => {
      const t = video.currentTime; video.src = sourceSel.value;
      video.addEventListener("loadedmetadata", () => { video.currentTime = t; }, { once: true });
    });

    function duration() {
      return data.duration_s || (isFinite(video.duration) && video.duration) ||
        Math.max(1, ...events.map((e) => e.time_s || 0));
    }
    view.t1 = duration();
    function timeOf(e) { return e.frame / fps; }
    function laneKey(e) { return useTeams ? e.label + "\u0000" + (e.team || "") : e.label; }
    function buildLanes() {
      useTeams = events.some((e) => e.team);
      const keys = new Map();
      for (const c of data.classes) if (!useTeams) keys.set(c, { key: c, label: c, cls: c });
      for (const e of events) {
        const k = laneKey(e);
        if (!keys.has(k)) keys.set(k, { key: k, label: e.label + (useTeams ? " · " + (e.team || "no team") : ""), cls: e.label });
      }
      lanes.length = 0;
      lanes.push(...[...keys.values()].sort((a, b) => a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
    }
    buildLanes();

    function parseTime(s) {
      s = (s || "").trim();
      if (!s) return null;
      const parts = s.split(":").map(Number);
      if (parts.some(isNaN)) return null;
      return parts.reduce((acc, x) => acc * 60 + x, 0);
    }
    let filt = null;  // the filter inputs, read once per refresh
    function readFilters() {
      filt = { th: parseFloat(slider.value), a: parseTime(rangeFrom.value), b: parseTime(rangeTo.value),
               q: search.value.trim().toLowerCase(), unrev: unrevOnly.checked };
    }
    function visible(e) {
      if (hiddenClasses.has(e.label)) return false;
      if (e.score !== null && e.score < filt.th) return false;
      const t = timeOf(e);
      if (filt.a !== null && t < filt.a) return false;
      if (filt.b !== null && t > filt.b) return false;
      if (filt.unrev && e.review) return false;
      const q = filt.q;
      if (q && ![e.label, e.team, e.note, e.review || "unreviewed", e.origin].some((x) => x && String(x).toLowerCase().includes(q))) return false;
      return true;
    }

    // ------------------------------------------------------------ canvas timeline
    const GUTTER = 110, LANE_H = 18, PAD_TOP = 16;
    function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
    function sizeCanvas(c, h) {
      const dpr = window.devicePixelRatio || 1, w = c.clientWidth || 800;
      c.style.height = h + "px";
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
      const ctx = c.getContext("2d"); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      return [ctx, w, h];
    }
    function xOf(t, w) { return GUTTER + (t - view.t0) / (view.t1 - view.t0) * (w - GUTTER); }
    function tOfX(x, w) { return view.t0 + (x - GUTTER) / (w - GUTTER) * (view.t1 - view.t0); }
    let hits = [];  // [{x0, x1, y0, y1, ids}] of the last draw, for clicks and tooltips

    function draw() {
      const start = performance.now();
      const h = PAD_TOP + lanes.length * LANE_H + 4;
      const [ctx, w] = sizeCanvas(canvas, h);
      const fg = cssVar("--fg"), muted = cssVar("--muted"), track = cssVar("--track"), border = cssVar("--border");
      ctx.clearRect(0, 0, w, h);
      ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
      // time ticks
      const span = view.t1 - view.t0;
      const steps = [0.04, 0.2, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800];
      const step = steps.find((s) => span / s <= 10) || 3600;
      ctx.fillStyle = muted; ctx.strokeStyle = border;
      for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
        const x = xOf(t, w);
        ctx.beginPath(); ctx.moveTo(x, PAD_TOP - 3); ctx.lineTo(x, h); ctx.stroke();
        ctx.fillText(fmtTime(t).replace(/\.00$/, ""), x + 2, 6);
      }
      hits = [];
      const laneIndex = new Map(lanes.map((l, i) => [l.key, i]));
      lanes.forEach((l, i) => {
        const y = PAD_TOP + i * LANE_H;
        ctx.fillStyle = track; ctx.fillRect(GUTTER, y + 1, w - GUTTER, LANE_H - 2);
        ctx.fillStyle = data.colors[l.cls] || fg; ctx.fillRect(2, y + 4, 8, LANE_H - 8);
        ctx.fillStyle = fg; ctx.fillText(l.label.length > 15 ? l.label.slice(0, 14) + "…" : l.label, 14, y + LANE_H / 2);
      });
      // events, clustered per 6 px bin of each lane
      const BIN = 6;
      const bins = new Map();
      for (const e of shown) {
        const t = timeOf(e);
        if (t < view.t0 || t > view.t1) continue;
        const li = laneIndex.get(laneKey(e));
        if (li === undefined) continue;
        const b = Math.floor((xOf(t, w) - GUTTER) / BIN);
        const k = li * 100000 + b;
        let bin = bins.get(k);
        if (!bin) { bin = { li, b, ids: [], x: xOf(t, w) }; bins.set(k, bin); }
        bin.ids.push(e.id);
      }
      for (const bin of bins.values()) {
        const y = PAD_TOP + bin.li * LANE_H;
        const e0 = byId.get(bin.ids[0]);
        const color = data.colors[e0.label] || fg;
        if (bin.ids.length === 1) {
          const x = bin.x;
          ctx.globalAlpha = e0.review === "rejected" ? 0.35 : 1;
          ctx.fillStyle = color; ctx.fillRect(x - 2, y + 2, 4, LANE_H - 4);
          ctx.globalAlpha = 1;
          if (e0.review === "confirmed") { ctx.strokeStyle = fg; ctx.lineWidth = 1; ctx.strokeRect(x - 2.5, y + 1.5, 5, LANE_H - 3); }
          if (e0.id === selectedId) { ctx.strokeStyle = fg; ctx.lineWidth = 2; ctx.strokeRect(x - 4, y, 8, LANE_H); ctx.lineWidth = 1; }
          hits.push({ x0: x - 4, x1: x + 4, y0: y, y1: y + LANE_H, ids: bin.ids });
        } else {
          const x = GUTTER + bin.b * BIN;
          ctx.fillStyle = color; ctx.globalAlpha = 0.85;
          ctx.fillRect(x, y + 2, BIN - 1, LANE_H - 4); ctx.globalAlpha = 1;
          const label = String(bin.ids.length);
          if (bin.ids.length > 1) {
            ctx.fillStyle = fg; ctx.font = "9px system-ui, sans-serif";
            ctx.fillText(label, x + BIN, y + LANE_H / 2); ctx.font = "11px system-ui, sans-serif";
          }
          if (bin.ids.includes(selectedId)) { ctx.strokeStyle = fg; ctx.lineWidth = 2; ctx.strokeRect(x - 1, y, BIN + 1, LANE_H); ctx.lineWidth = 1; }
          hits.push({ x0: x, x1: x + BIN, y0: y, y1: y + LANE_H, ids: bin.ids });
        }
      }
      // loop window
      if (loop) {
        ctx.fillStyle = cssVar("--accent"); ctx.globalAlpha = 0.15;
        const a = Math.max(GUTTER, xOf(loop.start, w)), b = Math.min(w, xOf(loop.end, w));
        if (b > a) ctx.fillRect(a, PAD_TOP, b - a, h - PAD_TOP);
        ctx.globalAlpha = 1;
      }
      // the playhead: a line in the window, an arrow at the edge when it is outside
      const now = video.currentTime || 0, px = xOf(now, w);
      ctx.fillStyle = "#e53935"; ctx.strokeStyle = "#e53935"; ctx.lineWidth = 2;
      if (now < view.t0) { ctx.beginPath(); ctx.moveTo(GUTTER, 8); ctx.lineTo(GUTTER + 10, 2); ctx.lineTo(GUTTER + 10, 14); ctx.fill(); }
      else if (now > view.t1) { ctx.beginPath(); ctx.moveTo(w - 1, 8); ctx.lineTo(w - 11, 2); ctx.lineTo(w - 11, 14); ctx.fill(); }
      else { ctx.beginPath(); ctx.moveTo(px, 0); ctx.lineTo(px, h); ctx.stroke(); }
      ctx.lineWidth = 1;
      drawOverview();
      document.getElementById("view-range").textContent = fmtTime(view.t0) + " – " + fmtTime(view.t1) +
        " (" + Math.round(duration() / (view.t1 - view.t0) * 10) / 10 + "×)";
      drawTimes.push(performance.now() - start);
      if (drawTimes.length > 500) drawTimes.shift();
    }
    let pending = false;
    function redraw() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } }

    function drawOverview() {
      const [ctx, w, h] = sizeCanvas(overview, 26);
      const d = duration();
      ctx.clearRect(0, 0, w, h);
      ctx.fillStyle = cssVar("--track"); ctx.fillRect(GUTTER, 0, w - GUTTER, h);
      const n = Math.max(1, Math.floor(w - GUTTER));
      const counts = new Uint16Array(n);
      for (const e of shown) counts[Math.min(n - 1, Math.floor(timeOf(e) / d * n))]++;
      const max = Math.max(1, ...counts);
      ctx.fillStyle = cssVar("--muted");
      for (let i = 0; i < n; i++) if (counts[i]) { const bh = 2 + (h - 4) * counts[i] / max; ctx.fillRect(GUTTER + i, h - bh, 1, bh); }
      const a = GUTTER + view.t0 / d * (w - GUTTER), b = GUTTER + view.t1 / d * (w - GUTTER);
      ctx.strokeStyle = cssVar("--accent"); ctx.lineWidth = 2; ctx.strokeRect(a + 1, 1, Math.max(3, b - a - 2), h - 2);
      ctx.fillStyle = "#e53935"; ctx.fillRect(GUTTER + (video.currentTime || 0) / d * (w - GUTTER) - 1, 0, 2, h);
      ctx.fillStyle = cssVar("--muted"); ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
      ctx.fillText("whole match", 4, h / 2);
    }

    function setView(t0, t1) {
      const d = duration(), minSpan = Math.min(d, 20 / fps);
      let span = Math.max(minSpan, Math.min(d, t1 - t0));
      t0 = Math.max(0, Math.min(d - span, t0));
      view.t0 = t0; view.t1 = t0 + span;
      redraw();
    }
    function zoom(factor, atT) {
      const t = atT === undefined ? (video.currentTime >= view.t0 && video.currentTime <= view.t1 ? video.currentTime : (view.t0 + view.t1) / 2) : atT;
      const a = t - (t - view.t0) * factor, b = t + (view.t1 - t) * factor;
      setView(a, b);
    }
    function pan(fraction) { const s = view.t1 - view.t0; setView(view.t0 + s * fraction, view.t1 + s * fraction); }

    canvas.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const w = canvas.clientWidth;
      if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) pan((ev.deltaX || ev.deltaY) / 500);
      else zoom(Math.exp(ev.deltaY / 300), tOfX(ev.offsetX, w));
    }, { passive: false });
    let drag = null;
    canvas.addEventListener("pointerdown", (ev) => { drag = { x: ev.clientX, t0: view.t0, t1: view.t1, moved: false }; canvas.setPointerCapture(ev.pointerId); });
    canvas.addEventListener("pointermove", (ev) => {
      if (drag) {
        const dx = ev.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (drag.moved) { const s = drag.t1 - drag.t0; const dt = -dx / (canvas.clientWidth - GUTTER) * s; setView(drag.t0 + dt, drag.t1 + dt); }
        return;
      }
      const hit = hitAt(ev.offsetX, ev.offsetY);
      if (hit) {
        const e = byId.get(hit.ids[0]);
        tooltip.textContent = hit.ids.length > 1 ? hit.ids.length + " × " + e.label + " from " + fmtTime(timeOf(e)) + " (zoom in to see them)"
          : e.label + " · " + fmtTime(timeOf(e)) + (e.score !== null ? " · score " + e.score.toFixed(3) : "") + (e.review ? " · " + e.review : "");
        tooltip.hidden = false; tooltip.style.left = Math.max(4, ev.clientX - 20) + "px"; tooltip.style.top = (ev.clientY - 34) + "px";
      } else tooltip.hidden = true;
    });
    canvas.addEventListener("pointerleave", () => { tooltip.hidden = true; });
    canvas.addEventListener("pointerup", (ev) => {
      const d = drag; drag = null;
      if (!d || d.moved) return;
      const hit = hitAt(ev.offsetX, ev.offsetY);
      if (hit && hit.ids.length === 1) { select(hit.ids[0], true); return; }
      if (hit) { const e = byId.get(hit.ids[0]); const s = view.t1 - view.t0; setView(timeOf(e) - s / 8, timeOf(e) + s / 8); return; }
      if (ev.offsetX > GUTTER) { video.currentTime = Math.max(0, tOfX(ev.offsetX, canvas.clientWidth)); }
    });
    function hitAt(x, y) { return hits.find((h) => x >= h.x0 - 1 && x <= h.x1 + 1 && y >= h.y0 && y <= h.y1) || null; }
    let ovDrag = false;
    function ovMove(ev) {
      const w = overview.clientWidth, d = duration(), t = (ev.offsetX - GUTTER) / (w - GUTTER) * d, s = view.t1 - view.t0;
      setView(t - s / 2, t + s / 2);
    }
    overview.addEventListener("pointerdown", (ev) => { ovDrag = true; overview.setPointerCapture(ev.pointerId); ovMove(ev); });
    overview.addEventListener("pointermove", (ev) => { if (ovDrag) ovMove(ev); });
    overview.addEventListener("pointerup", () => { ovDrag = false; });
    window.addEventListener("resize", redraw);
    // canvases read the theme's colours when they draw: redraw when the theme switches
    new MutationObserver(() => { drawHist(); redraw(); }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });

    // ------------------------------------------------------------ filters, histogram, counts
    const filters = document.getElementById("class-filters");
    const chipText = new Map();
    for (const c of data.classes) {
      const chip = el("label", { class: "chip" });
      const box = el("input", { type: "checkbox", "data-class": c });
      box.checked = true;
      box.addEventListener("change", () => { if (box.checked) hiddenClasses.delete(c); else hiddenClasses.add(c); refresh(); });
      const text = el("span", { class: "chip-text", "data-class": c });
      chipText.set(c, text);
      chip.append(box, el("span", { class: "sw", style: "background:" + data.colors[c] }), text);
      filters.append(chip);
    }
    function drawHist() {
      const [ctx, w, h] = sizeCanvas(hist, 30);
      const N = 20, counts = new Array(N).fill(0);
      for (const e of events) if (e.score !== null) counts[Math.min(N - 1, Math.floor(e.score * N))]++;
      const max = Math.max(1, ...counts), th = parseFloat(slider.value);
      ctx.clearRect(0, 0, w, h);
      for (let i = 0; i < N; i++) {
        const bh = counts[i] ? 2 + (h - 2) * counts[i] / max : 0;
        ctx.fillStyle = (i + 1) / N <= th ? cssVar("--border") : cssVar("--accent");
        ctx.fillRect(i * w / N + 1, h - bh, w / N - 2, bh);
      }
    }
    slider.addEventListener("input", () => { sliderOut.textContent = parseFloat(slider.value).toFixed(2); refresh(); });
    let filterTimer = null;
    for (const inp of [search, rangeFrom, rangeTo]) inp.addEventListener("input", () => { clearTimeout(filterTimer); filterTimer = setTimeout(refresh, 120); });
    unrevOnly.addEventListener("change", refresh);

    document.querySelectorAll("#event-table th[data-sort]").forEach((th) => {
      th.addEventListener("click", () => {
        const key = th.dataset.sort;
        sortDir = key === sortKey ? -sortDir : (key === "score" ? -1 : 1);
        sortKey = key;
        document.querySelectorAll("#event-table th").forEach((h) => h.classList.remove("sorted", "asc", "desc"));
        th.classList.add("sorted", sortDir > 0 ? "asc" : "desc");
        renderTable();
      });
    });

    // ------------------------------------------------------------ table
    // a windowed table: only the rows in (and near) the scrolled view are in the DOM, so a match with
    // thousands of events opens at once; every row has the same height (ROW_H, see style.css)
    const ROW_H = 28, EXTRA = 12;
    const rowOf = new Map();
    let rowsSorted = [], rowIndex = new Map();
    function makeRow(e) {
      const cls0 = (e.review ? "rev-" + e.review : "") + (e.id === currentRowId ? " current" : "") + (e.id === selectedId ? " selected" : "");
      const tr = el("tr", { "data-id": e.id, tabindex: "0", class: cls0.trim() });
      const cb = el("input", { type: "checkbox", "aria-label": "select " + e.label + " at " + fmtTime(timeOf(e)) });
      cb.checked = checked.has(e.id);
      cb.addEventListener("click", (ev) => { ev.stopPropagation(); if (cb.checked) checked.add(e.id); else checked.delete(e.id); });
      const c0 = el("td"); c0.append(cb);
      const cls = el("td"); cls.append(el("span", { class: "sw", style: "background:" + data.colors[e.label] }), document.createTextNode(e.label));
      tr.append(c0, el("td", {}, fmtTime(timeOf(e))), el("td", {}, String(e.frame)), cls, el("td", {}, e.team || ""),
        el("td", {}, e.score === null ? "–" : e.score.toFixed(3)),
        el("td", { class: "rev" }, (e.review === "confirmed" ? "✓" : e.review === "rejected" ? "✗" : "·") + (e.origin === "analyst" ? " added" : "") + (e.note ? " ✎" : "")));
      tr.addEventListener("click", () => select(e.id, true));
      tr.addEventListener("focus", () => { if (selectedId !== e.id) select(e.id, false); });
      tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); select(e.id, true); } });
      return tr;
    }
    function spacer(h) {
      const tr = el("tr", { class: "spacer", "aria-hidden": "true" }); const td = el("td", { colspan: "7" });
      td.style.height = h + "px"; td.style.padding = "0"; td.style.border = "0"; tr.append(td); return tr;
    }
    let lastWindow = "";
    function renderWindow(force) {
      const n = rowsSorted.length, hgt = wrap.clientHeight || 420;
      const first = Math.max(0, Math.floor(wrap.scrollTop / ROW_H) - EXTRA);
      const last = Math.min(n, Math.ceil((wrap.scrollTop + hgt) / ROW_H) + EXTRA);
      const key = first + ":" + last;
      if (key === lastWindow && !force) return;
      lastWindow = key;
      const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("#event-table tbody tr");
      const focusId = focused ? focused.dataset.id : null;
      rowOf.clear();
      const trs = [];
      for (let i = first; i < last; i++) { const tr = makeRow(rowsSorted[i]); rowOf.set(rowsSorted[i].id, tr); trs.push(tr); }
      tbody.replaceChildren(spacer(first * ROW_H), ...trs, spacer((n - last) * ROW_H));
      if (focusId && rowOf.get(focusId)) rowOf.get(focusId).focus({ preventScroll: true });
    }
    let scrollPending = false;
    wrap.addEventListener("scroll", () => {
      if (!scrollPending) { scrollPending = true; requestAnimationFrame(() => { scrollPending = false; renderWindow(false); }); }
    });
    function renderTable() {
      const rows = shown.slice();
      if (sortKey !== "time_s") {
        rows.sort((a, b) => {
          let x = a[sortKey], y = b[sortKey];
          if (x === null || x === undefined) x = sortKey === "score" ? -Infinity : "";
          if (y === null || y === undefined) y = sortKey === "score" ? -Infinity : "";
          return (x < y ? -1 : x > y ? 1 : a.frame - b.frame) * sortDir;
        });
      } else if (sortDir < 0) rows.reverse();
      rowsSorted = rows;
      rowIndex = new Map(rows.map((e, i) => [e.id, i]));
      tbody.dataset.rows = String(rows.length);
      renderWindow(true);
      markCurrent(true);
    }
    function scrollToRow(id) {
      const i = rowIndex.get(id);
      if (i === undefined) return;
      const top = i * ROW_H, hgt = wrap.clientHeight || 420;
      if (top < wrap.scrollTop || top + ROW_H > wrap.scrollTop + hgt) { wrap.scrollTop = Math.max(0, top - hgt / 2); renderWindow(false); }
    }

    function refresh() {
      readFilters();
      shown = events.filter(visible).sort((a, b) => a.frame - b.frame || (a.label < b.label ? -1 : 1));
      countEl.textContent = shown.length + " of " + events.length + " events";
      const all = new Map(), above = new Map();
      for (const e of events) {  // counts follow the score slider
        all.set(e.label, (all.get(e.label) || 0) + 1);
        if (e.score === null || e.score >= filt.th) above.set(e.label, (above.get(e.label) || 0) + 1);
      }
      for (const c of data.classes) {
        const a = above.get(c) || 0, n = all.get(c) || 0;
        chipText.get(c).textContent = c + " (" + a + (a !== n ? "/" + n : "") + ")";
      }
      drawHist(); renderTable(); redraw();
    }

    // the table follows playback: the latest shown event at or before the playhead
    function markCurrent(force) {
      const now = video.currentTime + 1e-3;
      let lo = 0, hi = shown.length - 1, cur = -1;
      while (lo <= hi) { const m = (lo + hi) >> 1; if (timeOf(shown[m]) <= now) { cur = m; lo = m + 1; } else hi = m - 1; }
      const id = cur >= 0 ? shown[cur].id : null;
      if (id === currentRowId && !force) return;
      if (currentRowId && rowOf.get(currentRowId)) rowOf.get(currentRowId).classList.remove("current");
      currentRowId = id;
      if (id && !video.paused) scrollToRow(id);
      const tr = id && rowOf.get(id);
      if (tr) tr.classList.add("current");
    }

    function tick() {
      const now = video.currentTime || 0;
      if (loop && now >= loop.end) { video.currentTime = loop.start; }
      if (!video.paused && (now > view.t1 || now < view.t0)) {  // the playhead stays in view while playing
        const s = view.t1 - view.t0; setView(now - s * 0.1, now + s * 0.9);
      }
      markCurrent(false); redraw();
      document.getElementById("play-state").textContent = fmtTime(now) + " · frame " + Math.round(now * fps) +
        " · " + video.playbackRate + "×" + (loop ? " · loop" : "");
    }
    video.addEventListener("timeupdate", tick);
    video.addEventListener("seeked", tick);
    video.addEventListener("ratechange", tick);
    video.addEventListener("loadedmetadata", () => { if (!data.duration_s) setView(0, duration()); tick(); });
    (function frameLoop() { if (!video.paused) tick(); requestAnimationFrame(frameLoop); })();

    // ------------------------------------------------------------ selection and review
    const labelSel = document.getElementById("edit-label");
    for (const c of data.classes) labelSel.append(el("option", { value: c }, c));
    const frameIn = document.getElementById("edit-frame");
    const teamIn = document.getElementById("edit-team");
    const noteIn = document.getElementById("edit-note");
    frameIn.max = String((data.num_frames || 1) - 1);

    function select(id, seekTo) {
      selectedId = id;
      const e = byId.get(id);
      const info = document.getElementById("selected-event");
      document.getElementById("review-form").hidden = !e;
      if (!e) { info.textContent = "No event selected: click one, or press n."; redraw(); return; }
      info.textContent = e.label + " at " + fmtTime(timeOf(e)) + " (frame " + e.frame + ")" +
        (e.score !== null ? " · score " + e.score.toFixed(3) : "") + " · " + (e.origin === "analyst" ? "added by you" : "model") +
        (e.model_label && e.model_label !== e.label ? " · was " + e.model_label : "") +
        (e.model_frame !== null && e.model_frame !== e.frame ? " · model frame " + e.model_frame : "") +
        " · " + (e.review || "unreviewed");
      labelSel.value = e.label; frameIn.value = String(e.frame); teamIn.value = e.team || ""; noteIn.value = e.note || "";
      if (seekTo) {
        video.currentTime = timeOf(e);
        const t = timeOf(e);
        if (t < view.t0 || t > view.t1) { const s = view.t1 - view.t0; setView(t - s / 2, t + s / 2); }
      }
      document.querySelectorAll("#event-table tr.selected").forEach((r) => r.classList.remove("selected"));
      if (seekTo) scrollToRow(id);
      const tr = rowOf.get(id); if (tr) tr.classList.add("selected");
      redraw();
    }

    function showSummary(s, can) {
      const p = s.precision === null ? "–" : (100 * s.precision).toFixed(1) + "%";
      document.getElementById("summary").textContent = "Reviewed " + s.reviewed + " of " + s.model_events +
        " model events (" + s.unreviewed + " unreviewed) · confirmed " + s.confirmed + " · rejected " + s.rejected +
        " · added " + s.added + " · model precision on reviewed: " + p;
      document.getElementById("summary").dataset.precision = s.precision === null ? "" : String(s.precision);
      document.getElementById("summary").dataset.reviewed = String(s.reviewed);
      document.getElementById("undo-btn").disabled = !can.undo;
      document.getElementById("redo-btn").disabled = !can.redo;
    }
    showSummary(data.summary, data.can);

    function applyResult(r) {
      if (r.event) {
        const old = byId.get(r.event.id);
        if (old) Object.assign(old, r.event); else { events.push(r.event); }
      } else if (r.event_id) {
        events = events.filter((e) => e.id !== r.event_id);
      }
      byId = new Map(events.map((e) => [e.id, e]));
      const before = lanes.length; buildLanes();
      showSummary(r.summary, r.can);
      refresh();
      if (before !== lanes.length) redraw();
      if (selectedId && byId.has(selectedId)) select(selectedId, false); else select(null);
    }
    let queue = Promise.resolve();  // edits go to the server one after the other, in order
    function send(url, body) {
      queue = queue.then(async () => {
        try { editErr.hidden = true; const r = await post(url, body); applyResult(r); root.dataset.edits = String((parseInt(root.dataset.edits || "0", 10)) + 1); return r; }
        catch (e) { editErr.textContent = e.message; editErr.hidden = false; }
      });
      return queue;
    }
    function edit(op, extra) {
      if (op !== "add" && !selectedId) return Promise.resolve();
      return send(api + "/edits", Object.assign({ op: op, event_id: op === "add" ? null : selectedId }, extra || {}));
    }
    document.getElementById("confirm-btn").addEventListener("click", () => edit("confirm"));
    document.getElementById("reject-btn").addEventListener("click", () => edit("reject"));
    document.getElementById("delete-btn").addEventListener("click", () => edit("delete"));
    document.getElementById("add-btn").addEventListener("click", addAtPlayhead);
    document.getElementById("undo-btn").addEventListener("click", () => send(api + "/undo"));
    document.getElementById("redo-btn").addEventListener("click", () => send(api + "/redo"));
    labelSel.addEventListener("change", () => edit("relabel", { label: labelSel.value }));
    frameIn.addEventListener("change", () => edit("move", { frame: parseInt(frameIn.value, 10) }));
    teamIn.addEventListener("change", () => edit("team", { team: teamIn.value }));
    noteIn.addEventListener("change", () => edit("note", { note: noteIn.value }));
    function addAtPlayhead() {
      if (!activeClass) return;
      send(api + "/edits", { op: "add", frame: Math.round(video.currentTime * fps), label: activeClass }).then((r) => { if (r && r.event) select(r.event.id, false); });
    }
    function setActiveClass(c) {
      activeClass = c;
      document.getElementById("active-class").textContent = "Chosen class: " + c + " (keys 1–" + Math.min(9, data.classes.length) + ")";
    }
    if (activeClass) setActiveClass(activeClass);

    // ------------------------------------------------------------ exports
    document.querySelectorAll("#label-exports a").forEach((a) => {
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        const scope = document.getElementById("confirmed-only").checked ? "confirmed" : "all";
        window.location.href = api + "/export?fmt=" + a.dataset.fmt + "&scope=" + scope;
      });
    });
    const selResult = document.getElementById("sel-result");
    document.querySelectorAll(".sel-export").forEach((b) => {
      b.addEventListener("click", async () => {
        const ids = checked.size ? shown.filter((e) => checked.has(e.id)).map((e) => e.id) : shown.map((e) => e.id);
        if (!ids.length) { selResult.textContent = "Nothing selected."; return; }
        selResult.textContent = "Exporting " + ids.length + " events…"; b.disabled = true;
        try {
          const r = await post(api + "/selection", { kind: b.dataset.kind, event_ids: ids, pad_s: parseFloat(document.getElementById("pad-s").value) || 0 });
          selResult.replaceChildren(document.createTextNode(r.num_events + " events: "), el("a", { href: r.url, download: r.name, class: "sel-link" }, r.name));
        } catch (e) { selResult.textContent = e.message; }
        b.disabled = false;
      });
    });
    document.getElementById("check-all").addEventListener("change", (ev) => {
      checked.clear();
      if (ev.target.checked) for (const e of shown) checked.add(e.id);
      renderTable();
    });

    // ------------------------------------------------------------ keyboard
    const help = document.getElementById("help");
    document.getElementById("help-btn").addEventListener("click", () => help.showModal());
    const SPEEDS = [0.25, 0.5, 1, 1.5, 2, 4];
    function stepFrames(n) {
      video.pause();
      const f = Math.round(video.currentTime * fps) + n;
      video.currentTime = Math.max(0, f) / fps;
    }
    function jump(dir) {
      const now = video.currentTime, eps = 0.5 / fps;
      const e = dir > 0 ? shown.find((x) => timeOf(x) > now + eps) : [...shown].reverse().find((x) => timeOf(x) < now - eps);
      if (e) select(e.id, true);
    }
    function toggleLoop() {
      if (loop) { loop = null; tick(); return; }
      const e = byId.get(selectedId) || shown.slice().sort((a, b) => Math.abs(timeOf(a) - video.currentTime) - Math.abs(timeOf(b) - video.currentTime))[0];
      if (!e) return;
      loop = { start: Math.max(0, timeOf(e) - 2), end: Math.min(duration(), timeOf(e) + 2) };
      video.currentTime = loop.start; tick();
    }
    document.addEventListener("keydown", (ev) => {
      const tag = (ev.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "textarea" || tag === "select") {
        if (ev.key === "Escape") ev.target.blur();
        return;
      }
      if (help.open && ev.key !== "?") return;
      const k = ev.key;
      if ((ev.ctrlKey || ev.metaKey) && (k === "z" || k === "Z")) { ev.preventDefault(); send(api + (ev.shiftKey ? "/redo" : "/undo")); return; }
      if ((ev.ctrlKey || ev.metaKey) && k === "y") { ev.preventDefault(); send(api + "/redo"); return; }
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      let done = true;
      if (k === " ") { if (video.paused) video.play(); else video.pause(); }
      else if (k === "ArrowRight") { if (ev.shiftKey) video.currentTime = Math.min(duration(), video.currentTime + 1); else stepFrames(1); }
      else if (k === "ArrowLeft") { if (ev.shiftKey) video.currentTime = Math.max(0, video.currentTime - 1); else stepFrames(-1); }
      else if (k === "n") jump(1);
      else if (k === "p") jump(-1);
      else if (/^[1-9]$/.test(k)) {
        const c = data.classes[parseInt(k, 10) - 1];
        if (c) { setActiveClass(c); if (selectedId && byId.get(selectedId).label !== c) edit("relabel", { label: c }); }
      }
      else if (k === "[" || k === "]") {
        const i = SPEEDS.indexOf(video.playbackRate), j = Math.max(0, Math.min(SPEEDS.length - 1, (i < 0 ? 2 : i) + (k === "]" ? 1 : -1)));
        video.playbackRate = SPEEDS[j];
      }
      else if (k === "l") toggleLoop();
      else if (k === "?") { if (help.open) help.close(); else help.showModal(); }
      else if (k === "c") edit("confirm");
      else if (k === "x") edit("reject");
      else if (k === "Delete" || k === "Backspace") edit("delete");
      else if (k === "a") addAtPlayhead();
      else if (k === "m") { if (selectedId) edit("move", { frame: Math.round(video.currentTime * fps) }); }
      else if (k === "+" || k === "=") zoom(0.5);
      else if (k === "-") zoom(2);
      else if (k === "0") setView(0, duration());
      else if (k === "PageDown") pan(0.5);
      else if (k === "PageUp") pan(-0.5);
      else if (k === "Escape") select(null);
      else done = false;
      if (done) ev.preventDefault();
    });

    // ------------------------------------------------------------ downloads
    const dl = document.getElementById("downloads");
    for (const [kind, name] of Object.entries(job.files)) {
      const li = el("li");
      li.append(el("a", { href: job.urls.files[kind], download: name }, FILE_LABELS[kind] || kind), document.createTextNode(" "),
        el("span", { class: "muted small" }, name));
      dl.append(li);
    }

    refresh(); draw();
    // for tests and the curious: the view, the draw times (ms) and the open time
    window.e2espotView = {
      view: view, drawTimes: drawTimes, lanes: lanes, shown: () => shown.map((e) => e.id),
      xOf: (t) => xOf(t, canvas.clientWidth), laneY: (key) => PAD_TOP + lanes.findIndex((l) => l.key === key) * LANE_H + LANE_H / 2,
      fps: fps, selected: () => selectedId, loop: () => loop, hits: () => hits.map((h) => h.ids),
      timings: { fetch_ms: tFetched - t0, render_ms: performance.now() - tFetched, ready_ms: performance.now() },
    };
    root.dataset.ready = "1";
  }

  poll();
})();
