/** Floors (src/ha/floors.ts): only ever raised, kept across a restart in their file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Floors } from '../src/ha/floors.js';

const quiet = pino({ enabled: false });

test('floors only go up, and a restarted server reads them back from its file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'leasehold-floors-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'floors.json');
  const a = new Floors(file, quiet);
  a.raiseIndex('c', 10);
  a.raiseIndex('c', 5);
  a.raiseToken('c', 'dispatcher', 7, 10_000);
  a.raiseToken('c', 'dispatcher', 3, 2_000);
  a.raiseCounter('c', 'j', 6);
  a.raiseCounter('c', 'j', 4);
  assert.deepEqual(a.of('c'), { index: 10, tokens: { dispatcher: 7 }, counters: { j: 6 }, maxTtlMs: 10_000 });
  a.close();

  const b = new Floors(file, quiet);
  assert.deepEqual(b.of('c'), { index: 10, tokens: { dispatcher: 7 }, counters: { j: 6 }, maxTtlMs: 10_000 });
  b.forgetCounter('c', 'j');
  assert.deepEqual(b.of('c').counters, {});
  assert.equal(b.of('c').index, 10);
  b.close();
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).version, 1);
});

test('an unreadable floors file is replaced, not fatal; no file: memory only', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'leasehold-floors-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'floors.json');
  writeFileSync(file, '{not json');
  const lines: any[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const f = new Floors(file, log);
  assert.equal(f.of('c').index, 0);
  assert.equal(lines.length, 1);
  f.raiseIndex('c', 1);
  f.close();
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).clusters.c.index, 1);

  const memory = new Floors(null, quiet);
  memory.raiseIndex('c', 3);
  memory.close();
  assert.equal(memory.of('c').index, 3);
});
