import { ArrowRightIcon, LightningBoltIcon, LockClosedIcon, MixIcon } from "@radix-ui/react-icons";
import { Button, Card, Flex, Grid, Heading, Skeleton, Text } from "@radix-ui/themes";
import { Link, useNavigate } from "react-router";
import { useSession } from "../api/useSession";
import { Change } from "../components/Change";
import { ErrorNotice } from "../components/ErrorNotice";
import { useMarket } from "../lib/market";
import { formatPrice } from "../lib/money";

const POINTS = [
  { icon: LightningBoltIcon, title: "Live prices", text: "Quotes stream in as they change; orders fill at the price you see." },
  { icon: LockClosedIcon, title: "Safe by design", text: "Exact decimal money, no double orders on a retry, sessions you can end at once." },
  { icon: MixIcon, title: "Your whole portfolio", text: "Cash, holdings, allocation and history in one place." },
];

export default function Landing() {
  const market = useMarket();
  const state = useSession();
  const navigate = useNavigate();
  const top = market.rows.slice(0, 6);
  return (
    <Flex direction="column" gap="6">
      <Flex direction="column" gap="3" py="4">
        <Heading as="h1" size="8">
          Trade BTC, ETH and more at live prices
        </Heading>
        <Text size="4" color="gray">
          Open an account in a minute, add cash, and buy or sell with a clear preview of every order.
        </Text>
        <Flex gap="3" wrap="wrap">
          {state.status === "signed-in" ? (
            <Button size="3" onClick={() => void navigate("/portfolio")}>
              Go to your portfolio <ArrowRightIcon aria-hidden />
            </Button>
          ) : (
            <Button size="3" onClick={() => void navigate("/register")}>
              Open an account <ArrowRightIcon aria-hidden />
            </Button>
          )}
          <Button size="3" variant="soft" onClick={() => void navigate("/market")}>
            See the market
          </Button>
        </Flex>
      </Flex>
      <section aria-labelledby="snapshot-title">
        <Heading as="h2" size="5" id="snapshot-title" mb="3">
          Market snapshot
        </Heading>
        {market.isError && <ErrorNotice error={market.error} onRetry={() => void market.refetch()} />}
        <Grid columns={{ initial: "2", sm: "3", md: "6" }} gap="3">
          {market.isPending &&
            Array.from({ length: 6 }, (_, i) => <Skeleton key={i} height="84px" />)}
          {top.map((row) => (
            <Card key={row.asset.asset_id} asChild>
              <Link to={`/market/${row.asset.asset_id}`}>
                <Flex direction="column" gap="1">
                  <Text weight="bold">
                    {row.asset.asset_id} <span className="visually-hidden">{row.asset.name}</span>
                  </Text>
                  <Text className="num">{formatPrice(row.price)}</Text>
                  <Change value={row.change24h} />
                </Flex>
              </Link>
            </Card>
          ))}
        </Grid>
      </section>
      <Grid columns={{ initial: "1", sm: "3" }} gap="4">
        {POINTS.map(({ icon: Icon, title, text }) => (
          <Card key={title}>
            <Flex direction="column" gap="2">
              <Icon aria-hidden width={20} height={20} />
              <Heading as="h3" size="3">
                {title}
              </Heading>
              <Text color="gray">{text}</Text>
            </Flex>
          </Card>
        ))}
      </Grid>
    </Flex>
  );
}
