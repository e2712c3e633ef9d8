import { Button, Callout, Card, Flex, Heading, Link, Text } from "@radix-ui/themes";
import { useState, type SyntheticEvent } from "react";
import { Link as RouterLink, useLocation, useNavigate, useSearchParams } from "react-router";
import { session } from "../api/session";
import { ErrorNotice } from "../components/ErrorNotice";
import { Field } from "../components/Field";
import { required, safeNext } from "../lib/rules";


export default function SignIn() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Record<string, string | null>>({});
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const location = useLocation();
  const notice = location.state as { expired?: boolean; signedOut?: boolean; registered?: string } | null;

  const submit = async (event: SyntheticEvent) => {
    event.preventDefault();
    const found = { username: required("Username")(username), password: required("Password")(password) };
    setErrors(found);
    if (found.username || found.password) return;
    setBusy(true);
    setFailure(null);
    try {
      await session.signIn(username.trim(), password);
      void navigate(safeNext(params.get("next")), { replace: true });
    } catch (error) {
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Flex justify="center">
      <Card size="3" style={{ width: "100%", maxWidth: 420 }}>
        <form onSubmit={(e) => void submit(e)} noValidate aria-labelledby="signin-title">
          <Flex direction="column" gap="4">
            <Heading as="h1" size="6" id="signin-title">
              Sign in
            </Heading>
            {notice?.expired && (
              <Callout.Root color="amber" role="status">
                <Callout.Text>Your session ended. Please sign in again to continue.</Callout.Text>
              </Callout.Root>
            )}
            {notice?.signedOut && (
              <Callout.Root color="gray" role="status">
                <Callout.Text>You are signed out.</Callout.Text>
              </Callout.Root>
            )}
            {notice?.registered && (
              <Callout.Root color="grass" role="status">
                <Callout.Text>Your account {notice.registered} is ready. Sign in to start trading.</Callout.Text>
              </Callout.Root>
            )}
            <Field
              label="Username"
              value={username}
              onChange={setUsername}
              error={errors.username}
              autoComplete="username"
              autoFocus
            />
            <Field
              label="Password"
              type="password"
              value={password}
              onChange={setPassword}
              error={errors.password}
              autoComplete="current-password"
            />
            {failure !== null && <ErrorNotice error={failure} />}
            <Button type="submit" size="3" loading={busy}>
              Sign in
            </Button>
            <Text size="2" color="gray">
              New here?{" "}
              <Link asChild>
                <RouterLink to="/register">Open an account</RouterLink>
              </Link>
            </Text>
          </Flex>
        </form>
      </Card>
    </Flex>
  );
}
