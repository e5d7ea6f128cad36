// Forenscope web UI: plain JS, no framework, no CDN. Every string from the server goes through
// textContent (never innerHTML): reports carry attacker-controlled metadata.
"use strict";
const $ = (id) => document.getElementById(id);
const LABELS = {
  real: "Real photo", ai_generated: "AI-generated", tampered: "Tampered",
  inconclusive: "Inconclusive (needs review)",
};
const LEANING = { real: "a real photo", ai_generated: "AI-generated", tampered: "tampered" };
// The report's heatmap colours (report/overlays.py, inferno-like), low to high.
const INFERNO = ["#000004", "#160b39", "#420a68", "#6a176e", "#932667", "#bc3754", "#dd513a",
  "#f37819", "#fca50a", "#f6d746", "#fcffa4"];
const TOOLS = {
  ela: { title: "Error level analysis (ELA)", path: "ela.png" },
  noise: { title: "Noise residual", path: "noise.png" },
  gradient: { title: "Luminance gradient", path: "gradient.png" },
};
const TITLES = { none: "No layer", fused: "Fused map (all experts)", mask: "Fused mask outline" };
const MAX_ZOOM_PCT = 800;
const state = {
  current: null, nav: 0, offset: 0, urls: [], layerUrls: {}, fullUrl: null, fullLoading: null,
  view: { z: 1, cx: 0.5, cy: 0.5 }, loupe: false, pending: null, search: "", stagedUrls: [],
  staged: { maps: {}, layer: "fused", loading: {}, urls: {} },  // the running item's maps (blob URLs by name)
};

function token() { return sessionStorage.getItem("forenscope-token") || ""; }

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", "Bearer " + token());
  const resp = await fetch(path, { ...options, headers });
  if (resp.status === 401) { $("token-form").hidden = false; throw new Error("an access token is required"); }
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail || detail; } catch (e) { /* not JSON */ }
    const err = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    err.status = resp.status;
    throw err;
  }
  return resp;
}

