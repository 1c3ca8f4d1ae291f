// gluecell operator console: plain JS, no build step. Data from /api/v1 with the bearer token the operator
// typed (kept in sessionStorage only); live updates from the server-sent event stream, read with fetch so the
// token travels in a header and Last-Event-ID resumes after a drop.
"use strict";
const $ = (id) => document.getElementById(id);
const S = { token: sessionStorage.getItem("gluecell-token") || "", me: null, lastEventId: null, geoItem: null,
            inspItem: null, timers: {}, stream: null };
// PackTags StateCurrent numbering (OPC 30050), to show a state event at once, before the cell is re-read.
const STATE_NAMES = { 1: "Clearing", 2: "Stopped", 3: "Starting", 4: "Idle", 5: "Suspended", 6: "Execute", 7: "Stopping",
  8: "Aborting", 9: "Aborted", 10: "Holding", 11: "Held", 12: "Unholding", 13: "Suspending", 14: "Unsuspending",
  15: "Resetting", 16: "Completing", 17: "Complete" };
const ABNORMAL = { Held: 1, Holding: 1, Suspended: 1, Suspending: 1, Stopping: 1, Aborting: 2, Aborted: 2 };
const PLOT_CFG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["toImage"] };
const GREY = { paper_bgcolor: "#e6e6e6", plot_bgcolor: "#e6e6e6", font: { size: 11, color: "#202020" } };

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + S.token }, opts.headers || {});
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method: opts.method || "GET", headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  if (r.status === 401) { logout("signed out: " + ((await r.json()).detail || "token refused")); throw new Error("401"); }
  const ct = r.headers.get("content-type") || "";
  const data = ct.includes("json") ? await r.json() : null;
  if (!r.ok) { const e = new Error((data && (data.detail || data.title)) || r.statusText); e.status = r.status; throw e; }
  return data;
}

function esc(s) { return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }
function later(name, fn, ms) { clearTimeout(S.timers[name]); S.timers[name] = setTimeout(fn, ms); }

// ---- who and why ------------------------------------------------------------------------------------------
function askWhy(title) {
  return new Promise((resolve) => {
    const d = $("why-dialog");
    $("why-title").textContent = title; $("why-who").textContent = S.me.name; $("why-text").value = "";
    const done = (v) => { d.close(); $("why-ok").onclick = $("why-cancel").onclick = null; resolve(v); };
    $("why-cancel").onclick = () => done(null);
    $("why-form").onsubmit = (ev) => { ev.preventDefault(); const t = $("why-text").value.trim(); if (t.length >= 3) done(t); };
    d.showModal(); $("why-text").focus();
  });
}
function note(text, bad) { const n = $("command-result"); n.textContent = text; n.className = bad ? "problem" : "note"; }

