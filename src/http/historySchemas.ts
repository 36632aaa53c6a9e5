/** The wire model of the leadership history (GET /v1/clusters/{clusterId}/history). */
import { Type } from 'typebox';
import { ENDINGS } from '../ha/history.js';
import { ContenderId, FencingToken, nullable } from './schemas.js';
import { NextCursor, PageQuery } from './paging.js';

const strict = { additionalProperties: false };

export const HistoryComponent = Type.String({
  pattern: '^(resourcemanager|dispatcher|rest|jobmanager/[0-9a-fA-F]{32}|leadership)$',
  description: "A component, or `leadership` for the cluster's leadership itself.",
  examples: ['dispatcher', 'leadership'],
});

const Time = Type.String({
  format: 'date-time',
  // Besides the format, for openapi.yaml's readers and the bad-input sweep.
  pattern:
    '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])$',
  description: 'An instant as ISO 8601 with a time zone, as `2026-12-04T17:00:00Z`.',
  examples: ['2026-12-04T17:00:00Z'],
});

export const HistoryQuery = Type.Object(
  {
    component: Type.Optional(HistoryComponent),
    from: Type.Optional({ ...Time, description: 'Only entries granted at or after this instant (ISO 8601).' }),
    to: Type.Optional({ ...Time, description: 'Only entries granted at or before this instant (ISO 8601).' }),
    ...PageQuery,
  },
  strict,
);

export const Ending = Type.Unsafe<(typeof ENDINGS)[number]>({
  type: 'string',
  enum: [...ENDINGS],
  description:
    'How the leadership ended: `resigned` (its holder released it, or unpublished the component), `expired` ' +
    '(its lease ran out), `revoked` (an admin, a job cleanup, or its leadership was revoked), `lost` (Redis lost ' +
    'it in a failover or rollback after this server had acknowledged it).',
});

export const HistoryEntry = Type.Object(
  {
    component: Type.String({ description: 'The component, or `leadership`.' }),
    contenderId: ContenderId,
    sessionId: Type.String({ description: 'The leader session id of the grant.' }),
    token: FencingToken,
    address: nullable(Type.String(), { description: 'The address the leader confirmed, or null.' }),
    grantedAt: Type.String({ format: 'date-time', description: "When it was granted, by Redis's clock, ISO 8601 UTC." }),
    endedAt: nullable(Type.String({ format: 'date-time' }), { description: 'When it ended; null while it leads (or when its end is not known).' }),
    ended: Type.Unsafe<(typeof ENDINGS)[number] | null>({
      type: ['string', 'null'],
      enum: [...ENDINGS, null],
      description: 'How it ended (see Ending); null while it leads.',
    }),
    takeoverGapMs: nullable(Type.Integer({ minimum: 0 }), {
      description: "Milliseconds from the end of the component's previous leader to this grant; null when none is known.",
    }),
  },
  { additionalProperties: false, description: 'One leadership of a component, or of the cluster.' },
);

export const HistoryResponse = Type.Object(
  { entries: Type.Array(HistoryEntry), nextCursor: NextCursor },
  { additionalProperties: false, description: 'Entries of the history, newest first.' },
);