async function blobUrl(path, keep) {
  const resp = await api(path);
  const url = URL.createObjectURL(await resp.blob());
  (keep || state.urls).push(url);
  return { url, resp };
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function svgEl(tag, attrs) {
  const node = document.createElementNS($("marks").namespaceURI, tag);  // the page's own SVG
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function verdictText(v) {
  let text = (LABELS[v.label] || v.label);
  if (v.label === "inconclusive" && v.leaning) text += ": leaning " + (LEANING[v.leaning] || v.leaning);
  return text + " \u00b7 " + Math.round(v.probability * 100) + "%";
}

function displayName(a) { return a.filename || (a.url ? a.url.split("/").pop() : "") || a.sha256.slice(0, 12); }

// --- progress, elapsed time and cancel ----------------------------------------------------------

function startProgress(text, onCancel) {
  stopProgress();
  const started = performance.now();
  const tick = () => { $("elapsed").textContent = ((performance.now() - started) / 1000).toFixed(0) + " s elapsed"; };
  tick();
  state.pending = { timer: setInterval(tick, 500), onCancel };
  $("progress-text").textContent = text;
  $("progress-bar").removeAttribute("value");
  $("progress").hidden = false;
}

function progressValue(done, total) {
  $("progress-bar").max = total;
  $("progress-bar").value = done;
}

function stopProgress() {
  if (state.pending) clearInterval(state.pending.timer);
  state.pending = null;
  $("progress").hidden = true;
}

// --- uploads: one file, a batch, a URL ----------------------------------------------------------

async function sha256Hex(file) {
  if (!(window.crypto && crypto.subtle)) return null;  // only in secure contexts (localhost, https)
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function existingEntry(file) {
  // Without crypto.subtle (plain http on a LAN) the server answers instead: jobs sent with
  // "reuse" come back done with the earlier analysis (see runJob).
  try {
    const sha = await sha256Hex(file);
    if (!sha) return null;
    const page = await (await api("/v1/search?sha256=" + sha + "&limit=1")).json();
    return page.items[0] || null;
  } catch (err) { return null; }
}

function handleFiles(list) {
  const files = Array.from(list || []).filter((f) => f && f.size >= 0);
  if (files.length === 1) upload(files[0]);
  else if (files.length > 1) uploadBatch(files);
}

async function upload(file) {
  const nav = ++state.nav;  // this request's result is shown only if nothing newer was asked for
  $("batch").hidden = true;
  setStatus("");
  const found = await existingEntry(file);
  if (nav !== state.nav) return;
  if (found) {
    setStatus("Already analysed: opened the existing entry for " + file.name + ".");
    go(found.id);
    return;
  }
  const form = new FormData();
  form.append("files", file, file.name);
  form.append("reuse", "true");
  stageFirstView(file, nav);
  const opened = await runJob(nav, form, file.name);
  // An opened result hides the staged view itself once it is drawn (show), so nothing blinks.
  if (!opened && $("staged").dataset.nav === String(nav)) hideStaged();  // not a newer upload's
}

// One upload as a job: its stages (metadata, each expert, the verdict, the maps) show as the
// server reports them, and cancel stops the analysis on the server (DELETE /v1/jobs/{id}).
async function runJob(nav, form, name) {
  setStatus("");
  const run = { job: null, cancelled: false };
  startProgress("Uploading " + name + " \u2026", () => cancelJob(run, name));
  try {
    const job = await (await api("/v1/jobs", { method: "POST", body: form })).json();
    run.job = job.id;
    $("progress").dataset.job = job.id;
    if (run.cancelled) { await cancelJob(run, name); return; }
    let item = job.items[0];
    if (item.status === "done" && item.reused) {
      if (nav === state.nav) {
        stopProgress();
        setStatus("Already analysed: opened the existing entry for " + name + ".");
        go(item.analysis_id);
      }
      return;
    }
    while (item.status === "queued" || item.status === "running") {
      if (nav === state.nav && !run.cancelled) showStages(item, name);
      // Once the verdict is in, the maps follow within a second or two: look more often then.
      const soon = item.stages && item.stages.verdict;
      await new Promise((r) => setTimeout(r, soon ? 100 : 300));
      if (run.cancelled) return;
      item = (await (await api("/v1/jobs/" + job.id)).json()).items[0];
    }
    if (run.cancelled) return;
    if (item.status === "done") {
      if (nav === state.nav) {
        stopProgress();
        // The stored analysis opens on the layer the staged view was drawing.
        const layer = state.staged.layer;
        $("staged").dataset.done = "1";
        if (layer !== "fused" && state.staged.maps[layer]) location.hash = "#/a/" + item.analysis_id + "?layer=" + encodeURIComponent(layer);
        else go(item.analysis_id);
        loadHistory(true);
        return true;
      }
      setStatus(name + " finished in the background; it is in the history.");
      loadHistory(true);
    } else if (nav === state.nav) {
      stopProgress();
      setStatus(item.status === "cancelled" ? "Cancelled " + name + "."
        : "Analysis failed: " + (item.error || item.status), item.status !== "cancelled");
    }
  } catch (err) {
    if (nav === state.nav && !run.cancelled) { stopProgress(); setStatus("Analysis failed: " + err.message, true); }
  }
}

async function cancelJob(run, name) {
  run.cancelled = true;
  hideStaged();
  setStatus("Cancelled " + name + ".");
  if (!run.job) return;  // the upload is still on its way: cancelled once it is a job
  try {
    const job = await (await api("/v1/jobs/" + run.job, { method: "DELETE" })).json();
    // A server analysing in its own threads (isolation "thread") cannot stop one mid-way.
    setStatus("Cancelled " + name + (job.status === "cancelled" ? ": the server stopped its analysis."
      : ": the server drops its result when it finishes."));
  } catch (err) { setStatus("Cancelled " + name + " here, but the server said: " + err.message, true); }
}

function showStages(item, name) {
  const st = item.stages;
  if (!st) {
    $("progress-text").textContent = "Waiting for an analysis slot for " + name + " \u2026";
    return;
  }
  const done = st.experts.length, total = st.experts_total;
  $("progress-text").textContent = total ? "Analysing " + name + ": " + done + " of " + total + " experts finished"
    : "Analysing " + name + " \u2026";
  if (total) progressValue(done, total + 1);  // the last step: the verdict and the maps
  $("stage-experts-text").textContent = total ? done + " of " + total + " experts finished:" : "Experts running \u2026";
  $("stage-experts").replaceChildren(...st.experts.map((e) => {
    const word = e.failed ? "failed" : e.abstained ? "abstained" : Math.round(e.score * 100) + "%";
    const li = el("li", e.expert + ": " + word);
    li.dataset.expert = e.expert;
    return li;
  }));
  const verdict = $("stage-verdict");
  verdict.textContent = st.verdict ? "Verdict: " + verdictText(st.verdict) : "Verdict pending (after every expert)";
  verdict.className = st.verdict ? "" : "pending";
  const maps = $("stage-maps");
  maps.textContent = st.maps.length ? "Maps drawn: " + st.maps.length + " (the full view opens when the report is written)" : "Maps pending";
  maps.className = st.maps.length ? "" : "pending";
  showStagedMaps(st.overlays || {});
  if (st.metadata && $("staged-meta").dataset.filled !== "1") {
    $("staged-meta").replaceChildren();
    $("staged-meta").dataset.filled = "1";
    renderMeta(null, $("staged-meta"), st.metadata);
  }
}

// The maps the worker has written so far, drawn over the picture as they arrive (the fused map
// first, the others listed to pick from); each is fetched once, with the token if one is set.
function showStagedMaps(urls) {
  const names = Object.keys(urls);
  const list = $("staged-maps");
  state.staged.urls = urls;
  const shown = new Set(Array.from(list.querySelectorAll("button"), (b) => b.dataset.map));
  for (const n of names.filter((x) => !shown.has(x))) {  // appended: a button keeps its focus
    const b = el("button", TITLES[n] || "Expert: " + n);
    b.type = "button";
    b.dataset.map = n;
    b.addEventListener("click", () => { state.staged.layer = n; drawStagedMap(); });
    const li = el("li");
    li.append(b);
    list.append(li);
  }
  if (!urls[state.staged.layer] && names.length) state.staged.layer = names[0];
  drawStagedMap();
}

async function drawStagedMap() {
  const name = state.staged.layer, staged = state.staged, urls = staged.urls || {};
  for (const b of $("staged-maps").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.map === name));
  if (!urls[name]) return;
  if (!staged.maps[name] && !staged.loading[name]) {
    staged.loading[name] = true;
    try {
      staged.maps[name] = (await blobUrl(urls[name], state.stagedUrls)).url;
    } catch (err) {
      return;  // done a moment ago (the item's maps now come with its analysis) or cancelled
    } finally {
      staged.loading[name] = false;
    }
  }
  if (staged !== state.staged || staged.layer !== name || !staged.maps[name]) return;
  const img = $("staged-layer");
  if (img.dataset.map !== name) {
    img.src = staged.maps[name];
    img.dataset.map = name;
    img.alt = (TITLES[name] || "Map of the expert " + name) + ", drawn over the picture";
  }
  img.hidden = false;
}

function hideStaged() {
  $("staged").hidden = true;
  revoke(state.stagedUrls);
  state.staged = { maps: {}, layer: "fused", loading: {}, urls: {} };
  $("staged-maps").replaceChildren();
  $("staged-layer").hidden = true;
  $("staged-layer").removeAttribute("src");
  delete $("staged-layer").dataset.map;
}

// The stored analysis of the staged upload is drawn: the staged view gives way to it.
function stagedGivesWay() {
  if ($("staged").dataset.done === "1") hideStaged();
}

async function stageFirstView(file, nav) {
  // The analysis takes seconds to a minute: meanwhile the picture (the browser's own copy of the
  // file) and its metadata (provenance first: C2PA, EXIF, XMP), read by the API in a second.
  hideStaged();
  const box = $("staged");
  box.dataset.nav = String(nav);
  box.dataset.done = "";
  $("staged-meta").dataset.filled = "";
  $("stage-experts").replaceChildren();
  $("stage-experts-text").textContent = "Waiting for an analysis slot \u2026";
  for (const [id, text] of [["stage-verdict", "Verdict pending"], ["stage-maps", "Maps pending"]]) {
    $(id).textContent = text;
    $(id).className = "pending";
  }
  const url = URL.createObjectURL(file);
  state.stagedUrls.push(url);
  $("staged-img").src = url;
  $("staged-img").alt = file.name + ", being analysed";
  $("staged-img").hidden = file.type.startsWith("video/");  // a clip: its report shows frames
  $("staged-meta").replaceChildren(el("p", "Reading the metadata \u2026", "muted"));
  box.hidden = false;
  try {
    const form = new FormData();
    form.append("file", file, file.name);
    const m = await (await api("/v1/inspect/metadata", { method: "POST", body: form })).json();
    if (box.dataset.nav !== String(nav) || box.hidden || $("staged-meta").dataset.filled === "1") return;
    $("staged-meta").replaceChildren();
    $("staged-meta").dataset.filled = "1";
    await renderMeta(null, $("staged-meta"), m);
  } catch (err) {
    if (box.dataset.nav === String(nav) && $("staged-meta").dataset.filled !== "1") {
      $("staged-meta").replaceChildren(el("p", "Metadata unavailable: " + err.message, "muted"));
    }
  }
}

async function analyseUrl(url) {
  const nav = ++state.nav;
  const body = JSON.stringify({ url });
  await runAnalysis(nav, (signal) => api("/v1/analyze", {
    method: "POST", body, signal, headers: { "Content-Type": "application/json" } }), url);
}

async function runAnalysis(nav, request, name) {
  const controller = new AbortController();
  setStatus("");
  startProgress("Analysing " + name + " \u2026", () => controller.abort());
  try {
    const analysis = await (await request(controller.signal)).json();
    if (nav === state.nav) {
      stopProgress();
      go(analysis.id, analysis);
    } else {
      setStatus(name + " finished in the background; it is in the history.");
    }
    loadHistory(true);
  } catch (err) {
    if (nav === state.nav) stopProgress();
    if (err.name === "AbortError") setStatus("Cancelled " + name + ". The server may still finish it; it would then appear in the history.");
    else if (nav === state.nav) setStatus("Analysis failed: " + err.message, true);
  }
}

async function uploadBatch(files) {
  setStatus("");
  const rows = files.map((f) => batchRow(f.name));
  $("batch").replaceChildren(...rows.map((r) => r.li));
  $("batch").hidden = false;
  const fresh = [];
  for (let i = 0; i < files.length; i++) {
    const found = await existingEntry(files[i]);
    if (found) setRow(rows[i], "done", "already analysed", found.id);
    else fresh.push(i);
  }
  if (!fresh.length) { setStatus("Every file was analysed before."); return; }
  const form = new FormData();
  for (const i of fresh) form.append("files", files[i], files[i].name);
  form.append("reuse", "true");
  let stopped = false, jobId = null;
  startProgress("Analysing " + fresh.length + " files \u2026", () => {
    stopped = true;
    if (jobId) api("/v1/jobs/" + jobId, { method: "DELETE" }).catch(() => {});
  });
  progressValue(0, fresh.length);
  try {
    const job = await (await api("/v1/jobs", { method: "POST", body: form })).json();
    jobId = job.id;
    if (stopped) api("/v1/jobs/" + jobId, { method: "DELETE" }).catch(() => {});
    let status = job;
    while (!stopped) {
      status.items.forEach((item, k) => setRow(rows[fresh[k]], item.status, item.reused ? "already analysed" : item.error, item.analysis_id));
      progressValue(status.done + status.failed, status.total);
      $("progress-text").textContent = (status.done + status.failed) + " of " + status.total + " files analysed";
      if (status.status === "done") break;
      await new Promise((r) => setTimeout(r, 400));
      status = await (await api("/v1/jobs/" + job.id)).json();
    }
    stopProgress();
    if (stopped) {
      setStatus("Cancelled the batch: the files not analysed yet were dropped on the server.");
      for (const k of fresh) if (!rows[k].done) setRow(rows[k], "cancelled");
    } else setStatus("Batch finished: " + status.done + " analysed, " + status.failed + " failed.");
    loadHistory(true);
  } catch (err) {
    stopProgress();
    setStatus("Batch failed: " + err.message, true);
  }
}

function batchRow(name) {
  const li = el("li");
  const bar = el("progress");
  bar.setAttribute("aria-label", "Progress of " + name);
  const status = el("span", "queued", "b-status");
  li.append(el("span", name, "b-name"), bar, status);
  return { li, bar, status, done: false };
}

function setRow(row, status, note, id) {
  row.done = status === "done" || status === "failed";
  row.status.replaceChildren();
  if (status === "done" && id) {
    const link = el("a", "Open" + (note ? " (" + note + ")" : ""));
    link.href = "#/a/" + id;
    row.status.append(link);
  } else {
    row.status.textContent = status + (note ? ": " + note : "");
  }
  if (row.done) { row.bar.max = 1; row.bar.value = 1; } else if (status === "queued") row.bar.value = 0;
  else row.bar.removeAttribute("value");
  row.li.dataset.status = status;
}

// --- permalinks ---------------------------------------------------------------------------------

function parseHash() {
  const m = /^#\/a\/([0-9a-f]{32})(?:\?(.*))?$/.exec(location.hash);
  if (!m) return null;
  return { id: m[1], params: new URLSearchParams(m[2] || "") };
}

function go(id, analysis) {
  const target = "#/a/" + id;
  if (location.hash.startsWith(target)) { openAnalysis(id, analysis); return; }
  state.prefetched = analysis ? { id, analysis } : null;
  location.hash = target;  // hashchange opens it: back and forward work too
}

function saveViewInUrl() {
  const a = state.current;
  if (!a) return;
  const params = new URLSearchParams();
  params.set("layer", $("layer").value);
  if ($("mode").value !== "overlay") params.set("mode", $("mode").value);
  if ($("layer").value === "ela") params.set("q", $("ela-quality").value);
  history.replaceState(null, "", "#/a/" + a.id + "?" + params.toString());
}

async function onHash() {
  const parsed = parseHash();
  if (!parsed) return;
  if (state.current && state.current.id === parsed.id) return;
  const pre = state.prefetched && state.prefetched.id === parsed.id ? state.prefetched.analysis : null;
  state.prefetched = null;
  await openAnalysis(parsed.id, pre, parsed.params);
}

async function openAnalysis(id, analysis, params) {
  const nav = ++state.nav;
  try {
    const a = analysis || await (await api("/v1/analyses/" + id)).json();
    if (nav !== state.nav) return;
    await show(a, nav, params || new URLSearchParams());
  } catch (err) {
    if (nav === state.nav) setStatus("Could not load the analysis: " + err.message, true);
  }
}

// --- showing one analysis -----------------------------------------------------------------------

function revoke(list) { list.forEach((u) => URL.revokeObjectURL(u)); list.length = 0; }

async function show(a, nav, params) {
  revoke(state.urls);
  state.layerUrls = {};
  state.fullUrl = null;
  state.fullLoading = null;
  delete $("viewer").dataset.full;
  state.current = a;
  const v = a.report.verdict;
  const verdict = $("verdict");
  verdict.textContent = verdictText(v);
  verdict.className = "verdict label-" + (v.decided_by === "none" ? "none" : v.label);
  verdict.dataset.label = v.label;
  $("verdict-note").textContent = "decided by " + v.decided_by +
    (v.calibrated ? " (calibrated)" : " (not calibrated)") + " \u00b7 " + displayName(a);
  $("conflicts").hidden = !(v.conflicts && v.conflicts.length);
  $("conflicts").textContent = (v.conflicts || []).map((c) => "Conflicting evidence: " + c).join(" ");
  $("explanation").textContent = a.report.explanation || "";
  $("clip").hidden = a.kind !== "clip";
  $("image-result").hidden = a.kind === "clip";
  if (a.kind === "clip") { await showClip(a, nav); return; }
  $("clip-report").removeAttribute("src");
  fillList($("regions"), a.report.regions.map((r) => [r.description, r.experts.join(", ")]), "No suspicious region.");
  const pairs = copyMovePairs(a);
  $("pairs-box").hidden = !pairs.length;
  fillList($("pairs"), pairs.map((p) => ["Pair " + p.n + ": the area at " + boxWords(p.a) + " reappears at " +
    boxWords(p.b) + " (" + p.cells + " matching blocks); one of the two is a copy.", "copy_move"]), "");
  const evidence = a.report.key_evidence.length ? a.report.key_evidence :
    a.report.experts.flatMap((e) => e.evidence.slice(0, 2));
  fillList($("evidence"), evidence.map((e) => [e.summary, e.kind]), "No evidence items.");
  const faces = a.report.faces || [];
  $("faces-box").hidden = !faces.length;
  fillList($("faces"), faces.flatMap((f) => f.checks.map((c) => [
    "face " + f.index + ": " + c.expert + " " +
      (c.score === null ? "abstained (" + (c.abstain_reason || "no reason") + ")" : c.score.toFixed(2)),
    c.evidence.length ? c.evidence[0].summary : "",
  ])), "No face check ran.");
  for (const box of ["meta-box", "jpeg-box"]) { $(box).open = false; $(box).dataset.loaded = ""; }
  $("meta").replaceChildren();
  $("jpeg").replaceChildren();
  const alt = "The analysed image " + displayName(a) + ". Verdict: " + verdictText(v) + ".";
  const { url } = await blobUrl(a.links.image);
  if (nav !== state.nav) return;
  setupViewer(a, url, alt);
  buildLayerOptions(a, params.get("layer"));
  $("mode").value = ["overlay", "side", "swipe"].includes(params.get("mode")) ? params.get("mode") : "overlay";
  if (params.get("q")) $("ela-quality").value = params.get("q");
  $("ela-quality-out").value = $("ela-quality").value;
  applyMode();
  drawMarks(a);
  $("result").hidden = false;
  stagedGivesWay();
  applyView();  // sizes are known only once the result is shown
  document.title = "Forenscope: " + displayName(a) + " \u2013 " + verdictText(v);
  markActive();
  await selectLayer($("layer").value, nav);
  loadChat();
}

// A clip: its verdict, its strongest temporal findings and its HTML timeline report (no image
// viewer). The report is framed from its own URL (its own CSP lets its scrubber run); with a
// token the frame cannot send it, so it shows a copy fetched with the token instead.
async function showClip(a, nav) {
  const c = a.report.clip;
  $("clip-info").textContent = c.width + "\u00d7" + c.height + " \u00b7 " + c.duration_s.toFixed(1) +
    " s \u00b7 " + c.frames + " frames \u00b7 " + c.codec + " \u00b7 " + a.report.verdict.basis;
  const top = [...a.report.temporal].sort((x, y) => y.strength - x.strength).slice(0, 5);
  fillList($("clip-evidence"), top.map((t) => [t.summary, t.kind]), "No temporal finding.");
  const src = token() ? (await blobUrl(a.links.report_html)).url : a.links.report_html;
  if (nav !== state.nav) return;
  $("clip-report-link").href = src;
  $("clip-report").src = src;
  $("result").hidden = false;
  stagedGivesWay();
  document.title = "Forenscope: " + displayName(a) + " \u2013 " + verdictText(a.report.verdict);
  markActive();
}

function fillList(list, rows, empty) {
  list.replaceChildren();
  if (!rows.length) { if (empty) list.append(el("li", empty, "muted")); return; }
  for (const [text, note] of rows) {
    const li = el("li", text);
    if (note) li.append(el("span", note, "ev-expert"));
    list.append(li);
  }
}

function boxWords(b) { return "x " + b.x + ", y " + b.y + " (" + b.width + "\u00d7" + b.height + " px)"; }

function copyMovePairs(a) {
  const cm = a.report.experts.find((e) => e.expert === "copy_move");
  const pairs = (cm && cm.details && cm.details.pairs) || [];
  return pairs.slice(0, 9).map((p, i) => ({ n: i + 1, a: p.a, b: p.b, cells: p.cells }));
}

// --- layers -------------------------------------------------------------------------------------

function buildLayerOptions(a, wanted) {
  const select = $("layer");
  select.replaceChildren();
  const names = Object.keys(a.links.overlays);
  const experts = names.filter((n) => n !== "fused" && n !== "mask").sort();
  const groups = [
    ["Forenscope maps", ["fused", "mask"].filter((n) => names.includes(n)).concat(experts)],
    ["Analyst's tools", Object.keys(TOOLS)],
  ];
  select.append(new Option(TITLES.none, "none"));
  for (const [label, items] of groups) {
    const group = document.createElement("optgroup");
    group.label = label;
    for (const n of items) group.append(new Option(TITLES[n] || (TOOLS[n] && TOOLS[n].title) || "Expert: " + n, n));
    select.append(group);
  }
  const all = Array.from(select.options).map((o) => o.value);
  select.value = all.includes(wanted) ? wanted : names.includes("fused") ? "fused" : experts[0] || "none";
}

function layerPath(a, name) {
  if (TOOLS[name]) {
    const q = name === "ela" ? "?quality=" + $("ela-quality").value : "";
    return "/v1/analyses/" + a.id + "/inspect/" + TOOLS[name].path + q;
  }
  return a.links.overlays[name];
}

async function selectLayer(name, nav) {
  nav = nav || state.nav;
  const a = state.current;
  const img = $("layer-img");
  $("ela-field").hidden = name !== "ela";
  saveViewInUrl();
  if (name === "none") {
    img.hidden = true;
    img.removeAttribute("src");
    $("layer-note").textContent = "";
    $("layer-note").className = "";
    legend(null);
    return;
  }
  const path = layerPath(a, name);
  $("layer-note").textContent = "Loading " + (TOOLS[name] ? TOOLS[name].title : "the layer") + " \u2026";
  try {
    let entry = state.layerUrls[path];
    if (!entry) {
      const { url, resp } = await blobUrl(path);
      entry = { url, note: resp.headers.get("X-Forenscope-Note") || "" };
      state.layerUrls[path] = entry;
    }
    if (nav !== state.nav || a !== state.current || $("layer").value !== name) return;
    await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = entry.url; });
    img.dataset.layer = name;
    img.hidden = false;
    applyOpacity();
    const empty = !TOOLS[name] && isBlank(img);
    const note = $("layer-note");
    note.className = empty ? "empty" : "";
    if (empty) {
      note.textContent = name === "fused" || name === "mask"
        ? "The fused map is empty: no expert marked any area of this image."
        : "This expert found nothing: its map (" + name + ") is empty for this image.";
    } else note.textContent = entry.note ? "Shown: " + entry.note + "." : "Shown: " + $("layer").selectedOptions[0].text + ".";
    legend(name);
  } catch (err) {
    if (nav === state.nav) $("layer-note").textContent = "Could not load the layer: " + err.message;
  }
}

