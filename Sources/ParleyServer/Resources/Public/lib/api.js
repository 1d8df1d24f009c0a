// The REST API, as the browser session uses it: the HttpOnly cookie authenticates, and every
// unsafe request carries the session's CSRF token. Errors are problem+json; they become an
// ApiError with the status, the title and the fields that were wrong.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.fields = Object.fromEntries((problem?.errors || []).map((e) => [e.field, e.message]));
  }
}

let csrfToken = null;
export function setCSRF(token) { csrfToken = token; }

// Called when the server says the session is gone (401 on a signed-in call).
let onSignedOut = () => {};
export function onUnauthorized(handler) { onSignedOut = handler; }

// `withStatus`: the answer is `{ status, data }` (for endpoints whose status says something,
// as 201 against 200).
export async function api(method, path, { body, headers = {}, signal, quiet401 = false, withStatus = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET" && csrfToken) init.headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { title: "The server cannot be reached." });
  }
  const data = await answer(response, quiet401);
  return withStatus ? { status: response.status, data } : data;
}

// A file as the raw body: the server streams it to storage and judges its type from its bytes.
export async function upload(file, { signal } = {}) {
  const headers = { Accept: "application/json", "Content-Type": "application/octet-stream" };
  if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(`/v1/uploads?name=${encodeURIComponent(file.name)}`, { method: "POST", headers, body: file, credentials: "same-origin", signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { title: "The server cannot be reached." });
  }
  return answer(response, false);
}

async function answer(response, quiet401) {
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    if (response.status === 401 && !quiet401) onSignedOut();
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path, options) => api("GET", path, options);
export const post = (path, body, options) => api("POST", path, { ...options, body });
export const put = (path, body, options) => api("PUT", path, { ...options, body });
export const patch = (path, body, options) => api("PATCH", path, { ...options, body });
export const del = (path, options) => api("DELETE", path, options);

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}
