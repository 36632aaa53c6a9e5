/**
 * Failover, end to end: a watcher and two contenders for `dispatcher` run as child
 * processes; once one leads, it is killed with SIGKILL, and the other takes over when the
 * dead leader's lease runs out. Then the survivor resigns and everything stops.
 *
 *   npm start                                         # in another terminal
 *   node --import tsx examples/failover/run.ts [cluster]
 *
 * LEASEHOLD_URL names the server (default http://127.0.0.1:8080); the cluster defaults
 * to LEASEHOLD_CLUSTER, else `example`. Exits 0 after a takeover, 1 when none came within
 * 10 s of the kill (or anything else failed), 2 when no server answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LeaseholdClient, UnavailableError } from '../../src/client/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** contender.ts's lease TTL. */
const TTL_MS = 2000;
/** For the takeover; starting up gets longer, as a loaded machine starts node slowly. */
const LIMIT_MS = 10_000;
const STARTUP_LIMIT_MS = 30_000;
const GRANT = /\] granted token=(\d+)/;

const clusterId = process.argv[2] ?? (process.env.LEASEHOLD_CLUSTER || 'example');
const client = new LeaseholdClient({ timeoutMs: 3000 });

/** Ends the run with that exit code and message. */
class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface Line {
  from: string;
  text: string;
  /** When run.ts read it, on `performance.now()`'s clock. */
  at: number;
}

/** Every line printed, the children's included, for the waits below. */
const lines: Line[] = [];
const onLine = new Set<() => void>();

function record(from: string, text: string): void {
  lines.push({ from, text, at: performance.now() });
  console.log(text);
  for (const listener of [...onLine]) listener();
}

const log = (text: string) => record('run', `[run] ${text}`);

/** The first line from `lines[since]` on that matches, or null after `timeoutMs`. */
function waitLine(match: (l: Line) => boolean, timeoutMs: number, since = 0): Promise<Line | null> {
  return new Promise((resolve) => {
    let next = since;
    const check = () => {
      for (; next < lines.length; next++) if (match(lines[next])) return done(lines[next]);
    };
    const done = (line: Line | null) => {
      onLine.delete(check);
      clearTimeout(timer);
      resolve(line);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    onLine.add(check);
    check();
  });
}

interface Child {
  proc: ChildProcess;
  /** Resolves once it exited and all its output was read. */
  closed: Promise<unknown>;
}
const children = new Map<string, Child>();

/** Starts an example script; its output goes through `record`, line by line. */
function start(name: string, script: string, args: string[] = []): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(script, import.meta.url)), ...args], {
    cwd: ROOT,
    env: { ...process.env, LEASEHOLD_URL: client.http.baseUrl, LEASEHOLD_CLUSTER: clusterId },
    // The IPC channel lets the children notice when run.ts is gone, however it ended.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  createInterface({ input: proc.stdout! }).on('line', (text) => record(name, text));
  createInterface({ input: proc.stderr! }).on('line', (text) => console.error(`[${name}] ${text}`));
  const closed = once(proc, 'close').then(([code, signal]) => {
    children.delete(name);
    log(`${name} exited (${signal ?? code})`);
  });
  const child = { proc, closed };
  children.set(name, child);
  log(`started ${name} (pid ${proc.pid})`);
  return child;
}

/** SIGTERM, and SIGKILL if it has not exited 5 s later. */
async function stop(child: Child): Promise<void> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 5000);
  await child.closed;
  clearTimeout(timer);
}

const stopAll = () => Promise.all([...children.values()].map(stop));

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  try {
    await client.cluster(clusterId).leaders();
  } catch (err) {
    if (!(err instanceof UnavailableError)) throw err;
    throw new Exit(2, `no leasehold server answers at ${client.http.baseUrl} (${err.message}).
Start one with \`npm start\` in another terminal, or set LEASEHOLD_URL to yours.`);
  }
  log(`server ${client.http.baseUrl}, cluster ${clusterId}`);

  start('watcher', './watcher.ts');
  if (!(await waitLine((l) => l.from === 'watcher' && l.text.includes(' watching '), STARTUP_LIMIT_MS))) {
    throw new Exit(1, 'the watcher did not connect within 30 s');
  }
  start('contender-a', './contender.ts', ['contender-a', '9101']);
  start('contender-b', './contender.ts', ['contender-b', '9102']);

  const first = await waitLine((l) => l.from.startsWith('contender-') && GRANT.test(l.text), STARTUP_LIMIT_MS);
  if (!first) throw new Exit(1, 'no contender was granted dispatcher within 30 s');
  const leader = first.from;
  const survivor = leader === 'contender-a' ? 'contender-b' : 'contender-a';
  await sleep(3000);

  const killed = lines.length;
  const killedAt = performance.now();
  log(`killing ${leader} (pid ${children.get(leader)?.proc.pid}) with SIGKILL`);
  children.get(leader)?.proc.kill('SIGKILL');
  const granted = await waitLine((l) => l.from === survivor && GRANT.test(l.text), LIMIT_MS, killed);
  if (!granted) throw new Exit(1, `no takeover within 10 s: ${survivor} was not granted dispatcher after ${leader} was killed`);
  const seen = await waitLine((l) => l.from === 'watcher' && l.text.includes(`granted dispatcher → ${survivor}`), 2000, killed);
  const ended = lines.slice(killed).find((l) => l.from === 'watcher' && /(expired|revoked) dispatcher/.test(l.text));
  if (seen && ended) {
    const event = /(expired|revoked) dispatcher/.exec(ended.text)![1];
    log(`takeover ${seconds(seen.at - killedAt)} after the kill, as the watcher saw it: ${leader}'s lease ${event} ` +
      `${seconds(ended.at - killedAt)} after the kill (TTL ${seconds(TTL_MS)}), ${survivor} granted ${Math.round(seen.at - ended.at)} ms later`);
  } else {
    log(`takeover: ${survivor} granted ${seconds(granted.at - killedAt)} after the kill (the watcher did not report both the end of the old lease and the grant)`);
  }
  await sleep(2000);

  const last = children.get(survivor);
  if (!last) throw new Exit(1, `${survivor} exited while leading`);
  log(`stopping ${survivor} with SIGTERM: it resigns`);
  const stopped = lines.length;
  await stop(last);
  if (!(await waitLine((l) => l.from === 'watcher' && l.text.includes(' revoked dispatcher'), 3000, stopped))) {
    log('the watcher did not report the resignation');
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping everything`);
    void stopAll().then(() => process.exit(128 + constants.signals[signal]));
  });
}
// The last resort, should run.ts fail on its own.
process.on('exit', () => {
  for (const { proc } of children.values()) proc.kill('SIGKILL');
});

let code = 0;
try {
  await main();
} catch (err) {
  code = err instanceof Exit ? err.code : 1;
  console.error(`[run] ${err instanceof Exit ? err.message : `failed: ${(err as Error).stack ?? err}`}`);
} finally {
  await stopAll();
}
process.exit(code);
