/** A copy of `record` without `key`. */
export function without<T>(record: Record<string, T>, key: string): Record<string, T> {
  const copy = { ...record };
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- a copy keyed by field name
  delete copy[key];
  return copy;
}
