import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { session } from "../api/session";
import { bodyOf, header, json, nth, renderWithApp, scriptedFetch } from "../test/render";
import { TradeTicket } from "./TradeTicket";

const ORDER = {
  data: {
    order_id: "o-1",
    order_type: "market_buy",
    asset_id: "ETH",
    quantity: "0.33300000",
    price: "10.01",
    status: "completed",
    total_amount: "3.34",
    created_at: "2026-12-01T00:00:00Z",
  },
};

afterEach(() => {
  vi.unstubAllGlobals();
});

function ticket() {
  return renderWithApp(<TradeTicket assetId="ETH" assetName="Ethereum" price="10.01" cash="100.00" holding="1" />);
}

describe("TradeTicket", () => {
  it("previews the total with the server's rounding and what is left after", async () => {
    const user = userEvent.setup();
    ticket();
    await user.type(screen.getByLabelText("Quantity (ETH)", { selector: "input" }), "0.333");
    const preview = screen.getByLabelText("Order preview");
    expect(within(preview).getByTestId("preview-total")).toHaveTextContent("$3.34"); // up
    expect(preview).toHaveTextContent("Cash after$96.66");
    await user.click(screen.getByRole("radio", { name: "Sell" }));
    expect(within(preview).getByTestId("preview-total")).toHaveTextContent("$3.33"); // down
    expect(preview).toHaveTextContent("ETH after0.667");
  });

  it("asks for confirmation and retries with the same Idempotency-Key", async () => {
    await signedIn();
    const { fn, calls } = scriptedFetch(new TypeError("connection reset"), json(201, ORDER));
    vi.stubGlobal("fetch", fn);
    const user = userEvent.setup();
    ticket();
    await user.type(screen.getByLabelText("Quantity (ETH)", { selector: "input" }), "0.333");
    await user.click(screen.getByRole("button", { name: "Review buy order" }));
    const dialog = await screen.findByRole("alertdialog");
    expect(dialog).toHaveTextContent("Buy 0.333 ETH?");
    await user.click(within(dialog).getByRole("button", { name: "Confirm buy" }));
    expect(await screen.findByTestId("error-message")).toHaveTextContent(/cannot be reached/);
    await user.click(screen.getByRole("button", { name: "Review buy order" }));
    await user.click(within(await screen.findByRole("alertdialog")).getByRole("button", { name: "Confirm buy" }));
    expect(await screen.findByTestId("order-placed")).toHaveTextContent("Bought 0.333 ETH");
    const keys = calls.map((c) => header(c.init, "Idempotency-Key"));
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
    expect(bodyOf(nth(calls, 0))).toEqual({ order_type: "market_buy", asset_id: "ETH", quantity: "0.333" });
  });

  it("refuses bad input before asking", async () => {
    const user = userEvent.setup();
    ticket();
    await user.type(screen.getByLabelText("Quantity (ETH)", { selector: "input" }), "0.0001");
    await user.click(screen.getByRole("button", { name: "Review buy order" }));
    expect(screen.getByText("At least 0.001.")).toBeInTheDocument();
    expect(screen.queryByRole("alertdialog")).toBeNull();
  });
});

async function signedIn() {
  vi.stubGlobal("fetch", scriptedFetch(json(200, { access_token: "A1", token_type: "bearer", expires_in: 3600 })).fn);
  await session.signIn("u", "p");
}
