import { CheckIcon, Cross2Icon } from "@radix-ui/react-icons";
import { Button, Card, Flex, Grid, Heading, Link, Text } from "@radix-ui/themes";
import { useState, type SyntheticEvent } from "react";
import { Link as RouterLink, useNavigate } from "react-router";
import { ApiError } from "../api/errors";
import { register } from "../api/queries";
import type { Registration } from "../api/types";
import { ErrorNotice } from "../components/ErrorNotice";
import { Field } from "../components/Field";
import * as rules from "../lib/rules";
import { without } from "../lib/objects";

const CHECKS: Record<keyof Registration, rules.Check> = {
  username: rules.username,
  email: rules.email,
  password: rules.password,
  first_name: rules.personName,
  last_name: rules.personName,
};

export function PasswordChecklist({ value }: { value: string }) {
  return (
    <ul className="password-rules" aria-label="Password rules">
      {rules.PASSWORD_RULES.map((rule) => {
        const ok = rule.ok(value);
        return (
          <li key={rule.label}>
            <Text size="1" color={ok ? "grass" : "gray"}>
              {ok ? <CheckIcon aria-hidden /> : <Cross2Icon aria-hidden />} {rule.label}
              <span className="visually-hidden">{ok ? " (met)" : " (not yet)"}</span>
            </Text>
          </li>
        );
      })}
    </ul>
  );
}

export default function Register() {
  const [form, setForm] = useState<Registration>({
    username: "",
    email: "",
    password: "",
    first_name: "",
    last_name: "",
  });
  const [touched, setTouched] = useState(false);
  const [serverErrors, setServerErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const navigate = useNavigate();

  const errors = Object.fromEntries(
    (Object.keys(CHECKS) as (keyof Registration)[]).map((key) => [
      key,
      serverErrors[key] ?? (touched ? CHECKS[key](form[key]) : null),
    ]),
  ) as Record<keyof Registration, string | null>;

  const set = (key: keyof Registration) => (value: string) => {
    setForm((f) => ({ ...f, [key]: value }));
    setServerErrors((errors) => without(errors, key));
  };

  const submit = async (event: SyntheticEvent) => {
    event.preventDefault();
    setTouched(true);
    const invalid = (Object.keys(CHECKS) as (keyof Registration)[]).some((k) => CHECKS[k](form[k]));
    if (invalid) return;
    setBusy(true);
    setFailure(null);
    try {
      await register({ ...form, username: form.username.trim(), email: form.email.trim() });
      void navigate("/signin", { state: { registered: form.username.trim() } });
    } catch (error) {
      if (error instanceof ApiError) setServerErrors(error.fieldErrors());
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Flex justify="center">
      <Card size="3" style={{ width: "100%", maxWidth: 560 }}>
        <form onSubmit={(e) => void submit(e)} noValidate aria-labelledby="register-title">
          <Flex direction="column" gap="4">
            <Heading as="h1" size="6" id="register-title">
              Open an account
            </Heading>
            <Grid columns={{ initial: "1", sm: "2" }} gap="3">
              <Field label="First name" value={form.first_name} onChange={set("first_name")} error={errors.first_name} autoComplete="given-name" />
              <Field label="Last name" value={form.last_name} onChange={set("last_name")} error={errors.last_name} autoComplete="family-name" />
            </Grid>
            <Field
              label="Username"
              value={form.username}
              onChange={set("username")}
              error={errors.username}
              hint="6 to 30 letters, digits or underscores."
              autoComplete="username"
            />
            <Field label="Email" type="email" value={form.email} onChange={set("email")} error={errors.email} autoComplete="email" />
            <Field
              label="Password"
              type="password"
              value={form.password}
              onChange={set("password")}
              error={errors.password}
              autoComplete="new-password"
              hint={<PasswordChecklist value={form.password} />}
            />
            {failure !== null && <ErrorNotice error={failure} />}
            <Button type="submit" size="3" loading={busy}>
              Create account
            </Button>
            <Text size="2" color="gray">
              Have an account?{" "}
              <Link asChild>
                <RouterLink to="/signin">Sign in</RouterLink>
              </Link>
            </Text>
          </Flex>
        </form>
      </Card>
    </Flex>
  );
}
