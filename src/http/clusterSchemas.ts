/** The wire model of the cluster listing, `GET /v1/clusters` (issue 20; docs/api.md, "The
 * cluster listing"). Named for openapi.yaml and the SDK in wireSchemas.ts. */
import { Type } from 'typebox';
import { Index, Leader, nullable } from './schemas.js';
import { NextCursor, PageQuery } from './paging.js';

export const ClusterPrefix = Type.String({
  pattern: '^[A-Za-z0-9._-]{1,64}$',
  description: 'Only clusters whose id begins with this (a search by prefix, case-sensitive).',
  examples: ['flink-'],
});

export const ClustersQuery = Type.Object({ ...PageQuery, prefix: Type.Optional(ClusterPrefix) }, { additionalProperties: false });

export const ClusterLeaders = Type.Object(
  { resourcemanager: Leader, dispatcher: Leader, rest: Leader },
  {
    additionalProperties: false,
    description:
      'The leader of each cluster-wide component, as `GET …/leaders` answers it, or null when it has none; a ' +
      'component published under the leadership shows the leadership’s holder.',
  },
);

export const LeadershipSummaryObject = Type.Object(
  {
    contenderId: Type.String(),
    sessionId: Type.String({ description: 'The leadership’s session id (a UUID).' }),
    token: Type.Integer({ minimum: 1, description: 'The leadership’s fencing token.' }),
    ttlMs: Type.Integer({ minimum: 0 }),
    remainingMs: Type.Integer({ minimum: 0, description: 'Milliseconds left on its lease when the server answered.' }),
    publishedCount: Type.Integer({ minimum: 0, description: 'How many components it publishes (`GET …/leadership` lists them).' }),
  },
  { additionalProperties: false, description: 'Who holds the cluster’s leadership: `GET …/leadership` tells the rest.' },
);
export const LeadershipSummary = nullable(LeadershipSummaryObject, { description: 'The cluster’s leadership, or null when none is held.' });

export const ClusterEntry = Type.Object(
  {
    clusterId: Type.String(),
    leaders: ClusterLeaders,
    leadership: LeadershipSummary,
    jobCount: Type.Integer({
      minimum: 0,
      description:
        'Job managers with a lease (per-component or published under the leadership), as the job-manager quota ' +
        'counts them: one whose lease ran out unnoticed counts until the cluster is next read whole.',
    }),
    lastChangeAt: nullable(Type.String({ format: 'date-time' }), {
      description:
        'When the last change of its leaders was recorded, by Redis’s clock (read from `index`, a hybrid clock: ' +
        'later when the index had to pass a higher token). null when `index` is.',
    }),
    index: nullable(Index, {
      description:
        'Its change index as stored; null when it has none (it holds only data an admin wrote unfenced: no lease was ' +
        'ever granted in it).',
    }),
  },
  { additionalProperties: false, description: 'A cluster of the deployment, as the listing shows it.' },
);

export const ClustersResponse = Type.Object(
  {
    clusters: Type.Array(ClusterEntry, { description: 'Sorted by cluster id (byte order); only those the caller’s token may use.' }),
    nextCursor: NextCursor,
  },
  { additionalProperties: false },
);
