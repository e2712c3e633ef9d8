import { Badge, Button, Card, Flex, Grid, Heading, Skeleton, Table, Tabs, Text } from "@radix-ui/themes";
import Big from "big.js";
import { useState, type SyntheticEvent } from "react";
import { idempotencyKey, useBalance, useCashMove, useLedger } from "../api/queries";
import { useQuery } from "@tanstack/react-query";
import { session } from "../api/session";
import type { Ledger } from "../api/types";
import { ErrorNotice } from "../components/ErrorNotice";
import { Field } from "../components/Field";
import { Pager, usePager } from "../components/Pager";
import { EmptyState, TableSkeleton } from "../components/States";
import { DAILY_LIMITS } from "../lib/features";
import { dec, formatUsd } from "../lib/money";
import * as rules from "../lib/rules";
import { formatDateTime, utcDay } from "../lib/time";

const LABELS: Record<string, string> = {
  deposit: "Deposit",
  DEPOSIT: "Deposit",
  withdraw: "Withdrawal",
  WITHDRAW: "Withdrawal",
  WITHDRAWAL: "Withdrawal",
  order_payment: "Buy",
  BUY: "Buy",
  order_sale: "Sale",
  SELL: "Sale",
  system_adjustment: "Adjustment",
};

function kindOf(type: string): "deposit" | "withdraw" | null {
  const label = LABELS[type];
  return label === "Deposit" ? "deposit" : label === "Withdrawal" ? "withdraw" : null;
}

/** What today's (UTC) deposits and withdrawals used of the daily limits, from the ledger. */
function useToday() {
  return useQuery({
    queryKey: ["ledger-today"],
    queryFn: async ({ signal }) => {
      const today = utcDay(new Date());
      const used = { deposit: new Big(0), withdraw: new Big(0) };
      let token = "";
      for (let page = 0; page < 5; page += 1) {
        const answer = await session.request<Ledger>("/api/v1/balance/transactions", { query: { limit: 100, page_token: token }, signal });
        let older = false;
        for (const entry of answer.transactions) {
          if (utcDay(entry.created_at) !== today) {
            older = true;
            continue;
          }
          const kind = kindOf(entry.transaction_type);
          if (kind) used[kind] = used[kind].plus(dec(entry.amount).abs());
        }
        if (older || !answer.has_more || !answer.next_page_token) break;
        token = answer.next_page_token;
      }
      return used;
    },
  });
}

function MoveForm({ kind, remaining, balance }: { kind: "deposit" | "withdraw"; remaining: Big | null; balance: string | null }) {
  const [amount, setAmount] = useState("");
  const [touched, setTouched] = useState(false);
  const [key, setKey] = useState(idempotencyKey);
  const move = useCashMove(kind);
  const [done, setDone] = useState<string | null>(null);
  const error = touched ? rules.amount(amount) : null;
  const verb = kind === "deposit" ? "Deposit" : "Withdraw";

  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    setTouched(true);
    if (rules.amount(amount)) return;
    move.mutate(
      { amount: amount.trim(), key },
      {
        onSuccess: (answer) => {
          setDone(`${verb === "Deposit" ? "Deposited" : "Withdrew"} ${formatUsd(amount.trim())}. Cash now ${formatUsd(answer.current_balance)}.`);
          setAmount("");
          setTouched(false);
          setKey(idempotencyKey());
        },
      },
    );
  };

  return (
    <form onSubmit={submit} noValidate aria-label={verb}>
      <Flex direction="column" gap="3">
        <Field
          label={`Amount to ${verb.toLowerCase()} (USD)`}
          value={amount}
          onChange={(v) => {
            setAmount(v);
            setKey(idempotencyKey());
            setDone(null);
            move.reset();
          }}
          error={error}
          inputMode="decimal"
          autoComplete="off"
          placeholder="1000.00"
          hint={
            <>
              {remaining !== null && <>Left today (UTC): {formatUsd(remaining.lt(0) ? new Big(0) : remaining)} of {formatUsd(DAILY_LIMITS[kind])}. </>}
              {kind === "withdraw" && balance !== null && <>Available: {formatUsd(balance)}.</>}
            </>
          }
        />
        {move.isError && <ErrorNotice error={move.error} />}
        {done && (
          <Text color="grass" role="status" data-testid="cash-done">
            {done}
          </Text>
        )}
        <Button type="submit" loading={move.isPending}>
          {verb}
        </Button>
      </Flex>
    </form>
  );
}

