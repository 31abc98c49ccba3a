// vidmatte console: a client of the daemon's public /v1 API. The API key
// lives in sessionStorage only and goes out as X-Api-Key on every call.
"use strict";

const KEY_STORE = "vidmatte.apiKey";
const $ = (id) => document.getElementById(id);

const state = {
  key: sessionStorage.getItem(KEY_STORE) || "",
  pricing: null,        // answer of /api/pricing
  upload: null,         // answer of POST /v1/uploads
  localURL: "",         // blob URL of the chosen file
  inputs: new Map(),    // job id -> blob URL of its input, for before/after
  jobs: new Map(),      // job id -> job object
  stream: null,         // AbortController of the events stream
  pollTimer: 0,
  viewing: "",          // job id in the viewer
  signedIn: false,
};

// ---------- API ----------

class APIError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

async function api(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  headers.set("X-Api-Key", state.key);
  if (opts.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  if ((opts.method || "GET") === "POST" && !headers.has("Idempotency-Key")) headers.set("Idempotency-Key", newID());
  let resp;
  try {
    resp = await fetch(path, { ...opts, headers });
  } catch (e) {
    throw new APIError(0, "network_error", "The daemon cannot be reached: " + e.message, "");
  }
  return parseAnswer(resp.status, await resp.text(), resp.headers.get("X-Request-Id") || "");
}

function parseAnswer(status, text, requestId) {
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (status >= 200 && status < 300) return body;
  const e = body && body.error;
  if (status === 401 && state.signedIn) setTimeout(() => signOut("Your API key was refused; sign in again."), 0);
  throw new APIError(status, e ? e.code : "http_" + status, e ? e.message : "HTTP " + status, e ? e.request_id : requestId);
}

function newID() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function describe(err) {
  if (!(err instanceof APIError)) return String(err && err.message || err);
  return err.code + ": " + err.message + (err.requestId ? " (request " + err.requestId + ")" : "");
}

// ---------- small helpers ----------

function toast(text, isError) {
  const t = document.createElement("div");
  t.className = "toast" + (isError ? " error" : "");
  t.textContent = text;
  $("toasts").append(t);
  setTimeout(() => t.remove(), isError ? 8000 : 4000);
}

function fmtCredits(c) {
  return (Math.round(c * 1000) / 1000).toLocaleString(undefined, { maximumFractionDigits: 3 });
}
function fmtBytes(n) {
  const u = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}
function fmtDuration(s) {
  if (!isFinite(s)) return "–";
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}
function fmtTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}

// ---------- sign in and navigation ----------

async function signIn(key) {
  state.key = key;
  const summary = await api("/v1/usage/summary?days=30");
  sessionStorage.setItem(KEY_STORE, key);
  state.signedIn = true;
  setBalance(summary.balance);
  $("view-signin").hidden = true;
  $("nav").hidden = false;
  $("account").hidden = false;
  await loadPricing();
  show("create");
  startLive();
}

