/**
 * A child process of the chaos run: contenders, one per component of a setup, that write
 * through the fenced stores while they lead; or websocket watchers of every replica of a
 * setup.
 *
 *   node --import tsx chaos/worker.ts '<json WorkerConfig>'
 *
 * It prints one JSON record a line on stdout (see history.ts), timed on the clock the
 * processes share. Writes to a pipe are synchronous on Linux, so a record is out before a
 * SIGSTOP or SIGKILL can land. A line `idle` on stdin stops the writes (leadership is kept);
 * the end of stdin (the harness is gone) ends the process.
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  LeaseholdClient,
  LeaseholdError,
  UnavailableError,
  type Cluster,
  type Component,
  type LeaderElection,
} from '../src/client/index.js';
import { holder, planContent, sharedNow, type ChildRecord, type OpKind } from './history.js';

export interface ContenderConfig {
  component: string;
  contenderId: string;
  ttlMs: number;
}

export type WorkerConfig =
  | { mode: 'contender'; proc: string; url: string; clusterId: string; contenders: ContenderConfig[]; maxRetained: number }
  | { mode: 'watcher'; proc: string; clusterId: string; servers: Array<{ name: string; url: string }> };

/** Outcomes that mean "you are not the leader": the batch ends there. */
const REFUSED = new Set(['FencingTokenStale', 'FencingTokenRequired', 'NotLeader']);

const say = (r: ChildRecord) => process.stdout.write(`${JSON.stringify(r)}\n`);
/** From `performance.now()` (the SDK's clock) to the shared one; the midpoint of two reads
 * of the SDK's clock around one of the shared clock. */
const OFFSET = (() => {
  const a = performance.now();
  const s = sharedNow();
  return s - (a + performance.now()) / 2;
})();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The contenders of one process, one per component (as a Flink JobManager process hosts
 * the dispatcher, the resource manager and job masters). */
function contenders(cfg: Extract<WorkerConfig, { mode: 'contender' }>): void {
  const cluster = new LeaseholdClient({ url: cfg.url, timeoutMs: 2500 }).cluster(cfg.clusterId);
  let working = true;
  onStdin(() => (working = false));
  const loops = cfg.contenders.map((c) => contender(cluster, cfg, c, () => working));
  void Promise.all(loops).then(() => say({ k: 'idle', t: sharedNow(), proc: cfg.proc }));
}

function contender(cluster: Cluster, cfg: Extract<WorkerConfig, { mode: 'contender' }>, c: ContenderConfig, working: () => boolean): Promise<void> {
  const { proc } = cfg;
  const { component } = c;
  const election = cluster.election({ component: component as Component, contenderId: c.contenderId, ttlMs: c.ttlMs, address: `chaos://${proc}` });
  let lastUntil: number | null = null;
  election.on('granted', (session, token, l) => {
    // The SDK counts the lease from the campaign's send time: validUntil = sent + lease - margin.
    const sent = l.validUntil - l.leader.leaseRemainingMs + election.marginMs;
    say({ k: 'grant', t: sharedNow(), proc, component, session, token, contenderId: c.contenderId, sent: sent + OFFSET, until: l.validUntil + OFFSET });
    lastUntil = l.validUntil;
  });
  election.on('revoked', (reason) => say({ k: 'revoke', t: sharedNow(), proc, component, reason }));
  election.on('error', () => {}); // the election retries by itself
  setInterval(() => {
    const l = election.leadership;
    if (!l || l.validUntil === lastUntil) return;
    lastUntil = l.validUntil;
    // Sent when the renewal that extended it was (the SDK counts from there, as for a grant).
    const sent = l.validUntil - l.leader.leaseRemainingMs + election.marginMs;
    say({ k: 'valid', t: sharedNow(), proc, component, session: l.sessionId, sent: sent + OFFSET, until: l.validUntil + OFFSET });
  }, 5);
  election.start();

  const step = stepFor(cluster, proc, c.component, cfg.maxRetained);
  return (async () => {
    while (working()) {
      if (!step || !election.leadership) await sleep(10);
      else await batch(election, step, working);
    }
  })();
}

/**
 * Up to 10 steps under one leadership. Half of the batches keep the token they started
 * with, as an application that cached it would, so that a leader paused past its lease
 * keeps writing with a stale token (which must be refused); the others take the token
 * afresh before each step, as the SDK's stores do.
 */
async function batch(election: LeaderElection, step: Step, working: () => boolean): Promise<void> {
  const cached = Math.random() < 0.5 ? election.leadership?.fencingToken : undefined;
  for (let i = 0; i < 10 && working(); i++) {
    const token = cached ?? election.leadership?.fencingToken;
    if (token === undefined) return;
    if ((await step(token)) === 'refused') return;
  }
}

