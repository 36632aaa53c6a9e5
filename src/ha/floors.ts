/**
 * What this server has answered, per cluster: the highest change index, the highest
 * fencing token of each component, the highest value of each job's checkpoint id counter,
 * and the longest lease TTL granted. Redis must never be found below these: a Redis that is
 * has rolled back (a failover to a replica that lagged, a restored backup), and the floors
 * are what is written back into it (docs/design.md §9).
 *
 * They live in memory and, when a file is given (in DATA_DIR), on disk too, so that a
 * restarted server still knows them. The file is written at most once a second, by
 * writing a copy and renaming it over the old one, so that a crash leaves one whole file.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { writeFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Change } from './changes.js';
import type { Log } from './log.js';

export interface ClusterFloors {
  index: number;
  /** Highest fencing token per component. */
  tokens: Record<string, number>;
  /** Highest checkpoint id counter value answered per job id. */
  counters: Record<string, number>;
  /** Longest TTL of a lease granted or renewed (ms): how long a lost lease may still be
   * believed held by its holder. */
  maxTtlMs: number;
}

const FILE_VERSION = 1;
const WRITE_EVERY_MS = 1000;

export class Floors {
  private readonly clusters = new Map<string, ClusterFloors>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;

  /** Floors kept in `file` (null: in memory only), read back from it if it exists. A file
   * that cannot be read is logged and replaced: floors are a safety net, not the data. */
  constructor(
    private readonly file: string | null,
    private readonly log: Log,
  ) {
    if (!file) return;
    try {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { version: number; clusters: Record<string, ClusterFloors> };
      if (saved.version !== FILE_VERSION) throw new Error(`unknown version ${saved.version}`);
      for (const [id, f] of Object.entries(saved.clusters)) this.clusters.set(id, f);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err, file }, 'could not read the floors file; starting without it');
    }
  }

  /** The clusters this server has answered for. */
  clusterIds(): string[] {
    return [...this.clusters.keys()];
  }

  of(clusterId: string): ClusterFloors {
    let f = this.clusters.get(clusterId);
    if (!f) {
      f = { index: 0, tokens: {}, counters: {}, maxTtlMs: 0 };
      this.clusters.set(clusterId, f);
    }
    return f;
  }

  /** The cluster's floors if this server has any (adds no cluster). */
  peek(clusterId: string): ClusterFloors | undefined {
    return this.clusters.get(clusterId);
  }

  /** The highest token answered for a component, 0 for none (adds no cluster). */
  token(clusterId: string, component: string): number {
    return this.clusters.get(clusterId)?.tokens[component] ?? 0;
  }

  raiseIndex(clusterId: string, index: number): void {
    const f = this.of(clusterId);
    if (index > f.index) {
      f.index = index;
      this.changed();
    }
  }

  raiseToken(clusterId: string, component: string, token: number, ttlMs: number): void {
    const f = this.of(clusterId);
    if (token > (f.tokens[component] ?? 0)) {
      f.tokens[component] = token;
      this.changed();
    }
    this.raiseTtl(clusterId, ttlMs);
  }

  raiseTtl(clusterId: string, ttlMs: number): void {
    const f = this.of(clusterId);
    if (ttlMs > f.maxTtlMs) {
      f.maxTtlMs = ttlMs;
      this.changed();
    }
  }

  /** Notes what changes answered: their indexes, and the tokens and TTLs of their leaders.
   * A lease that ended takes its component's token floor with it (issue 16: nothing kept
   * per ended job manager): every grant raised the cluster's index to its token, so the
   * index floor, raised by the same changes, stays above it. */
  noteChanges(clusterId: string, changes: readonly Change[]): void {
    for (const c of changes) {
      this.raiseIndex(clusterId, c.index);
      if (c.leader) this.raiseToken(clusterId, c.component, c.leader.fencingToken, c.ttlMs);
      else this.forgetToken(clusterId, c.component);
    }
  }

  private forgetToken(clusterId: string, component: string): void {
    const f = this.clusters.get(clusterId);
    if (f && component in f.tokens) {
      delete f.tokens[component];
      this.changed();
    }
  }

  /** The cluster was deleted (cleanupAllData), or found gone from a Redis that lost
   * nothing (floorsWriteback.ts): its floors go too. What is answered for it afterwards
   * still rises, by Redis's clock (lib/leadership.lua). */
  forget(clusterId: string): void {
    if (this.clusters.delete(clusterId)) this.changed();
  }

  raiseCounter(clusterId: string, jobId: string, value: number): void {
    const f = this.of(clusterId);
    if (value > (f.counters[jobId] ?? 0)) {
      f.counters[jobId] = value;
      this.changed();
    }
  }

  /** A job's counter removed on purpose (its shutdown): its ids start again at 1. */
  forgetCounter(clusterId: string, jobId: string): void {
    const f = this.clusters.get(clusterId);
    if (f && jobId in f.counters) {
      delete f.counters[jobId];
      this.changed();
    }
  }

  private changed(): void {
    if (!this.file || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.writing = this.writing.then(() => this.write());
    }, WRITE_EVERY_MS);
    this.timer.unref();
  }

  private text(): string {
    return JSON.stringify({ version: FILE_VERSION, clusters: Object.fromEntries(this.clusters) });
  }

  private async write(): Promise<void> {
    const file = this.file!;
    try {
      mkdirSync(dirname(file), { recursive: true });
      await writeFile(file + '.tmp', this.text());
      // Closed meanwhile: close() wrote the newer floors, which this must not replace.
      if (this.closed) return;
      await rename(file + '.tmp', file);
    } catch (err) {
      this.log.error({ err, file }, 'could not write the floors file');
    }
  }

  /** Writes what is pending now, synchronously (at shutdown). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.closed = true;
    if (!this.file) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(this.file + '.closing', this.text());
      renameSync(this.file + '.closing', this.file);
    } catch (err) {
      this.log.error({ err, file: this.file }, 'could not write the floors file');
    }
  }
}
