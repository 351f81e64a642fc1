// The gorch console: instances, their diagrams, history and waits, events and repairs, schedules.
// Plain ES modules, no build step; everything goes through the JSON API next to it.

import { ApiError, api, enc, setToken, token } from "./api.js";
import { ago, h, json, time } from "./dom.js";
import { FieldError, SchemaForm } from "./form.js";
import { Feed } from "./live.js";

const main = document.getElementById("main");
const flash = document.getElementById("flash");
const STATUSES = ["running", "waiting", "paused", "failed", "finished", "cancelled"];
const LIVE_MS = 2000; // how often a view reloads while the change feed cannot be followed
const GAP_MS = 500; // a view reloads at most this often, however fast the changes come
const SETTLE_MS = 50; // a change rarely comes alone (an event commits a few times): wait for the rest
const HISTORY_PAGE = 20; // history entries loaded at a time, newest first
// A diagram is fitted to the width of its box, but never drawn smaller than this share of its
// size (its text is 11-12 px): on a phone it scrolls in its box at a readable size instead.
const DIAGRAM_MIN_SCALE = 0.9;

let title = "gorch"; // the API's title (GET /info: create_app(title=...))

let stop = () => {}; // ends the current view's live refresh
let gen = 0; // counts routes: a view whose route was left while it loaded draws nothing
let catalog = null; // GET /workflows, cached
let me = null; // GET /me: the token's roles, cached until the token changes
const feed = new Feed(); // the change feed, one connection for every view

// -- plumbing --------------------------------------------------------------------------------

function say(message, kind = "info") {
  flash.className = `flash ${kind}`;
  flash.textContent = message;
}

function explain(err) {
  if (err instanceof ApiError) {
    const p = err.problem;
    const hint = err.status === 401 ? " Enter a token at the top of the page." : "";
    return `${p.title ?? "Error"}: ${p.detail ?? ""}${hint}`;
  }
  return String(err?.message ?? err);
}

async function workflows() {
  catalog ??= await api("/workflows");
  return catalog;
}

async function whoami() {
  if (!me) {
    try {
      me = await api("/me");
    } catch {
      me = { roles: [], admin: false, auth: true, unknown: true };
    }
    const who = document.getElementById("who");
    who.textContent = me.unknown ? "no valid token" : !me.auth ? "auth is off"
      : `roles: ${me.roles.join(", ") || "none"}`;
    if (me.name && !me.name.startsWith("token:")) who.textContent = `${me.name}, ${who.textContent}`;
  }
  return me;
}

// Why the token may not do something ("" when it may): the API decides; this only says so early.
function lacks(roles) {
  if (!me || !me.auth || !roles.length || roles.some((r) => me.roles.includes(r))) return "";
  return `Needs the role ${roles.join(" or ")}; your token holds ${me.roles.join(", ") || "no role"}.`;
}

function lacksAdmin() {
  if (!me || !me.auth || me.admin) return "";
  return `Needs the admin role; your token holds ${me.roles.join(", ") || "no role"}.`;
}

function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

function heading(text) {
  document.title = `${text} · ${title}`;
  const h1 = h("h1", { tabindex: "-1" }, text);
  return h1;
}

function section(title, ...kids) {
  const id = `s-${title.toLowerCase().replace(/\W+/g, "-")}`;
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...kids);
}

// Read a generated form and send it; the server's errors go next to the fields they name.
async function submit(form, button, send) {
  let value;
  try {
    value = form.value();
  } catch (err) {
    if (!(err instanceof FieldError)) throw err;
    form.show([err.line]);
    return;
  }
  button.disabled = true;
  try {
    await send(value);
  } catch (err) {
    if (err instanceof ApiError && err.problem.errors) form.show(err.problem.errors);
    else form.show([], explain(err));
    say(explain(err), "error");
  } finally {
    button.disabled = false;
  }
}

function labelled(label, control, extra = null) {
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, extra);
}

function confirmAction(title, body, ok) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-body").replaceChildren(...[body].flat());
  document.getElementById("confirm-ok").textContent = ok;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// Keep a view up to date: `refresh` runs when a change it `concerns` comes on the feed (after