function isBlank(img) {
  // Overlays are transparent where the map is ~0: a layer whose every pixel is (nearly)
  // transparent marks nothing.
  const w = Math.min(200, img.naturalWidth), h = Math.min(200, img.naturalHeight);
  if (!w || !h) return true;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(img, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h).data;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 24) return false;
  return true;
}

function legend(name) {
  const box = $("legend");
  box.replaceChildren();
  if (!name) return;
  if (name === "mask") {
    box.append(swatch("#00ffff"), el("span", "outline of the fused mask (the area judged suspicious)"));
  } else if (name === "ela") {
    box.append(el("span", "dark: changes little when re-saved"), gradientBar(["#000", "#fff"]),
      el("span", "bright: changes much (saved fewer times, or at another quality)"));
  } else if (name === "noise") {
    box.append(el("span", "dark: smooth"), gradientBar(["#000", "#fff"]), el("span", "bright: strong noise or detail"));
  } else if (name === "gradient") {
    box.append(swatch("#ff8080"), el("span", "brightens to the right"), swatch("#80ff80"),
      el("span", "brightens downwards"), swatch("#0000ff"), el("span", "edge strength"));
  } else {
    box.append(el("span", "0: nothing suspicious (transparent)"), gradientBar(INFERNO), el("span", "1: most suspicious"));
  }
  if ($("show-boxes").checked && state.current && state.current.report.regions.length) {
    box.append(swatch("#00e5ff"), el("span", "numbered region"));
  }
  if ($("show-boxes").checked && state.current && copyMovePairs(state.current).length) {
    box.append(swatch("#ff4fd8"), el("span", "copied pair (1a \u2194 1b)"));
  }
}

