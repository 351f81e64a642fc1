// Forms generated from the JSON Schema of an event's payload or a workflow's data.
//
// The server is the one judge of a payload: the form sends what was typed (empty fields are
// left out, so defaults apply) and shows the server's errors next to the fields they name.
// Only what cannot be sent at all (JSON that does not parse) is caught here.

import { h } from "./dom.js";

let forms = 0;

export class SchemaForm {
  constructor(schema, { legend = "" } = {}) {
    this.defs = schema?.$defs ?? {};
    this.fields = new Map(); // path -> { input, error, label }
    this.prefix = `f${++forms}`;
    this.general = h("ul", { class: "errors", hidden: true, role: "alert", tabindex: "-1" });
    this.root = schema ? this.field(schema, [], true, legend) : null;
    this.element = h("div", { class: "schema-form" }, this.general, this.root?.el ?? null);
  }

  resolve(schema) {
    while (schema && schema.$ref) schema = this.defs[schema.$ref.split("/").pop()] ?? {};
    return schema ?? {};
  }

  field(schema, path, required, title) {
    schema = this.resolve(schema);
    if (Array.isArray(schema.anyOf)) {
      const others = schema.anyOf.filter((s) => s.type !== "null");
      if (others.length === 1 && others.length < schema.anyOf.length)
        return this.field({ ...this.resolve(others[0]), ...pick(schema) }, path, false, title);
    }
    const label = title || schema.title || path.at(-1) || "value";
    if (schema.type === "object" && schema.properties) return this.object(schema, path, required, label);
    const id = `${this.prefix}-${path.join("-") || "value"}`.replace(/[^\w-]/g, "_");
    const errId = `${id}-error`;
    const hintId = `${id}-hint`;
    const common = { id, name: path.join(".") || "value", "aria-describedby": `${hintId} ${errId}` };
    if (required) common["aria-required"] = "true";
    let input;
    let read;
    let hint = schema.description ?? "";
    if (Array.isArray(schema.enum)) {
      input = h("select", common, required ? null : h("option", { value: "" }, "(default)"),
        schema.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
      read = () => (input.value === "" ? undefined : JSON.parse(input.value));
    } else if (schema.type === "string") {
      input = h("input", { ...common, type: "text", placeholder: placeholder(schema) });
      read = () => (input.value === "" ? undefined : input.value);
    } else if (schema.type === "integer" || schema.type === "number") {
      const mode = schema.type === "integer" ? "numeric" : "decimal";
      input = h("input", { ...common, type: "text", inputmode: mode, placeholder: placeholder(schema) });
      read = () => {
        const raw = input.value.trim();
        if (raw === "") return undefined;
        const n = Number(raw);
        return Number.isNaN(n) ? raw : n; // the server names what is wrong with it
      };
      hint ||= schema.type === "integer" ? "a whole number" : "a number";
    } else if (schema.type === "boolean") {
      input = h("input", { ...common, type: "checkbox", checked: schema.default === true });
      read = () => input.checked;
    } else {
      input = h("textarea", { ...common, rows: 3, spellcheck: "false",
        placeholder: schema.default !== undefined ? JSON.stringify(schema.default) : "" });
      hint ||= `JSON${schema.type ? ` (${schema.type})` : ""}`;
      read = () => {
        if (input.value.trim() === "") return undefined;
        try {
          return JSON.parse(input.value);
        } catch (err) {
          throw new FieldError(path, `not valid JSON: ${err.message}`);
        }
      };
    }
    const error = h("p", { class: "field-error", id: errId, hidden: true });
    this.fields.set(path.join("."), { input, error, label });
    const mark = required ? h("span", { class: "req", "aria-hidden": "true", title: "required" }, "*") : null;
    const el = h("div", { class: `field ${schema.type === "boolean" ? "boolean" : ""}` },
      h("span", { class: "label-row" }, h("label", { for: id }, label), mark),
      input,
      h("small", { class: "hint", id: hintId }, hint),
      error);
    return { el, read: () => read() };
  }

  object(schema, path, required, label) {
    const need = new Set(schema.required ?? []);
    const kids = Object.entries(schema.properties).map(([key, sub]) => [
      key, this.field(sub, [...path, key], need.has(key), this.resolve(sub).title || key)]);
    const body = kids.map(([, k]) => k.el);
    const el = path.length
      ? h("fieldset", {}, h("legend", {}, label, required ? " *" : ""), body)
      : h("div", { class: "fields" }, body);
    const read = () => {
      const out = {};
      for (const [key, kid] of kids) {
        const v = kid.read();
        if (v !== undefined) out[key] = v;
      }
      return Object.keys(out).length || required ? out : undefined;
    };
    return { el, read };
  }

  // The value to send, or throws FieldError (shown inline by the caller).
  value() {
    this.clear();
    return this.root ? this.root.read() : undefined;
  }

  clear() {
    this.general.hidden = true;
    this.general.replaceChildren();
    for (const { input, error } of this.fields.values()) {
      input.removeAttribute("aria-invalid");
      error.hidden = true;
      error.textContent = "";
    }
  }

  // Show the server's error lines ("what @ payload.a.b[0]") next to the fields they name. The
  // message is shown as the server wrote it; only the path becomes words: what is left of it
  // below the field shown ("item 1 › name" in a list typed as JSON), or labels at the top.
  show(lines, detail = "") {
    this.clear();
    let first = null;
    const loose = [];
    for (const line of lines.length ? lines : [detail]) {
      const at = line.lastIndexOf(" @ ");
      const path = at < 0 ? "" : normalize(line.slice(at + 3));
      const msg = at < 0 ? line : line.slice(0, at);
      const found = this.closest(path);
      if (found) {
        const { field, rest } = found;
        const text = rest.length ? `${words(rest)}: ${msg}` : msg;
        field.input.setAttribute("aria-invalid", "true");
        field.error.hidden = false;
        field.error.textContent = field.error.textContent ? `${field.error.textContent}; ${text}` : text;
        first ??= field.input;
      } else {
        loose.push(path ? `${this.label(path)}: ${msg}` : msg);
      }
    }
    if (loose.length) {
      this.general.replaceChildren(...loose.map((m) => h("li", {}, m)));
      this.general.hidden = false;
    }
    (first ?? this.general).focus?.();
  }

  // The field that shows an error at ``path`` (the deepest one on it), and the rest of the
  // path below it.
  closest(path) {
    const parts = path ? path.split(".") : [];
    for (let n = parts.length; n >= 0; n--) {
      const field = this.fields.get(parts.slice(0, n).join("."));
      if (field && (n > 0 || this.fields.size === 1)) return { field, rest: parts.slice(n) };
    }
    return null;
  }

  // A path no field shows, in words (the labels of the fields it names, where there are).
  label(path) {
    const parts = path.split(".");
    return parts.map((p, i) => this.fields.get(parts.slice(0, i + 1).join("."))?.label ?? words([p]))
      .join(" › ");
  }
}

// Path parts in words: list positions as "item 1" (counted from 1), keys as they are.
function words(parts) {
  return parts.map((p) => (/^\d+$/.test(p) ? `item ${Number(p) + 1}` : p)).join(" › ");
}

export class FieldError extends Error {
  constructor(path, message) {
    super(message);
    this.line = `${message} @ payload.${path.join(".")}`;
  }
}

function pick(schema) {
  const out = {};
  for (const k of ["title", "description", "default"]) if (k in schema) out[k] = schema[k];
  return out;
}

function placeholder(schema) {
  return schema.default !== undefined && schema.default !== "" ? `default: ${schema.default}` : "";
}

// "payload.pizza.name", "$.data.cart[0].name" -> "pizza.name", "cart.0.name"
function normalize(path) {
  return path
    .replace(/^\$\.data\.?|^payload\.?|^\$\.?/, "")
    .replace(/\[(\d+)\]/g, ".$1")
    .replace(/^\./, "");
}
