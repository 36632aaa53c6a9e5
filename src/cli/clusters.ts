/** `leasehold clusters`: the clusters the server holds (GET /v1/clusters), every page. */
import type { Command } from 'commander';
import type { ClusterEntry, Leader } from '../client/index.js';
import { act, clientOf, EXIT, print, printJson } from './common.js';
import { dash, table } from './format.js';

export function registerClusters(program: Command): void {
  program
    .command('clusters')
    .description('list the clusters the server holds (those the token may use), with their leaders')
    .option('--prefix <prefix>', 'only clusters whose id begins with this')
    .option('--json', "print the server's answers as JSON")
    .action(act(clusters));
}

/** `contender@address`, or the contender alone until an address is confirmed. */
const holder = (l: Leader | null) => (l ? (l.address ? `${l.contenderId}@${l.address}` : l.contenderId) : '-');

async function clusters(opts: { prefix?: string; json?: boolean }, cmd: Command): Promise<number> {
  // Every page (the SDK follows nextCursor): the CLI prints them all.
  const entries: ClusterEntry[] = await clientOf(cmd).clusters().list({ prefix: opts.prefix, max: Infinity });
  if (opts.json) {
    printJson({ clusters: entries });
    return EXIT.ok;
  }
  const rows = entries.map((e) => [
    e.clusterId,
    dash(e.leadership?.contenderId),
    holder(e.leaders.resourcemanager),
    holder(e.leaders.dispatcher),
    holder(e.leaders.rest),
    String(e.jobCount),
    dash(e.lastChangeAt),
  ]);
  print(table(['CLUSTER', 'LEADERSHIP', 'RESOURCEMANAGER', 'DISPATCHER', 'REST', 'JOBS', 'LAST CHANGE'], rows));
  return EXIT.ok;
}
