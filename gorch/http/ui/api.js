// The gorch JSON API as seen from the console: bearer token, problem details, base path.

// The API lives where the console does, without its trailing /ui/... (works behind a prefix).
export const ROOT = location.pathname.replace(/\/ui(\/.*)?$/, "");

const KEY = "gorch-token";

export function token() {
  return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY) ?? "";
}

export function setToken(value, remember) {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
  if (value) (remember ? localStorage : sessionStorage).setItem(KEY, value);
}

// An error answer: RFC 9457 problem details (title, detail, status, errors...).
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(path, { method = "GET", body, accept = "application/json" } = {}) {
  const headers = { Accept: `${accept}, application/problem+json` };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(ROOT + path, init);
  } catch (err) {
    throw new ApiError(0, { title: "Server unreachable", detail: `${err.message}; is the server up?` });
  }
  if (!res.ok) {
    const text = await res.text();
    let problem;
    try {
      problem = JSON.parse(text);
    } catch {
      problem = { title: res.statusText, detail: text || res.statusText };
    }
    throw new ApiError(res.status, problem);
  }
  return accept === "application/json" ? res.json() : res.text();
}

export const enc = encodeURIComponent;
