// The operators' pages, for admins: tokens (create, list, revoke) and the audit log. Loaded
// before app.js, whose helpers (h, api, show, flash, describe, errorBanner, when, qs,
// adminOnly, showFieldErrors) it calls only at run time.
"use strict";

async function tokensPage() {
  if (adminOnly("Tokens")) return;
  const name = h("input", { id: "token-name", required: true, maxlength: "64", placeholder: "ada-laptop" });
  const role = h("select", { id: "token-role" },
    h("option", { value: "analyst" }, "analyst (reads only)"),
    h("option", { value: "admin" }, "admin (everything)"));
  const banner = h("div");
  const created = h("div");
  const list = h("div", {}, h("p", { class: "muted" }, "Loading tokens…"));
  const submit = h("button", { type: "submit", class: "primary" }, "Create token");
  const form = h("form", { class: "card", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const { data } = await api("POST", "/v1/tokens", { name: name.value.trim(), role: role.value });
      banner.replaceChildren();
      created.replaceChildren(newTokenCard(data));
      name.value = "";
      await drawTokens(list);
    } catch (error) {
      showFieldErrors(form, error, banner);
    } finally {
      submit.disabled = false;
    }
  } },
  banner,
  h("div", { class: "toolbar" },
    h("div", { class: "grow field", "data-field": "name" }, h("label", { for: "token-name" }, "Token name"), name),
    h("div", { class: "field", "data-field": "role" }, h("label", { for: "token-role" }, "Role"), role),
    submit),
  h("p", { class: "muted" }, "Names are 1 to 64 letters, digits, '.', '_' or '-'. The token is shown once; only its hash is stored."));
  show(h("h1", {}, "Tokens"), form, created, h("h2", {}, "Tokens in use"), list,
    h("p", { class: "muted" }, "The bootstrap token (PS_ADMIN_TOKEN) signs in as admin and is not listed here."));
  await drawTokens(list);
}

// The new token, shown this once, with a way to copy it.
function newTokenCard(data) {
  const code = h("code", { "data-testid": "new-token" }, data.token);
  const copy = h("button", { type: "button", onclick: async () => {
    try {
      await navigator.clipboard.writeText(data.token);
      copy.textContent = "Copied";
    } catch (error) {
      window.getSelection().selectAllChildren(code);  // no clipboard access: select it instead
      copy.textContent = "Selected: press Ctrl+C";
    }
  } }, "Copy");
  return h("div", { class: "card new-token", role: "status" },
    h("strong", {}, `Token for ${data.name} (${data.role})`),
    code,
    h("div", { class: "inline" }, copy,
      h("span", { class: "muted" }, "Copy it now: it is not shown again. Whoever holds it acts as ", data.name, ".")));
}

async function drawTokens(into) {
  let tokens;
  try {
    tokens = (await api("GET", "/v1/tokens")).data;
  } catch (error) {
    into.replaceChildren(errorBanner(error));
    return;
  }
  if (!tokens.length) {
    into.replaceChildren(h("div", { class: "card muted" }, "No tokens yet."));
    return;
  }
  const revoke = async (token) => {
    if (!window.confirm(`Revoke the token ${token.name}? Requests with it are refused from now on.`)) return;
    try {
      await api("DELETE", `/v1/tokens/${encodeURIComponent(token.name)}`);
      flash(`Revoked the token ${token.name}.`);
      await drawTokens(into);
    } catch (error) {
      flash(describe(error), "error");
    }
  };
  into.replaceChildren(h("div", { class: "table-wrap" }, h("table", { "aria-label": "Tokens" },
    h("thead", {}, h("tr", {}, ["Name", "Role", "Created", "Created by", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, tokens.map((t) => h("tr", {},
      h("td", {}, t.name), h("td", {}, t.role), h("td", {}, when(t.created_at)), h("td", {}, t.created_by),
      h("td", {}, h("button", { type: "button", class: "link", "aria-label": `Revoke ${t.name}`, onclick: () => revoke(t) }, "Revoke"))))))));
}

async function auditPage(query) {
  if (adminOnly("Audit log")) return;
  const before = new URLSearchParams(query || "").get("before") || "";
  const results = h("div", {}, h("p", { class: "muted" }, "Loading the audit log…"));
  show(h("h1", {}, "Audit log"),
    h("p", { class: "muted" }, "Every management write: who (the token's name), when, what and on which target, newest first."),
    results);
  let page;
  try {
    page = (await api("GET", `/v1/audit${qs({ limit: 50, before })}`)).data;
  } catch (error) {
    results.replaceChildren(errorBanner(error));
    return;
  }
  const pager = h("div", { class: "pager" },
    before ? h("button", { type: "button", onclick: () => { location.hash = "#/audit"; } }, "Newest") : null,
    page.next ? h("button", { type: "button", onclick: () => { location.hash = `#/audit${qs({ before: page.next })}`; } }, "Older") : null);
  if (!page.entries.length) {
    results.replaceChildren(h("div", { class: "card muted" }, before ? "No older entries." : "No management writes yet."), pager);
    return;
  }
  results.replaceChildren(h("div", { class: "table-wrap" }, h("table", { "aria-label": "Audit log" },
    h("thead", {}, h("tr", {}, ["Time", "Operator", "Action", "Target", "Request ID"].map((t) => h("th", {}, t)))),
    h("tbody", {}, page.entries.map((e) => h("tr", {},
      h("td", {}, when(e.time)), h("td", {}, `${e.operator} (${e.role})`), h("td", {}, e.action),
      h("td", {}, e.target), h("td", { class: "mono" }, e.request_id || "—")))))), pager);
}
