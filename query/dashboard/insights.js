// The Insights page: counts of events by hour, day, week or month (GET /v1/insights/counts),
// drawn as an SVG chart with a table under it. Loaded before app.js, whose helpers (h, api,
// describe, flash) it calls only at run time. The hash holds the whole query
// (#/insights?event=...&interval=...&chart=line), so a reload or a shared link shows the same
// chart and the back button steps through earlier queries.
"use strict";

const INSIGHTS_INTERVALS = [["hour", "Hour"], ["day", "Day"], ["week", "Week"], ["month", "Month"]];
const INSIGHTS_MEASURES = [["events", "Events"], ["users", "Unique users"], ["per_user", "Events per user"]];
const INSIGHTS_RANGES = [
  ["24h", "Last 24 hours"], ["7d", "Last 7 days"], ["30d", "Last 30 days"], ["90d", "Last 90 days"],
  ["12w", "Last 12 weeks"], ["6m", "Last 6 months"], ["12m", "Last 12 months"], ["custom", "Custom dates"],
];
const INSIGHTS_OPS = [
  ["eq", "equals"], ["neq", "does not equal"], ["contains", "contains"], ["gt", "greater than"],
  ["lt", "less than"], ["set", "is set"], ["not_set", "is not set"],
];
const INSIGHTS_VALUELESS_OPS = new Set(["set", "not_set"]);  // filters written `key:op`
const INSIGHTS_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const INSIGHTS_MAX_EVENTS = 10;  // the API's limit on `event`
// How many values of a breakdown get their own series (`breakdown_limit`; the API's default 10
// is left out of the URL).
const INSIGHTS_BREAKDOWN_LIMITS = [["3", "Top 3"], ["5", "Top 5"], ["10", "Top 10"], ["20", "Top 20"], ["50", "Top 50"]];
const INSIGHTS_DEFAULT_BREAKDOWN_LIMIT = "10";
const PERIOD_HEADINGS = { hour: "Hour", day: "Day", week: "Week of", month: "Month" };

// The page's controls while it is shown: a new hash updates them in place (focus is kept).
let insightsUi = null;

function eventsCount(n) {
  return `${n.toLocaleString()} event${n === 1 ? "" : "s"}`;
}

function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

// --- the query in the hash ----------------------------------------------------------------

function insightsState(query) {
  const p = new URLSearchParams(query || "");
  const from = p.get("from") || "", to = p.get("to") || "";
  return {
    events: p.getAll("event").filter(Boolean),
    interval: p.get("interval") || "day",
    measure: p.get("measure") || "events",
    custom: Boolean(from || to),
    last: p.get("last") || "30d",
    from,
    to,
    tz: p.get("tz") || browserZone(),
    weekStart: p.get("week_start") || "monday",
    where: p.getAll("where").filter(Boolean),
    breakdown: p.get("breakdown") || "",
    breakdownLimit: p.get("breakdown_limit") || "",
    user: p.get("user") || "",
    chart: p.get("chart") === "bar" ? "bar" : "line",
  };
}

// The range part of a query (also what the catalog and property look-ups are asked for).
function rangeParams(state, params = new URLSearchParams()) {
  if (state.custom) {
    if (state.from) params.set("from", state.from);
    if (state.to) params.set("to", state.to);
  } else {
    params.set("last", state.last);
  }
  params.set("tz", state.tz);
  if (state.weekStart !== "monday") params.set("week_start", state.weekStart);
  return params;
}

// The API's query string: values go as they are, so the server judges them (and names a bad one).
function insightsApiParams(state) {
  const params = new URLSearchParams();
  for (const event of state.events) params.append("event", event);
  params.set("interval", state.interval);
  params.set("measure", state.measure);
  rangeParams(state, params);
  for (const where of state.where) params.append("where", where);
  if (state.breakdown) {
    params.set("breakdown", state.breakdown);
    if (state.breakdownLimit) params.set("breakdown_limit", state.breakdownLimit);
  }
  if (state.user) params.set("user", state.user);
  return params;
}

