import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from '../config.js';
import type { HaServices } from '../ha/index.js';
import type { Log } from '../ha/log.js';
import type { Metrics } from '../metrics.js';
import type { WatcherSockets } from './watcherSockets.js';
import type { Access } from './auth.js';

/** The Fastify instance with TypeBox typing of requests. */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** What every route module is given: each is `(app: App, context: RouteContext) => void`. */
export interface RouteContext {
  ha: HaServices;
  config: Config;
  metrics: Metrics;
  sockets: WatcherSockets;
  log: Log;
  /** The access tokens, for routes that check them themselves (the renewal stream). */
  access: Access;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the caller's token, once checked (auth.ts); null when open or unchecked. */
    grant: string | null;
    /** Whether that token is an admin's: it may force a resignation (auth.ts). */
    grantAdmin: boolean;
  }
}
