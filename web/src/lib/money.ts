/**
 * Money, prices and quantities as decimals (big.js), never binary floats.
 *
 * The API sends them as decimal strings ("1000.00", "0.10000000"); arithmetic here is
 * exact, and formatting hands Intl.NumberFormat the decimal *string*, which it formats
 * without going through a float (ECMA-402 "Intl.NumberFormat v3").
 */
import Big from "big.js";

export type Decimal = Big;
export type Side = "buy" | "sell";

// Amounts are at most 2 decimals, quantities 8 (shared/API.md "Rules").
export const CASH_DECIMALS = 2;
export const QUANTITY_DECIMALS = 8;
const ROUND_DOWN = 0;
const ROUND_UP = 3;

const PLAIN_DECIMAL = /^\d+(\.\d+)?$/;

/** A decimal from the API (string, or a number the old fields still use). */
export function dec(value: string | number | null | undefined): Big {
  if (value === null || value === undefined || value === "") return new Big(0);
  return new Big(typeof value === "number" ? String(value) : value);
}

/** What a person typed, as a decimal, or null when it is not a plain positive decimal. */
export function parseDecimalInput(text: string): Big | null {
  const trimmed = text.trim().replace(/,/g, "");
  if (!PLAIN_DECIMAL.test(trimmed)) return null;
  return new Big(trimmed);
}

export function decimalPlaces(text: string): number {
  const [, fraction = ""] = text.trim().split(".");
  return fraction.length;
}

/**
 * The cash an order moves: quantity × price, a buy's cost rounded up to the cent and
 * a sale's proceeds down, so rounding never creates money (the server's rule).
 */
export function orderTotal(side: Side, quantity: Big, price: Big): Big {
  return quantity.times(price).round(CASH_DECIMALS, side === "buy" ? ROUND_UP : ROUND_DOWN);
}

type Numeric = Intl.StringNumericLiteral;

function format(value: Big | string, options: Intl.NumberFormatOptions, locale?: string): string {
  const text = (typeof value === "string" ? dec(value) : value).toFixed() as Numeric;
  return new Intl.NumberFormat(locale, options).format(text);
}

export function formatUsd(value: Big | string, locale?: string): string {
  return format(
    value,
    { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 },
    locale,
  );
}

/** A quote: at least 2 decimals, as many as the inventory service gave (up to 8). */
export function formatPrice(value: Big | string, locale?: string): string {
  const digits = Math.min(8, Math.max(2, typeof value === "string" ? decimalPlaces(value) : 2));
  return format(
    value,
    { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: digits },
    locale,
  );
}

export function formatQuantity(value: Big | string, locale?: string): string {
  return format(value, { minimumFractionDigits: 0, maximumFractionDigits: QUANTITY_DECIMALS }, locale);
}

/** A percentage given in percent ("-0.05" means -0.05 %), signed. */
export function formatPercent(value: Big | string | number, locale?: string): string {
  const big = typeof value === "object" ? value : dec(value);
  return format(
    big.div(100),
    { style: "percent", minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero" },
    locale,
  );
}

/** A large figure in compact form (market cap, volume): "$1.33T". */
export function formatCompactUsd(value: Big | string, locale?: string): string {
  return format(
    value,
    { style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 2 },
    locale,
  );
}

/** For chart geometry only (pixels), never for money. */
export function toChartNumber(value: Big | string): number {
  return Number(typeof value === "string" ? value : value.toFixed());
}
