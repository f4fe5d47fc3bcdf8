// e2espot web app: plain JavaScript, no dependencies.
"use strict";

(function theme() {
  const btn = document.getElementById("theme-toggle");
  if (!btn) return;
  btn.addEventListener("click", () => {
    const root = document.documentElement;
    const dark = root.dataset.theme ? root.dataset.theme === "dark"
      : window.matchMedia("(prefers-color-scheme: dark)").matches;
    root.dataset.theme = dark ? "light" : "dark";
    try { localStorage.setItem("e2espot-theme", root.dataset.theme); } catch (e) { /* private mode */ }
  });
})();

function fmtTime(s) {
  if (s === null || s === undefined || isNaN(s)) return "–";
  const m = Math.floor(s / 60);
  const sec = s - 60 * m;
  return m + ":" + (sec < 10 ? "0" : "") + sec.toFixed(2);
}

// the per-server token that state-changing requests carry (the server refuses them without it)
const CSRF_TOKEN = (document.querySelector("meta[name='csrf-token']") || {}).content || "";

// a banner while the server does not answer (polling goes on; the banner goes when it answers again)
function serverReachable(ok) {
  const n = document.getElementById("offline-notice");
  if (n) n.hidden = ok;
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  return e;
}

// ------------------------------------------------------------------ upload page
(function uploadPage() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("file-input");
  const zone = document.getElementById("dropzone");
  const start = document.getElementById("start-btn");
  const nameEl = document.getElementById("file-name");
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const errEl = document.getElementById("upload-error");
  let file = null;

  function choose(f) {
    file = f || null;
    nameEl.textContent = file ? file.name + " (" + (file.size / 1048576).toFixed(1) + " MB)" : "";
    start.disabled = !file;
    errEl.hidden = true;
  }
  input.addEventListener("change", () => choose(input.files[0]));
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (ev) => { ev.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (ev) => { ev.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (ev) => { if (ev.dataTransfer.files.length) choose(ev.dataTransfer.files[0]); });

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!file) return;
    const data = new FormData();
    data.append("model", document.getElementById("model-select").value);
    data.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/jobs");
    xhr.setRequestHeader("X-CSRF-Token", CSRF_TOKEN);
    xhr.responseType = "json";
    bar.hidden = false; start.disabled = true; status.textContent = "Uploading…";
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; });
    xhr.addEventListener("load", () => {
      if (xhr.status === 201 && xhr.response) {
        status.textContent = "Uploaded; starting…";
        window.location.href = "/jobs/" + xhr.response.id;
      } else {
        const detail = xhr.response && xhr.response.detail ? xhr.response.detail : "upload failed (HTTP " + xhr.status + ")";
        errEl.textContent = detail; errEl.hidden = false; status.textContent = ""; bar.hidden = true; start.disabled = false;
      }
    });
    xhr.addEventListener("error", () => {
      errEl.textContent = "The server could not be reached during the upload; is e2espot serve still running?"; errEl.hidden = false; bar.hidden = true; start.disabled = false;
    });
    xhr.send(data);
  });

  document.querySelectorAll("td.ts").forEach((td) => {
    td.textContent = new Date(parseFloat(td.dataset.ts) * 1000).toLocaleString();
  });
})();

