/** Text output: aligned tables and the small renderings the commands share. */

/** Columns padded to their widest cell, two spaces apart; no trailing blanks. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [headers, ...rows].map((cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** `-` for what is missing, so that every table cell and line field is one word. */
export function dash(value: string | number | null | undefined): string {
  return value === null || value === undefined || value === '' ? '-' : String(value);
}

/** A lease's remaining time, e.g. `8.2s`. */
export function lease(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export const now = (): string => new Date().toISOString();
