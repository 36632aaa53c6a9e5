/**
 * One cluster: its components' leaders, kept live by the watch websocket (lease times
 * refreshed by reading the leaders every 2 s, as renewals are no changes), its leadership,
 * the change stream, the history timeline per component, its jobs, and the admin actions.
 */
import { Fragment } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, enc, maybe, Watch, type ComponentLeader, type HistoryEntry, type Leader, type WatchMessage, type WatchState } from './api';
import { Confirmed, Countdown, ErrorLine, fmtMs, fmtTime, Head, Section, useLoad, useTick } from './parts';

/** A leader with when (performance.now()) its lease time was read. */
interface Held {
  leader: Leader | null;
  at: number;
}

interface Change {
  event: string;
  component: string;
  leader: Leader | null;
  index: number;
  receivedAt: number;
}

interface LeadershipInfo {
  contenderId: string;
  sessionId: string;
  token: number;
  ttlMs: number;
  remainingMs: number;
  components: Array<{ component: string; address?: string | null }>;
}

const POLL_MS = 2000;
const MAX_CHANGES = 200;

function order(a: string, b: string): number {
  const ja = a.startsWith('jobmanager/');
  const jb = b.startsWith('jobmanager/');
  return ja === jb ? a.localeCompare(b) : ja ? 1 : -1;
}

function short(id: string): string {
  return id.length > 13 ? `${id.slice(0, 8)}…` : id;
}

/** The live picture of the cluster's leaders: the watch's messages, with lease times read again every POLL_MS. */
function useLeaders(clusterId: string, onChange: (c: Change) => void) {
  const [leaders, setLeaders] = useState<Map<string, Held>>(new Map());
  const [state, setState] = useState<{ watch: WatchState; index: number | undefined; since: number | null }>({ watch: 'connecting', index: undefined, since: null });
  const applied = useRef(-1);
  const changeRef = useRef(onChange);
  changeRef.current = onChange;

  useEffect(() => {
    applied.current = -1;
    setLeaders(new Map());
    const onMessage = (m: WatchMessage) => {
      const at = performance.now();
      if (m.type === 'snapshot') {
        applied.current = m.index;
        setLeaders(new Map(m.leaders.map((c) => [c.component, { leader: c.leader, at }])));
        return;
      }
      changeRef.current({ event: m.event, component: m.component, leader: m.leader, index: m.index, receivedAt: Date.now() });
      if (m.index <= applied.current) return; // a read of the leaders already had it
      applied.current = m.index;
      setLeaders((prev) => new Map(prev).set(m.component, { leader: m.leader, at }));
    };
    const watch = new Watch(clusterId, onMessage, (watchState, index) =>
      setState((s) => ({ watch: watchState, index, since: watchState === 'live' ? null : (s.since ?? Date.now()) })),
    );
    // Renewals change lease times but are no changes: read them. A read older than what the
    // watch gave is dropped.
    const poll = setInterval(async () => {
      try {
        const at = performance.now();
        const r = await api<{ leaders: ComponentLeader[]; index: number }>(`/v1/clusters/${enc(clusterId)}/leaders`);
        if (r.index < applied.current) return;
        applied.current = r.index;
        setLeaders((prev) => {
          const next = new Map<string, Held>();
          for (const [c, h] of prev) if (!c.startsWith('jobmanager/')) next.set(c, h);
          for (const c of r.leaders) next.set(c.component, { leader: c.leader, at });
          return next;
        });
      } catch {
        // the watch shows the server is away
      }
    }, POLL_MS);
    return () => {
      watch.close();
      clearInterval(poll);
    };
  }, [clusterId]);
  return { leaders, ...state };
}

function WatchStatus({ watch, index, since }: { watch: WatchState; index: number | undefined; since: number | null }) {
  useTick(1000);
  const text =
    watch === 'live'
      ? `live · index ${index ?? '—'}`
      : watch === 'connecting'
        ? 'connecting…'
        : `behind · reconnecting since ${fmtMs(Date.now() - (since ?? Date.now()))}, resuming after index ${index ?? '—'}`;
  return (
    <p class={`status ${watch}`} data-watch={watch} aria-live="polite">
      {text}
    </p>
  );
}