export default function Cash() {
  const balance = useBalance();
  const today = useToday();
  const pager = usePager();
  const ledger = useLedger(pager.token);
  const remaining = (kind: "deposit" | "withdraw") => (today.data ? dec(DAILY_LIMITS[kind]).minus(today.data[kind]) : null);
  return (
    <Flex direction="column" gap="4">
      <Heading as="h1" size="7">
        Cash
      </Heading>
      <Grid columns={{ initial: "1", md: "2" }} gap="4">
        <Card>
          <Flex direction="column" gap="1">
            <Text color="gray" size="2">
              Cash balance
            </Text>
            {balance.isPending ? (
              <Skeleton height="32px" width="50%" />
            ) : balance.isError ? (
              <ErrorNotice error={balance.error} onRetry={() => void balance.refetch()} />
            ) : (
              <Text size="7" weight="bold" className="num" data-testid="balance">
                {formatUsd(balance.data.current_balance)}
              </Text>
            )}
          </Flex>
        </Card>
        <Card>
          <Tabs.Root defaultValue="deposit">
            <Tabs.List aria-label="Move cash">
              <Tabs.Trigger value="deposit">Deposit</Tabs.Trigger>
              <Tabs.Trigger value="withdraw">Withdraw</Tabs.Trigger>
            </Tabs.List>
            <Flex pt="3" direction="column">
              <Tabs.Content value="deposit">
                <MoveForm kind="deposit" remaining={remaining("deposit")} balance={null} />
              </Tabs.Content>
              <Tabs.Content value="withdraw">
                <MoveForm kind="withdraw" remaining={remaining("withdraw")} balance={balance.data?.current_balance ?? null} />
              </Tabs.Content>
            </Flex>
          </Tabs.Root>
        </Card>
      </Grid>
      <Card>
        <Heading as="h2" size="4" mb="3">
          Ledger
        </Heading>
        {ledger.isPending && <TableSkeleton label="Loading the ledger" />}
        {ledger.isError && <ErrorNotice error={ledger.error} onRetry={() => void ledger.refetch()} />}
        {ledger.data && ledger.data.transactions.length === 0 && <EmptyState title="No cash movements yet">Your first deposit will show here.</EmptyState>}
        {ledger.data && ledger.data.transactions.length > 0 && (
          <Flex direction="column" gap="3">
            <div className="table-scroll">
              <Table.Root aria-label="Cash ledger, newest first" data-testid="ledger">
                <caption className="visually-hidden">Cash ledger, newest first</caption>
                <Table.Header>
                  <Table.Row>
                    <Table.ColumnHeaderCell>When</Table.ColumnHeaderCell>
                    <Table.ColumnHeaderCell>Type</Table.ColumnHeaderCell>
                    <Table.ColumnHeaderCell justify="end">Amount</Table.ColumnHeaderCell>
                    <Table.ColumnHeaderCell className="hide-narrow">Status</Table.ColumnHeaderCell>
                  </Table.Row>
                </Table.Header>
                <Table.Body>
                  {ledger.data.transactions.map((entry) => {
                    const amount = dec(entry.amount);
                    return (
                      <Table.Row key={entry.transaction_id}>
                        <Table.Cell>{formatDateTime(entry.created_at)}</Table.Cell>
                        <Table.Cell>{LABELS[entry.transaction_type] ?? entry.transaction_type}</Table.Cell>
                        <Table.Cell justify="end" className="num">
                          <Text color={amount.lt(0) ? "red" : "grass"}>
                            {amount.gt(0) ? "+" : amount.lt(0) ? "−" : ""}
                            {formatUsd(amount.abs())}
                          </Text>
                        </Table.Cell>
                        <Table.Cell className="hide-narrow">
                          <Badge color="gray">{entry.status}</Badge>
                        </Table.Cell>
                      </Table.Row>
                    );
                  })}
                </Table.Body>
              </Table.Root>
            </div>
            <Pager pager={pager} hasMore={ledger.data.has_more} nextToken={ledger.data.next_page_token} busy={ledger.isFetching} />
          </Flex>
        )}
      </Card>
    </Flex>
  );
}
