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
    const th = document.getElementById("threshold-input");
    if (th && th.value !== "") data.append("threshold", th.value);
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

// ------------------------------------------------------------------ past jobs (upload page)
(function jobsList() {
  const box = document.getElementById("jobs");
  if (!box) return;
  const rowsEl = document.getElementById("job-rows");
  const search = document.getElementById("job-search");
  const prev = document.getElementById("page-prev");
  const next = document.getElementById("page-next");
  const info = document.getElementById("page-info");
  const countEl = document.getElementById("job-count");
  const none = document.getElementById("no-jobs");
  const size = parseInt(box.dataset.pageSize, 10) || 25;
  let offset = 0, timer = null, lastKey = "";

  const sel = document.getElementById("model-select");
  const desc = document.getElementById("model-description");
  if (sel && desc && sel.tagName === "SELECT") {
    sel.addEventListener("change", () => { desc.textContent = sel.selectedOptions[0].dataset.description || ""; });
  }

  function row(j) {
    const tr = el("tr", { "data-job": j.id });
    const name = el("td"); name.append(el("a", { href: j.urls.page }, j.video_name));
    const st = el("td"); st.append(el("span", { class: "badge " + j.status }, j.status));
    if (j.status === "failed" && j.error) st.append(el("div", { class: "small error job-error" }, j.error));
    if (j.status === "running") st.append(el("div", { class: "small muted" }, j.stage + " " + Math.round(100 * j.progress) + "%" + (j.eta_s !== null ? " · ~" + Math.ceil(j.eta_s) + " s left" : "")));
    const when = el("td", {}, new Date(j.created * 1000).toLocaleString());
    const act = el("td");
    if (j.status !== "running") {
      const del = el("button", { type: "button", class: "link-btn danger", "data-delete": j.id, title: "Delete the job and its files" }, "Delete");
      del.addEventListener("click", async () => {
        if (!window.confirm("Delete '" + j.video_name + "', its results and its edits?")) return;
        const r = await fetch("/api/jobs/" + j.id, { method: "DELETE", headers: { "X-CSRF-Token": CSRF_TOKEN } });
        if (r.ok) refresh(true);
      });
      act.append(del);
    }
    tr.append(name, el("td", {}, j.model_display), st, el("td", {}, j.num_events === null ? "–" : String(j.num_events)), when, act);
    return tr;
  }

  async function refresh(force) {
    let data;
    try {
      const q = new URLSearchParams({ offset: String(offset), limit: String(size), q: search.value.trim() });
      const r = await fetch("/api/jobs?" + q, { cache: "no-store" });
      if (r.status >= 500) throw new Error("HTTP " + r.status);
      data = await r.json();
    } catch (e) { serverReachable(false); return; }
    serverReachable(true);
    const key = JSON.stringify(data.jobs.map((j) => [j.id, j.status, j.progress, j.num_events])) + data.total;
    if (key !== lastKey || force) {
      lastKey = key;
      rowsEl.replaceChildren(...data.jobs.map(row));
    }
    none.hidden = data.total > 0;
    countEl.textContent = data.total + " jobs";
    info.textContent = data.total ? (offset + 1) + "–" + Math.min(offset + size, data.total) + " of " + data.total : "";
    prev.disabled = offset === 0; next.disabled = offset + size >= data.total;
  }
  prev.addEventListener("click", () => { offset = Math.max(0, offset - size); refresh(true); });
  next.addEventListener("click", () => { offset += size; refresh(true); });
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { offset = 0; refresh(true); }, 200); });
  refresh(true);
  setInterval(() => { if (!document.hidden) refresh(false); }, 3000);  // the history refreshes itself
})();
