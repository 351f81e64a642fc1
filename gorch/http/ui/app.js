// The gorch console: instances, their diagrams, history and waits, events and repairs.
// Plain ES modules, no build step; everything goes through the JSON API next to it.

import { ApiError, api, enc, setToken, token } from "./api.js";
import { h, json, time } from "./dom.js";
import { FieldError, SchemaForm } from "./form.js";

const main = document.getElementById("main");
const flash = document.getElementById("flash");
const STATUSES = ["running", "waiting", "paused", "failed", "finished", "cancelled"];
const LIVE_MS = 2000;
const HISTORY_PAGE = 20; // history entries loaded at a time, newest first
// A diagram is fitted to the width of its box, but never drawn smaller than this share of its
// size (its text is 11-12 px): on a phone it scrolls in its box at a readable size instead.
const DIAGRAM_MIN_SCALE = 0.9;

let title = "gorch"; // the API's title (GET /info: create_app(title=...))

let stop = () => {}; // ends the current view's live refresh
let gen = 0; // counts routes: a view whose route was left while it loaded draws nothing
let catalog = null; // GET /workflows, cached
let me = null; // GET /me: the token's roles, cached until the token changes

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

function live(fn, checkbox) {
  const id = setInterval(() => {
    if (checkbox.checked && !document.hidden && !document.getElementById("confirm").open) fn();
  }, LIVE_MS);
  return () => clearInterval(id);
}

function liveBox() {
  const box = h("input", { type: "checkbox", id: "live", checked: true });
  return [box, h("label", { class: "check live" }, box, " Live refresh")];
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
  await load();
  if (mine === gen) stop = live(load, box);
}

// -- one instance ----------------------------------------------------------------------------

