/**
 * Renewals over a websocket (docs/api.md, "Renewals over a stream"), etcd's LeaseKeepAlive
 * shape: one stream carries the renewals of any number of leases and leaderships, each
 * message answered with its `id`, through the same HA-core calls (and so the same scripts,
 * batching and session binding) as `POST …/renew`. The token is checked on the upgrade
 * (role `contend`), each message's cluster against it; the leases renewed on a stream are
 * owned by that token, as those renewed over HTTP by the requests'.
 *
 * A lease this stream renewed that the server sees end (expired, revoked, taken) is told at
 * once with a `lost` message; the next renewal of it answers NotLeader in any case.
 */
import type { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { Compile } from 'typebox/compile';
import type { Static } from 'typebox';
import type { WebSocket } from 'ws';
import { HaError, type WatchMessage } from '../../ha/index.js';
import type { Caller } from '../auth.js';
import { renewedText } from '../encode.js';
import { errorBody, httpError, sendError } from '../errors.js';
import { electionBodies } from '../schemas.js';
import type { App, RouteContext } from '../types.js';
import { normalise, originRule } from './watch.js';

/** Messages are text frames, even when passed as bytes. */
const TEXT = { binary: false };

/** Renewals of one stream the server works on at once; more are refused (429) until some
 * are answered: a stream cannot queue unbounded work on the server. */
export const MAX_IN_FLIGHT = 1024;

/** Unsent bytes after which the peer counts as too slow to read its answers. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/** Errors after which a lease is not ours any more: no `lost` to push for it. */
const GONE = new Set(['NotLeader', 'NotLeaseOwner', 'NotLeadershipOwner']);

/** After a leadership's lease should have run out, the wait before reading it (ms): Redis
 * expires it on its own clock. */
const EXPIRY_SLACK_MS = 100;

interface Lease {
  clusterId: string;
  /** null: the cluster's leadership. */
  component: string | null;
  contenderId: string;
  sessionId: string;
  /** A leadership's: when its lease runs out unless renewed (Date.now()), and the timer that
   * reads it then. A leadership with nothing published changes no component when it ends. */
  until?: number;
  timer?: NodeJS.Timeout;
}

/** The streams holding a cluster's leadership, told when this server ends one (a
 * revocation or resignation of a leadership with nothing published changes nothing a watch
 * would see). */
type Holders = Map<string, Set<RenewalStream>>;

export function renewalRoutes(app: App, context: RouteContext): void {
  const { config, access, sockets } = context;
  const allowed = originRule(config.wsAllowedOrigins, access.open);
  const schema = electionBodies(config).streamRenewal;
  const valid = Compile(schema);
  const callers = new WeakMap<FastifyRequest, Caller | null>();
  const holders: Holders = new Map();
  context.ha.events.on((e) => {
    if (e.component === null && (e.event === 'revoked' || e.event === 'resigned')) holders.get(e.clusterId)?.forEach((s) => s.leadershipEnded(e.clusterId));
  });
  app.route({
    method: 'GET',
    url: '/v1/renewals',
    // Checked before the upgrade, so that a refusal is a plain HTTP answer: a browser's
    // origin as for the watch, then the token, which must be allowed to contend. Each
    // message's cluster is checked against it (403 in the answer).
    onRequest: (req, _reply, done) => {
      const origin = req.headers.origin;
      if (origin !== undefined && !allowed(origin, req.headers.host)) {
        done(httpError(403, `origin '${origin}' is not allowed (WS_ALLOWED_ORIGINS)`));
        return;
      }
      try {
        callers.set(req, access.caller(req.headers.authorization, 'contend'));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    handler: async (_req, reply) =>
      sendError(reply.header('upgrade', 'websocket'), 426, 'UpgradeRequired', 'this route is a websocket: send an upgrade request'),
    wsHandler: (socket, req) => {
      sockets.add(socket);
      socket.once('close', context.metrics.renewalStream());
      const stream = new RenewalStream(socket, callers.get(req) ?? null, context, holders, (m) => valid.Check(m), (m) => [...valid.Errors(m)]);
      socket.on('message', (data) => stream.receive(data.toString()));
      socket.once('close', () => stream.close());
    },
  });
}

type Renewal = Static<ReturnType<typeof electionBodies>['streamRenewal']>;

class RenewalStream {
  private inFlight = 0;
  private corked = false;
  private closed = false;
  /** The leases renewed here, by cluster and component ('' for the leadership). */
  private readonly leases = new Map<string, Lease>();
  /** Each cluster's watch (for `lost`): its stop, once it started. */
  private readonly watches = new Map<string, { stop: (() => void) | null }>();

  constructor(
    private readonly socket: WebSocket,
    private readonly caller: Caller | null,
    private readonly ctx: RouteContext,
    private readonly holders: Holders,
    private readonly valid: (m: unknown) => boolean,
    private readonly errors: (m: unknown) => Array<{ instancePath: string; message: string }>,
  ) {}

  receive(text: string): void {
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
      this.refuse(null, httpError(400, 'a message must be a JSON object'));
      return;
    }
    const id = idOf(m);
    if (!this.valid(m)) {
      // The most precise error: one about a property rather than the whole message.
      const errors = this.errors(m);
      const e = errors.filter((x) => x.instancePath !== '').pop() ?? errors[0];
      this.refuse(id, httpError(400, `message${e?.instancePath ?? ''} ${e?.message ?? 'is invalid'}`));
      return;
    }
    const r = m as Renewal;
    if ((r.component === undefined) === (r.leadership === undefined)) {
      this.refuse(id, httpError(400, 'message must name either a component or the leadership'));
      return;
    }
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.refuse(id, httpError(429, `more than ${MAX_IN_FLIGHT} renewals in flight on this stream; wait for answers`, 'TooManyRequests'));
      return;
    }
    try {
      this.caller?.mayTouch(r.clusterId);
    } catch (err) {
      this.refuse(id, err);
      return;
    }
    this.renew(r);
  }

  private renew(r: Renewal): void {
    const { ha, config } = this.ctx;
    const owner = this.caller?.name ?? '';
    const component = r.component === undefined ? null : normalise(r.component);
    const lease: Lease = { clusterId: r.clusterId, component, contenderId: r.contenderId, sessionId: r.sessionId };
    const idText = JSON.stringify(r.id);
    this.inFlight++;
    const answered =
      component === null
        ? ha.leadership
            .renew(r.clusterId, { contenderId: r.contenderId, sessionId: r.sessionId, ttlMs: r.ttlMs, fallbackTtlMs: config.leaseTtl.defaultMs, owner })
            .then((leadership) => {
              lease.until = Date.now() + leadership.remainingMs;
              return '{"id":' + idText + ',"leadership":' + JSON.stringify(leadership) + '}';
            })
        : ha.election
            .renew(r.clusterId, component, r.contenderId, r.sessionId, r.ttlMs, config.leaseTtl.defaultMs, owner)
            // renewedText is `{"leader":…}`, cached per leader: the id goes in front.
            .then((s) => '{"id":' + idText + ',' + renewedText(s).slice(1));
    answered.then(
      (text) => {
        this.inFlight--;
        this.ctx.metrics.streamRenewal(null);
        this.hold(lease);
        this.send(text);
      },
      (err: unknown) => {
        this.inFlight--;
        if (err instanceof HaError && GONE.has(err.code)) this.forget(keyOf(lease));
        this.refuse(r.id, err);
      },
    );
  }

  /** Answers an error as HTTP would, with the message's id (null when it had none). */
  private refuse(id: unknown, err: unknown): void {
    let body = errorBody(err);
    if (!body) {
      this.ctx.log.error({ err }, 'internal error in a streamed renewal');
      body = { error: 'Internal', message: 'internal server error', statusCode: 500 };
    }
    this.ctx.metrics.streamRenewal(body.error);
    this.send(JSON.stringify({ id: id ?? null, ...body }));
  }

  private send(text: string): void {
    const socket = this.socket;
    if (this.closed || socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      socket.close(1013, 'too slow: read the answers');
      return;
    }
    // The answers of one batch of renewals (resolved in one go) leave in one write: the
    // socket stays corked until the microtasks that send them are done.
    if (!this.corked) {
      const raw = (socket as unknown as { _socket?: Socket })._socket;
      if (raw) {
        raw.cork();
        this.corked = true;
        process.nextTick(() => {
          this.corked = false;
          raw.uncork();
        });
      }
    }
    socket.send(text, TEXT);
  }

  /** A renewed lease: watched from now on, so that its end is told at once. */
  private hold(lease: Lease): void {
    const key = keyOf(lease);
    const known = this.leases.get(key);
    if (known?.sessionId === lease.sessionId) {
      if (lease.until !== undefined && known.until !== undefined) known.until = Math.max(known.until, lease.until);
      return;
    }
    if (known) this.forget(key);
    this.leases.set(key, lease);
    if (lease.component === null) this.timeLeadership(lease);
    this.watch(lease.clusterId);
  }

  /** Reads a held leadership once its lease should have run out (unless renewed meanwhile):
   * one with nothing published ends unseen by any watch. */
  private timeLeadership(lease: Lease): void {
    let set = this.holders.get(lease.clusterId);
    if (!set) this.holders.set(lease.clusterId, (set = new Set()));
    set.add(this);
    const arm = () => {
      lease.timer = setTimeout(
        () => {
          if (this.leases.get(keyOf(lease)) !== lease) return;
          if (Date.now() < lease.until!) arm();
          else this.checkLeadership(lease, arm);
        },
        Math.max(0, lease.until! - Date.now()) + EXPIRY_SLACK_MS,
      );
      // A stream's timers keep no process alive.
      lease.timer.unref();
    };
    arm();
  }

  /** This server ended the cluster's leadership (revoked, resigned): ours? */
  leadershipEnded(clusterId: string): void {
    const lease = this.leases.get(clusterId + ' ');
    if (lease) this.checkLeadership(lease);
  }

  private forget(key: string): void {
    const lease = this.leases.get(key);
    if (!lease) return;
    this.leases.delete(key);
    if (lease.component !== null) return;
    clearTimeout(lease.timer);
    const set = this.holders.get(lease.clusterId);
    set?.delete(this);
    if (set?.size === 0) this.holders.delete(lease.clusterId);
  }

  /** Follows the cluster's changes (the watch's own machinery, from the view's index: no
   * snapshot to send) while this stream lives. */
  private watch(clusterId: string): void {
    if (this.watches.has(clusterId) || this.closed) return;
    const entry: { stop: (() => void) | null } = { stop: null };
    this.watches.set(clusterId, entry);
    this.ctx.ha.views
      .get(clusterId)
      .then((view) => view.watch(null, view.index, (m) => this.changed(clusterId, m)))
      .then(
        (stop) => {
          if (this.closed) stop();
          else entry.stop = stop;
        },
        // Redis is down: the renewals answer that; the next one held watches again.
        () => this.watches.delete(clusterId),
      );
  }

  private changed(clusterId: string, m: WatchMessage): void {
    const leadership = this.leases.get(clusterId + ' ');
    if (m.type === 'snapshot') {
      for (const lease of this.leases.values()) {
        if (lease.clusterId !== clusterId || lease.component === null) continue;
        const now = m.leaders.find((l) => l.component === lease.component);
        if (now?.leader?.leader.sessionId !== lease.sessionId) this.lost(lease, 'ended');
      }
      if (leadership) this.checkLeadership(leadership);
      return;
    }
    const c = m.change;
    const lease = this.leases.get(clusterId + ' ' + c.component);
    if (lease && (c.leader === null || c.leader.sessionId !== lease.sessionId)) this.lost(lease, c.event);
    // A leadership's components end with it; one unpublished ends alone: ask.
    if (leadership && c.leader === null) this.checkLeadership(leadership);
  }

  /** Pushes `lost` unless the session still holds the leadership; then `still`, with the
   * lease's new end. */
  private checkLeadership(lease: Lease, still?: () => void): void {
    this.ctx.ha.leadership.get(lease.clusterId).then(
      (now) => {
        if (now?.sessionId !== lease.sessionId) this.lost(lease, 'ended');
        else if (still && this.leases.get(keyOf(lease)) === lease) {
          // Renewed elsewhere (over HTTP, say) meanwhile.
          lease.until = Math.max(lease.until!, Date.now() + now.remainingMs);
          still();
        }
      },
      // Redis is down: the next renewal answers that; read again after a while.
      () => {
        if (!still || this.leases.get(keyOf(lease)) !== lease) return;
        lease.until = Date.now() + 1000;
        still();
      },
    );
  }

  private lost(lease: Lease, reason: string): void {
    const key = keyOf(lease);
    if (this.leases.get(key) !== lease) return;
    this.forget(key);
    const { clusterId, component, contenderId, sessionId } = lease;
    const what = component === null ? { leadership: true } : { component };
    this.ctx.metrics.streamLeaseLost(component);
    this.send(JSON.stringify({ type: 'lost', clusterId, ...what, contenderId, sessionId, reason }));
  }

  close(): void {
    this.closed = true;
    for (const key of [...this.leases.keys()]) this.forget(key);
    for (const w of this.watches.values()) w.stop?.();
    this.watches.clear();
  }
}

function keyOf(lease: Lease): string {
  return lease.clusterId + ' ' + (lease.component ?? '');
}

/** The message's id, if it has one of the allowed kinds, for its error answer. */
function idOf(m: unknown): number | string | null {
  const id = typeof m === 'object' && m !== null ? (m as { id?: unknown }).id : undefined;
  return (typeof id === 'number' && Number.isInteger(id)) || (typeof id === 'string' && id.length <= 64) ? id : null;
}
