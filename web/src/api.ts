// The one place that talks to Lore's API: the browser session (access token in memory only, the
// refresh token in an HttpOnly cookie the page never sees), bearer headers, one refresh-and-retry
// on a 401, and the API's JSON error shape turned into ApiError.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

type SessionTokens = { access_token: string; token_type: string; expires_in: number };

let accessToken: string | null = null;
let refreshTimer: number | undefined;
let refreshing: Promise<boolean> | null = null;
const signedOutListeners = new Set<() => void>();

export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export function token(): string | null {
  return accessToken;
}

function cookie(name: string): string | null {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

function adopt(tokens: SessionTokens): void {
  accessToken = tokens.access_token;
  window.clearTimeout(refreshTimer);
  // Refresh a minute before expiry (or at 80% of a short lifetime) so requests never meet a stale token.
  const lead = Math.min(60, tokens.expires_in * 0.2);
  const delay = Math.max(5, tokens.expires_in - lead) * 1000;
  refreshTimer = window.setTimeout(() => void refreshSession(), delay);
}

function forget(): void {
  accessToken = null;
  window.clearTimeout(refreshTimer);
}

async function errorFrom(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || `Request failed (${response.status})`;
  try {
    const body = await response.json();
    const err = body?.error ?? body;
    if (typeof err?.message === "string") message = err.message;
    else if (typeof body?.detail === "string") message = body.detail;
    else if (Array.isArray(body?.detail) && body.detail[0]?.msg) message = body.detail.map((d: { msg: string }) => d.msg).join("; ");
    if (typeof err?.code === "string") code = err.code;
  } catch {
    // A body that is not JSON keeps the status text.
  }
  const retry = Number(response.headers.get("Retry-After"));
  if (response.status === 429 && Number.isFinite(retry) && retry > 0) {
    message = `${message} (try again in ${Math.ceil(retry)} s)`;
  }
  return new ApiError(response.status, code, message, Number.isFinite(retry) ? retry : null);
}

/** Trade the refresh cookie for a new access token; false when there is no live session. */
export function refreshSession(): Promise<boolean> {
  if (refreshing) return refreshing;
  const csrf = cookie("lore_csrf");
  if (!csrf) {
    // No session cookie: asking would only earn a 401 (and a console error); the answer is known.
    forget();
    return Promise.resolve(false);
  }
  const once = async () => {
    // Read the cookie again inside the lock: another tab may have rotated it meanwhile.
    const current = cookie("lore_csrf") ?? csrf;
    return await fetch("/v1/auth/session/refresh", {
      method: "POST",
      headers: { "X-CSRF-Token": current },
      credentials: "same-origin",
    });
  };
  refreshing = (async () => {
    try {
      // Refresh tokens work once: two tabs refreshing at the same moment would spend one twice
      // (and the server then ends the session), so tabs take turns through a Web Lock.
      const response = navigator.locks
        ? await navigator.locks.request("lore-session-refresh", once)
        : await once();
      if (!response.ok) {
        forget();
        return false;
      }
      adopt((await response.json()) as SessionTokens);
      return true;
    } catch {
      forget();
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function signIn(username: string, password: string): Promise<void> {
  const response = await fetch("/v1/auth/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ username, password }),
  });
  if (!response.ok) throw await errorFrom(response);
  adopt((await response.json()) as SessionTokens);
}

export async function signOut(): Promise<void> {
  const current = accessToken;
  forget();
  if (current) {
    try {
      await fetch("/v1/auth/session", {
        method: "DELETE",
        headers: { Authorization: `Bearer ${current}` },
        credentials: "same-origin",
      });
    } catch {
      // Signed out locally either way.
    }
  }
  signedOutListeners.forEach((l) => l());
}

function withAuth(init: RequestInit): RequestInit {
  const headers = new Headers(init.headers);
  if (accessToken) headers.set("Authorization", `Bearer ${accessToken}`);
  return { ...init, headers, credentials: "same-origin" };
}

/** fetch with the bearer token; on a 401 refresh once and retry; throws ApiError when not ok. */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  let response = await fetch(path, withAuth(init));
  if (response.status === 401) {
    if (await refreshSession()) {
      response = await fetch(path, withAuth(init));
    }
    if (response.status === 401) {
      const error = await errorFrom(response);
      forget();
      signedOutListeners.forEach((l) => l());
      throw error;
    }
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

type JsonInit = Omit<RequestInit, "body"> & { json?: unknown; query?: Record<string, string | number | undefined | null> };

export function withQuery(path: string, query?: JsonInit["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  }
  const s = params.toString();
  return s ? `${path}?${s}` : path;
}

export async function api<T>(path: string, init: JsonInit = {}): Promise<T> {
  const { json, query, ...rest } = init;
  const headers = new Headers(rest.headers);
  const request: RequestInit = { ...rest, headers };
  if (json !== undefined) {
    headers.set("Content-Type", "application/json");
    request.body = JSON.stringify(json);
  }
  const response = await apiFetch(withQuery(path, query), request);
  if (response.status === 204) return undefined as T;
  const type = response.headers.get("Content-Type") ?? "";
  if (!type.includes("json")) return (await response.text()) as T;
  return (await response.json()) as T;
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

export type Providers = { password: boolean; oidc: { login_url: string } | null };

export async function providers(): Promise<Providers> {
  try {
    const response = await fetch("/v1/auth/providers", { credentials: "same-origin" });
    if (!response.ok) return { password: true, oidc: null };
    return (await response.json()) as Providers;
  } catch {
    return { password: true, oidc: null };
  }
}

/** Upload with progress (fetch has none): multipart POST through XMLHttpRequest, with the bearer. */
export function uploadWithProgress<T>(
  path: string,
  form: FormData,
  onProgress: (loaded: number, total: number) => void,
  signal?: AbortSignal,
): Promise<T> {
  const send = () =>
    new Promise<{ status: number; body: string; retryAfter: string | null }>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      if (accessToken) xhr.setRequestHeader("Authorization", `Bearer ${accessToken}`);
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
      xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText, retryAfter: xhr.getResponseHeader("Retry-After") });
      xhr.onerror = () => reject(new ApiError(0, "network", "The upload failed: the server could not be reached."));
      xhr.onabort = () => reject(new ApiError(0, "aborted", "The upload was cancelled."));
      signal?.addEventListener("abort", () => xhr.abort());
      xhr.send(form);
    });
  return (async () => {
    let result = await send();
    if (result.status === 401 && (await refreshSession())) result = await send();
    if (result.status >= 200 && result.status < 300) return JSON.parse(result.body) as T;
    const response = new Response(result.body, {
      status: result.status,
      headers: result.retryAfter ? { "Retry-After": result.retryAfter } : {},
    });
    throw await errorFrom(response);
  })();
}

/** Fetch an authenticated resource as a Blob (reports, originals). */
export async function fetchBlob(path: string): Promise<Blob> {
  const response = await apiFetch(path);
  return await response.blob();
}

export function download(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
