// The live debugger page: the events arriving now and the items ingest refused, with their
// reasons (GET /v1/debugger/events, polled every second while the page is shown and not
// paused). Filters live in the hash (#/debugger?kind=rejected&event=signup), so a reload or a
// shared link shows the same view. Bodies are shown as text only, never as HTML. Loaded before
// app.js, whose helpers (h, api, show, describe, qs) it calls only at run time.
"use strict";

const DEBUGGER_POLL_MS = 1000;
const DEBUGGER_RETRY_MS = 3000;
const DEBUGGER_MAX_ROWS = 500;  // rows kept in the page; the oldest go first
const DEBUGGER_FILTERS = ["kind", "source", "type", "event", "user"];
const DEBUGGER_TYPES = ["track", "identify", "page", "screen", "group", "alias"];

// The page while it is shown: a new hash (other filters) updates it in place.
let debuggerUi = null;

function debuggerFilters(query) {
  const params = new URLSearchParams(query || "");
  return Object.fromEntries(DEBUGGER_FILTERS.map((name) => [name, (params.get(name) || "").trim()]));
}

function debuggerPage(query) {
  const filters = debuggerFilters(query);
  if (debuggerUi && document.contains(debuggerUi.root)) {
    debuggerUi.setFilters(filters);
    return;
  }
  debuggerUi = buildDebugger(filters);
  show(debuggerUi.root);
  debuggerUi.poll();
}

