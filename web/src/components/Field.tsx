import { Flex, Text, TextField } from "@radix-ui/themes";
import { useId, type ComponentProps, type ReactNode } from "react";

type InputProps = Omit<ComponentProps<typeof TextField.Root>, "onChange" | "value">;

/** A labelled input whose error and hint are announced with it. */
export function Field({
  label,
  value,
  onChange,
  error,
  hint,
  ...input
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  error?: string | null;
  hint?: ReactNode;
} & InputProps) {
  const id = useId();
  const described = [error ? `${id}-error` : null, hint ? `${id}-hint` : null].filter(Boolean).join(" ");
  return (
    <Flex direction="column" gap="1">
      <Text as="label" htmlFor={id} size="2" weight="medium">
        {label}
      </Text>
      <TextField.Root
        id={id}
        value={value}
        onChange={(event) => {
          onChange(event.target.value);
        }}
        aria-invalid={error ? true : undefined}
        aria-describedby={described || undefined}
        color={error ? "red" : undefined}
        {...input}
      />
      {hint && (
        <Text as="div" id={`${id}-hint`} size="1" color="gray">
          {hint}
        </Text>
      )}
      {error && (
        <Text id={`${id}-error`} size="1" color="red" role="alert">
          {error}
        </Text>
      )}
    </Flex>
  );
}