function signOut(message) {
  stopLive();
  state.signedIn = false;
  sessionStorage.removeItem(KEY_STORE);
  state.key = "";
  state.jobs.clear();
  $("jobs").replaceChildren();
  $("nav").hidden = true;
  $("account").hidden = true;
  for (const v of ["create", "jobs", "usage"]) $("view-" + v).hidden = true;
  $("view-signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("api-key").value = "";
  $("api-key").focus();
}

function show(view) {
  for (const v of ["create", "jobs", "usage"]) $("view-" + v).hidden = v !== view;
  for (const b of document.querySelectorAll(".tab")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  if (view === "usage") loadUsage();
  if (view === "jobs") $("jobs-badge").hidden = true;
  $("main").focus({ preventScroll: true });
}

function setBalance(b) {
  $("balance").textContent = fmtCredits(b);
}

// ---------- pricing and the job form ----------

async function loadPricing() {
  const resp = await fetch("/api/pricing");
  state.pricing = parseAnswer(resp.status, await resp.text(), resp.headers.get("X-Request-Id") || "");
  const sel = $("model");
  sel.replaceChildren();
  for (const m of state.pricing.models) {
    sel.append(el("option", { value: m.id, text: m.name + " · " + fmtCredits(m.credits_per_minute) + " credits/min" }));
  }
  sel.value = state.pricing.default_model || (state.pricing.models[0] || {}).id || "";
  updateForm();
}

function modelInfo() {
  return state.pricing && state.pricing.models.find((m) => m.id === $("model").value);
}

function bgChoice() {
  return document.querySelector('input[name="bg"]:checked').value;
}

function background() {
  switch (bgChoice()) {
    case "color": return { type: "color", color: $("bg-color").value };
    case "image": return { type: "image", image_url: $("bg-image").value.trim() };
    case "blur": return { type: "blur" };
  }
  return { type: "transparent" };
}

// The cost shown is the API's rule: ceil(duration) × price / 60.
function jobCost() {
  const m = modelInfo();
  if (!m || !state.upload) return null;
  const secs = Math.max(1, Math.ceil(state.upload.duration_seconds));
  return { credits: secs * m.credits_per_minute / 60, secs, price: m.credits_per_minute };
}

function updateForm() {
  const m = modelInfo();
  $("model-help").textContent = m ? (m.description || "") + (m.aliases && m.aliases.length ? " Aliases: " + m.aliases.join(", ") + "." : "") : "";
  const choice = bgChoice();
  $("bg-color-row").hidden = choice !== "color";
  $("bg-image-row").hidden = choice !== "image";
  $("bg-color-text").textContent = $("bg-color").value;
  const noAlpha = $("format").value === "mp4" && choice === "transparent";
  $("bg-warning").hidden = !noAlpha;
  const c = jobCost();
  if (c) {
    $("cost").textContent = fmtCredits(c.credits) + " credits";
    $("cost-detail").textContent = fmtCredits(c.price) + " credits/min × " + c.secs + " s";
  } else {
    $("cost").textContent = "–";
    $("cost-detail").textContent = state.upload ? "" : "upload a video first";
  }
  const imageMissing = choice === "image" && !$("bg-image").value.trim();
  $("start").disabled = !state.upload || !m || noAlpha || imageMissing;
}

async function startJob(ev) {
  ev.preventDefault();
  $("job-error").textContent = "";
  const btn = $("start");
  btn.disabled = true;
  try {
    const job = await api("/v1/jobs", {
      method: "POST",
      body: JSON.stringify({
        video_url: state.upload.video_url,
        model: $("model").value,
        output_format: $("format").value,
        background: background(),
        metadata: { filename: state.upload.filename.slice(0, 200) },
      }),
    });
    if (state.localURL) state.inputs.set(job.id, state.localURL);
    upsertJob(job);
    toast("Job " + job.id + " queued");
    refreshBalance();
    show("jobs");
  } catch (e) {
    $("job-error").textContent = describe(e);
  } finally {
    updateForm();
  }
}

// ---------- upload ----------

function chooseFile(file) {
  if (!file) return;
  state.upload = null;
  updateForm();
  $("upload-info").hidden = true;
  $("upload-status").hidden = false;
  $("upload-name").textContent = file.name + " · " + fmtBytes(file.size);
  $("upload-error").textContent = "";
  setUploadProgress(0);
  state.localURL = URL.createObjectURL(file);
  $("input-preview").src = state.localURL;

  const form = new FormData();
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/uploads");
  xhr.setRequestHeader("X-Api-Key", state.key);
  xhr.setRequestHeader("Idempotency-Key", newID());
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) setUploadProgress(Math.round(e.loaded * 100 / e.total));
  });
  xhr.addEventListener("load", () => {
    try {
      const up = parseAnswer(xhr.status, xhr.responseText, xhr.getResponseHeader("X-Request-Id") || "");
      state.upload = up;
      setUploadProgress(100);
      $("upload-percent").textContent = "uploaded";
      $("info-duration").textContent = fmtDuration(up.duration_seconds);
      $("info-size").textContent = fmtBytes(up.size);
      $("info-frame").textContent = up.width + "×" + up.height + " @ " + (Math.round(up.fps * 100) / 100) + " fps";
      $("info-audio").textContent = up.has_audio ? "yes" : "no";
      $("upload-info").hidden = false;
      updateForm();
    } catch (e) {
      $("upload-error").textContent = describe(e);
    }
  });
  xhr.addEventListener("error", () => { $("upload-error").textContent = "network_error: the upload did not reach the daemon"; });
  xhr.send(form);
}

function setUploadProgress(p) {
  $("upload-progress").value = p;
  $("upload-percent").textContent = p + "%";
}