// SETTLE_MS, for the rest of its burst), and when the feed (re)connects (for what came
// before); every LIVE_MS only while the feed cannot be followed, or while `poll()` says so.
// Never two at once, nor two from the feed within GAP_MS; not while the box is unticked, the
// tab hidden or a confirmation open: a change meanwhile refreshes when that ends.
function live(refresh, checkbox, concerns, poll = () => false) {
  const dialog = document.getElementById("confirm");
  const paused = () => !checkbox.checked || document.hidden || dialog.open;
  let busy = false;
  let due = false;
  let last = 0; // when the last refresh started
  let later = null; // the refresh a change asked for, soon
  function soon() {
    later ??= setTimeout(() => {
      later = null;
      run();
    }, Math.max(SETTLE_MS, last + GAP_MS - Date.now()));
  }
  async function run(now = false) {
    if (busy || (!now && paused())) {
      due = true;
      return;
    }
    busy = true;
    due = false;
    last = Date.now();
    try {
      await refresh();
    } finally {
      busy = false;
    }
    if (due && !paused()) soon();
  }
  const resume = () => { if (due) run(); };
  const ticked = () => { if (checkbox.checked) run(); };
  const unlisten = feed.listen({ open: soon, change: (c) => { if (concerns(c)) soon(); } });
  const id = setInterval(() => { if ((feed.state === "failed" || poll()) && !paused()) run(); }, LIVE_MS);
  checkbox.addEventListener("change", ticked);
  document.addEventListener("visibilitychange", resume);
  dialog.addEventListener("close", resume);
  return {
    now: () => run(true),
    stop: () => {
      unlisten();
      clearInterval(id);
      clearTimeout(later);
      checkbox.removeEventListener("change", ticked);
      document.removeEventListener("visibilitychange", resume);
      dialog.removeEventListener("close", resume);
    },
  };
}

function liveBox() {
  const box = h("input", { type: "checkbox", id: "live", checked: true });
  const says = "Shows each change as the server commits it (while its change stream cannot be " +
    "followed: reloads every 2 s)";
  return [box, h("label", { class: "check live", title: says }, box, " Live refresh")];
}

// Fit a diagram to its box, but not below a readable size: past that it scrolls in its box.
function readable(svg) {
  const width = svg?.width?.baseVal?.value;
  if (width) svg.style.minWidth = `${Math.ceil(width * DIAGRAM_MIN_SCALE)}px`;
}

// Scroll a diagram larger than its box to where a thread is now; whether there was one.
function showCurrent(figure) {
  const node = figure.querySelector("g.node.current");
  if (!node) return false;
  const box = figure.getBoundingClientRect();
  const at = node.getBoundingClientRect();
  figure.scrollLeft += at.left - box.left - (box.width - at.width) / 2;
  figure.scrollTop += at.top - box.top - (box.height - at.height) / 2;
  return true;
}

// -- routes ----------------------------------------------------------------------------------

async function route(moveFocus = false) {
  stop();
  stop = () => {};
  const mine = ++gen;
  main.setAttribute("aria-busy", "true");
  await whoami();
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  for (const a of document.querySelectorAll("[data-nav]")) a.removeAttribute("aria-current");
  try {
    if (path.startsWith("/i/")) {
      await instanceView(mine, decodeURIComponent(path.slice(3)));
    } else if (path === "/schedules") {
      document.querySelector("[data-nav=schedules]").setAttribute("aria-current", "page");
      await schedulesView(mine);
    } else if (path === "/start") {
      document.querySelector("[data-nav=start]").setAttribute("aria-current", "page");
      await startView(mine, new URLSearchParams(query));
    } else {
      document.querySelector("[data-nav=list]").setAttribute("aria-current", "page");
      await listView(mine, new URLSearchParams(query));
    }
  } catch (err) {
    if (mine === gen)
      main.replaceChildren(heading("Could not load this page"), h("p", { class: "error" }, explain(err)));
  }
  if (mine !== gen) return;
  main.setAttribute("aria-busy", "false");
  if (moveFocus) main.querySelector("h1")?.focus(); // tell screen readers the page changed
}

// -- the instance list -----------------------------------------------------------------------

const COLUMNS = ["Id", "Workflow", "Status", "Waits for / last error", "Updated"];

// What a listed instance waits for; for a failed one (or one whose step is being retried),
// why: its last error, even while another of its threads still waits for an event.
function doing(i) {
  if (i.load_error)
    return h("td", { role: "cell", "data-label": "Cannot be read" }, h("span", { class: "error" }, i.load_error));
  if (i.last_error && (i.status === "failed" || !i.waiting_for.length))
    return h("td", { role: "cell", "data-label": "Last error" }, h("span", { class: "error" }, i.last_error));
  return h("td", { role: "cell", "data-label": "Waits for" }, i.waiting_for.join(", ") || "—");
}

