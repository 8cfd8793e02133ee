/*
 * profilestream.js: Profilestream's browser SDK. One file, no dependencies, no build step.
 * Ingest serves it at /sdk/profilestream-<version>.js; docs/sdk.md says what it sends and why.
 *
 * Events wait in a queue (kept in localStorage, so a reload loses nothing) and go to
 * `${host}/v1/batch` as text/plain JSON with the write key in the body: a CORS "simple"
 * request, so the browser sends no preflight. Nothing here may throw into the page.
 */
(function () {
  "use strict";

  // Keep in sync with SDK_VERSION in ingest/sdk.py (tests/ingest/test_sdk.py checks both).
  const VERSION = "0.1.0";
  const LIBRARY = { name: "profilestream.js", version: VERSION };

  // Ingest's limits (infra/settings.py max_event_bytes, max_request_bytes): it refuses more.
  const MAX_EVENT_BYTES = 32 * 1024;
  const MAX_REQUEST_BYTES = 500 * 1024;
  const MAX_BATCH_EVENTS = 2500;
  // Browsers allow about 64 KiB of beacon and keepalive bodies in flight per page.
  const MAX_KEEPALIVE_BYTES = 60 * 1024;
  // Bounds on the persisted queue, so an unreachable ingest cannot fill the site's storage.
  const MAX_QUEUE_EVENTS = 1000;
  const MAX_QUEUE_BYTES = 1024 * 1024;
  // A request that hangs is treated as a network error and retried.
  const REQUEST_TIMEOUT_MS = 15000;
  // A Retry-After beyond this is a misconfigured server, not a plan.
  const MAX_RETRY_AFTER_MS = 10 * 60 * 1000;

  const PERSISTENCE = ["cookie+localStorage", "localStorage", "memory"];
  const DEFAULTS = {
    host: null, // null: the origin this file was loaded from
    flushAt: 20,
    flushIntervalMs: 1000,
    autoPageView: true,
    trackSpaRoutes: false,
    maxRetries: 10,
    retryBaseMs: 1000,
    retryMaxMs: 60000,
    persistence: "cookie+localStorage",
    cookie: { name: "ps_anonymous_id", domain: null, maxAgeDays: 365, sameSite: "Lax" },
  };
  const USER_ID_KEY = "ps_user_id";
  const TRAITS_KEY = "ps_user_traits";
  const CAMPAIGN_PARAMS = [
    ["utm_campaign", "name"],
    ["utm_source", "source"],
    ["utm_medium", "medium"],
    ["utm_term", "term"],
    ["utm_content", "content"],
  ];

  // Read while this file runs: document.currentScript is null afterwards.
  const scriptOrigin = (() => {
    try {
      return new URL(document.currentScript.src).origin;
    } catch (error) {
      return null;
    }
  })();

  function warn(...args) {
    try {
      console.warn("[profilestream]", ...args);
    } catch (error) {
      // a page that replaced console: stay silent rather than throw
    }
  }

  // Every entry point into the SDK (public methods, timers, listeners) goes through this.
  function guarded(name, fn) {
    return function (...args) {
      try {
        return fn.apply(this, args);
      } catch (error) {
        warn(`${name} failed:`, error);
        return undefined;
      }
    };
  }

  const encoder = new TextEncoder();
  const byteLength = (text) => encoder.encode(text).length;
  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

  function uuid() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
    // randomUUID exists only in secure contexts; plain-http sites get the same v4 layout.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function positive(value, fallback, max = Infinity) {
    const n = Number(value);
    return Number.isFinite(n) && n > 0 ? Math.min(n, max) : fallback;
  }

  function settingsFrom(options) {
    const given = isObject(options) ? options : {};
    const cookie = { ...DEFAULTS.cookie, ...(isObject(given.cookie) ? given.cookie : {}) };
    let persistence = given.persistence === undefined ? DEFAULTS.persistence : given.persistence;
    if (!PERSISTENCE.includes(persistence)) {
      warn(`unknown persistence ${JSON.stringify(persistence)}; using ${DEFAULTS.persistence}`);
      persistence = DEFAULTS.persistence;
    }
    const host = String(given.host || scriptOrigin || location.origin).replace(/\/+$/, "");
    return {
      host,
      flushAt: Math.floor(positive(given.flushAt, DEFAULTS.flushAt, MAX_BATCH_EVENTS)),
      flushIntervalMs: positive(given.flushIntervalMs, DEFAULTS.flushIntervalMs),
      autoPageView: given.autoPageView === undefined ? DEFAULTS.autoPageView : !!given.autoPageView,
      trackSpaRoutes: !!given.trackSpaRoutes,
      maxRetries: Math.floor(positive(given.maxRetries, DEFAULTS.maxRetries)),
      retryBaseMs: positive(given.retryBaseMs, DEFAULTS.retryBaseMs),
      retryMaxMs: positive(given.retryMaxMs, DEFAULTS.retryMaxMs),
      persistence,
      cookie: {
        name: String(cookie.name || DEFAULTS.cookie.name),
        domain: cookie.domain ? String(cookie.domain) : null,
        maxAgeDays: positive(cookie.maxAgeDays, DEFAULTS.cookie.maxAgeDays),
        sameSite: String(cookie.sameSite || DEFAULTS.cookie.sameSite),
      },
    };
  }

  // --- storage: each store may be unavailable (disabled, sandboxed, full): then it is a no-op

  function openLocalStorage() {
    try {
      const storage = window.localStorage;
      const probe = "ps_probe";
      storage.setItem(probe, probe);
      storage.removeItem(probe);
      return storage;
    } catch (error) {
      return null;
    }
  }

  function makeLocal(storage) {
    let warnedFull = false;
    return {
      available: !!storage,
      get(key) {
        try {
          return storage ? storage.getItem(key) : null;
        } catch (error) {
          return null;
        }
      },
      set(key, value) {
        try {
          if (storage) storage.setItem(key, value);
        } catch (error) {
          if (!warnedFull) warn("localStorage refused a write; keeping it in memory:", error);
          warnedFull = true;
        }
      },
      remove(key) {
        try {
          if (storage) storage.removeItem(key);
        } catch (error) {
          // nothing to clean up then
        }
      },
      keys() {
        const found = [];
        try {
          for (let i = 0; storage && i < storage.length; i++) found.push(storage.key(i));
        } catch (error) {
          // none then
        }
        return found;
      },
    };
  }

  function makeCookieJar(cookie) {
    return {
      get() {
        try {
          const prefix = `${cookie.name}=`;
          for (const part of document.cookie.split(";")) {
            const item = part.trim();
            if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
          }
        } catch (error) {
          // sandboxed documents throw on document.cookie
        }
        return null;
      },
      set(value, maxAgeSeconds) {
        let text = `${cookie.name}=${encodeURIComponent(value)}; Path=/; Max-Age=${maxAgeSeconds}`;
        text += `; SameSite=${cookie.sameSite}`;
        if (cookie.domain) text += `; Domain=${cookie.domain}`;
        // Browsers drop SameSite=None cookies without Secure; on https it costs nothing.
        if (location.protocol === "https:" || /^none$/i.test(cookie.sameSite)) text += "; Secure";
        try {
          document.cookie = text;
        } catch (error) {
          // sandboxed documents throw on document.cookie
        }
      },
    };
  }

  // --- who the events are about

  class Identity {
    constructor(settings, local) {
      this.mode = settings.persistence;
      this.cookie = makeCookieJar(settings.cookie);
      this.cookieMaxAge = Math.round(settings.cookie.maxAgeDays * 86400);
      this.anonKey = settings.cookie.name;
      this.local = this.mode === "memory" ? makeLocal(null) : local;
      if (this.mode !== "cookie+localStorage") this.cookie.set("", 0);
      if (this.mode === "memory") {
        // Memory means nothing stored: remove what an earlier setting left behind.
        for (const key of [this.anonKey, USER_ID_KEY, TRAITS_KEY]) local.remove(key);
      }
      const usesCookie = this.mode === "cookie+localStorage";
      this.anonymousId = (usesCookie && this.cookie.get()) || this.local.get(this.anonKey) || uuid();
      this.userId = this.local.get(USER_ID_KEY);
      this.traits = this.readTraits();
      this.save();
    }

    readTraits() {
      try {
        const traits = JSON.parse(this.local.get(TRAITS_KEY) || "{}");
        return isObject(traits) ? traits : {};
      } catch (error) {
        return {};
      }
    }

    save() {
      // Written again on every load, so the cookie's lifetime counts from the last visit.
      if (this.mode === "cookie+localStorage") this.cookie.set(this.anonymousId, this.cookieMaxAge);
      this.local.set(this.anonKey, this.anonymousId);
      if (this.userId) this.local.set(USER_ID_KEY, this.userId);
      else this.local.remove(USER_ID_KEY);
      if (Object.keys(this.traits).length) this.local.set(TRAITS_KEY, JSON.stringify(this.traits));
      else this.local.remove(TRAITS_KEY);
    }

    identify(userId, traits) {
      // As Segment's analytics.js: another user's traits are not carried over.
      const sameUser = !userId || !this.userId || userId === this.userId;
      this.traits = sameUser ? { ...this.traits, ...traits } : { ...traits };
      if (userId) this.userId = userId;
      this.save();
    }

    reset() {
      this.userId = null;
      this.traits = {};
      this.anonymousId = uuid();
      this.save();
    }
  }

  // --- what every event carries

  function pageProperties() {
    return {
      path: location.pathname,
      referrer: document.referrer,
      search: location.search,
      title: document.title,
      url: location.href.split("#")[0],
    };
  }

  function campaign() {
    const params = new URLSearchParams(location.search);
    const found = {};
    for (const [param, field] of CAMPAIGN_PARAMS) {
      const value = params.get(param);
      if (value) found[field] = value;
    }
    return Object.keys(found).length ? found : undefined;
  }

  function timezone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (error) {
      return undefined;
    }
  }

  function baseContext() {
    const context = {
      page: pageProperties(),
      userAgent: navigator.userAgent,
      locale: navigator.language,
      timezone: timezone(),
      library: { ...LIBRARY },
    };
    const utm = campaign();
    if (utm) context.campaign = utm;
    return context;
  }

  function retryAfterMs(response) {
    // null unless ingest exposes the header to this origin (Access-Control-Expose-Headers).
    const value = response.headers.get("Retry-After");
    if (!value) return null;
    const seconds = Number(value);
    if (Number.isFinite(seconds)) return Math.min(Math.max(0, seconds * 1000), MAX_RETRY_AFTER_MS);
    const date = Date.parse(value);
    if (Number.isNaN(date)) return null;
    return Math.min(Math.max(0, date - Date.now()), MAX_RETRY_AFTER_MS);
  }

  // --- the client: a queue of events and one sender

  class Client {
    constructor(writeKey, settings) {
      this.writeKey = writeKey;
      this.settings = settings;
      this.url = `${settings.host}/v1/batch`;
      const local = makeLocal(openLocalStorage());
      this.identity = new Identity(settings, local);
      this.local = settings.persistence === "memory" ? makeLocal(null) : local;
      // One key per page load: two tabs never overwrite each other's queue.
      this.queuePrefix = `ps_queue:${writeKey}:`;
      this.queueKey = this.queuePrefix + uuid();
      this.queue = []; // [{event, bytes, sending}]
      this.persistTimer = null;
      this.warnedFull = false;
      this.inFlight = false;
      this.draining = false; // send even a partial batch (interval elapsed, flush(), retry)
      this.flushTimer = null;
      this.retryTimer = null;
      this.attempts = 0;
      this.flushWaiters = [];
      this.counters = { delivered: 0, dropped: 0, retries: 0, beacons: 0, lastStatus: null };
      this.adoptStoredQueues();
      this.listenForHide();
      if (settings.trackSpaRoutes) this.watchRoutes();
      if (this.queue.length) this.flush();
    }

    // --- building events

    enqueue(type, fields, options) {
      const opts = isObject(options) ? options : {};
      const event = {
        type,
        messageId: uuid(),
        timestamp: opts.timestamp ? new Date(opts.timestamp).toISOString() : new Date().toISOString(),
        anonymousId: this.identity.anonymousId,
        ...fields,
        context: { ...baseContext(), ...(isObject(opts.context) ? opts.context : {}) },
      };
      if (this.identity.userId && !event.userId) event.userId = this.identity.userId;
      if (isObject(opts.integrations)) event.integrations = opts.integrations;
      // Serialize now: the page may change its objects after the call, and size is checked here.
      const json = JSON.stringify(event);
      const bytes = byteLength(json);
      if (bytes > MAX_EVENT_BYTES) {
        warn(`${type} event dropped: ${bytes} bytes, over ingest's ${MAX_EVENT_BYTES}-byte limit`);
        this.counters.dropped += 1;
        return;
      }
      this.push({ event: JSON.parse(json), bytes, sending: false });
      this.schedule();
    }

    push(item) {
      this.queue.push(item);
      this.trimQueue();
      this.persist();
    }

    trimQueue() {
      let bytes = this.queue.reduce((sum, item) => sum + item.bytes, 0);
      let dropped = 0;
      // Oldest first, and never what a request is carrying right now.
      while (this.queue.length > MAX_QUEUE_EVENTS || bytes > MAX_QUEUE_BYTES) {
        const index = this.queue.findIndex((item) => !item.sending);
        if (index < 0) break;
        bytes -= this.queue[index].bytes;
        this.queue.splice(index, 1);
        dropped += 1;
      }
      this.counters.dropped += dropped;
      // Once per page: while ingest is down, every new event would say it again.
      if (dropped && !this.warnedFull) {
        this.warnedFull = true;
        warn(`queue full: dropped the oldest unsent event(s); see profilestream.stats()`);
      }
    }

    persist() {
      // One write per turn of the event loop, however many events that turn queued: a
      // backlog of 1 MB is not serialized again for each of them.
      if (this.persistTimer) return;
      this.persistTimer = setTimeout(guarded("persist", () => this.persistNow()), 0);
    }

    persistNow() {
      clearTimeout(this.persistTimer);
      this.persistTimer = null;
      if (this.queue.length) {
        this.local.set(this.queueKey, JSON.stringify(this.queue.map((item) => item.event)));
      } else {
        this.local.remove(this.queueKey);
      }
    }

    adoptStoredQueues() {
      // Queues left by earlier page loads (or other tabs: those write theirs again on their
      // next change, and ingest drops the duplicate messageIds).
      const seen = new Set();
      for (const key of this.local.keys()) {
        if (!key || !key.startsWith(this.queuePrefix)) continue;
        let events = [];
        try {
          events = JSON.parse(this.local.get(key) || "[]");
        } catch (error) {
          // a damaged entry: nothing to recover
        }
        this.local.remove(key);
        for (const event of Array.isArray(events) ? events : []) {
          if (!isObject(event) || !event.messageId || seen.has(event.messageId)) continue;
          seen.add(event.messageId);
          this.queue.push({ event, bytes: byteLength(JSON.stringify(event)), sending: false });
        }
      }
      this.trimQueue();
      this.persistNow();
    }

    // --- sending

    pending() {
      return this.queue.filter((item) => !item.sending);
    }

    // The next request's events: in order, at most flushAt of them and maxBytes of body.
    takeBatch(maxBytes) {
      return this.firstBatch(this.pending(), maxBytes);
    }

    firstBatch(items, maxBytes) {
      const batch = [];
      let size = byteLength(this.body([]));
      for (const item of items) {
        if (batch.length >= this.settings.flushAt) break;
        const next = size + item.bytes + (batch.length ? 1 : 0);
        if (next > maxBytes) break;
        batch.push(item);
        size = next;
      }
      return { batch, size };
    }

    body(items) {
      // sentAt is stamped per attempt: ingest corrects each event's timestamp by it.
      return JSON.stringify({
        batch: items.map((item) => item.event),
        sentAt: new Date().toISOString(),
        writeKey: this.writeKey,
      });
    }

    // Called after every change: send now, arm the interval, or wait for the retry.
    schedule() {
      if (this.inFlight) return;
      const pending = this.pending().length;
      if (this.retryTimer || !pending) {
        if (!pending) this.draining = false;
        this.resolveFlushWaiters();
        return;
      }
      if (this.draining || pending >= this.settings.flushAt) {
        clearTimeout(this.flushTimer);
        this.flushTimer = null;
        this.sendNext().catch((error) => warn("send failed:", error));
      } else if (!this.flushTimer) {
        this.flushTimer = setTimeout(
          guarded("flush timer", () => {
            this.flushTimer = null;
            this.draining = true;
            this.schedule();
          }),
          this.settings.flushIntervalMs,
        );
      }
    }

    async sendNext() {
      const { batch, size } = this.takeBatch(MAX_REQUEST_BYTES);
      if (!batch.length) return;
      this.inFlight = true;
      let outcome;
      try {
        outcome = await this.post(batch, size <= MAX_KEEPALIVE_BYTES);
      } finally {
        this.inFlight = false;
      }
      this.settle(batch, outcome);
      this.schedule();
    }

    // One POST; never rejects. {ok} | {retry, delay} | {drop, status, text}
    async post(batch, keepalive) {
      for (const item of batch) item.sending = true;
      const controller = typeof AbortController === "function" ? new AbortController() : null;
      const timer = setTimeout(() => controller && controller.abort(), REQUEST_TIMEOUT_MS);
      try {
        const response = await window.fetch(this.url, {
          method: "POST",
          // text/plain and the key in the body: a CORS simple request, no preflight.
          headers: { "Content-Type": "text/plain" },
          body: this.body(batch),
          keepalive, // survives the page's unload (bodies under 64 KiB only)
          credentials: "omit",
          signal: controller ? controller.signal : undefined,
        });
        this.counters.lastStatus = response.status;
        if (response.ok) {
          this.warnRejected(response);
          return { ok: true };
        }
        if (response.status === 429 || response.status >= 500) {
          return { retry: true, delay: retryAfterMs(response) };
        }
        const text = await response.text().catch(() => "");
        return { drop: true, status: response.status, text };
      } catch (error) {
        // Network failure, timeout, or a response CORS does not let this page read.
        this.counters.lastStatus = 0;
        return { retry: true, delay: null, error };
      } finally {
        clearTimeout(timer);
        for (const item of batch) item.sending = false;
      }
    }

    warnRejected(response) {
      // 200 with some events refused (bad fields): worth a line, not a retry.
      response
        .json()
        .then((body) => {
          if (body && Array.isArray(body.rejected) && body.rejected.length) {
            warn("ingest rejected events:", JSON.stringify(body.rejected));
          }
        })
        .catch(() => {});
    }

    settle(batch, outcome) {
      if (outcome.ok) {
        this.attempts = 0;
        this.counters.delivered += batch.length;
        this.remove(batch);
      } else if (outcome.drop) {
        this.attempts = 0;
        this.counters.dropped += batch.length;
        warn(`ingest answered ${outcome.status}; ${batch.length} event(s) dropped:`, outcome.text);
        this.remove(batch);
      } else {
        this.attempts += 1;
        if (this.attempts > this.settings.maxRetries) {
          warn(`${batch.length} event(s) dropped after ${this.settings.maxRetries} retries`);
          this.attempts = 0;
          this.counters.dropped += batch.length;
          this.remove(batch);
          return;
        }
        this.counters.retries += 1;
        const delay = outcome.delay === null ? this.backoffMs() : outcome.delay;
        this.retryTimer = setTimeout(
          guarded("retry timer", () => {
            this.retryTimer = null;
            this.draining = true;
            this.schedule();
          }),
          delay,
        );
      }
    }

    backoffMs() {
      // Exponential, capped, with jitter so that many pages do not retry in step.
      const { retryBaseMs, retryMaxMs } = this.settings;
      const exponential = Math.min(retryMaxMs, retryBaseMs * 2 ** (this.attempts - 1));
      return exponential * (0.5 + Math.random());
    }

    remove(batch) {
      const gone = new Set(batch);
      this.queue = this.queue.filter((item) => !gone.has(item));
      this.persist();
    }

    flush() {
      this.draining = true;
      const done = new Promise((resolve) => this.flushWaiters.push(resolve));
      this.schedule();
      return done;
    }

    resolveFlushWaiters() {
      const waiters = this.flushWaiters;
      this.flushWaiters = [];
      for (const resolve of waiters) resolve();
    }

    // --- hiding and leaving the page

    listenForHide() {
      document.addEventListener(
        "visibilitychange",
        guarded("page hidden", () => {
          if (document.visibilityState === "hidden") this.flushOnHidden();
        }),
      );
      window.addEventListener("pagehide", guarded("page hide", () => this.beaconOnLeave()));
    }

    // Hidden (a switch of tab, or the start of leaving): send what is queued now instead of at
    // the end of the interval, acknowledged as usual (keepalive, so it survives an unload that
    // follows), so that a failure is retried and nothing is lost.
    flushOnHidden() {
      try {
        if (this.retryTimer) return; // ingest is failing: the retry comes at its time
        clearTimeout(this.flushTimer);
        this.flushTimer = null;
        this.draining = true;
        this.schedule();
      } finally {
        this.persistNow(); // now: a timer set during unload never runs
      }
    }

    // Leaving: beacon what is not on its way yet. A beacon's outcome is never reported, so the
    // events stay stored until acknowledged: the next page sends them again, and ingest keeps
    // one copy (messageId). Split once, before sending, so nothing is picked twice.
    beaconOnLeave() {
      try {
        for (const batch of this.batchesOf(this.pending(), MAX_KEEPALIVE_BYTES)) {
          let queued = false;
          try {
            queued = navigator.sendBeacon(
              this.url,
              new Blob([this.body(batch)], { type: "text/plain" }),
            );
          } catch (error) {
            queued = false;
          }
          if (!queued) break; // refused (over the browser's quota): the next page sends the rest
          this.counters.beacons += 1;
        }
      } finally {
        this.persistNow();
      }
    }

    batchesOf(items, maxBytes) {
      const batches = [];
      let rest = items;
      while (rest.length) {
        const { batch } = this.firstBatch(rest, maxBytes);
        if (!batch.length) break; // cannot happen: an event over MAX_EVENT_BYTES is never queued
        batches.push(batch);
        rest = rest.slice(batch.length);
      }
      return batches;
    }

    // --- single-page apps

    watchRoutes() {
      let last = location.pathname + location.search;
      // After the router has run (it may set the title), and only when the URL changed:
      // replaceState for state alone, or a hash change, is not a page view.
      const check = () =>
        setTimeout(
          guarded("route change", () => {
            const now = location.pathname + location.search;
            if (now === last) return;
            last = now;
            this.page();
          }),
          0,
        );
      for (const method of ["pushState", "replaceState"]) {
        const original = history[method];
        history[method] = function (...args) {
          const result = original.apply(this, args);
          check();
          return result;
        };
      }
      window.addEventListener("popstate", check);
    }

    // --- the Segment calls

    page(name, properties, options) {
      if (isObject(name)) [name, properties, options] = [undefined, name, properties];
      const fields = { properties: { ...pageProperties(), ...(isObject(properties) ? properties : {}) } };
      if (name !== undefined && name !== null) fields.name = String(name);
      this.enqueue("page", fields, options);
    }
  }

  // --- the global: window.profilestream

  let client = null;
  const beforeLoad = []; // calls made before load(), replayed by it

  function idOrNull(value) {
    return value === undefined || value === null || value === "" ? null : String(value);
  }

  // Each call either runs on the client or waits for load().
  function call(name, run) {
    return guarded(name, (...args) => {
      if (client) return run(client, ...args);
      beforeLoad.push([name, args]);
      return undefined;
    });
  }

  const methods = {
    load: guarded("load", (writeKey, options) => {
      if (client) {
        warn("load() was already called; this call is ignored");
        return;
      }
      if (typeof writeKey !== "string" || !writeKey) {
        warn("load() needs a write key");
        return;
      }
      client = new Client(writeKey, settingsFrom(options));
      if (client.settings.autoPageView) client.page();
      for (const [name, args] of beforeLoad.splice(0)) api[name](...args);
    }),

    identify: call("identify", (c, userId, traits, options) => {
      if (isObject(userId)) [userId, traits, options] = [null, userId, traits];
      const id = idOrNull(userId);
      // A copy, made before anything changes: traits that cannot be sent are refused whole.
      const given = isObject(traits) ? JSON.parse(JSON.stringify(traits)) : {};
      c.identity.identify(id, given);
      const fields = { traits: { ...c.identity.traits } };
      if (id) fields.userId = id;
      c.enqueue("identify", fields, options);
    }),

    track: call("track", (c, event, properties, options) => {
      if (typeof event !== "string" || !event) {
        warn("track() needs an event name");
        return;
      }
      c.enqueue("track", { event, properties: isObject(properties) ? properties : {} }, options);
    }),

    page: call("page", (c, name, properties, options) => c.page(name, properties, options)),

    screen: call("screen", (c, name, properties, options) => {
      const fields = { properties: isObject(properties) ? properties : {} };
      if (name !== undefined && name !== null) fields.name = String(name);
      c.enqueue("screen", fields, options);
    }),

    group: call("group", (c, groupId, traits, options) => {
      const id = idOrNull(groupId);
      if (!id) {
        warn("group() needs a group id");
        return;
      }
      c.enqueue("group", { groupId: id, traits: isObject(traits) ? traits : {} }, options);
    }),

    alias: call("alias", (c, userId, previousId, options) => {
      const id = idOrNull(userId);
      if (!id) {
        warn("alias() needs the new user id");
        return;
      }
      const previous = idOrNull(previousId) || c.identity.userId || c.identity.anonymousId;
      c.enqueue("alias", { userId: id, previousId: previous }, options);
    }),

    reset: call("reset", (c) => c.identity.reset()),

    // Resolves once the queue is sent, or the next retry is waiting; never rejects.
    flush: guarded("flush", () => (client ? client.flush() : Promise.resolve())),

    // Who the events are about: {anonymousId, userId, traits}.
    user: guarded("user", () => {
      if (!client) return null;
      const { anonymousId, userId, traits } = client.identity;
      return { anonymousId, userId, traits: { ...traits } };
    }),

    // Counters for debugging and tests: what was delivered, dropped, retried, beaconed.
    stats: guarded("stats", () => {
      if (!client) return null;
      return { ...client.counters, queued: client.queue.length, inFlight: client.inFlight };
    }),
  };

  // The async snippet leaves an object with a call queue `q`: adopt it, so calls made before
  // this file arrived run now, and stub functions someone kept a reference to still work.
  const existing = window.profilestream;
  if (isObject(existing) && existing.VERSION) {
    warn(`loaded twice; keeping version ${existing.VERSION}`);
    return;
  }
  const api = isObject(existing) ? existing : {};
  const stubbed = Array.isArray(api.q) ? api.q : [];
  Object.assign(api, methods);
  api.VERSION = VERSION;
  const replay = guarded("queued call", (entry) => {
    const [name, args] = Array.isArray(entry) ? entry : [];
    if (Object.prototype.hasOwnProperty.call(methods, name)) api[name](...Array.from(args || []));
  });
  api.q = { push: replay };
  window.profilestream = api;
  stubbed.forEach(replay);
})();