function bindDropzone() {
  const zone = $("dropzone");
  $("file-input").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  for (const t of ["dragenter", "dragover"]) {
    zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const t of ["dragleave", "drop"]) {
    zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (e) => chooseFile(e.dataTransfer.files[0]));
  // Dropping outside the zone must not navigate away from the console.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

// ---------- jobs, live ----------

const TERMINAL = new Set(["completed", "failed", "canceled"]);

function upsertJob(job) {
  const old = state.jobs.get(job.id);
  // Events may come again (at least once) or out of order with a list:
  // never move a job backwards.
  if (old && TERMINAL.has(old.status) && !TERMINAL.has(job.status)) return;
  if (old && old.status === job.status && job.progress < old.progress) return;
  state.jobs.set(job.id, job);
  renderJob(job);
  if (old && old.status !== job.status && TERMINAL.has(job.status)) {
    toast("Job " + job.id + " " + job.status, job.status === "failed");
    refreshBalance();
    if ($("view-jobs").hidden) {
      const b = $("jobs-badge");
      b.textContent = String((parseInt(b.textContent, 10) || 0) + 1);
      b.hidden = false;
    }
  }
  if (state.viewing === job.id) openViewer(job.id);
  $("jobs-empty").hidden = state.jobs.size > 0;
}

function renderJob(job) {
  const id = "job-" + job.id;
  const item = el("li", { id, class: "job", "data-status": job.status },
    el("div", { class: "stack" },
      el("div", { class: "row" },
        el("span", { class: "status " + job.status, text: job.status }),
        el("span", { class: "id", text: job.id }),
        job.metadata && job.metadata.filename ? el("span", { class: "ellipsis", text: job.metadata.filename }) : null),
      el("div", { class: "meta" },
        el("span", { text: job.model }),
        el("span", { text: job.output_format }),
        el("span", { text: job.background && job.background.type }),
        el("span", { text: fmtCredits(job.credits) + " credits (" + job.billing_status + ")" }),
        el("span", { text: fmtTime(job.created_at) }))),
    el("div", { class: "actions" },
      job.status === "completed" && job.output_url
        ? el("button", { type: "button", class: "btn primary small", text: "View", "aria-label": "View the result of " + job.id, onclick: () => openViewer(job.id) }) : null,
      job.status === "queued" || job.status === "processing"
        ? el("button", { type: "button", class: "btn danger small", text: "Cancel", "aria-label": "Cancel " + job.id, onclick: () => cancelJob(job.id) }) : null),
    job.status === "processing" || job.status === "queued"
      ? el("progress", { max: "100", value: String(job.progress), "aria-label": "Progress of " + job.id + ": " + job.progress + "%" }) : null,
    job.error ? el("p", { class: "job-error", role: "alert" }, el("strong", { text: job.error.code }), ": " + job.error.message) : null);
  const old = $(id);
  if (old) { old.replaceWith(item); return; }
  // Newest first.
  const list = $("jobs");
  const after = Array.from(list.children).find((c) => {
    const j = state.jobs.get(c.id.slice(4));
    return j && j.created_at < job.created_at;
  });
  list.insertBefore(item, after || null);
}

async function cancelJob(id) {
  try {
    upsertJob(await api("/v1/jobs/" + encodeURIComponent(id) + "/cancel", { method: "POST" }));
  } catch (e) {
    toast("Cancel " + id + ": " + describe(e), true);
  }
}

async function loadJobs() {
  const list = await api("/v1/jobs?limit=50");
  for (const j of list.jobs.slice().reverse()) upsertJob(j);
  $("jobs-empty").hidden = state.jobs.size > 0;
}

function setLive(text, on) {
  $("live").textContent = text;
  $("live").classList.toggle("on", !!on);
}

// The stream of job changes is read with fetch, not EventSource, which
// cannot send X-Api-Key. When it breaks, the console reconnects with
// backoff (resuming with Last-Event-ID) and polls the list meanwhile.
function startLive() {
  stopLive();
  const ctl = new AbortController();
  state.stream = ctl;
  let lastID = "";
  let delay = 1000;
  const run = async () => {
    while (!ctl.signal.aborted) {
      try {
        const headers = { "X-Api-Key": state.key, Accept: "text/event-stream" };
        if (lastID) headers["Last-Event-ID"] = lastID;
        const resp = await fetch("/v1/jobs/events", { headers, signal: ctl.signal, cache: "no-store" });
        if (!resp.ok || !resp.body) {
          parseAnswer(resp.status, await resp.text(), resp.headers.get("X-Request-Id") || "");
          throw new Error("no stream");
        }
        stopPolling();
        await loadJobs();
        setLive("live", true);
        delay = 1000;
        await readEvents(resp.body, (ev) => {
          if (ev.id) lastID = ev.id;
          if (ev.event === "job") upsertJob(JSON.parse(ev.data));
          if (ev.event === "error") throw new Error(ev.data);
        });
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (e instanceof APIError && e.status === 401) return;
      }
      if (ctl.signal.aborted) return;
      setLive("reconnecting… (polling)", false);
      startPolling();
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30000);
    }
  };
  run();
}

