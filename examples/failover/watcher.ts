/**
 * Follows the dispatcher's leadership and prints every change, timed from its start.
 *
 *   node --import tsx examples/failover/watcher.ts
 *
 * LEASEHOLD_URL names the server, LEASEHOLD_CLUSTER the cluster (default `example`).
 */
import { performance } from 'node:perf_hooks';
import { LeaseholdClient, type Leader } from '../../src/client/index.js';

const clusterId = process.env.LEASEHOLD_CLUSTER || 'example';
const retrieval = new LeaseholdClient().cluster(clusterId).retrieval({ components: ['dispatcher'] });
const started = performance.now();
const log = (text: string) => console.log(`[watcher] +${((performance.now() - started) / 1000).toFixed(2)}s ${text}`);
const describe = (l: Leader) => `${l.contenderId} (${l.address ?? 'no address'}) token=${l.fencingToken}`;

/** The holder before the latest change, to say whose lease ended. */
let last: Leader | null = null;

retrieval.on('snapshot', (leaders) => {
  last = leaders[0]?.leader ?? null;
  log(`watching dispatcher in cluster ${clusterId}: ${last ? `led by ${describe(last)}` : 'no leader'}`);
});
retrieval.on('change', ({ event, component, leader }) => {
  if (leader) log(`${event} ${component} → ${describe(leader)}`);
  else log(`${event} ${component}${last ? ` (was ${last.contenderId})` : ''}`);
  last = leader;
});
retrieval.on('disconnected', (reason) => log(`disconnected: ${reason}; reconnecting`));
retrieval.start();

function shutdown(): void {
  retrieval.close();
  log('stopped');
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Started by run.ts: end with it, even when it was killed.
process.on('disconnect', shutdown);
process.stdout.on('error', () => {});
