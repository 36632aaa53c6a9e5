/**
 * A process holding many websocket subscribers of one watch URL, for the fan-out and
 * memory benchmarks: `subscribers.ts <ws url> <count>`.
 *
 * Opens `count` connections (a bounded number at a time), waits for each one's snapshot,
 * and prints `ready` once all are in. Then, for every change it receives, it notes each
 * subscriber's receipt time (`performance.timeOrigin + performance.now()`, comparable
 * across the processes of this machine) and, once every subscriber has it (or 5 s after
 * the first one did), prints one JSON line, a `Report`, summing up the receipt times.
 * Errors and closed sockets go to stderr.
 */
import WebSocket from 'ws';

export interface Report {
  index: number;
  /** Subscribers that received this change, of `of` open ones. */
  n: number;
  of: number;
  /** Receipt times (ms since the epoch, sub-ms): first, median, 99th percentile, last. */
  first: number;
  p50: number;
  p99: number;
  last: number;
}

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!url || !(count > 0)) {
  console.error('usage: subscribers.ts <ws url> <count>');
  process.exit(2);
}
/** Connections being opened at once. */
const OPENING = 50;
/** How long after the first receipt of a change a report is printed even if incomplete. */
const PARTIAL_AFTER_MS = 5000;

const now = () => performance.timeOrigin + performance.now();
const sockets: WebSocket[] = [];
let open = 0;

interface Pending {
  times: number[];
  timer: NodeJS.Timeout;
}
const pending = new Map<number, Pending>();
const reported = new Set<number>();

function receive(index: number, t: number): void {
  if (reported.has(index)) return;
  let p = pending.get(index);
  if (!p) {
    p = { times: [], timer: setTimeout(() => report(index), PARTIAL_AFTER_MS) };
    pending.set(index, p);
  }
  p.times.push(t);
  if (p.times.length >= open) report(index);
}

function report(index: number): void {
  const p = pending.get(index);
  if (!p) return;
  clearTimeout(p.timer);
  pending.delete(index);
  reported.add(index);
  const s = p.times.sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  const r: Report = { index, n: s.length, of: open, first: s[0], p50: at(0.5), p99: at(0.99), last: s[s.length - 1] };
  process.stdout.write(JSON.stringify(r) + '\n');
}

/** Opens one subscriber, answered once its snapshot arrived; a few tries. */
async function subscribe(tries = 5): Promise<WebSocket> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        let ready = false;
        ws.on('message', (data: Buffer) => {
          const t = now();
          const m = JSON.parse(data.toString()) as { type: string; index: number };
          if (m.type === 'change') receive(m.index, t);
          else if (!ready) {
            ready = true;
            resolve(ws);
          }
        });
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
        ws.once('error', (err) => (ready ? console.error(`subscriber error: ${err.message}`) : reject(err)));
        ws.once('close', (code) => {
          if (!ready) return reject(new Error(`closed (${code}) before its snapshot`));
          open--;
          console.error(`subscriber closed: ${code}`);
        });
      });
    } catch (err) {
      if (attempt >= tries) throw err;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

let next = 0;
await Promise.all(
  Array.from({ length: Math.min(OPENING, count) }, async () => {
    while (next < count) {
      next++;
      sockets.push(await subscribe());
      open++;
    }
  }),
);
process.stdout.write('ready\n');
