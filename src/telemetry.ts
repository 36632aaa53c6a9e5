/**
 * Where the server's telemetry meets the HA core: the server's logger (JSON lines, or
 * pino-pretty's for a terminal), and the leadership events (ha/events.ts) logged at info
 * and counted in the metrics.
 */
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type { LeaseEvent, LeaseEvents } from './ha/index.js';
import type { Log } from './ha/log.js';
import type { Metrics } from './metrics.js';

/** The most components named in one event's log line (a leadership may publish many). */
const MAX_LOGGED_COMPONENTS = 50;

/** Logs every leadership event at info, and counts it. */
export function reportLeadershipEvents(events: LeaseEvents, log: Log, metrics: Metrics): void {
  events.renewalSlack = metrics.onRenewalSlack;
  events.on((e: LeaseEvent) => {
    metrics.onEvent(e);
    const line: Record<string, unknown> = {
      event: e.event,
      clusterId: e.clusterId,
      component: e.component,
      contenderId: e.contenderId,
      // The lease's fencing token, a number: access tokens are never logged.
      fencingToken: e.token,
    };
    if (e.takeoverGapMs !== undefined) line.takeoverGapMs = e.takeoverGapMs;
    if (e.components) {
      line.components = e.components.slice(0, MAX_LOGGED_COMPONENTS);
      if (e.components.length > MAX_LOGGED_COMPONENTS) line.componentCount = e.components.length;
    }
    log.info(line, 'leadership event');
  });
}

/**
 * The server's logger. With `pretty` (LOG_PRETTY=1, or NODE_ENV=development), lines for a
 * terminal through pino-pretty, when it is installed (`npm install --save-dev pino-pretty`):
 * it is not a dependency, so that a production install never needs it; without it, JSON
 * lines and a warning saying so.
 */
export function serverLogger(opts: { level: string; pretty: boolean; redact?: string[] }): Logger {
  const options = { level: opts.level, redact: opts.redact ?? [] };
  if (!opts.pretty) return pino(options);
  try {
    const target = createRequire(import.meta.url).resolve('pino-pretty');
    return pino({ ...options, transport: { target, options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  } catch {
    const log = pino(options);
    log.warn('LOG_PRETTY asks for pino-pretty, which is not installed (npm install --save-dev pino-pretty): logging JSON');
    return log;
  }
}
