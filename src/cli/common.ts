/** What every command shares: the client built from the global options, exit codes,
 * output, argument parsers and the wait for a signal. */
import { InvalidArgumentError, type Command } from 'commander';
import {
  AuthError,
  BadRequestError,
  ConflictError,
  FencingError,
  LeaseholdClient,
  NotFoundError,
  NotLeaderError,
  UnavailableError,
  type Fence,
} from '../client/index.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export const EXIT = { ok: 0, error: 1, usage: 2, refused: 3, notFound: 4, auth: 5, unavailable: 6 } as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  ok
  1  unexpected error
  2  usage error, or the server said 400/413/415 (BadRequest)
  3  refused: not granted, NotLeader, fencing or another 409/422 (Conflict)
  4  not found (404)
  5  not authorised (401/403): see --token
  6  unavailable: 503, 429, timeout, connection refused

Errors go to stderr as "leasehold: <Code>: <message>"; output for scripts goes to stdout.`;

/** A command line the CLI itself refuses (exit 2). */
export class UsageError extends Error {
  readonly code = 'Usage';
}

/** What a command's action answers: an exit code, or `serving` when the process must live
 * on (the server installed its own signal handlers). */
export type Outcome = number | 'serving';

let outcome: Outcome = EXIT.ok;

/** Wraps an action so that its answer becomes the process's outcome. */
export function act<A extends unknown[]>(fn: (...args: A) => Promise<Outcome>): (...args: A) => Promise<void> {
  return async (...args) => {
    outcome = await fn(...args);
  };
}

export const lastOutcome = (): Outcome => outcome;

export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError || err instanceof BadRequestError) return EXIT.usage;
  if (err instanceof NotLeaderError || err instanceof FencingError || err instanceof ConflictError) return EXIT.refused;
  if (err instanceof NotFoundError) return EXIT.notFound;
  if (err instanceof AuthError) return EXIT.auth;
  if (err instanceof UnavailableError) return EXIT.unavailable;
  return EXIT.error;
}

/** Errors a retry cannot cure: `--hold` stops on them instead of retrying forever. */
export const isFatal = (err: Error): boolean => err instanceof BadRequestError || err instanceof AuthError || err instanceof NotFoundError;

/** `leasehold: <Code>: <message>`; the code is the server's (`NotLeader`, …) when there is one. */
export function describeError(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = 'code' in e && typeof e.code === 'string' ? e.code : e.name;
  return `leasehold: ${code}: ${e.message}`;
}

interface GlobalOptions {
  url?: string;
  token?: string;
  timeout: number;
}

/** The client of the global options (an empty env variable counts as unset). */
export function clientOf(cmd: Command): LeaseholdClient {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  return new LeaseholdClient({ url: g.url || DEFAULT_URL, token: g.token || undefined, timeoutMs: g.timeout });
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** One line of NDJSON. */
export function printLine(value: unknown): void {
  print(JSON.stringify(value));
}

export function warn(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** An argument parser for integers from `min` to `max`. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}`);
    }
    return n;
  };
}

/** `override` or a fencing token. */
export function fence(text: string): Fence {
  if (text === 'override') return 'override';
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new InvalidArgumentError('expected override or a fencing token');
  return Number(text);
}

/** Resolves on the first SIGINT or SIGTERM (a second one then kills as usual). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
