/**
 * The load generator, run as a process of its own so that it does not share the event
 * loop of what it measures: autocannon against one URL, with a list of requests to cycle
 * through (paths and bodies), for a bounded time. Reads its LoadSpec as JSON on stdin and
 * prints its result as one JSON line.
 */
import autocannon from 'autocannon';
import WebSocket from 'ws';

export interface LoadSpec {
  url: string;
  connections: number;
  durationS: number;
  /** Requests to send in all, instead of running for durationS: each connection sends
   * exactly its share of the list once (a list of fresh campaigns, say). */
  amount?: number;
  /** A run of this many seconds first, whose figures are dropped: a warm-up without a
   * load process of its own to start. Not with `amount`. */
  warmUpS?: number;
  method?: 'GET' | 'POST';
  /** Requests cycled through, each a path and an optional JSON body; default: GET of url. */
  requests?: Array<{ path: string; body?: string }>;
  /** Instead of HTTP: websocket messages to `url` (ws://), each connection cycling through
   * its share with one message awaiting its answer at a time, as an HTTP connection
   * without pipelining does; an answer with `error` counts as a non-2xx. */
  messages?: string[];
  /** With `messages`: the messages each socket keeps awaiting their answers (default 1).
   * Each message must start `{"id":N,` with N its index in the list, and so its answer. */
  inFlight?: number;
}

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  total: number;
  /** Server CPU per request (µs), when the round names the server's processes (http.ts). */
  cpuUs?: number;
  non2xx: number;
  errors: number;
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const spec = JSON.parse(input) as LoadSpec;
const method = spec.method ?? 'GET';
const headers = { 'content-type': 'application/json' };
const list = spec.requests?.map((r) => ({ method, headers, path: r.path, body: r.body }));

const run = (durationS: number, amount?: number) => {
  let clients = 0;
  return autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: durationS,
    amount,
    method,
    headers,
    // Each connection cycles through its own share of the list, like a client renewing its
    // own leases; the requests are encoded once, before the clock starts, as a plain GET's
    // is, so that the load generator spends no more per request than for the baseline.
    setupClient: list && ((client) => {
      const k = clients++ % spec.connections;
      const mine = list.filter((_, i) => i % spec.connections === k);
      client.setRequests(mine.length > 0 ? mine : list);
    }),
  });
};

/** The websocket load: `connections` sockets, each keeping `inFlight` messages awaiting
 * their answers (sending the next as one is answered), for `durationS`. */
async function runMessages(messages: string[], durationS: number): Promise<LoadResult> {
  const sockets = await Promise.all(
    Array.from({ length: spec.connections }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(spec.url);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    })),
  );
  const latencies: number[] = [];
  let total = 0;
  let failed = 0;
  let running = true;
  const inFlight = spec.inFlight ?? 1;
  // When each message was last sent, by its id (its index in the list).
  const sentAt = new Float64Array(messages.length);
  const started = performance.now();
  await Promise.all([
    ...sockets.map((ws, k) => new Promise<void>((resolve) => {
      const mine = messages.map((_, i) => i).filter((i) => i % spec.connections === k);
      const list = mine.length > 0 ? mine : messages.map((_, i) => i);
      let next = 0;
      let waiting = 0;
      const send = () => {
        const i = list[next++ % list.length];
        sentAt[i] = performance.now();
        waiting++;
        ws.send(messages[i]);
      };
      ws.on('message', (data) => {
        const text = data.toString();
        // `{"id":N,…`: the id's digits start at 6.
        latencies.push(performance.now() - sentAt[Number(text.slice(6, text.indexOf(',', 6)))]);
        total++;
        waiting--;
        if (text.includes('"error":')) failed++;
        if (running) send();
        else if (waiting === 0) resolve();
      });
      ws.once('close', () => resolve());
      for (let j = 0; j < Math.min(inFlight, list.length); j++) send();
    })),
    new Promise<void>((r) => setTimeout(r, durationS * 1000)).then(() => {
      running = false;
    }),
  ]);
  const elapsedS = (performance.now() - started) / 1000;
  for (const ws of sockets) ws.terminate();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { rps: total / elapsedS, p50Ms: at(0.5), p99Ms: at(0.99), total, non2xx: failed, errors: 0 };
}

if (spec.messages) {
  if (spec.warmUpS) await runMessages(spec.messages, spec.warmUpS);
  process.stdout.write(JSON.stringify(await runMessages(spec.messages, spec.durationS)) + '\n');
  process.exit(0);
}

if (spec.warmUpS && !spec.amount) await run(spec.warmUpS);
const result = await run(spec.durationS, spec.amount);
const out: LoadResult = {
  // A run of a fixed amount ends within a second it does not fill, which the per-second
  // average would count as a whole one.
  rps: spec.amount ? result.requests.total / result.duration : result.requests.average,
  p50Ms: result.latency.p50,
  p99Ms: result.latency.p99,
  total: result.requests.total,
  non2xx: result.non2xx,
  errors: result.errors + result.timeouts,
};
process.stdout.write(JSON.stringify(out) + '\n');
