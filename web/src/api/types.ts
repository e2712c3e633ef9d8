/** Shapes of the /api/v1 answers (shared/API.md); decimals stay strings. */

export interface Asset {
  asset_id: string;
  name: string;
  category?: string;
  market_cap_rank?: number;
  current_price: string;
  market_cap?: string;
  total_volume_24h?: string;
  high_24h?: string;
  low_24h?: string;
  price_change_24h?: string;
  price_change_percentage_24h?: string | number | null;
  circulating_supply?: string;
  total_supply?: string | number | null;
  max_supply?: string | number | null;
  ath?: string | number | null;
  atl?: string | number | null;
  is_active: boolean;
  last_updated?: string;
}

export interface AssetList {
  data: Asset[];
  total_count: number;
  active_count: number;
}

export interface PriceEvent {
  quote: { asset_id: string; asset_name: string; price: string; as_of: string; is_active: boolean };
  price_change_percentage_24h?: string | number | null;
}

export type OrderType = "market_buy" | "market_sell" | "limit_buy" | "limit_sell";
/** pending, completed, cancelled, expired, failed (kept open for new ones). */
export type OrderStatus = string;

export interface Order {
  order_id: string;
  order_type: OrderType;
  asset_id: string;
  quantity: string;
  price: string;
  status: OrderStatus;
  total_amount: string;
  created_at: string;
  time_in_force?: string;
  /** Limit orders: the limit price; empty for market orders. */
  limit_price?: string;
  /** What a resting order holds: cash for a buy, units for a sell. */
  held_amount?: string;
  expires_at?: string | null;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_page_token: string;
}

export interface PlaceOrder {
  order_type: OrderType;
  asset_id: string;
  quantity: string;
  price?: string;
  time_in_force?: string;
  expires_at?: string;
}

export interface Holding {
  asset_id: string;
  quantity: string;
  available_quantity?: string;
  held_quantity?: string;
  current_price: string;
  market_value: string;
  percentage: string;
}

export interface Portfolio {
  assets: Holding[];
  cash_balance: string;
  total_asset_value: string;
  total_value: string;
  /** Cash that can be spent now (total minus what resting limit buys hold). */
  available_cash?: string;
  held_cash?: string;
}

export interface Balance {
  current_balance: string;
  updated_at: string;
}

export interface CashMove {
  success: boolean;
  message: string;
  transaction_id: string;
  timestamp: string;
  current_balance: string;
}

export interface LedgerEntry {
  transaction_id: string;
  transaction_type: string;
  amount: string;
  status: string;
  created_at: string;
  reference_id: string;
}

export interface Ledger {
  transactions: LedgerEntry[];
  total_count: number;
  has_more: boolean;
  next_page_token: string;
}

export interface Profile {
  username: string;
  email: string;
  first_name: string;
  last_name: string;
  phone: string;
  date_of_birth: string;
  marketing_emails_consent: boolean;
  created_at: string;
  updated_at: string;
}

export interface Registration {
  username: string;
  email: string;
  password: string;
  first_name: string;
  last_name: string;
}
