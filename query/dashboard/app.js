// The Profilestream dashboard: a small single-page app over the query API (same origin).
// No framework and nothing from the internet; user data is only ever set as text, never HTML.
"use strict";

const TOKEN_KEY = "profilestream-admin-token";
// The default properties (names, labels, which identify a person), the constraint/type matrix
// and the property types come from GET /v1/properties (declared once, in schemas/properties.py).
const view = () => document.getElementById("view");
let flashNext = null;
// A write answered 202 (accepted, not applied yet): the next read of that user waits for it.
let pendingAfter = null;  // {userId, position}
// The page asked for before signing in (a shared link), opened once signed in.
let afterSignIn = null;
// Who is signed in ({name, role} from GET /v1/me): analysts only read, so the pages leave out
// the controls of writes (the API refuses them anyway).
let operator = null;

function isAdmin() {
  return Boolean(operator && operator.role === "admin");
}

// A page only admins may open, reached by its address: say so instead of a 403 later.
function adminOnly(title) {
  if (isAdmin()) return false;
  show(h("h1", {}, title), h("div", { class: "card" },
    `This needs the admin role; you are signed in as ${operator ? operator.name : "?"} (${operator ? operator.role : "?"}). `,
    h("a", { href: "#/users" }, "Back to users")));
  return true;
}

function showOperator() {
  document.getElementById("whoami").textContent = operator ? `Signed in as ${operator.name} (${operator.role})` : "";
  for (const el of document.querySelectorAll("[data-admin-only]")) el.hidden = !isAdmin();
}

// --- small helpers ------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// An SVG element (the charts): attributes as given, and an optional text.
function svg(tag, attrs, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function show(...nodes) {
  // A page whose request was refused with 401 has sent the tab to sign in: its late answer
  // must not cover the sign-in form.
  const signingIn = location.hash === "#/signin";
  if (signingIn && !(nodes[0] instanceof Element && nodes[0].classList.contains("signin"))) return;
  view().replaceChildren(...nodes);
}

function flash(message, kind = "ok") {
  const box = document.getElementById("flash");
  box.replaceChildren(message ? h("div", { class: `banner ${kind}` }, message) : "");
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString();
}

function fullName(p) {
  return [p.first_name, p.last_name].filter(Boolean).join(" ");
}

function statusBadge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

function errorBanner(error) {
  return h("div", { class: "banner error", role: "alert" }, describe(error));
}

function describe(error) {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error.message || error}`;
  if (error.status === 0) return "Cannot reach the query service. Is it running?";
  if (error.status === 503) return `The service is busy or a store is down: ${error.message}. Retry in a moment.`;
  return error.message;
}

function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// --- the API ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, errors) {
    super(message);
    this.status = status;
    this.errors = errors || [];
  }
}

// A request carrying the token; a 401 signs the tab out. A network failure is an ApiError(0).
async function authorizedFetch(method, path, body, extraHeaders) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}`, ...(extraHeaders || {}) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "network error", []);
  }
  if (response.status === 401 && location.hash !== "#/signin") {
    afterSignIn = location.hash;
    sessionStorage.removeItem(TOKEN_KEY);
    operator = null;
    flashNext = ["Your session ended: sign in again.", "error"];
    location.hash = "#/signin";
  }
  return response;
}

function apiErrorFrom(response, data) {
  return new ApiError(response.status, (data && data.message) || response.statusText,
    (data && data.errors) || []);
}

// The ApiError of a refused answer whose body has not been read yet.
async function apiErrorOf(response) {
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  return apiErrorFrom(response, data);
}

async function api(method, path, body) {
  const response = await authorizedFetch(method, path, body);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
  const position = response.headers.get("X-Profilestream-Position");
  if (response.status === 202 && position && data && data.user_id) {
    pendingAfter = { userId: data.user_id, position };
  }
  if (!response.ok) throw apiErrorFrom(response, data);
  return { status: response.status, data };
}

// Field errors from a 400 next to their inputs; the rest in a banner.
function showFieldErrors(form, error, banner) {
  for (const el of form.querySelectorAll(".field")) {
    el.classList.remove("invalid");
    const old = el.querySelector(".error");
    if (old) old.remove();
  }
  const unplaced = [];
  for (const item of error.errors || []) {
    const field = form.querySelector(`.field[data-field="${CSS.escape(item.field)}"]`);
    if (field) {
      field.classList.add("invalid");
      field.append(h("div", { class: "error" }, item.reason));
    } else {
      unplaced.push(`${item.field}: ${item.reason}`);
    }
  }
  const placed = (error.errors || []).length - unplaced.length;
  const lines = [placed ? "Fix the highlighted fields." : describe(error), ...unplaced];
  banner.replaceChildren(h("div", { class: "banner error", role: "alert" },
    lines.map((line, i) => (i ? [h("br"), line] : line))));
}

// --- sign in ------------------------------------------------------------------------------

