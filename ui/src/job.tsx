/** One job's stores: its execution plan's size, checkpoints, checkpoint counter, result and blobs; and its cleanup. */
import { api, enc, maybe, sizeOf } from './api';
import { Confirmed, ErrorLine, fmtBytes, fmtTime, Head, Section, useLoad } from './parts';

interface Checkpoint {
  checkpointId: number;
  timestamp: number;
  externalPointer: string;
}

interface Blob {
  blobKey: string;
  size: number;
  createdAt?: string;
}

interface JobResult {
  jobId: string;
  state: string;
  applicationStatus: string;
  createdAt: string;
  cleanedAt: string | null;
}

/** Every page of a paged list, up to `max` entries (a console shows, it does not export). */
async function all<T>(path: string, key: string, max = 10_000): Promise<{ items: T[]; more: boolean } | null> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await maybe<Record<string, unknown>>(`${path}?limit=1000${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    if (!page) return items.length ? { items, more: false } : null;
    items.push(...(page[key] as T[]));
    cursor = page.nextCursor as string | undefined;
  } while (cursor && items.length < max);
  return { items, more: Boolean(cursor) };
}

export function JobPage({ clusterId, jobId, admin }: { clusterId: string; jobId: string; admin: boolean }) {
  const c = `/v1/clusters/${enc(clusterId)}`;
  const j = enc(jobId);
  const { data, error, reload } = useLoad(async () => {
    const [planBytes, checkpoints, counter, result, blobs] = await Promise.all([
      sizeOf(`${c}/execution-plans/${j}`),
      all<Checkpoint>(`${c}/jobs/${j}/checkpoints`, 'checkpoints'),
      maybe<{ value: number }>(`${c}/jobs/${j}/checkpoint-id-counter`),
      maybe<JobResult>(`${c}/job-results/${j}`),
      all<Blob>(`${c}/blobs/${j}`, 'blobs'),
    ]);
    // Blob pages follow a scan: one may repeat a blob (openapi.yaml).
    const blobList = blobs ? [...new Map(blobs.items.map((b) => [b.blobKey, b])).values()].sort((a, b) => a.blobKey.localeCompare(b.blobKey)) : [];
    // The list is in id order; its last is the latest (no second read, which would be a 404 without one).
    const latest = checkpoints?.items.reduce<Checkpoint | null>((a, b) => (a && a.checkpointId > b.checkpointId ? a : b), null) ?? null;
    return { planBytes, checkpoints, latest, counter, result, blobs: blobList };
  }, [clusterId, jobId]);

  return (
    <>
      <nav>
        <a href="#/">Clusters</a> › <a href={`#/cluster/${enc(clusterId)}`}>{clusterId}</a> › job {jobId}
      </nav>
      <h1>Job {jobId}</h1>
      <ErrorLine error={error} />
      {!data ? (
        <p class="note">…</p>
      ) : (
        <>
          <Section title="Stores" id="stores">
            <dl class="stores">
              <dt>Execution plan</dt>
              <dd data-field="plan">{data.planBytes === null ? 'none' : fmtBytes(data.planBytes)}</dd>
              <dt>Checkpoints</dt>
              <dd data-field="checkpoints">
                {data.checkpoints ? `${data.checkpoints.items.length}${data.checkpoints.more ? '+' : ''}` : 'none'}
                {data.latest && ` · latest ${data.latest.checkpointId} at ${fmtTime(data.latest.timestamp)}`}
              </dd>
              <dt>Checkpoint id counter</dt>
              <dd data-field="counter">{data.counter ? data.counter.value : 'none'}</dd>
              <dt>Job result</dt>
              <dd data-field="result">
                {data.result
                  ? `${data.result.applicationStatus}, ${data.result.state}${data.result.cleanedAt ? ` since ${fmtTime(data.result.cleanedAt)}` : ''}`
                  : 'none'}
              </dd>
            </dl>
          </Section>
          <Section title={`Blobs (${data.blobs.length})`} id="blobs">
            {data.blobs.length === 0 ? (
              <p class="note">No blob.</p>
            ) : (
              <table class="blobs">
                <Head cols={['Key', 'Size', 'Created']} />
                <tbody>
                  {data.blobs.map((b) => (
                    <tr key={b.blobKey} data-blob={b.blobKey}>
                      <td>{b.blobKey}</td>
                      <td data-bytes={b.size}>{fmtBytes(b.size)}</td>
                      <td>{fmtTime(b.createdAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Section>
        </>
      )}
      {admin && (
        <Section title="Admin" id="admin">
          <Confirmed
            label="Clean up job"
            what={`Delete job ${jobId}'s leadership, execution plan, checkpoints, checkpoint counter and blobs (its job result stays)?`}
            run={() => api(`${c}/jobs/${j}`, { method: 'DELETE', headers: { 'x-fencing-token': 'override' } })}
            onDone={reload}
          />
        </Section>
      )}
    </>
  );
}
