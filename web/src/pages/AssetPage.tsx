import { ArrowLeftIcon } from "@radix-ui/react-icons";
import { Button, Card, DataList, Flex, Grid, Heading, Skeleton, Text } from "@radix-ui/themes";
import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { Area, AreaChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { usePortfolio, useAsset } from "../api/queries";
import { session } from "../api/session";
import type { Page } from "../api/types";
import { useSession } from "../api/useSession";
import { Change } from "../components/Change";
import { ErrorNotice } from "../components/ErrorNotice";
import { EmptyState } from "../components/States";
import { TradeTicket } from "../components/TradeTicket";
import { formatCompactUsd, formatPrice, formatQuantity, formatUsd, toChartNumber } from "../lib/money";
import { useLivePrices } from "../lib/prices";
import { formatDateTime, formatTime } from "../lib/time";

interface AssetTrade {
  asset_id: string;
  transaction_type: string;
  quantity: string;
  price: string;
  total_amount: string;
  order_id: string;
  status: string;
  timestamp: string;
}

function PriceChart({ points }: { points: { t: number; price: string }[] }) {
  if (points.length < 2) {
    return (
      <Flex className="chart-box" align="center" justify="center">
        <Text color="gray">The chart fills in as live prices arrive…</Text>
      </Flex>
    );
  }
  const data = points.map((p) => ({ t: p.t, v: toChartNumber(p.price), label: formatPrice(p.price) }));
  const first = points[0];
  const last = points[points.length - 1];
  return (
    <figure className="chart-box" aria-label={`Price from ${first ? formatPrice(first.price) : ""} to ${last ? formatPrice(last.price) : ""} since this page opened`}>
      <ResponsiveContainer width="100%" height="100%">
        <AreaChart data={data} margin={{ top: 8, right: 32, bottom: 0, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="var(--gray-a5)" />
          <XAxis dataKey="t" type="number" domain={["dataMin", "dataMax"]} tickFormatter={(t: number) => formatTime(t)} stroke="var(--gray-11)" fontSize={12} />
          <YAxis domain={["auto", "auto"]} width={80} tickFormatter={(v: number) => formatPrice(String(v))} stroke="var(--gray-11)" fontSize={12} />
          <Tooltip
            labelFormatter={(t) => formatTime(Number(t))}
            formatter={(_v, _n, item) => [(item.payload as { label: string }).label, "Price"]}
            contentStyle={{ background: "var(--color-panel-solid)", border: "1px solid var(--gray-a6)" }}
          />
          <Area type="monotone" dataKey="v" stroke="var(--accent-9)" fill="var(--accent-a4)" isAnimationActive={false} />
        </AreaChart>
      </ResponsiveContainer>
    </figure>
  );
}

function YourTrades({ assetId }: { assetId: string }) {
  const trades = useQuery({
    queryKey: ["asset-trades", assetId],
    queryFn: ({ signal }) => session.request<Page<AssetTrade>>(`/api/v1/assets/${assetId}/transactions`, { query: { limit: 10 }, signal }),
  });
  if (trades.isPending) return <Skeleton height="80px" />;
  if (trades.isError) return <ErrorNotice error={trades.error} onRetry={() => void trades.refetch()} />;
  if (trades.data.data.length === 0) return <EmptyState title={`No ${assetId} trades yet`} />;
  return (
    <ul className="trade-list" aria-label={`Your ${assetId} trades, newest first`}>
      {trades.data.data.map((t) => (
        <li key={t.order_id}>
          <Text size="2" color="gray">
            {formatDateTime(t.timestamp)}
          </Text>{" "}
          <Text size="2" weight="medium">
            {t.transaction_type === "SELL" ? "Sold" : "Bought"} {formatQuantity(t.quantity)} at {formatPrice(t.price)}
          </Text>{" "}
          <Text size="2" className="num">
            = {formatUsd(t.total_amount)}
          </Text>
        </li>
      ))}
    </ul>
  );
}

export default function AssetPage() {
  const { assetId = "" } = useParams();
  const id = assetId.toUpperCase();
  const asset = useAsset(id);
  const live = useLivePrices().get(id);
  const state = useSession();
  const signedIn = state.status === "signed-in";
  const portfolio = usePortfolio(signedIn);

  if (asset.isPending) {
    return (
      <Flex direction="column" gap="3" role="status" aria-label="Loading the asset">
        <Skeleton height="40px" width="50%" />
        <Skeleton height="280px" />
      </Flex>
    );
  }
  if (asset.isError) return <ErrorNotice error={asset.error} onRetry={() => void asset.refetch()} />;
  const data = asset.data;
  const price = live?.price ?? data.current_price;
  const holding = portfolio.data?.assets.find((h) => h.asset_id === id);
  const history = live?.history ?? [];

  return (
    <Flex direction="column" gap="4">
      <Button variant="ghost" asChild style={{ alignSelf: "flex-start" }}>
        <Link to="/market">
          <ArrowLeftIcon aria-hidden /> Market
        </Link>
      </Button>
      <Flex justify="between" align="end" wrap="wrap" gap="3">
        <Flex direction="column" gap="1">
          <Heading as="h1" size="7">
            {data.name} <Text color="gray">{data.asset_id}</Text>
          </Heading>
          <Flex gap="3" align="baseline">
            <Text size="6" weight="bold" className="num" data-testid="asset-price">
              {formatPrice(price)}
            </Text>
            <Change value={live?.change24h ?? data.price_change_percentage_24h} />
          </Flex>
        </Flex>
      </Flex>
      <Grid columns={{ initial: "1", md: "3" }} gap="4">
        <Flex direction="column" gap="4" gridColumn={{ md: "span 2" }}>
          <Card>
            <Heading as="h2" size="3" mb="2">
              Price (live)
            </Heading>
            <PriceChart points={history} />
          </Card>
          <Card>
            <Heading as="h2" size="3" mb="2">
              Statistics
            </Heading>
            <DataList.Root orientation={{ initial: "vertical", sm: "horizontal" }}>
              <DataList.Item>
                <DataList.Label>Market cap</DataList.Label>
                <DataList.Value>{data.market_cap ? formatCompactUsd(data.market_cap) : "—"}</DataList.Value>
              </DataList.Item>
              <DataList.Item>
                <DataList.Label>Volume (24h)</DataList.Label>
                <DataList.Value>{data.total_volume_24h ? formatCompactUsd(data.total_volume_24h) : "—"}</DataList.Value>
              </DataList.Item>
              <DataList.Item>
                <DataList.Label>24h high / low</DataList.Label>
                <DataList.Value>
                  {data.high_24h ? formatPrice(data.high_24h) : "—"} / {data.low_24h ? formatPrice(data.low_24h) : "—"}
                </DataList.Value>
              </DataList.Item>
              <DataList.Item>
                <DataList.Label>Circulating supply</DataList.Label>
                <DataList.Value>{data.circulating_supply ? formatQuantity(data.circulating_supply) : "—"}</DataList.Value>
              </DataList.Item>
              <DataList.Item>
                <DataList.Label>Rank</DataList.Label>
                <DataList.Value>#{data.market_cap_rank ?? "—"}</DataList.Value>
              </DataList.Item>
              <DataList.Item>
                <DataList.Label>Category</DataList.Label>
                <DataList.Value>{data.category ?? "—"}</DataList.Value>
              </DataList.Item>
            </DataList.Root>
          </Card>
          {signedIn && (
            <Card>
              <Heading as="h2" size="3" mb="2">
                Your {id} trades
              </Heading>
              <YourTrades assetId={id} />
            </Card>
          )}
        </Flex>
        <Flex direction="column" gap="4">
          {state.status === "unknown" ? (
            <Skeleton height="320px" />
          ) : signedIn ? (
            <TradeTicket
              assetId={id}
              assetName={data.name}
              price={price}
              cash={portfolio.data ? (portfolio.data.available_cash || portfolio.data.cash_balance) : null}
              holding={portfolio.data ? (holding?.available_quantity || holding?.quantity || "0") : null}
            />
          ) : (
            <Card>
              <Flex direction="column" gap="3">
                <Heading as="h2" size="4">
                  Trade {id}
                </Heading>
                <Text color="gray">Sign in or open an account to buy and sell.</Text>
                <Button asChild>
                  <Link to={`/signin?next=/market/${id}`}>Sign in to trade</Link>
                </Button>
              </Flex>
            </Card>
          )}
          {!data.is_active && <Text color="red">Trading in {id} is paused.</Text>}
        </Flex>
      </Grid>
    </Flex>
  );
}