function signIn() {
  const input = h("input", { id: "token", type: "password", autocomplete: "current-password", required: true });
  const message = h("div");
  const form = h("form", { class: "card signin", onsubmit: async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      operator = (await api("GET", "/v1/me")).data;
      location.hash = afterSignIn || "#/users";
      afterSignIn = null;
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      operator = null;
      message.replaceChildren(h("div", { class: "banner error", role: "alert" },
        error.status === 401 ? "That token is not valid." : describe(error)));
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", { class: "muted" }, "Use the admin token (PS_ADMIN_TOKEN; `make up` prints it) or an operator token (",
    h("code", {}, "profilestream tokens create"), ", or the Tokens page)."),
  message,
  h("div", { class: "field" }, h("label", { for: "token" }, "Admin token or operator token"), input),
  h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, "Sign in")));
  show(form);
  input.focus();
}

// --- users list ---------------------------------------------------------------------------

async function usersList(query) {
  const params = new URLSearchParams(query || "");
  const q = params.get("q") || "", status = params.get("status") || "", tag = params.get("tag") || "";
  const cursor = params.get("cursor") || "";
  const search = h("input", { id: "q", type: "search", value: q, placeholder: "Customer ID, email or name" });
  const statusSelect = h("select", { id: "status" },
    ["", "active", "disabled"].map((s) => h("option", { value: s, selected: s === status }, s || "Any status")));
  const tagInput = h("input", { id: "tag", value: tag, placeholder: "Tag" });
  const go = (extra) => {
    location.hash = `#/users${qs({ q: search.value.trim(), status: statusSelect.value, tag: tagInput.value.trim(), ...extra })}`;
  };
  const toolbar = h("form", { class: "toolbar", role: "search", onsubmit: (e) => { e.preventDefault(); go({}); } },
    h("div", { class: "grow" }, h("label", { for: "q" }, "Search"), search),
    h("div", {}, h("label", { for: "status" }, "Status"), statusSelect),
    h("div", {}, h("label", { for: "tag" }, "Tag"), tagInput),
    h("button", { type: "submit" }, "Search"),
    h("span", { class: "spacer" }),
    isAdmin() ? h("button", { type: "button", class: "primary", onclick: () => { location.hash = "#/users/new"; } }, "Create user") : null);
  const results = h("div", {}, h("p", { class: "muted" }, "Loading users…"));
  show(h("h1", {}, "Users"), toolbar, results);

  try {
    const { data } = await api("GET", `/v1/users${qs({ q, status, tag, cursor, limit: 25 })}`);
    if (!data.users.length) {
      const filtered = q || status || tag;
      results.replaceChildren(h("div", { class: "card muted" }, filtered
        ? "No users match these filters."
        : "No users yet. Create one, or send events to the ingest API."));
      return;
    }
    const rows = data.users.map((u) => h("tr", {},
      h("td", {}, u.customer_id || "—"),
      h("td", {}, h("a", { href: `#/users/${encodeURIComponent(u.user_id)}` }, u.user_id)),
      h("td", {}, u.first_name || ""),
      h("td", {}, u.last_name || ""),
      h("td", {}, statusBadge(u.status)),
      h("td", { class: "hide-narrow" }, u.tags.map((t) => h("span", { class: "chip" }, t))),
      h("td", { class: "hide-narrow" }, when(u.last_seen))));
    const table = h("div", { class: "table-wrap" }, h("table", { "aria-label": "Users" },
      h("thead", {}, h("tr", {}, ["Customer ID", "User ID", "First name", "Last name", "Status"].map((t) => h("th", {}, t)),
        h("th", { class: "hide-narrow" }, "Tags"), h("th", { class: "hide-narrow" }, "Last seen"))),
      h("tbody", {}, rows)));
    const pager = h("div", { class: "pager" },
      cursor ? h("button", { type: "button", onclick: () => go({}) }, "First page") : null,
      data.next_cursor ? h("button", { type: "button", onclick: () => go({ cursor: data.next_cursor }) }, "Next page") : null);
    results.replaceChildren(table, pager);
  } catch (error) {
    results.replaceChildren(errorBanner(error));
  }
}

// --- property inputs ----------------------------------------------------------------------

function constraintText(d) {
  const parts = [];
  if (d.required) parts.push("required");
  if (d.min !== null && d.min !== undefined) parts.push(`min ${d.min}`);
  if (d.max !== null && d.max !== undefined) parts.push(`max ${d.max}`);
  if (d.min_length !== null && d.min_length !== undefined) parts.push(`at least ${d.min_length} characters`);
  if (d.max_length !== null && d.max_length !== undefined) parts.push(`at most ${d.max_length} characters`);
  if (d.pattern && !d.identity) parts.push(`pattern ${d.pattern}`);
  if (d.allowed_values && d.type !== "enum") parts.push(`one of ${d.allowed_values.join(", ")}`);
  if (d.max_items !== null && d.max_items !== undefined) parts.push(`at most ${d.max_items} items`);
  return parts.join(" · ");
}

// An input for a property of definition `d`; read back with `readValue`.
function propertyInput(id, d, value) {
  const present = value !== null && value !== undefined;
  switch (d.type) {
    case "enum":
      return h("select", { id },
        h("option", { value: "" }, "—"),
        d.allowed_values.map((v) => h("option", { value: v, selected: present && v === value }, v)));
    case "boolean":
      return h("select", { id },
        h("option", { value: "" }, "—"),
        h("option", { value: "true", selected: value === true }, "true"),
        h("option", { value: "false", selected: value === false }, "false"));
    case "integer":
    case "number":
      return h("input", { id, type: "text", inputmode: "decimal", value: present ? String(value) : "" });
    case "date":
      return h("input", { id, type: "date", value: present ? value : "" });
    case "datetime":
      return h("input", { id, type: "text", placeholder: "2026-11-29T10:00:00Z", value: present ? value : "" });
    case "list":
      return h("input", { id, type: "text", placeholder: "comma, separated", value: present ? value.join(", ") : "" });
    default:
      return h("input", { id, type: d.name === "email" ? "email" : "text", value: present ? String(value) : "" });
  }
}

