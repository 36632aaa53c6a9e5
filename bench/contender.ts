/**
 * A raw-HTTP contender for the failover benchmark, in a process of its own:
 *
 *   contender.ts <baseUrl> <clusterId> <component> <ttlMs> <contenderId>
 *
 * It watches its component over the websocket, then campaigns. While it leads it renews
 * every ttl/3; while it stands by it campaigns again as soon as it sees the lease end
 * (`expired` or `revoked`), and every ttl/4 in case it missed that. It prints its state on
 * stdout, one line per transition: `leading`, `standby`, `lost` (the first line is what
 * the benchmark waits for), each followed by a detail line `at <ms> token <n>` with the
 * shared clock (performance.timeOrigin + performance.now()).
 */
import { post } from './post.js';
import WebSocket from 'ws';

const [baseUrl, clusterId, component, ttlArg, contenderId] = process.argv.slice(2);
const ttlMs = Number(ttlArg);
if (!baseUrl || !clusterId || !component || !(ttlMs > 0) || !contenderId) {
  console.error('usage: contender.ts <baseUrl> <clusterId> <component> <ttlMs> <contenderId>');
  process.exit(2);
}

const now = () => performance.timeOrigin + performance.now();
const leaderPath = `${baseUrl}/v1/clusters/${clusterId}/leaders/${component}`;
/** A request that has not answered by the next renewal is given up. */
const requestTimeoutMs = Math.max(1000, ttlMs / 3);


let state: 'starting' | 'leading' | 'standby' = 'starting';
let sessionId: string | null = null;
let campaigning = false;
let renewTimer: NodeJS.Timeout | null = null;

function announce(line: 'leading' | 'standby' | 'lost', token?: number): void {
  process.stdout.write(`${line}\nat ${now().toFixed(3)} token ${token ?? '-'}\n`);
}

async function campaign(): Promise<void> {
  if (campaigning || state === 'leading') return;
  campaigning = true;
  try {
    const r = await post(`${leaderPath}/campaign`, { contenderId, ttlMs }, requestTimeoutMs);
    if (r.status !== 200) throw new Error(`campaign answered ${r.status}: ${JSON.stringify(r.body)}`);
    if (r.body.granted) {
      sessionId = r.body.leader.sessionId;
      state = 'leading';
      renewTimer = setInterval(() => void renew(), ttlMs / 3);
      announce('leading', r.body.leader.fencingToken);
    } else if (state === 'starting') {
      state = 'standby';
      announce('standby');
    }
  } catch (err) {
    console.error(`contender ${contenderId}: ${(err as Error).message}`);
  } finally {
    campaigning = false;
  }
}

async function renew(): Promise<void> {
  if (state !== 'leading') return;
  try {
    const r = await post(`${leaderPath}/renew`, { contenderId, sessionId, ttlMs }, requestTimeoutMs);
    if (r.status === 409) stepDown();
    else if (r.status !== 200) throw new Error(`renew answered ${r.status}: ${JSON.stringify(r.body)}`);
  } catch (err) {
    console.error(`contender ${contenderId}: ${(err as Error).message}`);
  }
}

function stepDown(): void {
  if (state !== 'leading') return;
  if (renewTimer) clearInterval(renewTimer);
  renewTimer = null;
  sessionId = null;
  state = 'standby';
  announce('lost');
}

// Watch first, so that no end of the lease goes unseen.
const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/clusters/${clusterId}/watch?components=${encodeURIComponent(component)}`);
ws.on('message', (data) => {
  const m = JSON.parse(data.toString());
  if (m.type === 'snapshot') {
    if (state === 'starting') void campaign();
    return;
  }
  if (m.type !== 'change' || m.component !== component) return;
  if (m.event === 'expired' || m.event === 'revoked') {
    stepDown(); // our own lease ended, if it was ours
    void campaign();
  } else if (m.event === 'granted' && state === 'leading' && m.leader?.sessionId !== sessionId) {
    stepDown();
  }
});
ws.on('close', (code) => {
  console.error(`contender ${contenderId}: watch closed (${code})`);
  process.exit(1);
});
ws.on('error', (err) => console.error(`contender ${contenderId}: watch: ${err.message}`));

// In case an end of the lease was missed.
setInterval(() => {
  if (state === 'standby') void campaign();
}, ttlMs / 4);
