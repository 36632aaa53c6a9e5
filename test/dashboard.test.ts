/**
 * The Grafana dashboard (deploy/grafana/leasehold.json) queries only metrics the server
 * exports: each metric name in its queries is one /metrics describes (histograms by their
 * _bucket, _sum and _count series).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { stopAllRedis } from './support/redis.js';
import { sharedRedisUrl, startApp } from './support/app.js';

after(() => stopAllRedis());

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
  panels?: Panel[];
}

test('every metric the dashboard queries is one /metrics exports', async (t) => {
  const dashboard = JSON.parse(readFileSync(new URL('../deploy/grafana/leasehold.json', import.meta.url), 'utf8')) as { panels: Panel[] };
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const queried = new Set<string>();
  for (const p of panels) {
    if (p.type === 'row') continue;
    assert.ok(p.targets?.length, `${p.title} has queries`);
    for (const { expr } of p.targets!) for (const [name] of expr.matchAll(/\bleasehold_[a-z_]+/g)) queried.add(name);
  }
  assert.ok(queried.size >= 10, [...queried].join(', '));

  const app = await startApp(t, await sharedRedisUrl());
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const exported = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) exported.set(m[1], m[2]);
  for (const name of queried) {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    const type = exported.get(name) ?? exported.get(base);
    assert.ok(type, `${name} is exported`);
    if (name !== base && !exported.has(name)) assert.equal(type, 'histogram', `${name} is a series of the histogram ${base}`);
  }
  for (const name of ['leasehold_takeover_gap_seconds', 'leasehold_renewal_slack_seconds', 'leasehold_leaderships_ended_total']) {
    assert.ok(queried.has(name) || queried.has(`${name}_bucket`) || queried.has(`${name}_count`), `the dashboard shows ${name}`);
  }
});
