/** `leasehold history`: who led each component of a cluster, how it ended, the takeover gaps. */
import type { Command } from 'commander';
import type { HistoryEntry, HistoryQuery } from '../client/index.js';
import { act, clientOf, EXIT, integer, print, printJson } from './common.js';
import { dash, table } from './format.js';

export function registerHistory(program: Command): void {
  program
    .command('history')
    .description('the leadership history of a cluster, newest first: leader, token, granted, ended and how, takeover gap')
    .argument('<cluster>', 'cluster id')
    .option('--component <component>', 'only this component (resourcemanager, dispatcher, rest, jobmanager/<jobId>, or leadership)')
    .option('--from <time>', 'only entries granted at or after this instant (ISO 8601, as 2026-12-04T17:00:00Z)')
    .option('--to <time>', 'only entries granted at or before this instant (ISO 8601)')
    .option('--limit <n>', 'the most entries to print', integer(1), 100)
    .option('--json', "print the entries as JSON")
    .action(act(history));
}

type Options = { component?: string; from?: string; to?: string; limit: number; json?: boolean };

async function history(clusterId: string, opts: Options, cmd: Command): Promise<number> {
  const cluster = clientOf(cmd).cluster(clusterId);
  const entries: HistoryEntry[] = [];
  let cursor: string | undefined;
  // Pages until `limit` entries (a page may hold fewer than asked when a filter matches few).
  do {
    const page = await cluster.history({ component: opts.component as HistoryQuery['component'], from: opts.from, to: opts.to, limit: Math.min(1000, opts.limit - entries.length), cursor });
    entries.push(...page.entries);
    cursor = page.nextCursor;
  } while (cursor && entries.length < opts.limit);
  if (opts.json) {
    printJson({ entries });
    return EXIT.ok;
  }
  const gap = (ms: number | null) => (ms === null ? '-' : `${ms} ms`);
  const rows = entries.map((e) => [e.component, e.contenderId, String(e.token), dash(e.address), e.grantedAt, dash(e.endedAt), e.ended ?? 'leading', gap(e.takeoverGapMs)]);
  print(table(['COMPONENT', 'CONTENDER', 'TOKEN', 'ADDRESS', 'GRANTED', 'ENDED', 'HOW', 'GAP'], rows));
  return EXIT.ok;
}
