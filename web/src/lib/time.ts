export function formatDateTime(iso: string, locale?: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(date);
}

export function formatTime(iso: string | number, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { timeStyle: "medium" }).format(new Date(iso));
}

/** The UTC day of an RFC 3339 time, as the server's daily limits count it. */
export function utcDay(iso: string | Date): string {
  return (typeof iso === "string" ? new Date(iso) : iso).toISOString().slice(0, 10);
}
