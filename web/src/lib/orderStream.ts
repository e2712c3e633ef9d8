/**
 * The signed-in person's order events (GET /api/v1/stream/orders, Server-Sent Events:
 * subscribed, placed, filled, cancelled, expired). EventSource cannot send the bearer
 * token, so this reads the stream with fetch; it reconnects with a growing pause, and
 * after a 401 refreshes the session once before trying again. Delivery is at most once:
 * every (re)connection invalidates the order lists, so a missed event is caught up.
 */
import { ApiError } from "../api/errors";
import { session } from "../api/session";
import type { Order } from "../api/types";

export interface OrderEvent {
  event: string;
  order?: Order;
}

/** Splits an SSE byte stream into events; returns the unconsumed rest. */
export function parseEvents(buffer: string, emit: (name: string, data: string) => void): string {
  const blocks = buffer.split(/\r?\n\r?\n/);
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let name = "message";
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (data.length > 0) emit(name, data.join("\n"));
  }
  return rest;
}

export function followOrders(onEvent: (event: OrderEvent) => void, onConnected: () => void): () => void {
  const life = { stopped: false };
  const stopped = (): boolean => life.stopped;
  let controller: AbortController | null = null;
  let failures = 0;
  let refreshed = false;

  const connect = async (): Promise<void> => {
    while (!stopped()) {
      controller = new AbortController();
      try {
        const token = session.accessToken;
        if (token === null) throw new ApiError(401, "SIGNED_OUT", "signed out", null);
        const response = await fetch("/api/v1/stream/orders", {
          headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (response.status === 401) throw new ApiError(401, "UNAUTHENTICATED", "expired", null);
        if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
        failures = 0;
        refreshed = false;
        onConnected();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = parseEvents(buffer + value, (name, data) => {
            if (name !== "order") return;
            try {
              onEvent(JSON.parse(data) as OrderEvent);
            } catch {
              // A malformed event is skipped; the next list refresh catches up.
            }
          });
        }
      } catch (error) {
        if (stopped()) return;
        if (error instanceof ApiError && error.status === 401) {
          // One refresh per failure streak; a session that cannot refresh has ended.
          if (refreshed || !(await session.refresh())) return;
          refreshed = true;
          continue;
        }
      }
      failures += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1_000 * 2 ** Math.min(failures, 5))));
    }
  };
  void connect();
  return () => {
    life.stopped = true;
    controller?.abort();
  };
}
