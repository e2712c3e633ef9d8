/**
 * The signed-in person's order events (GET /api/v1/stream/orders, Server-Sent Events
 * named `order`: first `{"event": "subscribed"}`, then placed, filled, cancelled or
 * expired with the order). EventSource cannot send the bearer token, so this reads the
 * stream with fetch and parses it with eventsource-parser. It reconnects with a growing
 * pause (1 s, 2 s, ... 30 s), and after a 401 refreshes the session once before trying
 * again; a session that cannot refresh has ended, and so does the stream. Delivery is
 * at most once: every (re)connection calls `onConnected`, whose caller reloads what
 * events change, so a missed event is caught up.
 */
import { createParser } from "eventsource-parser";
import { ApiError } from "../api/errors";
import { session } from "../api/session";
import type { Order } from "../api/types";

export const ORDER_STREAM = "/api/v1/stream/orders";

export interface OrderEvent {
  event: string;
  order?: Order;
}

export type Wait = (ms: number) => Promise<void>;

const pause: Wait = (ms) =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** The pause before reconnection `failures` (1, 2, ...): doubling from 1 s, at most 30 s. */
export function backoffMs(failures: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.max(0, Math.min(failures, 6) - 1));
}

/** Follows the stream until the returned function is called or the session ends. */
export function followOrders(
  onEvent: (event: OrderEvent) => void,
  onConnected: () => void,
  wait: Wait = pause,
): () => void {
  const life = { stopped: false };
  const stopped = (): boolean => life.stopped;
  let controller: AbortController | null = null;
  let failures = 0;
  let refreshed = false;
  const parser = createParser({
    onEvent: (message) => {
      if (message.event !== "order") return;
      try {
        onEvent(JSON.parse(message.data) as OrderEvent);
      } catch {
        // A malformed event is skipped; the next reconnection catches up.
      }
    },
  });

  const connect = async (): Promise<void> => {
    while (!stopped()) {
      controller = new AbortController();
      parser.reset();
      try {
        const token = session.accessToken;
        if (token === null) throw new ApiError(401, "SIGNED_OUT", "signed out", null);
        const response = await fetch(ORDER_STREAM, {
          headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (response.status === 401) throw new ApiError(401, "UNAUTHENTICATED", "expired", null);
        if (!response.ok || !response.body) throw new Error(`stream answered ${String(response.status)}`);
        failures = 0;
        refreshed = false;
        onConnected();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
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
      await wait(backoffMs(failures));
    }
  };
  void connect();
  return () => {
    life.stopped = true;
    controller?.abort();
  };
}
