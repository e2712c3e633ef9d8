/**
 * The API's input rules (shared/API.md "Rules"), checked as a person types so that the
 * server's 422 is the exception. The server stays the judge: its `violations` are shown
 * on the same fields (see api/errors.ts).
 */
import Big from "big.js";
import { CASH_DECIMALS, QUANTITY_DECIMALS, decimalPlaces, parseDecimalInput } from "./money";

export type Check = (value: string) => string | null;

const USERNAME = /^[A-Za-z0-9_]{6,30}$/;
const NAME = /^[\p{L} '-]{1,50}$/u;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MARKUP = /<\s*(script|iframe|object|embed|svg|img|style|link)|javascript:|on\w+\s*=/i;
export const PASSWORD_SYMBOLS = "!@#$%^&*()-_=+";

export const username: Check = (v) =>
  USERNAME.test(v) ? null : "6 to 30 letters, digits or underscores.";

export const email: Check = (v) =>
  v.length <= 255 && EMAIL.test(v.trim()) ? null : "Enter an email address like name@example.org.";

export const personName: Check = (v) => {
  if (MARKUP.test(v)) return "Markup is not allowed.";
  return NAME.test(v.trim()) ? null : "1 to 50 letters, spaces, apostrophes or hyphens.";
};

export interface PasswordRule {
  label: string;
  ok: (v: string) => boolean;
}

export const PASSWORD_RULES: PasswordRule[] = [
  { label: "12 to 128 characters", ok: (v) => v.length >= 12 && v.length <= 128 },
  { label: "an upper-case letter", ok: (v) => /[A-Z]/.test(v) },
  { label: "a lower-case letter", ok: (v) => /[a-z]/.test(v) },
  { label: "a digit", ok: (v) => /\d/.test(v) },
  {
    label: `a symbol (${PASSWORD_SYMBOLS})`,
    ok: (v) => Array.from(PASSWORD_SYMBOLS).some((c) => v.includes(c)),
  },
];

export const password: Check = (v) => {
  const missing = PASSWORD_RULES.filter((rule) => !rule.ok(v)).map((rule) => rule.label);
  return missing.length === 0 ? null : `Needs ${missing.join(", ")}.`;
};

export const phone: Check = (v) => {
  if (v.trim() === "") return null;
  const digits = v.replace(/[\s().+-]/g, "");
  return /^\d{10,15}$/.test(digits) ? null : "10 to 15 digits (spaces and dashes are fine).";
};

export function dateOfBirth(v: string, today: Date = new Date()): string | null {
  if (v.trim() === "") return null;
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!match) return "Use the date picker or YYYY-MM-DD.";
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  let age = today.getUTCFullYear() - year;
  const before =
    today.getUTCMonth() + 1 < month || (today.getUTCMonth() + 1 === month && today.getUTCDate() < day);
  if (before) age -= 1;
  return age >= 13 && age <= 120 ? null : "You must be between 13 and 120 years old.";
}

export const AMOUNT_MAX = new Big("1000000");
export const QUANTITY_MIN = new Big("0.001");

/** A deposit or withdrawal: > 0, ≤ 1,000,000, at most 2 decimals. */
export const amount: Check = (v) => {
  const value = parseDecimalInput(v);
  if (value === null) return "Enter an amount like 250 or 99.95.";
  if (value.lte(0)) return "The amount must be more than zero.";
  if (value.gt(AMOUNT_MAX)) return "At most 1,000,000.00 at a time.";
  if (decimalPlaces(v) > CASH_DECIMALS) return "At most 2 decimals (cents).";
  return null;
};

/** An order quantity: ≥ 0.001, at most 8 decimals. */
export const quantity: Check = (v) => {
  const value = parseDecimalInput(v);
  if (value === null) return "Enter a quantity like 0.5.";
  if (value.lt(QUANTITY_MIN)) return "At least 0.001.";
  if (decimalPlaces(v) > QUANTITY_DECIMALS) return "At most 8 decimals.";
  return null;
};

/** A protection or limit price: > 0 and ≤ 1,000,000. */
export const price: Check = (v) => {
  if (v.trim() === "") return null;
  const value = parseDecimalInput(v);
  if (value === null) return "Enter a price like 65000.";
  if (value.lte(0) || value.gt(AMOUNT_MAX)) return "Between 0 and 1,000,000.";
  return null;
};

export const required =
  (label: string): Check =>
  (v) =>
    v.trim() === "" ? `${label} is required.` : null;

/** Only paths of this app are followed after sign-in (no open redirect). */
export function safeNext(next: string | null): string {
  return next?.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/portfolio";
}