function LeadersTable({ clusterId, leaders, admin }: { clusterId: string; leaders: Map<string, Held>; admin: boolean }) {
  const rows = [...leaders].sort(([a], [b]) => order(a, b));
  return (
    <table class="leaders">
      <Head cols={['Component', 'Leader', 'Address', 'Session', 'Token', 'Lease', ...(admin ? ['Admin'] : [])]} />
      <tbody>
        {rows.map(([component, { leader, at }]) => (
          <tr key={component} data-component={component}>
            <td>
              {component.startsWith('jobmanager/') ? <a href={`#/cluster/${enc(clusterId)}/job/${enc(component.slice(11))}`}>{component}</a> : component}
            </td>
            {leader ? (
              <>
                <td class="contender">{leader.contenderId}</td>
                <td class="address">{leader.address ?? '—'}</td>
                <td class="session" title={leader.sessionId}>
                  {short(leader.sessionId)}
                </td>
                <td class="token">{leader.fencingToken}</td>
                <td>
                  <Countdown remainingMs={leader.leaseRemainingMs} at={at} />
                </td>
                {admin && (
                  <td>
                    <Confirmed
                      label="Force resignation"
                      what={`End ${leader.contenderId}'s lease on ${component} now (session ${leader.sessionId})?`}
                      run={() =>
                        api(`/v1/clusters/${enc(clusterId)}/leaders/${component}/resign`, {
                          method: 'POST',
                          body: { contenderId: leader.contenderId, sessionId: leader.sessionId },
                        })
                      }
                    />
                  </td>
                )}
              </>
            ) : (
              <>
                <td class="none" colSpan={5}>
                  no leader
                </td>
                {admin && <td />}
              </>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function LeadershipView({ clusterId, admin, version }: { clusterId: string; admin: boolean; version: number }) {
  const { data, error, reload } = useLoad(
    async () => ({ l: (await api<{ leadership: LeadershipInfo | null }>(`/v1/clusters/${enc(clusterId)}/leadership`)).leadership, at: performance.now() }),
    [clusterId, version],
  );
  if (error) return <ErrorLine error={error} />;
  if (!data) return <p class="note">…</p>;
  const { l, at } = data;
  if (!l) return <p class="note">No leadership is held.</p>;
  return (
    <div class="leadership">
      <dl>
        <dt>Contender</dt>
        <dd>{l.contenderId}</dd>
        <dt>Session</dt>
        <dd>{l.sessionId}</dd>
        <dt>Token</dt>
        <dd>{l.token}</dd>
        <dt>Lease</dt>
        <dd>
          <Countdown remainingMs={l.remainingMs} at={at} ttlMs={l.ttlMs} />
        </dd>
        <dt>Components</dt>
        <dd>{l.components.map((c) => c.component).join(', ') || '—'}</dd>
      </dl>
      {admin && (
        <Confirmed
          label="Revoke leadership"
          what={`Revoke ${l.contenderId}'s leadership (session ${l.sessionId})? Every component it published loses its leader.`}
          run={() => api(`/v1/clusters/${enc(clusterId)}/leadership/revoke`, { method: 'POST', body: { sessionId: l.sessionId } })}
          onDone={reload}
        />
      )}
    </div>
  );
}

function ChangeStream({ changes }: { changes: Change[] }) {
  if (changes.length === 0) return <p class="note">No change since this page opened.</p>;
  return (
    <ol class="changes" reversed>
      {changes.map((c) => (
        <li key={c.index + c.component + c.event} class={c.event} data-event={c.event} data-component={c.component}>
          <time>{fmtTime(c.receivedAt)}</time> <b>{c.event}</b> {c.component}
          {c.leader ? ` → ${c.leader.contenderId} (token ${c.leader.fencingToken})` : ''} <span class="index">#{c.index}</span>
        </li>
      ))}
    </ol>
  );
}

/** One component's leaderships on a time axis, takeover gaps marked between them, then as a list. */
function Timeline({ component, entries, now }: { component: string; entries: HistoryEntry[]; now: number }) {
  const sorted = [...entries].sort((a, b) => Date.parse(a.grantedAt) - Date.parse(b.grantedAt));
  const start = Date.parse(sorted[0].grantedAt);
  const span = Math.max(1, now - start);
  const pct = (t: number) => `${(((t - start) / span) * 100).toFixed(3)}%`;
  const width = (a: number, b: number) => `${Math.max(0.4, ((b - a) / span) * 100).toFixed(3)}%`;
  return (
    <div class="timeline" data-component={component}>
      <h3>{component}</h3>
      <div class="axis">
        {sorted.map((e, i) => {
          const g = Date.parse(e.grantedAt);
          const end = e.endedAt ? Date.parse(e.endedAt) : now;
          const prevEnd = i > 0 && sorted[i - 1].endedAt ? Date.parse(sorted[i - 1].endedAt!) : null;
          return (
            <Fragment key={e.sessionId + e.grantedAt}>
              {prevEnd !== null && e.takeoverGapMs != null && (
                <span class="gap" style={{ left: pct(prevEnd), width: width(prevEnd, g) }} title={`takeover gap ${fmtMs(e.takeoverGapMs)}`} />
              )}
              <span
                class={`term ${e.ended ?? 'live'}`}
                style={{ left: pct(g), width: width(g, end) }}
                title={`${e.contenderId}: ${fmtTime(e.grantedAt)} → ${e.endedAt ? `${fmtTime(e.endedAt)} (${e.ended})` : 'now'}`}
              />
            </Fragment>
          );
        })}
      </div>
      <table class="history">
        <Head cols={['Leader', 'Session', 'Token', 'Address', 'Granted', 'Ended', 'How', 'Takeover gap']} />
        <tbody>
          {sorted
            .slice()
            .reverse()
            .map((e) => (
              <tr key={e.sessionId + e.grantedAt} data-session={e.sessionId}>
                <td>{e.contenderId}</td>
                <td title={e.sessionId}>{short(e.sessionId)}</td>
                <td>{e.token ?? ''}</td>
                <td>{e.address ?? '—'}</td>
                <td>{fmtTime(e.grantedAt)}</td>
                <td>{e.endedAt ? fmtTime(e.endedAt) : 'leading'}</td>
                <td>{e.ended ?? ''}</td>
                <td class={e.takeoverGapMs != null ? 'gap-ms' : ''} data-gap-ms={e.takeoverGapMs ?? ''}>
                  {e.takeoverGapMs != null ? fmtMs(e.takeoverGapMs) : ''}
                </td>
              </tr>
            ))}
        </tbody>
      </table>
    </div>
  );
}

function History({ clusterId, version }: { clusterId: string; version: number }) {
  const [missing, setMissing] = useState(false);
  const { data, error } = useLoad(async () => {
    try {
      return await api<{ entries: HistoryEntry[] }>(`/v1/clusters/${enc(clusterId)}/history?limit=1000`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && err.code === 'NotFound') setMissing(true);
      throw err;
    }
  }, [clusterId, version]);
  useTick(1000); // running terms grow
  const byComponent = useMemo(() => {
    const m = new Map<string, HistoryEntry[]>();
    for (const e of data?.entries ?? []) m.set(e.component, [...(m.get(e.component) ?? []), e]);
    return [...m].sort(([a], [b]) => order(a, b));
  }, [data]);
  if (missing) return <p class="note">This server keeps no leadership history.</p>;
  if (error) return <ErrorLine error={error} />;
  if (!data) return <p class="note">…</p>;
  if (byComponent.length === 0) return <p class="note">No leadership recorded yet.</p>;
  const wall = Date.now();
  return (
    <>
      {byComponent.map(([component, entries]) => (
        <Timeline key={component} component={component} entries={entries} now={wall} />
      ))}
    </>
  );
}

function Jobs({ clusterId, leaders, version }: { clusterId: string; leaders: Map<string, Held>; version: number }) {
  const { data, error } = useLoad(async () => {
    const [results, plans] = await Promise.all([
      maybe<{ jobResults: Array<{ jobId: string; state: string; applicationStatus: string }> }>(`/v1/clusters/${enc(clusterId)}/job-results?limit=100`),
      maybe<{ jobIds: string[] }>(`/v1/clusters/${enc(clusterId)}/execution-plans?limit=100`),
    ]);
    return { results: results?.jobResults ?? [], plans: plans?.jobIds ?? [] };
  }, [clusterId, version]);
  const jobs = new Map<string, { leader: boolean; plan: boolean; result: string | null }>();
  const job = (id: string) => jobs.get(id) ?? jobs.set(id, { leader: false, plan: false, result: null }).get(id)!;
  for (const [c, h] of leaders) if (c.startsWith('jobmanager/') && h.leader) job(c.slice(11)).leader = true;
  for (const id of data?.plans ?? []) job(id).plan = true;
  for (const r of data?.results ?? []) job(r.jobId).result = `${r.applicationStatus} (${r.state})`;
  return (
    <>
      <ErrorLine error={error} />
      {jobs.size === 0 ? (
        <p class="note">No job has a leader, a plan or a result.</p>
      ) : (
        <table class="jobs">
          <Head cols={['Job', 'Job manager', 'Plan', 'Result']} />
          <tbody>
            {[...jobs].sort(([a], [b]) => a.localeCompare(b)).map(([id, j]) => (
              <tr key={id} data-job={id}>
                <td>
                  <a href={`#/cluster/${enc(clusterId)}/job/${enc(id)}`}>{id}</a>
                </td>
                <td>{j.leader ? 'led' : '—'}</td>
                <td>{j.plan ? 'stored' : '—'}</td>
                <td>{j.result ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function ClusterPage({ clusterId, admin }: { clusterId: string; admin: boolean }) {
  const [changes, setChanges] = useState<Change[]>([]);
  // Bumped (at most every 250 ms) on changes: the history, leadership and jobs are read again.
  const [version, setVersion] = useState(0);
  const bump = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const onChange = (c: Change) => {
    setChanges((prev) => [c, ...prev].slice(0, MAX_CHANGES));
    if (bump.current === undefined) {
      bump.current = setTimeout(() => {
        bump.current = undefined;
        setVersion((v) => v + 1);
      }, 250);
    }
  };
  useEffect(() => () => clearTimeout(bump.current), []);
  const { leaders, watch, index, since } = useLeaders(clusterId, onChange);
  return (
    <>
      <nav>
        <a href="#/">Clusters</a> › {clusterId}
      </nav>
      <h1>{clusterId}</h1>
      <WatchStatus watch={watch} index={index} since={since} />
      <Section title="Components" id="components">
        {leaders.size === 0 && watch !== 'live' ? <p class="note">…</p> : <LeadersTable clusterId={clusterId} leaders={leaders} admin={admin} />}
      </Section>
      <Section title="Leadership" id="leadership">
        <LeadershipView clusterId={clusterId} admin={admin} version={version} />
      </Section>
      <Section title="Changes (live)" id="changes">
        <ChangeStream changes={changes} />
      </Section>
      <Section title="History" id="history">
        <History clusterId={clusterId} version={version} />
      </Section>
      <Section title="Jobs" id="jobs">
        <Jobs clusterId={clusterId} leaders={leaders} version={version} />
      </Section>
      {admin && (
        <Section title="Admin" id="admin">
          <Confirmed
            label="Clean up cluster"
            what={`Delete every piece of data of cluster ${clusterId}: its leases, leaderships, stores and change log?`}
            run={() => api(`/v1/clusters/${enc(clusterId)}`, { method: 'DELETE' })}
          />
        </Section>
      )}
    </>
  );
}