// The typed value of an input, or null when empty. Unparsable numbers are sent as text so
// the server names the problem in its own words.
function readValue(input, d) {
  const raw = input.value.trim();
  if (raw === "") return null;
  switch (d.type) {
    case "boolean": return raw === "true";
    case "integer": return /^-?\d+$/.test(raw) ? Number(raw) : raw;
    case "number": return raw !== "" && !isNaN(Number(raw)) ? Number(raw) : raw;
    case "list": return raw.split(",").map((s) => s.trim()).filter(Boolean);
    default: return raw;
  }
}

function propertyField(key, label, d, value, marker) {
  const id = `f-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const input = propertyInput(id, d, value);
  const hint = constraintText(d);
  return {
    key, d, input,
    node: h("div", { class: "field", "data-field": key },
      h("label", { for: id }, label, marker ? h("span", { class: "req", title: "identity property" }, " *") : null),
      input,
      hint ? h("div", { class: "hint" }, hint) : null,
      d.description ? h("div", { class: "hint" }, d.description) : null),
  };
}

async function loadDefinitions() {
  const { data } = await api("GET", "/v1/properties");
  return { defaults: data.default, custom: data.custom, constraints: data.constraints, types: data.types };
}

// The default and custom property fields of a user form.
function propertyFields(definitions, profile) {
  const defaults = definitions.defaults.map((d) =>
    propertyField(d.name, d.label, d, profile ? profile[d.name] : null, d.identity));
  const custom = definitions.custom.map((d) =>
    propertyField(`custom.${d.name}`, d.name + (d.required ? " (required)" : ""), d,
      profile ? profile.custom[d.name] : null, false));
  return { defaults, custom };
}

// --- create user --------------------------------------------------------------------------

async function createUser() {
  if (adminOnly("Create user")) return;
  show(h("h1", {}, "Create user"), h("p", { class: "muted" }, "Loading property definitions…"));
  let definitions;
  try {
    definitions = await loadDefinitions();
  } catch (error) {
    show(h("h1", {}, "Create user"), errorBanner(error));
    return;
  }
  const fields = propertyFields(definitions, null);
  const userId = h("input", { id: "f-user_id", placeholder: "generated if empty" });
  const tags = h("input", { id: "f-tags", placeholder: "comma, separated" });
  const banner = h("div");
  const submit = h("button", { class: "primary", type: "submit" }, "Create user");
  const form = h("form", { class: "card", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const body = {};
    if (userId.value.trim()) body.user_id = userId.value.trim();
    for (const f of fields.defaults) {
      const value = readValue(f.input, f.d);
      if (value !== null) body[f.key] = value;
    }
    const custom = {};
    for (const f of fields.custom) {
      const value = readValue(f.input, f.d);
      if (value !== null) custom[f.d.name] = value;
    }
    if (Object.keys(custom).length) body.custom = custom;
    const tagList = tags.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (tagList.length) body.tags = tagList;
    submit.disabled = true;
    try {
      const { status, data } = await api("POST", "/v1/users", body);
      flashNext = [status === 202 ? "User accepted; it appears once the materializer applies it." : "User created.", "ok"];
      location.hash = `#/users/${encodeURIComponent(data.user_id)}`;
    } catch (error) {
      showFieldErrors(form, error, banner);
    } finally {
      submit.disabled = false;
    }
  } },
  banner,
  h("h2", {}, "Identity"),
  h("p", { class: "muted" }, "At least one of the properties marked * is required."),
  h("div", { class: "grid" }, fields.defaults.slice(0, 3).map((f) => f.node)),
  h("h2", {}, "Default properties"),
  h("div", { class: "grid" }, fields.defaults.slice(3).map((f) => f.node)),
  h("h2", {}, "Custom properties"),
  fields.custom.length ? h("div", { class: "grid" }, fields.custom.map((f) => f.node))
    : h("p", { class: "muted" }, "No custom properties are defined. ", h("a", { href: "#/properties" }, "Define one.")),
  h("h2", {}, "Other"),
  h("div", { class: "grid" },
    h("div", { class: "field", "data-field": "user_id" }, h("label", { for: "f-user_id" }, "User ID"), userId),
    h("div", { class: "field", "data-field": "tags" }, h("label", { for: "f-tags" }, "Tags"), tags)),
  h("div", { class: "actions" },
    h("button", { type: "button", onclick: () => { location.hash = "#/users"; } }, "Cancel"), submit));
  show(h("h1", {}, "Create user"), form);
}

// --- user page ----------------------------------------------------------------------------