function gradientBar(colours) {
  const bar = el("span", undefined, "bar");
  bar.style.background = "linear-gradient(to right, " + colours.join(", ") + ")";
  return bar;
}

function swatch(colour) {
  const s = el("span", undefined, "swatch");
  s.style.background = colour;
  return s;
}

function applyOpacity() {
  $("layer-img").style.opacity = String($("opacity").value / 100);
}

// --- marks: numbered regions and copy-move pairs ------------------------------------------------

function drawMarks(a) {
  const svg = $("marks");
  const W = a.report.image.width || a.width, H = a.report.image.height || a.height;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.replaceChildren();
  const font = Math.max(10, Math.round(Math.max(W, H) / 45));
  const label = (x, y, text, group) => {
    const t = svgEl("text", { x: x + 2, y: Math.max(font, y - 3), "font-size": font, "stroke-width": font / 4 });
    t.textContent = text;
    group.append(t);
  };
  const rect = (b, group) => {
    for (const cls of ["halo", ""]) {
      group.append(svgEl("rect", { x: b.x, y: b.y, width: b.width, height: b.height, class: cls,
        "vector-effect": "non-scaling-stroke" }));
    }
  };
  for (const r of a.report.regions) {
    const g = svgEl("g", { class: "region", "data-id": r.id });
    rect(r.bbox, g);
    label(r.bbox.x, r.bbox.y, String(r.id), g);
    svg.append(g);
  }
  for (const p of copyMovePairs(a)) {
    const g = svgEl("g", { class: "pair", "data-pair": p.n });
    const ca = [p.a.x + p.a.width / 2, p.a.y + p.a.height / 2];
    const cb = [p.b.x + p.b.width / 2, p.b.y + p.b.height / 2];
    for (const cls of ["halo", ""]) {
      g.append(svgEl("line", { x1: ca[0], y1: ca[1], x2: cb[0], y2: cb[1], class: cls,
        "vector-effect": "non-scaling-stroke" }));
    }
    rect(p.a, g); rect(p.b, g);
    label(p.a.x, p.a.y, p.n + "a", g);
    label(p.b.x, p.b.y, p.n + "b", g);
    svg.append(g);
  }
  svg.toggleAttribute("hidden", !$("show-boxes").checked);  // an SVG element has no .hidden
}

