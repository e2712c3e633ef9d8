/** fetch for the bridge's JSON API: typed answers, ApiError for every refusal. */
import { ApiError, type Violation } from "./errors";

export interface RequestOptions {
  method?: "GET" | "POST" | "PUT" | "DELETE";
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined | null>;
  signal?: AbortSignal;
}

export function url(path: string, query?: RequestOptions["query"]): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

interface ErrorBody {
  detail?: unknown;
  code?: unknown;
  request_id?: unknown;
  violations?: unknown;
}

async function toApiError(response: Response): Promise<ApiError> {
  let body: ErrorBody = {};
  try {
    body = (await response.json()) as ErrorBody;
  } catch {
    // Not JSON (a proxy's page): the status speaks for itself.
  }
  const violations = Array.isArray(body.violations)
    ? (body.violations as Violation[]).filter((v) => typeof v.field === "string")
    : [];
  const retry = Number(response.headers.get("Retry-After"));
  return new ApiError(
    response.status,
    typeof body.code === "string" ? body.code : `HTTP_${response.status}`,
    typeof body.detail === "string" ? body.detail : response.statusText,
    typeof body.request_id === "string" ? body.request_id : response.headers.get("X-Request-ID"),
    violations,
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
}

/** One HTTP exchange; no auth logic here (see session.ts). */
export async function send<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(url(path, options.query), {
      method: options.method ?? "GET",
      headers,
      body: body ?? null,
      credentials: "same-origin",
      signal: options.signal ?? null,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, "NETWORK", "network error", null);
  }
  if (!response.ok) throw await toApiError(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** A fresh Idempotency-Key: one per intended operation, reused by its retries. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}
