/**
 * `npm run bench`: starts its own Redis and servers, runs every benchmark, and prints one
 * table, every figure beside its baseline measured in this same run and its budget
 * (docs/design.md §8). Exits 1 when a budget is missed. `--quick` for a run under a minute;
 * `--only http,stream,push` for some groups; `--down-after MS` for Sentinel's
 * down-after-milliseconds in the failover through Sentinel.
 */
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { BenchEnv } from './env.js';
import { httpBenches } from './http.js';
import { streamBenches } from './stream.js';
import { pushBenches } from './push.js';
import { fanoutBenches } from './fanout.js';
import { blobBenches } from './blobs.js';
import { replicaAckBenches } from './replicaAck.js';
import { sentinelBenches } from './sentinelFailover.js';
import { leadershipBenches } from './leadership.js';
import { fairnessBenches } from './fairness.js';
import { clusterBenches } from './cluster.js';
import { table, type Row } from './stats.js';

const GROUPS: Record<string, (env: BenchEnv) => Promise<Row[]>> = {
  http: httpBenches,
  stream: streamBenches,
  push: pushBenches,
  fanout: fanoutBenches,
  blobs: blobBenches,
  ack: replicaAckBenches,
  sentinel: sentinelBenches,
  leadership: leadershipBenches,
  fairness: fairnessBenches,
  cluster: clusterBenches,
};

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, 'down-after': { type: 'string' } },
});
const downAfterMs = values['down-after'] === undefined ? undefined : Number(values['down-after']);
if (downAfterMs !== undefined && !(Number.isInteger(downAfterMs) && downAfterMs >= 100)) {
  console.error(`--down-after takes Sentinel's down-after-milliseconds, at least 100: ${values['down-after']}`);
  process.exit(2);
}
const names = values.only ? values.only.split(',') : Object.keys(GROUPS);
const unknown = names.filter((n) => !GROUPS[n]);
if (unknown.length) {
  console.error(`unknown benchmark group: ${unknown.join(', ')} (known: ${Object.keys(GROUPS).join(', ')})`);
  process.exit(2);
}

const started = Date.now();
const env = await BenchEnv.start({ quick: values.quick, downAfterMs });
process.once('SIGINT', () => void env.close().then(() => process.exit(130)));
const rows: Row[] = [];
try {
  for (const name of names) {
    console.error(`running ${name} benchmarks…`);
    const t0 = Date.now();
    rows.push(...(await GROUPS[name](env)));
    console.error(`  ${name}: ${Math.round((Date.now() - t0) / 1000)} s`);
  }
} finally {
  await env.close();
}

const redisVersion = execFileSync('redis-server', ['--version']).toString().match(/v=(\S+)/)?.[1] ?? '?';
console.log(
  `\nleasehold benchmarks${values.quick ? ' (--quick)' : ''}: ${cpus().length} × ${cpus()[0]?.model.trim()}, ` +
    `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, Redis ${redisVersion}; ` +
    `${Math.round((Date.now() - started) / 1000)} s\n`,
);
console.log(table(rows));
const missed = rows.filter((r) => r.pass === false);
console.log(missed.length ? `\n${missed.length} budget(s) missed: ${missed.map((r) => r.name).join('; ')}` : '\nevery budget met');
process.exit(missed.length ? 1 : 0);
