import { CaretDownIcon, CaretUpIcon, MagnifyingGlassIcon } from "@radix-ui/react-icons";
import { Flex, Heading, Table, Text, TextField } from "@radix-ui/themes";
import { useState } from "react";
import { Link } from "react-router";
import { Change } from "../components/Change";
import { EmptyState, TableSkeleton } from "../components/States";
import { ErrorNotice } from "../components/ErrorNotice";
import { Sparkline } from "../components/Sparkline";
import { filterRows, sortRows, useMarket, type SortKey } from "../lib/market";
import { dec, formatCompactUsd, formatPrice } from "../lib/money";

const COLUMNS: { key: SortKey; label: string; numeric?: boolean; narrow?: boolean }[] = [
  { key: "rank", label: "#", narrow: true },
  { key: "name", label: "Asset" },
  { key: "price", label: "Price", numeric: true },
  { key: "change", label: "24h change", numeric: true },
  { key: "cap", label: "Market cap", numeric: true, narrow: true },
];

export default function Market() {
  const market = useMarket();
  const [query, setQuery] = useState("");
  const [sort, setSort] = useState<{ key: SortKey; ascending: boolean }>({ key: "rank", ascending: true });
  const rows = sortRows(filterRows(market.rows, query), sort.key, sort.ascending);

  const toggle = (key: SortKey) => {
    setSort((s) => ({ key, ascending: s.key === key ? !s.ascending : key === "rank" || key === "name" }));
  };

  return (
    <Flex direction="column" gap="4">
      <Flex justify="between" align="end" gap="3" wrap="wrap">
        <Flex direction="column" gap="1">
          <Heading as="h1" size="7">
            Market
          </Heading>
          <Text color="gray">Live prices, updated as they change.</Text>
        </Flex>
        <TextField.Root
          placeholder="Search by name or symbol"
          aria-label="Search assets"
          value={query}
          onChange={(e) => {
            setQuery(e.target.value);
          }}
          type="search"
        >
          <TextField.Slot>
            <MagnifyingGlassIcon aria-hidden />
          </TextField.Slot>
        </TextField.Root>
      </Flex>
      {market.isPending && <TableSkeleton label="Loading the market" rows={10} />}
      {market.isError && <ErrorNotice error={market.error} onRetry={() => void market.refetch()} />}
      {market.isSuccess && rows.length === 0 && (
        <EmptyState title="No asset matches your search">Try a symbol such as BTC or a name such as Ether.</EmptyState>
      )}
      {market.isSuccess && rows.length > 0 && (
        <div className="table-scroll">
          <Table.Root variant="surface" aria-label="Assets by market cap" data-testid="market-table">
            <caption className="visually-hidden">Assets by market cap, live prices</caption>
            <Table.Header>
              <Table.Row>
                {COLUMNS.map((column) => (
                  <Table.ColumnHeaderCell
                    key={column.key}
                    justify={column.numeric ? "end" : "start"}
                    className={column.narrow ? "hide-narrow" : undefined}
                    aria-sort={sort.key === column.key ? (sort.ascending ? "ascending" : "descending") : "none"}
                  >
                    <button type="button" className="sort-button" onClick={() => {
                      toggle(column.key);
                    }}>
                      {column.label}
                      {sort.key === column.key && (sort.ascending ? <CaretUpIcon aria-hidden /> : <CaretDownIcon aria-hidden />)}
                    </button>
                  </Table.ColumnHeaderCell>
                ))}
                <Table.ColumnHeaderCell className="hide-narrow">
                  <span className="visually-hidden">Trend</span>
                </Table.ColumnHeaderCell>
              </Table.Row>
            </Table.Header>
            <Table.Body>
              {rows.map((row) => (
                <Table.Row key={row.asset.asset_id} data-asset={row.asset.asset_id}>
                  <Table.Cell className="hide-narrow">{row.asset.market_cap_rank}</Table.Cell>
                  <Table.RowHeaderCell>
                    <Link className="row-link" to={`/market/${row.asset.asset_id}`}>
                      {row.asset.name}
                    </Link>{" "}
                    <Text color="gray" size="1">
                      {row.asset.asset_id}
                    </Text>
                  </Table.RowHeaderCell>
                  <Table.Cell justify="end" className="num" data-testid="price">
                    {formatPrice(row.price)}
                  </Table.Cell>
                  <Table.Cell justify="end" className="num">
                    <Change value={row.change24h} />
                  </Table.Cell>
                  <Table.Cell justify="end" className="num hide-narrow">
                    {row.asset.market_cap ? formatCompactUsd(row.asset.market_cap) : "—"}
                  </Table.Cell>
                  <Table.Cell className="hide-narrow">
                    <Sparkline points={row.history} rising={!dec(row.change24h).lt(0)} />
                  </Table.Cell>
                </Table.Row>
              ))}
            </Table.Body>
          </Table.Root>
        </div>
      )}
    </Flex>
  );
}