// --- the viewer: zoom, pan, loupe, compare ------------------------------------------------------

function imageSize() {
  const a = state.current;
  return { W: a.report.image.width || a.width, H: a.report.image.height || a.height };
}

function setupViewer(a, previewUrl, alt) {
  const { W, H } = imageSize();
  for (const pane of document.querySelectorAll("#viewer .pane")) {
    pane.style.aspectRatio = W + " / " + H;
    pane.style.width = "min(100%, calc(70vh * " + (W / H).toFixed(5) + "))";
  }
  for (const img of document.querySelectorAll("#viewer img.base")) img.src = previewUrl;
  $("photo").alt = alt;
  document.querySelector("#pane-a img.base").alt = "Original of " + displayName(a) + " for comparison";
  $("layer-img").alt = "";
  state.view = { z: 1, cx: 0.5, cy: 0.5 };
  applyView();
}

function paneWidth() { return $("pane-b").getBoundingClientRect().width || 1; }

function zoomPct() { return state.view.z * paneWidth() / imageSize().W * 100; }

function clampView() {
  const v = state.view;
  const { W } = imageSize();
  // From "fit" (or 100% when a small image fits at more) to 800% of the image's own pixels.
  const minZ = Math.min(1, W / paneWidth()), maxZ = Math.max(1, MAX_ZOOM_PCT / 100 * W / paneWidth());
  v.z = Math.min(maxZ, Math.max(minZ, v.z));
  const half = 0.5 / Math.max(v.z, 1);
  v.cx = Math.min(1 - half, Math.max(half, v.cx));
  v.cy = Math.min(1 - half, Math.max(half, v.cy));
}

function applyView() {
  clampView();
  const v = state.view;
  for (const stage of document.querySelectorAll("#viewer .stage")) {
    stage.style.width = stage.style.height = (v.z * 100) + "%";
    stage.style.left = "calc(50% - " + (v.cx * v.z * 100) + "%)";
    stage.style.top = "calc(50% - " + (v.cy * v.z * 100) + "%)";
    stage.classList.toggle("pixelated", zoomPct() > 150);
  }
  const pct = zoomPct();
  $("zoom-level").value = v.z === 1 && Math.round(pct) !== 100 ? "fit (" + Math.round(pct) + "%)" : Math.round(pct) + "%";
  $("viewer").dataset.zoom = String(Math.round(pct));
  // The preview is a re-encoded copy of at most 1600 px: at 100% and beyond, the full image.
  const preview = $("photo").naturalWidth || 0;
  if (pct >= 99.5 || pct / 100 * imageSize().W > preview * 1.05) loadFull();
}

