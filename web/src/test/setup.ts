import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

// jsdom lacks these; Radix primitives measure elements and capture pointers with them.
class NoResize {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
}
const jsdom = globalThis as { ResizeObserver?: unknown };
if (typeof jsdom.ResizeObserver === "undefined") jsdom.ResizeObserver = NoResize;
const element = Element.prototype as unknown as Record<string, unknown>;
for (const name of ["scrollIntoView", "releasePointerCapture"]) {
  if (typeof element[name] !== "function") element[name] = () => undefined;
}
if (typeof element.hasPointerCapture !== "function") element.hasPointerCapture = () => false;

afterEach(() => {
  cleanup();
});
