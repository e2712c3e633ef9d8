import { Button, Flex, Text } from "@radix-ui/themes";
import { useState } from "react";

/** Token paging: the stack of tokens already seen makes "Previous" possible. */
export function usePager() {
  const [tokens, setTokens] = useState<string[]>([""]);
  const current = tokens[tokens.length - 1] ?? "";
  return {
    token: current,
    page: tokens.length,
    next: (token: string) => {
      setTokens((t) => [...t, token]);
    },
    previous: () => {
      setTokens((t) => (t.length > 1 ? t.slice(0, -1) : t));
    },
    reset: () => {
      setTokens([""]);
    },
  };
}

export function Pager({
  pager,
  hasMore,
  nextToken,
  busy,
}: {
  pager: ReturnType<typeof usePager>;
  hasMore: boolean;
  nextToken: string;
  busy: boolean;
}) {
  return (
    <Flex justify="between" align="center" asChild>
      <nav aria-label="Pages">
        <Button variant="soft" disabled={pager.page === 1 || busy} onClick={pager.previous}>
          Previous
        </Button>
        <Text size="2" color="gray">
          Page {pager.page}
        </Text>
        <Button
          variant="soft"
          disabled={!hasMore || !nextToken || busy}
          onClick={() => {
            pager.next(nextToken);
          }}
        >
          Next
        </Button>
      </nav>
    </Flex>
  );
}