async function loadFull() {
  const a = state.current;
  if (!a || state.fullUrl || state.fullLoading) return state.fullLoading;
  state.fullLoading = (async () => {
    try {
      const { url } = await blobUrl("/v1/analyses/" + a.id + "/inspect/full.jpg");
      if (a !== state.current) return;
      await new Promise((resolve) => { const probe = new Image(); probe.onload = resolve; probe.onerror = resolve; probe.src = url; });
      state.fullUrl = url;
      for (const img of document.querySelectorAll("#viewer img.base")) img.src = url;
      $("viewer").dataset.full = "1";
      if (state.loupe) $("loupe").style.backgroundImage = "url(" + url + ")";
    } catch (err) { $("layer-note").textContent = "Full resolution unavailable: " + err.message; }
  })();
  return state.fullLoading;
}

function zoomBy(factor, px, py) {
  // Zoom about a point of the pane (px, py in [0, 1]); the centre by default.
  const v = state.view;
  px = px === undefined ? 0.5 : px; py = py === undefined ? 0.5 : py;
  const ix = v.cx + (px - 0.5) / v.z, iy = v.cy + (py - 0.5) / v.z;
  v.z *= factor;
  clampView();
  v.cx = ix - (px - 0.5) / v.z; v.cy = iy - (py - 0.5) / v.z;
  applyView();
}

function zoomTo(pct) {
  state.view.z = pct / 100 * imageSize().W / paneWidth();
  applyView();
}

function applyMode() {
  const mode = $("mode").value;
  $("viewer").className = "mode-" + mode;
  $("swipe-field").hidden = mode !== "swipe";
  applySwipe();
  applyView();
}

function applySwipe() {
  const paneA = $("pane-a");
  paneA.style.clipPath = $("mode").value === "swipe" ? "inset(0 " + (100 - $("swipe").value) + "% 0 0)" : "";
}

