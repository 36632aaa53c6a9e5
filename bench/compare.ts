/**
 * `npm run bench:compare -- get|renew DIR...`: compares leasehold trees (say, a git worktree
 * of an older commit, whose node_modules may be a link to this one's) on leader GET or
 * renew, each against the bare route. Rounds run the bare route and then every tree, the
 * order rotated each round, so that the drift of a shared machine falls on all of them
 * alike; each tree's figure is the median of its per-round ratios. A change too small to
 * show in `npm run bench` shows here, given rounds enough (`--rounds`, default 8).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { post, sleep } from '../test/support/app.js';
import { freePort } from '../test/support/redis.js';
import { BenchEnv } from './env.js';
import { renewSpec } from './http.js';
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
const children: ChildProcess[] = [];
process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));
try {
  const urls = await Promise.all(dirs.map(startServer));
  // Every tree serves the same cluster; it is set up through the first.
  const c = `compare-${randomBytes(3).toString('hex')}`;
  await post(urls[0], `/v1/clusters/${c}/leaders/dispatcher/campaign`, {
    contenderId: 'dispatcher-1',
    ttlMs: 300_000,
    address: 'akka.tcp://flink@10.0.0.1:6123/user/rpc/dispatcher_1',
  });
  const path = `/v1/clusters/${c}/leaders/dispatcher`;
  const bare = await env.bare(Buffer.byteLength(await (await fetch(urls[0] + path)).text()), urls[0] + path);
  const renewals = kind === 'renew' ? await renewSpec(urls[0], 1000) : null;
  const spec = (url: string): LoadSpec =>
    renewals ? { ...renewals, url, durationS } : { url: url + path, connections: 50, durationS };
  for (const url of urls) await env.load({ ...spec(url), durationS: 1 }); // warm-up

  const ratios: number[][] = urls.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const b = await env.load({ url: bare.url, connections: 50, durationS });
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
  children.forEach((ch) => ch.kill('SIGKILL'));
  await env.close();
}

/** A server of the tree in `dir`, on this run's Redis; its URL once ready. */
async function startServer(dir: string): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: resolve(dir),
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', REDIS_URL: env.redis.url },
    stdio: 'ignore',
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`the server of ${dir} exited (${child.exitCode})`);
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) return url;
    await sleep(50);
  }
  throw new Error(`the server of ${dir} was not ready in 20 s`);
}
