/** The API's error envelope as one value, and the words a person reads for it. */

export interface Violation {
  field: string;
  description: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly requestId: string | null,
    readonly violations: Violation[] = [],
    readonly retryAfter: number | null = null,
  ) {
    super(detail);
    this.name = "ApiError";
  }

  /** The server's violations by field, for inline messages. */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const v of this.violations) out[v.field] ??= sentence(v.description);
    return out;
  }
}

function sentence(text: string): string {
  const trimmed = text.trim();
  if (trimmed === "") return trimmed;
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

const BY_STATUS: Record<number, string> = {
  0: "The platform cannot be reached. Check your connection and try again.",
  401: "Your session has ended. Please sign in again.",
  404: "We could not find that.",
  429: "Too many requests right now. Please wait a moment and try again.",
  500: "Something went wrong on our side. Please try again.",
  503: "The service is busy or briefly unavailable. Please try again in a moment.",
  504: "The service took too long to answer. Please try again.",
};

const BY_CODE: Record<string, string> = {
  AUTH_004: "Too many failed sign-ins. Please wait a few minutes before trying again.",
  STALE_QUOTE: "The price is being refreshed. Please try again in a second.",
  RATE_LIMITED: BY_STATUS[429] ?? "",
};

/** What to tell a person: the server's own message for rule refusals (422, 409, 401 on
 * login), a plain sentence for infrastructure failures. */
export function humanMessage(error: unknown): string {
  if (!(error instanceof ApiError)) {
    return error instanceof Error ? sentence(error.message) : "Something went wrong.";
  }
  const known = BY_CODE[error.code];
  if (known) return known;
  if (error.status === 0 || error.status >= 500) return BY_STATUS[error.status] ?? BY_STATUS[500] ?? "";
  if (error.detail) return sentence(error.detail);
  return BY_STATUS[error.status] ?? "The request was refused.";
}
