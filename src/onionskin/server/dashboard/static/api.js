// Credentials (kept in sessionStorage: gone when the tab closes) and calls to /api/v1.

const STORAGE_KEY = "onionskin.dashboard.credentials";

// The page is served at <prefix>/dashboard; the API lives at <prefix>/api/v1.
const ROOT = location.pathname.replace(/\/dashboard\/?$/, "");
export const API = `${ROOT}/api/v1`;

// How each kind of credential travels: a header on HTTP requests; on the WebSocket, which
// browsers cannot give headers, a subprotocol for secrets (`bearer.<base64url>`, never in
// the URL, which logs and history keep) and a query parameter for the organization.
const METHODS = {
  api_key: {
    header: (value) => ({ "X-API-Key": value }),
    protocol: "api-key",
    label: "API key",
  },
  token: {
    header: (value) => ({ Authorization: `Bearer ${value}` }),
    protocol: "bearer",
    label: "token",
  },
  org_id: { header: (value) => ({ "X-Org-ID": value }), query: "org_id", label: "organization" },
};
// The subprotocol the server selects when credentials come as subprotocols.
const PROTOCOL = "onionskin";

/** Credentials as the login strip gives them; throws on an unknown method or empty value. */
export function credentials(method, value) {
  const text = String(value ?? "").trim();
  if (!Object.hasOwn(METHODS, method)) throw new Error(`unknown sign-in method ${method}`);
  if (!text) throw new Error("enter an API key, a token or an organization id");
  return { method, value: text };
}

/** The stored credentials, or null (nothing stored, or something unreadable). */
export function loadCredentials() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY));
    return stored ? credentials(stored.method, stored.value) : null;
  } catch {
    return null;
  }
}

export function saveCredentials(given) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(given));
}

export function clearCredentials() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** Who the credentials say the caller is, for the header line (display only, unchecked). */
export function describe(given) {
  if (given.method === "org_id") return `organization ${given.value}`;
  if (given.method === "token") {
    try {
      const payload = given.value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const claims = JSON.parse(atob(payload));
      if (claims.org_id) return `organization ${claims.org_id}`;
    } catch {
      // Not a readable JWT: the server decides; the label just stays generic.
    }
  }
  return `signed in with ${METHODS[given.method].label}`;
}

/** An API error: its HTTP status and the problem+json body's detail. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem && (problem.detail || problem.title);
    super(detail ? `${detail} (HTTP ${status})` : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Call the API: `api(creds, "/runs?limit=50")`, `api(creds, path, {method: "POST", body})`. */
export async function api(given, path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json", ...METHODS[given.method].header(given.value) };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (error) {
    throw new ApiError(0, { detail: `the server cannot be reached (${error.message})` });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** The analytics WebSocket's URL for `given`, on the page's own host (no secret in it). */
export function liveUrl(given) {
  const url = new URL(`${API}/ws/analytics`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const query = METHODS[given.method].query;
  if (query) url.searchParams.set(query, given.value);
  return url.href;
}

/** The subprotocols that carry `given`'s secret to the analytics WebSocket, if it has one. */
export function liveProtocols(given) {
  const prefix = METHODS[given.method].protocol;
  return prefix ? [PROTOCOL, `${prefix}.${base64url(given.value)}`] : [];
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The current month in UTC (`YYYY-MM`), the period costs and budgets are kept by. */
export function thisPeriod() {
  return new Date().toISOString().slice(0, 7);
}
