/** The market rows: the catalogue merged with the live stream. */
import { useMemo } from "react";
import { useAssets } from "../api/queries";
import type { Asset } from "../api/types";
import { dec } from "./money";
import { useLivePrices, type LivePrice } from "./prices";

export interface MarketRow {
  asset: Asset;
  price: string;
  change24h: string | null;
  history: LivePrice["history"];
}

export function useMarket() {
  const assets = useAssets();
  const live = useLivePrices();
  const rows = useMemo<MarketRow[]>(
    () =>
      (assets.data?.data ?? [])
        .filter((asset) => asset.is_active)
        .map((asset) => {
          const quote = live.get(asset.asset_id);
          const change = asset.price_change_percentage_24h;
          return {
            asset,
            price: quote?.price ?? asset.current_price,
            change24h: quote?.change24h ?? (change === undefined || change === null ? null : String(change)),
            history: quote?.history ?? [],
          };
        }),
    [assets.data, live],
  );
  return { ...assets, rows };
}

export type SortKey = "rank" | "name" | "price" | "change" | "cap";

export function sortRows(rows: MarketRow[], key: SortKey, ascending: boolean): MarketRow[] {
  const sign = ascending ? 1 : -1;
  const compare = (a: MarketRow, b: MarketRow): number => {
    switch (key) {
      case "name":
        return a.asset.name.localeCompare(b.asset.name);
      case "price":
        return dec(a.price).cmp(dec(b.price));
      case "change":
        return dec(a.change24h).cmp(dec(b.change24h));
      case "cap":
        return dec(a.asset.market_cap).cmp(dec(b.asset.market_cap));
      default:
        return (a.asset.market_cap_rank ?? 9999) - (b.asset.market_cap_rank ?? 9999);
    }
  };
  return [...rows].sort((a, b) => sign * compare(a, b));
}

export function filterRows(rows: MarketRow[], query: string): MarketRow[] {
  const q = query.trim().toLowerCase();
  if (!q) return rows;
  return rows.filter(
    (row) => row.asset.asset_id.toLowerCase().includes(q) || row.asset.name.toLowerCase().includes(q),
  );
}