async function userPage(userId, tab) {
  tab = tab || "overview";
  show(h("p", { class: "muted" }, "Loading user…"));
  let profile;
  let after = pendingAfter && pendingAfter.userId === userId ? pendingAfter.position : null;
  pendingAfter = null;
  for (let attempt = 1; ; attempt++) {
    const path = `/v1/users/${encodeURIComponent(userId)}` + (after ? `?after=${encodeURIComponent(after)}` : "");
    try {
      profile = (await api("GET", path)).data;
      break;
    } catch (error) {
      if (after && error.status === 410) {  // the write's log is gone (broker restarted): read as is
        after = null;
        continue;
      }
      if (after && error.status === 503 && attempt < 20) {  // the write is not applied yet
        show(h("p", { class: "muted" }, "Waiting for the materializer to apply the write…"));
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      show(h("h1", {}, userId), error.status === 404
        ? h("div", { class: "card" }, "No such user (it may have been deleted). ", h("a", { href: "#/users" }, "Back to users"))
        : errorBanner(error));
      return;
    }
  }
  if (profile.user_id !== userId) {  // an anonymous id merged into this user
    location.replace(`#/users/${encodeURIComponent(profile.user_id)}/${tab}`);
    return;
  }
  const base = `#/users/${encodeURIComponent(userId)}`;
  const toggle = h("button", { type: "button", onclick: async () => {
    toggle.disabled = true;
    try {
      const next = profile.status === "disabled" ? "active" : "disabled";
      await api("PATCH", `/v1/users/${encodeURIComponent(userId)}`, { status: next });
      flashNext = [next === "disabled" ? "User disabled." : "User activated.", "ok"];
      render();
    } catch (error) {
      flash(describe(error), "error");
      toggle.disabled = false;
    }
  } }, profile.status === "disabled" ? "Activate" : "Disable");
  const header = h("div", { class: "header-row" },
    h("h1", {}, fullName(profile) || profile.user_id, " ", statusBadge(profile.status)),
    isAdmin() ? toggle : null,
    isAdmin() ? h("button", { type: "button", class: "danger", onclick: () => confirmDelete(profile) }, "Delete") : null);
  if (tab === "edit" && !isAdmin()) tab = "overview";
  const sections = [["overview", "Overview"], ["edit", "Edit"], ["configs", "Configs"], ["events", "Events"]]
    .filter(([key]) => key !== "edit" || isAdmin());
  const tabs = h("nav", { class: "tabs", "aria-label": "User sections" },
    sections.map(([key, label]) =>
      h("a", { href: `${base}/${key}`, class: key === tab ? "active" : "", "aria-current": key === tab ? "page" : null }, label)));
  const body = h("div");
  show(h("p", {}, h("a", { href: "#/users" }, "← Users")), header, tabs, body);
  const renderers = { overview: overviewTab, edit: editTab, configs: configsTab, events: eventsTab };
  await (renderers[tab] || overviewTab)(body, profile);
}

// The property definitions, or null after showing why they could not be loaded in `body`.
async function definitionsIn(body) {
  try {
    return await loadDefinitions();
  } catch (error) {
    body.replaceChildren(errorBanner(error));
    return null;
  }
}

async function overviewTab(body, p) {
  const definitions = await definitionsIn(body);
  if (!definitions) return;
  const kv = (pairs) => h("dl", { class: "kv" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === null || v === undefined || v === "" ? "—" : v)]));
  const custom = Object.entries(p.custom);
  const totals = Object.entries(p.event_totals).sort((a, b) => b[1] - a[1]);
  body.replaceChildren(
    h("div", { class: "grid" },
      h("div", { class: "card" }, h("h2", {}, "Properties"), kv(definitions.defaults.map((d) => [d.label, p[d.name]]))),
      h("div", { class: "card" }, h("h2", {}, "Activity"), kv([
        ["User ID", p.user_id], ["Status", statusBadge(p.status)],
        ["Identified", p.identified ? "yes" : "no (anonymous)"],
        ["Created", when(p.created_at)], ["First seen", when(p.first_seen)], ["Last seen", when(p.last_seen)],
        ["Events", String(p.event_count)],
        ["Tags", p.tags.length ? p.tags.map((t) => h("span", { class: "chip" }, t)) : "—"],
        ["Anonymous ids", p.anonymous_ids.join(", ")]]))),
    h("h2", {}, "Custom properties"),
    custom.length ? h("div", { class: "card" }, kv(custom.map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])))
      : h("p", { class: "muted" }, "No custom properties."),
    h("h2", {}, "Events by name"),
    totals.length ? h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Event"), h("th", {}, "Count"))),
      h("tbody", {}, totals.map(([name, n]) => h("tr", {}, h("td", {}, name), h("td", {}, String(n)))))))
      : h("p", { class: "muted" }, "No events yet."),
    p.rejections.length ? [h("h2", {}, "Writes not applied"),
      h("p", { class: "muted" }, "These SDK writes broke a property's constraints or an identity rule; their events are stored."),
      h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["When", "Field", "Reason"].map((t) => h("th", {}, t)))),
        h("tbody", {}, p.rejections.slice().reverse().map((r) => h("tr", {}, h("td", {}, when(r.at)), h("td", {}, r.field), h("td", {}, r.reason))))))] : null);
}