async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = { id: "", event: "message", data: "" };
      let any = false;
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        const val = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
        if (field === "id") ev.id = val;
        else if (field === "event") { ev.event = val; any = true; }
        else if (field === "data") { ev.data += (ev.data ? "\n" : "") + val; any = true; }
      }
      if (any) onEvent(ev);
    }
  }
}

// Polling with backoff while the stream is down.
function startPolling() {
  if (state.pollTimer) return;
  let delay = 2000;
  const tick = async () => {
    try { await loadJobs(); delay = 2000; } catch (_) { delay = Math.min(delay * 2, 60000); }
    if (state.pollTimer) state.pollTimer = setTimeout(tick, delay);
  };
  state.pollTimer = setTimeout(tick, 0);
}

function stopPolling() {
  clearTimeout(state.pollTimer);
  state.pollTimer = 0;
}

function stopLive() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  stopPolling();
}

async function refreshBalance() {
  try { setBalance((await api("/v1/usage/summary?days=1")).balance); } catch (_) { /* shown elsewhere */ }
}

// ---------- result viewer ----------

const VIDEO_FORMATS = new Set(["webm", "mp4", "mask"]);
const IMAGE_FORMATS = new Set(["webp", "gif"]);

function openViewer(id) {
  const job = state.jobs.get(id);
  if (!job || job.status !== "completed" || !job.output_url) return;
  const first = state.viewing !== id;
  state.viewing = id;
  const viewer = $("viewer");
  viewer.hidden = false;
  $("viewer-title").textContent = "Result of " + id;
  $("download").href = job.output_url;
  const video = $("result-video");
  const img = $("result-image");
  const playable = VIDEO_FORMATS.has(job.output_format);
  const image = IMAGE_FORMATS.has(job.output_format);
  video.hidden = !playable;
  img.hidden = !image;
  if (first) {
    if (playable) { video.src = job.output_url; video.play().catch(() => {}); }
    if (image) img.src = job.output_url;
    const input = state.inputs.get(id);
    $("compare-input").src = input || "";
    $("compare-note").textContent = input ? "Left: the original; right: the result." :
      "The original is only at hand in the browser tab that uploaded it.";
    viewer.focus();
    viewer.scrollIntoView({ behavior: "smooth", block: "start" });
  }
  $("viewer-note").textContent = playable || image ? "" :
    "Browsers cannot play " + job.output_format + " outputs: download it.";
  setStage();
}

function closeViewer() {
  state.viewing = "";
  $("viewer").hidden = true;
  $("result-video").removeAttribute("src");
  $("result-video").load();
  $("compare-input").removeAttribute("src");
}

function setStage() {
  const mode = document.querySelector('input[name="stage"]:checked').value;
  const stage = $("stage");
  stage.classList.toggle("checker", mode !== "color");
  stage.style.setProperty("--stage-color", $("stage-color").value);
  $("stage-color-wrap").hidden = mode !== "color";
  const comparing = mode === "compare" && !!state.inputs.get(state.viewing);
  $("compare").hidden = !comparing;
  stage.classList.toggle("comparing", comparing);
  $("compare-controls").hidden = mode !== "compare";
  stage.style.setProperty("--split", $("compare-slider").value + "%");
  if (comparing) syncCompare();
}

function syncCompare() {
  const a = $("result-video"), b = $("compare-input");
  if (Math.abs(a.currentTime - b.currentTime) > 0.1) b.currentTime = a.currentTime;
  if (a.paused) b.pause(); else b.play().catch(() => {});
}

// ---------- usage ----------

