/**
 * `npm run bench:compare -- get|renew|stream DIR...`: compares leasehold trees (say, a git
 * worktree of an older commit, whose node_modules may be a link to this one's) on leader GET,
 * renew, or renew over the renewal stream (50 streams, one renewal in flight on each), each
 * against the bare route. Each tree's server runs as its `npm start` runs it,
 * after its prestart: a tree with a build is built first when its dist/ is missing or
 * stale. Each round starts fresh processes (see `rounds` in http.ts) and runs the bare
 * route and then every tree, the order rotated each round, so
 * that the drift of a shared machine falls on all of them alike; each tree's figure is the
 * median of its per-round ratios. A change too small to show in `npm run bench` shows
 * here, given rounds enough (`--rounds`, default 8).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchEnv } from './env.js';
import { CONNECTIONS, leaderRead, renewSpec, rounds as run } from './http.js';
import type { LoadSpec } from './loadWorker.js';
import { streamSpec } from './stream.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '8' }, seconds: { type: 'string', default: '3' } },
});
const [kind, ...dirs] = positionals;
if (!['get', 'renew', 'stream'].includes(kind) || dirs.length === 0) {
  console.error('usage: npm run bench:compare -- get|renew|stream DIR... [--rounds 8] [--seconds 3]');
  process.exit(2);
}
const rounds = Number(values.rounds);
const durationS = Number(values.seconds);

const env = await BenchEnv.start(false);
try {
  // Every tree serves the same cluster; it is set up through the first.
  const setup = await env.server({}, resolve(dirs[0]));
  const read = await leaderRead(setup.url);
  const renewals = kind === 'get' ? null : await renewSpec(setup.url, 1000);
  await env.stopServer(setup);
  const spec = (url: string): LoadSpec =>
    kind === 'stream'
      ? { ...streamSpec(renewals!, CONNECTIONS, 1), url: url.replace(/^http/, 'ws') + '/v1/renewals', durationS }
      : renewals
        ? { ...renewals, url, durationS }
        : { url: url + read.path, connections: CONNECTIONS, durationS };

  // Run k of round r is the bare route (k = 0) or tree orderOf(r)[k - 1].
  const orderOf = (r: number) => dirs.map((_, k) => (k + r) % dirs.length);
  const runs = await run(env, rounds, durationS, async (r) => {
    const [bare, ...servers] = await Promise.all([env.bare(read.bytes, read.path), ...orderOf(r).map((i) => env.server({}, resolve(dirs[i])))]);
    return {
      specs: [{ url: bare.url, connections: CONNECTIONS, durationS }, ...servers.map((s) => spec(s.url))],
      stop: async () => {
        bare.stop();
        await Promise.all(servers.map((s) => env.stopServer(s)));
      },
    };
  });
  const ratios: number[][] = dirs.map(() => []);
  for (let r = 0; r < rounds; r++) {
    orderOf(r).forEach((i, k) => ratios[i].push(runs[k + 1][r].rps / runs[0][r].rps));
    console.log(`round ${r + 1}: bare ${Math.round(runs[0][r].rps)} req/s; ` + dirs.map((d, i) => `${d} ${ratios[i][r].toFixed(2)}×`).join(', '));
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(`\n${kind}, median ratio to the bare route:\n` + dirs.map((d, i) => `  ${median(ratios[i]).toFixed(3)}×  ${d}`).join('\n'));
} finally {
  await env.close();
}
