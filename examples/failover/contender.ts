/**
 * A dispatcher contender: campaigns for `dispatcher`, and while it leads stores a job
 * result every 500 ms, fenced by its token. On SIGTERM or SIGINT it resigns and exits.
 *
 *   node --import tsx examples/failover/contender.ts <name> [port]
 *
 * LEASEHOLD_URL names the server, LEASEHOLD_CLUSTER the cluster (default `example`); the
 * port only makes up the address it publishes.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeadershipLostError, LeaseholdClient, LeaseholdError, type Leadership } from '../../src/client/index.js';

const name = process.argv[2] ?? `contender-${process.pid}`;
const port = process.argv[3] ?? '9101';
const cluster = new LeaseholdClient().cluster(process.env.LEASEHOLD_CLUSTER || 'example');
const log = (text: string) => console.log(`[${name}] ${text}`);

const election = cluster.election({
  component: 'dispatcher',
  contenderId: name,
  ttlMs: 2000,
  address: `http://127.0.0.1:${port}`,
});
election.on('granted', (session, token) => log(`granted token=${token} session=${session.slice(0, 8)}…`));
election.on('revoked', (reason) => log(`revoked (${reason})`));
election.on('error', (err) => log(`request failed, retrying: ${err.message}`));

/** The leader's work: each tick "finishes" a job and stores its result under the token. */
async function work(signal: AbortSignal, leadership: Leadership): Promise<void> {
  const results = cluster.jobResults(election);
  for (let job = 1; ; job++) {
    const jobId = randomBytes(16).toString('hex');
    try {
      await results.createDirty(jobId, { applicationStatus: 'SUCCEEDED', jobName: `${name}-job-${job}` });
      log(`working as leader (token ${leadership.fencingToken}): stored the result of job ${job}`);
    } catch (err) {
      // Refused (the fence moved on) or unknown outcome: either way the signal says
      // whether we still lead.
      if (!(err instanceof LeaseholdError)) throw err;
      log(`write failed: ${err.code}`);
    }
    await sleep(500, undefined, { signal });
  }
}

/** Leads whenever granted, until `stop` aborts. */
async function contend(stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    try {
      await election.runWhileLeader(work, { signal: stop });
    } catch (err) {
      if (!(err instanceof LeadershipLostError) && !stop.aborted) throw err;
    }
  }
}

const stop = new AbortController();
const done = contend(stop.signal);

let stopping = false;
async function shutdown(why: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${why}: resigning`);
  stop.abort();
  await done;
  await election.resign();
  log('resigned, exiting');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
// Started by run.ts: end with it, even when it was killed (and then still resign, though
// nobody reads the output any more).
process.on('disconnect', () => void shutdown('run.ts is gone'));
process.stdout.on('error', () => {});

election.start();