type Step = (token: number) => Promise<'ok' | 'refused'>;

/** What a leader of the component does: the dispatcher stores a plan and a job result for
 * a new job; a job manager takes a checkpoint id and adds that checkpoint. */
function stepFor(cluster: Cluster, proc: string, component: string, maxRetained: number): Step | null {
  let seq = 0;
  const run = async (op: OpKind, token: number, args: { jobId: string; checkpointId?: number }, fn: () => Promise<unknown>) => {
    const base = { proc, seq: ++seq, owner: component, op, token, ...args };
    const sent = sharedNow();
    say({ k: 'send', ...base, sent });
    let outcome = 'ok';
    let status: number | undefined;
    let value: number | undefined;
    try {
      const r = await fn();
      if (typeof r === 'number') value = r;
    } catch (err) {
      status = err instanceof LeaseholdError ? err.statusCode : undefined;
      outcome = err instanceof UnavailableError || !(err instanceof LeaseholdError) ? 'unknown' : err.code;
    }
    say({ k: 'op', ...base, ...(value === undefined ? {} : { value }), sent, answered: sharedNow(), outcome, ...(status ? { status } : {}) });
    return { outcome, value };
  };
  const pace = (min: number, spread: number) => sleep(min + Math.random() * spread);

  if (component === 'dispatcher') {
    return async (token) => {
      const jobId = randomBytes(16).toString('hex');
      const plan = await run('putPlan', token, { jobId }, () =>
        cluster.executionPlans(token).put(jobId, Buffer.from(planContent(jobId, token))),
      );
      if (REFUSED.has(plan.outcome)) return 'refused';
      const result = await run('createResult', token, { jobId }, () =>
        cluster.jobResults(token).createDirty(jobId, { applicationStatus: 'SUCCEEDED', jobName: proc }),
      );
      if (REFUSED.has(result.outcome)) return 'refused';
      await pace(20, 40);
      return 'ok';
    };
  }
  if (component.startsWith('jobmanager/')) {
    const jobId = component.slice('jobmanager/'.length);
    return async (token) => {
      // One token for both: a checkpoint id taken under one leadership is added under it.
      const inc = await run('increment', token, { jobId }, () => cluster.checkpointIdCounter(jobId, token).getAndIncrement());
      if (REFUSED.has(inc.outcome)) return 'refused';
      if (inc.outcome === 'ok') {
        const checkpointId = inc.value!;
        const add = await run('addCheckpoint', token, { jobId, checkpointId }, () =>
          cluster.checkpoints(jobId, token).add({
            checkpointId,
            timestamp: Date.now(),
            externalPointer: `chaos://${jobId}/chk-${checkpointId}`,
            maxRetained,
          }),
        );
        if (REFUSED.has(add.outcome)) return 'refused';
      }
      await pace(60, 60);
      return 'ok';
    };
  }
  return null;
}

function watcher(cfg: Extract<WorkerConfig, { mode: 'watcher' }>): void {
  const { proc } = cfg;
  for (const { name: server, url } of cfg.servers) {
    const r = new LeaseholdClient({ url, timeoutMs: 2500 })
      .cluster(cfg.clusterId)
      .retrieval({ transport: 'websocket', maxBackoffMs: 1000, idleTimeoutMs: 8000 });
    r.on('snapshot', (leaders, index) => {
      const all: Record<string, ReturnType<typeof holder>> = {};
      for (const { component, leader } of leaders) all[component] = holder(leader);
      say({ k: 'ws', t: sharedNow(), proc, server, type: 'snapshot', index, leaders: all });
    });
    r.on('change', (c) =>
      say({ k: 'ws', t: sharedNow(), proc, server, type: 'change', index: c.index, event: c.event, component: c.component, leader: holder(c.leader) }),
    );
    r.on('connected', () => say({ k: 'wsConn', t: sharedNow(), proc, server, up: true }));
    r.on('disconnected', (reason) => say({ k: 'wsConn', t: sharedNow(), proc, server, up: false, reason }));
    r.on('error', () => {}); // it reconnects by itself
    r.start();
  }
  onStdin(() => {});
}

/** `idle` on stdin calls `onIdle`; the end of stdin ends the process. */
function onStdin(onIdle: () => void): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === 'idle') onIdle();
  });
  lines.on('close', () => process.exit(0));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const cfg = JSON.parse(process.argv[2]) as WorkerConfig;
  if (cfg.mode === 'contender') contenders(cfg);
  else watcher(cfg);
}
