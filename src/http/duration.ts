/** `500ms`, `30s`, `2m` → milliseconds; null for anything else. */
export function parseDuration(s: string): number | null {
  const m = /^([0-9]{1,9})(ms|s|m)$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
}