function wireViewer() {
  const viewer = $("viewer");
  let drag = null;
  viewer.addEventListener("wheel", (e) => {
    const pane = e.target.closest(".pane");
    if (!pane || !state.current) return;
    e.preventDefault();
    const r = pane.getBoundingClientRect();
    zoomBy(e.deltaY < 0 ? 1.25 : 0.8, (e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height);
  }, { passive: false });
  viewer.addEventListener("pointerdown", (e) => {
    const pane = e.target.closest(".pane");
    if (!pane) return;
    if ($("mode").value === "swipe" && e.shiftKey) return;
    drag = { x: e.clientX, y: e.clientY, pane, cx: state.view.cx, cy: state.view.cy };
    pane.classList.add("dragging");
    pane.setPointerCapture(e.pointerId);
  });
  viewer.addEventListener("pointermove", (e) => {
    if (drag) {
      const r = drag.pane.getBoundingClientRect();
      state.view.cx = drag.cx - (e.clientX - drag.x) / r.width / state.view.z;
      state.view.cy = drag.cy - (e.clientY - drag.y) / r.height / state.view.z;
      applyView();
    }
    moveLoupe(e);
  });
  const end = () => { if (drag) drag.pane.classList.remove("dragging"); drag = null; };
  viewer.addEventListener("pointerup", end);
  viewer.addEventListener("pointercancel", end);
  viewer.addEventListener("pointerleave", () => { if (state.loupe && !drag) $("loupe").hidden = true; });
  viewer.addEventListener("keydown", (e) => {
    const step = 0.1 / state.view.z;
    const keys = {
      "+": () => zoomBy(1.25), "=": () => zoomBy(1.25), "-": () => zoomBy(0.8),
      "0": () => { state.view.z = 1; applyView(); }, "1": () => zoomTo(100),
      ArrowLeft: () => { state.view.cx -= step; applyView(); },
      ArrowRight: () => { state.view.cx += step; applyView(); },
      ArrowUp: () => { state.view.cy -= step; applyView(); },
      ArrowDown: () => { state.view.cy += step; applyView(); },
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  $("zoom-in").addEventListener("click", () => zoomBy(1.5));
  $("zoom-out").addEventListener("click", () => zoomBy(1 / 1.5));
  $("zoom-fit").addEventListener("click", () => { state.view.z = 1; applyView(); });
  $("zoom-100").addEventListener("click", () => zoomTo(100));
  $("loupe-toggle").addEventListener("click", async () => {
    state.loupe = !state.loupe;
    $("loupe-toggle").setAttribute("aria-pressed", String(state.loupe));
    $("loupe").hidden = true;
    if (state.loupe) {
      await loadFull();
      if (state.fullUrl) $("loupe").style.backgroundImage = "url(" + state.fullUrl + ")";
      const r = $("pane-b").getBoundingClientRect();  // keyboard users see it at the centre
      moveLoupe({ clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, target: $("pane-b") });
    }
  });
  window.addEventListener("resize", () => { if (state.current) applyView(); });
}

function moveLoupe(e) {
  if (!state.loupe || !state.fullUrl) return;
  const pane = e.target && e.target.closest ? e.target.closest(".pane") : null;
  if (!pane) return;
  const loupe = $("loupe");
  const stage = pane.querySelector(".stage").getBoundingClientRect();
  const box = $("viewer").getBoundingClientRect();
  const { W, H } = imageSize();
  const ix = (e.clientX - stage.left) / stage.width, iy = (e.clientY - stage.top) / stage.height;
  if (ix < 0 || iy < 0 || ix > 1 || iy > 1) { loupe.hidden = true; return; }
  const shown = stage.width / W;  // screen px per image px now
  const scale = Math.max(1, shown * 3);  // three times the view, and never below 100%
  const size = 180;
  loupe.style.backgroundSize = (W * scale) + "px " + (H * scale) + "px";
  loupe.style.backgroundPosition = (size / 2 - ix * W * scale) + "px " + (size / 2 - iy * H * scale) + "px";
  loupe.style.left = (e.clientX - box.left - size / 2) + "px";
  loupe.style.top = (e.clientY - box.top - size / 2) + "px";
  loupe.dataset.scale = String(Math.round(scale * 100));
  loupe.hidden = false;
}

// --- panels: metadata and JPEG ------------------------------------------------------------------

function kvTable(entries, caption) {
  const table = el("table", undefined, "kv");
  if (caption) table.append(el("caption", caption));
  for (const [k, v] of entries) {
    const tr = el("tr");
    tr.append(el("th", k), el("td", typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)));
    table.append(tr);
  }
  return table;
}

function section(parent, title, content, empty) {
  parent.append(el("h4", title));
  parent.append(content || el("p", empty, "muted"));
}

function tree(value, depth) {
  if (value === null || typeof value !== "object") return el("span", String(value));
  const ul = el("ul");
  for (const [k, v] of Object.entries(value)) {
    const li = el("li");
    li.append(el("span", k + ": ", "k"));
    if (v !== null && typeof v === "object" && depth > 1) {
      const d = el("details");
      d.append(el("summary", Array.isArray(v) ? v.length + " items" : Object.keys(v).length + " entries"));
      d.append(tree(v, depth + 1));
      li.append(d);
    } else li.append(tree(v, depth + 1));
    ul.append(li);
  }
  return ul;
}

async function loadPanel(name, waiting, render) {
  // A panel is computed by the API the first time it is opened for an analysis.
  const a = state.current, box = $(name);
  if (!a || $(name + "-box").dataset.loaded === a.id) return;
  $(name + "-box").dataset.loaded = a.id;
  box.replaceChildren(el("p", waiting, "muted"));
  try {
    const data = await (await api("/v1/analyses/" + a.id + "/inspect/" + (name === "meta" ? "metadata" : name))).json();
    if (a !== state.current) return;
    box.replaceChildren();
    await render(a, box, data);
  } catch (err) { box.replaceChildren(el("p", "Unavailable: " + err.message, "error")); }
}

const loadMeta = () => loadPanel("meta", "Reading the metadata \u2026", renderMeta);
const loadJpeg = () => loadPanel("jpeg", "Measuring \u2026", renderJpeg);

async function renderMeta(a, box, m) {
  const c2 = el("div", undefined, "c2pa-tree");
  if (m.c2pa.present) {
    c2.append(el("p", "Validation: " + (m.c2pa.validation_state || "unknown") +
      (m.c2pa.failures.length ? " \u2013 failures: " + m.c2pa.failures.join(", ") : " \u2013 no failure") +
      (m.c2pa.error ? " \u2013 " + m.c2pa.error : "")));
    const d = el("details");
    d.append(el("summary", "Manifest store tree"), tree(m.c2pa.tree, 0));
    c2.append(kvTable(Object.entries(m.c2pa.summary)), d);
  }
  section(box, "C2PA (Content Credentials)", m.c2pa.present ? c2 : null, "No C2PA manifest.");
  const exif = Object.entries(m.exif);
  section(box, "EXIF", exif.length ? kvTable(exif) : null, "No EXIF.");
  section(box, "XMP", m.xmp ? el("pre", m.xmp, "xmp") : null, "No XMP.");
  const iptc = Object.entries(m.iptc).map(([k, v]) => [k, v.join("; ")]);
  section(box, "IPTC", iptc.length ? kvTable(iptc) : null, "No IPTC.");
  const text = Object.entries(m.png_text);
  section(box, "PNG text chunks", text.length ? kvTable(text) : null, "No PNG text chunks.");
  section(box, "ICC colour profile", m.icc ? kvTable(Object.entries(m.icc)) : null, "No ICC profile.");
  const thumb = m.thumbnail && (a ? await thumbnailFigure(a, m.thumbnail)
    : el("p", (m.thumbnail.differs ? "Differs: " : "Matches: ") + m.thumbnail.summary, m.thumbnail.differs ? "flag" : ""));
  section(box, "Embedded thumbnail", thumb || null, "No embedded thumbnail.");
  if (m.notes.length) section(box, "Notes", kvTable(m.notes.map((n, i) => [String(i + 1), n])));
}

async function thumbnailFigure(a, check) {
  const wrap = el("div");
  const figs = el("div", undefined, "thumbs");
  const { url } = await blobUrl("/v1/analyses/" + a.id + "/inspect/thumbnail.png");
  const f1 = el("figure"), f2 = el("figure");
  const t = el("img"); t.src = url; t.alt = "Embedded thumbnail of " + displayName(a);
  const p = el("img"); p.src = $("photo").src; p.alt = "The picture itself, for comparison";
  f1.append(t, el("figcaption", "Thumbnail " + check.width + "\u00d7" + check.height));
  f2.append(p, el("figcaption", "Picture"));
  figs.append(f1, f2);
  wrap.append(figs, el("p", (check.differs ? "Differs: " : "Matches: ") + check.summary, check.differs ? "flag" : ""));
  return wrap;
}

function renderJpeg(a, box, j) {
  box.append(el("p", j.is_jpeg
    ? "Estimated JPEG quality: " + (j.estimated_quality === null ? "unknown" : j.estimated_quality) +
      (j.subsampling ? " \u00b7 chroma subsampling " + j.subsampling : "")
    : "Format " + j.format + ": no JPEG quantisation tables."));
  for (const t of j.tables) {
    const table = el("table", undefined, "q8");
    table.append(el("caption", "Table " + t.index + " (" + t.channel + "): closest to quality " +
      t.estimated_quality + (t.standard ? ", libjpeg's standard table" : ", a custom table")));
    for (let r = 0; r < 8; r++) {
      const tr = el("tr");
      for (let c = 0; c < 8; c++) tr.append(el("td", String(t.values[r * 8 + c])));
      table.append(tr);
    }
    box.append(table);
  }
  box.append(ghostChart(j));
  for (const n of j.notes) box.append(el("p", n, "muted"));
}

function ghostChart(j) {
  const wrap = el("div");
  const W = 360, H = 160, L = 40, B = 24;
  const pts = j.ghost;
  const max = Math.max(...pts.map((p) => p.difference), 1e-6);
  const x = (q) => L + (q - 30) / 70 * (W - L - 10), y = (d) => H - B - d / max * (H - B - 10);
  const words = "JPEG ghost curve: change when re-saved at qualities 30 to 100" +
    (j.ghost_minimum ? "; dip at quality " + j.ghost_minimum + " (the last save)" : "; no clear dip");
  const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, class: "ghost", role: "img", "aria-label": words });
  svg.append(svgEl("line", { x1: L, y1: H - B, x2: W - 10, y2: H - B, class: "axis" }));
  svg.append(svgEl("line", { x1: L, y1: 10, x2: L, y2: H - B, class: "axis" }));
  svg.append(svgEl("polyline", { points: pts.map((p) => x(p.quality) + "," + y(p.difference)).join(" ") }));
  for (const q of [30, 50, 70, 90, 100]) {
    const t = svgEl("text", { x: x(q) - 6, y: H - 8 }); t.textContent = String(q); svg.append(t);
  }
  const t = svgEl("text", { x: 2, y: 14 }); t.textContent = "change"; svg.append(t);
  if (j.ghost_minimum) {
    const p = pts.find((g) => g.quality === j.ghost_minimum);
    svg.append(svgEl("circle", { cx: x(p.quality), cy: y(p.difference), r: 4 }));
  }
  wrap.append(el("h4", "Ghost curve"), svg, el("p", words + ".", "muted"));
  return wrap;
}

// --- downloads, history, chat -------------------------------------------------------------------

function downloadName(a, ext) {
  const stem = displayName(a).replace(/\.[A-Za-z0-9]{1,5}$/, "").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80) || "image";
  return stem + ".forenscope." + ext;
}