async function instanceView(mine, id) {
  const path = `/instances/${enc(id)}`;
  const info = await api(path);
  const wf = (await workflows()).find((w) => w.name === info.workflow);
  const [box, boxLabel] = liveBox();

  const summary = h("dl", { class: "summary" });
  const status = badge(info.status);
  const figure = h("div", { class: "diagram scroll", tabindex: "0", role: "group", "aria-label": "Diagram" });
  const waits = h("div", { class: "scroll" });
  const zoom = h("button", { type: "button", class: "secondary", "aria-pressed": "false",
    onclick: () => {
      const actual = figure.classList.toggle("actual");
      zoom.setAttribute("aria-pressed", String(actual));
    } }, "Actual size");
  const events = h("div", { class: "events" });
  const data = h("pre", { class: "json", tabindex: "0" });
  const state = h("pre", { class: "json", tabindex: "0" });
  const history = h("ol", { class: "timeline" });
  const historyCount = h("p", { class: "muted", "aria-live": "polite" });
  const older = h("button", { type: "button", class: "secondary", hidden: true, onclick: loadOlder },
    "Load older entries");
  let entries = []; // the history entries shown, newest first
  let olderCursor = null; // where the next older page starts (null: the oldest is shown)
  const ops = h("div", { class: "ops" });
  let eventsKey = null;
  let current = info;
  let placed = false; // the diagram was scrolled to where a thread is (once: then it is yours)

  async function refresh() {
    try {
      const [inst, ws, hist, svg] = await Promise.all([
        api(path), api(`${path}/waits`),
        api(`${path}/history?limit=${HISTORY_PAGE}&newest_first=true`),
        api(`${path}/diagram`, { accept: "image/svg+xml" })]);
      current = inst;
      renderSummary(inst);
      figure.innerHTML = svg; // drawn by gorch.graph, every text escaped
      readable(figure.querySelector("svg"));
      if (!placed) placed = showCurrent(figure);
      renderWaits(ws);
      data.textContent = json(inst.data);
      state.textContent = json(inst.state);
      mergeHistory(hist);
      const key = JSON.stringify([inst.status, ws.map((w) => [w.thread, w.events])]);
      if (key !== eventsKey) {
        eventsKey = key;
        renderEvents(inst, ws);
        renderOps(inst);
      }
    } catch (err) {
      say(explain(err), "error");
    }
  }

  function renderSummary(inst) {
    status.className = `badge ${inst.status}`;
    status.textContent = inst.status;
    const rows = [
      ["Workflow", inst.workflow],
      ["Created", time(inst.created_at)], ["Updated", time(inst.updated_at)],
      ["Version", String(inst.version)],
    ];
    if (inst.attempts) rows.push(["Attempts", String(inst.attempts)]);
    if (inst.next_attempt_at) rows.push(["Next attempt", time(inst.next_attempt_at)]);
    if (inst.last_error) rows.push(["Last error", h("span", { class: "error" }, inst.last_error)]);
    summary.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function renderWaits(ws) {
    if (!ws.length) {
      waits.replaceChildren(h("p", {}, "No thread is running."));
      return;
    }
    const cols = ["Thread", "At", "Waits for", "Since", "Timers due"];
    const cell = (n, ...kids) => h("td", { role: "cell", "data-label": cols[n] }, ...kids);
    waits.replaceChildren(h("table", { class: "cards", role: "table" },
      h("caption", { class: "sr-only" }, "Threads"),
      h("thead", { role: "rowgroup" }, h("tr", { role: "row" },
        cols.map((c) => h("th", { scope: "col", role: "columnheader" }, c)))),
      h("tbody", { role: "rowgroup" }, ws.map((w) => h("tr", { role: "row" },
        h("th", { scope: "row", role: "rowheader" }, w.thread),
        cell(1, w.at || "(start)", h("br"), h("small", { class: "muted" }, w.status)),
        cell(2, w.events.join(", ") || "—"),
        cell(3, w.since ? time(w.since) : "—"),
        cell(4, w.timers.length ? w.timers.map((t) => h("div", {}, `${t.name}: `, time(t.due_at))) : "—"))))));
  }

  // The newest page, put in front of what is shown: history only grows, so the entries are
  // told apart by seq. A page that does not reach back to what is shown starts over.
  function mergeHistory(page) {
    const top = entries.length ? entries[0].seq : 0;
    const reach = page.items.length ? page.items.at(-1).seq : 0;
    if (!entries.length || reach > top + 1) {
      entries = page.items;
      olderCursor = page.next;
    } else {
      entries = [...page.items.filter((e) => e.seq > top), ...entries];
    }
    renderHistory();
  }

  async function loadOlder() {
    if (!olderCursor) return;
    older.disabled = true;
    try {
      const qs = `limit=${HISTORY_PAGE}&newest_first=true&cursor=${enc(olderCursor)}`;
      const page = await api(`${path}/history?${qs}`);
      const first = entries.length;
      entries = [...entries, ...page.items];
      olderCursor = page.next;
      renderHistory();
      history.children[first]?.focus(); // the first entry just loaded
    } catch (err) {
      say(explain(err), "error");
    } finally {
      older.disabled = false;
    }
  }

  function renderHistory() {
    const total = entries.length ? entries[0].seq : 0; // seq counts from 1: the newest is the count
    historyCount.textContent = !total ? "No entries yet."
      : entries.length >= total ? `All ${total} entr${total === 1 ? "y" : "ies"}, newest first.`
      : `The latest ${entries.length} of ${total} entries, newest first.`;
    older.hidden = !olderCursor;
    history.replaceChildren(...entries.map((e) => h("li", { class: `entry ${e.kind}`, tabindex: "-1" },
      h("div", { class: "when" }, `#${e.seq} · `, time(e.at)),
      h("div", {}, h("strong", {}, e.kind.replace("_", " ")), e.name ? ` ${e.name}` : "",
        e.thread && e.thread !== "_main_" ? h("span", { class: "muted" }, ` (thread ${e.thread})`) : ""),
      e.input !== null && e.input !== undefined ? h("details", {}, h("summary", {}, "input"), h("pre", {}, json(e.input))) : "",
      e.output !== null && e.output !== undefined ? h("details", {}, h("summary", {}, "output"), h("pre", {}, json(e.output))) : "",
      e.error ? h("p", { class: "error" }, e.error) : "",
      e.note ? h("p", { class: "why" }, `Note: ${e.note}`) : "")));
  }

  function renderEvents(inst, ws) {
    const forms = [];
    for (const w of ws) {
      for (const name of w.events) {
        const ev = wf?.events.find((e) => e.name === name);
        if (!ev || ev.timeout) continue;
        forms.push(eventForm(inst, w.thread, ev));
      }
    }
    events.replaceChildren(...(forms.length ? forms : [h("p", {}, "The instance waits for no event now.")]));
  }

  function eventForm(inst, thread, ev) {
    const form = new SchemaForm(ev.payload);
    const id = `send-${ev.name}-${thread}`.replace(/[^\w-]/g, "_");
    const why = lacks(ev.roles);
    const button = h("button", { type: "submit", disabled: Boolean(why) }, `Send ${ev.name}`);
    const el = h("form", { class: "card event", id, novalidate: true, "aria-labelledby": `${id}-title`,
      onsubmit: (e) => {
        e.preventDefault();
        submit(form, button, async (payload) => {
          const qs = thread === "_main_" ? "" : `?thread=${enc(thread)}`;
          const res = await api(`${path}/events/${enc(ev.name)}${qs}`, { method: "POST", body: payload });
          say(`Sent ${ev.name}${res.output !== null ? `; answer: ${JSON.stringify(res.output)}` : ""}.`, "ok");
          eventsKey = null;
          await refresh();
        });
      } },
      h("h3", { id: `${id}-title` }, ev.name, thread !== "_main_" ? h("span", { class: "muted" }, ` (thread ${thread})`) : ""),
      ev.roles.length ? h("p", { class: "muted" }, `Sent by: ${ev.roles.join(" or ")}`) : "",
      form.element,
      button,
      why ? h("p", { class: "why" }, why) : "");
    return el;
  }

  function renderOps(inst) {
    const st = inst.status;
    const allowed = {
      pause: ["running", "waiting"].includes(st),
      unpause: st === "paused",
      cancel: !["finished", "cancelled"].includes(st),
      retry: st === "failed",
    };
    const what = {
      pause: "No event is accepted and no timer fires until it is unpaused.",
      unpause: "The instance goes on where it stopped.",
      cancel: "The instance ends for good; its state is kept for inspection. This cannot be undone.",
      retry: "The failed step runs again now.",
    };
    const why = lacksAdmin();
    const buttons = Object.keys(what).map((action) => h("button", {
      type: "button", class: action === "cancel" ? "danger" : "", disabled: !allowed[action] || Boolean(why),
      onclick: async () => {
        const title = `${action[0].toUpperCase()}${action.slice(1)} ${id}?`;
        if (!(await confirmAction(title, h("p", {}, what[action]), action))) return;
        try {
          await api(`${path}/${action}`, { method: "POST" });
          say(`${action}: done.`, "ok");
          eventsKey = null;
          await refresh();
        } catch (err) {
          say(explain(err), "error");
        }
      } }, action[0].toUpperCase() + action.slice(1)));
    ops.replaceChildren(
      h("p", { class: why ? "why" : "muted" }, why || "These need the admin role."),
      h("div", { class: "buttons" }, buttons),
      gotoForm(inst));
  }

  function gotoForm(inst) {
    const targets = wf?.goto_targets ?? [];
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
    const request = (dryRun) => api(`${path}/goto`, {
      method: "POST", body: { to: to.value, thread: thread.value, dry_run: dryRun } });
    const form = h("form", { class: "card goto", "aria-labelledby": "goto-title",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const p = await request(true);
          const apply = h("button", { type: "button", class: "danger", onclick: async () => {
            const ok = await confirmAction(`Move thread ${p.thread} of ${id}?`, [
              h("p", {}, `From ${p.from_step || "(start)"} to ${p.to_step}.`),
              h("ul", {}, p.description.map((d) => h("li", {}, d)))], "Apply goto");
            if (!ok) return;
            try {
              const done = await request(false);
              say(`goto: thread ${done.thread} now at ${done.to_step}.`, "ok");
              plan.replaceChildren();
              eventsKey = null;
              await refresh();
            } catch (err) {
              say(explain(err), "error");
            }
          } }, "Apply goto");
          plan.replaceChildren(
            h("h4", {}, "What would change (dry run)"),
            h("table", { class: "diff" }, h("tbody", {},
              h("tr", {}, h("th", { scope: "row" }, "Thread"), h("td", {}, p.thread)),
              h("tr", { class: "del" }, h("th", { scope: "row" }, "Now"), h("td", {}, `− ${p.from_step || "(start)"} (${p.from_status})`)),
              h("tr", { class: "add" }, h("th", { scope: "row" }, "After"), h("td", {}, `+ ${p.to_step} (${p.to_status})`)),
              p.teardown.length ? h("tr", { class: "del" }, h("th", { scope: "row" }, "Stops waiting for"), h("td", {}, p.teardown.join(", "))) : "",
              p.setup.length ? h("tr", { class: "add" }, h("th", { scope: "row" }, "Starts waiting for"), h("td", {}, p.setup.join(", "))) : "")),
            h("ul", {}, p.description.map((d) => h("li", {}, d))),
            apply);
          apply.focus();
        } catch (err) {
          plan.replaceChildren(h("p", { class: "error", role: "alert" }, explain(err)));
        }
      } },
      h("h3", { id: "goto-title" }, "Go to a statement (repair)"),
      labelled("Statement", to), labelled("Thread", thread),
      h("button", { type: "submit", disabled: Boolean(lacksAdmin()) }, "Preview goto"),
      plan);
    return form;
  }

  if (mine !== gen) return;
  main.replaceChildren(
    h("div", { class: "title-row" }, heading(id), status, boxLabel),
    summary,
    section("Diagram", zoom, figure, h("p", { class: "legend muted" },
      h("span", { class: "key current" }), " where a thread is now ",
      h("span", { class: "key done" }), " already run ",
      h("span", { class: "key failed" }), " failed")),
    section("Threads", waits),
    section("Send an event", events),
    section("Operator actions", ops),
    section("Data", data),
    h("details", { class: "state" }, h("summary", {}, "State (the interpreter's)"), state),
    section("History", historyCount, history, older));
  renderSummary(info);
  await refresh();
  if (mine === gen) stop = live(refresh, box);
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
  route();
})();
