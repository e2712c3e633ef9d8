/** Every call the app makes, as react-query hooks and mutations. */
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { idempotencyKey, send } from "./http";
import { session } from "./session";
import type {
  Asset,
  AssetList,
  Balance,
  CashMove,
  Ledger,
  Order,
  Page,
  PlaceOrder,
  Portfolio,
  Profile,
  Registration,
} from "./types";

export const keys = {
  assets: ["assets"] as const,
  asset: (id: string) => ["asset", id] as const,
  portfolio: ["portfolio"] as const,
  balance: ["balance"] as const,
  orders: (filters: object) => ["orders", filters] as const,
  ledger: (token: string) => ["ledger", token] as const,
  profile: ["profile"] as const,
  history: ["history"] as const,
};

export function useAssets() {
  return useQuery({
    queryKey: keys.assets,
    queryFn: ({ signal }) =>
      send<AssetList>("/api/v1/inventory/assets", { query: { limit: 250 }, signal }),
    staleTime: 60_000,
  });
}

export function useAsset(assetId: string) {
  return useQuery({
    queryKey: keys.asset(assetId),
    queryFn: ({ signal }) =>
      send<{ data: Asset }>(`/api/v1/inventory/assets/${encodeURIComponent(assetId)}`, { signal }),
    select: (answer) => answer.data,
  });
}

export function usePortfolio(enabled = true) {
  return useQuery({
    queryKey: keys.portfolio,
    queryFn: ({ signal }) => session.request<Portfolio>("/api/v1/portfolio", { signal }),
    enabled,
  });
}

export function useBalance() {
  return useQuery({
    queryKey: keys.balance,
    queryFn: ({ signal }) => session.request<Balance>("/api/v1/balance", { signal }),
  });
}

export interface OrderFilters {
  asset_id?: string;
  order_type?: string;
  status?: string;
  page_token?: string;
  limit?: number;
}

export function useOrders(filters: OrderFilters) {
  return useQuery({
    queryKey: keys.orders(filters),
    queryFn: ({ signal }) =>
      session.request<Page<Order>>("/api/v1/orders", {
        query: { limit: 20, ...filters },
        signal,
      }),
    placeholderData: keepPreviousData,
  });
}

export function useLedger(pageToken: string) {
  return useQuery({
    queryKey: keys.ledger(pageToken),
    queryFn: ({ signal }) =>
      session.request<Ledger>("/api/v1/balance/transactions", {
        query: { limit: 20, page_token: pageToken },
        signal,
      }),
    placeholderData: keepPreviousData,
  });
}

/** Every page of a list (bounded): the history behind the portfolio chart. */
async function allPages<T>(
  fetchPage: (token: string) => Promise<{ items: T[]; next: string; more: boolean }>,
  maxPages = 10,
): Promise<T[]> {
  const items: T[] = [];
  let token = "";
  for (let page = 0; page < maxPages; page += 1) {
    const answer = await fetchPage(token);
    items.push(...answer.items);
    if (!answer.more || !answer.next) break;
    token = answer.next;
  }
  return items;
}

export function useHistory() {
  return useQuery({
    queryKey: keys.history,
    queryFn: async ({ signal }) => {
      const [ledger, orders] = await Promise.all([
        allPages(async (token) => {
          const a = await session.request<Ledger>("/api/v1/balance/transactions", {
            query: { limit: 100, page_token: token },
            signal,
          });
          return { items: a.transactions, next: a.next_page_token, more: a.has_more };
        }),
        allPages(async (token) => {
          const a = await session.request<Page<Order>>("/api/v1/orders", {
            query: { limit: 100, page_token: token },
            signal,
          });
          return { items: a.data, next: a.next_page_token, more: a.has_more };
        }),
      ]);
      return { ledger, orders };
    },
  });
}

export function useProfile() {
  return useQuery({
    queryKey: keys.profile,
    queryFn: ({ signal }) => session.request<Profile>("/api/v1/auth/profile", { signal }),
  });
}

function useInvalidateAccount() {
  const client = useQueryClient();
  return () =>
    Promise.all(
      [keys.portfolio, keys.balance, keys.history, ["orders"], ["ledger"]].map((queryKey) =>
        client.invalidateQueries({ queryKey }),
      ),
    );
}

/**
 * The Idempotency-Key travels with the variables: the caller makes one per intended
 * operation, so a double click or a retry of the same confirmation never moves money
 * twice (the server answers the first result again).
 */
export function usePlaceOrder() {
  const invalidate = useInvalidateAccount();
  return useMutation({
    mutationFn: ({ order, key }: { order: PlaceOrder; key: string }) =>
      session.request<{ data: Order }>("/api/v1/orders", {
        method: "POST",
        body: order,
        headers: { "Idempotency-Key": key },
      }),
    onSettled: invalidate,
  });
}

export function useCancelOrder() {
  const invalidate = useInvalidateAccount();
  return useMutation({
    mutationFn: (orderId: string) =>
      session.request<{ data: Order }>(`/api/v1/orders/${encodeURIComponent(orderId)}`, {
        method: "DELETE",
      }),
    onSettled: invalidate,
  });
}

export function useCashMove(kind: "deposit" | "withdraw") {
  const invalidate = useInvalidateAccount();
  return useMutation({
    mutationFn: ({ amount, key }: { amount: string; key: string }) =>
      session.request<CashMove>(`/api/v1/balance/${kind}`, {
        method: "POST",
        body: { amount },
        headers: { "Idempotency-Key": key },
      }),
    onSettled: invalidate,
  });
}

export function useUpdateProfile() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (changes: Partial<Profile>) =>
      session.request<{ message: string; user: Profile }>("/api/v1/auth/profile", {
        method: "PUT",
        body: changes,
      }),
    onSuccess: (answer) => client.setQueryData(keys.profile, answer.user),
  });
}

export function useChangePassword() {
  return useMutation({
    mutationFn: (body: { current_password: string; new_password: string }) =>
      session.request<{ message?: string }>("/api/v1/auth/password", { method: "POST", body }),
  });
}

export function register(body: Registration) {
  return send<{ message: string }>("/api/v1/auth/register", { method: "POST", body });
}

export { idempotencyKey };