function buildDebugger(initial) {
  const ui = {
    filters: initial, after: 0, paused: false, timer: null, generation: 0,
    rows: new Map(),  // seq -> {row, detail}
  };

  // --- controls: the filters, in the hash ---
  const inputs = {
    kind: h("select", { id: "dbg-kind" }, [["", "Accepted and rejected"], ["accepted", "Accepted"], ["rejected", "Rejected"]]
      .map(([value, label]) => h("option", { value }, label))),
    source: h("input", { id: "dbg-source", placeholder: "Source" }),
    type: h("select", { id: "dbg-type" }, h("option", { value: "" }, "Any type"),
      DEBUGGER_TYPES.map((t) => h("option", { value: t }, t))),
    event: h("input", { id: "dbg-event", type: "search", placeholder: "Part of the name" }),
    user: h("input", { id: "dbg-user", type: "search", placeholder: "Part of the user id" }),
  };
  const fillInputs = () => {
    for (const name of DEBUGGER_FILTERS) inputs[name].value = ui.filters[name];
  };
  const applyInputs = () => {
    const wanted = Object.fromEntries(DEBUGGER_FILTERS.map((name) => [name, inputs[name].value.trim()]));
    location.hash = `#/debugger${qs(wanted)}`;
  };
  inputs.kind.addEventListener("change", applyInputs);
  inputs.type.addEventListener("change", applyInputs);
  const labelled = (name, label) => h("div", {}, h("label", { for: `dbg-${name}` }, label), inputs[name]);
  const toolbar = h("form", { class: "toolbar", role: "search", "aria-label": "Filters",
    onsubmit: (e) => { e.preventDefault(); applyInputs(); } },
  labelled("kind", "Kind"), labelled("source", "Source"), labelled("type", "Type"),
  labelled("event", "Event name"), labelled("user", "User"),
  h("button", { type: "submit" }, "Filter"),
  h("button", { type: "button", onclick: () => { location.hash = "#/debugger"; } }, "Reset"));

  // --- status, pause/resume, clear ---
  const status = h("span", { class: "debugger-status", role: "status", "aria-live": "polite" }, "Starting…");
  const problem = h("div");
  const pause = h("button", { type: "button", onclick: () => (ui.paused ? ui.resume() : ui.pause()) }, "Pause");
  const clear = h("button", { type: "button", onclick: () => ui.clear() }, "Clear");

  // --- the list, newest on top ---
  const empty = h("tr", { class: "debugger-empty" }, h("td", { colspan: 7, class: "muted" },
    "Waiting for events… send some to ingest (what arrives from now on shows here)."));
  const tbody = h("tbody", {}, empty);
  const table = h("div", { class: "table-wrap" }, h("table", { class: "debugger", "aria-label": "Live events" },
    h("thead", {}, h("tr", {}, ["Time", "Kind", "Source", "Type", "Event", "User", "Reasons"].map((t) => h("th", {}, t)))),
    tbody));

  ui.root = h("section", { class: "debugger-page" },
    h("div", { class: "header-row" }, h("h1", {}, "Debugger"), status, pause, clear),
    h("p", { class: "muted" }, "The events arriving now, and the ones ingest refused with their reasons. ",
      "Click a row for its full body."),
    toolbar, problem, table);

  const showStatus = (page) => {
    const parts = [ui.paused ? "Paused" : page && page.live ? "Live" : "Starting…"];
    if (page && page.skipped) parts.push(`${page.skipped.toLocaleString()} skipped over the rate limit`);
    parts.push(`${ui.rows.size.toLocaleString()} shown`);
    status.textContent = parts.join(" · ");
    status.classList.toggle("live", Boolean(page && page.live && !ui.paused));
  };

  const addRecord = (record) => {
    const reasons = (record.reasons || []).map((r) => `${r.field}: ${r.reason}`).join("; ");
    const time = record.received_at ? Date.parse(record.received_at) : 0;
    const row = h("tr", { class: `debugger-row ${record.kind}`, tabindex: 0, "aria-expanded": "false",
      "data-seq": record.seq, "data-time": time },
      h("td", { class: "nowrap" }, record.received_at ? new Date(record.received_at).toLocaleTimeString() : "—"),
      h("td", {}, h("span", { class: `badge ${record.kind}` }, record.kind)),
      h("td", {}, record.source || ""),
      h("td", {}, record.type || "—"),
      h("td", { class: "wrap" }, record.event || ""),
      h("td", { class: "wrap" }, record.user || ""),
      h("td", { class: "wrap reasons" }, reasons));
    const detail = h("tr", { class: "debugger-detail", hidden: true },
      h("td", { colspan: 7 }, bodyView(record)));
    const toggle = () => {
      detail.hidden = !detail.hidden;
      row.setAttribute("aria-expanded", String(!detail.hidden));
    };
    row.addEventListener("click", toggle);
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); }
    });
    empty.remove();
    // Newest on top by the time ingest received it: the two topics reach the reader in any
    // order, so a rejection may come before an event received earlier.
    const later = [...tbody.querySelectorAll("tr.debugger-row")].find((r) => Number(r.dataset.time) <= time);
    if (later) later.before(row, detail);
    else tbody.append(row, detail);
    ui.rows.set(record.seq, { row, detail });
  };

  const trim = () => {
    for (const [seq, { row, detail }] of ui.rows) {  // oldest first: Map keeps insertion order
      if (ui.rows.size <= DEBUGGER_MAX_ROWS) break;
      row.remove();
      detail.remove();
      ui.rows.delete(seq);
    }
  };

  ui.clear = () => {
    for (const { row, detail } of ui.rows.values()) { row.remove(); detail.remove(); }
    ui.rows.clear();
    tbody.append(empty);
    showStatus(ui.lastPage);
  };

  ui.setFilters = (filters) => {
    ui.filters = filters;
    fillInputs();
    ui.clear();
    ui.after = 0;  // what the server keeps that matches, then what arrives
    ui.restart();
  };

  ui.pause = () => {
    ui.paused = true;
    pause.textContent = "Resume";
    clearTimeout(ui.timer);
    ui.generation += 1;  // an answer on its way is dropped
    showStatus(ui.lastPage);
  };

  ui.resume = () => {
    ui.paused = false;
    pause.textContent = "Pause";
    ui.restart();  // from `after`: brings what arrived while paused (if still kept)
  };

  ui.restart = () => {
    clearTimeout(ui.timer);
    ui.generation += 1;
    if (!ui.paused) ui.poll();
  };

  ui.poll = async () => {
    const generation = ui.generation;
    let delay = DEBUGGER_POLL_MS;
    try {
      const params = { ...ui.filters, after: ui.after, limit: DEBUGGER_MAX_ROWS };
      const { data } = await api("GET", `/v1/debugger/events${qs(params)}`);
      if (generation !== ui.generation || !document.contains(ui.root)) return;
      for (const record of data.events) addRecord(record);
      trim();
      ui.after = data.next;
      ui.lastPage = data;
      problem.replaceChildren();
      showStatus(data);
    } catch (error) {
      if (generation !== ui.generation || !document.contains(ui.root)) return;
      problem.replaceChildren(errorBanner(error));
      delay = DEBUGGER_RETRY_MS;
    }
    if (!ui.paused && document.contains(ui.root)) ui.timer = setTimeout(ui.poll, delay);
  };

  fillInputs();
  return ui;
}

// A record's full body, pretty JSON set as text, with what identifies it.
function bodyView(record) {
  const facts = [
    ["Message id", record.message_id],
    ["Endpoint", record.endpoint],
    ["Received", record.received_at ? when(record.received_at) : null],
  ].filter(([, value]) => value);
  const text = typeof record.body === "string" ? record.body : JSON.stringify(record.body, null, 2);
  return h("div", { class: "debugger-body" },
    h("dl", { class: "kv" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    record.body_truncated ? h("p", { class: "muted" }, "Cut to the size limit of an event (PS_MAX_EVENT_BYTES).") : null,
    record.body === null || record.body === undefined
      ? h("p", { class: "muted" }, "No body recorded (a rejection from before bodies were kept).")
      : h("pre", { class: "json" }, text));
}