async function editTab(body, profile) {
  body.replaceChildren(h("p", { class: "muted" }, "Loading property definitions…"));
  const definitions = await definitionsIn(body);
  if (!definitions) return;
  const fields = propertyFields(definitions, profile);
  const tags = new Set(profile.tags);
  const chips = h("div");
  const drawTags = () => chips.replaceChildren(...[...tags].sort().map((t) => h("span", { class: "chip" }, t,
    h("button", { type: "button", "aria-label": `Remove tag ${t}`, onclick: () => { tags.delete(t); drawTags(); } }, "×"))));
  drawTags();
  const newTag = h("input", { id: "f-new-tag", placeholder: "new tag" });
  const addTag = () => {
    for (const t of newTag.value.split(",").map((s) => s.trim()).filter(Boolean)) tags.add(t);
    newTag.value = "";
    drawTags();
  };
  newTag.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); addTag(); } });
  const banner = h("div");
  const submit = h("button", { class: "primary", type: "submit" }, "Save changes");
  const form = h("form", { class: "card", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    addTag();
    const patch = {};
    const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    for (const f of fields.defaults) {
      const value = readValue(f.input, f.d);
      if (!same(value, profile[f.key])) patch[f.key] = value;
    }
    const custom = {};
    for (const f of fields.custom) {
      const value = readValue(f.input, f.d);
      if (!same(value, profile.custom[f.d.name])) custom[f.d.name] = value;
    }
    if (Object.keys(custom).length) patch.custom = custom;
    const added = [...tags].filter((t) => !profile.tags.includes(t));
    const removed = profile.tags.filter((t) => !tags.has(t));
    if (added.length) patch.tags_add = added;
    if (removed.length) patch.tags_remove = removed;
    if (!Object.keys(patch).length) {
      banner.replaceChildren(h("div", { class: "banner ok" }, "Nothing changed."));
      return;
    }
    submit.disabled = true;
    try {
      await api("PATCH", `/v1/users/${encodeURIComponent(profile.user_id)}`, patch);
      flashNext = ["Changes saved.", "ok"];
      location.hash = `#/users/${encodeURIComponent(profile.user_id)}/overview`;
    } catch (error) {
      showFieldErrors(form, error, banner);
      submit.disabled = false;
    }
  } },
  banner,
  h("h2", {}, "Default properties"),
  h("div", { class: "grid" }, fields.defaults.map((f) => f.node)),
  h("h2", {}, "Custom properties"),
  fields.custom.length ? h("div", { class: "grid" }, fields.custom.map((f) => f.node))
    : h("p", { class: "muted" }, "No custom properties are defined."),
  h("h2", {}, "Tags"),
  chips,
  h("div", { class: "toolbar" },
    h("div", { class: "grow field", "data-field": "tags_add" }, h("label", { for: "f-new-tag" }, "Add a tag"), newTag),
    h("button", { type: "button", onclick: addTag }, "Add tag")),
  h("div", { class: "actions" }, submit));
  body.replaceChildren(form);
}

async function configsTab(body, profile) {
  body.replaceChildren(h("p", { class: "muted" }, "Loading configs…"));
  try {
    const { data } = await api("GET", `/v1/users/${encodeURIComponent(profile.user_id)}/configs`);
    if (!data.length) {
      body.replaceChildren(h("div", { class: "card muted" },
        "No dynamic config has been served to this user yet. SDKs report one with a ",
        h("code", {}, "$config_served"), " or ", h("code", {}, "Experiment Viewed"), " event."));
      return;
    }
    body.replaceChildren(h("div", { class: "table-wrap" }, h("table", { "aria-label": "Configs" },
      h("thead", {}, h("tr", {}, ["Config", "Variation", "First served", "Last served", "Times", "History"].map((t) => h("th", {}, t)))),
      h("tbody", {}, data.map((c) => h("tr", {},
        h("td", {}, c.config), h("td", {}, h("strong", {}, c.variation)),
        h("td", {}, when(c.first_served)), h("td", {}, when(c.last_served)), h("td", {}, String(c.times_served)),
        h("td", {}, c.history.map((x) => h("div", {}, `${x.variation} since ${when(x.at)}`)))))))));
  } catch (error) {
    body.replaceChildren(errorBanner(error));
  }
}

// Event names from the catalog (GET /v1/events/names), or none when it cannot answer: the
// picker still lists the user's own names then.
async function catalogNames() {
  try {
    const { data } = await api("GET", `/v1/events/names${qs({ last: "90d", limit: 1000, tz: browserZone() })}`);
    return data.events.map((e) => e.name);
  } catch (error) {
    return [];
  }
}

