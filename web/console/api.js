// The console's only link to the service: the session (tokens held in memory, never in storage, so a
// page reload or a closed tab signs out) and a fetch wrapper that turns problems into errors.

const API = "/api/v1";

let session = null; // {access, refresh, timer}
let onSignedOut = () => {};

/** An answer other than 2xx: the problem's status, stable code, detail and field errors. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "http_" + status;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
  get outOfScope() {
    return this.code === "out_of_scope";
  }
}

export function whenSignedOut(callback) {
  onSignedOut = callback;
}

export function signedIn() {
  return session !== null;
}

async function call(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "omit" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : { detail: await response.text() };
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function keep(pair) {
  clearTimeout(session?.timer);
  // Refreshed at four fifths of its life, so a request never carries a token about to expire.
  const delay = Math.max(5, Number(pair.expires_in) * 0.8) * 1000;
  session = {
    access: pair.access_token,
    refresh: pair.refresh_token,
    timer: setTimeout(() => refresh().catch(() => end()), delay),
  };
}

function end() {
  if (session === null) return;
  clearTimeout(session.timer);
  session = null;
  onSignedOut();
}

async function refresh() {
  const pair = await call("POST", "/auth/refresh", { refresh_token: session.refresh });
  keep(pair);
}

export async function signIn(phone, password) {
  keep(await call("POST", "/auth/login", { phone, password }));
}

export async function signOut() {
  const token = session?.access;
  end();
  if (token) {
    await call("POST", "/auth/logout", undefined, { Authorization: `Bearer ${token}` }).catch(() => {});
  }
}

/** An authenticated call; an expired access token is refreshed once and the call retried. */
export async function api(method, path, body, headers = {}) {
  if (session === null) throw new ApiError(401, { code: "unauthorized", detail: "Signed out" });
  const attempt = () => call(method, path, body, { ...headers, Authorization: `Bearer ${session.access}` });
  try {
    return await attempt();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      if (e.code === "token_expired") {
        try {
          await refresh();
        } catch {
          end();
          throw e;
        }
        return attempt();
      }
      end();
    }
    throw e;
  }
}

/** A query string of the given non-empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}