async function listView(mine, params) {
  const names = (await workflows().catch(() => [])).map((w) => w.name);
  const wfSel = h("select", { id: "f-workflow", name: "workflow" },
    h("option", { value: "" }, "any"), names.map((n) => h("option", { value: n }, n)));
  const stSel = h("select", { id: "f-status", name: "status" },
    h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s)));
  const q = h("input", { id: "f-q", name: "q", type: "search", placeholder: "part of an id" });
  wfSel.value = params.get("workflow") ?? "";
  stSel.value = params.get("status") ?? "";
  q.value = params.get("q") ?? "";
  const [box, boxLabel] = liveBox();
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter instances",
    onsubmit: (e) => {
      e.preventDefault();
      const qs = new URLSearchParams();
      for (const [k, v] of [["workflow", wfSel.value], ["status", stSel.value], ["q", q.value.trim()]])
        if (v) qs.set(k, v);
      location.hash = `#/?${qs}`;
      if (location.hash === `#/?${qs}`) route(); // same filters: load again
    } },
    labelled("Workflow", wfSel), labelled("Status", stSel), labelled("Id contains", q),
    h("button", { type: "submit" }, "Filter"), boxLabel);

  const rows = h("tbody", { role: "rowgroup" });
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const prev = h("button", { type: "button", disabled: true }, "Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page");
  const cursors = [null]; // the cursor of each page seen so far
  let page = 0;

  async function load() {
    const qs = new URLSearchParams({ limit: "20" });
    for (const k of ["workflow", "status", "q"]) if (params.get(k)) qs.set(k, params.get(k));
    if (cursors[page]) qs.set("cursor", cursors[page]);
    try {
      const res = await api(`/instances?${qs}`);
      // explicit roles: on a phone the rows are laid out as cards, and stay a table to readers
      rows.replaceChildren(...res.items.map((i) => h("tr", { role: "row" },
        h("th", { scope: "row", role: "rowheader" }, h("a", { href: `#/i/${enc(i.id)}` }, i.id)),
        h("td", { role: "cell", "data-label": COLUMNS[1] }, i.workflow),
        h("td", { role: "cell", "data-label": COLUMNS[2] }, badge(i.status)),
        doing(i),
        h("td", { role: "cell", "data-label": COLUMNS[4] }, time(i.updated_at)))));
      if (!res.items.length)
        rows.replaceChildren(h("tr", { role: "row" }, h("td", { role: "cell", colspan: 5 }, "No instances match.")));
      cursors[page + 1] = res.next;
      next.disabled = !res.next;
      prev.disabled = page === 0;
      count.textContent = `Page ${page + 1}: ${res.items.length} instance${res.items.length === 1 ? "" : "s"}`;
    } catch (err) {
      say(explain(err), "error");
    }
  }
  next.addEventListener("click", () => { page += 1; load(); });
  prev.addEventListener("click", () => { page = Math.max(0, page - 1); load(); });

  if (mine !== gen) return;
  main.replaceChildren(
    heading("Instances"),
    filters,
    count,
    h("div", { class: "scroll" }, h("table", { class: "instances cards", role: "table" },
      h("caption", { class: "sr-only" }, "Instances, newest first"),
      h("thead", { role: "rowgroup" }, h("tr", { role: "row" },
        COLUMNS.map((c) => h("th", { scope: "col", role: "columnheader" }, c)))),
      rows)),
    h("nav", { class: "pager", "aria-label": "Pages" }, prev, next));
  // Watched before the first load, so that a change while it loads is not missed.
  const workflow = params.get("workflow");
  const watch = live(load, box, (c) => !workflow || c.workflow === workflow);
  stop = watch.stop;
  await watch.now();
}

// -- one instance ----------------------------------------------------------------------------
// The page is made of parts, each owning its elements and drawing into them what a refresh
// loaded. `page` is what the parts share: the instance's id and path, its workflow's
// description, and `reload` (refresh after an action, redrawing the forms too).

async function instanceView(mine, id) {
  const path = `/instances/${enc(id)}`;
  const info = await api(path);
  const wf = (await workflows()).find((w) => w.name === info.workflow);
  const [box, boxLabel] = liveBox();
  const summary = summaryPart(info);
  const diagram = diagramPart();
  const history = historyPart(path);
  const waits = h("div", { class: "scroll" });
  const events = h("div", { class: "events" });
  const ops = h("div", { class: "ops" });
  const data = h("pre", { class: "json", tabindex: "0" });
  const state = h("pre", { class: "json", tabindex: "0" });
  const page = { id, path, wf, status: info.status };
  let formsKey = null; // what the forms were drawn for: redrawn only when it changes

  page.refresh = () => attempt(async () => {
    const [inst, ws, hist, svg] = await Promise.all([
      api(path), api(`${path}/waits`),
      api(`${path}/history?limit=${HISTORY_PAGE}&newest_first=true`),
      api(`${path}/diagram`, { accept: "image/svg+xml" })]);
    page.status = inst.status;
    summary.show(inst);
    diagram.show(svg);
    waits.replaceChildren(waitsTable(ws));
    data.textContent = json(inst.data);
    state.textContent = json(inst.state);
    history.merge(hist);
    // Redrawn only when the status or the waits change: not to lose what is being typed.
    const key = JSON.stringify([inst.status, ws.map((w) => [w.thread, w.events])]);
    if (key !== formsKey) {
      formsKey = key;
      events.replaceChildren(...eventForms(page, ws));
      ops.replaceChildren(...operatorActions(page, inst));
    }
  });
  page.reload = () => {
    formsKey = null;
    return page.refresh();
  };

  if (mine !== gen) return;
  main.replaceChildren(
    h("div", { class: "title-row" }, heading(id), summary.status, boxLabel),
    summary.list,
    section("Diagram", ...diagram.elements),
    section("Threads", waits),
    section("Send an event", events),
    section("Operator actions", ops),
    section("Data", data),
    h("details", { class: "state" }, h("summary", {}, "State (the interpreter's)"), state),
    section("History", ...history.elements));
  summary.show(info);
  // The feed says when it moves; a step that runs reports heartbeats the feed does not carry,
  // so while the instance is running the page also reloads every LIVE_MS.
  const watch = live(page.refresh, box, (c) => c.instance === id, () => page.status === "running");
  stop = watch.stop;
  await watch.now();
}

