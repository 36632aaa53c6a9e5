/** A clock that moves only when a test moves it: timers fire in order of their due time
 * (then of their setting) within `advance`, never on their own. */
import type { Clock } from '../../src/ha/clusterSync.js';

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
  cleared: boolean;
}

export class TestingClock implements Clock {
  private t = 1_000;
  private seq = 0;
  private readonly timers = new Set<Timer>();

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const timer: Timer = { due: this.t + ms, seq: this.seq++, fn, cleared: false };
    this.timers.add(timer);
    return timer;
  }

  clearTimer(timer: unknown): void {
    const t = timer as Timer;
    t.cleared = true;
    this.timers.delete(t);
  }

  /** The due times of the timers set, from now, soonest first. */
  get pending(): number[] {
    return [...this.timers].sort(order).map((t) => t.due - this.t);
  }

  /** Moves time on by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers].filter((t) => t.due <= end).sort(order)[0];
      if (!next) break;
      this.timers.delete(next);
      this.t = Math.max(this.t, next.due);
      next.fn();
    }
    this.t = end;
  }
}

function order(a: Timer, b: Timer): number {
  return a.due - b.due || a.seq - b.seq;
}
