/**
 * The leasehold operator console: the clusters, each cluster's leaders live (the watch
 * websocket) with their lease countdowns, its leadership history, its jobs' stores, and
 * the admin actions for an admin token. Routes are the URL's hash: #/, #/cluster/<id>,
 * #/cluster/<id>/job/<jobId>.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, getToken, setToken, type Session } from './api';
import { ClustersPage } from './clusters';
import { ClusterPage } from './cluster';
import { JobPage } from './job';

type Route = { page: 'clusters' } | { page: 'cluster'; clusterId: string } | { page: 'job'; clusterId: string; jobId: string };

function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'cluster' && parts[1]) {
    if (parts[2] === 'job' && parts[3]) return { page: 'job', clusterId: parts[1], jobId: parts[3] };
    return { page: 'cluster', clusterId: parts[1] };
  }
  return { page: 'clusters' };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Who the token is: the server says (/ui/session); null while unknown or refused. */
function useSession(token: string): { session: Session | null; error: string | null } {
  const [state, setState] = useState<{ session: Session | null; error: string | null }>({ session: null, error: null });
  useEffect(() => {
    let live = true;
    api<Session>('/ui/session').then(
      (session) => live && setState({ session, error: null }),
      (err) => live && setState({ session: null, error: err instanceof ApiError && err.status === 401 ? 'this token is not known to the server' : String(err.message) }),
    );
    return () => {
      live = false;
    };
  }, [token]);
  return state;
}

function TokenField({ token, onChange }: { token: string; onChange: (t: string) => void }) {
  const [draft, setDraft] = useState(token);
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        onChange(draft.trim());
      }}
    >
      <label>
        Bearer token{' '}
        <input
          type="password"
          name="token"
          autocomplete="off"
          placeholder="none"
          value={draft}
          onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
        />
      </label>
      <button type="submit">Use</button>
      {token && (
        <button
          type="button"
          onClick={() => {
            setDraft('');
            onChange('');
          }}
        >
          Forget
        </button>
      )}
    </form>
  );
}

function App() {
  const route = useRoute();
  const [token, setTokenState] = useState(getToken);
  const { session, error } = useSession(token);
  const admin = session?.role === 'admin';
  const changeToken = (t: string) => {
    setToken(t);
    setTokenState(t);
  };
  return (
    <>
      <header>
        <a class="brand" href="#/">
          leasehold
        </a>
        <TokenField token={token} onChange={changeToken} />
        <span class="who" data-role={session?.role ?? ''}>
          {session ? (session.name ? `${session.name} · ${session.role}` : 'open server · admin') : error ?? '…'}
        </span>
      </header>
      <main key={token}>
        {route.page === 'clusters' && <ClustersPage />}
        {route.page === 'cluster' && <ClusterPage clusterId={route.clusterId} admin={admin} />}
        {route.page === 'job' && <JobPage clusterId={route.clusterId} jobId={route.jobId} admin={admin} />}
      </main>
    </>
  );
}

performance.mark('leasehold-ui-start');
render(<App />, document.getElementById('app')!);