// Run an action; if it fails, say why.
async function attempt(action) {
  try {
    await action();
  } catch (err) {
    say(explain(err), "error");
  }
}

// " (thread t)" after what belongs to a thread other than the main one.
function threadNote(thread) {
  return thread && thread !== "_main_" ? h("span", { class: "muted" }, ` (thread ${thread})`) : "";
}

// The status badge (shown in the title row) and the summary list under the title.
function summaryPart(info) {
  const status = badge(info.status);
  const list = h("dl", { class: "summary" });
  function show(inst) {
    status.className = `badge ${inst.status}`;
    status.textContent = inst.status;
    list.replaceChildren(...summaryRows(inst).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }
  return { status, list, show };
}

function summaryRows(inst) {
  const rows = [
    ["Workflow", inst.workflow],
    ["Created", time(inst.created_at)], ["Updated", time(inst.updated_at)],
    ["Version", String(inst.version)],
  ];
  const r = inst.running;
  if (r) {
    const said = r.details === null ? "" : ` — ${JSON.stringify(r.details)}`;
    rows.push(["Running", `${r.statement} (thread ${r.thread}), attempt ${r.attempt}, since ` +
      `${ago(r.since)}; last heartbeat ${ago(r.heartbeat_at)}${said}`]);
  }
  if (inst.attempts) rows.push(["Attempts", String(inst.attempts)]);
  if (inst.next_attempt_at) rows.push(["Next attempt", time(inst.next_attempt_at)]);
  if (inst.last_error) rows.push(["Last error", h("span", { class: "error" }, inst.last_error)]);
  // A Child's instance links to its parent; a parent to the children its Child statements started.
  if (inst.parent) rows.push(["Parent", instanceLink(inst.parent)]);
  if (inst.children?.length)
    rows.push(["Children", h("span", { class: "children" }, inst.children.map((c, n) => [n ? ", " : "", instanceLink(c)]))]);
  return rows;
}

function instanceLink(id) {
  return h("a", { href: `#/i/${enc(id)}` }, id);
}

// The diagram (fitted to its box, or at its actual size) and its legend.
function diagramPart() {
  const figure = h("div", { class: "diagram scroll", tabindex: "0", role: "group", "aria-label": "Diagram" });
  const zoom = h("button", { type: "button", class: "secondary", "aria-pressed": "false",
    onclick: () => {
      const actual = figure.classList.toggle("actual");
      zoom.setAttribute("aria-pressed", String(actual));
    } }, "Actual size");
  const legend = h("p", { class: "legend muted" },
    h("span", { class: "key current" }), " where a thread is now ",
    h("span", { class: "key done" }), " already run ",
    h("span", { class: "key failed" }), " failed");
  let placed = false; // scrolled to where a thread is (once: after that the scrolling is yours)
  function show(svg) {
    figure.innerHTML = svg; // drawn by gorch.graph, every text escaped
    readable(figure.querySelector("svg"));
    if (!placed) placed = showCurrent(figure);
  }
  return { elements: [zoom, figure, legend], show };
}

// Where each thread is, what it waits for, since when, and its timers.
function waitsTable(ws) {
  if (!ws.length) return h("p", {}, "No thread is running.");
  const cols = ["Thread", "At", "Waits for", "Since", "Timers due"];
  const cell = (n, ...kids) => h("td", { role: "cell", "data-label": cols[n] }, ...kids);
  return h("table", { class: "cards", role: "table" },
    h("caption", { class: "sr-only" }, "Threads"),
    h("thead", { role: "rowgroup" }, h("tr", { role: "row" },
      cols.map((c) => h("th", { scope: "col", role: "columnheader" }, c)))),
    h("tbody", { role: "rowgroup" }, ws.map((w) => h("tr", { role: "row" },
      h("th", { scope: "row", role: "rowheader" }, w.thread),
      cell(1, w.at || "(start)", h("br"), h("small", { class: "muted" }, w.status)),
      cell(2, w.events.join(", ") || "—"),
      cell(3, w.since ? time(w.since) : "—"),
      cell(4, w.timers.length ? w.timers.map((t) => h("div", {}, `${t.name}: `, time(t.due_at))) : "—")))));
}

// The history, newest first: each refresh brings the newest page, older pages load on demand.
function historyPart(path) {
  const list = h("ol", { class: "timeline" });
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const older = h("button", { type: "button", class: "secondary", hidden: true, onclick: loadOlder },
    "Load older entries");
  let entries = []; // the entries shown, newest first
  let olderCursor = null; // where the next older page starts (null: the oldest is shown)

  function render() {
    count.textContent = historyCount(entries);
    older.hidden = !olderCursor;
    list.replaceChildren(...entries.map(historyEntry));
  }

  // The newest page, put in front of what is shown: history only grows, so the entries are
  // told apart by seq. A page that does not reach back to what is shown starts over.
  function merge(page) {
    const top = entries.length ? entries[0].seq : 0;
    const reach = page.items.length ? page.items.at(-1).seq : 0;
    if (!entries.length || reach > top + 1) {
      entries = page.items;
      olderCursor = page.next;
    } else {
      entries = [...page.items.filter((e) => e.seq > top), ...entries];
    }
    render();
  }

  async function loadOlder() {
    if (!olderCursor) return;
    older.disabled = true;
    await attempt(async () => {
      const qs = `limit=${HISTORY_PAGE}&newest_first=true&cursor=${enc(olderCursor)}`;
      const page = await api(`${path}/history?${qs}`);
      const first = entries.length;
      entries = [...entries, ...page.items];
      olderCursor = page.next;
      render();
      list.children[first]?.focus(); // the first entry just loaded
    });
    older.disabled = false;
  }

  return { elements: [count, list, older], merge };
}

function historyCount(entries) {
  const total = entries.length ? entries[0].seq : 0; // seq counts from 1: the newest is the count
  if (!total) return "No entries yet.";
  if (entries.length >= total) return `All ${total} entr${total === 1 ? "y" : "ies"}, newest first.`;
  return `The latest ${entries.length} of ${total} entries, newest first.`;
}

function historyEntry(e) {
  const folded = (label, value) => value !== null && value !== undefined
    ? h("details", {}, h("summary", {}, label), h("pre", {}, json(value))) : "";
  return h("li", { class: `entry ${e.kind}`, tabindex: "-1" },
    h("div", { class: "when" }, `#${e.seq} · `, time(e.at)),
    h("div", {}, h("strong", {}, e.kind.replace("_", " ")), e.name ? ` ${e.name}` : "", threadNote(e.thread)),
    folded("input", e.input),
    folded("output", e.output),
    e.error ? h("p", { class: "error" }, e.error) : "",
    e.note ? h("p", { class: "why" }, `Note: ${e.note}`) : "",
    e.actor || e.reason ? h("p", { class: "by" }, byLine(e)) : "");
}

// Who made an operator's change and why: "by ana: customer called".
function byLine(e) {
  if (!e.actor) return `why: ${e.reason}`;
  return e.reason ? `by ${e.actor}: ${e.reason}` : `by ${e.actor}`;
}

// An optional "Reason" field for an operator action (kept in the history with the token's name).
const MAX_REASON = 2000;
function reasonField(id) {
  const input = h("input", { type: "text", id, maxlength: String(MAX_REASON), autocomplete: "off",
    placeholder: "optional: why (kept in the history)" });
  return { input, element: labelled("Reason", input), value: () => input.value.trim() || null };
}

// A form for each event a thread waits for now (a timeout fires by itself: none for it).
function eventForms(page, ws) {
  const forms = [];
  for (const w of ws) {
    for (const name of w.events) {
      const ev = page.wf?.events.find((e) => e.name === name);
      if (ev && !ev.timeout) forms.push(eventForm(page, w.thread, ev));
    }
  }
  return forms.length ? forms : [h("p", {}, "The instance waits for no event now.")];
}

function eventForm(page, thread, ev) {
  const form = new SchemaForm(ev.payload);
  const id = `send-${ev.name}-${thread}`.replace(/[^\w-]/g, "_");
  const why = lacks(ev.roles);
  const button = h("button", { type: "submit", disabled: Boolean(why) }, `Send ${ev.name}`);
  const send = async (payload) => {
    const qs = thread === "_main_" ? "" : `?thread=${enc(thread)}`;
    const res = await api(`${page.path}/events/${enc(ev.name)}${qs}`, { method: "POST", body: payload });
    say(`Sent ${ev.name}${res.output !== null ? `; answer: ${JSON.stringify(res.output)}` : ""}.`, "ok");
    await page.reload();
  };
  return h("form", { class: "card event", id, novalidate: true, "aria-labelledby": `${id}-title`,
    onsubmit: (e) => {
      e.preventDefault();
      submit(form, button, send);
    } },
    h("h3", { id: `${id}-title` }, ev.name, threadNote(thread)),
    ev.roles.length ? h("p", { class: "muted" }, `Sent by: ${ev.roles.join(" or ")}`) : "",
    form.element,
    button,
    why ? h("p", { class: "why" }, why) : "");
}

// The operator actions that take no input: in which statuses each can be done, what it does.
const ACTIONS = {
  pause: { can: (st) => ["running", "waiting"].includes(st),
    what: "No event is accepted and no timer fires until it is unpaused." },
  unpause: { can: (st) => st === "paused", what: "The instance goes on where it stopped." },
  cancel: { can: (st) => !["finished", "cancelled"].includes(st),
    what: "The instance ends for good; its state is kept for inspection. This cannot be undone." },
  retry: { can: (st) => st === "failed", what: "The failed step runs again now." },
};

function operatorActions(page, inst) {
  const why = lacksAdmin();
  const buttons = Object.keys(ACTIONS).map((action) =>
    actionButton(page, action, !ACTIONS[action].can(inst.status) || Boolean(why)));
  return [
    h("p", { class: why ? "why" : "muted" }, why || "These need the admin role."),
    h("div", { class: "buttons" }, [...buttons, eraseButton(page, Boolean(why))]),
    gotoForm(page, inst),
    dataForm(page, inst),
  ];
}

// Erasing personal data (a GDPR request): allowed in every status; a workflow that declares no
// personal_data fields is refused by the server, which says so.
function eraseButton(page, disabled) {
  return h("button", { type: "button", class: "danger", id: "erase", disabled,
    onclick: async () => {
      const reason = reasonField("erase-reason");
      const body = [h("p", {}, "The fields its workflow declares as personal data are erased " +
        "from its data, its history and its idempotency answers; the history keeps its " +
        "entries and records the deletion. This cannot be undone."), reason.element];
      if (!(await confirmAction(`Delete the personal data of ${page.id}?`, body, "erase"))) return;
      await attempt(async () => {
        const why = reason.value();
        const query = why ? `?reason=${encodeURIComponent(why)}` : "";
        await api(`${page.path}/data${query}`, { method: "DELETE" });
        say("personal data deleted.", "ok");
        await page.reload();
      });
    } }, "Delete personal data");
}

function actionButton(page, action, disabled) {
  const name = action[0].toUpperCase() + action.slice(1);
  return h("button", { type: "button", class: action === "cancel" ? "danger" : "", disabled,
    onclick: async () => {
      const reason = reasonField("action-reason");
      const body = [h("p", {}, ACTIONS[action].what), reason.element];
      if (!(await confirmAction(`${name} ${page.id}?`, body, action))) return;
      await attempt(async () => {
        const why = reason.value();
        await api(`${page.path}/${action}`, { method: "POST", body: why ? { reason: why } : undefined });
        say(`${action}: done.`, "ok");
        await page.reload();
      });
    } }, name);
}

// Goto (repair): pick a statement and a thread, preview what would change, then apply it.
function gotoForm(page, inst) {
  const targets = page.wf?.goto_targets ?? [];
  const threads = inst.state.threads.map((t) => t.id);
  const to = h("select", { id: "goto-to" }, targets.map((t) =>
    h("option", { value: t.name }, `${t.name} (${t.kind}${t.thread === "_main_" ? "" : `, thread ${t.thread}`})`)));
  const thread = h("select", { id: "goto-thread" },
    (threads.length ? threads : ["_main_"]).map((t) => h("option", { value: t }, t)));
  const plan = h("div", { class: "plan", "aria-live": "polite" });
  // The thread follows the statement: goto moves a thread within its own body.
  const follow = () => {
    const t = targets.find((x) => x.name === to.value);
    const match = inst.state.threads.find((x) => x.name === t?.thread);
    if (match) thread.value = match.id;
    plan.replaceChildren();
  };
  to.addEventListener("change", follow);
  follow();
  thread.addEventListener("change", () => plan.replaceChildren());
  const reason = reasonField("goto-reason");
  const request = (dryRun) => api(`${page.path}/goto`, {
    method: "POST", body: { to: to.value, thread: thread.value, dry_run: dryRun, reason: reason.value() } });
  const preview = async (e) => {
    e.preventDefault();
    try {
      const apply = applyGoto(page, await request(true), () => request(false), plan);
      apply.focus();
    } catch (err) {
      plan.replaceChildren(h("p", { class: "error", role: "alert" }, explain(err)));
    }
  };
  return h("form", { class: "card goto", "aria-labelledby": "goto-title", onsubmit: preview },
    h("h3", { id: "goto-title" }, "Go to a statement (repair)"),
    labelled("Statement", to), labelled("Thread", thread), reason.element,
    h("button", { type: "submit", disabled: Boolean(lacksAdmin()) }, "Preview goto"),
    plan);
}

// Edit data (repair): the data as JSON to edit; a dry run shows the diff, then it is applied.
function dataForm(page, inst) {
  const editable = !["finished", "cancelled"].includes(inst.status);
  const text = h("textarea", { id: "data-json", rows: "10", spellcheck: "false", class: "json-edit" },
    json(inst.data));
  const reason = reasonField("data-reason");
  const plan = h("div", { class: "plan", "aria-live": "polite" });
  text.addEventListener("input", () => plan.replaceChildren());
  const request = (value, dryRun) => api(`${page.path}/data?${new URLSearchParams({
    dry_run: String(dryRun), ...(reason.value() ? { reason: reason.value() } : {}) })}`,
  { method: "PUT", body: value });
  const preview = async (e) => {
    e.preventDefault();
    let value;
    try {
      value = JSON.parse(text.value);
    } catch (err) {
      plan.replaceChildren(h("p", { class: "error", role: "alert" }, `Not valid JSON: ${err.message}`));
      return;
    }
    try {
      const p = await request(value, true);
      if (!p.changed) {
        plan.replaceChildren(h("p", {}, "Nothing would change."));
        return;
      }
      applyData(page, p, () => request(value, false), plan).focus();
    } catch (err) {
      plan.replaceChildren(h("p", { class: "error", role: "alert" }, explain(err)));
    }
  };
  return h("form", { class: "card data-edit", "aria-labelledby": "data-title", onsubmit: preview },
    h("h3", { id: "data-title" }, "Edit data (repair)"),
    editable ? "" : h("p", { class: "muted" }, `The data of a ${inst.status} instance is kept as it was.`),
    labelled("Data (JSON)", text), reason.element,
    h("button", { type: "submit", disabled: Boolean(lacksAdmin()) || !editable }, "Preview change"),
    plan);
}

// A data dry run's diff in `plan`, with the button that applies it (after a confirmation).
function applyData(page, p, apply, plan) {
  const button = h("button", { type: "button", class: "danger", onclick: async () => {
    if (!(await confirmAction(`Change the data of ${page.id}?`, dataDiff(p), "Apply change"))) return;
    await attempt(async () => {
      await apply();
      say("data: changed.", "ok");
      plan.replaceChildren();
      await page.reload();
    });
  } }, "Apply change");
  plan.replaceChildren(h("h4", {}, "What would change (dry run)"), dataDiff(p), button);
  return button;
}

function dataDiff(p) {
  const kind = (line) => line.startsWith("+++") || line.startsWith("---") ? "head"
    : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
  return h("pre", { class: "data-diff", tabindex: "0" },
    p.diff.map((line) => h("span", { class: kind(line) }, `${line}\n`)));
}

// Show a dry run's plan in `plan`, with the button that applies it (after a confirmation).
function applyGoto(page, p, apply, plan) {
  const button = h("button", { type: "button", class: "danger", onclick: async () => {
    const ok = await confirmAction(`Move thread ${p.thread} of ${page.id}?`, [
      h("p", {}, `From ${p.from_step || "(start)"} to ${p.to_step}.`), gotoChanges(p)], "Apply goto");
    if (!ok) return;
    await attempt(async () => {
      const done = await apply();
      say(`goto: thread ${done.thread} now at ${done.to_step}.`, "ok");
      plan.replaceChildren();
      await page.reload();
    });
  } }, "Apply goto");
  plan.replaceChildren(h("h4", {}, "What would change (dry run)"), gotoDiff(p), gotoChanges(p), button);
  return button;
}

// A goto plan as a diff: the thread, where it is and will be, the waits it stops and starts.
function gotoDiff(p) {
  const row = (attrs, label, text) => h("tr", attrs, h("th", { scope: "row" }, label), h("td", {}, text));
  const del = { class: "del" };
  const add = { class: "add" };
  return h("table", { class: "diff" }, h("tbody", {},
    row({}, "Thread", p.thread),
    row(del, "Now", `− ${p.from_step || "(start)"} (${p.from_status})`),
    row(add, "After", `+ ${p.to_step} (${p.to_status})`),
    p.teardown.length ? row(del, "Stops waiting for", p.teardown.join(", ")) : "",
    p.setup.length ? row(add, "Starts waiting for", p.setup.join(", ")) : ""));
}

function gotoChanges(p) {
  return h("ul", {}, p.description.map((d) => h("li", {}, d)));
}

// -- schedules -------------------------------------------------------------------------------
// GET /schedules (any token); pause, resume and delete need the admin role. Schedules are not in
// the change feed: the list reloads after each action, and on **Reload**.

const SCHEDULE_COLUMNS = ["Name", "Workflow", "Cron", "Time zone", "Catch up", "Paused", "Next tick", "Last tick"];

async function schedulesView(mine) {
  const rows = h("tbody", { role: "rowgroup" });
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const why = lacksAdmin();
  const reload = h("button", { type: "button", class: "secondary", onclick: () => load() }, "Reload");

  async function load() {
    try {
      const all = await api("/schedules");
      const cell = (n, ...kids) => h("td", { role: "cell", "data-label": SCHEDULE_COLUMNS[n] }, ...kids);
      rows.replaceChildren(...all.map((s) => h("tr", { role: "row", "data-schedule": s.name },
        h("th", { scope: "row", role: "rowheader" }, s.name),
        cell(1, s.workflow), cell(2, h("code", {}, s.cron)), cell(3, s.timezone),
        cell(4, s.catchup ? "yes" : "no"),
        cell(5, s.paused ? badge("paused") : "no"),
        cell(6, s.paused ? h("span", { class: "muted" }, "— (paused)") : time(s.next_at)),
        cell(7, s.last_tick ? time(s.last_tick) : "never"),
        h("td", { role: "cell", "data-label": "Actions" }, h("div", { class: "buttons" },
          scheduleButton(s, s.paused ? "resume" : "pause", load),
          scheduleButton(s, "delete", load))))));
      if (!all.length)
        rows.replaceChildren(h("tr", { role: "row" }, h("td", { role: "cell", colspan: 9 }, "No schedules.")));
      count.textContent = `${all.length} schedule${all.length === 1 ? "" : "s"}`;
    } catch (err) {
      say(explain(err), "error");
    }
  }

  function scheduleButton(s, action, done) {
    const name = action[0].toUpperCase() + action.slice(1);
    return h("button", { type: "button", class: action === "delete" ? "danger" : "", disabled: Boolean(why),
      "aria-label": `${name} ${s.name}`,
      onclick: async () => {
        if (action === "delete") {
          const body = h("p", {}, `The schedule stops for good; the instances it started stay. ` +
            "This cannot be undone.");
          if (!(await confirmAction(`Delete the schedule ${s.name}?`, body, "delete"))) return;
        }
        await attempt(async () => {
          const path = `/schedules/${enc(s.name)}`;
          if (action === "delete") await api(path, { method: "DELETE", accept: "text/plain" });
          else await api(`${path}/${action}`, { method: "POST" });
          say(`${s.name}: ${action === "delete" ? "deleted" : `${action}d`}.`, "ok");
        });
        await done();
      } }, name);
  }

  await load();
  if (mine !== gen) return;
  main.replaceChildren(
    h("div", { class: "title-row" }, heading("Schedules"), reload),
    h("p", { class: why ? "why" : "muted" }, why || "Pause, Resume and Delete need the admin role."),
    count,
    h("div", { class: "scroll" }, h("table", { class: "schedules cards", role: "table" },
      h("caption", { class: "sr-only" }, "Schedules, by name"),
      h("thead", { role: "rowgroup" }, h("tr", { role: "row" },
        [...SCHEDULE_COLUMNS, "Actions"].map((c) => h("th", { scope: "col", role: "columnheader" }, c)))),
      rows)));
}

// -- start -----------------------------------------------------------------------------------

async function startView(mine, params) {
  const all = await workflows();
  if (!all.length) {
    main.replaceChildren(heading("Start an instance"), h("p", {}, "No workflow is registered."));
    return;
  }
  const sel = h("select", { id: "start-workflow" }, all.map((w) => h("option", { value: w.name }, w.name)));
  sel.value = params.get("workflow") ?? all[0].name;
  const idInput = h("input", { id: "start-id", type: "text", placeholder: "leave empty for a random id",
    "aria-describedby": "start-id-hint" });
  const holder = h("div");
  const doc = h("p", { class: "muted" });
  let form;
  const button = h("button", { type: "submit" }, "Start");
  function pick() {
    const w = all.find((x) => x.name === sel.value);
    doc.textContent = w.doc + (w.start_roles.length ? ` Started by: ${w.start_roles.join(" or ")}.` : "");
    form = new SchemaForm(w.data, { legend: "Data" });
    holder.replaceChildren(h("details", {}, h("summary", {}, "Data (optional: empty fields keep their defaults)"), form.element));
  }
  sel.addEventListener("change", pick);
  pick();
  if (mine !== gen) return;
  main.replaceChildren(
    heading("Start an instance"),
    h("form", { class: "card start", novalidate: true, onsubmit: (e) => {
      e.preventDefault();
      submit(form, button, async (data) => {
        const body = {};
        if (idInput.value.trim()) body.id = idInput.value.trim();
        if (data && Object.keys(data).length) body.data = data;
        const inst = await api(`/workflows/${enc(sel.value)}/instances`, { method: "POST", body });
        say(`Started ${inst.id}.`, "ok");
        location.hash = `#/i/${enc(inst.id)}`;
      });
    } },
    labelled("Workflow", sel, doc),
    labelled("Id", idInput, h("small", { class: "hint", id: "start-id-hint" }, "up to 200 characters, no \"/\"")),
    holder,
    button));
}

// -- start up --------------------------------------------------------------------------------

const tokenForm = document.getElementById("token-form");
const tokenInput = document.getElementById("token");
tokenInput.value = token();
document.getElementById("remember").checked = Boolean(localStorage.getItem("gorch-token"));
tokenForm.addEventListener("submit", (e) => {
  e.preventDefault();
  setToken(tokenInput.value.trim(), document.getElementById("remember").checked);
  catalog = null;
  me = null;
  say(tokenInput.value.trim() ? "Token set." : "Token cleared.", "ok");
  feed.start(); // with the new token
  route();
});
window.addEventListener("hashchange", () => route(true));
// the skip link moves focus without touching the hash (the hash is the console's route)
document.querySelector("a.skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
// The API's own title (GET /info needs no token) names the console, then the first page loads.
(async () => {
  try {
    title = (await api("/info")).title || title;
  } catch {
    // an older server without /info: keep "gorch"
  }
  document.querySelector(".brand").textContent = title;
  document.title = title;
  feed.start();
  route();
})();
