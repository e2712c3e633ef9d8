/**
 * The signed-in session: the access token lives in this object's memory only; the
 * refresh token lives in an HttpOnly cookie the bridge sets (X-Auth-Cookie: 1) and
 * script never sees. Nothing goes to localStorage or sessionStorage.
 *
 * - refresh ahead of expiry (at 80 % of the token's life, at least 5 s before it ends);
 * - on a 401 from the API, one refresh and one retry, then the session is over;
 * - concurrent refreshes share one request (the refresh token is single use: two
 *   refreshes with one token would revoke its whole family);
 * - a page load restores the session from the cookie (restore());
 * - the calls that set or clear the cookie (sign-in, refresh, sign-out) go one after
 *   another: the browser keeps whichever Set-Cookie arrives last, so a refresh answered
 *   after a sign-in would put an older family's cookie back, and one answered after a
 *   sign-out would bring a cookie back that the sign-out had cleared.
 */
import { ApiError } from "./errors";
import { send, type RequestOptions } from "./http";

export const COOKIE_MODE = { "X-Auth-Cookie": "1" } as const;

interface TokenAnswer {
  access_token: string;
  token_type: string;
  expires_in: number;
}

export type SessionState =
  | { status: "unknown" }
  | { status: "anonymous"; reason?: "expired" | "signed-out" }
  | { status: "signed-in" };

type Listener = (state: SessionState) => void;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => window.setTimeout(fn, ms),
  clearTimeout: (handle) => {
    window.clearTimeout(handle as number);
  },
};

export class Session {
  private token: string | null = null;
  private state: SessionState = { status: "unknown" };
  private listeners = new Set<Listener>();
  private timer: unknown = null;
  private refreshing: Promise<boolean> | null = null;
  // Bumped by every sign-in, refresh and end: a refresh that fails after a newer
  // sign-in (a slow restore at page load, say) must not end that newer session.
  private epoch = 0;
  // The last cookie-setting call; the next one starts when it has settled.
  private cookieCalls: Promise<unknown> = Promise.resolve();

  constructor(private readonly clock: Clock = realClock) {}

  get current(): SessionState {
    return this.state;
  }

  /** For tests and the auth header only; never persisted. */
  get accessToken(): string | null {
    return this.token;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async signIn(username: string, password: string): Promise<void> {
    const answer = await this.inTurn(() =>
      send<TokenAnswer>("/api/v1/auth/login", {
        method: "POST",
        body: { username, password },
        headers: COOKIE_MODE,
      }),
    );
    this.accept(answer);
  }

  /** At page load: a valid refresh cookie signs the person back in. */
  async restore(): Promise<void> {
    const ok = await this.refresh();
    if (!ok && this.state.status === "unknown") this.setState({ status: "anonymous" });
  }

  /** One refresh at a time; true when a new access token is in hand. */
  refresh(): Promise<boolean> {
    const epoch = this.epoch;
    const wasSignedIn = this.state.status === "signed-in";
    this.refreshing ??= this.inTurn(() => this.doRefresh(epoch, wasSignedIn)).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async signOut(): Promise<void> {
    const token = this.token;
    this.end("signed-out");
    if (token === null) return;
    try {
      // After a refresh in flight: its answer's cookie must not outlive this clear.
      await this.inTurn(() =>
        send("/api/v1/auth/logout", {
          method: "POST",
          body: {},
          headers: { Authorization: `Bearer ${token}` },
        }),
      );
    } catch {
      // The token is gone from memory and the bridge clears the cookie on any answer;
      // an unreachable server cannot keep this browser signed in.
    }
  }

  /** An authenticated call: one refresh and one retry on 401. */
  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    if (this.token === null && !(await this.refresh())) {
      throw new ApiError(401, "SIGNED_OUT", "You are signed out.", null);
    }
    try {
      return await send<T>(path, this.withToken(options));
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      if (!(await this.refresh())) throw error;
      try {
        return await send<T>(path, this.withToken(options));
      } catch (retryError) {
        if (retryError instanceof ApiError && retryError.status === 401) this.end("expired");
        throw retryError;
      }
    }
  }

  /** Runs `call` once every earlier cookie-setting call has settled. */
  private inTurn<T>(call: () => Promise<T>): Promise<T> {
    const turn = this.cookieCalls.then(call, call);
    this.cookieCalls = turn.catch(() => undefined);
    return turn;
  }

  private withToken(options: RequestOptions): RequestOptions {
    return { ...options, headers: { ...options.headers, Authorization: `Bearer ${this.token ?? ""}` } };
  }

  /** `epoch`: the session that asked; a newer sign-in or a sign-out makes its refresh moot. */
  private async doRefresh(epoch: number, wasSignedIn: boolean): Promise<boolean> {
    if (epoch !== this.epoch) return this.token !== null;
    try {
      const answer = await send<TokenAnswer>("/api/v1/auth/refresh", {
        method: "POST",
        body: {},
        headers: COOKIE_MODE,
      });
      // Signed out (or in again) while this was in flight: the answer belongs to a
      // session that has ended (sign-out revokes its whole family).
      if (epoch !== this.epoch) return this.token !== null;
      this.accept(answer);
      return true;
    } catch (error) {
      if (epoch !== this.epoch) return this.token !== null;
      if (error instanceof ApiError && error.status === 401) {
        this.end(wasSignedIn ? "expired" : undefined);
      } else if (!wasSignedIn) {
        // The server is unreachable at load: show the public pages, try again later.
        this.setState({ status: "anonymous" });
      }
      return false;
    }
  }

  private accept(answer: TokenAnswer): void {
    this.epoch += 1;
    this.token = answer.access_token;
    const lifetimeMs = Math.max(1, answer.expires_in) * 1000;
    const lead = Math.min(lifetimeMs * 0.2, 60_000);
    this.schedule(Math.max(lifetimeMs - Math.max(lead, 5_000), 1_000));
    this.setState({ status: "signed-in" });
  }

  private schedule(delayMs: number): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.refresh();
    }, delayMs);
  }

  private end(reason: "expired" | "signed-out" | undefined): void {
    this.epoch += 1;
    this.token = null;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.setState(reason ? { status: "anonymous", reason } : { status: "anonymous" });
  }

  private setState(state: SessionState): void {
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }
}

export const session = new Session();