async function loadUsage() {
  const days = $("usage-days").value;
  try {
    const [sum, ev] = await Promise.all([api("/v1/usage/summary?days=" + days), api("/v1/usage/events?limit=25")]);
    setBalance(sum.balance);
    $("u-balance").textContent = fmtCredits(sum.balance);
    $("u-reserved").textContent = fmtCredits(sum.reserved);
    $("u-credits").textContent = fmtCredits(sum.totals.credits);
    $("u-jobs").textContent = String(sum.totals.jobs);
    drawChart(sum.daily);
    const rows = (ev.events || []).map((e) => el("tr", {},
      el("td", { text: fmtTime(e.created_at) }), el("td", { text: e.type }), el("td", { text: e.job_id || "" }),
      el("td", { text: e.model || "" }), el("td", { class: "num", text: e.seconds ? String(e.seconds) : "" }),
      el("td", { class: "num", text: fmtCredits(e.credits) })));
    $("events").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No events yet." }))]));
  } catch (e) {
    toast("Usage: " + describe(e), true);
  }
}

// An inline SVG bar chart of credits per day, with a text alternative.
function drawChart(daily) {
  const NS = "http://www.w3.org/2000/svg";
  const W = 720, H = 220, L = 40, B = 24, T = 10;
  const max = Math.max(1e-9, ...daily.map((d) => d.credits));
  const bw = (W - L - 8) / Math.max(1, daily.length);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("role", "img");
  const total = daily.reduce((s, d) => s + d.credits, 0);
  svg.setAttribute("aria-label", "Credits per day over " + daily.length + " days, " + fmtCredits(total) + " in all; most in one day " + fmtCredits(max > 1e-9 ? max : 0));
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  add("line", { x1: L, y1: H - B, x2: W, y2: H - B, class: "axis" });
  add("text", { x: L - 6, y: T + 8, "text-anchor": "end" }, fmtCredits(max > 1e-9 ? max : 0));
  add("text", { x: L - 6, y: H - B, "text-anchor": "end" }, "0");
  daily.forEach((d, i) => {
    const h = (H - B - T) * d.credits / max;
    const r = add("rect", { x: L + i * bw + 1, y: H - B - h, width: Math.max(1, bw - 2), height: h, class: "bar", rx: 2 });
    const t = document.createElementNS(NS, "title");
    t.textContent = d.date + ": " + fmtCredits(d.credits) + " credits, " + d.jobs + " jobs";
    r.append(t);
    if (i === 0 || i === daily.length - 1 || (daily.length > 10 && i % Math.ceil(daily.length / 6) === 0)) {
      add("text", { x: L + i * bw + bw / 2, y: H - 6, "text-anchor": "middle" }, d.date.slice(5));
    }
  });
  $("chart").replaceChildren(svg);
}

// ---------- wiring ----------

function init() {
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    $("signin-error").textContent = "";
    if (!key) { $("signin-error").textContent = "Paste an API key."; return; }
    $("signin-button").disabled = true;
    try {
      await signIn(key);
    } catch (err) {
      state.key = "";
      $("signin-error").textContent = err.status === 401 ? "This key was refused (invalid_api_key)." : describe(err);
    } finally {
      $("signin-button").disabled = false;
    }
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => show(b.dataset.view));
  bindDropzone();
  for (const id of ["model", "format", "bg-color", "bg-image"]) {
    $(id).addEventListener("input", updateForm);
    $(id).addEventListener("change", updateForm);
  }
  for (const r of document.querySelectorAll('input[name="bg"]')) r.addEventListener("change", updateForm);
  $("job-form").addEventListener("submit", startJob);
  for (const r of document.querySelectorAll('input[name="stage"]')) r.addEventListener("change", setStage);
  $("stage-color").addEventListener("input", setStage);
  $("compare-slider").addEventListener("input", setStage);
  for (const t of ["play", "pause", "seeked"]) $("result-video").addEventListener(t, () => { if (!$("compare").hidden) syncCompare(); });
  $("viewer-close").addEventListener("click", closeViewer);
  $("viewer").addEventListener("keydown", (e) => { if (e.key === "Escape") closeViewer(); });
  $("usage-days").addEventListener("change", loadUsage);
  if (state.key) {
    signIn(state.key).catch((e) => signOut(e.status === 401 ? "Your API key was refused; sign in again." : describe(e)));
  } else {
    $("api-key").focus();
  }
}

init();
