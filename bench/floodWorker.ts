/**
 * A tenant flooding heavy reads (bench/fairness.ts): FLOOD_CONNECTIONS kept-alive
 * connections, each reading FLOOD_URL (a large execution plan) to its end and again, until
 * it is killed. A read refused (429) waits its `Retry-After` before it tries again, as a
 * real client does (the SDK's does): a flood that retried at once would measure how fast
 * the server can say no, not what a tenant's reads cost the others. Prints `ready` once
 * every connection sent its first read, then every 200 ms a JSON line of what it got:
 * reads served, refused (429), and failed, and the bytes received.
 */
import { Agent, get } from 'node:http';

const url = process.env.FLOOD_URL!;
const connections = Number(process.env.FLOOD_CONNECTIONS ?? 50);
const agent = new Agent({ keepAlive: true, maxSockets: connections });
const counts = { served: 0, refused: 0, failed: 0, bytes: 0 };

function read(): void {
  get(url, { agent }, (res) => {
    let again = 0;
    if (res.statusCode === 200) counts.served++;
    else if (res.statusCode === 429) {
      counts.refused++;
      again = Number(res.headers['retry-after'] ?? 1) * 1000;
    } else counts.failed++;
    res.on('data', (d: Buffer) => (counts.bytes += d.length));
    res.on('end', () => (again ? setTimeout(read, again) : read()));
    res.on('error', () => setTimeout(read, 100));
  }).on('error', () => {
    counts.failed++;
    setTimeout(read, 100);
  });
}

for (let i = 0; i < connections; i++) read();
console.log('ready');
setInterval(() => console.log(JSON.stringify(counts)), 200);
