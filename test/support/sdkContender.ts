/**
 * An SDK contender in a process of its own, for the safety tests, and its driver.
 *
 *   node --import tsx test/support/sdkContender.ts <url> <clusterId> <component> <ttlMs>
 *
 * The child prints JSON lines on stdout, every time on the clock that processes share
 * (CLOCK_MONOTONIC in ms, `process.hrtime`; `performance.now()` has a per-process origin):
 * `{ev:'up'}` once campaigning, `{ev:'granted', at, token, session}`,
 * `{ev:'revoked', at, reason}`, and `{ev:'valid', until}` whenever the `validUntil` of
 * its leadership changes (at the grant, then sampled every 5 ms). On SIGTERM it resigns,
 * prints `{ev:'stopped'}` and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { LeaseholdClient, monotonicNow, type Component } from '../../src/client/index.js';

const SELF = fileURLToPath(import.meta.url);

export type ContenderEvent =
  | { ev: 'up' }
  | { ev: 'granted'; at: number; token: number; session: string }
  | { ev: 'revoked'; at: number; reason: string }
  | { ev: 'valid'; until: number }
  | { ev: 'stopped' };

/** Now on the clock the children print. */
export const sharedNow = (): number => Number(process.hrtime.bigint()) / 1e6;

/** The driver: spawns the child, keeps its events, kills it after the test. */
export class ContenderProcess {
  readonly events: ContenderEvent[] = [];
  stderr = '';
  exitCode: number | null | undefined = undefined;
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;

  constructor(
    t: TestContext,
    readonly name: string,
    url: string,
    clusterId: string,
    component: string,
    ttlMs: number,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', SELF, url, clusterId, component, String(ttlMs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.events.push(JSON.parse(line)));
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    t.after(() => this.kill());
  }

  get grants(): Array<Extract<ContenderEvent, { ev: 'granted' }>> {
    return this.events.filter((e) => e.ev === 'granted');
  }

  get revocations(): Array<Extract<ContenderEvent, { ev: 'revoked' }>> {
    return this.events.filter((e) => e.ev === 'revoked');
  }

  /** Whether its last grant or revocation is a grant. */
  get leading(): boolean {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const ev = this.events[i].ev;
      if (ev === 'granted' || ev === 'revoked') return ev === 'granted';
    }
    return false;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exitCode === undefined) this.child.kill(sig);
  }

  /** SIGTERM: it resigns and exits; answers its exit code. */
  stop(): Promise<number | null> {
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    return this.exited;
  }

  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}

function runChild(): void {
  const [url, clusterId, component, ttlArg] = process.argv.slice(2);
  const ttlMs = Number(ttlArg);
  if (!url || !clusterId || !component || !(ttlMs > 0)) {
    console.error('usage: sdkContender.ts <url> <clusterId> <component> <ttlMs>');
    process.exit(2);
  }
  /** From `monotonicNow()`'s clock to the shared one. */
  const offset = sharedNow() - performance.now();
  const shared = (t: number) => t + offset;
  // Writes to a pipe are synchronous on Linux: a line is out before any SIGSTOP can land.
  const say = (m: ContenderEvent) => process.stdout.write(`${JSON.stringify(m)}\n`);

  const election = new LeaseholdClient({ url }).cluster(clusterId).election({ component: component as Component, ttlMs });
  let lastUntil: number | null = null;
  const sayValid = (until: number) => {
    if (until === lastUntil) return;
    lastUntil = until;
    say({ ev: 'valid', until: shared(until) });
  };
  election.on('granted', (session, token, leadership) => {
    say({ ev: 'granted', at: shared(monotonicNow()), token, session });
    sayValid(leadership.validUntil);
  });
  election.on('revoked', (reason) => say({ ev: 'revoked', at: shared(monotonicNow()), reason }));
  election.on('error', (err) => console.error(`contender: ${err.message}`));

  const sampler = setInterval(() => {
    const l = election.leadership;
    if (l) sayValid(l.validUntil);
  }, 5);
  process.once('SIGTERM', () => {
    clearInterval(sampler);
    void election.resign().then(() => {
      say({ ev: 'stopped' });
      process.exit(0);
    });
  });
  election.start();
  say({ ev: 'up' });
}

if (process.argv[1] === SELF) runChild();