function insightsHash(state) {
  const params = insightsApiParams(state);
  params.set("chart", state.chart);
  return `#/insights?${params}`;
}

// `property:op[:value]`, split on the first two colons (the value may hold more).
function splitWhere(text) {
  const first = text.indexOf(":");
  if (first < 0) return [text, "eq", ""];
  const second = text.indexOf(":", first + 1);
  if (second < 0) return [text.slice(0, first), text.slice(first + 1), ""];
  return [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
}

// "Last 3 days" for last=3d (a link may hold a range the select does not offer).
function rangeLabel(last) {
  const match = /^(\d+)([hdwm])$/.exec(last);
  if (!match) return last;
  const unit = { h: "hour", d: "day", w: "week", m: "month" }[match[2]];
  return `Last ${match[1]} ${unit}${match[1] === "1" ? "" : "s"}`;
}

// --- the page -----------------------------------------------------------------------------

async function insightsPage(query) {
  const state = insightsState(query);
  // The hash always spells the whole query (tz included), so a shared link means the same thing
  // in another zone; replaceState does not add a history entry nor fire hashchange.
  const canonical = insightsHash(state);
  if (location.hash !== canonical) history.replaceState(null, "", canonical);
  if (!insightsUi || !insightsUi.root.isConnected) {
    insightsUi = buildInsights();
    show(insightsUi.root);
  }
  insightsUi.set(state);
  await insightsUi.run(state, false);
}

// A select with these [value, label] options; a value from the URL that is not among them is
// added as is, so the server's 400 about it shows next to this control.
function insightsChoice(id, options) {
  const select = h("select", { id }, options.map(([value, label]) => h("option", { value }, label)));
  select.choose = (value) => {
    if (![...select.options].some((o) => o.value === value)) select.append(h("option", { value }, value));
    select.value = value;
  };
  return select;
}

function insightsField(name, label, control, hint) {
  return h("div", { class: "field", "data-field": name },
    h("label", { for: control.id }, label), control, hint || null);
}

function buildInsights() {
  let events = [];
  let extraWhere = [];  // filters after the first (from a shared link): kept, shown as chips
  let current = null;   // the state on display
  let ticket = 0;       // answers to an older query are dropped
  let answer = null;    // {query, data}: switching line/bar redraws without asking again

  // Events: chips, and an input that autocompletes from the catalog.
  const eventNames = h("datalist", { id: "insights-event-names" });
  const eventInput = h("input", { id: "in-event", list: "insights-event-names", autocomplete: "off",
    placeholder: "Type to search event names", maxlength: "255" });
  const EVENT_HINT = "Add one or more; none counts all events.";
  const eventHint = h("div", { class: "hint", "aria-live": "polite" }, EVENT_HINT);
  let eventNote = "";  // why a typed name was not added: kept over the next query's redraw
  const chips = h("div", { class: "chips" });
  const known = (name) => [...eventNames.options].some((o) => o.value === name);
  // Adds the typed event and applies: true when it did. Asked by the form's submit (`typed`
  // false: Show, or Enter in another field), a name the catalog does not list is left in the
  // box, said so, rather than added: it is likely half typed. Enter in the box adds it as is.
  const addEvent = (typed) => {
    const name = eventInput.value.trim();
    if (!name) return false;
    if (events.includes(name)) {
      eventInput.value = "";
      return false;
    }
    if (events.length >= INSIGHTS_MAX_EVENTS) {
      eventNote = `At most ${INSIGHTS_MAX_EVENTS} events: remove one to add “${name}”.`;
      eventHint.textContent = eventNote;
      return false;
    }
    if (!typed && !known(name)) {
      eventNote = `“${name}” was not added: no event of that name in this range. Pick one from the list, or press Enter in the box to add it as typed.`;
      eventHint.textContent = eventNote;
      return false;
    }
    events.push(name);
    eventInput.value = "";
    eventNote = "";
    apply(false);
    return true;
  };
  let suggestTicket = 0, suggestTimer = null;
  const suggestEvents = () => {
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(async () => {
      const mine = ++suggestTicket;
      const params = rangeParams(read());
      params.set("q", eventInput.value.trim());
      params.set("limit", "20");
      try {
        const { data } = await api("GET", `/v1/events/names?${params}`);
        if (mine !== suggestTicket) return;
        eventNames.replaceChildren(...data.events.map((e) =>
          h("option", { value: e.name, label: eventsCount(e.count) })));
      } catch (error) {
        // suggestions only: typing a name still works
      }
    }, 150);
  };
  eventInput.addEventListener("focus", suggestEvents);
  eventInput.addEventListener("input", (e) => {
    // A pick from the list arrives as one replacement of the whole text.
    if (e.inputType === "insertReplacementText" || e.inputType === undefined) {
      if (known(eventInput.value)) {
        addEvent(true);
        return;
      }
    }
    suggestEvents();
  });
  eventInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && eventInput.value.trim()) {  // empty: Enter submits the form
      e.preventDefault();
      addEvent(true);
    }
  });

  const interval = insightsChoice("in-interval", INSIGHTS_INTERVALS);
  const measure = insightsChoice("in-measure", INSIGHTS_MEASURES);
  const range = insightsChoice("in-range", INSIGHTS_RANGES);
  const fromInput = h("input", { id: "in-from", type: "date" });
  const toInput = h("input", { id: "in-to", type: "date" });
  const tzInput = h("input", { id: "in-tz", list: "insights-zones", autocomplete: "off", spellcheck: "false" });
  const zones = h("datalist", { id: "insights-zones" },
    (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : []).map((z) => h("option", { value: z })));
  const weekStart = insightsChoice("in-week-start", INSIGHTS_WEEKDAYS.map((d) => [d, d[0].toUpperCase() + d.slice(1)]));
  const chart = insightsChoice("in-chart", [["line", "Line"], ["bar", "Bar"]]);
  const userInput = h("input", { id: "in-user", autocomplete: "off", placeholder: "All users" });

  // One property filter; its property and the breakdown suggest the first event's properties.
  const propertyNames = h("datalist", { id: "insights-properties" });
  const propertyValues = h("datalist", { id: "insights-values" });
  const whereProperty = h("input", { id: "in-where-property", list: "insights-properties", autocomplete: "off", placeholder: "e.g. plan or company.name" });
  const whereOp = insightsChoice("in-where-op", INSIGHTS_OPS);
  const whereValue = h("input", { id: "in-where-value", list: "insights-values", autocomplete: "off" });
  const breakdown = h("input", { id: "in-breakdown", list: "insights-properties", autocomplete: "off", placeholder: "None" });
  const breakdownLimit = insightsChoice("in-breakdown-limit", INSIGHTS_BREAKDOWN_LIMITS);
  const propertyHint = h("div", { class: "hint" });
  const extraChips = h("div", { class: "chips" });
  let properties = { key: null, values: new Map() };
  const showValues = () => {
    const top = properties.values.get(whereProperty.value.trim()) || [];
    propertyValues.replaceChildren(...top.map((v) => h("option", { value: v.value, label: eventsCount(v.count) })));
  };
  whereProperty.addEventListener("input", showValues);
  const loadProperties = async (state) => {
    const first = state.events[0];
    const params = rangeParams(state);
    const key = first ? `${first}?${params}` : null;
    if (key === properties.key) return;
    properties = { key, values: new Map() };
    propertyNames.replaceChildren();
    propertyHint.textContent = first ? "" : "Add an event to list its properties.";
    if (!first) return;
    try {
      const { data } = await api("GET", `/v1/events/${encodeURIComponent(first)}/properties?${params}`);
      if (properties.key !== key) return;
      properties.values = new Map(data.properties.map((p) => [p.property, p.top_values]));
      propertyNames.replaceChildren(...data.properties.map((p) =>
        h("option", { value: p.property, label: `${p.types.join(", ")} · in ${p.count.toLocaleString()} of ${data.sampled.toLocaleString()} events` })));
      propertyHint.textContent = data.properties.length
        ? `Properties of ${first}, from its latest ${data.sampled.toLocaleString()} events.`
        : `No properties seen on ${first} in this range.`;
      showValues();
    } catch (error) {
      propertyHint.textContent = "The properties could not be listed; type a name.";
    }
  };

  const syncVisibility = () => {
    const custom = range.value === "custom";
    fromField.hidden = !custom;
    toField.hidden = !custom;
    weekField.hidden = interval.value !== "week" && !/w$/.test(range.value);
    valueField.hidden = INSIGHTS_VALUELESS_OPS.has(whereOp.value);
  };

  // The controls as a query.
  const read = () => {
    const property = whereProperty.value.trim();
    const op = whereOp.value;
    const where = property
      ? [INSIGHTS_VALUELESS_OPS.has(op) ? `${property}:${op}` : `${property}:${op}:${whereValue.value}`]
      : [];
    const custom = range.value === "custom";
    return {
      events: [...events],
      interval: interval.value,
      measure: measure.value,
      custom,
      last: custom ? "30d" : range.value,  // unused with from/to
      from: custom ? fromInput.value.trim() : "",
      to: custom ? toInput.value.trim() : "",
      tz: tzInput.value.trim() || browserZone(),
      weekStart: weekStart.value,
      where: [...where, ...extraWhere],
      breakdown: breakdown.value.trim(),
      breakdownLimit: breakdownLimit.value === INSIGHTS_DEFAULT_BREAKDOWN_LIMIT ? "" : breakdownLimit.value,
      user: userInput.value.trim(),
      chart: chart.value,
    };
  };

  // A new query is a new hash (a history entry); the same one again asks the server again.
  const apply = (refresh) => {
    const state = read();
    if (state.custom && !state.from) {
      clearErrors();
      markField("from", "Pick the first day.");
      fromInput.focus();
      return;
    }
    const next = insightsHash(state);
    if (next === location.hash) run(state, refresh);
    else location.hash = next;
  };

  const drawChips = () => {
    chips.replaceChildren(...(events.length ? events.map((name) => h("span", { class: "chip" }, name,
      h("button", { type: "button", "aria-label": `Remove event ${name}`, onclick: () => {
        events = events.filter((e) => e !== name);
        apply(false);
        eventInput.focus();
      } }, "×"))) : [h("span", { class: "muted" }, "All events")]));
    extraChips.replaceChildren(...extraWhere.map((w) => h("span", { class: "chip" }, `and ${w}`,
      h("button", { type: "button", "aria-label": `Remove filter ${w}`, onclick: () => {
        extraWhere = extraWhere.filter((x) => x !== w);
        apply(false);
        whereProperty.focus();  // the chip is gone: focus stays in the filter
      } }, "×"))));
  };

  const fromField = insightsField("from", "From", fromInput);
  const toField = insightsField("to", "To (included)", toInput);
  const weekField = insightsField("week_start", "Weeks start on", weekStart);
  const valueField = insightsField("where-value", "Filter value", whereValue);
  const banner = h("div");
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const results = h("div", { class: "insights-results" });
  const downloadButton = h("button", { type: "button", onclick: () => download() }, "Download CSV");

  for (const control of [interval, measure, range, weekStart, chart, breakdownLimit]) {
    control.addEventListener("change", () => {
      syncVisibility();
      if (control === range && range.value === "custom" && !fromInput.value) {
        fromInput.focus();  // the dates first, then Show
        return;
      }
      apply(false);
    });
  }
  whereOp.addEventListener("change", () => {
    syncVisibility();
    // At once, as the other selects, when the filter is whole: "is set" needs no value.
    const whole = INSIGHTS_VALUELESS_OPS.has(whereOp.value) || whereValue.value;
    if (whereProperty.value.trim() && whole) apply(false);
  });

  const form = h("form", { class: "card insights-form", novalidate: true, "aria-label": "Insights query",
    onsubmit: (e) => {
      e.preventDefault();
      if (!addEvent(false)) apply(true);  // a typed event name is added (which applies) first
    } },
  banner,
  h("div", { class: "field", "data-field": "event" },
    h("label", { for: "in-event" }, "Events"), chips,
    h("div", { class: "inline" }, eventInput,
      h("button", { type: "button", onclick: () => addEvent(true) }, "Add event")),
    eventHint, eventNames),
  h("div", { class: "grid" },
    insightsField("interval", "Interval", interval),
    insightsField("measure", "Measure", measure),
    insightsField("last", "Range", range),
    fromField, toField,
    insightsField("tz", "Time zone", tzInput), weekField,
    insightsField("chart", "Chart type", chart)),
  h("fieldset", { class: "field", "data-field": "where" },
    h("legend", {}, "Filter"),
    h("div", { class: "grid" },
      insightsField("where-property", "Filter property", whereProperty),
      insightsField("where-op", "Operator", whereOp),
      valueField),
    extraChips, propertyHint),
  h("div", { class: "grid" },
    insightsField("breakdown", "Break down by", breakdown),
    insightsField("breakdown_limit", "Values shown", breakdownLimit),
    insightsField("user", "User", userInput)),
  zones, propertyNames, propertyValues,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Show")));

  const root = h("div", {}, h("h1", {}, "Insights"), form,
    h("div", { class: "header-row results-head" }, h("h2", {}, "Results"), downloadButton), status, results);

  function clearErrors() {
    banner.replaceChildren();
    for (const el of form.querySelectorAll(".field")) {
      el.classList.remove("invalid");
      for (const old of el.querySelectorAll(":scope > .error")) old.remove();
    }
  }

  function markField(name, reason) {
    const target = form.querySelector(`.field[data-field="${CSS.escape(name)}"]`);
    if (!target) return false;
    target.classList.add("invalid");
    target.append(h("div", { class: "error" }, reason));
    return true;
  }

  // A 400 names the parameter: the reason goes next to its control and, with the parameter's
  // name, in a banner above the form (a control may be hidden, e.g. `from` for "Last 30 days").
  function showError(error) {
    clearErrors();
    const items = error.errors || [];
    for (const item of items) markField(item.field, item.reason);
    if (error.status === 404 && current && current.user) markField("user", describe(error));
    const lines = items.length ? items.map((item) => `${item.field}: ${item.reason}`) : [describe(error)];
    banner.replaceChildren(h("div", { class: "banner error", role: "alert" },
      error.status === 400 ? "The query was not accepted. " : null,
      lines.map((line, i) => (i ? [h("br"), line] : line))));
  }

  async function download() {
    if (!current) return;
    const focused = document.activeElement === downloadButton;
    downloadButton.disabled = true;  // drops the focus, given back below
    try {
      const params = insightsApiParams(current);
      params.set("format", "csv");
      await downloadCsv(`/v1/insights/counts?${params}`, "insights.csv");
    } catch (error) {
      showError(error);
    } finally {
      downloadButton.disabled = false;
      if (focused) downloadButton.focus();
    }
  }

  const set = (state) => {
    current = state;
    events = [...state.events];
    interval.choose(state.interval);
    measure.choose(state.measure);
    if (state.custom) range.choose("custom");
    else if (INSIGHTS_RANGES.some(([v]) => v === state.last)) range.choose(state.last);
    else { range.choose(state.last); range.options[range.selectedIndex].textContent = rangeLabel(state.last); }
    for (const [input, value] of [[fromInput, state.from], [toInput, state.to]]) {
      input.type = !value || /^\d{4}-\d{2}-\d{2}$/.test(value) ? "date" : "text";  // a date-time stays as typed
      input.value = value;
    }
    tzInput.value = state.tz;
    weekStart.choose(state.weekStart);
    chart.choose(state.chart);
    const [property, op, value] = state.where.length ? splitWhere(state.where[0]) : ["", "eq", ""];
    whereProperty.value = property;
    whereOp.choose(op);
    whereValue.value = value;
    extraWhere = state.where.slice(1);
    breakdown.value = state.breakdown;
    breakdownLimit.choose(state.breakdownLimit || INSIGHTS_DEFAULT_BREAKDOWN_LIMIT);
    userInput.value = state.user;
    eventHint.textContent = eventNote || EVENT_HINT;
    eventNote = "";
    drawChips();
    syncVisibility();
  };

  const run = async (state, refresh) => {
    const mine = ++ticket;
    clearErrors();
    loadProperties(state);
    const query = insightsApiParams(state).toString();
    let data;
    if (!refresh && answer && answer.query === query) {
      data = answer.data;
    } else {
      status.textContent = "Loading counts…";
      results.setAttribute("aria-busy", "true");
      try {
        data = (await api("GET", `/v1/insights/counts?${query}`)).data;
      } catch (error) {
        if (mine !== ticket) return;
        answer = null;
        status.textContent = "";
        results.removeAttribute("aria-busy");
        results.replaceChildren();
        showError(error);
        return;
      }
      if (mine !== ticket) return;
      answer = { query, data };
    }
    results.removeAttribute("aria-busy");
    status.textContent = insightsSummary(data);
    results.replaceChildren(insightsResults(data, state.chart));
  };

  return { root, set, run };
}

