/** Figures of a benchmark run: samples to percentiles, rows to one table. */

export interface Row {
  name: string;
  /** What was measured, as printed: "12,345 req/s", "p99 12.3 ms". */
  figure: string;
  /** The baseline measured in the same run, as printed, if the row has one. */
  baseline?: string;
  /** figure ÷ baseline, for throughputs. */
  ratio?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** The budget of docs/design.md §8, as printed, and whether the figure met it; none for figures
   * that are only informative. */
  budget?: string;
  pass?: boolean;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of a list of samples (ms). */
export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  return { n: s.length, p50: at(50), p99: at(99), max: s[s.length - 1] };
}

export const ms = (x: number | undefined) => (x === undefined ? '' : `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms`);
export const rate = (x: number) => `${Math.round(x).toLocaleString('en-US')} req/s`;
export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** One table: every figure beside its baseline, ratio, latencies and budget. */
export function table(rows: Row[]): string {
  const head = ['benchmark', 'figure', 'baseline', 'ratio', 'p50', 'p99', 'budget', 'ok'];
  const body = rows.map((r) => [
    r.name,
    r.figure,
    r.baseline ?? '',
    // Rounded down, so that a ratio just under its budget never shows as the budget.
    r.ratio === undefined ? '' : `${(Math.floor(r.ratio * 100) / 100).toFixed(2)}×`,
    ms(r.p50Ms),
    ms(r.p99Ms),
    r.budget ?? '',
    r.pass === undefined ? '' : r.pass ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
