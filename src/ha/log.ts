import type { LogFn } from 'pino';

/** The part of a pino logger the HA core uses (Fastify's logger is one too). */
export interface Log {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}