async function eventsTab(body, profile) {
  const user = encodeURIComponent(profile.user_id);
  // The picker lists this user's event names, then every other name in the catalog (what was
  // sent by anyone in the last 90 days, the chart's longest preset).
  const own = Object.keys(profile.event_totals).sort();
  const catalog = (await catalogNames()).filter((n) => !own.includes(n)).sort();
  const names = [...own, ...catalog];
  const list = h("datalist", { id: "event-names" }, names.map((n) => h("option", { value: n })));

  // The sequence, newest first, with cursor pagination and a name filter.
  const filter = h("input", { id: "event-filter", list: "event-names", placeholder: "All events" });
  const sequence = h("div");
  const cursors = [];
  let pageTicket = 0;
  const loadPage = async (before) => {
    const mine = ++pageTicket;
    sequence.replaceChildren(h("p", { class: "muted" }, "Loading events…"));
    try {
      const { data } = await api("GET", `/v1/users/${user}/events${qs({ limit: 20, before, event: filter.value.trim() })}`);
      if (mine !== pageTicket) return;
      if (!data.events.length) {
        sequence.replaceChildren(h("div", { class: "card muted" }, filter.value.trim() ? "No events with this name." : "No events yet."));
        return;
      }
      const rows = data.events.map((e) => h("tr", {},
        h("td", {}, when(e.timestamp)), h("td", {}, e.name + (e.pageName ? ` (${e.pageName})` : "")),
        h("td", { class: "hide-narrow" }, e.type),
        h("td", { class: "props hide-narrow" }, JSON.stringify(e.type === "identify" ? e.traits : e.properties))));
      sequence.replaceChildren(
        h("div", { class: "table-wrap" }, h("table", { "aria-label": "Events" },
          h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "Event"), h("th", { class: "hide-narrow" }, "Type"), h("th", { class: "hide-narrow" }, "Properties"))),
          h("tbody", {}, rows))),
        h("div", { class: "pager" },
          cursors.length ? h("button", { type: "button", onclick: () => { cursors.pop(); loadPage(cursors[cursors.length - 1]); } }, "Newer") : null,
          data.next_cursor ? h("button", { type: "button", onclick: () => { cursors.push(data.next_cursor); loadPage(data.next_cursor); } }, "Older") : null));
    } catch (error) {
      if (mine === pageTicket) sequence.replaceChildren(errorBanner(error));
    }
  };

  // Daily counts of one event over the last N days, drawn as SVG bars.
  const option = (n) => h("option", { value: n, selected: n === own[0] && own.length === 1 }, n);
  const chartEvent = h("select", { id: "chart-event" }, h("option", { value: "" }, "All events"),
    own.length ? h("optgroup", { label: "This user's events" }, own.map(option)) : null,
    catalog.length ? h("optgroup", { label: "Other events (last 90 days)" }, catalog.map(option)) : null);
  const daysSelect = h("select", { id: "chart-days" }, ["7", "30", "90", "custom"].map((d) =>
    h("option", { value: d, selected: d === "30" }, d === "custom" ? "Custom…" : `Last ${d} days`)));
  const customDays = h("input", { id: "chart-custom-days", type: "number", min: "1", max: "365", value: "14", hidden: true, "aria-label": "Days" });
  const chart = h("div", { class: "card" });
  let chartTicket = 0;  // a slower answer to an earlier choice must not replace the latest
  const drawChart = async () => {
    const mine = ++chartTicket;
    const days = daysSelect.value === "custom" ? customDays.value : daysSelect.value;
    const name = chartEvent.value;
    chart.replaceChildren(h("p", { class: "muted" }, "Loading counts…"));
    try {
      const { data } = await api("GET", `/v1/users/${user}/events/daily${qs({ event: name, days, tz: browserZone() })}`);
      if (mine === chartTicket) chart.replaceChildren(barChart(data, name || "all events"));
    } catch (error) {
      if (mine === chartTicket) chart.replaceChildren(errorBanner(error));
    }
  };
  daysSelect.addEventListener("change", () => { customDays.hidden = daysSelect.value !== "custom"; drawChart(); });
  customDays.addEventListener("change", drawChart);
  chartEvent.addEventListener("change", drawChart);

  const insightsLink = h("a", {}, "Open in Insights");
  const linkInsights = () => {
    insightsLink.href = `#/insights?${new URLSearchParams([["user", profile.user_id], ...(chartEvent.value ? [["event", chartEvent.value]] : [])])}`;
  };
  linkInsights();
  chartEvent.addEventListener("change", linkInsights);
  body.replaceChildren(list,
    h("div", { class: "header-row" }, h("h2", {}, "Daily counts"), insightsLink),
    h("div", { class: "toolbar" },
      h("div", { class: "grow" }, h("label", { for: "chart-event" }, "Event"), chartEvent),
      h("div", {}, h("label", { for: "chart-days" }, "Period"), daysSelect),
      h("div", {}, h("label", { for: "chart-custom-days" }, customDays.hidden ? "" : "Days"), customDays)),
    chart,
    h("h2", {}, "Event sequence"),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); cursors.length = 0; loadPage(); } },
      h("div", { class: "grow" }, h("label", { for: "event-filter" }, "Filter by event name"), filter),
      h("button", { type: "submit" }, "Filter")),
    sequence);
  await Promise.all([loadPage(), drawChart()]);
}

