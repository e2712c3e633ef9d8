import { Button, Card, Flex, Heading, Text } from "@radix-ui/themes";
import { Component, type ErrorInfo, type ReactNode } from "react";

interface State {
  error: Error | null;
}

/** Catches a page that throws while rendering, so the rest of the app stays usable. */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey?: string }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error("page failed", error, info.componentStack);
  }

  componentDidUpdate(previous: { resetKey?: string }): void {
    if (previous.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }

  render(): ReactNode {
    if (!this.state.error) return this.props.children;
    return (
      <Card role="alert" size="3">
        <Flex direction="column" gap="3" align="start">
          <Heading as="h2" size="5">
            This page ran into a problem
          </Heading>
          <Text color="gray">Your account is safe. Try again, or go back to the market.</Text>
          <Flex gap="2">
            <Button
              onClick={() => {
                this.setState({ error: null });
              }}
            >Try again</Button>
            <Button variant="soft" asChild>
              <a href="/market">Market</a>
            </Button>
          </Flex>
        </Flex>
      </Card>
    );
  }
}
