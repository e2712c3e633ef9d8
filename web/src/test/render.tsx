import { Theme } from "@radix-ui/themes";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter } from "react-router";

/** A component with the app's providers around it. */
export function renderWithApp(ui: ReactElement, path = "/") {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <Theme>
        <MemoryRouter initialEntries={[path]}>{ui}</MemoryRouter>
      </Theme>
    </QueryClientProvider>,
  );
}

/** A fetch that answers from a script, and remembers every request. */
export function urlOf(input: RequestInfo | URL): string {
  return input instanceof Request ? input.url : input.toString();
}

export interface Call {
  url: string;
  init: RequestInit;
}

export function scriptedFetch(...answers: (Response | Error | (() => Response))[]) {
  const calls: Call[] = [];
  const fn = (input: RequestInfo | URL, init: RequestInit = {}) => {
    calls.push({ url: urlOf(input), init });
    const next = answers.shift();
    if (next === undefined) return Promise.reject(new Error(`unexpected request ${urlOf(input)}`));
    if (next instanceof Error) return Promise.reject(next);
    return Promise.resolve(typeof next === "function" ? next() : next);
  };
  return { fn, calls };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

export function header(init: RequestInit, name: string): string | null {
  return new Headers(init.headers).get(name);
}

/** The i-th recorded call (the test fails plainly when there is none). */
export function nth(calls: Call[], i: number): Call {
  const call = calls[i];
  if (!call) throw new Error(`no call #${i}; calls: ${calls.map((c) => c.url).join(", ")}`);
  return call;
}

export function bodyOf(call: Call): unknown {
  return JSON.parse(call.init.body as string);
}
