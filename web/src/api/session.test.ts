import { afterEach, describe, expect, it, vi } from "vitest";
import { header, json, nth, scriptedFetch, urlOf } from "../test/render";
import { ApiError } from "./errors";
import { Session, type Clock } from "./session";

function fakeClock() {
  const timers: { fn: () => void; ms: number }[] = [];
  const clock: Clock = {
    now: () => 0,
    setTimeout: (fn, ms) => {
      timers.push({ fn, ms });
      return timers.length;
    },
    clearTimeout: () => undefined,
  };
  return { clock, timers };
}

const tokens = (access: string, expires = 3600) => json(200, { access_token: access, token_type: "bearer", expires_in: expires });

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("Session", () => {
  it("signs in in cookie mode and keeps the access token in memory only", async () => {
    const { fn, calls } = scriptedFetch(tokens("A1"));
    vi.stubGlobal("fetch", fn);
    const setItem = vi.spyOn(Storage.prototype, "setItem");
    const session = new Session(fakeClock().clock);
    await session.signIn("ada_lovelace", "pw");
    expect(calls[0]?.url).toBe("/api/v1/auth/login");
    expect(header(nth(calls, 0).init, "X-Auth-Cookie")).toBe("1");
    expect(session.accessToken).toBe("A1");
    expect(session.current.status).toBe("signed-in");
    expect(setItem).not.toHaveBeenCalled();
  });

  it("refreshes before the token expires", async () => {
    const { clock, timers } = fakeClock();
    const { fn, calls } = scriptedFetch(tokens("A1", 3600), tokens("A2", 3600));
    vi.stubGlobal("fetch", fn);
    const session = new Session(clock);
    await session.signIn("u", "p");
    const timer = timers.at(-1);
    if (!timer) throw new Error("no refresh scheduled");
    expect(timer.ms).toBeLessThan(3600 * 1000);
    expect(timer.ms).toBeGreaterThanOrEqual(3600 * 1000 - 60_000);
    timer.fn();
    await vi.waitFor(() => {
      expect(session.accessToken).toBe("A2");
    });
    expect(calls[1]?.url).toBe("/api/v1/auth/refresh");
    expect(header(nth(calls, 1).init, "X-Auth-Cookie")).toBe("1");
    expect(calls[1]?.init.body).toBe("{}"); // the refresh token travels in the cookie
  });

  it("on a 401 refreshes once and retries once", async () => {
    const { fn, calls } = scriptedFetch(tokens("A1"), json(401, { code: "TOKEN_EXPIRED", detail: "expired" }), tokens("A2"), json(200, { ok: true }));
    vi.stubGlobal("fetch", fn);
    const session = new Session(fakeClock().clock);
    await session.signIn("u", "p");
    await expect(session.request("/api/v1/portfolio")).resolves.toEqual({ ok: true });
    expect(calls.map((c) => c.url)).toEqual(["/api/v1/auth/login", "/api/v1/portfolio", "/api/v1/auth/refresh", "/api/v1/portfolio"]);
    expect(header(nth(calls, 3).init, "Authorization")).toBe("Bearer A2");
  });

  it("ends the session when the retry is refused too, without looping", async () => {
    const { fn, calls } = scriptedFetch(tokens("A1"), json(401, {}), tokens("A2"), json(401, { code: "TOKEN_REVOKED", detail: "revoked" }));
    vi.stubGlobal("fetch", fn);
    const session = new Session(fakeClock().clock);
    await session.signIn("u", "p");
    await expect(session.request("/api/v1/portfolio")).rejects.toBeInstanceOf(ApiError);
    expect(calls).toHaveLength(4);
    expect(session.current).toEqual({ status: "anonymous", reason: "expired" });
    expect(session.accessToken).toBeNull();
  });

  it("ends the session when the refresh is refused", async () => {
    const { fn } = scriptedFetch(tokens("A1"), json(401, {}), json(401, { code: "REFRESH_TOKEN_REUSED" }));
    vi.stubGlobal("fetch", fn);
    const session = new Session(fakeClock().clock);
    await session.signIn("u", "p");
    await expect(session.request("/api/v1/portfolio")).rejects.toMatchObject({ status: 401 });
    expect(session.current).toEqual({ status: "anonymous", reason: "expired" });
  });

  it("shares one refresh between concurrent 401s (the refresh token is single use)", async () => {
    let refreshes = 0;
    const fn = (input: RequestInfo | URL, init: RequestInit = {}) => {
      const url = urlOf(input);
      if (url.endsWith("/login")) return Promise.resolve(tokens("A1"));
      if (url.endsWith("/refresh")) {
        refreshes += 1;
        return Promise.resolve(tokens("A2"));
      }
      const auth = new Headers(init.headers).get("Authorization");
      return Promise.resolve(auth === "Bearer A2" ? json(200, { url }) : json(401, {}));
    };
    vi.stubGlobal("fetch", fn);
    const session = new Session(fakeClock().clock);
    await session.signIn("u", "p");
    await Promise.all([session.request("/a"), session.request("/b"), session.request("/c")]);
    expect(refreshes).toBe(1);
  });

  it("restores a session from the cookie at page load, or stays anonymous", async () => {
    vi.stubGlobal("fetch", scriptedFetch(tokens("A9")).fn);
    const back = new Session(fakeClock().clock);
    await back.restore();
    expect(back.current.status).toBe("signed-in");

    vi.stubGlobal("fetch", scriptedFetch(json(401, { code: "REFRESH_COOKIE_MISSING" })).fn);
    const fresh = new Session(fakeClock().clock);
    await fresh.restore();
    expect(fresh.current).toEqual({ status: "anonymous" });
  });

  it("signs out: revokes on the server, forgets the token even when the server is unreachable", async () => {
    const { fn, calls } = scriptedFetch(tokens("A1"), new TypeError("offline"));
    vi.stubGlobal("fetch", fn);
    const session = new Session(fakeClock().clock);
    await session.signIn("u", "p");
    await session.signOut();
    expect(calls[1]?.url).toBe("/api/v1/auth/logout");
    expect(header(nth(calls, 1).init, "Authorization")).toBe("Bearer A1");
    expect(session.accessToken).toBeNull();
    expect(session.current).toEqual({ status: "anonymous", reason: "signed-out" });
  });
});