async function download(kind) {
  const a = state.current;
  if (!a) return;
  try {
    const link = el("a");
    link.href = (await blobUrl(kind === "json" ? a.links.report_json : a.links.report_html)).url;
    link.download = downloadName(a, kind);
    document.body.append(link);
    link.click();
    link.remove();
  } catch (err) { setStatus("Download failed: " + err.message, true); }
}

async function loadHistory(reset) {
  if (reset) { state.offset = 0; }
  try {
    const q = state.search.trim();
    const page = q
      ? await (await api("/v1/search?limit=100&q=" + encodeURIComponent(q))).json()
      : await (await api("/v1/analyses?limit=20&offset=" + state.offset)).json();
    if (reset) $("history").replaceChildren();
    for (const item of page.items) $("history").append(historyItem(item));
    if (reset && !page.items.length) $("history").append(el("li", q ? "No match." : "No analysis yet.", "muted"));
    state.offset += page.items.length;
    $("more").hidden = Boolean(q) || state.offset >= page.total;
    markActive();
  } catch (err) { setStatus("History unavailable: " + err.message, true); }
}

function historyItem(item) {
  const li = el("li");
  li.dataset.id = item.id;
  const link = el("a");
  link.href = "#/a/" + item.id;
  const name = displayName(item);
  link.append(el("span", name, "h-name"));
  const meta = el("span", undefined, "h-meta");
  meta.append(el("span", LABELS[item.label] || item.label, "badge label-" + item.label),
    document.createTextNode(" " + Math.round(item.probability * 100) + "% \u00b7 " +
      item.created_at.slice(0, 16).replace("T", " ")));
  link.append(meta);
  const del = el("button", "\u2715", "h-delete");
  del.type = "button";
  del.setAttribute("aria-label", "Delete " + name);
  del.addEventListener("click", () => remove(item.id, name));
  li.append(link, del);
  return li;
}

async function remove(id, name) {
  if (!confirm("Delete the analysis of " + name + "? Its stored image and reports are removed.")) return;
  try {
    await api("/v1/analyses/" + id, { method: "DELETE" });
    if (state.current && state.current.id === id) {
      state.current = null;
      $("result").hidden = true;
      history.replaceState(null, "", location.pathname);
      document.title = "Forenscope";
    }
    setStatus("Deleted " + name + ".");
    await loadHistory(true);
    const first = document.querySelector("#history a");
    (first || $("history-search")).focus();
  } catch (err) { setStatus("Delete failed: " + err.message, true); }
}

function markActive() {
  const id = state.current && state.current.id;
  for (const li of $("history").children) {
    li.classList.toggle("active", li.dataset.id === id);
    const link = li.querySelector("a");
    if (link) { if (li.dataset.id === id) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current"); }
  }
}

async function loadChat() {
  if ($("chat").hidden || !state.current) return;
  const messages = await (await api("/v1/analyses/" + state.current.id + "/chat")).json();
  renderChat(messages);
}

function renderChat(messages) {
  $("chat-log").replaceChildren(...messages.map((m) => el("li", m.content, m.role)));
}

async function ask(question) {
  try {
    const resp = await api("/v1/analyses/" + state.current.id + "/chat", {
      method: "POST", body: JSON.stringify({ message: question }),
      headers: { "Content-Type": "application/json" } });
    renderChat((await resp.json()).messages);
  } catch (err) { setStatus("Chat failed: " + err.message, true); }
}

// --- wiring -------------------------------------------------------------------------------------

function setTheme(dark) {
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  $("theme").setAttribute("aria-pressed", String(dark));
  localStorage.setItem("forenscope-theme", dark ? "dark" : "light");
}

function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

function wire() {
  const drop = $("drop");
  drop.addEventListener("click", () => $("file").click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); }
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    handleFiles(e.dataTransfer.files);
  });
  $("file").addEventListener("change", (e) => { handleFiles(e.target.files); e.target.value = ""; });
  $("url-form").addEventListener("submit", (e) => { e.preventDefault(); if ($("url").value) analyseUrl($("url").value); });
  $("cancel").addEventListener("click", () => {
    const pending = state.pending;
    if (pending && pending.onCancel) pending.onCancel();
    stopProgress();
  });
  $("dl-json").addEventListener("click", () => download("json"));
  $("dl-html").addEventListener("click", () => download("html"));
  $("copy-link").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(location.href); setStatus("Link copied."); }
    catch (err) { setStatus("Link: " + location.href); }
  });
  $("more").addEventListener("click", () => loadHistory(false));
  $("history-search").addEventListener("input", debounce((e) => { state.search = e.target.value; loadHistory(true); }, 200));
  $("layer").addEventListener("change", () => selectLayer($("layer").value));
  $("ela-quality").addEventListener("input", () => { $("ela-quality-out").value = $("ela-quality").value; });
  $("ela-quality").addEventListener("change", () => selectLayer("ela"));
  $("opacity").addEventListener("input", applyOpacity);
  $("show-boxes").addEventListener("change", () => {
    $("marks").toggleAttribute("hidden", !$("show-boxes").checked);
    legend($("layer").value === "none" ? null : $("layer").value);
  });
  $("mode").addEventListener("change", () => { applyMode(); saveViewInUrl(); });
  $("swipe").addEventListener("input", applySwipe);
  $("meta-box").addEventListener("toggle", () => { if ($("meta-box").open) loadMeta(); });
  $("jpeg-box").addEventListener("toggle", () => { if ($("jpeg-box").open) loadJpeg(); });
  $("theme").addEventListener("click", () => setTheme(document.documentElement.dataset.theme !== "dark"));
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("forenscope-token", $("token").value);
    $("token").value = "";
    $("token-form").hidden = true;
    loadHistory(true);
    onHash();
  });
  $("chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("chat-input").value.trim();
    if (q) { $("chat-input").value = ""; ask(q); }
  });
  window.addEventListener("hashchange", onHash);
  wireViewer();
}

async function init() {
  const saved = localStorage.getItem("forenscope-theme");
  setTheme(saved ? saved === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches);
  wire();
  try {
    const health = await (await fetch("/v1/health")).json();
    $("chat").hidden = !health.llm_configured;
  } catch (err) { /* the API calls below report errors */ }
  loadHistory(true);
  onHash();
}

init();
