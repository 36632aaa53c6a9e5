/** The clusters this token may see (GET /v1/clusters), searched by prefix, a page at a time. */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, enc, type ClusterSummary } from './api';
import { ErrorLine, fmtTime } from './parts';

interface Page {
  clusters: ClusterSummary[];
  nextCursor?: string;
}

/** A short word on a cluster's leaders summary, whatever shape the server gives it. */
function leadersText(c: ClusterSummary): string {
  const l = c.leaders as unknown;
  if (Array.isArray(l)) return `${l.filter((x) => x && (x as { leader?: unknown }).leader !== null).length}/${l.length} led`;
  if (l && typeof l === 'object') {
    const o = l as Record<string, unknown>;
    if (typeof o.led === 'number') return `${o.led} led`;
    return Object.entries(o)
      .map(([k, v]) => `${k}: ${typeof v === 'object' && v !== null ? ((v as { contenderId?: string }).contenderId ?? '…') : String(v ?? '—')}`)
      .join(', ');
  }
  return l === undefined ? '' : String(l);
}

export function ClustersPage() {
  const [prefix, setPrefix] = useState('');
  const [pages, setPages] = useState<Page[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [missing, setMissing] = useState(false);

  const load = async (cursor: string | undefined, reset: boolean) => {
    const q = new URLSearchParams({ limit: '50' });
    if (prefix) q.set('prefix', prefix);
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await api<Page>(`/v1/clusters?${q}`);
      setPages((p) => (reset ? [page] : [...p, page]));
      setError(null);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && err.code === 'NotFound') setMissing(true);
      else setError((err as Error).message);
    }
  };
  useEffect(() => {
    const t = setTimeout(() => load(undefined, true), prefix ? 200 : 0);
    return () => clearTimeout(t);
  }, [prefix]);

  const clusters = pages.flatMap((p) => p.clusters);
  const next = pages.length ? pages[pages.length - 1].nextCursor : undefined;
  return (
    <section>
      <h1>Clusters</h1>
      <form
        class="search"
        onSubmit={(e) => {
          e.preventDefault();
          if (missing && prefix) location.hash = `#/cluster/${enc(prefix)}`;
        }}
      >
        <input
          type="search"
          name="prefix"
          placeholder={missing ? 'cluster id' : 'search by id prefix'}
          value={prefix}
          onInput={(e) => setPrefix((e.target as HTMLInputElement).value)}
        />
        {missing && <button type="submit">Open</button>}
      </form>
      {missing && <p class="note">This server cannot list clusters: open one by its id.</p>}
      <ErrorLine error={error} />
      {!missing && (
        <table class="clusters">
          <thead>
            <tr>
              <th>Cluster</th>
              <th>Leaders</th>
              <th>Jobs</th>
              <th>Last change</th>
              <th>Index</th>
            </tr>
          </thead>
          <tbody>
            {clusters.map((c) => (
              <tr key={c.clusterId} data-cluster={c.clusterId}>
                <td>
                  <a href={`#/cluster/${enc(c.clusterId)}`}>{c.clusterId}</a>
                </td>
                <td>{leadersText(c)}</td>
                <td>{c.jobCount ?? ''}</td>
                <td>{fmtTime(c.lastChangeAt)}</td>
                <td>{c.index ?? ''}</td>
              </tr>
            ))}
            {pages.length > 0 && clusters.length === 0 && (
              <tr>
                <td colSpan={5} class="note">
                  No cluster{prefix ? ` starts with “${prefix}”` : ''}.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {next && <button onClick={() => load(next, false)}>More</button>}
    </section>
  );
}
