/**
 * The account's value over time, rebuilt from its own history: cash from the ledger
 * (signed amounts), holdings from completed orders, each holding valued at the last
 * trade price of that asset seen so far. The last point is the portfolio's value now.
 * Exact decimals throughout; charts convert at the very end.
 */
import Big from "big.js";
import type { LedgerEntry, Order } from "../api/types";
import { dec } from "./money";

export interface ValuePoint {
  t: number;
  value: Big;
}

export function valueOverTime(ledger: LedgerEntry[], orders: Order[], now?: { t: number; value: string }): ValuePoint[] {
  type Event = { t: number; apply: () => void };
  let cash = new Big(0);
  const quantities = new Map<string, Big>();
  const lastPrice = new Map<string, Big>();
  const events: Event[] = [];
  for (const entry of ledger) {
    if (entry.status && entry.status !== "completed") continue;
    events.push({ t: Date.parse(entry.created_at), apply: () => (cash = cash.plus(dec(entry.amount))) });
  }
  for (const order of orders) {
    if (order.status !== "completed") continue;
    const sign = order.order_type.endsWith("buy") ? 1 : -1;
    events.push({
      t: Date.parse(order.created_at),
      apply: () => {
        const held = quantities.get(order.asset_id) ?? new Big(0);
        quantities.set(order.asset_id, sign > 0 ? held.plus(dec(order.quantity)) : held.minus(dec(order.quantity)));
        lastPrice.set(order.asset_id, dec(order.price));
      },
    });
  }
  events.sort((a, b) => a.t - b.t);
  const points: ValuePoint[] = [];
  for (const event of events) {
    event.apply();
    let value = cash;
    for (const [asset, quantity] of quantities) value = value.plus(quantity.times(lastPrice.get(asset) ?? 0));
    const point = { t: event.t, value: value.round(2) };
    const previous = points[points.length - 1];
    if (previous && previous.t === point.t) points[points.length - 1] = point;
    else points.push(point);
  }
  if (now && points.length > 0) points.push({ t: now.t, value: dec(now.value) });
  return points;
}
