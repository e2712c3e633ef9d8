import { ExclamationTriangleIcon } from "@radix-ui/react-icons";
import { Button, Callout, Code, Flex, Text } from "@radix-ui/themes";
import { ApiError, humanMessage } from "../api/errors";

/** An API error as a person reads it, with the request id for support. */
export function ErrorNotice({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const requestId = error instanceof ApiError ? error.requestId : null;
  return (
    <Callout.Root color="red" role="alert" variant="surface">
      <Callout.Icon>
        <ExclamationTriangleIcon aria-hidden />
      </Callout.Icon>
      <Flex direction="column" gap="1">
        <Text as="p" data-testid="error-message">
          {humanMessage(error)}
        </Text>
        {requestId && (
          <Text as="p" size="1" color="gray">
            Request ID for support: <Code variant="ghost">{requestId}</Code>
          </Text>
        )}
        {onRetry && (
          <Flex>
            <Button size="1" variant="soft" color="red" onClick={onRetry}>
              Try again
            </Button>
          </Flex>
        )}
      </Flex>
    </Callout.Root>
  );
}
