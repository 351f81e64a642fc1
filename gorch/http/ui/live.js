// Live updates: the change feed (GET /changes/stream, server-sent events), followed with
// fetch() so that it sends the token as every other call does (an EventSource cannot send an
// Authorization header, and a token in the URL would end up in access logs). It resumes after
// the last event it got (Last-Event-ID), as an EventSource would.

import { ROOT, token } from "./api.js";

const FIRST_BYTES_MS = 5000; // connected but nothing came (a proxy that buffers): failed
const SILENT_MS = 45000; // the server says something every 15 s: past this, reconnect
const RETRY_FAILED_MS = 30000; // while it cannot be followed (views poll), try again this often

export class Feed {
  constructor() {
    this.state = "closed"; // "connecting", "open", or "failed" (then the views poll)
    this.listeners = new Set();
    this.lastId = null; // the id (seq) of the last event received
    this.retryMs = 2000; // the server's retry: how long to wait before reconnecting
    this.controller = null; // the connection's; a new one means the old one is done with
    this.timer = null;
  }

  // listener: { open(), change(c), state(s) }, each optional; returns how to stop listening.
  listen(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(kind, arg) {
    for (const l of [...this.listeners]) l[kind]?.(arg);
  }

  setState(state) {
    this.state = state;
    document.documentElement.dataset.feed = state;
    this.emit("state", state);
  }

  // Follow from now on (again), e.g. with another token.
  start() {
    this.stop();
    this.lastId = null;
    this.connect();
  }

  stop() {
    clearTimeout(this.timer);
    this.controller?.abort();
    this.controller = null;
    this.setState("closed");
  }

  async connect() {
    const controller = new AbortController();
    this.controller = controller;
    this.setState("connecting");
    const headers = { Accept: "text/event-stream" };
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
    const seen = { opened: false };
    try {
      const res = await fetch(`${ROOT}/changes/stream`, { headers, signal: controller.signal, cache: "no-store" });
      if (res.ok && res.body) await this.read(res.body.getReader(), controller, seen);
    } catch {
      // aborted (stopped, or silent too long), or the connection broke: see below
    }
    if (controller !== this.controller) return; // stopped or started again meanwhile
    if (seen.opened) { // it was open and ended: go on after what it sent
      this.setState("connecting");
      this.timer = setTimeout(() => this.connect(), this.retryMs);
    } else { // it could not be followed: the views poll meanwhile
      this.setState("failed");
      this.timer = setTimeout(() => this.connect(), RETRY_FAILED_MS);
    }
  }

  async read(reader, controller, seen) {
    const decoder = new TextDecoder();
    let buffer = "";
    let watchdog = setTimeout(() => controller.abort(), FIRST_BYTES_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), SILENT_MS);
        if (!seen.opened) {
          seen.opened = true;
          this.setState("open");
          this.emit("open");
        }
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          this.dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  // One event's lines ("field: value"; a line starting with ":" is a comment, a keep-alive).
  dispatch(block) {
    let event = "message";
    let id = null;
    const data = [];
    for (const raw of block.split("\n")) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (!line || line.startsWith(":")) continue;
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      let value = at < 0 ? "" : line.slice(at + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id") id = value;
      else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    if (id !== null) this.lastId = id;
    if (event === "change" && data.length) this.emit("change", JSON.parse(data.join("\n")));
    // "problem": the server ends the stream after it (a database outage); it reconnects
  }
}