function barChart(rows, label) {
  const total = rows.reduce((sum, r) => sum + r.count, 0);
  const max = Math.max(1, ...rows.map((r) => r.count));
  const width = 720, height = 200, left = 30, bottom = 28, top = 16;
  const step = (width - left) / rows.length;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": `Daily counts of ${label}: ${total} in ${rows.length} days` });
  const labelEvery = Math.ceil(rows.length / 10);
  rows.forEach((r, i) => {
    const barHeight = ((height - bottom - top) * r.count) / max;
    const x = left + i * step;
    const bar = svg("rect", { x: x + step * 0.15, y: height - bottom - barHeight, width: Math.max(1, step * 0.7), height: barHeight, class: "bar", "data-date": r.date, "data-count": r.count });
    bar.append(svg("title", {}, `${r.date}: ${r.count}`));
    root.append(bar);
    if (r.count && rows.length <= 31) root.append(svg("text", { x: x + step / 2, y: height - bottom - barHeight - 3, "text-anchor": "middle", class: "value" }, String(r.count)));
    if (i % labelEvery === 0) root.append(svg("text", { x: x + step / 2, y: height - 10, "text-anchor": "middle", class: "axis" }, r.date.slice(5)));
  });
  root.append(svg("text", { x: 0, y: top, class: "axis" }, String(max)));
  const summary = `${total} ${total === 1 ? "event" : "events"} (${label}) in the last ${rows.length} days`;
  return h("div", {}, h("p", { class: "muted", "data-testid": "chart-total" }, summary), root);
}

function confirmDelete(profile) {
  const name = fullName(profile) || profile.user_id;
  const message = h("div");
  const yes = h("button", { class: "danger", type: "button" }, "Yes, delete");
  const dialog = h("dialog", { "aria-labelledby": "delete-title" },
    h("h2", { id: "delete-title" }, `Delete ${name}?`),
    h("p", {}, "This removes the profile and every stored event of this user. It cannot be undone."),
    message,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), yes));
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try {
      await api("DELETE", `/v1/users/${encodeURIComponent(profile.user_id)}`);
      dialog.close();
      flashNext = [`Deleted ${name}.`, "ok"];
      location.hash = "#/users";
    } catch (error) {
      message.replaceChildren(errorBanner(error));
      yes.disabled = false;
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

// --- property definitions -----------------------------------------------------------------

async function propertiesPage() {
  show(h("h1", {}, "Properties"), h("p", { class: "muted" }, "Loading definitions…"));
  let data;
  try {
    data = (await api("GET", "/v1/properties")).data;
  } catch (error) {
    show(h("h1", {}, "Properties"), errorBanner(error));
    return;
  }
  const row = (d, custom) => h("tr", {},
    h("td", {}, d.name, d.identity ? h("span", { class: "req" }, " *") : null),
    h("td", {}, d.type), h("td", {}, constraintText(d) || "—"),
    h("td", { class: "hide-narrow" }, d.description || ""),
    h("td", {}, !custom ? h("span", { class: "muted" }, "default")
      : isAdmin() ? [h("a", { href: `#/properties/${encodeURIComponent(d.name)}` }, "Edit"), " ",
        h("button", { type: "button", class: "link", onclick: () => deleteProperty(d.name) }, "Delete")]
        : h("span", { class: "muted" }, "custom")));
  const table = (rows, label) => h("div", { class: "table-wrap" }, h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th", {}, "Constraints"), h("th", { class: "hide-narrow" }, "Description"), h("th", {}, ""))),
    h("tbody", {}, rows)));
  show(
    h("div", { class: "header-row" }, h("h1", {}, "Properties"),
      isAdmin() ? h("button", { type: "button", class: "primary", onclick: () => { location.hash = "#/properties/new"; } }, "Add property") : null),
    h("h2", {}, "Custom properties"),
    data.custom.length ? table(data.custom.map((d) => row(d, true)), "Custom properties")
      : h("div", { class: "card muted" }, isAdmin() ? "No custom properties yet. Add one to give users typed, checked fields." : "No custom properties yet."),
    h("h2", {}, "Default properties"),
    h("p", { class: "muted" }, "* identity property: creating a user needs at least one."),
    table(data.default.map((d) => row(d, false)), "Default properties"));
}

async function deleteProperty(name) {
  if (!window.confirm(`Delete the definition of ${name}? Values already stored stay on the profiles.`)) return;
  try {
    await api("DELETE", `/v1/properties/${encodeURIComponent(name)}`);
    flash(`Deleted the definition of ${name}.`);
    propertiesPage();
  } catch (error) {
    flash(describe(error), "error");
  }
}