// --- the answer ---------------------------------------------------------------------------

function shortTime(iso) {
  // "2026-11-03T00:00:00+01:00" -> "2026-11-03 00:00"
  return iso ? iso.slice(0, 16).replace("T", " ") : "";
}

function insightsSummary(data) {
  const measure = Object.fromEntries(INSIGHTS_MEASURES)[data.measure] || data.measure;
  return `${measure} by ${data.interval}, ${shortTime(data.from)} to ${shortTime(data.to)} (${data.tz})`;
}

function formatValue(value) {
  return typeof value === "number"
    ? value.toLocaleString(undefined, { maximumFractionDigits: 4 }) : String(value);
}

// Period labels: the date, the month, or the local hour (with its offset when the range crosses
// a DST change, where an hour can repeat).
function periodLabels(periods, interval) {
  if (interval === "month") return periods.map((p) => p.slice(0, 7));
  if (interval !== "hour") return periods.slice();
  const offsets = new Set(periods.map((p) => p.slice(19)));
  return periods.map((p) => shortTime(p) + (offsets.size > 1 ? ` ${p.slice(19)}` : ""));
}

function axisLabel(period, interval) {
  if (interval === "month") return period.slice(0, 7);
  if (interval === "hour") return `${period.slice(5, 10)} ${period.slice(11, 16)}`;
  return period.slice(5, 10);
}

