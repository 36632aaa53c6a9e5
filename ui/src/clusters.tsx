/** The clusters this token may see (GET /v1/clusters), searched by prefix, a page at a time. */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, enc, type ClusterSummary } from './api';
import { ErrorLine, fmtTime, Head } from './parts';

interface Page {
  clusters: ClusterSummary[];
  nextCursor?: string;
}

/** Who leads each cluster-wide component, in a few words. */
function leadersText(c: ClusterSummary): string {
  return Object.entries(c.leaders)
    .map(([component, l]) => `${component}: ${l ? l.contenderId : '—'}`)
    .join(', ');
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
          <Head cols={['Cluster', 'Leaders', 'Leadership', 'Jobs', 'Last change', 'Index']} />
          <tbody>
            {clusters.map((c) => (
              <tr key={c.clusterId} data-cluster={c.clusterId}>
                <td>
                  <a href={`#/cluster/${enc(c.clusterId)}`}>{c.clusterId}</a>
                </td>
                <td>{leadersText(c)}</td>
                <td>{c.leadership ? `${c.leadership.contenderId} (${c.leadership.publishedCount} published)` : '—'}</td>
                <td>{c.jobCount}</td>
                <td>{fmtTime(c.lastChangeAt)}</td>
                <td>{c.index ?? '—'}</td>
              </tr>
            ))}
            {pages.length > 0 && clusters.length === 0 && (
              <tr>
                <td colSpan={6} class="note">
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
