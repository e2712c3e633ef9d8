import { Button, Card, Checkbox, Flex, Grid, Heading, Skeleton, Text } from "@radix-ui/themes";
import { useState, type SyntheticEvent } from "react";
import { useNavigate } from "react-router";
import { ApiError } from "../api/errors";
import { useChangePassword, useProfile, useUpdateProfile } from "../api/queries";
import { session } from "../api/session";
import type { Profile } from "../api/types";
import { ErrorNotice } from "../components/ErrorNotice";
import { Field } from "../components/Field";
import * as rules from "../lib/rules";
import { without } from "../lib/objects";
import { formatDateTime } from "../lib/time";
import { PasswordChecklist } from "./Register";

type Editable = Pick<Profile, "first_name" | "last_name" | "email" | "phone" | "date_of_birth">;
const CHECKS: Record<keyof Editable, rules.Check> = {
  first_name: rules.personName,
  last_name: rules.personName,
  email: rules.email,
  phone: rules.phone,
  date_of_birth: (v) => rules.dateOfBirth(v),
};

function ProfileForm({ profile }: { profile: Profile }) {
  const [form, setForm] = useState<Editable & { marketing_emails_consent: boolean }>({
    first_name: profile.first_name,
    last_name: profile.last_name,
    email: profile.email,
    phone: profile.phone,
    date_of_birth: profile.date_of_birth,
    marketing_emails_consent: profile.marketing_emails_consent,
  });
  const [server, setServer] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(false);
  const update = useUpdateProfile();
  const error = (key: keyof Editable) => server[key] ?? CHECKS[key](form[key]);
  const set = (key: keyof Editable) => (value: string) => {
    setForm((f) => ({ ...f, [key]: value }));
    setServer((errors) => without(errors, key));
    setSaved(false);
  };

  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    if ((Object.keys(CHECKS) as (keyof Editable)[]).some((k) => CHECKS[k](form[k]))) return;
    const changes: Partial<Profile> = {};
    for (const key of Object.keys(form) as (keyof typeof form)[]) {
      if (form[key] !== profile[key]) Object.assign(changes, { [key]: form[key] });
    }
    update.mutate(changes, {
      onSuccess: () => {
        setSaved(true);
      },
      onError: (e) => {
        if (e instanceof ApiError) setServer(e.fieldErrors());
      },
    });
  };

  return (
    <form onSubmit={submit} noValidate aria-labelledby="profile-title">
      <Flex direction="column" gap="3">
        <Heading as="h2" size="4" id="profile-title">
          Your details
        </Heading>
        <Text size="2" color="gray">
          Username <strong>{profile.username}</strong>, member since {formatDateTime(profile.created_at)}.
        </Text>
        <Grid columns={{ initial: "1", sm: "2" }} gap="3">
          <Field label="First name" value={form.first_name} onChange={set("first_name")} error={error("first_name")} autoComplete="given-name" />
          <Field label="Last name" value={form.last_name} onChange={set("last_name")} error={error("last_name")} autoComplete="family-name" />
        </Grid>
        <Field label="Email" type="email" value={form.email} onChange={set("email")} error={error("email")} autoComplete="email" />
        <Field label="Phone (optional)" type="tel" value={form.phone} onChange={set("phone")} error={error("phone")} autoComplete="tel" />
        <Field label="Date of birth (optional)" type="date" value={form.date_of_birth} onChange={set("date_of_birth")} error={error("date_of_birth")} autoComplete="bday" />
        <Text as="label" size="2">
          <Flex gap="2" align="center">
            <Checkbox
              checked={form.marketing_emails_consent}
              onCheckedChange={(checked) => {
                setForm((f) => ({ ...f, marketing_emails_consent: checked === true }));
              }}
            />
            Send me news and offers by email
          </Flex>
        </Text>
        {update.isError && <ErrorNotice error={update.error} />}
        {saved && (
          <Text color="grass" role="status">
            Your details are saved.
          </Text>
        )}
        <Flex>
          <Button type="submit" loading={update.isPending}>
            Save changes
          </Button>
        </Flex>
      </Flex>
    </form>
  );
}

function PasswordForm() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [touched, setTouched] = useState(false);
  const [done, setDone] = useState(false);
  const change = useChangePassword();
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    setTouched(true);
    if (!current || rules.password(next)) return;
    change.mutate(
      { current_password: current, new_password: next },
      {
        onSuccess: () => {
          setDone(true);
          setCurrent("");
          setNext("");
          setTouched(false);
        },
      },
    );
  };
  return (
    <form onSubmit={submit} noValidate aria-labelledby="password-title">
      <Flex direction="column" gap="3">
        <Heading as="h2" size="4" id="password-title">
          Change password
        </Heading>
        <Text size="2" color="gray">
          Every other session of yours is signed out; this one stays.
        </Text>
        <Field label="Current password" type="password" value={current} onChange={setCurrent} error={touched && !current ? "Enter your current password." : null} autoComplete="current-password" />
        <Field
          label="New password"
          type="password"
          value={next}
          onChange={setNext}
          error={touched ? rules.password(next) : null}
          autoComplete="new-password"
          hint={<PasswordChecklist value={next} />}
        />
        {change.isError && <ErrorNotice error={change.error} />}
        {done && (
          <Text color="grass" role="status">
            Your password is changed.
          </Text>
        )}
        <Flex>
          <Button type="submit" loading={change.isPending}>
            Change password
          </Button>
        </Flex>
      </Flex>
    </form>
  );
}

export default function ProfilePage() {
  const profile = useProfile();
  const navigate = useNavigate();
  return (
    <Flex direction="column" gap="4">
      <Heading as="h1" size="7">
        Profile
      </Heading>
      <Grid columns={{ initial: "1", md: "2" }} gap="4">
        <Card>
          {profile.isPending && <Skeleton height="320px" />}
          {profile.isError && <ErrorNotice error={profile.error} onRetry={() => void profile.refetch()} />}
          {profile.data && <ProfileForm profile={profile.data} />}
        </Card>
        <Flex direction="column" gap="4">
          <Card>
            <PasswordForm />
          </Card>
          <Card>
            <Flex direction="column" gap="3" align="start">
              <Heading as="h2" size="4">
                Sign out
              </Heading>
              <Text size="2" color="gray">
                Ends this session at once: its tokens stop working and the browser forgets it.
              </Text>
              <Button
                color="red"
                variant="soft"
                onClick={() => {
                  void session.signOut().then(() => navigate("/signin", { state: { signedOut: true } }));
                }}
              >
                Sign out now
              </Button>
            </Flex>
          </Card>
        </Flex>
      </Grid>
    </Flex>
  );
}
