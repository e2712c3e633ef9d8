import { AlertDialog, Box, Button, Callout, Card, DataList, Flex, Heading, SegmentedControl, Select, Text } from "@radix-ui/themes";
import { useState, type SyntheticEvent } from "react";
import { idempotencyKey, usePlaceOrder } from "../api/queries";
import type { Order, OrderType, PlaceOrder } from "../api/types";
import { LIMIT_ORDERS, MAX_ORDER_VALUE } from "../lib/features";
import { dec, formatPrice, formatQuantity, formatUsd, orderTotal, parseDecimalInput, type Side } from "../lib/money";
import * as rules from "../lib/rules";
import { ErrorNotice } from "./ErrorNotice";
import { Field } from "./Field";

type Kind = "market" | "limit";
const TIME_IN_FORCE = [
  { value: "gtc", label: "Good till cancelled" },
  { value: "day", label: "Day (until 00:00 UTC)" },
  { value: "gtd", label: "Good till date" },
  { value: "ioc", label: "Immediate or cancel" },
  { value: "fok", label: "Fill or kill" },
];

export interface TicketProps {
  assetId: string;
  assetName: string;
  price: string;
  cash: string | null;
  holding: string | null;
}

export function TradeTicket({ assetId, assetName, price, cash, holding }: TicketProps) {
  const [side, setSide] = useState<Side>("buy");
  const [kind, setKind] = useState<Kind>("market");
  const [quantity, setQuantity] = useState("");
  const [limit, setLimit] = useState("");
  const [timeInForce, setTimeInForce] = useState("gtc");
  const [expires, setExpires] = useState("");
  const [touched, setTouched] = useState(false);
  const [confirming, setConfirming] = useState(false);
  // One key per intended order: a double click or a retry of this confirmation sends
  // the same key, and the server answers the first result instead of buying twice.
  const [key, setKey] = useState(idempotencyKey);
  const [placed, setPlaced] = useState<Order | null>(null);
  const place = usePlaceOrder();

  const edit = (setter: (v: string) => void) => (value: string) => {
    setter(value);
    setKey(idempotencyKey());
    setPlaced(null);
    place.reset();
  };

  const qty = parseDecimalInput(quantity);
  const limitPrice = parseDecimalInput(limit);
  const unit = kind === "limit" && limitPrice ? limitPrice : dec(price);
  const total = qty ? orderTotal(side, qty, unit) : null;
  const quantityError = touched ? rules.quantity(quantity) : null;
  const priceError = touched ? (kind === "limit" ? rules.required("Limit price")(limit) ?? rules.price(limit) : rules.price(limit)) : null;
  const expiryProblem = (force = touched): string | null => {
    if (!force || kind !== "limit" || timeInForce !== "gtd") return null;
    const when = Date.parse(expires);
    return Number.isNaN(when) || when <= Date.now() ? "Choose a time in the future." : null;
  };
  const overMax = total !== null && total.gt(dec(MAX_ORDER_VALUE));
  const cashAfter = cash !== null && total !== null ? (side === "buy" ? dec(cash).minus(total) : dec(cash).plus(total)) : null;
  const holdingAfter = holding !== null && qty ? (side === "buy" ? dec(holding).plus(qty) : dec(holding).minus(qty)) : null;
  const short = side === "buy" ? cashAfter?.lt(0) ?? false : holdingAfter?.lt(0) ?? false;
  const verb = side === "buy" ? "Buy" : "Sell";

  const order = (): PlaceOrder => {
    const base = { order_type: `${kind}_${side}` as OrderType, asset_id: assetId, quantity: quantity.trim() };
    if (kind === "limit") {
      const order = { ...base, price: limit.trim(), time_in_force: timeInForce };
      return timeInForce === "gtd" ? { ...order, expires_at: new Date(expires).toISOString() } : order;
    }
    return limit.trim() ? { ...base, price: limit.trim() } : base;
  };

  const review = (event: SyntheticEvent) => {
    event.preventDefault();
    setTouched(true);
    const priceProblem = kind === "limit" ? rules.required("Limit price")(limit) ?? rules.price(limit) : rules.price(limit);
    if (rules.quantity(quantity) || priceProblem || expiryProblem(true)) return;
    setConfirming(true);
  };

  const confirm = () => {
    place.mutate(
      { order: order(), key },
      {
        onSuccess: (answer) => {
          setPlaced(answer.data);
          setConfirming(false);
          setQuantity("");
          setLimit("");
          setTouched(false);
          setKey(idempotencyKey());
        },
        onError: () => {
          setConfirming(false);
        },
      },
    );
  };

  return (
    <Card size="2" asChild>
      <section aria-labelledby="ticket-title">
        <form onSubmit={review} noValidate>
          <Flex direction="column" gap="3">
            <Heading as="h2" size="4" id="ticket-title">
              Trade {assetId}
            </Heading>
            <SegmentedControl.Root
              value={side}
              onValueChange={(v) => {
                edit(() => undefined)(quantity);
                setSide(v as Side);
              }}
              aria-label="Side"
            >
              <SegmentedControl.Item value="buy">Buy</SegmentedControl.Item>
              <SegmentedControl.Item value="sell">Sell</SegmentedControl.Item>
            </SegmentedControl.Root>
            <Flex direction="column" gap="1">
              <Text as="label" size="2" weight="medium" id="order-kind-label">
                Order type
              </Text>
              <Select.Root value={kind} onValueChange={(v) => {
                setKind(v as Kind);
                setKey(idempotencyKey());
              }}>
                <Select.Trigger aria-labelledby="order-kind-label" />
                <Select.Content>
                  <Select.Item value="market">Market (now, at the live price)</Select.Item>
                  <Select.Item value="limit" disabled={!LIMIT_ORDERS}>
                    Limit{LIMIT_ORDERS ? "" : " (coming soon)"}
                  </Select.Item>
                </Select.Content>
              </Select.Root>
            </Flex>
            <Field
              label={`Quantity (${assetId})`}
              value={quantity}
              onChange={edit(setQuantity)}
              error={quantityError}
              inputMode="decimal"
              autoComplete="off"
              placeholder="0.01"
              hint={holding !== null ? `You hold ${formatQuantity(holding)} ${assetId}.` : undefined}
            />
            <Field
              label={kind === "limit" ? "Limit price (USD)" : side === "buy" ? "Highest price I accept (optional)" : "Lowest price I accept (optional)"}
              value={limit}
              onChange={edit(setLimit)}
              error={priceError}
              inputMode="decimal"
              autoComplete="off"
              hint={kind === "market" ? "Protection: the order is refused if the price moves past it." : undefined}
            />
            {kind === "limit" && (
              <Flex direction="column" gap="1">
                <Text as="label" size="2" weight="medium" id="tif-label">
                  Time in force
                </Text>
                <Select.Root
                  value={timeInForce}
                  onValueChange={(v) => {
                    setTimeInForce(v);
                    setKey(idempotencyKey());
                  }}
                >
                  <Select.Trigger aria-labelledby="tif-label" />
                  <Select.Content>
                    {TIME_IN_FORCE.map((t) => (
                      <Select.Item key={t.value} value={t.value}>
                        {t.label}
                      </Select.Item>
                    ))}
                  </Select.Content>
                </Select.Root>
              </Flex>
            )}
            {kind === "limit" && timeInForce === "gtd" && (
              <Field
                label="Expires (your local time)"
                type="datetime-local"
                value={expires}
                onChange={(v) => {
                  setExpires(v);
                  setKey(idempotencyKey());
                }}
                error={expiryProblem()}
              />
            )}
            <DataList.Root size="2" aria-label="Order preview">
              <DataList.Item>
                <DataList.Label>{kind === "limit" ? "Limit price" : "Live price"}</DataList.Label>
                <DataList.Value className="num">{formatPrice(kind === "limit" && limitPrice ? limitPrice : price)}</DataList.Value>
              </DataList.Item>
              <DataList.Item>
                <DataList.Label>Estimated {side === "buy" ? "cost" : "proceeds"}</DataList.Label>
                <DataList.Value className="num" data-testid="preview-total">
                  {total ? formatUsd(total) : "—"}
                </DataList.Value>
              </DataList.Item>
              {cashAfter !== null && (
                <DataList.Item>
                  <DataList.Label>Cash after</DataList.Label>
                  <DataList.Value className="num">{formatUsd(cashAfter)}</DataList.Value>
                </DataList.Item>
              )}
              {holdingAfter !== null && (
                <DataList.Item>
                  <DataList.Label>{assetId} after</DataList.Label>
                  <DataList.Value className="num">{formatQuantity(holdingAfter)}</DataList.Value>
                </DataList.Item>
              )}
              <DataList.Item>
                <DataList.Label>Max order value</DataList.Label>
                <DataList.Value className="num">{formatUsd(MAX_ORDER_VALUE)}</DataList.Value>
              </DataList.Item>
            </DataList.Root>
            {(overMax || short) && (
              <Callout.Root color="amber" size="1" role="status">
                <Callout.Text>
                  {overMax
                    ? `This order is above the maximum of ${formatUsd(MAX_ORDER_VALUE)}.`
                    : side === "buy"
                      ? "You do not have enough cash for this order."
                      : `You hold less ${assetId} than this.`}
                </Callout.Text>
              </Callout.Root>
            )}
            {place.isError && <ErrorNotice error={place.error} />}
            {placed && (
              <Callout.Root color="grass" role="status" data-testid="order-placed">
                <Callout.Text>
                  {placed.status === "pending"
                    ? `Your limit ${placed.order_type.endsWith("buy") ? "buy" : "sell"} of ${formatQuantity(placed.quantity)} ${placed.asset_id} at ${formatPrice(placed.limit_price || limit || "0")} is resting${placed.held_amount ? ` (holding ${placed.order_type.endsWith("buy") ? formatUsd(placed.held_amount) : `${formatQuantity(placed.held_amount)} ${placed.asset_id}`})` : ""}. Cancel it from Orders.`
                    : `${placed.order_type.endsWith("buy") ? "Bought" : "Sold"} ${formatQuantity(placed.quantity)} ${placed.asset_id} at ${formatPrice(placed.price)}: ${formatUsd(placed.total_amount)} (${placed.status}).`}
                </Callout.Text>
              </Callout.Root>
            )}
            <Button type="submit" size="3" color={side === "buy" ? "grass" : "red"}>
              Review {verb.toLowerCase()} order
            </Button>
          </Flex>
        </form>
        <AlertDialog.Root open={confirming} onOpenChange={(open) => {
          if (!place.isPending) setConfirming(open);
        }}>
          <AlertDialog.Content maxWidth="440px">
            <AlertDialog.Title>
              {verb} {quantity.trim()} {assetId}?
            </AlertDialog.Title>
            <AlertDialog.Description size="2">
              {kind === "market"
                ? `${assetName} at the live price, now about ${formatPrice(price)}. Estimated ${side === "buy" ? "cost" : "proceeds"}: ${total ? formatUsd(total) : "—"}.`
                : `A ${timeInForce.toUpperCase()} limit order at ${formatPrice(limit || "0")}.`}
              {kind === "market" && limit.trim() !== "" && ` Refused if the price is ${side === "buy" ? "above" : "below"} ${formatPrice(limit)}.`}
            </AlertDialog.Description>
            <Box mt="4">
              <Flex gap="3" justify="end">
                <AlertDialog.Cancel>
                  <Button variant="soft" color="gray" disabled={place.isPending}>
                    Cancel
                  </Button>
                </AlertDialog.Cancel>
                <Button color={side === "buy" ? "grass" : "red"} loading={place.isPending} onClick={confirm}>
                  Confirm {verb.toLowerCase()}
                </Button>
              </Flex>
            </Box>
          </AlertDialog.Content>
        </AlertDialog.Root>
      </section>
    </Card>
  );
}
