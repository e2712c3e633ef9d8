import { Button, Flex, Heading, Text } from "@radix-ui/themes";
import { Link } from "react-router";

export default function NotFound() {
  return (
    <Flex direction="column" gap="3" align="start">
      <Heading as="h1">Page not found</Heading>
      <Text color="gray">The address may be mistyped, or the page has moved.</Text>
      <Button asChild>
        <Link to="/market">Go to the market</Link>
      </Button>
    </Flex>
  );
}
