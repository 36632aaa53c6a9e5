/**
 * Whether Redis's clock stepped, judged from two readings of its `TIME` against this
 * server's monotonic clock (docs/design.md §9). Leases run out by Redis's clock: a clock
 * stepped forward ends every lease early (a leader that renews on time is dropped and
 * another granted while the first still believes it leads, until its next renewal), one
 * stepped back makes leases last longer than their holders think. Hosts must slew their
 * clocks (chrony, ntpd), which moves them by a fraction of a millisecond per second: far
 * below what this counts as a step.
 */

/** One reading: Redis's `TIME` in ms, and this server's monotonic clock (ms) halfway
 * through the round trip that read it, with the round trip's length. */
export interface ClockReading {
  redisMs: number;
  monoMs: number;
  rttMs: number;
}

/** How far the two clocks may drift apart between two readings before it counts as a
 * step: well above scheduling jitter, a paused event loop or a slow round trip (whose
 * length is added), and far above any slew. */
export const CLOCK_STEP_TOLERANCE_MS = 1000;

/** Redis's `TIME` reply ([seconds, microseconds]) in ms. */
export function timeMs(reply: [string, string]): number {
  return Number(reply[0]) * 1000 + Number(reply[1]) / 1000;
}

/** By how much Redis's clock moved against the monotonic clock between `prev` and `next`
 * (ms; positive: it jumped forward), or null when the difference is within the tolerance
 * and the uncertainty of the two round trips: no step. */
export function clockStep(prev: ClockReading, next: ClockReading, toleranceMs = CLOCK_STEP_TOLERANCE_MS): number | null {
  const divergence = next.redisMs - prev.redisMs - (next.monoMs - prev.monoMs);
  const uncertainty = (prev.rttMs + next.rttMs) / 2;
  return Math.abs(divergence) > toleranceMs + uncertainty ? Math.round(divergence) : null;
}
