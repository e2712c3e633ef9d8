import { Button, Card, Flex, Grid, Heading, Skeleton, Table, Text } from "@radix-ui/themes";
import { Link, useNavigate } from "react-router";
import { Area, AreaChart, CartesianGrid, Legend, Pie, PieChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { useHistory, usePortfolio } from "../api/queries";
import type { Portfolio as PortfolioData } from "../api/types";
import { ErrorNotice } from "../components/ErrorNotice";
import { CardSkeleton, EmptyState, TableSkeleton } from "../components/States";
import { valueOverTime } from "../lib/history";
import { dec, formatPrice, formatQuantity, formatUsd, toChartNumber } from "../lib/money";
import { useLivePrices } from "../lib/prices";
import { formatDateTime, formatTime } from "../lib/time";

const COLOURS = ["var(--indigo-9)", "var(--amber-9)", "var(--grass-9)", "var(--crimson-9)", "var(--cyan-9)", "var(--orange-9)", "var(--purple-9)", "var(--gray-9)"];

function Stat({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <Card>
      <Flex direction="column" gap="1">
        <Text size="2" color="gray">
          {label}
        </Text>
        <Text size="6" weight="bold" className="num" data-testid={testId}>
          {value}
        </Text>
      </Flex>
    </Card>
  );
}

function Allocation({ data }: { data: PortfolioData }) {
  const slices = [
    ...data.assets.map((h) => ({ name: h.asset_id, value: toChartNumber(h.market_value), label: formatUsd(h.market_value), pct: h.percentage })),
    { name: "Cash", value: toChartNumber(data.cash_balance), label: formatUsd(data.cash_balance), pct: "" },
  ]
    .filter((s) => s.value > 0)
    .map((s, i) => ({ ...s, fill: COLOURS[i % COLOURS.length] }));
  if (slices.length === 0) return <EmptyState title="Nothing to allocate yet" />;
  return (
    <figure className="chart-box" aria-label={`Allocation: ${slices.map((s) => `${s.name} ${s.label}`).join(", ")}`}>
      <ResponsiveContainer width="100%" height="100%">
        <PieChart>
          <Pie data={slices} dataKey="value" nameKey="name" innerRadius="55%" outerRadius="85%" isAnimationActive={false} stroke="var(--color-panel-solid)" />
          <Tooltip formatter={(_v, name, item) => [(item.payload as { label: string }).label, String(name)]} contentStyle={{ background: "var(--color-panel-solid)", border: "1px solid var(--gray-a6)" }} />
          <Legend />
        </PieChart>
      </ResponsiveContainer>
    </figure>
  );
}

function ValueChart({ total }: { total: string }) {
  const history = useHistory();
  if (history.isPending) return <Skeleton height="280px" />;
  if (history.isError) return <ErrorNotice error={history.error} onRetry={() => void history.refetch()} />;
  const points = valueOverTime(history.data.ledger, history.data.orders, { t: Date.now(), value: total });
  if (points.length < 2) return <EmptyState title="Your history starts with your first deposit" />;
  const data = points.map((p) => ({ t: p.t, v: toChartNumber(p.value), label: formatUsd(p.value) }));
  const first = points[0]?.t ?? 0;
  const last = points[points.length - 1]?.t ?? 0;
  // Within two days, times say more than dates.
  const tick = last - first < 2 * 86_400_000 ? (t: number) => formatTime(t) : (t: number) => new Date(t).toLocaleDateString();
  return (
    <figure className="chart-box" aria-label={`Account value from ${data[0]?.label ?? ""} to ${data[data.length - 1]?.label ?? ""}`}>
      <ResponsiveContainer width="100%" height="100%">
        <AreaChart data={data} margin={{ top: 8, right: 32, bottom: 0, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="var(--gray-a5)" />
          <XAxis dataKey="t" type="number" domain={["dataMin", "dataMax"]} tickFormatter={tick} stroke="var(--gray-11)" fontSize={12} />
          <YAxis width={90} tickFormatter={(v: number) => formatUsd(String(Math.round(v)))} stroke="var(--gray-11)" fontSize={12} />
          <Tooltip labelFormatter={(t) => formatDateTime(new Date(Number(t)).toISOString())} formatter={(_v, _n, item) => [(item.payload as { label: string }).label, "Value"]} contentStyle={{ background: "var(--color-panel-solid)", border: "1px solid var(--gray-a6)" }} />
          <Area type="stepAfter" dataKey="v" stroke="var(--accent-9)" fill="var(--accent-a4)" isAnimationActive={false} />
        </AreaChart>
      </ResponsiveContainer>
    </figure>
  );
}

export default function Portfolio() {
  const portfolio = usePortfolio();
  const live = useLivePrices();
  const navigate = useNavigate();
  return (
    <Flex direction="column" gap="4">
      <Heading as="h1" size="7">
        Portfolio
      </Heading>
      {portfolio.isError && <ErrorNotice error={portfolio.error} onRetry={() => void portfolio.refetch()} />}
      <Grid columns={{ initial: "1", sm: "3" }} gap="3">
        {portfolio.isPending ? (
          <>
            <CardSkeleton />
            <CardSkeleton />
            <CardSkeleton />
          </>
        ) : portfolio.data ? (
          <>
            <Stat label="Total value" value={formatUsd(portfolio.data.total_value)} testId="total-value" />
            <Stat label="Cash" value={formatUsd(portfolio.data.cash_balance)} testId="cash-balance" />
            <Stat label="Holdings" value={formatUsd(portfolio.data.total_asset_value)} testId="holdings-value" />
          </>
        ) : null}
      </Grid>
      {portfolio.isPending && <TableSkeleton label="Loading your holdings" />}
      {portfolio.data && portfolio.data.assets.length === 0 && (
        <EmptyState title="You hold no assets yet">
          <Flex direction="column" gap="3" align="center">
            <span>{dec(portfolio.data.cash_balance).gt(0) ? "Pick an asset in the market to buy your first." : "Add cash, then buy your first asset."}</span>
            <Flex gap="2">
              <Button onClick={() => void navigate("/cash")}>Add cash</Button>
              <Button variant="soft" onClick={() => void navigate("/market")}>
                Browse the market
              </Button>
            </Flex>
          </Flex>
        </EmptyState>
      )}
      {portfolio.data && portfolio.data.assets.length > 0 && (
        <Card>
          <Heading as="h2" size="4" mb="3">
            Holdings
          </Heading>
          <div className="table-scroll">
            <Table.Root aria-label="Holdings" data-testid="holdings">
              <caption className="visually-hidden">Holdings</caption>
              <Table.Header>
                <Table.Row>
                  <Table.ColumnHeaderCell>Asset</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell justify="end">Quantity</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell justify="end">Price</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell justify="end">Value</Table.ColumnHeaderCell>
                  <Table.ColumnHeaderCell justify="end">Share</Table.ColumnHeaderCell>
                </Table.Row>
              </Table.Header>
              <Table.Body>
                {portfolio.data.assets.map((h) => {
                  const price = live.get(h.asset_id)?.price ?? h.current_price;
                  return (
                    <Table.Row key={h.asset_id} data-asset={h.asset_id}>
                      <Table.RowHeaderCell>
                        <Link className="row-link" to={`/market/${h.asset_id}`}>
                          {h.asset_id}
                        </Link>
                      </Table.RowHeaderCell>
                      <Table.Cell justify="end" className="num" data-testid="holding-quantity">
                        {formatQuantity(h.quantity)}
                      </Table.Cell>
                      <Table.Cell justify="end" className="num">{formatPrice(price)}</Table.Cell>
                      <Table.Cell justify="end" className="num">{formatUsd(dec(h.quantity).times(dec(price)).round(2, 0))}</Table.Cell>
                      <Table.Cell justify="end" className="num">{h.percentage} %</Table.Cell>
                    </Table.Row>
                  );
                })}
              </Table.Body>
            </Table.Root>
          </div>
        </Card>
      )}
      {portfolio.data && (
        <Grid columns={{ initial: "1", md: "2" }} gap="4">
          <Card>
            <Heading as="h2" size="4" mb="2">
              Allocation
            </Heading>
            <Allocation data={portfolio.data} />
          </Card>
          <Card>
            <Heading as="h2" size="4" mb="2">
              Value over time
            </Heading>
            <Text size="1" color="gray" as="p" mb="2">
              Cash plus holdings at the price of your last trade in each, from your history.
            </Text>
            <ValueChart total={portfolio.data.total_value} />
          </Card>
        </Grid>
      )}
    </Flex>
  );
}
