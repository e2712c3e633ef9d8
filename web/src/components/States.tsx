import { Box, Card, Flex, Skeleton, Text } from "@radix-ui/themes";
import type { ReactNode } from "react";

export function TableSkeleton({ rows = 6, label = "Loading" }: { rows?: number; label?: string }) {
  return (
    <Flex direction="column" gap="2" aria-busy="true" aria-label={label} role="status">
      {Array.from({ length: rows }, (_, i) => (
        <Skeleton key={i} height="36px" width="100%" />
      ))}
    </Flex>
  );
}

export function CardSkeleton() {
  return (
    <Card>
      <Flex direction="column" gap="2" aria-hidden>
        <Skeleton height="14px" width="40%" />
        <Skeleton height="28px" width="70%" />
      </Flex>
    </Card>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <Card variant="surface">
      <Box p="4">
        <Flex direction="column" gap="2" align="center" data-testid="empty-state">
          <Text weight="bold">{title}</Text>
          {children && (
            <Text color="gray" align="center" as="div">
              {children}
            </Text>
          )}
        </Flex>
      </Box>
    </Card>
  );
}
