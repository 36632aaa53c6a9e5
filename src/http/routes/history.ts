/** The leadership history of a cluster: who led what, how it ended, and the takeover gaps. */
import { HISTORY_POSITION, type HistoryEntry as Entry } from '../../ha/history.js';
import { HistoryQuery, HistoryResponse } from '../historySchemas.js';
import { cursorOf, pageOf } from '../paging.js';
import { ClusterParams } from '../schemas.js';
import type { App, RouteContext } from '../types.js';

const iso = (ms: number) => new Date(ms).toISOString();

function entryJson(e: Entry) {
  return { ...e, grantedAt: iso(e.grantedAt), endedAt: e.endedAt === null ? null : iso(e.endedAt) };
}

export function historyRoutes(app: App, { ha }: RouteContext): void {
  app.get(
    '/v1/clusters/:clusterId/history',
    { schema: { params: ClusterParams, querystring: HistoryQuery, response: { 200: HistoryResponse } } },
    async (req) => {
      const q = req.query;
      const page = await ha.history.read(ha.keys(req.params.clusterId), {
        ...pageOf(q, 'h', HISTORY_POSITION),
        component: q.component?.toLowerCase(), // job ids are kept in lower case
        from: q.from === undefined ? undefined : Date.parse(q.from),
        to: q.to === undefined ? undefined : Date.parse(q.to),
      });
      return { entries: page.items.map(entryJson), ...cursorOf('h', page.next) };
    },
  );
}