// Ten colours, then the same ten dashed, then dotted: thirty series told apart before any
// repeats (a breakdown may have 52, and several events multiply them).
function seriesClass(series, index) {
  return series.other ? "other" : `c${index % 10} s${Math.floor(index / 10) % 3}`;
}

function insightsResults(data, kind) {
  const series = data.series;
  if (!series.length || series.every((s) => !s.total)) {
    return h("div", { class: "card muted", "data-testid": "insights-empty" },
      "No events match this query in this range. Widen the range, or change the events or the filter.");
  }
  const legend = h("ul", { class: "legend", "aria-label": "Legend" }, series.map((s, i) =>
    h("li", {}, h("span", { class: `swatch ${seriesClass(s, i)}`, "aria-hidden": "true" }),
      s.label, " ", h("span", { class: "muted" }, `(${formatValue(s.total)})`))));
  const labels = periodLabels(data.periods, data.interval);
  const table = h("div", { class: "table-wrap" }, h("table", { "aria-label": "Counts by period", class: "numbers" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, PERIOD_HEADINGS[data.interval] || "Period"),
      series.map((s) => h("th", { scope: "col" }, s.label)))),
    h("tbody", {}, data.periods.map((period, i) => h("tr", { "data-period": period },
      h("th", { scope: "row" }, labels[i]),
      series.map((s) => h("td", {}, formatValue(s.values[i])))))),
    h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, data.measure === "events" ? "Total" : "Whole range"),
      series.map((s) => h("td", {}, formatValue(s.total)))))));
  return h("div", {}, h("div", { class: "card" }, insightsChart(data, kind), legend), table);
}

