/**
 * Live prices from the bridge's Server-Sent Events (GET /api/v1/stream/prices): one
 * EventSource for the whole app (the bridge caps open streams), reconnecting by itself,
 * and a short history per asset for sparklines and the asset chart.
 */
import { useSyncExternalStore } from "react";
import type { PriceEvent } from "../api/types";

export interface LivePrice {
  price: string;
  change24h: string | null;
  asOf: string;
  history: { t: number; price: string }[];
}

export type StreamStatus = "connecting" | "live" | "reconnecting";

const HISTORY = 120;

class PriceStore {
  private prices = new Map<string, LivePrice>();
  private snapshot: ReadonlyMap<string, LivePrice> = new Map();
  private listeners = new Set<() => void>();
  private source: EventSource | null = null;
  private users = 0;
  status: StreamStatus = "connecting";

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    this.users += 1;
    if (this.source === null) this.open();
    return () => {
      this.listeners.delete(listener);
      this.users -= 1;
    };
  };

  getSnapshot = (): ReadonlyMap<string, LivePrice> => this.snapshot;

  getStatus = (): StreamStatus => this.status;

  /** Applies one event (exported for tests). */
  apply(event: PriceEvent): void {
    const { asset_id: id, price, as_of: asOf } = event.quote;
    const before = this.prices.get(id);
    const history = [...(before?.history ?? []), { t: Date.parse(asOf) || Date.now(), price }];
    const change = event.price_change_percentage_24h;
    this.prices.set(id, {
      price,
      change24h: change === undefined || change === null ? (before?.change24h ?? null) : String(change),
      asOf,
      history: history.slice(-HISTORY),
    });
    this.scheduleSnapshot();
  }

  private pending = false;

  /** Ticks arrive per asset; the screen is updated at most ~4 times a second. */
  private scheduleSnapshot(): void {
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => {
      this.pending = false;
      this.snapshot = new Map(this.prices);
      this.emit();
    }, 250);
  }

  private open(): void {
    if (typeof EventSource === "undefined") return;
    const source = new EventSource("/api/v1/stream/prices");
    this.source = source;
    source.addEventListener("price", (message) => {
      try {
        this.apply(JSON.parse((message as MessageEvent<string>).data) as PriceEvent);
      } catch {
        // One malformed event is skipped; the next one brings the price.
      }
      this.setStatus("live");
    });
    source.onerror = () => {
      this.setStatus("reconnecting");
      // EventSource retries a dropped stream by itself, but not a refused one (429 when
      // the bridge has too many streams, 503): then open a new one after a pause.
      if (source.readyState === EventSource.CLOSED) {
        this.source = null;
        this.retries += 1;
        setTimeout(() => {
          if (this.source === null && this.users > 0) this.open();
        }, Math.min(30_000, 1_000 * 2 ** Math.min(this.retries, 5)));
      }
    };
    source.onopen = () => {
      this.retries = 0;
    };
  }

  private retries = 0;

  private setStatus(status: StreamStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.emit();
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}

export const prices = new PriceStore();

export function useLivePrices(): ReadonlyMap<string, LivePrice> {
  return useSyncExternalStore(prices.subscribe, prices.getSnapshot);
}

export function useStreamStatus(): StreamStatus {
  return useSyncExternalStore(prices.subscribe, prices.getStatus);
}
