import { TriangleDownIcon, TriangleUpIcon } from "@radix-ui/react-icons";
import { Flex, Text } from "@radix-ui/themes";
import { dec, formatPercent } from "../lib/money";

/** A 24 h change: colour, arrow and sign, so colour is never the only signal. */
export function Change({ value }: { value: string | number | null | undefined }) {
  if (value === null || value === undefined || value === "") return <Text color="gray">—</Text>;
  const change = dec(value);
  const up = change.gt(0);
  const down = change.lt(0);
  const label = up ? "up" : down ? "down" : "unchanged";
  return (
    <Flex asChild align="center" gap="1" display="inline-flex">
      <Text color={up ? "grass" : down ? "red" : "gray"} weight="medium">
        {up && <TriangleUpIcon aria-hidden />}
        {down && <TriangleDownIcon aria-hidden />}
        <span className="visually-hidden">{label} </span>
        {formatPercent(change)}
      </Text>
    </Flex>
  );
}
