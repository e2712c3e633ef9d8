import { Badge, Button, Card, Flex, Heading, Select, Table, Text, TextField } from "@radix-ui/themes";
import { useState } from "react";
import { Link } from "react-router";
import { useCancelOrder, useOrders } from "../api/queries";
import type { Order } from "../api/types";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, usePager } from "../components/Pager";
import { EmptyState, TableSkeleton } from "../components/States";
import { ORDER_CANCEL } from "../lib/features";
import { formatPrice, formatQuantity, formatUsd } from "../lib/money";
import { formatDateTime } from "../lib/time";

const TYPES: Record<string, string> = {
  market_buy: "Market buy",
  market_sell: "Market sell",
  limit_buy: "Limit buy",
  limit_sell: "Limit sell",
};
const STATUS_COLOUR: Record<string, "grass" | "amber" | "gray" | "red"> = {
  completed: "grass",
  pending: "amber",
  cancelled: "gray",
  expired: "gray",
  failed: "red",
};

function CancelButton({ order, onError }: { order: Order; onError: (error: unknown) => void }) {
  const cancel = useCancelOrder();
  if (!ORDER_CANCEL || order.status !== "pending") return null;
  return (
    <Button
      size="1"
      variant="soft"
      color="red"
      loading={cancel.isPending}
      onClick={() => {
        cancel.mutate(order.order_id, { onError });
      }}
    >
      Cancel<span className="visually-hidden"> {TYPES[order.order_type] ?? order.order_type} of {order.quantity} {order.asset_id}</span>
    </Button>
  );
}

const STATUSES: Record<string, string> = {
  all: "All statuses",
  open: "Open (resting)",
  completed: "Completed",
  cancelled: "Cancelled",
  expired: "Expired",
};

export default function Orders() {
  const [asset, setAsset] = useState("");
  const [type, setType] = useState("all");
  const [status, setStatus] = useState("all");
  const [cancelError, setCancelError] = useState<unknown>(null);
  const pager = usePager();
  const filters = {
    asset_id: /^[A-Za-z0-9]{1,10}$/.test(asset.trim()) ? asset.trim().toUpperCase() : undefined,
    order_type: type === "all" ? undefined : type,
    status: status === "all" ? undefined : status,
    page_token: pager.token || undefined,
  };
  // Live through the order stream (components/OrderUpdates.tsx reloads every order
  // list on each event and reconnection), so no polling here.
  const orders = useOrders(filters);

  return (
    <Flex direction="column" gap="4">
      <Heading as="h1" size="7">
        Orders
      </Heading>
      <Card>
        <Flex gap="3" wrap="wrap" align="end" asChild>
          <form role="search" aria-label="Filter orders" onSubmit={(e) => {
            e.preventDefault();
          }}>
            <Flex direction="column" gap="1">
              <Text as="label" size="2" htmlFor="filter-asset">
                Asset
              </Text>
              <TextField.Root id="filter-asset" placeholder="e.g. BTC" value={asset} onChange={(e) => {
                setAsset(e.target.value);
                pager.reset();
              }} />
            </Flex>
            <Flex direction="column" gap="1">
              <Text as="label" size="2" id="filter-type-label">
                Type
              </Text>
              <Select.Root value={type} onValueChange={(v) => {
                setType(v);
                pager.reset();
              }}>
                <Select.Trigger aria-labelledby="filter-type-label" />
                <Select.Content>
                  <Select.Item value="all">All types</Select.Item>
                  {Object.entries(TYPES).map(([value, label]) => (
                    <Select.Item key={value} value={value}>
                      {label}
                    </Select.Item>
                  ))}
                </Select.Content>
              </Select.Root>
            </Flex>
            <Flex direction="column" gap="1">
              <Text as="label" size="2" id="filter-status-label">
                Status
              </Text>
              <Select.Root value={status} onValueChange={(v) => {
                setStatus(v);
                pager.reset();
              }}>
                <Select.Trigger aria-labelledby="filter-status-label" />
                <Select.Content>
                  {Object.entries(STATUSES).map(([value, label]) => (
                    <Select.Item key={value} value={value}>
                      {label}
                    </Select.Item>
                  ))}
                </Select.Content>
              </Select.Root>
            </Flex>
          </form>
        </Flex>
      </Card>
      {cancelError !== null && <ErrorNotice error={cancelError} />}
      {orders.isPending && <TableSkeleton label="Loading your orders" />}
      {orders.isError && <ErrorNotice error={orders.error} onRetry={() => void orders.refetch()} />}
      {orders.data && orders.data.data.length === 0 && (
        <EmptyState title={filters.asset_id || filters.order_type || filters.status ? "No order matches these filters" : "No orders yet"}>
          <Link to="/market">Find an asset to trade</Link>
        </EmptyState>
      )}
      {orders.data && orders.data.data.length > 0 && (
        <>
          <div className="table-scroll">
            <Table.Root variant="surface" aria-label="Your orders, newest first" data-testid="orders-table">
              <caption className="visually-hidden">Your orders, newest first</caption>
              <Table.Header>
                <Table.Row>
                  <Table.ColumnHeaderCell>When</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell>Type</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell>Asset</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell justify="end">Quantity</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell justify="end" className="hide-narrow">Price</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell justify="end">Total</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell>Status</Table.ColumnHeaderCell>
                  {ORDER_CANCEL && <Table.ColumnHeaderCell><span className="visually-hidden">Actions</span></Table.ColumnHeaderCell>}
                </Table.Row>
              </Table.Header>
              <Table.Body>
                {orders.data.data.map((order) => (
                  <Table.Row key={order.order_id} data-order-type={order.order_type} data-asset={order.asset_id}>
                    <Table.Cell>{formatDateTime(order.created_at)}</Table.Cell>
                    <Table.Cell>{TYPES[order.order_type] ?? order.order_type}</Table.Cell>
                    <Table.Cell>
                      <Link className="row-link" to={`/market/${order.asset_id}`}>
                        {order.asset_id}
                      </Link>
                    </Table.Cell>
                    <Table.Cell justify="end" className="num">{formatQuantity(order.quantity)}</Table.Cell>
                    <Table.Cell justify="end" className="num hide-narrow">
                      {order.price ? formatPrice(order.price) : order.limit_price ? `limit ${formatPrice(order.limit_price)}` : "—"}
                    </Table.Cell>
                    <Table.Cell justify="end" className="num">
                      {order.status === "pending" && order.held_amount
                        ? `holds ${order.order_type.endsWith("buy") ? formatUsd(order.held_amount) : formatQuantity(order.held_amount)}`
                        : formatUsd(order.total_amount)}
                    </Table.Cell>
                    <Table.Cell>
                      <Badge color={STATUS_COLOUR[order.status] ?? "gray"}>{order.status}</Badge>
                    </Table.Cell>
                    {ORDER_CANCEL && (
                      <Table.Cell>
                        <CancelButton order={order} onError={setCancelError} />
                      </Table.Cell>
                    )}
                  </Table.Row>
                ))}
              </Table.Body>
            </Table.Root>
          </div>
          <Pager pager={pager} hasMore={orders.data.has_more} nextToken={orders.data.next_page_token} busy={orders.isFetching} />
        </>
      )}
    </Flex>
  );
}
