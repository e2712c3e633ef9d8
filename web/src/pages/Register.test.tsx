import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { bodyOf, json, nth, renderWithApp, scriptedFetch } from "../test/render";
import Register from "./Register";

afterEach(() => {
  vi.unstubAllGlobals();
});

async function fill(user: ReturnType<typeof userEvent.setup>, values: Record<string, string>) {
  for (const [label, value] of Object.entries(values)) {
    const input = screen.getByLabelText(label, { exact: true, selector: "input" });
    await user.clear(input);
    await user.type(input, value);
  }
}

describe("Register", () => {
  it("shows the rules inline and sends nothing while they are broken", async () => {
    const { fn, calls } = scriptedFetch();
    vi.stubGlobal("fetch", fn);
    const user = userEvent.setup();
    renderWithApp(<Register />);
    await fill(user, { Username: "ada", Password: "short" });
    expect(screen.getByText(/12 to 128 characters/)).toHaveTextContent("(not yet)");
    await user.click(screen.getByRole("button", { name: "Create account" }));
    expect(screen.getByLabelText("Username", { selector: "input" })).toHaveAttribute("aria-invalid", "true");
    expect(screen.getAllByRole("alert").map((a) => a.textContent)).toEqual(
      expect.arrayContaining(["1 to 50 letters, spaces, apostrophes or hyphens.", "6 to 30 letters, digits or underscores."]),
    );
    expect(calls).toHaveLength(0);
  });

  it("puts the server's violations on their fields, with the request id", async () => {
    const { fn, calls } = scriptedFetch(
      json(422, {
        detail: "email: not a valid address",
        code: "VALIDATION_FAILED",
        request_id: "req-42",
        violations: [{ field: "email", description: "not a valid address" }],
      }),
    );
    vi.stubGlobal("fetch", fn);
    const user = userEvent.setup();
    renderWithApp(<Register />);
    await fill(user, {
      "First name": "Ada",
      "Last name": "Lovelace",
      Username: "ada_lovelace",
      Email: "ada@example.invalid",
      Password: "Correct-Horse-42!",
    });
    await user.click(screen.getByRole("button", { name: "Create account" }));
    expect(await screen.findByText("Not a valid address.")).toBeInTheDocument();
    expect(screen.getByLabelText("Email", { selector: "input" })).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByText("req-42")).toBeInTheDocument();
    expect(bodyOf(nth(calls, 0))).toMatchObject({ username: "ada_lovelace", email: "ada@example.invalid" });
  });
});
