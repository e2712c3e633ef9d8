import { Callout } from "@radix-ui/themes";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useSession } from "../api/useSession";
import { formatPrice, formatQuantity } from "../lib/money";
import { followOrders, type OrderEvent } from "../lib/orderStream";

const VERBS: Record<string, string> = {
  filled: "filled",
  cancelled: "cancelled",
  expired: "expired",
  placed: "placed",
};

export function describeOrderEvent(event: OrderEvent): string | null {
  const order = event.order;
  const verb = VERBS[event.event];
  if (!order || !verb) return null;
  const kind = order.order_type.replace("_", " ");
  const price = event.event === "filled" && order.price ? ` at ${formatPrice(order.price)}` : "";
  return `Your ${kind} order for ${formatQuantity(order.quantity)} ${order.asset_id} was ${verb}${price}.`;
}

/** Follows the order stream while signed in: refreshes what orders change and says so. */
export function OrderUpdates() {
  const state = useSession();
  const client = useQueryClient();
  const [last, setLast] = useState<string | null>(null);
  const signedIn = state.status === "signed-in";
  useEffect(() => {
    if (!signedIn) return;
    const refresh = () => {
      for (const key of [["orders"], ["portfolio"], ["balance"], ["history"], ["ledger"], ["asset-trades"]]) {
        void client.invalidateQueries({ queryKey: key });
      }
    };
    return followOrders((event) => {
      refresh();
      const text = describeOrderEvent(event);
      if (text && event.event !== "placed") setLast(text);
    }, refresh);
  }, [signedIn, client]);
  if (!last) return <div aria-live="polite" className="visually-hidden" />;
  return (
    <div aria-live="polite" className="order-toast">
      <Callout.Root color="indigo" size="1" data-testid="order-update">
        <Callout.Text>{last}</Callout.Text>
      </Callout.Root>
    </div>
  );
}
