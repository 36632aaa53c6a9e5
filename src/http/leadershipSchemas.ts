/** The wire model of a cluster's leadership (docs/api.md, "The leadership"): one lease for
 * many components, Flink's model. Named for openapi.yaml and the SDK in wireSchemas.ts. */
import { Type } from 'typebox';
import type { Config } from '../config.js';
import {
  Address,
  ComponentLeader,
  ComponentName,
  ContenderId,
  electionBodies,
  errorWith,
  FencingToken,
  nullable,
  SessionId,
} from './schemas.js';

export const PublishedComponent = Type.Object({ component: ComponentName, address: Type.String() }, { additionalProperties: false });

export const LeadershipObject = Type.Object(
  {
    contenderId: Type.String({ description: 'Names the contender that holds the leadership.' }),
    sessionId: Type.String({ description: 'The leader session id of the grant (a UUID): Flink’s leader session id.' }),
    token: { ...FencingToken, description: 'The fencing token of the leadership: every store write of the cluster needs it while the leadership lives. Greater than every token granted before for any component of this cluster.' },
    ttlMs: Type.Integer({ minimum: 0, description: 'The lease’s time to live, as granted or last renewed.' }),
    remainingMs: Type.Integer({
      minimum: 0,
      description: 'Milliseconds left on the lease when the server answered; count it on your own monotonic clock.',
    }),
    components: Type.Array(PublishedComponent, { description: 'The components published under the leadership, sorted by name.' }),
  },
  { additionalProperties: false, description: 'A cluster’s leadership: one lease, one session, one token for many components.' },
);
export const Leadership = nullable(LeadershipObject, { description: 'The cluster’s leadership, or null when none is held.' });

export const LeadershipResponse = Type.Object({ leadership: Leadership }, { additionalProperties: false });
export const LeadershipCampaignResponse = Type.Object(
  {
    granted: Type.Boolean({ description: 'True when this contender holds the leadership now (newly granted, or already its own).' }),
    leadership: LeadershipObject,
  },
  { additionalProperties: false },
);
export const LeadershipRenewResponse = Type.Object({ leadership: LeadershipObject }, { additionalProperties: false });
export const UnpublishResponse = Type.Object({ removed: Type.Boolean() }, { additionalProperties: false });
export const RevokeResponse = Type.Object({ revoked: Type.Boolean() }, { additionalProperties: false });

/** A component in a request: job ids in either case, answered in lower case. */
const ComponentInput = Type.String({
  pattern: '^(resourcemanager|dispatcher|rest|jobmanager/[0-9a-fA-F]{32})$',
  description: 'A component: `resourcemanager`, `dispatcher`, `rest` or `jobmanager/{jobId}`.',
});

const bodiesOf = new WeakMap<Config['leaseTtl'], ReturnType<typeof makeBodies>>();

export function leadershipBodies(config: Config) {
  let bodies = bodiesOf.get(config.leaseTtl);
  if (!bodies) bodiesOf.set(config.leaseTtl, (bodies = makeBodies(config)));
  return bodies;
}

function makeBodies(config: Config) {
  const { TtlMs } = electionBodies(config);
  const strict = { additionalProperties: false };
  return {
    campaign: Type.Object({ contenderId: ContenderId, ttlMs: Type.Optional(TtlMs) }, strict),
    renew: Type.Object({ contenderId: ContenderId, sessionId: SessionId, ttlMs: Type.Optional(TtlMs) }, strict),
    resign: Type.Object({ contenderId: ContenderId, sessionId: SessionId }, strict),
    publish: Type.Object({ sessionId: SessionId, component: ComponentInput, address: Address }, strict),
    unpublish: Type.Object({ sessionId: SessionId, component: ComponentInput }, strict),
    revoke: Type.Object({ sessionId: Type.Optional(SessionId) }, strict),
  };
}

export const NotLeadershipError = errorWith(
  { leadership: Leadership },
  '`NotLeader`: this session does not hold the leadership; `leadership` is the current one, or null.',
);
export const LeadershipHeldError = errorWith(
  { leadership: LeadershipObject },
  '`LeadershipHeld`: a leadership leads the cluster, so no per-component lease is granted; `leadership` is it.',
);
export const ComponentLeasesHeldError = errorWith(
  { leaders: Type.Array(ComponentLeader) },
  '`ComponentLeasesHeld`: per-component leases live in the cluster, so no leadership is granted; `leaders` are they.',
);
