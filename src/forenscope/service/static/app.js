// Forenscope web UI: plain JS, no framework, no CDN. Every string from the server goes through
// textContent (never innerHTML): reports carry attacker-controlled metadata.
"use strict";
const $ = (id) => document.getElementById(id);
const LABELS = {
  real: "Real photo", ai_generated: "AI-generated", tampered: "Tampered",
  inconclusive: "Inconclusive, needs review",
};
const state = { current: null, offset: 0, urls: [] };

function token() { return sessionStorage.getItem("forenscope-token") || ""; }

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", "Bearer " + token());
  const resp = await fetch(path, { ...options, headers });
  if (resp.status === 401) { $("token-form").hidden = false; throw new Error("an access token is required"); }
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return resp;
}

async function blobUrl(path) {
  const url = URL.createObjectURL(await (await api(path)).blob());
  state.urls.push(url);
  return url;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

async function upload(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  await runAnalysis(() => api("/v1/analyze", { method: "POST", body: form }), file.name);
}

async function analyseUrl(url) {
  const body = JSON.stringify({ url });
  await runAnalysis(() => api("/v1/analyze", {
    method: "POST", body, headers: { "Content-Type": "application/json" } }), url);
}

async function runAnalysis(request, name) {
  setStatus("Analysing " + name + " ...");
  try {
    const analysis = await (await request()).json();
    await show(analysis);
    setStatus("");
    loadHistory(true);
  } catch (err) { setStatus("Analysis failed: " + err.message, true); }
}

async function openAnalysis(id) {
  setStatus("Loading ...");
  try { await show(await (await api("/v1/analyses/" + id)).json()); setStatus(""); }
  catch (err) { setStatus("Could not load the analysis: " + err.message, true); }
}

async function show(a) {
  state.urls.forEach((u) => URL.revokeObjectURL(u));
  state.urls = [];
  state.current = a;
  const v = a.report.verdict;
  const verdict = $("verdict");
  const leaning = v.label === "inconclusive" && v.leaning ? ", leaning " + (LABELS[v.leaning] || v.leaning) : "";
  verdict.textContent = (LABELS[v.label] || v.label) + leaning + " \u00b7 " + Math.round(v.probability * 100) + "%";
  verdict.className = "verdict " + v.label;
  verdict.dataset.label = v.label;
  $("verdict-note").textContent = "decided by " + v.decided_by +
    (v.calibrated ? " (calibrated)" : " (not calibrated)") + " \u00b7 " + (a.filename || a.sha256.slice(0, 12));
  $("explanation").textContent = a.report.explanation || "";
  fillList($("regions"), a.report.regions.map((r) => [r.description, r.experts.join(", ")]), "No suspicious region.");
  const evidence = a.report.key_evidence.length ? a.report.key_evidence :
    a.report.experts.flatMap((e) => e.evidence.slice(0, 2));
  fillList($("evidence"), evidence.map((e) => [e.summary, e.kind]), "No evidence items.");
  // One line per face and per-face check: "face 1: face_seam 0.12" or its abstain reason.
  const faces = a.report.faces || [];
  $("faces-box").hidden = !faces.length;
  fillList($("faces"), faces.flatMap((f) => f.checks.map((c) => [
    "face " + f.index + ": " + c.expert + " " +
      (c.score === null ? "abstained (" + (c.abstain_reason || "no reason") + ")" : c.score.toFixed(2)),
    c.evidence.length ? c.evidence[0].summary : "",
  ])), "No face check ran.");
  $("photo").src = await blobUrl(a.links.image);
  buildOverlayButtons(a);
  $("result").hidden = false;
  markActive();
  loadChat();
}

function fillList(list, rows, empty) {
  list.replaceChildren();
  if (!rows.length) { list.append(el("li", empty, "muted")); return; }
  for (const [text, note] of rows) {
    const li = el("li", text);
    if (note) li.append(el("span", note, "ev-expert"));
    list.append(li);
  }
}

function buildOverlayButtons(a) {
  const box = $("overlay-buttons");
  box.replaceChildren();
  const names = Object.keys(a.links.overlays);
  const order = ["fused", "mask"].filter((n) => names.includes(n))
    .concat(names.filter((n) => n !== "fused" && n !== "mask").sort());
  const titles = { fused: "Fused map", mask: "Fused mask" };
  for (const name of ["none"].concat(order)) {
    const b = el("button", name === "none" ? "No overlay" : (titles[name] || name));
    b.type = "button";
    b.dataset.overlay = name;
    b.setAttribute("aria-pressed", name === "none" ? "true" : "false");
    b.addEventListener("click", () => selectOverlay(name));
    box.append(b);
  }
  $("overlay").hidden = true;
}

async function selectOverlay(name) {
  for (const b of $("overlay-buttons").children) {
    b.setAttribute("aria-pressed", b.dataset.overlay === name ? "true" : "false");
  }
  const img = $("overlay");
  if (name === "none") { img.hidden = true; img.removeAttribute("src"); return; }
  try {
    const url = await blobUrl(state.current.links.overlays[name]);
    await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = url; });
    img.dataset.overlay = name;
    img.hidden = false;
  } catch (err) { setStatus("Could not load the overlay: " + err.message, true); }
}

async function download(kind) {
  const a = state.current;
  if (!a) return;
  try {
    const link = el("a");
    link.href = await blobUrl(kind === "json" ? a.links.report_json : a.links.report_html);
    link.download = "forenscope-" + a.id + "." + kind;
    document.body.append(link);
    link.click();
    link.remove();
  } catch (err) { setStatus("Download failed: " + err.message, true); }
}

async function loadHistory(reset) {
  if (reset) { state.offset = 0; $("history").replaceChildren(); }
  try {
    const page = await (await api("/v1/analyses?limit=20&offset=" + state.offset)).json();
    for (const item of page.items) {
      const li = el("li");
      li.dataset.id = item.id;
      li.append(el("span", item.filename || item.sha256.slice(0, 12), "h-name"));
      li.append(el("span", (LABELS[item.label] || item.label) + " " + Math.round(item.probability * 100) +
        "% \u00b7 " + item.created_at.slice(0, 16).replace("T", " "), "muted"));
      li.addEventListener("click", () => openAnalysis(item.id));
      $("history").append(li);
    }
    state.offset += page.items.length;
    $("more").hidden = state.offset >= page.total;
    markActive();
  } catch (err) { setStatus("History unavailable: " + err.message, true); }
}

function markActive() {
  const id = state.current && state.current.id;
  for (const li of $("history").children) li.classList.toggle("active", li.dataset.id === id);
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

function wire() {
  const drop = $("drop");
  drop.addEventListener("click", (e) => { if (!e.target.closest("form")) $("file").click(); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter") $("file").click(); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (e) => { if (e.target.files.length) upload(e.target.files[0]); });
  $("url-form").addEventListener("submit", (e) => { e.preventDefault(); if ($("url").value) analyseUrl($("url").value); });
  $("dl-json").addEventListener("click", () => download("json"));
  $("dl-html").addEventListener("click", () => download("html"));
  $("more").addEventListener("click", () => loadHistory(false));
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("forenscope-token", $("token").value);
    $("token").value = "";
    $("token-form").hidden = true;
    loadHistory(true);
  });
  $("chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("chat-input").value.trim();
    if (q) { $("chat-input").value = ""; ask(q); }
  });
}

async function init() {
  wire();
  try {
    const health = await (await fetch("/v1/health")).json();
    $("chat").hidden = !health.llm_configured;
  } catch (err) { /* the API calls below report errors */ }
  loadHistory(true);
}

init();
