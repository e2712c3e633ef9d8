import { afterEach, describe, expect, it, vi } from "vitest";
import { session } from "../api/session";
import { header, json, urlOf, type Call } from "../test/render";
import { backoffMs, followOrders, ORDER_STREAM, type OrderEvent } from "./orderStream";

/** An SSE response whose chunks the test pushes, as the bridge writes them. */
function eventStream() {
  let source: ReadableStreamDefaultController<Uint8Array> | null = null;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      source = controller;
    },
  });
  const response = new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  const encoder = new TextEncoder();
  return {
    response,
    push: (text: string) => {
      source?.enqueue(encoder.encode(text));
    },
    end: () => {
      source?.close();
    },
  };
}

const placed = { event: "placed", order: { order_id: "o1", asset_id: "ETH", quantity: "0.5" } };

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("followOrders", () => {
  it("delivers order events, split anywhere, and says when it is connected", async () => {
    vi.spyOn(session, "accessToken", "get").mockReturnValue("A1");
    const stream = eventStream();
    const calls: Call[] = [];
    vi.stubGlobal("fetch", (input: RequestInfo | URL, init: RequestInit = {}) => {
      calls.push({ url: urlOf(input), init });
      return Promise.resolve(stream.response);
    });
    const events: OrderEvent[] = [];
    const connected = vi.fn();
    const stop = followOrders((e) => events.push(e), connected);
    await vi.waitFor(() => {
      expect(connected).toHaveBeenCalledTimes(1);
    });
    expect(calls[0]?.url).toBe(ORDER_STREAM);
    expect(header(calls[0]?.init ?? {}, "Authorization")).toBe("Bearer A1");
    stream.push('event: order\ndata: {"event":"subscribed"}\n\n: heartbeat\n\n');
    stream.push("event: order\r\ndata: " + JSON.stringify(placed).slice(0, 20));
    stream.push(JSON.stringify(placed).slice(20) + "\r\n\r\nevent: order\ndata: {not json\n\n");
    stream.push('event: price\ndata: {"event":"filled"}\n\n');
    await vi.waitFor(() => {
      expect(events).toEqual([{ event: "subscribed" }, placed]);
    });
    stop();
  });

  it("after a 401 refreshes the session once and reconnects with the new token", async () => {
    let token = "OLD";
    vi.spyOn(session, "accessToken", "get").mockImplementation(() => token);
    const refresh = vi.spyOn(session, "refresh").mockImplementation(() => {
      token = "NEW";
      return Promise.resolve(true);
    });
    const stream = eventStream();
    const sent: (string | null)[] = [];
    vi.stubGlobal("fetch", (_input: RequestInfo | URL, init: RequestInit = {}) => {
      const auth = header(init, "Authorization");
      sent.push(auth);
      return Promise.resolve(auth === "Bearer NEW" ? stream.response : json(401, { code: "TOKEN_EXPIRED" }));
    });
    const connected = vi.fn();
    const stop = followOrders(() => undefined, connected);
    await vi.waitFor(() => {
      expect(connected).toHaveBeenCalledTimes(1);
    });
    expect(sent).toEqual(["Bearer OLD", "Bearer NEW"]);
    expect(refresh).toHaveBeenCalledTimes(1);
    stop();
  });

  it("stops when the session cannot be refreshed (it has ended)", async () => {
    vi.spyOn(session, "accessToken", "get").mockReturnValue("A1");
    const refresh = vi.spyOn(session, "refresh").mockResolvedValue(false);
    const fetch = vi.fn(() => Promise.resolve(json(401, {})));
    vi.stubGlobal("fetch", fetch);
    const wait = vi.fn(() => Promise.resolve());
    followOrders(() => undefined, () => undefined, wait);
    await vi.waitFor(() => {
      expect(refresh).toHaveBeenCalledTimes(1);
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(wait).not.toHaveBeenCalled();
  });

  it("reconnects after the stream ends or fails, pausing longer each time, until stopped", async () => {
    vi.spyOn(session, "accessToken", "get").mockReturnValue("A1");
    const first = eventStream();
    const answers: (() => Promise<Response>)[] = [
      () => Promise.resolve(first.response),
      () => Promise.reject(new TypeError("offline")),
      () => Promise.resolve(json(429, { code: "TOO_MANY_STREAMS" })),
      () => Promise.resolve(eventStream().response),
    ];
    vi.stubGlobal("fetch", () => (answers.shift() ?? (() => Promise.reject(new Error("more"))))());
    const pauses: number[] = [];
    const wait = (ms: number) => {
      pauses.push(ms);
      return Promise.resolve();
    };
    const connected = vi.fn();
    const stop = followOrders(() => undefined, connected, wait);
    await vi.waitFor(() => {
      expect(connected).toHaveBeenCalledTimes(1);
    });
    first.end();
    await vi.waitFor(() => {
      expect(connected).toHaveBeenCalledTimes(2);
    });
    expect(pauses).toEqual([backoffMs(1), backoffMs(2), backoffMs(3)]);
    expect(pauses).toEqual([1_000, 2_000, 4_000]);
    stop();
    expect(backoffMs(10)).toBe(30_000);
  });
});
