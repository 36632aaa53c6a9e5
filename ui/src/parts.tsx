/** Pieces the pages share: loading data, formatting, the lease countdown, confirmed actions. */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  reload: () => void;
}

/** The result of `load`, run again when `deps` change or on reload(). */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: string | null }>({ data: undefined, error: null });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ data, error: null }),
      (err: Error) => live && setState((s) => ({ data: s.data, error: err.message })),
    );
    return () => {
      live = false;
    };
  }, [...deps, round]);
  return { ...state, reload: () => setRound((r) => r + 1) };
}

/** Re-renders every `ms` while mounted (countdowns). */
export function useTick(ms: number): number {
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    const t = setInterval(() => setNow(performance.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

export function fmtMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function fmtTime(t: string | number | null | undefined): string {
  if (t === null || t === undefined) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** Time left on a lease that had `remainingMs` at `at` (performance.now()), counted down. */
export function Countdown({ remainingMs, at, ttlMs }: { remainingMs: number; at: number; ttlMs?: number }) {
  const now = useTick(100);
  const left = Math.max(0, remainingMs - (now - at));
  const full = ttlMs ?? Math.max(remainingMs, 1);
  return (
    <span class={left === 0 ? 'countdown out' : 'countdown'} data-ms={Math.round(left)}>
      <meter min={0} max={full} value={left} low={full * 0.25} optimum={full} />
      {left === 0 ? 'expired?' : fmtMs(left)}
    </span>
  );
}

/**
 * An admin action: a button, then a confirmation step naming what it does, then the call;
 * its answer (or error) is shown beside it.
 */
export function Confirmed({ label, what, run, onDone }: { label: string; what: ComponentChildren; run: () => Promise<unknown>; onDone?: () => void }) {
  const [step, setStep] = useState<'idle' | 'confirm' | 'busy'>('idle');
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  if (step === 'idle') {
    return (
      <span class="action">
        <button
          class="danger"
          onClick={() => {
            setResult(null);
            setStep('confirm');
          }}
        >
          {label}
        </button>
        {result && <span class={result.ok ? 'ok' : 'error'}>{result.text}</span>}
      </span>
    );
  }
  return (
    <div class="confirm" role="alertdialog">
      <p>{what}</p>
      <button
        class="danger"
        disabled={step === 'busy'}
        onClick={async () => {
          setStep('busy');
          try {
            const answer = await run();
            setResult({ ok: true, text: `done: ${JSON.stringify(answer)}` });
            onDone?.();
          } catch (err) {
            setResult({ ok: false, text: (err as Error).message });
          }
          setStep('idle');
        }}
      >
        Confirm: {label}
      </button>
      <button onClick={() => setStep('idle')} disabled={step === 'busy'}>
        Cancel
      </button>
    </div>
  );
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section id={id}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export function ErrorLine({ error }: { error: string | null }) {
  return error ? <p class="error">{error}</p> : null;
}

/** A table's header row. */
export function Head({ cols }: { cols: string[] }) {
  return (
    <thead>
      <tr>
        {cols.map((c) => (
          <th key={c}>{c}</th>
        ))}
      </tr>
    </thead>
  );
}
