import { HamburgerMenuIcon, MoonIcon, SunIcon } from "@radix-ui/react-icons";
import { Box, Button, Container, DropdownMenu, Flex, IconButton, Select, Text } from "@radix-ui/themes";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { session } from "../api/session";
import { useSession } from "../api/useSession";
import { useStreamStatus } from "../lib/prices";
import { ErrorBoundary } from "./ErrorBoundary";
import { OrderUpdates } from "./OrderUpdates";
import { useThemeChoice } from "./theme";
import type { ThemeChoice } from "../lib/preferences";

const PUBLIC_LINKS = [{ to: "/market", label: "Market" }];
const PRIVATE_LINKS = [
  { to: "/market", label: "Market" },
  { to: "/portfolio", label: "Portfolio" },
  { to: "/orders", label: "Orders" },
  { to: "/cash", label: "Cash" },
  { to: "/profile", label: "Profile" },
];

function ThemeSwitch() {
  const { choice, resolved, choose } = useThemeChoice();
  return (
    <Flex align="center" gap="1">
      {resolved === "dark" ? <MoonIcon aria-hidden /> : <SunIcon aria-hidden />}
      <Select.Root value={choice} onValueChange={(v) => {
          choose(v as ThemeChoice);
        }} size="1">
        <Select.Trigger aria-label="Colour theme" variant="ghost" />
        <Select.Content>
          <Select.Item value="system">System</Select.Item>
          <Select.Item value="light">Light</Select.Item>
          <Select.Item value="dark">Dark</Select.Item>
        </Select.Content>
      </Select.Root>
    </Flex>
  );
}

function StreamBadge() {
  const status = useStreamStatus();
  const text = status === "live" ? "Live prices" : status === "connecting" ? "Connecting…" : "Reconnecting…";
  return (
    <Text size="1" color={status === "live" ? "grass" : "amber"} className="stream-status" aria-live="polite">
      <span aria-hidden className={`dot dot-${status}`} /> {text}
    </Text>
  );
}

export function Layout() {
  const state = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const signedIn = state.status === "signed-in";
  const links = signedIn ? PRIVATE_LINKS : PUBLIC_LINKS;
  const signOut = async () => {
    await session.signOut();
    void navigate("/signin", { state: { signedOut: true } });
  };
  return (
    <Flex direction="column" minHeight="100vh">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Box asChild className="app-header">
        <header>
          <Container size="4" px="4">
            <Flex align="center" justify="between" gap="3" py="3">
              <Flex align="center" gap="5">
                <NavLink to="/" className="brand">
                  <img src="/favicon.svg" alt="" width={24} height={24} />
                  <Text weight="bold" size="4">
                    Tradewell
                  </Text>
                </NavLink>
                <nav aria-label="Main" className="nav-wide">
                  <Flex gap="4" asChild>
                    <ul>
                      {links.map((link) => (
                        <li key={link.to}>
                          <NavLink to={link.to} className="nav-link">
                            {link.label}
                          </NavLink>
                        </li>
                      ))}
                    </ul>
                  </Flex>
                </nav>
              </Flex>
              <Flex align="center" gap="3">
                <StreamBadge />
                <ThemeSwitch />
                <Box className="nav-wide">
                  {signedIn ? (
                    <Button variant="soft" onClick={() => void signOut()}>
                      Sign out
                    </Button>
                  ) : (
                    <Flex gap="2">
                      <Button variant="ghost" onClick={() => void navigate("/signin")}>
                        Sign in
                      </Button>
                      <Button onClick={() => void navigate("/register")}>Open an account</Button>
                    </Flex>
                  )}
                </Box>
                <Box className="nav-narrow">
                  <DropdownMenu.Root>
                    <DropdownMenu.Trigger>
                      <IconButton variant="soft" aria-label="Menu">
                        <HamburgerMenuIcon aria-hidden />
                      </IconButton>
                    </DropdownMenu.Trigger>
                    <DropdownMenu.Content>
                      {links.map((link) => (
                        <DropdownMenu.Item key={link.to} onSelect={() => void navigate(link.to)}>
                          {link.label}
                        </DropdownMenu.Item>
                      ))}
                      <DropdownMenu.Separator />
                      {signedIn ? (
                        <DropdownMenu.Item onSelect={() => void signOut()}>Sign out</DropdownMenu.Item>
                      ) : (
                        <>
                          <DropdownMenu.Item onSelect={() => void navigate("/signin")}>Sign in</DropdownMenu.Item>
                          <DropdownMenu.Item onSelect={() => void navigate("/register")}>
                            Open an account
                          </DropdownMenu.Item>
                        </>
                      )}
                    </DropdownMenu.Content>
                  </DropdownMenu.Root>
                </Box>
              </Flex>
            </Flex>
          </Container>
        </header>
      </Box>
      <Box asChild flexGrow="1">
        <main id="main" tabIndex={-1}>
          <Container size="4" px="4" py="5">
            <OrderUpdates />
            <ErrorBoundary resetKey={location.pathname}>
              <Outlet />
            </ErrorBoundary>
          </Container>
        </main>
      </Box>
      <Box asChild className="app-footer">
        <footer>
          <Container size="4" px="4" py="3">
            <Text size="1" color="gray">
              Prices are simulated on this local platform. Amounts are exact decimals.
            </Text>
          </Container>
        </footer>
      </Box>
    </Flex>
  );
}
