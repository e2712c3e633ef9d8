import { describe, expect, it } from "vitest";
import * as rules from "./rules";

describe("the API's rules, checked as a person types", () => {
  it("usernames: 6-30 of letters, digits, underscore", () => {
    expect(rules.username("ada_99")).toBeNull();
    expect(rules.username("ada")).not.toBeNull();
    expect(rules.username("ada lovelace")).not.toBeNull();
    expect(rules.username("a".repeat(31))).not.toBeNull();
  });

  it("passwords: length and the four kinds, naming what is missing", () => {
    expect(rules.password("Correct-Horse-42!")).toBeNull();
    expect(rules.password("short")).toMatch(/12 to 128 characters.*upper-case.*digit.*symbol/);
    expect(rules.password("correct-horse-42!")).toBe("Needs an upper-case letter.");
    expect(rules.password(`Aa1!${"x".repeat(125)}`)).toMatch(/12 to 128/);
  });

  it("names refuse markup", () => {
    expect(rules.personName("Mary-Jane O'Neil")).toBeNull();
    expect(rules.personName("<script>")).toBe("Markup is not allowed.");
    expect(rules.personName("")).not.toBeNull();
  });

  it("amounts: > 0, at most 1,000,000 and 2 decimals", () => {
    expect(rules.amount("250")).toBeNull();
    expect(rules.amount("99.95")).toBeNull();
    expect(rules.amount("0")).toMatch(/more than zero/);
    expect(rules.amount("1000000.01")).toMatch(/1,000,000/);
    expect(rules.amount("1.005")).toMatch(/2 decimals/);
    expect(rules.amount("-5")).not.toBeNull();
  });

  it("quantities: at least 0.001, at most 8 decimals", () => {
    expect(rules.quantity("0.001")).toBeNull();
    expect(rules.quantity("0.0009")).toMatch(/0.001/);
    expect(rules.quantity("0.123456789")).toMatch(/8 decimals/);
  });

  it("phone and date of birth are optional but checked when given", () => {
    expect(rules.phone("")).toBeNull();
    expect(rules.phone("+1 (555) 010-9999")).toBeNull();
    expect(rules.phone("12345")).not.toBeNull();
    const today = new Date("2026-12-01T00:00:00Z");
    expect(rules.dateOfBirth("", today)).toBeNull();
    expect(rules.dateOfBirth("2013-12-01", today)).toBeNull();
    expect(rules.dateOfBirth("2013-12-02", today)).toMatch(/13 and 120/);
  });

  it("only follows app paths after sign-in", () => {
    expect(rules.safeNext("/orders?x=1")).toBe("/orders?x=1");
    expect(rules.safeNext("//evil.example")).toBe("/portfolio");
    expect(rules.safeNext("https://evil.example")).toBe("/portfolio");
    expect(rules.safeNext(null)).toBe("/portfolio");
  });
});
