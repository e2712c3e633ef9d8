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

function CancelButton({ order }: { order: Order }) {
  const cancel = useCancelOrder();
  if (!ORDER_CANCEL || order.status !== "pending") return null;
  return (
    <Button size="1" variant="soft" color="red" loading={cancel.isPending} onClick={() => {
      cancel.mutate(order.order_id);
    }}>
      Cancel<span className="visually-hidden"> order {order.order_id}</span>
    </Button>
  );
}

export default function Orders() {
  const [asset, setAsset] = useState("");
  const [type, setType] = useState("all");
  const pager = usePager();
  const filters = {
    asset_id: /^[A-Za-z0-9]{1,10}$/.test(asset.trim()) ? asset.trim().toUpperCase() : undefined,
    order_type: type === "all" ? undefined : type,
    page_token: pager.token || undefined,
  };
  // Until the order stream exists, the list refreshes itself every 10 s.
  const orders = useOrders(filters, 10_000);

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
          </form>
        </Flex>
      </Card>
      {orders.isPending && <TableSkeleton label="Loading your orders" />}
      {orders.isError && <ErrorNotice error={orders.error} onRetry={() => void orders.refetch()} />}
      {orders.data && orders.data.data.length === 0 && (
        <EmptyState title={filters.asset_id || filters.order_type ? "No order matches these filters" : "No orders yet"}>
          <Link to="/market">Find an asset to trade</Link>
        </EmptyState>
      )}
      {orders.data && orders.data.data.length > 0 && (
        <>
          <div className="table-scroll">
            <Table.Root variant="surface" aria-label="Your orders, newest first" data-testid="orders-table">
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
                    <Table.Cell justify="end" className="num hide-narrow">{formatPrice(order.price)}</Table.Cell>
                    <Table.Cell justify="end" className="num">{formatUsd(order.total_amount)}</Table.Cell>
                    <Table.Cell>
                      <Badge color={STATUS_COLOUR[order.status] ?? "gray"}>{order.status}</Badge>
                    </Table.Cell>
                    {ORDER_CANCEL && (
                      <Table.Cell>
                        <CancelButton order={order} />
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