async function propertyForm(name) {
  const editing = Boolean(name);
  const title = editing ? `Edit ${decodeURIComponent(name)}` : "Add property";
  if (adminOnly(title)) return;
  let current = { name: "", type: "string", required: false, description: "" };
  let catalog;
  show(h("h1", {}, title), h("p", { class: "muted" }, "Loading…"));
  try {
    catalog = await loadDefinitions();
    if (editing) current = (await api("GET", `/v1/properties/${name}`)).data;
  } catch (error) {
    show(h("h1", {}, title), errorBanner(error));
    return;
  }
  const CONSTRAINTS = catalog.constraints;
  const field = (key, label, input, hint) => h("div", { class: "field", "data-field": key },
    h("label", { for: `p-${key}` }, label), input, hint ? h("div", { class: "hint" }, hint) : null);
  const text = (key, value, attrs) => h("input", { id: `p-${key}`, value: value ?? "", ...(attrs || {}) });
  const inputs = {
    name: text("name", current.name, { disabled: editing, placeholder: "plan" }),
    type: h("select", { id: "p-type" }, catalog.types.map((t) =>
      h("option", { value: t, selected: t === current.type }, t === "list" ? "list of strings" : t))),
    required: h("input", { id: "p-required", type: "checkbox", checked: current.required }),
    min: text("min", current.min, { inputmode: "decimal" }),
    max: text("max", current.max, { inputmode: "decimal" }),
    min_length: text("min_length", current.min_length, { inputmode: "numeric" }),
    max_length: text("max_length", current.max_length, { inputmode: "numeric" }),
    pattern: text("pattern", current.pattern, { placeholder: "[A-Z]{2}-[0-9]+" }),
    allowed_values: text("allowed_values", (current.allowed_values || []).join(", "), { placeholder: "free, pro" }),
    max_items: text("max_items", current.max_items, { inputmode: "numeric" }),
    description: text("description", current.description),
  };
  const labels = { min: "Minimum", max: "Maximum", min_length: "Min length", max_length: "Max length", pattern: "Pattern (whole value)", allowed_values: "Allowed values", max_items: "Max items" };
  const constraintFields = Object.fromEntries(Object.keys(CONSTRAINTS).map((k) => [k, field(k, labels[k], inputs[k])]));
  const sync = () => {
    for (const [key, types] of Object.entries(CONSTRAINTS)) constraintFields[key].hidden = !types.includes(inputs.type.value);
  };
  inputs.type.addEventListener("change", sync);
  sync();
  const banner = h("div");
  const numberOrText = (raw) => (raw === "" ? null : (!isNaN(Number(raw)) ? Number(raw) : raw));
  const form = h("form", { class: "card", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const type = inputs.type.value;
    const body = { type, required: inputs.required.checked, description: inputs.description.value.trim() };
    for (const key of Object.keys(CONSTRAINTS)) {
      const raw = inputs[key].value.trim();
      let value = null;
      if (CONSTRAINTS[key].includes(type) && raw !== "") {
        value = key === "pattern" ? raw
          : key === "allowed_values" ? raw.split(",").map((s) => s.trim()).filter(Boolean)
            : numberOrText(raw);
      }
      if (value !== null || editing) body[key] = value;
    }
    try {
      if (editing) await api("PATCH", `/v1/properties/${name}`, body);
      else await api("POST", "/v1/properties", { name: inputs.name.value.trim(), ...body });
      flashNext = [editing ? "Definition saved." : "Property added.", "ok"];
      location.hash = "#/properties";
    } catch (error) {
      showFieldErrors(form, error, banner);
    }
  } },
  banner,
  h("div", { class: "grid" },
    field("name", "Name", inputs.name, "a letter, then letters, digits, _ . -"),
    field("type", "Type", inputs.type),
    h("div", { class: "field", "data-field": "required" }, h("label", { for: "p-required" }, "Required"), inputs.required),
    Object.values(constraintFields),
    field("description", "Description", inputs.description)),
  h("div", { class: "actions" },
    h("button", { type: "button", onclick: () => { location.hash = "#/properties"; } }, "Cancel"),
    h("button", { type: "submit", class: "primary" }, editing ? "Save" : "Add property")));
  show(h("h1", {}, title), form);
}

// --- routing ------------------------------------------------------------------------------

const ROUTES = [
  [/^#\/signin$/, () => signIn()],
  [/^#\/users\/new$/, () => createUser()],
  [/^#\/users\/([^/?]+)(?:\/(overview|edit|configs|events))?$/, (m) => userPage(decodeURIComponent(m[1]), m[2])],
  [/^#\/users(?:\?(.*))?$/, (m) => usersList(m[1])],
  [/^#\/insights(?:\?(.*))?$/, (m) => insightsPage(m[1])],
  [/^#\/properties$/, () => propertiesPage()],
  [/^#\/properties\/new$/, () => propertyForm(null)],
  [/^#\/properties\/([^/?]+)$/, (m) => propertyForm(m[1])],
  [/^#\/debugger(?:\?(.*))?$/, (m) => debuggerPage(m[1])],
  [/^#\/tokens$/, () => tokensPage()],
  [/^#\/audit(?:\?(.*))?$/, (m) => auditPage(m[1])],
];

async function render() {
  const signedIn = Boolean(sessionStorage.getItem(TOKEN_KEY));
  const hash = location.hash || "#/users";
  if (!signedIn && hash !== "#/signin") {
    if (location.hash && location.hash !== "#/users") afterSignIn = location.hash;
    location.hash = "#/signin";
    return;
  }
  if (signedIn && !operator && hash !== "#/signin") {
    // A reload keeps the token (sessionStorage), not who it belongs to: ask once.
    try {
      operator = (await api("GET", "/v1/me")).data;
    } catch (error) {
      if (error.status !== 401) show(h("h1", {}, "Profilestream"), errorBanner(error));
      return;  // a 401 went to the sign-in page already
    }
    if ((location.hash || "#/users") !== hash) return;  // moved on meanwhile: that render wins
  }
  document.getElementById("nav").hidden = !signedIn;
  showOperator();
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", hash.startsWith(`#/${link.dataset.nav}`));
  }
  flash(flashNext ? flashNext[0] : "", flashNext ? flashNext[1] : "ok");
  flashNext = null;
  for (const [pattern, handler] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      handler(match);
      return;
    }
  }
  show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/users" }, "Go to users")));
}

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  operator = null;
  location.hash = "#/signin";
});
window.addEventListener("hashchange", render);
render();
