/** Clocks and waits of the client. */

/** Milliseconds on a monotonic clock: never jumps with the wall clock. */
export const monotonicNow = (): number => performance.now();

/** Exponential backoff with full jitter: attempt 0 waits up to `minMs`, each further
 * attempt up to twice as long, never more than `maxMs`. */
export function backoffMs(attempt: number, minMs: number, maxMs: number): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return minMs / 2 + Math.random() * (cap - minMs / 2);
}

/** Sleeps `ms`, or less when `signal` aborts (then it resolves; the caller checks). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

interface Listenable<A extends unknown[]> {
  on(event: string, listener: (...args: A) => void): unknown;
  off(event: string, listener: (...args: A) => void): unknown;
}

/**
 * The first `event` of `emitter` for which `pick` answers a value, or `signal`'s reason.
 * (`events.once` would also reject on the emitter's `error` events, which here only report
 * failures that are being retried.)
 */
export function nextEvent<A extends unknown[], T>(
  emitter: Listenable<A>,
  event: string,
  pick: (...args: A) => T | undefined,
  signal?: AbortSignal,
): Promise<T> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      emitter.off(event, onEvent);
      signal?.removeEventListener('abort', onAbort);
    };
    const onEvent = (...args: A) => {
      const value = pick(...args);
      if (value === undefined) return;
      done();
      resolve(value);
    };
    const onAbort = () => {
      done();
      reject(signal!.reason);
    };
    emitter.on(event, onEvent);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
