import Big from "big.js";
import { describe, expect, it } from "vitest";
import { dec, formatPercent, formatPrice, formatQuantity, formatUsd, orderTotal, parseDecimalInput } from "./money";

describe("orderTotal", () => {
  it("rounds a buy's cost up and a sale's proceeds down to the cent", () => {
    expect(orderTotal("buy", new Big("0.333"), new Big("10.01")).toFixed(2)).toBe("3.34");
    expect(orderTotal("sell", new Big("0.333"), new Big("10.01")).toFixed(2)).toBe("3.33");
  });

  it("is exact where binary floats are not", () => {
    expect(0.1 * 3).not.toBe(0.3);
    expect(orderTotal("buy", new Big("0.1"), new Big("3")).toFixed(2)).toBe("0.30");
    expect(orderTotal("sell", new Big("0.00000001"), new Big("67663.61")).toFixed(2)).toBe("0.00");
    expect(orderTotal("buy", new Big("0.00000001"), new Big("67663.61")).toFixed(2)).toBe("0.01");
  });

  it("never creates money: a buy costs at least what the same sale brings", () => {
    for (const [q, p] of [["0.5", "3778.87"], ["1.23456789", "0.449136"], ["7", "1.00001"]] as const) {
      const buy = orderTotal("buy", new Big(q), new Big(p));
      const sell = orderTotal("sell", new Big(q), new Big(p));
      expect(buy.gte(sell)).toBe(true);
      expect(buy.minus(sell).lte("0.01")).toBe(true);
    }
  });
});

describe("formatting", () => {
  it("formats money in the locale from the decimal string, without a float", () => {
    expect(formatUsd("9007199254740993.01", "en-US")).toBe("$9,007,199,254,740,993.01");
    expect(formatUsd("1234.5", "de-DE")).toBe("1.234,50\u00a0$");
    expect(formatUsd(new Big("-12.345").round(2), "en-US")).toBe("-$12.35");
  });

  it("keeps a quote's precision and trims quantities", () => {
    expect(formatPrice("0.449136", "en-US")).toBe("$0.449136");
    expect(formatPrice("67663.6", "en-US")).toBe("$67,663.60");
    expect(formatQuantity("0.10000000", "en-US")).toBe("0.1");
    expect(formatQuantity("12345.12345678", "en-US")).toBe("12,345.12345678");
  });

  it("signs percentages", () => {
    expect(formatPercent("-0.05", "en-US")).toBe("-0.05%");
    expect(formatPercent("1.5", "en-US")).toBe("+1.50%");
    expect(formatPercent(0, "en-US")).toBe("0.00%");
  });
});

describe("parseDecimalInput", () => {
  it("accepts plain decimals and thousands separators, nothing else", () => {
    expect(parseDecimalInput("1,000.25")?.toFixed(2)).toBe("1000.25");
    expect(parseDecimalInput(" 0.5 ")?.toString()).toBe("0.5");
    for (const bad of ["", "-1", "1e3", "abc", "1.2.3", "NaN", "Infinity"]) expect(parseDecimalInput(bad)).toBeNull();
  });

  it("reads API decimals and old numeric fields alike", () => {
    expect(dec("0.10000000").eq("0.1")).toBe(true);
    expect(dec(-0.05).toString()).toBe("-0.05");
    expect(dec(null).toString()).toBe("0");
  });
});