// A step of 1, 2 or 5 times a power of ten giving about four gridlines (whole for counts).
function niceStep(max, whole) {
  const raw = Math.max(max, whole ? 1 : 1e-9) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return whole ? Math.max(1, Math.round(step)) : step;
}

function insightsChart(data, kind) {
  const width = 760, height = 280, left = 56, right = 12, top = 12, bottom = 30;
  const { periods, series } = data;
  const n = periods.length;
  const whole = data.measure !== "per_user";
  // A loop, not Math.max(...values): up to 2,000 periods times a hundred series.
  let max = 0;
  for (const s of series) for (const value of s.values) if (value > max) max = value;
  const step = niceStep(max, whole);
  const yTop = Math.max(step, Math.ceil(max / step) * step);
  const y = (v) => top + (height - top - bottom) * (1 - v / yTop);
  const slot = (width - left - right) / n;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: `chart insights-chart ${kind}`, role: "img",
    "aria-label": `${kind === "bar" ? "Bar" : "Line"} chart of ${series.length} series over ${n} periods; the table below holds the numbers` });
  for (let tick = 0; tick <= yTop + step / 1e6; tick += step) {
    root.append(svg("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: "grid" }));
    root.append(svg("text", { x: left - 6, y: y(tick) + 3, "text-anchor": "end", class: "axis" }, formatValue(Number(tick.toPrecision(6)))));
  }
  const labelEvery = Math.ceil(n / (data.interval === "hour" ? 6 : 8));
  periods.forEach((period, i) => {
    if (i % labelEvery === 0) {
      root.append(svg("text", { x: left + (i + 0.5) * slot, y: height - 10, "text-anchor": "middle", class: "axis" }, axisLabel(period, data.interval)));
    }
  });
  const labels = periodLabels(periods, data.interval);
  series.forEach((s, j) => {
    const colour = seriesClass(s, j);
    if (kind === "bar") {
      const inner = slot * 0.8, barWidth = inner / series.length;
      s.values.forEach((value, i) => {
        const rect = svg("rect", { x: left + i * slot + slot * 0.1 + j * barWidth, y: y(value),
          width: Math.max(0.5, barWidth - (barWidth > 3 ? 1 : 0)), height: Math.max(0, y(0) - y(value)), class: `bar ${colour}` });
        rect.append(svg("title", {}, `${s.label}, ${labels[i]}: ${formatValue(value)}`));
        root.append(rect);
      });
    } else {
      const points = s.values.map((value, i) => `${(left + (i + 0.5) * slot).toFixed(1)},${y(value).toFixed(1)}`);
      const line = svg("polyline", { points: points.join(" "), class: `line ${colour}` });
      line.append(svg("title", {}, s.label));  // without dots (over 62 periods), the line's name
      root.append(line);
      if (n <= 62) {
        s.values.forEach((value, i) => {
          const dot = svg("circle", { cx: left + (i + 0.5) * slot, cy: y(value), r: 2.5, class: `dot ${colour}` });
          dot.append(svg("title", {}, `${s.label}, ${labels[i]}: ${formatValue(value)}`));
          root.append(dot);
        });
      }
    }
  });
  root.append(svg("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), class: "baseline" }));
  return root;
}

// --- CSV ----------------------------------------------------------------------------------

// Fetches a CSV with the token and saves it under the server's filename (Content-Disposition)
// through a blob link: a plain link could not carry the Authorization header.
async function downloadCsv(path, fallbackName) {
  const response = await authorizedFetch("GET", path, undefined, { Accept: "text/csv" });
  if (!response.ok) throw await apiErrorOf(response);
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/.exec(disposition);
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: match ? match[1] : fallbackName, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