describe("Session races", () => {
  // A refresh whose answer the test releases; every other call answers at once.
  function slowRefreshFetch(other: (url: string) => Response) {
    const order: string[] = [];
    let release: (r: Response) => void = () => undefined;
    const slowRefresh = new Promise<Response>((resolve) => {
      release = resolve;
    });
    const fn = (input: RequestInfo | URL) => {
      const url = urlOf(input);
      order.push(url);
      return url.endsWith("/refresh") ? slowRefresh : Promise.resolve(other(url));
    };
    const settle = (answer: Response) => {
      release(answer);
    };
    return { fn, order, release: settle };
  }

  it("a sign-in during a restore goes after it, so its cookie is the last one set", async () => {
    const { fn, order, release } = slowRefreshFetch(() => tokens("A1"));
    vi.stubGlobal("fetch", fn);
    const session = new Session(fakeClock().clock);
    const restoring = session.restore();
    const signingIn = session.signIn("u", "p");
    await Promise.resolve();
    expect(order).toEqual(["/api/v1/auth/refresh"]); // the login waits
    release(json(401, { code: "REFRESH_COOKIE_MISSING" }));
    await Promise.all([restoring, signingIn]);
    expect(order).toEqual(["/api/v1/auth/refresh", "/api/v1/auth/login"]);
    expect(session.current.status).toBe("signed-in");
    expect(session.accessToken).toBe("A1");
  });

  it("a sign-in during a restore that succeeds still ends with the sign-in's session", async () => {
    const { fn, order, release } = slowRefreshFetch(() => tokens("A1"));
    vi.stubGlobal("fetch", fn);
    const session = new Session(fakeClock().clock);
    const restoring = session.restore();
    const signingIn = session.signIn("u", "p");
    release(tokens("OLD"));
    await Promise.all([restoring, signingIn]);
    expect(order).toEqual(["/api/v1/auth/refresh", "/api/v1/auth/login"]);
    expect(session.accessToken).toBe("A1");
  });

  it("a refresh answered after sign-out neither signs back in nor outlives the sign-out", async () => {
    const { fn, order, release } = slowRefreshFetch(() => json(200, { message: "Logged out successfully" }));
    const session = new Session(fakeClock().clock);
    vi.stubGlobal("fetch", scriptedFetch(tokens("A1")).fn);
    await session.signIn("u", "p");
    vi.stubGlobal("fetch", fn);
    const refreshing = session.refresh();
    await vi.waitFor(() => {
      expect(order).toEqual(["/api/v1/auth/refresh"]); // in flight
    });
    const signingOut = session.signOut();
    expect(session.current).toEqual({ status: "anonymous", reason: "signed-out" });
    release(tokens("A2"));
    await Promise.all([refreshing, signingOut]);
    // The logout (which clears the cookie) went after the refresh (which set one).
    expect(order).toEqual(["/api/v1/auth/refresh", "/api/v1/auth/logout"]);
    expect(session.accessToken).toBeNull();
    expect(session.current).toEqual({ status: "anonymous", reason: "signed-out" });
  });
});
