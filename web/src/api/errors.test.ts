import { describe, expect, it } from "vitest";
import { json } from "../test/render";
import { ApiError, humanMessage } from "./errors";
import { send } from "./http";
import { vi } from "vitest";

describe("API errors as people read them", () => {
  it("keeps the server's message, the request id and the violations", async () => {
    vi.stubGlobal("fetch", () =>
      Promise.resolve(
        json(422, {
          detail: "insufficient balance: 622.11 available, 1000.00 requested",
          code: "INSUFFICIENT_FUNDS",
          request_id: "abc123",
          violations: [{ field: "amount", description: "insufficient balance" }],
        }),
      ),
    );
    const error = await send("/api/v1/balance/withdraw", { method: "POST", body: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    const apiError = error as ApiError;
    expect(apiError.requestId).toBe("abc123");
    expect(humanMessage(apiError)).toBe("Insufficient balance: 622.11 available, 1000.00 requested.");
    expect(apiError.fieldErrors()).toEqual({ amount: "Insufficient balance." });
    vi.unstubAllGlobals();
  });

  it("words infrastructure failures plainly", () => {
    expect(humanMessage(new ApiError(0, "NETWORK", "network error", null))).toMatch(/cannot be reached/);
    expect(humanMessage(new ApiError(503, "STALE_QUOTE", "stale", "r1"))).toMatch(/price is being refreshed/);
    expect(humanMessage(new ApiError(500, "INTERNAL", "internal error", "r2"))).toMatch(/on our side/);
    expect(humanMessage(new ApiError(429, "RATE_LIMITED", "too many requests; slow down", "r3"))).toMatch(/wait a moment/);
  });
});
