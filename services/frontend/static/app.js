/* TicketPlatform UI: vanilla JS over the gateway API (/api/...). No build step. */
(() => {
  "use strict";

  const USER_KEY = "ticketplatform.user";
  // Feather-style line icons (static markup, no user data), so no emoji font is needed.
  const ICONS = {
    mic: '<path d="M12 1a3 3 0 0 0-3 3v8a3 3 0 0 0 6 0V4a3 3 0 0 0-3-3z"/><path d="M19 10v2a7 7 0 0 1-14 0v-2"/><line x1="12" y1="19" x2="12" y2="23"/><line x1="8" y1="23" x2="16" y2="23"/>',
    music: '<path d="M9 18V5l12-2v13"/><circle cx="6" cy="18" r="3"/><circle cx="18" cy="16" r="3"/>',
    sun: '<circle cx="12" cy="12" r="5"/><line x1="12" y1="1" x2="12" y2="3"/><line x1="12" y1="21" x2="12" y2="23"/><line x1="4.22" y1="4.22" x2="5.64" y2="5.64"/><line x1="18.36" y1="18.36" x2="19.78" y2="19.78"/><line x1="1" y1="12" x2="3" y2="12"/><line x1="21" y1="12" x2="23" y2="12"/><line x1="4.22" y1="19.78" x2="5.64" y2="18.36"/><line x1="18.36" y1="5.64" x2="19.78" y2="4.22"/>',
    award: '<circle cx="12" cy="8" r="7"/><polyline points="8.21 13.89 7 23 12 20 17 23 15.79 13.88"/>',
    smile: '<circle cx="12" cy="12" r="10"/><path d="M8 14s1.5 2 4 2 4-2 4-2"/><line x1="9" y1="9" x2="9.01" y2="9"/><line x1="15" y1="9" x2="15.01" y2="9"/>',
    star: '<polygon points="12 2 15.09 8.26 22 9.27 17 14.14 18.18 21.02 12 17.77 5.82 21.02 7 14.14 2 9.27 8.91 8.26 12 2"/>',
    monitor: '<rect x="2" y="3" width="20" height="14" rx="2" ry="2"/><line x1="8" y1="21" x2="16" y2="21"/><line x1="12" y1="17" x2="12" y2="21"/>',
    zap: '<polygon points="13 2 3 14 12 14 11 22 21 10 12 10 13 2"/>',
    film: '<rect x="2" y="2" width="20" height="20" rx="2.18" ry="2.18"/><line x1="7" y1="2" x2="7" y2="22"/><line x1="17" y1="2" x2="17" y2="22"/><line x1="2" y1="12" x2="22" y2="12"/><line x1="2" y1="7" x2="7" y2="7"/><line x1="2" y1="17" x2="7" y2="17"/><line x1="17" y1="17" x2="22" y2="17"/><line x1="17" y1="7" x2="22" y2="7"/>',
    ticket: '<path d="M3 7a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v3a2 2 0 0 0 0 4v3a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-3a2 2 0 0 0 0-4z"/><line x1="14" y1="5" x2="14" y2="19" stroke-dasharray="2 2"/>',
    pin: '<path d="M21 10c0 7-9 13-9 13s-9-6-9-13a9 9 0 0 1 18 0z"/><circle cx="12" cy="10" r="3"/>',
    calendar: '<rect x="3" y="4" width="18" height="18" rx="2" ry="2"/><line x1="16" y1="2" x2="16" y2="6"/><line x1="8" y1="2" x2="8" y2="6"/><line x1="3" y1="10" x2="21" y2="10"/>',
    user: '<path d="M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2"/><circle cx="12" cy="7" r="4"/>',
  };
  const CATEGORY_ICONS = {
    concert: "mic", festival: "sun", classical: "music", jazz: "music", sports: "award", comedy: "smile",
    theatre: "star", conference: "monitor", club: "zap", film: "film",
  };
  function icon(name, cls = "") {
    const span = document.createElement("span");
    span.className = `icon ${cls}`;
    span.setAttribute("aria-hidden", "true");
    span.innerHTML = `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name] || ICONS.ticket}</svg>`;
    return span;
  }
  const SERVICE_LABELS = {
    frontend: "Gateway", "user-service": "Users", "event-catalog": "Catalog", "booking-service": "Bookings", s3: "Storage",
  };

  const state = { user: loadUser(), events: [], eventsById: new Map(), bookings: [], uploads: [], tickets: [], file: null };
  const $ = (sel) => document.querySelector(sel);

  // ---- helpers ---------------------------------------------------------------------------------
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "style") node.setAttribute("style", v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  async function api(path, options = {}) {
    const opts = { ...options, headers: { Accept: "application/json", ...(options.headers || {}) } };
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
      delete opts.json;
    }
    let response;
    try {
      response = await fetch(path, opts);
    } catch (err) {
      const e = new Error("The gateway is unreachable. Check your connection.");
      e.status = 0;
      throw e;
    }
    let body = null;
    try { body = await response.json(); } catch { body = null; }
    if (!response.ok) {
      const e = new Error((body && body.error) || `Request failed (HTTP ${response.status})`);
      e.status = response.status;
      e.body = body;
      throw e;
    }
    return { body, headers: response.headers };
  }

  function toast(message, kind = "info") {
    const t = el("div", { class: `toast ${kind}`, role: "status" }, message);
    $("#toasts").append(t);
    setTimeout(() => t.remove(), kind === "error" ? 7000 : 4500);
  }

  const money = (amount, currency = "USD") =>
    new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount);
  const dateFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC" });
  const shortDate = (iso) => dateFmt.format(new Date(iso)) + " UTC";
  const timeAgo = (iso) => {
    const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 60) return "just now";
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return new Date(iso).toLocaleDateString();
  };
  const num = (n) => new Intl.NumberFormat().format(n);

  function flashPanel(sel) {
    const p = $(sel);
    p.scrollIntoView({ behavior: "smooth", block: "start" });
    p.classList.remove("flash");
    void p.offsetWidth;
    p.classList.add("flash");
  }

  // ---- account ---------------------------------------------------------------------------------
  function loadUser() {
    try { return JSON.parse(localStorage.getItem(USER_KEY)) || null; } catch { return null; }
  }

  function setUser(user) {
    state.user = user;
    if (user) localStorage.setItem(USER_KEY, JSON.stringify(user));
    else localStorage.removeItem(USER_KEY);
    renderAccount();
    state.bookings = []; state.uploads = []; state.tickets = [];
    renderBookings(); renderUploads();
    if (user) { refreshBookings(); refreshTickets(); }
  }

  function renderAccount() {
    const u = state.user;
    $("#account-guest").hidden = !!u;
    $("#account-user").hidden = !u;
    $("#upload-btn").disabled = !u || !state.file;
    if (u) {
      const initials = u.name.split(/\s+/).filter(Boolean).slice(0, 2).map((p) => p[0].toUpperCase()).join("");
      $("#account-avatar").textContent = initials || "?";
      $("#account-name").textContent = u.name;
      $("#account-email").textContent = u.email;
      $("#account-id").textContent = `Member ID ${u.user_id}`;
      $("#account-chip").replaceChildren(icon("user"), u.name.split(/\s+/)[0]);
    } else {
      $("#account-chip").textContent = "Sign up";
    }
  }

  async function register(ev) {
    ev.preventDefault();
    const name = $("#reg-name").value.trim();
    const email = $("#reg-email").value.trim();
    const errorBox = $("#register-error");
    errorBox.hidden = true;
    errorBox.replaceChildren();
    if (!name || !email) {
      errorBox.textContent = "Please enter your name and email.";
      errorBox.hidden = false;
      return;
    }
    const btn = $("#register-btn");
    btn.disabled = true;
    btn.textContent = "Creating account…";
    try {
      const { body } = await api("/api/users/register", { method: "POST", json: { name, email } });
      setUser(body);
      toast(`Welcome, ${body.name}! Your account is ready.`, "success");
    } catch (err) {
      errorBox.hidden = false;
      if (err.status === 409) {
        errorBox.append("This email is already registered. ",
          el("a", { href: "#", id: "use-existing", onclick: (e) => { e.preventDefault(); signInByEmail(email); } }, "Continue with that account"));
      } else {
        errorBox.textContent = err.message;
      }
    } finally {
      btn.disabled = false;
      btn.textContent = "Create account";
    }
  }

  async function signInByEmail(email) {
    try {
      const { body } = await api(`/api/users?email=${encodeURIComponent(email)}`);
      setUser(body);
      toast(`Welcome back, ${body.name}.`, "success");
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async function verifyStoredUser() {
    if (!state.user) return;
    try {
      const { body } = await api(`/api/users/${encodeURIComponent(state.user.user_id)}`);
      state.user = body;
      localStorage.setItem(USER_KEY, JSON.stringify(body));
      renderAccount();
    } catch (err) {
      if (err.status === 404) { setUser(null); toast("Your saved account was not found. Please sign up again.", "error"); }
    }
  }

  // ---- events ----------------------------------------------------------------------------------
  function filterParams() {
    const p = new URLSearchParams();
    const q = $("#f-q").value.trim();
    if (q) p.set("q", q);
    if ($("#f-venue").value) p.set("venue", $("#f-venue").value);
    if ($("#f-from").value) p.set("date_from", $("#f-from").value);
    if ($("#f-to").value) p.set("date_to", $("#f-to").value);
    p.set("sort", $("#f-sort").value || "date");
    if ($("#f-available").checked) p.set("available", "true");
    p.set("limit", "200");
    return p;
  }

  let eventsRequest = 0;
  async function loadEvents() {
    const mine = ++eventsRequest;
    try {
      const { body, headers } = await api(`/api/events?${filterParams()}`);
      if (mine !== eventsRequest) return;
      state.events = body;
      for (const e of body) state.eventsById.set(e.event_id, e);
      renderEvents(headers.get("X-Total-Count"));
    } catch (err) {
      if (mine !== eventsRequest) return;
      $("#event-grid").replaceChildren(el("p", { class: "empty" }, `Could not load events: ${err.message}`));
      $("#event-count").textContent = "";
    }
  }

  async function loadVenues() {
    try {
      const { body } = await api("/api/events?limit=500&sort=name");
      for (const e of body) state.eventsById.set(e.event_id, e);
      const venues = [...new Set(body.map((e) => e.venue))].sort();
      const select = $("#f-venue");
      const current = select.value;
      select.replaceChildren(el("option", { value: "" }, "All venues"), ...venues.map((v) => el("option", { value: v }, v)));
      select.value = current;
    } catch { /* the grid shows the error */ }
  }

  function availability(e) {
    const left = e.tickets_available;
    const pct = e.capacity ? Math.max(0, Math.min(100, (left / e.capacity) * 100)) : 0;
    if (left <= 0) return { cls: "gone", text: "Sold out", pct: 0 };
    if (left <= Math.max(10, e.capacity * 0.1)) return { cls: "low", text: `Only ${num(left)} left`, pct };
    return { cls: "", text: `${num(left)} left`, pct };
  }

  function eventCard(e) {
    const d = new Date(e.date);
    const a = availability(e);
    const cat = (e.category || "other").toLowerCase();
    const qty = el("select", { class: "qty", "aria-label": `Tickets for ${e.name}`, disabled: e.tickets_available <= 0 },
      ...Array.from({ length: Math.min(10, Math.max(1, e.tickets_available)) }, (_, i) => el("option", { value: i + 1 }, i + 1)));
    const button = el("button", { class: "btn primary book-btn", type: "button", disabled: e.tickets_available <= 0 },
      e.tickets_available <= 0 ? "Sold out" : "Book");
    button.addEventListener("click", () => book(e, Number(qty.value), button));
    return el("article", { class: "card", dataset: { eventId: e.event_id } },
      el("div", { class: `card-media cat-${CATEGORY_ICONS[cat] ? cat : "other"}` },
        el("span", { class: "date-badge" }, el("b", {}, d.getUTCDate()), d.toLocaleString(undefined, { month: "short", timeZone: "UTC" }).toUpperCase()),
        icon(CATEGORY_ICONS[cat] || "ticket", "media-icon")),
      el("div", { class: "card-body" },
        el("div", { class: "card-cat" }, cat),
        el("h3", {}, e.name),
        el("p", { class: "where" }, icon("pin"), `${e.venue}${e.city ? " · " + e.city : ""}`),
        el("p", { class: "when" }, icon("calendar"), shortDate(e.date)),
        el("div", { class: `avail ${a.cls}` }, el("div", { class: "bar" }, el("span", { style: `width:${a.pct}%` })),
          el("span", { class: "avail-text" }, a.text)),
        el("div", { class: "card-foot" },
          el("div", { class: "price" }, el("small", {}, "per ticket"), money(e.price, e.currency)),
          el("div", { class: "buy" }, qty, button))));
  }

  function renderEvents(total) {
    const grid = $("#event-grid");
    if (!state.events.length) {
      grid.replaceChildren(el("p", { class: "empty" }, "No events match your filters."));
    } else {
      grid.replaceChildren(...state.events.map(eventCard));
    }
    const n = Number(total || state.events.length);
    $("#event-count").textContent = `${num(n)} event${n === 1 ? "" : "s"}`;
  }

  async function refreshEvent(eventId) {
    try {
      const { body } = await api(`/api/events/${eventId}`);
      state.eventsById.set(body.event_id, body);
      const i = state.events.findIndex((e) => e.event_id === body.event_id);
      if (i >= 0) {
        state.events[i] = body;
        const old = document.querySelector(`.card[data-event-id="${body.event_id}"]`);
        if (old) old.replaceWith(eventCard(body));
      }
    } catch { /* keep the card as is */ }
  }

  // ---- bookings --------------------------------------------------------------------------------
  async function book(event, count, button) {
    if (!state.user) {
      toast("Create an account first: it takes ten seconds.", "info");
      flashPanel("#account");
      $("#reg-name").focus();
      return;
    }
    button.disabled = true;
    const label = button.textContent;
    button.textContent = "Booking…";
    try {
      const { body } = await api("/api/bookings/book", {
        method: "POST", json: { user_id: state.user.user_id, event_id: event.event_id, ticket_count: count },
      });
      toast(`Booked ${count} × ${event.name} · ${money(body.total_price, body.currency)}`, "success");
      await Promise.all([refreshBookings(body.booking_id), refreshEvent(event.event_id)]);
    } catch (err) {
      toast(err.status === 409 ? `Not enough tickets left for ${event.name}: ${err.message}.` : err.message, "error");
      refreshEvent(event.event_id);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  async function refreshBookings(highlight) {
    if (!state.user) return;
    try {
      const { body } = await api(`/api/users/${encodeURIComponent(state.user.user_id)}/bookings`);
      state.bookings = body;
      renderBookings(highlight);
    } catch (err) {
      if (err.status !== 404) $("#booking-list").replaceChildren(el("p", { class: "empty" }, `Could not load bookings: ${err.message}`));
    }
  }

  function renderBookings(highlight) {
    const list = $("#booking-list");
    $("#booking-count").textContent = state.bookings.length;
    const select = $("#upload-booking");
    const current = select.value;
    select.replaceChildren(el("option", { value: "" }, "No specific booking"),
      ...state.bookings.map((b) => el("option", { value: b.booking_id }, `${b.event ? b.event.name : "Event " + b.event_id} · ${b.ticket_count} ticket${b.ticket_count > 1 ? "s" : ""}`)));
    select.value = current;
    if (!state.user) {
      list.replaceChildren(el("p", { class: "empty" }, "Sign up and book an event: your bookings appear here."));
      return;
    }
    if (!state.bookings.length) {
      list.replaceChildren(el("p", { class: "empty" }, "No bookings yet. Pick an event and hit Book."));
      return;
    }
    list.replaceChildren(...state.bookings.map((b) => el("div", {
      class: `item booking-item${b.booking_id === highlight ? " new" : ""}`, dataset: { bookingId: b.booking_id },
    },
      el("div", { class: "item-top" },
        el("span", { class: "item-title" }, b.event ? b.event.name : `Event #${b.event_id}`),
        el("span", { class: "status ok" }, b.status)),
      el("span", { class: "muted small" }, `${b.ticket_count} ticket${b.ticket_count > 1 ? "s" : ""} · ${money(b.total_price, b.currency)}${b.event ? " · " + b.event.venue : ""}`),
      el("span", { class: "muted small" }, `${b.event ? shortDate(b.event.date) + " · " : ""}booked ${timeAgo(b.created_at)}`),
      el("span", { class: "mono muted" }, `#${b.booking_id}`))));
  }

  // ---- uploads and tickets ---------------------------------------------------------------------
  function chooseFile(file) {
    state.file = file || null;
    $("#dz-text").textContent = file ? `${file.name} · ${(file.size / 1024).toFixed(1)} KB` : "Drop your ID here or browse";
    $("#upload-btn").disabled = !state.user || !state.file;
    $("#upload-error").hidden = true;
  }

  async function upload(ev) {
    ev.preventDefault();
    if (!state.user) { flashPanel("#account"); return; }
    if (!state.file) return;
    const data = new FormData();
    data.append("file", state.file);
    data.append("user_id", state.user.user_id);
    if ($("#upload-booking").value) data.append("booking_id", $("#upload-booking").value);
    const btn = $("#upload-btn");
    btn.disabled = true;
    btn.textContent = "Uploading…";
    try {
      const { body } = await api("/api/tickets/upload", { method: "POST", body: data });
      toast(`ID proof uploaded (${body.file_name}). Your ticket is being generated.`, "success");
      $("#upload-file").value = "";
      chooseFile(null);
      await refreshTickets(body.upload_id);
    } catch (err) {
      const box = $("#upload-error");
      box.textContent = err.message;
      box.hidden = false;
    } finally {
      btn.textContent = "Upload ID proof";
      btn.disabled = !state.user || !state.file;
    }
  }

  async function refreshTickets(highlight) {
    if (!state.user) return;
    try {
      const { body } = await api(`/api/tickets?user_id=${encodeURIComponent(state.user.user_id)}`);
      const before = new Set(state.tickets.map((t) => t.key));
      state.uploads = body.uploads;
      state.tickets = body.tickets;
      const fresh = body.tickets.filter((t) => !before.has(t.key));
      if (before.size && fresh.length) toast(`Your ticket is ready: ${fresh[0].name}`, "success");
      renderUploads(highlight);
    } catch { /* retried by the poller */ }
  }

  function renderUploads(highlight) {
    const ul = $("#upload-list");
    if (!state.uploads.length) ul.replaceChildren(el("p", { class: "empty" }, "No uploads yet."));
    else {
      ul.replaceChildren(...state.uploads.map((u) => el("div", {
        class: `item upload-item${u.upload_id === highlight ? " new" : ""}`, dataset: { uploadId: u.upload_id },
      },
        el("div", { class: "item-top" },
          el("span", { class: "item-title" }, u.file_name || u.name),
          u.ticket ? el("span", { class: "status ok" }, "ticket ready")
                   : el("span", { class: "status wait" }, el("span", { class: "spinner" }), "uploaded")),
        el("span", { class: "muted small" }, `${(u.size / 1024).toFixed(1)} KB · ${timeAgo(u.last_modified)}`))));
    }
    const tl = $("#ticket-list");
    if (!state.tickets.length) {
      tl.replaceChildren(el("p", { class: "empty" }, state.uploads.length
        ? "Generating your ticket… it appears here automatically."
        : "Tickets appear here a few seconds after your upload."));
    } else {
      tl.replaceChildren(...state.tickets.map((t) => el("div", { class: "item ticket-item" },
        el("div", { class: "item-top" }, el("span", { class: "item-title" }, icon("ticket"), t.name),
          el("a", { href: `/api/tickets/content?key=${encodeURIComponent(t.key)}`, target: "_blank", rel: "noopener" }, "View")),
        el("span", { class: "muted small" }, `generated ${timeAgo(t.last_modified)}`))));
    }
  }

  // ---- health and analytics --------------------------------------------------------------------
  async function refreshHealth() {
    const box = $("#health");
    try {
      const { body } = await api("/api/health");
      box.replaceChildren(...Object.entries(body.services).map(([name, s]) => {
        const cls = s.status === "up" ? "up" : s.status === "down" ? "down" : "not-ready";
        const title = s.status === "up" ? `${name}: up${s.latency_ms ? ` (${s.latency_ms} ms)` : ""}` :
          `${name}: ${s.status}${s.failing ? " (" + s.failing.join(", ") + ")" : ""}`;
        return el("span", { class: `badge ${cls}`, title, dataset: { service: name } }, el("span", { class: "dot" }), SERVICE_LABELS[name] || name);
      }));
    } catch (err) {
      box.replaceChildren(el("span", { class: "badge down", title: err.message }, el("span", { class: "dot" }), "Gateway unreachable"));
    }
  }

  async function refreshAnalytics() {
    try {
      const { body, headers } = await api("/api/analytics");
      const stateLabel = $("#analytics-state");
      const live = headers.get("X-Analytics-Source") === "kafka";
      stateLabel.textContent = body.length ? "live" : live ? "waiting" : "off";
      stateLabel.classList.toggle("on", body.length > 0);
      const box = $("#analytics-list");
      if (!body.length) {
        box.replaceChildren(el("p", { class: "empty" }, live
          ? "No analytics results yet. They appear once the analytics job has closed its first window."
          : "Analytics are not connected on this deployment."));
        return;
      }
      const max = Math.max(...body.map((r) => r.total_tickets || 0), 1);
      box.replaceChildren(...body.slice(0, 8).map((r) => {
        const ev = state.eventsById.get(Number(r.event_id));
        const end = typeof r.window_end === "number" ? new Date(r.window_end) : new Date(r.window_end);
        const when = isNaN(end) ? String(r.window_end) : end.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        return el("div", { class: "bar-row" },
          el("span", {}, ev ? ev.name : `Event #${r.event_id}`),
          el("b", {}, `${num(r.total_tickets)} · ${when}`),
          el("div", { class: "bar" }, el("span", { style: `width:${(100 * r.total_tickets) / max}%` })));
      }));
    } catch { /* retried */ }
  }

  // ---- wiring ----------------------------------------------------------------------------------
  function debounce(fn, ms) {
    let t;
    return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  }

  function wire() {
    $("#register-form").addEventListener("submit", register);
    $("#signout-btn").addEventListener("click", () => { setUser(null); toast("Signed out on this device."); });
    $("#account-chip").addEventListener("click", () => flashPanel("#account"));
    const reload = debounce(loadEvents, 250);
    for (const id of ["#f-q", "#f-venue", "#f-from", "#f-to", "#f-sort", "#f-available"]) {
      $(id).addEventListener(id === "#f-q" ? "input" : "change", reload);
    }
    $("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadEvents(); });
    $("#filters").addEventListener("reset", () => setTimeout(loadEvents, 0));
    $("#upload-file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
    const dz = $("#dropzone");
    dz.addEventListener("dragover", (e) => { e.preventDefault(); dz.classList.add("drag"); });
    dz.addEventListener("dragleave", () => dz.classList.remove("drag"));
    dz.addEventListener("drop", (e) => { e.preventDefault(); dz.classList.remove("drag"); chooseFile(e.dataTransfer.files[0]); });
    $("#upload-form").addEventListener("submit", upload);
  }

  function start() {
    wire();
    renderAccount();
    renderBookings();
    renderUploads();
    loadEvents();
    loadVenues();
    refreshHealth();
    refreshAnalytics();
    verifyStoredUser().then(() => { refreshBookings(); refreshTickets(); });
    setInterval(refreshHealth, 5000);
    setInterval(refreshAnalytics, 10000);
    setInterval(() => { if (!document.hidden) refreshTickets(); }, 5000);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
