/**
 * `npm run bench:compare -- get|renew DIR...`: compares leasehold trees (say, a git worktree
 * of an older commit, whose node_modules may be a link to this one's) on leader GET or
 * renew, each against the bare route. Rounds run the bare route and then every tree, the
 * order rotated each round, so that the drift of a shared machine falls on all of them
 * alike; each tree's figure is the median of its per-round ratios. A change too small to
 * show in `npm run bench` shows here, given rounds enough (`--rounds`, default 8).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchEnv } from './env.js';
import { CONNECTIONS, leaderRead, renewSpec } from './http.js';
import type { LoadSpec } from './loadWorker.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '8' }, seconds: { type: 'string', default: '3' } },
});
const [kind, ...dirs] = positionals;
if ((kind !== 'get' && kind !== 'renew') || dirs.length === 0) {
  console.error('usage: npm run bench:compare -- get|renew DIR... [--rounds 8] [--seconds 3]');
  process.exit(2);
}
const rounds = Number(values.rounds);
const durationS = Number(values.seconds);

const env = await BenchEnv.start(false);
try {
  const urls = (await Promise.all(dirs.map((dir) => env.server({}, resolve(dir))))).map((s) => s.url);
  // Every tree serves the same cluster; it is set up through the first.
  const { path, bare } = await leaderRead(env, urls[0]);
  const renewals = kind === 'renew' ? await renewSpec(urls[0], 1000) : null;
  const spec = (url: string): LoadSpec =>
    renewals ? { ...renewals, url, durationS } : { url: url + path, connections: CONNECTIONS, durationS };
  // Warm-up, the bare route's too.
  await env.load({ url: bare.url, connections: CONNECTIONS, durationS: 1 });
  for (const url of urls) await env.load({ ...spec(url), durationS: 1 });

  const ratios: number[][] = urls.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const b = await env.load({ url: bare.url, connections: CONNECTIONS, durationS });
    for (let k = 0; k < urls.length; k++) {
      const i = (k + r) % urls.length;
      ratios[i].push((await env.load(spec(urls[i]))).rps / b.rps);
    }
    console.log(`round ${r + 1}: bare ${Math.round(b.rps)} req/s; ` + dirs.map((d, i) => `${d} ${ratios[i][r].toFixed(2)}×`).join(', '));
  }
  bare.stop();
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(`\n${kind}, median ratio to the bare route:\n` + dirs.map((d, i) => `  ${median(ratios[i]).toFixed(3)}×  ${d}`).join('\n'));
} finally {
  await env.close();
}