// ------------------------------------------------------------------ job page
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

  function show(name) { for (const [k, v] of Object.entries(views)) v.hidden = k !== name; }

  function setStatus(job) {
    const badge = document.getElementById("job-status");
    badge.textContent = job.status; badge.className = "badge " + job.status;
  }

  async function poll() {
    let job;
    try {
      const r = await fetch("/api/jobs/" + jobId, { cache: "no-store" });
      if (r.status >= 500) throw new Error("HTTP " + r.status);
      job = await r.json();
    } catch (e) { serverReachable(false); setTimeout(poll, 1500); return; }
    serverReachable(true);
    setStatus(job);
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
    setTimeout(poll, 700);
  }

  async function loadResult(job) {
    const data = await (await fetch(job.urls.api_events)).json();
    const video = document.getElementById("player");
    const timeline = document.getElementById("timeline");
    const playhead = document.getElementById("playhead");
    const tooltip = document.getElementById("tooltip");
    const slider = document.getElementById("score-slider");
    const sliderOut = document.getElementById("score-value");
    const countEl = document.getElementById("event-count");
    const tbody = document.querySelector("#event-table tbody");
    const hidden = new Set();
    let sortKey = "time_s", sortDir = 1;

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
        Math.max(1, ...data.events.map((e) => e.time_s || 0));
    }
    function visible(e) { return !hidden.has(e.label) && (e.score === null || e.score >= parseFloat(slider.value)); }
    function seek(e) { video.currentTime = e.time_s; }

    // markers
    const markers = data.events.map((e, i) => {
      const m = el("button", {
        class: "marker", type: "button", "data-index": i, "data-label": e.label, "data-time": e.time_s,
        "aria-label": e.label + " at " + fmtTime(e.time_s), style: "background:" + data.colors[e.label],
      });
      m.addEventListener("click", (ev) => { ev.stopPropagation(); seek(e); });
      m.addEventListener("mouseenter", () => {
        tooltip.textContent = e.label + " · " + fmtTime(e.time_s) + (e.score !== null ? " · score " + e.score.toFixed(3) : "");
        const r = m.getBoundingClientRect();
        tooltip.hidden = false;
        tooltip.style.left = Math.max(4, r.left - 20) + "px"; tooltip.style.top = (r.top - 30) + "px";
      });
      m.addEventListener("mouseleave", () => { tooltip.hidden = true; });
      timeline.append(m);
      return m;
    });
    function placeMarkers() {
      const d = duration();
      data.events.forEach((e, i) => { markers[i].style.left = (100 * e.time_s / d) + "%"; });
    }
    timeline.addEventListener("click", (ev) => {  // click on the bar: seek there
      const r = timeline.getBoundingClientRect();
      video.currentTime = duration() * (ev.clientX - r.left) / r.width;
    });

    // class filters
    const filters = document.getElementById("class-filters");
    for (const c of data.classes) {
      const n = data.events.filter((e) => e.label === c).length;
      const chip = el("label", { class: "chip" });
      const box = el("input", { type: "checkbox", "data-class": c });
      box.checked = true;
      box.addEventListener("change", () => { if (box.checked) hidden.delete(c); else hidden.add(c); refresh(); });
      chip.append(box, el("span", { class: "sw", style: "background:" + data.colors[c] }), document.createTextNode(c + " (" + n + ")"));
      filters.append(chip);
    }
    slider.addEventListener("input", () => { sliderOut.textContent = parseFloat(slider.value).toFixed(2); refresh(); });

    // sortable table
    document.querySelectorAll("#event-table th[data-sort]").forEach((th) => {
      th.addEventListener("click", () => {
        const key = th.dataset.sort;
        sortDir = key === sortKey ? -sortDir : (key === "score" ? -1 : 1);
        sortKey = key;
        document.querySelectorAll("#event-table th").forEach((h) => h.classList.remove("sorted", "asc", "desc"));
        th.classList.add("sorted", sortDir > 0 ? "asc" : "desc");
        refresh();
      });
    });

    function refresh() {
      let shown = 0;
      data.events.forEach((e, i) => { const v = visible(e); markers[i].hidden = !v; if (v) shown++; });
      countEl.textContent = shown + " of " + data.events.length + " events";
      const rows = data.events.map((e, i) => [e, i]).filter(([e]) => visible(e));
      rows.sort(([a, ia], [b, ib]) => {
        let x = a[sortKey], y = b[sortKey];
        if (x === null) x = -Infinity; if (y === null) y = -Infinity;
        return (x < y ? -1 : x > y ? 1 : ia - ib) * sortDir;
      });
      tbody.replaceChildren(...rows.map(([e, i]) => {
        const tr = el("tr", { "data-index": i });
        const cls = el("td"); cls.append(el("span", { class: "sw", style: "background:" + data.colors[e.label] }), document.createTextNode(e.label));
        tr.append(el("td", {}, fmtTime(e.time_s)), el("td", {}, String(e.frame)), cls,
          el("td", {}, e.score === null ? "–" : e.score.toFixed(3)));
        tr.addEventListener("click", () => seek(e));
        return tr;
      }));
    }

    function tick() {
      const d = duration();
      playhead.style.left = (100 * Math.min(video.currentTime / d, 1)) + "%";
      let cur = -1;  // highlight the latest event at or before the playhead
      data.events.forEach((e, i) => { if (e.time_s <= video.currentTime + 1e-3 && visible(e)) cur = i; });
      markers.forEach((m, i) => m.classList.toggle("current", i === cur));
    }
    video.addEventListener("timeupdate", tick);
    video.addEventListener("seeked", tick);
    video.addEventListener("loadedmetadata", () => { placeMarkers(); tick(); });

    // downloads
    const dl = document.getElementById("downloads");
    for (const [kind, name] of Object.entries(job.files)) {
      const li = el("li");
      li.append(el("a", { href: job.urls.files[kind], download: name }, FILE_LABELS[kind] || kind), document.createTextNode(" "),
        el("span", { class: "muted small" }, name));
      dl.append(li);
    }
    placeMarkers(); refresh(); tick();
    root.dataset.ready = "1";
  }

  poll();
})();