// ---- the cell -------------------------------------------------------------------------------------------------
function showState(name) {
  const st = $("state");
  if (st.textContent !== name) st.textContent = name;
  st.dataset.state = name; st.dataset.abnormal = ABNORMAL[name] || 0;
}
async function refreshCell() {
  const seq = S.lastEventId;
  const c = await api("/api/v1/cell");
  if (seq === S.lastEventId) showState(c.State);  // a newer state event may have landed while this was read
  $("mode").textContent = c.UnitMode;
  $("stale").hidden = c.ControllerAlive;
  const j = c.CurrentJob;
  $("job").textContent = j ? `${j.JobOrder.JobOrderID} · ${j.JobOrder.WorkMasterID} · ${j.JobResponse.Actuals.PairsDone}/${j.JobResponse.Actuals.PairsPlanned}`
    : S.lastJob ? `none (last ${S.lastJob})` : "none";
  $("pair").textContent = c.CurrentItem ? `${c.CurrentItem.id} (${c.CurrentItem.state})` : "–";
  const box = $("command-buttons"); box.innerHTML = "";
  for (const cmd of S.me.commands) {
    const b = document.createElement("button"); b.textContent = cmd; b.dataset.cmd = cmd;
    b.disabled = !c.AllowedCommands.includes(cmd);
    b.onclick = () => sendCommand(cmd); box.appendChild(b);
  }
  const mb = $("mode-buttons"); mb.innerHTML = "";
  if (S.me.may_change_mode) for (const m of ["Production", "Maintenance", "Manual"]) {
    const b = document.createElement("button"); b.textContent = "Mode: " + m; b.disabled = m === c.UnitMode;
    b.onclick = () => changeMode(m); mb.appendChild(b);
  }
}
async function sendCommand(cmd) {
  const why = await askWhy(`${cmd} the cell`); if (!why) return;
  try { const r = await api("/api/v1/cell/commands", { method: "POST", body: { Command: cmd, Reason: why } }); note(r.outcome); }
  catch (e) { note(`${cmd}: ${e.message}`, true); }
  refreshCell();
}
async function changeMode(mode) {
  const why = await askWhy(`Unit mode ${mode}`); if (!why) return;
  try { const r = await api("/api/v1/cell/mode", { method: "POST", body: { Mode: mode, Reason: why } }); note(r.outcome); }
  catch (e) { note(`mode: ${e.message}`, true); }
  refreshCell();
}

// ---- the pair: 3D and inspection ----------------------------------------------------------------------------------
function xyz(points) { return { x: points.map((p) => p[0] * 1e3), y: points.map((p) => p[1] * 1e3), z: points.map((p) => p[2] * 1e3) }; }
async function refreshPair() {
  const items = (await api("/api/v1/work-items?limit=200")).items;
  const planned = items.filter((i) => ["planned", "spraying", "sprayed", "passed", "rework"].includes(i.state));
  const latest = planned.sort((a, b) => b.updated - a.updated)[0];
  if (latest && latest.id !== S.geoItem) await drawGeometry(latest.id);
  const routed = items.filter((i) => ["passed", "rework"].includes(i.state)).sort((a, b) => b.updated - a.updated)[0];
  if (routed) showInspection(routed);
}
async function drawGeometry(id) {
  let g; try { g = await api(`/api/v1/work-items/${encodeURIComponent(id)}/geometry`); } catch (e) { return; }
  S.geoItem = id; $("geo-id").textContent = id;
  const traces = [];
  for (const [part, pts] of Object.entries(g.scans || {})) traces.push(Object.assign(xyz(pts), { type: "scatter3d", mode: "markers", name: "scan " + part, marker: { size: 1.5, opacity: 0.35, color: part === "upper" ? "#8c8c8c" : "#b0b0b0" } }));
  if (g.bite_line && g.bite_line.length) {
    const sig = g.bite_line_sigma;
    traces.push(Object.assign(xyz(g.bite_line), { type: "scatter3d", mode: "lines", name: "bite line" + (sig ? " (±2σ in hover)" : ""),
      line: { width: 7, color: "#101010" }, text: Array.isArray(sig) ? sig.map((s) => `σ ${(s * 1e3).toFixed(2)} mm`) : undefined }));
  }
  for (const p of g.paths || []) {  // one trace per gun state: segments where the gun is on, and the moves between
    for (const on of [true, false]) {
      const pts = [];
      p.xyz.forEach((q, i) => { const seg = p.spray[i] === on || (i > 0 && p.spray[i - 1] === on); pts.push(seg ? q : null); });
      const t = { x: pts.map((q) => (q ? q[0] * 1e3 : null)), y: pts.map((q) => (q ? q[1] * 1e3 : null)), z: pts.map((q) => (q ? q[2] * 1e3 : null)) };
      traces.push(Object.assign(t, { type: "scatter3d", mode: "lines", connectgaps: false, name: `path ${p.part}: gun ${on ? "on" : "off"}`,
        line: { width: on ? 4 : 1.5, color: on ? "#3c6ea0" : "#a0a0a0" } }));
    }
  }
  const layout = Object.assign({ margin: { l: 0, r: 0, t: 0, b: 0 }, showlegend: true, legend: { x: 0, y: 1, font: { size: 10 } },
    scene: { aspectmode: "data", xaxis: { title: "x mm" }, yaxis: { title: "y mm" }, zaxis: { title: "z mm" } } }, GREY);
  Plotly.react($("plot3d"), traces, layout, PLOT_CFG);
  $("plot3d").dataset.item = id;
}
function showInspection(item) {
  const v = $("verdict"); v.textContent = item.state === "passed" ? "pass" : item.state; v.dataset.v = item.state === "passed" ? "pass" : "rework";
  if (item.id === S.inspItem) return;
  S.inspItem = item.id; $("insp-id").textContent = item.id;
  fetch(`/api/v1/work-items/${encodeURIComponent(item.id)}/inspection.png`, { headers: { Authorization: "Bearer " + S.token } })
    .then((r) => (r.ok ? r.blob() : null)).then((b) => {
      const img = $("insp-img");
      if (!b) { img.hidden = true; $("insp-none").hidden = false; $("insp-none").textContent = `no picture for ${item.id}`; return; }
      if (img.src) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(b); img.hidden = false; img.dataset.item = item.id; $("insp-none").hidden = true;
    });
}

