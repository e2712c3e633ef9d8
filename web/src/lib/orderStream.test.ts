import { describe, expect, it } from "vitest";
import { parseEvents } from "./orderStream";

describe("parseEvents", () => {
  it("splits events, skips comments and keeps an unfinished event for later", () => {
    const seen: [string, string][] = [];
    const rest = parseEvents(
      ': heartbeat\n\nevent: order\ndata: {"event":"subscribed"}\n\nevent: order\r\ndata: {"event":"pla',
      (name, data) => seen.push([name, data]),
    );
    expect(seen).toEqual([["order", '{"event":"subscribed"}']]);
    const more = parseEvents(rest + 'ced"}\n\n', (name, data) => seen.push([name, data]));
    expect(more).toBe("");
    expect(seen[1]).toEqual(["order", '{"event":"placed"}']);
  });

  it("joins multi-line data", () => {
    const seen: string[] = [];
    parseEvents("data: a\ndata: b\n\n", (_name, data) => seen.push(data));
    expect(seen).toEqual(["a\nb"]);
  });
});