// ---- alarms, KPIs, rework, jobs -------------------------------------------------------------------------------------
async function refreshAlarms() {
  const a = await api("/api/v1/alarms");
  $("flood").hidden = !a.flood; $("alarm-count").textContent = a.items.length ? `(${a.items.length})` : "";
  const ul = $("alarm-list"); ul.innerHTML = a.items.length ? "" : '<li class="none">no alarms</li>';
  for (const al of a.items) {
    const li = document.createElement("li"); li.dataset.p = al.priority; li.dataset.s = al.state;
    li.innerHTML = `<div>${esc(al.priority)} · ${esc(al.text)}</div><div class="muted">${esc(al.state.replace("_", " "))} · ${new Date(al.raised_at * 1000).toLocaleTimeString()}</div>`;
    if (S.me.may_override) for (const act of al.state === "shelved" ? ["unshelve"] : ["acknowledge", "shelve"]) {
      if (act === "acknowledge" && al.acked_at) continue;
      const b = document.createElement("button"); b.textContent = act;
      b.onclick = async () => { const why = await askWhy(`${act} alarm`); if (!why) return;
        try { await api(`/api/v1/alarms/${encodeURIComponent(al.key)}/actions`, { method: "POST", body: { Action: act, Reason: why } }); }
        catch (e) { note(e.message, true); } refreshAlarms(); };
      li.appendChild(b);
    }
    ul.appendChild(li);
  }
}
async function refreshKpis() {
  const k = await api("/api/v1/kpis");
  const pct = (v) => (v == null ? "–" : (v * 100).toFixed(1) + " %");
  const s = (v) => (v == null ? "–" : v.toFixed(1) + " s");
  $("kpi-numbers").innerHTML = `<div>pairs<b id="kpi-done">${k.pairs_done}</b></div><div>throughput<b>${k.throughput_per_h.toFixed(0)} /h</b></div>` +
    `<div>first-pass yield<b>${pct(k.first_pass_yield)}</b></div><div>cycle mean<b>${s(k.cycle_time_mean_s)}</b></div><div>cycle p95<b>${s(k.cycle_time_p95_s)}</b></div>`;
  const m = { margin: { l: 36, r: 6, t: 22, b: 28 } };
  const t = k.series.t.map((s) => new Date(s * 1000));
  let fp = 0; const fpy = k.series.first_pass.map((v, i) => ((fp += v) / (i + 1)) * 100);
  Plotly.react($("chart-cycle"), [
    { x: t, y: k.series.cycle_s, name: "cycle [s]", type: "scatter", mode: "markers", marker: { size: 5, color: "#505050" } },
    { x: t, y: t.map((_, i) => i + 1), name: "pairs done", type: "scatter", mode: "lines", yaxis: "y2", line: { color: "#909090", shape: "hv" } },
    { x: t, y: fpy, name: "first-pass yield [%]", type: "scatter", mode: "lines", yaxis: "y3", line: { color: "#303030", dash: "dot" }, visible: "legendonly" }],
    Object.assign({ title: { text: "cycle time, throughput, first-pass yield", font: { size: 11 } }, showlegend: true,
      legend: { orientation: "h", y: -0.25, font: { size: 9 } }, yaxis2: { overlaying: "y", side: "right", showgrid: false },
      yaxis3: { overlaying: "y", range: [0, 100], visible: false } }, m, GREY, { margin: { l: 36, r: 30, t: 22, b: 44 } }), PLOT_CFG);
  const st = Object.entries(k.state_times_s || {});
  Plotly.react($("chart-states"), [{ x: st.map((e) => e[0]), y: st.map((e) => e[1]), type: "bar", marker: { color: "#7a7a7a" } }],
    Object.assign({ title: { text: "time per state [s]", font: { size: 11 } } }, m, GREY), PLOT_CFG);
  const rs = Object.entries(k.reasons || {});
  Plotly.react($("chart-reasons"), [{ x: rs.map((e) => e[1]), y: rs.map((e) => e[0]), type: "bar", orientation: "h", marker: { color: "#7a7a7a" } }],
    Object.assign({ title: { text: "rework / stop reasons", font: { size: 11 } } }, m, GREY, { margin: { l: 110, r: 6, t: 22, b: 28 } }), PLOT_CFG);
}
async function refreshRework() {
  const q = (await api("/api/v1/rework-queue")).items;
  $("rework-count").textContent = q.length ? `(${q.length})` : "";
  const tb = $("rework-rows"); tb.innerHTML = "";
  for (const it of q) {
    const tr = document.createElement("tr"); tr.dataset.item = it.id;
    tr.innerHTML = `<td>${esc(it.id)}</td><td>${esc(it.style)} ${esc(it.size_eu ?? "")} ${esc(it.side ?? "")}</td><td>${esc(it.cause)}</td><td>${esc(it.reason)}</td><td></td>`;
    if (S.me.may_override) for (const [act, label] of [["force_pass", "Force pass"], ["force_fail", "Force fail"], ["respray", "Re-spray"], ["skip", "Skip"]]) {
      const b = document.createElement("button"); b.textContent = label; b.dataset.action = act;
      b.onclick = () => override(it.id, act, label); tr.lastChild.appendChild(b);
    }
    tb.appendChild(tr);
  }
}
async function override(id, action, label) {
  const why = await askWhy(`${label}: ${id}`); if (!why) return;
  try { const r = await api(`/api/v1/work-items/${encodeURIComponent(id)}/overrides`, { method: "POST", body: { Action: action, Reason: why },
      headers: { "Idempotency-Key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random() } }); note(r.outcome); }
  catch (e) { note(`${label}: ${e.message}`, true); }
  refreshRework(); refreshPair();
}
async function refreshJobs() {
  const jobs = (await api("/api/v1/job-orders?limit=200")).items;
  const tb = $("job-rows"); tb.innerHTML = "";
  for (const j of jobs.reverse()) {
    const a = j.JobResponse.Actuals, fpy = a.PairsDone ? ((a.PassedFirstTime / a.PairsDone) * 100).toFixed(0) + " %" : "–";
    tb.insertAdjacentHTML("beforeend", `<tr><td>${esc(j.JobOrder.JobOrderID)}</td><td>${esc(j.JobOrder.WorkMasterID)}</td><td>${j.JobOrder.Priority}</td>` +
      `<td>${esc(j.JobState.StateText)}${j.JobState.SubState ? " / " + esc(j.JobState.SubState) : ""}</td><td>${a.PairsDone}/${a.PairsPlanned}</td><td>${fpy}</td></tr>`);
  }
}

// ---- live events --------------------------------------------------------------------------------------------------
function onEvent(ev) {
  if (ev.kind === "state" && ev.data && STATE_NAMES[ev.data.after]) showState(STATE_NAMES[ev.data.after]);
  if (ev.kind === "job" && ev.data && ev.data.JobOrderID) S.lastJob = `${ev.data.JobOrderID} ${ev.data.StateText}`;
  const li = document.createElement("li");
  li.textContent = `${ev.seq} ${new Date(ev.ts * 1000).toLocaleTimeString()} ${ev.kind}: ${ev.message}`;
  const list = $("event-list"); list.prepend(li); while (list.children.length > 200) list.lastChild.remove();
  refreshCell().catch(() => {});
  later("pair", () => { refreshPair(); refreshRework(); refreshKpis(); refreshJobs(); }, 250);
  later("alarms", refreshAlarms, 250);
}
async function follow() {
  const my = {}; S.stream = my;
  while (S.stream === my && S.token) {
    const ctl = new AbortController(); my.abort = () => ctl.abort();
    try {
      const headers = { Authorization: "Bearer " + S.token, Accept: "text/event-stream" };
      if (S.lastEventId) headers["Last-Event-ID"] = S.lastEventId;
      const r = await fetch("/api/v1/events", { headers, signal: ctl.signal });
      if (!r.ok) throw new Error("stream " + r.status);
      const reader = r.body.getReader(), dec = new TextDecoder(); let buf = "";
      for (;;) {
        const { value, done } = await reader.read(); if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut; while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut); buf = buf.slice(cut + 2); let id = null, data = "";
          for (const line of block.split("\n")) { if (line.startsWith("id:")) id = line.slice(3).trim(); else if (line.startsWith("data:")) data += line.slice(5).trim(); }
          if (id) S.lastEventId = id;
          if (data) { try { onEvent(JSON.parse(data)); } catch (e) { /* keep-alive or foreign line */ } }
        }
      }
    } catch (e) { if (S.stream !== my) return; }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

// ---- sign in / out, tabs ---------------------------------------------------------------------------------------------
async function start() {
  try { S.me = await api("/api/v1/me"); } catch (e) { if (e.message !== "401") logout(e.message); return; }
  $("login").hidden = true; $("console").hidden = false; $("user").textContent = `${S.me.name} (${S.me.role})`;
  await Promise.allSettled([refreshCell(), refreshAlarms(), refreshKpis(), refreshRework(), refreshJobs(), refreshPair()]);
  follow();
  setInterval(() => refreshCell().catch(() => {}), 5000);
}
function logout(msg) {
  S.token = ""; sessionStorage.removeItem("gluecell-token"); if (S.stream && S.stream.abort) S.stream.abort(); S.stream = null;
  $("console").hidden = true; $("login").hidden = false;
  if (msg) { $("login-error").textContent = msg; $("login-error").hidden = false; }
}
document.addEventListener("DOMContentLoaded", () => {
  if (location.hash.startsWith("#token=")) {  // one-time sign-in link printed by gluecell demo (never sent to the server)
    S.token = decodeURIComponent(location.hash.slice(7)); sessionStorage.setItem("gluecell-token", S.token);
    history.replaceState(null, "", location.pathname);
  }
  $("login-form").onsubmit = (ev) => { ev.preventDefault(); S.token = $("token").value.trim(); sessionStorage.setItem("gluecell-token", S.token); start(); };
  $("logout").onclick = () => logout("");
  for (const t of document.querySelectorAll(".tab")) t.onclick = () => {
    for (const o of document.querySelectorAll(".tab")) o.classList.toggle("active", o === t);
    for (const b of document.querySelectorAll(".tab-body")) b.hidden = b.id !== "tab-" + t.dataset.tab;
    window.dispatchEvent(new Event("resize"));
  };
  if (S.token) start();
});
